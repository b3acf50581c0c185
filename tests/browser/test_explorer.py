"""The event explorer: filtered search, paging, the histogram, deep links, export and the keyboard.

Every comparison is against the API's own answer for the same filter, asked with the console's token.
"""

from __future__ import annotations

import datetime as dt
import re
import urllib.parse
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.helpers import (
    PRIVACY,
    READER,
    TID,
    UI_TIMEOUT_MS,
    Console,
    SignedIn,
    parse_export,
    screenshot,
    sign_in,
    tid,
    url_query,
)

pytestmark = pytest.mark.browser

TEXT = "conditional access"
ALL = [READER, PRIVACY]  # sees every service, so the counts below are the whole seeded day


def _moment(value: str, now: dt.datetime) -> dt.datetime:
    """An API time parameter: ISO 8601 or relative (24h, 7d, 30m)."""
    if value[-1] in "mhd" and value[:-1].isdigit():
        unit = {"m": "minutes", "h": "hours", "d": "days"}[value[-1]]
        return now - dt.timedelta(**{unit: int(value[:-1])})
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def _range(query: dict[str, list[str]], now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    start = _moment(query["start"][0], now) if "start" in query else now - dt.timedelta(days=30)
    end = _moment(query["end"][0], now) if "end" in query else now
    return start, end


def _api_first_page(signed: SignedIn, query: dict[str, list[str]]) -> list[dict[str, Any]]:
    pairs = [(k, v) for k, values in query.items() for v in values]
    return list(signed.api_json("/api/events", pairs)["items"])


def _filter_by_facet_and_text(signed: SignedIn, service: str, text: str) -> dict[str, list[str]]:
    page = signed.page
    signed.wait_for_rows()
    tid(page, TID.facet("service", service)).click()
    search = tid(page, TID.SEARCH)
    search.fill(text)
    search.press("Enter")
    return signed.wait_for_events_call(
        lambda q: q.get("service") == [service] and q.get("q", [""])[0].lower() == text
    )


def test_a_filtered_search_shows_exactly_the_apis_answer(signed_in_page: Callable[..., SignedIn]) -> None:
    signed = signed_in_page(ALL)
    query = _filter_by_facet_and_text(signed, "Directory", TEXT)
    expected = _api_first_page(signed, query)
    assert expected, "the seeded day has Conditional Access changes"
    assert all(e["service"] == "Directory" for e in expected)
    signed.expect_rows([e["id"] for e in expected])
    total = len(signed.all_ids(query))
    expect(tid(signed.page, TID.RESULT_COUNT)).to_contain_text(re.compile(rf"\b{total} events?\b"))
    expect(tid(signed.page, TID.facet("service", "Directory"))).to_have_attribute("aria-pressed", "true")
    screenshot(signed.page, "explorer-filtered")


def test_paging_shows_every_match_exactly_once(signed_in_page: Callable[..., SignedIn]) -> None:
    signed = signed_in_page(ALL)
    page = signed.page
    signed.wait_for_rows()
    query = signed.wait_for_events_call(lambda q: "continuation" not in q)
    expected = signed.all_ids(query)
    page_size = int(query.get("page_size", ["50"])[0])
    assert len(expected) > 2 * page_size, "the seeded day spans several pages"

    for _ in range(len(expected) // page_size + 2):
        shown = signed.row_ids()
        if len(shown) >= len(expected):
            break
        tid(page, TID.LOAD_MORE).click()
        signed.wait_for_more_rows(len(shown))
    shown = signed.row_ids()
    assert len(shown) == len(set(shown)), "no event is shown twice"
    assert shown == expected, "every match, newest first, each once"
    assert any("continuation" in urllib.parse.urlsplit(r.url).query for r in signed.api_requests)
    expect(tid(page, TID.END_OF_RESULTS)).to_be_visible()
    expect(tid(page, TID.LOAD_MORE)).to_have_count(0)
    screenshot(page, "explorer-paged-to-the-end")


def test_dragging_across_the_histogram_narrows_the_range(signed_in_page: Callable[..., SignedIn]) -> None:
    signed = signed_in_page(ALL)
    page = signed.page
    signed.wait_for_rows()
    tid(page, TID.TIME_24H).click()  # the seeded day: the last 22 hours
    before = signed.wait_for_events_call(lambda q: q.get("start") == ["24h"])
    signed.wait_for_events_call(lambda q: q.get("start") == ["24h"], path="/api/events/histogram")
    histogram = tid(page, TID.HISTOGRAM)
    expect(histogram).to_be_visible()
    before_url = url_query(page)
    now = dt.datetime.now(dt.UTC)
    old_start, old_end = _range(before, now)

    box = histogram.bounding_box()
    assert box is not None
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] * 0.3, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.7, y, steps=12)
    page.mouse.up()

    after_url = before_url
    for _ in range(UI_TIMEOUT_MS // 100):
        after_url = url_query(page)
        if _bounds(after_url) != _bounds(before_url) and all(_bounds(after_url)):
            break
        page.wait_for_timeout(100)
    lower, upper = (_moment(v, now) for v in _bounds(after_url))
    assert old_start < lower < upper < old_end, (before_url, after_url)

    query = signed.wait_for_events_call(
        lambda q: "start" in q and "end" in q and _moment(q["start"][0], now) == lower
    )
    assert _moment(query["end"][0], now) == upper
    items = _api_first_page(signed, query)
    assert items, "the dragged range holds events"
    assert all(lower <= _moment(e["timestamp"], now) <= upper for e in items)
    signed.expect_rows([e["id"] for e in items])
    screenshot(page, "histogram-zoomed")


def _bounds(url: dict[str, list[str]]) -> tuple[str, str]:
    """The time range in the console's URL: start/end (the API's names), or from/to."""
    start = (url.get("start") or url.get("from") or [""])[0]
    end = (url.get("end") or url.get("to") or [""])[0]
    return start, end


def test_reloading_a_deep_link_restores_filters_and_the_selected_event(
    signed_in_page: Callable[..., SignedIn],
) -> None:
    signed = signed_in_page(ALL)
    page = signed.page
    query = _filter_by_facet_and_text(signed, "Directory", TEXT)
    rows = _api_first_page(signed, query)
    signed.expect_rows([e["id"] for e in rows])
    chosen = rows[min(2, len(rows) - 1)]["id"]
    signed.open_event(chosen, TEXT)
    link = page.url
    assert chosen in urllib.parse.unquote(link), "the selected event lives in the URL"

    page.reload()
    _expect_restored(signed, chosen, [e["id"] for e in rows])
    assert page.url == link
    screenshot(page, "deep-link-reloaded")


def test_a_shared_link_opens_the_same_state_after_sign_in(
    signed_in_page: Callable[..., SignedIn], browser: Any, console: Console
) -> None:
    signed = signed_in_page(ALL)
    query = _filter_by_facet_and_text(signed, "Directory", TEXT)
    rows = [e["id"] for e in _api_first_page(signed, query)]
    chosen = rows[0]
    signed.open_event(chosen, TEXT)
    parts = urllib.parse.urlsplit(signed.page.url)
    shared = (
        parts.path
        + (f"?{parts.query}" if parts.query else "")
        + (f"#{parts.fragment}" if parts.fragment else "")
    )

    other = browser.new_context(ignore_https_errors=True, viewport={"width": 1280, "height": 900})
    try:
        colleague = sign_in(other, console, ALL, path=shared)
        _expect_restored(colleague, chosen, rows)
        screenshot(colleague.page, "deep-link-shared")
    finally:
        other.close()


def _expect_restored(signed: SignedIn, event_id: str, rows: list[str]) -> None:
    page = signed.page
    expect(tid(page, TID.SEARCH)).to_have_value(
        re.compile(re.escape(TEXT), re.IGNORECASE), timeout=UI_TIMEOUT_MS
    )
    expect(tid(page, TID.facet("service", "Directory"))).to_have_attribute(
        "aria-pressed", "true", timeout=UI_TIMEOUT_MS
    )
    signed.expect_detail(event_id)
    signed.expect_rows(rows)


@pytest.mark.parametrize(("button", "fmt"), [(TID.EXPORT_CSV, "csv"), (TID.EXPORT_NDJSON, "jsonl")])
def test_an_export_download_holds_the_apis_rows(
    signed_in_page: Callable[..., SignedIn], button: str, fmt: str
) -> None:
    signed = signed_in_page(ALL)
    page = signed.page
    signed.wait_for_rows()
    tid(page, TID.facet("service", "Directory")).click()
    query = signed.wait_for_events_call(lambda q: q.get("service") == ["Directory"])

    with page.expect_download(timeout=UI_TIMEOUT_MS) as download:
        tid(page, button).click()
    path = download.value.path()
    downloaded = parse_export(path.read_bytes(), fmt)

    filters = [(k, v) for k, values in query.items() if k != "page_size" for v in values]
    answer = signed.api("GET", "/api/events/export", [*filters, ("format", fmt)])
    assert answer.status_code == 200, answer.text
    expected = parse_export(answer.content, fmt)
    assert expected, "Directory events exist"
    assert [r["id"] for r in downloaded] == [r["id"] for r in expected]
    assert {r["service"] for r in downloaded} == {"Directory"}
    cap = int(answer.headers["X-AOC-Export-Cap"])
    expect(tid(page, TID.EXPORT_STATUS)).to_contain_text(re.compile(rf"\b{cap:,}\b|\b{cap}\b"))
    screenshot(page, f"export-{fmt}")


def test_keyboard_only_search_select_open_and_close(signed_in_page: Callable[..., SignedIn]) -> None:
    signed = signed_in_page(ALL)
    page = signed.page
    signed.wait_for_rows()
    focused = "() => document.activeElement && document.activeElement.getAttribute('data-testid')"

    page.keyboard.press("/")
    assert page.evaluate(focused) == TID.SEARCH, "/ focuses the search box"
    page.keyboard.type(TEXT)
    page.keyboard.press("Enter")
    query = signed.wait_for_events_call(lambda q: q.get("q", [""])[0].lower() == TEXT)
    rows = [e["id"] for e in _api_first_page(signed, query)]
    assert len(rows) >= 3
    signed.expect_rows(rows)

    # From the search box into the results with Tab only, then the arrow keys.
    for _ in range(60):
        if signed.focused_row() is not None:
            break
        page.keyboard.press("Tab")
    assert signed.focused_row() == rows[0], "Tab reaches the first result"
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    assert signed.focused_row() == rows[2]
    page.keyboard.press("ArrowUp")
    assert signed.focused_row() == rows[1]
    page.keyboard.press("Enter")
    signed.expect_detail(rows[1])
    screenshot(page, "keyboard-detail-open")
    page.keyboard.press("Escape")
    expect(tid(page, TID.DETAIL)).to_have_count(0, timeout=UI_TIMEOUT_MS)
    assert "event" not in url_query(page)
    for _ in range(UI_TIMEOUT_MS // 100):
        if signed.focused_row() == rows[1]:
            break
        page.wait_for_timeout(100)
    assert signed.focused_row() == rows[1], "the focus returns to the row the detail was opened from"
    screenshot(page, "keyboard-detail-closed")


def test_alt_click_on_an_operation_excludes_it(signed_in_page: Callable[..., SignedIn]) -> None:
    signed = signed_in_page(ALL)
    page = signed.page
    signed.wait_for_rows()
    prefix = TID.facet("operation", "")
    button = page.locator(f"[data-testid^='{prefix}']").first
    expect(button).to_be_visible(timeout=UI_TIMEOUT_MS)
    operation = str(button.get_attribute("data-testid"))[len(prefix) :]
    assert operation, "the operation facet lists values"

    button.click(modifiers=["Alt"])
    query = signed.wait_for_events_call(lambda q: q.get("exclude_operation") == [operation])
    assert "operation" not in query, "an exclusion is not an inclusion"
    expected = _api_first_page(signed, query)
    assert expected, "other operations remain"
    assert all(e["operation"] != operation for e in expected)
    signed.expect_rows([e["id"] for e in expected])
    shown = tid(page, TID.ROW).locator(".c-operation").all_inner_texts()
    assert len(shown) == len(expected)
    assert all(text.strip() != operation for text in shown), shown
    expect(tid(page, TID.facet("operation", operation))).to_have_attribute("data-state", "exclude")
    expect(tid(page, f"chip-exclude_operation-{operation}")).to_be_visible()
    assert url_query(page).get("exclude_operation") == [operation], "the exclusion lives in the URL"
    screenshot(page, "explorer-operation-excluded")


def test_arrow_down_in_the_search_box_focuses_the_first_row(signed_in_page: Callable[..., SignedIn]) -> None:
    signed = signed_in_page(ALL)
    page = signed.page
    rows = signed.wait_for_rows()
    focused = "() => document.activeElement && document.activeElement.getAttribute('data-testid')"

    actor = tid(page, "filter-actor")
    actor.focus()
    page.keyboard.press("ArrowDown")
    assert page.evaluate(focused) == "filter-actor", "other text fields keep their arrow keys"

    tid(page, TID.SEARCH).focus()
    assert page.evaluate(focused) == TID.SEARCH
    page.keyboard.press("ArrowDown")
    assert signed.focused_row() == rows[0], "ArrowDown leaves the search box for the first row"
    page.keyboard.press("ArrowDown")
    assert signed.focused_row() == rows[1], "and the arrows go on through the rows"
    screenshot(page, "keyboard-arrow-down-from-search")
