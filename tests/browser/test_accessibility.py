"""axe-core on each view of the console: no serious or critical WCAG 2.1 A/AA violation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.helpers import (
    ADMIN,
    READER,
    TID,
    UI_TIMEOUT_MS,
    Console,
    SignedIn,
    reach_sign_in_page,
    run_axe,
    screenshot,
    tid,
)

pytestmark = pytest.mark.browser


def test_every_view_passes_axe(signed_in_page: Callable[..., SignedIn], console: Console) -> None:
    signed = signed_in_page([READER])
    page = signed.page
    found: dict[str, list[dict[str, Any]]] = {}

    signed.wait_for_rows()
    expect(tid(page, TID.HISTOGRAM)).to_be_visible(timeout=UI_TIMEOUT_MS)
    found["explorer"] = run_axe(page)
    screenshot(page, "axe-explorer")

    signed.open_event(console.ca_change_event_id, "update conditional access policy")
    expect(tid(page, TID.DIFF)).to_be_visible(timeout=UI_TIMEOUT_MS)
    found["detail with diff"] = run_axe(page)
    screenshot(page, "axe-detail")

    tid(page, TID.RAW_TOGGLE).click()
    expect(tid(page, TID.RAW)).to_be_visible(timeout=UI_TIMEOUT_MS)
    found["raw record"] = run_axe(page)
    screenshot(page, "axe-raw")

    page.keyboard.press("Escape")
    page.set_viewport_size({"width": 390, "height": 844})
    expect(tid(page, TID.ROW).first).to_be_visible(timeout=UI_TIMEOUT_MS)
    found["phone width"] = run_axe(page)
    screenshot(page, "axe-phone")

    assert found == {view: [] for view in found}


def test_the_sign_in_page_passes_axe(context: Any, console: Console) -> None:
    page = context.new_page()
    page.goto(console.base_url + "/")
    reach_sign_in_page(page, console)
    violations = run_axe(page)
    screenshot(page, "axe-sign-in-page")
    assert violations == []


def test_the_governance_views_pass_axe(signed_in_page: Callable[..., SignedIn], console: Console) -> None:
    """The Governance page (issue 18) as an Admin sees it: the findings with the summary and Run
    discovery, a service principal with its accept-risk form open, the activities."""
    from tests.browser.governance_data import seed_governance

    seed = seed_governance(console)
    signed = signed_in_page([ADMIN], "/governance")
    page = signed.page
    found: dict[str, list[dict[str, Any]]] = {}

    expect(tid(page, "gv-finding").first).to_be_visible(timeout=UI_TIMEOUT_MS)
    expect(tid(page, "gv-run")).to_be_visible()
    found["governance findings"] = run_axe(page)

    page.goto(f"{console.base_url}/governance?id={seed.payroll}")
    expect(tid(page, "gv-patch")).to_be_visible(timeout=UI_TIMEOUT_MS)
    tid(page, "gv-accept").first.click()
    tid(page, "gv-accept-submit").click()
    expect(tid(page, "gv-accept-reason-error")).to_be_visible()
    found["governance object, accept form with its message"] = run_axe(page)
    screenshot(page, "axe-governance-object")

    page.goto(f"{console.base_url}/governance?view=activities")
    expect(tid(page, "gv-activity").first).to_be_visible(timeout=UI_TIMEOUT_MS)
    found["governance activities"] = run_axe(page)

    assert found == {view: [] for view in found}


def test_the_activity_map_passes_axe(context: Any, console: Console) -> None:
    """The Activity map page (issue 19) with a published dataset: the map, its places table open, the
    rows, and the custom time range form. Signed in as another user than the page's own tests, so their
    refreshes and this one count against different per-caller rates."""
    from tests.browser.helpers import sign_in

    signed = sign_in(context, console, [READER], "/activity?dataset=signin_failures", user=1)
    page = signed.page
    expect(tid(page, "act-refresh")).to_be_visible(timeout=UI_TIMEOUT_MS)
    refreshed = signed.api("POST", "/api/refresh", params={"source": "signin_failures"})
    assert refreshed.status_code in (200, 204), refreshed.text  # published now, or within its interval
    page.reload()
    expect(tid(page, "map-point").first).to_be_visible(timeout=UI_TIMEOUT_MS)
    page.locator("summary", has_text="As a table").click()  # the map's places as a table
    expect(tid(page, "act-place").first).to_be_visible()
    found: dict[str, list[dict[str, Any]]] = {"activity map": run_axe(page)}
    screenshot(page, "axe-activity")

    tid(page, "act-time-custom").click()
    expect(tid(page, "act-time-start")).to_be_visible()
    found["activity custom range"] = run_axe(page)
    assert found == {view: [] for view in found}
