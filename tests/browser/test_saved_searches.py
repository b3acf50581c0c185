"""Saved searches through the console: an Analyst saves the explorer's state from its "Save search"
dialog, shared with the Analyst role and pinned; another Analyst (another user of the simulated tenant)
finds it on the Saved searches page, cannot change or delete it, does not see the first one's private
search, and opens it in the explorer with the same filters and the same results. The owner deletes the
private one under its ETag. axe-core on the page and the dialog."""

from __future__ import annotations

import urllib.parse
import uuid
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.browser.helpers import (
    ANALYST,
    HTTP_TIMEOUT,
    TID,
    UI_TIMEOUT_MS,
    Console,
    SignedIn,
    run_axe,
    screenshot,
    sign_in,
    tid,
    url_query,
)

pytestmark = pytest.mark.browser

# Directory events of the last 24 hours that succeeded: the seeded day holds many, so the table fills.
STATE = {"start": ["24h"], "result": ["success"], "service": ["Directory"]}
STATE_PATH = "/?" + urllib.parse.urlencode([(k, v) for k, vs in STATE.items() for v in vs])


def _row(page: Page, search_id: str) -> Any:
    return tid(page, TID.SEARCH_ROW, search_id=search_id)


def _delete(signed: SignedIn, search_id: str, etag: str) -> httpx.Response:
    """DELETE /api/searches/{id} with If-Match, as the signed-in user (the console's token)."""
    headers = {"Authorization": f"Bearer {signed.token}", "If-Match": etag}
    with httpx.Client(base_url=signed.console.base_url, timeout=HTTP_TIMEOUT) as client:
        return client.delete(f"/api/searches/{search_id}", headers=headers)


def _saved_ids(signed: SignedIn) -> dict[str, dict[str, Any]]:
    return {s["id"]: s for s in signed.api_json("/api/searches")["items"]}


def test_a_search_shared_with_a_role_opens_for_another_user_with_that_role(
    context: Any, second_context: Any, console: Console
) -> None:
    name = f"Directory successes {uuid.uuid4().hex[:6]}"
    owner = sign_in(context, console, [ANALYST], path=STATE_PATH, user=0)
    try:
        _share_and_open(owner, second_context, console, name)
    finally:
        # The session's other tests (the Home page's pinned searches) must not find this one's searches.
        for search in _saved_ids(owner).values():
            if search["mine"] and search["name"].startswith(name):
                assert _delete(owner, search["id"], search["etag"]).status_code == 200


def _share_and_open(owner: SignedIn, second_context: Any, console: Console, name: str) -> None:
    page = owner.page
    owner_rows = owner.wait_for_rows()
    owner.expect_rows(owner.all_ids(STATE)[: len(owner_rows)])

    # Save the explorer's state, shared with Analysts and pinned.
    tid(page, TID.SAVE_SEARCH).click()
    dialog = tid(page, TID.SAVE_SEARCH_DIALOG)
    expect(dialog).to_be_visible(timeout=UI_TIMEOUT_MS)
    expect(tid(page, TID.SEARCH_FORM_NAME)).to_be_focused()
    tid(page, TID.SEARCH_FORM_NAME).fill(name)
    tid(page, TID.SEARCH_FORM_SHARED).check()
    expect(tid(page, TID.SEARCH_FORM_ROLE)).to_have_value(ANALYST)  # the highest role held
    tid(page, TID.SEARCH_FORM_PINNED).check()
    dialog_violations = run_axe(page)
    screenshot(page, "saved-searches-dialog")
    tid(page, TID.SEARCH_FORM_SUBMIT).click()
    expect(tid(page, TID.SAVE_SEARCH_STATUS)).to_contain_text(f"Saved “{name}”", timeout=UI_TIMEOUT_MS)
    shared = next(s for s in _saved_ids(owner).values() if s["name"] == name)
    assert {k: shared[k] for k in ("visibility", "role", "pinned", "mine")} == {
        "visibility": "role",
        "role": ANALYST,
        "pinned": True,
        "mine": True,
    }
    assert urllib.parse.parse_qs(shared["query"]) == STATE
    posted = [r for r in owner.api_requests if r.method == "POST" and r.url.endswith("/api/searches")]
    assert len(posted) == 1
    assert posted[0].headers.get("idempotency-key")
    page.keyboard.press("Escape")
    expect(dialog).to_have_count(0)

    # A private search of the same owner, made through the API with the console's token.
    private = owner.api(
        "POST", "/api/searches", json={"name": f"{name} (mine only)", "query": "q=private&start=24h"}
    )
    assert private.status_code == 201, private.text
    private_id = private.json()["id"]

    # The owner's page lists both, with the controls of an owner.
    tid(page, "nav-searches").click()
    expect(_row(page, shared["id"])).to_be_visible(timeout=UI_TIMEOUT_MS)
    row = _row(page, shared["id"])
    expect(row.locator(f'[data-testid="{TID.SEARCH_OWNER}"]')).to_have_text("You")
    expect(row.locator(f'[data-testid="{TID.SEARCH_VISIBILITY}"]')).to_have_text("Analysts")
    expect(row.locator(f'[data-testid="{TID.SEARCH_PINNED}"]')).to_have_text("Yes")
    expect(row.locator(f'[data-testid="{TID.SEARCH_DELETE}"]')).to_be_visible()
    expect(_row(page, private_id)).to_be_visible()
    owner_page_violations = run_axe(page)
    screenshot(page, "saved-searches-owner")

    # Another user with the same role: sees the shared search, not the private one, and cannot delete it.
    other = sign_in(second_context, console, [ANALYST], path="/searches", user=1)
    other_page = other.page
    other_row = _row(other_page, shared["id"])
    expect(other_row).to_be_visible(timeout=UI_TIMEOUT_MS)
    expect(_row(other_page, private_id)).to_have_count(0)
    expect(other_row.locator(f'[data-testid="{TID.SEARCH_OWNER}"]')).to_have_text(shared["owner_name"])
    expect(other_row.locator(f'[data-testid="{TID.SEARCH_DELETE}"]')).to_have_count(0)
    expect(other_row.locator(f'[data-testid="{TID.SEARCH_EDIT}"]')).to_have_count(0)
    seen = _saved_ids(other)
    assert shared["id"] in seen
    assert private_id not in seen
    assert seen[shared["id"]]["mine"] is False
    refused = _delete(other, shared["id"], shared["etag"])
    assert refused.status_code == 403, refused.text
    assert other.api("GET", f"/api/searches/{private_id}").status_code == 404
    other_page_violations = run_axe(other_page)
    screenshot(other_page, "saved-searches-other-user")

    # Opening it shows the explorer with its filters and the same results.
    other_row.locator(f'[data-testid="{TID.SEARCH_OPEN}"]').click()
    other.wait_for_events_call(lambda q: {k: q.get(k) for k in STATE} == STATE)
    assert {k: v for k, v in url_query(other_page).items() if k in STATE} == STATE
    expect(tid(other_page, "chip-service-Directory")).to_be_visible(timeout=UI_TIMEOUT_MS)
    expect(tid(other_page, "filter-result")).to_have_value("success")
    expect(tid(other_page, TID.TIME_24H)).to_have_attribute("aria-pressed", "true")
    other.expect_rows(owner_rows)
    screenshot(other_page, "saved-searches-opened-by-other-user")

    # The owner renames the private one and deletes it from the page, each under its ETag.
    private_row = _row(page, private_id)
    private_row.locator(f'[data-testid="{TID.SEARCH_EDIT}"]').click()
    expect(tid(page, TID.SEARCH_FORM_NAME)).to_have_value(f"{name} (mine only)", timeout=UI_TIMEOUT_MS)
    tid(page, TID.SEARCH_FORM_NAME).fill(f"{name} (renamed)")
    screenshot(page, "saved-searches-edit")
    tid(page, TID.SEARCH_FORM_SUBMIT).click()
    expect(private_row.locator(f'[data-testid="{TID.SEARCH_OPEN}"]')).to_have_text(
        f"{name} (renamed)", timeout=UI_TIMEOUT_MS
    )
    puts = [r for r in owner.api_requests if r.method == "PUT"]
    assert [r.headers.get("if-match") for r in puts] == [private.headers["etag"]]
    renamed_etag = _saved_ids(owner)[private_id]["etag"]
    assert renamed_etag != private.headers["etag"]
    private_row.locator(f'[data-testid="{TID.SEARCH_DELETE}"]').click()
    confirm = private_row.locator(f'[data-testid="{TID.SEARCH_DELETE_CONFIRM}"]')
    expect(confirm).to_be_focused()
    confirm.click()
    expect(_row(page, private_id)).to_have_count(0, timeout=UI_TIMEOUT_MS)
    expect(tid(page, TID.SEARCHES_STATUS)).to_contain_text("Deleted")
    deletes = [r for r in owner.api_requests if r.method == "DELETE"]
    assert [r.headers.get("if-match") for r in deletes] == [renamed_etag]
    assert private_id not in _saved_ids(owner)

    assert {
        "dialog": dialog_violations,
        "owner's page": owner_page_violations,
        "other user's page": other_page_violations,
    } == {"dialog": [], "owner's page": [], "other user's page": []}
