"""Service principal governance end to end: the local Functions host, Azurite, cosmosdb-server and a
tenant simulator with 5,000 live service principals.

The tests of this module share one tenant and run in order (each builds on the state the previous one
left, as an operator's tenant would):

1. the baseline: a DiscoveryRequest on `governance-discovery` reads every live principal, queues one
   evaluation each, and every one is evaluated (the activities' counts); ReportOnly sends no PATCH;
2. 10 principals changed through the simulator's controls are re-evaluated by the next discovery, and
   only those;
3. an owner removal, which Graph delta does not report, is evaluated from the directory audit log within
   one poll cycle (no discovery runs meanwhile);
4. update mode (a host restarted with GOVERNANCE_UPDATE_MODE=Update): the evaluations of 10 principals
   whose notes fail are each delivered twice, and every failing principal with a value to write gets
   exactly one notes PATCH; a delta token reset answers 410 Gone and the next discovery resyncs.

Figures (Graph requests, objects evaluated, seconds) are printed for the closing note (`-s`); nothing
asserts a duration. The discovery timer is disabled: the test queues the requests the timer (or the
Admin route) would.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from devtools.services import PROJECT_ROOT
from devtools.simulator import TenantSimulator
from shared.governance.messages import DiscoveryRequest, EvaluateObject, activity_id
from shared.governance.records import ActivityRecord, ObjectRecord
from shared.governance.store import CosmosActivityStore, CosmosGovernanceStore
from shared.platform.clients import get_clients
from shared.platform.clock import utc_iso
from shared.platform.resources import CosmosContainers, Queues
from tests.support.host_process import HostProcess, wait_until
from tests.support.simulated_tenant import app_settings_for, start_real_time_simulator

TENANT_ID = "00000000-0000-0000-0000-0000000000e8"
PRINCIPALS = 5000
POLL_SECONDS = 3
HANG_GUARD = 900  # seconds: waits only guard against a hang
GOVERNANCE_QUEUES = (Queues.GOVERNANCE_DISCOVERY, Queues.GOVERNANCE_EVALUATE, Queues.GOVERNANCE_UPDATE)


@dataclass
class Tenant:
    simulator: TenantSimulator
    work_dir: Path
    environment: dict[str, str]
    host: HostProcess | None = None
    baseline: ActivityRecord | None = None
    figures: dict[str, Any] = field(default_factory=dict)

    def start_host(self, **settings: str) -> HostProcess:
        self.stop_host()
        environment = {**self.environment, **settings}
        work = self.work_dir / f"host-{uuid.uuid4().hex[:6]}"
        work.mkdir()
        self.host = HostProcess(app_dir=PROJECT_ROOT, work_dir=work, environment=environment).start(
            timeout=90
        )
        return self.host

    def stop_host(self) -> None:
        if self.host is not None:
            self.host.stop()
            self.host = None

    # -- the simulator --------------------------------------------------------------------------------

    def truth(self) -> dict[str, Any]:
        response = requests.get(f"{self.simulator.base_url}/_sim/apps/truth", timeout=120)
        assert response.status_code == 200, response.text
        return dict(response.json())

    def control(self, name: str, document: dict[str, Any]) -> dict[str, Any]:
        response = requests.post(f"{self.simulator.base_url}/_sim/apps/{name}", json=document, timeout=60)
        assert response.status_code == 200, response.text
        return dict(response.json())

    def writes(self) -> dict[str, Any]:
        response = requests.get(f"{self.simulator.base_url}/_sim/apps/writes", timeout=60)
        assert response.status_code == 200, response.text
        return dict(response.json())

    def graph_requests(self) -> int:
        return sum(1 for entry in self.simulator.requests() if entry.get("api") == "graph")

    # -- the app's state ------------------------------------------------------------------------------

    def activity(self, ident: str) -> ActivityRecord | None:
        return CosmosActivityStore(get_clients().cosmos_container(CosmosContainers.GOVERNANCE.name)).get(
            TENANT_ID, ident
        )

    def record(self, object_id: str) -> ObjectRecord | None:
        stored = CosmosGovernanceStore(
            get_clients().cosmos_container(CosmosContainers.GOVERNANCE.name)
        ).get_object(TENANT_ID, object_id)
        return stored.value if stored is not None else None

    def records(self) -> dict[str, dict[str, Any]]:
        container = get_clients().cosmos_container(CosmosContainers.GOVERNANCE.name)
        rows = container.query_items(
            "SELECT c.object_id, c.last_evaluated_at, c.last_evaluation_id, c.last_result, c.last_trigger, "
            "c.last_batch_id, c.remediation_status, c.open_findings "
            "FROM c WHERE c.pk = @pk AND c.type = 'object'",
            parameters=[{"name": "@pk", "value": TENANT_ID}],
            partition_key=TENANT_ID,
        )
        return {row["object_id"]: dict(row) for row in rows}

    def discovery_activities(self) -> int:
        container = get_clients().cosmos_container(CosmosContainers.GOVERNANCE.name)
        rows = container.query_items(
            "SELECT c.id FROM c WHERE c.pk = @pk AND c.type = 'activity' AND c.kind = 'discovery'",
            parameters=[{"name": "@pk", "value": TENANT_ID}],
            partition_key=TENANT_ID,
        )
        return len(list(rows))

    def discover(self, *, full_seed: bool = False) -> DiscoveryRequest:
        request = DiscoveryRequest(
            tenant_id=TENANT_ID,
            activity_id=activity_id("discovery", TENANT_ID, uuid.uuid4().hex),
            trigger="request",
            full_seed=full_seed,
            requested_at=utc_iso(self.simulator_now()),
            requested_by="e2e",
        )
        get_clients().queue(Queues.GOVERNANCE_DISCOVERY).send_message(request.model_dump_json())
        return request

    def simulator_now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)  # the simulator reads real time

    def finished(self, request: DiscoveryRequest) -> ActivityRecord:
        def done() -> ActivityRecord | None:
            found = self.activity(request.activity_id)
            return found if found is not None and found.status != "running" else None

        activity: ActivityRecord = wait_until(done, timeout=HANG_GUARD, interval=1, message="the discovery")
        return activity

    def evaluated(self, batch_id: str, expected: int) -> ActivityRecord:
        def settled() -> ActivityRecord | None:
            found = self.activity(batch_id)
            return found if found is not None and found.counts.settled >= expected else None

        batch: ActivityRecord = wait_until(settled, timeout=HANG_GUARD, interval=2, message="the evaluations")
        return batch


def _clear_governance_queues() -> None:
    for name in GOVERNANCE_QUEUES:
        get_clients().queue(name).clear_messages()


@pytest.fixture(scope="module")
def tenant(app_environment: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tenant]:
    simulator = start_real_time_simulator(tenant_id=TENANT_ID, seed=18, service_principals=PRINCIPALS)
    _clear_governance_queues()
    environment = {
        **app_environment,
        **app_settings_for(simulator),
        "SOURCE_ENTRA_AUDIT": "true",
        "SOURCE_INTUNE_AUDIT": "false",
        "SOURCE_ENTRA_SIGNIN": "false",
        "SOURCE_O365_MANAGEMENT": "false",
        "PROBE_ENABLED": "false",
        "POLL_SCHEDULE": f"*/{POLL_SECONDS} * * * * *",
        "GRAPH_OVERLAP_SECONDS": "60",
        "INITIAL_LOOKBACK_SECONDS": "300",
        "GOVERNANCE_UPDATE_MODE": "ReportOnly",
        # The test queues the discovery requests the timer (every 30 minutes) or the Admin route would.
        "AzureWebJobs.discover_service_principals.Disabled": "true",
        "AzureFunctionsJobHost__extensions__queues__maxPollingInterval": "00:00:01",
    }
    state = Tenant(simulator, tmp_path_factory.mktemp("governance-e2e"), environment)
    state.start_host()
    yield state
    state.stop_host()
    _clear_governance_queues()
    simulator.stop()
    print(f"\ngovernance e2e figures: {state.figures}")


def test_the_baseline_evaluates_every_live_principal_and_report_only_sends_no_patch(tenant: Tenant) -> None:
    truth = tenant.truth()
    live = {p["id"] for p in truth["service_principals"] if not p["deleted"]}
    requests_before = tenant.graph_requests()
    started = time.monotonic()
    request = tenant.discover()
    discovery = tenant.finished(request)
    assert (discovery.status, discovery.lock, discovery.details["mode"]) == (
        "succeeded",
        "acquired",
        "baseline",
    )
    discovered = discovery.counts.discovered
    out_of_scope = discovery.details["out_of_scope"]
    assert isinstance(out_of_scope, int)
    assert discovered + out_of_scope == int(truth["live"]) == len(live)
    assert discovery.details["queued"] == discovered
    batch_id = str(discovery.details["evaluation_batch"])
    batch = tenant.evaluated(batch_id, discovered)
    seconds = time.monotonic() - started
    assert batch.parent_id == request.activity_id
    assert batch.counts.evaluated == discovered  # every one evaluated, none skipped, none in error
    assert batch.counts.passed + batch.counts.failed == discovered
    assert batch.counts.failed > 0  # the simulator's tenant has failing notes, credentials, permissions
    records = tenant.records()
    assert len(records) == discovered
    assert {r["last_batch_id"] for r in records.values()} == {batch_id}
    reported = [r for r in records.values() if r["remediation_status"] == "reported"]
    assert reported  # ReportOnly records the PATCH it would have sent ...
    assert tenant.writes()["writes"] == []  # ... and sends none
    tenant.baseline = discovery
    tenant.figures["baseline"] = {
        "principals": int(truth["live"]),
        "discovered": discovered,
        "out_of_scope": out_of_scope,
        "evaluated": batch.counts.evaluated,
        "failed": batch.counts.failed,
        "graph_requests": tenant.graph_requests() - requests_before,
        "discovery_requests": discovery.details["requests"],
        "minimum_requests": discovery.details["minimum_requests"],
        "seconds": round(seconds, 1),
    }
    print(f"\nbaseline: {tenant.figures['baseline']}")


def _passing_notes(tenant: Tenant) -> list[str]:
    """Principals registered here (line-of-business: the notes rule applies) whose notes pass now."""
    truth = {p["id"]: p for p in tenant.truth()["service_principals"]}
    return sorted(
        oid
        for oid, r in tenant.records().items()
        if r["last_result"] == "pass" and truth[oid]["kind"] == "line_of_business" and truth[oid]["notes"]
    )


def test_ten_changed_principals_are_re_evaluated_by_the_next_discovery_and_only_those(tenant: Tenant) -> None:
    assert tenant.baseline is not None, "runs after the baseline"
    before = tenant.records()
    changed = _passing_notes(tenant)[:10]
    assert len(changed) == 10
    for n, object_id in enumerate(changed):
        tenant.control("notes", {"object": object_id, "notes": f"nobody{n}@contoso.onmicrosoft.com"})
    requests_before = tenant.graph_requests()
    started = time.monotonic()
    request = tenant.discover()
    discovery = tenant.finished(request)
    assert (discovery.status, discovery.details["mode"]) == ("succeeded", "incremental")
    assert discovery.counts.discovered == 10
    batch = tenant.evaluated(str(discovery.details["evaluation_batch"]), 10)
    seconds = time.monotonic() - started
    assert batch.counts.evaluated + batch.counts.skipped == 10

    def all_ten_failing() -> bool:
        now = tenant.records()
        return all(now[o]["last_result"] == "fail" for o in changed)

    wait_until(all_ten_failing, timeout=HANG_GUARD, interval=1, message="the ten evaluations")
    after = tenant.records()
    re_evaluated = {o for o, r in after.items() if r["last_evaluation_id"] != before[o]["last_evaluation_id"]}
    assert re_evaluated == set(changed)  # by the discovery, and by the audit events of the same changes
    assert tenant.writes()["writes"] == []
    tenant.figures["incremental"] = {
        "changed": 10,
        "discovered": discovery.counts.discovered,
        "graph_requests": tenant.graph_requests() - requests_before,
        "seconds": round(seconds, 1),
    }
    print(f"\nincremental: {tenant.figures['incremental']}")


def test_an_owner_removal_seen_only_in_the_audit_log_is_evaluated_within_a_poll_cycle(tenant: Tenant) -> None:
    truth = {p["id"]: p for p in tenant.truth()["service_principals"]}
    records = tenant.records()
    discoveries = tenant.discovery_activities()
    candidates = []
    for object_id, record in records.items():
        entry = truth.get(object_id)
        if record["last_result"] != "pass" or entry is None or not entry.get("notes"):
            continue
        app_owners = {
            o["userPrincipalName"].casefold() for o in entry["applicationOwners"] if o["userPrincipalName"]
        }
        named = {u.strip().casefold() for u in entry["notes"].replace(";", ",").split(",") if u.strip()}
        removable = [
            o
            for o in entry["owners"]
            if o["userPrincipalName"] and o["userPrincipalName"].casefold() in named - app_owners
        ]
        if removable:
            candidates.append((object_id, removable[0]))
    assert candidates, "the simulator's tenant has principals whose notes name their own owners"
    object_id, owner = candidates[0]
    answer = tenant.control("owners", {"object": object_id, "owner": owner["id"], "action": "remove"})
    assert answer["seq"] is None  # no delta change: only the audit log says so
    started = time.monotonic()

    def evaluated_by_the_event() -> ObjectRecord | None:
        record = tenant.record(object_id)
        return record if record is not None and record.last_trigger == "event" else None

    record = wait_until(
        evaluated_by_the_event, timeout=HANG_GUARD, interval=0.5, message="the event's evaluation"
    )
    seconds = time.monotonic() - started
    assert record.last_result == "fail"
    assert tenant.discovery_activities() == discoveries  # no discovery ran: the audit event did it
    tenant.figures["owner_removal"] = {"seconds": round(seconds, 1), "poll_seconds": POLL_SECONDS}
    print(f"\nowner removal: {tenant.figures['owner_removal']}")


def _take(queue: str) -> list[str]:
    """Every message of a queue, removed from it."""
    client = get_clients().queue(queue)
    taken: list[str] = []
    while True:
        batch = list(client.receive_messages(messages_per_page=32, max_messages=32, visibility_timeout=60))
        if not batch:
            return taken
        for message in batch:
            taken.append(message.content)
            client.delete_message(message)


def test_update_mode_patches_each_failing_principal_once_under_duplicates_and_410_resyncs(
    tenant: Tenant,
) -> None:
    assert tenant.baseline is not None, "runs after the baseline"
    update = {"GOVERNANCE_UPDATE_MODE": "Update", "AzureWebJobs.poll_audit_sources.Disabled": "true"}
    # Discovery only: the evaluations wait in their queue so that each can be delivered twice.
    tenant.start_host(
        **update,
        **{
            "AzureWebJobs.evaluate_service_principal.Disabled": "true",
            "AzureWebJobs.update_service_principal_notes.Disabled": "true",
        },
    )
    changed = _passing_notes(tenant)[:10]
    assert len(changed) == 10
    for n, object_id in enumerate(changed):
        tenant.control("notes", {"object": object_id, "notes": f"someone{n}@contoso.onmicrosoft.com"})
    get_clients().queue(Queues.GOVERNANCE_EVALUATE).clear_messages()  # nothing of earlier tests is left
    request = tenant.discover()
    discovery = tenant.finished(request)
    assert (discovery.status, discovery.counts.discovered) == ("succeeded", 10)
    evaluations = _take(Queues.GOVERNANCE_EVALUATE)
    assert sorted(EvaluateObject.model_validate_json(t).object_id for t in evaluations) == changed

    # 410 Gone: the simulator forgets its delta tokens; the next discovery lists everything again.
    tenant.control("delta-reset", {})
    resync = tenant.finished(tenant.discover())
    assert resync.status == "succeeded"
    assert resync.details["mode"] == "resync"
    assert resync.details["resynced"] == 1  # one full listing, counted and visible
    assert resync.details["resync_reasons"]
    assert resync.counts.discovered == tenant.baseline.counts.discovered
    tenant.figures["resync"] = {
        "discovered": resync.counts.discovered,
        "requests": resync.details["requests"],
    }
    get_clients().queue(Queues.GOVERNANCE_EVALUATE).clear_messages()  # the resync's are not this test's
    tenant.stop_host()

    for text in evaluations:  # every evaluation delivered twice
        get_clients().queue(Queues.GOVERNANCE_EVALUATE).send_message(text)
        get_clients().queue(Queues.GOVERNANCE_EVALUATE).send_message(text)
    tenant.start_host(**update)
    batch = tenant.evaluated(str(discovery.details["evaluation_batch"]), 10)
    assert batch.counts.evaluated == 10  # the second deliveries counted nothing

    def remediated() -> dict[str, dict[str, Any]] | None:
        now = {o: r for o, r in tenant.records().items() if o in changed}
        pending = [o for o, r in now.items() if r["remediation_status"] == "queued"]
        return None if pending else now

    final = wait_until(remediated, timeout=HANG_GUARD, interval=1, message="the notes updates")
    update_batch = activity_id("update", TENANT_ID, str(discovery.details["evaluation_batch"]))
    wait_until(
        lambda: all(get_clients().queue(q).get_queue_properties().approximate_message_count == 0
                    for q in GOVERNANCE_QUEUES),
        timeout=HANG_GUARD, interval=1, message="the governance queues to drain",
    )  # fmt: skip
    patched = {o for o, r in final.items() if r["remediation_status"] == "patched"}
    assert patched, "the ten principals had a last-known-good value to restore"
    writes = tenant.writes()
    assert writes["accepted_by_object"] == {o: 1 for o in patched}  # one PATCH each, no more
    assert {w["id"] for w in writes["writes"]} == patched
    updates = tenant.activity(update_batch)
    assert updates is not None
    assert updates.counts.updated == len(patched)
    tenant.figures["update"] = {
        "failing": len(changed),
        "patched": len(patched),
        "writes": len(writes["writes"]),
    }
    print(f"\nupdate mode: {tenant.figures['update']}, resync: {tenant.figures['resync']}")
