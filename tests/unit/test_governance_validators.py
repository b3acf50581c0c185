"""Each governance validator on a passing and a failing object (issue 18, acceptance 2), with the edges that
decide a finding: windows and lifetimes at their bounds, owners whose state was not read, scopes, and the
order and shape of what `evaluate` returns. Objects are built from Graph v1.0 payloads
(tests/unit/test_governance_model.py)."""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

import pytest

from shared.governance.config import ValidatorSet, load_default_validators, parse_validator_file
from shared.governance.model import DirectoryPrincipal, GovernedObject
from shared.governance.notes import MappingDirectory
from shared.governance.validators import MAX_EVIDENCE_ITEMS, Finding, evaluate
from tests.support.clock import ManualClock
from tests.unit.test_governance_model import (
    APP_OWNERS,
    APP_ROLE_ASSIGNMENTS,
    APP_SECRET_KEY,
    APPLICATION_ADMIN,
    GLOBAL_ADMIN,
    LIMITED_OWNER,
    MEMBER_OF,
    MICROSOFT_SERVICES_TENANT,
    ROLE_ASSIGNMENTS,
    SERVICE_PRINCIPAL,
    SP_CERT_KEY,
    SP_OWNERS,
    SP_SECRET_KEY,
    app_with,
    graph_object,
    sp_with,
)

NOW = dt.datetime(2026, 12, 10, 12, 0, tzinfo=dt.UTC)
DEFAULTS = load_default_validators()
ALICE, PIPELINE = SP_OWNERS["value"]
BOB, _, CAROL = APP_OWNERS["value"]
USER_READ_ALL_ONLY = [APP_ROLE_ASSIGNMENTS["value"][1]]
MAIL_READWRITE_ONLY = [APP_ROLE_ASSIGNMENTS["value"][0]]


def only(validator_id: str, **overrides: Any) -> ValidatorSet:
    """The default file with just one validator, its entry changed by `overrides`."""
    entry = DEFAULTS.get(validator_id)
    assert entry is not None
    document = entry.model_dump(mode="json", exclude_none=True)
    document.update(overrides)
    return parse_validator_file({"scope": DEFAULTS.scope.model_dump(mode="json"), "validators": [document]})


def clean(**changes: Any) -> GovernedObject:
    """A well-kept object: notes name Alice and Bob (enabled members, owners), the credentials are within
    the lifetime limits (the application's secret exactly 180 days, the certificate exactly 365) and far
    from expiry, only User.Read.All granted, no directory role."""
    changes.setdefault("assignments", USER_READ_ALL_ONLY)
    return graph_object(**changes)


def owner(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**copy.deepcopy(base), **changes}


def secret(key_id: str, start: str, end: str | None, name: str = "rotation") -> dict[str, Any]:
    return {"keyId": key_id, "displayName": name, "startDateTime": start, "endDateTime": end, "hint": "abc"}


def certificate(key_id: str, start: str, end: str, kind: str = "AsymmetricX509Cert") -> dict[str, Any]:
    return {"keyId": key_id, "displayName": "CN=x", "type": kind, "usage": "Verify", "startDateTime": start,
            "endDateTime": end}  # fmt: skip


def rows(finding: Finding, key: str) -> list[dict[str, Any]]:
    """An evidence list of objects (owners, roles, secrets)."""
    value = finding.evidence[key]
    assert isinstance(value, list)
    assert all(isinstance(item, dict) for item in value)
    return [dict(item) for item in value if isinstance(item, dict)]


def ids(findings: list[Finding]) -> list[tuple[str, str]]:
    return [(f.validator_id, f.subject) for f in findings]


def test_a_well_kept_object_passes_every_default_validator() -> None:
    assert evaluate(clean(), DEFAULTS, NOW) == []


# --- notes-lists-owners ---------------------------------------------------------------------------


def test_notes_naming_enabled_member_owners_pass() -> None:
    validators = only("notes-lists-owners")
    assert evaluate(clean(), validators, NOW) == []
    # whitespace, case and empty entries do not matter; either separator, or both
    for notes in (
        "  ALICE@contoso.com ,bob@contoso.com;",
        "bob@contoso.com;;alice@CONTOSO.com",
        "alice@contoso.com",
    ):
        assert evaluate(clean(sp=sp_with(notes=notes)), validators, NOW) == [], notes


@pytest.mark.parametrize(
    ("notes", "owners", "expected"),
    [
        (None, None, [("", "empty")]),
        (" ; , ", None, [("", "empty")]),
        ("Alice Wong", None, [("Alice Wong", "not-a-upn")]),
        ("alice@contoso.com, mallory@contoso.com", None, [("mallory@contoso.com", "not-an-owner")]),
        ("alice@contoso.com", [owner(ALICE, accountEnabled=False)], [("alice@contoso.com", "disabled")]),
        (
            "carol_fabrikam.com#EXT#@contoso.onmicrosoft.com",
            None,
            [("carol_fabrikam.com#EXT#@contoso.onmicrosoft.com", "guest")],
        ),
        (
            "dave@contoso.com",
            [owner(LIMITED_OWNER, userPrincipalName="dave@contoso.com")],
            [("dave@contoso.com", "state-unknown")],
        ),
    ],
)
def test_notes_that_do_not_name_accountable_owners_fail(
    notes: str | None, owners: list[dict[str, Any]] | None, expected: list[tuple[str, str]]
) -> None:
    obj = clean(sp=sp_with(notes=notes), owners=owners)
    (finding,) = evaluate(obj, only("notes-lists-owners"), NOW)
    assert (finding.validator_id, finding.severity, finding.subject) == (
        "notes-lists-owners",
        "medium",
        "notes",
    )
    assert finding.evidence["problems"] == [{"entry": e, "reason": r} for e, r in expected]
    assert finding.evidence["notes"] == notes
    assert finding.message.startswith("Notes do not name accountable owners")


def test_a_guest_owner_passes_when_guests_are_allowed() -> None:
    obj = clean(sp=sp_with(notes="carol_fabrikam.com#EXT#@contoso.onmicrosoft.com"))
    validators = only("notes-lists-owners", parameters={"allow_guests": True})
    assert evaluate(obj, validators, NOW) == []


def test_notes_may_name_directory_users_when_owners_are_not_required() -> None:
    validators = only("notes-lists-owners", parameters={"require_owner": False})
    obj = clean(sp=sp_with(notes="alice@contoso.com; erin@contoso.com"))
    erin = DirectoryPrincipal.model_validate(
        {"@odata.type": "#microsoft.graph.user", "id": "9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a",
         "userPrincipalName": "Erin@contoso.com", "accountEnabled": True, "userType": "Member"}
    )  # fmt: skip
    assert evaluate(obj, validators, NOW, directory=MappingDirectory([erin])) == []

    (missing,) = evaluate(obj, validators, NOW, directory=MappingDirectory([]))
    assert missing.evidence["problems"] == [{"entry": "erin@contoso.com", "reason": "not-found"}]
    (unverified,) = evaluate(obj, validators, NOW)
    assert unverified.evidence["problems"] == [{"entry": "erin@contoso.com", "reason": "not-verified"}]
    disabled = erin.model_copy(update={"account_enabled": False})
    (off,) = evaluate(obj, validators, NOW, directory=MappingDirectory([disabled]))
    assert off.evidence["problems"] == [{"entry": "erin@contoso.com", "reason": "disabled"}]


# --- ownerless ------------------------------------------------------------------------------------


def test_an_object_with_an_enabled_member_owner_is_not_ownerless() -> None:
    assert evaluate(clean(owners=[ALICE], application_owners=[]), only("ownerless"), NOW) == []


def test_no_owner_at_all_is_ownerless() -> None:
    (finding,) = evaluate(clean(owners=[], application_owners=[]), only("ownerless"), NOW)
    assert (finding.subject, finding.message, finding.evidence) == ("owners", "No owner", {"owners": []})


def test_only_disabled_guest_unreadable_or_service_principal_owners_is_ownerless() -> None:
    owners = [owner(ALICE, accountEnabled=False), PIPELINE, LIMITED_OWNER]
    obj = clean(owners=owners, application_owners=[CAROL])
    (finding,) = evaluate(obj, only("ownerless"), NOW)
    assert [o["standing"] for o in rows(finding, "owners")] == [
        "disabled",
        "service-principal",
        "unknown",
        "guest",
    ]
    assert finding.message == (
        "No accountable owner: 4 owner(s), none an enabled member "
        "(1 disabled, 1 guest, 1 service-principal, 1 unknown)"
    )
    assert evaluate(obj, only("ownerless", parameters={"allow_guests": True}), NOW) == []
    sp_owners = only("ownerless", parameters={"allow_service_principal_owners": True})
    assert evaluate(obj, sp_owners, NOW) == []


# --- credential-expiry ----------------------------------------------------------------------------


def expiring(end: str, **parameters: Any) -> list[Finding]:
    app = app_with(passwordCredentials=[secret(APP_SECRET_KEY, "2026-09-01T00:00:00Z", end)])
    validators = only("credential-expiry", **({"parameters": parameters} if parameters else {}))
    return evaluate(clean(application=app), validators, NOW)


def test_credentials_far_from_expiry_pass() -> None:
    assert evaluate(clean(), only("credential-expiry"), NOW) == []
    assert expiring("2027-01-09T12:00:01Z") == []  # just past 30 days


@pytest.mark.parametrize(
    ("end", "window", "days_left"),
    [
        ("2027-01-09T12:00:00Z", 30, 30),  # exactly 30 days: inside the window
        ("2026-12-30T12:00:00Z", 30, 20),
        ("2026-12-24T12:00:00Z", 14, 14),
        ("2026-12-17T12:00:00Z", 7, 7),
        ("2026-12-15T18:00:00Z", 7, 5),
    ],
)
def test_a_credential_expiring_within_a_window_fails_with_its_bucket(
    end: str, window: int, days_left: int
) -> None:
    (finding,) = expiring(end)
    assert (finding.validator_id, finding.severity) == ("credential-expiry", "medium")
    assert finding.subject == f"application:password:{APP_SECRET_KEY}"
    assert finding.evidence["expired"] is False
    assert (finding.evidence["window_days"], finding.evidence["days_left"]) == (window, days_left)
    assert finding.evidence["key_id"] == APP_SECRET_KEY
    assert finding.evidence["location"] == "application"
    assert f"within {window} days" in finding.message


def test_an_expired_credential_fails_unless_expired_ones_are_left_out() -> None:
    (finding,) = expiring("2026-12-07T12:00:00Z")
    assert finding.evidence["expired"] is True
    assert (finding.evidence["window_days"], finding.evidence["days_left"]) == (None, -3)
    assert "expired on 2026-12-07T12:00:00.000Z (3 day(s) ago)" in finding.message
    assert expiring("2026-12-07T12:00:00Z", include_expired=False) == []


def test_expiry_windows_are_configurable() -> None:
    assert expiring("2026-12-30T12:00:00Z", windows_days=[7]) == []
    (finding,) = expiring("2026-12-30T12:00:00Z", windows_days=[60, 21])
    assert finding.evidence["window_days"] == 21
    # without parameters: the 30/14/7 defaults
    bare = parse_validator_file({"validators": [{"id": "credential-expiry", "severity": "medium"}]})
    app = app_with(
        passwordCredentials=[secret(APP_SECRET_KEY, "2026-09-01T00:00:00Z", "2026-12-30T12:00:00Z")]
    )
    (default,) = evaluate(clean(application=app), bare, NOW)
    assert default.evidence["window_days"] == 30


def test_expiry_follows_the_injected_clock() -> None:
    clock = ManualClock(NOW)
    app = app_with(
        passwordCredentials=[secret(APP_SECRET_KEY, "2026-09-01T00:00:00Z", "2027-01-20T12:00:00Z")]
    )
    obj, validators = clean(application=app), only("credential-expiry")
    assert evaluate(obj, validators, clock.now()) == []
    clock.advance(11 * 86_400)  # 30 days left
    (finding,) = evaluate(obj, validators, clock.now())
    assert finding.evidence["window_days"] == 30


# --- credential-lifetime --------------------------------------------------------------------------


def test_credentials_at_the_lifetime_limits_pass() -> None:
    obj = clean()  # the application's secret is valid exactly 180 days, the certificate exactly 365
    assert [c.end - c.start for c in obj.credentials() if c.start and c.end][1:] == [
        dt.timedelta(days=365),
        dt.timedelta(days=180),
    ]
    assert evaluate(obj, only("credential-lifetime"), NOW) == []


def test_a_long_lived_secret_or_certificate_fails() -> None:
    sp = sp_with(
        passwordCredentials=[
            secret(SP_SECRET_KEY, "2026-11-01T00:00:00Z", "2027-05-01T00:00:01Z")
        ],  # 181 days
        keyCredentials=[certificate(SP_CERT_KEY, "2026-06-01T00:00:00Z", "2028-06-01T00:00:00Z")],
    )
    findings = evaluate(clean(sp=sp), only("credential-lifetime"), NOW)
    assert ids(findings) == [
        ("credential-lifetime", f"servicePrincipal:certificate:{SP_CERT_KEY}"),
        ("credential-lifetime", f"servicePrincipal:password:{SP_SECRET_KEY}"),
    ]
    cert, password = findings
    assert (cert.evidence["lifetime_days"], cert.evidence["max_days"], cert.evidence["baseline"]) == (
        731.0,
        365,
        "MS.AAD.5.7v1",
    )
    assert (password.evidence["lifetime_days"], password.evidence["baseline"]) == (181.0, "MS.AAD.5.6v1")
    assert password.severity == "low"


def test_a_secret_that_never_expires_fails_and_one_without_a_start_is_skipped() -> None:
    sp = sp_with(
        passwordCredentials=[
            secret(SP_SECRET_KEY, "2026-11-01T00:00:00Z", None, name="forever"),
            {"keyId": "7e6d5c4b-3a29-4817-9f6e-5d4c3b2a1908", "endDateTime": "2030-01-01T00:00:00Z"},
        ],
        keyCredentials=[],
    )
    findings = evaluate(clean(sp=sp), only("credential-lifetime"), NOW)
    assert ids(findings) == [("credential-lifetime", f"servicePrincipal:password:{SP_SECRET_KEY}")]
    assert findings[0].evidence["lifetime_days"] is None
    assert "never expires" in findings[0].message
    # a symmetric key is a shared secret: the 180-day limit applies to it
    symmetric = sp_with(
        passwordCredentials=[],
        keyCredentials=[
            certificate(SP_CERT_KEY, "2026-01-01T00:00:00Z", "2026-12-31T00:00:00Z", kind="Symmetric")
        ],
    )
    (finding,) = evaluate(clean(sp=symmetric), only("credential-lifetime"), NOW)
    assert finding.subject == f"servicePrincipal:symmetricKey:{SP_CERT_KEY}"


# --- high-privilege-permission --------------------------------------------------------------------


def test_an_ordinary_permission_passes() -> None:
    assert evaluate(clean(), only("high-privilege-permission"), NOW) == []


def test_a_high_privilege_graph_permission_fails_per_permission() -> None:
    obj = clean(assignments=APP_ROLE_ASSIGNMENTS["value"])
    (finding,) = evaluate(obj, only("high-privilege-permission"), NOW)
    assert (finding.severity, finding.subject) == (
        "critical",
        "permission:00000003-0000-0000-c000-000000000000:Mail.ReadWrite",
    )
    assert finding.message == "Application permission Mail.ReadWrite on Microsoft Graph is granted"
    assert finding.evidence["permission"] == "Mail.ReadWrite"
    assert finding.evidence["granted_at"] == "2026-10-02T04:22:45.498Z"
    narrower = only("high-privilege-permission", parameters={"permissions": ["user.read.all"]})
    (other,) = evaluate(obj, narrower, NOW)
    assert other.evidence["permission"] == "User.Read.All"  # names compare ignoring case


def test_a_permission_of_the_same_name_on_another_api_passes() -> None:
    other_api = {
        "id": "1d2c3b4a-5f6e-4d7c-8b9a-0f1e2d3c4b5a",
        "appId": "5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8d",
        "displayName": "Contoso HR API",
        "appRoles": [{"id": "3b2a1908-7e6d-4c5b-9a4f-3e2d1c0b9a8f", "value": "Mail.ReadWrite"}],
    }
    assignment = {
        "id": "hr-assignment",
        "appRoleId": "3b2a1908-7e6d-4c5b-9a4f-3e2d1c0b9a8f",
        "principalId": SERVICE_PRINCIPAL["id"],
        "resourceId": other_api["id"],
        "resourceDisplayName": "Contoso HR API",
    }
    obj = GovernedObject.from_graph(
        SERVICE_PRINCIPAL, app_role_assignments=[assignment], resources=[other_api]
    )
    assert obj.app_permissions[0].value == "Mail.ReadWrite"
    assert evaluate(obj, only("high-privilege-permission"), NOW) == []


def test_a_managed_identity_with_a_high_privilege_permission_fails() -> None:
    identity = sp_with(
        servicePrincipalType="ManagedIdentity", notes=None, passwordCredentials=[], keyCredentials=[]
    )
    obj = clean(
        sp=identity, application=None, owners=[], application_owners=[], assignments=MAIL_READWRITE_ONLY
    )
    assert ids(evaluate(obj, DEFAULTS, NOW)) == [
        ("high-privilege-permission", "permission:00000003-0000-0000-c000-000000000000:Mail.ReadWrite")
    ]  # the notes and owner validators are scoped to applications


# --- secret-with-privileged-role ------------------------------------------------------------------


def test_a_secret_without_a_privileged_role_or_a_role_without_a_secret_passes() -> None:
    validators = only("secret-with-privileged-role")
    assert evaluate(clean(), validators, NOW) == []
    no_secrets = clean(
        sp=sp_with(passwordCredentials=[]),
        application=app_with(passwordCredentials=[]),
        role_assignments=ROLE_ASSIGNMENTS["value"],
    )
    assert evaluate(no_secrets, validators, NOW) == []


def test_a_secret_and_a_privileged_role_fail() -> None:
    obj = clean(member_of=MEMBER_OF["value"], role_assignments=ROLE_ASSIGNMENTS["value"])
    (finding,) = evaluate(obj, only("secret-with-privileged-role"), NOW)
    assert (finding.severity, finding.subject) == ("high", "secrets-and-roles")
    assert [(r["role_template_id"], r["scope"]) for r in rows(finding, "roles")] == [
        (APPLICATION_ADMIN, "/"),
        (GLOBAL_ADMIN, "/"),
    ]  # the assignment scoped to one app is not tenant-wide
    assert [s["key_id"] for s in rows(finding, "secrets")] == [SP_SECRET_KEY, APP_SECRET_KEY]
    assert finding.message.startswith("Holds the privileged role(s) ")


def test_only_live_secrets_and_tenant_wide_roles_count_by_default() -> None:
    expired = [secret(SP_SECRET_KEY, "2026-01-01T00:00:00Z", "2026-06-01T00:00:00Z")]
    obj = clean(
        sp=sp_with(passwordCredentials=expired),
        application=app_with(passwordCredentials=[]),
        role_assignments=ROLE_ASSIGNMENTS["value"],
    )
    assert evaluate(obj, only("secret-with-privileged-role"), NOW) == []
    counted = only("secret-with-privileged-role", parameters={"count_expired_secrets": True})
    assert len(evaluate(obj, counted, NOW)) == 1
    scoped_only = clean(role_assignments=[ROLE_ASSIGNMENTS["value"][1]])
    assert evaluate(scoped_only, only("secret-with-privileged-role"), NOW) == []
    with_scoped = only("secret-with-privileged-role", parameters={"include_scoped_assignments": True})
    assert len(evaluate(scoped_only, with_scoped, NOW)) == 1


# --- unverified-multitenant -----------------------------------------------------------------------


def test_a_single_tenant_or_verified_multitenant_app_passes() -> None:
    validators = only("unverified-multitenant")
    assert evaluate(clean(), validators, NOW) == []
    verified = app_with(
        signInAudience="AzureADMultipleOrgs",
        verifiedPublisher={
            "displayName": "Contoso",
            "verifiedPublisherId": "1234567",
            "addedDateTime": "2025-03-01T00:00:00Z",
        },
    )
    assert evaluate(clean(application=verified), validators, NOW) == []


def test_an_unverified_multitenant_app_fails() -> None:
    obj = clean(application=app_with(signInAudience="AzureADandPersonalMicrosoftAccount"))
    (finding,) = evaluate(obj, only("unverified-multitenant"), NOW)
    assert (finding.subject, finding.severity) == ("publisher", "medium")
    assert finding.evidence["read_from"] == "application"
    assert finding.evidence["sign_in_audience"] == "AzureADandPersonalMicrosoftAccount"


def test_a_third_party_app_is_judged_on_its_service_principal() -> None:
    vendor = sp_with(
        appOwnerOrganizationId="0b1c2d3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e", signInAudience="AzureADMultipleOrgs"
    )
    (finding,) = evaluate(clean(sp=vendor, application=None), only("unverified-multitenant"), NOW)
    assert finding.evidence["read_from"] == "servicePrincipal"
    microsoft = sp_with(
        appOwnerOrganizationId=MICROSOFT_SERVICES_TENANT, signInAudience="AzureADMultipleOrgs"
    )
    assert evaluate(clean(sp=microsoft, application=None), DEFAULTS, NOW) == []  # first-party: out of scope


# --- evaluate -------------------------------------------------------------------------------------


def neglected() -> GovernedObject:
    """Fails every default validator."""
    return graph_object(
        sp=sp_with(
            notes="someone@contoso.com",
            passwordCredentials=[secret(SP_SECRET_KEY, "2026-01-01T00:00:00Z", None)],
        ),
        application=app_with(
            signInAudience="AzureADMultipleOrgs",
            passwordCredentials=[secret(APP_SECRET_KEY, "2025-12-01T00:00:00Z", "2026-12-12T00:00:00Z")],
        ),
        owners=[owner(ALICE, accountEnabled=False)],
        application_owners=[],
        assignments=APP_ROLE_ASSIGNMENTS["value"],
        role_assignments=ROLE_ASSIGNMENTS["value"],
    )


def test_findings_come_back_sorted_and_the_same_every_time() -> None:
    obj = neglected()
    findings = evaluate(obj, DEFAULTS, NOW)
    assert ids(findings) == [
        ("credential-expiry", f"application:password:{APP_SECRET_KEY}"),
        ("credential-lifetime", f"application:password:{APP_SECRET_KEY}"),
        ("credential-lifetime", f"servicePrincipal:password:{SP_SECRET_KEY}"),
        ("high-privilege-permission", "permission:00000003-0000-0000-c000-000000000000:Mail.ReadWrite"),
        ("notes-lists-owners", "notes"),
        ("ownerless", "owners"),
        ("secret-with-privileged-role", "secrets-and-roles"),
        ("unverified-multitenant", "publisher"),
    ]
    assert evaluate(GovernedObject.model_validate(obj.model_dump(mode="json")), DEFAULTS, NOW) == findings
    assert [Finding.model_validate_json(f.model_dump_json()) for f in findings] == findings


def test_a_disabled_or_out_of_scope_validator_does_not_run() -> None:
    off = only("ownerless", enabled=False)
    assert evaluate(clean(owners=[], application_owners=[]), off, NOW) == []
    identities_only = only("ownerless", scope={"service_principal_types": ["ManagedIdentity"]})
    assert evaluate(clean(owners=[], application_owners=[]), identities_only, NOW) == []
    unknown_type = sp_with()
    del unknown_type["servicePrincipalType"]
    assert (
        len(evaluate(clean(sp=unknown_type, owners=[], application_owners=[]), only("ownerless"), NOW)) == 1
    )


def test_evidence_lists_are_capped() -> None:
    many = [
        owner(
            ALICE,
            id=f"00000000-0000-4000-8000-{n:012d}",
            userPrincipalName=f"u{n}@contoso.com",
            accountEnabled=False,
        )
        for n in range(MAX_EVIDENCE_ITEMS + 5)
    ]
    (finding,) = evaluate(clean(owners=many, application_owners=[]), only("ownerless"), NOW)
    assert len(rows(finding, "owners")) == MAX_EVIDENCE_ITEMS
    assert finding.evidence["more"] == 5


def test_now_must_carry_its_zone() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        evaluate(clean(), DEFAULTS, NOW.replace(tzinfo=None))
