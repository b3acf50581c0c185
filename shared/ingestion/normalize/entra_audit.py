"""Microsoft Graph `GET /v1.0/auditLogs/directoryAudits` (directoryAudit) -> canonical event fields.

Targets with no displayName but a userPrincipalName show the UPN as their display (the Target model has
no UPN field, and the UPN is the readable name); targets with only an object id keep display None for
the enrichment step. `initiatedBy.user` wins over `initiatedBy.app`; an `initiatedBy` with neither is a
system actor, a record without `initiatedBy` an unknown one.
"""

from __future__ import annotations

from typing import Any

from shared.ingestion.normalize._common import modified_properties, parse_timestamp, text
from shared.ingestion.normalize.mappings import Mappings

NAMESPACE = "entra_audit"
_RESULTS = {"success": "success", "failure": "failure", "timeout": "failure"}


def actor(initiated_by: Any) -> dict[str, Any]:
    if type(initiated_by) is not dict:
        return {"type": "unknown", "id": None, "upn": None, "display": None, "ip": None}
    user = initiated_by.get("user")
    if type(user) is not dict:
        user = {}
    ip = text(user.get("ipAddress"))
    user_id, upn, display = (
        text(user.get("id")),
        text(user.get("userPrincipalName")),
        text(user.get("displayName")),
    )
    if user_id or upn or display:
        return {"type": "user", "id": user_id, "upn": upn, "display": display, "ip": ip}
    app = initiated_by.get("app")
    if type(app) is dict:
        app_id = text(app.get("servicePrincipalId")) or text(app.get("appId"))
        app_name = text(app.get("displayName")) or text(app.get("servicePrincipalName"))
        if app_id or app_name:
            return {"type": "app", "id": app_id, "upn": None, "display": app_name, "ip": ip}
    return {"type": "system", "id": None, "upn": None, "display": None, "ip": ip}


def targets(resources: Any) -> list[dict[str, Any]]:
    if type(resources) is not list:
        return []
    return [
        {
            "type": text(resource.get("type") or resource.get("Type")),
            "id": text(resource.get("id")),
            "display": text(resource.get("displayName")) or text(resource.get("userPrincipalName")),
            "modified_properties": modified_properties(
                resource.get("modifiedProperties"), "displayName", "oldValue", "newValue"
            ),
        }
        for resource in resources
        if type(resource) is dict
    ]


def normalize(record: dict[str, Any], mappings: Mappings) -> tuple[str | None, dict[str, Any]]:
    get = record.get
    operation = text(get("activityDisplayName"))
    result = get("result")
    return text(get("id")), {
        "service": "Directory",
        "category": text(get("category")),
        "operation": operation,
        "operation_type": mappings.operation_type(operation or "", text(get("operationType"))),
        "result": _RESULTS.get(result.casefold(), "unknown") if type(result) is str else "unknown",
        "result_reason": text(get("resultReason")),
        "actor": actor(get("initiatedBy")),
        "targets": targets(get("targetResources")),
        "timestamp": parse_timestamp(get("activityDateTime")),
        "correlation_id": text(get("correlationId")),
    }
