"""Compiles validated rules into plain predicates over normalized event dicts.

Field paths walk nested objects and lists: `targets[].modified_properties[].name` yields every name of
every target. A positive operator (eq, in, contains, startswith, regex, gt, lt, exists, after_hours,
domain_not_in) holds when ANY value holds; `neq` and `not_in` hold when NO value equals, so a missing
field is "not equal". String comparisons are case-insensitive unless the predicate says
`case_sensitive: true`. Rules are indexed by their `operation` test, so an event is checked only
against rules that could match it.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from shared.rules.hours import BusinessHours
from shared.rules.model import (
    AllOf,
    AnyOf,
    Condition,
    NotOf,
    Predicate,
    Rule,
    RuleFile,
    Scalar,
    SomeOf,
    parse_time_operand,
)
from shared.rules.regex import LinearRegex

# BusinessHours is re-exported: rule callers build it with the rules they compile.
__all__ = [
    "MAX_MATCH_TEXT",
    "BusinessHours",
    "CompiledRule",
    "RuleSet",
    "compile_condition",
    "compile_path",
    "compile_rule",
    "first_value",
]

EventDict = dict[str, Any]
Test = Callable[[EventDict], bool]
Resolver = Callable[[EventDict], list[Any]]

MAX_MATCH_TEXT = 10_000
# RE2 like rule regexes: `re` would rescan a long run of address characters from every start (quadratic)
_ADDRESS = LinearRegex(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)", capture=True)


# --- field paths -------------------------------------------------------------------------------------


def compile_path(path: str) -> Resolver:
    """A function giving every value at `path` (lists are walked at any step; None values dropped)."""
    names = tuple(step.removesuffix("[]") for step in path.split("."))
    if len(names) == 1:
        name = names[0]

        def top(event: EventDict) -> list[Any]:
            value = event.get(name)
            if value is None:
                return []
            return [v for v in value if v is not None] if type(value) is list else [value]

        return top

    first, rest = names[0], names[1:]
    walk = _walker(first, rest)
    if len(names) == 2:
        second = names[1]

        def pair(event: EventDict) -> list[Any]:
            """`signin.risk_level`, `actor.type`: one dict inside another, the common case, without the
            general walk; anything else (a list at either step) takes the walk."""
            start = event.get(first)
            if type(start) is not dict:
                return walk(event)
            value = start.get(second)
            if value is None:
                return []
            if type(value) is list:
                return [v for v in value if v is not None]
            return [value]

        return pair
    return walk


def _walker(first: str, rest: tuple[str, ...]) -> Resolver:
    def walk(event: EventDict) -> list[Any]:
        start = event.get(first)  # the event may be a dict subclass (the Cosmos SDK's CosmosDict)
        if start is None:
            return []
        current: list[Any] = [start]
        for name in rest:
            following: list[Any] = []
            for item in current:
                if type(item) is list:
                    for element in item:
                        if type(element) is dict:
                            value = element.get(name)
                            if value is not None:
                                following.append(value)
                elif type(item) is dict:
                    value = item.get(name)
                    if value is not None:
                        following.append(value)
            if not following:
                return []
            current = following
        flat: list[Any] = []
        for value in current:
            if type(value) is list:
                flat.extend(v for v in value if v is not None)
            else:
                flat.append(value)
        return flat

    return walk


def first_value(resolver: Resolver, event: EventDict) -> Any:
    values = resolver(event)
    return values[0] if values else None


# --- operators -----------------------------------------------------------------------------------------


def _text(value: Any) -> str:
    if type(value) is str:
        return value
    if type(value) is bool:
        return "true" if value else "false"
    if type(value) is float and value.is_integer():
        return str(int(value))
    if type(value) in (int, float):
        return str(value)
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)[:MAX_MATCH_TEXT]


def _folder(case_sensitive: bool) -> Callable[[Any], str]:
    if case_sensitive:
        return _text
    return lambda value: _text(value).casefold()


def _number(value: Any) -> float | None:
    if type(value) in (int, float):
        return float(value)
    if type(value) is str:
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _time(value: Any) -> dt.datetime | None:
    return parse_time_operand(value) if type(value) is str else None


def _domains(values: Iterable[Scalar]) -> tuple[str, ...]:
    return tuple(str(v).strip().lstrip("@").casefold() for v in values if str(v).strip())


def _external_domains(text: str, internal: tuple[str, ...]) -> bool:
    """True when an e-mail address in `text` (any form: `smtp:a@b`, `"Name" [SMTP:a@b]`, `a@b; c@d`)
    has a domain outside `internal` and its subdomains."""
    for address_domain in _ADDRESS.captures(text):
        domain = address_domain.casefold()
        if not any(domain == d or domain.endswith("." + d) for d in internal):
            return True
    return False


def _resolve_list(operand: Any, lists: dict[str, list[Scalar]]) -> list[Scalar]:
    if isinstance(operand, str):
        return list(lists[operand[1:]])
    return list(operand)


def _scalar_text(value: Any, case_sensitive: bool) -> str | None:
    """Text of a scalar for equality tests; None for objects, which never equal a scalar."""
    if type(value) is str:
        return value if case_sensitive else value.casefold()
    if type(value) is dict:
        return None
    text = _text(value)
    return text if case_sensitive else text.casefold()


def _integers(texts: Iterable[str]) -> Iterable[int]:
    """The texts that are exactly an int's text (`53003`, `-1`; not `007` or `1.0`), as ints."""
    for text in texts:
        try:
            number = int(text)
        except ValueError:
            continue
        if str(number) == text:
            yield number


def _membership(path: str, allowed: frozenset[str], case_sensitive: bool, values_of: Resolver) -> Test:
    """True when any value at `path` is in `allowed` (already folded); the hot path of most rules."""
    if "." not in path:
        name = path.removesuffix("[]")
        # `result_code: 53003`: an int value is compared without formatting it (same answer as its text)
        numbers = frozenset(_integers(allowed))

        def top_level(event: EventDict) -> bool:
            value = event.get(name)
            if type(value) is str:
                return (value if case_sensitive else value.casefold()) in allowed
            if type(value) is int:
                return value in numbers
            if value is None:
                return False
            if type(value) is list:
                return any(_scalar_text(v, case_sensitive) in allowed for v in value if v is not None)
            return _scalar_text(value, case_sensitive) in allowed

        return top_level

    def nested(event: EventDict) -> bool:
        for value in values_of(event):  # noqa: SIM110 - a plain loop beats any(genexpr) on the hot path
            if _scalar_text(value, case_sensitive) in allowed:
                return True
        return False

    return nested


def _compile_predicate(predicate: Predicate, lists: dict[str, list[Scalar]], hours: BusinessHours) -> Test:
    values_of = compile_path(predicate.field)
    operator = predicate.operator
    operand = predicate.operand
    fold = _folder(predicate.case_sensitive)

    if operator in ("eq", "neq", "in", "not_in"):
        if operator in ("eq", "neq"):
            allowed = frozenset({fold(operand)})
        else:
            allowed = frozenset(fold(v) for v in _resolve_list(operand, lists))
        member = _membership(predicate.field, allowed, predicate.case_sensitive, values_of)
        if operator in ("eq", "in"):
            return member
        return lambda event: not member(event)
    if operator == "contains":
        needle = fold(operand)

        def contains(event: EventDict) -> bool:
            for value in values_of(event):  # noqa: SIM110 - a plain loop beats any(genexpr) on the hot path
                if needle in fold(value):
                    return True
            return False

        return contains
    if operator == "startswith":
        prefix = fold(operand)

        def startswith(event: EventDict) -> bool:
            for value in values_of(event):  # noqa: SIM110
                if fold(value).startswith(prefix):
                    return True
            return False

        return startswith
    if operator == "exists":
        if operand:
            return lambda event: any(v != "" and v != [] for v in values_of(event))
        return lambda event: not any(v != "" and v != [] for v in values_of(event))
    if operator == "regex":
        pattern = LinearRegex(operand, case_sensitive=predicate.case_sensitive)
        return lambda event: any(pattern.search(_text(v)[:MAX_MATCH_TEXT]) for v in values_of(event))
    if operator in ("gt", "lt"):
        greater = operator == "gt"
        moment = parse_time_operand(operand) if isinstance(operand, str) else None
        if moment is None:  # a number, or a numeric string
            number = float(operand)

            def numeric(event: EventDict) -> bool:
                for value in values_of(event):
                    n = _number(value)
                    if n is not None and (n > number if greater else n < number):
                        return True
                return False

            return numeric

        def temporal(event: EventDict) -> bool:
            for value in values_of(event):
                t = _time(value)
                if t is not None and (t > moment if greater else t < moment):
                    return True
            return False

        return temporal
    if operator == "after_hours":
        expected = bool(operand)

        def after_hours(event: EventDict) -> bool:
            for value in values_of(event):
                t = _time(value)
                if t is not None and hours.is_after_hours(t) is expected:
                    return True
            return False

        return after_hours
    if operator == "domain_not_in":
        internal = _domains(_resolve_list(operand, lists))

        def external(event: EventDict) -> bool:
            return any(_external_domains(_text(value), internal) for value in values_of(event))

        return external
    raise AssertionError(f"unhandled operator {operator}")  # the schema allows no other


def compile_condition(condition: Condition, lists: dict[str, list[Scalar]], hours: BusinessHours) -> Test:
    if isinstance(condition, Predicate):
        return _compile_predicate(condition, lists, hours)
    if isinstance(condition, AllOf):
        parts = tuple(compile_condition(c, lists, hours) for c in condition.all)

        def every(event: EventDict) -> bool:
            for test in parts:  # noqa: SIM110 - a plain loop beats all(genexpr) on the hot path
                if not test(event):
                    return False
            return True

        return every
    if isinstance(condition, AnyOf):
        parts = tuple(compile_condition(c, lists, hours) for c in condition.any)

        def some(event: EventDict) -> bool:
            for test in parts:  # noqa: SIM110
                if test(event):
                    return True
            return False

        return some
    if isinstance(condition, SomeOf):
        elements_of = compile_path(condition.some)
        where = compile_condition(condition.where, lists, hours)
        return lambda event: any(type(e) is dict and where(e) for e in elements_of(event))
    assert isinstance(condition, NotOf)
    inner = compile_condition(condition.not_, lists, hours)
    return lambda event: not inner(event)


def _operation_keys(condition: Condition, lists: dict[str, list[Scalar]]) -> frozenset[str] | None:
    """The operations a rule can match, when its top level tests `operation` with eq or in."""
    candidates: Sequence[Condition] = condition.all if isinstance(condition, AllOf) else [condition]
    for part in candidates:
        if isinstance(part, Predicate) and part.field == "operation":
            if part.operator == "eq":
                return frozenset({_text(part.operand).casefold()})
            if part.operator == "in":
                return frozenset(_text(v).casefold() for v in _resolve_list(part.operand, lists))
    return None


def _after_the_index(condition: Condition) -> Condition | None:
    """`condition` without the top-level operation test the index already applied (the first eq/in test
    of `operation`, as _operation_keys picks it); None when nothing else is left. A case-sensitive test
    stays: the index compares case-insensitively."""
    candidates: Sequence[Condition] = condition.all if isinstance(condition, AllOf) else [condition]
    for index, part in enumerate(candidates):
        if isinstance(part, Predicate) and part.field == "operation" and part.operator in ("eq", "in"):
            if part.case_sensitive:
                return condition
            rest = [*candidates[:index], *candidates[index + 1 :]]
            if not rest:
                return None
            return rest[0] if len(rest) == 1 else AllOf(all=rest)
    return condition


def _always(event: EventDict) -> bool:
    return True


# --- compiled rules --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CompiledRule:
    rule: Rule
    test: Test
    group_resolvers: tuple[tuple[str, tuple[Resolver, ...]], ...]

    @property
    def id(self) -> str:
        return self.rule.id

    def group(self, event: EventDict) -> tuple[str, dict[str, str]]:
        """(the group key used in fingerprints, the readable values) of `event` for this rule."""
        if not self.group_resolvers:
            return "", {}
        key_parts: list[str] = []
        shown: dict[str, str] = {}
        for spec, alternatives in self.group_resolvers:
            value = None
            for resolver in alternatives:
                value = first_value(resolver, event)
                if value not in (None, ""):
                    break
            text = "" if value is None else _text(value)
            key_parts.append(f"{spec}={text.casefold()}")
            shown[spec] = text
        return "|".join(key_parts), shown


def compile_rule(rule: Rule, lists: dict[str, list[Scalar]], hours: BusinessHours) -> CompiledRule:
    groups = tuple((spec, tuple(compile_path(path) for path in spec.split("|"))) for spec in rule.group_by)
    return CompiledRule(rule, compile_condition(rule.when, lists, hours), groups)


@dataclass
class RuleSet:
    """The enabled rules of one rule file, compiled, with an index by operation."""

    rule_file: RuleFile
    hours: BusinessHours
    origin: str = "default"
    version: str = ""
    compiled: list[CompiledRule] = field(init=False)
    _generic: list[CompiledRule] = field(init=False)
    _keys_by_rule: dict[str, frozenset[str] | None] = field(init=False)
    # An indexed rule's test without its operation test, which the index has already applied.
    _by_operation_tests: dict[str, tuple[tuple[CompiledRule, Test], ...]] = field(init=False)

    def __post_init__(self) -> None:
        lists = self.rule_file.lists
        self.compiled = [compile_rule(r, lists, self.hours) for r in self.rule_file.rules if r.enabled]
        self._generic = []
        self._keys_by_rule = {}
        indexed: dict[str, list[tuple[CompiledRule, Test]]] = {}
        for compiled in self.compiled:
            keys = _operation_keys(compiled.rule.when, lists)
            self._keys_by_rule[compiled.id] = keys
            if keys is None:
                self._generic.append(compiled)
                continue
            rest = _after_the_index(compiled.rule.when)
            test = _always if rest is None else compile_condition(rest, lists, self.hours)
            for key in keys:
                indexed.setdefault(key, []).append((compiled, test))
        self._by_operation_tests = {key: tuple(pairs) for key, pairs in indexed.items()}

    @property
    def rules(self) -> list[Rule]:
        return list(self.rule_file.rules)

    def get(self, rule_id: str) -> CompiledRule | None:
        return next((c for c in self.compiled if c.id == rule_id), None)

    def indexed_operations(self, rule_id: str) -> frozenset[str] | None:
        """The (case-folded) operations under which an enabled rule is indexed; None when the rule is
        checked against every event. KeyError for an id that is not an enabled rule."""
        return self._keys_by_rule[rule_id]

    def match(self, event: EventDict) -> list[CompiledRule]:
        """The enabled rules `event` satisfies."""
        operation = event.get("operation")
        indexed = self._by_operation_tests.get(operation.casefold(), ()) if type(operation) is str else ()
        matched = [c for c, test in indexed if test(event)]
        matched.extend(c for c in self._generic if c.test(event))
        return matched
