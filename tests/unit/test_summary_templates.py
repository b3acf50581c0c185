"""Every summary template in shared/ingestion/mappings.yaml, with every optional value missing and with
a failed result (issue 15, acceptance 3).

The templates are read from the parsed file, never listed here: a template added to mappings.yaml is
covered the moment it exists. For each operation (and each source's default) the test builds an event
in which every placeholder of the operation's templates has a value, then renders the summary with each
placeholder's value removed one at a time and all at once, for a success, a failure with a reason and a
code, a failure without either, and an unknown result. Every summary must be complete (no gap, no
dangling punctuation), and a failure summary must say that the action failed.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import yaml

from shared.ingestion.events import Event
from shared.ingestion.normalize.mappings import (
    DEFAULT_MAPPINGS_PATH,
    PARAMETRIZED_PLACEHOLDERS,
    PLACEHOLDERS,
    OperationTemplates,
    Template,
    load_mappings,
)

MAPPINGS = load_mappings()
REASON = "quota exceeded"
RESULT_CODE = 50126
UNMAPPED_OPERATION = "Operation without a template of its own"
# Required by the Event model, so never missing from a stored event.
REQUIRED = frozenset(("operation", "service", "result", "actor_type"))
DANGLING_ENDINGS = (":", ",", "(", " and", " to", " of", " from", " on", " with", " for", " by")
GAP_MARKERS = ("?", "None", "{", "}", "  ", "()", "''", " ,", " :", "( ", " )", ": :")


def minimal_event(**overrides: Any) -> dict[str, Any]:
    """The smallest event dict that validates as an Event (shared/ingestion/events.py)."""
    doc: dict[str, Any] = {
        "id": "o365:4a1f0f4e-8a8e-4c55-9d43-6b1c2f0a9e11",
        "pk": "41463f53-8812-40f4-890f-865bf6e35190:2026-11",
        "tenant_id": "41463f53-8812-40f4-890f-865bf6e35190",
        "source": "o365_management",
        "service": "Other",
        "category": None,
        "operation": UNMAPPED_OPERATION,
        "operation_type": "other",
        "result": "success",
        "result_reason": None,
        "result_code": None,
        "actor": {
            "type": "unknown",
            "id": None,
            "upn": None,
            "display": None,
            "ip": None,
            "client_app": None,
        },
        "targets": [],
        "timestamp": "2026-11-10T09:15:00.000Z",
        "ingested_at": "2026-11-10T09:20:00.000Z",
        "correlation_id": None,
        "summary": "",
        "tags": [],
        "raw_ref": None,
        "raw": None,
    }
    doc.update(overrides)
    return doc


def _target(kind: str, name: str) -> dict[str, Any]:
    return {"type": kind, "id": f"id-{name.replace(' ', '-')}", "display": name, "modified_properties": []}


def full_event(source: str, operation: str, placeholders: set[str]) -> dict[str, Any]:
    """An event in which each of `placeholders` has a value (and so do the other plain ones)."""
    first = _target("User", "Alex Wilber")
    first["modified_properties"] = [{"name": "DisplayName", "old": "Alex W", "new": "Alex Wilber"}]
    targets = [first, _target("Group", "Sales Team")]
    for name in sorted(placeholders):
        kind, colon, argument = name.partition(":")
        if not colon:
            continue
        if kind in ("property", "old"):
            first["modified_properties"].append(
                {"name": argument, "old": f"old {argument}", "new": f"new {argument}"}
            )
        elif kind == "target":
            targets.append(_target(argument, f"{argument} One"))
        elif kind == "targets":
            targets.extend(_target(argument, f"{argument} {number}") for number in range(1, 6))
    targets.append(_target("Application", "Outlook"))
    doc = minimal_event(
        source=source,
        service="Directory",
        category="UserManagement",
        operation=operation,
        actor={
            "type": "user",
            "id": "3f2a9c4e-1b7d-4e8a-9c61-2d5b8e7f0a13",
            "upn": "jane.doe@contoso.onmicrosoft.com",
            "display": "Jane Doe",
            "ip": "203.0.113.24",
            "client_app": {"id": "4765445b-32c6-49b0-83e6-1d93765276ca", "name": "Microsoft Office"},
        },
        targets=targets,
        signin={"location": {"city": "Seattle", "state": "Washington", "country": "US"}},
        dlp={
            "policy": "U.S. Financial Data",
            "rule": "Credit card numbers",
            "severity": "High",
            "sensitive_types": ["Credit Card Number", "U.S. Bank Account Number"],
        },
        security_alert={
            "name": "Email forwarding/redirect rule",
            "severity": "Medium",
            "category": "ThreatManagement",
            "entity": "alexw@contoso.onmicrosoft.com",
        },
    )
    Event.model_validate(doc)
    return doc


def _clear_property(side: str | None) -> Callable[[dict[str, Any], str], None]:
    def clear(doc: dict[str, Any], name: str) -> None:
        for target in doc["targets"]:
            kept = []
            for prop in target["modified_properties"]:
                if prop["name"].casefold() == name.casefold():
                    if side is None:
                        continue
                    prop[side] = None
                kept.append(prop)
            target["modified_properties"] = kept

    return clear


def _drop_targets(kinds: set[str]) -> Callable[[dict[str, Any], str], None]:
    def clear(doc: dict[str, Any], argument: str) -> None:
        wanted = {kind.casefold() for kind in kinds} | ({argument.casefold()} if argument else set())
        doc["targets"] = [
            target for target in doc["targets"] if (target["type"] or "").casefold() not in wanted
        ]

    return clear


def _set(*path: str) -> Callable[[dict[str, Any], str], None]:
    def clear(doc: dict[str, Any], _: str) -> None:
        holder = doc
        for key in path[:-1]:
            holder = holder[key]
        holder[path[-1]] = [] if path[-1] == "sensitive_types" else None

    return clear


def _clear_actor(doc: dict[str, Any], _: str) -> None:
    doc["actor"].update(id=None, upn=None, display=None)


def _clear_severity(doc: dict[str, Any], _: str) -> None:
    doc["dlp"]["severity"] = None
    doc["security_alert"]["severity"] = None


def _clear_properties(doc: dict[str, Any], _: str) -> None:
    for target in doc["targets"]:
        target["modified_properties"] = []


def _keep_first_target(doc: dict[str, Any], _: str) -> None:
    doc["targets"] = doc["targets"][:1]


def _clear_first_target_type(doc: dict[str, Any], _: str) -> None:
    for target in doc["targets"][:1]:
        target["type"] = None


def _no_targets(doc: dict[str, Any], _: str) -> None:
    doc["targets"] = []


# How each placeholder loses its value in a valid event (the argument is the {kind:ARGUMENT} part).
CLEARERS: dict[str, Callable[[dict[str, Any], str], None]] = {
    "actor": _clear_actor,
    "actor_upn": _set("actor", "upn"),
    "client_app": _set("actor", "client_app"),
    "ip": _set("actor", "ip"),
    "target": _no_targets,
    "target2": _keep_first_target,
    "targets": _no_targets,
    "target_type": _clear_first_target_type,
    "app": _drop_targets({"Application", "ServicePrincipal"}),
    "properties": _clear_properties,
    "old_value": _clear_properties,
    "new_value": _clear_properties,
    "category": _set("category"),
    "reason": _set("result_reason"),
    "result_code": _set("result_code"),
    "country": _set("signin", "location", "country"),
    "city": _set("signin", "location", "city"),
    "dlp_policy": _set("dlp", "policy"),
    "dlp_rule": _set("dlp", "rule"),
    "sensitive_types": _set("dlp", "sensitive_types"),
    "alert_name": _set("security_alert", "name"),
    "alert_category": _set("security_alert", "category"),
    "alert_entity": _set("security_alert", "entity"),
    "severity": _clear_severity,
}
PARAMETRIZED_CLEARERS: dict[str, Callable[[dict[str, Any], str], None]] = {
    "property": _clear_property(None),
    "old": _clear_property("old"),
    "target": _drop_targets(set()),
    "targets": _drop_targets(set()),
}


def clear(doc: dict[str, Any], placeholder: str) -> None:
    kind, colon, argument = placeholder.partition(":")
    if colon:
        PARAMETRIZED_CLEARERS[kind](doc, argument)
    else:
        CLEARERS[placeholder](doc, "")


def template_groups() -> Iterator[tuple[str, str, str, OperationTemplates]]:
    """(id, source, operation, templates) for every operation and default in the parsed file."""
    yield "default", "not_a_configured_source", UNMAPPED_OPERATION, MAPPINGS.default
    for source, summaries in MAPPINGS.sources.items():
        yield f"{source}:default", source, UNMAPPED_OPERATION, summaries.default
        for operation, templates in summaries.operations.items():
            yield f"{source}:{operation}", source, operation, templates


GROUPS = list(template_groups())


def assert_complete(summary: str, context: str) -> None:
    assert summary, context
    assert summary == summary.strip(), f"{context}: blank at an end: {summary!r}"
    for marker in GAP_MARKERS:
        assert marker not in summary, f"{context}: {marker!r} in {summary!r}"
    assert not summary.endswith(DANGLING_ENDINGS), f"{context}: dangling end: {summary!r}"


def test_the_groups_cover_every_operation_in_the_file() -> None:
    raw = yaml.safe_load(DEFAULT_MAPPINGS_PATH.read_text(encoding="utf-8"))["summaries"]
    written = sum(len(config.get("operations") or {}) for config in raw["sources"].values())
    parsed = sum(1 for name, *_ in GROUPS if not name.endswith("default"))
    assert parsed == written > 150
    assert {source for _, source, _, _ in GROUPS} >= set(raw["sources"])


def test_every_placeholder_has_a_way_to_lose_its_value() -> None:
    """A placeholder added to the renderer must be added here, so the test removes its value too."""
    assert set(PLACEHOLDERS) - REQUIRED == set(CLEARERS)
    assert set(PARAMETRIZED_PLACEHOLDERS) == set(PARAMETRIZED_CLEARERS)


@pytest.mark.parametrize(("name", "source", "operation", "templates"), GROUPS, ids=[g[0] for g in GROUPS])
def test_every_template_renders_complete_with_all_its_values(
    name: str, source: str, operation: str, templates: OperationTemplates
) -> None:
    for template in templates.success + templates.failure:
        doc = full_event(source, operation, set(template.placeholders))
        rendered = template.render(doc)
        assert rendered is not None, f"{name}: {template.source!r} lacks a value in the full event"
        assert_complete(rendered, f"{name}: {template.source!r}")


@pytest.mark.parametrize(("name", "source", "operation", "templates"), GROUPS, ids=[g[0] for g in GROUPS])
def test_no_template_is_shadowed_by_an_earlier_one(
    name: str, source: str, operation: str, templates: OperationTemplates
) -> None:
    """A template whose placeholders include all of an earlier one's can never be chosen."""
    for phrasing in (templates.success, templates.failure):
        for index, later in enumerate(phrasing):
            for earlier in phrasing[:index]:
                assert not set(earlier.placeholders) <= set(later.placeholders), (
                    f"{name}: {later.source!r} can never win over {earlier.source!r}"
                )


def _variants(
    source: str, operation: str, templates: OperationTemplates
) -> Iterator[tuple[str, dict[str, Any]]]:
    placeholders = {
        name for template in templates.success + templates.failure for name in template.placeholders
    }
    full = full_event(source, operation, placeholders)
    yield "all values", full
    removable = sorted(placeholders - REQUIRED)
    for placeholder in removable:
        doc = copy.deepcopy(full)
        clear(doc, placeholder)
        yield f"without {{{placeholder}}}", doc
    everything = copy.deepcopy(full)
    for placeholder in (*removable, *CLEARERS):
        clear(everything, placeholder)
    yield "without any optional value", everything


@pytest.mark.parametrize(("name", "source", "operation", "templates"), GROUPS, ids=[g[0] for g in GROUPS])
def test_summaries_stay_complete_with_values_missing_and_say_when_the_action_failed(
    name: str, source: str, operation: str, templates: OperationTemplates
) -> None:
    for variant, doc in _variants(source, operation, templates):
        Event.model_validate(doc)
        for result, reason, code in (
            ("success", None, None),
            ("unknown", None, None),
            ("failure", REASON, RESULT_CODE),
            ("failure", REASON, None),
            ("failure", None, None),
        ):
            event = {**doc, "result": result, "result_reason": reason, "result_code": code}
            summary = MAPPINGS.summarize(source, event)
            context = f"{name}, {variant}, {result} (reason {reason!r}, code {code!r})"
            assert_complete(summary, context)
            if result == "failure":
                assert "failed" in summary.casefold(), f"{context}: {summary!r} does not say it failed"
                if reason is not None:
                    assert REASON in summary, f"{context}: {summary!r} leaves the reason out"
            else:
                assert "failed to" not in summary, f"{context}: {summary!r} claims a failure"


@pytest.mark.parametrize(("name", "source", "operation", "templates"), GROUPS, ids=[g[0] for g in GROUPS])
def test_each_operation_uses_its_own_templates(
    name: str, source: str, operation: str, templates: OperationTemplates
) -> None:
    """With every value present, the summary is the operation's first template (for a failure, its
    first failure template), so a shipped template is never silently bypassed."""
    placeholders = {
        name for template in templates.success + templates.failure for name in template.placeholders
    }
    doc = full_event(source, operation, placeholders)
    expected: dict[str, Template | None] = {
        "success": templates.success[0] if templates.success else None,
        "failure": templates.failure[0] if templates.failure else None,
    }
    for result, template in expected.items():
        if template is None:
            continue
        event = {**doc, "result": result, "result_reason": None, "result_code": None}
        assert MAPPINGS.summarize(source, event) == template.render(event), f"{name}: {result}"
