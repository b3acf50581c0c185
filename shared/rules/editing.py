"""Editing the rule file: replace, add, enable or disable one rule in the override blob.

An edit starts from the override blob (`config/rules.yaml`), or from the shipped default file when
there is none. The whole resulting file is validated with the engine's schema and compiler before it
is saved, and it is saved conditionally on the ETag of the blob it was built from (create-if-absent
when there was none), so two concurrent edits never lose each other: the loser re-reads and re-applies
its change, a few times, then gets RuleSaveConflictError. Everything else in the file (version, lists,
other rules, key order) is kept as it was.

Each rule has its own version, `rule_etag` (a hash of its canonical form): an edit may be made
conditional on it (HTTP If-Match), so a user who edits a rule someone else saved meanwhile gets
RuleChangedError instead of overwriting that change, while edits of other rules never conflict.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import re
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Any

import yaml
from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError
from azure.storage.blob import ContainerClient, ContentSettings
from pydantic import TypeAdapter, ValidationError

from shared.platform.yaml_bounded import load_yaml_bounded
from shared.rules.engine import BusinessHours, RuleSet
from shared.rules.model import Condition, Rule, RuleError, Scalar
from shared.rules.rule_yaml import YamlLocator
from shared.rules.source import DEFAULT_RULES_FILE, RULES_BLOB, blob_reader, compile_rules

logger = logging.getLogger(__name__)

MAX_SAVE_ATTEMPTS = 5
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
    "group_minutes",
    "when",
)
_CONDITION = TypeAdapter(Condition)
_PROBLEM = re.compile(
    r"^(?:rule '(?P<rule>[^']*)'|rules\[(?P<index>\d+)\]): (?P<field>[^:]+): (?P<message>.*)$", re.S
)

# Changes the editable rule file document: (the new document, the rule it replaced or None).
Edit = Callable[[dict[str, Any]], tuple[dict[str, Any], dict[str, Any] | None]]


class RuleFileUnreadableError(ValueError):
    """The override blob cannot be edited: not YAML, or not a rule file's shape. Fix or delete it."""


class RuleSaveConflictError(RuntimeError):
    """The rule file kept changing while saving: every attempt lost the race."""


class UnknownRuleError(LookupError):
    """No rule of this id in the rule file."""


class RuleChangedError(RuntimeError):
    """The rule is no longer the version the caller read (its If-Match ETag): someone else saved it."""


ANY_VERSION = "*"  # If-Match: * (the rule exists, whatever its version)


# --- the rule file as an editable document ---------------------------------------------------------


def load_rule_document(text: str, origin: str) -> dict[str, Any]:
    """A rule file's text as an editable document: a mapping with a `rules` list.

    Loaded with bounds on nesting and alias expansion: a YAML bomb in the blob is refused, not a hang."""
    try:
        document = load_yaml_bounded(text)
    except yaml.YAMLError:
        raise RuleFileUnreadableError(f"{origin} is not valid YAML: fix or delete it") from None
    if not isinstance(document, dict) or not isinstance(document.get("rules"), list):
        raise RuleFileUnreadableError(
            f"{origin} is not a rule file (a mapping with a 'rules' list): fix or delete it"
        )
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
    """Every field of a rule, in file order (the API's RuleView shape)."""
    document = rule.model_dump(mode="json", by_alias=True, exclude={"when"})
    document["when"] = condition_document(rule.when)
    return {key: document[key] for key in RULE_KEY_ORDER}


def rule_document(rule: Rule) -> dict[str, Any]:
    """A rule as it is written to the YAML file: unset optional fields and empty lists left out."""
    return view_document(rule_view(rule))


def view_document(view: Mapping[str, Any]) -> dict[str, Any]:
    """A rule's `rule_view` as it is written to the YAML file (rule_document)."""
    return {
        key: value for key, value in view.items() if key == "enabled" or (value is not None and value != [])
    }


def rule_etag(view: Mapping[str, Any]) -> str:
    """A rule's version as a strong HTTP entity tag: a hash of its canonical form (`rule_view`), so it
    changes exactly when what the engine reads of the rule changes, whatever else the file holds."""
    canonical = json.dumps(view, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return '"' + hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:32] + '"'


def raw_rule_etag(raw: Any) -> str | None:
    """The entity tag of a rule as written in the file, or None when it does not validate (the rules
    in force then come from elsewhere, so no version read from them can match)."""
    try:
        rule = Rule.model_validate(raw)
    except ValidationError:
        return None
    return rule_etag(rule_view(rule))


def check_version(document: Mapping[str, Any], rule_id: str, expected: Collection[str] | None) -> None:
    """RuleChangedError unless the rule `rule_id` of `document` is one of the `expected` versions
    (entity tags; ANY_VERSION: it exists). None: no condition."""
    if expected is None:
        return
    raw = find_rule(document, rule_id)
    if raw is None:
        raise RuleChangedError(f"rule {rule_id!r} no longer exists")
    if ANY_VERSION not in expected and raw_rule_etag(raw) not in expected:
        raise RuleChangedError(f"rule {rule_id!r} was changed since it was read")


def dump_rule_file(document: Mapping[str, Any]) -> str:
    return yaml.safe_dump(
        dict(document), sort_keys=False, allow_unicode=True, default_flow_style=False, width=110
    )


def rule_error_details(
    error: RuleError, rule_id: str | None, yaml_text: str | None = None
) -> list[dict[str, Any]]:
    """Each problem as {field, message}. Fields of the rule `rule_id` (of the only rule, when None) are
    named as in its definition; those of another rule of the file as `rules.<id>.<field>`. When the
    rule was sent as YAML (`yaml_text`), each problem of that rule also has the `line` and `column`
    (1-based) of its field in the text, or of the nearest enclosing field there."""
    locator = YamlLocator(yaml_text) if yaml_text is not None else None
    details: list[dict[str, Any]] = []
    for problem in error.problems:
        match = _PROBLEM.match(problem)
        if match is None:
            details.append({"field": "rules", "message": problem})
            continue
        field = match.group("field")
        field = "body" if field == "(rule)" else field
        owner = match.group("rule")
        own = rule_id is None or owner == rule_id
        if not own:
            field = f"rules.{owner if owner is not None else match.group('index')}.{field}"
        detail: dict[str, Any] = {"field": field, "message": match.group("message")}
        where = locator.locate(field) if own and locator is not None else None
        if where is not None:
            detail["line"], detail["column"] = where
        details.append(detail)
    return details


# --- saving -----------------------------------------------------------------------------------------


class RuleFileEditor:
    """Edits one rule at a time in the override blob of `container`; each edit returns (the rule as it
    was in the file or None when new, the rule saved as `rule_view` shows it)."""

    def __init__(
        self,
        container: ContainerClient,
        hours: BusinessHours,
        *,
        blob_name: str = RULES_BLOB,
        default_file: Path = DEFAULT_RULES_FILE,
        extra_lists: dict[str, list[Scalar]] | None = None,
    ) -> None:
        self._container = container
        self._blob_name = blob_name
        self._read = blob_reader(container, blob_name)
        self._hours = hours
        self._default_file = default_file
        self._extra_lists = extra_lists or {}

    def set_enabled(
        self, rule_id: str, enabled: bool, if_match: Collection[str] | None = None
    ) -> tuple[dict[str, Any] | None, dict[str, Any]]:
        """Switch an existing rule on or off, otherwise unchanged. UnknownRuleError when there is none;
        RuleChangedError when `if_match` (entity tags) is given and the rule is at none of them."""

        def edit(document: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None]:
            if find_rule(document, rule_id) is not None:
                check_version(document, rule_id, if_match)
            try:
                updated, before, _ = set_enabled(document, rule_id, enabled)
            except KeyError:
                raise UnknownRuleError(rule_id) from None
            return updated, before

        return self._save(edit, rule_id)

    def replace(
        self, rule_id: str, raw: Mapping[str, Any], if_match: Collection[str] | None = None
    ) -> tuple[dict[str, Any] | None, dict[str, Any]]:
        """Replace the rule `rule_id` with `raw` (its definition as sent), or add it. The rule is
        validated as sent inside the whole file (RuleError naming each problem), then written in its
        canonical form. With `if_match` (entity tags), only over one of those versions of the rule
        (RuleChangedError otherwise, and when the rule does not exist)."""
        definition = {"id": rule_id, **{k: v for k, v in raw.items() if k != "id"}}

        def edit(document: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None]:
            check_version(document, rule_id, if_match)
            candidate, _ = replace_rule(document, definition)
            rule = self._rule(self._compile(dump_rule_file(candidate)), rule_id)
            return replace_rule(document, rule_document(rule))

        return self._save(edit, rule_id)

    def _compile(self, text: str) -> RuleSet:
        return compile_rules(text, self._hours, f"blob:{self._blob_name}", self._extra_lists)

    @staticmethod
    def _rule(rule_set: RuleSet, rule_id: str) -> Rule:
        return next(r for r in rule_set.rules if r.id == rule_id)

    def _save(self, edit: Edit, rule_id: str) -> tuple[dict[str, Any] | None, dict[str, Any]]:
        """Apply `edit` to the current file and save it conditionally; re-read and re-apply on a lost
        race, at most MAX_SAVE_ATTEMPTS times."""
        blob = self._container.get_blob_client(self._blob_name)
        settings = ContentSettings(content_type="application/yaml; charset=utf-8")
        for attempt in range(1, MAX_SAVE_ATTEMPTS + 1):
            found = self._read()
            if found is None:
                text = self._default_file.read_text(encoding="utf-8")
                origin = f"file:{self._default_file.name}"
            else:
                text, origin = found.text, found.origin
            updated, before = edit(load_rule_document(text, origin))
            new_text = dump_rule_file(updated)
            saved = self._rule(self._compile(new_text), rule_id)  # the whole file, exactly as saved
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
        raise RuleSaveConflictError(f"the rule file kept changing while saving {rule_id}")
