"""Microsoft Graph `GET /v1.0/auditLogs/signIns` (signIn) -> canonical event fields.

Operation "Sign-in", operation_type sign_in, service SignIns.

Actor: a service principal when `signInEventTypes` says servicePrincipal or managedIdentity, or when the
record names no user but a servicePrincipalId / servicePrincipalName (id: servicePrincipalId, else the
appId; display: servicePrincipalName, else appDisplayName); otherwise the user (userId,
userPrincipalName, userDisplayName). `client_app` is the application signed in with (appId,
appDisplayName).

Result: `status.errorCode` 0 is a success, any other code a failure; `result_code` is the code as an int,
`result_reason` the failureReason. Targets: the application signed in to (left out when it is the
signing-in service principal itself), then the resource (API) the token was for.

The `signin` block keeps the facts detections and the activity map need, named as an admin reads them.
Only the Conditional Access policies that applied are kept (result success, failure, reportOnlySuccess,
reportOnlyFailure, reportOnlyInterrupted, ...): Graph lists every policy of the tenant on every sign-in,
and the notEnabled / notApplied / reportOnlyNotApplied ones say nothing about this sign-in. `location`
and `device` are None when Graph sent nothing in them. Risk values stay as Graph sends them ("none",
"hidden", ...).
"""

from __future__ import annotations

from typing import Any

from shared.ingestion.normalize._common import client_ip, integer, parse_timestamp, text
from shared.ingestion.normalize.mappings import Mappings

NAMESPACE = "entra_signin"
OPERATION = "Sign-in"

# clientAppUsed values as the sign-in logs spell them (and older spellings from the v1.0 reference):
# legacy authentication clients True, modern clients False; anything else is unknown (None).
_LEGACY_CLIENTS = (
    "Exchange ActiveSync",
    "Exchange Active Sync",
    "IMAP4",
    "IMAP",
    "POP3",
    "POP",
    "SMTP",
    "Authenticated SMTP",
    "Autodiscover",
    "Exchange Web Services",
    "MAPI Over HTTP",
    "MAPI",
    "Offline Address Book",
    "Outlook Anywhere (RPC over HTTP)",
    "Other clients",
    "Reporting Web Services",
    "Exchange Online PowerShell",
    "Universal Outlook",
)
_MODERN_CLIENTS = ("Browser", "Mobile Apps and Desktop clients", "Modern clients")
LEGACY_AUTH: dict[str, bool] = {
    **{name.casefold(): True for name in _LEGACY_CLIENTS},
    **{name.casefold(): False for name in _MODERN_CLIENTS},
}
_SERVICE_PRINCIPAL_EVENT_TYPES = {
    "servicePrincipal": "ServicePrincipalSignIn",
    "managedIdentity": "ManagedIdentitySignIn",
}


_NOT_APPLIED = frozenset(("notEnabled", "notApplied", "reportOnlyNotApplied"))


def _policies(items: Any) -> list[dict[str, Any]]:
    """appliedConditionalAccessPolicies that applied to this sign-in."""
    policies = []
    for item in items:
        if type(item) is dict:
            get = item.get
            result = get("result")
            if type(result) is not str or result not in _NOT_APPLIED:
                policies.append(
                    {
                        "id": pid if type(pid := get("id")) is str and pid else None,
                        "name": name if type(name := get("displayName")) is str and name else None,
                        "result": result if type(result) is str and result else None,
                    }
                )
    return policies


def _location(value: dict[str, Any]) -> dict[str, Any] | None:
    get = value.get
    city = city if type(city := get("city")) is str and city else None
    state = state if type(state := get("state")) is str and state else None
    country = country if type(country := get("countryOrRegion")) is str and country else None
    latitude = longitude = None
    coordinates = get("geoCoordinates")
    if type(coordinates) is dict:
        latitude = coordinates.get("latitude")
        if type(latitude) is not float or latitude - latitude != 0.0:  # the usual finite float: no call
            latitude = _coordinate(latitude)
        longitude = coordinates.get("longitude")
        if type(longitude) is not float or longitude - longitude != 0.0:
            longitude = _coordinate(longitude)
    if city is None and state is None and country is None and latitude is None and longitude is None:
        return None
    return {"city": city, "state": state, "country": country, "latitude": latitude, "longitude": longitude}


def _coordinate(value: Any) -> float | None:
    """A finite latitude or longitude (NaN and infinities, which Cosmos cannot store, are None)."""
    if type(value) is float:
        return value if value - value == 0.0 else None
    if type(value) is int and -180 <= value <= 180:
        return float(value)
    return None


def _device(value: dict[str, Any]) -> dict[str, Any] | None:
    get = value.get
    device_id = device_id if type(device_id := get("deviceId")) is str and device_id else None
    name = name if type(name := get("displayName")) is str and name else None
    os = os if type(os := get("operatingSystem")) is str and os else None
    browser = browser if type(browser := get("browser")) is str and browser else None
    compliant = compliant if type(compliant := get("isCompliant")) is bool else None
    managed = managed if type(managed := get("isManaged")) is bool else None
    trust_type = trust_type if type(trust_type := get("trustType")) is str and trust_type else None
    if (
        device_id is None
        and name is None
        and os is None
        and browser is None
        and compliant is None
        and managed is None
        and trust_type is None
    ):
        return None
    return {
        "id": device_id,
        "name": name,
        "os": os,
        "browser": browser,
        "compliant": compliant,
        "managed": managed,
        "trust_type": trust_type,
    }


def _signin(get: Any, status: dict[str, Any] | None) -> dict[str, Any]:
    """The `signin` block. Graph types every field here as a string, a boolean or a list: a value of
    another type is dropped (None) rather than converted. `x if type(x := get(...)) is str and x else None`
    is text() inlined: this runs once per sign-in, and the calls would cost more than the rest."""
    client_app = client_app if type(client_app := get("clientAppUsed")) is str and client_app else None
    policies = get("appliedConditionalAccessPolicies")
    location = get("location")
    device = get("deviceDetail")
    risk_events = get("riskEventTypes_v2")
    if type(risk_events) is not list or not risk_events:
        risk_events = get("riskEventTypes")
    details = status.get("additionalDetails") if status is not None else None
    return {
        "interactive": interactive if type(interactive := get("isInteractive")) is bool else None,
        "client_app": client_app,
        "legacy_auth": LEGACY_AUTH.get(client_app.casefold()) if client_app is not None else None,
        "ca_status": ca if type(ca := get("conditionalAccessStatus")) is str and ca else None,
        "ca_policies": _policies(policies) if type(policies) is list and policies else [],
        "location": _location(location) if type(location) is dict else None,
        "device": _device(device) if type(device) is dict else None,
        "risk_level": risk if type(risk := get("riskLevelDuringSignIn")) is str and risk else None,
        "risk_level_aggregated": agg if type(agg := get("riskLevelAggregated")) is str and agg else None,
        "risk_state": state if type(state := get("riskState")) is str and state else None,
        "risk_events": [event for event in risk_events if type(event) is str and event]
        if type(risk_events) is list and risk_events
        else [],
        "authentication_requirement": requirement
        if type(requirement := get("authenticationRequirement")) is str and requirement
        else None,
        "additional_details": details if type(details) is str and details else None,
        "user_agent": agent if type(agent := get("userAgent")) is str and agent else None,
    }


def _service_principal_category(event_types: Any) -> str | None:
    """ServicePrincipalSignIn / ManagedIdentitySignIn when signInEventTypes says so, else None."""
    if type(event_types) is not list:
        return None
    for event_type in event_types:
        category = _SERVICE_PRINCIPAL_EVENT_TYPES.get(event_type) if type(event_type) is str else None
        if category is not None:
            return category
    return None


def normalize(record: dict[str, Any], mappings: Mappings) -> tuple[str | None, dict[str, Any]]:
    get = record.get
    # `x if type(x := get(...)) is str and x else None` is text() inlined for the fields Graph types as
    # strings (a value of another type is dropped): this runs once per sign-in.
    app_id = app_id if type(app_id := get("appId")) is str and app_id else None
    app_name = app_name if type(app_name := get("appDisplayName")) is str and app_name else None
    client_app = {"id": app_id, "name": app_name} if app_id or app_name else None
    user_id = user_id if type(user_id := get("userId")) is str and user_id else None
    upn = upn if type(upn := get("userPrincipalName")) is str and upn else None
    display = display if type(display := get("userDisplayName")) is str and display else None
    event_types = get("signInEventTypes")
    category = _service_principal_category(event_types) if event_types else None
    targets: list[dict[str, Any]] = []
    sp_id = sp_name = None
    if category is not None or not (user_id or upn or display):
        sp_id = sp_id if type(sp_id := get("servicePrincipalId")) is str and sp_id else None
        sp_name = sp_name if type(sp_name := get("servicePrincipalName")) is str and sp_name else None
        if category is None and (sp_id or sp_name):
            category = "ServicePrincipalSignIn"
    if category is not None:
        actor = {
            "type": "service_principal",
            "id": sp_id or app_id,
            "upn": None,
            "display": sp_name or app_name,
            "ip": client_ip(get("ipAddress")),
            "client_app": client_app,
        }
    else:
        actor = {
            "type": "user" if user_id or upn or display else "unknown",
            "id": user_id,
            "upn": upn,
            "display": display,
            "ip": client_ip(get("ipAddress")),
            "client_app": client_app,
        }
        interactive = get("isInteractive")
        category = (
            "InteractiveSignIn"
            if interactive is True
            else "NonInteractiveSignIn"
            if interactive is False
            else "SignIn"
        )
        if client_app is not None:
            targets.append(
                {"type": "Application", "id": app_id, "display": app_name, "modified_properties": []}
            )
    resource_id = resource_id if type(resource_id := get("resourceId")) is str and resource_id else None
    resource_name = name if type(name := get("resourceDisplayName")) is str and name else None
    if resource_id or resource_name:
        targets.append(
            {"type": "Resource", "id": resource_id, "display": resource_name, "modified_properties": []}
        )
    status = get("status")
    if type(status) is dict:
        code = integer(status.get("errorCode"))
        if code is None:
            result, reason = "unknown", None
        elif code == 0:
            result, reason = "success", None
        else:
            result, reason = "failure", text(status.get("failureReason"))
    else:
        status, code, result, reason = None, None, "unknown", None
    return text(get("id")), {
        "service": "SignIns",
        "category": category,
        "operation": OPERATION,
        "operation_type": "sign_in",
        "result": result,
        "result_reason": reason,
        "result_code": code,
        "actor": actor,
        "targets": targets,
        "timestamp": parse_timestamp(get("createdDateTime")),
        "correlation_id": text(get("correlationId")),
        "signin": _signin(get, status),
    }
