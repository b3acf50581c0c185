"""GET /api/status and POST /api/probe/run against Azurite and cosmosdb-server (shared/api/status_api.py).

Watermarks and audit records live under tenants of their own, probe scopes have unique names and the
queues whose depth is asserted exactly are created here, so shared queues are never written to."""

from __future__ import annotations

import datetime as dt
import json
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from azure.storage.queue import QueueClient

from devtools.simulator import DEFAULT_DEVOPS_PAT
from shared.api.audit import AuditLog
from shared.api.auth import Authenticator
from shared.api.events_query import SensitivityPolicy
from shared.api.responses import ApiGuard, ApiResponse
from shared.api.status_api import StatusApi
from shared.ingestion.sources.graph import SourceRunResult
from shared.ingestion.watermarks import WatermarkStore
from shared.m365.http_client import ApiClient
from shared.platform.clients import get_clients
from shared.platform.clock import utc_iso
from shared.platform.resources import CosmosContainers, Queues, Tables, poison_queue
from shared.probe.devops import DevOpsClient, PipelineTriggerService
from shared.probe.poller import Poller, PollReport
from shared.probe.scopes import DriftConfig, DriftRule, DriftScope, PipelineTarget
from shared.probe.service import ProbeService, ScopeResult
from shared.probe.state import Change, ProbeWindows, Trigger
from shared.probe.store import ProbeStateStore
from shared.probe.trigger_log import TriggerRuns
from tests.support.clock import ManualClock
from tests.support.principals import swa_principal
from tests.support.simulator_client import simulator_at

NOW = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)
POLL_INTERVAL = 300.0
WINDOWS = ProbeWindows(quiet=dt.timedelta(minutes=10), cooldown=dt.timedelta(minutes=30))
ADMIN = {"x-ms-client-principal": swa_principal(["admin"], user="root@contoso.com")}
READER = {"x-ms-client-principal": swa_principal(["reader"], user="rita@contoso.com")}


def body(response: ApiResponse) -> Any:
    return json.loads(response.body)


PIPELINE = PipelineTarget(organization="contoso", project="aoc", pipeline_id=1)


class Harness:
    def __init__(self, run_poll: Callable[[], PollReport] | None = None) -> None:
        clients = get_clients()
        self.clock = ManualClock(NOW)
        self.tenant = f"status-{uuid.uuid4().hex[:10]}"
        self.watermarks = WatermarkStore(clients.table(Tables.WATERMARKS), self.tenant)
        tag = uuid.uuid4().hex[:8]
        self.scopes = [f"status-{tag}-idle", f"status-{tag}-armed", f"status-{tag}-cooldown"]
        drift = DriftConfig(
            scopes=[
                DriftScope(name=name, rules=[DriftRule(operations=["Set-Thing"])], pipeline=PIPELINE)
                for name in self.scopes
            ]
        )
        self.trigger_queue_name = f"status-trigger-{tag}"
        self.queue_name = f"status-q-{tag}"
        self.created_queues = [self.trigger_queue_name, self.queue_name, poison_queue(self.queue_name)]
        for name in self.created_queues:
            clients.queue_service.create_queue(name)
        self.probe_store = ProbeStateStore(clients.table(Tables.PROBE_STATE))
        self.probe = ProbeService(
            self.probe_store, drift, clients.queue_service.get_queue_client(self.trigger_queue_name), WINDOWS
        )
        self.audit_container = clients.cosmos_container(CosmosContainers.AUDIT.name)
        self.runs: list[str] = []
        self.api = StatusApi(
            ApiGuard(
                Authenticator(verifier=None, swa_enabled=True, key_roles=frozenset()), SensitivityPolicy()
            ),
            self.watermarks,
            self.probe.status,
            clients.queue_service,
            self.clock,
            POLL_INTERVAL,
            run_poll or self.fake_run,
            AuditLog(self.audit_container, self.tenant, self.clock),
            expected_sources=["entra_audit", "o365:Audit.Exchange"],
            queues=(*Queues.ALL, self.queue_name),
            trigger_runs=TriggerRuns(clients.table(Tables.TRIGGER_LOG)).run,
        )

    def fake_run(self) -> PollReport:
        self.runs.append(utc_iso(self.clock.now()))
        return PollReport(
            run_id=f"run-{len(self.runs)}",
            started_at=utc_iso(self.clock.now()),
            sources=[
                SourceRunResult(source="entra_audit", pages=2, records=120),
                SourceRunResult(source="intune_audit", error="HTTPError: 503"),
            ],
            probe=[ScopeResult(scope=self.scopes[0], phase="idle", changes_seen=0)],
        )

    def queue(self, name: str) -> QueueClient:
        return get_clients().queue_service.get_queue_client(name)

    def status(self, headers: dict[str, str] = READER, url: str = "http://h/api/status") -> ApiResponse:
        return self.api.get_status(url, headers, "/api/status")

    def run(
        self, headers: dict[str, str] = ADMIN, raw: bytes = b"", url: str = "http://h/api/probe/run"
    ) -> ApiResponse:
        return self.api.run_probe(url, raw, headers, "/api/probe/run")

    def audit_records(self, action: str) -> list[dict[str, Any]]:
        return list(
            self.audit_container.query_items(
                "SELECT * FROM c WHERE c.pk = @pk AND c.action = @action",
                parameters=[{"name": "@pk", "value": self.tenant}, {"name": "@action", "value": action}],
                partition_key=self.tenant,
            )
        )

    def close(self) -> None:
        for name in self.created_queues:
            get_clients().queue_service.delete_queue(name)
        for scope in self.scopes:
            get_clients().table(Tables.PROBE_STATE).delete_entity(scope, "state")
            for row in get_clients().table(Tables.TRIGGER_LOG).query_entities(f"PartitionKey eq '{scope}'"):
                get_clients().table(Tables.TRIGGER_LOG).delete_entity(scope, row["RowKey"])


@pytest.fixture
def harness(app_environment: dict[str, str]) -> Iterator[Harness]:
    harness = Harness()
    yield harness
    harness.close()


def test_status_reports_sources_with_their_stale_flags(harness: Harness) -> None:
    fresh_at = NOW - dt.timedelta(minutes=2)
    harness.watermarks.advance("entra_audit", NOW - dt.timedelta(minutes=5), "run-a", 40, fresh_at)
    harness.watermarks.advance("entra_audit", NOW - dt.timedelta(minutes=3), "run-b", 2, fresh_at)
    harness.watermarks.add_counts("entra_audit", quarantined=1, expired_skipped=3)
    stale_at = NOW - dt.timedelta(seconds=3 * POLL_INTERVAL + 1)
    harness.watermarks.advance("intune_audit", NOW - dt.timedelta(hours=1), "run-c", 7, stale_at)
    harness.watermarks.record_failure("intune_audit", "run-d", "HTTPError: 503 Service Unavailable")
    harness.watermarks.record_failure("entra_signin", "run-d", "HTTPError: 403 Forbidden")

    response = harness.status()

    assert response.status == 200
    document = body(response)
    assert document["generated_at"] == "2026-11-20T12:00:00.000Z"
    assert document["poll_interval_seconds"] == POLL_INTERVAL
    sources = {s["source"]: s for s in document["sources"]}
    assert list(sources) == ["entra_audit", "entra_signin", "intune_audit", "o365:Audit.Exchange"]
    assert sources["entra_audit"] == {
        "source": "entra_audit",
        "watermark": "2026-11-20T11:57:00.000Z",
        "last_success": utc_iso(fresh_at),
        "last_error": None,
        "stale": False,
        "last_count": 2,
        "total_count": 42,
        "quarantined": 1,
        "expired_skipped": 3,
        "failing_blobs": 0,
        "given_up_blobs": 0,
        "last_blob_error": None,
        "last_blob_error_at": None,
        "last_full_relist": None,
    }
    assert sources["intune_audit"]["stale"] is True
    assert sources["intune_audit"]["last_error"] == "HTTPError: 503 Service Unavailable"
    assert sources["intune_audit"]["watermark"] == "2026-11-20T11:00:00.000Z"
    assert sources["entra_signin"]["stale"] is True  # never succeeded
    assert sources["entra_signin"]["last_success"] is None
    # enabled but never polled: listed, stale, zero counts
    assert sources["o365:Audit.Exchange"]["stale"] is True
    assert sources["o365:Audit.Exchange"]["total_count"] == 0

    # time passes: the fresh source goes stale too
    harness.clock.advance(3 * POLL_INTERVAL)
    assert {s["source"]: s["stale"] for s in body(harness.status())["sources"]}["entra_audit"] is True


def test_status_reports_failing_and_given_up_content_blobs(harness: Harness) -> None:
    source = "o365_management.Audit.Exchange"
    harness.watermarks.advance(source, NOW, "run-a", 9, NOW, window_start=NOW, full_relist_at=NOW)
    harness.watermarks.record_content(
        source, failing=2, given_up=0, last_error="content c1: HTTP 404 AF20050 (attempt 1)", now=NOW
    )
    later = NOW + dt.timedelta(hours=11)
    harness.watermarks.record_content(
        source,
        failing=1,
        given_up=1,
        last_error="content c1: HTTP 404 AF20050 (attempt 8); given up",
        now=later,
    )

    sources = {s["source"]: s for s in body(harness.status())["sources"]}

    assert sources[source]["failing_blobs"] == 1
    assert sources[source]["given_up_blobs"] == 1
    assert sources[source]["last_blob_error"] == "content c1: HTTP 404 AF20050 (attempt 8); given up"
    assert sources[source]["last_blob_error_at"] == utc_iso(later)
    assert sources[source]["last_full_relist"] == utc_iso(NOW)
    assert sources[source]["last_error"] is None, "a bad blob is not a failed run"
    assert sources[source]["watermark"] == utc_iso(NOW)


def test_status_reports_each_probe_scope_state(harness: Harness) -> None:
    idle, armed, cooldown = harness.scopes
    change_at = NOW - dt.timedelta(minutes=20)

    def change(event_id: str, at: dt.datetime) -> Change:
        return Change(
            event_id=event_id, at=utc_iso(at), service="Exchange", operation="Set-Thing", actor="ana"
        )

    harness.probe.advance({cooldown: [change("e1", change_at)]}, change_at)
    harness.probe.advance(
        {armed: [change("e2", NOW - dt.timedelta(minutes=1))]}, NOW
    )  # cooldown's deadline passed

    document = body(harness.status())
    scopes = {s["scope"]: s for s in document["probe"]}
    assert list(scopes) == harness.scopes
    assert scopes[idle]["phase"] == "idle"
    assert scopes[idle]["burst_count"] == 0
    assert scopes[idle]["triggers_emitted"] == 0
    assert scopes[armed]["phase"] == "armed"
    assert scopes[armed]["quiet_deadline"] == utc_iso(NOW - dt.timedelta(minutes=1) + WINDOWS.quiet)
    assert scopes[armed]["burst_count"] == 1
    assert scopes[cooldown]["phase"] == "cooldown"
    assert scopes[cooldown]["cooldown_until"] == utc_iso(NOW + WINDOWS.cooldown)
    assert scopes[cooldown]["triggers_emitted"] == 1
    assert scopes[cooldown]["last_trigger_id"].startswith(f"{cooldown}:")
    assert scopes[cooldown]["last_triggered_at"] == utc_iso(NOW)
    assert scopes[cooldown]["outbox_pending"] is False  # queued and cleared
    assert harness.queue(harness.trigger_queue_name).get_queue_properties().approximate_message_count == 1


def test_status_reports_queue_depths(harness: Harness) -> None:
    for i in range(3):
        harness.queue(harness.queue_name).send_message(f"message {i}")
    harness.queue(poison_queue(harness.queue_name)).send_message("poisoned")

    queues = {q["name"]: q for q in body(harness.status())["queues"]}

    assert queues[harness.queue_name] == {
        "name": harness.queue_name,
        "poison": False,
        "exists": True,
        "depth": 3,
        "error": None,
    }
    assert queues[poison_queue(harness.queue_name)]["depth"] == 1
    assert queues[poison_queue(harness.queue_name)]["poison"] is True
    expected = [n for q in (*Queues.ALL, harness.queue_name) for n in (q, poison_queue(q))]
    assert list(queues) == expected
    for name in Queues.ALL:  # created by the bootstrap; other tests use them, so only their shape is known
        assert queues[name]["exists"] is True
        assert isinstance(queues[name]["depth"], int)
        assert queues[name]["depth"] >= 0

    get_clients().queue_service.delete_queue(poison_queue(harness.queue_name))
    harness.created_queues.remove(poison_queue(harness.queue_name))
    missing = {q["name"]: q for q in body(harness.status())["queues"]}[poison_queue(harness.queue_name)]
    assert missing["exists"] is False
    assert missing["depth"] == 0


def test_status_needs_a_role_and_takes_no_parameters(harness: Harness) -> None:
    assert harness.status(headers={}).status == 401
    assert harness.status(headers={"x-ms-client-principal": swa_principal(["nobody"])}).status == 403
    response = harness.status(url="http://h/api/status?verbose=1")
    assert response.status == 400
    assert body(response)["errors"][0]["field"] == "verbose"


def test_probe_run_calls_the_runner_and_is_audited(harness: Harness) -> None:
    response = harness.run(headers={**ADMIN, "Idempotency-Key": "k-1"})

    assert response.status == 200
    assert harness.runs == ["2026-11-20T12:00:00.000Z"]
    report = body(response)
    assert report["run_id"] == "run-1"
    assert [s["source"] for s in report["sources"]] == ["entra_audit", "intune_audit"]
    assert report["sources"][1]["error"] == "HTTPError: 503"
    records = harness.audit_records("probe.run")
    assert len(records) == 1
    assert records[0]["actor"] == "root@contoso.com"
    assert records[0]["target_type"] == "probe"
    assert records[0]["target_id"] == "run-1"
    assert records[0]["before"] is None
    assert records[0]["after"] == {
        "run_id": "run-1",
        "sources": 2,
        "failed_sources": 1,
        "pages": 2,
        "records": 120,
        "expired_skipped": 0,
        "probe_scopes": 1,
        "triggers": 0,
        "probe_failed": False,
    }
    json_type = {"Content-Type": "application/json"}
    assert harness.run(headers=ADMIN | json_type, raw=b"{}").status == 200
    assert harness.run(headers=ADMIN | json_type).status == 200  # no body, labelled JSON
    assert len(harness.runs) == 3
    assert len(harness.audit_records("probe.run")) == 3


def test_probe_run_is_refused_to_readers_and_with_parameters(harness: Harness) -> None:
    assert harness.run(headers=READER).status == 403
    assert harness.run(headers={}).status == 401
    assert harness.run(url="http://h/api/probe/run?force=1").status == 400
    json_type = {"Content-Type": "application/json"}
    assert harness.run(headers=ADMIN | json_type, raw=b'{"force": true}').status == 400
    # What a page on another site can send without a preflight: refused before anything runs.
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    assert harness.run(headers=ADMIN | form).status == 415  # an empty HTML form post
    assert harness.run(headers=ADMIN | form, raw=b"{}").status == 415
    assert harness.run(headers=ADMIN | {"Content-Type": "text/plain"}, raw=b"{}").status == 415
    assert harness.run(raw=b"{}").status == 415  # a body without a Content-Type
    assert harness.runs == []
    assert harness.audit_records("probe.run") == []


def test_one_probe_run_at_a_time(app_environment: dict[str, str]) -> None:
    started, release = threading.Event(), threading.Event()
    holder: dict[str, Harness] = {}

    def slow_run() -> PollReport:
        started.set()
        assert release.wait(30)
        return holder["h"].fake_run()

    harness = Harness(run_poll=slow_run)
    holder["h"] = harness
    try:
        results: list[ApiResponse] = []
        first = threading.Thread(target=lambda: results.append(harness.run()))
        first.start()
        assert started.wait(30)
        busy = harness.run()
        assert busy.status == 409
        assert body(busy)["type"].endswith("/busy")
        release.set()
        first.join(30)
        assert [r.status for r in results] == [200]
        assert harness.run().status == 200  # free again
        assert len(harness.runs) == 2
    finally:
        release.set()
        harness.close()


def test_a_failing_run_is_a_500_and_still_audited(app_environment: dict[str, str]) -> None:
    def broken() -> PollReport:
        raise ConnectionError("storage unreachable: AccountKey=c2VjcmV0")

    harness = Harness(run_poll=broken)
    try:
        response = harness.run()
        assert response.status == 500
        assert "ConnectionError" in body(response)["detail"]
        assert "c2VjcmV0" not in response.body
        records = harness.audit_records("probe.run")
        assert len(records) == 1
        assert records[0]["after"]["error"].startswith("ConnectionError")
        assert harness.run().status == 500  # the lock was released
    finally:
        harness.close()


def test_probe_run_with_a_real_poller(harness: Harness) -> None:
    """The runner wired as in production: Poller.run, here with no sources and the test's probe."""
    poller = Poller(
        None,
        None,
        harness.watermarks,
        harness.clock,
        graph_sources=[],
        content_types=[],
        time_budget_seconds=30,
        probe=harness.probe,
        tenant_id=harness.tenant,
    )
    api = StatusApi(
        ApiGuard(Authenticator(verifier=None, swa_enabled=True, key_roles=frozenset()), SensitivityPolicy()),
        harness.watermarks,
        harness.probe.status,
        get_clients().queue_service,
        harness.clock,
        POLL_INTERVAL,
        poller.run,
        AuditLog(harness.audit_container, harness.tenant, harness.clock),
    )
    response = api.run_probe("http://h/api/probe/run", b"", ADMIN, "/api/probe/run")
    assert response.status == 200
    report = body(response)
    assert report["sources"] == []
    assert [p["scope"] for p in report["probe"]] == harness.scopes
    assert {p["phase"] for p in report["probe"]} == {"idle"}
    assert harness.audit_records("probe.run")[0]["target_id"] == report["run_id"]


def test_status_gives_each_scopes_last_trigger_and_its_azure_devops_run(harness: Harness) -> None:
    """The trigger the probe queued, handed to PipelineTriggerService against the simulator's Azure
    DevOps as the trigger worker does: its TriggerLog row gives the run id and web link."""
    idle, armed, cooldown = harness.scopes
    at = NOW - dt.timedelta(minutes=20)
    change = Change(event_id="e1", at=utc_iso(at), service="Intune", operation="Set-Thing", actor="ana")
    harness.probe.advance({cooldown: [change], armed: [change]}, at)
    harness.probe.advance({}, NOW)  # both settle: one trigger each
    triggers = [
        Trigger.model_validate_json(m.content)
        for m in harness.queue(harness.trigger_queue_name).receive_messages(max_messages=32)
    ]
    by_scope = {t.scope: t for t in triggers}
    assert set(by_scope) == {armed, cooldown}
    simulator = simulator_at(NOW, 0, events_per_day=0)
    try:
        drift = DriftConfig(
            scopes=[DriftScope(name=cooldown, rules=[DriftRule(operations=["Set-Thing"])], pipeline=PIPELINE)]
        )
        devops = DevOpsClient(
            ApiClient(None, max_attempts=1), simulator.devops_base_url, pat=DEFAULT_DEVOPS_PAT
        )
        service = PipelineTriggerService(
            devops,
            drift,
            get_clients().table(Tables.TRIGGER_LOG),
            harness.clock,
            harness.queue(harness.queue_name),
        )
        queued = service.handle(by_scope[cooldown], message_id="m1")
    finally:
        simulator.stop()
    assert queued.state == "queued"
    # The other scope's call is in flight, its answer lost: the row says so, with no run yet.
    get_clients().table(Tables.TRIGGER_LOG).create_entity(
        {
            "PartitionKey": armed,
            "RowKey": by_scope[armed].trigger_id,
            "status": "starting",
            "claimed_at": utc_iso(NOW),
            "outcome": "unknown",
        }
    )

    scopes = {s["scope"]: s for s in body(harness.status())["probe"]}

    assert scopes[cooldown]["last_trigger_id"] == by_scope[cooldown].trigger_id
    assert scopes[cooldown]["last_run"] == {"run_id": queued.run_id, "run_url": queued.url, "state": "queued"}
    assert queued.url is not None
    assert queued.url.startswith("http")
    assert scopes[armed]["last_run"] == {"run_id": None, "run_url": None, "state": "unknown"}
    assert scopes[idle]["last_trigger_id"] is None
    assert scopes[idle]["last_run"] is None
