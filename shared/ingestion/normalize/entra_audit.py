"""Microsoft Graph `GET /v1.0/auditLogs/directoryAudits` (directoryAudit) -> canonical event fields.

The actor comes from `initiatedBy` (auditActivityInitiator):
- `user` (userIdentity: id, displayName, userPrincipalName, ipAddress) with any identity: a user. When the
  same record also names an `app` (appIdentity), that app is the client the user acted through.
- otherwise `app` with any identity: an application; `id` is its servicePrincipalId (the object id in
  this tenant), else its appId; `client_app` names the app itself.
- an `initiatedBy` with neither: the system; a record without `initiatedBy`: unknown.
Graph documents no `additionalDetails` key for the client app of a user's action (`AppId`, where it
appears, is the app the action was about), so a user's client_app is only ever the `app` beside it.

Targets keep the type Graph gives (User, Group, ServicePrincipal, Application, Policy, Device, Role,
Directory, Other). A target without displayName but with a userPrincipalName shows the UPN as its
display (the Target model has no UPN field, and the UPN is the readable name); a target with only an
object id keeps display None for the enrichment step. Modified-property values arrive JSON-encoded; a
value encoded twice (a JSON string holding a JSON array or object) is decoded to the structure.
"""

from __future__ import annotations

from typing import Any

from shared.ingestion.normalize._common import client_ip, decode_json_value, parse_timestamp, text
from shared.ingestion.normalize.mappings import Mappings

NAMESPACE = "entra_audit"
_RESULTS = {"success": "success", "failure": "failure", "timeout": "failure"}


def _unknown_actor() -> dict[str, Any]:
    return {"type": "unknown", "id": None, "upn": None, "display": None, "ip": None, "client_app": None}


def _client_app(app: dict[str, Any]) -> dict[str, Any] | None:
    """{id: appId, name: displayName or servicePrincipalName} of an appIdentity, None when it has neither."""
    get = app.get
    app_id = text(get("appId"))
    name = text(get("displayName")) or text(get("servicePrincipalName"))
    return {"id": app_id, "name": name} if app_id or name else None


def actor(initiated_by: Any) -> dict[str, Any]:
    if type(initiated_by) is not dict:
        return _unknown_actor()
    user = initiated_by.get("user")
    app = initiated_by.get("app")
    if type(app) is not dict:
        app = None
    ip = None
    if type(user) is dict:
        get = user.get
        ip = client_ip(get("ipAddress"))
        user_id, upn, display = text(get("id")), text(get("userPrincipalName")), text(get("displayName"))
        if user_id or upn or display:
            return {
                "type": "user",
                "id": user_id,
                "upn": upn,
                "display": display,
                "ip": ip,
                "client_app": _client_app(app) if app is not None else None,
            }
    if app is not None:
        client_app = _client_app(app)
        object_id = text(app.get("servicePrincipalId"))
        if client_app is not None or object_id:
            return {
                "type": "application",
                "id": object_id or (client_app and client_app["id"]),
                "upn": None,
                "display": client_app and client_app["name"],
                "ip": ip,
                "client_app": client_app,
            }
    return {"type": "system", "id": None, "upn": None, "display": None, "ip": ip, "client_app": None}


def _decoded_escaped(value: str) -> Any:
    """A JSON-encoded value with escapes decoded, twice when it was encoded twice: a JSON string whose
    text is itself a JSON array or object (`"[\\"x\\"]"` -> ["x"]). Only a value with a backslash can
    be encoded twice, which keeps this check off the common path."""
    decoded = decode_json_value(value)
    if type(decoded) is str and decoded is not value and decoded[:1] in ("[", "{"):
        return decode_json_value(decoded)
    return decoded


def modified_properties(items: Any) -> list[dict[str, Any]]:
    """Graph modifiedProperty / Intune auditProperty items: displayName, oldValue, newValue."""
    if type(items) is not list or not items:
        return []
    result = []
    for item in items:
        if type(item) is dict:
            get = item.get
            name = get("displayName")
            old = get("oldValue")
            new = get("newValue")
            if type(old) is str and old:
                old = decode_json_value(old) if "\\" not in old else _decoded_escaped(old)
            if type(new) is str and new:
                new = decode_json_value(new) if "\\" not in new else _decoded_escaped(new)
            result.append({"name": name if type(name) is str else text(name) or "", "old": old, "new": new})
    return result


def targets(resources: Any) -> list[dict[str, Any]]:
    if type(resources) is not list:
        return []
    result = []
    for resource in resources:
        if type(resource) is dict:
            get = resource.get
            # `v if type(v := get(...)) is str and v else text(v)` is text() without the call for the
            # usual non-empty string: this runs for every target of every audit record.
            kind = kind if type(kind := get("type") or get("Type")) is str and kind else text(kind)
            display = display if type(display := get("displayName")) is str and display else text(display)
            changes = get("modifiedProperties")
            result.append(
                {
                    "type": kind,
                    "id": object_id if type(object_id := get("id")) is str and object_id else text(object_id),
                    "display": display or text(get("userPrincipalName")),
                    "modified_properties": modified_properties(changes) if changes else [],
                }
            )
    return result


def normalize(record: dict[str, Any], mappings: Mappings) -> tuple[str | None, dict[str, Any]]:
    get = record.get
    operation = op if type(op := get("activityDisplayName")) is str and op else text(op)
    result = get("result")
    native_type = kind if type(kind := get("operationType")) is str and kind else text(kind)
    reason = get("resultReason")
    return text(get("id")), {
        "service": "Directory",
        "category": category if type(category := get("category")) is str and category else text(category),
        "operation": operation,
        "operation_type": mappings.operation_type(operation or "", native_type),
        "result": _RESULTS.get(result.casefold(), "unknown") if type(result) is str else "unknown",
        "result_reason": (reason or None) if type(reason) is str else text(reason),
        "result_code": None,
        "actor": actor(get("initiatedBy")),
        "targets": targets(get("targetResources")),
        "timestamp": parse_timestamp(get("activityDateTime")),
        "correlation_id": cid if type(cid := get("correlationId")) is str and cid else text(cid),
    }
