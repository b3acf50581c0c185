"""Console benchmark. Run: `.venv/bin/python bench/console.py [--events 100000] [--iterations 7]`.

Starts its own Azurite and cosmosdb-server (in memory, free loopback ports), seeds one tenant's events
(bench/query_corpus.py, this month and the last) with the app's EventStore, builds the console
(web/build.mjs), starts the tenant simulator over TLS as the Entra tenant and the local Functions host
with the API in Entra mode serving the console at `/`. Chromium (Debian's, through Playwright) signs in
once through the simulator's sign-in page (PKCE), then, in the same run, each iteration:

  UI  = a fresh navigation to `/` (the default view: last 30 days, no filter), timed in the page from
        navigation start (performance.now()) to the first result row rendered, and to the service facets
        and the histogram bars rendered (the later of the two);
  API = the same view's API calls with the URLs and the bearer token the page just used: GET /api/events,
        /api/events/facets, /api/events/histogram and /api/version, sent side by side as the console sends
        them (one thread each, kept-alive connections, as a browser holds up to six per origin), timed
        from this process from the moment all four are sent: first results = the events call; facets
        and histogram = the later of those two. Sent one after the other instead, the calls would not
        contend for the API host and Cosmos DB as the page's calls do, and the ratio would count that
        contention as the console's.
UI and API alternate, so both see the same machine load. first_results_vs_api and facets_vs_api are the
medians over the iterations of UI / API (target, not asserted: at most 1.5). The UI's time includes
what a user waits for on a reload: the page, its JavaScript, /config.json, MSAL's start-up and its
silent token from the cache. js_gzip_kb is the gzipped JavaScript of the app and its libraries, MSAL
excluded (web/dist/build-info.json, the budget the build enforces).
Each round also prints where the page's time went: the start-up marks the console sets (aoc:config,
aoc:signed-in, aoc:token) and when its /api/events request was sent and answered.

Two more views are measured the same way in each round, right after the explorer's (UI, then API):

  alerts  = a fresh navigation to `/alerts` (the queue without filters): UI until the first alert row
            and the open-alert counts have both rendered; API = every API call the page sent at start
            (captured from its requests, with their URLs and token: GET /api/alerts?page_size=50,
            /api/alerts/summary and what the shell sends on any page, /api/events/facets and
            /api/version), sent side by side, until /api/alerts and /api/alerts/summary are both
            answered. alerts_vs_api is the median of UI / API; alert_rows_vs_api (first row against
            /api/alerts) and alert_counts_vs_api (counts against /api/alerts/summary) are its parts.
  history = a fresh navigation to `/history?id=<id>` (the default range, the last 30 days) for the
            busiest object of the corpus: the actor or target id, of the object id grammar, that the
            most events of the last 30 days name (as actor.id, actor.upn or a targets[].id). UI until
            the first history event renders; API = the page's start-up calls sent side by side, until
            GET /api/objects/{id}/history is answered. history_vs_api is the median of UI / API.

The alerts are opened by the app's own AlertService (shared.app.runtime.alert_service: the default rule
pack, the app's grouping and dedupe settings, no channels) over the seeded events of the last
ALERT_DAYS days, as the alert worker would have evaluated them: a few hundred rule and actor groups at
100,000 events. They stay open (the summary counts all of them).
The last line is one JSON object: {"first_results_vs_api": x, "facets_vs_api": y, "js_gzip_kb": z,
"alerts_vs_api": a, "history_vs_api": h, ...}; the other keys: the parts of the alerts ratio, each
view's median UI and API milliseconds (alerts_ui_ms, alerts_api_ms, history_ui_ms, history_api_ms), the
alerts seeded, the history's object and the events naming it, and the calls each view's API side sent.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.query_corpus import TENANT_ID, build_events
from devtools.services import PROJECT_ROOT, LocalServices, ServicePorts

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
API_CLIENT_ID = "5b0f3c9e-2d4a-4f61-9a7e-3c1d2b8e6f40"
API_APP_ID_URI = "api://aoc-functions-bench"
SPA_CLIENT_ID = "3f6d2a1b-9c8e-4b7a-a6f5-e4d3c2b1a0b0"
ROLES = ("AOC.Reader", "AOC.Privacy")
WRITE_CONCURRENCY = 16
TARGET_RATIO = 1.5
WAIT_MS = 600_000  # cosmosdb-server answers a 100,000-event view slowly: wait, then report
ROW = "[data-testid='row']"
FACET = "[data-testid^='facet-service-']"
BAR = "[data-testid='histogram-bar']"
ALERT_ROW = "[data-testid='alert-row']"
ALERT_COUNTS = "[data-testid='summary-open']"
HISTORY_EVENT = "[data-testid='history-event']"
ALERT_DAYS = 7  # the alerts: the AlertService over the seeded events of the last ALERT_DAYS days
HISTORY_DAYS = 30  # the history page's default range


def build_console() -> int:
    """Build web/dist; return the budgeted gzipped JavaScript (bytes) build-info.json reports."""
    web = PROJECT_ROOT / "web"
    node = shutil.which("node")
    if node is None:
        raise SystemExit("node is not on PATH: run `make install`")
    subprocess.run([node, "build.mjs"], cwd=web, check=True, timeout=300)
    info = json.loads((web / "dist" / "build-info.json").read_text())
    return int(info["budget"]["gzip_bytes"])


def ca_bundle(services: LocalServices, directory: Path) -> Path:
    """Public roots plus the local CA: the host verifies the simulator's TLS certificate (JWKS)."""
    import certifi

    assert services.certificates is not None
    bundle = directory / "ca-bundle.pem"
    bundle.write_text(Path(certifi.where()).read_text() + "\n" + services.certificates.ca_cert.read_text())
    return bundle


def seed(count: int, now: dt.datetime) -> list[dict[str, Any]]:
    """The corpus, stored through the app's EventStore; returns its events."""
    from shared.ingestion.event_store import EventStore
    from shared.platform.bootstrap import bootstrap
    from shared.platform.clients import get_clients
    from shared.platform.clock import utc_iso
    from shared.platform.resources import CosmosContainers

    clients = get_clients()
    bootstrap(clients)
    events = build_events(count, now)
    store = EventStore(
        clients.cosmos_container(CosmosContainers.EVENTS.name),
        clients.cosmos_container(CosmosContainers.FACETS.name),
        WRITE_CONCURRENCY,
    )
    started = time.perf_counter()
    store.write_events(events)
    store.update_facets(TENANT_ID, events, [], utc_iso(now), shard_key="bench-console")
    store.close()
    print(f"seeded {len(events)} events for tenant {TENANT_ID} in {time.perf_counter() - started:.1f} s")
    return events


def seed_alerts(events: Sequence[dict[str, Any]], now: dt.datetime) -> int:
    """The app's AlertService over the events of the last ALERT_DAYS days; returns the alerts it opened."""
    from shared.app.runtime import alert_service
    from shared.platform.clock import utc_iso

    since = utc_iso(now - dt.timedelta(days=ALERT_DAYS))
    recent = sorted((e for e in events if e["timestamp"] >= since), key=lambda e: (e["timestamp"], e["id"]))
    started = time.perf_counter()
    report = alert_service().evaluate(recent)
    print(
        f"alerts: {len(report.created)} opened from {report.matches} matches in the {len(recent)} events "
        f"of the last {ALERT_DAYS} days ({time.perf_counter() - started:.1f} s)"
    )
    if not report.created:
        raise RuntimeError("the AlertService opened no alert: the alerts page would have no row to time")
    return len(report.created)


def busiest_object(
    events: Sequence[dict[str, Any]], now: dt.datetime, valid: Callable[[str], bool], days: int = HISTORY_DAYS
) -> tuple[str, int]:
    """The id (actor.id, actor.upn or a targets[].id) that the most events of the last `days` days name,
    among those `valid` accepts (the object id grammar), and how many; ties go to the smaller id."""
    from shared.platform.clock import utc_iso

    since = utc_iso(now - dt.timedelta(days=days))
    counts: Counter[str] = Counter()
    for event in events:
        if event["timestamp"] < since:
            continue
        actor = event.get("actor") or {}
        named = {actor.get("id"), actor.get("upn")} | {t.get("id") for t in event.get("targets") or []}
        counts.update(i for i in named if isinstance(i, str) and i and valid(i))
    if not counts:
        raise ValueError(f"no event of the last {days} days names an object")
    return min(counts.items(), key=lambda item: (-item[1], item[0]))


def sign_in(page: Any, base_url: str, authority_origin: str) -> None:
    """Through the console's sign-in to the simulator's page, pick the first user and ROLES."""
    page.goto(base_url + "/")
    button = page.locator("[data-testid='sign-in']")
    deadline = time.monotonic() + WAIT_MS / 1000
    while not page.url.startswith(authority_origin):
        if time.monotonic() > deadline:
            raise RuntimeError(f"never reached the sign-in page; at {page.url}")
        if button.count() and button.is_visible():
            button.click()
            page.wait_for_url(lambda url: url.startswith(authority_origin), timeout=WAIT_MS)
            break
        page.wait_for_timeout(100)
    page.wait_for_load_state()
    page.locator("select#user").select_option(index=0)
    for box in page.locator("input[type=checkbox][name=role]").all():
        box.set_checked((box.get_attribute("value") or "") in ROLES)
    page.locator("button[name=action][value=sign_in]").click()
    page.wait_for_url(lambda url: url.startswith(base_url), timeout=WAIT_MS)
    page.locator(ROW).first.wait_for(timeout=WAIT_MS)


def rendered_at(page: Any, selector: str) -> float:
    """Milliseconds from navigation start until `selector` matches, measured in the page."""
    handle = page.wait_for_function(
        "selector => document.querySelector(selector) ? performance.now() : false",
        arg=selector,
        polling="raf",
        timeout=WAIT_MS,
    )
    return float(handle.json_value())


def time_get(client: Any, url: str, token: str) -> float:
    started = time.perf_counter()
    response = client.get(url, headers={"Authorization": f"Bearer {token}"})
    elapsed = (time.perf_counter() - started) * 1000
    if response.status_code != 200:
        raise RuntimeError(f"GET {url} answered {response.status_code}: {response.text[:300]}")
    return elapsed


def direct(base_url: str, token: str, more: Sequence[str] = ()) -> None:
    """The default view's three API calls (and `more`) once each, before the browser: what the pages
    will wait for."""
    import httpx

    explorer = ("/api/events?start=30d", "/api/events/facets?top=20", "/api/events/histogram?start=30d")
    with httpx.Client(base_url=base_url, timeout=httpx.Timeout(WAIT_MS / 1000, connect=5.0)) as client:
        for path in (*explorer, *more):
            print(f"direct GET {path}: {time_get(client, path, token):.0f} ms")


VIEW_CALLS = ("/api/events", "/api/events/facets", "/api/events/histogram", "/api/version")
PAGE_TIMINGS = """() => {
  const marks = Object.fromEntries(performance.getEntriesByType("mark")
    .filter((m) => m.name.startsWith("aoc:")).map((m) => [m.name.slice(4), m.startTime]));
  const resources = performance.getEntriesByType("resource");
  const find = (path) => resources.find((r) => new URL(r.name).pathname === path);
  const events = find("/api/events");
  if (events) { marks["events-sent"] = events.requestStart; marks["events-answered"] = events.responseEnd; }
  for (const [name, path] of [["app.js", "/app.js"], ["config.json", "/config.json"]]) {
    const entry = find(path);
    if (entry) marks[name] = entry.responseEnd;
  }
  const [navigation] = performance.getEntriesByType("navigation");
  if (navigation) { marks["html"] = navigation.responseEnd; marks["dom"] = navigation.domInteractive; }
  return marks;
}"""


SIDE_BY_SIDE = 6  # a browser holds up to six connections per origin


def time_calls(
    pool: Any, client: Any, calls: dict[str, tuple[str, str]], paths: list[str]
) -> dict[str, float]:
    """Milliseconds from sending `paths`' calls side by side until each is answered."""
    started = time.perf_counter()

    def one(path: str) -> tuple[str, float]:
        url, token = calls[path]
        response = client.get(url, headers={"Authorization": f"Bearer {token}"})
        if response.status_code != 200:
            raise RuntimeError(f"GET {url} answered {response.status_code}: {response.text[:300]}")
        return path, (time.perf_counter() - started) * 1000

    return dict(pool.map(one, paths))


def time_view(pool: Any, client: Any, calls: dict[str, tuple[str, str]]) -> dict[str, float]:
    """Milliseconds from sending the explorer's calls side by side until each is answered."""
    return time_calls(pool, client, calls, [path for path in VIEW_CALLS if path in calls])


@dataclass(frozen=True)
class View:
    """A page timed like the explorer: each milestone (label, the selector that marks it rendered, the
    API path whose answer it shows) in the page, against that call among all the page's start-up calls
    sent side by side."""

    name: str
    href: str
    milestones: tuple[tuple[str, str, str], ...]

    @property
    def api_paths(self) -> set[str]:
        return {path for _, _, path in self.milestones}


@dataclass(frozen=True)
class ViewRound:
    ui: dict[str, float]  # milliseconds per milestone label
    api: dict[str, float]
    calls: list[str]  # the page's start-up calls, as the API side sent them
    where: str  # where the page's time went


@dataclass
class ViewSamples:
    ui: dict[str, list[float]]  # per milestone label, one per round
    api: dict[str, list[float]]
    calls: list[str]  # the paths the API side sent (the page's start-up calls, last round)

    def ready(self) -> tuple[list[float], list[float]]:
        """Per round, the last milestone rendered (UI) and the last of their calls answered (API)."""
        ui = [max(round_) for round_ in zip(*self.ui.values(), strict=True)]
        api = [max(round_) for round_ in zip(*self.api.values(), strict=True)]
        return ui, api

    def ratios(self) -> dict[str, float]:
        """Median of UI / API per milestone, and under "ready" for the page as a whole: the last
        milestone rendered against the last of their calls answered."""
        ready_ui, ready_api = self.ready()
        found = {label: median_ratio(self.ui[label], self.api[label]) for label in self.ui}
        return {"ready": median_ratio(ready_ui, ready_api), **found}


def median_ratio(ui: Sequence[float], api: Sequence[float]) -> float:
    """The median over the rounds of UI / API (the rounds alternate, so each pair saw the same load)."""
    if not ui or len(ui) != len(api):
        raise ValueError(f"{len(ui)} UI and {len(api)} API samples")
    return statistics.median(u / a for u, a in zip(ui, api, strict=True))


# The first time each selector matched, in milliseconds from navigation start, once all have (polled on
# every frame, so a milestone that renders first is not timed when the later one is).
MILESTONES = """selectors => {
  const seen = (window.__aocBenchSeen ||= {});
  for (const s of selectors) if (!(s in seen) && document.querySelector(s)) seen[s] = performance.now();
  return selectors.every((s) => s in seen) ? seen : false;
}"""
# Where a view's time went: the console's marks, the page and config, the page's chunks, its API calls.
VIEW_TIMINGS = """([chunk, calls]) => {
  const marks = Object.fromEntries(performance.getEntriesByType("mark")
    .filter((m) => m.name.startsWith("aoc:")).map((m) => [m.name.slice(4), m.startTime]));
  const resources = performance.getEntriesByType("resource");
  for (const r of resources) {
    const path = new URL(r.name).pathname;
    if (path === "/config.json") marks["config.json"] = r.responseEnd;
    if (path === "/app.js") marks["app.js"] = r.responseEnd;
    if (path.startsWith(`/chunks/${chunk}-`)) marks["chunk"] = Math.max(marks["chunk"] || 0, r.responseEnd);
    for (const [name, callPath] of calls) {
      if (path !== callPath) continue;
      marks[`${name}-sent`] = r.requestStart;
      marks[`${name}-answered`] = r.responseEnd;
    }
  }
  const [navigation] = performance.getEntriesByType("navigation");
  if (navigation) { marks["html"] = navigation.responseEnd; marks["dom"] = navigation.domInteractive; }
  return marks;
}"""


def view_round(
    page: Any, base_url: str, view: View, calls: dict[str, tuple[str, str]], pool: Any, client: Any
) -> ViewRound:
    """One fresh navigation to the view, then its start-up calls side by side."""
    calls.clear()
    page.goto(base_url + view.href, wait_until="commit")
    selectors = [selector for _, selector, _ in view.milestones]
    seen = page.wait_for_function(MILESTONES, arg=selectors, polling="raf", timeout=WAIT_MS).json_value()
    page.wait_for_load_state("networkidle")
    missing = view.api_paths - set(calls)
    if missing:
        raise RuntimeError(f"the {view.name} page did not call {sorted(missing)}; it called {sorted(calls)}")
    sent = {label: urllib.parse.urlsplit(calls[path][0]).path for label, _, path in view.milestones}
    timings = page.evaluate(VIEW_TIMINGS, [view.name, list(sent.items())])
    answered = time_calls(pool, client, calls, list(calls))
    return ViewRound(
        ui={label: float(seen[selector]) for label, selector, _ in view.milestones},
        api={label: answered[path] for label, _, path in view.milestones},
        calls=list(calls),
        where=", ".join(f"{name} {at:.0f}" for name, at in sorted(timings.items(), key=lambda kv: kv[1])),
    )


def run(
    page: Any, base_url: str, iterations: int, views: Sequence[View] = ()
) -> tuple[dict[str, list[float]], dict[str, ViewSamples]]:
    import concurrent.futures

    import httpx

    calls: dict[str, tuple[str, str]] = {}

    def seen(request: Any) -> None:
        path = urllib.parse.unquote(urllib.parse.urlsplit(request.url).path)
        header = request.headers.get("authorization", "")
        if path.startswith("/api/") and header and path not in calls:
            calls[path] = (request.url, header.split(" ", 1)[1])

    page.on("request", seen)
    samples: dict[str, list[float]] = {k: [] for k in ("ui_rows", "ui_facets", "api_rows", "api_facets")}
    by_view = {
        view.name: ViewSamples({m[0]: [] for m in view.milestones}, {m[0]: [] for m in view.milestones}, [])
        for view in views
    }
    limits = httpx.Limits(max_connections=SIDE_BY_SIDE, max_keepalive_connections=SIDE_BY_SIDE)
    with (
        httpx.Client(timeout=httpx.Timeout(60.0, connect=5.0), limits=limits) as client,
        concurrent.futures.ThreadPoolExecutor(max_workers=SIDE_BY_SIDE) as pool,
    ):
        for iteration in range(iterations + 1):  # the first round warms both sides up
            # The explorer (the default view), then each other view: UI, then its API calls.
            calls.clear()
            page.goto(base_url + "/", wait_until="commit")
            rows = rendered_at(page, ROW)
            facets = max(rendered_at(page, FACET), rendered_at(page, BAR))
            page.wait_for_load_state("networkidle")
            timings = page.evaluate(PAGE_TIMINGS)
            missing = set(VIEW_CALLS[:3]) - set(calls)
            if missing:
                raise RuntimeError(f"the console did not call {sorted(missing)}")
            answered = time_view(pool, client, calls)
            api_rows = answered["/api/events"]
            api_facets = max(answered["/api/events/facets"], answered["/api/events/histogram"])
            measured = [(view, view_round(page, base_url, view, calls, pool, client)) for view in views]
            if iteration == 0:
                continue
            samples["ui_rows"].append(rows)
            samples["ui_facets"].append(facets)
            samples["api_rows"].append(api_rows)
            samples["api_facets"].append(api_facets)
            ordered = sorted(timings.items(), key=lambda kv: kv[1])
            where = ", ".join(f"{name} {at:.0f}" for name, at in ordered)
            print(
                f"round {iteration}: first results {rows:.0f} ms (API {api_rows:.0f} ms), "
                f"facets and histogram {facets:.0f} ms (API {api_facets:.0f} ms); page: {where}"
            )
            for view, measure in measured:
                record = by_view[view.name]
                for label in measure.ui:
                    record.ui[label].append(measure.ui[label])
                    record.api[label].append(measure.api[label])
                record.calls = measure.calls
                parts = ", ".join(
                    f"{label} {measure.ui[label]:.0f} ms (API {measure.api[label]:.0f} ms)"
                    for label in measure.ui
                )
                print(f"round {iteration} {view.name}: {parts}; page: {measure.where}")
    return samples, by_view


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=100_000, help="events to seed (default 100,000)")
    parser.add_argument("--iterations", type=int, default=7, help="timed page loads (default 7)")
    args = parser.parse_args()
    if args.events < 1 or args.iterations < 1:
        parser.error("--events and --iterations must be at least 1")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise SystemExit("Playwright is missing: .venv/bin/pip install 'playwright>=1.49,<2'") from None
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"Chromium is missing at {CHROMIUM}: apt-get install -y chromium")

    started = time.perf_counter()
    js_gzip_bytes = build_console()
    state = Path(tempfile.mkdtemp(prefix="aoc-bench-console-"))
    services = LocalServices(ports=ServicePorts.free(), state_dir=state, in_memory=True)
    host = None
    simulator = None
    try:
        services.start()
        settings = {
            **services.app_environment(),
            "AOC_LOCAL_SETTINGS_FILE": str(state / "absent.json"),
            "COSMOS_DATABASE": f"aoc-bench-console-{uuid.uuid4().hex[:8]}",
            "M365_TENANT_ID": TENANT_ID,
            "API_CONTINUATION_SECRET": "bench-console-continuation-secret-0123456789",
            "PROBE_ENABLED": "false",
            "DATASETS_REFRESH_SCHEDULE": "0 0 0 1 1 *",  # the refresh_datasets timer's binding refers to it
            "POLL_SCHEDULE": "0 0 0 1 1 *",
            "GOVERNANCE_DISCOVERY_SCHEDULE": "0 0 0 1 1 *",
        }
        os.environ.update(settings)
        now = dt.datetime.now(dt.UTC)
        events = seed(args.events, now)
        alerts = seed_alerts(events, now)
        from shared.platform.ids import is_object_id

        history_id, history_events = busiest_object(events, now, is_object_id)
        del events
        print(f"history: {history_id}, named by {history_events} events of the last {HISTORY_DAYS} days")
        views = [
            View(
                "alerts",
                "/alerts",
                (("first row", ALERT_ROW, "/api/alerts"), ("counts", ALERT_COUNTS, "/api/alerts/summary")),
            ),
            View(
                "history",
                "/history?" + urllib.parse.urlencode({"id": history_id}),
                (("first event", HISTORY_EVENT, f"/api/objects/{history_id}/history"),),
            ),
        ]

        from bench.query import non_http_functions
        from devtools.simulator import SimulatorConfig, TenantSimulator
        from devtools.simulator.signing import ApiRegistration
        from tests.support.host_process import HostProcess

        assert services.certificates is not None
        work = state / "host"
        work.mkdir()
        host = HostProcess(app_dir=PROJECT_ROOT, work_dir=work, environment={})
        simulator = TenantSimulator(
            SimulatorConfig(tenant_id=TENANT_ID, events_per_day=0), certificates=services.certificates
        ).start()
        simulator.register_api(ApiRegistration(API_CLIENT_ID, API_APP_ID_URI, 2))
        simulator.register_spa(SPA_CLIENT_ID, [f"{host.base_url}/redirect.html", f"{host.base_url}/"])
        host.environment = {
            **settings,
            **{f"AzureWebJobs.{name}.Disabled": "true" for name in non_http_functions()},
            "M365_AUTHORITY_HOST": simulator.base_url,
            "SSL_CERT_FILE": str(ca_bundle(services, state)),
            "API_AUTH_MODE": "entra",
            "API_AUDIENCE": API_APP_ID_URI,
            "API_CLIENT_ID": API_CLIENT_ID,
            "CONSOLE_CLIENT_ID": SPA_CLIENT_ID,
            "CONSOLE_AUTHORITY": f"{simulator.base_url}/{TENANT_ID}/v2.0",
            "CONSOLE_SCOPES": f"{API_APP_ID_URI}/access_as_user",
        }
        host.start(timeout=90)
        print(f"console at {host.base_url}/, simulated Entra at {simulator.base_url}")
        direct(
            host.base_url,
            simulator.issue_api_token(ApiRegistration(API_CLIENT_ID, API_APP_ID_URI, 2), [*ROLES]),
            (
                "/api/alerts?page_size=50",
                "/api/alerts/summary",
                f"/api/objects/{urllib.parse.quote(history_id, safe='')}/history",
            ),
        )

        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            try:
                context = browser.new_context(
                    ignore_https_errors=True, viewport={"width": 1280, "height": 900}
                )
                page = context.new_page()
                sign_in(page, host.base_url, simulator.base_url)
                samples, by_view = run(page, host.base_url, args.iterations, views)
            finally:
                browser.close()

        first = statistics.median(u / a for u, a in zip(samples["ui_rows"], samples["api_rows"], strict=True))
        facets = statistics.median(
            u / a for u, a in zip(samples["ui_facets"], samples["api_facets"], strict=True)
        )
        median = {name: statistics.median(values) for name, values in samples.items()}
        print(
            f"median first results {median['ui_rows']:.0f} ms vs API {median['api_rows']:.0f} ms; "
            f"facets and histogram {median['ui_facets']:.0f} ms vs API {median['api_facets']:.0f} ms"
        )
        ratios = {name: record.ratios() for name, record in by_view.items()}
        for name, record in by_view.items():
            parts = ", ".join(
                f"{label} {statistics.median(record.ui[label]):.0f} ms vs API "
                f"{statistics.median(record.api[label]):.0f} ms (ratio {ratios[name][label]:.2f})"
                for label in record.ui
            )
            print(f"median {name}: {parts}; API side sent {', '.join(record.calls)}")
        alerts_ratio, history_ratio = ratios["alerts"]["ready"], ratios["history"]["ready"]
        verdict = "met" if max(first, facets, alerts_ratio, history_ratio) <= TARGET_RATIO else "not met"
        print(
            f"target: each ratio at most {TARGET_RATIO} ({verdict}); "
            f"total {time.perf_counter() - started:.0f} s"
        )
        print(
            json.dumps(
                {
                    "first_results_vs_api": round(first, 2),
                    "facets_vs_api": round(facets, 2),
                    "js_gzip_kb": round(js_gzip_bytes / 1024, 1),
                    "alerts_vs_api": round(alerts_ratio, 2),
                    "history_vs_api": round(history_ratio, 2),
                    "alert_rows_vs_api": round(ratios["alerts"]["first row"], 2),
                    "alert_counts_vs_api": round(ratios["alerts"]["counts"], 2),
                    **{
                        f"{name}_{side}_ms": round(statistics.median(values))
                        for name, record in by_view.items()
                        for side, values in zip(("ui", "api"), record.ready(), strict=True)
                    },
                    "alerts": alerts,
                    "history_object": history_id,
                    "history_object_events": history_events,
                    "alerts_calls": by_view["alerts"].calls,
                    "history_calls": by_view["history"].calls,
                }
            )
        )
    except Exception:
        if host is not None:  # why the host failed, before its folder goes
            lines = host.log().splitlines()
            print("\n".join(line for line in lines if "rror" in line or "xception" in line)[-4000:])
        raise
    finally:
        try:
            if host is not None and host.process is not None:
                host.stop()
        finally:
            if simulator is not None:
                simulator.stop()
            services.stop()
            shutil.rmtree(state, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
