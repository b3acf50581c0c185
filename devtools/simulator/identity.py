"""Entra ID for the simulated tenant: the token endpoint, its signing keys (JWKS) and the discovery
documents msal reads, plus the token store the other APIs check bearer tokens against.

- `POST /{tenant}/oauth2/v2.0/token`: client credentials (`client_secret` or `client_assertion`) for
  Graph, the Management Activity API or Azure DevOps: an opaque token that only works for its own API.
  For an API registered with `register_api`: a signed JWT with the client's app roles.
- `GET /{tenant}/discovery/v2.0/keys`: the JWKS that signs those JWTs.
- `GET /{tenant}/v2.0/.well-known/openid-configuration` and `GET /common/discovery/instance`.

Errors are AADSTS documents (`aad_error`).
"""

from __future__ import annotations

import datetime as dt
import secrets
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

from devtools.simulator.config import SimulatorConfig
from devtools.simulator.devops import DEVOPS_RESOURCE
from devtools.simulator.responses import Response, json_response
from devtools.simulator.routing import ApiRequest
from devtools.simulator.signing import ApiRegistration, TokenSigningKey, api_token_claims

TOKEN_LIFETIME_SECONDS = 3599
GRAPH_AUDIENCE = "https://graph.microsoft.com"
MANAGEMENT_AUDIENCE = "https://manage.office.com"
# Resource -> the API its opaque tokens work for.
AUDIENCES = {GRAPH_AUDIENCE: "graph", MANAGEMENT_AUDIENCE: "manage", DEVOPS_RESOURCE: "devops"}


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


class IdentityApi:
    """Issues and checks the tenant's access tokens. Thread-safe."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self.signing_key = TokenSigningKey()
        self._lock = threading.Lock()
        self._tokens: dict[str, AccessToken] = {}
        # APIs registered in the tenant, each with its app role assignments: client id -> roles.
        self._apis: list[tuple[ApiRegistration, dict[str, list[str]]]] = []

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

    def _registered_api(self, resource: str) -> tuple[ApiRegistration, dict[str, list[str]]] | None:
        with self._lock:
            return next(((api, roles) for api, roles in self._apis if api.names(resource)), None)

    def issue_token(self, audience: str = GRAPH_AUDIENCE, client_id: str = "simulator") -> str:
        """Mint a token directly (for tests that do not exercise the token endpoint)."""
        token = secrets.token_urlsafe(48)
        with self._lock:
            self._tokens[token] = AccessToken(
                AUDIENCES[audience], client_id, time.time() + TOKEN_LIFETIME_SECONDS
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
        if token.expires_at < time.time():
            return "Lifetime validation failed, the token is expired."
        if token.audience != audience:
            return "Access token validation failure. Invalid audience."
        return None

    def bearer_identity(self, value: str, audience: str = "devops") -> str | None:
        """The client id of a valid, unexpired simulator token for `audience`, else None."""
        with self._lock:
            token = self._tokens.get(value.strip())
        if token is None or token.expires_at < time.time() or token.audience != audience:
            return None
        return token.client_id

    # ------------------------------------------------------------------------------------------
    # Routes
    # ------------------------------------------------------------------------------------------
    def route(self, request: ApiRequest, segments: list[str]) -> Response | None:
        """The answer of an identity endpoint, or None when the path is not one."""
        lowered = [x.lower() for x in segments]
        if lowered == ["common", "discovery", "instance"]:
            request.entry.update(api="identity", authorized=True)
            return self._instance_discovery(request)
        if len(segments) == 4 and lowered[1:] == ["oauth2", "v2.0", "token"]:
            request.entry["api"] = "identity"
            if request.method != "POST":
                return aad_error(405, "invalid_request", 900561, "The endpoint only accepts POST requests.")
            return self._token(request, segments[0])
        if len(segments) == 4 and lowered[1:] == ["discovery", "v2.0", "keys"]:
            request.entry.update(api="identity", authorized=True)
            return json_response(200, self.signing_key.jwks())
        if len(segments) == 4 and lowered[1:] == ["v2.0", ".well-known", "openid-configuration"]:
            request.entry.update(api="identity", authorized=True)
            return self._openid_configuration(request.base_url, segments[0])
        return None

    def _openid_configuration(self, base_url: str, tenant: str) -> Response:
        if tenant.lower() not in (self.config.tenant_id, "organizations", "common"):
            return aad_error(400, "invalid_tenant", 90002, f"Tenant '{tenant}' not found.")
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
                ],
                "jwks_uri": f"{base_url}/{tenant}/discovery/v2.0/keys",
                "response_modes_supported": ["query", "fragment", "form_post"],
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                "scopes_supported": ["openid", "profile", "email", "offline_access"],
                "issuer": f"{authority}/v2.0",
                "request_uri_parameter_supported": False,
                "userinfo_endpoint": f"{base_url}/oidc/userinfo",
                "authorization_endpoint": f"{authority}/oauth2/v2.0/authorize",
                "device_authorization_endpoint": f"{authority}/oauth2/v2.0/devicecode",
                "http_logout_supported": True,
                "frontchannel_logout_supported": True,
                "end_session_endpoint": f"{authority}/oauth2/v2.0/logout",
                "claims_supported": ["sub", "iss", "aud", "exp", "iat", "tid", "oid", "roles"],
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
        parsed = [x for x in urlsplit(endpoint).path.split("/") if x]
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

    def _token(self, request: ApiRequest, tenant: str) -> Response:
        if tenant.lower() not in (self.config.tenant_id, "organizations"):
            return aad_error(
                400,
                "invalid_request",
                90002,
                f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are "
                "signing into the correct cloud.",
            )
        content_type = (request.header("Content-Type") or "").split(";")[0].strip().lower()
        if content_type != "application/x-www-form-urlencoded":
            return aad_error(
                400,
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'grant_type'.",
            )
        form = dict(parse_qsl(request.body.decode("utf-8", "replace"), keep_blank_values=True))
        for required in ("grant_type", "client_id"):
            if not form.get(required):
                return aad_error(
                    400,
                    "invalid_request",
                    900144,
                    f"The request body must contain the following parameter: '{required}'.",
                )
        if form["grant_type"] != "client_credentials":
            return aad_error(
                400,
                "unsupported_grant_type",
                70003,
                f"The app requested an unsupported grant type '{form['grant_type']}'.",
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
                AUDIENCES[resource], form["client_id"], time.time() + TOKEN_LIFETIME_SECONDS
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
