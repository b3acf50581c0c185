"""One rule as YAML text, as the console's editor shows and sends it.

`load_rule_yaml` reads the text within shared.platform.yaml_bounded's bounds (a YAML bomb is refused,
not expanded) and refuses anything but one mapping; a syntax error keeps the line and column YAML
reported. `rule_yaml` writes a rule in the rule file's canonical form (shared.rules.editing). A
`YamlLocator` finds where a field named by a validation problem (`when.all[1].regex`) sits in the text,
so an editor can show the problem at its line: the key's line when the field is there, else the line
of the nearest enclosing field that is (a missing `when` points at the rule itself).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

import yaml

from shared.platform.yaml_bounded import load_yaml_bounded

MAX_RULE_YAML_CHARS = 64 * 1024
_YAML_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_SEGMENT = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


class RuleYamlError(ValueError):
    """Rule YAML that cannot be read: not YAML, past the bounds, or not one mapping. `line` and
    `column` (1-based) say where, when YAML said so."""

    def __init__(self, message: str, line: int | None = None, column: int | None = None) -> None:
        self.message = message
        self.line = line
        self.column = column
        super().__init__(message)

    def detail(self) -> dict[str, Any]:
        """The problem as a problem body's `errors` entry: {field: "yaml", message, line?, column?}."""
        entry: dict[str, Any] = {"field": "yaml", "message": self.message}
        if self.line is not None:
            entry["line"] = self.line
            entry["column"] = self.column or 1
        return entry


def load_rule_yaml(text: str) -> dict[str, Any]:
    """One rule's fields from its YAML text. RuleYamlError when it is not YAML, too large, nested or
    expanded past the bounds, or not a mapping."""
    if len(text) > MAX_RULE_YAML_CHARS:
        raise RuleYamlError(f"a rule's YAML may be at most {MAX_RULE_YAML_CHARS} characters")
    try:
        document = load_yaml_bounded(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        line = mark.line + 1 if mark is not None else None
        column = mark.column + 1 if mark is not None else None
        raise RuleYamlError(f"not valid YAML: {problem}"[:300], line, column) from None
    except yaml.YAMLError as exc:
        raise RuleYamlError(f"not valid YAML: {exc}"[:300]) from None
    except (ValueError, TypeError, OverflowError) as exc:  # a value YAML's constructors cannot build:
        # a date such as 2026-13-45, an integer past Python's 4,300 digits
        raise RuleYamlError(f"not valid YAML: a value cannot be read ({str(exc)[:200]})") from None
    if not isinstance(document, dict):
        raise RuleYamlError("the YAML must be one rule: a mapping of its fields (id, title, ..., when)", 1, 1)
    where = _non_finite(document, "")
    if where is not None:
        line, column = YamlLocator(text).locate(where) or (None, None)
        raise RuleYamlError(f"{where}: numbers must be finite (not .nan or .inf)", line, column)
    return document


def _non_finite(value: Any, path: str) -> str | None:
    """The field path of the first NaN or infinite number in `value` (JSON has neither), or None."""
    if isinstance(value, float) and not math.isfinite(value):
        return path or "body"
    if isinstance(value, dict):
        items: list[tuple[str, Any]] = [
            (f"{path}.{key}" if path else str(key), v) for key, v in value.items()
        ]
    elif isinstance(value, list):
        items = [(f"{path}[{index}]", v) for index, v in enumerate(value)]
    else:
        return None
    for child_path, child in items:
        found = _non_finite(child, child_path)
        if found is not None:
            return found
    return None


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _is_leaf(value: Any) -> bool:
    """A list of plain values, or a mapping of plain values and such lists: written on one line."""
    if isinstance(value, list):
        return all(_is_scalar(v) for v in value)
    return isinstance(value, dict) and all(
        _is_scalar(v) or (isinstance(v, list) and _is_leaf(v)) for v in value.values()
    )


class _RuleDumper(yaml.SafeDumper):
    """Writes a rule as the shipped rule file does: short lists and predicates on one line
    (`mitre: [T1098]`, `- {field: operation, eq: Add user}`), list items indented under their key."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)

    def represent_list(self, data: Any) -> yaml.SequenceNode:
        return self.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=_is_leaf(data))

    def represent_dict(self, data: Any) -> yaml.MappingNode:
        return self.represent_mapping("tag:yaml.org,2002:map", data, flow_style=_is_leaf(data))


class _Rule(dict[str, Any]):
    """The rule itself: always written as a block, one field per line."""


_RuleDumper.add_representer(list, _RuleDumper.represent_list)
_RuleDumper.add_representer(dict, _RuleDumper.represent_dict)
_RuleDumper.add_representer(
    _Rule, lambda dumper, data: dumper.represent_mapping("tag:yaml.org,2002:map", data, flow_style=False)
)


def rule_yaml(document: Mapping[str, Any]) -> str:
    """A rule document (shared.rules.editing.rule_document) as YAML, keys in file order, in the shipped
    file's style."""
    # one line per value (no folding of long text), so a problem's line is the line of its field
    text: str = yaml.dump(
        _Rule(document), Dumper=_RuleDumper, sort_keys=False, allow_unicode=True, width=100_000
    )
    return text


def field_segments(field: str) -> list[str | int]:
    """`when.all[1].regex` as ["when", "all", 1, "regex"]; `body` (the whole rule) as []."""
    if field == "body":
        return []
    return [int(index) if index else name for name, index in _SEGMENT.findall(field)]


class YamlLocator:
    """Where fields sit in one rule's YAML text (already read by load_rule_yaml, so within bounds)."""

    def __init__(self, text: str) -> None:
        self._root: yaml.Node | None = yaml.compose(text, Loader=_YAML_LOADER)

    def locate(self, field: str) -> tuple[int, int] | None:
        """The (line, column), 1-based, of `field`, or of its nearest enclosing field in the text."""
        node = self._root
        if node is None:
            return None
        mark = node.start_mark
        for segment in field_segments(field):
            found = _child(node, segment)
            if found is None:
                break
            mark, node = found
        return mark.line + 1, mark.column + 1


def _child(node: yaml.Node, segment: str | int) -> tuple[yaml.Mark, yaml.Node] | None:
    """The mark to point at for `segment` under `node` (a key's own mark, an item's start) and the
    node it holds."""
    if isinstance(segment, int):
        if isinstance(node, yaml.SequenceNode) and 0 <= segment < len(node.value):
            item: yaml.Node = node.value[segment]
            return item.start_mark, item
        return None
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.value == segment:
                return key.start_mark, value
    return None
