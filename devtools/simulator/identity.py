"""Entra ID for the simulated tenant: the token endpoint, its signing keys (JWKS), the discovery
documents msal reads, the sign-in of a single-page application (the admin console), and the token
store the other APIs check bearer tokens against.

- `POST /{tenant}/oauth2/v2.0/token`:
  - client credentials (`client_secret` or `client_assertion`) for Graph, the Management Activity API
    or Azure DevOps: an opaque token that only works for its own API; for an API registered with
    `register_api`: a signed JWT with the client's app roles;
  - `authorization_code` (PKCE S256, the redirect URI of the authorization request) and
    `refresh_token` for a SPA registered with `register_spa`: a user's access token for a registered
    API (`roles` as picked on the sign-in page, `scp`), an ID token and a refresh token. Like Entra,
    a SPA's tokens are only redeemed by cross-origin requests (an `Origin` header).
- `GET /{tenant}/oauth2/v2.0/authorize`: checks the client, its redirect URI (exact match), PKCE,
  scope, then shows the sign-in page (signin_page.py) where a user of the tenant's directory and
  app roles are picked; its form `POST`s back here and gets a 302 to the redirect URI with a
  one-time code (`response_mode` fragment or query). `prompt=none` answers from the simulator's
  session cookie or with `login_required`.
- `GET /{tenant}/oauth2/v2.0/logout`: ends that session.
- `GET /{tenant}/discovery/v2.0/keys`: the JWKS that signs the JWTs.
- `GET /{tenant}/v2.0/.well-known/openid-configuration` and `GET /common/discovery/instance`.

Browsers may call the discovery, keys and token endpoints cross-origin: the answer carries
`Access-Control-Allow-Origin` for loopback origins and the origins of registered SPA redirect URIs,
and `OPTIONS` is answered. Token-endpoint errors are AADSTS documents (`aad_error`); authorize errors
go to the redirect URI once the client and redirect URI are known good, else they are a 400 page.

Times (token lifetimes, code and session expiry) come from `wall_clock`, real Unix time unless a test
replaces it.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit

from devtools.simulator.config import SimulatorConfig
from devtools.simulator.devops import DEVOPS_RESOURCE
from devtools.simulator.directory import User, build_directory
from devtools.simulator.responses import Response, json_response
from devtools.simulator.routing import ApiRequest
from devtools.simulator.signin_page import (
    STATIC_FILES,
    SignInView,
    render_message,
    render_sign_in,
    security_headers,
    static_file,
)
from devtools.simulator.signing import (
    ApiRegistration,
    SpaRegistration,
    TokenSigningKey,
    api_token_claims,
    id_token_claims,
    split_scope,
)

TOKEN_LIFETIME_SECONDS = 3599
AUTHORIZATION_CODE_LIFETIME_SECONDS = 300  # one-time codes: short-lived, as Entra's (about 10 min)
SPA_REFRESH_TOKEN_LIFETIME_SECONDS = 86_400  # Entra: a SPA's refresh tokens last 24 h, not sliding
SESSION_LIFETIME_SECONDS = 12 * 3600
SESSION_COOKIE = "aoc_sim_session"
GRAPH_AUDIENCE = "https://graph.microsoft.com"
MANAGEMENT_AUDIENCE = "https://manage.office.com"
# Resource -> the API its opaque tokens work for.
AUDIENCES = {GRAPH_AUDIENCE: "graph", MANAGEMENT_AUDIENCE: "manage", DEVOPS_RESOURCE: "devops"}
# The Log Analytics query API (devtools/simulator/log_analytics.py): scope https://api.loganalytics.io/.default.
LOG_ANALYTICS_AUDIENCE = "https://api.loganalytics.io"
AUDIENCES[LOG_ANALYTICS_AUDIENCE] = "loganalytics"
OIDC_SCOPES = ("openid", "profile", "email", "offline_access")
PROMPTS = ("none", "login", "select_account", "consent", "create")
MAX_FORM_BYTES = 16 * 1024
MAX_FORM_FIELDS = 64
MAX_STATE = 2048
MAX_NONCE = 512
MAX_SCOPE = 2048
MAX_SCOPES = 32
MAX_LOGIN_HINT = 256
MAX_TOKEN_PARAMETER = 4096  # a code or refresh token as sent back
MAX_STORED = 10_000  # codes, refresh tokens or sessions kept before the oldest are dropped
_CODE_CHALLENGE = re.compile(r"[A-Za-z0-9_-]{43}")  # base64url of a SHA-256 digest
_CODE_VERIFIER = re.compile(r"[A-Za-z0-9._~-]{43,128}")  # RFC 7636 section 4.1
_REQUEST_HEADERS = re.compile(r"[A-Za-z0-9-]+(\s*,\s*[A-Za-z0-9-]+)*")
_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
# The fields of an authorization request the sign-in form carries back, in order.
_AUTHORIZE_FIELDS = (
    "client_id",
    "redirect_uri",
    "response_type",
    "response_mode",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "login_hint",
    "client_info",
)
_FORM_FIELDS = frozenset({*_AUTHORIZE_FIELDS, "user", "action"})
_V = TypeVar("_V")


@dataclass
class AccessToken:
    """An opaque access token the simulator issued: for which API, to which client, until when."""

    audience: str  # "graph", "manage" or "devops"
    client_id: str
    expires_at: float  # real Unix time


def aad_error(status: int, error: str, code: int, description: str) -> Response:
    """An Entra (AADSTS) error document, with fresh trace and correlation ids."""
    trace_id, correlation_id = str(uuid.uuid4()), str(uuid.uuid4())
    timestamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    return json_response(
        status,
        {
            "error": error,
            "error_description": f"AADSTS{code}: {description} Trace ID: {trace_id} Correlation ID: "
            f"{correlation_id} Timestamp: {timestamp}",
            "error_codes": [code],
            "timestamp": timestamp,
            "trace_id": trace_id,
            "correlation_id": correlation_id,
        },
    )


class OAuthError(Exception):
    """An OAuth error of the authorize or token endpoint: `error`, AADSTS `code`, description."""

    def __init__(self, error: str, code: int, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.code = code
        self.description = description

    def response(self, status: int = 400) -> Response:
        return aad_error(status, self.error, self.code, self.description)


class _PageError(Exception):
    """An authorize request that cannot go back to the client: a 4xx HTML page."""

    def __init__(self, status: int, title: str, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.title = title
        self.message = message
        self.code = code


@dataclass(frozen=True)
class Grant:
    """What a user consented to for a client: the user, the app roles picked, the API and scopes."""

    client_id: str  # the SPA
    user: User
    roles: tuple[str, ...]
    api: ApiRegistration
    resource: str  # the API as the client named it (App ID URI or client id): a v1.0 token's aud
    api_scopes: tuple[str, ...]  # the API's delegated permissions granted (`scp`)
    oidc_scopes: tuple[str, ...]  # openid, profile, email, offline_access as asked

    @property
    def scope(self) -> str:
        """The `scope` of a token response: the granted resource scopes, as Entra reports them."""
        return " ".join(f"{self.resource}/{name}" for name in self.api_scopes)


@dataclass(frozen=True)
class AuthorizationRequest:
    """A validated authorization request of a registered SPA."""

    spa: SpaRegistration
    redirect_uri: str
    response_mode: str  # "fragment" or "query"
    scope: str
    state: str | None
    nonce: str | None
    code_challenge: str
    prompt: str | None
    login_hint: str | None
    client_info: bool
    grant_scopes: tuple[ApiRegistration, str, tuple[str, ...], tuple[str, ...]]

    def hidden_fields(self) -> dict[str, str]:
        """The request as the sign-in form's hidden fields (prompt dropped: posting is interactive)."""
        fields = {
            "client_id": self.spa.client_id,
            "redirect_uri": self.redirect_uri,
            "response_type": "code",
            "response_mode": self.response_mode,
            "scope": self.scope,
            "code_challenge": self.code_challenge,
            "code_challenge_method": "S256",
        }
        optional = {
            "state": self.state,
            "nonce": self.nonce,
            "login_hint": self.login_hint,
            "client_info": "1" if self.client_info else None,
        }
        fields.update({k: v for k, v in optional.items() if v is not None})
        return fields


@dataclass
class _Code:
    grant: Grant
    redirect_uri: str
    code_challenge: str
    nonce: str | None
    expires_at: float


@dataclass
class _RefreshToken:
    grant: Grant
    expires_at: float


@dataclass
class _Session:
    user_id: str
    roles: tuple[str, ...]
    expires_at: float


@dataclass
class _Store(Generic[_V]):
    """Secrets (codes, refresh tokens, sessions) by value, bounded: the oldest go first."""

    items: dict[str, _V] = field(default_factory=dict)

    def put(self, key: str, value: _V) -> None:
        self.items[key] = value
        while len(self.items) > MAX_STORED:
            self.items.pop(next(iter(self.items)))


def _b64url_json(document: Mapping[str, Any]) -> str:
    raw = json.dumps(document, separators=(",", ":")).encode("utf-8")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def s256(verifier: str) -> str:
    """The PKCE S256 code challenge of `verifier`: base64url(SHA-256(ASCII(verifier)))."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _with_parameters(uri: str, mode: str, parameters: Mapping[str, str]) -> str:
    encoded = urlencode(parameters)
    if mode == "fragment":
        return f"{uri}#{encoded}"
    return f"{uri}{'&' if '?' in uri else '?'}{encoded}"


def _short(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else f"{text[:limit]}..."


class IdentityApi:
    """Issues and checks the tenant's access tokens and signs users in. Thread-safe."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self.signing_key = TokenSigningKey()
        # Real Unix time for token lifetimes, codes and sessions; tests may replace it.
        self.wall_clock: Callable[[], float] = time.time
        self.directory = build_directory(config.seed)  # the same directory as the tenant's
        self._users = {u.id: u for u in self.directory.users}
        self._lock = threading.Lock()
        self._tokens: dict[str, AccessToken] = {}
        # APIs registered in the tenant, each with its app role assignments: client id -> roles.
        self._apis: list[tuple[ApiRegistration, dict[str, list[str]]]] = []
        self._spas: dict[str, SpaRegistration] = {}
        self._codes: _Store[_Code] = _Store()
        self._redeemed: _Store[float] = _Store()  # code -> when it expires, to name reuse as such
        self._refresh_tokens: _Store[_RefreshToken] = _Store()
        self._sessions: _Store[_Session] = _Store()
        for api in config.apis:
            self.register_api(api)
        for spa in config.spa_clients:
            self.register_spa(spa)

    # ------------------------------------------------------------------------------------------
    # Tokens and registrations
    # ------------------------------------------------------------------------------------------
    def register_api(self, api: ApiRegistration, app_roles: Mapping[str, list[str]] | None = None) -> None:
        """Register an API whose access tokens are signed JWTs; `app_roles` maps a client app's id to
        the app roles assigned to it (the `roles` of its client-credentials tokens). Registering the
        same client id or App ID URI again replaces the registration, as editing it in Entra would."""
        roles = {k.lower(): list(v) for k, v in (app_roles or {}).items()}
        with self._lock:
            kept = [
                (known, assigned)
                for known, assigned in self._apis
                if known.client_id != api.client_id and known.app_id_uri != api.app_id_uri
            ]
            self._apis = [*kept, (api, roles)]

    def register_spa(self, spa: SpaRegistration) -> None:
        """Register a single-page application (client id and redirect URIs) that signs users in with
        the authorization code flow and PKCE; again with the same client id replaces it."""
        with self._lock:
            self._spas[spa.client_id] = spa

    def revoke_sign_in_sessions(self) -> None:
        """Every user's sign-in sessions and refresh tokens stop working, as Graph's
        revokeSignInSessions does: silent renewal fails, and the next authorize request shows the
        sign-in page (prompt=none answers login_required)."""
        with self._lock:
            self._sessions.items.clear()
            self._refresh_tokens.items.clear()

    def _spa(self, client_id: str) -> SpaRegistration | None:
        try:
            key = str(uuid.UUID(client_id)) if len(client_id) <= 64 else ""
        except ValueError:
            return None
        with self._lock:
            return self._spas.get(key)

    def _registered_api(self, resource: str) -> tuple[ApiRegistration, dict[str, list[str]]] | None:
        with self._lock:
            return next(((api, roles) for api, roles in self._apis if api.names(resource)), None)

    def issue_token(self, audience: str = GRAPH_AUDIENCE, client_id: str = "simulator") -> str:
        """Mint a token directly (for tests that do not exercise the token endpoint)."""
        token = secrets.token_urlsafe(48)
        with self._lock:
            self._tokens[token] = AccessToken(
                AUDIENCES[audience], client_id, self.wall_clock() + TOKEN_LIFETIME_SECONDS
            )
        return token

    def check_token(self, request: ApiRequest, audience: str) -> str | None:
        """None when the request carries a valid token for `audience`, else the reason."""
        header = request.header("Authorization")
        if not header:
            return "Access token is empty."
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            return "Invalid authorization header: expected 'Bearer <token>'."
        with self._lock:
            token = self._tokens.get(value.strip())
        if token is None:
            return "Access token validation failure. Invalid token."
        if token.expires_at < self.wall_clock():
            return "Lifetime validation failed, the token is expired."
        if token.audience != audience:
            return "Access token validation failure. Invalid audience."
        return None

    def bearer_identity(self, value: str, audience: str = "devops") -> str | None:
        """The client id of a valid, unexpired simulator token for `audience`, else None."""
        with self._lock:
            token = self._tokens.get(value.strip())
        if token is None or token.expires_at < self.wall_clock() or token.audience != audience:
            return None
        return token.client_id

    # ------------------------------------------------------------------------------------------
    # Routes
    # ------------------------------------------------------------------------------------------
    def route(self, request: ApiRequest, segments: list[str]) -> Response | None:
        """The answer of an identity endpoint, or None when the path is not one."""
        lowered = [x.lower() for x in segments]
        kind = self._endpoint(lowered)
        if kind is None:
            return None
        request.entry["api"] = "identity"
        if request.method == "OPTIONS" and kind in ("instance", "token", "keys", "discovery"):
            request.entry["authorized"] = True
            response = Response(204, b"", [("Cache-Control", "no-store")])
            if self._allowed_origin(request.header("Origin")):
                requested = (request.header("Access-Control-Request-Headers") or "").strip()
                response.headers.append(("Access-Control-Allow-Methods", "GET, POST, OPTIONS"))
                if requested and len(requested) <= 512 and _REQUEST_HEADERS.fullmatch(requested):
                    response.headers.append(("Access-Control-Allow-Headers", requested))
                response.headers.append(("Access-Control-Max-Age", "600"))
            return self._cors(request, response)
        return self._cors(request, self._answer(kind, request, segments))

    @staticmethod
    def _endpoint(lowered: list[str]) -> str | None:
        if lowered == ["common", "discovery", "instance"]:
            return "instance"
        if len(lowered) == 2 and lowered[0] == "static" and lowered[1] in STATIC_FILES:
            return "static"
        if len(lowered) == 4 and lowered[1:3] == ["oauth2", "v2.0"]:
            return {"token": "token", "authorize": "authorize", "logout": "logout"}.get(lowered[3])
        if len(lowered) == 4 and lowered[1:] == ["discovery", "v2.0", "keys"]:
            return "keys"
        if len(lowered) == 4 and lowered[1:] == ["v2.0", ".well-known", "openid-configuration"]:
            return "discovery"
        return None

    def _answer(self, kind: str, request: ApiRequest, segments: list[str]) -> Response:
        if kind == "instance":
            request.entry["authorized"] = True
            return self._instance_discovery(request)
        if kind == "token":
            if request.method != "POST":
                return aad_error(405, "invalid_request", 900561, "The endpoint only accepts POST requests.")
            return self._token(request, segments[0])
        if kind == "keys":
            request.entry["authorized"] = True
            return json_response(200, self.signing_key.jwks())
        if kind == "discovery":
            request.entry["authorized"] = True
            return self._openid_configuration(request.base_url, segments[0])
        if kind == "static":
            request.entry["authorized"] = True
            found = static_file(segments[1].lower())
            if found is None:  # _endpoint only names known files
                return self._page(404, "Not found", "No such file.")
            content, content_type = found
            headers = [
                ("Content-Type", content_type),
                ("Cache-Control", "no-cache"),
                ("X-Content-Type-Options", "nosniff"),
            ]
            return Response(200, content, headers)
        if kind == "logout":
            return self._logout(request, segments[0])
        return self._authorize(request, segments[0])

    # ------------------------------------------------------------------------------------------
    # CORS
    # ------------------------------------------------------------------------------------------
    def _allowed_origin(self, origin: str | None) -> bool:
        """Loopback origins (http or https, any port) and the origins of registered SPAs."""
        if not origin or len(origin) > 256:
            return False
        try:
            parts = urlsplit(origin)
            host = parts.hostname
            parts.port  # noqa: B018 - raises ValueError for a port out of range
        except ValueError:
            return False
        if parts.scheme not in ("http", "https") or parts.path or parts.query or parts.fragment:
            return False
        if host in _LOOPBACK_HOSTS:
            return True
        with self._lock:
            spas = list(self._spas.values())
        return any(origin.lower() in spa.origins() for spa in spas)

    def _cors(self, request: ApiRequest, response: Response) -> Response:
        origin = request.header("Origin")
        if origin is not None and self._allowed_origin(origin):
            response.headers.append(("Access-Control-Allow-Origin", origin))
            response.headers.append(("Vary", "Origin"))
        return response

    # ------------------------------------------------------------------------------------------
    # Discovery
    # ------------------------------------------------------------------------------------------
    def _openid_configuration(self, base_url: str, tenant: str) -> Response:
        if tenant.lower() not in (self.config.tenant_id, "organizations", "common"):
            return aad_error(400, "invalid_tenant", 90002, f"Tenant '{_short(tenant, 64)}' not found.")
        tenant = self.config.tenant_id
        authority = f"{base_url}/{tenant}"
        return json_response(
            200,
            {
                "token_endpoint": f"{authority}/oauth2/v2.0/token",
                "token_endpoint_auth_methods_supported": [
                    "client_secret_post",
                    "private_key_jwt",
                    "client_secret_basic",
                    "none",
                ],
                "jwks_uri": f"{base_url}/{tenant}/discovery/v2.0/keys",
                "response_modes_supported": ["query", "fragment"],
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "response_types_supported": ["code"],
                "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
                "code_challenge_methods_supported": ["S256"],
                "prompt_values_supported": list(PROMPTS),
                "scopes_supported": list(OIDC_SCOPES),
                "issuer": f"{authority}/v2.0",
                "request_uri_parameter_supported": False,
                "userinfo_endpoint": f"{base_url}/oidc/userinfo",
                "authorization_endpoint": f"{authority}/oauth2/v2.0/authorize",
                "device_authorization_endpoint": f"{authority}/oauth2/v2.0/devicecode",
                "http_logout_supported": True,
                "frontchannel_logout_supported": True,
                "end_session_endpoint": f"{authority}/oauth2/v2.0/logout",
                "claims_supported": [
                    "sub",
                    "iss",
                    "aud",
                    "exp",
                    "iat",
                    "nbf",
                    "tid",
                    "oid",
                    "name",
                    "preferred_username",
                    "nonce",
                    "roles",
                    "scp",
                    "ver",
                ],
                "kerberos_endpoint": f"{authority}/kerberos",
                "tenant_region_scope": "EU",
                "cloud_instance_name": "microsoftonline.com",
                "cloud_graph_host_name": "graph.windows.net",
                "msgraph_host": "graph.microsoft.com",
                "rbac_url": "https://pas.windows.net",
            },
        )

    def _instance_discovery(self, request: ApiRequest) -> Response:
        endpoint = request.param("authorization_endpoint") or ""
        tenant = self.config.tenant_id
        try:
            parsed = [x for x in urlsplit(endpoint).path.split("/") if x]
        except ValueError:
            parsed = []
        if parsed:
            tenant = parsed[0]
        host = urlsplit(request.base_url).netloc
        return json_response(
            200,
            {
                "tenant_discovery_endpoint": (
                    f"{request.base_url}/{tenant}/v2.0/.well-known/openid-configuration"
                ),
                "api-version": "1.1",
                "metadata": [{"preferred_network": host, "preferred_cache": host, "aliases": [host]}],
            },
        )

    # ------------------------------------------------------------------------------------------
    # Authorize: the sign-in page and its form
    # ------------------------------------------------------------------------------------------
    def _tenant_ok(self, tenant: str) -> bool:
        return tenant.lower() in (self.config.tenant_id, "organizations", "common")

    @staticmethod
    def _page(status: int, title: str, message: str, code: int | None = None) -> Response:
        detail = f"AADSTS{code}" if code is not None else None
        return Response(status, render_message(title, message, detail), security_headers())

    def _authorize(self, request: ApiRequest, tenant: str) -> Response:
        if request.method not in ("GET", "HEAD", "POST"):
            return self._page(405, "Method not allowed", "The authorize endpoint takes GET and POST.")
        if not self._tenant_ok(tenant):
            return self._page(400, "Tenant not found", f"Tenant '{_short(tenant, 64)}' not found.", 90002)
        try:
            if request.method == "POST":
                params, roles = self._sign_in_form(request)
            else:
                params, roles = dict(request.query), []
            spa, redirect_uri = self._client_and_redirect(params)
        except _PageError as exc:
            return self._page(exc.status, exc.title, exc.message, exc.code)
        raw_state = params.get("state")
        state = raw_state if raw_state and len(raw_state) <= MAX_STATE else None
        mode = params.get("response_mode") or "query"
        try:
            if mode not in ("query", "fragment"):
                mode = "query"
                raise OAuthError("invalid_request", 900144, "response_mode must be 'fragment' or 'query'.")
            authorization = self._authorization_request(params, spa, redirect_uri, mode)
        except OAuthError as exc:
            if request.method == "POST":  # the form was made by us: a changed field is tampering
                return self._page(400, "Invalid request", exc.description, exc.code)
            return self._error_redirect(redirect_uri, mode, exc, state)
        request.entry["authorized"] = True
        if request.method == "POST":
            return self._sign_in(request, authorization, params, roles)
        session = self._session(request)
        if authorization.prompt == "none":
            user = self._users.get(session.user_id) if session is not None else None
            hint = (authorization.login_hint or "").lower()
            if session is None or user is None or (hint and hint not in (user.upn.lower(), user.id)):
                return self._error_redirect(
                    redirect_uri,
                    mode,
                    OAuthError(
                        "login_required",
                        50058,
                        "A silent sign-in request was sent but no user is signed in.",
                    ),
                    state,
                )
            api_roles = authorization.grant_scopes[0].app_roles
            granted = tuple(r for r in api_roles if r in session.roles)  # this API's app roles only
            return self._code_redirect(authorization, user, granted)
        return self._sign_in_page(request, authorization, session)

    def _sign_in_form(self, request: ApiRequest) -> tuple[dict[str, str], list[str]]:
        """The posted sign-in form: its single-valued fields and the roles ticked."""
        content_type = (request.header("Content-Type") or "").split(";")[0].strip().lower()
        if content_type != "application/x-www-form-urlencoded":
            raise _PageError(415, "Unsupported form", "The sign-in form is posted URL-encoded.")
        if len(request.body) > MAX_FORM_BYTES:
            raise _PageError(413, "Form too large", f"The sign-in form is at most {MAX_FORM_BYTES} bytes.")
        try:
            pairs = parse_qsl(
                request.body.decode("utf-8"),
                keep_blank_values=True,
                strict_parsing=False,
                max_num_fields=MAX_FORM_FIELDS,
            )
        except (UnicodeDecodeError, ValueError):
            raise _PageError(400, "Invalid form", "The sign-in form could not be read.") from None
        params: dict[str, str] = {}
        roles: list[str] = []
        for name, value in pairs:
            if name == "role":
                roles.append(value)
            elif name in _FORM_FIELDS:
                if name in params:
                    raise _PageError(400, "Invalid form", f"The field '{name}' appears more than once.")
                params[name] = value
        return params, roles

    def _client_and_redirect(self, params: Mapping[str, str]) -> tuple[SpaRegistration, str]:
        """The registered SPA and its redirect URI, or a page: errors cannot go to an unknown URI."""
        client_id = params.get("client_id") or ""
        if not client_id:
            raise _PageError(
                400,
                "Invalid request",
                "The request must contain the parameter 'client_id'.",
                900144,
            )
        spa = self._spa(client_id)
        if spa is None:
            raise _PageError(
                400,
                "Application not found",
                f"Application with identifier '{_short(client_id, 64)}' was not found in the directory "
                "as a single-page application.",
                700016,
            )
        redirect_uri = params.get("redirect_uri") or ""
        if not redirect_uri:
            raise _PageError(
                400,
                "Invalid request",
                "The request must contain the parameter 'redirect_uri'.",
                900144,
            )
        if redirect_uri not in spa.redirect_uris:
            raise _PageError(
                400,
                "Redirect URI mismatch",
                f"The redirect URI '{_short(redirect_uri)}' specified in the request does not match the "
                f"redirect URIs configured for the application '{spa.client_id}'.",
                50011,
            )
        return spa, redirect_uri

    def _authorization_request(
        self, params: Mapping[str, str], spa: SpaRegistration, redirect_uri: str, mode: str
    ) -> AuthorizationRequest:
        if params.get("response_type") != "code":
            raise OAuthError(
                "unsupported_response_type",
                700054,
                "response_type must be 'code' (the authorization code flow).",
            )
        challenge = params.get("code_challenge") or ""
        if not challenge:
            raise OAuthError(
                "invalid_request",
                9002325,
                "Proof Key for Code Exchange is required for cross-origin authorization code redemption.",
            )
        if params.get("code_challenge_method") != "S256":
            raise OAuthError("invalid_request", 501471, "code_challenge_method must be 'S256'.")
        if not _CODE_CHALLENGE.fullmatch(challenge):
            raise OAuthError(
                "invalid_request", 501491, "code_challenge must be 43 base64url characters (S256)."
            )
        state, nonce = params.get("state"), params.get("nonce")
        if state is not None and len(state) > MAX_STATE:
            raise OAuthError("invalid_request", 90015, f"state is longer than {MAX_STATE} characters.")
        if nonce is not None and len(nonce) > MAX_NONCE:
            raise OAuthError("invalid_request", 90015, f"nonce is longer than {MAX_NONCE} characters.")
        hint = params.get("login_hint")
        if hint is not None and len(hint) > MAX_LOGIN_HINT:
            raise OAuthError("invalid_request", 90015, "login_hint is too long.")
        prompt = params.get("prompt") or None
        if prompt is not None and prompt not in PROMPTS:
            raise OAuthError(
                "invalid_request", 90023, f"Invalid prompt value; expected one of {', '.join(PROMPTS)}."
            )
        scope = params.get("scope") or ""
        grant_scopes = self._grant_scopes(scope)
        return AuthorizationRequest(
            spa=spa,
            redirect_uri=redirect_uri,
            response_mode=mode,
            scope=scope,
            state=state or None,
            nonce=nonce or None,
            code_challenge=challenge,
            prompt=prompt,
            login_hint=hint or None,
            client_info=params.get("client_info") == "1",
            grant_scopes=grant_scopes,
        )

    def _grant_scopes(self, scope: str) -> tuple[ApiRegistration, str, tuple[str, ...], tuple[str, ...]]:
        """(API, resource as named, its permissions granted, OIDC scopes) for a `scope` parameter."""
        items = scope.split()
        if not items or len(scope) > MAX_SCOPE or len(items) > MAX_SCOPES:
            raise OAuthError(
                "invalid_scope",
                70011,
                f"The provided value for the input parameter 'scope' is not valid: 1 to {MAX_SCOPES} "
                f"scopes, at most {MAX_SCOPE} characters.",
            )
        oidc = tuple(dict.fromkeys(s for s in items if s in OIDC_SCOPES))
        found: ApiRegistration | None = None
        resource = ""
        permissions: list[str] = []
        for item in items:
            if item in OIDC_SCOPES:
                continue
            parts = split_scope(item)
            registered = self._registered_api(parts[0]) if parts is not None else None
            if parts is None or registered is None:
                raise OAuthError(
                    "invalid_scope",
                    500011,
                    f"The resource principal of scope '{_short(item, 120)}' was not found in the tenant "
                    f"named {self.config.tenant_id}.",
                )
            api = registered[0]
            if found is not None and api.client_id != found.client_id:
                raise OAuthError(
                    "invalid_scope", 28000, "The scopes requested are for more than one resource."
                )
            found, resource = api, resource or parts[0].rstrip("/")
            name = parts[1]
            if name == ".default":
                permissions.extend(api.scopes)
            elif name in api.scopes:
                permissions.append(name)
            else:
                raise OAuthError(
                    "invalid_scope",
                    650053,
                    f"The application asked for scope '{_short(name, 120)}' that doesn't exist on the "
                    f"resource '{api.client_id}'.",
                )
        if found is None:
            raise OAuthError(
                "invalid_scope",
                70011,
                "Ask for a scope of a registered API (e.g. api://<api>/access_as_user): the simulator "
                "issues user tokens only for registered APIs.",
            )
        return found, resource, tuple(dict.fromkeys(permissions)), oidc

    def _sign_in_page(
        self, request: ApiRequest, authorization: AuthorizationRequest, session: _Session | None
    ) -> Response:
        api, resource, permissions, _ = authorization.grant_scopes
        selected = session.user_id if session is not None else None
        if selected is None and authorization.login_hint:
            hint = authorization.login_hint.lower()
            selected = next((u.id for u in self.directory.users if u.upn.lower() == hint), None)
        if selected is None and self.directory.admins:
            selected = self.directory.admins[0].id
        roles = frozenset(session.roles) if session is not None else frozenset(api.app_roles[:1])
        view = SignInView(
            action_url=request.path,
            tenant_id=self.config.tenant_id,
            domain=self.directory.domain,
            client_id=authorization.spa.client_id,
            api_name=resource,
            scopes=[*permissions, *authorization.grant_scopes[3]],
            users=self.directory.users,
            roles=api.app_roles,
            selected_user=selected,
            selected_roles=roles,
            hidden=authorization.hidden_fields(),
        )
        origin = urlsplit(authorization.redirect_uri)
        headers = security_headers([f"{origin.scheme}://{origin.netloc}"])
        return Response(200, render_sign_in(view), headers)

    def _sign_in(
        self,
        request: ApiRequest,
        authorization: AuthorizationRequest,
        params: Mapping[str, str],
        roles: list[str],
    ) -> Response:
        action = params.get("action") or "sign_in"
        if action == "cancel":
            return self._error_redirect(
                authorization.redirect_uri,
                authorization.response_mode,
                OAuthError("access_denied", 65004, "The user declined to sign in."),
                authorization.state,
            )
        if action != "sign_in":
            return self._page(400, "Invalid form", "The form's action is 'sign_in' or 'cancel'.")
        user = self._users.get(params.get("user") or "")
        if user is None:
            return self._page(400, "Unknown user", "Pick a user of the tenant's directory.", 50034)
        api = authorization.grant_scopes[0]
        unknown = [r for r in roles if r not in api.app_roles]
        if unknown:
            return self._page(
                400,
                "Unknown role",
                f"The role '{_short(unknown[0], 64)}' is not an app role of {api.app_id_uri}.",
            )
        picked = tuple(r for r in api.app_roles if r in roles)  # the registration's order, no repeats
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._sessions.put(token, _Session(user.id, picked, self.wall_clock() + SESSION_LIFETIME_SECONDS))
        secure = request.base_url.startswith("https:")
        cookie = f"{SESSION_COOKIE}={token}; Path=/; HttpOnly; Max-Age={SESSION_LIFETIME_SECONDS}; " + (
            "Secure; SameSite=None" if secure else "SameSite=Lax"
        )
        return self._code_redirect(authorization, user, picked, [("Set-Cookie", cookie)])

    def _session(self, request: ApiRequest) -> _Session | None:
        header = request.header("Cookie") or ""
        for part in header.split(";")[:64]:
            name, _, value = part.strip().partition("=")
            if name != SESSION_COOKIE:
                continue
            with self._lock:
                session = self._sessions.items.get(value)
            if session is not None and session.expires_at > self.wall_clock():
                return session
        return None

    def _code_redirect(
        self,
        authorization: AuthorizationRequest,
        user: User,
        roles: tuple[str, ...],
        headers: list[tuple[str, str]] | None = None,
    ) -> Response:
        api, resource, permissions, oidc = authorization.grant_scopes
        grant = Grant(
            client_id=authorization.spa.client_id,
            user=user,
            roles=roles,
            api=api,
            resource=resource,
            api_scopes=permissions,
            oidc_scopes=oidc,
        )
        code = secrets.token_urlsafe(32)
        with self._lock:
            self._codes.put(
                code,
                _Code(
                    grant=grant,
                    redirect_uri=authorization.redirect_uri,
                    code_challenge=authorization.code_challenge,
                    nonce=authorization.nonce,
                    expires_at=self.wall_clock() + AUTHORIZATION_CODE_LIFETIME_SECONDS,
                ),
            )
        parameters = {"code": code}
        if authorization.client_info:
            parameters["client_info"] = self._client_info(user)
        if authorization.state is not None:
            parameters["state"] = authorization.state
        location = _with_parameters(authorization.redirect_uri, authorization.response_mode, parameters)
        return Response(
            302,
            b"",
            [("Location", location), ("Cache-Control", "no-store"), *(headers or [])],
        )

    @staticmethod
    def _error_redirect(uri: str, mode: str, error: OAuthError, state: str | None) -> Response:
        parameters = {"error": error.error, "error_description": f"AADSTS{error.code}: {error.description}"}
        if state is not None:
            parameters["state"] = state
        location = _with_parameters(uri, mode, parameters)
        return Response(302, b"", [("Location", location), ("Cache-Control", "no-store")])

    def _client_info(self, user: User) -> str:
        return _b64url_json({"uid": user.id, "utid": self.config.tenant_id})

    def _logout(self, request: ApiRequest, tenant: str) -> Response:
        if request.method not in ("GET", "HEAD", "POST"):
            return self._page(405, "Method not allowed", "The logout endpoint takes GET and POST.")
        if not self._tenant_ok(tenant):
            return self._page(400, "Tenant not found", f"Tenant '{_short(tenant, 64)}' not found.", 90002)
        request.entry["authorized"] = True
        header = request.header("Cookie") or ""
        with self._lock:
            for part in header.split(";")[:64]:
                name, _, value = part.strip().partition("=")
                if name == SESSION_COOKIE:
                    self._sessions.items.pop(value, None)
            registered = {u for spa in self._spas.values() for u in spa.redirect_uris}
        secure = request.base_url.startswith("https:")
        expired = f"{SESSION_COOKIE}=; Path=/; HttpOnly; Max-Age=0; " + (
            "Secure; SameSite=None" if secure else "SameSite=Lax"
        )
        target = request.param("post_logout_redirect_uri") or ""
        if target in registered:
            state = request.param("state")
            location = target
            if state and len(state) <= MAX_STATE:
                location = _with_parameters(target, "query", {"state": state})
            return Response(
                302, b"", [("Location", location), ("Cache-Control", "no-store"), ("Set-Cookie", expired)]
            )
        headers = [*security_headers(), ("Set-Cookie", expired)]
        return Response(200, render_message("Signed out", "You have signed out of the simulator."), headers)

    # ------------------------------------------------------------------------------------------
    # Token endpoint
    # ------------------------------------------------------------------------------------------
    def _token(self, request: ApiRequest, tenant: str) -> Response:
        if tenant.lower() not in (self.config.tenant_id, "organizations"):
            return aad_error(
                400,
                "invalid_request",
                90002,
                f"Tenant '{_short(tenant, 64)}' not found. Check to make sure you have the correct tenant "
                "ID and are signing into the correct cloud.",
            )
        content_type = (request.header("Content-Type") or "").split(";")[0].strip().lower()
        if content_type != "application/x-www-form-urlencoded":
            return aad_error(
                400,
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'grant_type'.",
            )
        try:
            pairs = parse_qsl(
                request.body.decode("utf-8", "replace"),
                keep_blank_values=True,
                max_num_fields=MAX_FORM_FIELDS,
            )
        except ValueError:
            return aad_error(400, "invalid_request", 90015, "The request body has too many parameters.")
        form = dict(pairs)
        for required in ("grant_type", "client_id"):
            if not form.get(required):
                return aad_error(
                    400,
                    "invalid_request",
                    900144,
                    f"The request body must contain the following parameter: '{required}'.",
                )
        if form["grant_type"] in ("authorization_code", "refresh_token"):
            try:
                return self._user_token(request, form)
            except OAuthError as exc:
                status = 401 if exc.error == "invalid_client" and exc.code == 7000218 else 400
                return exc.response(status)
        if form["grant_type"] != "client_credentials":
            return aad_error(
                400,
                "unsupported_grant_type",
                70003,
                f"The app requested an unsupported grant type '{_short(form['grant_type'], 64)}'.",
            )
        has_assertion = bool(form.get("client_assertion")) and bool(form.get("client_assertion_type"))
        if not form.get("client_secret") and not has_assertion:
            return aad_error(
                401,
                "invalid_client",
                7000216,
                "'client_assertion', 'client_secret' or 'request' is required for the 'client_credentials' "
                "grant type.",
            )
        scope = form.get("scope", "").strip()
        if not scope:
            return aad_error(
                400,
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'scope'.",
            )
        scopes = scope.split()
        resources = {s.rsplit("/.default", 1)[0] for s in scopes if s.endswith("/.default")}
        if len(scopes) != 1 or len(resources) != 1:
            return aad_error(
                400,
                "invalid_scope",
                1002012,
                f"The provided value for scope {scope} is not valid. Client credential flows must have a "
                "scope "
                "value with /.default suffixed to the resource identifier (application ID URI).",
            )
        resource = resources.pop().rstrip("/")
        if resource.lower() == DEVOPS_RESOURCE:  # an application id: Entra ignores its case
            resource = DEVOPS_RESOURCE
        registered = self._registered_api(resource)
        if registered is not None:
            # A registered API: a signed JWT in the version its registration asks for (v1.0 or v2.0),
            # whichever endpoint the client used.
            api, app_roles = registered
            claims = api_token_claims(
                api=api,
                authority=request.base_url,
                tenant_id=self.config.tenant_id,
                roles=app_roles.get(form["client_id"].lower(), []),
                name=None,
                requested_resource=resource,
                client_app_id=form["client_id"],
                lifetime_seconds=TOKEN_LIFETIME_SECONDS,
                now=self.wall_clock(),
            )
            request.entry["authorized"] = True
            return json_response(
                200,
                {
                    "token_type": "Bearer",
                    "expires_in": TOKEN_LIFETIME_SECONDS,
                    "ext_expires_in": TOKEN_LIFETIME_SECONDS,
                    "access_token": self.signing_key.sign(claims),
                },
                Cache_Control="no-store, no-cache",
                Pragma="no-cache",
            )
        if resource not in AUDIENCES:
            return aad_error(
                400,
                "invalid_resource",
                500011,
                f"The resource principal named {resource} was not found in the tenant named "
                f"{self.config.tenant_id}.",
            )
        token = secrets.token_urlsafe(48)
        with self._lock:
            self._tokens[token] = AccessToken(
                AUDIENCES[resource], form["client_id"], self.wall_clock() + TOKEN_LIFETIME_SECONDS
            )
        request.entry["authorized"] = True
        return json_response(
            200,
            {
                "token_type": "Bearer",
                "expires_in": TOKEN_LIFETIME_SECONDS,
                "ext_expires_in": TOKEN_LIFETIME_SECONDS,
                "access_token": token,
            },
            Cache_Control="no-store, no-cache",
            Pragma="no-cache",
        )

    def _user_token(self, request: ApiRequest, form: Mapping[str, str]) -> Response:
        """The authorization_code and refresh_token grants of a registered SPA."""
        spa = self._spa(form["client_id"])
        if spa is None:
            raise OAuthError(
                "invalid_client",
                700016,
                f"Application with identifier '{_short(form['client_id'], 64)}' was not found in the "
                f"directory '{self.config.tenant_id}' as a single-page application.",
            )
        if form.get("client_secret") or form.get("client_assertion"):
            raise OAuthError(
                "invalid_client",
                700025,
                "Client is public so neither 'client_assertion' nor 'client_secret' should be presented.",
            )
        if not request.header("Origin"):
            raise OAuthError(
                "invalid_request",
                9002327,
                "Tokens issued for the 'Single-Page Application' client-type may only be redeemed via "
                "cross-origin requests.",
            )
        now = self.wall_clock()
        nonce: str | None = None
        if form["grant_type"] == "authorization_code":
            grant, nonce = self._redeem_code(form, spa, now)
            refresh_expires_at = now + SPA_REFRESH_TOKEN_LIFETIME_SECONDS
        else:
            grant, refresh_expires_at = self._redeem_refresh_token(form, spa, now)
        request.entry["authorized"] = True
        client_info = form.get("client_info") == "1"
        return self._token_response(request, grant, nonce, client_info, now, refresh_expires_at)

    def _redeem_code(
        self, form: Mapping[str, str], spa: SpaRegistration, now: float
    ) -> tuple[Grant, str | None]:
        """The grant and nonce of a one-time code, once its client, redirect URI and PKCE check out."""
        code = form.get("code") or ""
        if not code:
            raise OAuthError(
                "invalid_request", 900144, "The request body must contain the following parameter: 'code'."
            )
        with self._lock:
            # Any redemption attempt uses the code up: a wrong verifier cannot be retried.
            entry = self._codes.items.pop(code, None) if len(code) <= MAX_TOKEN_PARAMETER else None
            redeemed = self._redeemed.items.get(code) if entry is None else None
            if entry is not None:
                self._redeemed.put(code, entry.expires_at)
        if entry is None:
            if redeemed is not None:
                raise OAuthError("invalid_grant", 54005, "OAuth2 Authorization code was already redeemed.")
            raise OAuthError("invalid_grant", 9002313, "The provided authorization code is invalid.")
        if now > entry.expires_at:
            raise OAuthError(
                "invalid_grant",
                70008,
                "The provided authorization code or refresh token has expired due to inactivity.",
            )
        if entry.grant.client_id != spa.client_id:
            raise OAuthError("invalid_grant", 70000, "The authorization code was issued to another client.")
        if form.get("redirect_uri") != entry.redirect_uri:
            raise OAuthError(
                "invalid_grant",
                50011,
                "The redirect URI does not match the redirect URI of the authorization request.",
            )
        verifier = form.get("code_verifier") or ""
        if not verifier:
            raise OAuthError(
                "invalid_request",
                9002325,
                "Proof Key for Code Exchange is required: the request must contain 'code_verifier'.",
            )
        if not _CODE_VERIFIER.fullmatch(verifier) or not hmac.compare_digest(
            s256(verifier), entry.code_challenge
        ):
            raise OAuthError(
                "invalid_grant",
                501481,
                "The Code_Verifier does not match the code_challenge supplied in the authorization request.",
            )
        return entry.grant, entry.nonce

    def _redeem_refresh_token(
        self, form: Mapping[str, str], spa: SpaRegistration, now: float
    ) -> tuple[Grant, float]:
        """The grant of a refresh token and when the refresh tokens of that sign-in expire."""
        value = form.get("refresh_token") or ""
        if not value:
            raise OAuthError(
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'refresh_token'.",
            )
        with self._lock:
            entry = self._refresh_tokens.items.get(value) if len(value) <= MAX_TOKEN_PARAMETER else None
        if entry is None:
            raise OAuthError("invalid_grant", 9002313, "The provided refresh token is invalid.")
        if now > entry.expires_at:
            raise OAuthError(
                "invalid_grant",
                700084,
                "The refresh token was issued to a single page app (SPA), and therefore has a fixed, "
                "limited lifetime of 1.00:00:00, which cannot be extended. It is now expired and a new "
                "sign in request must be sent by the SPA to the sign in page.",
            )
        grant = entry.grant
        if grant.client_id != spa.client_id:
            raise OAuthError("invalid_grant", 70000, "The refresh token was issued to another client.")
        scope = form.get("scope") or ""
        if scope:
            api, _, permissions, oidc = self._grant_scopes(scope)
            if api.client_id != grant.api.client_id or not set(permissions) <= set(grant.api_scopes):
                raise OAuthError(
                    "invalid_scope",
                    65001,
                    "The user has not consented to the scopes requested with this refresh token.",
                )
            grant = Grant(
                client_id=grant.client_id,
                user=grant.user,
                roles=grant.roles,
                api=grant.api,
                resource=grant.resource,
                api_scopes=permissions,
                oidc_scopes=tuple(dict.fromkeys((*oidc, *grant.oidc_scopes))),
            )
        return grant, entry.expires_at

    def _token_response(
        self,
        request: ApiRequest,
        grant: Grant,
        nonce: str | None,
        client_info: bool,
        now: float,
        refresh_expires_at: float,
    ) -> Response:
        """Access token for the API, ID token, refresh token (its expiry fixed at the first sign-in)."""
        user = grant.user
        claims = api_token_claims(
            api=grant.api,
            authority=request.base_url,
            tenant_id=self.config.tenant_id,
            roles=list(grant.roles),
            name=user.upn,
            requested_resource=grant.resource,
            client_app_id=grant.client_id,
            object_id=user.id,
            lifetime_seconds=TOKEN_LIFETIME_SECONDS,
            now=now,
            scopes=grant.api_scopes,
            display_name=user.display_name,
        )
        body: dict[str, Any] = {
            "token_type": "Bearer",
            "scope": grant.scope,
            "expires_in": TOKEN_LIFETIME_SECONDS,
            "ext_expires_in": TOKEN_LIFETIME_SECONDS,
            "access_token": self.signing_key.sign(claims),
        }
        if "offline_access" in grant.oidc_scopes:
            refresh = secrets.token_urlsafe(48)
            with self._lock:
                self._refresh_tokens.put(refresh, _RefreshToken(grant, refresh_expires_at))
            body["refresh_token"] = refresh
            body["refresh_token_expires_in"] = max(0, int(refresh_expires_at - now))
        if "openid" in grant.oidc_scopes:
            body["id_token"] = self.signing_key.sign(
                id_token_claims(
                    client_id=grant.client_id,
                    authority=request.base_url,
                    tenant_id=self.config.tenant_id,
                    object_id=user.id,
                    username=user.upn,
                    display_name=user.display_name,
                    nonce=nonce,
                    lifetime_seconds=TOKEN_LIFETIME_SECONDS,
                    now=now,
                )
            )
        if client_info:
            body["client_info"] = self._client_info(user)
        return json_response(200, body, Cache_Control="no-store, no-cache", Pragma="no-cache")
