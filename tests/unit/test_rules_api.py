"""The pure parts of the rule and status routes: editing the rule file document (shared/rules/editing.py),
the canonical rule form, problems named by field, and the documented models (shared/api/rules_api.py,
status_api.py)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from shared.api.openapi import openapi_document
from shared.api.rules_api import (
    RuleDefinition,
    RulesApi,
    RulesDocument,
    RuleTestResult,
    RuleView,
    invalid_rule,
    rule_detail,
)
from shared.api.status_api import StatusApi, run_summary
from shared.ingestion.sources.graph import SourceRunResult
from shared.probe.poller import PollReport
from shared.probe.service import ScopeResult
from shared.probe.state import ChangeSummary, Trigger
from shared.rules.editing import (
    RuleFileUnreadableError,
    condition_document,
    dump_rule_file,
    load_rule_document,
    replace_rule,
    rule_document,
    rule_error_details,
    rule_etag,
    rule_view,
    set_enabled,
    view_document,
)
from shared.rules.engine import BusinessHours
from shared.rules.model import RuleError, parse_rule, parse_rule_file
from shared.rules.source import DEFAULT_RULES_FILE, compile_rules

HOURS = BusinessHours.parse("08:00-18:00", "Mon-Fri", "Europe/London")
DEFAULT_TEXT = DEFAULT_RULES_FILE.read_text(encoding="utf-8")
DEFAULT_RULE_COUNT = len(yaml.safe_load(DEFAULT_TEXT)["rules"])


@pytest.fixture
def document() -> dict[str, Any]:
    return load_rule_document(DEFAULT_TEXT, "file:default_rules.yaml")


def ids(document: dict[str, Any]) -> list[str]:
    return [r["id"] for r in document["rules"]]


NEW_RULE = {
    "id": "custom.delete-user",
    "title": "User deleted",
    "description": "Any user deletion.",
    "severity": "low",
    "when": {"field": "operation", "eq": "Delete user"},
}


def test_replace_rule_replaces_in_place_and_keeps_everything_else(document: dict[str, Any]) -> None:
    original = copy.deepcopy(document)
    target = document["rules"][3]["id"]
    replacement = {**NEW_RULE, "id": target}

    updated, before = replace_rule(document, replacement)

    assert document == original  # the input is not changed
    assert before == original["rules"][3]
    assert ids(updated) == ids(original)
    assert updated["rules"][3] == replacement
    assert updated["rules"][:3] == original["rules"][:3]
    assert updated["rules"][4:] == original["rules"][4:]
    assert updated["lists"] == original["lists"]
    assert list(updated) == list(original)  # version, lists, rules: key order kept


def test_replace_rule_appends_a_new_rule(document: dict[str, Any]) -> None:
    updated, before = replace_rule(document, NEW_RULE)
    assert before is None
    assert ids(updated) == [*ids(document), "custom.delete-user"]
    assert updated["rules"][-1] == NEW_RULE


def test_set_enabled_switches_one_rule_only(document: dict[str, Any]) -> None:
    target = "entra.app-registered"
    updated, before, after = set_enabled(document, target, False)
    assert before.get("enabled", True) is True
    assert after == {**before, "enabled": False}
    changed = [r["id"] for r, o in zip(updated["rules"], document["rules"], strict=True) if r != o]
    assert changed == [target]

    again, before_again, after_again = set_enabled(updated, target, True)
    assert before_again["enabled"] is False
    assert after_again["enabled"] is True
    assert ids(again) == ids(document)


def test_set_enabled_of_an_unknown_rule_is_a_key_error(document: dict[str, Any]) -> None:
    with pytest.raises(KeyError):
        set_enabled(document, "no.such-rule", False)


def test_the_canonical_form_of_every_default_rule_parses_back_to_the_same_rule() -> None:
    rule_file = parse_rule_file(yaml.safe_load(DEFAULT_TEXT))
    assert len(rule_file.rules) == DEFAULT_RULE_COUNT
    for rule in rule_file.rules:
        stored = rule_document(rule)
        assert parse_rule(stored, 0, rule_file.lists) == rule, rule.id
        assert list(stored)[-1] == "when"
        assert stored["enabled"] is True
        view = rule_view(rule)
        assert RuleView.model_validate(view).model_dump(mode="json") == view
        assert parse_rule(view, 0, rule_file.lists) == rule, rule.id


def test_condition_document_uses_the_file_spelling() -> None:
    rule = parse_rule(
        {
            **NEW_RULE,
            "when": {
                "all": [
                    {"field": "operation", "in": ["A", "B"]},
                    {"not": {"field": "result", "eq": "failure", "case_sensitive": True}},
                ]
            },
        },
        0,
        {},
    )
    assert condition_document(rule.when) == {
        "all": [
            {"field": "operation", "in": ["A", "B"]},
            {"not": {"field": "result", "eq": "failure", "case_sensitive": True}},
        ]
    }


def test_rule_document_leaves_unset_fields_out_but_keeps_enabled() -> None:
    rule = parse_rule({**NEW_RULE, "enabled": False}, 0, {})
    assert rule_document(rule) == {
        "id": "custom.delete-user",
        "title": "User deleted",
        "description": "Any user deletion.",
        "severity": "low",
        "enabled": False,
        "when": {"field": "operation", "eq": "Delete user"},
    }
    view = rule_view(rule)
    assert view["threshold"] is None
    assert view["mitre"] == []


def test_an_edited_file_dumps_to_yaml_that_compiles_and_keeps_its_lists(document: dict[str, Any]) -> None:
    updated, _ = replace_rule(document, NEW_RULE)
    updated, _, _ = set_enabled(updated, "entra.oauth-consent", False)
    text = dump_rule_file(updated)

    reloaded = yaml.safe_load(text)
    assert reloaded["lists"] == document["lists"]
    assert reloaded["version"] == 1
    assert list(reloaded) == ["version", "lists", "rules"]
    rule_set = compile_rules(text, HOURS, "blob:rules.yaml", {"internal_domains": ["contoso.com"]})
    assert len(rule_set.rules) == DEFAULT_RULE_COUNT + 1
    assert [c.id for c in rule_set.compiled if c.id == "entra.oauth-consent"] == []
    assert rule_set.get("custom.delete-user") is not None
    # the lists given by settings apply, but are never written into the file
    assert rule_set.rule_file.lists["internal_domains"] == ["contoso.com"]
    assert reloaded["lists"]["internal_domains"] == []


def test_problems_name_the_field_of_the_rule_being_saved(document: dict[str, Any]) -> None:
    broken = {**NEW_RULE, "severity": "urgent", "when": {"field": "actor.upn", "regex": "(admin"}}
    updated, _ = replace_rule(document, broken)
    with pytest.raises(RuleError) as caught:
        compile_rules(dump_rule_file(updated), HOURS, "blob:rules.yaml")
    details = rule_error_details(caught.value, "custom.delete-user")
    fields = [d["field"] for d in details]
    assert fields == ["severity", "when.regex"]
    assert "invalid regex" in details[1]["message"]
    assert all("custom.delete-user" not in d["message"] for d in details)

    problem = invalid_rule(caught.value, "custom.delete-user")
    assert problem.status == 400
    assert problem.kind == "invalid-rule"
    assert problem.detail.startswith("severity: ")
    assert [e["field"] for e in problem.errors] == fields


def test_problems_of_other_rules_and_list_references_are_named_too(document: dict[str, Any]) -> None:
    missing_list = {**NEW_RULE, "when": {"field": "operation", "in": "$no_such_list"}}
    updated, _ = replace_rule(document, missing_list)
    updated["rules"][0] = {**updated["rules"][0], "title": ""}
    with pytest.raises(RuleError) as caught:
        compile_rules(dump_rule_file(updated), HOURS, "blob:rules.yaml")
    fields = {d["field"] for d in rule_error_details(caught.value, "custom.delete-user")}
    assert fields == {"when.in", "rules.entra.global-admin-added.title"}
    # with no rule named, every problem is about the one rule given
    lone = rule_error_details(RuleError(["rules[0]: severity: bad", "something else"]), None)
    assert lone == [{"field": "severity", "message": "bad"}, {"field": "rules", "message": "something else"}]


@pytest.mark.parametrize(
    "text", ["rules: [unbalanced\n", "- just\n- a list\n", "version: 1\nrules: {}\n", ""]
)
def test_an_unreadable_override_is_refused_naming_it(text: str) -> None:
    with pytest.raises(RuleFileUnreadableError) as caught:
        load_rule_document(text, "blob:rules.yaml")
    assert "blob:rules.yaml" in str(caught.value)


def test_run_summary_counts() -> None:
    trigger = Trigger(
        trigger_id="s:1",
        scope="s",
        reason="r",
        summary=ChangeSummary(
            count=2,
            first_change_at="2026-11-01T00:00:00.000Z",
            last_change_at="2026-11-01T00:01:00.000Z",
            actors=[],
            top_operations=[],
            services=[],
        ),
        checked_at="2026-11-01T00:10:00.000Z",
    )
    report = PollReport(
        run_id="abc",
        started_at="2026-11-01T00:10:00.000Z",
        sources=[
            SourceRunResult(source="entra_audit", pages=2, records=150),
            SourceRunResult(source="intune_audit", pages=1, records=3, expired_skipped=1),
            SourceRunResult(source="entra_signin", error="HTTPError: 503"),
        ],
        probe=[
            ScopeResult(scope="s", phase="cooldown", changes_seen=2, trigger=trigger),
            ScopeResult(scope="t", phase="idle", changes_seen=0),
        ],
    )
    assert run_summary(report) == {
        "run_id": "abc",
        "sources": 3,
        "failed_sources": 1,
        "pages": 3,
        "records": 153,
        "expired_skipped": 1,
        "probe_scopes": 2,
        "triggers": 1,
        "probe_failed": False,
    }


def test_route_docs_generate_an_openapi_document() -> None:
    routes = RulesApi.routes() + StatusApi.routes()
    assert [(r.method, r.path) for r in routes] == [
        ("GET", "rules"),
        ("GET", "rules/{id}"),
        ("PUT", "rules/{id}"),
        ("POST", "rules/test"),
        ("GET", "status"),
        ("GET", "version"),
        ("POST", "probe/run"),
    ]
    document = openapi_document(routes, title="AOC", version="test")
    schemas = document["components"]["schemas"]
    for name in (
        "RuleListItem",
        "RuleDetail",
        "RulesDocument",
        "RuleDefinition",
        "RuleTestRequest",
        "StatusDocument",
        "VersionOut",
    ):
        assert name in schemas
    assert schemas["RuleDetail"]["properties"]["when"]["type"] == "object"
    assert schemas["RuleDefinition"]["additionalProperties"] is False
    put = document["paths"]["/api/rules/{id}"]["put"]
    assert put["parameters"][0]["name"] == "id"
    assert "Needs the AOC.Admin role." in put["description"]
    assert set(put["responses"]) >= {"200", "400", "401", "403", "404", "409", "412"}
    assert "If-Match" in put["description"]
    assert "If-Match" in [p["name"] for p in put["parameters"] if p["in"] == "header"]
    assert put["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/RuleDetail")
    assert "yaml" in schemas["RuleDefinition"]["properties"]
    assert set(schemas["RuleTestRequest"]["properties"]) == {"rule", "yaml", "last"}
    view_schema = RuleView.model_json_schema()
    assert schemas["RuleDetail"]["required"] == [*view_schema["required"], "etag", "yaml"]
    assert set(schemas["RuleListItem"]["properties"]) == {
        *view_schema["properties"],
        "etag",
        "last_7_days",
    }
    one = document["paths"]["/api/rules/{id}"]["get"]
    assert "Needs the AOC.Reader role." in one["description"]
    assert set(one["responses"]) >= {"200", "401", "403", "404"}
    status = document["paths"]["/api/status"]["get"]
    assert "Needs the AOC.Reader role." in status["description"]
    assert status["parameters"] == []
    assert document["paths"]["/api/probe/run"]["post"]["responses"]["200"]["content"]["application/json"]


def test_the_documented_models_accept_what_the_routes_return() -> None:
    rule_set = compile_rules(DEFAULT_TEXT, HOURS, "file:default_rules.yaml")
    views = [rule_view(r) for r in rule_set.rules]
    items = [{**v, "etag": rule_etag(v), "last_7_days": {"matches": 3, "alerts": 1}} for v in views]
    RulesDocument.model_validate(
        {"origin": "file:x", "overridden": False, "version": "v", "count": len(views), "rules": items}
    )
    for view in views:
        RuleDefinition.model_validate(view)
        assert RuleView.model_validate(view).model_dump(mode="json") == view  # nothing dropped
        detail = rule_detail(view)
        assert detail.etag == rule_etag(view)
        assert yaml.safe_load(detail.yaml) == view_document(view)
    RuleTestResult.model_validate(
        {
            "rule_id": "x",
            "evaluated": 1,
            "matched": 1,
            "matches": [{"id": "e", "timestamp": "t", "group": {"actor.upn": "a"}}],
            "truncated": False,
            "threshold_evaluated": False,
        }
    )
