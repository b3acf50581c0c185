"""The browser tests' stack: one per session, as a user runs it.

Azurite and cosmosdb-server (tests/conftest.py), the tenant simulator over TLS playing Entra ID (the
project's local CA), the local Functions host with the API in Entra mode serving the built console at
`/`, and a day of the simulated tenant's audit records normalized by the app's own normalizers and
stored with its EventStore, plus Conditional Access policy changes. One Chromium per session (Debian's
package through Playwright's executable_path), a fresh browser context per test.

Without Chromium or Playwright the tests skip with the command that installs them; under CI=true they
fail instead.
"""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import certifi
import pytest

from devtools.services import PROJECT_ROOT, LocalServices
from devtools.simulator import SimulatorConfig, TenantSimulator
from devtools.simulator.render import render
from shared.ingestion.event_store import EventStore
from shared.ingestion.events import Event
from shared.ingestion.normalize import normalize_record
from shared.platform.clients import get_clients
from shared.platform.clock import utc_iso
from shared.platform.resources import CosmosContainers
from tests.support.ci import IN_CI
from tests.support.drift import unique_drift_file
from tests.support.host_process import HostProcess, http_functions_only, http_request, non_http_functions
from tests.support.principals import API_APP_ID_URI, API_CLIENT_ID, aoc_api
from tests.support.simulated_tenant import CLIENT_ID as SIMULATED_APP_CLIENT_ID

pytest.register_assert_rewrite("tests.browser.helpers")  # its assertions explain themselves too
from tests.browser.helpers import Console, SignedIn, sign_in  # noqa: E402

CHROMIUM = Path("/usr/bin/chromium")
INSTALL_PLAYWRIGHT = ".venv/bin/pip install 'playwright>=1.49,<2'"
INSTALL_CHROMIUM = "apt-get install -y chromium fonts-liberation"  # as root; `make browser` does it
CHROMIUM_ARGS = [
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
TENANT_ID = "7d1c3f0a-16b2-4e5f-9a8b-c0d1e2f3a416"
SPA_CLIENT_ID = "3f6d2a1b-9c8e-4b7a-a6f5-e4d3c2b1a016"
SCOPE = f"{API_APP_ID_URI}/access_as_user"
LOG_ANALYTICS_WORKSPACE_ID = "6a1f0c2e-3b4d-4e5f-8a9b-0c1d2e3f4a19"  # the Activity map's (issue 19)
EVENTS_PER_DAY = 400
SENSITIVE_SERVICES = ("Exchange",)
WEB = PROJECT_ROOT / "web"


def _browser_missing() -> str | None:
    """What is missing to run Chromium through Playwright, with the command that installs it."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return f"Playwright for Python is not installed: install it with `{INSTALL_PLAYWRIGHT}`"
    if not CHROMIUM.exists():
        return f"Chromium is not installed at {CHROMIUM}: install it with `{INSTALL_CHROMIUM}`"
    return None


def require_browser(in_ci: bool) -> None:
    """Skip the test when Chromium or Playwright is missing, naming the install command; under CI=true
    fail it instead."""
    missing = _browser_missing()
    if missing and in_ci:
        pytest.fail(f"the browser tests need Chromium and Playwright under CI=true: {missing}")
    if missing:
        pytest.skip(missing)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Chromium, headless, once per session."""
    require_browser(IN_CI)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


def _build_console() -> None:
    """web/dist from web/src, as `make test` builds it (esbuild, from the lock file's packages)."""
    node = shutil.which("node")
    if node is None or not (WEB / "build.mjs").exists() or not (WEB / "node_modules").exists():
        if (WEB / "dist" / "index.html").exists():
            return
        pytest.fail("the console is not built and cannot be: run `make install` (npm ci in web/) first")
    done = subprocess.run(
        [node, "build.mjs"], cwd=WEB, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, f"web/build.mjs failed:\n{done.stdout}\n{done.stderr}"


def _ca_bundle(local_services: LocalServices, directory: Path) -> Path:
    """The public roots plus the local CA, for the host to verify the simulator's TLS certificate."""
    assert local_services.certificates is not None
    bundle = directory / "ca-bundle.pem"
    bundle.write_text(
        Path(certifi.where()).read_text() + "\n" + local_services.certificates.ca_cert.read_text()
    )
    return bundle


def _seed(simulator: TenantSimulator) -> list[dict[str, Any]]:
    """The simulated day plus a burst of Conditional Access changes, normalized by the app's own
    normalizers (raw record kept inline, as INGEST_KEEP_RAW does) and stored with its EventStore."""
    simulator.add_burst("conditional_access", 6, spread_seconds=1800)
    now = dt.datetime.now(dt.UTC)
    ingested = utc_iso(now)
    # Within the last 22 hours: a "24h" range then holds the same events for the whole session.
    oldest, newest = utc_iso(now - dt.timedelta(hours=22)), ingested
    documents = []
    for record in simulator.tenant.records:
        if record.malformed:
            continue
        body = render(record, simulator.tenant.render_context)
        document = normalize_record(
            record.source, body, tenant_id=TENANT_ID, ingested_at=ingested, keep_raw=True
        )
        Event.model_validate(document)
        if oldest <= document["timestamp"] <= newest:
            documents.append(document)
    clients = get_clients()
    store = EventStore(
        clients.cosmos_container(CosmosContainers.EVENTS.name),
        clients.cosmos_container(CosmosContainers.FACETS.name),
        8,
    )
    store.write_events(documents)
    store.update_facets(TENANT_ID, documents, [], ingested, shard_key="browser-tests")
    return documents


def _ca_change(documents: list[dict[str, Any]]) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    """The newest Conditional Access policy update in which a plain value both versions carry changed
    (say `state`, enabled -> disabled): its id, and the top-level keys of the policy that changed and
    that did not."""
    for document in sorted(documents, key=lambda d: d["timestamp"], reverse=True):
        if document["operation"] != "Update conditional access policy":
            continue
        for target in document["targets"]:
            for prop in target.get("modified_properties") or []:
                old, new = prop.get("old"), prop.get("new")
                if not isinstance(old, dict) or not isinstance(new, dict):
                    continue
                both = set(old) & set(new)
                if not any(
                    old[k] != new[k] and isinstance(old[k], str) and isinstance(new[k], str) for k in both
                ):
                    continue
                keys = set(old) | set(new)
                changed = tuple(sorted(k for k in keys if old.get(k) != new.get(k)))
                unchanged = tuple(sorted(k for k in both if old[k] == new[k]))
                return document["id"], changed, unchanged
    raise AssertionError("the seeded day holds no Conditional Access policy update with a changed value")


@pytest.fixture(scope="session")
def console(
    browser: Any,
    local_services: LocalServices,
    app_environment: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Console]:
    """The whole stack, started once; `browser` first, so a missing browser skips before anything starts."""
    _build_console()
    work = tmp_path_factory.mktemp("browser-stack")
    assert local_services.certificates is not None
    host = HostProcess(app_dir=PROJECT_ROOT, work_dir=work, environment={})
    drift_file, probe_scope = unique_drift_file(work, "browser")  # probe state of its own
    origin = host.base_url  # its port is chosen now: the SPA registration names the redirect URI
    simulator = TenantSimulator(
        SimulatorConfig(tenant_id=TENANT_ID, seed=16, events_per_day=EVENTS_PER_DAY),
        certificates=local_services.certificates,
    ).start()
    try:
        # The app registrations: the API (v2.0 access tokens) and the console, a SPA.
        simulator.register_api(aoc_api(2))
        simulator.register_spa(SPA_CLIENT_ID, [f"{origin}/redirect.html", f"{origin}/"])
        documents = _seed(simulator)
        # The simulated Log Analytics workspace keeps the host's time (SystemClock): its rows are those of
        # the last hours as the app asks for them (the tenant's own clock starts a day back, for _seed).
        simulator.app.log_analytics._now_us = lambda: int(time.time() * 1_000_000)
        ca_id, changed, unchanged = _ca_change(documents)
        authority = f"{simulator.base_url}/{TENANT_ID}/v2.0"
        host.environment = {
            **app_environment,
            "M365_TENANT_ID": TENANT_ID,
            "M365_AUTHORITY_HOST": simulator.base_url,
            "SSL_CERT_FILE": str(_ca_bundle(local_services, work)),
            "API_CONTINUATION_SECRET": "browser-continuation-secret-0123456789",
            # The probe on, over a drift scope of its own (no pipeline: it queues no backup trigger), and
            # no source to poll: the stack's events are seeded, and "Run the probe now" (the Health page)
            # only steps the probe instead of handing pages to the shared ingest queue.
            "PROBE_ENABLED": "true",
            "DRIFT_FILE": str(drift_file),
            "SOURCE_ENTRA_AUDIT": "false",
            "SOURCE_INTUNE_AUDIT": "false",
            "SOURCE_O365_MANAGEMENT": "false",
            "API_AUTH_MODE": "entra",
            "API_AUDIENCE": API_APP_ID_URI,
            "API_CLIENT_ID": API_CLIENT_ID,
            "API_SENSITIVE_SERVICES": ",".join(SENSITIVE_SERVICES),
            # The console's /config.json (the local host serves it from these settings).
            "CONSOLE_CLIENT_ID": SPA_CLIENT_ID,
            "CONSOLE_AUTHORITY": authority,
            "CONSOLE_SCOPES": SCOPE,
            # The Activity map's datasets (issue 19): the simulator's Log Analytics query API, called with the
            # app's own identity (client credentials at the simulated tenant, as the e2e hosts have them).
            "LOG_ANALYTICS_WORKSPACE_ID": LOG_ANALYTICS_WORKSPACE_ID,
            "LOG_ANALYTICS_ENDPOINT": f"{simulator.base_url}/v1",
            "M365_AUTH_MODE": "msal",
            "M365_CLIENT_ID": SIMULATED_APP_CLIENT_ID,
            "M365_CLIENT_SECRET": "simulator-secret",
            # Only the API: this host lives for the whole session, and its timers and queue listeners
            # would take the shared queues' messages from the hosts of the e2e tests that follow.
            **http_functions_only(),
        }
        host.start(timeout=90)
        status = host.status() or {}
        assert not status.get("queue_listeners"), f"the browser stack's host listens to queues: {status}"
        assert set(status.get("disabled") or ()) == set(non_http_functions()), status
        config = http_request("GET", f"{origin}/config.json")
        assert config.status == 200, f"/config.json: {config.status} {config.body[:300]!r}"
        served = config.json()
        assert served.get("clientId") == SPA_CLIENT_ID, served
        assert served.get("authority") == authority, served
        index = http_request("GET", f"{origin}/")
        assert index.status == 200, f"the host does not serve the console at /: {index.status}"
        yield Console(
            base_url=origin,
            authority_origin=simulator.base_url,
            tenant_id=TENANT_ID,
            ca_bundle=str(local_services.certificates.ca_cert),
            ca_change_event_id=ca_id,
            ca_changed_keys=changed,
            ca_unchanged_keys=unchanged,
            sensitive_services=SENSITIVE_SERVICES,
            simulator=simulator,
            drift_file=str(drift_file),
            probe_scope=probe_scope,
        )
    finally:
        if host.process is not None:
            host.stop()
        simulator.stop()


REPORT_REJECTIONS = """
window.addEventListener("unhandledrejection", (event) => {
  const reason = event.reason;
  window.__aocUnhandledRejection(String((reason && (reason.stack || reason.message)) || reason));
});
"""


@pytest.fixture
def context(browser: Any, console: Console, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh browser context per test (no shared cookies or storage), 1280 px wide. Unhandled
    promise rejections and page errors fail the test: the console shows both in its error banner
    (and cancels the rejection's default report), so a listener added before the console's own reports
    every rejection to the test."""
    ctx = browser.new_context(ignore_https_errors=True, viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    ctx.expose_function("__aocUnhandledRejection", lambda why: errors.append(f"unhandled rejection: {why}"))
    ctx.add_init_script(REPORT_REJECTIONS)
    ctx.on("page", lambda page: page.on("pageerror", lambda error: errors.append(str(error))))
    yield ctx
    ctx.close()
    assert not errors, f"the console raised in the page: {errors}"


@pytest.fixture
def second_context(browser: Any, console: Console) -> Iterator[Any]:
    """Another fresh browser context in the same test, for a second user signed in apart; its page
    errors and unhandled rejections fail the test, as `context`'s do."""
    ctx = browser.new_context(ignore_https_errors=True, viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    ctx.expose_function("__aocUnhandledRejection", lambda why: errors.append(f"unhandled rejection: {why}"))
    ctx.add_init_script(REPORT_REJECTIONS)
    ctx.on("page", lambda page: page.on("pageerror", lambda error: errors.append(str(error))))
    yield ctx
    ctx.close()
    assert not errors, f"the console raised in the second context's page: {errors}"


@pytest.fixture
def signed_in_page(context: Any, console: Console) -> Callable[..., SignedIn]:
    """`signed_in_page([roles], path="/")`: a page signed in through the simulator's sign-in page."""

    def open_signed_in(roles: list[str], path: str = "/") -> SignedIn:
        return sign_in(context, console, roles, path)

    return open_signed_in
