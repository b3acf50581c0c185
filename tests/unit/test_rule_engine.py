"""The rule schema (shared/rules/model.py) and the compiled engine (shared/rules/engine.py).

Every case runs a rule through parse_rule_file and RuleSet, as the alert worker does, on normalized
event dicts shaped like the ones the normalizers produce.
"""

from __future__ import annotations

import copy
import datetime as dt
import re
from typing import Any

import pytest

from shared.rules.engine import MAX_MATCH_TEXT, BusinessHours, RuleSet, compile_path
from shared.rules.model import MAX_CONDITION_DEPTH, MAX_REGEX_LENGTH, RuleError, parse_rule_file
from shared.rules.regex import MAX_PROGRAM_SIZE

HOURS = BusinessHours.parse("08:00-18:00", "Mon-Fri", "Europe/London")
RULE_ID = "test.rule"

GLOBAL_ADMIN_TEMPLATE = "62e90394-69f5-4237-9190-012177145e10"


def make_event(**overrides: Any) -> dict[str, Any]:
    """A normalized Entra audit event: Zoë made Adele Global Administrator, Tuesday 10:15 GMT."""
    event: dict[str, Any] = {
        "id": "entra_audit:Directory_7ZKQ3_41557846",
        "pk": "contoso-tenant:2026-11",
        "tenant_id": "contoso-tenant",
        "source": "entra_audit",
        "service": "Directory",
        "category": "RoleManagement",
        "operation": "Add member to role",
        "operation_type": "assign",
        "result": "success",
        "actor": {
            "type": "user",
            "id": "4562bcc8-c436-4f95-b7c0-4f8ce89dca5e",
            "upn": "Zoe@Contoso.com",
            "display": "Zoë Łukasz",
            "ip": "203.0.113.7",
        },
        "targets": [
            {
                "type": "User",
                "id": "e3a7c5f1-6f0e-4f0c-9a55-0f9d5bd26a11",
                "display": "Adele Vance",
                "modified_properties": [],
            },
            {
                "type": "Role",
                "id": GLOBAL_ADMIN_TEMPLATE,
                "display": "Global Administrator",
                "modified_properties": [
                    {"name": "Role.DisplayName", "old": None, "new": "Global Administrator"},
                    {"name": "Role.TemplateId", "old": None, "new": GLOBAL_ADMIN_TEMPLATE},
                    {"name": "Role.WellKnownObjectName", "old": None, "new": "TenantAdmins"},
                ],
            },
        ],
        "timestamp": "2026-11-03T10:15:30.123Z",
        "tags": ["privileged", "role-change"],
    }
    event.update(copy.deepcopy(overrides))
    return event


def with_properties(*properties: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    """An event whose single target carries `properties` as its modified properties."""
    target = {"type": "Policy", "id": "pol-1", "display": "Require MFA for admins"}
    return make_event(
        targets=[{**target, "modified_properties": [dict(p) for p in properties]}],
        **overrides,
    )


MAILBOX_EVENT = make_event(
    id="o365:5b1c0d2e-0000-4000-8000-000000000001",
    source="o365_management",
    service="Exchange",
    category="ExchangeAdmin",
    operation="Set-Mailbox",
    operation_type="update",
    targets=[
        {
            "type": "Mailbox",
            "id": "adele@contoso.com",
            "display": "Adele Vance",
            "modified_properties": [
                {"name": "ForwardingSmtpAddress", "old": None, "new": "smtp:adele.private@gmail.com"},
                {"name": "DeliverToMailboxAndForward", "old": False, "new": True},
            ],
        }
    ],
)

CA_POLICY_EVENT = with_properties(
    {
        "name": "ConditionalAccessPolicy",
        "old": {"state": "enabled", "grantControls": {"builtInControls": ["mfa"]}},
        "new": {"state": "disabled", "grantControls": {"builtInControls": ["mfa"]}},
    },
    operation="Update conditional access policy",
    category="Policy",
)


def rule(when: Any, rule_id: str = RULE_ID, **fields: Any) -> dict[str, Any]:
    return {
        "id": rule_id,
        "title": "Rule under test",
        "description": "A rule written by the test.",
        "severity": "high",
        "when": when,
        **fields,
    }


def build(
    *rules: dict[str, Any],
    lists: dict[str, list[Any]] | None = None,
    extra_lists: dict[str, list[Any]] | None = None,
    hours: BusinessHours = HOURS,
) -> RuleSet:
    document: dict[str, Any] = {"version": 1, "rules": list(rules)}
    if lists is not None:
        document["lists"] = lists
    return RuleSet(parse_rule_file(document, extra_lists), hours)


def holds(when: Any, event: dict[str, Any], **options: Any) -> bool:
    matched = [c.id for c in build(rule(when), **options).match(event)]
    assert matched in ([], [RULE_ID])
    return matched == [RULE_ID]


def problems_of(*rules: dict[str, Any], lists: dict[str, list[Any]] | None = None) -> list[str]:
    document: dict[str, Any] = {"rules": list(rules)}
    if lists is not None:
        document["lists"] = lists
    with pytest.raises(RuleError) as caught:
        parse_rule_file(document)
    assert str(caught.value) == "; ".join(caught.value.problems)
    return caught.value.problems


# --- field paths --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("operation", ["Add member to role"]),
        ("actor.upn", ["Zoe@Contoso.com"]),
        ("targets[].display", ["Adele Vance", "Global Administrator"]),
        ("targets.display", ["Adele Vance", "Global Administrator"]),
        (
            "targets[].modified_properties[].name",
            ["Role.DisplayName", "Role.TemplateId", "Role.WellKnownObjectName"],
        ),
        ("targets[].modified_properties[].old", []),  # None values are dropped
        ("tags", ["privileged", "role-change"]),
        ("actor.department", []),
        ("nothing.here[].at_all", []),
    ],
)
def test_compile_path_yields_every_value_along_the_path(path: str, expected: list[Any]) -> None:
    assert compile_path(path)(make_event()) == expected


def test_compile_path_drops_none_in_a_top_level_list() -> None:
    event = make_event(tags=["privileged", None])
    assert compile_path("tags")(event) == ["privileged"]
    assert not holds({"field": "tags", "eq": "null"}, event)


def test_compile_path_descends_into_decoded_json_values() -> None:
    assert compile_path("targets[].modified_properties[].new.state")(CA_POLICY_EVENT) == ["disabled"]
    assert compile_path("targets[].modified_properties[].old.grantControls.builtInControls")(
        CA_POLICY_EVENT
    ) == ["mfa"]


# --- operators ----------------------------------------------------------------------------------------------

OPERATOR_CASES: list[tuple[str, dict[str, Any], dict[str, Any], bool]] = [
    # eq: case-insensitive by default, any-of-values on list paths
    ("eq top level", {"field": "operation", "eq": "Add member to role"}, make_event(), True),
    ("eq folds case", {"field": "actor.upn", "eq": "zoe@contoso.COM"}, make_event(), True),
    ("eq other value", {"field": "actor.upn", "eq": "adele@contoso.com"}, make_event(), False),
    ("eq any target", {"field": "targets[].display", "eq": "global administrator"}, make_event(), True),
    ("eq no target", {"field": "targets[].display", "eq": "Exchange Administrator"}, make_event(), False),
    (
        "eq any modified property name",
        {"field": "targets[].modified_properties[].name", "eq": "Role.TemplateId"},
        make_event(),
        True,
    ),
    (
        "eq no modified property name",
        {"field": "targets[].modified_properties[].name", "eq": "Role.Description"},
        make_event(),
        False,
    ),
    ("eq missing field", {"field": "actor.department", "eq": "IT"}, make_event(), False),
    (
        "eq null field",
        {"field": "actor.upn", "eq": "zoe@contoso.com"},
        make_event(actor={"upn": None}),
        False,
    ),
    ("eq is not a substring test", {"field": "actor.upn", "eq": "zoe"}, make_event(), False),
    # case_sensitive
    (
        "eq case_sensitive exact",
        {"field": "actor.upn", "eq": "Zoe@Contoso.com", "case_sensitive": True},
        make_event(),
        True,
    ),
    (
        "eq case_sensitive differs",
        {"field": "actor.upn", "eq": "zoe@contoso.com", "case_sensitive": True},
        make_event(),
        False,
    ),
    # bools and numbers are compared as text
    (
        "eq string True vs decoded bool",
        {"field": "targets[].modified_properties[].new", "eq": "True"},
        MAILBOX_EVENT,
        True,
    ),
    (
        "eq bool vs string True",
        {"field": "targets[].modified_properties[].new", "eq": True},
        with_properties({"name": "AccountEnabled", "old": "False", "new": "True"}),
        True,
    ),
    (
        "eq bool false vs true",
        {"field": "targets[].modified_properties[].new", "eq": False},
        with_properties({"name": "AccountEnabled", "old": None, "new": True}),
        False,
    ),
    (
        "eq case_sensitive bool renders lower-case",
        {"field": "targets[].modified_properties[].new", "eq": "true", "case_sensitive": True},
        with_properties({"name": "AccountEnabled", "new": True}),
        True,
    ),
    (
        "eq case_sensitive True is not true",
        {"field": "targets[].modified_properties[].new", "eq": "True", "case_sensitive": True},
        with_properties({"name": "AccountEnabled", "new": True}),
        False,
    ),
    (
        "eq number vs numeric string",
        {"field": "targets[].modified_properties[].new", "eq": 365},
        with_properties({"name": "PasswordValidityPeriodInDays", "new": "365"}),
        True,
    ),
    (
        "eq numeric string vs number",
        {"field": "targets[].modified_properties[].new", "eq": "365"},
        with_properties({"name": "PasswordValidityPeriodInDays", "new": 365}),
        True,
    ),
    (
        "eq whole float vs int",
        {"field": "targets[].modified_properties[].new", "eq": 365.0},
        with_properties({"name": "PasswordValidityPeriodInDays", "new": 365}),
        True,
    ),
    # neq: holds when NO value equals; a missing field is "not equal"
    ("neq differs", {"field": "result", "neq": "failure"}, make_event(), True),
    ("neq equal folds case", {"field": "result", "neq": "SUCCESS"}, make_event(), False),
    ("neq missing field", {"field": "actor.department", "neq": "IT"}, make_event(), True),
    ("neq one of many equal", {"field": "targets[].display", "neq": "Adele Vance"}, make_event(), False),
    (
        "neq case_sensitive",
        {"field": "result", "neq": "SUCCESS", "case_sensitive": True},
        make_event(),
        True,
    ),
    # in / not_in
    ("in", {"field": "result", "in": ["failure", "Success"]}, make_event(), True),
    ("in none", {"field": "result", "in": ["failure", "unknown"]}, make_event(), False),
    ("in missing field", {"field": "actor.department", "in": ["IT"]}, make_event(), False),
    ("in any target", {"field": "targets[].type", "in": ["role", "group"]}, make_event(), True),
    (
        "in case_sensitive",
        {"field": "targets[].type", "in": ["role", "group"], "case_sensitive": True},
        make_event(),
        False,
    ),
    (
        "in numbers as text",
        {"field": "targets[].modified_properties[].new", "in": [30, 90]},
        with_properties({"name": "PasswordValidityPeriodInDays", "new": "90"}),
        True,
    ),
    ("not_in", {"field": "result", "not_in": ["failure", "unknown"]}, make_event(), True),
    ("not_in listed", {"field": "result", "not_in": ["failure", "SUCCESS"]}, make_event(), False),
    ("not_in missing field", {"field": "actor.department", "not_in": ["IT"]}, make_event(), True),
    ("not_in one of many listed", {"field": "targets[].type", "not_in": ["role"]}, make_event(), False),
    # contains / startswith
    ("contains", {"field": "actor.upn", "contains": "@CONTOSO."}, make_event(), True),
    ("contains absent", {"field": "actor.upn", "contains": "fabrikam"}, make_event(), False),
    ("contains missing field", {"field": "actor.department", "contains": ""}, make_event(), False),
    (
        "contains case_sensitive",
        {"field": "actor.upn", "contains": "contoso", "case_sensitive": True},
        make_event(),
        False,
    ),
    (
        "contains on a dict value is JSON text",
        {"field": "targets[].modified_properties[].new", "contains": '"state":"disabled"'},
        CA_POLICY_EVENT,
        True,
    ),
    (
        "contains on a dict value, other key",
        {"field": "targets[].modified_properties[].new", "contains": '"state":"enabled"'},
        CA_POLICY_EVENT,
        False,
    ),
    (
        "contains on a list of dicts is JSON text of each",
        {"field": "targets", "contains": '"display":"Global Administrator"'},
        make_event(),
        True,
    ),
    (
        "contains on a nested list value",
        {"field": "targets[].modified_properties[].new", "contains": '["mfa","compliantdevice"]'},
        with_properties({"name": "BuiltInControls", "new": [["MFA", "CompliantDevice"]]}),
        True,
    ),
    ("startswith", {"field": "operation", "startswith": "add MEMBER"}, make_event(), True),
    ("startswith not prefix", {"field": "operation", "startswith": "member"}, make_event(), False),
    ("startswith any target", {"field": "targets[].display", "startswith": "Global"}, make_event(), True),
    (
        "startswith case_sensitive",
        {"field": "operation", "startswith": "add", "case_sensitive": True},
        make_event(),
        False,
    ),
    # paths into decoded JSON values
    (
        "eq into decoded JSON",
        {"field": "targets[].modified_properties[].new.state", "eq": "DISABLED"},
        CA_POLICY_EVENT,
        True,
    ),
    (
        "eq into decoded JSON, old value",
        {"field": "targets[].modified_properties[].old.state", "eq": "disabled"},
        CA_POLICY_EVENT,
        False,
    ),
    (
        "in into decoded JSON list",
        {"field": "targets[].modified_properties[].new.grantControls.builtInControls", "in": ["mfa"]},
        CA_POLICY_EVENT,
        True,
    ),
    # exists
    ("exists true", {"field": "actor.upn", "exists": True}, make_event(), True),
    ("exists true, null", {"field": "actor.upn", "exists": True}, make_event(actor={"upn": None}), False),
    ("exists true, empty", {"field": "actor.upn", "exists": True}, make_event(actor={"upn": ""}), False),
    ("exists true, missing", {"field": "actor.department", "exists": True}, make_event(), False),
    ("exists false, missing", {"field": "actor.department", "exists": False}, make_event(), True),
    ("exists false, null", {"field": "actor.upn", "exists": False}, make_event(actor={"upn": None}), True),
    ("exists false, present", {"field": "actor.upn", "exists": False}, make_event(), False),
    ("exists, empty list", {"field": "tags", "exists": True}, make_event(tags=[]), False),
    (
        "exists, nested list",
        {"field": "targets[].modified_properties[]", "exists": True},
        make_event(),
        True,
    ),
    (
        "exists, nested lists all empty",
        {"field": "targets[].modified_properties[]", "exists": True},
        with_properties(),
        False,
    ),
    # regex: search semantics, case-insensitive unless case_sensitive
    ("regex searches", {"field": "operation", "regex": "member to"}, make_event(), True),
    ("regex anchored", {"field": "operation", "regex": "^member"}, make_event(), False),
    ("regex folds case", {"field": "actor.upn", "regex": r"^zoe@contoso\.com$"}, make_event(), True),
    (
        "regex case_sensitive",
        {"field": "actor.upn", "regex": r"^zoe@", "case_sensitive": True},
        make_event(),
        False,
    ),
    ("regex any target", {"field": "targets[].display", "regex": r"admin\w+$"}, make_event(), True),
    ("regex missing field", {"field": "actor.department", "regex": ".*"}, make_event(), False),
    (
        "regex on a number",
        {"field": "targets[].modified_properties[].new", "regex": r"^\d{3}$"},
        with_properties({"name": "PasswordValidityPeriodInDays", "new": 365}),
        True,
    ),
    (
        "regex on a dict value",
        {"field": "targets[].modified_properties[].new", "regex": r'"state":"disabled"'},
        CA_POLICY_EVENT,
        True,
    ),
    # gt / lt with numbers
    (
        "gt number",
        {"field": "targets[].modified_properties[].new", "gt": 180},
        with_properties({"name": "PasswordValidityPeriodInDays", "old": 90, "new": 365}),
        True,
    ),
    (
        "gt number, any value",
        {"field": "targets[].modified_properties[].old", "gt": 180},
        with_properties({"name": "PasswordValidityPeriodInDays", "old": 90, "new": 365}),
        False,
    ),
    (
        "gt is strict",
        {"field": "targets[].modified_properties[].new", "gt": 365},
        with_properties({"name": "PasswordValidityPeriodInDays", "new": 365}),
        False,
    ),
    (
        "gt numeric string event value",
        {"field": "targets[].modified_properties[].new", "gt": 180},
        with_properties({"name": "PasswordValidityPeriodInDays", "new": "365"}),
        True,
    ),
    (
        "gt numeric string operand",
        {"field": "targets[].modified_properties[].new", "gt": "180.5"},
        with_properties({"name": "PasswordValidityPeriodInDays", "new": 365}),
        True,
    ),
    (
        "gt ignores text",
        {"field": "targets[].modified_properties[].new", "gt": 0},
        with_properties({"name": "DisplayName", "new": "Contoso"}),
        False,
    ),
    (
        "gt ignores bools",
        {"field": "targets[].modified_properties[].new", "gt": 0},
        with_properties({"name": "AccountEnabled", "new": True}),
        False,
    ),
    (
        "lt number",
        {"field": "targets[].modified_properties[].new", "lt": 30},
        with_properties({"name": "PasswordValidityPeriodInDays", "new": 7}),
        True,
    ),
    (
        "lt is strict",
        {"field": "targets[].modified_properties[].new", "lt": 7},
        with_properties({"name": "PasswordValidityPeriodInDays", "new": 7.0}),
        False,
    ),
    ("lt missing field", {"field": "actor.department", "lt": 30}, make_event(), False),
    # gt / lt with ISO-8601 times
    ("gt time", {"field": "timestamp", "gt": "2026-11-03T10:00:00Z"}, make_event(), True),
    ("gt time later", {"field": "timestamp", "gt": "2026-11-03T10:15:31Z"}, make_event(), False),
    ("gt time without zone is UTC", {"field": "timestamp", "gt": "2026-11-03T10:15:30"}, make_event(), True),
    (
        "gt time with offset",
        {"field": "timestamp", "gt": "2026-11-03T11:15:00+01:00"},  # 10:15Z
        make_event(),
        True,
    ),
    (
        "gt time with offset, later",
        {"field": "timestamp", "gt": "2026-11-03T11:16:00+01:00"},  # 10:16Z
        make_event(),
        False,
    ),
    ("lt time", {"field": "timestamp", "lt": "2026-11-04"}, make_event(), True),
    ("lt time earlier", {"field": "timestamp", "lt": "2026-11-03T10:15:30.123Z"}, make_event(), False),
    ("lt time ignores non-times", {"field": "operation", "lt": "2030-01-01T00:00:00Z"}, make_event(), False),
]


@pytest.mark.parametrize(
    ("predicate", "event", "expected"),
    [pytest.param(p, e, x, id=name) for name, p, e, x in OPERATOR_CASES],
)
def test_operator(predicate: dict[str, Any], event: dict[str, Any], expected: bool) -> None:
    assert holds(predicate, event) is expected


def test_every_operator_is_tested_both_ways() -> None:
    from shared.rules.model import OPERATORS

    outcomes: dict[str, set[bool]] = {}
    for _, predicate, _, expected in OPERATOR_CASES:
        (name,) = set(predicate) - {"field", "case_sensitive"}
        outcomes.setdefault(name, set()).add(expected)
    covered_elsewhere = {"after_hours", "domain_not_in"}
    assert {op for op, seen in outcomes.items() if seen == {True, False}} == set(
        OPERATORS
    ) - covered_elsewhere


# --- domain_not_in ------------------------------------------------------------------------------------------


def forwarding(address: Any) -> dict[str, Any]:
    return make_event(
        operation="Set-Mailbox",
        targets=[
            {
                "type": "Mailbox",
                "id": "adele@contoso.com",
                "modified_properties": [{"name": "ForwardingSmtpAddress", "old": None, "new": address}],
            }
        ],
    )


FORWARD_TO = "targets[].modified_properties[].new"


@pytest.mark.parametrize(
    ("address", "external"),
    [
        ("adele.private@gmail.com", True),
        ("smtp:adele@contoso.com", False),
        ("SMTP:adele@Contoso.COM", False),
        ("smtp:adele.private@gmail.com", True),
        ("adele@mail.contoso.com", False),  # subdomain of an internal domain
        ("adele@eu.mail.fabrikam.com", False),
        ("adele@notcontoso.com", True),  # a suffix, not a subdomain
        ("adele@contoso.com.evil.example", True),
        ("adele@contoso.com;ops@fabrikam.com", False),
        ("adele@contoso.com; smtp:adele@gmail.com", True),
        ("adele@contoso.com,adele@gmail.com", True),
        ("Adele Vance <adele@gmail.com>", True),
        ("Adele Vance <adele@contoso.com>", False),
        ("not an address", False),
        ("", False),
        (["adele@contoso.com", "ops@fabrikam.com"], False),
        (["adele@contoso.com", "adele@gmail.com"], True),
    ],
)
def test_domain_not_in(address: Any, external: bool) -> None:
    when = {"field": FORWARD_TO, "domain_not_in": ["contoso.com", "@Fabrikam.com"]}
    assert holds(when, forwarding(address)) is external


@pytest.mark.parametrize(
    "address",
    [
        '"Zoe Lukasz" [SMTP:zoe@contoso.com]',
        "[SMTP:zoe@contoso.com]",
        '"zoe@contoso.com" [SMTP:zoe@contoso.com]',
    ],
)
def test_domain_not_in_understands_the_bracketed_exchange_recipient_form(address: str) -> None:
    assert not holds({"field": FORWARD_TO, "domain_not_in": ["contoso.com"]}, forwarding(address))


def test_domain_not_in_bracketed_external_recipient_is_external() -> None:
    address = '"Payments" [SMTP:payments@contoso-billing.example]'
    assert holds({"field": FORWARD_TO, "domain_not_in": ["contoso.com"]}, forwarding(address))


def test_domain_not_in_missing_field_is_false() -> None:
    assert not holds({"field": "actor.email", "domain_not_in": ["contoso.com"]}, make_event())


@pytest.mark.parametrize(
    ("address", "external"),
    [("adele@contoso.com", True), ("smtp:x@anything.example", True), ("no-address", False)],
)
def test_domain_not_in_with_an_empty_list_treats_every_address_as_external(
    address: str, external: bool
) -> None:
    assert holds({"field": FORWARD_TO, "domain_not_in": []}, forwarding(address)) is external
    # the default pack's internal_domains list is empty until a deployment fills it in
    when = {"field": FORWARD_TO, "domain_not_in": "$internal_domains"}
    assert holds(when, forwarding(address), lists={"internal_domains": []}) is external


# --- $list references ---------------------------------------------------------------------------------------


def test_list_references_resolve_for_in_not_in_and_domain_not_in() -> None:
    lists = {
        "role_operations": ["Add member to role", "Add eligible member to role in PIM completed (permanent)"],
        "failures": ["failure", "unknown"],
        "internal_domains": ["contoso.com"],
    }
    event = make_event()
    assert holds({"field": "operation", "in": "$role_operations"}, event, lists=lists)
    assert not holds(
        {"field": "operation", "in": "$role_operations"}, make_event(operation="Delete user"), lists=lists
    )
    assert holds({"field": "result", "not_in": "$failures"}, event, lists=lists)
    assert not holds({"field": "result", "not_in": "$failures"}, make_event(result="failure"), lists=lists)
    when = {"field": FORWARD_TO, "domain_not_in": "$internal_domains"}
    assert holds(when, forwarding("x@gmail.com"), lists=lists)
    assert not holds(when, forwarding("x@contoso.com"), lists=lists)


def test_extra_lists_extend_the_file_lists_and_may_add_new_ones() -> None:
    rule_file = parse_rule_file(
        {
            "lists": {"internal_domains": ["contoso.com"]},
            "rules": [
                rule({"field": FORWARD_TO, "domain_not_in": "$internal_domains"}, "mail.forward-external"),
                rule({"field": "actor.upn", "in": "$privileged_accounts"}, "priv.activity"),
            ],
        },
        extra_lists={"internal_domains": ["fabrikam.com"], "privileged_accounts": ["BreakGlass@contoso.com"]},
    )
    assert rule_file.lists == {
        "internal_domains": ["contoso.com", "fabrikam.com"],
        "privileged_accounts": ["BreakGlass@contoso.com"],
    }
    rules = RuleSet(rule_file, HOURS)

    def matched(event: dict[str, Any]) -> list[str]:
        return [c.id for c in rules.match(event)]

    assert matched(forwarding("ops@contoso.com")) == []
    assert matched(forwarding("ops@fabrikam.com")) == []
    assert matched(forwarding("ops@gmail.com")) == ["mail.forward-external"]
    breakglass = make_event(actor={"type": "user", "upn": "breakglass@contoso.com"}, targets=[])
    assert matched(breakglass) == ["priv.activity"]


# --- some / where -------------------------------------------------------------------------------------------

SAME_PROPERTY = {
    "some": "targets[].modified_properties[]",
    "where": {
        "all": [
            {"field": "name", "eq": "Role.DisplayName"},
            {"field": "new", "eq": "Global Administrator"},
        ]
    },
}
ANY_PROPERTIES = {
    "all": [
        {"field": "targets[].modified_properties[].name", "eq": "Role.DisplayName"},
        {"field": "targets[].modified_properties[].new", "eq": "Global Administrator"},
    ]
}


def test_some_where_tests_name_and_value_on_the_same_element() -> None:
    split = with_properties(
        {"name": "Role.DisplayName", "old": None, "new": "Helpdesk Administrator"},
        {"name": "Role.Description", "old": None, "new": "Global Administrator"},
    )
    same = with_properties(
        {"name": "Role.Description", "old": None, "new": "Can reset passwords"},
        {"name": "Role.DisplayName", "old": None, "new": "Global Administrator"},
    )
    assert not holds(SAME_PROPERTY, split)
    assert holds(SAME_PROPERTY, same)
    # without element scoping the two tests may be satisfied by different properties
    assert holds(ANY_PROPERTIES, split)


def test_some_spans_every_target_but_scopes_each() -> None:
    role_target = {
        "some": "targets[]",
        "where": {
            "all": [{"field": "type", "eq": "Role"}, {"field": "display", "eq": "Global Administrator"}]
        },
    }
    assert holds(role_target, make_event())
    decoy = make_event(
        targets=[
            {"type": "User", "id": "u-1", "display": "Global Administrator", "modified_properties": []},
            {"type": "Role", "id": "r-1", "display": "Helpdesk Administrator", "modified_properties": []},
        ]
    )
    assert not holds(role_target, decoy)


def test_some_paths_in_where_are_relative_and_reach_into_json_values() -> None:
    disabled_policy = {
        "some": "targets[].modified_properties[]",
        "where": {
            "all": [
                {"field": "name", "eq": "ConditionalAccessPolicy"},
                {"field": "old.state", "eq": "enabled"},
                {"field": "new.state", "neq": "enabled"},
            ]
        },
    }
    assert holds(disabled_policy, CA_POLICY_EVENT)
    still_enabled = with_properties(
        {"name": "ConditionalAccessPolicy", "old": {"state": "enabled"}, "new": {"state": "enabled"}}
    )
    assert not holds(disabled_policy, still_enabled)


def test_some_with_no_elements_is_false_and_not_some_is_true() -> None:
    assert not holds(SAME_PROPERTY, make_event(targets=[]))
    assert holds({"not": SAME_PROPERTY}, make_event(targets=[]))


# --- all / any / not ----------------------------------------------------------------------------------------

SUCCESS = {"field": "result", "eq": "success"}
FAILURE = {"field": "result", "eq": "failure"}
BY_ZOE = {"field": "actor.upn", "eq": "zoe@contoso.com"}
BY_ADELE = {"field": "actor.upn", "eq": "adele@contoso.com"}


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        ({"all": [SUCCESS, BY_ZOE]}, True),
        ({"all": [SUCCESS, BY_ADELE]}, False),
        ({"any": [FAILURE, BY_ZOE]}, True),
        ({"any": [FAILURE, BY_ADELE]}, False),
        ({"not": FAILURE}, True),
        ({"not": SUCCESS}, False),
        ({"not": {"not": SUCCESS}}, True),
        ({"all": [SUCCESS, {"any": [BY_ADELE, {"not": BY_ADELE}]}]}, True),
        ({"all": [SUCCESS, {"any": [BY_ADELE, {"not": BY_ZOE}]}]}, False),
        ({"any": [{"all": [FAILURE, BY_ZOE]}, {"all": [SUCCESS, BY_ZOE]}]}, True),
        ({"any": [{"all": [FAILURE, BY_ZOE]}, {"all": [SUCCESS, BY_ADELE]}]}, False),
        ({"not": {"any": [FAILURE, BY_ADELE]}}, True),
        ({"not": {"all": [SUCCESS, BY_ZOE]}}, False),
        ({"all": [{"not": FAILURE}, {"not": BY_ADELE}, {"any": [SAME_PROPERTY, FAILURE]}]}, True),
    ],
)
def test_groups_nest(when: dict[str, Any], expected: bool) -> None:
    assert holds(when, make_event()) is expected


# --- after_hours and business hours -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("timestamp", "after"),
    [
        # Tuesday 3 November 2026, GMT: local time is UTC
        ("2026-11-03T07:59:00.000Z", True),
        ("2026-11-03T07:59:59.999Z", True),
        ("2026-11-03T08:00:00.000Z", False),
        ("2026-11-03T12:00:00.000Z", False),
        ("2026-11-03T17:59:00.000Z", False),
        ("2026-11-03T17:59:59.999Z", False),
        ("2026-11-03T18:00:00.000Z", True),
        ("2026-11-03T23:30:00.000Z", True),
        # Saturday and Sunday, mid-morning
        ("2026-11-07T10:00:00.000Z", True),
        ("2026-11-08T10:00:00.000Z", True),
        # Tuesday 7 July 2026, BST (UTC+1): the UTC hour is one behind the local hour
        ("2026-07-07T06:59:00.000Z", True),  # 07:59 local
        ("2026-07-07T07:00:00.000Z", False),  # 08:00 local, although 07:00 UTC
        ("2026-07-07T07:30:00.000Z", False),
        ("2026-07-07T16:59:00.000Z", False),  # 17:59 local
        ("2026-07-07T17:00:00.000Z", True),  # 18:00 local, although 17:00 UTC
        ("2026-07-11T10:00:00.000Z", True),  # Saturday
    ],
)
def test_after_hours_in_europe_london(timestamp: str, after: bool) -> None:
    event = make_event(timestamp=timestamp)
    assert holds({"field": "timestamp", "after_hours": True}, event) is after
    assert holds({"field": "timestamp", "after_hours": False}, event) is (not after)
    assert HOURS.is_after_hours(dt.datetime.fromisoformat(timestamp.replace("Z", "+00:00"))) is after


def test_after_hours_is_false_without_a_time() -> None:
    assert not holds({"field": "timestamp", "after_hours": True}, make_event(timestamp="not a time"))
    assert not holds({"field": "actor.last_seen", "after_hours": True}, make_event())
    assert not holds({"field": "timestamp", "after_hours": False}, make_event(timestamp="not a time"))


def test_round_the_clock_hours_are_never_after_hours() -> None:
    always = BusinessHours.parse("00:00-24:00", "Mon-Sun", "Europe/London")
    start = dt.datetime(2026, 3, 28, 0, 0, tzinfo=dt.UTC)  # spans the March clock change
    for step in range(0, 8 * 24 * 60, 17):
        moment = start + dt.timedelta(minutes=step)
        assert not always.is_after_hours(moment), moment
    event = make_event(timestamp="2026-11-08T03:00:00.000Z")  # Sunday, 3 a.m.
    assert not holds({"field": "timestamp", "after_hours": True}, event, hours=always)


def test_weekday_is_taken_in_the_local_zone() -> None:
    weekdays = BusinessHours.parse("00:00-24:00", "Mon-Fri", "Europe/London")
    # Sunday 23:30 UTC is Monday 00:30 in London during BST
    assert not weekdays.is_after_hours(dt.datetime(2026, 7, 5, 23, 30, tzinfo=dt.UTC))
    # ... but still Sunday in GMT
    assert weekdays.is_after_hours(dt.datetime(2026, 11, 8, 23, 30, tzinfo=dt.UTC))
    # Friday 23:30 UTC is Saturday in London during BST
    assert weekdays.is_after_hours(dt.datetime(2026, 7, 10, 23, 30, tzinfo=dt.UTC))


@pytest.mark.parametrize(
    ("days", "expected"),
    [
        ("Mon-Fri", {0, 1, 2, 3, 4}),
        ("mon-fri", {0, 1, 2, 3, 4}),
        ("Mon-Sun", {0, 1, 2, 3, 4, 5, 6}),
        ("Sun-Tue", {6, 0, 1}),
        ("Fri-Mon", {4, 5, 6, 0}),
        ("Mon,Tue,Thu", {0, 1, 3}),
        ("Mon, Wed-Thu, Sat", {0, 2, 3, 5}),
        ("Monday,Friday", {0, 4}),
        ("Sat", {5}),
    ],
)
def test_business_days(days: str, expected: set[int]) -> None:
    assert BusinessHours.parse("08:00-18:00", days, "Europe/London").days == frozenset(expected)


def test_wrapping_day_range_in_after_hours() -> None:
    hours = BusinessHours.parse("09:00-17:00", "Sun-Tue", "UTC")
    assert not hours.is_after_hours(dt.datetime(2026, 11, 8, 10, tzinfo=dt.UTC))  # Sunday
    assert not hours.is_after_hours(dt.datetime(2026, 11, 9, 10, tzinfo=dt.UTC))  # Monday
    assert not hours.is_after_hours(dt.datetime(2026, 11, 3, 10, tzinfo=dt.UTC))  # Tuesday
    assert hours.is_after_hours(dt.datetime(2026, 11, 4, 10, tzinfo=dt.UTC))  # Wednesday
    assert hours.is_after_hours(dt.datetime(2026, 11, 7, 10, tzinfo=dt.UTC))  # Saturday


@pytest.mark.parametrize("days", ["Monday-Friday", "Mon - Fri"])
def test_business_days_accept_full_names_and_spaced_ranges(days: str) -> None:
    assert BusinessHours.parse("08:00-18:00", days, "Europe/London").days == frozenset(range(5))


@pytest.mark.parametrize(
    ("days", "expected"), [("Mon Tue Wed Thu Fri", {0, 1, 2, 3, 4}), ("Mon;Fri", {0, 4}), ("Sat Sun", {5, 6})]
)
def test_business_days_may_be_separated_by_spaces_or_semicolons(days: str, expected: set[int]) -> None:
    assert BusinessHours.parse("08:00-18:00", days, "Europe/London").days == frozenset(expected)


@pytest.mark.parametrize("days", ["Mon/Fri", "Monkey", "Mon-Fri-Sat"])
def test_business_days_refuse_text_that_is_not_a_day(days: str) -> None:
    with pytest.raises(ValueError, match="unknown day"):
        BusinessHours.parse("08:00-18:00", days, "Europe/London")


@pytest.mark.parametrize(
    ("hours", "days", "zone", "message"),
    [
        ("8am-6pm", "Mon-Fri", "Europe/London", "business hours must look like 08:00-18:00, got '8am-6pm'"),
        ("08:00", "Mon-Fri", "Europe/London", "business hours must look like 08:00-18:00, got '08:00'"),
        ("08:00-18:00-20:00", "Mon-Fri", "Europe/London", "business hours must look like 08:00-18:00"),
        ("25:00-26:00", "Mon-Fri", "Europe/London", "business hours must look like 08:00-18:00"),
        ("18:00-08:00", "Mon-Fri", "Europe/London", "must end after they start, got '18:00-08:00'"),
        ("08:00-08:00", "Mon-Fri", "Europe/London", "must end after they start"),
        ("08:00-18:00", "Weekdays", "Europe/London", "unknown day 'Weekdays'"),
        ("08:00-18:00", "Mon-Fry", "Europe/London", "unknown day 'Fry'"),
        ("08:00-18:00", "", "Europe/London", "business days must look like Mon-Fri, got ''"),
        ("08:00-18:00", " , ", "Europe/London", "business days must look like Mon-Fri"),
        ("08:00-18:00", "Mon-Fri", "Europe/Londn", "'Europe/Londn' is not an IANA time zone"),
        ("08:00-18:00", "Mon-Fri", "GMT+1 hours", "is not an IANA time zone such as Europe/London"),
        ("08:00-18:00", "Mon-Fri", "", "'' is not an IANA time zone"),
    ],
)
def test_invalid_business_hours_are_refused_clearly(hours: str, days: str, zone: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        BusinessHours.parse(hours, days, zone)


# --- the operation index ------------------------------------------------------------------------------------


def test_indexed_rules_match_operations_case_insensitively() -> None:
    rules = build(
        rule(
            {"all": [{"field": "operation", "in": ["Add member to role", "Add owner to group"]}, SUCCESS]},
            "role.added",
        ),
        rule({"all": [{"field": "operation", "eq": "Delete user"}]}, "user.deleted"),
        rule({"field": "operation", "eq": "Set-Mailbox"}, "mailbox.changed"),
        rule({"all": [{"field": "operation", "in": "$resets"}, SUCCESS]}, "password.reset"),
        lists={"resets": ["Reset user password"]},
    )

    def matched(operation: Any, **overrides: Any) -> list[str]:
        return [c.id for c in rules.match(make_event(operation=operation, **overrides))]

    assert matched("Add member to role") == ["role.added"]
    assert matched("ADD MEMBER TO ROLE") == ["role.added"]
    assert matched("add owner to group") == ["role.added"]
    assert matched("add owner to group", result="failure") == []
    assert matched("DELETE USER") == ["user.deleted"]
    assert matched("set-mailbox") == ["mailbox.changed"]
    assert matched("reset USER password") == ["password.reset"]
    assert matched("Update user") == []
    assert matched(None) == []


def test_rules_without_an_operation_test_are_checked_for_every_event() -> None:
    rules = build(
        rule({"all": [{"field": "operation", "in": ["Add member to role"]}]}, "role.added"),
        rule(FAILURE, "any.failure"),
        rule(
            {"any": [{"field": "operation", "eq": "Delete user"}, {"field": "actor.type", "eq": "app"}]},
            "mixed",
        ),
        rule({"all": [{"field": "operation", "startswith": "Set-"}]}, "exchange.set"),
        rule({"all": [{"not": {"field": "operation", "eq": "Add member to role"}}, SUCCESS]}, "not.role"),
    )

    def matched(**overrides: Any) -> list[str]:
        return sorted(c.id for c in rules.match(make_event(**overrides)))

    assert matched() == ["role.added"]
    assert matched(result="failure") == ["any.failure", "role.added"]
    assert matched(operation="Update user", result="failure") == ["any.failure"]
    assert matched(operation="delete user") == ["mixed", "not.role"]
    assert matched(operation="Update user", actor={"type": "app", "id": "app-1"}) == ["mixed", "not.role"]
    assert matched(operation="Set-Mailbox") == ["exchange.set", "not.role"]
    assert matched(operation=None, result="failure") == ["any.failure"]
    event = make_event()
    del event["operation"]
    assert [c.id for c in rules.match(event)] == ["not.role"]


def test_indexed_operations_names_the_index_keys_of_each_rule() -> None:
    rules = build(
        rule(
            {"all": [{"field": "operation", "in": ["Add member to role", "Add Owner to group"]}]},
            "role.added",
        ),
        rule({"field": "operation", "eq": "Set-Mailbox"}, "mailbox.changed"),
        rule({"all": [SUCCESS, {"field": "operation", "in": "$resets"}]}, "password.reset"),
        rule({"any": [{"field": "operation", "eq": "Delete user"}, FAILURE]}, "mixed"),
        rule({"all": [{"field": "operation", "eq": "Delete user"}]}, "disabled.rule", enabled=False),
        lists={"resets": ["Reset user password"]},
    )
    assert rules.indexed_operations("role.added") == frozenset({"add member to role", "add owner to group"})
    assert rules.indexed_operations("mailbox.changed") == frozenset({"set-mailbox"})
    assert rules.indexed_operations("password.reset") == frozenset({"reset user password"})
    assert rules.indexed_operations("mixed") is None  # `any` at the top level: checked for every event
    with pytest.raises(KeyError):
        rules.indexed_operations("disabled.rule")


@pytest.mark.parametrize(
    ("operand", "value", "expected"),
    [
        (53003, 53003, True),
        ("53003", 53003, True),  # a quoted number compares as text, which an int's text equals
        (53003, "53003", True),
        (53003, 530030, False),
        ("053003", 53003, False),  # text semantics: "53003" is not "053003"
        (-1, -1, True),
        (0, 0, True),
        (0, False, False),  # a bool is "false", not 0
        (500121, None, False),
    ],
)
def test_eq_on_an_integer_field_compares_like_text(operand: Any, value: Any, expected: bool) -> None:
    assert holds({"field": "result_code", "eq": operand}, make_event(result_code=value)) is expected
    assert holds({"field": "result_code", "in": [50053, operand]}, make_event(result_code=value)) is expected


@pytest.mark.parametrize(
    ("signin", "expected"),
    [
        ({"legacy_auth": True}, True),
        ({"legacy_auth": False}, False),
        ({"legacy_auth": None}, False),
        ({}, False),
        ([{"legacy_auth": False}, {"legacy_auth": True}], True),  # a list at the first step is walked
        ({"legacy_auth": [False, True]}, True),  # and a list at the second
        ("legacy", False),
        (None, False),
    ],
)
def test_a_two_step_path_reads_nested_dicts_and_walks_lists(signin: Any, expected: bool) -> None:
    event = make_event(signin=signin)
    assert holds({"field": "signin.legacy_auth", "eq": True}, event) is expected
    assert holds({"field": "signin[].legacy_auth", "eq": True}, event) is expected


def test_an_operation_test_with_case_sensitive_still_applies_after_the_index() -> None:
    rules = build(rule({"all": [{"field": "operation", "eq": "Set-Mailbox", "case_sensitive": True}]}))
    assert [c.id for c in rules.match(make_event(operation="Set-Mailbox"))] == [RULE_ID]
    assert rules.match(make_event(operation="set-mailbox")) == []


# --- group keys ---------------------------------------------------------------------------------------------


def test_group_by_falls_back_through_alternatives() -> None:
    rules = build(rule(SUCCESS, group_by=["actor.upn|actor.id"]))
    (compiled,) = rules.match(make_event())
    assert compiled.group(make_event()) == (
        "actor.upn|actor.id=zoe@contoso.com",
        {"actor.upn|actor.id": "Zoe@Contoso.com"},
    )
    app = make_event(actor={"type": "app", "id": "9A1D3E5F-7B2C-4D8E", "upn": None, "display": "Automation"})
    assert compiled.group(app) == (
        "actor.upn|actor.id=9a1d3e5f-7b2c-4d8e",
        {"actor.upn|actor.id": "9A1D3E5F-7B2C-4D8E"},
    )
    blank_upn = make_event(actor={"type": "app", "id": "app-2", "upn": ""})
    assert compiled.group(blank_upn)[0] == "actor.upn|actor.id=app-2"
    nobody = make_event(actor={"type": "unknown"})
    assert compiled.group(nobody) == ("actor.upn|actor.id=", {"actor.upn|actor.id": ""})


def test_group_keys_are_case_folded_so_one_actor_is_one_group() -> None:
    rules = build(rule(SUCCESS, group_by=["actor.upn|actor.id", "targets[].display"]))
    compiled = rules.get(RULE_ID)
    assert compiled is not None
    upper = make_event(actor={"upn": "ZOE@CONTOSO.COM"})
    lower = make_event(actor={"upn": "zoe@contoso.com"})
    key_upper, shown_upper = compiled.group(upper)
    key_lower, shown_lower = compiled.group(lower)
    assert key_upper == key_lower == "actor.upn|actor.id=zoe@contoso.com|targets[].display=adele vance"
    assert shown_upper == {"actor.upn|actor.id": "ZOE@CONTOSO.COM", "targets[].display": "Adele Vance"}
    assert shown_lower["actor.upn|actor.id"] == "zoe@contoso.com"


def test_no_group_by_gives_an_empty_key() -> None:
    rules = build(rule(SUCCESS))
    (compiled,) = rules.match(make_event())
    assert compiled.group(make_event()) == ("", {})


# --- validation ---------------------------------------------------------------------------------------------


def only_problem(*rules: dict[str, Any], lists: dict[str, list[Any]] | None = None) -> str:
    problems = problems_of(*rules, lists=lists)
    assert len(problems) == 1, problems
    return problems[0]


@pytest.mark.parametrize(
    ("bad_rule", "expected_start", "expected_text"),
    [
        pytest.param(
            rule({"all": [SUCCESS, {"field": "result", "eq": "success", "neq": "failure"}]}, "two.ops"),
            "rule 'two.ops': when.all[1]: ",
            "give exactly one operator",
            id="two operators",
        ),
        pytest.param(
            rule({"any": [{"field": "result"}]}, "no.op"),
            "rule 'no.op': when.any[0]: ",
            "found 0",
            id="no operator",
        ),
        pytest.param(
            rule({"all": [SUCCESS, {"field": "actor.upn", "regex": "(admin"}]}, "bad.regex"),
            "rule 'bad.regex': when.all[1].regex: ",
            "invalid regex",
            id="bad regex",
        ),
        pytest.param(
            rule({"not": {"field": "actor.upn", "regex": "a" * (MAX_REGEX_LENGTH + 1)}}, "long.regex"),
            "rule 'long.regex': when.not.regex: ",
            f"at most {MAX_REGEX_LENGTH} characters",
            id="regex too long",
        ),
        pytest.param(
            rule({"field": "actor.upn", "regex": r"^(\w+)@\1\."}, "backref.regex"),
            "rule 'backref.regex': when.regex: ",
            "backreferences such as \\1 are not supported",
            id="regex backreference",
        ),
        pytest.param(
            rule({"all": [SUCCESS, {"field": "actor.upn", "regex": "(?P<u>adm)(?P=u)"}]}, "named.backref"),
            "rule 'named.backref': when.all[1].regex: ",
            "backreferences such as (?P=name) are not supported",
            id="regex named backreference",
        ),
        pytest.param(
            rule({"any": [BY_ZOE, {"field": "actor.upn", "regex": "admin(?=@)"}]}, "lookahead.regex"),
            "rule 'lookahead.regex': when.any[1].regex: ",
            "lookahead (?=...) is not supported",
            id="regex lookahead",
        ),
        pytest.param(
            rule({"not": {"field": "actor.upn", "regex": "(?<![a-z])admin"}}, "lookbehind.regex"),
            "rule 'lookbehind.regex': when.not.regex: ",
            "lookbehind (?<!...) is not supported",
            id="regex lookbehind",
        ),
        pytest.param(
            rule({"field": "actor.upn", "regex": "a++b"}, "possessive.regex"),
            "rule 'possessive.regex': when.regex: ",
            "possessive quantifiers",
            id="regex possessive quantifier",
        ),
        pytest.param(
            rule({"field": "actor.upn", "regex": "x.{1000}y"}, "huge.regex"),
            "rule 'huge.regex': when.regex: ",
            f"more than {MAX_PROGRAM_SIZE}",
            id="regex program too large",
        ),
        pytest.param(
            rule({"all": [{"field": "operation", "in": "$role_ops"}]}, "unknown.list"),
            "rule 'unknown.list': when.all[0].in: ",
            "no list named 'role_ops'",
            id="unknown list",
        ),
        pytest.param(
            rule(
                {"some": "targets[]", "where": {"field": "display", "not_in": "$vip"}},
                "unknown.list.where",
            ),
            "rule 'unknown.list.where': when.where.not_in: ",
            "no list named 'vip'",
            id="unknown list in where",
        ),
        pytest.param(
            rule({"field": "result", "equals": "success"}, "unknown.op"),
            "rule 'unknown.op': when.equals: ",
            "Extra inputs are not permitted",
            id="unknown operator key",
        ),
        pytest.param(
            rule({"field": "actor upn", "eq": "x"}, "bad.field"),
            "rule 'bad.field': when.field: ",
            "is not a field path",
            id="bad field path",
        ),
        pytest.param(
            rule({"field": "result", "in": "admins"}, "bad.list.ref"),
            "rule 'bad.list.ref': when.in: ",
            "must be a list, or a reference",
            id="bad list reference",
        ),
        pytest.param(rule(SUCCESS, "Bad Id!"), "rule 'Bad Id!': id: ", "an id is 3-80", id="bad id"),
        pytest.param(rule(SUCCESS, "ab"), "rule 'ab': id: ", "an id is 3-80", id="short id"),
        pytest.param(
            rule(SUCCESS, "bad.severity", severity="urgent"),
            "rule 'bad.severity': severity: ",
            "'informational', 'low', 'medium', 'high' or 'critical'",
            id="bad severity",
        ),
        pytest.param(
            rule(SUCCESS, "bad.mitre", mitre=["T1098.003", "T98"]),
            "rule 'bad.mitre': mitre: ",
            "'T98' is not a MITRE ATT&CK technique id",
            id="bad mitre id",
        ),
        pytest.param(
            rule({"field": "timestamp", "gt": "yesterday"}, "bad.gt"),
            "rule 'bad.gt': when.gt: ",
            "'yesterday' is neither a number nor an ISO-8601 time",
            id="gt not number or time",
        ),
        pytest.param(
            rule({"all": [{"field": "timestamp", "lt": "soon"}]}, "bad.lt"),
            "rule 'bad.lt': when.all[0].lt: ",
            "'soon' is neither a number nor an ISO-8601 time",
            id="lt not number or time",
        ),
        pytest.param(
            rule(SUCCESS, "bad.threshold", threshold={"count": 1, "window_minutes": 10}),
            "rule 'bad.threshold': threshold.count: ",
            "greater than or equal to 2",
            id="threshold count below 2",
        ),
        pytest.param(
            rule(SUCCESS, "bad.window", threshold={"count": 5, "window_minutes": 0}),
            "rule 'bad.window': threshold.window_minutes: ",
            "greater than 0",
            id="threshold window zero",
        ),
        pytest.param(
            rule(SUCCESS, "bad.group", group_by=["actor.upn|"]),
            "rule 'bad.group': group_by: ",
            "group_by takes field paths",
            id="bad group_by",
        ),
        pytest.param(
            rule(SUCCESS, "unknown.key", owner="secops"),
            "rule 'unknown.key': owner: ",
            "Extra inputs are not permitted",
            id="unknown rule key",
        ),
    ],
)
def test_validation_errors_name_the_rule_and_field(
    bad_rule: dict[str, Any], expected_start: str, expected_text: str
) -> None:
    problem = only_problem(bad_rule)
    assert problem.startswith(expected_start), problem
    assert expected_text in problem


def test_a_rule_without_an_id_is_named_by_its_position() -> None:
    nameless = rule(SUCCESS)
    del nameless["id"]
    problems = problems_of(rule(SUCCESS, "good.rule"), nameless)
    assert problems == ["rules[1]: id: Field required"]


def test_duplicate_rule_ids_are_refused() -> None:
    problem = only_problem(rule(SUCCESS, "dup.rule"), rule(FAILURE, "other.rule"), rule(BY_ZOE, "dup.rule"))
    assert problem == "rule 'dup.rule': id: used more than once"


def test_regex_at_the_length_limit_is_accepted() -> None:
    pattern = "a" * (MAX_REGEX_LENGTH - 1) + "+"
    assert holds({"field": "actor.display", "regex": pattern}, make_event(actor={"display": "a" * 600}))


def nested(depth: int) -> dict[str, Any]:
    """A condition `depth` levels deep: depth - 1 groups around one predicate."""
    condition: dict[str, Any] = SUCCESS
    for level in range(depth - 1):
        condition = {"not": condition} if level % 2 else {"all": [condition]}
    return condition


def test_nesting_up_to_the_limit_is_accepted_and_deeper_is_refused() -> None:
    nots = (MAX_CONDITION_DEPTH - 1) // 2  # every other group is a `not`
    assert holds(nested(MAX_CONDITION_DEPTH), make_event()) is (nots % 2 == 0)
    problem = only_problem(rule(nested(MAX_CONDITION_DEPTH + 1), "too.deep"))
    assert problem == f"rule 'too.deep': when: conditions nest deeper than {MAX_CONDITION_DEPTH}"


def test_all_problems_of_several_rules_are_reported_together() -> None:
    problems = problems_of(
        rule(SUCCESS, "good.one"),
        rule({"field": "actor.upn", "regex": "(("}, "bad.one"),
        rule(SUCCESS, "bad.two", severity="severe", mitre=["X1"]),
        rule(
            {"all": [{"field": "operation", "in": "$missing"}, {"field": "timestamp", "gt": "later"}]},
            "bad.three",
        ),
        rule(FAILURE, "good.two"),
    )
    assert len(problems) == 5, problems
    assert problems[0].startswith("rule 'bad.one': when.regex: ")
    assert {p.split(": ")[1] for p in problems if p.startswith("rule 'bad.two'")} == {"severity", "mitre"}
    assert "rule 'bad.three': when.all[0].in: no list named 'missing' in the file's lists" in problems
    assert "rule 'bad.three': when.all[1].gt: 'later' is neither a number nor an ISO-8601 time" in problems
    assert not any("good." in p for p in problems)


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        (["not", "a", "mapping"], "the rule file must be a mapping"),
        ({"rules": []}, "'rules' must be a non-empty list"),
        ({"lists": {}}, "'rules' must be a non-empty list"),
        ({"rules": [rule(SUCCESS)], "alerts": []}, "unknown top-level key(s): alerts"),
        ({"version": 2, "rules": [rule(SUCCESS)]}, "version: "),
    ],
)
def test_malformed_rule_files_are_refused(document: Any, expected: str) -> None:
    with pytest.raises(RuleError) as caught:
        parse_rule_file(document)
    assert expected in str(caught.value)


def test_disabled_rules_are_parsed_but_never_matched() -> None:
    rules = build(rule(SUCCESS, "on.rule"), rule(SUCCESS, "off.rule", enabled=False))
    assert [r.id for r in rules.rules] == ["on.rule", "off.rule"]
    assert [c.id for c in rules.compiled] == ["on.rule"]
    assert [c.id for c in rules.match(make_event())] == ["on.rule"]
    assert rules.get("off.rule") is None
    indexed = build(
        rule({"all": [{"field": "operation", "eq": "Add member to role"}]}, "off.rule", enabled=False)
    )
    assert indexed.match(make_event()) == []


def test_yaml_scalars_keep_their_type_and_compare_as_text() -> None:
    rule_file = parse_rule_file(
        {
            "rules": [
                rule({"field": "targets[].modified_properties[].new", "eq": True}, "bool.rule"),
                rule({"field": "targets[].modified_properties[].new", "in": [7, "30", 90.0]}, "list.rule"),
            ]
        }
    )
    rules = RuleSet(rule_file, HOURS)
    assert [c.id for c in rules.match(with_properties({"name": "X", "new": "TRUE"}))] == ["bool.rule"]
    assert [c.id for c in rules.match(with_properties({"name": "X", "new": "90"}))] == ["list.rule"]
    assert [c.id for c in rules.match(with_properties({"name": "X", "new": 30}))] == ["list.rule"]
    assert rules.match(with_properties({"name": "X", "new": "90.5"})) == []


def test_events_may_be_dict_subclasses_as_the_cosmos_sdk_returns_them() -> None:
    class CosmosLikeDict(dict[str, Any]):
        pass

    event = CosmosLikeDict(make_event())
    assert holds({"field": "actor.upn", "eq": event["actor"]["upn"]}, event)
    assert holds({"field": "targets[].type", "exists": True}, event)


# --- regex: linear time (RE2) ---------------------------------------------------------------------------

# Exponential under a backtracking engine: `re` took 1.8 s on 24 characters, 4x more per 2 more.
CATASTROPHIC = r"^(\w+\s?)+$"


def catastrophic_rules() -> RuleSet:
    return build(
        rule({"all": [SUCCESS, {"field": "targets[].display", "regex": CATASTROPHIC}]}, "redos.rule")
    )


@pytest.mark.timeout(30)  # a hang guard only: with `re` these cases would not finish in a lifetime
@pytest.mark.parametrize(
    ("display", "expected"),
    [
        pytest.param("a" * 5000 + "!", False, id="5000 word characters then !"),
        pytest.param("a" * 24 + "!", False, id="the 24 characters of the finding"),
        pytest.param("word " * 999 + "end", True, id="1000 words"),
        pytest.param("a b " * 1250 + "!", False, id="5000 characters of words then !"),
    ],
)
def test_a_catastrophic_regex_is_evaluated_correctly_on_long_adversarial_values(
    display: str, expected: bool
) -> None:
    event = make_event(targets=[{"type": "User", "id": "u-1", "display": display}])
    assert [c.id for c in catastrophic_rules().match(event)] == (["redos.rule"] if expected else [])


@pytest.mark.timeout(30)
def test_a_catastrophic_regex_over_many_adversarial_values_of_one_event() -> None:
    hostile = [{"type": "User", "id": f"u-{i}", "display": "a" * 5000 + "!"} for i in range(200)]
    rules = catastrophic_rules()
    assert rules.match(make_event(targets=hostile)) == []
    last = {"type": "User", "id": "u-last", "display": "Adele Vance"}
    assert [c.id for c in rules.match(make_event(targets=[*hostile, last]))] == ["redos.rule"]


@pytest.mark.timeout(30)
def test_regex_sees_at_most_max_match_text_characters_of_a_value() -> None:
    when = {"field": "actor.display", "regex": "!$"}
    assert holds(when, make_event(actor={"display": "a" * (MAX_MATCH_TEXT - 1) + "!"}))
    assert not holds(when, make_event(actor={"display": "a" * MAX_MATCH_TEXT + "!"}))


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    ("address", "external"),
    [
        pytest.param("a" * 200_000, False, id="a long run of address characters without @"),
        pytest.param("a." * 100_000 + "@gmail.com", True, id="a long local part"),
        pytest.param("a@" + "b" * 200_000 + ".com", True, id="a long domain"),
        pytest.param("@" * 200_000, False, id="only @"),
    ],
)
def test_domain_not_in_is_linear_in_the_value(address: str, external: bool) -> None:
    when = {"field": FORWARD_TO, "domain_not_in": ["contoso.com"]}
    assert holds(when, forwarding(address)) is external


@pytest.mark.parametrize(
    ("predicate", "expected"),
    [
        # what RE2 changes, as README "Rule format" states it
        pytest.param({"field": "actor.display", "regex": r"^Zo\w"}, False, id="\\w is ASCII"),
        pytest.param({"field": "actor.display", "regex": r"^Zo\pL \pL"}, True, id="\\pL is Unicode"),
        pytest.param({"field": "actor.display", "regex": r"Łukasz$"}, True, id="$ at the end"),
        pytest.param({"field": "actor.ip", "regex": r"113\.7$"}, True, id="$ on a plain value"),
        # Python spellings kept
        pytest.param({"field": "actor.upn", "regex": r"contoso\.com\Z"}, True, id="\\Z"),
        pytest.param({"field": "actor.display", "regex": r"Zo\u00eb"}, True, id="\\u escape"),
        pytest.param({"field": "actor.ip", "regex": r"^\d{,3}\.0"}, True, id="{,n}"),
        pytest.param({"field": "actor.ip", "regex": r"^\d{,2}\.0"}, False, id="{,n} bounded"),
        # case: folded unless case_sensitive; an inline (?i) still folds a case-sensitive test
        pytest.param({"field": "actor.display", "regex": r"^ZOË"}, True, id="Unicode case folding"),
        pytest.param(
            {"field": "actor.upn", "regex": r"^ZOE@", "case_sensitive": True}, False, id="case_sensitive"
        ),
        pytest.param(
            {"field": "actor.upn", "regex": r"(?i)^ZOE@", "case_sensitive": True}, True, id="inline (?i)"
        ),
    ],
)
def test_regex_semantics_under_re2(predicate: dict[str, Any], expected: bool) -> None:
    assert holds(predicate, make_event()) is expected


def test_regex_dollar_matches_only_at_the_very_end_unlike_python_re() -> None:
    event = make_event(actor={"display": "Adele Vance\n"})
    assert re.search(r"Vance$", "Adele Vance\n")  # what `re` did
    assert not holds({"field": "actor.display", "regex": r"Vance$"}, event)
    assert holds({"field": "actor.display", "regex": r"Vance\s*$"}, event)


def test_values_with_lone_surrogates_are_matched_not_crashed_on() -> None:
    event = make_event(actor={"display": "\ud800admin", "upn": "\udfff adele@gmail.com"})
    assert holds({"field": "actor.display", "regex": "^.admin$"}, event)
    assert holds({"field": "actor.upn", "domain_not_in": ["contoso.com"]}, event)
