"""The tenant's applications and service principals: generated from the seed, changed over time, versioned.

What it holds (`AppsState`), all deterministic from the seed and the size:
- **Service principals** (`SpState`): the directory's twelve (eight Microsoft first-party apps, four
  line-of-business apps, same ids as in the audit records), the "Microsoft Graph" resource principal
  that publishes Graph's application permissions as `appRoles`, then generated ones until `size` live
  principals exist: line-of-business apps registered here (about two thirds), third-party multi-tenant
  apps of other tenants, and managed identities. About 3 % more are already deleted (soft-deleted, in
  deleted items): they only show up in delta, as `@removed`.
- **Applications** (`AppState`): the registrations of the line-of-business apps, which hold most
  credentials (`passwordCredentials`, `keyCredentials`), the `signInAudience` and the publisher.
- **Navigation data**, current state only, as Graph keeps it outside the objects (delta does not report
  it): owners of principals and applications (users of the directory, some disabled or guests, a few
  service principals; some objects have none), Microsoft Graph app role assignments (application
  permissions, some high-privilege), directory role and group memberships.
- **Users**: the directory's thirty (four of them disabled) and four guests (one disabled).

Credential dates are drawn around the *anchor*, `epoch + 1 day` (the end of the simulated day, when a
local stack usually reads them): some expired, some expiring within 7, 14 or 30 days, the rest later;
lifetimes of 90 days to 3 years for secrets and 1 to 10 years for certificates (so some secrets live
longer than 180 days and some certificates longer than 365). Managed identities carry the 90-day
certificate Azure rotates itself.

Changes (`add_owner`, `set_notes`, `patch_service_principal`, ...) take the lock, record a new
version of the object under a new change sequence number when a *property* changes (what delta
reports), and return the directoryAudit bodies the change produces (`apps_audit`). `state_at(seq)`
answers what an object looked like at a sequence number, so a delta round renders one snapshot.
"""

from __future__ import annotations

import base64
import bisect
import random
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from devtools.simulator.apps_catalog import (
    CERTIFICATE_SUBJECTS,
    DIRECTORY_ROLE_WEIGHTS,
    DIRECTORY_ROLES,
    FIRST_PARTY_APP_IDS,
    FREE_TEXT_NOTES,
    GRAPH_APP_ROLES,
    GRAPH_ROLES_BY_ID,
    GRAPH_ROLES_BY_VALUE,
    HIGH_PRIVILEGE_GRAPH_ROLES,
    MANAGED_IDENTITY_NAMES,
    MICROSOFT_GRAPH_APP_ID,
    MICROSOFT_SERVICES_TENANT_ID,
    ORDINARY_GRAPH_ROLES,
    PURPOSES,
    SECRET_DISPLAY_NAMES,
    TEAMS,
    USER_READ_SCOPE_ID,
    VENDOR_PRODUCTS,
    VENDORS,
    DirectoryRoleTemplate,
    GraphAppRole,
)
from devtools.simulator.directory import Directory, Group, guid
from devtools.simulator.timefmt import US_PER_SECOND, content_time, from_us, graph_time, iso

DAY_US = 86_400 * US_PER_SECOND
SERVICE_PRINCIPALS = "servicePrincipals"
APPLICATIONS = "applications"
RESOURCES = (SERVICE_PRINCIPALS, APPLICATIONS)
NOTES_MAX_LENGTH = 1024  # Graph: "Maximum allowed size is 1024 characters"
CREATED = "*created"  # change "properties" of a creation and a deletion: every $select sees them
DELETED = "*deleted"
MIN_SIZE = 13  # the directory's twelve principals and Microsoft Graph
MAX_SIZE = 100_000
DELETED_SHARE = 0.03

Kind = Literal["resource", "first_party", "line_of_business", "third_party", "managed_identity"]


def whole_seconds(us: int) -> str:
    """A DateTimeOffset to the second with Z, as Graph writes addedDateTime and deletedDateTime."""
    return from_us(us).strftime("%Y-%m-%dT%H:%M:%SZ")


# ----------------------------------------------------------------------------------------------
# Values
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PasswordCredential:
    """A client secret (Graph passwordCredential). The secret itself is never returned (secretText null)."""

    key_id: str
    display_name: str | None
    hint: str
    start_us: int
    end_us: int

    def to_graph(self) -> dict[str, Any]:
        return {
            "customKeyIdentifier": None,
            "displayName": self.display_name,
            "endDateTime": content_time(self.end_us),
            "hint": self.hint,
            "keyId": self.key_id,
            "secretText": None,
            "startDateTime": content_time(self.start_us),
        }


@dataclass(frozen=True)
class KeyCredential:
    """A certificate (Graph keyCredential, type AsymmetricX509Cert). `key` is only returned when
    keyCredentials is in $select, as Graph does."""

    key_id: str
    display_name: str
    start_us: int
    end_us: int
    thumbprint: str  # customKeyIdentifier: the base64 SHA-1 thumbprint
    usage: str  # Verify (client credential) or Sign (SAML signing)
    key: str  # base64 bytes standing in for the public certificate

    def to_graph(self, with_key: bool = False) -> dict[str, Any]:
        return {
            "customKeyIdentifier": self.thumbprint,
            "displayName": self.display_name,
            "endDateTime": content_time(self.end_us),
            "key": self.key if with_key else None,
            "keyId": self.key_id,
            "startDateTime": content_time(self.start_us),
            "type": "AsymmetricX509Cert",
            "usage": self.usage,
        }


@dataclass(frozen=True)
class Publisher:
    """A verified publisher (Microsoft Partner Network id); an unverified app has none."""

    display_name: str
    publisher_id: str
    added_us: int


def verified_publisher_json(publisher: Publisher | None) -> dict[str, Any]:
    if publisher is None:
        return {"displayName": None, "verifiedPublisherId": None, "addedDateTime": None}
    return {
        "displayName": publisher.display_name,
        "verifiedPublisherId": publisher.publisher_id,
        "addedDateTime": whole_seconds(publisher.added_us),
    }


@dataclass(frozen=True)
class UserState:
    id: str
    display_name: str
    upn: str
    mail: str
    job_title: str | None
    account_enabled: bool
    user_type: Literal["Member", "Guest"]
    created_us: int

    def to_graph(self) -> dict[str, Any]:
        """Every property the simulator knows; DEFAULT_USER_PROPERTIES is what Graph returns without
        $select."""
        given, _, surname = self.display_name.partition(" ")
        return {
            "id": self.id,
            "businessPhones": [],
            "displayName": self.display_name,
            "givenName": given,
            "jobTitle": self.job_title,
            "mail": self.mail,
            "mobilePhone": None,
            "officeLocation": None,
            "preferredLanguage": None,
            "surname": surname or None,
            "userPrincipalName": self.upn,
            "accountEnabled": self.account_enabled,
            "createdDateTime": whole_seconds(self.created_us),
            "creationType": "Invitation" if self.user_type == "Guest" else None,
            "externalUserState": "Accepted" if self.user_type == "Guest" else None,
            "mailNickname": self.upn.split("@")[0].split("#")[0],
            "userType": self.user_type,
        }


DEFAULT_USER_PROPERTIES = (
    "id",
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
)


@dataclass(frozen=True)
class SpState:
    """One version of a service principal: its properties (what delta tracks)."""

    id: str
    app_id: str
    display_name: str
    kind: Kind
    service_principal_type: str
    app_owner_organization_id: str | None
    sign_in_audience: str | None
    account_enabled: bool = True
    notes: str | None = None
    description: str | None = None
    tags: tuple[str, ...] = ()
    password_credentials: tuple[PasswordCredential, ...] = ()
    key_credentials: tuple[KeyCredential, ...] = ()
    verified_publisher: Publisher | None = None
    publisher_name: str | None = None
    homepage: str | None = None
    reply_urls: tuple[str, ...] = ()
    service_principal_names: tuple[str, ...] = ()
    alternative_names: tuple[str, ...] = ()
    preferred_sso_mode: str | None = None
    app_role_assignment_required: bool = False
    app_roles: tuple[GraphAppRole, ...] = ()
    application_id: str | None = None  # the application object in this tenant, if registered here
    deleted_us: int | None = None

    def to_graph(self, with_keys: bool = False) -> dict[str, Any]:
        """The servicePrincipal as Graph v1.0 returns it (every default property, in Graph's order)."""
        return {
            "id": self.id,
            "deletedDateTime": None if self.deleted_us is None else whole_seconds(self.deleted_us),
            "accountEnabled": self.account_enabled,
            "alternativeNames": list(self.alternative_names),
            "appDisplayName": self.display_name if self.kind != "managed_identity" else None,
            "appDescription": None,
            "appId": self.app_id,
            "applicationTemplateId": None,
            "appOwnerOrganizationId": self.app_owner_organization_id,
            "appRoleAssignmentRequired": self.app_role_assignment_required,
            "description": self.description,
            "disabledByMicrosoftStatus": None,
            "displayName": self.display_name,
            "homepage": self.homepage,
            "loginUrl": None,
            "logoutUrl": None,
            "notes": self.notes,
            "notificationEmailAddresses": [],
            "preferredSingleSignOnMode": self.preferred_sso_mode,
            "preferredTokenSigningKeyThumbprint": None,
            "publisherName": self.publisher_name,
            "replyUrls": list(self.reply_urls),
            "servicePrincipalNames": list(self.service_principal_names),
            "servicePrincipalType": self.service_principal_type,
            "signInAudience": self.sign_in_audience,
            "tags": list(self.tags),
            "tokenEncryptionKeyId": None,
            "samlSingleSignOnSettings": None,
            "addIns": [],
            "appRoles": [
                {
                    "allowedMemberTypes": ["Application"],
                    "description": role.description(),
                    "displayName": role.display_name,
                    "id": role.id,
                    "isEnabled": True,
                    "origin": "Application",
                    "value": role.value,
                }
                for role in self.app_roles
            ],
            "info": _EMPTY_INFO,
            "keyCredentials": [k.to_graph(with_keys) for k in self.key_credentials],
            "oauth2PermissionScopes": [],
            "passwordCredentials": [p.to_graph() for p in self.password_credentials],
            "resourceSpecificApplicationPermissions": [],
            "verifiedPublisher": verified_publisher_json(self.verified_publisher),
        }


@dataclass(frozen=True)
class AppState:
    """One version of an application (app registration) in this tenant."""

    id: str
    app_id: str
    display_name: str
    created_us: int
    sign_in_audience: str
    publisher_domain: str
    service_principal_id: str
    notes: str | None = None
    password_credentials: tuple[PasswordCredential, ...] = ()
    key_credentials: tuple[KeyCredential, ...] = ()
    verified_publisher: Publisher | None = None
    required_roles: tuple[str, ...] = ()  # Microsoft Graph app role ids in requiredResourceAccess
    identifier_uris: tuple[str, ...] = ()
    redirect_uris: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    deleted_us: int | None = None

    def to_graph(self, with_keys: bool = False) -> dict[str, Any]:
        """The application as Graph v1.0 returns it (the default properties, in Graph's order)."""
        access = [{"id": USER_READ_SCOPE_ID, "type": "Scope"}]
        access += [{"id": role_id, "type": "Role"} for role_id in self.required_roles]
        return {
            "id": self.id,
            "deletedDateTime": None if self.deleted_us is None else whole_seconds(self.deleted_us),
            "appId": self.app_id,
            "applicationTemplateId": None,
            "disabledByMicrosoftStatus": None,
            "createdDateTime": graph_time(self.created_us),
            "displayName": self.display_name,
            "description": None,
            "groupMembershipClaims": None,
            "identifierUris": list(self.identifier_uris),
            "isDeviceOnlyAuthSupported": None,
            "isFallbackPublicClient": None,
            "notes": self.notes,
            "publisherDomain": self.publisher_domain,
            "serviceManagementReference": None,
            "signInAudience": self.sign_in_audience,
            "tags": list(self.tags),
            "tokenEncryptionKeyId": None,
            "samlMetadataUrl": None,
            "defaultRedirectUri": None,
            "certification": None,
            "optionalClaims": None,
            "addIns": [],
            "api": {
                "acceptMappedClaims": None,
                "knownClientApplications": [],
                "requestedAccessTokenVersion": None,
                "oauth2PermissionScopes": [],
                "preAuthorizedApplications": [],
            },
            "appRoles": [],
            "info": _EMPTY_INFO,
            "keyCredentials": [k.to_graph(with_keys) for k in self.key_credentials],
            "parentalControlSettings": {"countriesBlockedForMinors": [], "legalAgeGroupRule": "Allow"},
            "passwordCredentials": [p.to_graph() for p in self.password_credentials],
            "publicClient": {"redirectUris": []},
            "requiredResourceAccess": [{"resourceAppId": MICROSOFT_GRAPH_APP_ID, "resourceAccess": access}],
            "verifiedPublisher": verified_publisher_json(self.verified_publisher),
            "web": {
                "homePageUrl": None,
                "logoutUrl": None,
                "redirectUris": list(self.redirect_uris),
                "implicitGrantSettings": {"enableAccessTokenIssuance": False, "enableIdTokenIssuance": False},
            },
            "spa": {"redirectUris": []},
        }


_EMPTY_INFO: dict[str, Any] = {
    "logoUrl": None,
    "marketingUrl": None,
    "privacyStatementUrl": None,
    "supportUrl": None,
    "termsOfServiceUrl": None,
}

State = SpState | AppState


@dataclass(frozen=True)
class AppRoleAssignment:
    """An application permission granted to a service principal (Graph appRoleAssignment)."""

    id: str
    app_role_id: str
    resource_id: str
    created_us: int


@dataclass(frozen=True)
class DirectoryRole:
    """A role activated in this tenant (Graph directoryRole): its object id here, and its template."""

    id: str
    template: DirectoryRoleTemplate

    def to_graph(self) -> dict[str, Any]:
        return {
            "@odata.type": "#microsoft.graph.directoryRole",
            "id": self.id,
            "deletedDateTime": None,
            "description": self.template.description,
            "displayName": self.template.display_name,
            "roleTemplateId": self.template.template_id,
        }


@dataclass(frozen=True)
class Change:
    """A property change delta reports: its sequence number, resource, object and properties changed
    (CREATED / DELETED for a creation or deletion), at sim time `at_us`."""

    seq: int
    resource: str
    object_id: str
    properties: frozenset[str]
    at_us: int


@dataclass
class _History:
    """Every version of one object: (sequence number, state), oldest first."""

    resource: str
    order: int  # creation order: the order of an initial delta round
    seqs: list[int] = field(default_factory=list)
    states: list[Any] = field(default_factory=list)

    def at(self, seq: int) -> Any:
        """The state at sequence number `seq`, None when the object did not exist yet."""
        index = bisect.bisect_right(self.seqs, seq) - 1
        return self.states[index] if index >= 0 else None

    @property
    def current(self) -> Any:
        return self.states[-1]

    @property
    def created_seq(self) -> int:
        return self.seqs[0]


@dataclass(frozen=True)
class Actor:
    """Who initiated a change: a user (id, display name, UPN) or an app (principal id, name, appId)."""

    kind: Literal["user", "app"]
    id: str | None
    display_name: str | None
    name: str | None  # the user's UPN, or the app's appId


@dataclass
class Mutation:
    """What a change did: the delta change's sequence number (None when no property changed), the
    directoryAudit bodies it produced (without id and activityDateTime) and the object it touched."""

    seq: int | None
    audits: list[dict[str, Any]]
    object_id: str
    details: dict[str, Any] = field(default_factory=dict)


# ----------------------------------------------------------------------------------------------
# Generation helpers
# ----------------------------------------------------------------------------------------------
# (display name, UPN local part, home domain, enabled) of the tenant's guests.
_GUESTS = (
    ("Kai Nakamura", "kai.nakamura", "fabrikam.com", True),
    ("Lena Fischer", "lena.fischer", "adatum.com", False),
    ("Priya Raman", "priya.raman", "northwindtraders.com", True),
    ("Tomás Ortega", "tomas.ortega", "outlook.com", True),
)
# Members whose accounts are disabled (none of them is an administrator).
_DISABLED_MEMBERS = frozenset({"lynner", "isaiahl", "jonis", "minjun.kim"})
# A UPN that exists nowhere: notes that name a person who left.
_FORMER_EMPLOYEES = ("former.employee", "j.smith.old", "contractor-2023")


def _weighted(rng: random.Random, choices: Sequence[tuple[Any, float]]) -> Any:
    values = [value for value, _ in choices]
    weights = [weight for _, weight in choices]
    return rng.choices(values, weights)[0]


def _days(rng: random.Random, lo: float, hi: float) -> int:
    """A whole-millisecond duration of lo..hi days."""
    us = int(rng.uniform(lo, hi) * DAY_US)
    return us - us % 1000


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _credential_window(
    rng: random.Random, anchor_us: int, lifetimes: Sequence[tuple[int, float]]
) -> tuple[int, int]:
    """(start, end): expired (12 %), expiring within 7 (6 %), 14 (5 %) or 30 days (7 %), else later."""
    roll = rng.random()
    if roll < 0.12:
        end = anchor_us - _days(rng, 1, 400)
    elif roll < 0.18:
        end = anchor_us + _days(rng, 0.5, 6.5)
    elif roll < 0.23:
        end = anchor_us + _days(rng, 7.5, 13.5)
    elif roll < 0.30:
        end = anchor_us + _days(rng, 14.5, 29.5)
    else:
        end = anchor_us + _days(rng, 45, 700)
    lifetime_days = _weighted(rng, lifetimes)
    start = end - lifetime_days * DAY_US
    if start > anchor_us - DAY_US:  # a credential is never created in the future
        start = anchor_us - _days(rng, 1, 30)
    return start, end


_SECRET_LIFETIMES = ((90, 15), (180, 35), (365, 25), (730, 20), (1095, 5))
_CERTIFICATE_LIFETIMES = ((365, 45), (730, 35), (1095, 15), (3650, 5))
_HINT_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789~_."


def new_password(
    rng: random.Random, start_us: int, end_us: int, display_name: str | None
) -> PasswordCredential:
    hint = "".join(rng.choice(_HINT_ALPHABET) for _ in range(3))
    return PasswordCredential(guid(rng), display_name, hint, start_us, end_us)


def new_certificate(
    rng: random.Random, start_us: int, end_us: int, display_name: str, usage: str = "Verify"
) -> KeyCredential:
    thumbprint = base64.b64encode(rng.randbytes(20)).decode()
    key = base64.b64encode(b"0\x82\x03" + rng.randbytes(45)).decode()
    return KeyCredential(guid(rng), display_name, start_us, end_us, thumbprint, usage, key)


def _passwords(
    rng: random.Random, anchor_us: int, weights: Sequence[tuple[int, float]]
) -> tuple[PasswordCredential, ...]:
    out = []
    for _ in range(_weighted(rng, weights)):
        start, end = _credential_window(rng, anchor_us, _SECRET_LIFETIMES)
        out.append(new_password(rng, start, end, rng.choice(SECRET_DISPLAY_NAMES)))
    return tuple(out)


def _certificates(
    rng: random.Random, anchor_us: int, weights: Sequence[tuple[int, float]]
) -> tuple[KeyCredential, ...]:
    out = []
    for _ in range(_weighted(rng, weights)):
        start, end = _credential_window(rng, anchor_us, _CERTIFICATE_LIFETIMES)
        out.append(new_certificate(rng, start, end, rng.choice(CERTIFICATE_SUBJECTS)))
    return tuple(out)


# ----------------------------------------------------------------------------------------------
# The state
# ----------------------------------------------------------------------------------------------
class AppsState:
    """Applications, service principals, their navigation data and users; versioned and thread-safe.

    Built once per simulator (lazily, on first use). `size` is the number of live service principals at
    the start, including the directory's twelve and Microsoft Graph (so at least 13).
    """

    def __init__(self, *, seed: int, tenant_id: str, directory: Directory, size: int, anchor_us: int) -> None:
        if isinstance(size, bool) or not isinstance(size, int) or not MIN_SIZE <= size <= MAX_SIZE:
            raise ValueError(
                f"service_principals must be an integer from {MIN_SIZE} to {MAX_SIZE}, got {size!r}"
            )
        self.seed = seed
        self.tenant_id = tenant_id
        self.directory = directory
        self.size = size
        self.anchor_us = anchor_us
        self._lock = threading.RLock()
        self._seq = 0
        self._histories: dict[str, dict[str, _History]] = {SERVICE_PRINCIPALS: {}, APPLICATIONS: {}}
        self._orders: dict[str, list[str]] = {SERVICE_PRINCIPALS: [], APPLICATIONS: []}
        self._sp_by_app_id: dict[str, str] = {}
        self._app_by_app_id: dict[str, str] = {}
        self._changes: list[Change] = []
        self._change_seqs: list[int] = []
        self.owners: dict[str, list[str]] = {}  # object id (principal or application) -> owner ids
        self.assignments: dict[str, list[AppRoleAssignment]] = {}
        self.member_of: dict[str, list[str]] = {}  # principal id -> directory role or group ids
        self.users: dict[str, UserState] = {}
        self.roles: dict[str, DirectoryRole] = {}  # role object id -> role
        self.notes_case: dict[str, str] = {}  # principal id -> how its generated notes relate to owners
        self._reset_epochs = dict.fromkeys(RESOURCES, 0)
        self._writes: list[dict[str, Any]] = []
        self._mutations = 0
        self._name_counts: dict[str, int] = {}
        self.graph_principal_id = ""
        self._generate()

    # ------------------------------------------------------------------------------------------
    # Generation
    # ------------------------------------------------------------------------------------------
    def _generate(self) -> None:
        anchor = self.anchor_us
        seed = self.seed
        rng = random.Random(f"{seed}:apps:fixed")  # noqa: S311 - deterministic test data
        for user in self.directory.users:
            local = user.upn.split("@")[0]
            self.users[user.id] = UserState(
                user.id,
                user.display_name,
                user.upn,
                user.upn,
                user.job_title,
                local not in _DISABLED_MEMBERS,
                "Member",
                anchor - _days(rng, 200, 1500),
            )
        for name, local, domain, enabled in _GUESTS:
            guest_rng = random.Random(f"{seed}:guest:{local}")  # noqa: S311
            upn = f"{local}_{domain}#EXT#@{self.directory.domain}"
            user_id = guid(guest_rng)
            self.users[user_id] = UserState(
                user_id,
                name,
                upn,
                f"{local}@{domain}",
                None,
                enabled,
                "Guest",
                anchor - _days(guest_rng, 30, 700),
            )
        for template in DIRECTORY_ROLES:
            role = DirectoryRole(guid(random.Random(f"{seed}:role:{template.template_id}")), template)  # noqa: S311
            self.roles[role.id] = role

        graph_id = guid(random.Random(f"{seed}:apps:microsoft-graph"))  # noqa: S311
        self.graph_principal_id = graph_id
        self._add(
            SERVICE_PRINCIPALS,
            SpState(
                id=graph_id,
                app_id=MICROSOFT_GRAPH_APP_ID,
                display_name="Microsoft Graph",
                kind="resource",
                service_principal_type="Application",
                app_owner_organization_id=MICROSOFT_SERVICES_TENANT_ID,
                sign_in_audience="AzureADMultipleOrgs",
                publisher_name="Microsoft Services",
                service_principal_names=(
                    f"{MICROSOFT_GRAPH_APP_ID}/ags.windows.net",
                    MICROSOFT_GRAPH_APP_ID,
                    "https://canary.graph.microsoft.com",
                    "https://graph.microsoft.com",
                    "https://ags.windows.net",
                ),
                app_roles=GRAPH_APP_ROLES,
            ),
            0,
        )
        for sp in self.directory.service_principals:
            sp_rng = random.Random(f"{seed}:apps:directory:{sp.id}")  # noqa: S311
            if sp.app_id in FIRST_PARTY_APP_IDS:
                self._add(
                    SERVICE_PRINCIPALS,
                    SpState(
                        id=sp.id,
                        app_id=sp.app_id,
                        display_name=sp.display_name,
                        kind="first_party",
                        service_principal_type="Application",
                        app_owner_organization_id=MICROSOFT_SERVICES_TENANT_ID,
                        sign_in_audience="AzureADMultipleOrgs",
                        publisher_name="Microsoft Services",
                        service_principal_names=(sp.app_id,),
                    ),
                    0,
                )
            else:
                self._line_of_business(sp_rng, sp.display_name, sp_id=sp.id, app_id=sp.app_id)
        live = MIN_SIZE
        index = 0
        while live < self.size:
            obj_rng = random.Random(f"{seed}:apps:{index}")  # noqa: S311
            deleted = obj_rng.random() < DELETED_SHARE
            roll = obj_rng.random()
            if roll < 0.66:
                sp_id = self._line_of_business(obj_rng)
            elif roll < 0.92:
                sp_id = self._third_party(obj_rng)
            else:
                sp_id = self._managed_identity(obj_rng)
            if deleted:
                self._delete_generated(sp_id, anchor - _days(obj_rng, 1, 25))
            else:
                live += 1
            index += 1

    def _add(self, resource: str, state: State, seq: int) -> None:
        history = _History(resource, len(self._orders[resource]))
        history.seqs.append(seq)
        history.states.append(state)
        self._histories[resource][state.id] = history
        self._orders[resource].append(state.id)
        if resource == SERVICE_PRINCIPALS:
            self._sp_by_app_id.setdefault(state.app_id.lower(), state.id)
        else:
            self._app_by_app_id.setdefault(state.app_id.lower(), state.id)

    def _unique_name(self, base: str) -> str:
        count = self._name_counts.get(base, 0) + 1
        self._name_counts[base] = count
        return base if count == 1 else f"{base} {count}"

    def _pick_owners(self, rng: random.Random, weights: Sequence[tuple[int, float]]) -> list[str]:
        count = _weighted(rng, weights)
        users = list(self.users)
        owners: list[str] = []
        for _ in range(count):
            if rng.random() < 0.03 and len(self._orders[SERVICE_PRINCIPALS]) > MIN_SIZE:
                candidate = rng.choice(self._orders[SERVICE_PRINCIPALS][MIN_SIZE:])  # a principal as owner
                if self._histories[SERVICE_PRINCIPALS][candidate].current.kind != "line_of_business":
                    continue
            else:
                candidate = rng.choice(users)
            if candidate not in owners:
                owners.append(candidate)
        return owners

    def _upn(self, object_id: str) -> str | None:
        user = self.users.get(object_id)
        return user.upn if user is not None else None

    def _draw_notes(self, rng: random.Random, owners: list[str]) -> tuple[str | None, str]:
        """Notes and how they relate to the owners (the notes case reported in the truth)."""
        upns = [upn for upn in (self._upn(o) for o in owners) if upn]
        separator = rng.choice((", ", ";", "; ", ","))
        others = [u.upn for u in self.users.values() if u.id not in owners]
        roll = rng.random()
        if upns:
            if roll < 0.45:
                return separator.join(upns), "owners"
            if roll < 0.50:
                shuffled = [rng.choice((upn.upper(), upn.title(), f" {upn} ")) for upn in upns]
                rng.shuffle(shuffled)
                return separator.join(shuffled), "owners_reformatted"
            if roll < 0.60 and len(upns) > 1:
                return separator.join(upns[:-1]), "owners_partial"
            if roll < 0.68:
                return separator.join([*upns, rng.choice(others)]), "non_owner"
            if roll < 0.75:
                former = f"{rng.choice(_FORMER_EMPLOYEES)}@{self.directory.domain}"
                return separator.join([*upns[:-1], former]), "unknown_upn"
        elif roll < 0.30:
            return rng.choice(others), "non_owner"
        elif roll < 0.45:
            return f"{rng.choice(_FORMER_EMPLOYEES)}@{self.directory.domain}", "unknown_upn"
        roll = rng.random()
        if roll < 0.60:
            return None, "empty"
        if roll < 0.75:
            return "", "blank"
        return rng.choice(FREE_TEXT_NOTES), "free_text"

    def _grants(self, rng: random.Random, sp_id: str, any_share: float, high_share: float) -> list[str]:
        roles: list[GraphAppRole] = []
        if rng.random() < any_share:
            roles += rng.sample(ORDINARY_GRAPH_ROLES, rng.randint(1, 4))
        if rng.random() < high_share:
            roles += rng.sample(HIGH_PRIVILEGE_GRAPH_ROLES, rng.randint(1, 2))
        assignments = [
            AppRoleAssignment(
                _b64url(rng.randbytes(32)),
                role.id,
                self.graph_principal_id,
                self.anchor_us - _days(rng, 5, 900),
            )
            for role in roles
        ]
        if assignments:
            self.assignments[sp_id] = assignments
        return [role.id for role in roles]

    def _memberships(self, rng: random.Random, sp_id: str, role_share: float) -> None:
        memberships: list[str] = []
        if rng.random() < role_share:
            template = rng.choices(DIRECTORY_ROLES, DIRECTORY_ROLE_WEIGHTS)[0]
            memberships.append(self._role_for(template.template_id).id)
        if rng.random() < 0.06:
            memberships.append(rng.choice(self.directory.groups).id)
        if memberships:
            self.member_of[sp_id] = memberships

    def _role_for(self, template_id: str) -> DirectoryRole:
        return next(role for role in self.roles.values() if role.template.template_id == template_id)

    def _publisher(self, rng: random.Random, name: str) -> Publisher:
        return Publisher(
            name, str(rng.randrange(1_000_000, 9_999_999)), self.anchor_us - _days(rng, 30, 1400)
        )

    def _line_of_business(
        self,
        rng: random.Random,
        name: str | None = None,
        *,
        sp_id: str | None = None,
        app_id: str | None = None,
    ) -> str:
        anchor = self.anchor_us
        name = name or self._unique_name(f"{rng.choice(TEAMS)} {rng.choice(PURPOSES)}")
        app_object_id, sp_id, app_id = guid(rng), sp_id or guid(rng), app_id or guid(rng)
        audience = _weighted(
            rng,
            (("AzureADMyOrg", 80), ("AzureADMultipleOrgs", 15), ("AzureADandPersonalMicrosoftAccount", 5)),
        )
        verified = rng.random() < (0.5 if audience != "AzureADMyOrg" else 0.15)
        publisher = self._publisher(rng, "Contoso Ltd") if verified else None
        app_owners = self._pick_owners(rng, ((0, 10), (1, 50), (2, 28), (3, 12)))
        roll = rng.random()
        if roll < 0.80:
            sp_owners = list(app_owners)
        elif roll < 0.90:
            sp_owners = []
        else:
            sp_owners = self._pick_owners(rng, ((1, 1),))
        notes, case = self._draw_notes(rng, sp_owners or app_owners)
        app_notes = notes if rng.random() < 0.3 else None
        passwords = _passwords(rng, anchor, ((0, 30), (1, 45), (2, 18), (3, 7)))
        certificates = _certificates(rng, anchor, ((0, 65), (1, 28), (2, 7)))
        sp_passwords = _passwords(rng, anchor, ((1, 1),)) if rng.random() < 0.03 else ()
        identifier_uris = (f"api://{app_id}",) if rng.random() < 0.4 else ()
        redirects = (
            (f"https://{name.split()[0].lower()}.contoso.com/signin-oidc",) if rng.random() < 0.5 else ()
        )
        tags = (
            ("HideApp", "WindowsAzureActiveDirectoryIntegratedApp")
            if rng.random() < 0.2
            else ("WindowsAzureActiveDirectoryIntegratedApp",)
        )
        required = self._grants(rng, sp_id, 0.55, 0.12)
        self._memberships(rng, sp_id, 0.04)
        self._add(
            APPLICATIONS,
            AppState(
                id=app_object_id,
                app_id=app_id,
                display_name=name,
                created_us=anchor - _days(rng, 30, 1800),
                sign_in_audience=audience,
                publisher_domain=self.directory.domain,
                service_principal_id=sp_id,
                notes=app_notes,
                password_credentials=passwords,
                key_credentials=certificates,
                verified_publisher=publisher,
                required_roles=tuple(required),
                identifier_uris=identifier_uris,
                redirect_uris=redirects,
            ),
            0,
        )
        self._add(
            SERVICE_PRINCIPALS,
            SpState(
                id=sp_id,
                app_id=app_id,
                display_name=name,
                kind="line_of_business",
                service_principal_type="Application",
                app_owner_organization_id=self.tenant_id,
                sign_in_audience=audience,
                notes=notes,
                tags=tags,
                password_credentials=sp_passwords,
                verified_publisher=publisher,
                publisher_name="Contoso",
                reply_urls=redirects,
                service_principal_names=(*identifier_uris, app_id),
                application_id=app_object_id,
            ),
            0,
        )
        if app_owners:
            self.owners[app_object_id] = app_owners
        if sp_owners:
            self.owners[sp_id] = sp_owners
        self.notes_case[sp_id] = case
        return sp_id

    def _third_party(self, rng: random.Random) -> str:
        vendor, domain = rng.choice(VENDORS)
        name = self._unique_name(f"{vendor.split(',')[0]} {rng.choice(VENDOR_PRODUCTS)}")
        sp_id, app_id = guid(rng), guid(rng)
        owner_tenant = guid(random.Random(f"{self.seed}:vendor:{domain}"))  # noqa: S311 - one tenant per vendor
        publisher = self._publisher(rng, vendor) if rng.random() < 0.6 else None
        saml = rng.random() < 0.2
        certificates: tuple[KeyCredential, ...] = ()
        if saml:
            start, end = _credential_window(rng, self.anchor_us, ((1095, 1),))
            signing = new_certificate(rng, start, end, "CN=Microsoft Azure Federated SSO Certificate", "Sign")
            verify = replace(signing, key_id=guid(rng), usage="Verify")
            certificates = (signing, verify)
        owners = self._pick_owners(rng, ((0, 75), (1, 25)))
        notes, case = self._draw_notes(rng, owners) if rng.random() < 0.3 else (None, "empty")
        self._grants(rng, sp_id, 0.5, 0.10)
        self._memberships(rng, sp_id, 0.01)
        self._add(
            SERVICE_PRINCIPALS,
            SpState(
                id=sp_id,
                app_id=app_id,
                display_name=name,
                kind="third_party",
                service_principal_type="Application",
                app_owner_organization_id=owner_tenant,
                sign_in_audience=_weighted(
                    rng, (("AzureADMultipleOrgs", 85), ("AzureADandPersonalMicrosoftAccount", 15))
                ),
                notes=notes,
                tags=("WindowsAzureActiveDirectoryIntegratedApp",),
                key_credentials=certificates,
                verified_publisher=publisher,
                publisher_name=vendor,
                homepage=f"https://www.{domain}/",
                reply_urls=(f"https://app.{domain}/auth/callback",),
                service_principal_names=(app_id,),
                preferred_sso_mode="saml" if saml else None,
                app_role_assignment_required=rng.random() < 0.3,
            ),
            0,
        )
        if owners:
            self.owners[sp_id] = owners
        self.notes_case[sp_id] = case
        return sp_id

    def _managed_identity(self, rng: random.Random) -> str:
        name = self._unique_name(rng.choice(MANAGED_IDENTITY_NAMES))
        sp_id, app_id = guid(rng), guid(rng)
        subscription = guid(random.Random(f"{self.seed}:subscription"))  # noqa: S311
        start = self.anchor_us - _days(rng, 5, 80)
        certificate = new_certificate(rng, start, start + 90 * DAY_US, "")
        self._grants(rng, sp_id, 0.4, 0.05)
        self._add(
            SERVICE_PRINCIPALS,
            SpState(
                id=sp_id,
                app_id=app_id,
                display_name=name,
                kind="managed_identity",
                service_principal_type="ManagedIdentity",
                app_owner_organization_id=None,
                sign_in_audience=None,
                key_credentials=(certificate,),
                service_principal_names=(app_id, f"https://identity.azure.net/{_b64url(rng.randbytes(24))}"),
                alternative_names=(
                    "isExplicit=False",
                    f"/subscriptions/{subscription}/resourceGroups/rg-{name}/providers/Microsoft.Web/sites/{name}",
                ),
            ),
            0,
        )
        self.notes_case[sp_id] = "empty"
        return sp_id

    def _delete_generated(self, sp_id: str, deleted_us: int) -> None:
        history = self._histories[SERVICE_PRINCIPALS][sp_id]
        history.states[-1] = replace(history.current, deleted_us=deleted_us)
        app_id = history.current.application_id
        if app_id is not None:
            app = self._histories[APPLICATIONS][app_id]
            app.states[-1] = replace(app.current, deleted_us=deleted_us)

    # ------------------------------------------------------------------------------------------
    # Reads
    # ------------------------------------------------------------------------------------------
    @property
    def lock(self) -> threading.RLock:
        return self._lock

    @property
    def seq(self) -> int:
        """The latest change sequence number (0 before any change)."""
        with self._lock:
            return self._seq

    def reset_epoch(self, resource: str) -> int:
        with self._lock:
            return self._reset_epochs[resource]

    def find(self, resource: str, object_id: str) -> Any:
        """The current state of a live object by object id, else None (unknown or deleted)."""
        with self._lock:
            history = self._histories[resource].get(object_id.lower())
            if history is None or history.current.deleted_us is not None:
                return None
            return history.current

    def find_by_app_id(self, resource: str, app_id: str) -> Any:
        with self._lock:
            index = self._sp_by_app_id if resource == SERVICE_PRINCIPALS else self._app_by_app_id
            object_id = index.get(app_id.lower())
            return None if object_id is None else self.find(resource, object_id)

    def state_at(self, resource: str, object_id: str, seq: int) -> Any:
        with self._lock:
            history = self._histories[resource].get(object_id)
            return None if history is None else history.at(seq)

    def initial_ids(self, resource: str, upto: int, only: frozenset[str] | None) -> list[str]:
        """Objects that existed at sequence `upto`, in creation order (the initial delta round)."""
        with self._lock:
            histories = self._histories[resource]
            return [
                object_id
                for object_id in self._orders[resource]
                if histories[object_id].created_seq <= upto and (only is None or object_id in only)
            ]

    def changed_ids(
        self,
        resource: str,
        since: int,
        upto: int,
        selected: frozenset[str] | None,
        only: frozenset[str] | None,
    ) -> list[str]:
        """Objects with a change in (since, upto] that a delta round reports, in order of first change.

        With `selected` (lower-case $select names), a change to properties outside it is not reported, as
        Graph documents for $select on delta; creations and deletions always are. An object created and
        deleted within the window is left out.
        """
        with self._lock:
            start = bisect.bisect_right(self._change_seqs, since)
            end = bisect.bisect_right(self._change_seqs, upto)
            seen: dict[str, None] = {}
            for change in self._changes[start:end]:
                if change.resource != resource or change.object_id in seen:
                    continue
                if only is not None and change.object_id not in only:
                    continue
                if selected is not None and not any(
                    p.startswith("*") or p.lower() in selected for p in change.properties
                ):
                    continue
                seen[change.object_id] = None
            histories = self._histories[resource]
            return [
                object_id
                for object_id in seen
                if not (histories[object_id].created_seq > since and histories[object_id].at(upto).deleted_us)
            ]

    def owners_of(self, object_id: str) -> list[Any]:
        """The owners of a principal or application: UserState or SpState objects (current)."""
        with self._lock:
            out: list[Any] = []
            for owner in self.owners.get(object_id, []):
                if owner in self.users:
                    out.append(self.users[owner])
                else:
                    principal = self.find(SERVICE_PRINCIPALS, owner)
                    if principal is not None:
                        out.append(principal)
            return out

    def assignments_of(self, sp_id: str) -> list[AppRoleAssignment]:
        with self._lock:
            return list(self.assignments.get(sp_id, []))

    def memberships_of(self, sp_id: str) -> list[DirectoryRole | Group]:
        with self._lock:
            out: list[DirectoryRole | Group] = []
            for member_of in self.member_of.get(sp_id, []):
                if member_of in self.roles:
                    out.append(self.roles[member_of])
                else:
                    group = self.directory.get(member_of)
                    if isinstance(group, Group):
                        out.append(group)
            return out

    def user(self, ref: str) -> UserState | None:
        """A user by object id or user principal name (case-insensitive)."""
        with self._lock:
            found = self.users.get(ref.lower())
            if found is not None:
                return found
            lowered = ref.lower()
            return next((u for u in self.users.values() if u.upn.lower() == lowered), None)

    def changes(self) -> list[dict[str, Any]]:
        with self._lock:
            return [
                {
                    "seq": c.seq,
                    "resource": c.resource,
                    "id": c.object_id,
                    "properties": sorted(c.properties),
                    "sim_time": iso(c.at_us),
                }
                for c in self._changes
            ]

    def writes(self) -> dict[str, Any]:
        """Every PATCH of a service principal, oldest first, and the accepted ones per object."""
        with self._lock:
            writes = [dict(w) for w in self._writes]
        by_object: dict[str, int] = {}
        for write in writes:
            if write["accepted"]:
                by_object[write["id"]] = by_object.get(write["id"], 0) + 1
        return {"writes": writes, "accepted_by_object": by_object, "accepted": sum(by_object.values())}

    # ------------------------------------------------------------------------------------------
    # Truth: what a test needs to know about the generated tenant (facts, never verdicts)
    # ------------------------------------------------------------------------------------------
    def truth(self, object_id: str | None = None) -> dict[str, Any]:
        with self._lock:
            if object_id is not None:
                history = self._histories[SERVICE_PRINCIPALS].get(object_id.lower())
                if history is None:
                    raise KeyError(object_id)
                return self._truth_of(history.current)
            principals = [
                self._truth_of(self._histories[SERVICE_PRINCIPALS][i].current)
                for i in self._orders[SERVICE_PRINCIPALS]
            ]
            return {
                "size": self.size,
                "anchor": iso(self.anchor_us),
                "seq": self._seq,
                "graph_service_principal_id": self.graph_principal_id,
                "live": sum(1 for p in principals if not p["deleted"]),
                "deleted": sum(1 for p in principals if p["deleted"]),
                "service_principals": principals,
                "users": [
                    {
                        "id": u.id,
                        "userPrincipalName": u.upn,
                        "accountEnabled": u.account_enabled,
                        "userType": u.user_type,
                    }
                    for u in self.users.values()
                ],
            }

    def _owner_truth(self, object_id: str) -> list[dict[str, Any]]:
        out = []
        for owner in self.owners.get(object_id, []):
            user = self.users.get(owner)
            if user is not None:
                out.append(
                    {
                        "id": owner,
                        "type": "user",
                        "userPrincipalName": user.upn,
                        "accountEnabled": user.account_enabled,
                        "userType": user.user_type,
                    }
                )
            else:
                out.append(
                    {
                        "id": owner,
                        "type": "servicePrincipal",
                        "userPrincipalName": None,
                        "accountEnabled": True,
                        "userType": None,
                    }
                )
        return out

    def _truth_of(self, sp: SpState) -> dict[str, Any]:
        app = None if sp.application_id is None else self._histories[APPLICATIONS][sp.application_id].current
        credentials = []
        for where, holder in (("application", app), ("servicePrincipal", sp)):
            if holder is None:
                continue
            for p in holder.password_credentials:
                credentials.append(
                    {
                        "on": where,
                        "type": "password",
                        "keyId": p.key_id,
                        "displayName": p.display_name,
                        "startDateTime": content_time(p.start_us),
                        "endDateTime": content_time(p.end_us),
                        "lifetimeDays": round((p.end_us - p.start_us) / DAY_US, 3),
                    }
                )
            for k in holder.key_credentials:
                credentials.append(
                    {
                        "on": where,
                        "type": "certificate",
                        "keyId": k.key_id,
                        "usage": k.usage,
                        "displayName": k.display_name,
                        "startDateTime": content_time(k.start_us),
                        "endDateTime": content_time(k.end_us),
                        "lifetimeDays": round((k.end_us - k.start_us) / DAY_US, 3),
                    }
                )
        memberships = self.member_of.get(sp.id, [])
        return {
            "id": sp.id,
            "appId": sp.app_id,
            "displayName": sp.display_name,
            "kind": sp.kind,
            "servicePrincipalType": sp.service_principal_type,
            "appOwnerOrganizationId": sp.app_owner_organization_id,
            "applicationId": sp.application_id,
            "deleted": sp.deleted_us is not None,
            "signInAudience": app.sign_in_audience if app is not None else sp.sign_in_audience,
            "verifiedPublisher": (app or sp).verified_publisher is not None,
            "notes": sp.notes,
            "notesCase": self.notes_case.get(sp.id, "empty"),
            "applicationNotes": None if app is None else app.notes,
            "owners": self._owner_truth(sp.id),
            "applicationOwners": [] if app is None else self._owner_truth(app.id),
            "credentials": credentials,
            "permissions": [
                {"appRoleId": a.app_role_id, "value": GRAPH_ROLES_BY_ID[a.app_role_id].value}
                for a in self.assignments.get(sp.id, [])
            ],
            "directoryRoles": [
                {
                    "roleTemplateId": self.roles[m].template.template_id,
                    "displayName": self.roles[m].template.display_name,
                }
                for m in memberships
                if m in self.roles
            ],
            "groups": [m for m in memberships if m not in self.roles],
        }

    # ------------------------------------------------------------------------------------------
    # Changes
    # ------------------------------------------------------------------------------------------
    def _rng(self, label: str) -> random.Random:
        self._mutations += 1
        return random.Random(f"{self.seed}:apps:mutation:{self._mutations}:{label}")  # noqa: S311

    def _record(self, resource: str, state: State, properties: Iterable[str], now_us: int) -> int:
        self._seq += 1
        history = self._histories[resource].get(state.id)
        if history is None:
            self._add(resource, state, self._seq)
        else:
            history.seqs.append(self._seq)
            history.states.append(state)
        self._changes.append(Change(self._seq, resource, state.id, frozenset(properties), now_us))
        self._change_seqs.append(self._seq)
        return self._seq

    def resolve_object(self, ref: str) -> tuple[str, Any]:
        """(resource, current state) of a live principal or application, by object id or appId.

        A principal wins over an application for an appId; ValueError when there is none."""
        with self._lock:
            for resource in RESOURCES:
                found = self.find(resource, ref)
                if found is not None:
                    return resource, found
            principal = self.find_by_app_id(SERVICE_PRINCIPALS, ref)
            if principal is not None:
                return SERVICE_PRINCIPALS, principal
        raise ValueError(f"no live service principal or application {ref!r}")

    def resolve_principal(self, ref: str) -> SpState:
        resource, state = self.resolve_object(ref)
        if resource != SERVICE_PRINCIPALS:
            raise ValueError(f"{ref!r} is an application, not a service principal")
        principal: SpState = state
        return principal

    def _owner_ref(self, ref: str) -> tuple[str, UserState | SpState]:
        user = self.user(ref)
        if user is not None:
            return user.id, user
        principal = self.find(SERVICE_PRINCIPALS, ref)
        if principal is not None:
            return principal.id, principal
        raise ValueError(f"no user or service principal {ref!r}")

    def change_owner(self, ref: str, owner_ref: str, *, add: bool, actor: Actor, now_us: int) -> Mutation:
        """Add or remove an owner (navigation: delta does not report it; the audit log does)."""
        from devtools.simulator import apps_audit

        with self._lock:
            resource, target = self.resolve_object(ref)
            owner_id, owner = self._owner_ref(owner_ref)
            owners = self.owners.setdefault(target.id, [])
            if add and owner_id in owners:
                raise ValueError(f"{owner_ref!r} already owns {ref!r}")
            if not add and owner_id not in owners:
                raise ValueError(f"{owner_ref!r} does not own {ref!r}")
            if add:
                owners.append(owner_id)
            else:
                owners.remove(owner_id)
            audit = apps_audit.owner_change(resource, target, owner, add=add, actor=actor)
            return Mutation(None, [audit], target.id, {"owners": self._owner_truth(target.id)})

    def add_credential(
        self,
        ref: str,
        *,
        kind: Literal["password", "certificate"],
        start_us: int,
        end_us: int,
        display_name: str | None,
        actor: Actor,
        now_us: int,
    ) -> Mutation:
        from devtools.simulator import apps_audit

        if end_us <= start_us:
            raise ValueError("a credential must end after it starts")
        with self._lock:
            resource, target = self.resolve_object(ref)
            rng = self._rng("credential")
            if kind == "password":
                credential: PasswordCredential | KeyCredential = new_password(
                    rng, start_us, end_us, display_name
                )
                changed = replace(target, password_credentials=(*target.password_credentials, credential))
                properties = ("passwordCredentials",)
            else:
                credential = new_certificate(rng, start_us, end_us, display_name or "CN=simulator")
                changed = replace(target, key_credentials=(*target.key_credentials, credential))
                properties = ("keyCredentials",)
            seq = self._record(resource, changed, properties, now_us)
            audit = apps_audit.credential_change(resource, target, changed, actor=actor, added=credential)
            return Mutation(seq, [audit], target.id, {"keyId": credential.key_id})

    def remove_credential(self, ref: str, key_id: str, *, actor: Actor, now_us: int) -> Mutation:
        from devtools.simulator import apps_audit

        with self._lock:
            resource, target = self.resolve_object(ref)
            passwords = tuple(p for p in target.password_credentials if p.key_id != key_id.lower())
            keys = tuple(k for k in target.key_credentials if k.key_id != key_id.lower())
            if len(passwords) == len(target.password_credentials) and len(keys) == len(
                target.key_credentials
            ):
                raise ValueError(f"{ref!r} has no credential {key_id!r}")
            changed = replace(target, password_credentials=passwords, key_credentials=keys)
            properties = (
                "passwordCredentials"
                if len(passwords) != len(target.password_credentials)
                else "keyCredentials",
            )
            seq = self._record(resource, changed, properties, now_us)
            audit = apps_audit.credential_change(resource, target, changed, actor=actor, added=None)
            return Mutation(seq, [audit], target.id, {"keyId": key_id.lower()})

    def change_permission(
        self, ref: str, permission: str, *, grant: bool, consent: bool, actor: Actor, now_us: int
    ) -> Mutation:
        """Grant (with the admin consent record, unless consent is False) or revoke a Microsoft Graph
        application permission, by value (Directory.ReadWrite.All) or app role id."""
        from devtools.simulator import apps_audit

        role = GRAPH_ROLES_BY_VALUE.get(permission.lower()) or GRAPH_ROLES_BY_ID.get(permission.lower())
        if role is None:
            raise ValueError(f"unknown Microsoft Graph application permission {permission!r}")
        with self._lock:
            principal = self.resolve_principal(ref)
            assignments = self.assignments.setdefault(principal.id, [])
            existing = next((a for a in assignments if a.app_role_id == role.id), None)
            graph = self._histories[SERVICE_PRINCIPALS][self.graph_principal_id].current
            if grant:
                if existing is not None:
                    raise ValueError(f"{ref!r} already holds {role.value}")
                assignment = AppRoleAssignment(
                    _b64url(self._rng("assignment").randbytes(32)), role.id, graph.id, now_us
                )
                assignments.append(assignment)
            else:
                if existing is None:
                    raise ValueError(f"{ref!r} does not hold {role.value}")
                assignment = existing
                assignments.remove(existing)
            audits = apps_audit.permission_change(
                principal, graph, role, assignment, grant=grant, consent=consent, actor=actor
            )
            return Mutation(None, audits, principal.id, {"assignmentId": assignment.id, "value": role.value})

    def set_notes(self, ref: str, notes: str | None, *, actor: Actor, now_us: int) -> Mutation:
        """Write a principal's notes; a change is a delta change and an "Update service principal" record,
        an unchanged value is neither."""
        from devtools.simulator import apps_audit

        if notes is not None and (not isinstance(notes, str) or len(notes) > NOTES_MAX_LENGTH):
            raise ValueError(f"notes must be a string of at most {NOTES_MAX_LENGTH} characters, or null")
        with self._lock:
            principal = self.resolve_principal(ref)
            if principal.notes == notes:
                return Mutation(None, [], principal.id, {"changed": False})
            changed = replace(principal, notes=notes)
            seq = self._record(SERVICE_PRINCIPALS, changed, ("notes",), now_us)
            self.notes_case[principal.id] = "set"
            audit = apps_audit.notes_change(principal, changed, actor=actor)
            return Mutation(seq, [audit], principal.id, {"changed": True})

    def patch_service_principal(
        self, sp_id: str, body: Any, *, client_id: str | None, now_us: int
    ) -> tuple[int, str | None, Mutation | None]:
        """PATCH /servicePrincipals/{id}: (status, error message or None, mutation). Only `notes` is
        accepted (204); any other property is refused (400) without writing. Every call is recorded."""
        mutation: Mutation | None = None
        error: str | None = None
        status = 204
        with self._lock:
            before = self.find(SERVICE_PRINCIPALS, sp_id)
            if before is None:
                status, error = (
                    404,
                    f"Resource '{sp_id}' does not exist or one of its queried reference-property objects are "
                    "not present.",
                )
            elif not isinstance(body, dict):
                status, error = 400, "Empty Payload. JSON content expected."
            else:
                unknown = sorted(k for k in body if k != "notes" and not k.startswith("@"))
                if unknown:
                    status = 400
                    refused = ", ".join(unknown)
                    error = f"The simulator only writes 'notes' on a servicePrincipal; refused: {refused}."
                elif "notes" not in body:
                    status, error = 400, "Empty Payload. JSON content expected."
                elif body["notes"] is not None and (
                    not isinstance(body["notes"], str) or len(body["notes"]) > NOTES_MAX_LENGTH
                ):
                    status, error = (
                        400,
                        "Invalid value specified for property 'notes' of resource 'ServicePrincipal'.",
                    )
                else:
                    actor = self.app_actor(client_id)
                    mutation = self.set_notes(sp_id, body["notes"], actor=actor, now_us=now_us)
                    if mutation.seq is not None:
                        self.notes_case[sp_id.lower()] = "patched"
            self._writes.append(
                {
                    "sequence": len(self._writes) + 1,
                    "id": sp_id.lower(),
                    "body": body,
                    "status": status,
                    "accepted": status == 204,
                    "changed": bool(mutation and mutation.seq is not None),
                    "notes_before": None if before is None else before.notes,
                    "notes_after": None if mutation is None else self.find(SERVICE_PRINCIPALS, sp_id).notes,
                    "client_id": client_id,
                    "sim_time": iso(now_us),
                }
            )
        return status, error, mutation

    def create_application(
        self, display_name: str, *, owners: Sequence[str], sign_in_audience: str, actor: Actor, now_us: int
    ) -> Mutation:
        """Register an application and its service principal (owned by `owners`), as the portal does."""
        from devtools.simulator import apps_audit

        if not isinstance(display_name, str) or not display_name.strip() or len(display_name) > 256:
            raise ValueError("display_name must be a non-empty string of at most 256 characters")
        if sign_in_audience not in (
            "AzureADMyOrg",
            "AzureADMultipleOrgs",
            "AzureADandPersonalMicrosoftAccount",
        ):
            raise ValueError(f"unsupported sign_in_audience {sign_in_audience!r}")
        with self._lock:
            owner_refs = [self._owner_ref(o) for o in owners]
            rng = self._rng("create")
            app = AppState(
                id=guid(rng),
                app_id=guid(rng),
                display_name=display_name,
                created_us=now_us,
                sign_in_audience=sign_in_audience,
                publisher_domain=self.directory.domain,
                service_principal_id="",
            )
            sp = SpState(
                id=guid(rng),
                app_id=app.app_id,
                display_name=display_name,
                kind="line_of_business",
                service_principal_type="Application",
                app_owner_organization_id=self.tenant_id,
                sign_in_audience=sign_in_audience,
                tags=("WindowsAzureActiveDirectoryIntegratedApp",),
                publisher_name="Contoso",
                service_principal_names=(app.app_id,),
                application_id=app.id,
            )
            app = replace(app, service_principal_id=sp.id)
            self._record(APPLICATIONS, app, (CREATED,), now_us)
            seq = self._record(SERVICE_PRINCIPALS, sp, (CREATED,), now_us)
            self.owners[app.id] = [i for i, _ in owner_refs]
            self.owners[sp.id] = [i for i, _ in owner_refs]
            self.notes_case[sp.id] = "empty"
            audits = [
                apps_audit.application_added(app, actor=actor),
                apps_audit.principal_added(sp, actor=actor),
            ]
            for _, owner in owner_refs:
                audits.append(apps_audit.owner_change(APPLICATIONS, app, owner, add=True, actor=actor))
                audits.append(apps_audit.owner_change(SERVICE_PRINCIPALS, sp, owner, add=True, actor=actor))
            return Mutation(seq, audits, sp.id, {"applicationId": app.id, "appId": app.app_id})

    def delete(self, ref: str, *, actor: Actor, now_us: int) -> Mutation:
        """Delete (soft-delete) a principal, or an application together with its principal."""
        from devtools.simulator import apps_audit

        with self._lock:
            resource, target = self.resolve_object(ref)
            audits = []
            seq = None
            if resource == APPLICATIONS:
                seq = self._record(APPLICATIONS, replace(target, deleted_us=now_us), (DELETED,), now_us)
                audits.append(apps_audit.deleted(APPLICATIONS, target, actor=actor))
                principal = self.find(SERVICE_PRINCIPALS, target.service_principal_id)
            else:
                principal = target
            if principal is not None:
                seq = self._record(
                    SERVICE_PRINCIPALS, replace(principal, deleted_us=now_us), (DELETED,), now_us
                )
                audits.append(apps_audit.deleted(SERVICE_PRINCIPALS, principal, actor=actor))
            return Mutation(seq, audits, target.id)

    def set_user_enabled(self, ref: str, enabled: bool, *, actor: Actor, now_us: int) -> Mutation:
        """Enable or disable a user account (an owner becomes disabled): an "Update user" record."""
        from devtools.simulator import apps_audit

        if not isinstance(enabled, bool):
            raise ValueError("account_enabled must be true or false")
        with self._lock:
            user = self.user(ref)
            if user is None:
                raise ValueError(f"no user {ref!r}")
            if user.account_enabled == enabled:
                return Mutation(None, [], user.id, {"changed": False})
            self.users[user.id] = replace(user, account_enabled=enabled)
            return Mutation(
                None, [apps_audit.user_enabled(user, enabled, actor=actor)], user.id, {"changed": True}
            )

    def reset_delta(self, resources: Sequence[str]) -> dict[str, int]:
        """Make every delta token issued so far for `resources` answer 410 Gone (synchronization reset)."""
        with self._lock:
            for resource in resources:
                self._reset_epochs[resource] += 1
            return dict(self._reset_epochs)

    # ------------------------------------------------------------------------------------------
    # Actors
    # ------------------------------------------------------------------------------------------
    def user_actor(self, upn: str | None) -> Actor:
        """The user a change is initiated by: `upn` (a directory user or a made-up id), default the
        tenant's first administrator."""
        upn = upn or self.directory.admins[0].upn
        user = self.user(upn)
        if user is not None:
            return Actor("user", user.id, user.display_name, user.upn)
        return Actor("user", guid(random.Random(f"actor:{upn.lower()}")), None, upn)  # noqa: S311

    def app_actor(self, client_id: str | None) -> Actor:
        """The application a PATCH came from: its principal when the client id is an appId here."""
        principal = self.find_by_app_id(SERVICE_PRINCIPALS, client_id) if client_id else None
        if principal is not None:
            return Actor("app", principal.id, principal.display_name, principal.app_id)
        return Actor("app", None, None, client_id)
