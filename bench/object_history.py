"""Object history benchmark. Run: `.venv/bin/python bench/object_history.py [--events 100000]`.

Starts its own Azurite and cosmosdb-server (in memory, free loopback ports), seeds one tenant's events
over two month partitions (bench/query_corpus.py) with the app's EventStore, then times, side by side in
one process through the azure-cosmos SDK:

  HISTORY = ObjectHistory.page(object id, last 30 days, 50 per page): what GET /api/objects/{id}/history
            runs (one single-partition query per month, newest first, exact match on actor.id,
            actor.upn and targets[].id)
  NEWEST  = EventSearch.search with no filter, newest 50: what the explorer's first page runs
  TARGET  = EventSearch.search with `target=<object id>`, newest 50: the explorer's target filter (a
            case-insensitive substring over targets' ids and names), the nearest existing query

for objects from the busiest actor to one no event names, rotating the order of the three calls so all
see the same machine load. It prints p50 and p95 per object, the ratios of HISTORY's p50 to the other
two, and
the request charge the server reported (cosmosdb-server reports none that means anything: Azure's RU
figures are in the README, "HTTP API"). Locally cosmosdb-server evaluates every query by scanning the
whole container, so a selective filter is not cheaper here than the newest page; in Azure the filter is
answered from the range index. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.query_corpus import TENANT_ID, build_events
from devtools.services import LocalServices, ServicePorts

WRITE_CONCURRENCY = 16
WARMUP = 2


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    position = (len(ordered) - 1) * fraction
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def objects(events: list[dict[str, Any]], now: dt.datetime) -> list[tuple[str, str, int]]:
    """(label, object id, events in the last 30 days naming it) from busiest to absent."""
    since = (now - dt.timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%S")
    counts: Counter[str] = Counter()
    for event in events:
        if event["timestamp"] < since:
            continue
        named = {event["actor"].get("id"), event["actor"].get("upn")}
        named |= {t.get("id") for t in event["targets"]}
        counts.update(i for i in named if i)
    actors = Counter(e["actor"]["id"] for e in events if e["actor"].get("id"))
    busiest = actors.most_common(1)[0][0]
    quiet = min(actors, key=lambda a: (actors[a], a))
    group = "grp-finance"
    device = min((i for i in counts if "-LT-" in i), key=lambda i: (counts[i], i))
    absent = str(uuid.UUID(int=0))
    return [
        ("busiest actor (object id)", busiest, counts[busiest]),
        ("a quiet actor (object id)", quiet, counts[quiet]),
        ("a group (target id)", group, counts[group]),
        ("a device (target id)", device, counts[device]),
        ("an id no event holds", absent, 0),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=100_000, help="events to seed (default 100,000)")
    parser.add_argument("--iterations", type=int, default=10, help="timed calls per object and side")
    args = parser.parse_args()
    if args.events < 1 or args.iterations < 2:
        parser.error("--events must be at least 1 and --iterations at least 2")
    state = Path(tempfile.mkdtemp(prefix="aoc-bench-history-"))
    services = LocalServices(ports=ServicePorts.free(), state_dir=state, in_memory=True)
    try:
        services.start()
        os.environ.update(
            {
                **services.app_environment(),
                "AOC_LOCAL_SETTINGS_FILE": str(state / "absent.json"),
                "COSMOS_DATABASE": f"aoc-bench-history-{uuid.uuid4().hex[:8]}",
                "M365_TENANT_ID": TENANT_ID,
            }
        )
        from shared.api.events_query import EventQuery, EventSearch
        from shared.api.history_api import HistoryQuery, ObjectHistory
        from shared.api.paging import ContinuationSigner
        from shared.ingestion.event_store import EventStore
        from shared.platform.bootstrap import bootstrap
        from shared.platform.clients import get_clients
        from shared.platform.resources import CosmosContainers

        clients = get_clients()
        bootstrap(clients)
        now = dt.datetime.now(dt.UTC)
        events = build_events(args.events, now)
        container = clients.cosmos_container(CosmosContainers.EVENTS.name)
        store = EventStore(
            container, clients.cosmos_container(CosmosContainers.FACETS.name), WRITE_CONCURRENCY
        )
        seeding = time.perf_counter()
        for start in range(0, len(events), 1000):
            store.write_events(events[start : start + 1000])
        store.close()
        print(f"seeded {len(events)} events in {time.perf_counter() - seeding:.1f} s")

        signer = ContinuationSigner(b"bench-object-history-secret-0123")
        history = ObjectHistory(container, signer, TENANT_ID)
        search = EventSearch(container, signer, TENANT_ID)
        query = HistoryQuery()

        def charge() -> str:
            headers: dict[str, Any] = dict(container.client_connection.last_response_headers or {})
            return str(headers.get("x-ms-request-charge", "none"))

        results: dict[str, Any] = {}
        for label, object_id, named in objects(events, now):
            sides = ["history", "newest", "target"]
            timed: dict[str, list[float]] = {side: [] for side in sides}
            for i in range(WARMUP + args.iterations):
                for side in sides[i % 3 :] + sides[: i % 3]:
                    began = time.perf_counter()
                    if side == "history":
                        page = history.page(object_id, query, now, None)
                        shown, charged = len(page.items), charge()
                    elif side == "newest":
                        search.search(EventQuery(), now, None)
                    else:
                        search.search(EventQuery(target=object_id), now, None)
                    if i >= WARMUP:
                        timed[side].append((time.perf_counter() - began) * 1000)
            p50 = {side: statistics.median(timed[side]) for side in sides}
            results[label] = {
                "events_naming_it": named,
                "first_page": shown,
                "history_p50_ms": round(p50["history"], 1),
                "history_p95_ms": round(percentile(timed["history"], 0.95), 1),
                "newest_p50_ms": round(p50["newest"], 1),
                "target_filter_p50_ms": round(p50["target"], 1),
                "history_over_newest": round(p50["history"] / p50["newest"], 2),
                "history_over_target_filter": round(p50["history"] / p50["target"], 2),
                "request_charge": charged,
            }
            print(f"{label:27} {named:6d} events, page {shown:3d}: history p50 {p50['history']:7.1f} ms "
                  f"p95 {results[label]['history_p95_ms']:7.1f} | newest {p50['newest']:7.1f} | target= "
                  f"{p50['target']:7.1f} | ratios {results[label]['history_over_newest']:.2f} "
                  f"{results[label]['history_over_target_filter']:.2f} | charge {charged}")  # fmt: skip
        print(json.dumps({"events": len(events), "objects": results}))
    finally:
        services.stop()
        shutil.rmtree(state, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
