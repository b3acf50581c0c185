"""The tenant simulator as the console's Entra ID: discovery, the sign-in page, the authorization code
flow with PKCE and the refresh token grant, over TLS with the project's local CA. The access token it
issues goes through the API's own Entra verifier (shared/api/auth.py)."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import ssl
import time
from collections.abc import Iterator
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import jwt
import pytest

from devtools.certs import ensure_local_certificates
from devtools.simulator import SimulatorConfig, TenantSimulator
from devtools.simulator.config import sign_in_from_env
from devtools.simulator.identity import AUTHORIZATION_CODE_LIFETIME_SECONDS, SESSION_COOKIE
from devtools.simulator.signing import AOC_APP_ROLES
from shared.api.auth import ApiAudience, AuthError, EntraTokenVerifier, JwksCache, Role
from shared.m365.cloud import resolve_endpoints
from shared.platform.clock import SystemClock
from tests.support.principals import API_APP_ID_URI, API_CLIENT_ID

SPA_CLIENT_ID = "7d3c1f0a-9b2e-4c5d-8e6f-0a1b2c3d4e5f"
OTHER_SPA_CLIENT_ID = "0f9e8d7c-6b5a-4c3d-9e2f-1a0b9c8d7e6f"
APP_ORIGIN = "http://127.0.0.1:7071"
REDIRECT_URI = f"{APP_ORIGIN}/redirect.html"
OTHER_REDIRECT_URI = "http://localhost:5173/redirect.html"
API_SCOPE = f"{API_APP_ID_URI}/access_as_user"
SCOPE = f"{API_SCOPE} openid profile offline_access"
ORIGIN = {"Origin": APP_ORIGIN}


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TenantSimulator]:
    """A TLS simulator with the console's SPA and the API registered through its configuration."""
    certificates = ensure_local_certificates(tmp_path_factory.mktemp("certs"))
    config = SimulatorConfig(
        events_per_day=10,
        **sign_in_from_env(
            {
                "SIMULATOR_SPA_CLIENT_ID": SPA_CLIENT_ID,
                "SIMULATOR_SPA_REDIRECT_URIS": REDIRECT_URI,
                "API_CLIENT_ID": API_CLIENT_ID,
                "API_AUDIENCE": API_APP_ID_URI,
            }
        ),
    )
    simulator = TenantSimulator(config, certificates=certificates).start()
    simulator.register_spa(OTHER_SPA_CLIENT_ID, [OTHER_REDIRECT_URI])
    try:
        yield simulator
    finally:
        simulator.stop()


@pytest.fixture
def client(sim: TenantSimulator) -> Iterator[httpx.Client]:
    """An HTTPS client that trusts only the simulator's local CA (no certificate errors ignored)."""
    assert sim.ca_cert is not None
    context = ssl.create_default_context(cafile=str(sim.ca_cert))
    with httpx.Client(verify=context, trust_env=False, follow_redirects=False, timeout=10) as http:
        yield http


@pytest.fixture(autouse=True)
def real_clock(sim: TenantSimulator) -> Iterator[None]:
    """Tests that move the identity clock forward get the real clock back afterwards."""
    yield
    sim.app.identity.wall_clock = time.time


def verifier_for(sim: TenantSimulator, http: httpx.Client) -> EntraTokenVerifier:
    """The API's Entra-mode verifier, configured as runtime.api_guard does for this authority."""
    tenant = sim.config.tenant_id
    cloud = resolve_endpoints("global", authority_host=sim.base_url)

    def fetch() -> dict[str, Any]:
        response = http.get(f"{cloud.authority_host}/{tenant}/discovery/v2.0/keys")
        response.raise_for_status()
        return dict(response.json())

    clock = SystemClock()
    return EntraTokenVerifier(
        JwksCache(fetch, clock),
        ApiAudience(client_id=API_CLIENT_ID, app_id_uri=API_APP_ID_URI),
        [tenant],
        cloud,
        clock,
    )


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def authorize_url(sim: TenantSimulator, **params: str | None) -> str:
    values: dict[str, str | None] = {
        "client_id": SPA_CLIENT_ID,
        "redirect_uri": REDIRECT_URI,
        "response_type": "code",
        "response_mode": "fragment",
        "scope": SCOPE,
        "state": "state-123",
        "nonce": "nonce-456",
        "code_challenge": pkce()[1],
        "code_challenge_method": "S256",
        "client_info": "1",
    }
    values.update(params)
    query = urlencode({k: v for k, v in values.items() if v is not None})
    return f"{sim.authority}/oauth2/v2.0/authorize?{query}"


class FormReader(HTMLParser):
    """The sign-in page's form: hidden fields, user options, role checkboxes; and any script/style."""

    def __init__(self) -> None:
        super().__init__()
        self.action = ""
        self.hidden: dict[str, str] = {}
        self.users: list[str] = []
        self.selected_user: str | None = None
        self.roles: dict[str, bool] = {}
        self.labels: list[str] = []
        self.inline: list[str] = []
        self.stylesheets: list[str] = []
        self._label = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag in ("script", "style") or "style" in a or any(k.startswith("on") for k in a):
            self.inline.append(tag)
        if tag == "form":
            self.action = a["action"]
        if tag == "link" and a.get("rel") == "stylesheet":
            self.stylesheets.append(a["href"])
        if tag == "input" and a.get("type") == "hidden":
            self.hidden[a["name"]] = a["value"]
        if tag == "input" and a.get("type") == "checkbox" and a.get("name") == "role":
            self.roles[a["value"]] = "checked" in a
        if tag == "option":
            self.users.append(a["value"])
            if "selected" in a:
                self.selected_user = a["value"]
        self._label = tag == "label"

    def handle_data(self, data: str) -> None:
        if self._label and data.strip():
            self.labels.append(data.strip())

    def handle_endtag(self, tag: str) -> None:
        self._label = False


def read_form(html: str) -> FormReader:
    reader = FormReader()
    reader.feed(html)
    return reader


def redirect_parameters(response: httpx.Response, mode: str = "fragment") -> dict[str, str]:
    assert response.status_code == 302, response.text
    location = urlsplit(response.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" in (REDIRECT_URI, OTHER_REDIRECT_URI)
    return dict(parse_qsl(location.fragment if mode == "fragment" else location.query))


def sign_in(
    sim: TenantSimulator,
    http: httpx.Client,
    roles: list[str],
    *,
    user: str | None = None,
    challenge: str,
    **params: str | None,
) -> dict[str, str]:
    """GET the sign-in page, post it with `user` (default: the one preselected) and `roles`; the
    parameters of the redirect (code, state, client_info)."""
    page = http.get(authorize_url(sim, code_challenge=challenge, **params))
    assert page.status_code == 200, page.text
    form = read_form(page.text)
    fields = [*form.hidden.items(), ("user", user or form.selected_user or ""), ("action", "sign_in")]
    fields += [("role", role) for role in roles]
    response = http.post(
        f"{sim.base_url}{form.action}",
        content=urlencode(fields),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    mode = params.get("response_mode") or "fragment"
    return redirect_parameters(response, mode)


def redeem(
    sim: TenantSimulator, http: httpx.Client, issued: str, verifier: str, **extra: str
) -> httpx.Response:
    """POST the authorization_code grant for code `issued`, as MSAL.js does; `extra` changes fields."""
    form = {
        "client_id": SPA_CLIENT_ID,
        "grant_type": "authorization_code",
        "code": issued,
        "code_verifier": verifier,
        "redirect_uri": REDIRECT_URI,
        "scope": SCOPE,
        "client_info": "1",
    }
    form.update(extra)
    return http.post(f"{sim.authority}/oauth2/v2.0/token", data=form, headers=ORIGIN)


def claims(token: str) -> dict[str, Any]:
    return dict(jwt.decode(token, options={"verify_signature": False}))


def b64_json(text: str) -> dict[str, Any]:
    return dict(json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))))


# ---------------------------------------------------------------------------------------------------
# Discovery and CORS
# ---------------------------------------------------------------------------------------------------


def test_discovery_over_tls_names_the_authority_and_allows_the_console_origin(
    sim: TenantSimulator, client: httpx.Client
) -> None:
    assert sim.base_url.startswith("https://127.0.0.1:")
    response = client.get(f"{sim.v2_authority}/.well-known/openid-configuration", headers=ORIGIN)
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == APP_ORIGIN
    document = response.json()
    tenant = sim.config.tenant_id
    assert document["issuer"] == f"{sim.base_url}/{tenant}/v2.0" == sim.v2_authority
    assert document["authorization_endpoint"] == f"{sim.authority}/oauth2/v2.0/authorize"
    assert document["token_endpoint"] == f"{sim.authority}/oauth2/v2.0/token"
    assert document["jwks_uri"] == f"{sim.authority}/discovery/v2.0/keys"
    assert document["end_session_endpoint"] == f"{sim.authority}/oauth2/v2.0/logout"
    assert document["response_types_supported"] == ["code"]
    assert document["code_challenge_methods_supported"] == ["S256"]
    registered = client.get(f"{sim.base_url}/_sim/config").json()
    assert registered["spa_clients"] == [
        {"client_id": SPA_CLIENT_ID, "redirect_uris": [REDIRECT_URI]},
    ]
    assert registered["apis"][0]["app_id_uri"] == API_APP_ID_URI
    keys = client.get(document["jwks_uri"], headers=ORIGIN)
    assert keys.headers["Access-Control-Allow-Origin"] == APP_ORIGIN
    assert keys.json()["keys"][0]["kty"] == "RSA"


def test_cors_preflight_is_answered_and_foreign_origins_are_not_echoed(
    sim: TenantSimulator, client: httpx.Client
) -> None:
    preflight = client.options(
        f"{sim.authority}/oauth2/v2.0/token",
        headers={
            **ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type, x-client-sku",
        },
    )
    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == APP_ORIGIN
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    assert preflight.headers["Access-Control-Allow-Headers"] == "content-type, x-client-sku"
    for origin in ("https://evil.example", "http://127.0.0.1.evil.example", "null", "http://[::1"):
        response = client.get(
            f"{sim.v2_authority}/.well-known/openid-configuration", headers={"Origin": origin}
        )
        assert response.status_code == 200
        assert "Access-Control-Allow-Origin" not in response.headers


# ---------------------------------------------------------------------------------------------------
# The full flow
# ---------------------------------------------------------------------------------------------------


def test_sign_in_page_is_plain_html_with_users_roles_and_the_request(
    sim: TenantSimulator, client: httpx.Client
) -> None:
    _, challenge = pkce()
    page = client.get(authorize_url(sim, code_challenge=challenge))
    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    csp = page.headers["Content-Security-Policy"]
    assert "script-src" not in csp
    assert "default-src 'none'" in csp
    assert "style-src 'self'" in csp
    assert f"form-action 'self' {APP_ORIGIN}" in csp
    assert "unsafe-inline" not in csp
    assert "unsafe-eval" not in csp
    form = read_form(page.text)
    assert form.inline == []  # no <script>, <style>, style= or on*= anywhere
    assert "<script" not in page.text.lower()
    assert form.stylesheets == ["/static/signin.css"]
    icon = client.get(f"{sim.base_url}/static/favicon.svg")
    assert icon.headers["Content-Type"] == "image/svg+xml"
    assert client.get(f"{sim.base_url}/static/identity.py").status_code == 404
    css = client.get(f"{sim.base_url}/static/signin.css")
    assert css.status_code == 200
    assert css.headers["Content-Type"].startswith("text/css")
    assert form.action == f"/{sim.config.tenant_id}/oauth2/v2.0/authorize"
    directory = sim.tenant.directory
    assert form.users == [u.id for u in directory.users]
    assert form.selected_user == directory.admins[0].id
    assert form.roles == {"AOC.Reader": True, "AOC.Analyst": False, "AOC.Admin": False, "AOC.Privacy": False}
    assert {"User", "Reader", "Analyst", "Admin", "Privacy"} <= set(form.labels)
    assert form.hidden == {
        "client_id": SPA_CLIENT_ID,
        "redirect_uri": REDIRECT_URI,
        "response_type": "code",
        "response_mode": "fragment",
        "scope": SCOPE,
        "state": "state-123",
        "nonce": "nonce-456",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "client_info": "1",
    }
    assert "Zoë Łukasz" in page.text  # the directory's names, UTF-8 intact


def test_pkce_flow_issues_tokens_the_api_accepts_with_the_picked_roles(
    sim: TenantSimulator, client: httpx.Client
) -> None:
    user = sim.tenant.directory.users[3]
    verifier, challenge = pkce()
    redirect = sign_in(sim, client, ["AOC.Analyst", "AOC.Privacy"], user=user.id, challenge=challenge)
    assert redirect["state"] == "state-123"
    assert b64_json(redirect["client_info"]) == {"uid": user.id, "utid": sim.config.tenant_id}

    response = redeem(sim, client, redirect["code"], verifier)
    assert response.status_code == 200, response.text
    assert response.headers["Access-Control-Allow-Origin"] == APP_ORIGIN
    assert "no-store" in response.headers["Cache-Control"]
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["scope"] == API_SCOPE
    assert 0 < body["expires_in"] <= 3600
    assert body["refresh_token"]
    assert body["refresh_token_expires_in"] > 0
    assert b64_json(body["client_info"]) == {"uid": user.id, "utid": sim.config.tenant_id}

    access = claims(body["access_token"])
    assert access["ver"] == "2.0"
    assert access["aud"] == API_CLIENT_ID
    assert access["azp"] == SPA_CLIENT_ID
    assert access["iss"] == f"{sim.base_url}/{sim.config.tenant_id}/v2.0"
    assert access["roles"] == ["AOC.Analyst", "AOC.Privacy"]
    assert access["scp"] == "access_as_user"
    assert access["oid"] == user.id
    assert access["preferred_username"] == user.upn

    identity = claims(body["id_token"])
    assert identity["aud"] == SPA_CLIENT_ID
    assert identity["nonce"] == "nonce-456"
    assert identity["iss"] == sim.v2_authority
    assert identity["tid"] == sim.config.tenant_id
    assert identity["oid"] == user.id
    assert identity["preferred_username"] == user.upn
    assert identity["name"] == user.display_name
    assert jwt.get_unverified_header(body["id_token"])["kid"] == sim.app.signing_key.kid

    principal = verifier_for(sim, client).verify(body["access_token"])
    assert principal.name == user.upn
    assert principal.subject == user.id
    assert principal.tenant_id == sim.config.tenant_id
    assert principal.has(Role.ANALYST)
    assert principal.has(Role.PRIVACY)
    assert principal.has(Role.READER)
    assert not principal.has(Role.ADMIN)

    refreshed = client.post(
        f"{sim.authority}/oauth2/v2.0/token",
        data={
            "client_id": SPA_CLIENT_ID,
            "grant_type": "refresh_token",
            "refresh_token": body["refresh_token"],
            "scope": SCOPE,
            "client_info": "1",
        },
        headers=ORIGIN,
    )
    assert refreshed.status_code == 200, refreshed.text
    again = refreshed.json()
    assert again["refresh_token"] != body["refresh_token"]
    assert "nonce" not in claims(again["id_token"])
    assert verifier_for(sim, client).verify(again["access_token"]).roles == principal.roles


def test_a_user_without_roles_gets_a_token_the_api_refuses(
    sim: TenantSimulator, client: httpx.Client
) -> None:
    verifier, challenge = pkce()
    redirect = sign_in(sim, client, [], challenge=challenge)
    body = redeem(sim, client, redirect["code"], verifier).json()
    assert claims(body["access_token"])["roles"] == []
    with pytest.raises(AuthError) as refused:
        verifier_for(sim, client).verify(body["access_token"])
    assert refused.value.status == 403


def test_query_response_mode_and_a_v1_api(sim: TenantSimulator, client: httpx.Client) -> None:
    """A registration asking for v1.0 tokens gets them (aud = the App ID URI it was asked for)."""
    from devtools.simulator.signing import ApiRegistration

    v1_api = ApiRegistration("3c2b1a09-8f7e-4d6c-b5a4-93827160f5e4", "api://aoc-v1", access_token_version=1)
    sim.register_api(v1_api)
    verifier, challenge = pkce()
    redirect = sign_in(
        sim,
        client,
        ["AOC.Admin"],
        challenge=challenge,
        response_mode="query",
        scope="api://aoc-v1/access_as_user openid offline_access",
    )
    body = redeem(sim, client, redirect["code"], verifier).json()
    access = claims(body["access_token"])
    assert access["ver"] == "1.0"
    assert access["aud"] == "api://aoc-v1"
    assert access["appid"] == SPA_CLIENT_ID
    assert access["roles"] == ["AOC.Admin"]
    assert access["scp"] == "access_as_user"
    assert "profile" not in body["scope"]
    assert "id_token" in body


def test_silent_sign_in_uses_the_session_cookie_or_says_login_required(
    sim: TenantSimulator, client: httpx.Client
) -> None:
    silent = authorize_url(sim, prompt="none", code_challenge=pkce()[1])
    refused = redirect_parameters(client.get(silent))
    assert refused["error"] == "login_required"
    assert refused["error_description"].startswith("AADSTS50058:")
    assert refused["state"] == "state-123"
    assert "code" not in refused
    user = sim.tenant.directory.users[5]
    verifier, challenge = pkce()
    sign_in(sim, client, ["AOC.Reader"], user=user.id, challenge=challenge)
    assert SESSION_COOKIE in client.cookies

    verifier, challenge = pkce()
    redirect = redirect_parameters(
        client.get(authorize_url(sim, prompt="none", code_challenge=challenge, login_hint=user.upn))
    )
    body = redeem(sim, client, redirect["code"], verifier).json()
    assert claims(body["access_token"])["oid"] == user.id
    assert claims(body["access_token"])["roles"] == ["AOC.Reader"]

    other = sim.tenant.directory.users[6].upn
    mismatch = client.get(authorize_url(sim, prompt="none", code_challenge=challenge, login_hint=other))
    assert redirect_parameters(mismatch)["error"] == "login_required"

    # The interactive page preselects the signed-in user and roles.
    form = read_form(client.get(authorize_url(sim, code_challenge=challenge)).text)
    assert form.selected_user == user.id
    assert [r for r, on in form.roles.items() if on] == ["AOC.Reader"]

    signed_out = client.get(
        f"{sim.authority}/oauth2/v2.0/logout", params={"post_logout_redirect_uri": REDIRECT_URI}
    )
    assert signed_out.status_code == 302
    assert signed_out.headers["Location"] == REDIRECT_URI
    client.cookies.clear()
    assert redirect_parameters(client.get(silent))["error"] == "login_required"


def test_cancel_sends_access_denied_to_the_client(sim: TenantSimulator, client: httpx.Client) -> None:
    form = read_form(client.get(authorize_url(sim)).text)
    response = client.post(
        f"{sim.base_url}{form.action}",
        data={**form.hidden, "action": "cancel"},
    )
    assert redirect_parameters(response)["error"] == "access_denied"
    assert redirect_parameters(response)["state"] == "state-123"


# ---------------------------------------------------------------------------------------------------
# The token endpoint refuses
# ---------------------------------------------------------------------------------------------------


def test_a_wrong_verifier_fails_and_uses_the_code_up(sim: TenantSimulator, client: httpx.Client) -> None:
    verifier, challenge = pkce()
    code = sign_in(sim, client, ["AOC.Reader"], challenge=challenge)["code"]
    wrong = redeem(sim, client, code, pkce()[0])
    assert wrong.status_code == 400
    assert wrong.json()["error"] == "invalid_grant"
    assert wrong.json()["error_codes"] == [501481]
    assert wrong.headers["Access-Control-Allow-Origin"] == APP_ORIGIN
    assert redeem(sim, client, code, verifier).json()["error"] == "invalid_grant"


def test_a_code_is_redeemed_once(sim: TenantSimulator, client: httpx.Client) -> None:
    verifier, challenge = pkce()
    code = sign_in(sim, client, ["AOC.Reader"], challenge=challenge)["code"]
    assert redeem(sim, client, code, verifier).status_code == 200
    again = redeem(sim, client, code, verifier)
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"
    assert again.json()["error_codes"] == [54005]


def test_an_expired_code_is_refused(sim: TenantSimulator, client: httpx.Client) -> None:
    verifier, challenge = pkce()
    code = sign_in(sim, client, ["AOC.Reader"], challenge=challenge)["code"]
    later = sim.app.identity.wall_clock() + AUTHORIZATION_CODE_LIFETIME_SECONDS + 1
    sim.app.identity.wall_clock = lambda: later
    expired = redeem(sim, client, code, verifier)
    assert expired.status_code == 400
    assert expired.json()["error"] == "invalid_grant"
    assert expired.json()["error_codes"] == [70008]


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"client_id": OTHER_SPA_CLIENT_ID}, "invalid_grant"),  # a registered SPA, not the code's
        ({"client_id": "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"}, "invalid_client"),  # not registered
        ({"client_id": "not-a-guid" * 20}, "invalid_client"),
        ({"client_secret": "s3cret"}, "invalid_client"),  # a SPA is a public client
        ({"redirect_uri": f"{APP_ORIGIN}/other.html"}, "invalid_grant"),
        ({"code_verifier": ""}, "invalid_request"),
        ({"code_verifier": "short"}, "invalid_grant"),
        ({"code": "x" * 100_000}, "invalid_grant"),
        ({"code": ""}, "invalid_request"),
    ],
)
def test_the_token_endpoint_refuses_with_oauth_errors(
    sim: TenantSimulator, client: httpx.Client, change: dict[str, str], error: str
) -> None:
    verifier, challenge = pkce()
    code = sign_in(sim, client, ["AOC.Reader"], challenge=challenge)["code"]
    response = redeem(sim, client, code, verifier, **change)
    assert response.status_code == 400, response.text
    assert response.json()["error"] == error


def test_token_redemption_needs_a_cross_origin_request_and_a_known_grant(
    sim: TenantSimulator, client: httpx.Client
) -> None:
    verifier, challenge = pkce()
    code = sign_in(sim, client, ["AOC.Reader"], challenge=challenge)["code"]
    form = {
        "client_id": SPA_CLIENT_ID,
        "grant_type": "authorization_code",
        "code": code,
        "code_verifier": verifier,
        "redirect_uri": REDIRECT_URI,
    }
    no_origin = client.post(f"{sim.authority}/oauth2/v2.0/token", data=form)
    assert no_origin.status_code == 400
    assert no_origin.json()["error_codes"] == [9002327]
    for refresh in ("", "forged", "r" * 50_000):
        response = client.post(
            f"{sim.authority}/oauth2/v2.0/token",
            data={"client_id": SPA_CLIENT_ID, "grant_type": "refresh_token", "refresh_token": refresh},
            headers=ORIGIN,
        )
        assert response.status_code == 400
        assert response.json()["error"] in ("invalid_request", "invalid_grant")
    too_many = client.post(
        f"{sim.authority}/oauth2/v2.0/token",
        content="&".join(f"f{i}=1" for i in range(500)),
        headers={**ORIGIN, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert too_many.status_code == 400


def test_a_refresh_token_works_only_for_its_client_scopes_and_lifetime(
    sim: TenantSimulator, client: httpx.Client
) -> None:
    verifier, challenge = pkce()
    code = sign_in(sim, client, ["AOC.Reader"], challenge=challenge)["code"]
    refresh = redeem(sim, client, code, verifier).json()["refresh_token"]

    def use(**form: str) -> httpx.Response:
        values = {"client_id": SPA_CLIENT_ID, "grant_type": "refresh_token", "refresh_token": refresh}
        return client.post(f"{sim.authority}/oauth2/v2.0/token", data={**values, **form}, headers=ORIGIN)

    assert use(client_id=OTHER_SPA_CLIENT_ID).json()["error"] == "invalid_grant"
    assert use(scope="api://unknown/access_as_user").json()["error"] == "invalid_scope"
    assert use(scope=f"{API_APP_ID_URI}/not_exposed").json()["error"] == "invalid_scope"
    assert use().status_code == 200
    later = sim.app.identity.wall_clock() + 86_401
    sim.app.identity.wall_clock = lambda: later
    expired = use()
    assert expired.status_code == 400
    assert expired.json()["error_codes"] == [700084]


# ---------------------------------------------------------------------------------------------------
# The authorize endpoint refuses
# ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params",
    [
        {"client_id": None},
        {"client_id": "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"},  # not a registered SPA
        {"client_id": "<script>alert(1)</script>"},
        {"redirect_uri": None},
        {"redirect_uri": "https://evil.example/redirect.html"},
        {"redirect_uri": f"{REDIRECT_URI}?x=1"},  # exact match only
        {"redirect_uri": REDIRECT_URI.upper()},
        {"redirect_uri": OTHER_REDIRECT_URI},  # another SPA's
        {"redirect_uri": "x" * 10_000},
    ],
)
def test_a_bad_client_or_redirect_uri_gets_a_400_page_not_a_redirect(
    sim: TenantSimulator, client: httpx.Client, params: dict[str, str | None]
) -> None:
    response = client.get(authorize_url(sim, **params))
    assert response.status_code == 400
    assert "Location" not in response.headers
    assert response.headers["Content-Type"].startswith("text/html")
    assert "<script>" not in response.text
    assert read_form(response.text).inline == []


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"code_challenge": None}, "invalid_request"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge_method": None}, "invalid_request"),
        ({"code_challenge": "too-short"}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"response_mode": "form_post"}, "invalid_request"),
        ({"scope": "openid profile"}, "invalid_scope"),  # no API to issue an access token for
        ({"scope": "api://unknown/access_as_user openid"}, "invalid_scope"),
        ({"scope": f"{API_APP_ID_URI}/not_exposed openid"}, "invalid_scope"),
        ({"scope": " ".join([API_SCOPE] * 40)}, "invalid_scope"),
        ({"nonce": "n" * 5000}, "invalid_request"),
        ({"prompt": "sometimes"}, "invalid_request"),
    ],
)
def test_a_bad_request_of_a_known_client_goes_back_as_an_oauth_error(
    sim: TenantSimulator, client: httpx.Client, params: dict[str, str | None], error: str
) -> None:
    response = client.get(authorize_url(sim, **params))
    mode = "query" if params.get("response_mode") == "form_post" else "fragment"
    returned = redirect_parameters(response, mode)
    assert returned["error"] == error
    assert returned["state"] == "state-123"
    assert returned["error_description"].startswith("AADSTS")


def test_an_oversized_state_is_refused_without_being_echoed(
    sim: TenantSimulator, client: httpx.Client
) -> None:
    returned = redirect_parameters(client.get(authorize_url(sim, state="s" * 5000)))
    assert returned["error"] == "invalid_request"
    assert "state" not in returned


def post_form(
    sim: TenantSimulator, http: httpx.Client, fields: list[tuple[str, str]], content_type: str | None = None
) -> httpx.Response:
    return http.post(
        f"{sim.authority}/oauth2/v2.0/authorize",
        content=urlencode(fields).encode(),
        headers={"Content-Type": content_type or "application/x-www-form-urlencoded"},
    )


def hostile_forms(hidden: dict[str, str], user: str) -> list[tuple[str, list[tuple[str, str]], int]]:
    good = [*hidden.items(), ("user", user), ("action", "sign_in")]
    without = {k: v for k, v in hidden.items() if k != "code_challenge"}
    nobody = "00000000-0000-0000-0000-000000000001"

    def changed(name: str, value: str) -> list[tuple[str, str]]:
        return [(k, value if k == name else v) for k, v in hidden.items()]

    return [
        ("unknown user", [*hidden.items(), ("user", nobody), ("role", "AOC.Reader")], 400),
        ("no user", [*hidden.items(), ("role", "AOC.Reader")], 400),
        ("unknown role", [*good, ("role", "AOC.GlobalAdmin")], 400),
        ("huge role", [*good, ("role", "R" * 10_000)], 400),
        ("huge user", [*hidden.items(), ("user", "u" * 15_000)], 400),
        ("huge state", [*changed("state", "s" * 9000), ("user", user)], 400),
        ("duplicate field", [*good, ("redirect_uri", "https://evil.example/")], 400),
        ("no code_challenge", [*without.items(), ("user", user)], 400),
        ("other redirect", [*changed("redirect_uri", OTHER_REDIRECT_URI), ("user", user)], 400),
        ("plain PKCE", [*changed("code_challenge_method", "plain"), ("user", user)], 400),
        ("unknown action", [*hidden.items(), ("user", user), ("action", "delete")], 400),
        ("too many fields", [*good, *[("role", "AOC.Reader")] * 100], 400),
        ("body too large", [*good, ("filler", "f" * 20_000)], 413),
    ]  # fmt: skip


def test_hostile_sign_in_forms_get_4xx_pages_never_a_500_or_a_code(
    sim: TenantSimulator, client: httpx.Client
) -> None:
    form = read_form(client.get(authorize_url(sim)).text)
    user = sim.tenant.directory.users[0].id
    for name, fields, status in hostile_forms(form.hidden, user):
        response = post_form(sim, client, fields)
        assert response.status_code == status, (name, response.status_code, response.text[:300])
        assert "Location" not in response.headers, name
        assert response.headers["Content-Type"].startswith("text/html"), name
    json_body = client.post(
        f"{sim.authority}/oauth2/v2.0/authorize",
        json=dict(form.hidden),
    )
    assert json_body.status_code == 415
    not_utf8 = client.post(
        f"{sim.authority}/oauth2/v2.0/authorize",
        content=b"user=%ff%fe&client_id=\xff",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert not_utf8.status_code == 400
    assert client.put(authorize_url(sim)).status_code == 405
    assert all(entry["status"] < 500 for entry in sim.requests())


def test_a_duplicate_role_is_granted_once_and_roles_keep_the_registration_order(
    sim: TenantSimulator, client: httpx.Client
) -> None:
    verifier, challenge = pkce()
    roles = ["AOC.Privacy", "AOC.Reader", "AOC.Privacy", "AOC.Admin"]
    code = sign_in(sim, client, roles, challenge=challenge)["code"]
    access = claims(redeem(sim, client, code, verifier).json()["access_token"])
    assert access["roles"] == [r for r in AOC_APP_ROLES if r in roles]


def test_registration_validates_client_ids_and_redirect_uris(sim: TenantSimulator) -> None:
    for client_id, uris, reason in [
        ("not-a-guid", [REDIRECT_URI], "badly formed hexadecimal UUID string"),
        (SPA_CLIENT_ID, [], "1 to 256 redirect URIs"),
        (SPA_CLIENT_ID, ["http://example.com/redirect.html"], "http is only allowed for a loopback host"),
        (SPA_CLIENT_ID, [f"{REDIRECT_URI}#fragment"], "must not have a fragment"),
        (SPA_CLIENT_ID, ["/relative"], "not an absolute http"),
        (SPA_CLIENT_ID, [f"https://example.com/{'x' * 300}"], "1 to 256 characters"),
        (SPA_CLIENT_ID, REDIRECT_URI, "not one string"),
    ]:
        with pytest.raises(ValueError, match=reason):
            sim.register_spa(client_id, uris)
    with pytest.raises(ValueError, match="spa_clients must hold SpaRegistration values"):
        SimulatorConfig(spa_clients=(REDIRECT_URI,))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="1 to 256 redirect URIs"):
        sign_in_from_env({"SIMULATOR_SPA_CLIENT_ID": SPA_CLIENT_ID, "SIMULATOR_SPA_REDIRECT_URIS": " , "})
    assert sign_in_from_env({"API_CLIENT_ID": API_CLIENT_ID.upper()})["apis"][0].app_id_uri == (
        f"api://{API_CLIENT_ID}"
    )
    assert sign_in_from_env({}) == {}


def test_the_ca_is_required_to_talk_to_the_simulator(sim: TenantSimulator) -> None:
    """The simulator's certificate chains to the local CA only: a client without it refuses."""
    with httpx.Client(trust_env=False, timeout=10) as untrusting, pytest.raises(httpx.ConnectError):
        untrusting.get(f"{sim.v2_authority}/.well-known/openid-configuration")
    assert sim.ca_cert is not None
    assert sim.ca_cert.read_text().startswith("-----BEGIN CERTIFICATE-----")
