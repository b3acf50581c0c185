"""A catastrophic-backtracking rule regex on the alert worker's path (issue 13, finding 5), against real
Azurite and cosmosdb-server: the rule is saved in the override blob as an Admin's PUT leaves it, the
events are stored, and AlertService.process evaluates them as the `evaluate_alerts` function does.
A rule file with a regex RE2 cannot run is refused when it loads, naming the rule and field, and the
rules in force keep alerting."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from azure.storage.blob import ContainerClient

from shared.alerts.ledger import MatchLedger
from shared.alerts.service import AlertService
from shared.alerts.store import AlertStore
from shared.ingestion.event_store import EventStore
from shared.ingestion.messages import AlertWorkMessage, EventRef
from shared.platform.clients import get_clients
from shared.platform.resources import CosmosContainers, Tables
from shared.rules.engine import BusinessHours
from shared.rules.source import RULES_BLOB, RuleSource, blob_reader
from tests.support.audit_records import normalized, role_assignment_record
from tests.support.clock import ManualClock

START = dt.datetime(2026, 11, 18, 10, 0, tzinfo=dt.UTC)
RULE_ID = "custom.plain-member-name"
CATASTROPHIC = r"^(\w+\s?)+$"  # exponential under `re`: 1.8 s on 24 characters, 4x per 2 more
HOSTILE_NAME = "a" * 5000 + "!"


def rule_file(regex: str, rule_id: str = RULE_ID) -> str:
    document = {
        "version": 1,
        "rules": [
            {
                "id": rule_id,
                "title": "Role given to a plainly named member",
                "description": "A role assignment whose member's display name is words only.",
                "severity": "medium",
                "group_by": ["targets[].id"],
                "when": {
                    "all": [
                        {"field": "operation", "eq": "Add member to role"},
                        {
                            "some": "targets[]",
                            "where": {
                                "all": [
                                    {"field": "type", "eq": "User"},
                                    {"field": "display", "regex": regex},
                                ]
                            },
                        },
                    ]
                },
            }
        ],
    }
    return yaml.safe_dump(document, sort_keys=False)


class Harness:
    def __init__(self, config: ContainerClient) -> None:
        clients = get_clients()
        self.config = config
        self.tenant = f"tenant-{uuid.uuid4().hex[:10]}"
        self.clock = ManualClock(START + dt.timedelta(minutes=30))
        events = clients.cosmos_container(CosmosContainers.EVENTS.name)
        self.events = EventStore(events, clients.cosmos_container(CosmosContainers.FACETS.name), 8)
        self.alert_container = clients.cosmos_container(CosmosContainers.ALERTS.name)
        self.rules = RuleSource(
            BusinessHours.parse("00:00-24:00", "Mon-Sun", "UTC"),
            self.clock,
            override=blob_reader(config),
            ttl_seconds=0,
        )
        self.service = AlertService(
            events,
            AlertStore(self.alert_container),
            MatchLedger(clients.table(Tables.ALERT_MATCHES)),
            self.rules,
            self.clock,
            channels=[],
        )

    def save_rules(self, text: str) -> None:
        self.config.upload_blob(RULES_BLOB, text.encode("utf-8"), overwrite=True)

    def member_added(self, display: str, minutes: float) -> dict[str, Any]:
        record = role_assignment_record(
            START + dt.timedelta(minutes=minutes), "ana@contoso.com", f"m{uuid.uuid4().hex[:6]}@contoso.com"
        )
        record["targetResources"][0]["displayName"] = display
        return normalized(record, self.tenant)

    def process(self, documents: list[dict[str, Any]]) -> Any:
        self.events.write_events(documents)
        refs = [EventRef(id=d["id"], pk=d["pk"]) for d in documents]
        return self.service.process(
            AlertWorkMessage(source="entra_audit", blob="raw/test.jsonl", run_id="run", events=refs)
        )

    def alerts(self) -> list[dict[str, Any]]:
        return list(
            self.alert_container.query_items(
                "SELECT * FROM c WHERE c.pk = @pk AND c.rule_id = @rule",
                parameters=[{"name": "@pk", "value": self.tenant}, {"name": "@rule", "value": RULE_ID}],
                partition_key=self.tenant,
            )
        )


@pytest.fixture
def harness(app_environment: dict[str, str]) -> Iterator[Harness]:
    config = get_clients().blob_service.create_container(f"config-{uuid.uuid4().hex[:12]}")
    yield Harness(config)
    config.delete_container()


@pytest.mark.timeout(120)  # a hang guard (it includes starting the services), not a latency assertion
def test_a_catastrophic_rule_regex_does_not_stall_the_alert_worker(harness: Harness) -> None:
    harness.save_rules(rule_file(CATASTROPHIC))
    hostile = [harness.member_added(HOSTILE_NAME, minute) for minute in range(5)]
    plain = harness.member_added("Adele Vance", 6)

    report = harness.process([*hostile, plain])

    assert harness.rules.last_error is None
    assert report.events == 6
    assert report.matches == 1
    [alert] = harness.alerts()
    assert report.created == [alert["id"]]
    assert alert["occurrences"] == 1
    assert alert["sample"]["event_id"] == plain["id"]


@pytest.mark.timeout(120)
def test_a_rule_file_with_a_lookahead_is_refused_and_the_rules_in_force_keep_alerting(
    harness: Harness,
) -> None:
    harness.save_rules(rule_file(CATASTROPHIC))
    assert [c.id for c in harness.rules.current().compiled] == [RULE_ID]

    harness.save_rules(rule_file(r"^(?=\w)(\w+\s?)+$", "custom.lookahead-name"))
    report = harness.process([harness.member_added(HOSTILE_NAME, 0), harness.member_added("Adele Vance", 1)])

    error = harness.rules.last_error
    assert error is not None
    assert "rule 'custom.lookahead-name': when.all[1].where.all[1].regex: " in error
    assert "lookahead (?=...) is not supported" in error
    assert [c.id for c in harness.rules.current().compiled] == [RULE_ID]
    assert report.matches == 1
    assert len(harness.alerts()) == 1
