"""The rules page: the list with each rule's 7-day matches and alerts, switching a rule off and on,
editing a rule as YAML (a regex RE2 refuses shown at its line, fixed, tested against recent events,
saved under the rule's version), the conflict a second tab gets (the save's 412, in the editor and
in the list), and what a Reader may not do.

The session's host serves the rules from the shared Azurite's `config/rules.yaml`: `rules_blob` puts
that blob back as it was after each test that saves. The 7-day counts come from match-ledger rows of a
group of their own, written with the app's MatchLedger and removed afterwards.
"""

from __future__ import annotations

import datetime as dt
import urllib.parse
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from shared.alerts.ledger import MatchLedger, MatchRow
from shared.platform.clients import get_clients
from shared.platform.clock import utc_iso
from shared.platform.resources import BlobContainers, Tables
from shared.rules.source import RULES_BLOB
from tests.browser.helpers import (
    ADMIN,
    PRIVACY,
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

RULE = "entra.app-registered"
LEDGER_GROUP = "browser-rules-page"
EVENT_PREFIX = "entra_audit:browser-rules-page-"
# The rule as an admin types it: line 12 holds a regex RE2 refuses (an unclosed group).
BROKEN = f"""\
id: {RULE}
title: Additions (browser test)
description: Directory additions, by the rules page's browser test.
severity: low
mitre: [T1098]
enabled: true
group_by: ["actor.upn|actor.id"]
when:
  all:
    - {{field: result, neq: failure}}
    - field: operation
      regex: "(Add "
"""
BROKEN_LINE = 12
FIXED = BROKEN.replace('"(Add "', '"^Add "')
COUNTS_CACHE_SECONDS = 70  # the API counts once a minute per instance


@pytest.fixture
def rules_blob(console: Console) -> Iterator[None]:
    """config/rules.yaml exactly as it was before the test (absent, or the same bytes)."""
    blob = get_clients().blob_service.get_container_client(BlobContainers.CONFIG).get_blob_client(RULES_BLOB)
    saved = blob.download_blob().readall() if blob.exists() else None
    yield
    if saved is not None:
        blob.upload_blob(saved, overwrite=True)
    elif blob.exists():
        blob.delete_blob()


@pytest.fixture(scope="module")
def ledger_matches(console: Console) -> Iterator[int]:
    """Three matches of RULE in the last 7 days and one older, in a group no other test uses, written
    as the alert worker writes them; removed afterwards."""
    table = get_clients().table(Tables.ALERT_MATCHES)
    now = dt.datetime.now(dt.UTC)
    ages = (1, 5, 30, 24 * 8)  # hours
    rows = [MatchRow(utc_iso(now - dt.timedelta(hours=h)), f"{EVENT_PREFIX}{h}", "p") for h in ages]
    MatchLedger(table).record(console.tenant_id, RULE, LEDGER_GROUP, rows)
    yield 3
    for entity in table.query_entities(
        "EventId ge @lo and EventId lt @hi", parameters={"lo": EVENT_PREFIX, "hi": EVENT_PREFIX + "~"}
    ):
        table.delete_entity(entity["PartitionKey"], entity["RowKey"])


def rules_document(signed: SignedIn, matches_at_least: int | None = None) -> dict[str, Any]:
    """GET /api/rules with the page's token; with `matches_at_least`, once RULE's count has it (the
    API keeps its counts for a minute)."""
    for _ in range(COUNTS_CACHE_SECONDS):
        document = signed.api_json("/api/rules")
        counts = next(r for r in document["rules"] if r["id"] == RULE)["last_7_days"]
        if matches_at_least is None or (counts["matches"] or 0) >= matches_at_least:
            return dict(document)
        signed.page.wait_for_timeout(1000)
    raise AssertionError(f"the API never counted {matches_at_least} matches of {RULE}: {counts}")


def shown_rows(page: Page) -> list[dict[str, str]]:
    """Every row of the list as the page shows it."""
    expect(tid(page, TID.RULE_ROW).first).to_be_visible(timeout=UI_TIMEOUT_MS)
    return list(
        tid(page, TID.RULE_ROW).evaluate_all(
            """rows => rows.map(r => {
                const cell = (id) => r.querySelector(`[data-testid="${id}"]`);
                return {id: r.dataset.ruleId, severity: cell("rule-severity").textContent,
                        mitre: cell("rule-mitre").textContent, enabled: cell("rule-enabled").dataset.enabled,
                        matches: cell("rule-matches").textContent, alerts: cell("rule-alerts").textContent,
                        toggles: r.querySelectorAll('[data-testid="rule-toggle"]').length};
            })"""
        )
    )


def expected_rows(document: dict[str, Any], toggles: int) -> list[dict[str, Any]]:
    def number(value: int | None) -> str:
        return "—" if value is None else f"{value:,}"

    return [
        {
            "id": r["id"],
            "severity": r["severity"],
            "mitre": ", ".join(r["mitre"]),
            "enabled": "true" if r["enabled"] else "false",
            "matches": number(r["last_7_days"]["matches"]),
            "alerts": number(r["last_7_days"]["alerts"]),
            "toggles": toggles,
        }
        for r in document["rules"]
    ]


def open_editor(signed: SignedIn, rule_id: str) -> Any:
    """From the list, the rule's editor; returns its textarea once it shows the rule's YAML."""
    page = signed.page
    tid(page, TID.RULE_ROW, rule_id=rule_id).get_by_test_id(TID.RULE_OPEN).click()
    page.wait_for_url(f"**/rules?rule={rule_id}", timeout=UI_TIMEOUT_MS)
    return wait_for_yaml(signed, rule_id)


def wait_for_yaml(signed: SignedIn, rule_id: str) -> Any:
    area = tid(signed.page, TID.RULE_YAML)
    yaml_text = signed.api_json(f"/api/rules/{rule_id}")["yaml"]
    expect(area).to_have_value(yaml_text, timeout=UI_TIMEOUT_MS)
    return area


def test_an_admin_edits_tests_and_saves_a_rule_and_a_second_tab_gets_the_conflict(
    signed_in_page: Callable[..., SignedIn],
    context: Any,
    console: Console,
    rules_blob: None,
    ledger_matches: int,
) -> None:
    signed = signed_in_page([ADMIN, PRIVACY], "/rules")
    page = signed.page
    shown_rows(page)
    document = rules_document(signed, matches_at_least=ledger_matches)
    page.reload()
    assert shown_rows(page) == expected_rows(document, toggles=1)
    assert next(r for r in document["rules"] if r["id"] == RULE)["last_7_days"]["matches"] >= ledger_matches
    assert run_axe(page) == []
    screenshot(page, "rules-list-admin")

    # off and on again from the list, each under the version the list was read at
    toggle = tid(page, TID.RULE_ROW, rule_id=RULE).get_by_test_id(TID.RULE_TOGGLE)
    toggle.uncheck()
    expect(tid(page, TID.RULES_STATUS)).to_contain_text("disabled", timeout=UI_TIMEOUT_MS)
    assert signed.api_json(f"/api/rules/{RULE}")["enabled"] is False
    toggle.check()
    expect(tid(page, TID.RULES_STATUS)).to_contain_text("enabled", timeout=UI_TIMEOUT_MS)
    assert signed.api_json(f"/api/rules/{RULE}")["enabled"] is True

    # the invalid regex: refused, shown next to its line, reachable from the list of problems
    area = open_editor(signed, RULE)
    area.fill(BROKEN)
    tid(page, TID.RULE_SAVE).click()
    note = tid(page, TID.RULE_ERROR)
    expect(note).to_have_count(1, timeout=UI_TIMEOUT_MS)
    expect(note).to_have_attribute("data-line", str(BROKEN_LINE))
    expect(note).to_contain_text("invalid regex")
    expect(area).to_have_attribute("aria-invalid", "true")
    problems = tid(page, TID.RULE_PROBLEMS)
    expect(problems).to_have_attribute("role", "alert")
    expect(problems).to_contain_text("when.all[1].regex")
    tid(page, TID.RULE_PROBLEM).click()  # keyboard users: a button that moves the caret to the line
    expect(area).to_be_focused()
    expect(tid(page, TID.RULE_LINE_ERROR)).to_contain_text(f"Line {BROKEN_LINE}: when.all[1].regex")
    assert signed.api_json(f"/api/rules/{RULE}")["title"] != "Additions (browser test)"  # nothing saved
    assert run_axe(page) == []
    screenshot(page, "rule-editor-invalid-regex")

    # fixed, tested against the newest events: the page lists what the API's own test finds
    area.fill(FIXED)
    tid(page, TID.RULE_TEST).click()
    expect(tid(page, TID.RULE_TEST_RESULT)).to_be_visible(timeout=UI_TIMEOUT_MS)
    expect(tid(page, TID.RULE_ERROR)).to_have_count(0)
    answer = signed.api("POST", "/api/rules/test", json={"yaml": FIXED, "last": 500})
    assert answer.status_code == 200, answer.text
    tested = answer.json()
    assert tested["matched"] > 0, tested
    expect(tid(page, TID.RULE_TEST_SUMMARY)).to_contain_text(f"{tested['matched']:,} of the last")
    shown = tid(page, TID.RULE_TEST_MATCH).evaluate_all("items => items.map(i => i.dataset.eventId)")
    assert shown == [m["id"] for m in tested["matches"]]
    link = tid(page, TID.RULE_TEST_MATCH).first.locator("a")
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(link.get_attribute("href") or "").query)
    assert query["event"] == [tested["matches"][0]["id"]]
    screenshot(page, "rule-editor-tested")

    tid(page, TID.RULE_SAVE).click()
    expect(tid(page, TID.RULE_STATUS)).to_contain_text("Saved", timeout=UI_TIMEOUT_MS)
    saved = signed.api_json(f"/api/rules/{RULE}")
    assert saved["title"] == "Additions (browser test)"
    assert saved["when"]["all"][1] == {"field": "operation", "regex": "^Add "}
    expect(area).to_have_value(saved["yaml"])  # the canonical form the server saved

    # a second tab opens the same version; this tab saves first; the second tab's save is refused
    other = sign_in(context, console, [ADMIN], f"/rules?rule={RULE}")
    other_area = wait_for_yaml(other, RULE)
    area.fill(saved["yaml"].replace("severity: low", "severity: high"))
    # the status still says "Saved" from the save above: wait for this save's answer itself
    with page.expect_response(lambda r: r.request.method == "PUT" and "/api/rules/" in r.url) as first:
        tid(page, TID.RULE_SAVE).click()
    assert first.value.status == 200, first.value.text()
    expect(tid(page, TID.RULE_STATUS)).to_contain_text("Saved", timeout=UI_TIMEOUT_MS)
    theirs = saved["yaml"].replace("Additions (browser test)", "Additions, second tab")
    other_area.fill(theirs)
    with other.page.expect_response(lambda r: r.request.method == "PUT" and "/api/rules/" in r.url) as put:
        tid(other.page, TID.RULE_SAVE).click()
    assert put.value.status == 412, put.value.text()  # a stale If-Match: Precondition Failed
    assert put.value.json()["type"].endswith("/rule-changed")
    expect(tid(other.page, TID.RULE_CONFLICT)).to_be_visible(timeout=UI_TIMEOUT_MS)
    expect(tid(other.page, TID.RULE_CONFLICT)).to_have_attribute("role", "alert")
    expect(other_area).to_have_value(theirs)  # the text is kept
    current = signed.api_json(f"/api/rules/{RULE}")
    assert (current["severity"], current["title"]) == ("high", "Additions (browser test)")  # not overwritten
    assert run_axe(other.page) == []
    screenshot(other.page, "rule-editor-conflict")

    tid(other.page, TID.RULE_RELOAD).click()
    expect(tid(other.page, TID.RULE_CURRENT)).to_contain_text("severity: high", timeout=UI_TIMEOUT_MS)
    expect(other_area).to_have_value(theirs)
    tid(other.page, TID.RULE_SAVE).click()
    expect(tid(other.page, TID.RULE_STATUS)).to_contain_text("Saved", timeout=UI_TIMEOUT_MS)
    final = other.api_json(f"/api/rules/{RULE}")
    assert (final["severity"], final["title"]) == ("low", "Additions, second tab")
    screenshot(other.page, "rule-editor-saved-after-conflict")

    # the list too: a switch over a version someone has since replaced changes nothing and reloads
    tid(other.page, "rules-back").click()
    stale_toggle = tid(other.page, TID.RULE_ROW, rule_id=RULE).get_by_test_id(TID.RULE_TOGGLE)
    expect(stale_toggle).to_be_checked(timeout=UI_TIMEOUT_MS)
    switched = signed.api("PUT", f"/api/rules/{RULE}", json={"enabled": False})
    assert switched.status_code == 200, switched.text
    with other.page.expect_response(lambda r: r.request.method == "PUT" and "/api/rules/" in r.url) as put:
        stale_toggle.click()  # not uncheck(): the page puts the box back when the save is refused
    assert put.value.status == 412, put.value.text()
    notice = tid(other.page, TID.RULES_STATUS)
    expect(notice).to_contain_text("changed by someone else", timeout=UI_TIMEOUT_MS)
    enabled = tid(other.page, TID.RULE_ROW, rule_id=RULE).get_by_test_id(TID.RULE_ENABLED)
    expect(enabled).to_have_attribute("data-enabled", "false")  # the list as reloaded
    assert signed.api_json(f"/api/rules/{RULE}")["etag"] == switched.json()["etag"]  # nothing saved


def test_a_reader_sees_the_rules_and_their_yaml_but_cannot_change_them(
    signed_in_page: Callable[..., SignedIn], console: Console
) -> None:
    signed = signed_in_page([READER], "/rules")
    page = signed.page
    shown_rows(page)
    document = rules_document(signed)
    rows = shown_rows(page)
    assert rows == expected_rows(document, toggles=0)
    # without AOC.Privacy, with sensitive services hidden: no match counts, which cannot leave them out
    assert console.sensitive_services
    assert {r["matches"] for r in rows} == {"—"}
    assert run_axe(page) == []
    screenshot(page, "rules-list-reader")

    area = open_editor(signed, RULE)
    expect(area).to_have_attribute("readonly", "")
    expect(tid(page, TID.RULE_READ_ONLY)).to_be_visible()
    expect(tid(page, TID.RULE_SAVE)).to_have_count(0)
    expect(tid(page, TID.RULE_TEST)).to_have_count(0)
    assert run_axe(page) == []
    screenshot(page, "rule-editor-reader")

    # the server refuses what the page does not offer
    put = signed.api("PUT", f"/api/rules/{RULE}", json={"enabled": False})
    assert put.status_code == 403, put.text
    tested = signed.api("POST", "/api/rules/test", json={"yaml": FIXED})
    assert tested.status_code == 403, tested.text
