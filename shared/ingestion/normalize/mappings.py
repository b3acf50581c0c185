"""User-editable summaries and operation types (shared/ingestion/mappings.yaml), and a tiny safe
template renderer.

A template is text with `{name}` placeholders taken from a fixed whitelist of values computed from the
normalized event (see PLACEHOLDERS), plus `{property:NAME}` and `{old:NAME}`: the new and the old value
of the first modified property called NAME on any target (case-insensitive). Nothing else is evaluated:
no attribute or index access, no format specs, no eval. An unknown placeholder renders as "?". A summary
may also be a list of templates: the first one whose placeholders all have a value wins; when none does,
the last one renders with "?" gaps.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared.ingestion.normalize._common import derive_operation_type, operation_key
from shared.platform.yaml_bounded import load_yaml_bounded

DEFAULT_MAPPINGS_PATH = Path(__file__).resolve().parent.parent / "mappings.yaml"
MISSING = "?"
MAX_VALUE_LENGTH = 200
OPERATION_TYPES = frozenset(
    ("create", "update", "delete", "assign", "unassign", "action", "read", "sign_in", "other")
)
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


def _clip(value: Any) -> str | None:
    """A value as summary text: one line, at most MAX_VALUE_LENGTH characters; None when empty."""
    text: str
    if type(value) is str:
        text = value
    elif value is None or isinstance(value, dict):
        return None
    elif isinstance(value, list):
        text = ", ".join(filter(None, (_clip(item) for item in value)))
    else:
        text = str(value)
    if not text:
        return None
    if not text.isprintable():
        text = " ".join("".join(char if char.isprintable() else " " for char in text).split())
    if len(text) > MAX_VALUE_LENGTH:
        text = text[: MAX_VALUE_LENGTH - 1] + "…"
    return text


def _entity_name(entity: dict[str, Any]) -> str | None:
    name = entity["display"] or entity.get("upn") or entity["id"]  # targets have no upn
    if type(name) is str and len(name) <= MAX_VALUE_LENGTH and name.isprintable():
        return name  # the common case, without a call to _clip
    return _clip(name)


def _actor(doc: dict[str, Any]) -> str | None:
    actor = doc["actor"]
    name = _entity_name(actor)
    if name is None and actor["type"] == "system":
        return "System"
    return name


def _target(index: int) -> Callable[[dict[str, Any]], str | None]:
    def value(doc: dict[str, Any]) -> str | None:
        targets = doc["targets"]
        return _entity_name(targets[index]) if len(targets) > index else None

    return value


def _targets(doc: dict[str, Any]) -> str | None:
    return _clip([_entity_name(target) for target in doc["targets"]])


def _field(name: str) -> Callable[[dict[str, Any]], str | None]:
    return lambda doc: _clip(doc.get(name))


def _actor_field(name: str) -> Callable[[dict[str, Any]], str | None]:
    return lambda doc: _clip(doc["actor"].get(name))


def _property(name: str, side: str) -> Callable[[dict[str, Any]], str | None]:
    wanted = name.casefold()

    def value(doc: dict[str, Any]) -> str | None:
        for target in doc["targets"]:
            for prop in target["modified_properties"]:
                if prop["name"].casefold() == wanted:
                    return _clip(prop[side])
        return None

    return value


def _unknown(doc: dict[str, Any]) -> None:
    return None


PLACEHOLDERS: dict[str, Callable[[dict[str, Any]], str | None]] = {
    "actor": _actor,
    "actor_upn": _actor_field("upn"),
    "actor_type": _actor_field("type"),
    "ip": _actor_field("ip"),
    "target": _target(0),
    "target2": _target(1),
    "targets": _targets,
    "target_type": lambda doc: _clip(doc["targets"][0]["type"]) if doc["targets"] else None,
    "operation": _field("operation"),
    "service": _field("service"),
    "category": _field("category"),
    "result": _field("result"),
    "reason": _field("result_reason"),
}


_PROPERTY_SIDES = {"property": "new", "old": "old"}


@dataclass(frozen=True)
class Template:
    """A parsed template: literal text around value getters, joined with a prebuilt "%s" format."""

    source: str
    getters: tuple[Callable[[dict[str, Any]], str | None], ...]
    _format: str = field(repr=False)

    @classmethod
    def parse(cls, template: str) -> Template:
        getters: list[Callable[[dict[str, Any]], str | None]] = []
        literals: list[str] = []
        position = 0
        for match in _PLACEHOLDER.finditer(template):
            literals.append(template[position : match.start()])
            name = match.group(1).strip()
            kind, colon, argument = name.partition(":")
            if colon and kind in _PROPERTY_SIDES and argument.strip():
                getters.append(_property(argument.strip(), _PROPERTY_SIDES[kind]))
            elif name in PLACEHOLDERS:
                getters.append(PLACEHOLDERS[name])
            else:
                getters.append(_unknown)  # never looked up, never evaluated: renders as "?"
            position = match.end()
        literals.append(template[position:])
        # Values are only ever substituted into this format, never interpreted.
        return cls(template, tuple(getters), "%s".join(literal.replace("%", "%%") for literal in literals))

    def render(self, doc: dict[str, Any], strict: bool = False) -> str | None:
        """The summary text; with strict=True, None when a placeholder has no value."""
        values = [getter(doc) for getter in self.getters]
        if None in values:
            if strict:
                return None
            values = [MISSING if value is None else value for value in values]
        return self._format % tuple(values)


def render_summary(templates: tuple[Template, ...], doc: dict[str, Any]) -> str:
    for template in templates[:-1]:
        rendered = template.render(doc, strict=True)
        if rendered is not None:
            return rendered
    return templates[-1].render(doc) or ""


def _templates(value: Any, where: str) -> tuple[Template, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(item, str) for item in items):
        raise ValueError(f"mappings: {where} must be a template string or a non-empty list of them")
    return tuple(Template.parse(item) for item in items)


@dataclass
class SourceSummaries:
    default: tuple[Template, ...]
    operations: dict[str, tuple[Template, ...]] = field(default_factory=dict)
    fallback: str | None = None  # another source whose operation templates apply when none matches here


@dataclass
class Mappings:
    default: tuple[Template, ...]
    sources: dict[str, SourceSummaries]
    operation_types: dict[str, str]
    _operation_type_cache: dict[tuple[str, str | None], str] = field(default_factory=dict, repr=False)
    _template_cache: dict[tuple[str, str], tuple[Template, ...]] = field(default_factory=dict, repr=False)

    def templates_for(self, source: str, operation: str) -> tuple[Template, ...]:
        cache_key = (source, operation)
        found = self._template_cache.get(cache_key)
        if found is not None:
            return found
        summaries = self.sources.get(source)
        if summaries is None:
            found = self.default
        else:
            key = operation_key(operation)
            found = summaries.operations.get(key)
            if found is None and summaries.fallback in self.sources:
                found = self.sources[summaries.fallback].operations.get(key)
            found = found or summaries.default
        if len(self._template_cache) < 10_000:
            self._template_cache[cache_key] = found
        return found

    def summarize(self, source: str, doc: dict[str, Any]) -> str:
        return render_summary(self.templates_for(source, doc["operation"]), doc)

    def operation_type(self, operation: str, native: str | None) -> str:
        cache_key = (operation, native)
        cached = self._operation_type_cache.get(cache_key)
        if cached is None:
            cached = self.operation_types.get(operation_key(operation)) or derive_operation_type(
                operation, native
            )
            if len(self._operation_type_cache) < 10_000:
                self._operation_type_cache[cache_key] = cached
        return cached


def _mapping(parent: dict[str, Any], key: str, where: str) -> dict[Any, Any]:
    value = parent.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"mappings: `{where}` must be a mapping")
    return value


def parse_mappings(data: Any) -> Mappings:
    if not isinstance(data, dict):
        raise ValueError("mappings: the document must be a mapping")
    summaries = _mapping(data, "summaries", "summaries")
    default = _templates(summaries.get("default", "{actor} {operation} {target}"), "summaries.default")
    sources: dict[str, SourceSummaries] = {}
    for source, config in _mapping(summaries, "sources", "summaries.sources").items():
        if not isinstance(config, dict):
            raise ValueError(f"mappings: summaries.sources.{source} must be a mapping")
        operations = _mapping(config, "operations", f"summaries.sources.{source}.operations")
        sources[str(source)] = SourceSummaries(
            default=_templates(config["default"], f"summaries.sources.{source}.default")
            if "default" in config
            else default,
            operations={
                operation_key(str(name)): _templates(value, f"summaries.sources.{source}.operations.{name}")
                for name, value in operations.items()
            },
            fallback=str(config["fallback"]) if config.get("fallback") else None,
        )
    operation_types: dict[str, str] = {}
    for name, kind in _mapping(data, "operation_types", "operation_types").items():
        if kind not in OPERATION_TYPES:
            raise ValueError(
                f"mappings: operation_types.{name}: {kind!r} is not one of {sorted(OPERATION_TYPES)}"
            )
        operation_types[operation_key(str(name))] = kind
    return Mappings(default=default, sources=sources, operation_types=operation_types)


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
