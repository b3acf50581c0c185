"""Ingestion benchmark. Run: `.venv/bin/python bench/ingest.py [--records 20000]`.

Starts its own Azurite, cosmosdb-server and tenant simulator on free loopback ports and prints ratios
measured side by side in one run (absolute times on shared machines are noise):

a. normalize cost per record / json.loads of the same raw record          (target <= 1.5)
b. end-to-end ingest throughput / direct concurrent SDK upserts            (target >= 0.8)
c. Graph audit requests / (minimum pages + one request per source per run) (target <= 1.05)

The last line is one JSON object with the three figures and the record count.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime as dt
import json
import math
import os
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.timing import best_of_interleaved
from devtools.services import LocalServices, ServicePorts
from devtools.simulator import SimulatorConfig, TenantSimulator
from devtools.simulator.generator import Tenant
from devtools.simulator.render import render

TENANT_ID = "00000000-0000-0000-0000-0000000000bb"
PAGE_SIZE = 1000
CONCURRENCY = 16


def build_corpus(records: int) -> tuple[SimulatorConfig, list[tuple[str, dict[str, Any]]]]:
    now = time.time()
    config = SimulatorConfig(
        tenant_id=TENANT_ID,
        seed=42,
        events_per_day=records,
        epoch=dt.datetime.fromtimestamp(now, dt.UTC) - dt.timedelta(days=5),
        speed=1.0,
        started_at_unix=now - 5 * 86400,  # the simulated clock reads "now": every record is visible
    )
    tenant = Tenant(config)
    corpus = [(r.source, render(r, tenant.render_context)) for r in tenant.records if not r.malformed]
    return config, corpus


def measure_normalize(corpus: list[tuple[str, dict[str, Any]]]) -> float:
    from shared.ingestion.normalize import normalize_record

    texts = [json.dumps(record) for _, record in corpus]
    parsed = [(source, json.loads(text)) for (source, _), text in zip(corpus, texts, strict=True)]
    ingested_at = "2026-11-22T00:00:00.000Z"

    def loads() -> None:
        for text in texts:
            json.loads(text)

    def normalize() -> None:
        for source, record in parsed:
            normalize_record(source, record, tenant_id=TENANT_ID, ingested_at=ingested_at)

    normalize()  # warm caches (mappings, compiled templates)
    normalize_seconds, loads_seconds = best_of_interleaved(7, normalize, loads)
    return normalize_seconds / loads_seconds


def _pages(corpus: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, list[dict[str, Any]]]]:
    by_source: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for source, record in corpus:
        by_source[source].append(record)
    return [
        (source, records[i : i + PAGE_SIZE])
        for source, records in by_source.items()
        for i in range(0, len(records), PAGE_SIZE)
    ]


def measure_pipeline_vs_direct(corpus: list[tuple[str, dict[str, Any]]]) -> tuple[float, float, float]:
    from azure.cosmos import PartitionKey

    from shared.app.runtime import ingest_service
    from shared.ingestion.archive import RawArchive
    from shared.ingestion.event_store import EventStore
    from shared.ingestion.ingest import IngestService
    from shared.ingestion.messages import IngestMessage
    from shared.ingestion.normalize import normalize_record
    from shared.ingestion.sources.handoff import PageHandOff
    from shared.ingestion.watermarks import WatermarkStore
    from shared.platform.clients import get_clients
    from shared.platform.clock import SystemClock
    from shared.platform.resources import CosmosContainers, Queues

    clients = get_clients()
    database = clients.cosmos_database
    ingested_at = "2026-11-22T00:00:00.000Z"
    documents = [normalize_record(s, r, tenant_id=TENANT_ID, ingested_at=ingested_at) for s, r in corpus]
    unique = list({d["id"]: d for d in documents}.values())
    pages = _pages(corpus)
    archive = RawArchive(clients.blob_service)
    queue = clients.queue(Queues.INGEST)
    handoff = PageHandOff(archive, queue, TENANT_ID)
    resolver = ingest_service()._resolver  # the same name resolver the app builds (simulator getByIds)

    def fresh(name: str) -> Any:
        return database.create_container(
            id=f"{name}-{uuid.uuid4().hex[:8]}",
            partition_key=PartitionKey(path="/pk"),
            indexing_policy=CosmosContainers.EVENTS.indexing_policy(),
        )

    def direct() -> float:
        container = fresh("direct")
        started = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(max_workers=CONCURRENCY) as pool:
            list(pool.map(container.upsert_item, unique))
        return len(unique) / (time.perf_counter() - started)

    def pipeline() -> float:
        events, facets = fresh("events"), fresh("facets")
        store = EventStore(events, facets, CONCURRENCY)
        service = IngestService(
            archive,
            store,
            WatermarkStore(clients.table("Watermarks"), TENANT_ID),
            TENANT_ID,
            SystemClock(),
            resolver=resolver,
        )
        run_id = uuid.uuid4().hex[:12]
        started = time.perf_counter()
        run_started = dt.datetime.now(dt.UTC)
        messages = [
            handoff(source, records, run_id=run_id, run_started=run_started, page=n)
            for n, (source, records) in enumerate(pages, start=1)
        ]
        received: list[IngestMessage] = []
        while len(received) < len(messages):
            for message in queue.receive_messages(max_messages=32, visibility_timeout=300):
                received.append(IngestMessage.model_validate_json(message.content))
                queue.delete_message(message)
        with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
            reports = list(pool.map(service.process, received))
        elapsed = time.perf_counter() - started
        stored = sum(r.stored for r in reports)
        store.close()
        assert stored == len(unique), f"pipeline stored {stored} of {len(unique)}"
        return stored / elapsed

    direct_rates, pipeline_rates = [], []
    for _ in range(2):  # alternate so drift on the shared machine hits both alike
        direct_rates.append(direct())
        pipeline_rates.append(pipeline())
    best_direct, best_pipeline = max(direct_rates), max(pipeline_rates)
    return best_pipeline / best_direct, best_pipeline, best_direct


def measure_graph_requests(
    simulator: TenantSimulator, corpus: list[tuple[str, dict[str, Any]]]
) -> dict[str, Any]:
    from shared.app.runtime import poller
    from shared.ingestion.sources.graph import GRAPH_SOURCES

    report = poller().run()
    failed = [s.source for s in report.sources if s.error]
    graph_paths = {spec.path: name for name, spec in GRAPH_SOURCES.items()}
    requests = [r for r in simulator.requests() if r["path"].removeprefix("/graph") in graph_paths]
    counts: dict[str, int] = defaultdict(int)
    for source, _ in corpus:
        if source in GRAPH_SOURCES:
            counts[source] += 1
    min_pages = sum(math.ceil(n / GRAPH_SOURCES[s].page_size) for s, n in counts.items())
    allowance = len(counts)  # one request per source per run
    events = sum(counts.values())
    return {
        "requests": len(requests),
        "min_pages": min_pages,
        "ratio": len(requests) / min_pages,
        "within_target": len(requests) <= 1.05 * min_pages + allowance,
        "per_1000_events": 1000 * len(requests) / max(events, 1),
        "failed_sources": failed,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=20000, help="records in the corpus (at least 20,000)")
    args = parser.parse_args()

    config, corpus = build_corpus(args.records)
    print(f"corpus: {len(corpus)} records from the tenant simulator (seed {config.seed})")

    state = Path(tempfile.mkdtemp(prefix="aoc-bench-"))
    services = LocalServices(ports=ServicePorts.free(), state_dir=state, in_memory=True)
    services.start()
    simulator = TenantSimulator(config).start()
    try:
        os.environ.update(services.app_environment())
        os.environ.update(
            {
                "AOC_LOCAL_SETTINGS_FILE": str(state / "absent.json"),
                "M365_TENANT_ID": TENANT_ID,
                "M365_AUTH_MODE": "msal",
                "M365_CLIENT_ID": "11111111-2222-3333-4444-555555555555",
                "M365_CLIENT_SECRET": "bench-secret",
                "M365_AUTHORITY_HOST": simulator.base_url,
                "GRAPH_BASE_URL": f"{simulator.base_url}/graph",
                "MANAGEMENT_BASE_URL": f"{simulator.base_url}/manage",
                "SOURCE_ENTRA_SIGNIN": "true",
                "SOURCE_O365_MANAGEMENT": "false",
                "INITIAL_LOOKBACK_SECONDS": str(6 * 86400),
            }
        )
        from shared.platform.bootstrap import bootstrap
        from shared.platform.clients import get_clients

        bootstrap(get_clients())

        normalize_ratio = measure_normalize(corpus)
        print(f"a. normalize / json.loads per record: {normalize_ratio:.2f}x (target <= 1.5)")

        pipeline_ratio, pipeline_rate, direct_rate = measure_pipeline_vs_direct(corpus)
        print(
            f"b. pipeline {pipeline_rate:.0f} events/s vs direct upserts {direct_rate:.0f} docs/s: "
            f"{pipeline_ratio:.2f}x (target >= 0.8)"
        )

        graph = measure_graph_requests(simulator, corpus)
        print(
            f"c. Graph audit requests {graph['requests']} for {graph['min_pages']} minimum pages "
            f"{graph['ratio']:.3f}x (target <= 1.05x plus 1 per source per run: {graph['within_target']}); "
            f"{graph['per_1000_events']:.2f} requests per 1,000 events; "
            f"failed sources: {graph['failed_sources']}"
        )
        print(
            json.dumps(
                {
                    "normalize_vs_json_loads": round(normalize_ratio, 3),
                    "pipeline_vs_direct_upsert": round(pipeline_ratio, 3),
                    "requests_vs_min_pages": round(graph["ratio"], 3),
                    "records": len(corpus),
                }
            )
        )
    finally:
        simulator.stop()
        services.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
