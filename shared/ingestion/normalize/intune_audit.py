"""Microsoft Graph `GET /v1.0/deviceManagement/auditEvents` (Intune auditEvent) -> canonical event fields.

Operation is `activity`, else `activityType`, else `displayName`.

The actor comes from auditActor (type, userId, userPrincipalName, applicationId, applicationDisplayName,
servicePrincipalName, ipAddress, userPermissions): with a user id or UPN it is a user (an admin, "ItPro",
acting through the app Intune names, which becomes the client_app); with only application fields an
application (id: its applicationId, the appId, as auditActor carries no object id; display:
applicationDisplayName, else servicePrincipalName); an actor object with no identity at all is the
system, a missing actor unknown.

Targets come from `resources` (auditResource: displayName, type, resourceId, modifiedProperties whose
values may be JSON-encoded).
"""

from __future__ import annotations

from typing import Any

from shared.ingestion.normalize._common import client_ip, parse_timestamp, text
from shared.ingestion.normalize.entra_audit import modified_properties
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
        return {"type": "unknown", "id": None, "upn": None, "display": None, "ip": None, "client_app": None}
    get = value.get
    ip = client_ip(get("ipAddress"))
    app_id = text(get("applicationId"))
    app_name = text(get("applicationDisplayName")) or text(get("servicePrincipalName"))
    client_app = {"id": app_id, "name": app_name} if app_id or app_name else None
    user_id, upn = text(get("userId")), text(get("userPrincipalName"))
    if user_id or upn:
        return {
            "type": "user",
            "id": user_id,
            "upn": upn,
            "display": None,
            "ip": ip,
            "client_app": client_app,
        }
    if client_app is not None:
        return {
            "type": "application",
            "id": app_id,
            "upn": None,
            "display": app_name,
            "ip": ip,
            "client_app": client_app,
        }
    return {"type": "system", "id": None, "upn": None, "display": None, "ip": ip, "client_app": None}


def targets(resources: Any) -> list[dict[str, Any]]:
    if type(resources) is not list:
        return []
    result = []
    for resource in resources:
        if type(resource) is dict:
            get = resource.get
            result.append(
                {
                    "type": text(get("type")) or text(get("auditResourceType")),
                    "id": text(get("resourceId")),
                    "display": text(get("displayName")),
                    "modified_properties": modified_properties(get("modifiedProperties")),
                }
            )
    return result


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
        "result_code": None,
        "actor": actor(get("actor")),
        "targets": targets(get("resources")),
        "timestamp": parse_timestamp(get("activityDateTime")),
        "correlation_id": text(get("correlationId")),
    }
