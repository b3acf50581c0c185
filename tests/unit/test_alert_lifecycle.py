"""Alert triage: allowed status changes, classification, comments, and the history they leave."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pydantic import ValidationError

from shared.alerts.lifecycle import AlertUpdate, InvalidTransitionError, apply_update, update_id
from shared.alerts.model import AlertStatus, Classification

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
    assert apply_update(alert, AlertUpdate(status=AlertStatus(target)), "ana@contoso.com", NOW)
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
            "request_id": None,
        }
    ]


@pytest.mark.parametrize(("start", "target"), [("resolved", "acknowledged"), ("closed", "resolved")])
def test_refused_transitions_change_nothing(start: str, target: str) -> None:
    alert = _alert(start)
    with pytest.raises(InvalidTransitionError, match=f"from {start} to {target}"):
        apply_update(alert, AlertUpdate(status=AlertStatus(target)), "ana", NOW)
    assert alert == _alert(start)


def test_classification_and_comments_are_kept_in_order() -> None:
    alert = _alert()
    apply_update(
        alert,
        AlertUpdate(classification=Classification.BENIGN_POSITIVE, comment="planned change"),
        "ana",
        NOW,
    )
    apply_update(alert, AlertUpdate(comment="CAB-1234"), "bob", NOW)
    assert alert["classification"] == "benign_positive"
    assert [c["text"] for c in alert["comments"]] == ["planned change", "CAB-1234"]
    assert [h["action"] for h in alert["history"]] == ["classification", "comment", "comment"]


def test_a_retry_with_the_same_idempotency_key_changes_nothing() -> None:
    alert = _alert()
    update = AlertUpdate(status=AlertStatus.ACKNOWLEDGED, comment="on it")
    assert apply_update(alert, update, "ana", NOW, idempotency_key="k1")
    after_first = copy.deepcopy(alert)
    assert not apply_update(alert, update, "ana", "2026-11-22T10:00:05.000Z", idempotency_key="k1")
    assert alert == after_first
    assert [c["text"] for c in alert["comments"]] == ["on it"]
    assert alert["comments"][0]["id"] == update_id("alert-1", "ana", "k1")
    assert [h["action"] for h in alert["history"]] == ["status", "comment"]
    assert {h["request_id"] for h in alert["history"]} == {update_id("alert-1", "ana", "k1")}


def test_a_replayed_key_does_not_redo_a_status_change_made_since() -> None:
    alert = _alert()
    apply_update(alert, AlertUpdate(status=AlertStatus.RESOLVED), "ana", NOW, idempotency_key="resolve")
    apply_update(alert, AlertUpdate(status=AlertStatus.OPEN), "bob", NOW, idempotency_key="reopen")
    assert not apply_update(
        alert, AlertUpdate(status=AlertStatus.RESOLVED), "ana", NOW, idempotency_key="resolve"
    )
    assert alert["status"] == "open"


def test_different_keys_callers_or_no_key_each_add_a_comment() -> None:
    alert = _alert()
    for by, key in [("ana", "k1"), ("ana", "k2"), ("bob", "k1"), ("ana", None), ("ana", None)]:
        assert apply_update(alert, AlertUpdate(comment="same"), by, NOW, idempotency_key=key)
    assert len(alert["comments"]) == 5
    assert len({c["id"] for c in alert["comments"]}) == 5
    assert [h["action"] for h in alert["history"]] == ["comment"] * 5
    assert [h["request_id"] is None for h in alert["history"]] == [False, False, False, True, True]


def test_update_ids_are_stable_per_alert_caller_and_key_and_random_without_a_key() -> None:
    assert update_id("a1", "ana", "k") == update_id("a1", "ana", "k")
    assert len({update_id("a1", "ana", "k"), update_id("a2", "ana", "k"), update_id("a1", "bob", "k")}) == 3
    assert update_id("a1", "ana", None) != update_id("a1", "ana", None)


def test_an_update_that_changes_nothing_is_not_written() -> None:
    alert = _alert("acknowledged")
    assert not apply_update(alert, AlertUpdate(status=AlertStatus.ACKNOWLEDGED), "ana", NOW)
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
