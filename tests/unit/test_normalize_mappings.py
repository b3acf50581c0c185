"""Summary templates (shared/ingestion/mappings.yaml), the safe renderer, timestamps and operation types."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from shared.ingestion.normalize import SOURCES, load_mappings
from shared.ingestion.normalize import mappings as mappings_module
from shared.ingestion.normalize._common import derive_operation_type, parse_timestamp
from shared.ingestion.normalize.mappings import (
    DEFAULT_MAPPINGS_PATH,
    Template,
    clear_mappings_cache,
    parse_mappings,
    render_summary,
)


def event(**overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "operation": "Add member to role",
        "service": "Directory",
        "category": "RoleManagement",
        "result": "success",
        "result_reason": None,
        "actor": {
            "type": "user",
            "id": "u1",
            "upn": "zoe@contoso.com",
            "display": "Zoë Łukasz 田中",
            "ip": "203.0.113.7",
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


def render(template: str, doc: dict[str, Any] | None = None) -> str:
    return Template.parse(template).render(doc or event()) or ""


def test_whitelisted_placeholders() -> None:
    assert render("{actor} added {target} to {property:Role.DisplayName}") == (
        "Zoë Łukasz 田中 added Adele Vance to Global Administrator"
    )
    assert render("{actor_upn}|{actor_type}|{ip}|{target2}|{target_type}|{service}|{category}|{result}") == (
        "zoe@contoso.com|user|203.0.113.7|r1|User|Directory|RoleManagement|success"
    )
    assert render("{targets}") == "Adele Vance, r1"
    assert render("{operation}") == "Add member to role"


def test_property_lookup_is_case_insensitive_and_joins_lists() -> None:
    assert render("{property:role.displayname}") == "Global Administrator"
    assert render("{property:Tags}") == "a, b"
    assert render("{property:Missing}") == "?"
    assert render("{old:Role.DisplayName} -> {property:Role.DisplayName}") == "Reader -> Global Administrator"
    assert render("{old:Tags}|{old:}|{new:Tags}") == "?|?|?"


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
        "{ actor.__init__.__globals__ }",
        "{doc}",
        "{self}",
    ],
)
def test_anything_outside_the_whitelist_renders_as_a_question_mark(template: str) -> None:
    rendered = render(f"<{template}>")
    assert rendered == "<?>"


def test_a_property_named_like_a_dunder_is_just_a_missing_property() -> None:
    assert render("{property:__class__}") == "?"


def test_unknown_placeholder_among_known_ones() -> None:
    assert render("{actor} did {nonsense} to {target}") == "Zoë Łukasz 田中 did ? to Adele Vance"


def test_text_without_placeholders_and_stray_braces() -> None:
    assert render("plain text") == "plain text"
    assert render("100% of {actor} %s %(x)s %%") == "100% of Zoë Łukasz 田中 %s %(x)s %%"
    doc = event(actor={"type": "user", "id": None, "upn": None, "display": "%s %(x)s {target}", "ip": None})
    assert render("{actor}", doc) == "%s %(x)s {target}"  # values are inserted, never interpreted
    assert render("{ unbalanced") == "{ unbalanced"
    assert render("a } b") == "a } b"


def test_missing_values_fall_back_to_display_upn_id() -> None:
    doc = event(actor={"type": "user", "id": "u1", "upn": None, "display": None, "ip": None})
    assert render("{actor}", doc) == "u1"
    doc = event(actor={"type": "system", "id": None, "upn": None, "display": None, "ip": None})
    assert render("{actor}", doc) == "System"
    doc = event(actor={"type": "unknown", "id": None, "upn": None, "display": None, "ip": None}, targets=[])
    assert render("{actor} -> {target}", doc) == "? -> ?"


def test_values_are_one_line_and_clipped() -> None:
    doc = event(actor={"type": "user", "id": None, "upn": None, "display": "line1\r\nline2\tend", "ip": None})
    assert render("{actor}", doc) == "line1 line2 end"
    doc = event(actor={"type": "user", "id": None, "upn": None, "display": "x" * 500, "ip": None})
    rendered = render("{actor}", doc)
    assert len(rendered) == 200
    assert rendered.endswith("…")


def test_template_alternatives_use_the_first_complete_one() -> None:
    templates = (Template.parse("{actor} to {property:Nope}"), Template.parse("{actor} fallback"))
    assert render_summary(templates, event()) == "Zoë Łukasz 田中 fallback"
    templates = (Template.parse("{nonsense} first"), Template.parse("{target} second"))
    assert render_summary(templates, event()) == "Adele Vance second"
    templates = (Template.parse("{property:Nope} a"), Template.parse("{property:Nope} b"))
    assert render_summary(templates, event()) == "? b"


def test_default_mappings_file() -> None:
    mappings = load_mappings()
    assert load_mappings() is mappings  # cached
    assert load_mappings(DEFAULT_MAPPINGS_PATH) is not None
    assert set(SOURCES) <= set(mappings.sources)
    specific = sum(len(summaries.operations) for summaries in mappings.sources.values())
    assert specific >= 15
    for name in (
        "Add member to role",
        "Update conditional access policy",
        "Reset user password",
        "Consent to application",
        "Add service principal credentials",
    ):
        assert mappings.templates_for("entra_audit", name) is not mappings.sources["entra_audit"].default
    for name in ("Set-Mailbox", "New-InboxRule", "SharingSet", "Add member to role."):
        assert (
            mappings.templates_for("o365_management", name) is not mappings.sources["o365_management"].default
        )
    assert (
        mappings.templates_for("intune_audit", "Wipe ManagedDevice")
        is not mappings.sources["intune_audit"].default
    )


def test_default_mappings_use_only_known_placeholders() -> None:
    mappings = load_mappings()
    groups = [mappings.default]
    for summaries in mappings.sources.values():
        groups.append(summaries.default)
        groups.extend(summaries.operations.values())
    for templates in groups:
        for template in templates:
            assert mappings_module._unknown not in template.getters, template.source


def test_operation_match_ignores_case_and_trailing_period() -> None:
    mappings = load_mappings()
    assert mappings.templates_for("o365_management", "set-mailbox") is mappings.templates_for(
        "o365_management", "Set-Mailbox"
    )
    assert mappings.templates_for("entra_audit", "Add member to role.") is mappings.templates_for(
        "entra_audit", "add member to role"
    )


def test_custom_mappings_file(tmp_path: Path) -> None:
    path = tmp_path / "mappings.yaml"
    path.write_text(
        "summaries:\n"
        "  default: '{operation} by {actor}'\n"
        "  sources:\n"
        "    entra_audit:\n"
        "      operations:\n"
        "        Add member to role: '{actor.__class__} {actor} → {property:Role.DisplayName}'\n"
        "operation_types:\n"
        "  Frobnicate: delete\n",
        encoding="utf-8",
    )
    mappings = load_mappings(path)
    assert mappings.summarize("entra_audit", event()) == "? Zoë Łukasz 田中 → Global Administrator"
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
        ({"summaries": {"sources": {"x": "y"}}}, "must be a mapping"),
        ({"summaries": {"sources": {"x": {"operations": ["a"]}}}}, "must be a mapping"),
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
