"""The canonical event: one model for every audit source."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Service(StrEnum):
    DIRECTORY = "Directory"
    SIGN_INS = "SignIns"
    INTUNE = "Intune"
    EXCHANGE = "Exchange"
    SHAREPOINT = "SharePoint"
    ONEDRIVE = "OneDrive"
    TEAMS = "Teams"
    DLP = "DLP"
    SECURITY = "Security"
    POWER_PLATFORM = "PowerPlatform"
    OTHER = "Other"


class OperationType(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    ASSIGN = "assign"
    UNASSIGN = "unassign"
    ACTION = "action"
    READ = "read"
    SIGN_IN = "sign_in"
    OTHER = "other"


class Result(StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"
    UNKNOWN = "unknown"


class ActorType(StrEnum):
    USER = "user"
    APP = "app"
    SYSTEM = "system"
    UNKNOWN = "unknown"


class Actor(BaseModel):
    type: ActorType = ActorType.UNKNOWN
    id: str | None = None
    upn: str | None = None
    display: str | None = None
    ip: str | None = None


class ModifiedProperty(BaseModel):
    name: str
    old: Any = None
    new: Any = None


class Target(BaseModel):
    type: str | None = None
    id: str | None = None
    display: str | None = None
    modified_properties: list[ModifiedProperty] = Field(default_factory=list)


class RawRef(BaseModel):
    blob: str
    line: int


class Event(BaseModel):
    """A normalized audit event as stored in the Cosmos `events` container."""

    model_config = ConfigDict(use_enum_values=True)

    id: str
    pk: str
    tenant_id: str
    source: str
    service: Service
    category: str | None = None
    operation: str
    operation_type: OperationType = OperationType.OTHER
    result: Result = Result.UNKNOWN
    result_reason: str | None = None
    actor: Actor = Field(default_factory=Actor)
    targets: list[Target] = Field(default_factory=list)
    timestamp: str
    ingested_at: str
    correlation_id: str | None = None
    summary: str = ""
    tags: list[str] = Field(default_factory=list)
    raw_ref: RawRef | None = None
    raw: dict[str, Any] | None = None


def partition_key(tenant_id: str, timestamp_iso: str) -> str:
    """Tenant plus month of the event time: `contoso-tenant-id:2026-11`."""
    return f"{tenant_id}:{timestamp_iso[:7]}"
