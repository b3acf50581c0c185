"""Object history: from a Conditional Access change in the explorer to every event of that policy,
newest first, with who did it and what changed; the address reloads to the same view."""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.helpers import (
    READER,
    TID,
    UI_TIMEOUT_MS,
    Console,
    SignedIn,
    run_axe,
    screenshot,
    tid,
    url_query,
)

pytestmark = pytest.mark.browser

CA_TEXT = "update conditional access policy"


def _history(signed: SignedIn, object_id: str) -> list[dict[str, Any]]:
    """Every event of the object's history (the last 30 days), newest first, from the API."""
    path = "/api/objects/" + urllib.parse.quote(object_id, safe="") + "/history"
    items: list[dict[str, Any]] = []
    continuation: str | None = None
    while True:
        page = signed.api_json(
            path, {"page_size": "200", **({"continuation": continuation} if continuation else {})}
        )
        items += page["items"]
        continuation = page["continuation"]
        if not continuation:
            return items


def _actor_text(actor: dict[str, Any]) -> str:
    """What the console calls an actor (web/src/components/results.js actorText)."""
    app = actor.get("client_app") or {}
    return str(actor.get("display") or actor.get("upn") or app.get("name") or actor.get("id") or "")


def _shown(signed: SignedIn) -> list[str]:
    return [
        str(i)
        for i in tid(signed.page, TID.HISTORY_EVENT).evaluate_all(
            "items => items.map(i => i.dataset.eventId)"
        )
    ]


def _expect_events(signed: SignedIn, expected: list[str]) -> None:
    shown: list[str] = []
    for _ in range(UI_TIMEOUT_MS // 100):
        shown = _shown(signed)
        if shown == expected:
            return
        signed.page.wait_for_timeout(100)
    assert shown == expected


def test_a_conditional_access_policy_history_from_the_explorer(
    signed_in_page: Callable[..., SignedIn], console: Console
) -> None:
    signed = signed_in_page([READER])
    page = signed.page
    signed.wait_for_rows()
    signed.open_event(console.ca_change_event_id, CA_TEXT)
    event = signed.api_json("/api/events/" + urllib.parse.quote(console.ca_change_event_id, safe=""))
    policy = next(t for t in event["targets"] if t.get("modified_properties"))

    link = tid(page, TID.TARGET_HISTORY, object_id=policy["id"])
    expect(link).to_be_visible(timeout=UI_TIMEOUT_MS)
    link.click()
    page.wait_for_url(re.compile(r".*/history\?id="), timeout=UI_TIMEOUT_MS)
    assert url_query(page) == {"id": [policy["id"]]}

    history = _history(signed, policy["id"])
    ids = [e["id"] for e in history]
    assert console.ca_change_event_id in ids
    assert len(ids) >= 2, "the seeded day changes this policy more than once"
    timestamps = [e["timestamp"] for e in history]
    assert timestamps == sorted(timestamps, reverse=True)
    assert all(policy["id"] in {t.get("id") for t in e["targets"]} for e in history), (
        "every event names the policy as a target"
    )
    assert len(ids) <= 50  # one page holds them all
    _expect_events(signed, ids)
    expect(tid(page, TID.HISTORY_END)).to_be_visible()
    expect(tid(page, TID.HISTORY_NAME)).to_have_text(policy["display"])
    expect(tid(page, TID.HISTORY_ID)).to_have_text(policy["id"])
    expect(tid(page, TID.HISTORY_TYPES)).to_contain_text(policy["type"])

    # Who did each change, and what it changed.
    for item, shown in zip(history, tid(page, TID.HISTORY_EVENT).all(), strict=True):
        expect(shown.get_by_test_id(TID.HISTORY_ACTOR)).to_contain_text(_actor_text(item["actor"]))
        expect(shown).to_contain_text(item["operation"])
    changed = tid(page, TID.HISTORY_EVENT, event_id=console.ca_change_event_id)
    diff = changed.get_by_test_id(TID.HISTORY_DIFF)
    expect(diff).to_be_visible()
    names = {t.strip() for t in diff.get_by_test_id(TID.DIFF_KEYS).locator("code").all_inner_texts()}
    assert set(console.ca_changed_keys) <= names, names
    assert not set(console.ca_unchanged_keys) & names, names
    marked = diff.locator("mark[data-changed=true]").evaluate_all("marks => marks.map(m => m.dataset.path)")
    assert {str(p).split("/")[1] for p in marked if str(p).count("/") >= 1} == set(console.ca_changed_keys)
    screenshot(page, "history-conditional-access-policy")
    assert run_axe(page) == []

    # The address is the view: a reload shows the same history, asked for in the same way.
    page.reload()
    _expect_events(signed, ids)
    assert url_query(page) == {"id": [policy["id"]]}
    assert signed.last_call("/api/objects/" + urllib.parse.quote(policy["id"], safe="") + "/history") == {}

    # Each event opens in the explorer, a day either side of it.
    changed.get_by_test_id(TID.HISTORY_EVENT_LINK).click()
    signed.expect_detail(console.ca_change_event_id)
    query = url_query(page)
    assert set(query) == {"start", "end", "event"}
    assert query["start"][0] < event["timestamp"] < query["end"][0]
