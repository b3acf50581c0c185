"""Sends one queued notification, exactly once per (alert, channel, round).

A `DeliveryLog` row is claimed before the webhook call and marked sent or failed after it, so a
redelivered notify message never posts twice; a copy that arrives while another worker holds the claim
is dropped (the holder's own message is retried by the queue if it fails). 429 and 5xx answers are
retried in process (honouring Retry-After, bounded); when those retries run out the claim is released
and the message goes back to the queue, which retries it; on the last dequeue the delivery is marked
`gave_up` (not done, so a replay from `notify-poison` sends it) and the message moves to
`notify-poison`. Any other 4xx is final: the delivery is marked failed with the answer's reason and
never retried. The alert document shows each channel's delivery status. The webhook URL is a secret:
logs, errors and stored reasons name the channel instead.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any, Literal

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

from shared.alerts.model import NotifyMessage
from shared.alerts.store import AlertStore
from shared.clock import Clock, SystemClock, utc_iso
from shared.http_client import ApiClient, ApiError
from shared.notify.channels import ChannelConfig
from shared.notify.payloads import (
    NotificationContent,
    encode_body,
    signed_headers,
    slack_payload,
    teams_payload,
    webhook_payload,
)
from shared.rate_limit import RateLimiter, SlidingWindowRateLimiter
from shared.table_claim import ClaimBusyError, RowClaimer

logger = logging.getLogger(__name__)

CLAIM_TIMEOUT = dt.timedelta(minutes=5)
QUEUE_MAX_DEQUEUE_COUNT = 5  # host.json extensions.queues.maxDequeueCount (a test keeps them equal)
MAX_REASON_LENGTH = 300
IDEMPOTENCY_HEADER = "X-AOC-Delivery-Id"

Outcome = Literal["sent", "failed", "duplicate", "skipped"]


@dataclass(frozen=True)
class DeliveryResult:
    outcome: Outcome
    channel: str
    attempts: int = 0
    http_status: int | None = None
    reason: str | None = None


class _CountingLimiter:
    """Counts attempts of one delivery: the client calls `acquire` before each one."""

    def __init__(self, inner: RateLimiter | None) -> None:
        self._inner = inner
        self.attempts = 0

    def acquire(self) -> float:
        self.attempts += 1
        return self._inner.acquire() if self._inner is not None else 0.0


class DeliveryLog:
    """Table `DeliveryLog`: PartitionKey alert id, RowKey `{channel}:{round}`."""

    def __init__(self, table: TableClient, clock: Clock) -> None:
        self._table = table
        self._claimer = RowClaimer(table, "sending", {"sent", "failed"}, CLAIM_TIMEOUT)
        self._clock = clock

    @staticmethod
    def _keys(message: NotifyMessage) -> tuple[str, str]:
        return message.alert_id, f"{message.channel}:{message.round}"

    def get(self, message: NotifyMessage) -> dict[str, Any] | None:
        try:
            return dict(self._table.get_entity(*self._keys(message)))
        except ResourceNotFoundError:
            return None

    def claim(self, message: NotifyMessage) -> tuple[Literal["claimed", "done"], int]:
        """("claimed", attempts so far) or ("done", attempts) when it was already sent or failed."""
        partition, row = self._keys(message)
        claim = self._claimer.claim(
            partition,
            row,
            self._clock.now(),
            new_fields={"attempts": 0},
            takeover_fields=lambda existing: {"attempts": int(existing.get("attempts") or 0)},
            label=message.delivery_key,
        )
        return claim.state, int(claim.existing.get("attempts") or 0)

    def record(
        self,
        message: NotifyMessage,
        status: Literal["sent", "failed", "retrying", "gave_up"],
        attempts: int,
        http_status: int | None,
        reason: str | None,
    ) -> None:
        partition, row = self._keys(message)
        self._table.upsert_entity(
            {
                "PartitionKey": partition,
                "RowKey": row,
                "status": status,
                "claimed_at": utc_iso(self._clock.now()),
                "attempts": attempts,
                "http_status": http_status,
                "reason": reason,
            },
            mode=UpdateMode.REPLACE,
        )


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
        self._client = client
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

    def deliver(self, message: NotifyMessage, *, last_attempt: bool = False) -> DeliveryResult:
        """Post one notification. Raises when it should be retried later by the queue."""
        channel = self._channels.get(message.channel)
        if channel is None:
            logger.warning("notification %s: channel no longer configured; dropped", message.delivery_key)
            return DeliveryResult("skipped", message.channel, reason="channel not configured")
        try:
            state, attempts = self._log.claim(message)
        except ClaimBusyError:
            logger.info(
                "notification %s: another worker holds the delivery; dropping this copy", message.delivery_key
            )
            return DeliveryResult("duplicate", channel.name)
        if state == "done":
            logger.info("notification %s was already delivered; not posting again", message.delivery_key)
            return DeliveryResult("duplicate", channel.name, attempts)
        alert = self._store.get(message.pk, message.alert_id)
        if alert is None:
            self._log.record(message, "failed", attempts, None, "alert not found")
            return DeliveryResult("skipped", channel.name, attempts, reason="alert not found")
        body = encode_body(self.payload(channel, build_content(alert, self._link_base_url, message.round)))
        headers = {"Content-Type": "application/json", IDEMPOTENCY_HEADER: message.delivery_key}
        if channel.type == "webhook" and channel.secret is not None:
            headers.update(
                signed_headers(channel.secret.get_secret_value(), body, self._clock.now().timestamp())
            )
        counter = _CountingLimiter(self._limiters.get(channel.name))
        try:
            response = self._client.request(
                "POST",
                channel.url.get_secret_value(),
                headers=headers,
                data=body,
                rate_limiter=counter,
                url_label=f"{channel.type} channel {channel.name!r}",
            )
        except ApiError as error:
            attempts += counter.attempts
            reason = (
                f"HTTP {error.status}: {error.message}" if error.status else f"no response: {error.message}"
            )
            reason = reason[:MAX_REASON_LENGTH]
            retryable = error.status is None or error.status == 429 or error.status >= 500
            if retryable and not last_attempt:
                self._log.record(message, "retrying", attempts, error.status, reason)
                self._mark_alert(message, "retrying", attempts, error.status, reason)
                logger.warning(
                    "notification %s to %s will be retried: %s", message.delivery_key, channel.name, reason
                )
                raise
            status: Literal["failed", "gave_up"] = "gave_up" if retryable else "failed"
            self._log.record(message, status, attempts, error.status, reason)
            self._mark_alert(message, status, attempts, error.status, reason)
            logger.error("notification %s to %s failed: %s", message.delivery_key, channel.name, reason)
            if retryable:
                raise  # the last dequeue: the message moves to the poison queue for a replay
            return DeliveryResult("failed", channel.name, attempts, error.status, reason)
        attempts += counter.attempts
        self._log.record(message, "sent", attempts, response.status_code, None)
        self._mark_alert(message, "sent", attempts, response.status_code, None)
        logger.info("notification %s sent to %s (%s)", message.delivery_key, channel.name, channel.type)
        return DeliveryResult("sent", channel.name, attempts, response.status_code)

    def _mark_alert(
        self, message: NotifyMessage, status: str, attempts: int, http_status: int | None, reason: str | None
    ) -> None:
        now = utc_iso(self._clock.now())

        def mutate(alert: dict[str, Any]) -> bool:
            deliveries = alert.setdefault("deliveries", {})
            current = deliveries.get(message.channel)
            if current is not None and int(current.get("round", 0)) > message.round:
                return False  # a later round owns this channel's entry
            deliveries[message.channel] = {
                "channel": message.channel,
                "round": message.round,
                "status": status,
                "attempts": attempts,
                "http_status": http_status,
                "reason": reason,
                "updated_at": now,
            }
            return True

        self._store.update(message.pk, message.alert_id, mutate)
