"""The rule routes: GET /api/rules, GET and PUT /api/rules/{id} and POST /api/rules/test.

Editing the rule file (validation of the whole file, ETag-guarded saves, canonical form, each rule's
own version) is shared.rules.editing's; this module turns its outcomes into answers and problems,
audits each save, and evaluates a rule under test against the newest events the caller may see.

A rule may be sent as JSON fields or as YAML text (`{"yaml": "..."}`, what the console's editor
sends); problems with YAML carry the line and column of the field at fault. Reads and saves give the
rule's entity tag (`etag`, and the ETag header on one rule); a save with If-Match is refused with a
412 (`rule-changed`) when the rule has changed since, as every write with a stale If-Match is (RFC 9110
13.1.1); 409 stays for the rule file changing under the save's retries or being unreadable. GET
/api/rules adds each rule's last 7 days of matches and alerts (shared.api.rule_activity).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from azure.storage.blob import ContainerClient
from pydantic import BaseModel, ConfigDict, Field

from shared.api.audit import AuditLog
from shared.api.auth import Role
from shared.api.events_query import EventQuery, EventSearch, SensitivityPolicy
from shared.api.problems import ApiProblem, bad_request, conflict
from shared.api.responses import ApiGuard, ApiResponse, header, json_response, not_found
from shared.api.routing import Call, NoQuery, PathParam, Reply, Resource, route
from shared.api.rule_activity import RuleActivity, RuleCounts, no_activity
from shared.platform.clock import Clock
from shared.platform.ids import is_rule_id
from shared.rules.editing import (
    ANY_VERSION,
    RuleChangedError,
    RuleFileEditor,
    RuleFileUnreadableError,
    RuleSaveConflictError,
    UnknownRuleError,
    rule_error_details,
    rule_etag,
    view_document,
)
from shared.rules.editing import MAX_SAVE_ATTEMPTS as MAX_SAVE_ATTEMPTS
from shared.rules.editing import rule_view as rule_view
from shared.rules.engine import BusinessHours, RuleSet, compile_rule
from shared.rules.model import RuleError, Scalar, Severity, Threshold, parse_rule
from shared.rules.rule_yaml import MAX_RULE_YAML_CHARS, RuleYamlError, load_rule_yaml, rule_yaml
from shared.rules.source import DEFAULT_RULES_FILE, RULES_BLOB, RuleSource

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 256 * 1024
MAX_TEST_EVENTS = 5000
DEFAULT_TEST_EVENTS = 500
TEST_PAGE_SIZE = 200
MAX_REPORTED_MATCHES = 50
MAX_IF_MATCH_CHARS = 1000
_ENTITY_TAG = re.compile(r'\s*(W/)?"([\x21\x23-\x7e]*)"\s*')
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
    group_minutes: float | None = Field(
        default=None, description="how long an alert absorbs new matches (ALERT_GROUP_HOURS when null)"
    )
    when: dict[str, Any] = Field(
        description="the condition: a predicate {field, <operator>: operand} or all / any / not / some"
    )


class RuleListItem(RuleView):
    """A rule in the list: the rule, its version and its recent activity (leave `etag` and
    `last_7_days` out when sending it back)."""

    etag: str = Field(description="the rule's version: send it as If-Match to save over exactly this")
    last_7_days: RuleCounts | None = Field(
        default=None, description="matches and alerts since `activity_since`; null when not counted"
    )


class RuleDetail(RuleView):
    """One rule with its version and its YAML text (the rule file's format), as the editor shows it."""

    etag: str = Field(description="the rule's version (also the ETag header): send it as If-Match")
    yaml: str = Field(description="the rule as YAML, in the rule file's canonical form")


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
    activity_since: str | None = Field(
        default=None, description="start of the window of each rule's `last_7_days` (UTC ISO-8601)"
    )
    rules: list[RuleListItem]


class RuleDefinition(BaseModel):
    """A rule as written in the YAML rule file. `id` may be left out; given, it must equal the path's.

    A body of only `enabled` (and optionally `id`) enables or disables an existing rule unchanged.
    A body of only `yaml` gives the rule as YAML text instead (the same fields)."""

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
    group_minutes: float | None = Field(default=None, ge=1, le=7 * 24 * 60)
    when: dict[str, Any] | None = Field(
        default=None,
        description="the condition: a predicate {field, <operator>: operand} or all / any / not / some",
    )
    yaml: str | None = Field(
        default=None,
        max_length=MAX_RULE_YAML_CHARS,
        description="the whole rule as YAML text (a mapping of the fields above), alone in the body; "
        "problems then carry the line and column of the field at fault",
    )


class RuleTestRequest(BaseModel):
    """The rule under test: `rule` (its fields) or `yaml` (its text), exactly one of them."""

    model_config = ConfigDict(extra="forbid")

    rule: dict[str, Any] | None = Field(
        default=None, description="a rule definition, as for PUT /api/rules/{id}; id optional"
    )
    yaml: str | None = Field(
        default=None,
        max_length=MAX_RULE_YAML_CHARS,
        description="the rule as YAML text instead of `rule`; problems carry line and column",
    )
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


def invalid_rule(error: RuleError, rule_id: str | None, yaml_text: str | None = None) -> ApiProblem:
    """A 400 listing each problem with the field at fault (shared.rules.editing.rule_error_details),
    and its line and column when the rule came as YAML text."""
    details = rule_error_details(error, rule_id, yaml_text)
    first = details[0] if details else {"field": "body", "message": "invalid rule"}
    return ApiProblem(
        400, "Bad Request", f"{first['field']}: {first['message']}", kind="invalid-rule", errors=details
    )


def unreadable_yaml(error: RuleYamlError) -> ApiProblem:
    """A 400 for rule YAML that cannot be read, at the line and column YAML named."""
    return ApiProblem(
        400, "Bad Request", f"yaml: {error.message}", kind="invalid-rule", errors=[error.detail()]
    )


def rule_changed(rule_id: str, reason: str) -> ApiProblem:
    """412: the rule is no longer the version the caller read (If-Match), or no longer exists."""
    return ApiProblem(
        412,
        "Precondition Failed",
        f"{reason}: someone else saved it meanwhile. Read rule {rule_id!r} again (your changes are "
        "not saved), then apply them to the current version",
        kind="rule-changed",
    )


def if_match(headers: Mapping[str, str]) -> frozenset[str] | None:
    """The If-Match header's entity tags (ANY_VERSION for `*`), None without the header; a 400 when it
    is not `*` or a comma-separated list of quoted entity tags. Weak tags never match (RFC 9110
    strong comparison), so they are dropped."""
    raw = header(headers, "If-Match")
    if raw is None:
        return None
    if len(raw) > MAX_IF_MATCH_CHARS:
        raise bad_request(f"If-Match may be at most {MAX_IF_MATCH_CHARS} characters", field="If-Match")
    if raw.strip() == ANY_VERSION:
        return frozenset({ANY_VERSION})
    tags = []
    for part in raw.split(","):
        match = _ENTITY_TAG.fullmatch(part)
        if match is None:
            raise bad_request('If-Match must be * or entity tags such as "3f2a…"', field="If-Match")
        if match.group(1) is None:
            tags.append(f'"{match.group(2)}"')
    return frozenset(tags)


def rule_detail(view: Mapping[str, Any]) -> RuleDetail:
    """A rule's view (rule_view) with its version and its YAML text."""
    return RuleDetail.model_validate(
        {**view, "etag": rule_etag(view), "yaml": rule_yaml(view_document(view))}
    )


def detail_response(detail: RuleDetail) -> ApiResponse:
    response = json_response(detail.model_dump(mode="json"))
    response.headers["ETag"] = detail.etag
    return response


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
        activity: RuleActivity | None = None,
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
        self._activity = activity

    def _fresh_rules(self) -> RuleSet:
        """The rules in force, the override blob checked now (not after the cache's seconds), so a
        version read here is the one a save is compared with, whichever instance saved last."""
        self._rule_source.invalidate()
        return self._rule_source.current()

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
        description=(
            "Every rule of the rule file in force (disabled ones included), with its origin, each rule's "
            "version (etag) and its matches and alerts in the last 7 days."
        ),
    )
    def list_rules(self, call: Call[NoQuery, None]) -> Reply:
        rules = self._fresh_rules()
        since, counts = self._activity.last_7_days(call.hide) if self._activity else (None, None)
        items = []
        for rule in rules.rules:
            view = rule_view(rule)
            activity = None if counts is None else counts.get(rule.id) or no_activity(call.hide)
            items.append(
                RuleListItem.model_validate({**view, "etag": rule_etag(view), "last_7_days": activity})
            )
        return RulesDocument(
            origin=rules.origin,
            overridden=rules.origin.startswith("blob:"),
            version=rules.version,
            last_error=self._rule_source.last_error,
            count=len(rules.rules),
            activity_since=since,
            rules=items,
        )

    @route(
        "GET",
        "rules/{id}",
        "get_rule",  # Functions name: AzureWebJobs.get_rule.Disabled
        operation_id="getRule",
        role=Role.READER,
        summary="One rule of the rule file in force, with its version and its YAML",
        query=NoQuery,
        body=None,
        response=RuleDetail,
        path_params=(RULE_ID,),
        description="The rule, its version (`etag`, also the ETag header) and its YAML text.",
    )
    def get_rule(self, call: Call[NoQuery, None]) -> Reply:
        rule_id = call.params["id"]
        rule = next((r for r in self._fresh_rules().rules if r.id == rule_id), None)
        if rule is None:
            raise not_found("rule", rule_id)
        return detail_response(rule_detail(rule_view(rule)))

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
        response=RuleDetail,
        path_params=(RULE_ID,),
        if_match=True,
        description=(
            "Writes the override blob config/rules.yaml (from the shipped rules when there is none) after "
            "validating the whole resulting file. A 400 lists each problem with the field at fault (and "
            "its line and column when the rule came as `yaml`). With If-Match (the rule's etag, or `*`), "
            "a rule changed since is a 412 (`rule-changed`) and nothing is saved. A 409 is the rule file "
            "changing under every retry of the save, or an override blob that cannot be read."
        ),
    )
    def put_rule(self, call: Call[NoQuery, dict[str, Any]]) -> Reply:
        rule_id, definition, principal = call.params["id"], call.body, call.principal
        expected = if_match(call.headers)
        text: str | None = None
        if "yaml" in definition:
            text = definition["yaml"]
            if set(definition) != {"yaml"}:
                raise bad_request("give the rule as `yaml` alone, or as fields without `yaml`", field="yaml")
            if not isinstance(text, str):
                raise bad_request("yaml must be the rule's YAML text", field="yaml")
            try:
                definition = load_rule_yaml(text)
            except RuleYamlError as exc:
                raise unreadable_yaml(exc) from None
        label = f"rule {rule_id!r}"
        if "id" in definition and definition["id"] != rule_id:
            refusal = f"{label}: id: the body's id must equal the path's id {rule_id!r}"
            raise invalid_rule(RuleError([refusal]), rule_id, text)
        toggle_only = set(definition) <= {"id", "enabled"} and "enabled" in definition
        if toggle_only and not isinstance(definition["enabled"], bool):
            raise invalid_rule(RuleError([f"{label}: enabled: must be true or false"]), rule_id, text)
        try:
            if toggle_only:
                before, saved = self._editor.set_enabled(rule_id, definition["enabled"], expected)
            else:
                before, saved = self._editor.replace(rule_id, definition, expected)
        except RuleError as exc:
            raise invalid_rule(exc, rule_id, text) from None
        except UnknownRuleError:
            raise not_found("rule", rule_id) from None
        except RuleChangedError as exc:
            raise rule_changed(rule_id, str(exc)) from None
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
        return detail_response(rule_detail(saved))

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
            "Compiles the rule (`rule`, or `yaml`) with the lists in force and evaluates it against the "
            "newest events of the last 30 days that the caller may see."
        ),
    )
    def test_rule(self, call: Call[NoQuery, RuleTestRequest]) -> Reply:
        return self._evaluate(call.body, call.hide)

    def _evaluate(self, request: RuleTestRequest, hide: SensitivityPolicy | None) -> RuleTestResult:
        if (request.rule is None) == (request.yaml is None):
            raise bad_request(
                "give the rule under test as `rule` (its fields) or `yaml` (its text)", field="rule"
            )
        if request.yaml is not None:
            try:
                fields = load_rule_yaml(request.yaml)
            except RuleYamlError as exc:
                raise unreadable_yaml(exc) from None
        else:
            fields = request.rule or {}
        definition = {"id": TEST_RULE_ID, **fields}
        lists = self._rule_source.current().rule_file.lists
        try:
            rule = parse_rule(definition, 0, lists)
        except RuleError as exc:
            nested = "yaml" if request.yaml is not None else "rule"
            raise _nested(invalid_rule(exc, None, request.yaml), nested) from None
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
