"""Realistic normalized events, made by running raw Graph records through the real normalizer."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from shared.ingestion.normalize import normalize_record
from shared.platform.clock import utc_iso


def _graph_time(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f0Z")


def _initiated_by(actor: str) -> dict[str, Any]:
    return {
        "app": None,
        "user": {
            "id": str(uuid.uuid5(uuid.NAMESPACE_URL, actor)),
            "displayName": actor.split("@")[0].title(),
            "userPrincipalName": actor,
            "ipAddress": "203.0.113.7",
        },
    }


def _user_target(upn: str, properties: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, upn)),
        "displayName": None,
        "type": "User",
        "userPrincipalName": upn,
        "modifiedProperties": properties or [],
    }


def _prop(name: str, old: str | None, new: str | None) -> dict[str, Any]:
    return {"displayName": name, "oldValue": old, "newValue": new}


def role_assignment_record(
    moment: dt.datetime, actor: str, member: str, role: str = "Global Administrator"
) -> dict[str, Any]:
    template = "62e90394-69f5-4237-9190-012177145e10" if role == "Global Administrator" else str(uuid.uuid4())
    return {
        "id": f"Directory_{uuid.uuid4()}",
        "category": "RoleManagement",
        "correlationId": str(uuid.uuid4()),
        "result": "success",
        "resultReason": "",
        "activityDisplayName": "Add member to role",
        "activityDateTime": _graph_time(moment),
        "loggedByService": "Core Directory",
        "operationType": "Assign",
        "initiatedBy": _initiated_by(actor),
        "targetResources": [
            _user_target(
                member,
                [
                    _prop("Role.ObjectID", None, f'"{template}"'),
                    _prop("Role.DisplayName", None, f'"{role}"'),
                    _prop("Role.TemplateId", None, f'"{template}"'),
                ],
            ),
            {
                "id": template,
                "displayName": role,
                "type": "Role",
                "userPrincipalName": None,
                "modifiedProperties": [],
            },
        ],
        "additionalDetails": [],
    }


def delete_user_record(moment: dt.datetime, actor: str, deleted: str) -> dict[str, Any]:
    return {
        "id": f"Directory_{uuid.uuid4()}",
        "category": "UserManagement",
        "correlationId": str(uuid.uuid4()),
        "result": "success",
        "resultReason": "",
        "activityDisplayName": "Delete user",
        "activityDateTime": _graph_time(moment),
        "loggedByService": "Core Directory",
        "operationType": "Delete",
        "initiatedBy": _initiated_by(actor),
        "targetResources": [_user_target(deleted)],
        "additionalDetails": [],
    }


def normalized(record: dict[str, Any], tenant_id: str, source: str = "entra_audit") -> dict[str, Any]:
    return normalize_record(source, record, tenant_id=tenant_id, ingested_at=utc_iso(dt.datetime.now(dt.UTC)))
