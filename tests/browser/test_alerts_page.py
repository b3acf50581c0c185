"""The alerts page: triage through every state, "suppress similar", bulk changes, what each role is
offered, the counts at the top (by status, and open by severity) and the links to the rules. Alerts
are opened by the app's own AlertService from the simulated day the session seeded, in the session's
Cosmos DB; one notification goes through the real NotificationService to the simulator's webhook sink,
which refuses it, so the page has a receiver's reason to show."""

from __future__ import annotations

import datetime as dt
import json
import ssl
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from shared.alerts.ledger import MatchLedger
from shared.alerts.model import NotifyMessage
from shared.alerts.service import AlertService
from shared.alerts.store import AlertStore
from shared.m365.http_client import ApiClient
from shared.notify.channels import parse_channels
from shared.notify.delivery import NotificationService
from shared.notify.delivery_log import DeliveryLog
from shared.platform.clients import get_clients
from shared.platform.clock import SystemClock
from shared.platform.resources import CosmosContainers, Tables
from shared.rules.engine import BusinessHours
from shared.rules.source import RuleSource
from tests.browser.helpers import (
    ADMIN,
    ANALYST,
    READER,
    TID,
    UI_TIMEOUT_MS,
    Console,
    SignedIn,
    run_axe,
    screenshot,
    sign_in,
    tid,
)

pytestmark = pytest.mark.browser

CHANNEL = "secops-slack"
REFUSAL = "invalid_blocks"  # what the receiver says when it refuses the notification


class T:
    """The alerts page's data-testid values (web/src/README.md)."""

    SUMMARY = "alerts-summary"
    SUMMARY_OPEN = "summary-open"  # a link to the open alerts, with their count
    RULE_LINK = "alert-rule"  # in a row and in the detail: the rule on the Rules page
    TABLE = "alerts-table"
    MORE = "alerts-more"
    ROW = "alert-row"  # data-alert-id, data-status
    ROW_STATUS = "alert-row-status"
    LINK = "alert-link"
    SELECT = "alert-select"
    SELECT_ALL = "select-all"
    BULK = "bulk"
    BULK_COUNT = "bulk-count"  # "N selected"
    BULK_STATUS = "bulk-status"
    BULK_APPLY = "bulk-apply"
    BULK_REPORT = "bulk-report"
    BULK_FAILURE = "bulk-failure"  # data-alert-id
    FILTER_RULE = "filter-rule"
    FILTER_ACTOR = "filter-actor"
    TAB_SUPPRESSIONS = "tab-suppressions"
    SUPPRESSION_ROW = "suppression-row"  # data-suppression-id, data-active
    SUPPRESSION_MATCHES = "suppression-matches"
    SUPPRESSION_REMOVE = "suppression-remove"
    BACK = "alert-back"  # to the list, its filters kept
    SUPPRESSIONS = "suppressions"  # the table
    TITLE = "alert-title"
    STATUS = "alert-status"
    CLASSIFICATION = "alert-classification"
    OCCURRENCES = "alert-occurrences"
    SUPPRESSED = "alert-suppression"
    EVENT = "alert-event"  # data-event-id
    DELIVERY = "delivery"  # data-channel, data-status
    ACTIONS = "alert-actions"
    CLASSIFY = "classify-select"
    CLASSIFY_APPLY = "classify-apply"
    COMMENT_INPUT = "alert-comment-input"
    COMMENT_ADD = "alert-comment-add"
    COMMENT = "alert-comment"
    HISTORY_ENTRY = "history-entry"  # data-action
    SUPPRESS_FORM = "suppress-form"
    SUPPRESS_REASON = "suppress-reason"
    SUPPRESS_EXPIRY = "suppress-expiry"
    SUPPRESS_SUBMIT = "suppress-submit"

    @staticmethod
    def status_filter(status: str) -> str:
        """The list's status checkbox (severity: filter-severity-<severity>)."""
        return f"filter-status-{status}"

    @staticmethod
    def summary(status_or_severity: str) -> str:
        """A count at the top (data-count): alerts of a status, or open alerts of a severity."""
        return f"summary-{status_or_severity}"

    @staticmethod
    def action(status: str) -> str:
        """The button that moves the alert to `status` (Acknowledge, Resolve, Close, Reopen)."""
        return f"action-{status}"


@dataclass
class Seeded:
    """Alerts the seeded day opened, each for its own test (no two share a rule and group), and the
    services that opened and notified them."""

    service: AlertService
    store: AlertStore
    notifier: NotificationService
    webhook: str  # the simulator's webhook name behind CHANNEL
    tenant_id: str
    triage: dict[str, Any]
    suppress: dict[str, Any]
    pair: tuple[dict[str, Any], dict[str, Any]]  # one rule, two groups: the bulk change's selection
    other: dict[str, Any]  # only looked at

    def current(self, alert_id: str) -> dict[str, Any]:
        stored = self.store.get(self.tenant_id, alert_id)
        assert stored is not None, alert_id
        return stored

    def alert_ids(self, rule_id: str, group_key: str) -> set[str]:
        """Every alert of a rule and group."""
        container = get_clients().cosmos_container(CosmosContainers.ALERTS.name)
        rows = container.query_items(
            "SELECT c.id FROM c WHERE c.pk = @pk AND c.type = 'alert' AND c.rule_id = @rule"
            " AND c.group_key = @group",
            parameters=[
                {"name": "@pk", "value": self.tenant_id},
                {"name": "@rule", "value": rule_id},
                {"name": "@group", "value": group_key},
            ],
            partition_key=self.tenant_id,
        )
        return {str(r["id"]) for r in rows}


def _split(
    alerts: list[dict[str, Any]],
) -> tuple[dict[str, Any], dict[str, Any], tuple[Any, Any], dict[str, Any]]:
    """Open single-event alerts, one per rule and group: two of one rule, then three more."""
    by_rule: dict[str, list[dict[str, Any]]] = {}
    for alert in alerts:
        by_rule.setdefault(alert["rule_id"], []).append(alert)
    pairs = [found[:2] for found in by_rule.values() if len(found) >= 2]
    assert pairs, "the seeded day has no rule with open alerts for two groups"
    pair = (pairs[0][0], pairs[0][1])
    rest = [a for a in alerts if a not in pair]
    assert len(rest) >= 3, f"the seeded day opened too few alerts: {len(alerts)}"
    return rest[0], rest[1], pair, rest[2]


def _seeded_events(tenant_id: str) -> list[dict[str, Any]]:
    container = get_clients().cosmos_container(CosmosContainers.EVENTS.name)
    return list(
        container.query_items(
            "SELECT * FROM c WHERE c.tenant_id = @tenant AND IS_DEFINED(c.operation)",
            parameters=[{"name": "@tenant", "value": tenant_id}],
            enable_cross_partition_query=True,
        )
    )


@pytest.fixture(scope="module")
def seeded(console: Console) -> Iterator[Seeded]:
    """Runs the seeded day through the AlertService once (its alerts have fingerprint ids: another run
    over the same events changes nothing), with one Slack channel on the simulator's webhook sink."""
    clients = get_clients()
    clock = SystemClock()
    webhook = f"alerts-page-{uuid.uuid4().hex[:8]}"
    channels = parse_channels(
        json.dumps([{"name": CHANNEL, "type": "slack", "url": console.simulator.webhook_url(webhook)}])
    )
    store = AlertStore(clients.cosmos_container(CosmosContainers.ALERTS.name))
    rules = RuleSource(BusinessHours.parse("08:00-18:00", "Mon-Fri", "UTC"), clock)
    service = AlertService(
        clients.cosmos_container(CosmosContainers.EVENTS.name),
        store,
        MatchLedger(clients.table(Tables.ALERT_MATCHES)),
        rules,
        clock,
        channels=channels,
        dedupe_minutes=15,
        group_hours=5,
    )
    service.evaluate(_seeded_events(console.tenant_id))
    container = clients.cosmos_container(CosmosContainers.ALERTS.name)
    every = list(
        container.query_items(
            "SELECT * FROM c WHERE c.pk = @pk AND c.type = 'alert' AND c.status = 'open'",
            parameters=[{"name": "@pk", "value": console.tenant_id}],
            partition_key=console.tenant_id,
        )
    )
    seen: set[tuple[str, str]] = set()
    usable = []
    for alert in sorted(every, key=lambda a: (a["first_seen"], a["id"])):
        key = (alert["rule_id"], alert["group_key"])
        hidden = (alert.get("sample") or {}).get("service") in console.sensitive_services  # needs AOC.Privacy
        if alert.get("threshold") is None and alert["events"] and not hidden and key not in seen:
            seen.add(key)
            usable.append(alert)
    triage, suppress, pair, other = _split(usable)
    http = httpx.Client(
        verify=ssl.create_default_context(cafile=console.ca_bundle), timeout=httpx.Timeout(10.0, connect=5.0)
    )
    notifier = NotificationService(
        store,
        DeliveryLog(clients.table(Tables.DELIVERY_LOG), clock),
        channels,
        ApiClient(None, http=http, timeout=(5, 10), max_attempts=2, max_retry_after=1, sleep=lambda s: None),
        clock,
        link_base_url=console.base_url + "/api",
    )
    yield Seeded(service, store, notifier, webhook, console.tenant_id, triage, suppress, pair, other)
    http.close()


def _wait(page: Page, check: Callable[[], bool], what: str) -> None:
    for _ in range(UI_TIMEOUT_MS // 100):
        if check():
            return
        page.wait_for_timeout(100)
    raise AssertionError(f"never: {what}")


def _row_ids(page: Page) -> list[str]:
    return [str(i) for i in tid(page, T.ROW).evaluate_all("rows => rows.map(r => r.dataset.alertId)")]


def _alert_api(signed: SignedIn, alert_id: str) -> dict[str, Any]:
    return dict(signed.api_json("/api/alerts/" + urllib.parse.quote(alert_id, safe="")))


def _open_from_list(signed: SignedIn, alert: dict[str, Any]) -> None:
    """The queue filtered by the alert's rule, then its row's link: the detail, filters kept."""
    page = signed.page
    tid(page, "nav-alerts").click()
    expect(tid(page, T.TABLE)).to_be_visible(timeout=UI_TIMEOUT_MS)
    rule = tid(page, T.FILTER_RULE)
    rule.fill(alert["rule_id"])
    rule.press("Enter")
    rule.blur()
    row = tid(page, T.ROW, alert_id=alert["id"])
    expect(row).to_be_visible(timeout=UI_TIMEOUT_MS)
    listed = signed.last_call("/api/alerts")
    assert listed["rule"] == [alert["rule_id"]], listed
    shown = _row_ids(page)
    answer = signed.api_json("/api/alerts", {"rule": alert["rule_id"], "page_size": "50"})
    assert shown == [a["id"] for a in answer["items"]], "the page lists what the API answers, in its order"
    row.get_by_test_id(T.LINK).click()
    expect(tid(page, T.TITLE)).to_have_text(alert["title"], timeout=UI_TIMEOUT_MS)
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(page.url).query)
    assert query == {"rule": [alert["rule_id"]], "id": [alert["id"]]}, page.url


def test_an_analyst_triages_an_alert_through_every_state(
    signed_in_page: Callable[..., SignedIn], console: Console, seeded: Seeded, context: Any
) -> None:
    alert = seeded.triage
    console.simulator.script_webhook(seeded.webhook, [{"status": 400, "body": REFUSAL}])
    message = NotifyMessage(alert_id=alert["id"], pk=alert["pk"], channel=CHANNEL, round=1)
    assert seeded.notifier.deliver(message).outcome == "failed"

    signed = signed_in_page([ANALYST], "/alerts")
    page = signed.page
    _open_from_list(signed, alert)
    expect(tid(page, T.OCCURRENCES)).to_have_text(str(alert["occurrences"]))
    links = tid(page, T.EVENT)
    expect(links).to_have_count(len(alert["events"]))
    first = alert["events"][0]
    href = links.first.get_attribute("href") or ""
    assert urllib.parse.parse_qs(urllib.parse.urlsplit(href).query)["event"] == [first["id"]], href
    delivery = tid(page, T.DELIVERY, channel=CHANNEL)
    expect(delivery).to_have_attribute("data-status", "failed")
    expect(delivery).to_contain_text(REFUSAL)
    screenshot(page, "alerts-detail-open")

    steps = [
        ("acknowledged", "true_positive", "Looking at it."),
        ("resolved", None, "The role assignment was approved after all."),
        ("open", "benign_positive", "Reopened: the approval was for another account."),
        ("closed", None, "Closed with the change ticket."),
    ]
    for status, classification, comment in steps:
        tid(page, T.action(status)).click()
        expect(tid(page, T.STATUS)).to_have_text(status, timeout=UI_TIMEOUT_MS)
        if classification:
            tid(page, T.CLASSIFY).select_option(classification)
            tid(page, T.CLASSIFY_APPLY).click()
            expect(tid(page, T.CLASSIFICATION)).to_have_text(
                classification.replace("_", " ").capitalize(), timeout=UI_TIMEOUT_MS
            )
        tid(page, T.COMMENT_INPUT).fill(comment)
        tid(page, T.COMMENT_ADD).click()
        expect(tid(page, T.COMMENT).last).to_contain_text(comment, timeout=UI_TIMEOUT_MS)
        stored = _alert_api(signed, alert["id"])
        assert stored["status"] == status
        screenshot(page, f"alerts-triage-{status}")
    # Only the transitions the lifecycle allows are offered: a closed alert can only be reopened.
    expect(tid(page, T.ACTIONS).locator("button[data-testid^='action-']")).to_have_count(1)
    expect(tid(page, T.action("open"))).to_be_visible()

    stored = _alert_api(signed, alert["id"])
    assert stored["classification"] == "benign_positive"
    assert [c["text"] for c in stored["comments"]] == [c for _, _, c in steps]
    user = (page.locator(".user-id").text_content() or "").strip()
    assert user, "the console shows who is signed in"
    moves = [
        (h["from_status"], h["to_status"], h["by"]) for h in stored["history"] if h["action"] == "status"
    ]
    assert moves == [
        ("open", "acknowledged", user),
        ("acknowledged", "resolved", user),
        ("resolved", "open", user),
        ("open", "closed", user),
    ]
    expect(tid(page, T.HISTORY_ENTRY, action="status")).to_have_count(4)
    expect(tid(page, T.HISTORY_ENTRY, action="comment")).to_have_count(4)

    # The audit log, read by an Admin: each change, by the analyst, with the state it left.
    admin = sign_in(context, console, [ADMIN], "/alerts")
    records = admin.api_json("/api/audit", {"target_id": alert["id"], "page_size": "50"})["items"]
    changes = sorted(records, key=lambda r: r["at"])
    assert {r["actor"] for r in changes} == {user}
    assert {r["action"] for r in changes} == {"alert.update"}
    statuses = [r["after"]["status"] for r in changes if r["after"]["status"] != r["before"]["status"]]
    assert statuses == ["acknowledged", "resolved", "open", "closed"]
    assert [r["after"]["comment"] for r in changes if r["after"].get("comment")] == [c for _, _, c in steps]
    assert "benign_positive" in [r["after"]["classification"] for r in changes]
    screenshot(page, "alerts-triage-done")

    # A matched event opens in the event explorer: its detail, in a range around its time.
    tid(page, T.EVENT, event_id=first["id"]).click()
    signed.expect_detail(first["id"])
    expect(tid(page, TID.ROW, event_id=first["id"])).to_be_visible(timeout=UI_TIMEOUT_MS)
    screenshot(page, "alerts-event-in-explorer")


def _suppression_of(signed: SignedIn, alert: dict[str, Any]) -> dict[str, Any] | None:
    items = signed.api_json("/api/suppressions")["items"]
    found = [s for s in items if s["rule_id"] == alert["rule_id"] and s["group_key"] == alert["group_key"]]
    return found[0] if found else None


def test_an_admin_suppresses_similar_alerts_and_a_new_match_opens_nothing(
    signed_in_page: Callable[..., SignedIn], console: Console, seeded: Seeded
) -> None:
    alert = seeded.suppress
    signed = signed_in_page([ADMIN], "/alerts?id=" + alert["id"])
    page = signed.page
    expect(tid(page, T.TITLE)).to_have_text(alert["title"], timeout=UI_TIMEOUT_MS)
    reason = f"Planned app migration, change {uuid.uuid4().hex[:6]}"
    tid(page, T.SUPPRESS_REASON).fill(reason)
    tid(page, T.SUPPRESS_EXPIRY).select_option("1")  # 1 day
    tid(page, T.SUPPRESS_SUBMIT).click()
    expect(tid(page, T.SUPPRESSED)).to_contain_text(reason, timeout=UI_TIMEOUT_MS)
    made = _suppression_of(signed, alert)
    assert made is not None, "the suppression is listed"
    assert (made["active"], made["reason"], made["matches"]) == (True, reason, 0), made
    lasts = dt.datetime.fromisoformat(made["expires_at"]) - dt.datetime.fromisoformat(made["created_at"])
    assert dt.timedelta(hours=23) < lasts <= dt.timedelta(days=1), made
    screenshot(page, "alerts-suppressed")

    # A new event like the one the alert matched (a copy under a new id) through the alert service.
    before = seeded.current(alert["id"])
    before_ids = seeded.alert_ids(alert["rule_id"], alert["group_key"])
    ref = alert["events"][-1]
    original = get_clients().cosmos_container(CosmosContainers.EVENTS.name).read_item(ref["id"], ref["pk"])
    event = {k: v for k, v in original.items() if not k.startswith("_")}
    event["id"] = f"{original['id']}-again-{uuid.uuid4().hex[:8]}"
    report = seeded.service.evaluate([event])
    assert report.suppressed == 1, report  # the event may match other rules too: they alert as usual
    assert alert["id"] not in report.updated, report
    after = seeded.current(alert["id"])
    assert (after["occurrences"], after["events"], after["last_seen"]) == (
        before["occurrences"],
        before["events"],
        before["last_seen"],
    )
    assert seeded.alert_ids(alert["rule_id"], alert["group_key"]) == before_ids, "no alert opened"

    tid(page, T.BACK).click()
    tid(page, T.TAB_SUPPRESSIONS).click()
    row = tid(page, T.SUPPRESSION_ROW, suppression_id=made["id"])
    expect(row).to_have_attribute("data-active", "true", timeout=UI_TIMEOUT_MS)
    expect(row.get_by_test_id(T.SUPPRESSION_MATCHES)).to_have_text("1")
    expect(row).to_contain_text(reason)
    screenshot(page, "alerts-suppressions")

    row.get_by_test_id(T.SUPPRESSION_REMOVE).click()
    expect(row).to_have_count(0, timeout=UI_TIMEOUT_MS)
    assert _suppression_of(signed, alert) is None


def test_a_reader_sees_no_actions_and_an_analyst_changes_a_selection(
    signed_in_page: Callable[..., SignedIn], console: Console, seeded: Seeded, context: Any
) -> None:
    kept, closed = seeded.pair
    reader = signed_in_page([READER], "/alerts?rule=" + urllib.parse.quote(kept["rule_id"]))
    page = reader.page
    expect(tid(page, T.ROW, alert_id=kept["id"])).to_be_visible(timeout=UI_TIMEOUT_MS)
    for absent in (T.SELECT, T.SELECT_ALL, T.BULK):
        expect(tid(page, absent)).to_have_count(0)
    # Filters go to the address and to the API as they are.
    tid(page, T.status_filter("open")).check()
    actor = tid(page, T.FILTER_ACTOR)
    actor.fill(kept["actor"])
    actor.press("Enter")
    wanted = {"rule": [kept["rule_id"]], "status": ["open"], "actor": [kept["actor"]]}
    _wait(page, lambda: urllib.parse.parse_qs(urllib.parse.urlsplit(page.url).query) == wanted, page.url)
    asked = reader.wait_for_events_call(lambda q: q.get("actor") == [kept["actor"]], "/api/alerts")
    assert asked == {**wanted, "page_size": ["50"]}, asked
    answer = reader.api_json("/api/alerts", [(k, v[0]) for k, v in asked.items()])
    assert kept["id"] in [a["id"] for a in answer["items"]]
    assert {a["actor"] for a in answer["items"]} == {kept["actor"]}
    _wait(page, lambda: _row_ids(page) == [a["id"] for a in answer["items"]], "the rows the API answers")
    rule_href = "/rules?" + urllib.parse.urlencode({"rule": kept["rule_id"]})
    expect(tid(page, T.ROW, alert_id=kept["id"]).get_by_test_id(T.RULE_LINK)).to_have_attribute(
        "href", rule_href
    )
    tid(page, T.ROW, alert_id=kept["id"]).get_by_test_id(T.LINK).click()
    expect(tid(page, T.TITLE)).to_have_text(kept["title"], timeout=UI_TIMEOUT_MS)
    assert urllib.parse.parse_qs(urllib.parse.urlsplit(page.url).query) == {**wanted, "id": [kept["id"]]}
    expect(tid(page, T.EVENT).first).to_be_visible()
    for absent in (T.ACTIONS, T.COMMENT_INPUT, T.SUPPRESS_FORM):
        expect(tid(page, absent)).to_have_count(0)
    screenshot(page, "alerts-reader-detail")
    path = "/api/alerts/" + urllib.parse.quote(kept["id"], safe="")
    assert reader.api("PATCH", path, json={"status": "acknowledged"}).status_code == 403
    assert (
        reader.api("POST", "/api/alerts/bulk", json={"ids": [kept["id"]], "comment": "x"}).status_code == 403
    )
    # The detail's rule id opens that rule on the Rules page.
    rule_link = tid(page, T.RULE_LINK)
    expect(rule_link).to_have_text(kept["rule_id"])
    rule_link.click()
    page.wait_for_url(f"**{rule_href}", timeout=UI_TIMEOUT_MS)
    yaml_text = reader.api_json("/api/rules/" + urllib.parse.quote(kept["rule_id"], safe=""))["yaml"]
    expect(tid(page, TID.RULE_YAML)).to_have_value(yaml_text, timeout=UI_TIMEOUT_MS)

    analyst = sign_in(context, console, [ANALYST], "/alerts?rule=" + urllib.parse.quote(kept["rule_id"]))
    page = analyst.page
    closing = analyst.api(
        "PATCH", "/api/alerts/" + urllib.parse.quote(closed["id"], safe=""), json={"status": "closed"}
    )
    assert closing.status_code == 200, closing.text
    page.reload()
    expect(tid(page, T.ROW, alert_id=closed["id"])).to_have_attribute(
        "data-status", "closed", timeout=UI_TIMEOUT_MS
    )
    rows = tid(page, T.ROW).count()
    tid(page, T.SELECT_ALL).check()
    expect(tid(page, T.BULK_COUNT)).to_have_text(f"{rows} selected")
    tid(page, T.SELECT_ALL).uncheck()
    expect(tid(page, T.BULK_COUNT)).to_have_text("0 selected")
    for alert in (kept, closed):
        tid(page, T.ROW, alert_id=alert["id"]).get_by_test_id(T.SELECT).check()
    tid(page, T.BULK_STATUS).select_option("acknowledged")
    tid(page, T.BULK_APPLY).click()
    report = tid(page, T.BULK_REPORT)
    expect(report).to_contain_text("1 updated, 1 failed", timeout=UI_TIMEOUT_MS)
    expect(tid(page, T.BULK_FAILURE)).to_have_count(1)
    expect(tid(page, T.BULK_FAILURE, alert_id=closed["id"])).to_contain_text(closed["title"])
    expect(tid(page, T.ROW, alert_id=kept["id"]).get_by_test_id(T.ROW_STATUS)).to_have_text("acknowledged")
    expect(tid(page, T.ROW, alert_id=closed["id"]).get_by_test_id(T.SELECT)).to_be_checked()  # still chosen
    assert _alert_api(analyst, kept["id"])["status"] == "acknowledged"
    assert _alert_api(analyst, closed["id"])["status"] == "closed"
    screenshot(page, "alerts-bulk-report")

    tid(page, T.ROW, alert_id=kept["id"]).get_by_test_id(T.LINK).click()
    expect(tid(page, T.ACTIONS)).to_be_visible(timeout=UI_TIMEOUT_MS)
    expect(tid(page, T.SUPPRESS_FORM)).to_have_count(0)
    suppress = analyst.api(
        "POST", path + "/suppress", json={"reason": "x", "expires_at": "2099-01-01T00:00:00Z"}
    )
    assert suppress.status_code == 403, "suppressing is for admins"


def test_the_alerts_page_passes_axe_and_works_from_the_keyboard(
    signed_in_page: Callable[..., SignedIn], console: Console, seeded: Seeded
) -> None:
    signed = signed_in_page([ADMIN], "/alerts?since=30d")
    page = signed.page
    found: dict[str, list[dict[str, Any]]] = {}
    expect(tid(page, T.ROW).first).to_be_visible(timeout=UI_TIMEOUT_MS)
    expect(tid(page, T.SUMMARY_OPEN)).to_be_visible()
    # The counts at the top are the API's: every alert by status, then the open ones by severity; each
    # links to the list filtered to it.
    summary = signed.api_json("/api/alerts/summary")
    cards = tid(page, T.SUMMARY).locator("a")
    shown = cards.evaluate_all(
        "cards => cards.map(c => [c.dataset.testid, c.dataset.count, c.getAttribute('href')])"
    )
    statuses = ["open", "acknowledged", "resolved", "closed"]
    assert shown == [
        *[[T.summary(s), str(summary["by_status"][s]), f"/alerts?status={s}"] for s in statuses],
        *[
            [T.summary(v), str(n), f"/alerts?status=open&severity={v}"]
            for v, n in summary["open"].items()  # most severe first, as the API orders them
        ],
    ], shown
    assert summary["by_status"]["open"] == summary["total_open"] > 0
    found["list"] = run_axe(page)
    screenshot(page, "alerts-list")
    # "30d" is sent as the time it stands for, once: the next page's call repeats it (its continuation
    # is bound to the query).
    asked = signed.wait_for_events_call(lambda q: "since" in q, "/api/alerts")
    assert asked["since"] != ["30d"], asked
    query = [(k, v[0]) for k, v in asked.items()]
    first = signed.api_json("/api/alerts", query)
    assert first["continuation"], "the seeded day opened more than a page of alerts"
    second = signed.api_json("/api/alerts", [*query, ("continuation", first["continuation"])])
    tid(page, T.MORE).click()
    expected = [a["id"] for a in first["items"] + second["items"]]
    _wait(page, lambda: _row_ids(page) == expected, "the second page after the first")
    assert signed.last_call("/api/alerts")["since"] == asked["since"]

    link = tid(page, T.ROW, alert_id=seeded.other["id"]).get_by_test_id(T.LINK)
    if link.count() == 0:  # not on the first page: narrow the list by its rule
        tid(page, T.FILTER_RULE).fill(seeded.other["rule_id"])
        tid(page, T.FILTER_RULE).press("Enter")
        tid(page, T.FILTER_RULE).blur()
    link.focus()
    page.keyboard.press("Enter")
    expect(tid(page, T.TITLE)).to_be_focused(timeout=UI_TIMEOUT_MS)
    expect(tid(page, T.TITLE)).to_have_text(seeded.other["title"])
    found["detail"] = run_axe(page)
    screenshot(page, "alerts-axe-detail")

    tid(page, T.BACK).click()
    tid(page, T.TAB_SUPPRESSIONS).click()
    expect(tid(page, T.SUPPRESSIONS)).to_be_visible(timeout=UI_TIMEOUT_MS)
    found["suppressions"] = run_axe(page)
    assert found == {view: [] for view in found}

    # A status count filters the list to that status.
    tid(page, "tab-alerts").click()
    tid(page, T.summary("open")).click()
    _wait(
        page,
        lambda: urllib.parse.parse_qs(urllib.parse.urlsplit(page.url).query) == {"status": ["open"]},
        page.url,
    )
    asked = signed.wait_for_events_call(
        lambda q: q.get("status") == ["open"] and "rule" not in q, "/api/alerts"
    )
    assert asked == {"status": ["open"], "page_size": ["50"]}, asked
    opened = signed.api_json("/api/alerts", {"status": "open", "page_size": "50"})["items"]
    assert opened, "the seeded day left open alerts"
    _wait(page, lambda: _row_ids(page) == [a["id"] for a in opened], "the open alerts the API answers")
    statuses_shown = tid(page, T.ROW).evaluate_all("rows => rows.map(r => r.dataset.status)")
    assert set(statuses_shown) == {"open"}, statuses_shown
    screenshot(page, "alerts-by-status-open")
