"""Privacy: the server hides sensitive services unless the user has the Privacy role, and the console
says that some events are hidden and why."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import expect

from tests.browser.helpers import PRIVACY, READER, TID, UI_TIMEOUT_MS, Console, SignedIn, screenshot, tid

pytestmark = pytest.mark.browser


def _service_facets(signed: SignedIn) -> set[str]:
    names = signed.page.locator('[data-testid^="facet-service-"]').evaluate_all(
        "items => items.map(i => i.getAttribute('data-testid'))"
    )
    return {str(n).removeprefix("facet-service-") for n in names}


def test_a_reader_sees_no_sensitive_service_and_is_told_why(
    signed_in_page: Callable[..., SignedIn], console: Console
) -> None:
    signed = signed_in_page([READER])
    page = signed.page
    signed.wait_for_rows()
    expect(tid(page, TID.facet("service", "Directory"))).to_be_visible(timeout=UI_TIMEOUT_MS)
    assert not _service_facets(signed) & set(console.sensitive_services)
    notice = tid(page, TID.PRIVACY_NOTICE)
    expect(notice).to_be_visible()
    expect(notice).to_contain_text("Privacy")
    query = signed.wait_for_events_call(lambda q: True)
    pairs = [(k, v) for k, values in query.items() for v in values]
    shown = signed.api_json("/api/events", pairs)["items"]
    assert {e["id"] for e in shown} == set(signed.row_ids())
    assert not {e["service"] for e in shown} & set(console.sensitive_services)
    hidden = signed.api_json("/api/events", [("service", s) for s in console.sensitive_services])
    assert hidden["items"] == [], "the server hides them, whatever the console asks"
    screenshot(page, "privacy-reader")


def test_the_privacy_role_sees_sensitive_services(
    signed_in_page: Callable[..., SignedIn], console: Console
) -> None:
    signed = signed_in_page([READER, PRIVACY])
    page = signed.page
    signed.wait_for_rows()
    for service in console.sensitive_services:
        expect(tid(page, TID.facet("service", service))).to_be_visible(timeout=UI_TIMEOUT_MS)
    expect(tid(page, TID.PRIVACY_NOTICE)).to_have_count(0)
    shown = signed.api_json("/api/events", [("service", s) for s in console.sensitive_services])["items"]
    assert shown, "the seeded day has events of the sensitive services"
    screenshot(page, "privacy-privileged")
