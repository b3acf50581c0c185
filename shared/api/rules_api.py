"""GET /api/rules, PUT /api/rules/{id} and POST /api/rules/test: the alert rules through the API.

A PUT edits the override blob (`config/rules.yaml`), starting from the shipped default file when there
is none. The whole resulting file is validated with the engine's schema and compiler before it is
saved, and it is saved conditionally on the ETag of the blob it was built from (create-if-absent when
there was none), so two concurrent edits never lose each other: the loser re-reads and re-applies its
change, a few times, then gets a 409.
"""

from __future__ import annotations

import copy
import json
import logging
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml
from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError
from azure.storage.blob import ContainerClient, ContentSettings
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from shared.api.audit import AuditLog
from shared.api.auth import Principal, Role
from shared.api.bodies import read_json_object
from shared.api.events_query import EventQuery, EventSearch, parse_query_string
from shared.api.openapi import PathParam, RouteDoc
from shared.api.problems import ApiProblem, bad_request, from_validation_error
from shared.api.responses import ApiGuard, ApiResponse, answer, idempotency_key, json_response, not_found
from shared.platform.clock import Clock
from shared.platform.ids import is_rule_id
from shared.platform.yaml_bounded import load_yaml_bounded
from shared.rules.engine import BusinessHours, RuleSet, compile_rule
from shared.rules.model import (
    Condition,
    Rule,
    RuleError,
    Scalar,
    Severity,
    Threshold,
    parse_rule,
)
from shared.rules.source import DEFAULT_RULES_FILE, RULES_BLOB, RuleSource, blob_reader, compile_rules

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 256 * 1024
MAX_SAVE_ATTEMPTS = 5
MAX_TEST_EVENTS = 5000
DEFAULT_TEST_EVENTS = 500
TEST_PAGE_SIZE = 200
MAX_REPORTED_MATCHES = 50
TEST_RULE_ID = "rule.under-test"
THRESHOLD_NOTE = (
    "threshold rule: every event that satisfies the condition is listed; whether {count} of them fell "
    "within {window:g} minutes of each other (per group) is not evaluated here"
)
# Top-level keys of a rule, in the order they are written to the YAML file (`when` last, as in the
# shipped file, so the condition reads below the description).
RULE_KEY_ORDER = (
    "id",
    "title",
    "description",
    "severity",
    "mitre",
    "enabled",
    "tags",
    "group_by",
    "threshold",
    "suppress_minutes",
    "when",
)
_CONDITION = TypeAdapter(Condition)
_PROBLEM = re.compile(
    r"^(?:rule '(?P<rule>[^']*)'|rules\[(?P<index>\d+)\]): (?P<field>[^:]+): (?P<message>.*)$", re.S
)


# --- documented models -------------------------------------------------------------------------------


class RulesQuery(BaseModel):
    """The rule routes take no query parameters; any given is refused."""

    model_config = ConfigDict(extra="forbid")


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


RULE_PATH_PARAM = PathParam("id", "the rule id, e.g. entra.global-admin-added", max_length=80)

RULE_ROUTES: list[RouteDoc] = [
    RouteDoc(
        "GET",
        "rules",
        "listRules",
        "The alert rules in force",
        Role.READER,
        "rules",
        query=RulesQuery,
        response=RulesDocument,
        description="Every rule of the rule file in force (disabled ones included), with its origin.",
    ),
    RouteDoc(
        "PUT",
        "rules/{id}",
        "putRule",
        "Replace, add, enable or disable one rule",
        Role.ADMIN,
        "rules",
        query=RulesQuery,
        body=RuleDefinition,
        response=RuleView,
        path_params=(RULE_PATH_PARAM,),
        description=(
            "Writes the override blob config/rules.yaml (from the shipped rules when there is none) after "
            "validating the whole resulting file. A 400 lists each problem with the field at fault."
        ),
    ),
    RouteDoc(
        "POST",
        "rules/test",
        "testRule",
        "Evaluate a rule against recent events without saving it",
        Role.ADMIN,
        "rules",
        query=RulesQuery,
        body=RuleTestRequest,
        response=RuleTestResult,
        description=(
            "Compiles the rule with the lists in force and evaluates it against the newest events of the "
            "last 30 days that the caller may see."
        ),
    ),
]


# --- pure rule-file logic -------------------------------------------------------------------------


class RulesFileError(ApiProblem):
    """The override blob cannot be edited (not YAML, or not a rule file's shape)."""

    def __init__(self, detail: str) -> None:
        super().__init__(409, "Conflict", detail, kind="rules-file-unreadable")


def load_rule_document(text: str, origin: str) -> dict[str, Any]:
    """A rule file's text as an editable document: a mapping with a `rules` list.

    Loaded with bounds on nesting and alias expansion: a YAML bomb in the blob is a 409, not a hang."""
    try:
        document = load_yaml_bounded(text)
    except yaml.YAMLError:
        raise RulesFileError(f"{origin} is not valid YAML: fix or delete it") from None
    if not isinstance(document, dict) or not isinstance(document.get("rules"), list):
        raise RulesFileError(f"{origin} is not a rule file (a mapping with a 'rules' list): fix or delete it")
    return document


def _raw_id(raw: Any) -> Any:
    return raw.get("id") if isinstance(raw, dict) else None


def find_rule(document: Mapping[str, Any], rule_id: str) -> dict[str, Any] | None:
    return next((r for r in document["rules"] if _raw_id(r) == rule_id), None)


def replace_rule(
    document: Mapping[str, Any], rule: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """A copy of `document` with the rule of the same id replaced in place, or appended when new;
    and the rule it replaced. Everything else (version, lists, other rules, key order) is kept."""
    updated = copy.deepcopy(dict(document))
    rules: list[Any] = updated["rules"]
    for index, raw in enumerate(rules):
        if _raw_id(raw) == rule["id"]:
            rules[index] = dict(rule)
            return updated, raw
    rules.append(dict(rule))
    return updated, None


def set_enabled(
    document: Mapping[str, Any], rule_id: str, enabled: bool
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """A copy of `document` with one rule switched on or off, otherwise unchanged; (document, before,
    after). KeyError when there is no such rule."""
    before = find_rule(document, rule_id)
    if before is None:
        raise KeyError(rule_id)
    after = {**before, "enabled": enabled}
    updated, _ = replace_rule(document, after)
    return updated, before, after


def condition_document(condition: Condition) -> dict[str, Any]:
    """A condition as written in the rule file: aliases (`in`, `not`), unset operators left out."""
    dumped: dict[str, Any] = _CONDITION.dump_python(
        condition, mode="json", by_alias=True, exclude_defaults=True
    )
    return dumped


def rule_view(rule: Rule) -> dict[str, Any]:
    """Every field of a rule, for API responses (the RuleView shape)."""
    document = rule.model_dump(mode="json", by_alias=True, exclude={"when"})
    document["when"] = condition_document(rule.when)
    return {key: document[key] for key in RULE_KEY_ORDER}


def rule_document(rule: Rule) -> dict[str, Any]:
    """A rule as it is written to the YAML file: unset optional fields and empty lists left out."""
    return {
        key: value
        for key, value in rule_view(rule).items()
        if key == "enabled" or (value is not None and value != [])
    }


def dump_rule_file(document: Mapping[str, Any]) -> str:
    return yaml.safe_dump(
        dict(document), sort_keys=False, allow_unicode=True, default_flow_style=False, width=110
    )


def rule_error_details(error: RuleError, rule_id: str | None) -> list[dict[str, str]]:
    """Each problem as {field, message}. Fields of the rule `rule_id` (of the only rule, when None) are
    named as in its body; those of another rule of the file as `rules.<id>.<field>`."""
    details = []
    for problem in error.problems:
        match = _PROBLEM.match(problem)
        if match is None:
            details.append({"field": "rules", "message": problem})
            continue
        field = match.group("field")
        field = "body" if field == "(rule)" else field
        owner = match.group("rule")
        if rule_id is not None and owner != rule_id:
            field = f"rules.{owner if owner is not None else match.group('index')}.{field}"
        details.append({"field": field, "message": match.group("message")})
    return details


def invalid_rule(error: RuleError, rule_id: str | None) -> ApiProblem:
    details = rule_error_details(error, rule_id)
    first = details[0] if details else {"field": "body", "message": "invalid rule"}
    return ApiProblem(
        400,
        "Bad Request",
        f"{first['field']}: {first['message']}",
        kind="invalid-rule",
        errors=details,
    )


def _json_safe(value: Any) -> Any:
    return json.loads(json.dumps(value, ensure_ascii=False, default=str))


def _json_body(body: bytes, headers: Mapping[str, str]) -> dict[str, Any]:
    """The body as one JSON object (400, 413, 415 otherwise: shared.api.bodies)."""
    return read_json_object(body, headers, max_bytes=MAX_BODY_BYTES, required=True)


def _no_query(url: str) -> None:
    try:
        RulesQuery.model_validate(parse_query_string(url, repeatable=()))
    except ValidationError as exc:
        raise from_validation_error(exc) from None


def _actor(event: Mapping[str, Any]) -> str | None:
    actor = event.get("actor")
    if not isinstance(actor, dict):
        return None
    value = actor.get("upn") or actor.get("display") or actor.get("id")
    return str(value) if value else None


# --- the service ----------------------------------------------------------------------------------

# Changes the editable rule file document: (the new document, the rule it replaced or None).
Edit = Callable[[dict[str, Any]], tuple[dict[str, Any], dict[str, Any] | None]]


class RulesApi:
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
        self._guard = guard
        self._rule_source = rule_source
        self._container = config_container
        self._blob_name = blob_name
        self._read = blob_reader(config_container, blob_name)
        self._search = search
        self._audit = audit
        self._hours = hours
        self._clock = clock
        self._default_file = default_file
        self._extra_lists = extra_lists or {}

    # GET /api/rules ------------------------------------------------------------------------------

    def list_rules(self, url: str, headers: Mapping[str, str], path: str) -> ApiResponse:
        def handle() -> ApiResponse:
            self._guard.require(headers, Role.READER)
            _no_query(url)
            rules = self._rule_source.current()
            document = RulesDocument(
                origin=rules.origin,
                overridden=rules.origin.startswith("blob:"),
                version=rules.version,
                last_error=self._rule_source.last_error,
                count=len(rules.rules),
                rules=[RuleView.model_validate(rule_view(r)) for r in rules.rules],
            )
            return json_response(document.model_dump(mode="json"))

        return answer(path, handle)

    # PUT /api/rules/{id} -------------------------------------------------------------------------

    def put_rule(
        self, rule_id: str, url: str, body: bytes, headers: Mapping[str, str], path: str
    ) -> ApiResponse:
        def handle() -> ApiResponse:
            principal = self._guard.require(headers, Role.ADMIN)
            _no_query(url)
            if not is_rule_id(rule_id):
                raise bad_request("an id is 3-80 lower-case letters, digits, '.', '_' or '-'", field="id")
            key = idempotency_key(headers)
            definition = _json_body(body, headers)
            if "id" in definition and definition["id"] != rule_id:
                raise bad_request(f"the body's id must equal the path's id {rule_id!r}", field="id")
            toggle_only = set(definition) <= {"id", "enabled"} and "enabled" in definition
            if toggle_only and not isinstance(definition["enabled"], bool):
                raise bad_request("enabled must be true or false", field="enabled")
            edit: Edit
            if toggle_only:
                enabled = bool(definition["enabled"])

                def edit(document: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None]:
                    try:
                        updated, before, _ = set_enabled(document, rule_id, enabled)
                    except KeyError:
                        raise not_found("rule", rule_id) from None
                    return updated, before

            else:
                raw = {"id": rule_id, **{k: v for k, v in definition.items() if k != "id"}}

                def edit(document: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None]:
                    return self._replace(document, raw, rule_id)

            before, saved = self._save(edit, rule_id)
            self._rule_source.invalidate()
            self._audit.record(
                principal,
                "rule.update",
                "rule",
                rule_id,
                _json_safe(before) if before is not None else None,
                saved,
                request_id=key,
            )
            logger.info("rule %s saved by %s", rule_id, principal.name)
            return json_response(saved)

        return answer(path, handle)

    def _replace(
        self, document: dict[str, Any], raw: dict[str, Any], rule_id: str
    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """Validate the rule as sent inside the whole file, then write it in its canonical form."""
        candidate, _ = replace_rule(document, raw)
        rule_set = self._compile(dump_rule_file(candidate), rule_id)
        rule = next(r for r in rule_set.rules if r.id == rule_id)
        return replace_rule(document, rule_document(rule))

    def _compile(self, text: str, rule_id: str) -> RuleSet:
        try:
            return compile_rules(text, self._hours, f"blob:{self._blob_name}", self._extra_lists)
        except RuleError as exc:
            raise invalid_rule(exc, rule_id) from None

    def _save(self, edit: Edit, rule_id: str) -> tuple[dict[str, Any] | None, dict[str, Any]]:
        """Apply `edit` to the current file and save it conditionally; re-read and re-apply on a lost
        race. Returns (the rule before, the rule saved, as the API shows it)."""
        blob = self._container.get_blob_client(self._blob_name)
        for attempt in range(1, MAX_SAVE_ATTEMPTS + 1):
            found = self._read()
            if found is None:
                text, origin = (
                    self._default_file.read_text(encoding="utf-8"),
                    f"file:{self._default_file.name}",
                )
            else:
                text, origin = found.text, found.origin
            document = load_rule_document(text, origin)
            updated, before = edit(document)
            new_text = dump_rule_file(updated)
            rule_set = self._compile(new_text, rule_id)  # the whole file, exactly as it will be saved
            saved = next(r for r in rule_set.rules if r.id == rule_id)
            settings = ContentSettings(content_type="application/yaml; charset=utf-8")
            try:
                if found is None:
                    blob.upload_blob(new_text.encode("utf-8"), overwrite=False, content_settings=settings)
                else:
                    blob.upload_blob(
                        new_text.encode("utf-8"),
                        overwrite=True,
                        etag=found.etag,
                        match_condition=MatchConditions.IfNotModified,
                        content_settings=settings,
                    )
            except (ResourceModifiedError, ResourceExistsError):
                logger.info("rule file changed while saving %s (attempt %d); retrying", rule_id, attempt)
                continue
            return before, rule_view(saved)
        raise ApiProblem(
            409,
            "Conflict",
            "the rule file kept changing while saving: read the rules again and retry",
            kind="conflict",
        )

    # POST /api/rules/test ------------------------------------------------------------------------

    def test_rule(self, url: str, body: bytes, headers: Mapping[str, str], path: str) -> ApiResponse:
        def handle() -> ApiResponse:
            principal = self._guard.require(headers, Role.ADMIN)
            _no_query(url)
            try:
                request = RuleTestRequest.model_validate(_json_body(body, headers))
            except ValidationError as exc:
                raise from_validation_error(exc, location="body") from None
            return json_response(self._evaluate(request, principal).model_dump(mode="json"))

        return answer(path, handle)

    def _evaluate(self, request: RuleTestRequest, principal: Principal) -> RuleTestResult:
        definition = {"id": TEST_RULE_ID, **request.rule}
        lists = self._rule_source.current().rule_file.lists
        try:
            rule = parse_rule(definition, 0, lists)
        except RuleError as exc:
            raise _nested(invalid_rule(exc, None), "rule") from None
        compiled = compile_rule(rule, lists, self._hours)
        now = self._clock.now()
        hide = self._guard.hide_for(principal)
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
