"""Request handling for the tenant simulator, independent of sockets: the composition of its APIs.

`SimulatorApp.handle(method, target, headers, body)` returns a `Response`. It logs every call but the
control ones, then hands it to the router mounted at the path's first segment; one module each:

| Path | Router | Module |
|---|---|---|
| `/graph/...` | `GraphApi`: audit logs, getByIds; apps, principals, `$batch` (`AppsApi`) | `graph.py` |
| `/manage/...` | `ManagementApi`: Office 365 Management Activity API | `management.py` |
| `/devops/...` | `DevOpsService`: Azure DevOps "Runs - Run Pipeline" | `devops.py` |
| `/webhooks/{name}` | `WebhookSink`: the alert notifier's webhooks | `webhooks.py` |
| `/v1/workspaces/{id}/query` | `LogAnalyticsApi`: Log Analytics queries | `log_analytics.py` |
| `/_sim/...` | `ControlApi`: control endpoints, not logged (`apps/...`: `AppsApi`) | `control.py` |
| anything else | `IdentityApi`: Entra token endpoint, JWKS, discovery; else 404 | `identity.py` |

Graph and Management share the seeded fault plan (one call counter) and the page-token secret.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from devtools.simulator.apps_routes import AppsApi
from devtools.simulator.config import SimulatorConfig
from devtools.simulator.control import ControlApi, RequestLog
from devtools.simulator.devops import DevOpsService
from devtools.simulator.faults import ContentFaults, FaultPlan
from devtools.simulator.generator import Tenant
from devtools.simulator.graph import GraphApi
from devtools.simulator.identity import GRAPH_AUDIENCE, IdentityApi
from devtools.simulator.log_analytics import LogAnalyticsApi
from devtools.simulator.management import ManagementApi
from devtools.simulator.odata import PageTokens
from devtools.simulator.responses import Response, json_response
from devtools.simulator.routing import ApiRequest, Router, no_route
from devtools.simulator.signing import ApiRegistration, TokenSigningKey
from devtools.simulator.timefmt import iso, to_us
from devtools.simulator.webhooks import WebhookSink

logger = logging.getLogger("devtools.simulator")


class SimulatorApp:
    def __init__(self, config: SimulatorConfig, tenant: Tenant) -> None:
        self.config = config
        self.tenant = tenant
        self.base_url = "http://127.0.0.1"  # the server sets its real origin once it listens
        self._clock = config.clock()
        page_tokens = PageTokens(f"{config.seed}:{config.tenant_id}:{secrets.token_hex(8)}")
        faults = FaultPlan(config)
        self.identity = IdentityApi(config)
        self.graph = GraphApi(tenant, self.identity, faults, page_tokens)
        # Applications and service principals: Graph routes behind GraphApi, controls behind ControlApi.
        self.apps = AppsApi(config, tenant, self.identity, faults, page_tokens, lambda: self.now_us())
        self.graph.apps = self.apps
        self.apps.dispatch = self.graph.route
        self.management = ManagementApi(config, tenant, self.identity, faults, page_tokens)
        self.devops = DevOpsService(config, self.identity.bearer_identity)
        self.webhooks = WebhookSink()
        self._request_log = RequestLog()
        # The Log Analytics query API (issue 19): /v1/workspaces/{id}/query and /_sim/loganalytics/...
        self.log_analytics = LogAnalyticsApi(config, self.identity, lambda: self.now_us())
        self.control = ControlApi(
            config=config,
            tenant=tenant,
            now_us=lambda: self.now_us(),  # looked up per call: tests may replace app.now_us
            request_log=self._request_log,
            devops=self.devops,
            webhooks=self.webhooks,
            management=self.management,
            apps=self.apps,
        )
        # First path segment (lower case) -> (the request log's "api", its router).
        self._mounts: dict[str, tuple[str, Router]] = {
            "graph": ("graph", self.graph),
            "manage": ("management", self.management),
            "devops": ("devops", self.devops),
            "webhooks": ("webhook", self.webhooks),
            "v1": ("loganalytics", self.log_analytics),
        }

    # ------------------------------------------------------------------------------------------
    # The Python API of TenantSimulator
    # ------------------------------------------------------------------------------------------
    def now_us(self) -> int:
        return to_us(self._clock.now())

    def now(self) -> dt.datetime:
        return self._clock.now()

    @property
    def signing_key(self) -> TokenSigningKey:
        return self.identity.signing_key

    @property
    def content_faults(self) -> ContentFaults:
        return self.management.content_faults

    def request_log(self) -> list[dict[str, Any]]:
        return self._request_log.entries()

    def management_blobs(self) -> list[dict[str, Any]]:
        """Every published content blob, oldest first: content type, id, times and its records' truth ids."""
        return self.management.blobs(self.now_us())

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
        return self.control.add_burst(
            kind, count, spread_seconds=spread_seconds, actor=actor, delay_seconds=delay_seconds
        )

    def register_api(self, api: ApiRegistration, app_roles: Mapping[str, list[str]] | None = None) -> None:
        """Register an API whose client-credentials tokens are signed JWTs (IdentityApi.register_api)."""
        self.identity.register_api(api, app_roles)

    def issue_token(self, audience: str = GRAPH_AUDIENCE, client_id: str = "simulator") -> str:
        """Mint a token directly (for tests that do not exercise the token endpoint)."""
        return self.identity.issue_token(audience, client_id)

    # ------------------------------------------------------------------------------------------
    def handle(self, method: str, target: str, headers: Mapping[str, str], body: bytes) -> Response:
        parts = urlsplit(target)
        path = unquote(parts.path)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        segments = [s for s in path.split("/") if s]
        if segments[:2] == ["_sim", "loganalytics"]:
            return self.log_analytics.control(method, segments[2:], query, body)
        if segments and segments[0] == "_sim":
            return self.control.route(method, segments[1:], body, self.base_url)
        entry: dict[str, Any] = {
            "method": method,
            "path": path,
            "query": query,
            "status": 0,
            "sim_time": iso(self.now_us()),
            "real_time": time.time(),
            "api": "other",
            "has_publisher_identifier": None,
            "authorized": False,
        }
        request = ApiRequest(method, path, segments, query, headers, body, entry, self.base_url, self.now_us)
        try:
            response = self._route(request)
        except Exception:
            logger.exception("tenant simulator failed on %s %s", method, target)
            response = json_response(
                500, {"error": {"code": "InternalServerError", "message": "simulator bug"}}
            )
        entry["status"] = response.status
        self._request_log.append(entry)
        return response

    def _route(self, request: ApiRequest) -> Response:
        segments = request.segments
        mounted = self._mounts.get(segments[0].lower()) if segments else None
        if mounted is not None:
            api, router = mounted
            request.entry["api"] = api
            return router.route(request, segments[1:])
        response = self.identity.route(request, segments)
        return response if response is not None else no_route(request.path)
