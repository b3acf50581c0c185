"""Service principal governance benchmark. Run: `.venv/bin/python bench/governance.py
[--principals 5000] [--throttle-rate 0.05] [--concurrency 8]`.

Starts its own Azurite, cosmosdb-server (in memory) and two tenant simulators on free loopback ports (the
same seeded tenant of `--principals` live service principals: one clean, one answering a share of Graph
calls, batched ones included, 429 with `Retry-After: 0`) and measures, in one run:

a. Graph requests per full sweep (a discovery baseline, GovernanceDiscovery.run) against the minimum:
   delta pages + ceil(reads / 20), both from the discovery's own counts, which are checked against the
   requests the simulator logged (target <= 1.05);
b. the same sweep under throttling, against the minimum and against the minimum plus what the faults
   force (the retried requests, 20 to a batch, and the calls sent again whole);
c. objects evaluated per second: GovernanceService.evaluate over the discovered objects against
   cosmosdb-server (a fresh tenant, so every object is a first evaluation: its findings, audit entry,
   object record and activity counts are written), `--concurrency` at a time as the evaluate queue's
   batch runs them, and the pure validators alone (shared.governance.validators.evaluate, best of 3)
   over the same objects, side by side, with their ratio.

The last line is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime as dt
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.timing import best_of
from devtools.services import LocalServices, ServicePorts
from devtools.simulator import SimulatorConfig, TenantSimulator

EPOCH = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
DAY = 86_400.0
SEED = 11  # the discovery integration test's tenant
GRAPH_SCOPE = "https://graph.microsoft.com/.default"
TARGET_RATIO = 1.05


def start_simulator(principals: int, **faults: Any) -> TenantSimulator:
    """A simulator whose sim clock reads one day after the epoch (the tenant's credentials are dated
    around it), as tests/support/simulator_client.simulator_at starts one."""
    config = SimulatorConfig(
        epoch=EPOCH,
        seed=SEED,
        events_per_day=50,
        service_principals=principals,
        started_at_unix=time.time() - DAY,
        **faults,
    )
    return TenantSimulator(config).start()


def app_token(sim: TenantSimulator) -> str:
    response = requests.post(
        f"{sim.authority}/oauth2/v2.0/token",
        data={
            "client_id": "aoc-bench",
            "client_secret": "bench-secret",
            "grant_type": "client_credentials",
            "scope": GRAPH_SCOPE,
        },
        timeout=10,
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


def graph_requests(sim: TenantSimulator) -> int:
    return sum(1 for entry in sim.requests() if entry.get("api") == "graph")


def sweep(sim: TenantSimulator) -> tuple[Any, list[Any], int, float]:
    """One full discovery of the simulator's tenant: its result, the objects read whole, the Graph
    requests the simulator logged, and the seconds it took."""
    from shared.governance.delta_state import TableDeltaStateStore
    from shared.governance.discovery import CollectingSink, GovernanceDiscovery
    from shared.m365.auth import StaticTokenProvider
    from shared.m365.http_client import ApiClient
    from shared.platform.clients import get_clients
    from shared.platform.clock import SystemClock

    table = get_clients().table_service.create_table(f"benchdelta{uuid.uuid4().hex[:12]}")
    try:
        api = ApiClient(StaticTokenProvider(app_token(sim)), timeout=(5.0, 60.0))
        discovery = GovernanceDiscovery(
            api, sim.graph_base_url, GRAPH_SCOPE, TableDeltaStateStore(table), SystemClock()
        )
        sink = CollectingSink()
        before = graph_requests(sim)
        started = time.perf_counter()
        result = discovery.run(
            sim.config.tenant_id,
            run_id=f"act-discovery-{uuid.uuid4().hex}",
            trigger="request",
            sink=sink,
            full_seed=True,
        )
        seconds = time.perf_counter() - started
        return result, sink.objects, graph_requests(sim) - before, seconds
    finally:
        table.delete_table()


def measure_evaluation(objects: list[Any], concurrency: int) -> dict[str, Any]:
    """Objects per second through GovernanceService.evaluate (Cosmos DB) and through the validators alone."""
    from shared.governance.config import load_default_validators
    from shared.governance.messages import activity_id, evaluation_id
    from shared.governance.service import GovernanceService
    from shared.governance.store import (
        CosmosActivityStore,
        CosmosAuditSink,
        CosmosGovernanceStore,
        TableUpdateClaims,
    )
    from shared.governance.validators import evaluate
    from shared.platform.clients import get_clients
    from shared.platform.resources import CosmosContainers, Tables

    validators = load_default_validators()
    governed = [o.governed for o in objects]
    now = EPOCH + dt.timedelta(days=1)

    def validators_alone() -> int:
        return sum(len(evaluate(obj, validators, now)) for obj in governed)

    findings = validators_alone()
    pure_seconds = best_of(3, validators_alone)

    clients = get_clients()
    container = clients.cosmos_container(CosmosContainers.GOVERNANCE.name)
    service = GovernanceService(
        CosmosGovernanceStore(container),
        CosmosActivityStore(container),
        CosmosAuditSink(clients.cosmos_container(CosmosContainers.AUDIT.name)),
        TableUpdateClaims(clients.table(Tables.GOVERNANCE_UPDATES)),
        None,
        validators,
        mode="ReportOnly",
        graph_base="https://graph.microsoft.com",
    )
    tenant = f"bench-{uuid.uuid4().hex[:12]}"
    batch = activity_id("evaluation", tenant, "bench")

    def one(obj: Any) -> str:
        outcome = service.evaluate(
            tenant,
            obj,
            now,
            evaluation_id=evaluation_id(tenant, obj.id, batch),
            batch_id=batch,
            trigger="discovery",
        )
        return str(outcome.result)

    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
        results = list(pool.map(one, governed))
    service_seconds = time.perf_counter() - started
    return {
        "objects": len(governed),
        "findings": findings,
        "failed": results.count("fail"),
        "passed": results.count("pass"),
        "service_per_second": len(governed) / service_seconds,
        "validators_per_second": len(governed) / pure_seconds,
        "service_seconds": service_seconds,
        "validators_seconds": pure_seconds,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--principals", type=int, default=5000, help="live service principals in the tenant")
    parser.add_argument("--throttle-rate", type=float, default=0.05, help="share of Graph calls answered 429")
    parser.add_argument("--concurrency", type=int, default=8, help="evaluations at a time against Cosmos DB")
    args = parser.parse_args()

    state = Path(tempfile.mkdtemp(prefix="aoc-bench-"))
    services = LocalServices(ports=ServicePorts.free(), state_dir=state, in_memory=True)
    services.start()
    clean = start_simulator(args.principals)
    throttled = start_simulator(
        args.principals,
        throttle_rate=args.throttle_rate,
        throttle_without_retry_after=0.0,
        retry_after_seconds=0,
    )
    try:
        os.environ.update(services.app_environment())
        os.environ["AOC_LOCAL_SETTINGS_FILE"] = str(state / "absent.json")
        from shared.governance.graph_reader import MAX_BATCH_REQUESTS
        from shared.platform.bootstrap import bootstrap
        from shared.platform.clients import get_clients

        bootstrap(get_clients())

        result, objects, logged, seconds = sweep(clean)
        counts = result.counts
        if result.status != "succeeded" or counts.requests != logged:
            raise SystemExit(f"the clean sweep {result.status}: {counts.requests} counted, {logged} logged")
        ratio = counts.requests / counts.minimum_requests
        print(
            f"a. full sweep of {counts.discovered} principals in {seconds:.1f} s: {counts.delta_pages} delta "
            f"pages + {counts.reads} reads in {counts.batches} batches = {counts.requests} Graph requests "
            f"(simulator logged {logged}); minimum {counts.minimum_requests}: {ratio:.4f}x "
            f"(target <= {TARGET_RATIO})"
        )

        t_result, t_objects, t_logged, t_seconds = sweep(throttled)
        t_counts = t_result.counts
        if t_result.status != "succeeded" or len(t_objects) != len(objects) or t_counts.errors:
            raise SystemExit(f"the throttled sweep {t_result.status}: {t_result.failure}")
        forced = -(-t_counts.inner_retries // MAX_BATCH_REQUESTS) + t_counts.outer_retries
        t_ratio = t_counts.requests / t_counts.minimum_requests
        t_forced_ratio = t_counts.requests / (t_counts.minimum_requests + forced)
        print(
            f"b. under throttling ({args.throttle_rate:.0%} of Graph calls 429) in {t_seconds:.1f} s: "
            f"{t_counts.requests} requests (logged {t_logged}), minimum {t_counts.minimum_requests}: "
            f"{t_ratio:.4f}x; {t_counts.inner_retries} requests retried inside batches, "
            f"{t_counts.outer_retries} calls sent again: against minimum + forced "
            f"({t_counts.minimum_requests + forced}) {t_forced_ratio:.4f}x"
        )

        evaluation = measure_evaluation(objects, args.concurrency)
        per_second, pure = evaluation["service_per_second"], evaluation["validators_per_second"]
        print(
            f"c. {evaluation['objects']} objects ({evaluation['failed']} failing, {evaluation['findings']} "
            f"findings): GovernanceService.evaluate on cosmosdb-server {per_second:.0f} objects/s "
            f"({args.concurrency} at a time, {evaluation['service_seconds']:.1f} s); validators alone "
            f"{pure:.0f} objects/s; storage-bound share {1 - per_second / pure:.3f}"
        )
        print(
            json.dumps(
                {
                    "principals": counts.discovered,
                    "requests": counts.requests,
                    "minimum_requests": counts.minimum_requests,
                    "requests_vs_minimum": round(ratio, 4),
                    "throttled_requests_vs_minimum": round(t_ratio, 4),
                    "throttled_requests_vs_minimum_plus_forced": round(t_forced_ratio, 4),
                    "evaluated_per_second": round(per_second, 1),
                    "validators_per_second": round(pure, 1),
                    "service_vs_validators": round(per_second / pure, 4),
                }
            )
        )
    finally:
        throttled.stop()
        clean.stop()
        services.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
