"""The alert document (Cosmos `alerts` container, partition key = tenant id) and the notify message."""

from __future__ import annotations

import hashlib
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from shared.platform.ids import is_alert_id, is_channel_name, storage_id
from shared.rules.model import Severity

MAX_EVENT_REFS = 100  # evidence kept on the alert; `occurrences` counts every match


class AlertStatus(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"
    CLOSED = "closed"


ACTIVE_STATUSES: tuple[str, ...] = (AlertStatus.OPEN, AlertStatus.ACKNOWLEDGED)

# open -> acknowledged -> resolved / closed; a resolved or closed alert may be reopened.
ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
    AlertStatus.OPEN: frozenset({AlertStatus.ACKNOWLEDGED, AlertStatus.RESOLVED, AlertStatus.CLOSED}),
    AlertStatus.ACKNOWLEDGED: frozenset({AlertStatus.OPEN, AlertStatus.RESOLVED, AlertStatus.CLOSED}),
    AlertStatus.RESOLVED: frozenset({AlertStatus.OPEN, AlertStatus.CLOSED}),
    AlertStatus.CLOSED: frozenset({AlertStatus.OPEN}),
}


class Classification(StrEnum):
    TRUE_POSITIVE = "true_positive"
    BENIGN_POSITIVE = "benign_positive"
    FALSE_POSITIVE = "false_positive"
    UNDETERMINED = "undetermined"


class AlertEventRef(BaseModel):
    id: str
    pk: str
    timestamp: str


class HistoryEntry(BaseModel):
    at: str
    by: str
    action: Literal["created", "status", "classification", "comment"]
    from_status: str | None = None
    to_status: str | None = None
    classification: str | None = None
    comment: str | None = None
    request_id: str | None = None  # set by an update sent with an Idempotency-Key, to spot its retries


class Delivery(BaseModel):
    """Where one channel's notification for one round stands."""

    channel: str
    round: int
    status: Literal["queued", "sent", "retrying", "gave_up", "failed"]
    attempts: int = 0
    http_status: int | None = None
    reason: str | None = None
    updated_at: str


class Alert(BaseModel):
    model_config = ConfigDict(use_enum_values=True)

    id: str
    pk: str
    type: Literal["alert"] = "alert"
    tenant_id: str
    rule_id: str
    title: str
    description: str
    severity: Severity
    mitre: list[str] = Field(default_factory=list)
    group_key: str
    group: dict[str, str] = Field(default_factory=dict)
    actor: str | None = None  # whom it is about: the actor grouping's value, else the first event's actor
    threshold: dict[str, Any] | None = None
    status: AlertStatus = AlertStatus.OPEN
    classification: Classification | None = None
    status_changed_by: str | None = None
    status_changed_at: str | None = None
    occurrences: int = Field(ge=1)
    first_seen: str
    last_seen: str
    events: list[AlertEventRef] = Field(default_factory=list)
    sample: dict[str, Any] = Field(default_factory=dict)
    created_at: str
    updated_at: str
    history: list[HistoryEntry] = Field(default_factory=list)
    notification_round: int = 1
    notified_at: str | None = None
    deliveries: dict[str, Delivery] = Field(default_factory=dict)

    @property
    def event_ids(self) -> list[str]:
        return [e.id for e in self.events]


def _alert_id(value: str) -> str:
    if not is_alert_id(value):
        raise ValueError("alert_id is not an alert id of this app")
    return value


def _channel_name(value: str) -> str:
    if not is_channel_name(value):
        raise ValueError("channel is not a channel name (1 to 40 of A-Z a-z 0-9 _ -)")
    return value


class NotifyMessage(BaseModel):
    """One notification for the `notify` queue: the delivery log key is (alert, channel, round).

    The alert id and channel are checked when the message is decoded: they key a DeliveryLog row, which
    is claimed before the alert is read, so an id of another grammar must never get that far.
    """

    alert_id: Annotated[str, AfterValidator(_alert_id)]
    pk: Annotated[str, AfterValidator(storage_id)]
    channel: Annotated[str, AfterValidator(_channel_name)]
    round: int = Field(ge=1)

    @property
    def delivery_key(self) -> str:
        return f"{self.alert_id}/{self.channel}/{self.round}"


def alert_fingerprint(tenant_id: str, rule_id: str, group_key: str, bucket: int, generation: int = 0) -> str:
    """The alert id: the same rule, group and time bucket always give the same id."""
    text = f"{tenant_id}\x1f{rule_id}\x1f{group_key}\x1f{bucket}\x1f{generation}"
    return "alert-" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:40]
