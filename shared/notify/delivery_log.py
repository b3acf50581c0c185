"""The delivery log of alert notifications (Table `DeliveryLog`) and the rules that decide whether a
failed webhook call may be sent again. shared.notify.delivery explains the states."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableClient

from shared.alerts.model import NotifyMessage
from shared.m365.http_client import ApiError
from shared.platform.clock import Clock, parse_utc
from shared.platform.table_claim import Claim, RowClaimer

FUNCTION_TIMEOUT = dt.timedelta(minutes=10)  # host.json functionTimeout (a test keeps them equal)
STALE_MARGIN = dt.timedelta(minutes=5)
SENDING_STALE = FUNCTION_TIMEOUT + STALE_MARGIN
"""A `sending` or `unknown` row older than this is abandoned: no invocation outlives the function
timeout, so its worker is certainly dead."""
CLAIM_STALE = dt.timedelta(minutes=2)
"""A `claimed` row (not yet sending) older than this may be taken over. That is safe at any age, since
the holder's move to `sending` is ETag-checked; the wait only keeps copies from stealing live claims."""
DEFER_MARGIN = dt.timedelta(seconds=30)  # a deferred copy arrives this long after the claim goes stale
QUEUE_MAX_DEQUEUE_COUNT = 5  # host.json extensions.queues.maxDequeueCount (a test keeps them equal)
MAX_REASON_LENGTH = 300
IDEMPOTENCY_HEADER = "X-AOC-Delivery-Id"

Outcome = Literal["sent", "failed", "duplicate", "skipped", "deferred", "unknown"]
LogStatus = Literal["sent", "failed", "retrying", "gave_up", "unknown"]
Defer = Callable[[NotifyMessage, int], None]
"""Queues a copy of the message that becomes visible after the given number of seconds."""


@dataclass(frozen=True)
class DeliveryResult:
    outcome: Outcome
    channel: str
    attempts: int = 0
    http_status: int | None = None
    reason: str | None = None
    retry_at: str | None = None


def never_sent(error: ApiError) -> bool:
    """Whether a webhook call failed before any byte of the request left (so a retry cannot duplicate).

    The client sets `never_sent` from httpx's exception type (ConnectError: refused, unresolvable host,
    TLS handshake; ConnectTimeout; PoolTimeout), since a secret URL's exception chain is hidden. A read
    timeout or a dropped connection is not: the receiver may have the POST.
    """
    return error.status is None and error.never_sent


def retryable(error: BaseException) -> bool:
    """Worth another POST: the receiver refused it (throttled, a server error) or was never reached."""
    if not isinstance(error, ApiError):
        return False
    if error.status is not None:
        return error.status == 429 or error.status >= 500
    return never_sent(error)


def failure_reason(error: ApiError) -> str:
    text = f"HTTP {error.status}: {error.message}" if error.status else f"no response: {error.message}"
    return text[:MAX_REASON_LENGTH]


class DeliveryLog:
    """Table `DeliveryLog`: PartitionKey alert id, RowKey `{channel}:{round}`."""

    def __init__(self, table: TableClient, clock: Clock) -> None:
        self._table = table
        self._claimer = RowClaimer(
            table,
            "claimed",
            {"sent", "failed"},
            CLAIM_STALE,
            held_statuses={"sending": SENDING_STALE, "unknown": SENDING_STALE},
        )
        self._clock = clock

    @staticmethod
    def _keys(message: NotifyMessage) -> tuple[str, str]:
        return message.alert_id, f"{message.channel}:{message.round}"

    def get(self, message: NotifyMessage) -> dict[str, Any] | None:
        try:
            return dict(self._table.get_entity(*self._keys(message)))
        except ResourceNotFoundError:
            return None

    def held_until(self, row: Mapping[str, Any]) -> dt.datetime | None:
        """When a row's hold lapses (None: it does not hold the delivery)."""
        holds_for = self._claimer.staleness(row.get("status"))
        if holds_for is None or not row.get("claimed_at"):
            return None
        return parse_utc(row["claimed_at"]) + holds_for

    def claim(self, message: NotifyMessage, owner: str, message_id: str | None = None) -> Claim:
        """Claim the delivery for `owner`; Claim("done") when it was already sent or failed.

        Raises ClaimBusyError (with the row) while another delivery holds it.
        """
        partition, row = self._keys(message)
        return self._claimer.claim(
            partition,
            row,
            self._clock.now(),
            new_fields={"attempts": 0, "message_id": message_id},
            takeover_fields=lambda existing: {
                "attempts": int(existing.get("attempts") or 0),
                "message_id": message_id,
                "taken_over_from": existing.get("status"),
            },
            label=message.delivery_key,
            owner=owner,
        )

    def move(
        self,
        message: NotifyMessage,
        *,
        etag: str,
        owner: str,
        status: Literal["sending"] | LogStatus,
        attempts: int,
        message_id: str | None,
        http_status: int | None = None,
        reason: str | None = None,
        taken_over_from: str | None = None,
    ) -> str:
        """Move this owner's row to `status` if nobody took it over; the new ETag, or ClaimLostError."""
        partition, row = self._keys(message)
        return self._claimer.advance(
            partition,
            row,
            self._clock.now(),
            etag=etag,
            owner=owner,
            fields={
                "status": status,
                "attempts": attempts,
                "message_id": message_id,
                "http_status": http_status,
                "reason": reason,
                "taken_over_from": taken_over_from,
            },
            label=message.delivery_key,
        )
