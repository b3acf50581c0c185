"""The validators file (shared/governance/config.py): the shipped file loads clean and says what the code's
defaults say; a file with mistakes is refused with every problem, each naming the validator and field."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from shared.governance.config import (
    DEFAULT_HIGH_PRIVILEGE_PERMISSIONS,
    DEFAULT_VALIDATORS_FILE,
    MICROSOFT_CORP_TENANT,
    MICROSOFT_SERVICES_TENANT,
    PRIVILEGED_ROLE_TEMPLATES,
    VALIDATOR_IDS,
    CredentialExpiry,
    HighPrivilegePermission,
    NotesParameters,
    SecretWithPrivilegedRole,
    ValidatorConfigError,
    load_default_validators,
    load_validators,
    parse_validator_file,
)

DEFAULT_TEXT = DEFAULT_VALIDATORS_FILE.read_text(encoding="utf-8")
BAD_SEVERITY = (
    "validator 'ownerless': severity: Input should be 'informational', 'low', 'medium', 'high' or 'critical'"
)


def problems(document: Any) -> list[str]:
    with pytest.raises(ValidatorConfigError) as caught:
        parse_validator_file(document)
    return caught.value.problems


def test_the_shipped_file_loads_every_validator_once() -> None:
    validators = load_default_validators()
    assert [v.id for v in validators.validators] == list(VALIDATOR_IDS)
    assert all(v.enabled for v in validators.validators)
    assert validators.origin == "file:validators.yaml"
    assert len(validators.version) == 16
    assert validators.scope.service_principal_types == ("Application",)
    assert validators.scope.exclude_app_owner_tenants == (MICROSOFT_SERVICES_TENANT, MICROSOFT_CORP_TENANT)


def test_the_shipped_file_says_what_the_code_defaults_say() -> None:
    """The file spells its parameters out for admins; they are the code's defaults, so a validator
    written with no parameters behaves as the shipped one."""
    validators = load_default_validators()
    for validator in validators.validators:
        bare = parse_validator_file({"validators": [{"id": validator.id, "severity": validator.severity}]})
        assert bare.validators[0].parameters == validator.parameters, validator.id
    permissions = validators.get("high-privilege-permission")
    assert isinstance(permissions, HighPrivilegePermission)
    assert permissions.parameters.permissions == DEFAULT_HIGH_PRIVILEGE_PERMISSIONS
    roles = validators.get("secret-with-privileged-role")
    assert isinstance(roles, SecretWithPrivilegedRole)
    assert roles.parameters.role_template_ids == tuple(PRIVILEGED_ROLE_TEMPLATES)
    # the comments name the same roles as the code
    for template_id, name in PRIVILEGED_ROLE_TEMPLATES.items():
        assert f"{template_id}   # {name}" in DEFAULT_TEXT


def test_severities_follow_the_issue() -> None:
    severities = {v.id: v.severity for v in load_default_validators().validators}
    assert severities["high-privilege-permission"] == "critical"
    assert severities["credential-expiry"] == "medium"
    assert severities["ownerless"] == "medium"


def test_an_unknown_validator_is_named_by_position() -> None:
    assert problems({"validators": [{"id": "notes-list-owners", "severity": "low"}]}) == [
        "validators[0]: id: unknown validator 'notes-list-owners' (known: " + ", ".join(VALIDATOR_IDS) + ")"
    ]
    assert problems({"validators": [{"severity": "low"}]})[0].startswith(
        "validators[0]: id: missing (known: "
    )


def test_a_bad_severity_names_the_validator_and_field() -> None:
    assert problems({"validators": [{"id": "ownerless", "severity": "urgent"}]}) == [BAD_SEVERITY]


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        (
            {"id": "credential-expiry", "parameters": {"windows_days": [30, 0]}},
            "validator 'credential-expiry': parameters.windows_days[1]: Input should be greater than 0",
        ),
        (
            {"id": "credential-expiry", "parameters": {"windows_days": [7, 7]}},
            "validator 'credential-expiry': parameters.windows_days: Value error, "
            "each window may be listed once",
        ),
        (
            {"id": "credential-lifetime", "parameters": {"max_secret_days": -1}},
            "validator 'credential-lifetime': parameters.max_secret_days: Input should be greater than 0",
        ),
        (
            {"id": "high-privilege-permission", "parameters": {"permissions": []}},
            "validator 'high-privilege-permission': parameters.permissions: Value error, "
            "give at least one value",
        ),
        (
            {"id": "high-privilege-permission", "parameters": {"permissions": ["Mail ReadWrite"]}},
            "validator 'high-privilege-permission': parameters.permissions: Value error, "
            "'Mail ReadWrite' is not a permission name such as Mail.ReadWrite",
        ),
        (
            {
                "id": "secret-with-privileged-role",
                "parameters": {"role_template_ids": ["Global Administrator"]},
            },
            "validator 'secret-with-privileged-role': parameters.role_template_ids[0]: Value error, "
            "'Global Administrator' is not a GUID",
        ),
        (
            {"id": "unverified-multitenant", "parameters": {"audiences": ["AzureADMultipleOrg"]}},
            "validator 'unverified-multitenant': parameters.audiences[0]: Input should be 'AzureADMyOrg', "
            "'AzureADMultipleOrgs', 'AzureADandPersonalMicrosoftAccount' or 'PersonalMicrosoftAccount'",
        ),
        (
            {"id": "ownerless", "parameters": {"allow_owners": True}},
            "validator 'ownerless': parameters.allow_owners: Extra inputs are not permitted",
        ),
        (
            {"id": "notes-lists-owners", "scope": {"service_principal_types": ["App"]}},
            "validator 'notes-lists-owners': scope.service_principal_types[0]: "
            "Input should be 'Application', 'ManagedIdentity', 'Legacy' or 'SocialIdp'",
        ),
        (
            {"id": "notes-lists-owners", "colour": "red"},
            "validator 'notes-lists-owners': colour: Extra inputs are not permitted",
        ),
    ],
)
def test_a_bad_parameter_names_the_validator_and_field(entry: dict[str, Any], expected: str) -> None:
    assert problems({"validators": [{"severity": "low", **entry}]}) == [expected]


def test_every_problem_is_reported_at_once() -> None:
    found = problems(
        {
            "scope": {"exclude_app_owner_tenants": ["microsoft"]},
            "validators": [
                {"id": "ownerless", "severity": "urgent"},
                {"id": "nope", "severity": "low"},
                {"id": "credential-expiry", "severity": "low", "parameters": {"windows_days": [0]}},
                {"id": "credential-lifetime", "severity": "low"},
                {"id": "credential-lifetime", "severity": "high"},
            ],
        }
    )
    assert found == [
        "scope: exclude_app_owner_tenants[0]: Value error, 'microsoft' is not a GUID",
        BAD_SEVERITY,
        "validators[1]: id: unknown validator 'nope' (known: " + ", ".join(VALIDATOR_IDS) + ")",
        "validator 'credential-expiry': parameters.windows_days[0]: Input should be greater than 0",
        "validator 'credential-lifetime': id: used more than once",
    ]


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ([], "the validators file must be a mapping with 'validators' (and 'scope')"),
        ({"validators": []}, "'validators' must be a non-empty list"),
        (
            {"rules": [], "validators": [{"id": "ownerless", "severity": "low"}]},
            "unknown top-level key(s): rules",
        ),
        (
            {"version": 2, "validators": [{"id": "ownerless", "severity": "low"}]},
            "version: only version 1 is known",
        ),
        ({"validators": ["ownerless"]}, "validators[0]: must be a mapping with id, severity, ..."),
    ],
)
def test_a_malformed_file_is_refused(document: Any, expected: str) -> None:
    assert problems(document) == [expected]


def test_text_that_is_not_yaml_or_too_large_is_refused() -> None:
    with pytest.raises(ValidatorConfigError, match=r"blob:validators.yaml: not valid YAML"):
        load_validators("validators: [\n  - id: ownerless\n", "blob:validators.yaml")
    bomb = 'a: &a ["x","x","x","x","x","x","x","x","x","x"]\n' + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},"
        f"*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)}]\n"
        for i in range(8)
    )
    with pytest.raises(ValidatorConfigError, match="expands to more than"):
        load_validators(bomb, "blob:validators.yaml")


def test_an_empty_parameters_or_scope_key_means_the_defaults() -> None:
    text = "validators:\n  - id: credential-expiry\n    severity: high\n    scope:\n    parameters:\n"
    loaded = load_validators(text, "memory")
    (expiry,) = loaded.validators
    assert isinstance(expiry, CredentialExpiry)
    assert expiry.parameters.windows_days == (7, 14, 30)
    assert loaded.scope_for(expiry) == loaded.scope
    assert loaded.notes_parameters() == NotesParameters()  # not in the file: the rule's defaults


def test_ids_and_guids_are_normalised() -> None:
    loaded = parse_validator_file(
        {
            "validators": [
                {
                    "id": "secret-with-privileged-role",
                    "severity": "high",
                    "parameters": {"role_template_ids": ["62E90394-69F5-4237-9190-012177145E10"]},
                },
                {"id": "credential-expiry", "severity": "low", "parameters": {"windows_days": [30, 7, 14]}},
            ]
        }
    )
    roles, expiry = loaded.validators
    assert isinstance(roles, SecretWithPrivilegedRole)
    assert isinstance(expiry, CredentialExpiry)
    assert roles.parameters.role_template_ids == ("62e90394-69f5-4237-9190-012177145e10",)
    assert expiry.parameters.windows_days == (7, 14, 30)


def test_the_version_follows_the_text() -> None:
    edited = DEFAULT_TEXT.replace("severity: critical", "severity: high", 1)
    assert yaml.safe_load(edited) != yaml.safe_load(DEFAULT_TEXT)
    assert load_validators(edited, "x").version != load_default_validators().version
    assert load_validators(DEFAULT_TEXT, "x").version == load_default_validators().version
