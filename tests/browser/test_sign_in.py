"""Sign-in through the authorization code flow with PKCE against the simulated Entra tenant."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.helpers import ANALYST, PRIVACY, READER, TID, Console, SignedIn, screenshot, tid

pytestmark = pytest.mark.browser


def _claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def test_sign_in_through_pkce_shows_events_and_the_version(
    signed_in_page: Callable[..., SignedIn], console: Console
) -> None:
    before = len(console.simulator.requests())
    signed = signed_in_page([ANALYST, PRIVACY])
    page = signed.page
    rows = signed.wait_for_rows()
    assert rows, "a newcomer sees events after signing in"

    flow = console.simulator.requests()[before:]
    authorize = [r for r in flow if r["path"].endswith("/oauth2/v2.0/authorize") and r["method"] == "GET"]
    assert authorize, "the console sent the browser to the authorize endpoint"
    query = authorize[0]["query"]
    assert query["response_type"] == "code"
    assert query["code_challenge_method"] == "S256"
    assert len(query["code_challenge"]) == 43  # base64url of a SHA-256 digest
    assert query["redirect_uri"] == f"{console.base_url}/redirect.html"
    token_calls = [r for r in flow if r["path"].endswith("/oauth2/v2.0/token") and r["status"] == 200]
    assert token_calls, "the console redeemed the code at the token endpoint"

    claims = _claims(signed.token)
    assert set(claims["roles"]) == {ANALYST, PRIVACY}
    assert claims["scp"] == "access_as_user"
    assert not [
        r for r in signed.api_requests if r.url.endswith("/api/events") and not r.headers.get("authorization")
    ]

    version = signed.api_json("/api/version")
    expect(tid(page, TID.VERSION)).to_contain_text(version["version"])
    expect(tid(page, TID.USER)).to_be_visible()
    screenshot(page, "sign-in-signed-in")


def test_a_reader_token_carries_only_the_reader_role(signed_in_page: Callable[..., SignedIn]) -> None:
    signed = signed_in_page([READER])
    signed.wait_for_rows()
    assert _claims(signed.token)["roles"] == [READER]
    screenshot(signed.page, "sign-in-reader")


def test_a_browser_that_does_not_trust_the_local_ca_meets_it_on_the_sign_in_page(
    browser: Any, console: Console
) -> None:
    """config.json carries the simulator's metadata, so MSAL fetches nothing from it: the first request
    to the simulator is the top-level navigation to its sign-in page, where a browser can show its
    certificate warning (here, without ignore_https_errors, the navigation fails on the certificate)."""
    simulator = console.simulator  # its own record of requests: none arrive from this page
    before = len(simulator.requests())
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        to_simulator: list[tuple[str, str]] = []
        failed: list[tuple[str, str]] = []
        page.on(
            "request",
            lambda r: (
                to_simulator.append((r.resource_type, r.url))
                if r.url.startswith(console.authority_origin)
                else None
            ),
        )
        page.on("requestfailed", lambda r: failed.append((r.url, r.failure or "")))
        page.goto(console.base_url + "/")
        served = page.evaluate("fetch('/config.json').then(r => r.json())")
        assert served["authorityMetadata"]["authorization_endpoint"].startswith(console.authority_origin)
        tid(page, TID.SIGN_IN).click()
        for _ in range(100):
            if failed:
                break
            page.wait_for_timeout(100)
        assert to_simulator, "sign-in sent the browser to the simulator"
        kind, url = to_simulator[0]
        assert kind == "document", to_simulator
        assert "/oauth2/v2.0/authorize" in url
        assert any(u.startswith(console.authority_origin) and "CERT" in why.upper() for u, why in failed), (
            failed
        )
        assert len(simulator.requests()) == before  # no TLS handshake completed: nothing reached it
        screenshot(page, "sign-in-untrusted-local-ca")
    finally:
        context.close()
