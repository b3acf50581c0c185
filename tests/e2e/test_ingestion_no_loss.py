"""A simulated day of audit activity lands in Cosmos DB exactly once, through the user's path.

The real function app runs in the local host against Azurite, cosmosdb-server and the tenant simulator.
Simulated time runs fast (the app and the simulator share one accelerated clock), the simulator throttles
and fails calls, publishes Management API blobs up to 3 days late, and the host is SIGKILLed twice.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devtools.services import PROJECT_ROOT, LocalServices
from devtools.simulator import SimulatorConfig, TenantSimulator
from shared.ingestion.watermarks import WatermarkStore
from shared.platform.clients import get_clients, reset_clients
from shared.platform.resources import CosmosContainers, Queues
from tests.support.cosmos import event_ids
from tests.support.host_process import HostProcess, wait_until
from tests.support.own_database import own_cosmos_database
from tests.support.simulated_tenant import app_settings_for

EVENTS_PER_DAY = int(os.environ.get("AOC_E2E_EVENTS", "50000"))
SPEED = 4000.0  # simulated seconds per real second
EPOCH = dt.datetime(2026, 10, 1, tzinfo=dt.UTC)
TENANT_ID = "00000000-0000-0000-0000-0000000000aa"
SIM_END = EPOCH + dt.timedelta(days=4, hours=2)  # a day of events, then 3 days of late blobs
KILL_AT = (EPOCH + dt.timedelta(hours=14), EPOCH + dt.timedelta(days=2))


@pytest.fixture
def simulator() -> Iterator[TenantSimulator]:
    started_at = time.time() + 2.0
    config = SimulatorConfig(
        tenant_id=TENANT_ID,
        seed=20261001,
        events_per_day=EVENTS_PER_DAY,
        epoch=EPOCH,
        speed=SPEED,
        started_at_unix=started_at,
        graph_max_delay_seconds=600,
        management_max_delay_seconds=3 * 86400,
        throttle_rate=0.05,
        throttle_without_retry_after=0.5,
        server_error_rate=0.01,
        duplicate_across_pages_rate=0.05,
    )
    simulator = TenantSimulator(config).start()
    yield simulator
    simulator.stop()


@pytest.fixture
def own_database(app_environment: dict[str, str]) -> Iterator[dict[str, str]]:
    """The app settings with a Cosmos database of this test's own: 50,000 events left in the shared
    one would slow every later test that queries it."""
    with own_cosmos_database("aoc-ingest") as (database, _):
        yield {**app_environment, "COSMOS_DATABASE": database}


def _sim_now(simulator: TenantSimulator) -> dt.datetime:
    config = simulator.config
    return config.epoch + dt.timedelta(seconds=(time.time() - config.started_at_unix) * config.speed)


def _app_settings(simulator: TenantSimulator, base: dict[str, str]) -> dict[str, str]:
    config = simulator.config
    return {
        **base,
        **app_settings_for(simulator),
        "SOURCE_ENTRA_AUDIT": "true",
        "SOURCE_ENTRA_SIGNIN": "true",
        "SOURCE_INTUNE_AUDIT": "true",
        "SOURCE_O365_MANAGEMENT": "true",
        "MANAGEMENT_INCLUDE_DLP": "true",
        "POLL_SCHEDULE": "*/3 * * * * *",
        "POLL_INTERVAL_SECONDS": str(3 * SPEED),
        "GRAPH_OVERLAP_SECONDS": "900",
        "MANAGEMENT_OVERLAP_SECONDS": "86400",
        # The first poll must reach back to the start of the simulated day however long the host takes
        # to start on a loaded machine (2 simulated hours are only 1.8 real seconds at this speed).
        "INITIAL_LOOKBACK_SECONDS": str(2 * 86400),
        "AOC_CLOCK_EPOCH": config.epoch.isoformat(),
        "AOC_CLOCK_SPEED": str(config.speed),
        "AOC_CLOCK_STARTED_AT": str(config.started_at_unix),
        "AOC_HOST_QUEUE_LEASE_SECONDS": "5",
        "COSMOS_WRITE_CONCURRENCY": "8",
        "PROBE_ENABLED": "false",
        # This test proves ingestion; alerting has its own. As in Azure, an app setting switches a
        # function off, so the alerts queue just fills up here.
        "AzureWebJobs.evaluate_alerts.Disabled": "true",
        "AzureWebJobs.deliver_notification.Disabled": "true",
        "AzureWebJobs.check_source_health.Disabled": "true",
        # Governance evaluations the day's directory audit events queue: proved by their own tests.
        "AzureWebJobs.discover_service_principals.Disabled": "true",
        "AzureWebJobs.run_governance_discovery.Disabled": "true",
        "AzureWebJobs.evaluate_service_principal.Disabled": "true",
        "AzureWebJobs.update_service_principal_notes.Disabled": "true",
    }


def _stored_ids(months: set[str]) -> tuple[set[str], int]:
    """Ids in the tenant's month partitions, and the tenant's document count across all partitions."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HTTP_READ_TIMEOUT_SECONDS", "600")
        reset_clients()
        ids = event_ids(TENANT_ID, months)
        total: Any = next(  # SELECT VALUE COUNT(1): a number, not a document
            iter(
                get_clients()
                .cosmos_container(CosmosContainers.EVENTS.name)
                .query_items(
                    "SELECT VALUE COUNT(1) FROM c WHERE c.tenant_id = @tenant",
                    parameters=[{"name": "@tenant", "value": TENANT_ID}],
                    enable_cross_partition_query=True,
                )
            )
        )
    reset_clients()
    return ids, int(total)


def _describe(simulator: TenantSimulator, ids: set[str]) -> str:
    """Where lost events sit in simulated time, by source: enough to tell a listing gap from a write loss."""
    spans: dict[str, list[int]] = {}
    for record in simulator.tenant.records:
        if record.truth_id in ids:
            spans.setdefault(record.source, []).append(record.event_us)

    def at(us: int) -> str:
        return f"{dt.datetime.fromtimestamp(us / 1e6, dt.UTC):%d %H:%M:%S}"

    by_source = "; ".join(
        f"{source}: {len(times)} between {at(min(times))} and {at(max(times))}"
        for source, times in sorted(spans.items())
    )
    return f"{by_source}, e.g. {sorted(ids)[:3]}"


def _queue_depth(name: str) -> int:
    depth = get_clients().queue(name).get_queue_properties().approximate_message_count
    assert depth is not None
    return depth


@pytest.mark.timeout(1200)
def test_simulated_day_lands_exactly_once_despite_faults_late_blobs_and_kills(
    local_services: LocalServices,
    own_database: dict[str, str],
    simulator: TenantSimulator,
    tmp_path: Path,
) -> None:
    settings = _app_settings(simulator, own_database)
    hosts: list[HostProcess] = []

    def start_host() -> HostProcess:
        work_dir = tmp_path / f"host{len(hosts)}"
        work_dir.mkdir()
        host = HostProcess(app_dir=PROJECT_ROOT, work_dir=work_dir, environment=settings).start(timeout=60)
        hosts.append(host)
        return host

    host = start_host()
    try:
        for kill_at in KILL_AT:
            wait_until(
                lambda at=kill_at: _sim_now(simulator) >= at, timeout=600, interval=0.5, message=f"{kill_at}"
            )
            assert host.process is not None
            host.process.kill()  # SIGKILL: no cleanup, in-flight messages and a poll run are cut off
            host.process.wait()
            host = start_host()

        wait_until(lambda: _sim_now(simulator) >= SIM_END, timeout=600, interval=1, message="end of sim time")
        watermarks = WatermarkStore(get_clients().table("Watermarks"), TENANT_ID)

        def caught_up() -> bool:
            states = {s.source: s for s in watermarks.all()}
            return len(states) >= 8 and all(
                s.watermark is not None and s.watermark >= SIM_END.isoformat()[:19] for s in states.values()
            )

        wait_until(caught_up, timeout=300, interval=1, message="every source polled past the end")

        def drained() -> bool:
            return (
                _queue_depth(Queues.INGEST) == 0
                and host.status() is not None
                and all(q["in_flight"] == 0 for q in (host.status() or {}).get("queue_listeners", []))
            )

        def drained_twice() -> bool:
            if not drained():
                return False
            time.sleep(3)
            return drained()

        wait_until(drained_twice, timeout=900, interval=2, message="ingest drained")
    finally:
        exit_code = host.stop()
        for queue in (
            Queues.ALERTS,
            Queues.GOVERNANCE_EVALUATE,
        ):  # their functions were off: drop the backlog
            get_clients().queue(queue).clear_messages()

    truth = simulator.ground_truth()
    expected = set(truth["ids"])
    stored, total_documents = _stored_ids({f"{EPOCH:%Y-%m}", f"{EPOCH + dt.timedelta(days=1):%Y-%m}"})
    missing = expected - stored
    extra = stored - expected
    requests_log = simulator.requests()
    throttled = sum(1 for r in requests_log if r["status"] in (429,) or (r["status"] == 403))
    server_errors = sum(1 for r in requests_log if r["status"] >= 500)
    print(
        f"\nground truth: {len(expected)} events {truth['by_source']}; stored: {len(stored)}; "
        f"missing: {len(missing)}; extra: {len(extra)}; simulator requests: {len(requests_log)}, "
        f"throttled: {throttled}, server errors: {server_errors}; host restarts: {len(hosts) - 1}; "
        f"ingest poison: {_queue_depth(Queues.INGEST + '-poison')}; tenant documents: {total_documents}"
    )
    assert exit_code == 0
    assert len(expected) >= EVENTS_PER_DAY * 0.95
    assert not missing, f"{len(missing)} events lost: {_describe(simulator, missing)}"
    assert not extra, f"{len(extra)} unexpected events, e.g. {sorted(extra)[:5]}"
    assert total_documents == len(expected), "no copies in other partitions"
    assert throttled > 0
    assert server_errors > 0
    management = [r for r in requests_log if r["path"].startswith("/manage/")]
    assert management
    assert all(r["has_publisher_identifier"] for r in management)
