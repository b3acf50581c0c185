"""Request handling for the tenant simulator, independent of sockets.

`SimulatorApp.handle(method, target, headers, body)` returns a `Response`. It serves the Entra token
endpoint (and the discovery documents msal reads), Microsoft Graph audit APIs under /graph, the
Office 365 Management Activity API under /manage, Azure DevOps "Runs - Run Pipeline" under /devops,
a webhook sink under /webhooks, and the /_sim control endpoints.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from devtools.simulator.config import SimulatorConfig
from devtools.simulator.devops import DEVOPS_RESOURCE, DevOpsService
from devtools.simulator.directory import graph_type_name, to_graph
from devtools.simulator.faults import ContentFaults, Fault, FaultPlan, page_bounds
from devtools.simulator.generator import CONTENT_TYPES, GRAPH_SOURCES, Tenant
from devtools.simulator.odata import ODataError, PageTokens, parse_time_filter, parse_top
from devtools.simulator.render import ENTRA_AUDIT, ENTRA_SIGNIN, INTUNE_AUDIT, render
from devtools.simulator.responses import Response, json_response
from devtools.simulator.signing import ApiRegistration, TokenSigningKey, api_token_claims
from devtools.simulator.timefmt import US_PER_SECOND, TimeParseError, content_time, iso, parse_time, to_us
from devtools.simulator.webhooks import WebhookSink, valid_name

logger = logging.getLogger("devtools.simulator")

GRAPH_JSON_TYPE = (
    "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"
)
TOKEN_LIFETIME_SECONDS = 3599
GRAPH_AUDIENCE = "https://graph.microsoft.com"
MANAGEMENT_AUDIENCE = "https://manage.office.com"
AUDIENCES = {GRAPH_AUDIENCE: "graph", MANAGEMENT_AUDIENCE: "manage", DEVOPS_RESOURCE: "devops"}
MAX_GET_BY_IDS = 1000
MANAGEMENT_PAGE_SIZE = 50
MANAGEMENT_MAX_WINDOW_US = 24 * 3600 * US_PER_SECOND
MANAGEMENT_MAX_LOOKBACK_US = 7 * 24 * 3600 * US_PER_SECOND
AF20030 = (
    "Start time and end time must both be specified (or both omitted) and must be less than or equal to 24 "
    "hours apart, with the start time no more than 7 days in the past."
)
GET_BY_IDS_TYPES = {
    "user",
    "group",
    "serviceprincipal",
    "device",
    "application",
    "directoryrole",
    "orgcontact",
    "administrativeunit",
}


@dataclass(frozen=True)
class GraphList:
    source: str
    path: str  # as in @odata.context, e.g. auditLogs/directoryAudits
    time_field: str
    default_top: int
    max_top: int


# Page sizes: signIns documents "the maximum and default page size is 1,000 objects". directoryAudits
# and Intune auditEvents document $top without a maximum; Graph's reporting APIs cap page sizes at
# 1,000 ("Must be between 1 and 1000 inclusive"), which the simulator applies to both.
GRAPH_LISTS: dict[str, GraphList] = {
    "auditlogs/directoryaudits": GraphList(
        ENTRA_AUDIT, "auditLogs/directoryAudits", "activityDateTime", 100, 1000
    ),
    "auditlogs/signins": GraphList(ENTRA_SIGNIN, "auditLogs/signIns", "createdDateTime", 1000, 1000),
    "devicemanagement/auditevents": GraphList(
        INTUNE_AUDIT, "deviceManagement/auditEvents", "activityDateTime", 100, 1000
    ),
}
assert {g.source for g in GRAPH_LISTS.values()} == set(GRAPH_SOURCES)


@dataclass
class _Token:
    audience: str
    client_id: str
    expires_at: float


@dataclass
class _Request:
    method: str
    path: str
    segments: list[str]
    query: dict[str, str]
    headers: Mapping[str, str]
    body: bytes
    entry: dict[str, Any]

    def param(self, name: str) -> str | None:
        """A query parameter, matched case-insensitively (the services ignore the case of names)."""
        lowered = name.lower()
        for key, value in self.query.items():
            if key.lower() == lowered:
                return value
        return None

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        for key, value in self.headers.items():
            if key.lower() == lowered:
                return value
        return None


class SimulatorApp:
    def __init__(self, config: SimulatorConfig, tenant: Tenant) -> None:
        self.config = config
        self.tenant = tenant
        self.base_url = "http://127.0.0.1"
        self._clock = config.clock()
        self._faults = FaultPlan(config)
        self.content_faults = ContentFaults()
        self._page_tokens = PageTokens(f"{config.seed}:{config.tenant_id}:{secrets.token_hex(8)}")
        self._lock = threading.Lock()
        self._tokens: dict[str, _Token] = {}
        self._log: list[dict[str, Any]] = []
        self._api_calls = 0
        self._subscriptions: dict[str, dict[str, Any]] = {}
        self.devops = DevOpsService(config, self._bearer_identity)
        self.webhooks = WebhookSink()
        self.signing_key = TokenSigningKey()
        # APIs registered in the tenant, each with its app role assignments: client id -> roles.
        self._apis: list[tuple[ApiRegistration, dict[str, list[str]]]] = []

    # ------------------------------------------------------------------------------------------
    def now_us(self) -> int:
        return to_us(self._clock.now())

    def now(self) -> dt.datetime:
        return self._clock.now()

    def request_log(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(entry, query=dict(entry["query"])) for entry in self._log]

    def add_burst(
        self,
        kind: str,
        count: int,
        *,
        spread_seconds: float = 60.0,
        actor: str | None = None,
        delay_seconds: float = 0.0,
    ) -> dict[str, Any]:
        """Append a scripted burst of configuration changes at the current sim time (Tenant.add_burst)."""
        return self.tenant.add_burst(
            kind,
            count,
            self.now_us(),
            spread_seconds=spread_seconds,
            actor=actor,
            delay_seconds=delay_seconds,
        )

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
            self._tokens[token] = _Token(AUDIENCES[audience], client_id, time.time() + TOKEN_LIFETIME_SECONDS)
        return token

    # ------------------------------------------------------------------------------------------
    def handle(self, method: str, target: str, headers: Mapping[str, str], body: bytes) -> Response:
        parts = urlsplit(target)
        path = unquote(parts.path)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        segments = [s for s in path.split("/") if s]
        if segments and segments[0] == "_sim":
            return self._control(method, segments[1:], body)
        now_us = self.now_us()
        entry: dict[str, Any] = {
            "method": method,
            "path": path,
            "query": query,
            "status": 0,
            "sim_time": iso(now_us),
            "real_time": time.time(),
            "api": "other",
            "has_publisher_identifier": None,
            "authorized": False,
        }
        request = _Request(method, path, segments, query, headers, body, entry)
        try:
            response = self._route(request)
        except Exception:
            logger.exception("tenant simulator failed on %s %s", method, target)
            response = json_response(
                500, {"error": {"code": "InternalServerError", "message": "simulator bug"}}
            )
        entry["status"] = response.status
        with self._lock:
            self._log.append(entry)
        return response

    def _route(self, request: _Request) -> Response:
        s = request.segments
        lowered = [x.lower() for x in s]
        if lowered[:1] == ["graph"]:
            request.entry["api"] = "graph"
            return self._graph(request, lowered[1:])
        if lowered[:1] == ["manage"]:
            request.entry["api"] = "management"
            return self._management(request, s[1:])
        if lowered[:1] == ["devops"]:
            request.entry["api"] = "devops"
            response, accepted = self.devops.handle(
                request.method,
                request.path,
                s[1:],
                request.query,
                request.headers,
                request.body,
                base_url=self.base_url,
                now_us=self.now_us(),
            )
            request.entry["authorized"] = accepted
            return response
        if lowered[:1] == ["webhooks"]:
            request.entry["api"] = "webhook"
            return self._webhook(request, s[1:])
        if lowered == ["common", "discovery", "instance"]:
            request.entry.update(api="identity", authorized=True)
            return self._instance_discovery(request)
        if len(s) == 4 and lowered[1:] == ["oauth2", "v2.0", "token"]:
            request.entry["api"] = "identity"
            if request.method != "POST":
                return _aad_error(405, "invalid_request", 900561, "The endpoint only accepts POST requests.")
            return self._token(request, s[0])
        if len(s) == 4 and lowered[1:] == ["discovery", "v2.0", "keys"]:
            request.entry.update(api="identity", authorized=True)
            return json_response(200, self.signing_key.jwks())
        if len(s) == 4 and lowered[1:] == ["v2.0", ".well-known", "openid-configuration"]:
            request.entry.update(api="identity", authorized=True)
            return self._openid_configuration(s[0])
        return json_response(404, {"error": {"code": "NotFound", "message": f"No route for {request.path}"}})

    # ------------------------------------------------------------------------------------------
    # Control endpoints
    # ------------------------------------------------------------------------------------------
    def _control(self, method: str, rest: list[str], body: bytes) -> Response:
        route = "/".join(rest)
        getters: dict[str, Callable[[], Any]] = {
            "ground-truth": self.tenant.ground_truth,
            "requests": self.request_log,
            "config": lambda: {
                **self.config.to_json(),
                "base_url": self.base_url,
                "sim_now": iso(self.now_us()),
            },
            "health": lambda: {"status": "ok", "sim_now": iso(self.now_us())},
            "devops/runs": self.devops.runs,
            "devops/attempts": self.devops.attempts,
            "devops/reject": lambda: {"mode": self.devops.reject_mode},
            "bursts": self.tenant.bursts,
            "webhooks": self.webhooks.summary,
            "management/blobs": self.management_blobs,
            "management/content-faults": self.content_faults.summary,
        }
        posters: dict[str, Callable[[Any], Any]] = {
            "devops/reject": self._control_reject,
            "bursts": self._control_burst,
            "management/content-faults": self._control_content_fault,
            "management/listing-holds": self._control_listing_hold,
        }
        # Routes with a {name} segment: webhooks/{name}, webhooks/{name}/script, webhooks/{name}/reset.
        if len(rest) in (2, 3) and rest[0] == "webhooks" and valid_name(rest[1]):
            name = rest[1]
            getters[f"webhooks/{name}"] = functools.partial(self.webhooks.attempts, name)
            posters[f"webhooks/{name}/script"] = functools.partial(self.webhooks.script_document, name)
            posters[f"webhooks/{name}/reset"] = functools.partial(self.webhooks.reset_document, name)
        if method == "GET" and route in getters:
            return json_response(200, getters[route]())
        if method == "POST" and route in posters:
            try:
                document = json.loads(body.decode("utf-8")) if body.strip() else None
            except (UnicodeDecodeError, ValueError):
                return json_response(400, {"error": "the body must be a JSON object"})
            if not isinstance(document, dict):
                return json_response(400, {"error": "the body must be a JSON object"})
            try:
                return json_response(200, posters[route](document))
            except ValueError as exc:
                return json_response(400, {"error": str(exc)})
        if route in getters or route in posters:
            return json_response(405, {"error": f"{method} is not supported on /_sim/{route}"})
        return json_response(404, {"error": "unknown control endpoint"})

    def _control_reject(self, document: dict[str, Any]) -> dict[str, Any]:
        if set(document) != {"mode"}:
            raise ValueError('the body must be {"mode": "signin" | "unauthorized" | "forbidden" | null}')
        self.devops.reject(document["mode"])
        return {"mode": self.devops.reject_mode}

    def _control_burst(self, document: dict[str, Any]) -> dict[str, Any]:
        allowed = {"kind", "count", "spread_seconds", "actor", "delay_seconds"}
        unknown = set(document) - allowed
        if unknown:
            raise ValueError(f"unknown field(s): {', '.join(sorted(unknown))}")
        for required in ("kind", "count"):
            if required not in document:
                raise ValueError(f"{required} is required")
        return self.add_burst(
            document["kind"],
            document["count"],
            spread_seconds=document.get("spread_seconds", 60.0),
            actor=document.get("actor"),
            delay_seconds=document.get("delay_seconds", 0.0),
        )

    def management_blobs(self) -> list[dict[str, Any]]:
        """Every published content blob, oldest first: content type, id, times and its records' truth ids."""
        now_us = self.now_us()
        records = self.tenant.records
        blobs = sorted(self.tenant.blob_by_id.values(), key=lambda b: (b.created_us, b.content_id))
        return [
            {
                "content_type": blob.content_type,
                "content_id": blob.content_id,
                "content_created": content_time(blob.created_us),
                "content_expiration": content_time(blob.expires_us),
                "ids": [records[i].truth_id for i in blob.records if not records[i].malformed],
                "records": len(blob.records),
            }
            for blob in blobs
            if blob.created_us <= now_us
        ]

    def _known_blob(self, document: dict[str, Any]) -> str:
        content_id = document.get("content_id")
        if not isinstance(content_id, str) or content_id not in self.tenant.blob_by_id:
            raise ValueError("content_id must name a content blob of this tenant")
        return content_id

    def _control_content_fault(self, document: dict[str, Any]) -> dict[str, Any]:
        unknown = set(document) - {"content_id", "kind", "times"}
        if unknown or "kind" not in document:
            raise ValueError('the body must be {"content_id", "kind": "not_found" | "invalid_id" | '
                             '"not_json" | null, "times"?: n}')  # fmt: skip
        self.content_faults.script(self._known_blob(document), document["kind"], document.get("times"))
        return self.content_faults.summary()

    def _control_listing_hold(self, document: dict[str, Any]) -> dict[str, Any]:
        if set(document) != {"content_id", "held"} or not isinstance(document["held"], bool):
            raise ValueError('the body must be {"content_id", "held": true | false}')
        self.content_faults.hold(self._known_blob(document), document["held"])
        return self.content_faults.summary()

    # ------------------------------------------------------------------------------------------
    # Webhook sink (Teams Workflows, Slack incoming and generic JSON webhooks)
    # ------------------------------------------------------------------------------------------
    def _webhook(self, request: _Request, rest: list[str]) -> Response:
        if len(rest) != 1 or not valid_name(rest[0]):
            message = f"No route for {request.path}"
            return json_response(404, {"error": {"code": "NotFound", "message": message}})
        if request.method != "POST":
            return json_response(
                405,
                {"error": {"code": "MethodNotAllowed", "message": "A webhook only accepts POST."}},
                Allow="POST",
            )
        request.entry["authorized"] = True  # webhook URLs carry their secret in the URL
        return self.webhooks.deliver(rest[0], request.headers, request.body, iso(self.now_us()))

    # ------------------------------------------------------------------------------------------
    # Identity: token endpoint and the discovery documents msal reads
    # ------------------------------------------------------------------------------------------
    def _authority(self, tenant: str) -> str:
        return f"{self.base_url}/{tenant}"

    def _openid_configuration(self, tenant: str) -> Response:
        if tenant.lower() not in (self.config.tenant_id, "organizations", "common"):
            return _aad_error(400, "invalid_tenant", 90002, f"Tenant '{tenant}' not found.")
        tenant = self.config.tenant_id
        authority = self._authority(tenant)
        return json_response(
            200,
            {
                "token_endpoint": f"{authority}/oauth2/v2.0/token",
                "token_endpoint_auth_methods_supported": [
                    "client_secret_post",
                    "private_key_jwt",
                    "client_secret_basic",
                ],
                "jwks_uri": f"{self.base_url}/{tenant}/discovery/v2.0/keys",
                "response_modes_supported": ["query", "fragment", "form_post"],
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                "scopes_supported": ["openid", "profile", "email", "offline_access"],
                "issuer": f"{authority}/v2.0",
                "request_uri_parameter_supported": False,
                "userinfo_endpoint": f"{self.base_url}/oidc/userinfo",
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

    def _instance_discovery(self, request: _Request) -> Response:
        endpoint = request.param("authorization_endpoint") or ""
        tenant = self.config.tenant_id
        parsed = [x for x in urlsplit(endpoint).path.split("/") if x]
        if parsed:
            tenant = parsed[0]
        host = urlsplit(self.base_url).netloc
        return json_response(
            200,
            {
                "tenant_discovery_endpoint": (
                    f"{self._authority(tenant)}/v2.0/.well-known/openid-configuration"
                ),
                "api-version": "1.1",
                "metadata": [{"preferred_network": host, "preferred_cache": host, "aliases": [host]}],
            },
        )

    def _token(self, request: _Request, tenant: str) -> Response:
        if tenant.lower() not in (self.config.tenant_id, "organizations"):
            return _aad_error(
                400,
                "invalid_request",
                90002,
                f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are "
                "signing into the correct cloud.",
            )
        content_type = (request.header("Content-Type") or "").split(";")[0].strip().lower()
        if content_type != "application/x-www-form-urlencoded":
            return _aad_error(
                400,
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'grant_type'.",
            )
        form = dict(parse_qsl(request.body.decode("utf-8", "replace"), keep_blank_values=True))
        for required in ("grant_type", "client_id"):
            if not form.get(required):
                return _aad_error(
                    400,
                    "invalid_request",
                    900144,
                    f"The request body must contain the following parameter: '{required}'.",
                )
        if form["grant_type"] != "client_credentials":
            return _aad_error(
                400,
                "unsupported_grant_type",
                70003,
                f"The app requested an unsupported grant type '{form['grant_type']}'.",
            )
        has_assertion = bool(form.get("client_assertion")) and bool(form.get("client_assertion_type"))
        if not form.get("client_secret") and not has_assertion:
            return _aad_error(
                401,
                "invalid_client",
                7000216,
                "'client_assertion', 'client_secret' or 'request' is required for the 'client_credentials' "
                "grant type.",
            )
        scope = form.get("scope", "").strip()
        if not scope:
            return _aad_error(
                400,
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'scope'.",
            )
        scopes = scope.split()
        resources = {s.rsplit("/.default", 1)[0] for s in scopes if s.endswith("/.default")}
        if len(scopes) != 1 or len(resources) != 1:
            return _aad_error(
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
                authority=self.base_url,
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
            return _aad_error(
                400,
                "invalid_resource",
                500011,
                f"The resource principal named {resource} was not found in the tenant named "
                f"{self.config.tenant_id}.",
            )
        token = secrets.token_urlsafe(48)
        with self._lock:
            self._tokens[token] = _Token(
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

    def _check_token(self, request: _Request, audience: str) -> str | None:
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

    def _bearer_identity(self, value: str, audience: str = "devops") -> str | None:
        """The client id of a valid, unexpired simulator token for `audience`, else None."""
        with self._lock:
            token = self._tokens.get(value.strip())
        if token is None or token.expires_at < time.time() or token.audience != audience:
            return None
        return token.client_id

    def _next_fault(self) -> Fault | None:
        with self._lock:
            self._api_calls += 1
            counter = self._api_calls
        return self._faults.for_call(counter)

    # ------------------------------------------------------------------------------------------
    # Microsoft Graph
    # ------------------------------------------------------------------------------------------
    def _graph_error(
        self, request: _Request, status: int, code: str, message: str, **headers: str
    ) -> Response:
        client_request_id = request.header("client-request-id") or str(uuid.uuid4())
        document = {
            "error": {
                "code": code,
                "message": message,
                "innerError": {
                    "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S"),
                    "request-id": str(uuid.uuid4()),
                    "client-request-id": client_request_id,
                },
            }
        }
        return json_response(status, document, GRAPH_JSON_TYPE, **headers)

    def _graph(self, request: _Request, lowered: list[str]) -> Response:
        if lowered[:1] != ["v1.0"]:
            return self._graph_error(request, 400, "BadRequest", f"Invalid version: {'/'.join(lowered[:1])}")
        resource = "/".join(lowered[1:])
        handler: Callable[[_Request], Response] | None
        if resource in GRAPH_LISTS:
            spec = GRAPH_LISTS[resource]
            method = "GET"
            handler = functools.partial(self._graph_list, spec=spec)
        elif resource == "directoryobjects/getbyids":
            method = "POST"
            handler = self._get_by_ids
        else:
            return self._graph_error(
                request,
                400,
                "BadRequest",
                f"Resource not found for the segment '{lowered[-1] if lowered else ''}'.",
            )
        if request.method != method:
            return self._graph_error(
                request, 405, "Request_BadRequest", "Specified HTTP method is not allowed."
            )
        reason = self._check_token(request, "graph")
        if reason is not None:
            return self._graph_error(
                request,
                401,
                "InvalidAuthenticationToken",
                reason,
                WWW_Authenticate='Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/'
                'oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000"',
            )
        request.entry["authorized"] = True
        fault = self._next_fault()
        if fault is not None:
            return self._graph_fault(request, fault)
        response = handler(request)
        client_request_id = request.header("client-request-id")
        response.headers.append(("request-id", str(uuid.uuid4())))
        if client_request_id:
            response.headers.append(("client-request-id", client_request_id))
        return response

    def _graph_fault(self, request: _Request, fault: Fault) -> Response:
        if fault.kind == "throttle":
            headers = {} if fault.retry_after is None else {"Retry_After": str(fault.retry_after)}
            return self._graph_error(
                request,
                429,
                "TooManyRequests",
                "Too many requests from Identifier under tenant. Please retry after some time.",
                **headers,
            )
        code = {500: "generalException", 503: "serviceNotAvailable", 504: "timeout"}[fault.status]
        message = {
            500: "An unspecified error has occurred.",
            503: "The service is not available. Try the request again after a delay.",
            504: "The operation timed out before it could be completed.",
        }[fault.status]
        return self._graph_error(request, fault.status, code, message)

    def _graph_list(self, request: _Request, spec: GraphList) -> Response:
        skiptoken = request.param("$skiptoken")
        try:
            if skiptoken is not None:
                state = self._page_tokens.decode(skiptoken)
                if state.get("api") != spec.source:
                    raise ODataError("Invalid skip token.")
                lo, hi, top, offset, snapshot, revision = (
                    state["lo"],
                    state["hi"],
                    int(state["top"]),
                    int(state["offset"]),
                    int(state["snap"]),
                    int(state["rev"]),
                )
            else:
                time_range = parse_time_filter(request.param("$filter"), spec.time_field)
                lo, hi = time_range.lo, time_range.hi
                top = parse_top(request.param("$top"), spec.default_top, spec.max_top)
                # A listing is a snapshot of (sim time, tenant revision): bursts added later are not in it.
                offset, revision, snapshot = 0, self.tenant.revision, self.now_us()
        except (ODataError, KeyError, TypeError, ValueError) as exc:
            message = str(exc) if isinstance(exc, ODataError) else "Invalid skip token."
            return self._graph_error(request, 400, "BadRequest", message)
        records = self.tenant.graph_visible(spec.source, lo, hi, snapshot, revision)
        listing_key = f"{spec.source}:{lo}:{hi}:{snapshot}:{top}"
        duplicate = self._faults.duplicate_boundary(listing_key, offset)
        start, end = page_bounds(len(records), offset, top, duplicate)
        ctx = self.tenant.render_context
        document: dict[str, Any] = {
            "@odata.context": f"{self.base_url}/graph/v1.0/$metadata#{spec.path}",
            "value": [render(r, ctx) for r in records[start:end]],
        }
        if end < len(records):
            token = self._page_tokens.encode(
                {
                    "api": spec.source,
                    "lo": lo,
                    "hi": hi,
                    "top": top,
                    "offset": end,
                    "snap": snapshot,
                    "rev": revision,
                }
            )
            kept = [(k, v) for k, v in request.query.items() if k.lower() != "$skiptoken"]
            query = "&".join(f"{_q(k)}={_q(v)}" for k, v in kept)
            query = f"{query}&$skiptoken={token}" if query else f"$skiptoken={token}"
            document["@odata.nextLink"] = f"{self.base_url}/graph/v1.0/{spec.path}?{query}"
        return json_response(200, document, GRAPH_JSON_TYPE)

    def _get_by_ids(self, request: _Request) -> Response:
        try:
            document = json.loads(request.body.decode("utf-8") or "null")
        except (UnicodeDecodeError, ValueError):
            return self._graph_error(request, 400, "BadRequest", "Unable to read JSON request payload.")
        ids = document.get("ids") if isinstance(document, dict) else None
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            return self._graph_error(
                request, 400, "Request_BadRequest", "Invalid request: 'ids' must be an array of strings."
            )
        if len(ids) > MAX_GET_BY_IDS:
            return self._graph_error(
                request,
                400,
                "Request_BadRequest",
                f"Too many ids specified: {len(ids)}. The maximum is {MAX_GET_BY_IDS}.",
            )
        raw_types = document.get("types") or []
        if not isinstance(raw_types, list) or not all(isinstance(t, str) for t in raw_types):
            return self._graph_error(
                request, 400, "Request_BadRequest", "Invalid request: 'types' must be an array of strings."
            )
        types = {t.lower().removeprefix("#").removeprefix("microsoft.graph.") for t in raw_types}
        unknown = types - GET_BY_IDS_TYPES
        if unknown:
            return self._graph_error(
                request, 400, "Request_BadRequest", f"Invalid object type(s): {', '.join(sorted(unknown))}."
            )
        values: list[dict[str, Any]] = []
        seen: set[str] = set()
        for object_id in ids:
            obj = self.tenant.directory.get(object_id)
            if obj is None or obj.id in seen:
                continue
            if types and graph_type_name(obj).lower() not in types:
                continue
            seen.add(obj.id)
            values.append(to_graph(obj))
        return json_response(
            200,
            {"@odata.context": f"{self.base_url}/graph/v1.0/$metadata#directoryObjects", "value": values},
            GRAPH_JSON_TYPE,
        )

    # ------------------------------------------------------------------------------------------
    # Office 365 Management Activity API
    # ------------------------------------------------------------------------------------------
    def _management(self, request: _Request, s: list[str]) -> Response:
        # s: api / v1.0 / {tenant} / activity / feed / ...
        lowered = [x.lower() for x in s]
        publisher = request.param("PublisherIdentifier")
        request.entry["publisher_identifier"] = publisher
        request.entry["has_publisher_identifier"] = (
            bool(publisher) and publisher.lower() == self.config.tenant_id
        )
        if len(s) < 6 or lowered[:2] != ["api", "v1.0"] or lowered[3:5] != ["activity", "feed"]:
            return _af(404, "AF20050", f"The specified content ({request.path}) does not exist.")
        tenant, rest = s[2], lowered[5:]
        operations: dict[tuple[str, ...], tuple[str, Callable[[_Request], Response]]] = {
            ("subscriptions", "start"): ("POST", self._subscription_start),
            ("subscriptions", "stop"): ("POST", self._subscription_stop),
            ("subscriptions", "list"): ("GET", self._subscription_list),
            ("subscriptions", "content"): ("GET", self._content_list),
        }
        operation = operations.get(tuple(rest))
        if operation is None and len(rest) == 2 and rest[0] == "audit":
            content_id = s[6]
            operation = ("GET", lambda r: self._content_blob(r, content_id))
        if operation is None:
            return _af(404, "AF20050", f"The specified content ({request.path}) does not exist.")
        method, handler = operation
        if request.method != method:
            return json_response(
                405, {"Message": f"The requested resource does not support http method '{request.method}'."}
            )
        reason = self._check_token(request, "manage")
        if reason is not None:
            return json_response(
                401,
                {
                    "error": {
                        "code": "InvalidAuthenticationToken",
                        "message": f"Authorization has been denied for this request. {reason}",
                    }
                },
                WWW_Authenticate='Bearer realm="manage.office.com"',
            )  # fmt: skip
        request.entry["authorized"] = True
        try:
            uuid.UUID(tenant)
        except ValueError:
            return _af(400, "AF20013", f"The tenant ID passed in the URL ({tenant}) is not a valid GUID.")
        if tenant.lower() != self.config.tenant_id:
            return _af(
                400,
                "AF20010",
                f"The tenant ID passed in the URL ({tenant}) does not match the tenant ID passed in the "
                f"access token ({self.config.tenant_id}).",
            )
        fault = self._next_fault()
        if fault is not None:
            if fault.kind == "throttle":
                return _af(
                    403, "AF429", f"Too many requests. Method={request.method}, PublisherId={publisher or ''}"
                )
            if fault.status == 500:
                return _af(500, "AF50000", "An internal error occurred. Retry the request.")
            code = "ServiceUnavailable" if fault.status == 503 else "GatewayTimeout"
            return _af(fault.status, code, "The service is temporarily unavailable. Retry the request.")
        return handler(request)

    def _content_type_param(self, request: _Request) -> tuple[str | None, Response | None]:
        value = request.param("contentType")
        if not value:
            return None, _af(400, "AF20001", "Missing parameter: contentType.")
        for content_type in CONTENT_TYPES:
            if content_type.lower() == value.lower():
                return content_type, None
        return None, _af(400, "AF20020", "The specified content type is not valid.")

    def _subscription_start(self, request: _Request) -> Response:
        content_type, error = self._content_type_param(request)
        if error is not None or content_type is None:
            return error or _af(400, "AF20020", "The specified content type is not valid.")
        webhook: Any = None
        if request.body.strip():
            try:
                document = json.loads(request.body)
            except ValueError:
                return _af(400, "AF20002", "Invalid parameter type: webhook. Expected type: object")
            webhook = document.get("webhook") if isinstance(document, dict) else None
        with self._lock:
            current = self._subscriptions.get(content_type)
            if current is not None and current["status"] == "enabled" and current["webhook"] == webhook:
                return _af(
                    400,
                    "AF20024",
                    "The subscription is already enabled and the input parameters are the same.",
                )
            subscription = {"contentType": content_type, "status": "enabled", "webhook": webhook}
            self._subscriptions[content_type] = subscription
        return json_response(200, dict(subscription))

    def _subscription_stop(self, request: _Request) -> Response:
        content_type, error = self._content_type_param(request)
        if error is not None or content_type is None:
            return error or _af(400, "AF20020", "The specified content type is not valid.")
        with self._lock:
            current = self._subscriptions.get(content_type)
            if current is None or current["status"] != "enabled":
                return _af(400, "AF20022", "No subscription found for the specified content type")
            current["status"] = "disabled"
        return Response(200)

    def _subscription_list(self, request: _Request) -> Response:
        with self._lock:
            listing = [dict(s) for s in self._subscriptions.values()]
        return json_response(200, listing)

    def _content_list(self, request: _Request) -> Response:
        content_type, error = self._content_type_param(request)
        if error is not None or content_type is None:
            return error or _af(400, "AF20020", "The specified content type is not valid.")
        with self._lock:
            subscription = self._subscriptions.get(content_type)
            enabled = subscription is not None and subscription["status"] == "enabled"
        if not enabled:
            return _af(400, "AF20022", "No subscription found for the specified content type")
        next_page = request.param("nextPage")
        now_us = self.now_us()
        if next_page is not None:
            try:
                state = self._page_tokens.decode(next_page)
                if state.get("ct") != content_type:
                    raise ODataError("content type mismatch")
                lo, hi, offset, snapshot = (
                    int(state["lo"]),
                    int(state["hi"]),
                    int(state["offset"]),
                    int(state["snap"]),
                )
            except (ODataError, KeyError, TypeError, ValueError):
                return _af(400, "AF20031", f"Invalid nextPage Input: {next_page}.")
        else:
            start_text, end_text = request.param("startTime"), request.param("endTime")
            if (start_text is None) != (end_text is None):
                return _af(400, "AF20030", AF20030)
            if start_text is None or end_text is None:
                lo, hi = now_us - MANAGEMENT_MAX_WINDOW_US, now_us
            else:
                try:
                    lo, _ = parse_time(start_text, require_zone=False)
                    hi, _ = parse_time(end_text, require_zone=False)
                except TimeParseError:
                    return _af(400, "AF20030", AF20030)
                if hi < lo or hi - lo > MANAGEMENT_MAX_WINDOW_US or lo < now_us - MANAGEMENT_MAX_LOOKBACK_US:
                    return _af(400, "AF20030", AF20030)
            offset, snapshot = 0, now_us
        blobs = self.tenant.blobs_created(content_type, lo, hi, snapshot)
        blobs = [b for b in blobs if self.content_faults.listed(b.content_id)]  # late-listed ones held back
        listing_key = f"{content_type}:{lo}:{hi}:{snapshot}"
        duplicate = self._faults.duplicate_boundary(listing_key, offset)
        start, end = page_bounds(len(blobs), offset, MANAGEMENT_PAGE_SIZE, duplicate)
        base = f"{self.base_url}/manage/api/v1.0/{self.config.tenant_id}/activity/feed"
        listing = [
            {
                "contentType": blob.content_type,
                "contentId": blob.content_id,
                "contentUri": f"{base}/audit/{blob.content_id}",
                "contentCreated": content_time(blob.created_us),
                "contentExpiration": content_time(blob.expires_us),
            }
            for blob in blobs[start:end]
        ]
        response = json_response(200, listing)
        if end < len(blobs):
            token = self._page_tokens.encode(
                {"ct": content_type, "lo": lo, "hi": hi, "offset": end, "snap": snapshot}
            )
            # Like the real service, the NextPageUri carries no PublisherIdentifier: callers add it.
            next_uri = (
                f"{base}/subscriptions/content?contentType={content_type}"
                f"&startTime={_q(content_time(lo))}&endTime={_q(content_time(hi))}&nextPage={token}"
            )
            response.headers.append(("NextPageUri", next_uri))
        return response

    def _content_blob(self, request: _Request, content_id: str) -> Response:
        blob = self.tenant.blob_by_id.get(content_id)
        now_us = self.now_us()
        if blob is None or blob.created_us > now_us:
            return _af(400, "AF20050", f"The specified content ({content_id}) does not exist.")
        if blob.expires_us < now_us:
            return _af(
                400,
                "AF20051",
                f"Content requested with the key {content_id} has already expired. Content older than 7 days "
                "cannot be retrieved.",
            )
        fault = self.content_faults.take(content_id)
        if fault == "not_found":
            return _af(404, "AF20050", f"The specified content ({content_id}) does not exist.")
        if fault == "invalid_id":
            return _af(400, "AF20052", f"Content ID {content_id} in the URL is invalid.")
        if fault == "not_json":
            page = b"<html><body><h1>Service Unavailable</h1></body></html>"
            return Response(200, page, [("Content-Type", "text/html; charset=utf-8")])
        ctx = self.tenant.render_context
        records = self.tenant.records
        return json_response(200, [render(records[i], ctx) for i in blob.records])


def _q(value: str) -> str:
    return quote(value, safe="$:,'()")


def _af(status: int, code: str, message: str) -> Response:
    return json_response(status, {"error": {"code": code, "message": message}})


def _aad_error(status: int, error: str, code: int, description: str) -> Response:
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
