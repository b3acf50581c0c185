"""The console's session: a reload calls the API with the token it already has (before MSAL loads), an
expired token is renewed silently with the refresh token, a revoked session sends the user back to the
sign-in page, and signing out ends the session."""

from __future__ import annotations

import re
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
    choose_on_sign_in_page,
    screenshot,
    tid,
)

pytestmark = pytest.mark.browser

SIGN_OUT = "sign-out"
PAST_THE_TOKENS_LIFETIME = "01:01:00"  # the simulator's access tokens live 3,599 s


def _token_calls(console: Console, since: int) -> list[dict[str, Any]]:
    return [r for r in console.simulator.requests()[since:] if r["path"].endswith("/oauth2/v2.0/token")]


def _bearer_of_next_search(signed: SignedIn, text: str) -> str:
    """Search for `text` and return the bearer token of the /api/events call it makes."""
    page = signed.page
    with page.expect_request(
        lambda r: r.url.startswith(signed.console.base_url + "/api/events?") and f"q={text}" in r.url,
        timeout=UI_TIMEOUT_MS,
    ) as caught:
        search = tid(page, TID.SEARCH)
        search.fill(text)
        search.press("Enter")
    header = caught.value.headers.get("authorization", "")
    assert header.startswith("Bearer "), "the search carries a bearer token"
    return header.removeprefix("Bearer ")


def test_a_reload_uses_the_token_it_has_and_sign_out_ends_the_session(
    signed_in_page: Callable[..., SignedIn], console: Console
) -> None:
    signed = signed_in_page([READER])
    page = signed.page
    signed.wait_for_rows()
    token = signed.token
    before = len(console.simulator.requests())
    with page.expect_request(lambda r: r.url.startswith(console.base_url + "/api/events?")) as first:
        page.reload()
    assert first.value.headers.get("authorization") == f"Bearer {token}"
    signed.wait_for_rows()
    assert _token_calls(console, before) == []  # nothing asked of the authority to reload

    tid(page, TID.USER).locator("summary").click()
    tid(page, SIGN_OUT).click()
    page.wait_for_url(re.compile(re.escape(console.base_url) + r"/.*"), timeout=UI_TIMEOUT_MS)
    expect(tid(page, TID.SIGN_IN)).to_be_visible(timeout=UI_TIMEOUT_MS)
    assert page.evaluate("sessionStorage.getItem('aoc.console.session')") is None
    page.reload()
    expect(tid(page, TID.SIGN_IN)).to_be_visible(timeout=UI_TIMEOUT_MS)
    expect(tid(page, TID.ROW)).to_have_count(0)
    screenshot(page, "session-signed-out")


def test_an_expired_token_is_renewed_silently(
    context: Any, signed_in_page: Callable[..., SignedIn], console: Console
) -> None:
    context.clock.install()  # the page's clock; it runs on until fast-forwarded
    signed = signed_in_page([READER])
    page = signed.page
    signed.wait_for_rows()
    first = signed.token
    before = len(console.simulator.requests())
    page.clock.fast_forward(PAST_THE_TOKENS_LIFETIME)
    renewed = _bearer_of_next_search(signed, "policy")
    assert renewed != first, "an expired token is not sent"
    renewals = [r for r in _token_calls(console, before) if r["status"] == 200]
    assert renewals, "the console renewed its token at the token endpoint"
    assert page.url.startswith(console.base_url), "no redirect to sign in"
    signed.wait_for_rows()
    expect(tid(page, TID.ERROR)).to_have_count(0)
    screenshot(page, "session-renewed")


def test_a_revoked_session_asks_to_sign_in_again(
    context: Any, signed_in_page: Callable[..., SignedIn], console: Console
) -> None:
    context.clock.install()
    signed = signed_in_page([READER])
    page = signed.page
    signed.wait_for_rows()
    console.simulator.revoke_sign_in_sessions()
    page.clock.fast_forward(PAST_THE_TOKENS_LIFETIME)
    search = tid(page, TID.SEARCH)
    search.fill("policy")
    search.press("Enter")
    authorize = re.compile(re.escape(console.authority_origin) + r"/.*/oauth2/v2\.0/authorize")
    page.wait_for_url(authorize, timeout=UI_TIMEOUT_MS * 3)
    screenshot(page, "session-sign-in-again")
    choose_on_sign_in_page(page, [READER])
    page.wait_for_url(re.compile(re.escape(console.base_url) + r"/.*"), timeout=UI_TIMEOUT_MS)
    expect(tid(page, TID.USER)).to_be_visible(timeout=UI_TIMEOUT_MS)
    signed.wait_for_rows()
