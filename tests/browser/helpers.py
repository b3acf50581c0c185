"""What the browser tests share: the console's data-testid contract, sign-in through the simulated
Entra tenant, calls to the API with the page's own token, axe-core and screenshots.

The test ids are the UI's contract (web/src/README.md lists them); they live here once so that the
tests name an element by its role in the page, never by markup details.
"""

from __future__ import annotations

import csv
import io
import json
import re
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import BrowserContext, Page, Request, expect

from devtools.services import PROJECT_ROOT

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
AXE_SCRIPT = PROJECT_ROOT / "web" / "node_modules" / "axe-core" / "axe.min.js"
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
HTTP_TIMEOUT = httpx.Timeout(30.0, connect=5.0)
# Playwright waits (milliseconds): how long the page may take to reach a state, not a measured timing.
UI_TIMEOUT_MS = 20_000

# The roles of the API's app registration, as the simulator's sign-in page offers them.
READER, ANALYST, ADMIN, PRIVACY = "AOC.Reader", "AOC.Analyst", "AOC.Admin", "AOC.Privacy"


class TID:
    """data-testid values of the console (web/src/README.md)."""

    SIGN_IN = "sign-in"
    USER = "user-menu"
    USER_ROLES = "user-roles"
    VERSION = "version"
    SEARCH = "search"
    TIME_24H = "time-24h"
    RESULTS = "results"
    RESULT_COUNT = "result-count"  # "N events", "N events, showing M" or "More than M events"
    ROW = "row"  # carries data-event-id; its `.row-link` takes the keyboard focus
    LOAD_MORE = "load-more"
    END_OF_RESULTS = "end-of-results"
    HISTOGRAM = "histogram"  # the svg a user drags across
    HISTOGRAM_BAR = "histogram-bar"  # carries data-start and data-count
    DETAIL = "detail"
    DETAIL_SUMMARY = "detail-summary"
    DETAIL_CLOSE = "detail-close"
    DIFF = "diff"
    DIFF_KEYS = "diff-keys"  # "Changed: <code>state</code>, ..."; changed JSON lines are mark[data-changed]
    RAW_TOGGLE = "raw-toggle"
    RAW = "raw"
    RAW_COPY = "copy-raw"
    TAGS = "tags"
    TAG_INPUT = "tag-input"
    TAG_ADD = "tag-add"
    PRIVACY_NOTICE = "privacy-note"
    EXPORT_CSV = "export-csv"
    EXPORT_NDJSON = "export-ndjson"
    EXPORT_STATUS = "export-status"
    ERROR = "error-banner"
    # The Health page (web/src/pages/health.js)
    HEALTH_REFRESHED = "health-refreshed"  # data-at: when the page last asked /api/status
    SOURCE_ROW = "source-row"  # data-source, data-stale
    SOURCE_LAG = "source-lag"
    SOURCE_QUARANTINED = "source-quarantined"
    QUEUE_ROW = "queue-row"  # data-queue; holds queue-depth, poison-depth and, for an Admin, replay
    QUEUE_DEPTH = "queue-depth"
    POISON_DEPTH = "poison-depth"
    REPLAY = "replay"  # only on a poison queue with messages, only for an Admin
    REPLAY_DIALOG = "replay-dialog"
    REPLAY_QUESTION = "replay-question"
    REPLAY_CONFIRM = "replay-confirm"
    REPLAY_CANCEL = "replay-cancel"
    REPLAY_RESULT = "replay-result"
    PROBE_ROW = "probe-row"  # data-scope
    PROBE_PHASE = "probe-phase"
    PROBE_LAST_TRIGGER = "probe-last-trigger"
    PROBE_RUN_LINK = "probe-run-link"
    PROBE_RUN = "probe-run"  # "Run the probe now", only for an Admin
    PROBE_RUN_RESULT = "probe-run-result"
    # The Home page (web/src/pages/home.js)
    HOME_ALERTS_TOTAL = "home-alerts-total"
    HOME_ALERT_SEVERITY = "home-alert-severity"  # data-severity, data-count
    HOME_SOURCES_HEALTHY = "home-sources-healthy"  # data-healthy, data-total
    HOME_STALE_SOURCE = "home-stale-source"
    HOME_HEALTH_LINK = "home-health-link"
    HOME_BACKUP_TIME = "home-backup-time"
    HOME_BACKUP_SCOPE = "home-backup-scope"
    HOME_BACKUP_RUN = "home-backup-run"
    HOME_PINNED = "home-pinned"
    HOME_PINNED_SEARCH = "home-pinned-search"  # data-search-id
    HOME_PINNED_NONE = "home-pinned-none"
    # Saved searches: the explorer's button and dialog, the shared form, the page (web/src/pages/searches*.js)
    SAVE_SEARCH = "save-search"
    SAVE_SEARCH_DIALOG = "save-search-dialog"
    SAVE_SEARCH_STATUS = "save-search-status"
    SEARCH_FORM_NAME = "search-form-name"
    SEARCH_FORM_PRIVATE = "search-form-private"
    SEARCH_FORM_SHARED = "search-form-shared"
    SEARCH_FORM_ROLE = "search-form-role"
    SEARCH_FORM_PINNED = "search-form-pinned"
    SEARCH_FORM_SUBMIT = "search-form-submit"
    SEARCHES = "searches"  # the table of the Saved searches page
    SEARCH_ROW = "search-row"  # carries data-search-id
    SEARCH_OPEN = "search-open"
    SEARCH_OWNER = "search-owner"
    SEARCH_VISIBILITY = "search-visibility"
    SEARCH_PINNED = "search-pinned"
    SEARCH_EDIT = "search-edit"
    SEARCH_PIN = "search-pin"
    SEARCH_DELETE = "search-delete"
    SEARCH_DELETE_CONFIRM = "search-delete-confirm"
    SEARCHES_STATUS = "searches-status"
    # The rules page (web/src/pages/rules.js)
    RULES_LIST = "rules-list"
    RULE_ROW = "rule-row"  # carries data-rule-id
    RULE_OPEN = "rule-open"  # the rule's title: a link to its editor
    RULE_SEVERITY = "rule-severity"
    RULE_MITRE = "rule-mitre"
    RULE_ENABLED = "rule-enabled"  # the cell, with data-enabled; holds RULE_TOGGLE for an Admin
    RULE_TOGGLE = "rule-toggle"
    RULE_MATCHES = "rule-matches"
    RULE_ALERTS = "rule-alerts"
    RULES_STATUS = "rules-status"
    RULE_YAML = "rule-yaml"  # the editor's textarea
    RULE_ERROR = "rule-error"  # a problem next to its line, with data-line
    RULE_LINE_ERROR = "rule-line-error"  # the problems of the line the caret is on (aria-live)
    RULE_PROBLEMS = "rule-problems"  # every problem (role=alert); RULE_PROBLEM buttons go to the line
    RULE_PROBLEM = "rule-problem"
    RULE_TEST = "rule-test"
    RULE_TEST_LAST = "rule-test-last"
    RULE_TEST_RESULT = "rule-test-result"
    RULE_TEST_SUMMARY = "rule-test-summary"
    RULE_TEST_MATCH = "rule-test-match"  # carries data-event-id; its link opens the explorer
    RULE_SAVE = "rule-save"
    RULE_STATUS = "rule-status"
    RULE_CONFLICT = "rule-conflict"
    RULE_RELOAD = "rule-reload"
    RULE_CURRENT = "rule-current"
    RULE_READ_ONLY = "rule-read-only"
    # Object history (web/src/pages/history.js) and the detail's links to it (carry data-object-id).
    ACTOR_HISTORY = "actor-history"
    TARGET_HISTORY = "target-history"
    HISTORY = "history"  # the page's <main>
    HISTORY_NAME = "history-name"
    HISTORY_ID = "history-id"
    HISTORY_TYPES = "history-types"
    HISTORY_ALIAS = "history-alias"  # a link to the history of the object's other id
    HISTORY_RANGE = "history-range"
    HISTORY_COUNT = "history-count"
    HISTORY_EVENT = "history-event"  # carries data-event-id
    HISTORY_EVENT_LINK = "history-event-link"
    HISTORY_ACTOR = "history-actor"
    HISTORY_DIFF = "history-diff"
    HISTORY_LOAD_MORE = "history-load-more"
    HISTORY_END = "history-end"
    HISTORY_EMPTY = "history-empty"

    @staticmethod
    def facet(field: str, value: str) -> str:
        """A facet value's toggle button (aria-pressed when included)."""
        return f"facet-{field}-{value}"

    @staticmethod
    def tag(value: str) -> str:
        return f"tag-{value}"


def tid(page: Page, test_id: str, **attributes: str) -> Any:
    """The locator of data-testid `test_id`, narrowed by data-* attributes given as keywords."""
    selector = f'[data-testid="{test_id}"]' + "".join(
        f'[data-{name.replace("_", "-")}="{value}"]' for name, value in attributes.items()
    )
    return page.locator(selector)


def screenshot(page: Page, name: str) -> Path:
    """Save the page as it is under tests/browser/artifacts/<name>.png (git-ignored) for a human."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{re.sub(r'[^A-Za-z0-9_.-]+', '-', name)}.png"
    page.screenshot(path=str(path))  # the viewport: what a user looking at that state sees
    return path


@dataclass(frozen=True)
class Console:
    """The running stack as the tests see it."""

    base_url: str  # the console and the API, one origin: http://127.0.0.1:<port>
    authority_origin: str  # the simulated Entra tenant: https://127.0.0.1:<port>
    tenant_id: str
    ca_bundle: str  # verifies the simulator's TLS certificate
    ca_change_event_id: str  # a Conditional Access policy update with modified properties
    ca_changed_keys: tuple[str, ...]  # its top-level keys whose old and new values differ
    ca_unchanged_keys: tuple[str, ...]
    sensitive_services: tuple[str, ...]
    simulator: Any  # devtools.simulator.TenantSimulator: its request log shows the sign-in flow
    drift_file: str = ""  # the host's DRIFT_FILE: one scope, `probe_scope`, without a pipeline
    probe_scope: str = ""


class SignedIn:
    """A page signed in through the real PKCE flow, and the bearer token the console uses."""

    def __init__(self, page: Page, console: Console) -> None:
        self.page = page
        self.console = console
        self.api_requests: list[Request] = []
        page.on("request", self._seen)

    def _seen(self, request: Request) -> None:
        if urllib.parse.urlsplit(request.url).path.startswith("/api/"):
            self.api_requests.append(request)

    @property
    def token(self) -> str:
        """The access token the console sent on its latest API call."""
        for request in reversed(self.api_requests):
            header = request.headers.get("authorization", "")
            if header.lower().startswith("bearer "):
                return header.split(" ", 1)[1]
        raise AssertionError("the console has not called the API with a bearer token")

    def last_request(self, path: str) -> Request | None:
        """The console's latest GET of `path` (e.g. /api/events)."""
        for request in reversed(self.api_requests):
            if urllib.parse.urlsplit(request.url).path == path and request.method == "GET":
                return request
        return None

    def last_call(self, path: str) -> dict[str, list[str]]:
        """The query of the console's latest GET of `path`, as lists of values."""
        request = self.last_request(path)
        if request is None:
            raise AssertionError(f"the console never called {path}")
        return urllib.parse.parse_qs(urllib.parse.urlsplit(request.url).query, keep_blank_values=True)

    def api(self, method: str, path: str, params: Any = None, **kwargs: Any) -> httpx.Response:
        """Call the API directly with the console's token."""
        with httpx.Client(base_url=self.console.base_url, timeout=HTTP_TIMEOUT) as client:
            return client.request(
                method, path, params=params, headers={"Authorization": f"Bearer {self.token}"}, **kwargs
            )

    def api_json(self, path: str, params: Any = None) -> Any:
        response = self.api("GET", path, params)
        assert response.status_code == 200, (path, response.status_code, response.text)
        return response.json()

    def all_ids(self, params: dict[str, list[str]]) -> list[str]:
        """Every event id the API returns for a filter, walking every page."""
        query = {k: v for k, v in params.items() if k not in ("continuation", "page_size")}
        ids: list[str] = []
        continuation: str | None = None
        while True:
            page = self.api_json(
                "/api/events",
                [
                    *_pairs(query),
                    ("page_size", "200"),
                    *([("continuation", continuation)] if continuation else []),
                ],
            )
            ids.extend(item["id"] for item in page["items"])
            continuation = page.get("continuation")
            if not continuation:
                return ids

    # -- the page --------------------------------------------------------------------------------

    def row_ids(self) -> list[str]:
        return [
            str(x) for x in tid(self.page, TID.ROW).evaluate_all("rows => rows.map(r => r.dataset.eventId)")
        ]

    def wait_for_rows(self) -> list[str]:
        expect(tid(self.page, TID.ROW).first).to_be_visible(timeout=UI_TIMEOUT_MS)
        return self.row_ids()

    def wait_for_events_call(self, predicate: Any, path: str = "/api/events") -> dict[str, list[str]]:
        """Wait until the console's latest call of `path` satisfies `predicate` and has its answer;
        return its query (without the continuation)."""
        for _ in range(UI_TIMEOUT_MS // 100):
            request = self.last_request(path)
            if request is not None:
                query = urllib.parse.parse_qs(
                    urllib.parse.urlsplit(request.url).query, keep_blank_values=True
                )
                if predicate(query):
                    response = request.response()
                    assert response is not None, request.url
                    assert response.status == 200, (request.url, response.status)
                    return {k: v for k, v in query.items() if k != "continuation"}
            self.page.wait_for_timeout(100)
        raise AssertionError(f"the console never called {path} as expected; calls: {self._calls()}")

    def expect_rows(self, expected: list[str]) -> None:
        """The table comes to show exactly `expected`, in order."""
        shown: list[str] = []
        for _ in range(UI_TIMEOUT_MS // 100):
            shown = self.row_ids()
            if shown == expected:
                return
            self.page.wait_for_timeout(100)
        assert shown == expected, f"rows {shown} after {self._calls()}"

    def _calls(self) -> list[str]:
        return [r.url for r in self.api_requests][-10:]

    def open_event(self, event_id: str, text: str) -> None:
        """Search for `text`, then open `event_id` (one of its results) in the detail panel."""
        row = tid(self.page, TID.ROW, event_id=event_id)
        if row.count() == 0:
            search = tid(self.page, TID.SEARCH)
            search.fill(text)
            search.press("Enter")
        expect(row).to_be_visible(timeout=UI_TIMEOUT_MS)
        row.locator(".row-link").click()
        self.expect_detail(event_id)

    def expect_detail(self, event_id: str) -> None:
        """The detail panel shows `event_id`, and the URL says so."""
        expect(tid(self.page, TID.DETAIL)).to_be_visible(timeout=UI_TIMEOUT_MS)
        for _ in range(UI_TIMEOUT_MS // 100):
            if url_query(self.page).get("event") == [event_id]:
                break
            self.page.wait_for_timeout(100)
        assert url_query(self.page).get("event") == [event_id], self.page.url
        summary = self.api_json("/api/events/" + urllib.parse.quote(event_id, safe=""))["summary"]
        expect(tid(self.page, TID.DETAIL_SUMMARY)).to_have_text(summary, timeout=UI_TIMEOUT_MS)

    def focused_row(self) -> str | None:
        """The event id of the row holding the keyboard focus."""
        value = self.page.evaluate(
            "() => { const el = document.activeElement;"
            " const row = el && el.closest ? el.closest(\"[data-testid='row']\") : null;"
            " return row ? row.dataset.eventId : null; }"
        )
        return None if value is None else str(value)

    def wait_for_more_rows(self, than: int) -> None:
        self.page.wait_for_function(
            "([selector, count]) => document.querySelectorAll(selector).length > count",
            arg=[f'[data-testid="{TID.ROW}"]', than],
            timeout=UI_TIMEOUT_MS,
        )


def _pairs(query: dict[str, list[str]]) -> list[tuple[str, str]]:
    return [(name, value) for name, values in query.items() for value in values]


def sign_in(
    context: BrowserContext, console: Console, roles: Iterable[str], path: str = "/", user: int = 0
) -> SignedIn:
    """Open the console at `path` and sign in through the simulated tenant's page (PKCE), picking the
    simulated user at index `user` (the first by default) and `roles`. Returns once the console shows
    the signed-in user."""
    page = context.new_page()
    signed = SignedIn(page, console)
    page.goto(console.base_url + path)
    reach_sign_in_page(page, console)
    choose_on_sign_in_page(page, roles, user)
    page.wait_for_url(re.compile(re.escape(console.base_url) + r"/.*"), timeout=UI_TIMEOUT_MS)
    expect(tid(page, TID.USER)).to_be_visible(timeout=UI_TIMEOUT_MS)
    return signed


def reach_sign_in_page(page: Page, console: Console) -> None:
    """From the console, signed out, to the simulator's sign-in page: the console sends the browser
    there itself, or after its Sign in button."""
    authorize = re.compile(re.escape(console.authority_origin) + r"/.*/oauth2/v2\.0/authorize")
    button = tid(page, TID.SIGN_IN)
    for _ in range(UI_TIMEOUT_MS // 100):
        if authorize.match(page.url):
            page.wait_for_load_state()
            return
        if button.count() and button.is_visible():
            button.click()
            page.wait_for_url(authorize, timeout=UI_TIMEOUT_MS)
            page.wait_for_load_state()
            return
        page.wait_for_timeout(100)
    screenshot(page, "sign-in-never-reached")
    raise AssertionError(f"the console never sent the browser to the sign-in page; at {page.url}")


def choose_on_sign_in_page(page: Page, roles: Iterable[str], user: int = 0) -> None:
    """The simulator's sign-in page (devtools/simulator/signin_page.py): the user at index `user` in
    `select#user` (the first by default), exactly `roles` among the `input[name=role]` checkboxes, then
    "Sign in"."""
    wanted = set(roles)
    page.locator("select#user").select_option(index=user)
    for box in page.locator("input[type=checkbox][name=role]").all():
        box.set_checked((box.get_attribute("value") or "") in wanted)
    page.locator("button[name=action][value=sign_in]").click()


def run_axe(page: Page) -> list[dict[str, Any]]:
    """The serious and critical WCAG 2.1 A/AA violations axe-core finds on the page as it is."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(AXE_SCRIPT.read_text(encoding="utf-8"))
    result = page.evaluate(
        "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}})"
        ".then(r => r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,"
        " nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 5)})))",
        AXE_TAGS,
    )
    return [v for v in result if v["impact"] in ("serious", "critical")]


def parse_export(body: bytes, fmt: str) -> list[dict[str, Any]]:
    text = body.decode("utf-8-sig")
    if fmt == "csv":
        return list(csv.DictReader(io.StringIO(text)))
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def url_query(page: Page) -> dict[str, list[str]]:
    """The console's state as its URL holds it (query string, or the fragment's query)."""
    parts = urllib.parse.urlsplit(page.url)
    query = parts.query or (parts.fragment.split("?", 1)[1] if "?" in parts.fragment else "")
    return urllib.parse.parse_qs(query, keep_blank_values=True)
