"""What governance reads about one service principal, as pydantic models built from Microsoft Graph v1.0
wire JSON.

The Graph shapes followed (https://learn.microsoft.com/graph/api/resources/...):

- `servicePrincipal` (GET /v1.0/servicePrincipals/{id} or a servicePrincipals/delta page): id, appId,
  displayName, appDisplayName, notes, accountEnabled, servicePrincipalType, appOwnerOrganizationId,
  signInAudience, passwordCredentials, keyCredentials, verifiedPublisher, tags, appRoles;
- `application` (GET /v1.0/applications(appId='{appId}') or an applications/delta page), present only
  when the app is registered in this tenant: id, appId, displayName, notes, signInAudience,
  publisherDomain, passwordCredentials, keyCredentials, verifiedPublisher;
- `passwordCredential` (keyId, displayName, hint, startDateTime, endDateTime) and `keyCredential`
  (keyId, displayName, type, usage, startDateTime, endDateTime). `secretText`, `key` and
  `customKeyIdentifier` are never kept: they are dropped while reading;
- `verifiedPublisher` (displayName, verifiedPublisherId, addedDateTime): Graph returns the object with
  every property null for an unverified publisher;
- owners: the `directoryObject` items of GET /servicePrincipals/{id}/owners and
  /applications/{id}/owners, told apart by `@odata.type` (`#microsoft.graph.user`,
  `#microsoft.graph.servicePrincipal`). accountEnabled and userType are not default properties of a user:
  discovery must ask for them (`$select=id,displayName,userPrincipalName,accountEnabled,userType,appId`).
  Without permission to read users Graph returns only `@odata.type` and `id` (the other properties
  null); such an owner's standing is "unknown", never assumed enabled;
- `appRoleAssignment` (GET /servicePrincipals/{id}/appRoleAssignments: id, appRoleId, principalId,
  principalType, principalDisplayName, resourceId, resourceDisplayName, createdDateTime,
  deletedDateTime). The permission's name is the `value` of the `appRole` with that id on the resource
  service principal (its `appRoles`), so the caller passes the resource service principals it read
  (for Microsoft Graph: GET /servicePrincipals(appId='00000003-0000-0000-c000-000000000000')
  ?$select=id,appId,displayName,appRoles);
- directory roles: `directoryRole` items of GET /servicePrincipals/{id}/memberOf (id, displayName,
  description, roleTemplateId; groups in the same page are skipped), and/or `unifiedRoleAssignment`
  items of GET /roleManagement/directory/roleAssignments?$filter=principalId eq '{id}'
  (roleDefinitionId, which for a built-in role is its template id, and directoryScopeId).

Reading is tolerant of missing optional properties (they become None or empty) and of properties this
module does not know (Graph types are open), and strict on types: a string where a boolean belongs, a
number where a string belongs, a time that is not ISO-8601 or an id that is not a GUID is a pydantic
ValidationError naming the field. Times are kept as aware UTC datetimes (Graph's DateTimeOffset is
always UTC; a string without an offset is read as UTC), GUIDs in lower case.

Models read Graph's camelCase names and also their own snake_case names, so `model_dump(mode="json")`
of a GovernedObject (a queue message, a stored last-known-good) reads back with `model_validate`.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    StrictBool,
    StrictStr,
    model_validator,
)

from shared.platform.clock import parse_utc, utc_iso

GUID = re.compile(r"^[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
MICROSOFT_GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
DEFAULT_APP_ROLE_ID = "00000000-0000-0000-0000-000000000000"  # "assigned to the app, no particular role"
USER_TYPE = "#microsoft.graph.user"
SERVICE_PRINCIPAL_TYPE = "#microsoft.graph.servicePrincipal"
DIRECTORY_ROLE_TYPE = "#microsoft.graph.directoryRole"
TENANT_WIDE_SCOPE = "/"

OwnerKind = Literal["user", "servicePrincipal", "other"]
OwnerStanding = Literal["accountable", "disabled", "guest", "service-principal", "unknown", "other"]
CredentialLocation = Literal["servicePrincipal", "application"]
CredentialKind = Literal["password", "certificate", "symmetricKey"]


def _guid(value: str) -> str:
    if not GUID.fullmatch(value):
        raise ValueError(f"{value[:60]!r} is not a GUID")
    return value.lower()


def _graph_time(value: object) -> object:
    """An ISO-8601 string (Graph's DateTimeOffset, up to 7 fractional digits) or an aware datetime, as an
    aware UTC datetime; None stays None."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise ValueError("a time must carry its UTC offset")
        return value.astimezone(dt.UTC)
    if isinstance(value, str):
        try:
            return parse_utc(value)
        except ValueError:
            raise ValueError(f"{value[:60]!r} is not an ISO-8601 time") from None
    raise ValueError("a time must be an ISO-8601 string")


def _none_as_empty(value: object) -> object:
    return () if value is None else value


Guid = Annotated[StrictStr, AfterValidator(_guid)]
GraphTime = Annotated[dt.datetime, BeforeValidator(_graph_time)]


class _Wire(BaseModel):
    """A Graph object: unknown properties ignored, types strict, immutable."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class VerifiedPublisher(_Wire):
    display_name: StrictStr | None = Field(default=None, alias="displayName")
    verified_publisher_id: StrictStr | None = Field(default=None, alias="verifiedPublisherId")
    added_date_time: GraphTime | None = Field(default=None, alias="addedDateTime")

    @property
    def is_verified(self) -> bool:
        """Publisher verification is done: Graph fills verifiedPublisherId only then."""
        return bool(self.verified_publisher_id and self.verified_publisher_id.strip())


class PasswordCredential(_Wire):
    """A client secret's metadata (never its text)."""

    key_id: Guid | None = Field(default=None, alias="keyId")
    display_name: StrictStr | None = Field(default=None, alias="displayName")
    hint: StrictStr | None = None
    start_date_time: GraphTime | None = Field(default=None, alias="startDateTime")
    end_date_time: GraphTime | None = Field(default=None, alias="endDateTime")


class KeyCredential(_Wire):
    """A certificate (type AsymmetricX509Cert or X509CertAndPassword) or symmetric key (type Symmetric)."""

    key_id: Guid | None = Field(default=None, alias="keyId")
    display_name: StrictStr | None = Field(default=None, alias="displayName")
    type: StrictStr | None = None
    usage: StrictStr | None = None
    start_date_time: GraphTime | None = Field(default=None, alias="startDateTime")
    end_date_time: GraphTime | None = Field(default=None, alias="endDateTime")


PasswordCredentials = Annotated[tuple[PasswordCredential, ...], BeforeValidator(_none_as_empty)]
KeyCredentials = Annotated[tuple[KeyCredential, ...], BeforeValidator(_none_as_empty)]
Strings = Annotated[tuple[StrictStr, ...], BeforeValidator(_none_as_empty)]


class AppRole(_Wire):
    """An app role a resource service principal exposes; `value` is the permission's name
    (Mail.ReadWrite) for an application permission."""

    id: Guid
    value: StrictStr | None = None
    display_name: StrictStr | None = Field(default=None, alias="displayName")
    allowed_member_types: Strings = Field(default=(), alias="allowedMemberTypes")
    is_enabled: StrictBool | None = Field(default=None, alias="isEnabled")


class ServicePrincipal(_Wire):
    id: Guid
    app_id: Guid | None = Field(default=None, alias="appId")
    display_name: StrictStr | None = Field(default=None, alias="displayName")
    app_display_name: StrictStr | None = Field(default=None, alias="appDisplayName")
    notes: StrictStr | None = None
    account_enabled: StrictBool | None = Field(default=None, alias="accountEnabled")
    service_principal_type: StrictStr | None = Field(default=None, alias="servicePrincipalType")
    app_owner_organization_id: Guid | None = Field(default=None, alias="appOwnerOrganizationId")
    sign_in_audience: StrictStr | None = Field(default=None, alias="signInAudience")
    password_credentials: PasswordCredentials = Field(default=(), alias="passwordCredentials")
    key_credentials: KeyCredentials = Field(default=(), alias="keyCredentials")
    verified_publisher: VerifiedPublisher | None = Field(default=None, alias="verifiedPublisher")
    tags: Strings = ()
    app_roles: Annotated[tuple[AppRole, ...], BeforeValidator(_none_as_empty)] = Field(
        default=(), alias="appRoles"
    )

    @classmethod
    def from_graph(cls, record: Mapping[str, Any]) -> ServicePrincipal:
        """One servicePrincipal as Graph returns it. A delta entry marked `@removed` is refused
        (ValueError): a deleted service principal is not governed."""
        if "@removed" in record:
            raise ValueError(f"service principal {record.get('id')!r} was removed (a delta '@removed' entry)")
        return cls.model_validate(dict(record))


class Application(_Wire):
    id: Guid
    app_id: Guid | None = Field(default=None, alias="appId")
    display_name: StrictStr | None = Field(default=None, alias="displayName")
    notes: StrictStr | None = None
    sign_in_audience: StrictStr | None = Field(default=None, alias="signInAudience")
    publisher_domain: StrictStr | None = Field(default=None, alias="publisherDomain")
    password_credentials: PasswordCredentials = Field(default=(), alias="passwordCredentials")
    key_credentials: KeyCredentials = Field(default=(), alias="keyCredentials")
    verified_publisher: VerifiedPublisher | None = Field(default=None, alias="verifiedPublisher")

    @classmethod
    def from_graph(cls, record: Mapping[str, Any]) -> Application:
        if "@removed" in record:
            raise ValueError(f"application {record.get('id')!r} was removed (a delta '@removed' entry)")
        return cls.model_validate(dict(record))


class DirectoryPrincipal(_Wire):
    """An owner (or a user found by UPN): a directoryObject that is a user or a service principal."""

    odata_type: StrictStr | None = Field(default=None, alias="@odata.type")
    id: Guid
    display_name: StrictStr | None = Field(default=None, alias="displayName")
    user_principal_name: StrictStr | None = Field(default=None, alias="userPrincipalName")
    account_enabled: StrictBool | None = Field(default=None, alias="accountEnabled")
    user_type: StrictStr | None = Field(default=None, alias="userType")
    app_id: Guid | None = Field(default=None, alias="appId")

    @property
    def kind(self) -> OwnerKind:
        """From `@odata.type`; when Graph left it out, a UPN means a user and an appId a service principal."""
        if self.odata_type is not None:
            lowered = self.odata_type.lower()
            if lowered == USER_TYPE.lower():
                return "user"
            if lowered == SERVICE_PRINCIPAL_TYPE.lower():
                return "servicePrincipal"
            return "other"
        if self.user_principal_name is not None:
            return "user"
        if self.app_id is not None:
            return "servicePrincipal"
        return "other"

    @property
    def is_guest(self) -> bool:
        """userType Guest; when userType was not read, a UPN of the external form (…#EXT#@…)."""
        if self.user_type is not None:
            return self.user_type.casefold() == "guest"
        return "#ext#" in (self.user_principal_name or "").casefold()

    def standing(
        self, *, allow_guests: bool = False, allow_service_principals: bool = False
    ) -> OwnerStanding:
        """Whether this owner is accountable, and if not why.

        A user is accountable when accountEnabled is true and it is a member (or a guest, with
        `allow_guests`). accountEnabled not read gives "unknown": the owner is never assumed enabled. A
        service principal owner counts only with `allow_service_principals` (and not when disabled);
        a group or anything else never does.
        """
        kind = self.kind
        if kind == "user":
            if self.account_enabled is None:
                return "unknown"
            if not self.account_enabled:
                return "disabled"
            if self.is_guest and not allow_guests:
                return "guest"
            return "accountable"
        if kind == "servicePrincipal":
            if not allow_service_principals:
                return "service-principal"
            if self.account_enabled is None:
                return "unknown"
            return "accountable" if self.account_enabled else "disabled"
        return "other"

    def label(self) -> str:
        return self.user_principal_name or self.display_name or self.id


class AppRoleAssignment(_Wire):
    """An application permission granted to the service principal (its appRoleAssignments)."""

    id: StrictStr
    app_role_id: Guid = Field(alias="appRoleId")
    principal_id: Guid | None = Field(default=None, alias="principalId")
    principal_type: StrictStr | None = Field(default=None, alias="principalType")
    principal_display_name: StrictStr | None = Field(default=None, alias="principalDisplayName")
    resource_id: Guid = Field(alias="resourceId")
    resource_display_name: StrictStr | None = Field(default=None, alias="resourceDisplayName")
    created_date_time: GraphTime | None = Field(default=None, alias="createdDateTime")
    deleted_date_time: GraphTime | None = Field(default=None, alias="deletedDateTime")


class AppPermission(_Wire):
    """An app role assignment with the permission's name resolved through the resource's appRoles.
    `value` and `resource_app_id` are None when the resource service principal was not supplied or
    does not expose that role (or for the default role id, which names no permission)."""

    assignment_id: StrictStr
    resource_id: Guid
    resource_app_id: Guid | None = None
    resource_display_name: StrictStr | None = None
    app_role_id: Guid
    value: StrictStr | None = None
    granted_at: GraphTime | None = None


def resolve_app_permissions(
    assignments: Iterable[AppRoleAssignment], resources: Iterable[ServicePrincipal]
) -> tuple[AppPermission, ...]:
    """Each assignment (those not deleted) with its permission's name, from the resource service
    principal whose id is the assignment's resourceId."""
    by_id = {resource.id: resource for resource in resources}
    permissions = []
    for assignment in assignments:
        if assignment.deleted_date_time is not None:
            continue
        resource = by_id.get(assignment.resource_id)
        role = None
        if resource is not None:
            role = next((r for r in resource.app_roles if r.id == assignment.app_role_id), None)
        permissions.append(
            AppPermission(
                assignment_id=assignment.id,
                resource_id=assignment.resource_id,
                resource_app_id=resource.app_id if resource is not None else None,
                resource_display_name=assignment.resource_display_name
                or (resource.display_name if resource is not None else None),
                app_role_id=assignment.app_role_id,
                value=role.value if role is not None else None,
                granted_at=assignment.created_date_time,
            )
        )
    return tuple(permissions)


class DirectoryRole(_Wire):
    """An activated directory role, as a memberOf item."""

    odata_type: StrictStr | None = Field(default=None, alias="@odata.type")
    id: Guid
    display_name: StrictStr | None = Field(default=None, alias="displayName")
    description: StrictStr | None = None
    role_template_id: Guid = Field(alias="roleTemplateId")


class DirectoryRoleMembership(_Wire):
    """The service principal holds a directory role. `directory_scope_id` is "/" for the whole tenant
    (always so for a memberOf directoryRole); a role assignment may be scoped narrower (/{objectId},
    /administrativeUnits/{id})."""

    role_template_id: Guid
    display_name: StrictStr | None = None
    directory_scope_id: StrictStr = TENANT_WIDE_SCOPE
    via: Literal["memberOf", "roleAssignment"] = "memberOf"

    @property
    def tenant_wide(self) -> bool:
        return self.directory_scope_id == TENANT_WIDE_SCOPE


def directory_roles_from_member_of(items: Iterable[Mapping[str, Any]]) -> tuple[DirectoryRoleMembership, ...]:
    """The directoryRole items of a memberOf listing (groups and other types are skipped)."""
    roles = []
    for item in items:
        odata_type = item.get("@odata.type")
        if isinstance(odata_type, str) and odata_type.lower() != DIRECTORY_ROLE_TYPE.lower():
            continue
        if odata_type is None and "roleTemplateId" not in item:
            continue
        role = DirectoryRole.model_validate(dict(item))
        roles.append(
            DirectoryRoleMembership(role_template_id=role.role_template_id, display_name=role.display_name)
        )
    return tuple(roles)


class _UnifiedRoleDefinition(_Wire):
    display_name: StrictStr | None = Field(default=None, alias="displayName")
    template_id: Guid | None = Field(default=None, alias="templateId")


class _UnifiedRoleAssignment(_Wire):
    role_definition_id: Guid = Field(alias="roleDefinitionId")
    directory_scope_id: StrictStr = Field(default=TENANT_WIDE_SCOPE, alias="directoryScopeId")
    role_definition: _UnifiedRoleDefinition | None = Field(default=None, alias="roleDefinition")


def directory_roles_from_role_assignments(
    items: Iterable[Mapping[str, Any]],
) -> tuple[DirectoryRoleMembership, ...]:
    """unifiedRoleAssignment items (roleManagement/directory/roleAssignments, optionally with
    $expand=roleDefinition). A built-in role's roleDefinitionId is its template id; an expanded
    roleDefinition's templateId wins when present (custom roles)."""
    roles = []
    for item in items:
        assignment = _UnifiedRoleAssignment.model_validate(dict(item))
        definition = assignment.role_definition
        template = definition.template_id if definition is not None and definition.template_id else None
        roles.append(
            DirectoryRoleMembership(
                role_template_id=template or assignment.role_definition_id,
                display_name=definition.display_name if definition is not None else None,
                directory_scope_id=assignment.directory_scope_id,
                via="roleAssignment",
            )
        )
    return tuple(roles)


class Credential(BaseModel):
    """A password or key credential, wherever it lives (the service principal or its application)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    location: CredentialLocation
    kind: CredentialKind
    key_id: str | None
    display_name: str | None
    start: dt.datetime | None
    end: dt.datetime | None

    @property
    def is_secret(self) -> bool:
        """A client secret or a symmetric key: a shared secret, as opposed to a certificate."""
        return self.kind != "certificate"

    def subject(self) -> str:
        """A stable name for the credential within its object: `application:password:<keyId>`."""
        return f"{self.location}:{self.kind}:{self.key_id or self.display_name or '?'}"

    def describe(self, *, capital: bool = False) -> str:
        """`client secret 'CI deploy' (keyId) on the application`."""
        noun = {"password": "client secret", "certificate": "certificate", "symmetricKey": "symmetric key"}
        where = "application" if self.location == "application" else "service principal"
        name = f" '{self.display_name}'" if self.display_name else ""
        text = f"{noun[self.kind]}{name} ({self.key_id or 'no key id'}) on the {where}"
        return text[0].upper() + text[1:] if capital else text

    def evidence(self) -> dict[str, JsonValue]:
        return {
            "location": self.location,
            "kind": self.kind,
            "key_id": self.key_id,
            "display_name": self.display_name,
            "start": _iso(self.start),
            "end": _iso(self.end),
        }


def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else utc_iso(value)


def _credentials(
    location: CredentialLocation, passwords: Iterable[PasswordCredential], keys: Iterable[KeyCredential]
) -> list[Credential]:
    found = [
        Credential(
            location=location,
            kind="password",
            key_id=p.key_id,
            display_name=p.display_name,
            start=p.start_date_time,
            end=p.end_date_time,
        )
        for p in passwords
    ]
    found.extend(
        Credential(
            location=location,
            kind="symmetricKey" if (k.type or "").casefold() == "symmetric" else "certificate",
            key_id=k.key_id,
            display_name=k.display_name,
            start=k.start_date_time,
            end=k.end_date_time,
        )
        for k in keys
    )
    return found


Owners = Annotated[tuple[DirectoryPrincipal, ...], BeforeValidator(_none_as_empty)]


class GovernedObject(BaseModel):
    """Everything the validators look at for one service principal.

    `owners` are the service principal's owners, `application_owners` those of its application (read
    only when the application is registered in this tenant). Build one from Graph JSON with
    `from_graph`; store and reload it with `model_dump(mode="json")` / `model_validate`.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    service_principal: ServicePrincipal
    application: Application | None = None
    owners: Owners = ()
    application_owners: Owners = ()
    app_permissions: Annotated[tuple[AppPermission, ...], BeforeValidator(_none_as_empty)] = ()
    directory_roles: Annotated[tuple[DirectoryRoleMembership, ...], BeforeValidator(_none_as_empty)] = ()

    @model_validator(mode="after")
    def _same_app(self) -> GovernedObject:
        sp_app, app = self.service_principal.app_id, self.application
        if app is not None and sp_app is not None and app.app_id is not None and app.app_id != sp_app:
            raise ValueError(f"the application's appId {app.app_id} is not the service principal's {sp_app}")
        return self

    @classmethod
    def from_graph(
        cls,
        service_principal: Mapping[str, Any],
        *,
        application: Mapping[str, Any] | None = None,
        owners: Iterable[Mapping[str, Any]] = (),
        application_owners: Iterable[Mapping[str, Any]] = (),
        app_role_assignments: Iterable[Mapping[str, Any]] = (),
        resources: Iterable[Mapping[str, Any] | ServicePrincipal] = (),
        member_of: Iterable[Mapping[str, Any]] = (),
        role_assignments: Iterable[Mapping[str, Any]] = (),
    ) -> GovernedObject:
        """One governed object from the Graph responses that describe it (each collection is the `value`
        items of its listing, every page joined). `resources` are the resource service principals of the
        app role assignments (with their appRoles), so each permission gets its name. An assignment whose
        principalId is not this service principal is refused (ValueError), as is an application whose
        appId differs from the service principal's."""
        sp = ServicePrincipal.from_graph(service_principal)
        assignments = [AppRoleAssignment.model_validate(dict(a)) for a in app_role_assignments]
        for assignment in assignments:
            if assignment.principal_id is not None and assignment.principal_id != sp.id:
                raise ValueError(
                    f"app role assignment {assignment.id!r} is granted to {assignment.principal_id}, "
                    f"not to service principal {sp.id}"
                )
        resource_models = [
            r if isinstance(r, ServicePrincipal) else ServicePrincipal.model_validate(dict(r))
            for r in resources
        ]
        return cls(
            service_principal=sp,
            application=Application.from_graph(application) if application is not None else None,
            owners=tuple(DirectoryPrincipal.model_validate(dict(o)) for o in owners),
            application_owners=tuple(DirectoryPrincipal.model_validate(dict(o)) for o in application_owners),
            app_permissions=resolve_app_permissions(assignments, resource_models),
            directory_roles=directory_roles_from_member_of(member_of)
            + directory_roles_from_role_assignments(role_assignments),
        )

    @property
    def id(self) -> str:
        return self.service_principal.id

    @property
    def display_name(self) -> str:
        sp = self.service_principal
        return sp.display_name or sp.app_display_name or sp.id

    @property
    def notes(self) -> str | None:
        """The service principal's notes: what the notes validator checks and remediation writes."""
        return self.service_principal.notes

    def all_owners(self) -> tuple[DirectoryPrincipal, ...]:
        """The service principal's owners, then the application's owners that are not also the service
        principal's (by object id)."""
        seen: set[str] = set()
        merged = []
        for owner in (*self.owners, *self.application_owners):
            if owner.id not in seen:
                seen.add(owner.id)
                merged.append(owner)
        return tuple(merged)

    def accountable_owners(self, *, allow_guests: bool = False) -> tuple[DirectoryPrincipal, ...]:
        """The owners that are users, enabled, and members (guests too with `allow_guests`)."""
        return tuple(
            owner
            for owner in self.all_owners()
            if owner.kind == "user" and owner.standing(allow_guests=allow_guests) == "accountable"
        )

    def credentials(self) -> tuple[Credential, ...]:
        """Every password and key credential: the service principal's, then the application's."""
        sp, app = self.service_principal, self.application
        found = _credentials("servicePrincipal", sp.password_credentials, sp.key_credentials)
        if app is not None:
            found.extend(_credentials("application", app.password_credentials, app.key_credentials))
        return tuple(found)

    def with_notes(self, notes: str | None) -> GovernedObject:
        """The same object with the service principal's notes replaced (to check a candidate value)."""
        return self.model_copy(
            update={"service_principal": self.service_principal.model_copy(update={"notes": notes})}
        )
