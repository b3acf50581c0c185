"""Governance findings to alerts against cosmosdb-server and Azurite: a failing service principal is
evaluated by GovernanceService over the Cosmos stores, its opened findings are published
(shared/governance/alerting.py) into the events container and through the real AlertService with the
shipped rules, and the test finds one alert per governance rule, the notify messages of the configured
channels, nothing more when the same outcome is published twice, and the events in the explorer's routes
(search, one event, facets, histogram, filters) although their source is not an ingestion source."""

from __future__ import annotations

import copy
import datetime as dt
import json
import uuid
from typing import Any

import pytest
from azure.cosmos import PartitionKey

from shared.alerts.ledger import MatchLedger
from shared.alerts.model import NotifyMessage
from shared.alerts.service import AlertService
from shared.alerts.store import AlertStore
from shared.api.audit import AuditLog
from shared.api.auth import Authenticator
from shared.api.events_api import EventsApi
from shared.api.events_query import EventSearch, SensitivityPolicy
from shared.api.paging import ContinuationSigner
from shared.api.responses import ApiGuard, ApiResponse
from shared.governance.alerting import GOVERNANCE_SOURCE, FindingAlerts
from shared.governance.config import load_default_validators
from shared.governance.messages import evaluation_id
from shared.governance.model import GovernedObject
from shared.governance.service import EvaluationOutcome, GovernanceService
from shared.governance.store import (
    CosmosActivityStore,
    CosmosAuditSink,
    CosmosGovernanceStore,
    TableUpdateClaims,
)
from shared.ingestion.archive import RawArchive
from shared.ingestion.event_store import EventStore
from shared.notify.channels import parse_channels
from shared.platform.clients import get_clients
from shared.platform.resources import CosmosContainers, Tables
from shared.rules.engine import BusinessHours
from shared.rules.source import RuleSource
from tests.support.clock import ManualClock
from tests.support.principals import swa_principal
from tests.unit.test_governance_model import MEMBER_OF, app_with, graph_object

# The service principal's own secret ends 2027-03-01: 9 days left, inside the 14-day window.
NOW = dt.datetime(2027, 2, 20, 9, 30, tzinfo=dt.UTC)
READER = {"x-ms-client-principal": swa_principal(["reader"])}
CHANNELS = parse_channels(
    '[{"name": "secops", "type": "webhook", "url": "https://example.invalid/hook", "min_severity": "medium"},'
    ' {"name": "pager", "type": "webhook", "url": "https://example.invalid/pager",'
    '  "min_severity": "critical", "rules": ["governance.high-privilege-permission"]}]'
)
RULE_OF_VALIDATOR = {
    "high-privilege-permission": "governance.high-privilege-permission",
    "credential-expiry": "governance.credential-expiring",
    "ownerless": "governance.ownerless-app",
    "secret-with-privileged-role": "governance.secret-with-privileged-role",
    "unverified-multitenant": "governance.unverified-multitenant-app",
}
EXPECTED_RULES = {
    "governance.high-privilege-permission": "critical",
    "governance.credential-expiring": "medium",
    "governance.ownerless-app": "medium",
    "governance.secret-with-privileged-role": "high",
    "governance.unverified-multitenant-app": "medium",
}


def failing() -> GovernedObject:
    """No owner, Mail.ReadWrite granted, Application Administrator with a client secret that ends in 9
    days, multi-tenant from an unverified publisher (tests/unit/test_governance_model.py samples)."""
    return graph_object(
        owners=[],
        application_owners=[],
        member_of=copy.deepcopy(MEMBER_OF["value"]),
        application=app_with(
            signInAudience="AzureADMultipleOrgs",
            verifiedPublisher={"displayName": None, "verifiedPublisherId": None, "addedDateTime": None},
        ),
    )


class World:
    def __init__(self) -> None:
        clients = get_clients()
        self.tenant = f"gov-{uuid.uuid4().hex[:12]}"
        self.clock = ManualClock(NOW)
        spec = CosmosContainers.EVENTS
        # Its own events container: cosmosdb-server scans a whole container per query.
        self.events = clients.cosmos_database.create_container(
            id=f"gov-alert-events-{uuid.uuid4().hex[:8]}",
            partition_key=PartitionKey(path=spec.partition_key_path),
            indexing_policy=spec.indexing_policy(),
        )
        self.store = EventStore(self.events, clients.cosmos_container(CosmosContainers.FACETS.name), 8)
        self.alerts_container = clients.cosmos_container(CosmosContainers.ALERTS.name)
        self.alerts = AlertService(
            self.events,
            AlertStore(self.alerts_container),
            MatchLedger(clients.table(Tables.ALERT_MATCHES)),
            RuleSource(BusinessHours.parse("00:00-24:00", "Mon-Sun", "UTC"), self.clock),
            self.clock,
            channels=CHANNELS,
        )
        governance = clients.cosmos_container(CosmosContainers.GOVERNANCE.name)
        audit = clients.cosmos_container(CosmosContainers.AUDIT.name)
        self.governance = GovernanceService(
            CosmosGovernanceStore(governance),
            CosmosActivityStore(governance),
            CosmosAuditSink(audit),
            TableUpdateClaims(clients.table(Tables.GOVERNANCE_UPDATES)),
            None,
            load_default_validators(),
            mode="ReportOnly",
            graph_base="https://graph.microsoft.com",
        )
        self.publisher = FindingAlerts(self.store, self.alerts, self.clock)
        guard = ApiGuard(
            Authenticator(verifier=None, swa_enabled=True, key_roles=frozenset()), SensitivityPolicy()
        )
        self.api = EventsApi(
            guard,
            self.events,
            EventSearch(self.events, ContinuationSigner(b"g" * 32), self.tenant),
            self.store,
            RawArchive(clients.blob_service),
            AuditLog(audit, self.tenant, self.clock),
            self.tenant,
            self.clock,
            export_max=1_000,
            bulk_max=100,
            time_counts=self.store.time_counts,
            retention_days=365,
        )

    def evaluate(self, obj: GovernedObject, cause: str) -> EvaluationOutcome:
        return self.governance.evaluate(
            self.tenant, obj, self.clock.now(), evaluation_id=evaluation_id(self.tenant, obj.id, cause)
        )

    def stored_alerts(self) -> list[dict[str, Any]]:
        return list(
            self.alerts_container.query_items(
                "SELECT * FROM c WHERE c.pk = @pk AND c.type = 'alert'",
                parameters=[{"name": "@pk", "value": self.tenant}],
                partition_key=self.tenant,
            )
        )

    def stored_events(self) -> list[dict[str, Any]]:
        return list(
            self.events.query_items(
                "SELECT * FROM c WHERE c.tenant_id = @t",
                parameters=[{"name": "@t", "value": self.tenant}],
                enable_cross_partition_query=True,
            )
        )

    def close(self) -> None:
        get_clients().cosmos_database.delete_container(self.events.id)


@pytest.fixture
def world(app_environment: dict[str, str]) -> Any:
    built = World()
    yield built
    built.close()


def _json(response: ApiResponse) -> Any:
    assert response.status == 200, response.body
    return json.loads(response.body)


def _stable(alert: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in alert.items() if not k.startswith("_")}


def test_a_failing_object_raises_one_alert_per_rule_notified_once_and_deduplicated(world: World) -> None:
    obj = failing()
    outcome = world.evaluate(obj, "baseline")
    assert outcome.result == "fail"
    opened = {f.validator_id for f in outcome.opened}
    assert opened == {
        "high-privilege-permission",
        "credential-expiry",
        "ownerless",
        "secret-with-privileged-role",
        "unverified-multitenant",
        "notes-lists-owners",
    }

    messages = world.publisher.publish(outcome, obj)

    alerts = world.stored_alerts()
    assert {a["rule_id"]: a["severity"] for a in alerts} == EXPECTED_RULES  # one alert per rule
    assert len(alerts) == len(EXPECTED_RULES)
    events = {e["id"]: e for e in world.stored_events()}
    assert len(events) == len(outcome.opened)  # notes-lists-owners is an event, and no rule's
    for alert in alerts:
        assert alert["occurrences"] == 1
        assert alert["group"] == {"governance.object_id": obj.id}
        [ref] = alert["events"]
        event = events[ref["id"]]
        assert event["governance"]["object_id"] == obj.id
        assert alert["sample"]["target"] == obj.display_name
        assert alert["sample"]["source"] == GOVERNANCE_SOURCE
    decoded = [NotifyMessage.model_validate_json(m) for m in messages]
    by_alert = {a["id"]: a["rule_id"] for a in alerts}
    sent = sorted((by_alert[m.alert_id], m.channel) for m in decoded)
    # every rule to secops (medium and above); the pager takes only the critical permission rule
    assert sent == sorted(
        [(rule, "secops") for rule in EXPECTED_RULES] + [("governance.high-privilege-permission", "pager")]
    )

    before = {a["id"]: _stable(a) for a in alerts}
    world.clock.advance(120)
    again = world.publisher.publish(outcome, obj)  # the evaluate message delivered twice
    after = {a["id"]: _stable(a) for a in world.stored_alerts()}
    assert after == before  # the same alerts, one occurrence each
    assert len(world.stored_events()) == len(events)
    # the still-queued notifications are handed out again; the delivery log sends each once
    assert {(m.alert_id, m.channel) for m in map(NotifyMessage.model_validate_json, again)} <= {
        (m.alert_id, m.channel) for m in decoded
    }

    duplicate = world.evaluate(obj, "baseline")  # the redelivered evaluation answers what it recorded
    assert duplicate.status == "duplicate"
    world.publisher.publish(duplicate, obj)
    assert {a["id"]: _stable(a) for a in world.stored_alerts()} == before

    world.clock.advance(1800)
    assert world.publisher.publish(world.evaluate(obj, "next-sweep"), obj) == []  # nothing newly opened
    assert len(world.stored_alerts()) == len(EXPECTED_RULES)


def test_governance_events_show_in_the_explorer_routes_with_their_own_source(world: World) -> None:
    obj = failing()
    outcome = world.evaluate(obj, "baseline")
    world.publisher.publish(outcome, obj)
    world.publisher.publish(outcome, obj)  # a redelivery counts nothing twice
    count = len(outcome.opened)
    world.clock.advance(60)  # the explorer's window ends before now

    listed = _json(world.api.list_events(f"https://h/api/events?source={GOVERNANCE_SOURCE}", READER, "/p"))
    assert len(listed["items"]) == count
    assert {e["operation"] for e in listed["items"]} == {"Governance finding opened"}
    directory = _json(world.api.list_events("https://h/api/events?service=Directory", READER, "/p"))
    assert len(directory["items"]) == count
    excluded = _json(
        world.api.list_events(f"https://h/api/events?exclude_source={GOVERNANCE_SOURCE}", READER, "/p")
    )
    assert excluded["items"] == []
    target = _json(world.api.list_events(f"https://h/api/events?target={obj.id}", READER, "/p"))
    assert len(target["items"]) == count

    event_id = listed["items"][0]["id"]
    one = _json(world.api.get_event(event_id, READER, f"/api/events/{event_id}"))
    assert one["governance"]["object_id"] == obj.id
    assert one["governance"]["links"]["api"] == f"/api/governance/objects/{obj.id}"
    assert world.api.raw(event_id, READER, "/p").status == 404  # no raw record: the app made it

    facets = _json(world.api.facets("https://h/api/events/facets", READER, "/p"))["facets"]
    assert {"value": GOVERNANCE_SOURCE, "count": count} in facets["source"]
    assert {"value": "Governance finding opened", "count": count} in facets["operation"]
    histogram = _json(
        world.api.histogram(f"https://h/api/events/histogram?source={GOVERNANCE_SOURCE}", READER, "/p")
    )
    assert sum(b["count"] for b in histogram["buckets"]) == count


def test_the_runtime_publisher_stores_alerts_and_notifies_the_configured_channel(
    app_environment: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The composition root's FindingAlerts (shared.app.runtime.governance_finding_alerts): the app's event
    store, alert service, rules and channels."""
    from shared.app import runtime
    from shared.platform.settings import get_settings

    monkeypatch.setenv(
        "ALERT_CHANNELS",
        '[{"name": "pager", "type": "webhook", "url": "https://example.invalid/pager",'
        ' "min_severity": "critical"}]',
    )
    get_settings.cache_clear()
    runtime.reset_runtime()
    try:
        publisher = runtime.governance_finding_alerts()
        assert publisher is runtime.governance_finding_alerts()  # built once
        tenant = f"gov-{uuid.uuid4().hex[:12]}"
        obj = failing()
        now = runtime.app_clock().now()
        outcome = runtime.governance_service().evaluate(
            tenant, obj, now, evaluation_id=evaluation_id(tenant, obj.id, "runtime")
        )
        messages = [NotifyMessage.model_validate_json(m) for m in publisher.publish(outcome, obj)]
        alerts = list(
            get_clients()
            .cosmos_container(CosmosContainers.ALERTS.name)
            .query_items(
                "SELECT * FROM c WHERE c.pk = @pk AND c.type = 'alert'",
                parameters=[{"name": "@pk", "value": tenant}],
                partition_key=tenant,
            )
        )
        # the app's clock is the wall clock: whether the secret is within 30 days of its end varies
        opened = {RULE_OF_VALIDATOR.get(f.validator_id) for f in outcome.opened} - {None}
        assert "governance.high-privilege-permission" in opened
        assert {a["rule_id"] for a in alerts} == opened
        critical = [a["id"] for a in alerts if a["severity"] == "critical"]
        assert [(m.alert_id, m.channel) for m in messages] == [(critical[0], "pager")]
    finally:
        get_settings.cache_clear()
        runtime.reset_runtime()
