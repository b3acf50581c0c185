"""User-editable summaries and operation types (shared/ingestion/mappings.yaml), and a tiny safe
template renderer.

A template is text with `{name}` placeholders taken from a fixed whitelist of values computed from the
normalized event (PLACEHOLDERS, plus the parametrized ones in PARAMETRIZED_PLACEHOLDERS such as
`{property:NAME}`). Nothing else is evaluated: no attribute or index access, no format specs, no eval.
An unknown placeholder, an empty template or a stray brace is refused when the file loads (ValueError
naming the template), so a typo cannot reach a summary.

A summary is a list of templates: the first one whose placeholders all have a value wins. After the
operation's list come the source's default list and a built-in `{actor} performed '{operation}'`, then
`{actor} performed an action`; `{actor}` always has a value (an application known only by its id is
"Application <id>"; an actor without name or id is "Someone", "An application" or "System"), so every
summary is complete: it never shows a gap.

A failed event (result "failure") uses failure templates instead: the operation's `failure:` list, or,
when it has none, its templates turned around with the `failure_verbs` table ("{actor} added {target}"
-> "{actor} failed to add {target}"). Unless the template places {reason} or {result_code} itself, ": "
and the first complete `failure_detail` template (per source; default "{reason}") follow: "...: quota
exceeded", "...: Invalid username or password (error 50126)".

Rendering is on the ingestion hot path: templates are parsed once, each into a closure specialized for
its number of placeholders (plain string concatenation), and the resolved chain of templates is cached
per source and operation.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared.ingestion.normalize._common import derive_operation_type, operation_key
from shared.platform.yaml_bounded import load_yaml_bounded

DEFAULT_MAPPINGS_PATH = Path(__file__).resolve().parent.parent / "mappings.yaml"
MAX_VALUE_LENGTH = 200
MAX_LISTED_NAMES = 3  # "{targets}": "A, B, C and 2 more"
OPERATION_TYPES = frozenset(
    ("create", "update", "delete", "assign", "unassign", "action", "read", "sign_in", "other")
)
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_PLACEHOLDER_SPLIT = re.compile(r"(\{[^{}]*\})")
_WORD = re.compile(r"[A-Za-z]+")
_CACHE_LIMIT = 10_000

Getter = Callable[[dict[str, Any]], str | None]
Renderer = Callable[[dict[str, Any]], str | None]

# {actor} when the actor has no name, by actor type (documents stored before attribution 2 say "app").
_UNNAMED_ACTORS: dict[str | None, str] = {
    "application": "An application",
    "service_principal": "An application",
    "app": "An application",
    "system": "System",
}
_UNNAMED_ACTOR = "Someone"
_APPLICATION_ACTORS = frozenset(("application", "service_principal", "app"))
_APPLICATION_TARGETS = frozenset(("application", "serviceprincipal", "service principal"))


def _clip(value: Any) -> str | None:
    """A value as summary text: one line, no blank at either end, at most MAX_VALUE_LENGTH characters;
    None when empty. Lists are named like {targets}."""
    text: str
    if type(value) is str:
        text = value
    elif value is None or isinstance(value, dict):
        return None
    elif isinstance(value, list):
        return _name_list([name for name in map(_clip, value) if name is not None])
    else:
        text = str(value)
    text = _tidy(text)
    if not text:
        return None
    if len(text) > MAX_VALUE_LENGTH:
        text = text[: MAX_VALUE_LENGTH - 1] + "…"
    return text


def _tidy(text: str) -> str:
    """One line: control characters and runs of blanks become one space; no blank at either end."""
    if not text.isprintable():
        text = "".join(char if char.isprintable() else " " for char in text)
    return " ".join(text.split())


# The value getters take a fast path for the usual short string and leave the rest to _clip. Characters
# a summary must not hold (line breaks, doubled or edge blanks) are checked once on the whole summary
# (Mappings.summarize), not per value.


def _value(value: Any) -> str | None:
    if type(value) is str and 0 < len(value) <= MAX_VALUE_LENGTH and not value.isspace():
        return value
    return _clip(value)


def _name_list(names: list[str]) -> str | None:
    """ "A", "A and B", "A, B and C", "A, B, C and 2 more"."""
    count = len(names)
    if count == 0:
        return None
    if count == 1:
        return names[0]
    if count <= MAX_LISTED_NAMES:
        return ", ".join(names[:-1]) + " and " + names[-1]
    return ", ".join(names[:MAX_LISTED_NAMES]) + f" and {count - MAX_LISTED_NAMES} more"


def _entity_name(entity: dict[str, Any]) -> str | None:
    name = entity["display"] or entity.get("upn") or entity["id"]  # targets have no upn
    if type(name) is str and 0 < len(name) <= MAX_VALUE_LENGTH and not name.isspace():
        return name
    return _clip(name)


def _actor(doc: dict[str, Any]) -> str:
    actor = doc["actor"]
    name = actor["display"] or actor["upn"]
    if type(name) is str and 0 < len(name) <= MAX_VALUE_LENGTH and not name.isspace():
        return name
    return _unusual_actor_name(actor)


def _unusual_actor_name(actor: dict[str, Any]) -> str:
    """{actor} when the display name and UPN are not a plain short string: one of them tidied, else
    the id ("Application <id>" for an application known only by its id), else a word for its type."""
    name = _clip(actor["display"]) or _clip(actor["upn"])
    if name is not None:
        return name
    kind = actor["type"] if type(actor["type"]) is str else None
    identifier = _clip(actor["id"])
    if identifier is None:
        return _UNNAMED_ACTORS.get(kind, _UNNAMED_ACTOR)
    return f"Application {identifier}" if kind in _APPLICATION_ACTORS else identifier


def _client_app(doc: dict[str, Any]) -> str | None:
    client_app = doc["actor"].get("client_app")
    return _value(client_app.get("name")) if type(client_app) is dict else None


def _actor_field(name: str) -> Getter:
    return lambda doc: _value(doc["actor"].get(name))


def _field(name: str) -> Getter:
    return lambda doc: _value(doc.get(name))


def _block_field(block: str, name: str) -> Getter:
    """A field of an optional block (`signin`, `dlp`, `security_alert`): None when the block is absent."""

    def value(doc: dict[str, Any]) -> str | None:
        part = doc.get(block)
        return _value(part.get(name)) if type(part) is dict else None

    return value


def _country(doc: dict[str, Any]) -> str | None:
    signin = doc.get("signin")
    location = signin.get("location") if type(signin) is dict else None
    return _value(location.get("country")) if type(location) is dict else None


def _city(doc: dict[str, Any]) -> str | None:
    signin = doc.get("signin")
    location = signin.get("location") if type(signin) is dict else None
    return _value(location.get("city")) if type(location) is dict else None


def _severity(doc: dict[str, Any]) -> str | None:
    for block in ("dlp", "security_alert"):
        part = doc.get(block)
        if type(part) is dict and part.get("severity"):
            return _value(part["severity"])
    return None


def _target(index: int) -> Getter:
    def value(doc: dict[str, Any]) -> str | None:
        targets = doc["targets"]
        return _entity_name(targets[index]) if len(targets) > index else None

    return value


def _targets(doc: dict[str, Any]) -> str | None:
    return _name_list([name for name in map(_entity_name, doc["targets"]) if name is not None])


def _target_type(doc: dict[str, Any]) -> str | None:
    targets = doc["targets"]
    return _value(targets[0]["type"]) if targets else None


def _type_matcher(wanted: frozenset[str]) -> Callable[[Any], bool]:
    """Whether a target type is one of `wanted` (any case), remembered per type string: targets come in
    a handful of types, and casefold would allocate for every target of every event."""
    known: dict[str, bool] = {}

    def matches(kind: Any) -> bool:
        if type(kind) is not str:
            return False
        hit = known.get(kind)
        if hit is None:
            hit = kind.casefold() in wanted
            if len(known) < 1_000:
                known[kind] = hit
        return hit

    return matches


def _first_of_type(wanted: frozenset[str]) -> Getter:
    matches = _type_matcher(wanted)

    def value(doc: dict[str, Any]) -> str | None:
        for target in doc["targets"]:
            if matches(target["type"]):
                name = _entity_name(target)
                if name is not None:
                    return name
        return None

    return value


def _all_of_type(wanted: frozenset[str]) -> Getter:
    matches = _type_matcher(wanted)

    def value(doc: dict[str, Any]) -> str | None:
        names = [_entity_name(target) for target in doc["targets"] if matches(target["type"])]
        return _name_list([name for name in names if name is not None])

    return value


def _first_change(side: str) -> Getter:
    """The old or new value of the first modified property (any target)."""

    def value(doc: dict[str, Any]) -> str | None:
        for target in doc["targets"]:
            for prop in target["modified_properties"]:
                return _clip(prop[side])
        return None

    return value


def _property(name: str, side: str) -> Getter:
    wanted = name.casefold()

    def value(doc: dict[str, Any]) -> str | None:
        for target in doc["targets"]:
            for prop in target["modified_properties"]:
                if prop["name"].casefold() == wanted:
                    return _clip(prop[side])
        return None

    return value


# Not properties of their own: Graph's summary pseudo-property (its value lists the other names), and an
# Exchange cmdlet's Identity parameter (it names the target).
_NOT_PROPERTIES = frozenset(("included updated properties", "identity"))


def _property_names(doc: dict[str, Any]) -> str | None:
    names = [
        name
        for target in doc["targets"]
        for prop in target["modified_properties"]
        if (name := _value(prop["name"])) is not None and name.casefold() not in _NOT_PROPERTIES
    ]
    return _name_list(list(dict.fromkeys(names)))


def _sensitive_types(doc: dict[str, Any]) -> str | None:
    dlp = doc.get("dlp")
    return _clip(dlp.get("sensitive_types")) if type(dlp) is dict else None


PLACEHOLDERS: dict[str, Getter] = {
    "actor": _actor,
    "actor_upn": _actor_field("upn"),
    "actor_type": _actor_field("type"),
    "client_app": _client_app,
    "ip": _actor_field("ip"),
    "target": _target(0),
    "target2": _target(1),
    "targets": _targets,
    "target_type": _target_type,
    "app": _first_of_type(_APPLICATION_TARGETS),
    "properties": _property_names,
    "old_value": _first_change("old"),
    "new_value": _first_change("new"),
    "operation": _field("operation"),
    "service": _field("service"),
    "category": _field("category"),
    "result": _field("result"),
    "reason": _field("result_reason"),
    "result_code": _field("result_code"),
    "country": _country,
    "city": _city,
    "dlp_policy": _block_field("dlp", "policy"),
    "dlp_rule": _block_field("dlp", "rule"),
    "sensitive_types": _sensitive_types,
    "alert_name": _block_field("security_alert", "name"),
    "alert_category": _block_field("security_alert", "category"),
    "alert_entity": _block_field("security_alert", "entity"),
    "severity": _severity,
}
"""Every plain placeholder. {actor} is the only one that always has a value."""

PARAMETRIZED_PLACEHOLDERS: dict[str, Callable[[str], Getter]] = {
    "property": lambda name: _property(name, "new"),
    "old": lambda name: _property(name, "old"),
    "target": lambda kind: _first_of_type(frozenset((kind.casefold(),))),
    "targets": lambda kind: _all_of_type(frozenset((kind.casefold(),))),
}
"""`{kind:ARGUMENT}` placeholders; the argument is only ever compared, never evaluated."""


def _getter(name: str, template: str) -> Getter:
    getter = PLACEHOLDERS.get(name)
    if getter is not None:
        return getter
    kind, colon, argument = name.partition(":")
    kind, argument = kind.strip(), argument.strip()
    if colon and argument and kind in PARAMETRIZED_PLACEHOLDERS:
        return PARAMETRIZED_PLACEHOLDERS[kind](argument)
    raise ValueError(
        f"unknown placeholder {{{name}}} in template {template!r}; known: "
        + ", ".join(sorted(PLACEHOLDERS))
        + ", "
        + ", ".join(f"{kind}:NAME" for kind in sorted(PARAMETRIZED_PLACEHOLDERS))
    )


def _renderer(literals: list[str], getters: list[Getter]) -> Renderer:
    """A closure that renders the template with plain concatenation (faster than % or join for the
    usual one to three values), or returns None as soon as a placeholder has no value."""
    count = len(getters)
    if count == 0:
        constant = literals[0]
        return lambda doc: constant
    if count == 1:
        (g0,), (l0, l1) = getters, literals

        def render1(doc: dict[str, Any]) -> str | None:
            v0 = g0(doc)
            return None if v0 is None else l0 + v0 + l1

        return render1
    if count == 2:
        (g0, g1), (l0, l1, l2) = getters, literals

        def render2(doc: dict[str, Any]) -> str | None:
            v0 = g0(doc)
            if v0 is None:
                return None
            v1 = g1(doc)
            return None if v1 is None else l0 + v0 + l1 + v1 + l2

        return render2
    if count == 3:
        (g0, g1, g2), (l0, l1, l2, l3) = getters, literals

        def render3(doc: dict[str, Any]) -> str | None:
            v0 = g0(doc)
            if v0 is None:
                return None
            v1 = g1(doc)
            if v1 is None:
                return None
            v2 = g2(doc)
            return None if v2 is None else l0 + v0 + l1 + v1 + l2 + v2 + l3

        return render3
    pairs = tuple(zip(getters, literals[1:], strict=True))
    head = literals[0]

    def render_many(doc: dict[str, Any]) -> str | None:
        parts = [head]
        for getter, literal in pairs:
            value = getter(doc)
            if value is None:
                return None
            parts.append(value)
            parts.append(literal)
        return "".join(parts)

    return render_many


@dataclass(frozen=True)
class Template:
    """A parsed template. `render` returns None when a placeholder has no value; values go in as they
    are (Mappings.summarize makes the whole summary one line)."""

    source: str
    placeholders: tuple[str, ...]
    render: Renderer = field(repr=False, compare=False)

    @classmethod
    def parse(cls, template: str) -> Template:
        """Raises ValueError for an unknown placeholder, a stray brace or an empty template."""
        if not template.strip():
            raise ValueError(f"template {template!r} is empty")
        literals: list[str] = []
        getters: list[Getter] = []
        names: list[str] = []
        position = 0
        for match in _PLACEHOLDER.finditer(template):
            literals.append(template[position : match.start()])
            name = match.group(1).strip()
            getters.append(_getter(name, template))
            names.append(name)
            position = match.end()
        literals.append(template[position:])
        if any("{" in literal or "}" in literal for literal in literals):
            raise ValueError(f"template {template!r} has a brace outside a {{placeholder}}")
        return cls(template, tuple(names), _renderer(literals, getters))

    @property
    def places_reason(self) -> bool:
        """Whether the template gives the failure reason or code itself (nothing is appended then)."""
        return "reason" in self.placeholders or "result_code" in self.placeholders


def failed_phrasing(template: str, failure_verbs: dict[str, str]) -> str | None:
    """The template with its first verb from `failure_verbs` (whole word, outside placeholders) turned
    into "failed to <base form>"; None when it has none."""
    parts = _PLACEHOLDER_SPLIT.split(template)
    for index in range(0, len(parts), 2):  # even indexes are literal text, odd ones placeholders
        literal = parts[index]
        for word in _WORD.finditer(literal):
            base = failure_verbs.get(word.group())
            if base is not None:
                parts[index] = f"{literal[: word.start()]}failed to {base}{literal[word.end() :]}"
                return "".join(parts)
    return None


def _with_detail(render: Renderer, details: tuple[Renderer, ...]) -> Renderer:
    """A failure renderer: the text, then ": " and the first complete failure_detail template."""

    def render_failure(doc: dict[str, Any]) -> str | None:
        text = render(doc)
        if text is None:
            return None
        for detail in details:
            value = detail(doc)
            if value is not None:
                return text + ": " + value
        return text

    return render_failure


def _failure_renderers(templates: Iterable[Template], details: tuple[Template, ...]) -> tuple[Renderer, ...]:
    detail_renderers = tuple(template.render for template in details)
    return tuple(
        template.render if template.places_reason else _with_detail(template.render, detail_renderers)
        for template in templates
    )


DEFAULT_FAILURE_DETAIL = "{reason}"
BUILTIN_SUCCESS = (
    Template.parse("{actor} performed '{operation}'"),
    Template.parse("{actor} performed an action"),
)
BUILTIN_FAILURE = (
    Template.parse("{actor} failed to perform '{operation}'"),
    Template.parse("{actor} failed to perform an action"),
)


@dataclass(frozen=True)
class OperationTemplates:
    """The templates of one operation (or a default): `failure` is the configured `failure:` list, or
    the success templates turned around with failure_verbs (`failure_derived`)."""

    success: tuple[Template, ...]
    failure: tuple[Template, ...]
    failure_derived: bool = False


@dataclass
class SourceSummaries:
    default: OperationTemplates
    operations: dict[str, OperationTemplates] = field(default_factory=dict)
    fallback: str | None = None  # another source whose operation templates apply when none matches here
    failure_detail: tuple[Template, ...] = ()  # what follows ": " in a failure summary


# What summarize tries for one source and operation, in order: (success renderers, failure renderers).
# Both end with the built-in fallback, which always renders.
_Chains = tuple[tuple[Renderer, ...], tuple[Renderer, ...]]


@dataclass
class Mappings:
    default: OperationTemplates
    sources: dict[str, SourceSummaries]
    operation_types: dict[str, str]
    failure_verbs: dict[str, str] = field(default_factory=dict)
    failure_detail: tuple[Template, ...] = (Template.parse(DEFAULT_FAILURE_DETAIL),)
    _operation_type_cache: dict[tuple[str, str | None], str] = field(default_factory=dict, repr=False)
    _chain_cache: dict[str, dict[str, _Chains]] = field(default_factory=dict, repr=False)
    _cached_chains: int = field(default=0, repr=False)

    def operation_templates(self, source: str, operation: str) -> OperationTemplates | None:
        """The templates configured for this operation (directly or through the source's fallback);
        None when the source's default applies."""
        summaries = self.sources.get(source)
        if summaries is None:
            return None
        key = operation_key(operation)
        found = summaries.operations.get(key)
        if found is None and summaries.fallback in self.sources:
            found = self.sources[summaries.fallback].operations.get(key)
        return found

    def _chains(self, source: str, operation: Any) -> _Chains:
        summaries = self.sources.get(source)
        default = summaries.default if summaries is not None else self.default
        details = summaries.failure_detail if summaries is not None else self.failure_detail
        specific = self.operation_templates(source, operation or "")
        success = (specific.success if specific else ()) + default.success + BUILTIN_SUCCESS
        failure = (specific.failure if specific else ()) + default.failure + BUILTIN_FAILURE
        chains = (tuple(template.render for template in success), _failure_renderers(failure, details))
        if self._cached_chains < _CACHE_LIMIT:
            self._chain_cache.setdefault(source, {})[operation] = chains
            self._cached_chains += 1
        return chains

    def summarize(self, source: str, doc: dict[str, Any]) -> str:
        """The event's summary: complete (no gaps), and saying so when the action failed."""
        operation = doc["operation"]
        by_operation = self._chain_cache.get(source)
        chains = by_operation.get(operation) if by_operation is not None else None
        if chains is None:
            chains = self._chains(source, operation)
        for render in chains[1] if doc["result"] == "failure" else chains[0]:
            text = render(doc)
            if text is not None:
                return text if text.isprintable() and "  " not in text else _tidy(text)
        raise AssertionError("the built-in fallback always renders")  # pragma: no cover

    def operation_type(self, operation: str, native: str | None) -> str:
        cache_key = (operation, native)
        cached = self._operation_type_cache.get(cache_key)
        if cached is None:
            cached = self.operation_types.get(operation_key(operation)) or derive_operation_type(
                operation, native
            )
            if len(self._operation_type_cache) < _CACHE_LIMIT:
                self._operation_type_cache[cache_key] = cached
        return cached


def _mapping(parent: dict[str, Any], key: str, where: str) -> dict[Any, Any]:
    value = parent.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"mappings: `{where}` must be a mapping")
    return value


def _template_list(value: Any, where: str) -> tuple[Template, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(item, str) for item in items):
        raise ValueError(f"mappings: {where} must be a template string or a non-empty list of them")
    try:
        return tuple(Template.parse(item) for item in items)
    except ValueError as exc:
        raise ValueError(f"mappings: {where}: {exc}") from None


def _derived_failures(success: tuple[Template, ...], failure_verbs: dict[str, str]) -> tuple[Template, ...]:
    derived = (failed_phrasing(template.source, failure_verbs) for template in success)
    return tuple(Template.parse(text) for text in derived if text is not None)


def _operation_templates(
    value: Any, where: str, failure_verbs: dict[str, str], fallback_success: tuple[Template, ...]
) -> OperationTemplates:
    """A template, a list of them, or {success: ..., failure: ...} (either key may be left out)."""
    if not isinstance(value, dict):
        success = _template_list(value, where)
        return OperationTemplates(success, _derived_failures(success, failure_verbs), failure_derived=True)
    unknown = set(value) - {"success", "failure"}
    if unknown or not value:
        raise ValueError(
            f"mappings: {where} must be a template, a list of templates or a mapping with `success` "
            f"and/or `failure`, not {sorted(map(str, unknown))}"
        )
    success = _template_list(value["success"], f"{where}.success") if "success" in value else fallback_success
    if "failure" in value:
        return OperationTemplates(success, _template_list(value["failure"], f"{where}.failure"))
    return OperationTemplates(success, _derived_failures(success, failure_verbs), failure_derived=True)


def _failure_verbs(summaries: dict[str, Any]) -> dict[str, str]:
    verbs = _mapping(summaries, "failure_verbs", "summaries.failure_verbs")
    for past, base in verbs.items():
        if not (isinstance(past, str) and isinstance(base, str) and past.isalpha() and base.strip()):
            raise ValueError(
                f"mappings: summaries.failure_verbs: {past!r}: {base!r} must map one word to its base form"
            )
    return {past: base.strip() for past, base in verbs.items()}


def parse_mappings(data: Any) -> Mappings:
    if not isinstance(data, dict):
        raise ValueError("mappings: the document must be a mapping")
    summaries = _mapping(data, "summaries", "summaries")
    failure_verbs = _failure_verbs(summaries)
    failure_detail = _template_list(
        summaries.get("failure_detail", DEFAULT_FAILURE_DETAIL), "summaries.failure_detail"
    )
    default = _operation_templates(
        summaries.get("default", "{actor} performed '{operation}' on {target}"),
        "summaries.default",
        failure_verbs,
        BUILTIN_SUCCESS,
    )
    sources: dict[str, SourceSummaries] = {}
    for source, config in _mapping(summaries, "sources", "summaries.sources").items():
        if not isinstance(config, dict):
            raise ValueError(f"mappings: summaries.sources.{source} must be a mapping")
        where = f"summaries.sources.{source}"
        source_default = (
            _operation_templates(config["default"], f"{where}.default", failure_verbs, default.success)
            if "default" in config
            else default
        )
        operations = _mapping(config, "operations", f"{where}.operations")
        sources[str(source)] = SourceSummaries(
            default=source_default,
            operations={
                operation_key(str(name)): _operation_templates(
                    value, f"{where}.operations.{name}", failure_verbs, ()
                )
                for name, value in operations.items()
            },
            fallback=str(config["fallback"]) if config.get("fallback") else None,
            failure_detail=_template_list(config["failure_detail"], f"{where}.failure_detail")
            if "failure_detail" in config
            else failure_detail,
        )
    operation_types: dict[str, str] = {}
    for name, kind in _mapping(data, "operation_types", "operation_types").items():
        if kind not in OPERATION_TYPES:
            raise ValueError(
                f"mappings: operation_types.{name}: {kind!r} is not one of {sorted(OPERATION_TYPES)}"
            )
        operation_types[operation_key(str(name))] = kind
    return Mappings(
        default=default,
        sources=sources,
        operation_types=operation_types,
        failure_verbs=failure_verbs,
        failure_detail=failure_detail,
    )


@functools.lru_cache(maxsize=8)
def _load(path: Path) -> Mappings:
    return parse_mappings(load_yaml_bounded(path.read_text(encoding="utf-8")))


_default: Mappings | None = None


def load_mappings(path: Path | None = None) -> Mappings:
    """The parsed mappings file (default shared/ingestion/mappings.yaml), cached per path."""
    global _default
    if path is not None:
        return _load(Path(path).resolve())
    if _default is None:
        _default = _load(DEFAULT_MAPPINGS_PATH)
    return _default


def clear_mappings_cache() -> None:
    """Forget loaded mappings, so an edited file is read again."""
    global _default
    _default = None
    _load.cache_clear()
