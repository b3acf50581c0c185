"""Findings become events for the rule engine (shared/governance/alerting.py): one canonical event per
finding an evaluation opened, with a deterministic id, that the default governance rules match one to
one; nothing for findings already open, accepted, or for a redelivered evaluation beyond the same ids.

The object is evaluated by the real GovernanceService over in-memory stores with the shipped validators,
and the events are matched by the shipped rule pack; the event store and the alert service are recorded
in memory (tests/integration/test_governance_alerting.py runs the real ones)."""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Iterable
from typing import Any

import pytest
import yaml

from shared.alerts.service import AlertReport
from shared.governance.alerting import (
    FINDING_OPERATION,
    GOVERNANCE_SOURCE,
    FindingAlerts,
    finding_event,
    finding_event_id,
)
from shared.governance.config import load_default_validators
from shared.governance.messages import evaluation_id
from shared.governance.model import GovernedObject
from shared.governance.service import Actor, GovernanceService
from shared.ingestion.events import Event, partition_key
from shared.platform.ids import is_event_id
from shared.rules.engine import BusinessHours, RuleSet
from shared.rules.model import parse_rule_file
from shared.rules.source import DEFAULT_RULES_FILE
from tests.support.clock import ManualClock
from tests.support.governance_memory import (
    MemoryActivityStore,
    MemoryAudit,
    MemoryClaims,
    MemoryGovernanceStore,
)
from tests.unit.test_governance_model import MEMBER_OF, app_with, graph_object, sp_with

TENANT = "41463f53-8812-40f4-890f-865bf6e35190"
GRAPH = "https://graph.microsoft.com"
# The service principal's own secret ends 2027-03-01: 9 days left, inside the 14-day window. A Saturday:
# outside the business hours below, so the pack's after-hours rule gets its chance to match, and must not.
NOW = dt.datetime(2027, 2, 20, 9, 30, tzinfo=dt.UTC)
RULES = RuleSet(
    parse_rule_file(yaml.safe_load(DEFAULT_RULES_FILE.read_text(encoding="utf-8"))),
    BusinessHours.parse("08:00-18:00", "Mon-Fri", "Europe/London"),
)
UNVERIFIED = {"displayName": None, "verifiedPublisherId": None, "addedDateTime": None}
# The rule each validator's findings raise; notes-lists-owners is remediated, not alerted on.
RULE_OF = {
    "high-privilege-permission": "governance.high-privilege-permission",
    "credential-expiry": "governance.credential-expiring",
    "ownerless": "governance.ownerless-app",
    "secret-with-privileged-role": "governance.secret-with-privileged-role",
    "unverified-multitenant": "governance.unverified-multitenant-app",
    "notes-lists-owners": None,
}


def failing() -> GovernedObject:
    """No owner, Mail.ReadWrite granted, Application Administrator with a client secret that ends in 9
    days, multi-tenant from an unverified publisher."""
    return graph_object(
        owners=[],
        application_owners=[],
        member_of=copy.deepcopy(MEMBER_OF["value"]),
        application=app_with(signInAudience="AzureADMultipleOrgs", verifiedPublisher=UNVERIFIED),
    )


class RecordedEvents:
    """The event store's contract: upsert by id, the new ones returned."""

    def __init__(self) -> None:
        self.documents: dict[str, dict[str, Any]] = {}
        self.writes = 0
        self.facets: dict[str, int] = {}  # source -> events counted

    def write_events(self, documents: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        new = []
        for document in documents:
            self.writes += 1
            if document["id"] not in self.documents:
                new.append(document)
            self.documents[document["id"]] = copy.deepcopy(document)
        return new

    def update_facets(
        self,
        tenant_id: str,
        new: list[dict[str, Any]],
        existing: list[dict[str, Any]],
        seen_at: str,
        shard_key: str,
    ) -> None:
        for document in new:
            assert document["tenant_id"] == tenant_id
            self.facets[document["source"]] = self.facets.get(document["source"], 0) + 1
        for document in existing:
            self.facets.setdefault(document["source"], 0)


class RuleMatches:
    """The alert service's contract, as far as publishing goes: the shipped rules match the events, and
    each match is reported as a notify message `{rule id}|{event id}`."""

    def __init__(self) -> None:
        self.batches: list[list[dict[str, Any]]] = []

    def evaluate(self, events: list[dict[str, Any]]) -> AlertReport:
        self.batches.append(events)
        report = AlertReport(events=len(events))
        for event in events:
            for compiled in RULES.match(event):
                report.matches += 1
                report.notify_messages.append(f"{compiled.id}|{event['id']}")
        return report


class World:
    def __init__(self) -> None:
        self.store = MemoryGovernanceStore()
        self.service = GovernanceService(
            self.store,
            MemoryActivityStore(),
            MemoryAudit(),
            MemoryClaims(),
            None,
            load_default_validators(),
            mode="ReportOnly",
            graph_base=GRAPH,
        )
        self.clock = ManualClock(NOW)
        self.events = RecordedEvents()
        self.alerts = RuleMatches()
        self.publisher = FindingAlerts(self.events, self.alerts, self.clock)

    def evaluate(self, obj: GovernedObject, cause: str) -> Any:
        return self.service.evaluate(
            TENANT, obj, self.clock.now(), evaluation_id=evaluation_id(TENANT, obj.id, cause)
        )


@pytest.fixture
def world() -> World:
    return World()


def test_each_opened_finding_is_one_event_matched_by_its_validators_rule(world: World) -> None:
    obj = failing()
    outcome = world.evaluate(obj, "first")
    assert sorted(f.validator_id for f in outcome.opened) == sorted(RULE_OF)

    messages = world.publisher.publish(outcome, obj)

    assert len(world.events.documents) == len(outcome.opened)
    assert world.alerts.batches == [list(world.events.documents.values())]
    expected = sorted(
        f"{RULE_OF[f.validator_id]}|{finding_event_id(f)}" for f in outcome.opened if RULE_OF[f.validator_id]
    )
    assert NOW.weekday() == 5
    assert sorted(messages) == expected  # one rule per finding, and no other rule of the pack
    for finding in outcome.opened:
        event = world.events.documents[finding_event_id(finding)]
        Event.model_validate(event)
        assert is_event_id(event["id"])
        assert event["source"] == GOVERNANCE_SOURCE
        assert event["service"] == "Directory"
        assert event["operation"] == FINDING_OPERATION
        assert event["tenant_id"] == TENANT
        assert event["timestamp"] == finding.opened_at == "2027-02-20T09:30:00.000Z"
        assert event["pk"] == partition_key(TENANT, finding.opened_at) == f"{TENANT}:2027-02"
        assert event["actor"]["type"] == "system"
        [target] = event["targets"]
        assert (target["type"], target["id"], target["display"]) == (
            "ServicePrincipal",
            obj.id,
            obj.display_name,
        )
        governance = event["governance"]
        assert governance["finding_id"] == finding.id
        assert governance["validator_id"] == finding.validator_id
        assert governance["severity"] == finding.severity
        assert governance["subject"] == finding.subject
        assert governance["evidence"] == finding.evidence
        assert governance["object_id"] == obj.id
        assert governance["links"]["api"] == f"/api/governance/objects/{obj.id}"
        assert finding.message in event["summary"]


def test_the_high_privilege_event_carries_the_permission_for_rules_and_notifications(world: World) -> None:
    obj = failing()
    outcome = world.evaluate(obj, "first")
    world.publisher.publish(outcome, obj)
    [event] = [
        e
        for e in world.events.documents.values()
        if e["governance"]["validator_id"] == "high-privilege-permission"
    ]
    assert event["governance"]["evidence"]["permission"] == "Mail.ReadWrite"
    assert event["governance"]["severity"] == "critical"
    assert event["targets"][0]["modified_properties"][0] == {
        "name": "validator",
        "old": None,
        "new": "high-privilege-permission",
    }


def test_findings_still_open_at_the_next_evaluation_publish_nothing(world: World) -> None:
    obj = failing()
    world.publisher.publish(world.evaluate(obj, "first"), obj)
    world.clock.advance(1800)
    later = world.evaluate(obj, "second")
    assert later.status == "evaluated"
    assert later.opened == ()
    assert world.publisher.publish(later, obj) == []
    assert len(world.alerts.batches) == 1  # the alert service was not even called


def test_a_redelivered_evaluation_publishes_the_same_event_ids(world: World) -> None:
    obj = failing()
    first = world.publisher.publish(world.evaluate(obj, "first"), obj)
    ids = set(world.events.documents)
    world.clock.advance(60)  # the redelivery arrives later; the event times stay the finding's
    again = world.evaluate(obj, "first")
    assert again.status == "duplicate"
    second = world.publisher.publish(again, obj)
    assert set(world.events.documents) == ids
    assert sorted(second) == sorted(first)
    assert world.events.facets == {GOVERNANCE_SOURCE: len(ids)}  # counted once
    assert all(e["timestamp"] == "2027-02-20T09:30:00.000Z" for e in world.events.documents.values())


def test_a_finding_resolved_and_found_again_is_a_new_event(world: World) -> None:
    obj = failing()
    world.publisher.publish(world.evaluate(obj, "first"), obj)
    fixed = graph_object(
        owners=[],
        application_owners=[],
        member_of=copy.deepcopy(MEMBER_OF["value"]),
        application=app_with(signInAudience="AzureADMyOrg", verifiedPublisher=UNVERIFIED),
    )
    world.clock.advance(3600)
    assert world.evaluate(fixed, "fixed").resolved
    world.clock.advance(3600)
    reopened = world.evaluate(obj, "broken-again")
    [finding] = reopened.opened
    assert finding.validator_id == "unverified-multitenant"
    messages = world.publisher.publish(reopened, obj)
    assert messages == [f"governance.unverified-multitenant-app|{finding_event_id(finding)}"]
    same_finding = [e for e in world.events.documents.values() if e["governance"]["finding_id"] == finding.id]
    assert sorted(e["timestamp"] for e in same_finding) == [
        "2027-02-20T09:30:00.000Z",
        "2027-02-20T11:30:00.000Z",
    ]


def test_a_finding_opened_under_an_accepted_risk_is_not_published(world: World) -> None:
    obj = failing()
    world.evaluate(graph_object(sp=sp_with(id=obj.id), assignments=[]), "before the grant")
    world.service.accept_risk(
        TENANT,
        obj.id,
        "high-privilege-permission",
        reason="the mail archiver needs it; reviewed by the CISO",
        expires_at=NOW + dt.timedelta(days=90),
        by=Actor(name="ciso@contoso.com", id="oid-ciso", auth="entra"),
        now=NOW,
    )
    outcome = world.evaluate(obj, "first")
    accepted = [f for f in outcome.opened if f.state == "accepted"]
    assert [f.validator_id for f in accepted] == ["high-privilege-permission"]
    messages = world.publisher.publish(outcome, obj)
    assert {f"{e['governance']['validator_id']}" for e in world.events.documents.values()} == {
        f.validator_id for f in outcome.opened if f.state == "open"
    }
    assert not [m for m in messages if m.startswith("governance.high-privilege-permission|")]


def test_an_outcome_of_another_object_is_refused(world: World) -> None:
    obj = failing()
    outcome = world.evaluate(obj, "first")
    other = graph_object(sp=sp_with(id="99999999-9999-4999-8999-999999999999"), assignments=[])
    with pytest.raises(ValueError, match="is not the outcome's"):
        world.publisher.publish(outcome, other)
    assert world.events.writes == 0


def test_the_event_id_is_the_finding_and_its_opening_time() -> None:
    obj = failing()
    world = World()
    [finding, *_] = world.evaluate(obj, "first").opened
    event = finding_event(finding, obj, NOW)
    assert event["id"] == f"aoc_governance:{finding.id}-20270220093000000"
    assert finding_event(finding, obj, NOW + dt.timedelta(hours=1))["id"] == event["id"]
