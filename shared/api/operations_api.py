"""The public routes: GET /api/health (dependency health, for probes and monitors) and
GET /api/openapi.json (this API's OpenAPI document). Neither needs a caller's identity."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from shared.api.health import HealthReport
from shared.api.responses import ApiResponse
from shared.api.routing import Call, NoQuery, Reply, Resource, route


class OperationsApi(Resource):
    """`health` checks the dependencies now; `document` builds the OpenAPI document (shared.api.catalog,
    injected so this module does not import every route module it documents)."""

    def __init__(self, health: Callable[[], HealthReport], document: Callable[[], dict[str, Any]]) -> None:
        self._health = health
        self._document = document

    @route(
        "GET",
        "health",
        "health",
        role=None,
        summary="Liveness and dependency health",
        tag="operations",
        query=NoQuery,
        body=None,
        response=HealthReport,
        extra_statuses=(503,),
    )
    def health(self, call: Call[NoQuery, None]) -> Reply:
        report = self._health()
        return ApiResponse(
            report.http_status, report.model_dump_json(), headers={"Cache-Control": "no-store"}
        )

    @route(
        "GET",
        "openapi.json",
        "openapi",
        role=None,
        summary="This OpenAPI document",
        tag="operations",
        query=NoQuery,
        body=None,
        response=None,
        content={"application/json": {"type": "object"}},
    )
    def openapi(self, call: Call[NoQuery, None]) -> Reply:
        return ApiResponse(200, json.dumps(self._document()))
