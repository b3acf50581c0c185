"""The /_sim control endpoints and the request log they serve. No auth, and not logged themselves.

GET: `ground-truth`, `requests` (the request log), `config`, `health`, `bursts`, `devops/runs`,
`devops/attempts`, `devops/reject`, `webhooks`, `webhooks/{name}`, `management/blobs`,
`management/content-faults`. POST (a JSON object body): `bursts`, `devops/reject`,
`webhooks/{name}/script`, `webhooks/{name}/reset`, `management/content-faults`,
`management/listing-holds`. A body the endpoint rejects is a 400 with the reason. `apps/...` is answered
by `AppsApi.control` (applications and service principals, devtools/simulator/apps_routes.py).
"""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Callable
from typing import Any

from devtools.simulator.apps_routes import AppsApi
from devtools.simulator.config import SimulatorConfig
from devtools.simulator.devops import DevOpsService
from devtools.simulator.generator import Tenant
from devtools.simulator.management import ManagementApi
from devtools.simulator.responses import Response, json_response
from devtools.simulator.timefmt import iso
from devtools.simulator.webhooks import WebhookSink, valid_name


class RequestLog:
    """Every API and identity call (not /_sim), in arrival order: method, path, query, status, sim_time,
    api, authorized and API-specific fields. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[dict[str, Any]] = []

    def append(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self._entries.append(entry)

    def entries(self) -> list[dict[str, Any]]:
        """A copy of every entry, oldest first."""
        with self._lock:
            return [dict(entry, query=dict(entry["query"])) for entry in self._entries]


class ControlApi:
    """The /_sim router: reads and scripts the simulator's state for tests and tools."""

    def __init__(
        self,
        *,
        config: SimulatorConfig,
        tenant: Tenant,
        now_us: Callable[[], int],
        request_log: RequestLog,
        devops: DevOpsService,
        webhooks: WebhookSink,
        management: ManagementApi,
        apps: AppsApi | None = None,
    ) -> None:
        self._config = config
        self._tenant = tenant
        self._now_us = now_us
        self._request_log = request_log
        self._devops = devops
        self._webhooks = webhooks
        self._management = management
        self._apps = apps

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
        return self._tenant.add_burst(
            kind,
            count,
            self._now_us(),
            spread_seconds=spread_seconds,
            actor=actor,
            delay_seconds=delay_seconds,
        )

    def route(self, method: str, segments: list[str], body: bytes, base_url: str) -> Response:
        """Answer /_sim/{segments}."""
        route = "/".join(segments)
        if segments[:1] == ["apps"] and self._apps is not None:
            return self._apps.control(method, segments[1:], body)
        getters: dict[str, Callable[[], Any]] = {
            "ground-truth": self._tenant.ground_truth,
            "requests": self._request_log.entries,
            "config": lambda: {
                **self._config.to_json(),
                "base_url": base_url,
                "sim_now": iso(self._now_us()),
            },
            "health": lambda: {"status": "ok", "sim_now": iso(self._now_us())},
            "devops/runs": self._devops.runs,
            "devops/attempts": self._devops.attempts,
            "devops/reject": lambda: {"mode": self._devops.reject_mode},
            "bursts": self._tenant.bursts,
            "webhooks": self._webhooks.summary,
            "management/blobs": lambda: self._management.blobs(self._now_us()),
            "management/content-faults": self._management.content_faults.summary,
        }
        posters: dict[str, Callable[[Any], Any]] = {
            "devops/reject": self._reject_devops,
            "bursts": self._burst,
            "management/content-faults": self._management.content_fault_document,
            "management/listing-holds": self._management.listing_hold_document,
        }
        # Routes with a {name} segment: webhooks/{name}, webhooks/{name}/script, webhooks/{name}/reset.
        if len(segments) in (2, 3) and segments[0] == "webhooks" and valid_name(segments[1]):
            name = segments[1]
            getters[f"webhooks/{name}"] = functools.partial(self._webhooks.attempts, name)
            posters[f"webhooks/{name}/script"] = functools.partial(self._webhooks.script_document, name)
            posters[f"webhooks/{name}/reset"] = functools.partial(self._webhooks.reset_document, name)
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

    def _reject_devops(self, document: dict[str, Any]) -> dict[str, Any]:
        if set(document) != {"mode"}:
            raise ValueError('the body must be {"mode": "signin" | "unauthorized" | "forbidden" | null}')
        self._devops.reject(document["mode"])
        return {"mode": self._devops.reject_mode}

    def _burst(self, document: dict[str, Any]) -> dict[str, Any]:
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
