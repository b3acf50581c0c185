"""The alert service against real Azurite and cosmosdb-server: suppression, thresholds, redelivery."""

from __future__ import annotations

import datetime as dt
import random
import uuid
from typing import Any

import pytest

from shared.alerts.ledger import MatchLedger
from shared.alerts.lifecycle import AlertUpdate, update_alert
from shared.alerts.model import AlertStatus, Classification
from shared.alerts.service import AlertService
from shared.alerts.staleness import SourceHealthCheck
from shared.alerts.store import AlertStore
from shared.ingestion.event_store import EventStore
from shared.ingestion.messages import AlertWorkMessage, EventRef
from shared.ingestion.watermarks import WatermarkStore
from shared.notify.channels import parse_channels
from shared.platform.clients import get_clients
from shared.platform.clock import parse_utc, utc_iso
from shared.platform.resources import CosmosContainers, Tables
from shared.rules.engine import BusinessHours
from shared.rules.source import RuleSource
from tests.support.audit_records import delete_user_record, normalized, role_assignment_record
from tests.support.clock import ManualClock

START = dt.datetime(2026, 11, 18, 10, 0, tzinfo=dt.UTC)  # a Wednesday, within business hours
CHANNELS = parse_channels(
    '[{"name": "secops-teams", "type": "teams", "url": "https://example.invalid/teams",'
    '  "min_severity": "high"},'
    ' {"name": "secops-slack", "type": "slack", "url": "https://example.invalid/slack"},'
    ' {"name": "critical-only", "type": "webhook", "url": "https://example.invalid/hook",'
    '  "min_severity": "critical", "rules": ["entra.bulk-user-deletion"]}]'
)


class Harness:
    def __init__(self, group_hours: float | None = None) -> None:
        clients = get_clients()
        self.tenant = f"tenant-{uuid.uuid4().hex[:10]}"
        self.clock = ManualClock(START + dt.timedelta(minutes=30))
        events = clients.cosmos_container(CosmosContainers.EVENTS.name)
        self.events = EventStore(events, clients.cosmos_container(CosmosContainers.FACETS.name), 8)
        self.store = AlertStore(clients.cosmos_container(CosmosContainers.ALERTS.name))
        self.ledger = MatchLedger(clients.table(Tables.ALERT_MATCHES))
        rules = RuleSource(BusinessHours.parse("00:00-24:00", "Mon-Sun", "UTC"), self.clock)
        self.service = AlertService(
            events,
            self.store,
            self.ledger,
            rules,
            self.clock,
            channels=CHANNELS,
            dedupe_minutes=15,
            group_hours=group_hours,
        )

    def message(self, documents: list[dict[str, Any]]) -> AlertWorkMessage:
        self.events.write_events(documents)
        refs = [EventRef(id=d["id"], pk=d["pk"]) for d in documents]
        return AlertWorkMessage(source="entra_audit", blob="raw/test.jsonl", run_id="run", events=refs)

    def alerts(self, rule_id: str) -> list[dict[str, Any]]:
        container = get_clients().cosmos_container(CosmosContainers.ALERTS.name)
        return list(
            container.query_items(
                "SELECT * FROM c WHERE c.pk = @pk AND c.type = 'alert' AND c.rule_id = @rule",
                parameters=[{"name": "@pk", "value": self.tenant}, {"name": "@rule", "value": rule_id}],
                partition_key=self.tenant,
            )
        )

    def mark_sent(self, alert_id: str) -> None:
        def mutate(alert: dict[str, Any]) -> bool:
            for delivery in alert["deliveries"].values():
                delivery["status"] = "sent"
            return True

        self.store.update(self.tenant, alert_id, mutate)


@pytest.fixture
def harness(app_environment: dict[str, str]) -> Harness:
    return Harness()


def _ga(h: Harness, minutes: float, actor: str = "attacker@contoso.com") -> dict[str, Any]:
    moment = START + dt.timedelta(minutes=minutes)
    return normalized(role_assignment_record(moment, actor, f"u{uuid.uuid4().hex[:6]}@contoso.com"), h.tenant)


def _stable(alert: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in alert.items() if not k.startswith("_")}


def test_one_alert_per_incident_with_suppression_and_redelivery(harness: Harness) -> None:
    first = harness.message([_ga(harness, 0)])
    report = harness.service.process(first)

    [alert] = harness.alerts("entra.global-admin-added")
    assert report.created == [alert["id"]]
    assert alert["occurrences"] == 1
    assert alert["severity"] == "critical"
    assert alert["status"] == "open"
    assert alert["group"] == {"actor.upn|actor.id": "attacker@contoso.com"}
    assert alert["sample"]["operation"] == "Add member to role"
    assert harness.alerts("entra.admin-role-assigned") == []  # the specific rule wins
    # critical passes Teams (min high) and Slack (min medium); the webhook only wants bulk deletion
    assert sorted(alert["deliveries"]) == ["secops-slack", "secops-teams"]
    assert len(report.notify_messages) == 2

    before = _stable(alert)
    harness.service.process(first)  # at-least-once delivery of the same batch
    [again] = harness.alerts("entra.global-admin-added")
    assert _stable(again) == before

    harness.mark_sent(alert["id"])
    more = harness.message([_ga(harness, 1 + i * 0.5) for i in range(20)])
    harness.clock.advance(60)
    report = harness.service.process(more)
    [grown] = harness.alerts("entra.global-admin-added")
    assert grown["id"] == alert["id"]
    assert grown["occurrences"] == 21
    assert grown["last_seen"] > alert["last_seen"]
    assert report.created == []
    assert report.notify_messages == []

    harness.service.process(more)
    assert harness.alerts("entra.global-admin-added")[0]["occurrences"] == 21


def test_a_match_after_the_suppression_window_opens_a_new_alert(harness: Harness) -> None:
    harness.service.process(harness.message([_ga(harness, 0)]))
    harness.service.process(harness.message([_ga(harness, 40)]))  # 40 minutes later: 15-minute window
    alerts = harness.alerts("entra.global-admin-added")
    assert len(alerts) == 2
    assert {a["occurrences"] for a in alerts} == {1}


def test_an_acknowledged_alert_still_absorbs_the_incident(harness: Harness) -> None:
    harness.service.process(harness.message([_ga(harness, 0)]))
    [alert] = harness.alerts("entra.global-admin-added")
    update = AlertUpdate(
        status=AlertStatus.ACKNOWLEDGED, classification=Classification.TRUE_POSITIVE, comment="on it"
    )
    update_alert(harness.store, harness.clock, harness.tenant, alert["id"], update, "ana@contoso.com")

    harness.service.process(harness.message([_ga(harness, 5)]))
    [grown] = harness.alerts("entra.global-admin-added")
    assert grown["occurrences"] == 2
    assert grown["status"] == "acknowledged"
    assert grown["classification"] == "true_positive"
    assert grown["status_changed_by"] == "ana@contoso.com"
    assert [h["action"] for h in grown["history"]] == ["created", "status", "classification", "comment"]


def test_a_resolved_alert_no_longer_suppresses(harness: Harness) -> None:
    first = _ga(harness, 0)
    harness.service.process(harness.message([first]))
    [alert] = harness.alerts("entra.global-admin-added")

    update_alert(
        harness.store,
        harness.clock,
        harness.tenant,
        alert["id"],
        AlertUpdate(status=AlertStatus.RESOLVED),
        "ana",
    )
    # The same event again (a redelivered batch, or the next poll's overlap window) is not a new incident.
    replay = harness.service.process(harness.message([first]))
    assert (replay.created, replay.notify_messages) == ([], [])
    assert [a["id"] for a in harness.alerts("entra.global-admin-added")] == [alert["id"]]

    report = harness.service.process(harness.message([first, _ga(harness, 2)]))  # same time bucket
    alerts = harness.alerts("entra.global-admin-added")
    assert len(alerts) == 2
    assert report.created
    assert report.created[0] != alert["id"]
    assert len(report.notify_messages) == 2
    reopened = next(a for a in alerts if a["id"] != alert["id"])
    assert reopened["generation"] == 1
    assert reopened["status"] == "open"
    assert reopened["occurrences"] == 1
    assert first["id"] not in {ref["id"] for ref in reopened["events"]}


def _deletions(h: Harness, count: int, spacing_seconds: float, actor: str) -> list[dict[str, Any]]:
    return [
        normalized(
            delete_user_record(
                START + dt.timedelta(seconds=i * spacing_seconds),
                actor,
                f"d{i}-{uuid.uuid4().hex[:4]}@contoso.com",
            ),
            h.tenant,
        )
        for i in range(count)
    ]


@pytest.mark.parametrize("order", ["in_order", "shuffled"])
def test_bulk_deletion_fires_on_the_tenth_not_the_ninth(harness: Harness, order: str) -> None:
    events = _deletions(harness, 10, 50, "cleaner@contoso.com")  # 10 within 7.5 minutes
    if order == "shuffled":
        random.Random(7).shuffle(events)  # noqa: S311 - a fixed test order
    batches = [events[0:3], events[3:6], events[6:9], events[9:10]]
    for batch in batches[:3]:
        harness.service.process(harness.message(batch))
    assert harness.alerts("entra.bulk-user-deletion") == []  # nine so far

    report = harness.service.process(harness.message(batches[3]))
    [alert] = harness.alerts("entra.bulk-user-deletion")
    assert report.created == [alert["id"]]
    assert alert["occurrences"] == 10
    assert alert["threshold"] == {"count": 10, "window_minutes": 10.0}
    assert sorted(e["id"] for e in alert["events"]) == sorted(e["id"] for e in events)
    assert set(alert["deliveries"]) == {"secops-teams", "secops-slack"}

    for batch in batches:  # the whole run redelivered, in another order
        harness.service.process(harness.message(batch))
    [same] = harness.alerts("entra.bulk-user-deletion")
    assert _stable(same) == _stable(alert)


def test_bulk_deletion_needs_the_ten_within_the_window(harness: Harness) -> None:
    spread = _deletions(harness, 10, 70, "slow@contoso.com")  # 10 over 10.5 minutes
    random.Random(3).shuffle(spread)  # noqa: S311 - a fixed test order
    for i in range(0, 10, 4):
        harness.service.process(harness.message(spread[i : i + 4]))
    assert harness.alerts("entra.bulk-user-deletion") == []


def test_thresholds_count_per_actor(harness: Harness) -> None:
    mixed = _deletions(harness, 5, 10, "one@contoso.com") + _deletions(harness, 5, 10, "two@contoso.com")
    harness.service.process(harness.message(mixed))
    assert harness.alerts("entra.bulk-user-deletion") == []


def test_a_stale_source_raises_one_alert_per_outage(harness: Harness) -> None:
    watermarks = WatermarkStore(get_clients().table(Tables.WATERMARKS), harness.tenant)
    watermarks.advance("entra_audit", START, "run-1", 5, START)
    recent = START + dt.timedelta(minutes=29)
    watermarks.advance("intune_audit", recent, "run-1", 5, recent)
    check = SourceHealthCheck(
        watermarks,
        harness.service,
        harness.ledger,
        harness.clock,
        enabled_sources={"entra_audit", "intune_audit"},
        tenant_id=harness.tenant,
        poll_interval_seconds=300,
    )
    first = check.run()
    harness.clock.advance(300)
    second = check.run()

    [alert] = harness.alerts("aoc.source-stale")
    assert alert["group"] == {"targets[].id": "entra_audit"}
    assert alert["occurrences"] == 1
    assert first.created == [alert["id"]]
    assert second.created == []


def test_a_large_burst_is_counted_exactly_and_keeps_bounded_evidence(harness: Harness) -> None:
    burst = [_ga(harness, i * 0.05) for i in range(150)]  # more rows than one Table transaction holds
    harness.service.process(harness.message(burst))
    harness.service.process(harness.message(burst[:120]))
    [alert] = harness.alerts("entra.global-admin-added")
    assert alert["occurrences"] == 150
    assert len(alert["events"]) == 100
    assert alert["events"][0]["timestamp"] == alert["first_seen"]


# -- grouping windows (ALERT_GROUP_HOURS) ---------------------------------------------------------------


@pytest.fixture
def grouping(app_environment: dict[str, str]) -> Harness:
    return Harness(group_hours=5)


def test_matches_within_five_hours_of_the_first_join_one_alert(grouping: Harness) -> None:
    h = grouping
    for minutes in (0, 40, 120, 299):  # far apart for a 15-minute suppression, within 5 hours
        h.service.process(h.message([_ga(h, minutes)]))
    [alert] = h.alerts("entra.global-admin-added")
    assert alert["occurrences"] == 4
    h.service.process(h.message([_ga(h, 301)]))  # past the window measured from the first match
    alerts = sorted(h.alerts("entra.global-admin-added"), key=lambda a: a["first_seen"])
    assert [a["occurrences"] for a in alerts] == [4, 1]
    assert alerts[0]["id"] == alert["id"]


def test_an_earlier_match_arriving_later_joins_the_alert_of_its_window(grouping: Harness) -> None:
    h = grouping
    h.service.process(h.message([_ga(h, 180)]))
    h.service.process(h.message([_ga(h, 0)]))  # out of order: three hours earlier, same window
    [alert] = h.alerts("entra.global-admin-added")
    assert alert["occurrences"] == 2
    assert alert["first_seen"] == utc_iso(START)


def test_late_earlier_matches_keep_the_first_matches_of_alerts_a_window_apart(grouping: Harness) -> None:
    """Out of order, batch by batch: each late match joins the alert whose first match is within five
    hours of it, and no second alert of the group starts within five hours of another's first match."""
    h = grouping
    for minutes in (600, 360, 120):  # 10:00, then 06:00 (joins, becomes first), then 02:00 (joins too)
        h.service.process(h.message([_ga(h, minutes)]))
    [alert] = h.alerts("entra.global-admin-added")
    assert alert["occurrences"] == 3
    assert alert["first_seen"] == utc_iso(START + dt.timedelta(minutes=120))
    h.service.process(h.message([_ga(h, 400)]))  # 06:40 lies within five hours of 02:00: joins
    h.service.process(h.message([_ga(h, 720)]))  # 12:00 is ten hours after 02:00: a new alert
    alerts = sorted(h.alerts("entra.global-admin-added"), key=lambda a: a["first_seen"])
    assert [a["occurrences"] for a in alerts] == [4, 1]
    assert alerts[0]["id"] == alert["id"]
    firsts = [parse_utc(a["first_seen"]) for a in alerts]
    assert firsts[1] - firsts[0] >= dt.timedelta(hours=5)


def test_a_redelivered_batch_changes_nothing_with_grouping(grouping: Harness) -> None:
    h = grouping
    batch = h.message([_ga(h, m) for m in (0, 90, 200)])
    h.service.process(batch)
    [before] = h.alerts("entra.global-admin-added")
    h.service.process(batch)
    [after] = h.alerts("entra.global-admin-added")
    assert _stable(after) == _stable(before)
    assert after["occurrences"] == 3


def test_a_resolved_alert_does_not_absorb_its_window(grouping: Harness) -> None:
    h = grouping
    h.service.process(h.message([_ga(h, 0)]))
    [alert] = h.alerts("entra.global-admin-added")
    update_alert(
        h.store, h.clock, h.tenant, alert["id"], AlertUpdate(status=AlertStatus.RESOLVED), "ana@x.com"
    )
    h.service.process(h.message([_ga(h, 30)]))
    alerts = h.alerts("entra.global-admin-added")
    assert len(alerts) == 2
    assert {a["status"] for a in alerts} == {"resolved", "open"}
