"""Triage: status changes, classification and comments on an alert, each recorded in its history."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.alerts.model import ALLOWED_TRANSITIONS, AlertStatus, Classification, HistoryEntry
from shared.alerts.store import AlertStore
from shared.clock import Clock, utc_iso

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


def apply_update(alert: dict[str, Any], update: AlertUpdate, by: str, now: str) -> bool:
    """Change `alert` in place; False when the update changes nothing. Raises InvalidTransitionError."""
    changed = False
    history: list[dict[str, Any]] = alert.setdefault("history", [])
    current = str(alert.get("status") or AlertStatus.OPEN)
    if update.status is not None and update.status != current:
        if update.status not in ALLOWED_TRANSITIONS[current]:
            raise InvalidTransitionError(f"an alert cannot go from {current} to {update.status}")
        alert["status"] = update.status
        alert["status_changed_by"] = by
        alert["status_changed_at"] = now
        history.append(
            HistoryEntry(
                at=now, by=by, action="status", from_status=current, to_status=update.status
            ).model_dump()
        )
        changed = True
    if update.classification is not None and update.classification != alert.get("classification"):
        alert["classification"] = update.classification
        history.append(
            HistoryEntry(
                at=now, by=by, action="classification", classification=update.classification
            ).model_dump()
        )
        changed = True
    if update.comment is not None:
        alert.setdefault("comments", []).append({"at": now, "by": by, "text": update.comment})
        history.append(HistoryEntry(at=now, by=by, action="comment", comment=update.comment).model_dump())
        changed = True
    if changed:
        alert["updated_at"] = now
    return changed


def update_alert(
    store: AlertStore, clock: Clock, tenant_id: str, alert_id: str, update: AlertUpdate, by: str
) -> dict[str, Any]:
    """Apply an analyst's update with an ETag-guarded write; returns the stored alert."""
    now = utc_iso(clock.now())
    stored = store.update(tenant_id, alert_id, lambda alert: apply_update(alert, update, by, now))
    if stored is None:
        raise AlertNotFoundError(alert_id)
    return stored
