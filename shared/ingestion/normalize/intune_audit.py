"""Microsoft Graph `GET /v1.0/deviceManagement/auditEvents` (Intune auditEvent) -> canonical event fields.

Operation is `activity`, else `activityType`, else `displayName`. An actor with a user id or UPN is a
user (Intune also names the portal app it acted through); with only application fields an app; an
actor object with no identity at all is the system, a missing actor unknown.
"""

from __future__ import annotations

from typing import Any

from shared.ingestion.normalize._common import modified_properties, parse_timestamp, text
from shared.ingestion.normalize.mappings import Mappings

NAMESPACE = "intune_audit"
_RESULTS = {
    "success": "success",
    "succeeded": "success",
    "failure": "failure",
    "failed": "failure",
    "fail": "failure",
    "error": "failure",
    "timeout": "failure",
}


def actor(value: Any) -> dict[str, Any]:
    if type(value) is not dict:
        return {"type": "unknown", "id": None, "upn": None, "display": None, "ip": None}
    get = value.get
    ip = text(get("ipAddress"))
    user_id, upn = text(get("userId")), text(get("userPrincipalName"))
    if user_id or upn:
        return {"type": "user", "id": user_id, "upn": upn, "display": None, "ip": ip}
    app_id = text(get("applicationId"))
    app_name = text(get("applicationDisplayName")) or text(get("servicePrincipalName"))
    if app_id or app_name:
        return {"type": "app", "id": app_id, "upn": None, "display": app_name, "ip": ip}
    return {"type": "system", "id": None, "upn": None, "display": None, "ip": ip}


def targets(resources: Any) -> list[dict[str, Any]]:
    if type(resources) is not list:
        return []
    return [
        {
            "type": text(resource.get("type")) or text(resource.get("auditResourceType")),
            "id": text(resource.get("resourceId")),
            "display": text(resource.get("displayName")),
            "modified_properties": modified_properties(
                resource.get("modifiedProperties"), "displayName", "oldValue", "newValue"
            ),
        }
        for resource in resources
        if type(resource) is dict
    ]


def normalize(record: dict[str, Any], mappings: Mappings) -> tuple[str | None, dict[str, Any]]:
    get = record.get
    operation = text(get("activity")) or text(get("activityType")) or text(get("displayName"))
    result = get("activityResult")
    return text(get("id")), {
        "service": "Intune",
        "category": text(get("category")) or text(get("componentName")),
        "operation": operation,
        "operation_type": mappings.operation_type(operation or "", text(get("activityOperationType"))),
        "result": _RESULTS.get(result.casefold(), "unknown") if type(result) is str else "unknown",
        "result_reason": None,
        "actor": actor(get("actor")),
        "targets": targets(get("resources")),
        "timestamp": parse_timestamp(get("activityDateTime")),
        "correlation_id": text(get("correlationId")),
    }
