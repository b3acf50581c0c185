"""Governance discovery against the tenant simulator's Graph and Azurite's Table storage: a baseline of
5,000 service principals, the next round's changes only, 410 Gone and a resync, throttling inside
batches, the lease.

Every expectation comes from the simulator (`GET /_sim/apps/truth`, its request log) or from an earlier
answer, never from numbers written here. The request counts of the 5,000-principal baseline are printed
(`-s`) for bench/governance.py to compare with.
"""

from __future__ import annotations

import datetime as dt
import math
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from azure.data.tables import TableClient

from devtools.simulator import TenantSimulator
from shared.governance.delta_state import DeltaState, DiscoveryLocked, LeaseLost, TableDeltaStateStore
from shared.governance.discovery import CollectingSink, DiscoveredObject, DiscoveryResult, GovernanceDiscovery
from shared.governance.graph_reader import MAX_BATCH_REQUESTS
from shared.m365.auth import StaticTokenProvider
from shared.m365.http_client import ApiClient
from shared.platform.clients import get_clients
from shared.platform.clock import SystemClock
from tests.support.simulator_client import GRAPH_SCOPE, client_token, simulator_at

EPOCH = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
DAY = 86_400.0
DELTA_PAGE = 200  # Graph's page of directory delta


@dataclass
class Setup:
    sim: TenantSimulator
    table: TableClient
    store: TableDeltaStateStore
    discovery: GovernanceDiscovery
    tenant: str
    runs: int = 0

    def run(self, *, full_seed: bool = False) -> tuple[DiscoveryResult, list[DiscoveredObject], int]:
        """One discovery; also the Graph requests the simulator logged during it."""
        self.runs += 1
        before = graph_requests(self.sim)
        sink = CollectingSink()
        result = self.discovery.run(
            self.tenant,
            run_id=f"act-discovery-{uuid.uuid4().hex}",
            trigger="timer",
            sink=sink,
            full_seed=full_seed,
        )
        return result, sink.objects, graph_requests(self.sim) - before


def graph_requests(sim: TenantSimulator) -> int:
    return sum(1 for entry in sim.requests() if entry.get("api") == "graph")


def truth(sim: TenantSimulator) -> dict[str, Any]:
    response = requests.get(f"{sim.base_url}/_sim/apps/truth", timeout=60)
    assert response.status_code == 200, response.text
    return dict(response.json())


def control(sim: TenantSimulator, route: str, document: dict[str, Any]) -> dict[str, Any]:
    response = requests.post(f"{sim.base_url}/_sim/apps/{route}", json=document, timeout=30)
    assert response.status_code == 200, response.text
    return dict(response.json())


def make_setup(sim: TenantSimulator, table: TableClient, *, concurrency: int = 4) -> Setup:
    api = ApiClient(StaticTokenProvider(client_token(sim, GRAPH_SCOPE)), timeout=(5.0, 60.0))
    store = TableDeltaStateStore(table)
    discovery = GovernanceDiscovery(
        api, sim.graph_base_url, GRAPH_SCOPE, store, SystemClock(), concurrency=concurrency
    )
    return Setup(sim, table, store, discovery, sim.config.tenant_id)


@pytest.fixture
def table(app_environment: dict[str, str]) -> Iterator[TableClient]:
    client = get_clients().table_service.create_table(f"govdelta{uuid.uuid4().hex[:12]}")
    yield client
    client.delete_table()


@pytest.fixture(scope="module")
def big_sim() -> Iterator[TenantSimulator]:
    simulator = simulator_at(EPOCH, DAY, events_per_day=50, service_principals=5000)
    yield simulator
    simulator.stop()


def assert_matches_truth(objects: list[DiscoveredObject], expected: dict[str, Any]) -> None:
    """Each object as the simulator's truth describes it. The truth still lists, as an owner, a service
    principal that was deleted; Graph's owners leave it out, as Entra does for a deleted object."""
    by_id = {o.governed.id: o.governed for o in objects}
    everyone = expected.get("all_principals", expected["service_principals"])
    deleted = {p["id"] for p in everyone if p["deleted"]}

    def owners(listed: list[dict[str, Any]]) -> list[tuple[str, bool, str | None]]:
        return [(o["id"], o["accountEnabled"], o["userType"]) for o in listed if o["id"] not in deleted]

    for principal in expected["service_principals"]:
        if principal["deleted"]:
            continue
        governed = by_id[principal["id"]]
        assert governed.service_principal.app_id == principal["appId"]
        assert governed.notes == principal["notes"]
        assert [(o.id, o.account_enabled, o.user_type) for o in governed.owners] == owners(
            principal["owners"]
        )
        if principal["applicationId"] is None:
            assert governed.application is None
        else:
            assert governed.application is not None
            assert governed.application.id == principal["applicationId"]
            assert [(o.id, o.account_enabled, o.user_type) for o in governed.application_owners] == owners(
                principal["applicationOwners"]
            )
        assert [p.value for p in governed.app_permissions] == [p["value"] for p in principal["permissions"]]
        assert [r.role_template_id for r in governed.directory_roles] == [
            r["roleTemplateId"] for r in principal["directoryRoles"]
        ]
        assert {(c.location, c.key_id) for c in governed.credentials()} == {
            (c["on"], c["keyId"]) for c in principal["credentials"]
        }


def test_a_baseline_of_5000_principals_reads_every_live_one_whole_at_close_to_the_minimum(
    big_sim: TenantSimulator, table: TableClient
) -> None:
    setup = make_setup(big_sim, table)
    expected = truth(big_sim)
    result, objects, logged = setup.run()

    principals = expected["service_principals"]
    live = [p for p in principals if not p["deleted"]]
    assert expected["live"] == len(live) == 5000
    assert result.status == "succeeded"
    assert result.mode == "baseline"
    assert [o.governed.id for o in objects] == [p["id"] for p in live]  # in delta order, each once
    assert result.counts.skipped_deleted == expected["deleted"]
    assert result.counts.errors == 0
    assert_matches_truth(objects, expected)

    counts = result.counts
    applications = sum(1 for p in principals if p["applicationId"] is not None)
    pages = math.ceil(len(principals) / DELTA_PAGE) + math.ceil(applications / DELTA_PAGE)
    reads = 1 + sum(3 + (p["applicationId"] is not None) for p in live)
    assert counts.delta_pages == pages
    assert counts.reads == reads
    assert counts.minimum_requests == pages + math.ceil(reads / MAX_BATCH_REQUESTS)
    assert counts.requests == logged  # what the simulator saw is what discovery counted
    assert counts.minimum_requests <= counts.requests <= counts.minimum_requests + 3
    print(
        f"\ngovernance discovery baseline: {len(live)} principals, {counts.delta_pages} delta pages, "
        f"{counts.reads} reads in {counts.batches} batches, {counts.requests} requests, minimum "
        f"{counts.minimum_requests}, ratio {counts.request_ratio:.4f}"
    )


def test_the_next_round_reads_only_the_ten_changed_principals_and_reports_the_deleted_one(
    big_sim: TenantSimulator, table: TableClient
) -> None:
    setup = make_setup(big_sim, table)
    setup.run()  # the baseline of this state table
    principals = [p for p in truth(big_sim)["service_principals"] if not p["deleted"]]
    registered = [p for p in principals if p["kind"] == "line_of_business" and p["applicationId"]]
    third_party = [p for p in principals if p["kind"] == "third_party"]
    noted = registered[:4]
    credentialed = registered[10:13]
    doomed = third_party[0]
    owned = registered[20]
    for i, principal in enumerate(noted):
        control(big_sim, "notes", {"object": principal["id"], "notes": f"owner{i}@contoso.onmicrosoft.com"})
    for principal in credentialed:
        control(
            big_sim,
            "credentials",
            {"object": principal["applicationId"], "type": "password", "lifetime_days": 365},
        )
    control(big_sim, "delete", {"object": doomed["id"]})
    created = control(
        big_sim,
        "applications",
        {"display_name": "Discovery Probe", "owners": ["meganb@contoso.onmicrosoft.com"]},
    )
    # An owner change is a navigation property: delta does not report it (the audit log does).
    control(
        big_sim, "owners", {"object": owned["id"], "owner": "leeg@contoso.onmicrosoft.com", "action": "add"}
    )

    result, objects, logged = setup.run()

    changed = {p["id"] for p in (*noted, *credentialed)} | {created["object"]}
    assert result.mode == "incremental"
    assert result.status == "succeeded"
    assert {o.governed.id for o in objects} == changed
    assert len(objects) == len(changed)
    assert result.removed_ids == (doomed["id"],)
    reasons = {o.governed.id: o.reason for o in objects}
    assert {reasons[p["id"]] for p in credentialed} == {"application-changed"}
    assert {reasons[p["id"]] for p in noted} == {"changed"}
    assert_matches_truth(objects, truth_of(big_sim, changed))
    assert result.counts.requests == logged
    assert result.counts.requests <= result.counts.minimum_requests + 3


def truth_of(sim: TenantSimulator, ids: set[str]) -> dict[str, Any]:
    principals = truth(sim)["service_principals"]
    return {"service_principals": [p for p in principals if p["id"] in ids], "all_principals": principals}


def test_a_delta_reset_answers_410_and_the_run_resyncs_in_full(
    big_sim: TenantSimulator, table: TableClient
) -> None:
    setup = make_setup(big_sim, table)
    setup.run()
    control(big_sim, "delta-reset", {"resource": "servicePrincipals"})
    result, objects, _ = setup.run()
    expected = truth(big_sim)
    assert result.status == "succeeded"
    assert result.mode == "resync"
    assert result.counts.resynced == 1
    assert any("410" in reason for reason in result.resync_reasons)
    assert len(objects) == expected["live"]
    assert setup.store.load(setup.tenant).resyncs == 1
    again, objects, _ = setup.run()  # the new links work
    assert again.mode == "incremental"
    assert objects == []


def test_throttled_and_failing_requests_inside_batches_are_retried_until_every_object_is_whole(
    table: TableClient,
) -> None:
    sim = simulator_at(
        EPOCH,
        DAY,
        events_per_day=50,
        service_principals=700,
        throttle_rate=0.1,
        throttle_without_retry_after=0.0,
        retry_after_seconds=0,
        server_error_rate=0.03,
    )
    try:
        setup = make_setup(sim, table)
        result, objects, logged = setup.run()
        expected = truth(sim)
    finally:
        sim.stop()
    assert result.status == "succeeded", result.failure
    assert len(objects) == expected["live"]
    assert result.counts.errors == 0
    assert_matches_truth(objects, expected)
    assert result.counts.inner_retries > 0
    assert result.counts.requests == logged
    # Beyond the minimum, only what the faults force: the retried requests (packed 20 to a batch) and
    # the calls sent again whole, give or take the last partial batches.
    counts = result.counts
    forced = math.ceil(counts.inner_retries / MAX_BATCH_REQUESTS) + counts.outer_retries
    assert counts.requests <= counts.minimum_requests + forced + 2
    print(
        f"\ngovernance discovery under throttling: {counts.requests} requests, minimum "
        f"{counts.minimum_requests}, {counts.inner_retries} inner retries, "
        f"{counts.outer_retries} outer retries"
    )


def test_a_second_discovery_of_the_tenant_finds_the_lease_held(
    big_sim: TenantSimulator, table: TableClient
) -> None:
    setup = make_setup(big_sim, table)
    holder = setup.store.acquire(setup.tenant, "act-discovery-" + "a" * 32, dt.datetime.now(dt.UTC))
    before = graph_requests(big_sim)
    result, objects, _ = setup.run()
    assert result.status == "locked"
    assert result.lock == "held"
    assert result.held_by == holder.run_id
    assert objects == []
    assert graph_requests(big_sim) == before
    assert setup.store.release(holder, dt.datetime.now(dt.UTC))


def test_the_lease_and_the_state_on_azurite(table: TableClient) -> None:
    store = TableDeltaStateStore(table, lease_for=dt.timedelta(minutes=10))
    now = dt.datetime(2026, 12, 7, 9, 0, tzinfo=dt.UTC)
    first = store.acquire("tenant-a", "run-1", now)
    with pytest.raises(DiscoveryLocked):
        store.acquire("tenant-a", "run-2", now + dt.timedelta(minutes=9))
    second = store.acquire("tenant-a", "run-2", now + dt.timedelta(minutes=11))  # run-1 went stale
    with pytest.raises(LeaseLost):
        store.commit(first, DeltaState(tenant_id="tenant-a", resyncs=7), now + dt.timedelta(minutes=12))
    assert store.load("tenant-a") == DeltaState(tenant_id="tenant-a")
    state = DeltaState(
        tenant_id="tenant-a", pending_service_principals=("00000000-0000-4000-8000-000000000001",), resyncs=1
    )
    second = store.commit(second, state, now + dt.timedelta(minutes=12))
    assert store.load("tenant-a") == state
    second = store.commit(second, state.model_copy(update={"resyncs": 2}), now + dt.timedelta(minutes=13))
    assert store.load("tenant-a").resyncs == 2
    assert not store.release(first, now + dt.timedelta(minutes=14))
    assert store.release(second, now + dt.timedelta(minutes=14))
    assert store.acquire("tenant-a", "run-3", now + dt.timedelta(minutes=15)).run_id == "run-3"
