"""Editing one rule as YAML and under its own version: reading rule YAML within bounds, the line of
each problem's field (shared/rules/rule_yaml.py), each rule's entity tag and the If-Match check
(shared/rules/editing.py), and the If-Match header (shared/api/rules_api.py)."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from shared.api.problems import ApiProblem
from shared.api.rules_api import if_match, invalid_rule, rule_detail
from shared.rules.editing import (
    ANY_VERSION,
    RuleChangedError,
    check_version,
    load_rule_document,
    raw_rule_etag,
    rule_document,
    rule_error_details,
    rule_etag,
    rule_view,
)
from shared.rules.model import RuleError, parse_rule, parse_rule_file
from shared.rules.rule_yaml import (
    MAX_RULE_YAML_CHARS,
    RuleYamlError,
    YamlLocator,
    field_segments,
    load_rule_yaml,
    rule_yaml,
)
from shared.rules.source import DEFAULT_RULES_FILE

DEFAULT_TEXT = DEFAULT_RULES_FILE.read_text(encoding="utf-8")
DEFAULT_DOCUMENT = yaml.safe_load(DEFAULT_TEXT)
DEFAULT_RULES = parse_rule_file(DEFAULT_DOCUMENT).rules

# A rule with three problems: the severity (line 4), a regex RE2 refuses (line 10) and an unknown key
# inside a flow mapping (line 11).
BROKEN = """\
id: custom.admin-logins
title: Admin sign-ins
description: Sign-ins by admin accounts.
severity: urgent
mitre: [T1078]
group_by: ["actor.upn"]
when:
  all:
    - {field: operation, eq: UserLoggedIn}
    - field: actor.upn
      regex: "(admin"
    - {field: result, neq: failure, colour: red}
"""


def problems_of(text: str, rule_id: str = "custom.admin-logins") -> list[dict[str, Any]]:
    with pytest.raises(RuleError) as caught:
        parse_rule(load_rule_yaml(text), 0, {})
    return rule_error_details(caught.value, rule_id, text)


def test_each_problem_points_at_the_line_of_its_field() -> None:
    problems = problems_of(BROKEN)
    assert [(p["field"], p["line"], p["column"]) for p in problems] == [
        ("severity", 4, 1),
        ("when.all[1].regex", 11, 7),
        ("when.all[2].colour", 12, 37),
    ]
    assert "invalid regex" in problems[1]["message"]
    assert "Extra inputs" in problems[2]["message"]


def test_a_missing_field_points_at_its_nearest_enclosing_field() -> None:
    no_when = "\n".join(line for line in BROKEN.splitlines()[:6]).replace("urgent", "low") + "\n"
    assert problems_of(no_when) == [{"field": "when", "message": "Field required", "line": 1, "column": 1}]
    missing = BROKEN.replace("severity: urgent", "severity: low").replace('regex: "(admin"', "")
    missing = missing.replace(", colour: red", "")
    located = problems_of(missing)
    assert located[0]["field"] == "when.all[1]"
    assert (located[0]["line"], located[0]["column"]) == (10, 7)  # the list item itself


def test_problems_of_other_rules_and_json_bodies_carry_no_line() -> None:
    error = RuleError(["rule 'other.rule': title: too long", "rule 'custom.admin-logins': severity: bad"])
    assert rule_error_details(error, "custom.admin-logins", BROKEN) == [
        {"field": "rules.other.rule.title", "message": "too long"},
        {"field": "severity", "message": "bad", "line": 4, "column": 1},
    ]
    assert rule_error_details(error, "custom.admin-logins") == [
        {"field": "rules.other.rule.title", "message": "too long"},
        {"field": "severity", "message": "bad"},
    ]
    problem = invalid_rule(error, "custom.admin-logins", BROKEN)
    assert problem.errors[1]["line"] == 4


@pytest.mark.parametrize(
    ("field", "segments"),
    [
        ("when.all[1].regex", ["when", "all", 1, "regex"]),
        ("body", []),
        ("when.not.in", ["when", "not", "in"]),
        ("group_by[0]", ["group_by", 0]),
    ],
)
def test_field_segments(field: str, segments: list[str | int]) -> None:
    assert field_segments(field) == segments


def test_the_locator_follows_block_and_flow_styles_and_stops_where_the_text_does() -> None:
    locator = YamlLocator(BROKEN)
    assert locator.locate("mitre[0]") == (5, 9)
    assert locator.locate("when.all[0].eq") == (9, 26)
    assert locator.locate("when.all[7].field") == (8, 3)  # no 8th item: the list's key
    assert locator.locate("threshold.count") == (1, 1)  # not there at all: the rule
    assert locator.locate("body") == (1, 1)


@pytest.mark.parametrize(
    ("text", "message", "line"),
    [
        ("id: x\ntitle: [unclosed\n", "not valid YAML", 3),
        ("title: a\n  bad: indent\n", "not valid YAML", 2),
        ("- just\n- a list\n", "one rule: a mapping", 1),
        ("just text\n", "one rule: a mapping", 1),
        ("", "one rule: a mapping", 1),
        ("when:\n  all:\n    - {field: x, eq: .nan}\n", "when.all[0].eq: numbers must be finite", 3),
        ("threshold: {count: 2, window_minutes: .inf}\n", "numbers must be finite", 1),
        ("title: 2026-13-45\n", "a value cannot be read", None),
        ("title: " + "9" * 5000 + "\n", "a value cannot be read", None),
        ("a: &a [*a]\n", "recursive alias", None),
        ("x: !!python/object:os.system {}\n", "not valid YAML", 1),
    ],
)
def test_unreadable_rule_yaml_is_refused_with_its_place(text: str, message: str, line: int | None) -> None:
    with pytest.raises(RuleYamlError) as caught:
        load_rule_yaml(text)
    assert message in caught.value.message
    assert caught.value.line == line
    detail = caught.value.detail()
    assert detail["field"] == "yaml"
    assert ("line" in detail) is (line is not None)


def test_a_yaml_bomb_and_an_oversized_text_are_refused_unexpanded() -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]\n" for i in range(6)
    )
    with pytest.raises(RuleYamlError) as caught:
        load_rule_yaml(bomb)
    assert "expands to more than" in caught.value.message
    with pytest.raises(RuleYamlError) as caught:
        load_rule_yaml("title: " + "x" * MAX_RULE_YAML_CHARS)
    assert f"at most {MAX_RULE_YAML_CHARS}" in caught.value.message


def test_every_default_rule_round_trips_through_its_yaml() -> None:
    for rule in DEFAULT_RULES:
        text = rule_yaml(rule_document(rule))
        again = parse_rule(load_rule_yaml(text), 0, DEFAULT_DOCUMENT["lists"])
        assert rule_view(again) == rule_view(rule), rule.id
        detail = rule_detail(rule_view(rule))
        assert detail.yaml == text
        assert detail.etag == rule_etag(rule_view(rule))


def test_a_rules_etag_changes_exactly_when_the_rule_does() -> None:
    document = load_rule_document(DEFAULT_TEXT, "file:default_rules.yaml")
    raw = document["rules"][0]
    rule = next(r for r in DEFAULT_RULES if r.id == raw["id"])
    tag = rule_etag(rule_view(rule))
    assert re.fullmatch(r'"[0-9a-f]{32}"', tag)
    assert raw_rule_etag(raw) == tag  # as written in the file and as the engine reads it
    reordered = dict(reversed(list(raw.items())))
    assert raw_rule_etag(reordered) == tag  # key order and layout are not the rule
    assert raw_rule_etag({**raw, "enabled": False}) != tag
    assert raw_rule_etag({**raw, "title": raw["title"] + "!"}) != tag
    assert raw_rule_etag({**raw, "severity": "urgent"}) is None  # not a valid rule: matches nothing
    tags = {rule_etag(rule_view(r)) for r in DEFAULT_RULES}
    assert len(tags) == len(DEFAULT_RULES)


def test_check_version() -> None:
    document = load_rule_document(DEFAULT_TEXT, "file:default_rules.yaml")
    raw = document["rules"][2]
    rule_id, tag = raw["id"], raw_rule_etag(raw)
    assert tag is not None
    check_version(document, rule_id, None)
    check_version(document, rule_id, {tag})
    check_version(document, rule_id, {'"other"', tag})
    check_version(document, rule_id, {ANY_VERSION})
    with pytest.raises(RuleChangedError, match="changed since"):
        check_version(document, rule_id, {'"0123"'})
    with pytest.raises(RuleChangedError, match="changed since"):
        check_version(document, rule_id, set())  # only weak tags were sent
    with pytest.raises(RuleChangedError, match="no longer exists"):
        check_version(document, "custom.gone", {ANY_VERSION})


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ('"abc"', {'"abc"'}),
        (' "abc" , "def"', {'"abc"', '"def"'}),
        ("*", {ANY_VERSION}),
        (" * ", {ANY_VERSION}),
        ('W/"abc"', set()),
        ('W/"abc", "def"', {'"def"'}),
    ],
)
def test_if_match_is_read_as_entity_tags(value: str | None, expected: set[str] | None) -> None:
    headers = {} if value is None else {"if-match": value}
    assert if_match(headers) == (None if expected is None else frozenset(expected))


@pytest.mark.parametrize(
    "value", ["abc", '"abc', '"a"b"', '"a" "b"', "", ",", '"é"', '"a\x00"', '"' + "a" * 1000 + '"', '*, "a"']
)
def test_a_malformed_if_match_is_a_400(value: str) -> None:
    with pytest.raises(ApiProblem) as caught:
        if_match({"If-Match": value})
    assert caught.value.status == 400
    assert caught.value.errors == [{"field": "If-Match", "message": caught.value.detail}]


def test_a_rules_yaml_reads_like_the_shipped_file() -> None:
    rule = next(r for r in DEFAULT_RULES if r.id == "entra.bulk-user-deletion")
    lines = rule_yaml(rule_document(rule)).splitlines()
    assert lines[0] == "id: entra.bulk-user-deletion"
    assert lines[2].startswith("description: ")
    assert lines[2].endswith(rule.description)  # long text stays on its field's line
    assert "mitre: [T1531]" in lines
    assert "threshold: {count: 10, window_minutes: 10.0}" in lines
    assert lines[-3:] == [
        "  all:",
        "    - {field: operation, in: [Delete user, Hard Delete user]}",
        "    - {field: result, neq: failure}",
    ]
