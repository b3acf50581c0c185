"""The Entra directoryAudit records that changes to applications and service principals produce.

Graph `auditLogs/directoryAudits` shapes (the directoryAudit resource), category ApplicationManagement
(UserManagement for "Update user"), `loggedByService` "Core Directory", always successful:

- Owner added or removed: "Add owner to service principal" / "Remove owner from service principal" (or
  "... application"); targets: the owner (User or ServicePrincipal) with `ServicePrincipal.ObjectID`,
  `.DisplayName` and `.AppId` (`Application.*`) as new or old values, then the object itself.
- Credential on an application: "Update application \u2013 Certificates and secrets management" (an en
  dash, as Entra writes it); target: the Application with `KeyDescription` old/new (every key of the
  object, `[KeyIdentifier=...,KeyType=Password|AsymmetricX509Cert,KeyUsage=...,DisplayName=...]`) and
  "Included Updated Properties".
- Credential on a principal: "Add service principal credentials" / "Remove service principal
  credentials"; target: the ServicePrincipal with `KeyDescription`.
- Permission granted: "Consent to application" (admin consent, app-only: `ConsentContext.*`,
  `ConsentAction.Permissions`) and "Add app role assignment to service principal"; targets of the
  latter: Microsoft Graph with `AppRole.Id`, `.Value`, `.DisplayName`, `AppRoleAssignment.*`,
  `ServicePrincipal.ObjectID`, `.DisplayName`, `.AppId`, `.Name` and `TargetId.ServicePrincipalNames`,
  then the client. Revoked: "Remove app role assignment from service principal", old values.
- Notes written: "Update service principal"; target: the ServicePrincipal with `Notes` old/new (arrays)
  and "Included Updated Properties".
- Registered: "Add application" and "Add service principal" with their first properties (and one owner
  record per owner). Deleted: "Delete application", "Delete service principal".
- Account enabled or disabled: "Update user" with `AccountEnabled` old/new.

Modified-property values are JSON-encoded strings, as Graph sends them. A builder returns the record
without `id`, `correlationId` and `activityDateTime`; `Tenant.add_directory_audits` fills them in (one
correlation id per change, so a consent and its assignment share it).
"""

from __future__ import annotations

import datetime as dt
import random
from typing import TYPE_CHECKING, Any

from devtools.simulator.render.common import json_encoded, random_ip
from devtools.simulator.timefmt import from_us

if TYPE_CHECKING:
    from devtools.simulator.apps import (
        Actor,
        AppRoleAssignment,
        AppState,
        KeyCredential,
        PasswordCredential,
        SpState,
        UserState,
    )
    from devtools.simulator.apps_catalog import GraphAppRole

Json = dict[str, Any]
CERTIFICATES_AND_SECRETS = "Update application \u2013 Certificates and secrets management"


def _initiated_by(actor: Actor) -> Json:
    if actor.kind == "app":
        return {
            "app": {
                "appId": actor.name,
                "displayName": actor.display_name,
                "servicePrincipalId": actor.id,
                "servicePrincipalName": None,
            },
            "user": None,
        }
    return {
        "app": None,
        "user": {
            "id": actor.id,
            "displayName": None,
            "userPrincipalName": actor.name,
            "ipAddress": random_ip(random.Random(f"ip:{actor.name}")),  # noqa: S311 - a stable address per user
            "userType": None,
            "homeTenantId": None,
            "homeTenantName": None,
        },
    }


def _record(
    activity: str,
    operation_type: str,
    actor: Actor,
    targets: list[Json],
    category: str = "ApplicationManagement",
) -> Json:
    return {
        "id": None,
        "category": category,
        "correlationId": None,
        "result": "success",
        "resultReason": "",
        "activityDisplayName": activity,
        "activityDateTime": None,
        "loggedByService": "Core Directory",
        "operationType": operation_type,
        "initiatedBy": _initiated_by(actor),
        "targetResources": targets,
        "additionalDetails": [],
    }


def _property(name: str, old: Any, new: Any) -> Json:
    return {
        "displayName": name,
        "oldValue": None if old is None else json_encoded(old),
        "newValue": None if new is None else json_encoded(new),
    }


def _included(*names: str) -> Json:
    return {
        "displayName": "Included Updated Properties",
        "oldValue": None,
        "newValue": json_encoded(", ".join(names)),
    }


def _target(kind: str, object_id: str, display_name: str | None, upn: str | None, props: list[Json]) -> Json:
    return {
        "id": object_id,
        "displayName": display_name,
        "type": kind,
        "userPrincipalName": upn,
        "groupType": None,
        "modifiedProperties": props,
    }


def principal_target(sp: SpState, props: list[Json] | None = None) -> Json:
    return _target("ServicePrincipal", sp.id, sp.display_name, None, props or [])


def application_target(app: AppState, props: list[Json] | None = None) -> Json:
    return _target("Application", app.id, app.display_name, None, props or [])


def _owner_target(owner: UserState | SpState, props: list[Json]) -> Json:
    from devtools.simulator.apps import UserState

    if isinstance(owner, UserState):
        return _target("User", owner.id, None, owner.upn, props)
    return principal_target(owner, props)


def owner_change(
    resource: str, target: AppState | SpState, owner: UserState | SpState, *, add: bool, actor: Actor
) -> Json:
    prefix, kind = (
        ("ServicePrincipal", "service principal")
        if resource == "servicePrincipals"
        else ("Application", "application")
    )
    values = (
        (f"{prefix}.ObjectID", target.id),
        (f"{prefix}.DisplayName", target.display_name),
        (f"{prefix}.AppId", target.app_id),
    )
    props = [_property(name, None if add else value, value if add else None) for name, value in values]
    activity = f"Add owner to {kind}" if add else f"Remove owner from {kind}"
    target_json = principal_target(target) if resource == "servicePrincipals" else application_target(target)  # type: ignore[arg-type]
    return _record(
        activity, "Assign" if add else "Unassign", actor, [_owner_target(owner, props), target_json]
    )


def _key_description(credential: PasswordCredential | KeyCredential) -> str:
    from devtools.simulator.apps import PasswordCredential

    if isinstance(credential, PasswordCredential):
        kind, usage = "Password", "Verify"
    else:
        kind, usage = "AsymmetricX509Cert", credential.usage
    name = credential.display_name or ""
    return f"[KeyIdentifier={credential.key_id},KeyType={kind},KeyUsage={usage},DisplayName={name}]"


def _key_descriptions(holder: AppState | SpState) -> list[str]:
    credentials: list[PasswordCredential | KeyCredential] = list(holder.password_credentials)
    credentials += holder.key_credentials
    return [_key_description(c) for c in credentials]


def credential_change(
    resource: str,
    before: AppState | SpState,
    after: AppState | SpState,
    *,
    actor: Actor,
    added: PasswordCredential | KeyCredential | None,
) -> Json:
    props = [
        _property("KeyDescription", _key_descriptions(before), _key_descriptions(after)),
        _included("KeyDescription"),
    ]
    if resource == "applications":
        return _record(CERTIFICATES_AND_SECRETS, "Update", actor, [application_target(after, props)])  # type: ignore[arg-type]
    activity = (
        "Add service principal credentials" if added is not None else "Remove service principal credentials"
    )
    return _record(activity, "Update", actor, [principal_target(after, props)])  # type: ignore[arg-type]


def _dotnet_time(us: int) -> str:
    """A time as .NET's general format writes it in modified properties: 3/14/2026 9:26:53 AM."""
    value: dt.datetime = from_us(us)
    hour = value.hour % 12 or 12
    return f"{value.month}/{value.day}/{value.year} {hour}:{value:%M:%S} {'AM' if value.hour < 12 else 'PM'}"


def permission_change(
    principal: SpState,
    resource: SpState,
    role: GraphAppRole,
    assignment: AppRoleAssignment,
    *,
    grant: bool,
    consent: bool,
    actor: Actor,
) -> list[Json]:
    records: list[Json] = []
    if grant and consent:
        permissions = (
            f"[] => [[Id: {assignment.id}, AppRoleId: {role.id}, PrincipalId: {principal.id}, "
            f"ResourceId: {resource.id}, Value: {role.value}, "
            f"CreatedDateTime: {_dotnet_time(assignment.created_us)}]]; "
        )
        consent_props = [
            _property("ConsentContext.IsAdminConsent", None, "True"),
            _property("ConsentContext.IsAppOnly", None, "True"),
            _property("ConsentContext.OnBehalfOfAll", None, "False"),
            _property("ConsentContext.Tags", None, "WindowsAzureActiveDirectoryIntegratedApp"),
            _property("ConsentAction.Permissions", None, permissions),
            _property("TargetId.ServicePrincipalNames", None, principal.app_id),
        ]
        records.append(
            _record("Consent to application", "Assign", actor, [principal_target(principal, consent_props)])
        )
    values = (
        ("AppRole.Id", role.id),
        ("AppRole.Value", role.value),
        ("AppRole.DisplayName", role.display_name),
        ("AppRoleAssignment.CreatedDateTime", _dotnet_time(assignment.created_us)),
        ("AppRoleAssignment.LastModifiedDateTime", _dotnet_time(assignment.created_us)),
        ("ServicePrincipal.ObjectID", principal.id),
        ("ServicePrincipal.DisplayName", principal.display_name),
        ("ServicePrincipal.AppId", principal.app_id),
        ("ServicePrincipal.Name", principal.display_name),
        ("TargetId.ServicePrincipalNames", ";".join(resource.service_principal_names)),
    )
    props = [_property(name, None if grant else value, value if grant else None) for name, value in values]
    activity = (
        "Add app role assignment to service principal"
        if grant
        else "Remove app role assignment from service principal"
    )
    targets = [principal_target(resource, props), principal_target(principal)]
    records.append(_record(activity, "Assign" if grant else "Unassign", actor, targets))
    return records


def notes_change(before: SpState, after: SpState, *, actor: Actor) -> Json:
    old = [] if before.notes is None else [before.notes]
    new = [] if after.notes is None else [after.notes]
    props = [_property("Notes", old, new), _included("Notes")]
    return _record("Update service principal", "Update", actor, [principal_target(after, props)])


def application_added(app: AppState, *, actor: Actor) -> Json:
    props = [
        _property("AppId", [], [app.app_id]),
        _property("DisplayName", [], [app.display_name]),
        _property("AvailableToOtherTenants", [], [app.sign_in_audience != "AzureADMyOrg"]),
        _included("AppId", "DisplayName", "AvailableToOtherTenants"),
    ]
    return _record("Add application", "Add", actor, [application_target(app, props)])


def principal_added(sp: SpState, *, actor: Actor) -> Json:
    props = [
        _property("AccountEnabled", [], [True]),
        _property("AppPrincipalId", [], [sp.app_id]),
        _property("DisplayName", [], [sp.display_name]),
        _property("ServicePrincipalName", [], [sp.app_id]),
        _included("AccountEnabled", "AppPrincipalId", "DisplayName", "ServicePrincipalName"),
    ]
    return _record("Add service principal", "Add", actor, [principal_target(sp, props)])


def deleted(resource: str, target: AppState | SpState, *, actor: Actor) -> Json:
    if resource == "applications":
        return _record("Delete application", "Delete", actor, [application_target(target)])  # type: ignore[arg-type]
    return _record("Delete service principal", "Delete", actor, [principal_target(target)])  # type: ignore[arg-type]


def user_enabled(user: UserState, enabled: bool, *, actor: Actor) -> Json:
    props = [_property("AccountEnabled", [user.account_enabled], [enabled]), _included("AccountEnabled")]
    return _record(
        "Update user", "Update", actor, [_target("User", user.id, None, user.upn, props)], "UserManagement"
    )
