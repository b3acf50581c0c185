"""Microsoft Graph `GET /v1.0/auditLogs/signIns` (signIn) -> canonical event fields.

Operation "Sign-in", operation_type sign_in, service SignIns. `status.errorCode` 0 is a success, any
other code a failure whose reason is the failureReason with the code. Targets: the application signed
in to, then the resource (API) the token was for.
"""

from __future__ import annotations

from typing import Any

from shared.ingestion.normalize._common import parse_timestamp, text
from shared.ingestion.normalize.mappings import Mappings

NAMESPACE = "entra_signin"
OPERATION = "Sign-in"


def _result(status: Any) -> tuple[str, str | None]:
    if type(status) is not dict:
        return "unknown", None
    code = status.get("errorCode")
    if type(code) is str:
        code = int(code) if code.strip().lstrip("-").isdigit() else None
    if type(code) is not int:
        return "unknown", None
    if code == 0:
        return "success", None
    reason = text(status.get("failureReason"))
    return "failure", f"{reason} (error {code})" if reason else f"Error {code}"


def normalize(record: dict[str, Any], mappings: Mappings) -> tuple[str | None, dict[str, Any]]:
    get = record.get
    ip = text(get("ipAddress"))
    user_id, upn = text(get("userId")), text(get("userPrincipalName"))
    display = text(get("userDisplayName"))
    if user_id or upn or display:
        actor = {"type": "user", "id": user_id, "upn": upn, "display": display, "ip": ip}
    elif get("servicePrincipalId") or get("servicePrincipalName"):
        actor = {
            "type": "app",
            "id": text(get("servicePrincipalId")),
            "upn": None,
            "display": text(get("servicePrincipalName")),
            "ip": ip,
        }
    else:
        actor = {"type": "unknown", "id": None, "upn": None, "display": None, "ip": ip}
    targets: list[dict[str, Any]] = []
    app_id, app_name = text(get("appId")), text(get("appDisplayName"))
    if app_id or app_name:
        targets.append({"type": "Application", "id": app_id, "display": app_name, "modified_properties": []})
    resource_id, resource_name = text(get("resourceId")), text(get("resourceDisplayName"))
    if resource_id or resource_name:
        targets.append(
            {"type": "Resource", "id": resource_id, "display": resource_name, "modified_properties": []}
        )
    interactive = get("isInteractive")
    result, reason = _result(get("status"))
    return text(get("id")), {
        "service": "SignIns",
        "category": "InteractiveSignIn"
        if interactive is True
        else "NonInteractiveSignIn"
        if interactive is False
        else "SignIn",
        "operation": OPERATION,
        "operation_type": "sign_in",
        "result": result,
        "result_reason": reason,
        "actor": actor,
        "targets": targets,
        "timestamp": parse_timestamp(get("createdDateTime")),
        "correlation_id": text(get("correlationId")),
    }
