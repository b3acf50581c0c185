"""Alert triage: allowed status changes, classification, comments, and the history they leave."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from shared.alerts.lifecycle import AlertUpdate, InvalidTransitionError, apply_update

NOW = "2026-11-22T10:00:00.000Z"


def _alert(status: str = "open") -> dict[str, Any]:
    return {"id": "alert-1", "status": status, "classification": None, "history": [], "updated_at": "earlier"}


@pytest.mark.parametrize(
    ("start", "target"),
    [
        ("open", "acknowledged"),
        ("open", "resolved"),
        ("open", "closed"),
        ("acknowledged", "resolved"),
        ("acknowledged", "closed"),
        ("resolved", "open"),
        ("closed", "open"),
    ],
)
def test_allowed_transitions_record_who_and_when(start: str, target: str) -> None:
    alert = _alert(start)
    assert apply_update(alert, AlertUpdate(status=target), "ana@contoso.com", NOW)
    assert alert["status"] == target
    assert (alert["status_changed_by"], alert["status_changed_at"], alert["updated_at"]) == (
        "ana@contoso.com",
        NOW,
        NOW,
    )
    assert alert["history"] == [
        {
            "at": NOW,
            "by": "ana@contoso.com",
            "action": "status",
            "from_status": start,
            "to_status": target,
            "classification": None,
            "comment": None,
        }
    ]


@pytest.mark.parametrize(("start", "target"), [("resolved", "acknowledged"), ("closed", "resolved")])
def test_refused_transitions_change_nothing(start: str, target: str) -> None:
    alert = _alert(start)
    with pytest.raises(InvalidTransitionError, match=f"from {start} to {target}"):
        apply_update(alert, AlertUpdate(status=target), "ana", NOW)
    assert alert == _alert(start)


def test_classification_and_comments_are_kept_in_order() -> None:
    alert = _alert()
    apply_update(alert, AlertUpdate(classification="benign_positive", comment="planned change"), "ana", NOW)
    apply_update(alert, AlertUpdate(comment="CAB-1234"), "bob", NOW)
    assert alert["classification"] == "benign_positive"
    assert [c["text"] for c in alert["comments"]] == ["planned change", "CAB-1234"]
    assert [h["action"] for h in alert["history"]] == ["classification", "comment", "comment"]


def test_an_update_that_changes_nothing_is_not_written() -> None:
    alert = _alert("acknowledged")
    assert not apply_update(alert, AlertUpdate(status="acknowledged"), "ana", NOW)
    assert alert["updated_at"] == "earlier"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"status": "snoozed"},
        {"classification": "maybe"},
        {"comment": ""},
        {"status": "open", "owner": "x"},
    ],
)
def test_bad_updates_are_refused(body: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        AlertUpdate.model_validate(body)
