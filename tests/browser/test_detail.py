"""The event detail panel: the old -> new diff of a Conditional Access change, the raw record, and
tagging, which an Analyst may do and a Reader is not offered."""

from __future__ import annotations

import json
import urllib.parse
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.helpers import ANALYST, READER, TID, UI_TIMEOUT_MS, Console, SignedIn, screenshot, tid

pytestmark = pytest.mark.browser

CA_TEXT = "update conditional access policy"


def _event(signed: SignedIn, event_id: str) -> dict[str, Any]:
    return dict(signed.api_json("/api/events/" + urllib.parse.quote(event_id, safe="")))


def _scalar_change(event: dict[str, Any]) -> tuple[str, str, str]:
    """A top-level policy key whose old and new values are both plain values: (key, old, new)."""
    for target in event["targets"]:
        for prop in target.get("modified_properties") or []:
            old, new = prop.get("old"), prop.get("new")
            if isinstance(old, dict) and isinstance(new, dict):
                for key in sorted(set(old) & set(new)):
                    if old[key] != new[key] and isinstance(old[key], str) and isinstance(new[key], str):
                        return key, old[key], new[key]
    raise AssertionError("the Conditional Access change has no scalar value that changed")


def test_the_diff_of_a_conditional_access_change(
    signed_in_page: Callable[..., SignedIn], console: Console
) -> None:
    signed = signed_in_page([READER])
    page = signed.page
    signed.wait_for_rows()
    signed.open_event(console.ca_change_event_id, CA_TEXT)
    event = _event(signed, console.ca_change_event_id)
    key, old, new = _scalar_change(event)

    diff = tid(page, TID.DIFF)
    expect(diff).to_be_visible(timeout=UI_TIMEOUT_MS)
    expect(diff).to_contain_text(old)
    expect(diff).to_contain_text(new)
    expect(tid(page, TID.DETAIL)).to_contain_text(event["summary"])
    names = {t.strip() for t in tid(page, TID.DIFF_KEYS).locator("code").all_inner_texts()}
    assert set(console.ca_changed_keys) <= names, names
    assert not set(console.ca_unchanged_keys) & names, names
    marked = diff.locator("mark[data-changed=true]").evaluate_all("marks => marks.map(m => m.dataset.path)")
    marked_keys = {str(path).split("/")[1] for path in marked if str(path).count("/") >= 1}
    assert marked_keys == set(console.ca_changed_keys), marked
    expect(diff.locator("mark[data-changed=true]").filter(has_text=f'"{key}"').first).to_be_visible()
    assert key in console.ca_changed_keys
    screenshot(page, "detail-conditional-access-diff")


def test_the_raw_record_is_fetched_and_shown(
    signed_in_page: Callable[..., SignedIn], console: Console
) -> None:
    signed = signed_in_page([READER])
    page = signed.page
    signed.wait_for_rows()
    signed.open_event(console.ca_change_event_id, CA_TEXT)
    raw_path = "/api/events/" + urllib.parse.quote(console.ca_change_event_id, safe="") + "/raw"
    assert signed.last_request(raw_path) is None, "the raw record is fetched lazily"

    tid(page, TID.RAW_TOGGLE).click()
    raw = tid(page, TID.RAW)
    expect(raw).to_be_visible(timeout=UI_TIMEOUT_MS)
    answer = signed.api("GET", raw_path)
    assert answer.status_code == 200, answer.text
    expect(raw).to_contain_text(str(answer.json()["id"]), timeout=UI_TIMEOUT_MS)
    assert json.loads(raw.inner_text()) == answer.json()
    expect(tid(page, TID.RAW_COPY)).to_be_visible()
    screenshot(page, "detail-raw")


def test_an_analyst_tags_an_event(signed_in_page: Callable[..., SignedIn], console: Console) -> None:
    signed = signed_in_page([ANALYST])
    page = signed.page
    signed.wait_for_rows()
    signed.open_event(console.ca_change_event_id, CA_TEXT)
    tag = f"browser-{uuid.uuid4().hex[:8]}"
    tid(page, TID.TAG_INPUT).fill(tag)
    tid(page, TID.TAG_ADD).click()
    expect(tid(page, TID.tag(tag))).to_be_visible(timeout=UI_TIMEOUT_MS)
    for _ in range(UI_TIMEOUT_MS // 100):
        if tag in _event(signed, console.ca_change_event_id)["tags"]:
            break
        page.wait_for_timeout(100)
    assert tag in _event(signed, console.ca_change_event_id)["tags"], "the tag is stored"
    screenshot(page, "detail-tagged-by-analyst")


def test_a_reader_is_not_offered_tagging(signed_in_page: Callable[..., SignedIn], console: Console) -> None:
    signed = signed_in_page([READER])
    page = signed.page
    signed.wait_for_rows()
    signed.open_event(console.ca_change_event_id, CA_TEXT)
    expect(tid(page, TID.DIFF)).to_be_visible(timeout=UI_TIMEOUT_MS)
    expect(tid(page, TID.TAG_INPUT)).to_have_count(0)
    expect(tid(page, TID.TAG_ADD)).to_have_count(0)
    refused = signed.api(
        "PATCH",
        "/api/events/" + urllib.parse.quote(console.ca_change_event_id, safe="") + "/tags",
        json={"add": ["reader-try"]},
    )
    assert refused.status_code == 403, "the server enforces the role anyway"
    screenshot(page, "detail-reader-no-tagging")
