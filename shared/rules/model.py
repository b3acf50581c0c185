"""The rule file schema. A rule that does not validate is refused with its id and the field at fault."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from shared.platform.ids import is_rule_id
from shared.rules.regex import RegexError, check_rule_regex

Severity = Literal["informational", "low", "medium", "high", "critical"]
SEVERITY_ORDER: dict[str, int] = {"informational": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}

MAX_REGEX_LENGTH = 512
MAX_CONDITION_DEPTH = 8
FIELD_PATH = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\[\])?(\.[A-Za-z_][A-Za-z0-9_]*(\[\])?)*$")
LIST_REFERENCE = re.compile(r"^\$[a-z][a-z0-9_]*$")

OPERATORS: tuple[str, ...] = (
    "eq",
    "neq",
    "in",
    "not_in",
    "contains",
    "startswith",
    "exists",
    "regex",
    "gt",
    "lt",
    "after_hours",
    "domain_not_in",
)
Scalar = str | int | float | bool


def parse_time_operand(value: str) -> dt.datetime | None:
    """An ISO-8601 time for gt/lt (a value without a zone is UTC), or None."""
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.replace(tzinfo=dt.UTC) if parsed.tzinfo is None else parsed.astimezone(dt.UTC)


class RuleError(ValueError):
    """A rule file that cannot be used: every message names the rule and the field."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


class Predicate(BaseModel):
    """One test on one field: `{field: actor.upn, eq: admin@contoso.com}`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    field: str
    eq: Scalar | None = None
    neq: Scalar | None = None
    in_: list[Scalar] | str | None = Field(default=None, alias="in")
    not_in: list[Scalar] | str | None = None
    contains: str | None = None
    startswith: str | None = None
    exists: bool | None = None
    regex: str | None = None
    gt: float | str | None = None
    lt: float | str | None = None
    after_hours: bool | None = None
    domain_not_in: list[str] | str | None = None
    case_sensitive: bool = False

    @field_validator("field")
    @classmethod
    def _path(cls, value: str) -> str:
        if not FIELD_PATH.match(value):
            raise ValueError(f"{value!r} is not a field path like actor.upn or targets[].display")
        return value

    @field_validator("in_", "not_in", "domain_not_in")
    @classmethod
    def _list_or_reference(cls, value: list[Any] | str | None) -> list[Any] | str | None:
        if isinstance(value, str) and not LIST_REFERENCE.match(value):
            raise ValueError(f"{value!r} must be a list, or a reference to a named list such as $admin_roles")
        return value

    @field_validator("regex")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if len(value) > MAX_REGEX_LENGTH:
            raise ValueError(f"a regex may be at most {MAX_REGEX_LENGTH} characters")
        try:
            check_rule_regex(value)
        except RegexError as exc:
            raise ValueError(f"invalid regex: {exc}") from None
        return value

    @model_validator(mode="after")
    def _one_operator(self) -> Predicate:
        used = self.operators()
        if len(used) != 1:
            listed = ", ".join(OPERATORS)
            raise ValueError(f"give exactly one operator ({listed}); found {len(used)}: {used}")
        return self

    def operators(self) -> list[str]:
        return [name for name in OPERATORS if getattr(self, "in_" if name == "in" else name) is not None]

    @property
    def operator(self) -> str:
        return self.operators()[0]

    @property
    def operand(self) -> Any:
        name = self.operator
        return getattr(self, "in_" if name == "in" else name)


class AllOf(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    all: list[Condition] = Field(min_length=1)


class AnyOf(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    any: list[Condition] = Field(min_length=1)


class NotOf(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    not_: Condition = Field(alias="not")


class SomeOf(BaseModel):
    """Holds when one element at `some` satisfies `where` (paths in `where` are relative to it), so
    `name == X and new == Y` are tested on the same modified property."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    some: str
    where: Condition

    @field_validator("some")
    @classmethod
    def _path(cls, value: str) -> str:
        if not FIELD_PATH.match(value):
            raise ValueError(f"{value!r} is not a field path like targets[].modified_properties[]")
        return value


def _condition_kind(value: Any) -> str:
    if isinstance(value, dict):
        keys = set(value)
    else:
        keys = {k for k in ("all", "any", "not_", "some") if getattr(value, k, None) is not None}
        keys = {"not" if k == "not_" else k for k in keys}
    for key, tag in (("all", "AllOf"), ("any", "AnyOf"), ("not", "NotOf"), ("some", "SomeOf")):
        if key in keys:
            return tag
    return "Predicate"


Condition = Annotated[
    Annotated[AllOf, Tag("AllOf")]
    | Annotated[AnyOf, Tag("AnyOf")]
    | Annotated[NotOf, Tag("NotOf")]
    | Annotated[SomeOf, Tag("SomeOf")]
    | Annotated[Predicate, Tag("Predicate")],
    Discriminator(_condition_kind),
]
AllOf.model_rebuild()
AnyOf.model_rebuild()
NotOf.model_rebuild()
SomeOf.model_rebuild()


class Threshold(BaseModel):
    """Fire when at least `count` matching events of one group fall within `window_minutes`."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    count: int = Field(ge=2, le=10_000)
    window_minutes: float = Field(gt=0, le=7 * 24 * 60)


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    title: str = Field(min_length=1, max_length=200)
    description: str = Field(min_length=1, max_length=4000)
    severity: Severity
    mitre: list[str] = Field(default_factory=list)
    enabled: bool = True
    when: Condition
    group_by: list[str] = Field(default_factory=list, max_length=4)
    threshold: Threshold | None = None
    suppress_minutes: float | None = Field(default=None, ge=0, le=7 * 24 * 60)
    # How long an alert absorbs new matches of its group, from its first match (ALERT_GROUP_HOURS when
    # unset). A rule with suppress_minutes keeps the sliding suppression instead.
    group_minutes: float | None = Field(default=None, ge=1, le=7 * 24 * 60)
    tags: list[str] = Field(default_factory=list)

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not is_rule_id(value):
            raise ValueError("an id is 3-80 lower-case letters, digits, '.', '_' or '-'")
        return value

    @field_validator("mitre")
    @classmethod
    def _mitre(cls, values: list[str]) -> list[str]:
        for value in values:
            if not re.match(r"^T\d{4}(\.\d{3})?$", value):
                raise ValueError(f"{value!r} is not a MITRE ATT&CK technique id such as T1098 or T1098.003")
        return values

    @field_validator("group_by")
    @classmethod
    def _group_by(cls, values: list[str]) -> list[str]:
        for value in values:
            for path in value.split("|"):
                if not FIELD_PATH.match(path):
                    raise ValueError(f"{value!r}: group_by takes field paths, alternatives joined by '|'")
        return values


class RuleFile(BaseModel):
    """A rule file: named lists that rules may reference as `$name`, and the rules."""

    model_config = ConfigDict(extra="forbid")

    version: Literal[1] = 1
    lists: dict[str, list[Scalar]] = Field(default_factory=dict)
    rules: list[Rule]


def _walk(condition: Condition) -> list[tuple[str, Predicate]]:
    if isinstance(condition, Predicate):
        return [("", condition)]
    if isinstance(condition, AllOf):
        return [(f"all[{i}].{p}".rstrip("."), q) for i, c in enumerate(condition.all) for p, q in _walk(c)]
    if isinstance(condition, AnyOf):
        return [(f"any[{i}].{p}".rstrip("."), q) for i, c in enumerate(condition.any) for p, q in _walk(c)]
    if isinstance(condition, SomeOf):
        return [(f"where.{p}".rstrip("."), q) for p, q in _walk(condition.where)]
    return [(f"not.{p}".rstrip("."), q) for p, q in _walk(condition.not_)]


def _depth(condition: Condition) -> int:
    if isinstance(condition, Predicate):
        return 1
    if isinstance(condition, AllOf):
        return 1 + max(_depth(c) for c in condition.all)
    if isinstance(condition, AnyOf):
        return 1 + max(_depth(c) for c in condition.any)
    if isinstance(condition, SomeOf):
        return 1 + _depth(condition.where)
    return 1 + _depth(condition.not_)


def _location(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part in ("AllOf", "AnyOf", "NotOf", "SomeOf", "Predicate"):
            continue
        else:
            text += f".{part}" if text else str(part)
    return text or "(rule)"


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def parse_rule(document: Any, index: int, lists: dict[str, list[Scalar]]) -> Rule:
    """One rule, validated; RuleError names the rule (its id, else its position) and the field."""
    name = document.get("id") if isinstance(document, dict) else None
    label = f"rule {name!r}" if isinstance(name, str) else f"rules[{index}]"
    try:
        rule = Rule.model_validate(document)
    except ValidationError as exc:
        seen: set[str] = set()
        problems = []
        for error in exc.errors():
            message = f"{label}: {_location(error['loc'])}: {error['msg']}"
            if message not in seen:
                seen.add(message)
                problems.append(message)
        raise RuleError(problems) from None
    problems = []
    if _depth(rule.when) > MAX_CONDITION_DEPTH:
        problems.append(f"{label}: when: conditions nest deeper than {MAX_CONDITION_DEPTH}")
    for path, predicate in _walk(rule.when):
        operand = predicate.operand
        if (
            isinstance(operand, str)
            and LIST_REFERENCE.match(operand)
            and predicate.operator
            in (
                "in",
                "not_in",
                "domain_not_in",
            )
        ) and operand[1:] not in lists:
            where = f"when.{path}.{predicate.operator}".replace("..", ".")
            problems.append(f"{label}: {where}: no list named {operand[1:]!r} in the file's lists")
        if (
            predicate.operator in ("gt", "lt")
            and isinstance(operand, str)
            and parse_time_operand(operand) is None
            and not _is_number(operand)
        ):
            where = f"when.{path}.{predicate.operator}".replace("..", ".")
            problems.append(f"{label}: {where}: {operand!r} is neither a number nor an ISO-8601 time")
    if problems:
        raise RuleError(problems)
    return rule


def parse_rule_file(document: Any, extra_lists: dict[str, list[Scalar]] | None = None) -> RuleFile:
    """A whole rule file. Every rule is checked; all problems are reported together."""
    if not isinstance(document, dict):
        raise RuleError(["the rule file must be a mapping with 'rules' (and optional 'lists')"])
    unknown = set(document) - {"version", "lists", "rules"}
    if unknown:
        raise RuleError([f"unknown top-level key(s): {', '.join(sorted(unknown))}"])
    try:
        header = RuleFile.model_validate({**document, "rules": []})
    except ValidationError as exc:
        raise RuleError([f"{_location(e['loc'])}: {e['msg']}" for e in exc.errors()]) from None
    lists = {**header.lists}
    for name, values in (extra_lists or {}).items():
        lists[name] = [*lists.get(name, []), *values]
    raw_rules = document.get("rules")
    if not isinstance(raw_rules, list) or not raw_rules:
        raise RuleError(["'rules' must be a non-empty list"])
    rules: list[Rule] = []
    problems: list[str] = []
    for index, raw in enumerate(raw_rules):
        try:
            rules.append(parse_rule(raw, index, lists))
        except RuleError as exc:
            problems.extend(exc.problems)
    ids = [r.id for r in rules]
    problems.extend(
        f"rule {i!r}: id: used more than once" for i in sorted({i for i in ids if ids.count(i) > 1})
    )
    if problems:
        raise RuleError(problems)
    return RuleFile(version=1, lists=lists, rules=rules)
