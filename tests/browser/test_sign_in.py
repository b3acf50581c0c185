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
