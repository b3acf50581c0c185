"""The rule routes: GET /api/rules, PUT /api/rules/{id} and POST /api/rules/test.

Editing the rule file (validation of the whole file, ETag-guarded saves, canonical form) is
shared.rules.editing's; this module turns its outcomes into answers and problems, audits each save,
and evaluates a rule under test against the newest events the caller may see.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from azure.storage.blob import ContainerClient
from pydantic import BaseModel, ConfigDict, Field

from shared.api.audit import AuditLog
from shared.api.auth import Role
from shared.api.events_query import EventQuery, EventSearch, SensitivityPolicy
from shared.api.problems import ApiProblem, bad_request, conflict
from shared.api.responses import ApiGuard, not_found
from shared.api.routing import Call, NoQuery, PathParam, Reply, Resource, route
from shared.platform.clock import Clock
from shared.platform.ids import is_rule_id
from shared.rules.editing import MAX_SAVE_ATTEMPTS as MAX_SAVE_ATTEMPTS
from shared.rules.editing import (
    RuleFileEditor,
    RuleFileUnreadableError,
    RuleSaveConflictError,
    UnknownRuleError,
    rule_error_details,
)
from shared.rules.editing import rule_view as rule_view
from shared.rules.engine import BusinessHours, compile_rule
from shared.rules.model import RuleError, Scalar, Severity, Threshold, parse_rule
from shared.rules.source import DEFAULT_RULES_FILE, RULES_BLOB, RuleSource

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 256 * 1024
MAX_TEST_EVENTS = 5000
DEFAULT_TEST_EVENTS = 500
TEST_PAGE_SIZE = 200
MAX_REPORTED_MATCHES = 50
TEST_RULE_ID = "rule.under-test"
THRESHOLD_NOTE = (
    "threshold rule: every event that satisfies the condition is listed; whether {count} of them fell "
    "within {window:g} minutes of each other (per group) is not evaluated here"
)
RULE_ID = PathParam(
    "id",
    "the rule id, e.g. entra.global-admin-added",
    "rule",
    is_rule_id,
    max_length=80,
    refusal="an id is 3-80 lower-case letters, digits, '.', '_' or '-'",
)


# --- documented models -------------------------------------------------------------------------------


class RuleView(BaseModel):
    """One rule as the engine reads it. PUT accepts this same shape back."""

    id: str
    title: str
    description: str
    severity: Severity
    mitre: list[str] = Field(description="MITRE ATT&CK technique ids")
    enabled: bool
    tags: list[str]
    group_by: list[str] = Field(description="field paths; alternatives joined by '|'")
    threshold: Threshold | None = None
    suppress_minutes: float | None = None
    when: dict[str, Any] = Field(
        description="the condition: a predicate {field, <operator>: operand} or all / any / not / some"
    )


class RulesDocument(BaseModel):
    origin: str = Field(
        description="file:default_rules.yaml, or blob:rules.yaml when the override is in force"
    )
    overridden: bool = Field(description="true when the override blob is in force")
    version: str = Field(description="hash of the rule file text in force")
    last_error: str | None = Field(
        default=None, description="why the latest override blob was refused (the rules above stay in force)"
    )
    count: int
    rules: list[RuleView]


class RuleDefinition(BaseModel):
    """A rule as written in the YAML rule file. `id` may be left out; given, it must equal the path's.

    A body of only `enabled` (and optionally `id`) enables or disables an existing rule unchanged."""

    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(default=None, max_length=80)
    title: str | None = Field(default=None, max_length=200)
    description: str | None = Field(default=None, max_length=4000)
    severity: Severity | None = None
    mitre: list[str] = Field(default_factory=list)
    enabled: bool = True
    tags: list[str] = Field(default_factory=list)
    group_by: list[str] = Field(default_factory=list, max_length=4)
    threshold: Threshold | None = None
    suppress_minutes: float | None = Field(default=None, ge=0, le=7 * 24 * 60)
    when: dict[str, Any] | None = Field(
        default=None,
        description="the condition: a predicate {field, <operator>: operand} or all / any / not / some",
    )


class RuleTestRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rule: dict[str, Any] = Field(description="a rule definition, as for PUT /api/rules/{id}; id optional")
    last: int = Field(
        default=DEFAULT_TEST_EVENTS,
        ge=1,
        le=MAX_TEST_EVENTS,
        description="how many of the newest events (last 30 days) to evaluate",
    )


class RuleTestMatch(BaseModel):
    id: str
    timestamp: str | None = None
    service: str | None = None
    operation: str | None = None
    actor: str | None = None
    group: dict[str, str] = Field(default_factory=dict, description="the rule's group_by values")


class RuleTestResult(BaseModel):
    rule_id: str
    evaluated: int = Field(description="events evaluated (newest first; hidden events excluded)")
    matched: int
    matches: list[RuleTestMatch] = Field(description=f"the first {MAX_REPORTED_MATCHES} matching events")
    truncated: bool = Field(description=f"more than {MAX_REPORTED_MATCHES} events matched")
    threshold_evaluated: bool = Field(
        description="always false: a threshold rule's count is not evaluated, each match is listed"
    )
    note: str | None = None


# --- problems ---------------------------------------------------------------------------------------


def invalid_rule(error: RuleError, rule_id: str | None) -> ApiProblem:
    """A 400 listing each problem with the field at fault (shared.rules.editing.rule_error_details)."""
    details = rule_error_details(error, rule_id)
    first = details[0] if details else {"field": "body", "message": "invalid rule"}
    return ApiProblem(
        400, "Bad Request", f"{first['field']}: {first['message']}", kind="invalid-rule", errors=details
    )


def _nested(problem: ApiProblem, prefix: str) -> ApiProblem:
    """The same problem with every field named under `prefix` (the rule sits at `rule` in the body)."""
    errors = [{**e, "field": f"{prefix}.{e['field']}"} for e in problem.errors]
    first = errors[0] if errors else {"field": prefix, "message": problem.detail}
    return ApiProblem(
        problem.status,
        problem.title,
        f"{first['field']}: {first['message']}",
        kind=problem.kind,
        errors=errors,
    )


def _json_safe(value: Any) -> Any:
    """A YAML value (dates included) as plain JSON, for the audit log."""
    return json.loads(json.dumps(value, ensure_ascii=False, default=str))


def _actor(event: Mapping[str, Any]) -> str | None:
    actor = event.get("actor")
    if not isinstance(actor, dict):
        return None
    value = actor.get("upn") or actor.get("display") or actor.get("id")
    return str(value) if value else None


# --- the routes -------------------------------------------------------------------------------------


class RulesApi(Resource):
    def __init__(
        self,
        guard: ApiGuard,
        rule_source: RuleSource,
        config_container: ContainerClient,
        search: EventSearch,
        audit: AuditLog,
        hours: BusinessHours,
        clock: Clock,
        *,
        blob_name: str = RULES_BLOB,
        default_file: Path = DEFAULT_RULES_FILE,
        extra_lists: dict[str, list[Scalar]] | None = None,
    ) -> None:
        self.guard = guard
        self._rule_source = rule_source
        self._editor = RuleFileEditor(
            config_container, hours, blob_name=blob_name, default_file=default_file, extra_lists=extra_lists
        )
        self._search = search
        self._audit = audit
        self._hours = hours
        self._clock = clock

    @route(
        "GET",
        "rules",
        "list_rules",
        operation_id="listRules",
        role=Role.READER,
        summary="The alert rules in force",
        query=NoQuery,
        body=None,
        response=RulesDocument,
        description="Every rule of the rule file in force (disabled ones included), with its origin.",
    )
    def list_rules(self, call: Call[NoQuery, None]) -> Reply:
        rules = self._rule_source.current()
        return RulesDocument(
            origin=rules.origin,
            overridden=rules.origin.startswith("blob:"),
            version=rules.version,
            last_error=self._rule_source.last_error,
            count=len(rules.rules),
            rules=[RuleView.model_validate(rule_view(r)) for r in rules.rules],
        )

    @route(
        "PUT",
        "rules/{id}",
        "put_rule",
        operation_id="putRule",
        role=Role.ADMIN,
        summary="Replace, add, enable or disable one rule",
        query=NoQuery,
        body=RuleDefinition,
        raw_body=True,  # the rule engine validates it, naming each field at fault
        max_body_bytes=MAX_BODY_BYTES,
        response=RuleView,
        path_params=(RULE_ID,),
        description=(
            "Writes the override blob config/rules.yaml (from the shipped rules when there is none) after "
            "validating the whole resulting file. A 400 lists each problem with the field at fault."
        ),
    )
    def put_rule(self, call: Call[NoQuery, dict[str, Any]]) -> Reply:
        rule_id, definition, principal = call.params["id"], call.body, call.principal
        if "id" in definition and definition["id"] != rule_id:
            raise bad_request(f"the body's id must equal the path's id {rule_id!r}", field="id")
        toggle_only = set(definition) <= {"id", "enabled"} and "enabled" in definition
        if toggle_only and not isinstance(definition["enabled"], bool):
            raise bad_request("enabled must be true or false", field="enabled")
        try:
            if toggle_only:
                before, saved = self._editor.set_enabled(rule_id, definition["enabled"])
            else:
                before, saved = self._editor.replace(rule_id, definition)
        except RuleError as exc:
            raise invalid_rule(exc, rule_id) from None
        except UnknownRuleError:
            raise not_found("rule", rule_id) from None
        except RuleFileUnreadableError as exc:
            raise ApiProblem(409, "Conflict", str(exc), kind="rules-file-unreadable") from None
        except RuleSaveConflictError:
            raise conflict(
                "the rule file kept changing while saving: read the rules again and retry"
            ) from None
        self._rule_source.invalidate()
        self._audit.record(
            principal,
            "rule.update",
            "rule",
            rule_id,
            _json_safe(before) if before is not None else None,
            saved,
            request_id=call.idempotency_key,
        )
        logger.info("rule %s saved by %s", rule_id, principal.name)
        return saved

    @route(
        "POST",
        "rules/test",
        "test_rule",
        operation_id="testRule",
        role=Role.ADMIN,
        summary="Evaluate a rule against recent events without saving it",
        query=NoQuery,
        body=RuleTestRequest,
        max_body_bytes=MAX_BODY_BYTES,
        response=RuleTestResult,
        description=(
            "Compiles the rule with the lists in force and evaluates it against the newest events of the "
            "last 30 days that the caller may see."
        ),
    )
    def test_rule(self, call: Call[NoQuery, RuleTestRequest]) -> Reply:
        return self._evaluate(call.body, call.hide)

    def _evaluate(self, request: RuleTestRequest, hide: SensitivityPolicy | None) -> RuleTestResult:
        definition = {"id": TEST_RULE_ID, **request.rule}
        lists = self._rule_source.current().rule_file.lists
        try:
            rule = parse_rule(definition, 0, lists)
        except RuleError as exc:
            raise _nested(invalid_rule(exc, None), "rule") from None
        compiled = compile_rule(rule, lists, self._hours)
        now = self._clock.now()
        evaluated = matched = 0
        matches: list[RuleTestMatch] = []
        continuation: str | None = None
        while evaluated < request.last:
            query = EventQuery(page_size=TEST_PAGE_SIZE, continuation=continuation)
            page = self._search.search(query, now, hide)
            for event in page["items"][: request.last - evaluated]:
                evaluated += 1
                if not compiled.test(event):
                    continue
                matched += 1
                if len(matches) < MAX_REPORTED_MATCHES:
                    matches.append(
                        RuleTestMatch(
                            id=str(event.get("id")),
                            timestamp=event.get("timestamp"),
                            service=event.get("service"),
                            operation=event.get("operation"),
                            actor=_actor(event),
                            group=compiled.group(event)[1],
                        )
                    )
            continuation = page["continuation"]
            if continuation is None:
                break
        note = None
        if rule.threshold is not None:
            note = THRESHOLD_NOTE.format(count=rule.threshold.count, window=rule.threshold.window_minutes)
        return RuleTestResult(
            rule_id=rule.id,
            evaluated=evaluated,
            matched=matched,
            matches=matches,
            truncated=matched > len(matches),
            threshold_evaluated=False,
            note=note,
        )
