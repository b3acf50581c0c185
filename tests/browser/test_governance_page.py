"""The Governance page (/governance, issue 18): the summary strip and the last discovery, the findings with
their filters in the address and paging, a service principal's findings, last-known-good, ReportOnly
remediation and history, an Admin accepting and revoking a risk (with the form's validation), "Run
discovery", the activities, what a Reader is offered (and refused), and axe on each view. The data is
seeded through the app's own GovernanceService (tests/browser/governance_data.py); what the page shows is
checked against what the seed recorded and what the API answers."""

from __future__ import annotations

import datetime as dt
import json
import re
import urllib.parse
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Page, Request, expect

from shared.governance.records import FindingRecord
from tests.browser.governance_data import GovernanceSeed, seed_governance
from tests.browser.helpers import (
    ADMIN,
    READER,
    UI_TIMEOUT_MS,
    Console,
    SignedIn,
    run_axe,
    screenshot,
    tid,
    url_query,
)

pytestmark = pytest.mark.browser

PAGE_SIZE = 50  # the findings the page asks for at once (limit)
ACTIVITY_ID = re.compile(r"act-discovery-[0-9a-f]{32}")


class T:
    """The Governance page's data-testid values (web/src/README.md)."""

    SUMMARY = "gv-summary"
    OBJECTS_FAILING = "gv-objects-failing"  # data-count
    MODE = "gv-mode"  # data-mode
    LAST_DISCOVERY = "gv-last-discovery"  # data-activity-id
    RUN = "gv-run"
    FULL_SEED = "gv-full-seed"
    RUN_RESULT = "gv-run-result"
    FINDINGS = "gv-findings"
    FINDING = "gv-finding"  # data-finding-id, data-state, data-validator
    OBJECT_LINK = "gv-object-link"
    MORE = "gv-more"
    FILTER_OBJECT = "gv-filter-object"
    FILTER_OBJECT_ERROR = "gv-filter-object-error"
    OBJECT = "gv-object"  # data-object-id
    OBJECT_NAME = "gv-object-name"
    OBJECT_FINDING = "gv-object-finding"  # data-finding-id, data-validator, data-state
    OBJECT_FINDING_STATE = "gv-object-finding-state"
    EVIDENCE = "gv-evidence"
    ACCEPTED = "gv-accepted"
    ACCEPT = "gv-accept"
    ACCEPT_FORM = "gv-accept-form"
    ACCEPT_REASON = "gv-accept-reason"
    ACCEPT_EXPIRY = "gv-accept-expiry"
    ACCEPT_SUBMIT = "gv-accept-submit"
    REASON_ERROR = "gv-accept-reason-error"
    EXPIRY_ERROR = "gv-accept-expiry-error"
    EXCEPTION_STATUS = "gv-exception-status"
    EXCEPTION = "gv-exception"  # data-exception-id, data-validator, data-active
    REVOKE = "gv-revoke"
    LKG_NOTES = "gv-lkg-notes"
    LKG_OWNER = "gv-lkg-owner"
    REMEDIATION = "gv-remediation-plan"  # data-status, data-mode
    PATCH = "gv-patch"
    HISTORY_ENTRY = "gv-history-entry"  # data-action
    TAB_ACTIVITIES = "gv-tab-activities"
    ACTIVITY = "gv-activity"  # data-activity-id, data-kind
    ACTIVITY_COUNTS = "gv-activity-counts"
    ACTIVITY_ERRORS = "gv-activity-errors"
    FILTER_KIND = "gv-filter-kind"

    @staticmethod
    def severity(severity: str) -> str:
        """A summary card: the open findings of `severity` (data-count), a link to them."""
        return f"gv-sev-{severity}"

    @staticmethod
    def filter(name: str) -> str:
        """A findings filter: validator, severity, state (selects) or object (text)."""
        return f"gv-filter-{name}"


@pytest.fixture
def seed(console: Console) -> GovernanceSeed:
    return seed_governance(console)


def newest_first(findings: list[FindingRecord]) -> list[str]:
    """The API's order: newest last_seen first (the id breaks ties, as keyset paging does)."""
    return [f.id for f in sorted(findings, key=lambda f: (f.last_seen, f.id), reverse=True)]


def rows(page: Page) -> list[str]:
    return [str(x) for x in tid(page, T.FINDING).evaluate_all("rs => rs.map(r => r.dataset.findingId)")]


def expect_rows(page: Page, expected: list[str]) -> None:
    """The findings table comes to hold exactly `expected`, in order."""
    shown: list[str] = []
    for _ in range(UI_TIMEOUT_MS // 100):
        shown = rows(page)
        if shown == expected and tid(page, T.FINDINGS).get_attribute("aria-busy") == "false":
            return
        page.wait_for_timeout(100)
    assert shown == expected


def api_findings(signed: SignedIn, **params: str) -> list[dict[str, Any]]:
    """Every finding the API lists for `params`, walking `next`."""
    items: list[dict[str, Any]] = []
    query: dict[str, str] = {**params, "limit": str(PAGE_SIZE)}
    while True:
        body = signed.api_json("/api/governance/findings", query)
        items.extend(body["items"])
        token = body.get("next")
        if not token:
            return items
        query = {**query, "continuation": token}


def test_a_reader_sees_the_summary_every_finding_page_by_page_and_no_admin_control(
    signed_in_page: Callable[..., SignedIn], seed: GovernanceSeed
) -> None:
    signed = signed_in_page([READER], "/governance")
    page = signed.page
    current = [f for f in seed.findings if f.state != "resolved"]
    expected = newest_first(current)
    assert len(expected) > PAGE_SIZE  # two pages

    expect_rows(page, expected[:PAGE_SIZE])
    assert signed.last_call("/api/governance/findings")["limit"] == [str(PAGE_SIZE)]
    tid(page, T.MORE).click()
    expect_rows(page, expected)
    expect(tid(page, T.MORE)).to_have_count(0)
    assert [f["id"] for f in api_findings(signed)] == expected

    # The strip: open findings by severity and objects failing, as the seed left them and the API counts.
    summary = signed.api_json("/api/governance/findings/summary")
    open_by_severity = Counter(f.severity for f in seed.findings if f.state == "open")
    failing = {f.object_id for f in seed.findings if f.state == "open"}
    for severity in ("critical", "high", "medium", "low", "informational"):
        card = tid(page, T.severity(severity))
        expect(card).to_have_attribute("data-count", str(open_by_severity[severity]), timeout=UI_TIMEOUT_MS)
        assert summary["by_severity"].get(severity, 0) == open_by_severity[severity]
    expect(tid(page, T.OBJECTS_FAILING)).to_have_attribute("data-count", str(len(failing)))
    assert summary["objects_failing"] == len(failing)
    mode = signed.api_json("/api/status")["governance"]["mode"]
    assert mode == "ReportOnly"
    expect(tid(page, T.MODE)).to_have_attribute("data-mode", mode)
    expect(tid(page, T.LAST_DISCOVERY)).to_have_attribute("data-activity-id", seed.discovery_id)
    expect(tid(page, T.LAST_DISCOVERY)).to_contain_text(f"discovered {len(seed.names)}")

    # A Reader is offered no write, and the API refuses one anyway.
    expect(tid(page, T.RUN)).to_have_count(0)
    refused = signed.api("POST", "/api/governance/discovery", json={"full_seed": False})
    assert refused.status_code == 403, refused.text
    accept = {
        "object_id": seed.payroll,
        "validator_id": "notes-lists-owners",
        "reason": "a reader tries",
        "expires_at": (dt.datetime.now(dt.UTC) + dt.timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    refused = signed.api("POST", "/api/governance/exceptions", json=accept)
    assert refused.status_code == 403, refused.text
    assert run_axe(page) == []
    screenshot(page, "governance-list")

    # A severity card leads to that severity's open findings.
    tid(page, T.severity("low")).click()
    low = [f for f in seed.findings if f.severity == "low" and f.state == "open"]
    expect_rows(page, newest_first(low))
    assert url_query(page) == {"severity": ["low"], "state": ["open"]}


def test_filters_live_in_the_address_and_a_shared_link_shows_the_same_findings(
    signed_in_page: Callable[..., SignedIn], seed: GovernanceSeed
) -> None:
    signed = signed_in_page([READER], "/governance?validator=ownerless&state=accepted")
    page = signed.page
    accepted = [f for f in seed.findings if f.validator_id == "ownerless" and f.state == "accepted"]
    expect_rows(page, newest_first(accepted))
    call = signed.last_call("/api/governance/findings")
    assert (call["validator"], call["state"]) == (["ownerless"], ["accepted"])
    expect(tid(page, T.filter("validator"))).to_have_value("ownerless")

    # Another validator, then every state of one object typed by its id.
    tid(page, T.filter("validator")).select_option("credential-expiry")
    tid(page, T.filter("state")).select_option(value="")
    expiry = [f for f in seed.findings if f.validator_id == "credential-expiry"]
    expect_rows(page, newest_first(expiry))
    assert url_query(page) == {"validator": ["credential-expiry"]}

    tid(page, T.filter("validator")).select_option(value="")
    box = tid(page, T.FILTER_OBJECT)
    box.fill("not-a-guid")
    box.press("Enter")
    expect(tid(page, T.FILTER_OBJECT_ERROR)).to_be_visible()
    expect(box).to_have_attribute("aria-invalid", "true")
    assert "object" not in url_query(page)
    box.fill(seed.payroll.upper())
    box.press("Enter")
    payroll = [f for f in seed.findings if f.object_id == seed.payroll]
    expect_rows(page, newest_first(payroll))
    assert url_query(page) == {"object": [seed.payroll]}
    expect(tid(page, T.FILTER_OBJECT_ERROR)).to_have_count(0)

    # The address is the whole state: loaded again, it shows the same.
    page.reload()
    expect_rows(page, newest_first(payroll))
    expect(tid(page, T.FILTER_OBJECT)).to_have_value(seed.payroll)
    page.go_back()  # before the object: every validator and state
    expect_rows(page, newest_first([f for f in seed.findings if f.state != "resolved"])[:PAGE_SIZE])
    assert url_query(page) == {}


def test_a_service_principal_shows_its_evidence_last_known_good_reportonly_patch_and_history(
    signed_in_page: Callable[..., SignedIn], seed: GovernanceSeed
) -> None:
    signed = signed_in_page([READER], f"/governance?object={seed.payroll}")
    page = signed.page
    tid(page, T.OBJECT_LINK).first.click()
    expect(tid(page, T.OBJECT)).to_have_attribute("data-object-id", seed.payroll, timeout=UI_TIMEOUT_MS)
    assert url_query(page) == {"object": [seed.payroll], "id": [seed.payroll]}
    name = tid(page, T.OBJECT_NAME)
    expect(name).to_have_text(seed.names[seed.payroll])
    expect(name).to_be_focused()

    detail = signed.api_json(f"/api/governance/objects/{seed.payroll}")
    (finding,) = [f for f in seed.findings if f.object_id == seed.payroll]
    item = tid(page, T.OBJECT_FINDING, finding_id=finding.id)
    expect(item).to_have_attribute("data-state", "open")
    evidence = item.locator(f'[data-testid="{T.EVIDENCE}"]')
    for key, value in finding.evidence.items():
        shown = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
        expect(evidence).to_contain_text(key)
        expect(evidence).to_contain_text(shown)

    expect(tid(page, T.LKG_NOTES)).to_have_text(seed.last_known_good_notes)
    owners = detail["object"]["last_known_good"]["owners"]
    expect(tid(page, T.LKG_OWNER)).to_have_count(len(owners))
    for owner in owners:
        expect(tid(page, T.LKG_OWNER).filter(has_text=owner["upn"])).to_have_count(1)

    remediation = seed.remediation
    assert remediation.request is not None
    plan = tid(page, T.REMEDIATION)
    expect(plan).to_have_attribute("data-mode", "ReportOnly")
    expect(plan).to_have_attribute("data-status", remediation.status)
    patch = tid(page, T.PATCH)
    expect(patch).to_contain_text(f"PATCH {remediation.request.url}")
    shown_body = json.loads(patch.inner_text().split("\n", 1)[1])
    assert shown_body == remediation.request.body == {"notes": seed.last_known_good_notes}

    history = [h["action"] for h in detail["history"]]
    assert history, detail
    expect(tid(page, T.HISTORY_ENTRY)).to_have_count(len(history))
    shown_actions = tid(page, T.HISTORY_ENTRY).evaluate_all("es => es.map(e => e.dataset.action)")
    assert shown_actions == history
    assert Counter(history)["governance.evaluate"] == 2
    assert "governance.notes.report" in history

    expect(tid(page, T.ACCEPT)).to_have_count(0)  # a Reader
    expect(tid(page, T.REVOKE)).to_have_count(0)
    assert run_axe(page) == []
    screenshot(page, "governance-object")


def test_an_admin_accepts_a_risk_with_validation_sees_it_accepted_and_revokes_it(
    signed_in_page: Callable[..., SignedIn], seed: GovernanceSeed
) -> None:
    signed = signed_in_page([ADMIN], f"/governance?id={seed.expiring}")
    page = signed.page
    posts: list[Request] = []
    page.on("request", lambda r: posts.append(r) if r.method == "POST" else None)
    (finding,) = [
        f for f in seed.findings if f.object_id == seed.expiring and f.validator_id == "credential-expiry"
    ]
    item = tid(page, T.OBJECT_FINDING, finding_id=finding.id)
    expect(item).to_have_attribute("data-state", "open", timeout=UI_TIMEOUT_MS)

    # The keyboard opens the form; the reason takes the focus.
    item.locator(f'[data-testid="{T.ACCEPT}"]').focus()
    page.keyboard.press("Enter")
    form = tid(page, T.ACCEPT_FORM)
    reason = form.locator(f'[data-testid="{T.ACCEPT_REASON}"]')
    expect(reason).to_be_focused()

    # Nothing is sent until the form holds a reason and a day within a year.
    form.locator(f'[data-testid="{T.ACCEPT_SUBMIT}"]').click()
    expect(tid(page, T.REASON_ERROR)).to_be_visible()
    expect(reason).to_have_attribute("aria-invalid", "true")
    expect(reason).to_be_focused()  # the first field with a problem
    page.keyboard.type("Rotation is scheduled with the vendor on Friday")
    expiry = form.locator(f'[data-testid="{T.ACCEPT_EXPIRY}"]')
    too_late = (dt.datetime.now(dt.UTC) + dt.timedelta(days=400)).date().isoformat()
    expiry.fill(too_late)
    form.locator(f'[data-testid="{T.ACCEPT_SUBMIT}"]').click()
    expect(tid(page, T.EXPIRY_ERROR)).to_be_visible()
    expect(tid(page, T.REASON_ERROR)).to_have_count(0)
    expect(expiry).to_be_focused()
    assert not [r for r in posts if r.url.endswith("/api/governance/exceptions")]
    screenshot(page, "governance-accept-validation")

    until = (dt.datetime.now(dt.UTC) + dt.timedelta(days=10)).date().isoformat()
    expiry.fill(until)
    form.locator(f'[data-testid="{T.ACCEPT_SUBMIT}"]').click()
    expect(item).to_have_attribute("data-state", "accepted", timeout=UI_TIMEOUT_MS)
    expect(tid(page, T.EXCEPTION_STATUS)).to_contain_text("accepted until")
    (sent,) = [r for r in posts if r.url.endswith("/api/governance/exceptions")]
    assert sent.post_data_json == {
        "object_id": seed.expiring,
        "validator_id": "credential-expiry",
        "reason": "Rotation is scheduled with the vendor on Friday",
        "expires_at": f"{until}T23:59:59Z",
    }
    listed = signed.api_json("/api/governance/exceptions", {"object": seed.expiring})["items"]
    (stored,) = [x for x in listed if x["validator_id"] == "credential-expiry"]
    assert (stored["reason"], stored["active"]) == ("Rotation is scheduled with the vendor on Friday", True)
    row = tid(page, T.EXCEPTION, exception_id=stored["id"])
    expect(row).to_have_attribute("data-active", "true")
    expect(item.locator(f'[data-testid="{T.ACCEPTED}"]')).to_contain_text("Rotation is scheduled")
    expect(item.locator(f'[data-testid="{T.ACCEPT}"]')).to_have_count(0)
    assert run_axe(page) == []
    screenshot(page, "governance-accepted")

    # Another admin changes it meanwhile: the page's If-Match is stale, so the revoke is refused (412) and
    # the page shows the exception as it is now; revoking that one works.
    replaced = signed.api(
        "POST",
        "/api/governance/exceptions",
        json={**sent.post_data_json, "reason": "Extended: the vendor moved the rotation"},
    )
    assert replaced.status_code == 200, replaced.text
    row.locator(f'[data-testid="{T.REVOKE}"]').click()
    expect(tid(page, T.EXCEPTION_STATUS)).to_contain_text("changed meanwhile", timeout=UI_TIMEOUT_MS)
    expect(row).to_contain_text("Extended: the vendor moved the rotation")
    expect(item).to_have_attribute("data-state", "accepted")
    row.locator(f'[data-testid="{T.REVOKE}"]').click()
    expect(item).to_have_attribute("data-state", "open", timeout=UI_TIMEOUT_MS)
    expect(tid(page, T.EXCEPTION, exception_id=stored["id"])).to_have_count(0)
    expect(tid(page, T.EXCEPTION_STATUS)).to_contain_text("revoked")
    listed = signed.api_json("/api/governance/exceptions", {"object": seed.expiring})["items"]
    assert [x for x in listed if x["validator_id"] == "credential-expiry"] == []


def test_an_admin_runs_a_full_discovery_and_sees_the_202_and_its_activity_id(
    signed_in_page: Callable[..., SignedIn], seed: GovernanceSeed
) -> None:
    signed = signed_in_page([ADMIN], "/governance")
    page = signed.page
    expect(tid(page, T.LAST_DISCOVERY)).to_have_attribute(
        "data-activity-id", seed.discovery_id, timeout=UI_TIMEOUT_MS
    )
    with page.expect_request(
        lambda r: r.method == "POST" and urllib.parse.urlsplit(r.url).path == "/api/governance/discovery"
    ) as info:
        tid(page, T.FULL_SEED).check()
        tid(page, T.RUN).click()
    assert info.value.post_data_json == {"full_seed": True}
    result = tid(page, T.RUN_RESULT)
    expect(result).to_contain_text("202", timeout=UI_TIMEOUT_MS)
    response = info.value.response()
    assert response is not None
    assert response.status == 202
    body = response.json()
    assert ACTIVITY_ID.fullmatch(body["activity_id"])
    assert body["full_seed"] is True
    expect(result).to_contain_text(body["activity_id"])
    expect(result).to_contain_text("full seed")


def test_the_activities_list_shows_each_run_and_batch_with_its_counts(
    signed_in_page: Callable[..., SignedIn], seed: GovernanceSeed
) -> None:
    signed = signed_in_page([READER], "/governance")
    page = signed.page
    tid(page, T.TAB_ACTIVITIES).click()
    expect(tid(page, T.ACTIVITY, activity_id=seed.discovery_id)).to_be_visible(timeout=UI_TIMEOUT_MS)
    assert url_query(page) == {"view": ["activities"]}
    listed = signed.api_json("/api/governance/activities", {"limit": "50"})["items"]
    assert {seed.discovery_id, seed.batch_id, seed.update_id} <= {a["id"] for a in listed}
    shown = tid(page, T.ACTIVITY).evaluate_all("rs => rs.map(r => r.dataset.activityId)")
    assert shown == [a["id"] for a in listed]
    batch = next(a for a in listed if a["id"] == seed.batch_id)
    evaluated = len(seed.names) + 1  # the payroll object twice: once passing, once failing
    assert (batch["kind"], batch["counts"]["evaluated"]) == ("evaluation", evaluated)
    counts = tid(page, T.ACTIVITY, activity_id=seed.batch_id).locator(f'[data-testid="{T.ACTIVITY_COUNTS}"]')
    expect(counts).to_contain_text(f"evaluated {evaluated}")
    expect(counts).to_contain_text(f"failed {batch['counts']['failed']}")
    update = tid(page, T.ACTIVITY, activity_id=seed.update_id)
    expect(update).to_have_attribute("data-kind", "update")
    expect(update.locator(f'[data-testid="{T.ACTIVITY_ERRORS}"]')).to_contain_text(seed.update_error)
    expect(update.locator(f'[data-testid="{T.ACTIVITY_ERRORS}"]')).to_contain_text(seed.payroll)
    expect(update.locator(f'[data-testid="{T.ACTIVITY_COUNTS}"]')).to_have_text("errors 1")
    assert run_axe(page) == []
    screenshot(page, "governance-activities")

    tid(page, T.FILTER_KIND).select_option("discovery")
    expect(tid(page, T.ACTIVITY, activity_id=seed.batch_id)).to_have_count(0, timeout=UI_TIMEOUT_MS)
    expect(tid(page, T.ACTIVITY, activity_id=seed.discovery_id)).to_be_visible(timeout=UI_TIMEOUT_MS)
    kinds = set(tid(page, T.ACTIVITY).evaluate_all("rs => rs.map(r => r.dataset.kind)"))
    assert kinds == {"discovery"}
    assert url_query(page) == {"view": ["activities"], "kind": ["discovery"]}
