"""Every API route's documentation in one list, and the OpenAPI document built from it."""

from __future__ import annotations

from functools import cache
from typing import Any

from shared.alerts.lifecycle import AlertUpdate
from shared.api.alerts_api import AlertQuery
from shared.api.audit import AuditPage, AuditQuery
from shared.api.auth import Role
from shared.api.events_api import EVENT_ACTION_ROUTES
from shared.api.events_query import REPEATABLE, EventQuery
from shared.api.health import HealthReport
from shared.api.models import AlertPage, AlertSummary, AlertView, EventPage, EventView
from shared.api.openapi import PathParam, RouteDoc, openapi_document
from shared.api.rules_api import RULE_ROUTES
from shared.api.status_api import STATUS_ROUTES

API_TITLE = "AOC Functions API"
API_VERSION = "1.0.0"

EVENT_ID = PathParam("id", "event id")
ALERT_ID = PathParam("id", "alert id")

CORE_ROUTES: list[RouteDoc] = [
    RouteDoc(
        "GET",
        "health",
        "health",
        "Liveness and dependency health",
        None,
        "operations",
        response=HealthReport,
        extra_statuses=(503,),
    ),
    RouteDoc(
        "GET",
        "openapi.json",
        "openapi",
        "This OpenAPI document",
        None,
        "operations",
        content={"application/json": {"type": "object"}},
    ),
    RouteDoc(
        "GET",
        "events",
        "list_events",
        "Search events, newest first",
        Role.READER,
        "events",
        query=EventQuery,
        response=EventPage,
        repeatable=REPEATABLE,
    ),
    RouteDoc(
        "GET",
        "events/{id}",
        "get_event",
        "One event",
        Role.READER,
        "events",
        response=EventView,
        path_params=(EVENT_ID,),
    ),
    RouteDoc(
        "GET",
        "alerts",
        "list_alerts",
        "Search alerts, most recent first",
        Role.READER,
        "alerts",
        query=AlertQuery,
        response=AlertPage,
        repeatable=("status", "severity"),
    ),
    RouteDoc(
        "GET",
        "alerts/summary",
        "alerts_summary",
        "Open alerts by severity",
        Role.READER,
        "alerts",
        response=AlertSummary,
    ),
    RouteDoc(
        "GET",
        "alerts/{id}",
        "get_alert",
        "One alert",
        Role.READER,
        "alerts",
        response=AlertView,
        path_params=(ALERT_ID,),
    ),
    RouteDoc(
        "PATCH",
        "alerts/{id}",
        "patch_alert",
        "Change an alert's status or classification, or comment",
        Role.ANALYST,
        "alerts",
        body=AlertUpdate,
        response=AlertView,
        path_params=(ALERT_ID,),
        description=(
            "With an Idempotency-Key header (at most 100 characters) a retried request changes the alert "
            "once: the replay answers 200 with the alert as it is, adding no second comment or history "
            "entry. Recorded in the audit log."
        ),
    ),
    RouteDoc(
        "GET",
        "audit",
        "list_audit",
        "Who changed what through the API",
        Role.ADMIN,
        "operations",
        query=AuditQuery,
        response=AuditPage,
    ),
]


def api_routes() -> list[RouteDoc]:
    return [*CORE_ROUTES, *EVENT_ACTION_ROUTES, *RULE_ROUTES, *STATUS_ROUTES]


@cache
def openapi_json() -> dict[str, Any]:
    return openapi_document(api_routes(), title=API_TITLE, version=API_VERSION)
