"""The validators file: which validators run, at which severity, on which service principals, with
which parameters. `shared/governance/validators.yaml` ships with the app.

Like the rule file (shared/rules/model.py), a file is validated whole when it loads and refused with one
message per problem, each naming the validator (its id, else its position) and the field:

    validator 'credential-expiry': parameters.windows_days[1]: Input should be greater than 0
    validators[3]: id: unknown validator 'notes-list-owners' (known: credential-expiry, ...)

Format (version 1):

    version: 1
    scope:                                  # which service principals validators look at
      service_principal_types: [Application]
      exclude_app_owner_tenants: [f8cdef31-a31e-4b4a-93e4-5f571e91255a]
    validators:
      - id: credential-expiry               # one of VALIDATOR_IDS, at most once
        severity: medium                    # informational | low | medium | high | critical
        enabled: true                       # default true
        scope: {...}                        # optional: replaces the file's scope for this validator
        parameters: {windows_days: [30, 14, 7]}   # optional: each validator's own, defaults below

A validator left out of the file does not run.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
)

from shared.governance.model import MICROSOFT_GRAPH_APP_ID, GovernedObject, Guid
from shared.platform.yaml_bounded import load_yaml_bounded
from shared.rules.model import Severity

DEFAULT_VALIDATORS_FILE = Path(__file__).with_name("validators.yaml")

# Tenants that publish Microsoft's own first-party applications (appOwnerOrganizationId): Microsoft
# Services and Microsoft's corporate tenant. Their service principals have no owners in your tenant and
# are not yours to fix, so the default scope leaves them out.
MICROSOFT_SERVICES_TENANT = "f8cdef31-a31e-4b4a-93e4-5f571e91255a"
MICROSOFT_CORP_TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"

# servicePrincipalType values Graph documents.
SERVICE_PRINCIPAL_TYPES: tuple[str, ...] = ("Application", "ManagedIdentity", "Legacy", "SocialIdp")
SignInAudience = Literal[
    "AzureADMyOrg", "AzureADMultipleOrgs", "AzureADandPersonalMicrosoftAccount", "PersonalMicrosoftAccount"
]
MULTI_TENANT_AUDIENCES: tuple[SignInAudience, ...] = (
    "AzureADMultipleOrgs",
    "AzureADandPersonalMicrosoftAccount",
)
PERMISSION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")

# Microsoft Graph application permissions that give a direct or indirect path to control of the tenant
# or to its data (the list; Maester MT.1050/1051 and the azure-tiering list agree on the first
# seven).
DEFAULT_HIGH_PRIVILEGE_PERMISSIONS: tuple[str, ...] = (
    "RoleManagement.ReadWrite.Directory",
    "AppRoleAssignment.ReadWrite.All",
    "Application.ReadWrite.All",
    "Directory.ReadWrite.All",
    "Policy.ReadWrite.ConditionalAccess",
    "UserAuthenticationMethod.ReadWrite.All",
    "Domain.ReadWrite.All",
    "Mail.ReadWrite",
    "Files.ReadWrite.All",
    "Sites.FullControl.All",
)

# Built-in directory roles by template id (Microsoft Entra built-in roles reference). The first eight are
# CISA ScubaGear's "highly privileged roles" (MS.AAD baseline); the rest give a path to Global
# Administrator through authentication methods, Conditional Access, security settings or federation.
PRIVILEGED_ROLE_TEMPLATES: dict[str, str] = {
    "62e90394-69f5-4237-9190-012177145e10": "Global Administrator",
    "e8611ab8-c189-46e8-94e1-60213ab1f814": "Privileged Role Administrator",
    "fe930be7-5e62-47db-91af-98c3a49a38b1": "User Administrator",
    "f28a1f50-f6e7-4571-818b-6a12f2af6b6c": "SharePoint Administrator",
    "29232cdf-9323-42fd-ade2-1d097af3e4de": "Exchange Administrator",
    "8ac3fc64-6eca-42ea-9e69-59f4c7b60eb2": "Hybrid Identity Administrator",
    "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3": "Application Administrator",
    "158c047a-c907-4556-b7ef-446551a6b5f7": "Cloud Application Administrator",
    "7be44c8a-adaf-4e2a-84d6-ab2649e08a13": "Privileged Authentication Administrator",
    "b1be1c3e-b65d-4f19-8427-f6fa0d97feb9": "Conditional Access Administrator",
    "194ae4cb-b126-40b2-bd5b-6091b380977d": "Security Administrator",
    "8329153b-31d0-4727-b945-745eb3bc5f31": "Domain Name Administrator",
    "be2f45a1-457d-42af-a067-6ec1fa63bc45": "External Identity Provider Administrator",
}


class ValidatorConfigError(ValueError):
    """A validators file that cannot be used: every message names the validator and the field."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _unique(values: tuple[str, ...], what: str) -> tuple[str, ...]:
    seen: set[str] = set()
    for value in values:
        if value.casefold() in seen:
            raise ValueError(f"{what} {value!r} is listed twice")
        seen.add(value.casefold())
    return values


def _non_empty(values: tuple[Any, ...]) -> tuple[Any, ...]:
    if not values:
        raise ValueError("give at least one value")
    return values


_T = TypeVar("_T")
# A non-empty list (checked after its items, so a bad item is reported once, not also as "too short").
NonEmpty = Annotated[tuple[_T, ...], AfterValidator(_non_empty)]


class Scope(_Config):
    """Which service principals a validator looks at: those of the listed servicePrincipalType (one whose
    type was not read counts as in scope), except those whose application another listed tenant owns."""

    service_principal_types: NonEmpty[Literal["Application", "ManagedIdentity", "Legacy", "SocialIdp"]] = (
        "Application",
    )
    exclude_app_owner_tenants: tuple[Guid, ...] = (MICROSOFT_SERVICES_TENANT, MICROSOFT_CORP_TENANT)

    def applies_to(self, obj: GovernedObject) -> bool:
        sp = obj.service_principal
        kind = sp.service_principal_type
        if kind is not None and kind.casefold() not in {t.casefold() for t in self.service_principal_types}:
            return False
        return sp.app_owner_organization_id not in self.exclude_app_owner_tenants


class NotesParameters(_Config):
    """notes-lists-owners. `require_owner`: each UPN in notes must be an accountable owner of the object
    (as read with it); when false, a UPN that is not an owner may instead be an enabled member user the
    caller's DirectoryLookup finds. `allow_guests`: an enabled guest counts as accountable."""

    require_owner: bool = True
    allow_guests: bool = False


class OwnerlessParameters(_Config):
    """ownerless. Fires when no owner is accountable: an enabled member user (an enabled guest too with
    `allow_guests`, an enabled service principal too with `allow_service_principal_owners`)."""

    allow_guests: bool = False
    allow_service_principal_owners: bool = False


class ExpiryParameters(_Config):
    """credential-expiry. A credential whose end is within the largest window fires, with the smallest
    window that holds it as its bucket; an expired one fires too unless `include_expired` is false."""

    windows_days: NonEmpty[Annotated[int, Field(gt=0, le=365)]] = (7, 14, 30)  # kept ascending
    include_expired: bool = True

    @field_validator("windows_days")
    @classmethod
    def _distinct(cls, values: tuple[int, ...]) -> tuple[int, ...]:
        if len(set(values)) != len(values):
            raise ValueError("each window may be listed once")
        return tuple(sorted(values))


class LifetimeParameters(_Config):
    """credential-lifetime (CISA MS.AAD.5.6v1: application password lifetime 180 days or less; MS.AAD.5.7v1:
    application certificate lifetime 365 days or less). A client secret or symmetric key whose validity
    (endDateTime - startDateTime) exceeds `max_secret_days`, or a certificate's that exceeds
    `max_certificate_days`, fires; one without an end never expires and fires too."""

    max_secret_days: int = Field(default=180, gt=0, le=36_500)
    max_certificate_days: int = Field(default=365, gt=0, le=36_500)


class PermissionParameters(_Config):
    """high-privilege-permission. One finding per granted application permission (app role assignment)
    whose name is in `permissions` (compared ignoring case) on a resource in `resource_app_ids`
    (by default Microsoft Graph)."""

    permissions: NonEmpty[str] = DEFAULT_HIGH_PRIVILEGE_PERMISSIONS
    resource_app_ids: NonEmpty[Guid] = (MICROSOFT_GRAPH_APP_ID,)

    @field_validator("permissions")
    @classmethod
    def _names(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        for value in values:
            if not PERMISSION_NAME.match(value):
                raise ValueError(f"{value!r} is not a permission name such as Mail.ReadWrite")
        return _unique(values, "permission")


class SecretRoleParameters(_Config):
    """secret-with-privileged-role. Fires when the service principal or its application has a client
    secret (not yet expired, unless `count_expired_secrets`) and the service principal holds one of
    `role_template_ids` tenant-wide (a role assignment scoped narrower counts with
    `include_scoped_assignments`)."""

    role_template_ids: NonEmpty[Guid] = tuple(PRIVILEGED_ROLE_TEMPLATES)
    count_expired_secrets: bool = False
    include_scoped_assignments: bool = False

    @field_validator("role_template_ids")
    @classmethod
    def _distinct(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        return _unique(values, "role template id")


class PublisherParameters(_Config):
    """unverified-multitenant. Fires when the app's signInAudience (the application's when it is
    registered here, else the service principal's) is in `audiences` and its publisher is not verified."""

    audiences: NonEmpty[SignInAudience] = MULTI_TENANT_AUDIENCES


class _Validator(_Config):
    severity: Severity
    enabled: bool = True
    scope: Scope | None = None


class NotesListsOwners(_Validator):
    id: Literal["notes-lists-owners"]
    parameters: NotesParameters = NotesParameters()


class Ownerless(_Validator):
    id: Literal["ownerless"]
    parameters: OwnerlessParameters = OwnerlessParameters()


class CredentialExpiry(_Validator):
    id: Literal["credential-expiry"]
    parameters: ExpiryParameters = ExpiryParameters()


class CredentialLifetime(_Validator):
    id: Literal["credential-lifetime"]
    parameters: LifetimeParameters = LifetimeParameters()


class HighPrivilegePermission(_Validator):
    id: Literal["high-privilege-permission"]
    parameters: PermissionParameters = PermissionParameters()


class SecretWithPrivilegedRole(_Validator):
    id: Literal["secret-with-privileged-role"]
    parameters: SecretRoleParameters = SecretRoleParameters()


class UnverifiedMultitenant(_Validator):
    id: Literal["unverified-multitenant"]
    parameters: PublisherParameters = PublisherParameters()


ValidatorConfig = Annotated[
    NotesListsOwners
    | Ownerless
    | CredentialExpiry
    | CredentialLifetime
    | HighPrivilegePermission
    | SecretWithPrivilegedRole
    | UnverifiedMultitenant,
    Field(discriminator="id"),
]
VALIDATOR_IDS: tuple[str, ...] = (
    "notes-lists-owners",
    "ownerless",
    "credential-expiry",
    "credential-lifetime",
    "high-privilege-permission",
    "secret-with-privileged-role",
    "unverified-multitenant",
)
_VALIDATOR_ADAPTER: TypeAdapter[ValidatorConfig] = TypeAdapter(ValidatorConfig)


class ValidatorSet(_Config):
    """A loaded validators file. `origin` says where it came from (file:validators.yaml, blob:...),
    `version` is the first 16 hex digits of the SHA-256 of its text."""

    scope: Scope = Scope()
    validators: tuple[ValidatorConfig, ...]
    origin: str = "memory"
    version: str = ""

    def enabled(self) -> tuple[ValidatorConfig, ...]:
        return tuple(v for v in self.validators if v.enabled)

    def get(self, validator_id: str) -> ValidatorConfig | None:
        return next((v for v in self.validators if v.id == validator_id), None)

    def scope_for(self, validator: ValidatorConfig) -> Scope:
        return validator.scope if validator.scope is not None else self.scope

    def notes_parameters(self) -> NotesParameters:
        """The notes validator's parameters (its defaults when it is not in the file), for remediation."""
        found = self.get("notes-lists-owners")
        return found.parameters if isinstance(found, NotesListsOwners) else NotesParameters()


def _location(loc: tuple[int | str, ...], skip_first: bool) -> str:
    text = ""
    for index, part in enumerate(loc):
        if skip_first and index == 0:
            continue  # the discriminated union's tag (the validator id)
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def _problems(exc: ValidationError, label: str, skip_first: bool) -> list[str]:
    seen: list[str] = []
    for error in exc.errors():
        where = _location(tuple(error["loc"]), skip_first)
        message = f"{label}: {where}: {error['msg']}" if where else f"{label}: {error['msg']}"
        if message not in seen:
            seen.append(message)
    return seen


def parse_validator(document: Any, index: int) -> ValidatorConfig:
    """One validator entry; ValidatorConfigError names it (its id, else its position) and the field."""
    if not isinstance(document, dict):
        raise ValidatorConfigError([f"validators[{index}]: must be a mapping with id, severity, ..."])
    validator_id = document.get("id")
    if not isinstance(validator_id, str) or validator_id not in VALIDATOR_IDS:
        shown = "missing" if validator_id is None else f"unknown validator {validator_id!r}"
        raise ValidatorConfigError([f"validators[{index}]: id: {shown} (known: {', '.join(VALIDATOR_IDS)})"])
    # `parameters:` or `scope:` with nothing under it means "the defaults", as if the key were absent
    entry = {
        key: value
        for key, value in document.items()
        if not (key in ("parameters", "scope") and value is None)
    }
    try:
        return _VALIDATOR_ADAPTER.validate_python(entry)
    except ValidationError as exc:
        raise ValidatorConfigError(_problems(exc, f"validator {validator_id!r}", skip_first=True)) from None


def parse_validator_file(document: Any, *, origin: str = "memory", version: str = "") -> ValidatorSet:
    """A whole validators file. Every validator is checked; all problems are reported together."""
    if not isinstance(document, dict):
        raise ValidatorConfigError(["the validators file must be a mapping with 'validators' (and 'scope')"])
    unknown = set(document) - {"version", "scope", "validators"}
    if unknown:
        raise ValidatorConfigError([f"unknown top-level key(s): {', '.join(sorted(map(str, unknown)))}"])
    problems: list[str] = []
    if document.get("version", 1) != 1:
        problems.append("version: only version 1 is known")
    scope = Scope()
    try:
        scope = Scope.model_validate(document.get("scope") or {})
    except ValidationError as exc:
        problems.extend(_problems(exc, "scope", skip_first=False))
    raw = document.get("validators")
    if not isinstance(raw, list) or not raw:
        raise ValidatorConfigError([*problems, "'validators' must be a non-empty list"])
    validators: list[ValidatorConfig] = []
    for index, entry in enumerate(raw):
        try:
            validators.append(parse_validator(entry, index))
        except ValidatorConfigError as exc:
            problems.extend(exc.problems)
    ids = [v.id for v in validators]
    problems.extend(
        f"validator {i!r}: id: used more than once" for i in sorted({i for i in ids if ids.count(i) > 1})
    )
    if problems:
        raise ValidatorConfigError(problems)
    return ValidatorSet(scope=scope, validators=tuple(validators), origin=origin, version=version)


def load_validators(text: str, origin: str) -> ValidatorSet:
    """A validators file's text, read within shared.platform.yaml_bounded's bounds and validated;
    ValidatorConfigError lists every problem."""
    try:
        document: Any = load_yaml_bounded(text)
    except yaml.YAMLError as exc:
        raise ValidatorConfigError([f"{origin}: not valid YAML: {str(exc)[:500]}"]) from None
    version = hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
    return parse_validator_file(document, origin=origin, version=version)


def load_default_validators(path: Path = DEFAULT_VALIDATORS_FILE) -> ValidatorSet:
    """The validators file shipped with the app (or another file)."""
    return load_validators(path.read_text(encoding="utf-8"), f"file:{path.name}")
