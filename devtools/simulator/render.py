"""Materialize a record into the exact JSON a real API sends, on demand.

A record is stored compactly (ids, times, a template index and a per-record seed); its content is
rebuilt from `random.Random(record.seed)` whenever it is served, so it is identical on every call
and the whole day costs little memory.

Shapes follow the Microsoft Graph v1.0 resources directoryAudit, signIn and (Intune) auditEvent,
and the Office 365 Management Activity API common schema plus the Exchange admin, SharePoint,
Azure AD, Teams and DLP schemas.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from devtools.simulator.directory import ROLES, Directory, Group, ServicePrincipal, User, guid
from devtools.simulator.timefmt import graph_time, management_time

if TYPE_CHECKING:
    from devtools.simulator.generator import Record

Json = dict[str, Any]


@dataclass(frozen=True)
class RenderContext:
    tenant_id: str
    directory: Directory


Builder = Callable[[random.Random, RenderContext, "Record"], Json]


@dataclass(frozen=True)
class Template:
    name: str
    weight: float
    build: Builder


def enc(value: Any) -> str:
    """A value JSON-encoded into a string, as Graph sends modifiedProperties old/new values."""
    return json.dumps(value, ensure_ascii=False)


def _puid(object_id: str) -> str:
    return "1003" + hashlib.sha256(object_id.encode()).hexdigest()[:12].upper()


_IPV4_PREFIXES = ("20.190", "40.126", "52.97", "86.12", "185.45", "91.198", "131.107")


def _ip(rng: random.Random) -> str:
    if rng.random() < 0.1:
        return f"2a01:111:f400:{rng.randrange(0x10000):x}::{rng.randrange(1, 0x10000):x}"
    return f"{rng.choice(_IPV4_PREFIXES)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"


_USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/121.0.0.0 Safari/537.36 Edg/121.0.0.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_2) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.2 Safari/605.1.15",
    "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17126; Pro)",
    "PowerShell/7.4 Microsoft.Graph.Authentication/2.11.1",
)


# --------------------------------------------------------------------------------------------------
# Entra directory audits (Graph directoryAudit)
# --------------------------------------------------------------------------------------------------

_CA_POLICIES = (
    ("Require MFA for administrators", "enabled"),
    ("Block legacy authentication", "enabled"),
    ("Require compliant device \u2013 Zoë's pilot", "enabledForReportingButNotEnforced"),
    ("Blockera äldre autentisering", "enabled"),
    ("管理者の多要素認証", "disabled"),
)
_DOMAINS = ("contoso.com", "fabrikam.com", "müller-gmbh.de")


def _graph_user_target(user: User, props: list[Json] | None = None, *, deleted: bool = False) -> Json:
    upn = f"{user.id.replace('-', '')}{user.upn}" if deleted else user.upn
    return {
        "id": user.id,
        "displayName": None,
        "type": "User",
        "userPrincipalName": upn,
        "groupType": None,
        "modifiedProperties": props or [],
    }


def _graph_sp_target(sp: ServicePrincipal, props: list[Json] | None = None) -> Json:
    return {
        "id": sp.id,
        "displayName": sp.display_name,
        "type": "ServicePrincipal",
        "userPrincipalName": None,
        "groupType": None,
        "modifiedProperties": props or [],
    }


def _graph_group_target(group: Group, props: list[Json] | None = None) -> Json:
    return {
        "id": group.id,
        "displayName": group.display_name,
        "type": "Group",
        "userPrincipalName": None,
        "groupType": "unifiedGroups",
        "modifiedProperties": props or [],
    }


def _prop(name: str, old: Any, new: Any) -> Json:
    """A Graph modifiedProperty: old/new are JSON-encoded strings (or null when absent)."""
    return {
        "displayName": name,
        "oldValue": None if old is None else enc(old),
        "newValue": None if new is None else enc(new),
    }


def _included(*names: str) -> Json:
    return {"displayName": "Included Updated Properties", "oldValue": None, "newValue": enc(", ".join(names))}


# Global Administrator as directoryAudits name it: Role.WellKnownObjectName is "TenantAdmins".
GLOBAL_ADMINISTRATOR = ("Global Administrator", "62e90394-69f5-4237-9190-012177145e10", "TenantAdmins")


def _t_role_member(
    rng: random.Random, ctx: RenderContext, *, add: bool, role: tuple[str, str, str] | None = None
) -> tuple[list[Json], list[Json]]:
    """A role (un)assignment: `role` (name, template id, well-known name), else one drawn from ROLES."""
    role_name, template_id, well_known = rng.choice(ROLES) if role is None else role
    user = rng.choice(ctx.directory.users)
    props = [
        _prop("Role.ObjectID", None if not add else template_id, template_id if add else None),
        _prop("Role.DisplayName", None if add else role_name, role_name if add else None),
        _prop("Role.TemplateId", None if add else template_id, template_id if add else None),
        _prop("Role.WellKnownObjectName", None if add else well_known, well_known if add else None),
    ]
    role_target = {
        "id": template_id,
        "displayName": role_name,
        "type": "Role",
        "userPrincipalName": None,
        "groupType": None,
        "modifiedProperties": [],
    }
    details = [
        {"key": "RoleDefinitionOriginId", "value": template_id},
        {"key": "RoleDefinitionOriginType", "value": "BuiltInRole"},
    ]
    return [_graph_user_target(user, props), role_target], details


def _ca_policy_json(rng: random.Random, policy_id: str, name: str, state: str) -> Json:
    return {
        "id": policy_id,
        "displayName": name,
        "createdDateTime": "2025-03-14T09:26:53.0000000+00:00",
        "state": state,
        "conditions": {
            "applications": {"includeApplications": ["All"], "excludeApplications": []},
            "users": {
                "includeUsers": [],
                "excludeUsers": [],
                "includeRoles": [ROLES[0][1]] if rng.random() < 0.5 else [],
                "includeGroups": ["All"] if rng.random() < 0.3 else [],
            },
            "clientAppTypes": ["exchangeActiveSync", "other"] if "legacy" in name.lower() else ["all"],
        },
        "grantControls": {"operator": "OR", "builtInControls": ["block"] if "lock" in name else ["mfa"]},
    }


def _t_ca_policy(rng: random.Random, ctx: RenderContext) -> tuple[list[Json], list[Json]]:
    index = rng.randrange(len(_CA_POLICIES))
    name, state = _CA_POLICIES[index]
    policy_id = guid(random.Random(f"ca-policy:{ctx.tenant_id}:{index}"))  # noqa: S311
    old = _ca_policy_json(rng, policy_id, name, state)
    new_state = rng.choice(("enabled", "disabled", "enabledForReportingButNotEnforced"))
    new = {**old, "state": new_state, "modifiedDateTime": "2026-01-01T00:00:00.0000000+00:00"}
    target = {
        "id": policy_id,
        "displayName": name,
        "type": "Policy",
        "userPrincipalName": None,
        "groupType": None,
        "modifiedProperties": [
            {"displayName": "ConditionalAccessPolicy", "oldValue": enc(old), "newValue": enc(new)}
        ],
    }
    return [target], []


_NEW_CA_POLICIES = (
    ("Require MFA for guests", "enabled"),
    ("Block high-risk sign-ins", "enabled"),
    ("Require compliant device \u2013 Finance", "enabledForReportingButNotEnforced"),
    ("Sitzungsdauer begrenzen \u2013 Externe", "enabled"),
    ("ゲストの多要素認証", "disabled"),
)
_NAMED_LOCATIONS = ("Headquarters Redmond", "Büro München", "東京オフィス", "Blocked countries")


def _ca_policy_target(policy_id: str, name: str, old: Json | None, new: Json | None) -> Json:
    return {
        "id": policy_id,
        "displayName": name,
        "type": "Policy",
        "userPrincipalName": None,
        "groupType": None,
        "modifiedProperties": [
            {
                "displayName": "ConditionalAccessPolicy",
                "oldValue": None if old is None else enc(old),
                "newValue": None if new is None else enc(new),
            }
        ],
    }


def _t_ca_policy_add(rng: random.Random, ctx: RenderContext) -> tuple[list[Json], list[Json]]:
    name, state = rng.choice(_NEW_CA_POLICIES)
    policy_id = guid(rng)  # a new policy gets a new id
    new = _ca_policy_json(rng, policy_id, name, state)
    return [_ca_policy_target(policy_id, name, None, new)], []


def _t_ca_policy_delete(rng: random.Random, ctx: RenderContext) -> tuple[list[Json], list[Json]]:
    index = rng.randrange(len(_CA_POLICIES))
    name, state = _CA_POLICIES[index]
    policy_id = guid(random.Random(f"ca-policy:{ctx.tenant_id}:{index}"))  # noqa: S311
    old = _ca_policy_json(rng, policy_id, name, state)
    return [_ca_policy_target(policy_id, name, old, None)], []


def _named_location_json(location_id: str, name: str, ranges: list[str], trusted: bool) -> Json:
    return {
        "id": location_id,
        "displayName": name,
        "createdDateTime": "2025-02-03T08:15:00.0000000+00:00",
        "isTrusted": trusted,
        "ipRanges": [{"cidrAddress": cidr} for cidr in ranges],
    }


def _t_named_location(rng: random.Random, ctx: RenderContext) -> tuple[list[Json], list[Json]]:
    index = rng.randrange(len(_NAMED_LOCATIONS))
    name = _NAMED_LOCATIONS[index]
    location_id = guid(random.Random(f"named-location:{ctx.tenant_id}:{index}"))  # noqa: S311
    ranges = [f"{rng.choice(_IPV4_PREFIXES)}.{rng.randrange(256)}.0/24"]
    old = _named_location_json(location_id, name, ranges, trusted=index != 3)
    added = f"{rng.choice(_IPV4_PREFIXES)}.{rng.randrange(256)}.0/24"
    new = _named_location_json(location_id, name, [*ranges, added], trusted=index != 3)
    new["modifiedDateTime"] = "2026-01-01T00:00:00.0000000+00:00"
    target = {
        "id": location_id,
        "displayName": name,
        "type": "Policy",
        "userPrincipalName": None,
        "groupType": None,
        "modifiedProperties": [{"displayName": "NamedLocation", "oldValue": enc(old), "newValue": enc(new)}],
    }
    return [target], []


def _t_sp_credentials(rng: random.Random, ctx: RenderContext) -> tuple[list[Json], list[Json]]:
    sp = rng.choice(ctx.directory.service_principals)
    key = (
        f"[KeyIdentifier={guid(rng)},KeyType=Password,KeyUsage=Verify,"
        f"DisplayName=secret-{rng.randrange(100)}]"
    )
    props = [
        {"displayName": "KeyDescription", "oldValue": "[]", "newValue": enc([key])},
        _included("KeyDescription"),
        _prop("TargetId.ServicePrincipalNames", None, sp.app_id),
    ]
    return [_graph_sp_target(sp, props)], []


def _t_consent(rng: random.Random, ctx: RenderContext) -> tuple[list[Json], list[Json]]:
    sp = rng.choice(ctx.directory.service_principals)
    admin = rng.random() < 0.6
    scopes = rng.choice(
        ("User.Read", "User.Read Mail.Read", "Files.ReadWrite.All Sites.Read.All offline_access")
    )
    permissions = (
        f"[] => [[Id: {guid(rng)}, ClientId: {sp.id}, PrincipalId: , ResourceId: {guid(rng)}, "
        f"ConsentType: {'AllPrincipals' if admin else 'Principal'}, Scope:  {scopes}, "
        "CreatedDateTime: , LastModifiedDateTime ]]; "
    )
    props = [
        _prop("ConsentContext.IsAdminConsent", None, str(admin)),
        _prop("ConsentContext.IsAppOnly", None, "False"),
        _prop("ConsentContext.OnBehalfOfAll", None, str(admin)),
        _prop("ConsentContext.Tags", None, "WindowsAzureActiveDirectoryIntegratedApp"),
        _prop("ConsentAction.Permissions", None, permissions),
        _prop("TargetId.ServicePrincipalNames", None, sp.app_id),
    ]
    return [_graph_sp_target(sp, props)], []


def _t_reset_password(rng: random.Random, ctx: RenderContext) -> tuple[list[Json], list[Json]]:
    return [_graph_user_target(rng.choice(ctx.directory.users))], []


def _t_update_user(rng: random.Random, ctx: RenderContext) -> tuple[list[Json], list[Json]]:
    user = rng.choice(ctx.directory.users)
    choice = rng.randrange(4)
    if choice == 0:
        props = [_prop("AccountEnabled", [True], [False]), _included("AccountEnabled")]
    elif choice == 1:
        props = [_prop("JobTitle", [user.job_title], ["Senior " + user.job_title]), _included("JobTitle")]
    elif choice == 2:
        props = [
            _prop("DisplayName", [user.display_name], [user.display_name + " (ext)"]),
            _included("DisplayName"),
        ]
    else:
        methods_old: list[Json] = [{"MethodType": 6, "Default": True}]
        methods_new: list[Json] = [{"MethodType": 6, "Default": True}, {"MethodType": 7, "Default": False}]
        props = [
            _prop("StrongAuthenticationMethod", methods_old, methods_new),
            _included("StrongAuthenticationMethod"),
        ]
    return [_graph_user_target(user, props)], []


def _t_add_user(rng: random.Random, ctx: RenderContext) -> tuple[list[Json], list[Json]]:
    user = rng.choice(ctx.directory.users)
    props = [
        _prop("AccountEnabled", None, [True]),
        _prop("DisplayName", None, [user.display_name]),
        _prop("UserPrincipalName", None, [user.upn]),
        _prop("UserType", None, ["Member"]),
        _included("AccountEnabled", "DisplayName", "UserPrincipalName", "UserType"),
    ]
    return [_graph_user_target(user, props)], []


def _t_delete_user(rng: random.Random, ctx: RenderContext) -> tuple[list[Json], list[Json]]:
    return [_graph_user_target(rng.choice(ctx.directory.users), deleted=True)], []


def _t_app_role_assignment(rng: random.Random, ctx: RenderContext) -> tuple[list[Json], list[Json]]:
    client = rng.choice(ctx.directory.service_principals)
    resource = ctx.directory.service_principals[0]
    role_value = rng.choice(
        ("Mail.Read", "Directory.ReadWrite.All", "AuditLog.Read.All", "Sites.FullControl.All")
    )
    props = [
        _prop("AppRole.Id", None, guid(rng)),
        _prop("AppRole.Value", None, role_value),
        _prop("AppRole.DisplayName", None, f"{role_value} (application)"),
        _prop("AppRoleAssignment.CreatedDateTime", None, "1/1/2026 12:00:00 AM"),
        _prop("ServicePrincipal.ObjectID", None, client.id),
        _prop("ServicePrincipal.DisplayName", None, client.display_name),
        _prop("ServicePrincipal.AppId", None, client.app_id),
    ]
    return [_graph_sp_target(resource, props), _graph_sp_target(client)], []


def _t_domain_auth(rng: random.Random, ctx: RenderContext) -> tuple[list[Json], list[Json]]:
    domain = rng.choice(_DOMAINS)
    old, new = ("Managed", "Federated") if rng.random() < 0.5 else ("Federated", "Managed")
    target = {
        "id": None,
        "displayName": domain,
        "type": "Domain",
        "userPrincipalName": None,
        "groupType": None,
        "modifiedProperties": [_prop("LiveType", [old], [new]), _included("LiveType")],
    }
    return [target], []


def _t_group_member(rng: random.Random, ctx: RenderContext) -> tuple[list[Json], list[Json]]:
    group = rng.choice(ctx.directory.groups)
    user = rng.choice(ctx.directory.users)
    props = [_prop("Group.ObjectID", None, group.id), _prop("Group.DisplayName", None, group.display_name)]
    return [_graph_user_target(user, props), _graph_group_target(group)], []


@dataclass(frozen=True)
class EntraActivity:
    name: str
    category: str
    operation_type: str
    service: str
    targets: Callable[[random.Random, RenderContext], tuple[list[Json], list[Json]]]
    failure: str
    template: str | None = None  # the template's unique name when it differs from the activity's


def _template_name(activity: EntraActivity) -> str:
    return activity.template or activity.name


def _entra_builder(activity: EntraActivity) -> Builder:
    def build(rng: random.Random, ctx: RenderContext, record: Record) -> Json:
        targets, details = activity.targets(rng, ctx)
        initiated = _graph_initiated_by(rng, ctx)
        failed = rng.random() < 0.07
        if rng.random() < 0.5:
            details = [*details, {"key": "User-Agent", "value": rng.choice(_USER_AGENTS)}]
        return {
            "id": record.native_id,
            "category": activity.category,
            "correlationId": guid(rng),
            "result": "failure" if failed else "success",
            "resultReason": activity.failure if failed else "",
            "activityDisplayName": activity.name,
            "activityDateTime": graph_time(record.event_us),
            "loggedByService": activity.service,
            "operationType": activity.operation_type,
            "initiatedBy": initiated,
            "targetResources": targets,
            "additionalDetails": details,
        }

    return build


def _graph_initiated_by(rng: random.Random, ctx: RenderContext) -> Json:
    roll = rng.random()
    if roll < 0.15:
        sp = rng.choice(ctx.directory.service_principals)
        app = {
            "appId": sp.app_id,
            "displayName": sp.display_name,
            "servicePrincipalId": sp.id,
            "servicePrincipalName": None,
        }
        return {"app": app, "user": None}
    user = rng.choice(ctx.directory.admins if rng.random() < 0.7 else ctx.directory.users)
    id_only = roll < 0.30  # the actor is referenced by object id only: resolve it via getByIds
    return {
        "app": None,
        "user": {
            "id": user.id,
            "displayName": None if id_only else user.display_name,
            "userPrincipalName": None if id_only else user.upn,
            "ipAddress": "" if id_only else _ip(rng),
            "userType": None,
            "homeTenantId": None,
            "homeTenantName": None,
        },
    }


_ENTRA_ACTIVITIES: tuple[tuple[EntraActivity, float], ...] = (
    (EntraActivity("Update user", "UserManagement", "Update", "Core Directory", _t_update_user,
                   "Microsoft.Online.Workflows.ValidationException"), 20),
    (EntraActivity("Add member to group", "GroupManagement", "Assign", "Core Directory", _t_group_member,
                   "Microsoft.Online.Workflows.ObjectAlreadyExistsException"), 12),
    (EntraActivity("Reset user password", "UserManagement", "Update", "Core Directory", _t_reset_password,
                   "User's password policy does not allow this password"), 8),
    (EntraActivity("Add user", "UserManagement", "Add", "Core Directory", _t_add_user,
                   "Microsoft.Online.Workflows.ObjectAlreadyExistsException"), 8),
    (EntraActivity("Delete user", "UserManagement", "Delete", "Core Directory", _t_delete_user,
                   "Insufficient privileges to complete the operation."), 4),
    (EntraActivity("Add member to role", "RoleManagement", "Assign", "Core Directory",
                   lambda r, c: _t_role_member(r, c, add=True), "The role assignment already exists."), 5),
    (EntraActivity("Remove member from role", "RoleManagement", "Unassign", "Core Directory",
                   lambda r, c: _t_role_member(r, c, add=False), "The role assignment was not found."), 2),
    (EntraActivity("Update conditional access policy", "Policy", "Update", "Conditional Access", _t_ca_policy,
                   "Policy validation failed"), 4),
    (EntraActivity("Add service principal credentials", "ApplicationManagement", "Update", "Core Directory",
                   _t_sp_credentials, "Insufficient privileges to complete the operation."), 4),
    (EntraActivity("Consent to application", "ApplicationManagement", "Assign", "Core Directory", _t_consent,
                   "Microsoft.Online.Security.UserConsentBlockedForRiskyAppsException"), 4),
    (EntraActivity("Add app role assignment to service principal", "ApplicationManagement", "Assign",
                   "Core Directory", _t_app_role_assignment, "Permission being assigned already exists"), 4),
    (EntraActivity("Set domain authentication", "DirectoryManagement", "Update", "Core Directory",
                   _t_domain_auth, "Domain verification failed"), 1),
    # Weight 0: never part of the generated day (so a seed's day is unchanged), only of scripted bursts.
    (EntraActivity("Add conditional access policy", "Policy", "Add", "Conditional Access", _t_ca_policy_add,
                   "Policy validation failed"), 0),
    (EntraActivity("Delete conditional access policy", "Policy", "Delete", "Conditional Access",
                   _t_ca_policy_delete, "Policy validation failed"), 0),
    (EntraActivity("Update named location", "Policy", "Update", "Conditional Access", _t_named_location,
                   "Named location validation failed"), 0),
    (EntraActivity("Add member to role", "RoleManagement", "Assign", "Core Directory",
                   lambda r, c: _t_role_member(r, c, add=True, role=GLOBAL_ADMINISTRATOR),
                   "The role assignment already exists.", "Add member to role (Global Administrator)"), 0),
)  # fmt: skip


# --------------------------------------------------------------------------------------------------
# Entra sign-ins (Graph signIn)
# --------------------------------------------------------------------------------------------------

_SIGNIN_OUTCOMES: tuple[tuple[int, str | None, float], ...] = (
    (0, None, 0.70),
    (50126, "Error validating credentials due to invalid username or password.", 0.14),
    (50074, "Strong Authentication is required.", 0.10),
    (
        53003,
        "Access has been blocked by Conditional Access policies. The access policy does not allow token "
        "issuance.",
        0.06,
    ),
)
_SIGNIN_CUM = [sum(o[2] for o in _SIGNIN_OUTCOMES[: i + 1]) for i in range(len(_SIGNIN_OUTCOMES))]
_CLIENT_APPS = (
    ("Microsoft Office", "d3590ed6-52b3-4102-aeff-aad2292ab01c", "Mobile Apps and Desktop clients"),
    ("Azure Portal", "c44b4083-3bb0-49c1-b47d-974e53cbdf3c", "Browser"),
    ("Microsoft Teams", "1fec8e78-bce4-4aaf-ab1b-5451cc387264", "Mobile Apps and Desktop clients"),
    ("Microsoft Graph PowerShell", "14d82eec-204b-4c2f-b7e8-296a70dab67e", "Mobile Apps and Desktop clients"),
    ("Office 365 Exchange Online", "00000002-0000-0ff1-ce00-000000000000", "Browser"),
)
_RESOURCES = (
    ("Microsoft Graph", "00000003-0000-0000-c000-000000000000"),
    ("Office 365 Exchange Online", "00000002-0000-0ff1-ce00-000000000000"),
    ("Windows Azure Service Management API", "797f4846-ba00-4fd7-ba43-dac1f8f63013"),
    ("Office 365 SharePoint Online", "00000003-0000-0ff1-ce00-000000000000"),
)
_LOCATIONS = (
    ("Redmond", "Washington", "US", 47.6740, -122.1215),
    ("München", "Bayern", "DE", 48.1374, 11.5755),
    ("東京", "東京都", "JP", 35.6895, 139.6917),
    ("São Paulo", "São Paulo", "BR", -23.5505, -46.6333),
    ("Kraków", "Małopolskie", "PL", 50.0647, 19.9450),
    ("Oslo", "Oslo", "NO", 59.9139, 10.7522),
)
_DEVICES = (
    ("Windows10", "Edge 121.0.0"),
    ("Windows10", "Rich Client 4.58.1.0"),
    ("MacOs", "Safari 17.2"),
    ("Ios", "Mobile Safari 17.2"),
    ("Android", "Chrome Mobile 121.0.6167"),
)


def _signin(rng: random.Random, ctx: RenderContext, record: Record) -> Json:
    user = rng.choice(ctx.directory.users)
    app_name, app_id, client_app = rng.choice(_CLIENT_APPS)
    resource_name, resource_id = rng.choice(_RESOURCES)
    roll = rng.random()
    code, reason = next((o[0], o[1]) for o, c in zip(_SIGNIN_OUTCOMES, _SIGNIN_CUM, strict=True) if roll < c)
    city, state, country, lat, lon = rng.choice(_LOCATIONS)
    os_name, browser = rng.choice(_DEVICES)
    managed = rng.random() < 0.5
    policies: list[Json] = []
    if code == 53003:
        policies.append(
            {
                "id": guid(random.Random(f"ca-policy:{ctx.tenant_id}:1")),  # noqa: S311
                "displayName": "Block legacy authentication",
                "enforcedGrantControls": ["Block"],
                "enforcedSessionControls": [],
                "result": "failure",
            }
        )
    elif rng.random() < 0.4:
        policies.append(
            {
                "id": guid(random.Random(f"ca-policy:{ctx.tenant_id}:0")),  # noqa: S311
                "displayName": "Require MFA for administrators",
                "enforcedGrantControls": ["Mfa"],
                "enforcedSessionControls": [],
                "result": "success" if code == 0 else "notApplied",
            }
        )
    ca_status = "failure" if code == 53003 else ("success" if policies and code == 0 else "notApplied")
    return {
        "id": record.native_id,
        "createdDateTime": graph_time(record.event_us),
        "userDisplayName": user.display_name,
        "userPrincipalName": user.upn,
        "userId": user.id,
        "appId": app_id,
        "appDisplayName": app_name,
        "ipAddress": _ip(rng),
        "clientAppUsed": client_app,
        "correlationId": guid(rng),
        "conditionalAccessStatus": ca_status,
        "isInteractive": True,
        "riskDetail": "none",
        "riskLevelAggregated": "none",
        "riskLevelDuringSignIn": "none",
        "riskState": "none",
        "riskEventTypes": [],
        "riskEventTypes_v2": [],
        "resourceDisplayName": resource_name,
        "resourceId": resource_id,
        "status": {
            "errorCode": code,
            "failureReason": reason or "Other.",
            "additionalDetails": "MFA requirement satisfied by claim in the token"
            if code == 50074 and rng.random() < 0.2
            else None,
        },
        "deviceDetail": {
            "deviceId": guid(rng) if managed else "",
            "displayName": f"DESKTOP-{rng.randrange(16**6):06X}" if managed else "",
            "operatingSystem": os_name,
            "browser": browser,
            "isCompliant": managed and rng.random() < 0.8,
            "isManaged": managed,
            "trustType": "Azure AD joined" if managed else "",
        },
        "location": {
            "city": city,
            "state": state,
            "countryOrRegion": country,
            "geoCoordinates": {"altitude": None, "latitude": lat, "longitude": lon},
        },
        "appliedConditionalAccessPolicies": policies,
    }


# --------------------------------------------------------------------------------------------------
# Intune audit events (Graph auditEvent)
# --------------------------------------------------------------------------------------------------

_INTUNE_PORTAL = ("5926fc8e-304e-4f59-8bed-58ca97cc39a4", "Microsoft Intune portal extension")
_CONFIG_NAMES = (
    "Windows 11 \u2013 Baseline",
    "BitLocker \u2013 Laptops",
    "Wi-Fi Büro München",
    "iOS 制限ポリシー",
)
_COMPLIANCE_NAMES = ("Windows compliance", "iOS compliance \u2013 Zoë", "Android Enterprise compliance")
_DEVICE_NAMES = ("DESKTOP-7H3K2LQ", "Zoë's iPhone", "田中のiPad", "LAPTOP-SØREN")
_APP_NAMES = ("Microsoft Teams", "Company Portal", "Microsoft Authenticator", "Adobe Acrobat Reader")


def _intune_actor(rng: random.Random, ctx: RenderContext) -> Json:
    if rng.random() < 0.12:
        sp = rng.choice(ctx.directory.service_principals)
        return {
            "type": "Application",
            "userPermissions": [],
            "applicationId": sp.app_id,
            "applicationDisplayName": sp.display_name,
            "userPrincipalName": None,
            "servicePrincipalName": sp.display_name,
            "ipAddress": None,
            "userId": None,
        }
    user = rng.choice(ctx.directory.admins)
    id_only = rng.random() < 0.15
    return {
        "type": "ItPro",
        "userPermissions": ["*"],
        "applicationId": _INTUNE_PORTAL[0],
        "applicationDisplayName": _INTUNE_PORTAL[1],
        "userPrincipalName": None if id_only else user.upn,
        "servicePrincipalName": None,
        "ipAddress": None,
        "userId": user.id,
    }


def _iprop(name: str, old: str | None, new: str | None) -> Json:
    return {"displayName": name, "oldValue": old, "newValue": new}


def _intune_builder(
    activity: str,
    operation: str,
    category: str,
    component: str,
    resource: Callable[[random.Random], tuple[str, str, list[Json]]],
) -> Builder:
    def build(rng: random.Random, ctx: RenderContext, record: Record) -> Json:
        resource_type, display, props = resource(rng)
        return {
            "id": record.native_id,
            "displayName": activity,
            "componentName": component,
            "actor": _intune_actor(rng, ctx),
            "activity": activity,
            "activityDateTime": graph_time(record.event_us),
            "activityType": activity,
            "activityOperationType": operation,
            "activityResult": "Failure" if rng.random() < 0.05 else "Success",
            "correlationId": guid(rng),
            "resources": [
                {
                    "displayName": display,
                    "modifiedProperties": props,
                    "type": resource_type,
                    "resourceId": guid(rng),
                }
            ],
            "category": category,
        }

    return build


def _r_config(rng: random.Random) -> tuple[str, str, list[Json]]:
    name = rng.choice(_CONFIG_NAMES)
    return (
        "Windows10GeneralConfiguration",
        name,
        [
            _iprop("DisplayName", None, name),
            _iprop("PasswordRequired", None, "True"),
            _iprop("PasswordMinimumLength", None, str(rng.choice((8, 12, 14)))),
        ],
    )


def _r_config_patch(rng: random.Random) -> tuple[str, str, list[Json]]:
    name = rng.choice(_CONFIG_NAMES)
    old_length = rng.choice((8, 12))
    return (
        "Windows10GeneralConfiguration",
        name,
        [
            _iprop("PasswordMinimumLength", str(old_length), str(old_length + 2)),
            _iprop("PasswordBlockSimple", "False", "True"),
        ],
    )


def _r_config_delete(rng: random.Random) -> tuple[str, str, list[Json]]:
    return "Windows10GeneralConfiguration", rng.choice(_CONFIG_NAMES), []


def _r_compliance_create(rng: random.Random) -> tuple[str, str, list[Json]]:
    name = rng.choice(_COMPLIANCE_NAMES)
    return (
        "Windows10CompliancePolicy",
        name,
        [
            _iprop("DisplayName", None, name),
            _iprop("OsMinimumVersion", None, rng.choice(("10.0.19045", "10.0.22631"))),
            _iprop("BitLockerEnabled", None, "True"),
        ],
    )


def _r_compliance_patch(rng: random.Random) -> tuple[str, str, list[Json]]:
    name = rng.choice(_COMPLIANCE_NAMES)
    return (
        "Windows10CompliancePolicy",
        name,
        [
            _iprop("OsMinimumVersion", "10.0.19045", "10.0.22631"),
            _iprop("BitLockerEnabled", "False", "True"),
        ],
    )


def _r_compliance_delete(rng: random.Random) -> tuple[str, str, list[Json]]:
    return "Windows10CompliancePolicy", rng.choice(_COMPLIANCE_NAMES), []


def _r_wipe(rng: random.Random) -> tuple[str, str, list[Json]]:
    return (
        "ManagedDevice",
        rng.choice(_DEVICE_NAMES),
        [_iprop("KeepEnrollmentData", None, str(rng.random() < 0.5))],
    )


def _r_assign(rng: random.Random) -> tuple[str, str, list[Json]]:
    app = rng.choice(_APP_NAMES)
    return (
        "MobileApp",
        app,
        [
            _iprop("Intent", None, rng.choice(("Required", "Available", "Uninstall"))),
            _iprop("Target.GroupId", None, guid(rng)),
        ],
    )


_INTUNE_ACTIVITIES = (
    # (activity, activityOperationType, category, componentName, resource builder, weight)
    ("Create DeviceConfiguration", "Create", "DeviceConfiguration", "DeviceConfiguration", _r_config, 3),
    ("Patch DeviceCompliancePolicy", "Patch", "Compliance", "DeviceCompliance", _r_compliance_patch, 4),
    ("Delete DeviceCompliancePolicy", "Delete", "Compliance", "DeviceCompliance", _r_compliance_delete, 1),
    ("Wipe ManagedDevice", "Action", "Device", "ManagedDevices", _r_wipe, 1),
    ("Assign MobileApp", "Assign", "Application", "MobileApps", _r_assign, 3),
    # Weight 0: never part of the generated day (so a seed's day is unchanged), only of scripted bursts.
    ("Patch DeviceConfiguration", "Patch", "DeviceConfiguration", "DeviceConfiguration", _r_config_patch, 0),
    ("Delete DeviceConfiguration", "Delete", "DeviceConfiguration", "DeviceConfiguration", _r_config_delete,
     0),
    ("Create DeviceCompliancePolicy", "Create", "Compliance", "DeviceCompliance", _r_compliance_create, 0),
)  # fmt: skip
_INTUNE_TEMPLATES: tuple[Template, ...] = tuple(
    Template(activity, weight, _intune_builder(activity, operation, category, component, resource))
    for activity, operation, category, component, resource, weight in _INTUNE_ACTIVITIES
)


# --------------------------------------------------------------------------------------------------
# Office 365 Management Activity API records
# --------------------------------------------------------------------------------------------------

_EXCHANGE_SERVERS = (
    "DM6PR11MB4122 (15.20.7316.030)",
    "AM0PR07MB6211 (15.20.7292.022)",
    "TYZPR04MB5848 (15.20.7270.015)",
)
_SYSTEM_EXCHANGE = "NT AUTHORITY\\SYSTEM (Microsoft.Exchange.ServiceHost)"


def _common(
    ctx: RenderContext,
    record: Record,
    *,
    record_type: int,
    operation: str,
    workload: str,
    user_id: str,
    user_key: str,
    user_type: int,
    result: str,
    object_id: str,
    client_ip: str,
) -> Json:
    return {
        "CreationTime": management_time(record.event_us),
        "Id": record.native_id,
        "Operation": operation,
        "OrganizationId": ctx.tenant_id,
        "RecordType": record_type,
        "ResultStatus": result,
        "UserKey": user_key,
        "UserType": user_type,
        "Version": 1,
        "Workload": workload,
        "ClientIP": client_ip,
        "ObjectId": object_id,
        "UserId": user_id,
    }


def _exchange_builder(
    operation: str, parameters: Callable[[random.Random, RenderContext, User], tuple[str, list[Json]]]
) -> Builder:
    def build(rng: random.Random, ctx: RenderContext, record: Record) -> Json:
        actor = rng.choice(ctx.directory.admins if operation != "New-InboxRule" else ctx.directory.users)
        target = rng.choice(ctx.directory.users)
        object_id, params = parameters(rng, ctx, target)
        system = rng.random() < 0.05
        out = _common(
            ctx, record, record_type=1, operation=operation, workload="Exchange",
            user_id=_SYSTEM_EXCHANGE if system else actor.upn,
            user_key=_SYSTEM_EXCHANGE if system else _puid(actor.id),
            user_type=4 if system else (0 if operation == "New-InboxRule" else 2),
            result="False" if rng.random() < 0.04 else "True",
            object_id=object_id, client_ip=_ip(rng) if rng.random() < 0.7 else "",
        )  # fmt: skip
        out.update(
            {
                "AppId": "fb78d390-0c51-40cd-8e17-fdbfab77341b" if rng.random() < 0.5 else "",
                "ExternalAccess": system,
                "OrganizationName": ctx.directory.domain,
                "OriginatingServer": rng.choice(_EXCHANGE_SERVERS),
                "Parameters": params,
                "SessionId": guid(rng),
            }
        )
        return out

    return build


def _p_set_mailbox(rng: random.Random, ctx: RenderContext, target: User) -> tuple[str, list[Json]]:
    external = rng.choice(("collector@proton.example", "zoë.backup@gmail.example", "archive@fabrikam.com"))
    return target.display_name, [
        {"Name": "Identity", "Value": target.upn},
        {"Name": "ForwardingSmtpAddress", "Value": f"smtp:{external}"},
        {"Name": "DeliverToMailboxAndForward", "Value": str(rng.random() < 0.5)},
    ]


def _p_transport_rule(rng: random.Random, ctx: RenderContext, target: User) -> tuple[str, list[Json]]:
    name = rng.choice(("Bcc external mail to archive", "Disclaimer \u2013 Société", "Block .iso attachments"))
    return name, [
        {"Name": "Name", "Value": name},
        {"Name": "SentToScope", "Value": "NotInOrganization"},
        {"Name": "BlindCopyTo", "Value": target.upn},
        {"Name": "Mode", "Value": "Enforce"},
    ]


def _p_mailbox_permission(rng: random.Random, ctx: RenderContext, target: User) -> tuple[str, list[Json]]:
    grantee = rng.choice(ctx.directory.users)
    return target.display_name, [
        {"Name": "Identity", "Value": target.id},
        {"Name": "User", "Value": grantee.upn},
        {"Name": "AccessRights", "Value": "FullAccess"},
        {"Name": "InheritanceType", "Value": "All"},
        {"Name": "AutoMapping", "Value": "False"},
    ]


def _p_inbox_rule(rng: random.Random, ctx: RenderContext, target: User) -> tuple[str, list[Json]]:
    name = rng.choice(("..", "Rechnungen", "RSS Feeds", "請求書"))
    return f"{target.display_name}\\{name}", [
        {"Name": "Name", "Value": name},
        {"Name": "SubjectOrBodyContainsWords", "Value": "invoice;payment;Überweisung"},
        {"Name": "MoveToFolder", "Value": "RSS Feeds"},
        {"Name": "MarkAsRead", "Value": "True"},
        {"Name": "StopProcessingRules", "Value": "True"},
    ]


def _p_audit_config(rng: random.Random, ctx: RenderContext, target: User) -> tuple[str, list[Json]]:
    return "Admin Audit Log Settings", [
        {"Name": "UnifiedAuditLogIngestionEnabled", "Value": str(rng.random() < 0.5)},
        {"Name": "AdminAuditLogAgeLimit", "Value": "90.00:00:00"},
    ]


_SITES = (
    ("https://contoso.sharepoint.com/sites/Finance/", "Shared Documents/Budget", "SharePoint"),
    ("https://contoso.sharepoint.com/sites/Marketing/", "Shared Documents/Kampagnen", "SharePoint"),
    ("https://contoso.sharepoint.com/sites/Fjordprosjekt/", "Delte dokumenter", "SharePoint"),
    (
        "https://contoso-my.sharepoint.com/personal/zoe_lukasz_contoso_onmicrosoft_com/",
        "Documents",
        "OneDrive",
    ),
)
_FILES = (
    "Q3 Forecast \u2013 Zoë.xlsx",
    "Budget 2026.xlsx",
    "Präsentation Vertrieb.pptx",
    "議事録.docx",
    "Kontrakt Ødegård.pdf",
    "passwords.txt",
)


def _sp_user(rng: random.Random, ctx: RenderContext) -> User:
    return rng.choice(ctx.directory.users)


def _sharepoint_builder(operation: str, record_type: int) -> Builder:
    def build(rng: random.Random, ctx: RenderContext, record: Record) -> Json:
        user = _sp_user(rng, ctx)
        site, folder, workload = rng.choice(_SITES)
        file_name = rng.choice(_FILES)
        object_id = f"{site}{folder}/{file_name}" if operation != "SharingPolicyChanged" else site.rstrip("/")
        out = _common(
            ctx, record, record_type=record_type, operation=operation, workload=workload,
            user_id=user.upn, user_key=f"i:0h.f|membership|{_puid(user.id).lower()}@live.com",
            user_type=2 if operation == "SharingPolicyChanged" else 0,
            result="Succeeded", object_id=object_id, client_ip=_ip(rng),
        )  # fmt: skip
        out.update(
            {
                "CorrelationId": guid(rng),
                "EventSource": "SharePoint",
                "ItemType": "Web" if operation == "SharingPolicyChanged" else "File",
                "Site": guid(random.Random(site)),  # noqa: S311 - stable per site
                "UserAgent": rng.choice(_USER_AGENTS),
                "WebId": guid(random.Random(site + "web")),  # noqa: S311
                "SiteUrl": site,
            }
        )
        if operation != "SharingPolicyChanged":
            out.update(
                {
                    "ListId": guid(random.Random(site + folder)),  # noqa: S311
                    "ListItemUniqueId": guid(rng),
                    "SourceFileExtension": file_name.rsplit(".", 1)[-1],
                    "SourceFileName": file_name,
                    "SourceRelativeUrl": folder,
                }
            )
        if operation == "SharingSet":
            guest = rng.random() < 0.4
            out.update(
                {
                    "TargetUserOrGroupType": "Guest" if guest else "Member",
                    "TargetUserOrGroupName": "partner@fabrikam.com"
                    if guest
                    else rng.choice(ctx.directory.users).upn,
                    "EventData": "<Type>Edit</Type><MembersCanShare>Yes</MembersCanShare>",
                }
            )
        elif operation == "AnonymousLinkCreated":
            out["EventData"] = rng.choice(("<Type>View</Type>", "<Type>Edit</Type>"))
        elif operation == "SharingPolicyChanged":
            out["ModifiedProperties"] = [
                {
                    "Name": "SharingCapability",
                    "NewValue": "ExternalUserAndGuestSharing",
                    "OldValue": "ExistingExternalUserSharingOnly",
                }
            ]
        return out

    return build


_AAD_OPERATIONS = (
    ("Add member to role.", "Role"),
    ("Update user.", "User"),
    ("Add user.", "User"),
    ("Delete user.", "User"),
    ("Reset user password.", "User"),
    ("Consent to application.", "ServicePrincipal"),
    ("Add service principal credentials.", "ServicePrincipal"),
)


def _aad_actor(rng: random.Random, ctx: RenderContext) -> tuple[str, str, int, list[Json]]:
    """(UserId, UserKey, UserType, Actor) for an Azure AD record."""
    roll = rng.random()
    if roll < 0.12:
        sp = rng.choice(ctx.directory.service_principals)
        actor = [
            {"ID": sp.display_name, "Type": 1},
            {"ID": sp.app_id, "Type": 2},
            {"ID": f"ServicePrincipal_{sp.id}", "Type": 2},
        ]
        return f"ServicePrincipal_{sp.id}", sp.app_id, 5, actor
    user = rng.choice(ctx.directory.admins)
    puid = _puid(user.id)
    if roll < 0.25:  # referenced by object id only
        return user.id, user.id, 2, [{"ID": user.id, "Type": 2}, {"ID": f"User_{user.id}", "Type": 2}]
    actor = [
        {"ID": user.upn, "Type": 5},
        {"ID": puid, "Type": 3},
        {"ID": f"User_{user.id}", "Type": 2},
        {"ID": user.id, "Type": 2},
        {"ID": "User", "Type": 2},
    ]
    return user.upn, f"{puid}@{ctx.directory.domain}", 2, actor


def _aad_audit(rng: random.Random, ctx: RenderContext, record: Record) -> Json:
    operation, target_kind = rng.choice(_AAD_OPERATIONS)
    user_id, user_key, user_type, actor = _aad_actor(rng, ctx)
    if target_kind == "ServicePrincipal":
        sp = rng.choice(ctx.directory.service_principals)
        target = [
            {"ID": f"ServicePrincipal_{sp.id}", "Type": 2},
            {"ID": sp.id, "Type": 2},
            {"ID": "ServicePrincipal", "Type": 2},
            {"ID": sp.display_name, "Type": 1},
        ]
        object_id = sp.id
        modified = [
            {
                "Name": "KeyDescription",
                "NewValue": enc([f"[KeyIdentifier={guid(rng)},KeyType=Password]"]),
                "OldValue": "[]",
            }
        ]
    else:
        user = rng.choice(ctx.directory.users)
        target = [
            {"ID": f"User_{user.id}", "Type": 2},
            {"ID": user.id, "Type": 2},
            {"ID": "User", "Type": 2},
            {"ID": user.upn, "Type": 5},
            {"ID": _puid(user.id), "Type": 3},
        ]
        object_id = user.upn
        if operation == "Add member to role.":
            role = rng.choice(ROLES)
            modified = [
                {"Name": "Role.DisplayName", "NewValue": role[0], "OldValue": ""},
                {"Name": "Role.TemplateId", "NewValue": role[1], "OldValue": ""},
            ]
        elif operation == "Update user.":
            modified = [
                {"Name": "AccountEnabled", "NewValue": "[\r\n  false\r\n]", "OldValue": "[\r\n  true\r\n]"},
                {"Name": "Included Updated Properties", "NewValue": "AccountEnabled", "OldValue": ""},
            ]
        else:
            modified = []
    failed = rng.random() < 0.05
    out = _common(
        ctx, record, record_type=8, operation=operation, workload="AzureActiveDirectory",
        user_id=user_id, user_key=user_key, user_type=user_type,
        result="Failure" if failed else "Success", object_id=object_id, client_ip=_ip(rng),
    )  # fmt: skip
    out.update(
        {
            "AzureActiveDirectoryEventType": 1,
            "ExtendedProperties": [
                {"Name": "additionalDetails", "Value": "{}"},
                {"Name": "extendedAuditEventCategory", "Value": target_kind},
            ],
            "ModifiedProperties": modified,
            "Actor": actor,
            "ActorContextId": ctx.tenant_id,
            "InterSystemsId": guid(rng),
            "IntraSystemId": guid(rng),
            "SupportTicketId": "",
            "Target": target,
            "TargetContextId": ctx.tenant_id,
        }
    )
    return out


def _aad_logon(rng: random.Random, ctx: RenderContext, record: Record) -> Json:
    user = rng.choice(ctx.directory.users)
    failed = rng.random() < 0.25
    _, app_id, _ = rng.choice(_CLIENT_APPS)
    os_name, browser = rng.choice(_DEVICES)
    out = _common(
        ctx, record, record_type=15, operation="UserLoginFailed" if failed else "UserLoggedIn",
        workload="AzureActiveDirectory", user_id=user.upn, user_key=user.id, user_type=0,
        result="Failed" if failed else "Success", object_id=rng.choice(_RESOURCES)[1], client_ip=_ip(rng),
    )  # fmt: skip
    out.update(
        {
            "AzureActiveDirectoryEventType": 1,
            "ExtendedProperties": [
                {"Name": "ResultStatusDetail", "Value": "Success" if not failed else "Redirect"},
                {"Name": "UserAgent", "Value": rng.choice(_USER_AGENTS)},
                {"Name": "RequestType", "Value": "OAuth2:Authorize"},
            ],
            "ModifiedProperties": [],
            "Actor": [{"ID": user.id, "Type": 0}, {"ID": user.upn, "Type": 5}],
            "ActorContextId": ctx.tenant_id,
            "ActorIpAddress": out["ClientIP"],
            "InterSystemsId": guid(rng),
            "IntraSystemId": guid(rng),
            "SupportTicketId": "",
            "Target": [{"ID": out["ObjectId"], "Type": 0}],
            "TargetContextId": ctx.tenant_id,
            "ApplicationId": app_id,
            "DeviceProperties": [{"Name": "OS", "Value": os_name}, {"Name": "BrowserType", "Value": browser}],
            "ErrorNumber": "50126" if failed else "0",
        }
    )
    if failed:
        out["LogonError"] = "InvalidUserNameOrPassword"
    return out


_TEAMS = ("Ventes Europe \u2013 Équipe", "Project Fjørd", "営業チーム", "Finance Team", "Helpdesk")


def _teams_builder(operation: str) -> Builder:
    def build(rng: random.Random, ctx: RenderContext, record: Record) -> Json:
        user = rng.choice(ctx.directory.users)
        team = rng.choice(_TEAMS)
        team_rng = random.Random(f"team:{team}")  # noqa: S311 - stable ids per team
        team_guid = f"19:{team_rng.getrandbits(128):032x}@thread.tacv2"
        group_id = guid(team_rng)
        out = _common(
            ctx, record, record_type=25, operation=operation, workload="MicrosoftTeams",
            user_id=user.upn, user_key=user.id, user_type=0, result="Succeeded", object_id=team,
            client_ip=_ip(rng),
        )  # fmt: skip
        out.update(
            {"AADGroupId": group_id, "CommunicationType": "Team", "TeamName": team, "TeamGuid": team_guid}
        )
        if operation == "MemberAdded":
            members = rng.sample(ctx.directory.users, k=rng.randint(1, 3))
            out["Members"] = [{"DisplayName": m.display_name, "Role": 1, "UPN": m.upn} for m in members]
        elif operation == "ChannelAdded":
            out.update(
                {
                    "ChannelName": rng.choice(("Général", "Ankündigungen", "雑談", "Incident war room")),
                    "ChannelGuid": f"19:{rng.getrandbits(128):032x}@thread.tacv2",
                    "ChannelType": rng.choice(("Standard", "Private")),
                }
            )
        return out

    return build


def _dlp(rng: random.Random, ctx: RenderContext, record: Record) -> Json:
    user = rng.choice(ctx.directory.users)
    site, folder, workload = rng.choice(_SITES)
    file_name = rng.choice(_FILES)
    url = f"{site}{folder}/{file_name}"
    out = _common(
        ctx, record, record_type=11, operation="DLPRuleMatch", workload=workload,
        user_id=user.upn, user_key="DlpAgent", user_type=4, result="Succeeded", object_id=url, client_ip="",
    )  # fmt: skip
    out.update(
        {
            "IncidentId": guid(rng),
            "PolicyDetails": [
                {
                    "PolicyId": guid(random.Random("dlp-policy")),  # noqa: S311
                    "PolicyName": "U.S. Financial Data",
                    "Rules": [
                        {
                            "RuleId": guid(random.Random("dlp-rule")),  # noqa: S311
                            "RuleName": "Low volume of content detected U.S. Financial Data",
                            "Actions": ["NotifyUser"],
                            "ConditionsMatched": {
                                "SensitiveInformation": [
                                    {
                                        "Count": rng.randint(1, 9),
                                        "Confidence": 85,
                                        "SensitiveType": "50842eb7-edc8-4019-85dd-5a5c1f2bb085",
                                        "SensitiveInformationTypeName": "Credit Card Number",
                                    }
                                ]
                            },
                            "Severity": rng.choice(("Low", "Medium", "High")),
                            "RuleMode": "Enable",
                        }
                    ],
                }
            ],
            "SensitiveInfoDetectionIsIncluded": True,
            "SharePointMetaData": {
                "From": user.upn,
                "FileName": file_name,
                "FilePathUrl": url,
                "FileOwner": user.display_name,
                "SiteCollectionUrl": site,
                "UniqueID": guid(rng),
                "ExceptionInfo": {},
            },
        }
    )
    return out


ENTRA_AUDIT = "entra_audit"
ENTRA_SIGNIN = "entra_signin"
INTUNE_AUDIT = "intune_audit"

TEMPLATES: dict[str, tuple[Template, ...]] = {
    ENTRA_AUDIT: tuple(Template(_template_name(a), w, _entra_builder(a)) for a, w in _ENTRA_ACTIVITIES),
    ENTRA_SIGNIN: (Template("Sign-in", 1, _signin),),
    INTUNE_AUDIT: _INTUNE_TEMPLATES,
    "Audit.AzureActiveDirectory": (
        Template("Azure AD audit", 3, _aad_audit),
        Template("Azure AD logon", 2, _aad_logon),
    ),
    "Audit.Exchange": (
        Template("Set-Mailbox", 3, _exchange_builder("Set-Mailbox", _p_set_mailbox)),
        Template("New-TransportRule", 1, _exchange_builder("New-TransportRule", _p_transport_rule)),
        Template(
            "Add-MailboxPermission", 2, _exchange_builder("Add-MailboxPermission", _p_mailbox_permission)
        ),
        Template("New-InboxRule", 3, _exchange_builder("New-InboxRule", _p_inbox_rule)),
        Template(
            "Set-AdminAuditLogConfig", 0.5, _exchange_builder("Set-AdminAuditLogConfig", _p_audit_config)
        ),
    ),
    "Audit.SharePoint": (
        Template("FileAccessed", 6, _sharepoint_builder("FileAccessed", 6)),
        Template("FileModified", 3, _sharepoint_builder("FileModified", 6)),
        Template("SharingSet", 1.5, _sharepoint_builder("SharingSet", 14)),
        Template("AnonymousLinkCreated", 1, _sharepoint_builder("AnonymousLinkCreated", 14)),
        Template("SharingPolicyChanged", 0.3, _sharepoint_builder("SharingPolicyChanged", 4)),
    ),
    "Audit.General": (
        Template("TeamCreated", 1, _teams_builder("TeamCreated")),
        Template("MemberAdded", 3, _teams_builder("MemberAdded")),
        Template("ChannelAdded", 2, _teams_builder("ChannelAdded")),
    ),
    "DLP.All": (Template("DLPRuleMatch", 1, _dlp),),
}

# template_index looks templates up by name: names are unique per kind.
assert all(len({t.name for t in templates}) == len(templates) for templates in TEMPLATES.values())

_GRAPH_TIME_FIELD = {
    ENTRA_AUDIT: "activityDateTime",
    ENTRA_SIGNIN: "createdDateTime",
    INTUNE_AUDIT: "activityDateTime",
}


# Scripted bursts of configuration changes (TenantSimulator.add_burst): burst kind -> (source,
# ((template name, weight), ...)). The intune and conditional_access templates are configuration changes
# in the app's drift rules; global_admin and user_deletion are privileged changes for alert rules.
BURST_KINDS: dict[str, tuple[str, tuple[tuple[str, float], ...]]] = {
    "intune": (
        INTUNE_AUDIT,
        (
            ("Patch DeviceConfiguration", 4),
            ("Create DeviceConfiguration", 2),
            ("Delete DeviceConfiguration", 1),
            ("Patch DeviceCompliancePolicy", 3),
            ("Create DeviceCompliancePolicy", 1),
            ("Delete DeviceCompliancePolicy", 1),
            ("Assign MobileApp", 2),
        ),
    ),
    "conditional_access": (
        ENTRA_AUDIT,
        (
            ("Add conditional access policy", 3),
            ("Update conditional access policy", 5),
            ("Delete conditional access policy", 1),
            ("Update named location", 1),
        ),
    ),
    # "Add member to role" records that make someone a Global Administrator.
    "global_admin": (ENTRA_AUDIT, (("Add member to role (Global Administrator)", 1),)),
    # "Delete user" records (category UserManagement).
    "user_deletion": (ENTRA_AUDIT, (("Delete user", 1),)),
}


def template_index(kind: str, name: str) -> int:
    for index, template in enumerate(TEMPLATES[kind]):
        if template.name == name:
            return index
    raise KeyError(f"no template {name!r} for {kind}")


def day_templates(kind: str) -> tuple[Template, ...]:
    """The templates the generated day draws from: those with a weight (burst-only ones come last)."""
    templates = TEMPLATES[kind]
    count = sum(1 for t in templates if t.weight > 0)
    if any(t.weight <= 0 for t in templates[:count]):
        raise AssertionError(f"{kind}: weightless templates must come after the weighted ones")
    return templates[:count]


def _actor_user(ctx: RenderContext, upn: str) -> tuple[str, str | None]:
    """(object id, display name) of the directory user with this UPN, or a stable made-up id."""
    for user in ctx.directory.users:
        if user.upn.lower() == upn.lower():
            return user.id, user.display_name
    return guid(random.Random(f"actor:{upn.lower()}")), None  # noqa: S311


def _apply_burst(body: Json, record: Record, ctx: RenderContext) -> None:
    """A burst record is a successful change, by `record.actor` when given."""
    if record.kind == INTUNE_AUDIT:
        body["activityResult"] = "Success"
        if record.actor:
            user_id, _ = _actor_user(ctx, record.actor)
            body["actor"] = {
                "type": "ItPro",
                "userPermissions": ["*"],
                "applicationId": _INTUNE_PORTAL[0],
                "applicationDisplayName": _INTUNE_PORTAL[1],
                "userPrincipalName": record.actor,
                "servicePrincipalName": None,
                "ipAddress": None,
                "userId": user_id,
            }
    elif record.kind == ENTRA_AUDIT:
        body["result"] = "success"
        body["resultReason"] = ""
        if record.actor:
            user_id, display_name = _actor_user(ctx, record.actor)
            body["initiatedBy"] = {
                "app": None,
                "user": {
                    "id": user_id,
                    "displayName": display_name,
                    "userPrincipalName": record.actor,
                    "ipAddress": _ip(random.Random(f"{record.seed}:ip")),  # noqa: S311
                    "userType": None,
                    "homeTenantId": None,
                    "homeTenantName": None,
                },
            }


def render(record: Record, ctx: RenderContext) -> Json:
    """The record's wire JSON. Malformed records lack their id and their timestamp."""
    rng = random.Random(record.seed)  # noqa: S311 - deterministic test data
    template = TEMPLATES[record.kind][record.template]
    body = template.build(rng, ctx, record)
    if record.burst:
        _apply_burst(body, record, ctx)
    if record.malformed:
        if record.kind in _GRAPH_TIME_FIELD:
            body.pop("id", None)
            body.pop(_GRAPH_TIME_FIELD[record.kind], None)
        else:
            body.pop("Id", None)
            body.pop("CreationTime", None)
    return body
