"""YAML the app loads from storage or from a file an admin edits, within bounds.

`load_yaml_bounded` checks nesting depth and the number of nodes aliases expand to before anything is
built, so a "billion laughs" document (a few hundred bytes that expand to billions of nodes) or a
deeply nested one is refused instead of stalling or exhausting the worker. Every YAML the app reads
goes through it: the rule file and its override blob (shared.rules.source, the rules API), drift.yaml
(shared.probe.scopes) and the field mappings (shared.ingestion.normalize.mappings).
"""

from __future__ import annotations

from typing import Any

import yaml

MAX_YAML_DEPTH = 64
MAX_YAML_NODES = 200_000  # nodes after expanding aliases; the shipped rule file has about 2,000

_YAML_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class YamlTooLargeError(yaml.YAMLError):
    """A YAML document nests too deeply or its aliases expand to too many nodes."""


def _check_yaml_bounds(text: str, max_depth: int, max_nodes: int) -> None:
    """Walk the parser's events (nothing is built): refuse deep nesting and alias expansion past
    `max_nodes`, counting each alias as the size of the node it repeats."""
    anchored: dict[str, int] = {}
    open_nodes: list[tuple[str | None, int]] = []  # (anchor, total when the collection opened)
    total = 0
    for event in yaml.parse(text, Loader=_YAML_LOADER):
        if isinstance(event, yaml.AliasEvent):
            if any(anchor == event.anchor for anchor, _ in open_nodes):
                raise YamlTooLargeError("the YAML holds a recursive alias")
            total += anchored.get(event.anchor or "", 1)
        elif isinstance(event, yaml.ScalarEvent):
            total += 1
            if event.anchor:
                anchored[event.anchor] = 1
        elif isinstance(event, yaml.CollectionStartEvent):
            total += 1
            open_nodes.append((event.anchor, total))
            if len(open_nodes) > max_depth:
                raise YamlTooLargeError(f"the YAML nests deeper than {max_depth} levels")
        elif isinstance(event, yaml.CollectionEndEvent):
            anchor, started = open_nodes.pop()
            if anchor:
                anchored[anchor] = total - started + 1
        if total > max_nodes:
            raise YamlTooLargeError(f"the YAML expands to more than {max_nodes} nodes")


def load_yaml_bounded(text: str, *, max_depth: int = MAX_YAML_DEPTH, max_nodes: int = MAX_YAML_NODES) -> Any:
    """yaml.safe_load (the C loader when installed), after checking depth and alias expansion.

    Raises yaml.YAMLError (YamlTooLargeError for a document past the bounds)."""
    _check_yaml_bounds(text, max_depth, max_nodes)
    return yaml.load(text, Loader=_YAML_LOADER)  # noqa: S506 - a safe loader
