"""Every API resource, hence every route, in one list; and the OpenAPI document built from them.

query_api registers one Functions HTTP trigger per route of these resources, and shared.app.runtime
builds one instance of each; a new resource is added here, a new route only to its resource.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from shared.api.alerts_api import AlertsApi
from shared.api.audit import AuditApi
from shared.api.datasets_api import DatasetsApi
from shared.api.events_api import EventsApi
from shared.api.governance_api import GovernanceApi
from shared.api.history_api import ObjectsApi
from shared.api.openapi import openapi_document
from shared.api.operations_api import OperationsApi
from shared.api.queues_api import QueuesApi
from shared.api.routing import Resource, Route
from shared.api.rules_api import RulesApi
from shared.api.searches_api import SearchesApi
from shared.api.status_api import StatusApi

API_TITLE = "AOC Functions API"
API_VERSION = "1.0.0"

API_RESOURCES: tuple[type[Resource], ...] = (
    OperationsApi,
    EventsApi,
    AlertsApi,
    AuditApi,
    RulesApi,
    StatusApi,
    QueuesApi,
    SearchesApi,
    ObjectsApi,
    GovernanceApi,
    DatasetsApi,
)


def resource_routes() -> list[tuple[type[Resource], Route]]:
    """Each route with the resource class that serves it."""
    return [(resource, route) for resource in API_RESOURCES for route in resource.routes()]


def api_routes() -> list[Route]:
    return [route for _, route in resource_routes()]


@cache
def openapi_json() -> dict[str, Any]:
    return openapi_document(api_routes(), title=API_TITLE, version=API_VERSION)
