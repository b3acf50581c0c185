"""Entra directory audits: Graph `auditLogs/directoryAudits` records (the directoryAudit resource).

Each activity (`EntraActivity`) draws its `targetResources` and `additionalDetails` with a targets
function (`_..._targets`); `_directory_audit_builder` wraps them in the directoryAudit envelope
(initiatedBy, result, category, ...). Activities of weight 0 only appear in scripted bursts.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from devtools.simulator.directory import ROLES, Group, ServicePrincipal, User, guid
from devtools.simulator.render.common import (
    IPV4_PREFIXES,
    USER_AGENTS,
    Json,
    RecordBuilder,
    RenderContext,
    Template,
    directory_user,
    json_encoded,
    random_ip,
)
from devtools.simulator.timefmt import graph_time

if TYPE_CHECKING:
    from devtools.simulator.generator import Record

# An activity's (targetResources, additionalDetails).
Targets = tuple[list[Json], list[Json]]

_CA_POLICIES = (
    ("Require MFA for administrators", "enabled"),
    ("Block legacy authentication", "enabled"),
    ("Require compliant device \u2013 Zoë's pilot", "enabledForReportingButNotEnforced"),
    ("Blockera äldre autentisering", "enabled"),
    ("管理者の多要素認証", "disabled"),
)
_DOMAINS = ("contoso.com", "fabrikam.com", "müller-gmbh.de")


def _user_target(user: User, props: list[Json] | None = None, *, deleted: bool = False) -> Json:
    upn = f"{user.id.replace('-', '')}{user.upn}" if deleted else user.upn
    return {
        "id": user.id,
        "displayName": None,
        "type": "User",
        "userPrincipalName": upn,
        "groupType": None,
        "modifiedProperties": props or [],
    }


def _service_principal_target(sp: ServicePrincipal, props: list[Json] | None = None) -> Json:
    return {
        "id": sp.id,
        "displayName": sp.display_name,
        "type": "ServicePrincipal",
        "userPrincipalName": None,
        "groupType": None,
        "modifiedProperties": props or [],
    }


def _group_target(group: Group, props: list[Json] | None = None) -> Json:
    return {
        "id": group.id,
        "displayName": group.display_name,
        "type": "Group",
        "userPrincipalName": None,
        "groupType": "unifiedGroups",
        "modifiedProperties": props or [],
    }


def _modified_property(name: str, old: Any, new: Any) -> Json:
    """A Graph modifiedProperty: old/new are JSON-encoded strings (or null when absent)."""
    return {
        "displayName": name,
        "oldValue": None if old is None else json_encoded(old),
        "newValue": None if new is None else json_encoded(new),
    }


def _included_properties(*names: str) -> Json:
    return {
        "displayName": "Included Updated Properties",
        "oldValue": None,
        "newValue": json_encoded(", ".join(names)),
    }


# Global Administrator as directoryAudits name it: Role.WellKnownObjectName is "TenantAdmins".
GLOBAL_ADMINISTRATOR = ("Global Administrator", "62e90394-69f5-4237-9190-012177145e10", "TenantAdmins")


def _role_member_targets(
    rng: random.Random, ctx: RenderContext, *, add: bool, role: tuple[str, str, str] | None = None
) -> Targets:
    """A role (un)assignment: `role` (name, template id, well-known name), else one drawn from ROLES."""
    role_name, template_id, well_known = rng.choice(ROLES) if role is None else role
    user = rng.choice(ctx.directory.users)
    props = [
        _modified_property("Role.ObjectID", None if not add else template_id, template_id if add else None),
        _modified_property("Role.DisplayName", None if add else role_name, role_name if add else None),
        _modified_property("Role.TemplateId", None if add else template_id, template_id if add else None),
        _modified_property(
            "Role.WellKnownObjectName", None if add else well_known, well_known if add else None
        ),
    ]
    role_target: Json = {
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
    return [_user_target(user, props), role_target], details


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


def _ca_policy_update_targets(rng: random.Random, ctx: RenderContext) -> Targets:
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
            {
                "displayName": "ConditionalAccessPolicy",
                "oldValue": json_encoded(old),
                "newValue": json_encoded(new),
            }
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
                "oldValue": None if old is None else json_encoded(old),
                "newValue": None if new is None else json_encoded(new),
            }
        ],
    }


def _ca_policy_add_targets(rng: random.Random, ctx: RenderContext) -> Targets:
    name, state = rng.choice(_NEW_CA_POLICIES)
    policy_id = guid(rng)  # a new policy gets a new id
    new = _ca_policy_json(rng, policy_id, name, state)
    return [_ca_policy_target(policy_id, name, None, new)], []


def _ca_policy_delete_targets(rng: random.Random, ctx: RenderContext) -> Targets:
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


def _named_location_targets(rng: random.Random, ctx: RenderContext) -> Targets:
    index = rng.randrange(len(_NAMED_LOCATIONS))
    name = _NAMED_LOCATIONS[index]
    location_id = guid(random.Random(f"named-location:{ctx.tenant_id}:{index}"))  # noqa: S311
    ranges = [f"{rng.choice(IPV4_PREFIXES)}.{rng.randrange(256)}.0/24"]
    old = _named_location_json(location_id, name, ranges, trusted=index != 3)
    added = f"{rng.choice(IPV4_PREFIXES)}.{rng.randrange(256)}.0/24"
    new = _named_location_json(location_id, name, [*ranges, added], trusted=index != 3)
    new["modifiedDateTime"] = "2026-01-01T00:00:00.0000000+00:00"
    target = {
        "id": location_id,
        "displayName": name,
        "type": "Policy",
        "userPrincipalName": None,
        "groupType": None,
        "modifiedProperties": [
            {"displayName": "NamedLocation", "oldValue": json_encoded(old), "newValue": json_encoded(new)}
        ],
    }
    return [target], []


def _sp_credentials_targets(rng: random.Random, ctx: RenderContext) -> Targets:
    sp = rng.choice(ctx.directory.service_principals)
    key = (
        f"[KeyIdentifier={guid(rng)},KeyType=Password,KeyUsage=Verify,"
        f"DisplayName=secret-{rng.randrange(100)}]"
    )
    props = [
        {"displayName": "KeyDescription", "oldValue": "[]", "newValue": json_encoded([key])},
        _included_properties("KeyDescription"),
        _modified_property("TargetId.ServicePrincipalNames", None, sp.app_id),
    ]
    return [_service_principal_target(sp, props)], []


def _consent_targets(rng: random.Random, ctx: RenderContext) -> Targets:
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
        _modified_property("ConsentContext.IsAdminConsent", None, str(admin)),
        _modified_property("ConsentContext.IsAppOnly", None, "False"),
        _modified_property("ConsentContext.OnBehalfOfAll", None, str(admin)),
        _modified_property("ConsentContext.Tags", None, "WindowsAzureActiveDirectoryIntegratedApp"),
        _modified_property("ConsentAction.Permissions", None, permissions),
        _modified_property("TargetId.ServicePrincipalNames", None, sp.app_id),
    ]
    return [_service_principal_target(sp, props)], []


def _reset_password_targets(rng: random.Random, ctx: RenderContext) -> Targets:
    return [_user_target(rng.choice(ctx.directory.users))], []


def _update_user_targets(rng: random.Random, ctx: RenderContext) -> Targets:
    user = rng.choice(ctx.directory.users)
    choice = rng.randrange(4)
    if choice == 0:
        props = [
            _modified_property("AccountEnabled", [True], [False]),
            _included_properties("AccountEnabled"),
        ]
    elif choice == 1:
        props = [
            _modified_property("JobTitle", [user.job_title], ["Senior " + user.job_title]),
            _included_properties("JobTitle"),
        ]
    elif choice == 2:
        props = [
            _modified_property("DisplayName", [user.display_name], [user.display_name + " (ext)"]),
            _included_properties("DisplayName"),
        ]
    else:
        methods_old: list[Json] = [{"MethodType": 6, "Default": True}]
        methods_new: list[Json] = [{"MethodType": 6, "Default": True}, {"MethodType": 7, "Default": False}]
        props = [
            _modified_property("StrongAuthenticationMethod", methods_old, methods_new),
            _included_properties("StrongAuthenticationMethod"),
        ]
    return [_user_target(user, props)], []


def _add_user_targets(rng: random.Random, ctx: RenderContext) -> Targets:
    user = rng.choice(ctx.directory.users)
    props = [
        _modified_property("AccountEnabled", None, [True]),
        _modified_property("DisplayName", None, [user.display_name]),
        _modified_property("UserPrincipalName", None, [user.upn]),
        _modified_property("UserType", None, ["Member"]),
        _included_properties("AccountEnabled", "DisplayName", "UserPrincipalName", "UserType"),
    ]
    return [_user_target(user, props)], []


def _delete_user_targets(rng: random.Random, ctx: RenderContext) -> Targets:
    return [_user_target(rng.choice(ctx.directory.users), deleted=True)], []


def _app_role_assignment_targets(rng: random.Random, ctx: RenderContext) -> Targets:
    client = rng.choice(ctx.directory.service_principals)
    resource = ctx.directory.service_principals[0]
    role_value = rng.choice(
        ("Mail.Read", "Directory.ReadWrite.All", "AuditLog.Read.All", "Sites.FullControl.All")
    )
    props = [
        _modified_property("AppRole.Id", None, guid(rng)),
        _modified_property("AppRole.Value", None, role_value),
        _modified_property("AppRole.DisplayName", None, f"{role_value} (application)"),
        _modified_property("AppRoleAssignment.CreatedDateTime", None, "1/1/2026 12:00:00 AM"),
        _modified_property("ServicePrincipal.ObjectID", None, client.id),
        _modified_property("ServicePrincipal.DisplayName", None, client.display_name),
        _modified_property("ServicePrincipal.AppId", None, client.app_id),
    ]
    return [_service_principal_target(resource, props), _service_principal_target(client)], []


def _domain_auth_targets(rng: random.Random, ctx: RenderContext) -> Targets:
    domain = rng.choice(_DOMAINS)
    old, new = ("Managed", "Federated") if rng.random() < 0.5 else ("Federated", "Managed")
    target = {
        "id": None,
        "displayName": domain,
        "type": "Domain",
        "userPrincipalName": None,
        "groupType": None,
        "modifiedProperties": [
            _modified_property("LiveType", [old], [new]),
            _included_properties("LiveType"),
        ],
    }
    return [target], []


def _group_member_targets(rng: random.Random, ctx: RenderContext) -> Targets:
    group = rng.choice(ctx.directory.groups)
    user = rng.choice(ctx.directory.users)
    props = [
        _modified_property("Group.ObjectID", None, group.id),
        _modified_property("Group.DisplayName", None, group.display_name),
    ]
    return [_user_target(user, props), _group_target(group)], []


@dataclass(frozen=True)
class EntraActivity:
    name: str
    category: str
    operation_type: str
    service: str
    targets: Callable[[random.Random, RenderContext], Targets]
    failure: str
    template: str | None = None  # the template's unique name when it differs from the activity's


def _template_name(activity: EntraActivity) -> str:
    return activity.template or activity.name


def _directory_audit_builder(activity: EntraActivity) -> RecordBuilder:
    def build(rng: random.Random, ctx: RenderContext, record: Record) -> Json:
        targets, details = activity.targets(rng, ctx)
        initiated = _initiated_by(rng, ctx)
        failed = rng.random() < 0.07
        if rng.random() < 0.5:
            details = [*details, {"key": "User-Agent", "value": rng.choice(USER_AGENTS)}]
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


def _initiated_by(rng: random.Random, ctx: RenderContext) -> Json:
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
            "ipAddress": "" if id_only else random_ip(rng),
            "userType": None,
            "homeTenantId": None,
            "homeTenantName": None,
        },
    }


_ACTIVITIES: tuple[tuple[EntraActivity, float], ...] = (
    (EntraActivity("Update user", "UserManagement", "Update", "Core Directory",
                   _update_user_targets, "Microsoft.Online.Workflows.ValidationException"), 20),
    (EntraActivity("Add member to group", "GroupManagement", "Assign", "Core Directory",
                   _group_member_targets, "Microsoft.Online.Workflows.ObjectAlreadyExistsException"), 12),
    (EntraActivity("Reset user password", "UserManagement", "Update", "Core Directory",
                   _reset_password_targets, "User's password policy does not allow this password"), 8),
    (EntraActivity("Add user", "UserManagement", "Add", "Core Directory",
                   _add_user_targets, "Microsoft.Online.Workflows.ObjectAlreadyExistsException"), 8),
    (EntraActivity("Delete user", "UserManagement", "Delete", "Core Directory",
                   _delete_user_targets, "Insufficient privileges to complete the operation."), 4),
    (EntraActivity("Add member to role", "RoleManagement", "Assign", "Core Directory",
                   lambda r, c: _role_member_targets(r, c, add=True),
                   "The role assignment already exists."), 5),
    (EntraActivity("Remove member from role", "RoleManagement", "Unassign", "Core Directory",
                   lambda r, c: _role_member_targets(r, c, add=False),
                   "The role assignment was not found."), 2),
    (EntraActivity("Update conditional access policy", "Policy", "Update", "Conditional Access",
                   _ca_policy_update_targets, "Policy validation failed"), 4),
    (EntraActivity("Add service principal credentials", "ApplicationManagement", "Update", "Core Directory",
                   _sp_credentials_targets, "Insufficient privileges to complete the operation."), 4),
    (EntraActivity("Consent to application", "ApplicationManagement", "Assign", "Core Directory",
                   _consent_targets, "Microsoft.Online.Security.UserConsentBlockedForRiskyAppsException"), 4),
    (EntraActivity("Add app role assignment to service principal", "ApplicationManagement", "Assign",
                   "Core Directory", _app_role_assignment_targets,
                   "Permission being assigned already exists"), 4),
    (EntraActivity("Set domain authentication", "DirectoryManagement", "Update", "Core Directory",
                   _domain_auth_targets, "Domain verification failed"), 1),
    # Weight 0: never part of the generated day (so a seed's day is unchanged), only of scripted bursts.
    (EntraActivity("Add conditional access policy", "Policy", "Add", "Conditional Access",
                   _ca_policy_add_targets, "Policy validation failed"), 0),
    (EntraActivity("Delete conditional access policy", "Policy", "Delete", "Conditional Access",
                   _ca_policy_delete_targets, "Policy validation failed"), 0),
    (EntraActivity("Update named location", "Policy", "Update", "Conditional Access",
                   _named_location_targets, "Named location validation failed"), 0),
    (EntraActivity("Add member to role", "RoleManagement", "Assign", "Core Directory",
                   lambda r, c: _role_member_targets(r, c, add=True, role=GLOBAL_ADMINISTRATOR),
                   "The role assignment already exists.", "Add member to role (Global Administrator)"), 0),
)  # fmt: skip


TEMPLATES: tuple[Template, ...] = tuple(
    Template(_template_name(activity), weight, _directory_audit_builder(activity))
    for activity, weight in _ACTIVITIES
)


def mark_burst(body: Json, record: Record, ctx: RenderContext) -> None:
    """A burst record is a successful change, by `record.actor` when given."""
    body["result"] = "success"
    body["resultReason"] = ""
    if record.actor:
        user_id, display_name = directory_user(ctx, record.actor)
        body["initiatedBy"] = {
            "app": None,
            "user": {
                "id": user_id,
                "displayName": display_name,
                "userPrincipalName": record.actor,
                "ipAddress": random_ip(random.Random(f"{record.seed}:ip")),  # noqa: S311
                "userType": None,
                "homeTenantId": None,
                "homeTenantName": None,
            },
        }
