"""Suppress similar, in the alert service against Azurite and cosmosdb-server: while a suppression of a
rule and group is active, its matches are recorded (ledger) and counted on it, and open, grow and notify
nothing; a redelivered batch counts once; other groups alert as usual; after expiry (or removal)
alerting is as before."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from shared.alerts.suppressions import new_suppression, suppression_id
from shared.platform.clock import utc_iso
from tests.integration.test_alert_service import START, Harness, _deletions, _ga, _stable

RULE = "entra.global-admin-added"
ACTOR = "attacker@contoso.com"


@pytest.fixture
def h(app_environment: dict[str, str]) -> Harness:
    return Harness(group_hours=5)


def _suppress(h: Harness, alert: dict[str, Any], hours: float) -> dict[str, Any]:
    """Suppress the alert's rule and group from now for `hours`, through the store the API uses."""
    now = h.clock.now()
    document = new_suppression(alert, "change window", now + dt.timedelta(hours=hours), "root", now, None)
    return h.store.suppressions.put(document, None)


def _suppression(h: Harness, alert: dict[str, Any]) -> dict[str, Any]:
    found = h.store.suppressions.get(h.tenant, suppression_id(h.tenant, RULE, alert["group_key"]))
    assert found is not None
    return found


def _ledger_count(h: Harness, alert: dict[str, Any]) -> int:
    return h.ledger.count_between(
        h.tenant, RULE, alert["group_key"], utc_iso(START), utc_iso(START + dt.timedelta(days=1))
    )


def test_a_suppressed_group_opens_grows_and_notifies_nothing_and_its_matches_are_counted(h: Harness) -> None:
    h.service.process(h.message([_ga(h, 0)]))
    [alert] = h.alerts(RULE)
    h.mark_sent(alert["id"])
    [alert] = h.alerts(RULE)
    _suppress(h, alert, hours=2)

    during = [_ga(h, 5), _ga(h, 6)]  # within the alert's window: would grow it
    other = _ga(h, 7, actor="someone-else@contoso.com")  # another group of the same rule
    report = h.service.process(h.message([*during, other]))

    alerts = h.alerts(RULE)
    assert len(alerts) == 2
    [same] = [a for a in alerts if a["id"] == alert["id"]]
    [opened] = [a for a in alerts if a["id"] != alert["id"]]
    assert _stable(same) == _stable(alert)  # not grown, not touched
    assert opened["group"] == {"actor.upn|actor.id": "someone-else@contoso.com"}
    assert report.created == [opened["id"]]
    assert report.suppressed == 2
    assert len(report.notify_messages) == 2  # the other group's two channels only
    assert all(opened["id"] in m for m in report.notify_messages)

    suppression = _suppression(h, alert)
    assert suppression["matches"] == 2
    assert suppression["last_match_at"] == during[1]["timestamp"]
    assert sorted(suppression["match_ids"]) == sorted(e["id"] for e in during)
    assert _ledger_count(h, alert) == 3  # the matches are recorded all the same

    later = h.service.process(h.message([_ga(h, 400)]))  # a new window: would open a second alert
    assert (later.created, later.notify_messages, later.suppressed) == ([], [], 1)
    assert len(h.alerts(RULE)) == 2
    assert _suppression(h, alert)["matches"] == 3


def test_a_redelivered_batch_is_counted_once(h: Harness) -> None:
    h.service.process(h.message([_ga(h, 0)]))
    [alert] = h.alerts(RULE)
    _suppress(h, alert, hours=1)
    batch = h.message([_ga(h, 10), _ga(h, 11), _ga(h, 12)])
    h.service.process(batch)
    counted = _suppression(h, alert)
    again = h.service.process(batch)
    assert again.suppressed == 3
    after = _suppression(h, alert)
    assert after["matches"] == 3
    assert after["_etag"] == counted["_etag"]  # nothing new: not even written
    assert [a["id"] for a in h.alerts(RULE)] == [alert["id"]]


def test_after_expiry_alerting_is_as_before(h: Harness) -> None:
    h.service.process(h.message([_ga(h, 0)]))
    [alert] = h.alerts(RULE)
    h.mark_sent(alert["id"])
    _suppress(h, alert, hours=1)
    h.service.process(h.message([_ga(h, 20)]))
    assert h.alerts(RULE)[0]["occurrences"] == 1

    h.clock.advance(3600)  # the suppression has expired
    grown = h.service.process(h.message([_ga(h, 40)]))
    assert grown.suppressed == 0
    assert grown.updated == [alert["id"]]
    [same] = h.alerts(RULE)
    assert same["occurrences"] == 3  # recounted from the ledger over its span, the suppressed match too
    opened = h.service.process(h.message([_ga(h, 400)]))  # past the window: a new alert, notified
    assert len(opened.created) == 1
    assert len(opened.notify_messages) == 2
    assert len(h.alerts(RULE)) == 2
    assert _suppression(h, alert)["matches"] == 1  # nothing counted after expiry


def test_a_removed_suppression_no_longer_holds(h: Harness) -> None:
    h.service.process(h.message([_ga(h, 0)]))
    [alert] = h.alerts(RULE)
    stored = _suppress(h, alert, hours=5)
    h.store.suppressions.delete(h.tenant, stored["id"], stored["_etag"])
    report = h.service.process(h.message([_ga(h, 400)]))
    assert (len(report.created), report.suppressed) == (1, 0)


def test_a_suppressed_threshold_rule_counts_every_match_and_fires_nothing(h: Harness) -> None:
    events = _deletions(h, 12, 20, "cleaner@contoso.com")  # 12 within 4 minutes: the threshold is 10
    now = h.clock.now()
    origin: dict[str, Any] = {
        "id": "alert-" + "c" * 40,  # an earlier alert of this rule and group, as the console shows it
        "pk": h.tenant,
        "rule_id": "entra.bulk-user-deletion",
        "title": "Bulk user deletion",
        "group_key": "actor.upn|actor.id=cleaner@contoso.com",
        "group": {"actor.upn|actor.id": "cleaner@contoso.com"},
        "sample": {"service": "Directory", "operation": "Delete user"},
    }
    h.store.suppressions.put(
        new_suppression(origin, "migration", now + dt.timedelta(hours=1), "root", now, None), None
    )
    report = h.service.process(h.message(events))
    assert (report.created, report.notify_messages, report.suppressed) == ([], [], 12)
    assert h.alerts("entra.bulk-user-deletion") == []
    identifier = suppression_id(h.tenant, "entra.bulk-user-deletion", origin["group_key"])
    found = h.store.suppressions.get(h.tenant, identifier)
    assert found is not None
    assert found["matches"] == 12
