"""Token providers. The MSAL provider runs against a small token service on 127.0.0.1."""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError

from shared.m365.auth import (
    AuthError,
    AzureIdentityTokenProvider,
    MsalTokenProvider,
    RefreshableTokenProvider,
    StaticTokenProvider,
    build_token_provider,
)

TENANT = "11111111-2222-3333-4444-555555555555"
CLIENT_ID = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
SECRET = "s3cr3t-Value~not-in-logs"
GRAPH = "https://graph.microsoft.com/.default"
MANAGE = "https://manage.office.com/.default"


class FakeClock:
    def __init__(self) -> None:
        self.t = 500.0

    def now(self) -> dt.datetime:
        return dt.datetime(2024, 5, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=self.t)

    def monotonic(self) -> float:
        return self.t


@dataclass
class TokenService:
    """What the local token service saw, and how it should answer."""

    port: int = 0
    https_urls_in_discovery: bool = False
    expires_in: int = 3600
    fail_with: dict[str, str] | None = None
    token_delay: float = 0.0
    token_posts: list[dict[str, list[str]]] = field(default_factory=list)
    gets: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def _handler(service: TokenService) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
            pass

        def _json(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            path = urlsplit(self.path).path
            with service.lock:
                service.gets.append(path)
            if path == "/common/discovery/instance":
                self._json(200, {"tenant_discovery_endpoint": "unused", "metadata": []})
                return
            if path == f"/{TENANT}/v2.0/.well-known/openid-configuration":
                scheme_origin = (
                    service.origin.replace("http://", "https://")
                    if service.https_urls_in_discovery
                    else service.origin
                )
                base = f"{scheme_origin}/{TENANT}"
                self._json(
                    200,
                    {
                        "issuer": f"{base}/v2.0",
                        "token_endpoint": f"{base}/oauth2/v2.0/token",
                        "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                    },
                )
                return
            self._json(404, {"error": "not_found"})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            form = parse_qs(self.rfile.read(length).decode())
            if urlsplit(self.path).path != f"/{TENANT}/oauth2/v2.0/token":
                self._json(404, {"error": "not_found"})
                return
            if service.token_delay:
                time.sleep(service.token_delay)
            with service.lock:
                service.token_posts.append(form)
                number = len(service.token_posts)
            if service.fail_with:
                self._json(400, service.fail_with)
                return
            self._json(
                200,
                {
                    "token_type": "Bearer",
                    "expires_in": service.expires_in,
                    "access_token": f"token-{number}-{form.get('scope', ['?'])[0]}",
                },
            )

    return Handler


@pytest.fixture
def token_service() -> Iterator[TokenService]:
    service = TokenService()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(service))
    server.daemon_threads = True
    service.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield service
    server.shutdown()
    server.server_close()


def msal_provider(service: TokenService, clock: FakeClock | None = None, **kwargs: Any) -> MsalTokenProvider:
    kwargs.setdefault("client_secret", SECRET)
    return MsalTokenProvider(
        TENANT, CLIENT_ID, service.origin, timeout_seconds=5, clock=clock or FakeClock(), **kwargs
    )


# --- MSAL ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("https_urls_in_discovery", [False, True])
def test_msal_caches_one_token_post_for_two_calls(
    token_service: TokenService, https_urls_in_discovery: bool, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    token_service.https_urls_in_discovery = https_urls_in_discovery
    provider = msal_provider(token_service)
    first = provider.get_token(GRAPH)
    second = provider.get_token(GRAPH)
    assert first == second == f"token-1-{GRAPH}"
    assert len(token_service.token_posts) == 1
    form = token_service.token_posts[0]
    assert form["grant_type"] == ["client_credentials"]
    assert form["client_id"] == [CLIENT_ID]
    assert form["client_secret"] == [SECRET]
    assert form["scope"] == [GRAPH]
    # Only the tenant's own openid-configuration: no instance discovery, nothing in the public cloud.
    assert token_service.gets == [f"/{TENANT}/v2.0/.well-known/openid-configuration"]
    assert SECRET not in caplog.text
    assert first not in caplog.text


def test_msal_refreshes_five_minutes_before_expiry(token_service: TokenService) -> None:
    clock = FakeClock()
    provider = msal_provider(token_service, clock)
    assert provider.get_token(GRAPH) == f"token-1-{GRAPH}"
    clock.t += 3600 - 300 - 1
    assert provider.get_token(GRAPH) == f"token-1-{GRAPH}"
    clock.t += 2
    assert provider.get_token(GRAPH) == f"token-2-{GRAPH}"
    assert len(token_service.token_posts) == 2


def test_msal_short_lived_token_is_kept_for_half_its_life(token_service: TokenService) -> None:
    token_service.expires_in = 120
    clock = FakeClock()
    provider = msal_provider(token_service, clock)
    provider.get_token(GRAPH)
    clock.t += 59
    provider.get_token(GRAPH)
    assert len(token_service.token_posts) == 1
    clock.t += 2
    provider.get_token(GRAPH)
    assert len(token_service.token_posts) == 2


def test_msal_one_token_per_scope_and_invalidate(token_service: TokenService) -> None:
    provider = msal_provider(token_service)
    assert provider.get_token(GRAPH).endswith(GRAPH)
    assert provider.get_token(MANAGE).endswith(MANAGE)
    assert provider.get_token(GRAPH) == f"token-1-{GRAPH}"
    provider.invalidate(GRAPH, "some-other-token")  # not the cached one: kept
    assert provider.get_token(GRAPH) == f"token-1-{GRAPH}"
    provider.invalidate(GRAPH, f"token-1-{GRAPH}")
    assert provider.get_token(GRAPH) == f"token-3-{GRAPH}"
    assert len(token_service.token_posts) == 3
    assert isinstance(provider, RefreshableTokenProvider)


def test_msal_concurrent_callers_share_one_token_request(token_service: TokenService) -> None:
    token_service.token_delay = 0.2
    provider = msal_provider(token_service)
    results: list[str] = []
    lock = threading.Lock()

    def worker() -> None:
        token = provider.get_token(GRAPH)
        with lock:
            results.append(token)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert results == [f"token-1-{GRAPH}"] * 8
    assert len(token_service.token_posts) == 1


def test_msal_error_is_an_auth_error_without_the_secret(
    token_service: TokenService, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    token_service.fail_with = {
        "error": "invalid_client",
        "error_description": "AADSTS7000215: Invalid client secret provided.",
        "correlation_id": "corr-1",
    }
    provider = msal_provider(token_service)
    with pytest.raises(AuthError) as caught:
        provider.get_token(GRAPH)
    message = str(caught.value)
    assert "invalid_client" in message
    assert "AADSTS7000215" in message
    assert SECRET not in message
    assert caught.value.error == "invalid_client"
    assert caught.value.correlation_id == "corr-1"
    assert SECRET not in caplog.text
    assert SECRET not in repr(provider)


def test_msal_unreachable_authority_is_an_auth_error() -> None:
    with socket_bound_then_closed() as port:
        provider = MsalTokenProvider(
            TENANT, CLIENT_ID, f"http://127.0.0.1:{port}", client_secret=SECRET, timeout_seconds=2
        )
        with pytest.raises(AuthError, match="could not set up the token client") as caught:
            provider.get_token(GRAPH)
    assert SECRET not in str(caught.value)


def test_msal_every_http_call_has_the_timeout(token_service: TokenService) -> None:
    seen: list[tuple[str, str, Any]] = []

    def record(request: httpx.Request) -> None:
        seen.append((request.method, str(request.url), request.extensions.get("timeout")))

    http = httpx.Client(event_hooks={"request": [record]})
    provider = msal_provider(token_service, http=http)
    provider.get_token(GRAPH)
    timeout = {"connect": 5, "read": 5, "write": 5, "pool": 5}
    assert [(method, t) for method, _, t in seen] == [("GET", timeout), ("POST", timeout)]
    assert all(url.startswith(token_service.origin) for _, url, _ in seen)


def test_msal_form_post_goes_over_httpx_without_none_values(token_service: TokenService) -> None:
    provider = msal_provider(token_service)
    provider.get_token(GRAPH)
    form = token_service.token_posts[0]
    assert form["grant_type"] == ["client_credentials"]
    assert form["client_id"] == [CLIENT_ID]
    assert all(values != [""] for values in form.values())


def test_msal_token_request_times_out(token_service: TokenService) -> None:
    token_service.token_delay = 60.0  # answers only after a minute: the client's own timeout must end it
    provider = MsalTokenProvider(
        TENANT, CLIENT_ID, token_service.origin, client_secret=SECRET, timeout_seconds=0.3
    )
    with pytest.raises(AuthError, match="Timeout"):
        provider.get_token(GRAPH)
    assert token_service.token_posts == []  # given up before the service answered


def test_msal_certificate_credential_sends_a_signed_assertion(token_service: TokenService) -> None:
    pem = _self_signed_pem()
    provider = msal_provider(token_service, client_secret=None, certificate_pem=pem)
    assert provider.get_token(GRAPH) == f"token-1-{GRAPH}"
    form = token_service.token_posts[0]
    assert "client_secret" not in form
    assert form["client_assertion_type"] == ["urn:ietf:params:oauth:client-assertion-type:jwt-bearer"]
    header = json.loads(_b64url(form["client_assertion"][0].split(".")[0]))
    assert "x5t#S256" in header


def test_msal_certificate_with_thumbprint(token_service: TokenService) -> None:
    pem = _self_signed_pem(include_certificate=False)
    provider = msal_provider(
        token_service, client_secret=None, certificate_pem=pem, certificate_thumbprint="AB:CD:EF:01"
    )
    provider.get_token(GRAPH)
    header = json.loads(_b64url(token_service.token_posts[0]["client_assertion"][0].split(".")[0]))
    assert header["x5t"].rstrip("=") == base64.urlsafe_b64encode(bytes.fromhex("ABCDEF01")).decode().rstrip(
        "="
    )


def test_msal_argument_checks() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        MsalTokenProvider(TENANT, CLIENT_ID, "https://login.microsoftonline.com")
    with pytest.raises(ValueError, match="exactly one"):
        MsalTokenProvider(
            TENANT, CLIENT_ID, "login.microsoftonline.com", client_secret="x", certificate_pem="y"
        )
    with pytest.raises(ValueError, match="loopback"):
        MsalTokenProvider(TENANT, CLIENT_ID, "http://login.example.com", client_secret="x")
    with pytest.raises(ValueError, match="scheme and host only"):
        MsalTokenProvider(TENANT, CLIENT_ID, "https://login.microsoftonline.com/tenant", client_secret="x")
    with pytest.raises(ValueError, match="no certificate"):
        MsalTokenProvider(
            TENANT, CLIENT_ID, "https://login.microsoftonline.us", certificate_pem=_self_signed_pem(False)
        )
    provider = MsalTokenProvider(TENANT, CLIENT_ID, "login.microsoftonline.us", client_secret="x")
    assert provider.authority_host == "https://login.microsoftonline.us"


# --- azure-identity --------------------------------------------------------------------------------


class FakeCredential:
    def __init__(self, clock: FakeClock, lifetime: float = 3600) -> None:
        self.clock = clock
        self.lifetime = lifetime
        self.calls: list[str] = []
        self.fail = False

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        if self.fail:
            raise ClientAuthenticationError(message="ManagedIdentityCredential authentication unavailable")
        self.calls.append(scopes[0])
        expires_on = int(self.clock.now().timestamp() + self.lifetime)
        return AccessToken(f"mi-token-{len(self.calls)}", expires_on)


def test_identity_provider_caches_and_refreshes_by_the_clock() -> None:
    clock = FakeClock()
    credential = FakeCredential(clock)
    provider = AzureIdentityTokenProvider(credential, clock=clock)
    assert provider.get_token(GRAPH) == "mi-token-1"
    assert provider.get_token(GRAPH) == "mi-token-1"
    clock.t += 3301
    assert provider.get_token(GRAPH) == "mi-token-2"
    assert credential.calls == [GRAPH, GRAPH]
    provider.invalidate(GRAPH)
    assert provider.get_token(GRAPH) == "mi-token-3"


def test_identity_provider_failure_is_an_auth_error() -> None:
    credential = FakeCredential(FakeClock())
    credential.fail = True
    provider = AzureIdentityTokenProvider(credential)
    with pytest.raises(AuthError, match="FakeCredential could not get a token"):
        provider.get_token(MANAGE)


def test_identity_factory_builds_without_network() -> None:
    from azure.identity import DefaultAzureCredential, ManagedIdentityCredential

    from shared.m365.auth import identity_credential

    assert isinstance(identity_credential("client-guid"), ManagedIdentityCredential)
    assert isinstance(identity_credential(None), DefaultAzureCredential)
    provider = build_token_provider("identity", managed_identity_client_id="client-guid")
    assert isinstance(provider, AzureIdentityTokenProvider)


# --- static and the factory ------------------------------------------------------------------------


def test_static_provider() -> None:
    provider = StaticTokenProvider("dev-token")
    assert provider.get_token(GRAPH) == "dev-token"
    assert provider.get_token(MANAGE) == "dev-token"
    provider.invalidate(GRAPH)
    assert provider.get_token(GRAPH) == "dev-token"
    assert "dev-token" not in repr(provider)
    with pytest.raises(ValueError, match="non-empty"):
        StaticTokenProvider("  ")
    with pytest.raises(ValueError, match="scope"):
        provider.get_token("")


def test_build_token_provider() -> None:
    assert build_token_provider("static", static_token="t").get_token(GRAPH) == "t"
    with pytest.raises(ValueError, match="static_token"):
        build_token_provider("static")
    with pytest.raises(ValueError, match="tenant_id, client_id"):
        build_token_provider("msal", authority_host="https://login.microsoftonline.com", client_secret=SECRET)
    provider = build_token_provider(
        "msal",
        tenant_id=TENANT,
        client_id=CLIENT_ID,
        authority_host="https://login.microsoftonline.com",
        client_secret=SECRET,
    )
    assert isinstance(provider, MsalTokenProvider)
    assert SECRET not in repr(provider)
    with pytest.raises(ValueError, match="unknown token provider kind"):
        build_token_provider("magic")  # type: ignore[arg-type]


# --- helpers ---------------------------------------------------------------------------------------


class socket_bound_then_closed:
    """A localhost port that nothing listens on."""

    def __enter__(self) -> int:
        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            return int(sock.getsockname()[1])

    def __exit__(self, *exc: object) -> None:
        return None


def _b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _self_signed_pem(include_certificate: bool = True) -> str:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    if not include_certificate:
        return pem
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "aoc-test")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return pem + certificate.public_bytes(serialization.Encoding.PEM).decode()
