"""Intune audit events: Graph `deviceManagement/auditEvents` records (the auditEvent resource).

Each activity draws its audited resource with a resource function (`_..._resource`, returning the
resource's type, display name and modifiedProperties); `_audit_event_builder` wraps it in the
auditEvent envelope (actor, activity, result, ...). Activities of weight 0 only appear in bursts.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import TYPE_CHECKING

from devtools.simulator.directory import guid
from devtools.simulator.render.common import Json, RecordBuilder, RenderContext, Template, directory_user
from devtools.simulator.timefmt import graph_time

if TYPE_CHECKING:
    from devtools.simulator.generator import Record

# An audited resource: (type, displayName, modifiedProperties).
AuditedResource = tuple[str, str, list[Json]]

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


def _actor(rng: random.Random, ctx: RenderContext) -> Json:
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


def _modified_property(name: str, old: str | None, new: str | None) -> Json:
    return {"displayName": name, "oldValue": old, "newValue": new}


def _audit_event_builder(
    activity: str,
    operation: str,
    category: str,
    component: str,
    resource: Callable[[random.Random], AuditedResource],
) -> RecordBuilder:
    def build(rng: random.Random, ctx: RenderContext, record: Record) -> Json:
        resource_type, display, props = resource(rng)
        return {
            "id": record.native_id,
            "displayName": activity,
            "componentName": component,
            "actor": _actor(rng, ctx),
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


def _config_create_resource(rng: random.Random) -> AuditedResource:
    name = rng.choice(_CONFIG_NAMES)
    return (
        "Windows10GeneralConfiguration",
        name,
        [
            _modified_property("DisplayName", None, name),
            _modified_property("PasswordRequired", None, "True"),
            _modified_property("PasswordMinimumLength", None, str(rng.choice((8, 12, 14)))),
        ],
    )


def _config_patch_resource(rng: random.Random) -> AuditedResource:
    name = rng.choice(_CONFIG_NAMES)
    old_length = rng.choice((8, 12))
    return (
        "Windows10GeneralConfiguration",
        name,
        [
            _modified_property("PasswordMinimumLength", str(old_length), str(old_length + 2)),
            _modified_property("PasswordBlockSimple", "False", "True"),
        ],
    )


def _config_delete_resource(rng: random.Random) -> AuditedResource:
    return "Windows10GeneralConfiguration", rng.choice(_CONFIG_NAMES), []


def _compliance_create_resource(rng: random.Random) -> AuditedResource:
    name = rng.choice(_COMPLIANCE_NAMES)
    return (
        "Windows10CompliancePolicy",
        name,
        [
            _modified_property("DisplayName", None, name),
            _modified_property("OsMinimumVersion", None, rng.choice(("10.0.19045", "10.0.22631"))),
            _modified_property("BitLockerEnabled", None, "True"),
        ],
    )


def _compliance_patch_resource(rng: random.Random) -> AuditedResource:
    name = rng.choice(_COMPLIANCE_NAMES)
    return (
        "Windows10CompliancePolicy",
        name,
        [
            _modified_property("OsMinimumVersion", "10.0.19045", "10.0.22631"),
            _modified_property("BitLockerEnabled", "False", "True"),
        ],
    )


def _compliance_delete_resource(rng: random.Random) -> AuditedResource:
    return "Windows10CompliancePolicy", rng.choice(_COMPLIANCE_NAMES), []


def _wipe_resource(rng: random.Random) -> AuditedResource:
    return (
        "ManagedDevice",
        rng.choice(_DEVICE_NAMES),
        [_modified_property("KeepEnrollmentData", None, str(rng.random() < 0.5))],
    )


def _app_assignment_resource(rng: random.Random) -> AuditedResource:
    app = rng.choice(_APP_NAMES)
    return (
        "MobileApp",
        app,
        [
            _modified_property("Intent", None, rng.choice(("Required", "Available", "Uninstall"))),
            _modified_property("Target.GroupId", None, guid(rng)),
        ],
    )


_ACTIVITIES: tuple[tuple[str, str, str, str, Callable[[random.Random], AuditedResource], float], ...] = (
    # (activity, activityOperationType, category, componentName, resource function, weight)
    ("Create DeviceConfiguration", "Create", "DeviceConfiguration", "DeviceConfiguration",
     _config_create_resource, 3),
    ("Patch DeviceCompliancePolicy", "Patch", "Compliance", "DeviceCompliance",
     _compliance_patch_resource, 4),
    ("Delete DeviceCompliancePolicy", "Delete", "Compliance", "DeviceCompliance",
     _compliance_delete_resource, 1),
    ("Wipe ManagedDevice", "Action", "Device", "ManagedDevices", _wipe_resource, 1),
    ("Assign MobileApp", "Assign", "Application", "MobileApps", _app_assignment_resource, 3),
    # Weight 0: never part of the generated day (so a seed's day is unchanged), only of scripted bursts.
    ("Patch DeviceConfiguration", "Patch", "DeviceConfiguration", "DeviceConfiguration",
     _config_patch_resource, 0),
    ("Delete DeviceConfiguration", "Delete", "DeviceConfiguration", "DeviceConfiguration",
     _config_delete_resource, 0),
    ("Create DeviceCompliancePolicy", "Create", "Compliance", "DeviceCompliance",
     _compliance_create_resource, 0),
)  # fmt: skip

TEMPLATES: tuple[Template, ...] = tuple(
    Template(activity, weight, _audit_event_builder(activity, operation, category, component, resource))
    for activity, operation, category, component, resource, weight in _ACTIVITIES
)


def mark_burst(body: Json, record: Record, ctx: RenderContext) -> None:
    """A burst record is a successful change, by `record.actor` when given."""
    body["activityResult"] = "Success"
    if record.actor:
        user_id, _ = directory_user(ctx, record.actor)
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
