"""Triage: status changes, classification and comments on an alert, each recorded in its history."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.alerts.model import ALLOWED_TRANSITIONS, AlertStatus, Classification, HistoryEntry
from shared.alerts.ports import AlertDocuments
from shared.platform.clock import Clock, utc_iso

MAX_COMMENT_LENGTH = 4000


class InvalidTransitionError(ValueError):
    pass


class AlertNotFoundError(LookupError):
    pass


class AlertUpdate(BaseModel):
    """What an analyst may change: at least one of status, classification and comment."""

    model_config = ConfigDict(extra="forbid", use_enum_values=True)

    status: AlertStatus | None = None
    classification: Classification | None = None
    comment: str | None = Field(default=None, min_length=1, max_length=MAX_COMMENT_LENGTH)

    @model_validator(mode="after")
    def _something(self) -> AlertUpdate:
        if self.status is None and self.classification is None and self.comment is None:
            raise ValueError("give at least one of status, classification and comment")
        return self


def update_id(alert_id: str, by: str, idempotency_key: str | None) -> str:
    """The id of one update's comment and history entries: stable per alert, caller and key."""
    if idempotency_key is None:
        return uuid.uuid4().hex
    return hashlib.sha256(f"{alert_id}|{by}|{idempotency_key}".encode()).hexdigest()[:32]


def already_applied(alert: dict[str, Any], request_id: str) -> bool:
    """Whether the update `request_id` names left a comment or history entry on `alert`."""
    return any(c.get("id") == request_id for c in alert.get("comments") or []) or any(
        h.get("request_id") == request_id for h in alert.get("history") or []
    )


def apply_update(
    alert: dict[str, Any], update: AlertUpdate, by: str, now: str, *, idempotency_key: str | None = None
) -> bool:
    """Change `alert` in place; False when the update changes nothing. Raises InvalidTransitionError.

    With an idempotency key, an update that was already applied (a retry) changes nothing, even when
    the alert has changed since.
    """
    request_id = update_id(str(alert.get("id")), by, idempotency_key)
    if idempotency_key is not None and already_applied(alert, request_id):
        return False
    changed = False
    history: list[dict[str, Any]] = alert.setdefault("history", [])
    current = str(alert.get("status") or AlertStatus.OPEN)

    def record(action: Literal["status", "classification", "comment"], **fields: Any) -> None:
        keyed = request_id if idempotency_key is not None else None
        history.append(HistoryEntry(at=now, by=by, action=action, request_id=keyed, **fields).model_dump())

    if update.status is not None and update.status != current:
        if update.status not in ALLOWED_TRANSITIONS[current]:
            raise InvalidTransitionError(f"an alert cannot go from {current} to {update.status}")
        alert["status"] = update.status
        alert["status_changed_by"] = by
        alert["status_changed_at"] = now
        record("status", from_status=current, to_status=update.status)
        changed = True
    if update.classification is not None and update.classification != alert.get("classification"):
        alert["classification"] = update.classification
        record("classification", classification=update.classification)
        changed = True
    if update.comment is not None:
        alert.setdefault("comments", []).append(
            {"id": request_id, "at": now, "by": by, "text": update.comment}
        )
        record("comment", comment=update.comment)
        changed = True
    if changed:
        alert["updated_at"] = now
    return changed


def update_alert(
    store: AlertDocuments,
    clock: Clock,
    tenant_id: str,
    alert_id: str,
    update: AlertUpdate,
    by: str,
    *,
    idempotency_key: str | None = None,
) -> dict[str, Any]:
    """Apply an analyst's update with an ETag-guarded write; returns the stored alert."""
    now = utc_iso(clock.now())
    stored = store.update(
        tenant_id,
        alert_id,
        lambda alert: apply_update(alert, update, by, now, idempotency_key=idempotency_key),
    )
    if stored is None:
        raise AlertNotFoundError(alert_id)
    return stored
