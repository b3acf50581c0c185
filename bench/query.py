"""Query API benchmark. Run: `.venv/bin/python bench/query.py [--events 10000] [--iterations 30]`.

Starts its own Azurite and cosmosdb-server (in memory, free loopback ports), seeds one tenant's events
over two month partitions into a dedicated Cosmos database, and starts the local Functions host
(`devtools.host`, API_AUTH_MODE=keys) against the app. For 5 representative filters it then times, side
by side in one run:

  API = GET /api/events?<filter> through the host with the function key, on a new connection per
        request (request sent -> whole body read; the client's JSON parsing is not timed)
  SDK = EventSearch(container, signer, tenant).search(query, now, None) in this process: the same
        parameterized per-month Cosmos SQL the API runs, through the azure-cosmos SDK, minus HTTP,
        host dispatch, key check, authentication, query-string validation and JSON serialization

Each filter is warmed up, then API and SDK calls alternate (the order flips every iteration and the
filters are visited round-robin) so both see the same machine load. Only the HTTP functions run in
the host: in Azure the .NET host, not the Python worker, polls queues and fires timers, so the local
host's queue listeners and timers are disabled to keep their polling out of the API timings.

Connections: by default a new one per request, as curl and the e2e tests send them. `--keep-alive`
reuses one, as a browser would. (The local host disables Nagle's algorithm: its headers and body go out
as separate writes, which on a reused connection used to wait ~40 ms for the client's delayed ACK.)

Aggregation: p50_ratio and p95_ratio are the MEDIAN over the 5 filters of the per-filter ratios
API p50 / SDK p50 and API p95 / SDK p95 (target, not asserted: p95_ratio <= 1.3). Ratios of the
pooled percentiles (all filters' samples together) are printed too, for reference.
The last line is one JSON object: {"p50_ratio": x, "p95_ratio": y, "events": n}.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.query_corpus import TENANT_ID, build_events
from devtools.services import PROJECT_ROOT, LocalServices, ServicePorts

SIGNING_KEY = "bench-query-continuation-secret-0123456789"
WRITE_CONCURRENCY = 16
WARMUP = 3
TARGET_P95_RATIO = 1.3

FILTERS: list[tuple[str, dict[str, str]]] = [
    ("newest page, no filter", {}),
    ("service=Exchange", {"service": "Exchange"}),
    ("actor=megan (substring)", {"actor": "megan"}),
    ("operation=Set-Mailbox&result=failure", {"operation": "Set-Mailbox", "result": "failure"}),
    ("q=finance&start=7d", {"q": "finance", "start": "7d"}),
]


def percentile(samples: list[float], fraction: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    ordered = sorted(samples)
    position = (len(ordered) - 1) * fraction
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


class ApiClient:
    """GET requests to the host: a new connection per request (as curl and the e2e tests send them),
    or with keep_alive one reused connection (as a browser would)."""

    def __init__(self, port: int, key: str, keep_alive: bool = False) -> None:
        self._port = port
        self._keep_alive = keep_alive
        self._headers = {"x-functions-key": key, "Accept": "application/json"}
        if not keep_alive:
            self._headers["Connection"] = "close"
        self._connection: http.client.HTTPConnection | None = None

    def get(self, path: str) -> tuple[int, bytes]:
        for attempt in (1, 2):
            if self._connection is None:
                self._connection = http.client.HTTPConnection("127.0.0.1", self._port, timeout=60)
            try:
                self._connection.request("GET", path, headers=self._headers)
                response = self._connection.getresponse()
                body = response.read()
            except (http.client.HTTPException, ConnectionError):
                self.close()  # a reused connection the server dropped: open a new one, once
                if attempt == 2 or not self._keep_alive:
                    raise
                continue
            if not self._keep_alive:
                self.close()
            return response.status, body
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


@dataclass
class FilterRun:
    name: str
    params: dict[str, str]
    path: str
    items: int = 0
    months: str = ""
    api: list[float] = field(default_factory=list)
    sdk: list[float] = field(default_factory=list)
    function: list[float] = field(default_factory=list)  # the host's own invocation time per API call

    def ratio(self, fraction: float) -> float:
        return percentile(self.api, fraction) / percentile(self.sdk, fraction)


def non_http_functions() -> list[str]:
    """Names of the app's timer and queue functions (the host is told to leave them disabled)."""
    from function_app import app

    names = (f.get_function_name() for f in app.get_functions() if not f.is_http_function())
    return [name for name in names if name]


def run_benchmark(
    port: int, key: str, iterations: int, keep_alive: bool
) -> tuple[list[FilterRun], list[int]]:
    """The runs and, in call order, the filter index of every timed API call."""
    from shared.api.events_query import EventSearch, parse_event_query, parse_query_string
    from shared.api.paging import ContinuationSigner
    from shared.platform.clients import get_clients
    from shared.platform.resources import CosmosContainers

    container = get_clients().cosmos_container(CosmosContainers.EVENTS.name)
    search = EventSearch(container, ContinuationSigner(SIGNING_KEY.encode("utf-8")), TENANT_ID)
    client = ApiClient(port, key, keep_alive)
    runs = [
        FilterRun(name, params, "/api/events" + ("?" + urllib.parse.urlencode(params) if params else ""))
        for name, params in FILTERS
    ]
    # Parsed once, exactly as the API parses its URL; parsing per request is API overhead.
    queries = [parse_event_query(parse_query_string(f"http://host{run.path}")) for run in runs]

    def api_call(run: FilterRun) -> bytes:
        status, body = client.get(run.path)
        if status != 200:
            raise RuntimeError(f"GET {run.path} answered {status}: {body[:500]!r}")
        return body

    def sdk_call(index: int) -> dict[str, Any]:
        return search.search(queries[index], dt.datetime.now(dt.UTC), None)

    try:
        for index, run in enumerate(runs):
            for _ in range(WARMUP):
                body = api_call(run)
                page = sdk_call(index)
            api_page = json.loads(body)
            api_ids = [item["id"] for item in api_page["items"]]
            sdk_ids = [item["id"] for item in page["items"]]
            if api_ids != sdk_ids:
                raise RuntimeError(f"{run.name}: the API and the SDK returned different events")
            if api_page["continuation"]:  # the SDK side reads the host's token: one secret, one query
                separator = "&" if "?" in run.path else "?"
                token = urllib.parse.quote(api_page["continuation"])
                url = f"http://host{run.path}{separator}continuation={token}"
                search.search(parse_event_query(parse_query_string(url)), dt.datetime.now(dt.UTC), None)
            run.items = len(sdk_ids)
            run.months = ",".join(sorted({item["timestamp"][:7] for item in page["items"]}, reverse=True))
        order = list(range(len(runs)))
        shuffler = random.Random(1)
        api_calls: list[int] = []
        for iteration in range(iterations):
            shuffler.shuffle(order)  # no filter always follows the same (heavy or light) one
            for index in order:
                run = runs[index]
                api_first = (iteration + index) % 2 == 0  # each filter: API first in half the rounds
                for side in ("api", "sdk") if api_first else ("sdk", "api"):
                    started = time.perf_counter()
                    if side == "api":
                        api_call(run)
                    else:
                        sdk_call(index)
                    elapsed = time.perf_counter() - started
                    if side == "api":
                        run.api.append(elapsed)
                        api_calls.append(index)
                    else:
                        run.sdk.append(elapsed)
    finally:
        client.close()
    return runs, api_calls


def attach_function_times(runs: list[FilterRun], api_calls: list[int], host_log: str) -> None:
    """The host logs one JSON line per invocation with its duration: give each timed API call its own."""
    durations = []
    for line in host_log.splitlines():
        start = line.find('{"event": "invocation"')
        if start >= 0:
            record = json.loads(line[start:])
            if record.get("function") == "list_events":
                durations.append(float(record["duration_ms"]) / 1000.0)
    if len(durations) < len(api_calls):
        return  # a log format this script does not know: leave the column empty
    for index, duration in zip(api_calls, durations[-len(api_calls) :], strict=True):
        runs[index].function.append(duration)


def report(runs: list[FilterRun], events: int, iterations: int) -> dict[str, Any]:
    def ms(samples: list[float], fraction: float) -> str:
        return f"{percentile(samples, fraction) * 1000:8.2f}" if samples else f"{'-':>8}"

    header = (
        f"{'filter':<38} {'items':>5} {'months':>15} {'api p50':>8} {'sdk p50':>8} {'ratio':>6} "
        f"{'api p95':>8} {'sdk p95':>8} {'ratio':>6} {'fn p50':>8}"
    )
    print(f"{iterations} timed calls per filter and side, in ms, after {WARMUP} warm-up calls each.")
    print("fn = the function's own time as the host logs it (auth, validation, query, JSON)")
    print(header)
    print("-" * len(header))
    for run in runs:
        print(
            f"{run.name:<38} {run.items:>5} {run.months:>15} {ms(run.api, 0.5)} {ms(run.sdk, 0.5)} "
            f"{run.ratio(0.5):>6.3f} {ms(run.api, 0.95)} {ms(run.sdk, 0.95)} {run.ratio(0.95):>6.3f} "
            f"{ms(run.function, 0.5)}"
        )
    all_api = [t for run in runs for t in run.api]
    all_sdk = [t for run in runs for t in run.sdk]
    all_function = [t for run in runs for t in run.function]
    print("-" * len(header))
    print(
        f"{'pooled (all filters)':<38} {'':>5} {'':>15} {ms(all_api, 0.5)} {ms(all_sdk, 0.5)} "
        f"{percentile(all_api, 0.5) / percentile(all_sdk, 0.5):>6.3f} {ms(all_api, 0.95)} "
        f"{ms(all_sdk, 0.95)} {percentile(all_api, 0.95) / percentile(all_sdk, 0.95):>6.3f} "
        f"{ms(all_function, 0.5)}"
    )
    paired = [statistics.median(a - s for a, s in zip(r.api, r.sdk, strict=True)) * 1000 for r in runs]
    print(f"API - SDK, median of paired calls, per filter: {', '.join(f'{d:.1f}' for d in paired)} ms")
    if all(run.function for run in runs):
        transport = [
            statistics.median(a - f for a, f in zip(r.api, r.function, strict=True)) * 1000 for r in runs
        ]
        print(
            "API - fn (HTTP, connection, host dispatch and key check), per filter: "
            f"{', '.join(f'{d:.1f}' for d in transport)} ms"
        )
    p50_ratio = statistics.median(run.ratio(0.5) for run in runs)
    p95_ratio = statistics.median(run.ratio(0.95) for run in runs)
    print(
        f"median of per-filter ratios: p50 {p50_ratio:.3f}, p95 {p95_ratio:.3f} "
        f"(target p95 <= {TARGET_P95_RATIO}: {'met' if p95_ratio <= TARGET_P95_RATIO else 'NOT met'})"
    )
    return {"p50_ratio": round(p50_ratio, 3), "p95_ratio": round(p95_ratio, 3), "events": events}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=10_000, help="events to seed (default 10,000)")
    parser.add_argument("--iterations", type=int, default=30, help="timed calls per filter and side")
    parser.add_argument(
        "--keep-alive",
        action="store_true",
        help="reuse one HTTP connection, as a browser would",
    )
    args = parser.parse_args()
    if args.events < 1 or args.iterations < 2:
        parser.error("--events must be at least 1 and --iterations at least 2")

    started = time.perf_counter()
    state = Path(tempfile.mkdtemp(prefix="aoc-bench-query-"))
    services = LocalServices(ports=ServicePorts.free(), state_dir=state, in_memory=True)
    host = None
    try:
        services.start()
        database = f"aoc-bench-query-{uuid.uuid4().hex[:8]}"
        settings = {
            **services.app_environment(),
            "AOC_LOCAL_SETTINGS_FILE": str(state / "absent.json"),
            "COSMOS_DATABASE": database,
            "M365_TENANT_ID": TENANT_ID,
            "API_AUTH_MODE": "keys",
            "API_CONTINUATION_SECRET": SIGNING_KEY,
            "PROBE_ENABLED": "false",
            "DATASETS_REFRESH_SCHEDULE": "0 0 0 1 1 *",  # the refresh_datasets timer's binding refers to it
            "POLL_SCHEDULE": "0 0 0 1 1 *",  # bindings refer to it; never fires during the run
            "GOVERNANCE_DISCOVERY_SCHEDULE": "0 0 0 1 1 *",
        }
        os.environ.update(settings)

        from shared.ingestion.event_store import EventStore
        from shared.platform.bootstrap import bootstrap
        from shared.platform.clients import get_clients
        from shared.platform.resources import CosmosContainers
        from tests.support.host_process import FUNCTION_KEY, HostProcess

        clients = get_clients()
        bootstrap(clients)
        events = build_events(args.events, dt.datetime.now(dt.UTC))
        store = EventStore(
            clients.cosmos_container(CosmosContainers.EVENTS.name),
            clients.cosmos_container(CosmosContainers.FACETS.name),
            WRITE_CONCURRENCY,
        )
        seeding = time.perf_counter()
        store.write_events(events)
        store.close()
        months = sorted({e["pk"].rsplit(":", 1)[1] for e in events})
        print(
            f"seeded {len(events)} events for tenant {TENANT_ID} in months {', '.join(months)} "
            f"(database {database}) in {time.perf_counter() - seeding:.1f} s"
        )

        disabled = {f"AzureWebJobs.{name}.Disabled": "true" for name in non_http_functions()}
        work_dir = state / "host"
        work_dir.mkdir()
        host = HostProcess(app_dir=PROJECT_ROOT, work_dir=work_dir, environment={**settings, **disabled})
        host.start(timeout=60)
        names = sorted(name.split(".")[1] for name in disabled)
        print(f"host on port {host.port}; non-HTTP functions disabled: {', '.join(names)}")

        runs, api_calls = run_benchmark(host.port, FUNCTION_KEY, args.iterations, args.keep_alive)
        attach_function_times(runs, api_calls, host.log())
        result = report(runs, len(events), args.iterations)
        print(f"total {time.perf_counter() - started:.1f} s")
        print(json.dumps(result))
    finally:
        try:
            if host is not None and host.process is not None:
                host.stop()
        finally:
            services.stop()
            shutil.rmtree(state, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
