"""Audit.AzureActiveDirectory: Azure AD directory changes and user logons as the Management API sends them."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from devtools.simulator.directory import ROLES, guid
from devtools.simulator.render.common import (
    CLIENT_APPS,
    DEVICES,
    RESOURCE_APPS,
    USER_AGENTS,
    Json,
    RenderContext,
    Template,
    json_encoded,
    puid,
    random_ip,
)
from devtools.simulator.render.management.common_schema import common_schema

if TYPE_CHECKING:
    from devtools.simulator.generator import Record


_AUDIT_OPERATIONS = (
    ("Add member to role.", "Role"),
    ("Update user.", "User"),
    ("Add user.", "User"),
    ("Delete user.", "User"),
    ("Reset user password.", "User"),
    ("Consent to application.", "ServicePrincipal"),
    ("Add service principal credentials.", "ServicePrincipal"),
)


def _actor(rng: random.Random, ctx: RenderContext) -> tuple[str, str, int, list[Json]]:
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
    user_puid = puid(user.id)
    if roll < 0.25:  # referenced by object id only
        return user.id, user.id, 2, [{"ID": user.id, "Type": 2}, {"ID": f"User_{user.id}", "Type": 2}]
    actor = [
        {"ID": user.upn, "Type": 5},
        {"ID": user_puid, "Type": 3},
        {"ID": f"User_{user.id}", "Type": 2},
        {"ID": user.id, "Type": 2},
        {"ID": "User", "Type": 2},
    ]
    return user.upn, f"{user_puid}@{ctx.directory.domain}", 2, actor


def _directory_audit(rng: random.Random, ctx: RenderContext, record: Record) -> Json:
    operation, target_kind = rng.choice(_AUDIT_OPERATIONS)
    user_id, user_key, user_type, actor = _actor(rng, ctx)
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
                "NewValue": json_encoded([f"[KeyIdentifier={guid(rng)},KeyType=Password]"]),
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
            {"ID": puid(user.id), "Type": 3},
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
    out = common_schema(
        ctx, record, record_type=8, operation=operation, workload="AzureActiveDirectory",
        user_id=user_id, user_key=user_key, user_type=user_type,
        result="Failure" if failed else "Success", object_id=object_id, client_ip=random_ip(rng),
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


def _logon(rng: random.Random, ctx: RenderContext, record: Record) -> Json:
    user = rng.choice(ctx.directory.users)
    failed = rng.random() < 0.25
    _, app_id, _ = rng.choice(CLIENT_APPS)
    os_name, browser = rng.choice(DEVICES)
    out = common_schema(
        ctx, record, record_type=15, operation="UserLoginFailed" if failed else "UserLoggedIn",
        workload="AzureActiveDirectory", user_id=user.upn, user_key=user.id, user_type=0,
        result="Failed" if failed else "Success", object_id=rng.choice(RESOURCE_APPS)[1],
        client_ip=random_ip(rng),
    )  # fmt: skip
    out.update(
        {
            "AzureActiveDirectoryEventType": 1,
            "ExtendedProperties": [
                {"Name": "ResultStatusDetail", "Value": "Success" if not failed else "Redirect"},
                {"Name": "UserAgent", "Value": rng.choice(USER_AGENTS)},
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


TEMPLATES: tuple[Template, ...] = (
    Template("Azure AD audit", 3, _directory_audit),
    Template("Azure AD logon", 2, _logon),
)
