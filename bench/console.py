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
The last line is one JSON object: {"first_results_vs_api": x, "facets_vs_api": y, "js_gzip_kb": z}.
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


def seed(count: int) -> None:
    from shared.ingestion.event_store import EventStore
    from shared.platform.bootstrap import bootstrap
    from shared.platform.clients import get_clients
    from shared.platform.clock import utc_iso
    from shared.platform.resources import CosmosContainers

    clients = get_clients()
    bootstrap(clients)
    now = dt.datetime.now(dt.UTC)
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


def direct(base_url: str, token: str) -> None:
    """The default view's three API calls once each, before the browser: what the page will wait for."""
    import httpx

    with httpx.Client(base_url=base_url, timeout=httpx.Timeout(WAIT_MS / 1000, connect=5.0)) as client:
        for path in ("/api/events?start=30d", "/api/events/facets?top=20", "/api/events/histogram?start=30d"):
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


def time_view(pool: Any, client: Any, calls: dict[str, tuple[str, str]]) -> dict[str, float]:
    """Milliseconds from sending the view's calls side by side until each is answered."""
    started = time.perf_counter()

    def one(path: str) -> tuple[str, float]:
        url, token = calls[path]
        response = client.get(url, headers={"Authorization": f"Bearer {token}"})
        if response.status_code != 200:
            raise RuntimeError(f"GET {url} answered {response.status_code}: {response.text[:300]}")
        return path, (time.perf_counter() - started) * 1000

    return dict(pool.map(one, [path for path in VIEW_CALLS if path in calls]))


def run(page: Any, base_url: str, iterations: int) -> dict[str, list[float]]:
    import concurrent.futures

    import httpx

    calls: dict[str, tuple[str, str]] = {}

    def seen(request: Any) -> None:
        path = urllib.parse.urlsplit(request.url).path
        header = request.headers.get("authorization", "")
        if path in VIEW_CALLS and header and path not in calls:
            calls[path] = (request.url, header.split(" ", 1)[1])

    page.on("request", seen)
    samples: dict[str, list[float]] = {k: [] for k in ("ui_rows", "ui_facets", "api_rows", "api_facets")}
    limits = httpx.Limits(max_connections=6, max_keepalive_connections=6)
    with (
        httpx.Client(timeout=httpx.Timeout(60.0, connect=5.0), limits=limits) as client,
        concurrent.futures.ThreadPoolExecutor(max_workers=len(VIEW_CALLS)) as pool,
    ):
        for iteration in range(iterations + 1):  # the first round warms both sides up
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
    return samples


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
            "POLL_SCHEDULE": "0 0 0 1 1 *",
        }
        os.environ.update(settings)
        seed(args.events)

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
        )

        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            try:
                context = browser.new_context(
                    ignore_https_errors=True, viewport={"width": 1280, "height": 900}
                )
                page = context.new_page()
                sign_in(page, host.base_url, simulator.base_url)
                samples = run(page, host.base_url, args.iterations)
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
        verdict = "met" if max(first, facets) <= TARGET_RATIO else "not met"
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
