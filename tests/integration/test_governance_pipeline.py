"""The governance pipeline (shared/governance/pipeline.py) against the tenant simulator's Graph,
cosmosdb-server and Azurite: a discovery queues one evaluation per principal on a storage queue, each
queued message is evaluated into Cosmos DB with the activities' counts; and the directory audit records
the simulator writes for a change delta does not report (an owner removed) or about an application
(a new secret) become evaluations through the ingest report (shared/app/governance_events.py).

Each test has a simulator tenant of its own (its own partition in the `governance` container) and its
own queues; expectations come from the simulator (`/_sim/apps/truth`, the audit records it wrote)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from azure.storage.queue import QueueClient, TextBase64DecodePolicy, TextBase64EncodePolicy

from devtools.simulator import TenantSimulator
from shared.app.governance_events import evaluation_messages
from shared.governance.config import load_default_validators
from shared.governance.delta_state import TableDeltaStateStore
from shared.governance.discovery import GovernanceDiscovery
from shared.governance.messages import DiscoveryRequest, EvaluateObject, activity_id
from shared.governance.pipeline import GovernancePipeline
from shared.governance.service import EvaluationOutcome, GovernanceService
from shared.governance.store import (
    CosmosActivityStore,
    CosmosAuditSink,
    CosmosGovernanceStore,
    FindingQuery,
    TableUpdateClaims,
)
from shared.ingestion.ingest import IngestReport, directory_changes
from shared.ingestion.normalize import normalize_record
from shared.m365.auth import StaticTokenProvider
from shared.m365.http_client import ApiClient
from shared.platform.clients import get_clients
from shared.platform.clock import SystemClock, utc_iso
from shared.platform.resources import CosmosContainers, Tables
from tests.support.simulator_client import GRAPH_SCOPE, client_token, simulator_at

EPOCH = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
DAY = 86_400.0


class StorageQueue:
    """pipeline.QueueSender on a queue of the test's own, base64 as the Functions host encodes."""

    def __init__(self, client: QueueClient) -> None:
        self.client = client

    def send(self, text: str) -> None:
        self.client.send_message(text)

    def take(self) -> list[str]:
        taken: list[str] = []
        while True:
            batch = list(self.client.receive_messages(messages_per_page=32, max_messages=32))
            if not batch:
                return taken
            for message in batch:
                taken.append(message.content)
                self.client.delete_message(message)


@dataclass
class Rig:
    sim: TenantSimulator
    tenant: str
    pipeline: GovernancePipeline
    evaluate_queue: StorageQueue
    update_queue: StorageQueue
    store: CosmosGovernanceStore
    activities: CosmosActivityStore
    token: str

    def evaluate_all(self) -> list[EvaluationOutcome]:
        return [
            self.pipeline.evaluate(EvaluateObject.model_validate_json(text))[0]
            for text in self.evaluate_queue.take()
        ]

    def truth(self) -> dict[str, Any]:
        response = requests.get(f"{self.sim.base_url}/_sim/apps/truth", timeout=60)
        assert response.status_code == 200, response.text
        return dict(response.json())

    def control(self, name: str, document: dict[str, Any]) -> dict[str, Any]:
        response = requests.post(f"{self.sim.base_url}/_sim/apps/{name}", json=document, timeout=30)
        assert response.status_code == 200, response.text
        return dict(response.json())

    def audit_records(self, ids: list[str]) -> list[dict[str, Any]]:
        """The directoryAudit records with these ground-truth ids (`entra_audit:` + the record's id), as
        Graph lists them."""
        ids = [i.removeprefix("entra_audit:") for i in ids]
        url: str | None = f"{self.sim.graph_base_url}/v1.0/auditLogs/directoryAudits"
        found: list[dict[str, Any]] = []
        while url:
            response = requests.get(url, headers={"Authorization": f"Bearer {self.token}"}, timeout=30)
            assert response.status_code == 200, response.text
            page = response.json()
            found += [r for r in page["value"] if r["id"] in ids]
            url = page.get("@odata.nextLink")
        return found

    def report_of(self, records: list[dict[str, Any]]) -> IngestReport:
        """What the ingest worker's report says about these records once stored."""
        documents = [
            normalize_record(
                "entra_audit", r, tenant_id=self.tenant, ingested_at=utc_iso(SystemClock().now())
            )
            for r in records
        ]
        changes = directory_changes("entra_audit", documents)
        return IngestReport(
            source="entra_audit", blob=f"entra_audit/{uuid.uuid4().hex}.jsonl.gz", records=len(records),
            stored=len(documents), new=len(documents), quarantined=0, enriched=0, alert_messages=[],
            directory_changes=changes,
        )  # fmt: skip


@pytest.fixture
def rig(app_environment: dict[str, str]) -> Iterator[Rig]:
    tenant = str(uuid.uuid4())
    sim = simulator_at(EPOCH, DAY, events_per_day=0, service_principals=60, tenant_id=tenant)
    clients = get_clients()
    queues = []
    for kind in ("evaluate", "update"):
        name = f"govpipe-{kind}-{uuid.uuid4().hex[:8]}"
        client = clients.queue_service.get_queue_client(
            name,
            message_encode_policy=TextBase64EncodePolicy(),
            message_decode_policy=TextBase64DecodePolicy(),
        )
        client.create_queue()
        queues.append(StorageQueue(client))
    delta_table = clients.table_service.create_table(f"govpipe{uuid.uuid4().hex[:12]}")
    token = client_token(sim, GRAPH_SCOPE)
    api = ApiClient(StaticTokenProvider(token), timeout=(5.0, 60.0))
    clock = SystemClock()
    container = clients.cosmos_container(CosmosContainers.GOVERNANCE.name)
    store, activities = CosmosGovernanceStore(container), CosmosActivityStore(container)
    service = GovernanceService(
        store,
        activities,
        CosmosAuditSink(clients.cosmos_container(CosmosContainers.AUDIT.name)),
        TableUpdateClaims(clients.table(Tables.GOVERNANCE_UPDATES)),
        None,
        load_default_validators(),
        mode="ReportOnly",
        graph_base=sim.graph_base_url,
    )
    discovery = GovernanceDiscovery(
        api, sim.graph_base_url, GRAPH_SCOPE, TableDeltaStateStore(delta_table), clock
    )
    pipeline = GovernancePipeline(tenant, discovery, service, activities, queues[0], queues[1], clock)
    yield Rig(sim, tenant, pipeline, queues[0], queues[1], store, activities, token)
    for queue in queues:
        queue.client.delete_queue()
    delta_table.delete_table()
    sim.stop()


def discover(rig: Rig) -> DiscoveryRequest:
    request = DiscoveryRequest(
        tenant_id=rig.tenant,
        activity_id=activity_id("discovery", rig.tenant, uuid.uuid4().hex),
        trigger="request",
        requested_at=utc_iso(SystemClock().now()),
    )
    rig.pipeline.discover(request)
    return request


def test_a_discovery_queues_every_principal_and_each_evaluation_lands_in_cosmos_with_its_counts(
    rig: Rig,
) -> None:
    truth = rig.truth()
    request = discover(rig)
    activity = rig.activities.get(rig.tenant, request.activity_id)
    assert activity is not None
    assert (activity.status, activity.lock, activity.details["mode"]) == ("succeeded", "acquired", "baseline")
    out_of_scope = activity.details["out_of_scope"]
    assert isinstance(out_of_scope, int)
    assert activity.counts.discovered + out_of_scope == truth["live"]

    outcomes = rig.evaluate_all()
    assert len(outcomes) == activity.counts.discovered
    assert {o.status for o in outcomes} == {"evaluated"}
    batch = rig.activities.get(rig.tenant, str(activity.details["evaluation_batch"]))
    assert batch is not None
    assert batch.parent_id == request.activity_id
    assert batch.counts.evaluated == len(outcomes)
    assert batch.counts.passed == sum(1 for o in outcomes if o.result == "pass")
    for outcome in outcomes:
        record = rig.store.get_object(rig.tenant, outcome.object_id)
        assert record is not None
        assert record.value.last_result == outcome.result
    assert rig.update_queue.take() == []  # ReportOnly


def _notes_findings(rig: Rig, object_id: str) -> list[str]:
    found = rig.store.findings(
        rig.tenant, FindingQuery(object_id=object_id, validator_id="notes-lists-owners")
    )
    return [f.state for f in found]


def test_an_owner_removal_and_an_application_secret_from_the_audit_log_are_evaluated(rig: Rig) -> None:
    truth = {p["id"]: p for p in rig.truth()["service_principals"]}
    # A registered app whose principal has an enabled member owner of its own (not also the app's owner):
    # its notes are set to that owner, so they pass until the owner is removed.
    chosen = None
    for object_id, entry in sorted(truth.items()):
        if entry["kind"] != "line_of_business" or entry["deleted"]:
            continue
        app_owners = {o["id"] for o in entry["applicationOwners"]}
        owners = [
            o for o in entry["owners"]
            if o["type"] == "user" and o["accountEnabled"] and o["userType"] == "Member"
            and o["id"] not in app_owners
        ]  # fmt: skip
        if owners:
            chosen = (object_id, owners[0])
            break
    assert chosen is not None, "the simulator's tenant has such a principal"
    object_id, owner = chosen
    rig.control("notes", {"object": object_id, "notes": owner["userPrincipalName"]})
    discover(rig)
    rig.evaluate_all()
    assert _notes_findings(rig, object_id) == []

    owner_change = rig.control("owners", {"object": object_id, "owner": owner["id"], "action": "remove"})
    assert owner_change["seq"] is None  # Graph delta does not report it
    registered = next(
        oid for oid, e in sorted(truth.items())
        if e["kind"] == "line_of_business" and not e["deleted"] and e["applicationId"] and oid != object_id
    )  # fmt: skip
    application = truth[registered]["applicationId"]
    secret = rig.control("credentials", {"object": application, "type": "password", "lifetime_days": 730})

    records = rig.audit_records(owner_change["audit_ids"] + secret["audit_ids"])
    assert len(records) == 2
    report = rig.report_of(records)
    texts = evaluation_messages(report, rig.tenant, SystemClock().now())
    messages = [EvaluateObject.model_validate_json(t) for t in texts]
    # the owner removal names the principal; the secret names the application, not its principal
    assert sorted(m.object_id for m in messages) == sorted([object_id, application])
    outcomes = {o.object_id: o for o in (rig.pipeline.evaluate(m)[0] for m in messages)}
    assert outcomes[object_id].result == "fail"
    assert _notes_findings(rig, object_id) == ["open"]
    # the application's service principal, found by its appId, was evaluated with the new secret
    assert outcomes[registered].status == "evaluated"
    record = rig.store.get_object(rig.tenant, registered)
    assert record is not None
    assert record.value.last_trigger == "event"
    found = rig.store.findings(rig.tenant, FindingQuery(object_id=registered, state="open"))
    assert any(f.validator_id == "credential-lifetime" for f in found), [f.validator_id for f in found]
