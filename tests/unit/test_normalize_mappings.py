"""Summary templates (shared/ingestion/mappings.yaml), the safe renderer, timestamps and operation types."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.ingestion.normalize import SOURCES, load_mappings
from shared.ingestion.normalize._common import derive_operation_type, parse_timestamp
from shared.ingestion.normalize.mappings import (
    DEFAULT_MAPPINGS_PATH,
    Template,
    clear_mappings_cache,
    failed_phrasing,
    parse_mappings,
)


def event(**overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "operation": "Add member to role",
        "service": "Directory",
        "category": "RoleManagement",
        "result": "success",
        "result_reason": None,
        "result_code": None,
        "actor": {
            "type": "user",
            "id": "u1",
            "upn": "zoe@contoso.com",
            "display": "Zoë Łukasz 田中",
            "ip": "203.0.113.7",
            "client_app": {
                "id": "1950a258-227b-4e31-a9cf-717495945fc2",
                "name": "Microsoft Azure PowerShell",
            },
        },
        "targets": [
            {
                "type": "User",
                "id": "t1",
                "display": "Adele Vance",
                "modified_properties": [
                    {"name": "Role.DisplayName", "old": "Reader", "new": "Global Administrator"},
                    {"name": "Tags", "old": None, "new": ["a", "b"]},
                ],
            },
            {"type": "Role", "id": "r1", "display": None, "modified_properties": []},
        ],
    }
    doc.update(overrides)
    return doc


def actor(kind: str = "user", **fields: Any) -> dict[str, Any]:
    return {"type": kind, "id": None, "upn": None, "display": None, "ip": None, "client_app": None, **fields}


def target(kind: str | None, name: str | None, **fields: Any) -> dict[str, Any]:
    return {"type": kind, "id": None, "display": name, "modified_properties": [], **fields}


def render(template: str, doc: dict[str, Any] | None = None) -> str | None:
    return Template.parse(template).render(doc or event())


def mappings_from(text: str) -> Any:
    return parse_mappings(yaml.safe_load(text))


def test_whitelisted_placeholders() -> None:
    assert render("{actor} added {target} to {property:Role.DisplayName}") == (
        "Zoë Łukasz 田中 added Adele Vance to Global Administrator"
    )
    assert render("{actor_upn}|{actor_type}|{ip}|{target2}|{target_type}|{service}|{category}|{result}") == (
        "zoe@contoso.com|user|203.0.113.7|r1|User|Directory|RoleManagement|success"
    )
    assert render("{targets}") == "Adele Vance and r1"
    assert render("{operation}") == "Add member to role"
    assert render("{client_app}") == "Microsoft Azure PowerShell"
    assert render("{properties}") == "Role.DisplayName and Tags"


def test_placeholders_for_the_new_facts() -> None:
    doc = event(
        result="failure",
        result_reason="Invalid username or password",
        result_code=50126,
        signin={"location": {"city": "Lyon", "country": "FR"}},
        dlp={
            "policy": "PCI DSS",
            "rule": "Card numbers",
            "severity": "High",
            "sensitive_types": ["Credit Card Number"],
        },
        security_alert={
            "name": "Email forwarding/redirect rule",
            "severity": "Medium",
            "category": "ThreatManagement",
        },
    )
    assert (
        render("{reason}|{result_code}|{city}|{country}", doc) == "Invalid username or password|50126|Lyon|FR"
    )
    assert (
        render("{dlp_policy}|{dlp_rule}|{sensitive_types}", doc) == "PCI DSS|Card numbers|Credit Card Number"
    )
    assert render("{alert_name}|{alert_category}|{severity}", doc) == (
        "Email forwarding/redirect rule|ThreatManagement|High"  # a DLP severity comes first
    )
    assert render("{severity}", {**doc, "dlp": None}) == "Medium"
    for placeholder in (
        "{city}",
        "{country}",
        "{dlp_policy}",
        "{sensitive_types}",
        "{alert_name}",
        "{severity}",
    ):
        assert render(placeholder, event()) is None  # the blocks are absent


def test_typed_targets_and_the_application_signed_in_to() -> None:
    members = [target("User", f"Member {number}") for number in range(1, 6)]
    doc = event(targets=[target("Team", "Project Ω"), *members, target("application", "Outlook")])
    assert render("{target:team}|{app}", doc) == "Project Ω|Outlook"
    assert render("{targets:User}", doc) == "Member 1, Member 2, Member 3 and 2 more"
    assert render("{target:Channel}", doc) is None
    assert render("{app}", event(targets=[target("ServicePrincipal", "Contoso Backup")])) == "Contoso Backup"
    assert render("{app}", event()) is None


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        (["A"], "A"),
        (["A", "B"], "A and B"),
        (["A", "B", "C"], "A, B and C"),
        (["A", "B", "C", "D"], "A, B, C and 1 more"),
        (["A", "B", "C", "D", "E"], "A, B, C and 2 more"),
        ([None, "B", None], "B"),
    ],
)
def test_several_targets_are_named_up_to_three(names: list[str | None], expected: str) -> None:
    doc = event(targets=[target("User", name, id=None) for name in names])
    assert render("{targets}", doc) == expected


def test_an_application_known_only_by_its_id() -> None:
    assert render("{actor}", event(actor=actor("application", id="7d2a1f4e"))) == "Application 7d2a1f4e"
    assert render("{actor}", event(actor=actor("service_principal", id="sp1"))) == "Application sp1"
    assert render("{actor}", event(actor=actor("user", id="u1"))) == "u1"
    assert render("{actor}", event(actor=actor("application", id="a1", display="Contoso Backup"))) == (
        "Contoso Backup"
    )


def test_the_first_change() -> None:
    doc = event(
        targets=[
            target(
                "Team", "Falcon", modified_properties=[{"name": "Access", "old": "Private", "new": "Public"}]
            )
        ]
    )
    assert render("{properties}: {old_value} -> {new_value}", doc) == "Access: Private -> Public"
    assert render("{old_value}", event(targets=[target("Team", "Falcon")])) is None


def test_property_lookup_is_case_insensitive_and_joins_lists() -> None:
    assert render("{property:role.displayname}") == "Global Administrator"
    assert render("{property:Tags}") == "a and b"
    assert render("{property:Missing}") is None
    assert render("{old:Role.DisplayName} -> {property:Role.DisplayName}") == "Reader -> Global Administrator"
    assert render("{old:Tags}") is None


@pytest.mark.parametrize(
    "template",
    [
        "{actor.__class__}",
        "{actor.__class__.__mro__}",
        "{actor[display]}",
        "{actor!r}",
        "{actor:>40}",
        "{0}",
        "{}",
        "{__import__('os').system('echo pwned')}",
        "{property}",
        "{property:}",
        "{new:Tags}",
        "{ actor.__init__.__globals__ }",
        "{doc}",
        "{self}",
        "{nonsense}",
    ],
)
def test_anything_outside_the_whitelist_is_refused_when_the_template_loads(template: str) -> None:
    with pytest.raises(ValueError, match="unknown placeholder") as refused:
        Template.parse(f"{{actor}} <{template}> {{target}}")
    assert f"<{template}>" in str(refused.value)  # the error names the template


def test_an_unknown_placeholder_in_a_mappings_file_names_the_operation_and_the_template() -> None:
    with pytest.raises(ValueError, match=r"operations\.Add user: unknown placeholder \{targte\}") as refused:
        mappings_from(
            "summaries:\n  sources:\n    entra_audit:\n      operations:\n"
            "        Add user: '{actor} created {targte}'\n"
        )
    assert "'{actor} created {targte}'" in str(refused.value)


def test_a_property_named_like_a_dunder_is_just_a_missing_property() -> None:
    assert render("{property:__class__}") is None


@pytest.mark.parametrize("template", ["{ unbalanced", "a } b", "{{actor}}", "", "   "])
def test_stray_braces_and_empty_templates_are_refused(template: str) -> None:
    with pytest.raises(ValueError, match="template"):
        Template.parse(template)


def test_text_without_placeholders_and_percent_signs() -> None:
    assert render("plain text") == "plain text"
    assert render("100% of {actor} %s %(x)s %%") == "100% of Zoë Łukasz 田中 %s %(x)s %%"
    doc = event(actor=actor(display="%s %(x)s {target}"))
    assert render("{actor}", doc) == "%s %(x)s {target}"  # values are inserted, never interpreted


def test_missing_values_fall_back_to_display_upn_id() -> None:
    assert render("{actor}", event(actor=actor(id="u1"))) == "u1"
    assert render("{actor}", event(actor=actor(upn="zoe@contoso.com", id="u1"))) == "zoe@contoso.com"
    assert render("{actor} -> {target}", event(actor=actor("unknown"), targets=[])) is None


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("system", "System"),
        ("application", "An application"),
        ("service_principal", "An application"),
        ("app", "An application"),  # stored before attribution 2
        ("user", "Someone"),
        ("unknown", "Someone"),
    ],
)
def test_an_unnamed_actor_is_named_by_its_type(kind: str, expected: str) -> None:
    assert render("{actor}", event(actor=actor(kind))) == expected
    assert render("{actor}", event(actor=actor(kind, display="   "))) == expected


def test_summaries_are_one_line_and_values_clipped() -> None:
    mappings = load_mappings()
    doc = event(
        actor=actor(display="line1\r\nline2\tend"),
        operation="Add user",
        targets=[target("User", "Ana  Lopez ")],
    )
    assert mappings.summarize("entra_audit", doc) == "line1 line2 end created user Ana Lopez"
    doc = event(actor=actor(display="x" * 500), operation="Add user")
    summary = mappings.summarize("entra_audit", doc)
    assert summary == "x" * 199 + "… created user Adele Vance"


def test_template_alternatives_use_the_first_complete_one() -> None:
    mappings = mappings_from(
        """
summaries:
  sources:
    entra_audit:
      default: "{actor} did '{operation}' to {target}"
      operations:
        Add member to role:
          - "{actor} to {property:Nope}"
          - "{actor} fallback"
        Update user:
          - "{target2} second"
          - "{target} third"
        Delete user: "{property:Nope} only"
"""
    )
    assert mappings.summarize("entra_audit", event()) == "Zoë Łukasz 田中 fallback"
    assert mappings.summarize("entra_audit", event(operation="Update user")) == "r1 second"
    assert mappings.summarize(
        "entra_audit", event(operation="Update user", targets=[target("User", "Ana")])
    ) == ("Ana third")
    # the operation's list is used up: the source default, then the built-in fallbacks
    assert mappings.summarize("entra_audit", event(operation="Delete user")) == (
        "Zoë Łukasz 田中 did 'Delete user' to Adele Vance"
    )
    assert mappings.summarize("entra_audit", event(operation="Delete user", targets=[])) == (
        "Zoë Łukasz 田中 performed 'Delete user'"
    )
    assert mappings.summarize("entra_audit", event(operation="", targets=[], actor=actor("system"))) == (
        "System performed an action"
    )


def test_failed_actions_turn_the_verb_around_and_give_the_reason() -> None:
    mappings = load_mappings()
    failed = event(operation="Add member to role.", result="failure", result_reason="quota exceeded")
    assert mappings.summarize("o365_management", failed) == (
        "Zoë Łukasz 田中 failed to add Adele Vance to Global Administrator: quota exceeded"
    )
    assert mappings.summarize("o365_management", {**failed, "result_reason": None}) == (
        "Zoë Łukasz 田中 failed to add Adele Vance to Global Administrator"
    )
    assert mappings.summarize("o365_management", {**failed, "result": "success"}) == (
        "Zoë Łukasz 田中 added Adele Vance to Global Administrator"
    )


def test_sign_in_summaries() -> None:
    mappings = load_mappings()  # entra_signin's failure_detail adds the error code
    signin = event(
        operation="Sign-in",
        actor=actor(display="Jane Doe"),
        targets=[target("Application", "Outlook"), target("Resource", "Office 365 Exchange Online")],
    )
    assert mappings.summarize("entra_signin", signin) == "Jane Doe signed in to Outlook"
    failed = {
        **signin,
        "result": "failure",
        "result_reason": "Invalid username or password",
        "result_code": 50126,
    }
    assert mappings.summarize("entra_signin", failed) == (
        "Jane Doe failed to sign in to Outlook: Invalid username or password (error 50126)"
    )
    assert mappings.summarize("entra_signin", {**failed, "result_reason": None}) == (
        "Jane Doe failed to sign in to Outlook: error 50126"
    )
    assert mappings.summarize("entra_signin", {**failed, "targets": []}) == (
        "Jane Doe failed to sign in: Invalid username or password (error 50126)"
    )
    sts = {
        **failed,
        "operation": "UserLoginFailed",
        "actor": actor(display="Jane Doe", client_app={"id": None, "name": "Outlook Mobile"}),
    }
    assert mappings.summarize("o365_management", sts) == (
        "Jane Doe failed to sign in to Outlook Mobile: Invalid username or password"  # the default detail
    )


def test_explicit_failure_templates_and_a_placed_reason() -> None:
    mappings = mappings_from(
        """
summaries:
  failure_verbs: {created: create}
  failure_detail: ["{reason} [{result_code}]", "{reason}"]
  sources:
    entra_signin:
      failure_detail: "code {result_code}"
      default: "{actor} signed in"
    o365_management:
      default: "{actor} ran {operation}"
      operations:
        UserLoginFailed:
          failure: ["{actor} could not sign in ({reason})", "{actor} could not sign in"]
        New-Thing:
          success: "{actor} created {target}"
          failure: "{actor} failed at creating {target}"
        Other-Thing: "{actor} created {target}"
"""
    )
    failed = event(operation="UserLoginFailed", result="failure", result_reason="InvalidUserNameOrPassword")
    assert (
        mappings.summarize("o365_management", failed)
        == "Zoë Łukasz 田中 could not sign in (InvalidUserNameOrPassword)"
    )
    assert mappings.summarize("o365_management", {**failed, "result_reason": None}) == (
        "Zoë Łukasz 田中 could not sign in"
    )
    # no success template: the source default
    assert (
        mappings.summarize("o365_management", {**failed, "result": "success"})
        == "Zoë Łukasz 田中 ran UserLoginFailed"
    )
    assert mappings.summarize("o365_management", {**failed, "operation": "New-Thing"}) == (
        "Zoë Łukasz 田中 failed at creating Adele Vance: InvalidUserNameOrPassword"
    )
    assert mappings.summarize("o365_management", {**failed, "operation": "Other-Thing"}) == (
        "Zoë Łukasz 田中 failed to create Adele Vance: InvalidUserNameOrPassword"
    )
    # the source default ("ran") has no verb in the table: the built-in failure phrasing
    assert mappings.summarize("o365_management", {**failed, "operation": "Unlisted"}) == (
        "Zoë Łukasz 田中 failed to perform 'Unlisted': InvalidUserNameOrPassword"
    )
    # the top-level failure_detail, and a source's own
    coded = {**failed, "operation": "Other-Thing", "result_code": 50126}
    assert mappings.summarize("o365_management", coded) == (
        "Zoë Łukasz 田中 failed to create Adele Vance: InvalidUserNameOrPassword [50126]"
    )
    assert (
        mappings.summarize("entra_signin", coded)
        == "Zoë Łukasz 田中 failed to perform 'Other-Thing': code 50126"
    )
    assert mappings.summarize("entra_signin", {**coded, "result_code": None}) == (
        "Zoë Łukasz 田中 failed to perform 'Other-Thing'"  # no detail template is complete
    )


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{actor} added {target} to {property:Role}", "{actor} failed to add {target} to {property:Role}"),
        ("{actor} signed in to {app}", "{actor} failed to sign in to {app}"),
        ("Then {actor} reset it", "Then {actor} failed to reset it"),
        ("{app_actor} (application) accessed mail", "{app_actor} (application) failed to access mail"),
        ("{property:added} happened", None),  # only whole, lower-case words of the text itself
        ("{actor} Added {target}", None),
        ("{actor} readded {target}", None),
        ("Alert '{alert_name}' triggered", None),
    ],
)
def test_failed_phrasing(template: str, expected: str | None) -> None:
    verbs = {"added": "add", "signed": "sign", "reset": "reset", "accessed": "access"}
    assert failed_phrasing(template, verbs) == expected


def test_default_mappings_file() -> None:
    mappings = load_mappings()
    assert load_mappings() is mappings  # cached
    assert load_mappings(DEFAULT_MAPPINGS_PATH) is not None
    assert set(SOURCES) <= set(mappings.sources)
    specific = sum(len(summaries.operations) for summaries in mappings.sources.values())
    assert specific >= 150
    for name in (
        "Add member to role",
        "Update conditional access policy",
        "Reset user password",
        "Consent to application",
        "Add service principal credentials",
    ):
        assert mappings.operation_templates("entra_audit", name) is not None
    for name in (
        "Set-Mailbox",
        "New-InboxRule",
        "SharingSet",
        "Add member to role.",
        "AlertTriggered",
        "DlpRuleMatch",
    ):
        assert mappings.operation_templates("o365_management", name) is not None
    assert mappings.operation_templates("intune_audit", "Wipe ManagedDevice") is not None
    assert mappings.operation_templates("intune_audit", "Frobnicate") is None
    assert mappings.operation_templates("not_a_source", "Add user") is None


def test_operation_match_ignores_case_and_trailing_period() -> None:
    mappings = load_mappings()
    assert mappings.operation_templates("o365_management", "set-mailbox") is mappings.operation_templates(
        "o365_management", "Set-Mailbox"
    )
    assert mappings.operation_templates("entra_audit", "Add member to role.") is mappings.operation_templates(
        "entra_audit", "add member to role"
    )


def test_summaries_are_cached_per_source_and_operation() -> None:
    mappings = mappings_from("summaries:\n  default: '{actor} did {operation}'\n")
    first = mappings.summarize("entra_audit", event(operation="X"))
    assert mappings.summarize("entra_audit", event(operation="X")) == first == "Zoë Łukasz 田中 did X"
    assert set(mappings._chain_cache["entra_audit"]) == {"X"}


def test_custom_mappings_file(tmp_path: Path) -> None:
    path = tmp_path / "mappings.yaml"
    path.write_text(
        "summaries:\n"
        "  default: '{operation} by {actor}'\n"
        "  sources:\n"
        "    entra_audit:\n"
        "      operations:\n"
        "        Add member to role: '{actor} → {property:Role.DisplayName}'\n"
        "operation_types:\n"
        "  Frobnicate: delete\n",
        encoding="utf-8",
    )
    mappings = load_mappings(path)
    assert mappings.summarize("entra_audit", event()) == "Zoë Łukasz 田中 → Global Administrator"
    assert (
        mappings.summarize("entra_audit", event(operation="Other thing")) == "Other thing by Zoë Łukasz 田中"
    )
    assert mappings.summarize("not_a_source", event()) == "Add member to role by Zoë Łukasz 田中"
    assert mappings.operation_type("Frobnicate.", None) == "delete"
    assert mappings.operation_type("Add user", None) == "create"
    clear_mappings_cache()
    assert load_mappings(path) is not mappings


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "must be a mapping"),
        ({"summaries": []}, "must be a mapping"),
        ({"summaries": {"default": 5}}, "template string"),
        ({"summaries": {"default": []}}, "template string"),
        ({"summaries": {"default": "{actor} did {nonsense}"}}, "unknown placeholder"),
        ({"summaries": {"sources": {"x": "y"}}}, "must be a mapping"),
        ({"summaries": {"sources": {"x": {"operations": ["a"]}}}}, "must be a mapping"),
        ({"summaries": {"sources": {"x": {"operations": {"A": {"succes": "{actor}"}}}}}}, "succes"),
        ({"summaries": {"sources": {"x": {"operations": {"A": {}}}}}}, "`success`"),
        ({"summaries": {"sources": {"x": {"operations": {"A": {"failure": "{actor} {x}"}}}}}}, r"A\.failure"),
        ({"summaries": {"failure_verbs": {"added up": "add"}}}, "failure_verbs"),
        ({"summaries": {"failure_verbs": {"added": ""}}}, "failure_verbs"),
        ({"summaries": {"failure_verbs": ["added"]}}, "failure_verbs"),
        ({"summaries": {"failure_detail": "{reasons}"}}, "failure_detail: unknown placeholder"),
        ({"summaries": {"sources": {"x": {"failure_detail": []}}}}, r"x\.failure_detail"),
        ({"operation_types": {"X": "explode"}}, "is not one of"),
    ],
)
def test_invalid_mappings_are_rejected(data: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_mappings(data)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-11-01T10:00:00.1234567Z", "2026-11-01T10:00:00.123Z"),
        ("2026-11-01T10:00:00.9999999Z", "2026-11-01T10:00:00.999Z"),
        ("2026-11-01T10:00:00Z", "2026-11-01T10:00:00.000Z"),
        ("2026-11-01T10:00:00.1Z", "2026-11-01T10:00:00.100Z"),
        ("2026-11-01T10:00:00", "2026-11-01T10:00:00.000Z"),
        ("2026-11-01 10:00:00", "2026-11-01T10:00:00.000Z"),
        ("2026-11-01T10:00:00.123+00:00", "2026-11-01T10:00:00.123Z"),
        ("2016-12-31T23:59:51.6363086-08:00", "2017-01-01T07:59:51.636Z"),
        ("2026-11-01T01:00:00+02:00", "2026-10-31T23:00:00.000Z"),
        ("2026-11-01T10:00:00+0530", "2026-11-01T04:30:00.000Z"),
        ("2026-11-01T10:00:00z", "2026-11-01T10:00:00.000Z"),
        ("2026-13-01T10:00:00Z", None),
        ("2026-02-30T10:00:00", None),
        ("2026-11-01T25:00:00Z", None),
        ("2026-11-01", None),
        ("2026-W44-1T10:00:00", None),
        ("2026-11-01T10:00+01:00", None),
        ("2026-11-01T1x:00:00Z", None),
        ("yesterday", None),
        ("", None),
        (None, None),
        (1730455200, None),
    ],
)
def test_parse_timestamp(value: Any, expected: str | None) -> None:
    assert parse_timestamp(value) == expected


@pytest.mark.parametrize(
    ("operation", "native", "expected"),
    [
        ("Add user", None, "create"),
        ("Add user", "Add", "create"),
        ("Update user", "Update", "update"),
        ("Delete user", "Delete", "delete"),
        ("Add member to role", "Assign", "assign"),
        ("Add member to group", None, "assign"),
        ("Remove member from group", None, "unassign"),
        ("Add app role assignment to service principal", "Assign", "assign"),
        ("Remove app role assignment from service principal", None, "unassign"),
        ("Add owner to application", None, "assign"),
        ("Add service principal credentials", "Update", "update"),
        ("Add service principal credentials", None, "create"),
        ("Reset user password", "Update", "update"),
        ("Disable account", None, "update"),
        ("Enable account", None, "update"),
        ("Update conditional access policy", None, "update"),
        ("Set-Mailbox", None, "update"),
        ("New-InboxRule", None, "create"),
        ("Remove-InboxRule", None, "delete"),
        ("Add-MailboxPermission", None, "assign"),
        ("Remove-MailboxPermission", None, "unassign"),
        ("Get-Mailbox", None, "read"),
        ("FileAccessed", None, "read"),
        ("FileDownloaded", None, "read"),
        ("FileDeleted", None, "delete"),
        ("FileModified", None, "update"),
        ("FileUploaded", None, "create"),
        ("MemberAdded", None, "assign"),
        ("MemberRemoved", None, "unassign"),
        ("TeamCreated", None, "create"),
        ("UserLoggedIn", None, "sign_in"),
        ("UserLoginFailed", None, "sign_in"),
        ("Sign-in", None, "sign_in"),
        ("Wipe ManagedDevice", "Action", "action"),
        ("Frobnicate", None, "other"),
        ("", None, "other"),
        ("Frobnicate", "Get", "read"),
    ],
)
def test_derive_operation_type(operation: str, native: str | None, expected: str) -> None:
    assert derive_operation_type(operation, native) == expected


def test_a_yaml_bomb_in_a_mappings_file_is_refused_before_it_is_built(tmp_path: Path) -> None:
    """mappings.yaml is edited by admins: it is loaded within shared.platform.yaml_bounded's bounds."""
    from shared.platform.yaml_bounded import YamlTooLargeError

    laughs = [
        'a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]',
        *(
            f"{name}: &{name} [{', '.join([f'*{previous}'] * 9)}]"
            for previous, name in zip("abcdefgh", "bcdefghi", strict=True)
        ),
        "default: *i",
    ]
    bomb = tmp_path / "mappings.yaml"
    bomb.write_text("\n".join(laughs), encoding="utf-8")
    with pytest.raises(YamlTooLargeError, match="more than 200000 nodes"):
        load_mappings(bomb)
    assert load_mappings(DEFAULT_MAPPINGS_PATH) is load_mappings(
        DEFAULT_MAPPINGS_PATH
    )  # the shipped file loads
