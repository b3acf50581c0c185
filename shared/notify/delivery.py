"""Sends one queued notification, exactly once per (alert, channel, round) where that can be known.

A webhook POST is not idempotent for Teams or Slack, so a second POST is a second message in the
channel. A `DeliveryLog` row guards each delivery, owned by one attempt (an `owner` token):

1. `claimed`: the row is created (or a released or provably abandoned one taken over, ETag-guarded).
2. `sending`: right before every POST the row is moved on, ETag-conditionally, so an attempt that was
   taken over never posts. Each move also renews the claim.
3. `sent` / `failed` (final), `retrying` / `gave_up` (released: the queue's retry or a replay from
   `notify-poison` takes it over), or `unknown`.

A copy of the message that finds the row held by another delivery is dropped; the redelivery of the
holder's own message (its worker died, or the host's lease on the message ran out while it still runs)
is deferred until the claim is provably abandoned: `sending` for longer than the function timeout
(host.json `functionTimeout`) plus a margin, when the first invocation is certainly dead.

429, 5xx and connections that were never made are retried in process (honouring Retry-After, bounded);
when those retries run out the row is released and the message goes back to the queue; on the last
dequeue the delivery is marked `gave_up` and the message moves to `notify-poison`. Any other 4xx is
final. No answer after the request went out (a read timeout, a dropped connection) is `unknown`: the
receiver may have it, so it is not posted again until the same staleness period has passed; a copy
deferred to that moment then sends it once more (at least once at that edge; the `X-AOC-Delivery-Id`
header lets a receiver drop it). A crash between the POST and recording `sent` ends the same way.

The alert document shows each channel's delivery status. The webhook URL is a secret: logs, errors and
stored reasons name the channel instead.
"""

from __future__ import annotations

import logging
import math
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, stop_any

from shared.alerts.model import NotifyMessage
from shared.alerts.store import AlertStore
from shared.m365.http_client import ApiClient, ApiError, StopIf
from shared.m365.rate_limit import RateLimiter, SlidingWindowRateLimiter
from shared.notify.channels import ChannelConfig
from shared.notify.delivery_log import (
    DEFER_MARGIN,
    IDEMPOTENCY_HEADER,
    MAX_REASON_LENGTH,
    SENDING_STALE,
    Defer,
    DeliveryLog,
    DeliveryResult,
    LogStatus,
    failure_reason,
    retryable,
)
from shared.notify.payloads import (
    NotificationContent,
    encode_body,
    signed_headers,
    slack_payload,
    teams_payload,
    webhook_payload,
)
from shared.platform.clock import Clock, SystemClock, utc_iso
from shared.platform.table_claim import ClaimBusyError, ClaimLostError

logger = logging.getLogger(__name__)


def build_content(alert: dict[str, Any], link_base_url: str | None, round_: int) -> NotificationContent:
    sample = alert.get("sample") or {}
    facts: list[tuple[str, str]] = []
    for label, key in (
        ("Actor", "actor"),
        ("Operation", "operation"),
        ("Target", "target"),
        ("Service", "service"),
        ("Result", "result"),
        ("IP address", "actor_ip"),
    ):
        value = sample.get(key)
        if value:
            facts.append((label, str(value)))
    for name, value in (alert.get("group") or {}).items():
        if value:
            facts.append((f"Group {name}", value))
    link = f"{link_base_url.rstrip('/')}/alerts/{alert['id']}" if link_base_url else None
    return NotificationContent(
        alert_id=alert["id"],
        rule_id=alert["rule_id"],
        title=alert["title"],
        severity=alert["severity"],
        description=alert.get("description") or "",
        mitre=list(alert.get("mitre") or []),
        status=alert.get("status") or "open",
        occurrences=max(int(alert.get("occurrences") or 1), 1),
        first_seen=alert["first_seen"],
        last_seen=alert["last_seen"],
        tenant_id=alert["tenant_id"],
        group_key=alert.get("group_key") or None,
        facts=facts,
        link=link,
        round=round_,
    )


@dataclass
class _Attempt:
    """This invocation's hold on a delivery: the row's ETag as it left it, and the POSTs counted so far."""

    owner: str
    message_id: str | None
    etag: str
    attempts: int
    taken_over_from: str | None = None


class NotificationService:
    def __init__(
        self,
        store: AlertStore,
        log: DeliveryLog,
        channels: list[ChannelConfig],
        client: ApiClient,
        clock: Clock,
        *,
        link_base_url: str | None,
        limiters: dict[str, RateLimiter] | None = None,
    ) -> None:
        self._store = store
        self._log = log
        self._channels = {c.name: c for c in channels}
        # `client`'s own retries would repeat a POST after a read timeout, when the receiver may have
        # it. Each POST goes through a single-attempt client over the same pooled httpx.Client instead,
        # and `_post` retries only what the receiver refused or never got; `client` sets the bounds.
        self._client = ApiClient(
            None,
            http=client.http,
            timeout=client.timeout,
            clock=client.clock,
            sleep=client.sleep,
            random=client.random,
            max_attempts=1,
            max_retry_after=client.max_retry_after,
        )
        self._max_attempts = client.max_attempts
        self._max_retry_after = client.max_retry_after
        self._backoff_base = client.backoff_base
        self._backoff_cap = client.backoff_cap
        self._sleep = client.sleep
        self._random = client.random
        self._clock = clock
        self._link_base_url = link_base_url
        self._limiters: dict[str, RateLimiter] = limiters or {
            c.name: SlidingWindowRateLimiter(max(int(c.rate), 1), max(int(c.rate), 1) / c.rate, SystemClock())
            for c in channels
        }

    def payload(self, channel: ChannelConfig, content: NotificationContent) -> dict[str, Any]:
        if channel.type == "teams":
            return teams_payload(content)
        if channel.type == "slack":
            return slack_payload(content)
        return webhook_payload(content)

    def deliver(
        self,
        message: NotifyMessage,
        *,
        message_id: str | None = None,
        last_attempt: bool = False,
        defer: Defer | None = None,
    ) -> DeliveryResult:
        """Post one notification. Raises when it should be retried later by the queue.

        `message_id` is the queue message's id (the same on every redelivery of it). `defer` queues a
        copy that arrives later; without it, a delivery that has to wait raises instead.
        """
        channel = self._channels.get(message.channel)
        if channel is None:
            logger.warning("notification %s: channel no longer configured; dropped", message.delivery_key)
            return DeliveryResult("skipped", message.channel, reason="channel not configured")
        owner = uuid.uuid4().hex
        try:
            claim = self._log.claim(message, owner, message_id)
        except ClaimBusyError as busy:
            return self._busy(message, channel, busy, message_id, defer)
        if claim.state == "done":
            row = claim.existing
            logger.info("notification %s was already delivered; not posting again", message.delivery_key)
            attempts = int(row.get("attempts") or 0)
            self._mark_alert(message, str(row["status"]), attempts, row.get("http_status"), row.get("reason"))
            return DeliveryResult("duplicate", channel.name, attempts)
        if claim.existing:
            logger.info(
                "notification %s: taking over a delivery left %s",
                message.delivery_key, claim.existing.get("status"),
            )  # fmt: skip
        assert claim.etag is not None
        attempt = _Attempt(
            owner,
            message_id,
            claim.etag,
            int(claim.existing.get("attempts") or 0),
            claim.existing.get("status"),
        )
        alert = self._store.get(message.pk, message.alert_id)
        if alert is None:
            self._finish(message, attempt, "failed", None, "alert not found")
            return DeliveryResult("skipped", channel.name, attempt.attempts, reason="alert not found")
        body = encode_body(self.payload(channel, build_content(alert, self._link_base_url, message.round)))
        headers = {"Content-Type": "application/json", IDEMPOTENCY_HEADER: message.delivery_key}
        if channel.type == "webhook" and channel.secret is not None:
            headers.update(
                signed_headers(channel.secret.get_secret_value(), body, self._clock.now().timestamp())
            )
        try:
            response = self._post(message, channel, body, headers, attempt)
        except ClaimLostError as lost:
            logger.warning("notification %s: %s; not posting", message.delivery_key, lost)
            return DeliveryResult("duplicate", channel.name, attempt.attempts)
        except ApiError as error:
            return self._failed(message, channel, attempt, error, last_attempt=last_attempt, defer=defer)
        self._finish(message, attempt, "sent", response.status_code, None)
        self._mark_alert(message, "sent", attempt.attempts, response.status_code, None)
        logger.info("notification %s sent to %s (%s)", message.delivery_key, channel.name, channel.type)
        return DeliveryResult("sent", channel.name, attempt.attempts, response.status_code)

    # -- the POST -----------------------------------------------------------------------------------

    def _post(
        self,
        message: NotifyMessage,
        channel: ChannelConfig,
        body: bytes,
        headers: dict[str, str],
        attempt: _Attempt,
    ) -> httpx.Response:
        limiter = self._limiters.get(channel.name)

        def once() -> httpx.Response:
            if limiter is not None:
                limiter.acquire()
            # Still ours? Moving the row to `sending` renews the claim; an attempt taken over stops here.
            attempt.etag = self._log.move(
                message,
                etag=attempt.etag,
                owner=attempt.owner,
                status="sending",
                attempts=attempt.attempts + 1,
                message_id=attempt.message_id,
                taken_over_from=attempt.taken_over_from,
            )
            attempt.attempts += 1
            return self._client.request(
                "POST",
                channel.url.get_secret_value(),
                headers=headers,
                data=body,
                url_label=f"{channel.type} channel {channel.name!r}",
            )

        retrying = Retrying(
            retry=retry_if_exception(retryable),
            stop=stop_any(stop_after_attempt(self._max_attempts), StopIf(self._retry_after_too_long)),
            wait=self._wait,
            sleep=self._sleep,
            before_sleep=lambda state: logger.warning(
                "notification %s to %s: %s; retry %d/%d in %.2fs",
                message.delivery_key,
                channel.name,
                state.outcome.exception() if state.outcome else "?",
                state.attempt_number,
                self._max_attempts - 1,
                state.upcoming_sleep,
            ),
            reraise=True,
        )
        return retrying(once)

    def _retry_after_too_long(self, state: RetryCallState) -> bool:
        error = state.outcome.exception() if state.outcome else None
        return (
            isinstance(error, ApiError)
            and error.retry_after is not None
            and error.retry_after > self._max_retry_after
        )

    def _wait(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, ApiError) and error.retry_after is not None:
            return error.retry_after
        ceiling = min(self._backoff_cap, self._backoff_base * 2.0 ** (state.attempt_number - 1))
        return self._random() * ceiling

    # -- outcomes -----------------------------------------------------------------------------------

    def _failed(
        self,
        message: NotifyMessage,
        channel: ChannelConfig,
        attempt: _Attempt,
        error: ApiError,
        *,
        last_attempt: bool,
        defer: Defer | None,
    ) -> DeliveryResult:
        reason = failure_reason(error)
        if retryable(error):
            status: LogStatus = "gave_up" if last_attempt else "retrying"
            self._finish(message, attempt, status, error.status, reason)
            self._mark_alert(message, status, attempt.attempts, error.status, reason)
            if last_attempt:
                logger.error("notification %s to %s failed: %s", message.delivery_key, channel.name, reason)
            else:
                logger.warning(
                    "notification %s to %s will be retried: %s", message.delivery_key, channel.name, reason
                )
            raise error  # the queue retries it; after the last dequeue it moves to notify-poison
        if error.status is None:
            # The request went out and no answer came back: the receiver may have it.
            now = self._clock.now()
            retry_at = now + SENDING_STALE + DEFER_MARGIN
            reason = f"{reason[: MAX_REASON_LENGTH - 60]}; not sent again before {utc_iso(retry_at)}"
            self._finish(message, attempt, "unknown", None, reason)
            self._mark_alert(message, "retrying", attempt.attempts, None, reason)
            logger.error(
                "notification %s to %s: no answer after sending, outcome unknown: %s",
                message.delivery_key, channel.name, reason,
            )  # fmt: skip
            if defer is None:
                raise error
            defer(message, max(1, math.ceil((retry_at - now).total_seconds())))
            return DeliveryResult(
                "unknown", channel.name, attempt.attempts, None, reason, retry_at=utc_iso(retry_at)
            )
        self._finish(message, attempt, "failed", error.status, reason)
        self._mark_alert(message, "failed", attempt.attempts, error.status, reason)
        logger.error("notification %s to %s failed: %s", message.delivery_key, channel.name, reason)
        return DeliveryResult("failed", channel.name, attempt.attempts, error.status, reason)

    def _finish(
        self,
        message: NotifyMessage,
        attempt: _Attempt,
        status: LogStatus,
        http_status: int | None,
        reason: str | None,
    ) -> None:
        try:
            attempt.etag = self._log.move(
                message,
                etag=attempt.etag,
                owner=attempt.owner,
                status=status,
                attempts=attempt.attempts,
                message_id=attempt.message_id,
                http_status=http_status,
                reason=reason,
                taken_over_from=attempt.taken_over_from,
            )
        except ClaimLostError as lost:
            logger.error(
                "notification %s: outcome %s not recorded (%s): this invocation outlived the claim's "
                "staleness, so the delivery may be posted again",
                message.delivery_key, status, lost,
            )  # fmt: skip

    def _busy(
        self,
        message: NotifyMessage,
        channel: ChannelConfig,
        busy: ClaimBusyError,
        message_id: str | None,
        defer: Defer | None,
    ) -> DeliveryResult:
        held = busy.held
        if message_id is None or held.get("message_id") != message_id:
            logger.info(
                "notification %s: another delivery holds it (%s); dropping this copy",
                message.delivery_key, held.get("status"),
            )  # fmt: skip
            return DeliveryResult("duplicate", channel.name)
        # This very message's earlier delivery holds it: its worker died, or the queue's lease on the
        # message ran out while it still runs. Posting now could post twice; wait until it is abandoned.
        now = self._clock.now()
        retry_at = max(self._log.held_until(held) or now, now) + DEFER_MARGIN
        logger.warning(
            "notification %s: an earlier delivery of this message holds it (%s since %s); retrying at %s",
            message.delivery_key, held.get("status"), held.get("claimed_at"), utc_iso(retry_at),
        )  # fmt: skip
        if defer is None:
            raise busy
        defer(message, max(1, math.ceil((retry_at - now).total_seconds())))
        return DeliveryResult("deferred", channel.name, retry_at=utc_iso(retry_at))

    def _mark_alert(
        self, message: NotifyMessage, status: str, attempts: int, http_status: int | None, reason: str | None
    ) -> None:
        now = utc_iso(self._clock.now())

        def mutate(alert: dict[str, Any]) -> bool:
            deliveries = alert.setdefault("deliveries", {})
            current = deliveries.get(message.channel)
            if current is not None and int(current.get("round", 0)) > message.round:
                return False  # a later round owns this channel's entry
            entry = {
                "channel": message.channel,
                "round": message.round,
                "status": status,
                "attempts": attempts,
                "http_status": http_status,
                "reason": reason,
            }
            if current is not None and all(current.get(k) == v for k, v in entry.items()):
                return False  # already shown (a copy of a delivery that is done)
            deliveries[message.channel] = {**entry, "updated_at": now}
            return True

        self._store.update(message.pk, message.alert_id, mutate)
