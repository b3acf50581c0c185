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
    PURVIEW = "Purview"
    VIVA_ENGAGE = "VivaEngage"
    VIVA = "Viva"
    COPILOT = "Copilot"
    FORMS = "Forms"
    PLANNER = "Planner"
    STREAM = "Stream"
    PROJECT = "Project"
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
    """Who acted. `application`: an app with its own identity (Graph `initiatedBy.app`, Management
    UserType 5, app-only mailbox access, `app@sharepoint`); `service_principal`: a service principal or
    managed identity named as such by the source (UserType 6, `ServicePrincipal_<guid>`, service
    principal sign-ins). Documents stored before attribution 2 say `app`, read as `application`."""

    USER = "user"
    APPLICATION = "application"
    SERVICE_PRINCIPAL = "service_principal"
    SYSTEM = "system"
    UNKNOWN = "unknown"

    @classmethod
    def _missing_(cls, value: object) -> ActorType | None:
        return cls.APPLICATION if value == "app" else None


class ClientApp(BaseModel):
    """The client application an actor used: `id` is the appId (client id), `name` its display name."""

    id: str | None = None
    name: str | None = None


class Actor(BaseModel):
    """`id` is the Entra object id whenever the record has one (for an application without one, its
    appId); `ip` only ever holds a parsed IPv4 or IPv6 address. The original values stay in raw."""

    type: ActorType = ActorType.UNKNOWN
    id: str | None = None
    upn: str | None = None
    display: str | None = None
    ip: str | None = None
    client_app: ClientApp | None = None


class ModifiedProperty(BaseModel):
    name: str
    old: Any = None
    new: Any = None


class Target(BaseModel):
    type: str | None = None
    id: str | None = None
    display: str | None = None
    modified_properties: list[ModifiedProperty] = Field(default_factory=list)


class SignInLocation(BaseModel):
    city: str | None = None
    state: str | None = None
    country: str | None = None  # ISO 3166 alpha-2, as Graph sends countryOrRegion
    latitude: float | None = None
    longitude: float | None = None


class SignInDevice(BaseModel):
    id: str | None = None
    name: str | None = None
    os: str | None = None
    browser: str | None = None
    compliant: bool | None = None
    managed: bool | None = None
    trust_type: str | None = None


class AppliedPolicy(BaseModel):
    """A Conditional Access policy evaluated for a sign-in; result as Graph says it (success, failure,
    reportOnlyFailure, ...)."""

    id: str | None = None
    name: str | None = None
    result: str | None = None


class SignIn(BaseModel):
    """The sign-in facts detections and the activity map need (Graph signIn, v1.0)."""

    interactive: bool | None = None
    client_app: str | None = None  # clientAppUsed: Browser, Exchange ActiveSync, IMAP4, ...
    legacy_auth: bool | None = None  # client_app is a legacy-authentication protocol
    ca_status: str | None = None  # conditionalAccessStatus: success, failure, notApplied
    ca_policies: list[AppliedPolicy] = Field(default_factory=list)
    location: SignInLocation | None = None
    device: SignInDevice | None = None
    risk_level: str | None = None  # riskLevelDuringSignIn
    risk_level_aggregated: str | None = None
    risk_state: str | None = None
    risk_events: list[str] = Field(default_factory=list)  # riskEventTypes_v2
    authentication_requirement: str | None = None  # singleFactorAuthentication, multiFactorAuthentication
    additional_details: str | None = None  # status.additionalDetails
    user_agent: str | None = None


class DlpMatch(BaseModel):
    """What a DLP policy matched on (Management DLP.All records)."""

    policy: str | None = None
    rule: str | None = None
    severity: str | None = None
    actions: list[str] = Field(default_factory=list)
    sensitive_types: list[str] = Field(default_factory=list)


class SecurityAlert(BaseModel):
    """A Security & Compliance / Defender alert record (`AlertTriggered`, `AlertEntityGenerated`, ...)."""

    id: str | None = None
    name: str | None = None
    severity: str | None = None
    category: str | None = None
    status: str | None = None
    source: str | None = None
    entity: str | None = None


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
    result_code: int | None = None  # the source's numeric error code (sign-in errorCode, STS ErrorNumber)
    actor: Actor = Field(default_factory=Actor)
    targets: list[Target] = Field(default_factory=list)
    timestamp: str
    ingested_at: str
    correlation_id: str | None = None
    signin: SignIn | None = None  # sign-ins only
    dlp: DlpMatch | None = None  # DLP records only
    security_alert: SecurityAlert | None = None  # Security & Compliance / Defender alert records only
    summary: str = ""
    tags: list[str] = Field(default_factory=list)
    raw_ref: RawRef | None = None
    raw: dict[str, Any] | None = None


def partition_key(tenant_id: str, timestamp_iso: str) -> str:
    """Tenant plus month of the event time: `contoso-tenant-id:2026-11`."""
    return f"{tenant_id}:{timestamp_iso[:7]}"
