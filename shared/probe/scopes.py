"""Drift scopes from `drift.yaml`: which normalized events are configuration changes, and whose pipeline."""

from __future__ import annotations

import os
import re
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from shared.platform.yaml_bounded import load_yaml_bounded
from shared.probe.state import Change

DEFAULT_DRIFT_FILE = Path(__file__).with_name("drift.yaml")
_SETTING = re.compile(r"%([A-Za-z0-9_]+)%")


class DriftConfigError(ValueError):
    pass


class PipelineTarget(BaseModel):
    model_config = ConfigDict(extra="forbid")

    organization: str
    project: str
    pipeline_id: int
    branch: str = "main"
    template_parameters: dict[str, str] = Field(default_factory=dict)
    summary_parameter: str | None = None  # a string template parameter that receives the trigger JSON

    @property
    def ref_name(self) -> str:
        return self.branch if self.branch.startswith("refs/") else f"refs/heads/{self.branch}"


class DriftRule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: str | None = None
    services: list[str] = Field(default_factory=list)
    categories: list[str] = Field(default_factory=list)
    operations: list[str] = Field(default_factory=list)
    operation_contains: list[str] = Field(default_factory=list)
    operation_types: list[str] = Field(default_factory=list)
    exclude_operation_types: list[str] = Field(default_factory=list)
    results: list[str] = Field(default_factory=list)

    @field_validator(
        "services", "categories", "operations", "operation_contains", "operation_types",
        "exclude_operation_types", "results",
    )  # fmt: skip
    @classmethod
    def _lower(cls, values: list[str]) -> list[str]:
        return [v.lower() for v in values]

    def matches(self, event: dict[str, Any]) -> bool:
        def low(name: str) -> str:
            return str(event.get(name) or "").lower()

        operation = low("operation")
        return (
            (self.source is None or event.get("source") == self.source)
            and (not self.services or low("service") in self.services)
            and (not self.categories or low("category") in self.categories)
            and (not self.operations or operation in self.operations)
            and (not self.operation_contains or any(p in operation for p in self.operation_contains))
            and (not self.operation_types or low("operation_type") in self.operation_types)
            and low("operation_type") not in self.exclude_operation_types
            and (not self.results or low("result") in self.results)
        )


class DriftScope(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
    pipeline: PipelineTarget | None = None
    rules: list[DriftRule] = Field(min_length=1)

    def matches(self, event: dict[str, Any]) -> bool:
        return any(rule.matches(event) for rule in self.rules)


class DriftConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scopes: list[DriftScope] = Field(min_length=1)

    def changes_by_scope(self, events: list[dict[str, Any]]) -> dict[str, list[Change]]:
        found: dict[str, list[Change]] = {scope.name: [] for scope in self.scopes}
        for event in events:
            for scope in self.scopes:
                if scope.matches(event):
                    actor = event.get("actor") or {}
                    found[scope.name].append(
                        Change(
                            event_id=event["id"],
                            at=event["timestamp"],
                            service=str(event.get("service")),
                            operation=str(event.get("operation")),
                            actor=actor.get("upn") or actor.get("display") or actor.get("id"),
                        )
                    )
        return found


def _resolve_settings(value: Any) -> Any:
    """`%NAME%` in drift.yaml takes the app setting NAME; a scope whose pipeline is unset has none."""
    if isinstance(value, dict):
        return {k: _resolve_settings(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve_settings(v) for v in value]
    if isinstance(value, str):
        return _SETTING.sub(lambda m: os.environ.get(m.group(1), ""), value)
    return value


def parse_drift_config(text: str, source: str = "drift.yaml") -> DriftConfig:
    """drift.yaml's text as a DriftConfig; DriftConfigError for invalid YAML (including a document past
    shared.platform.yaml_bounded's bounds), a top level that is not a mapping, or scopes that do not
    validate."""
    try:
        loaded = load_yaml_bounded(text)
    except yaml.YAMLError as exc:
        raise DriftConfigError(f"{source}: not valid YAML: {str(exc)[:300]}") from None
    if loaded is not None and not isinstance(loaded, dict):
        raise DriftConfigError(f"{source}: the top level must be a mapping with a 'scopes' list")
    document = _resolve_settings(loaded or {})
    for scope in document.get("scopes") or []:
        pipeline = scope.get("pipeline")
        if isinstance(pipeline, dict) and not all(
            pipeline.get(k) for k in ("organization", "project", "pipeline_id")
        ):
            scope["pipeline"] = None  # not configured yet: the probe still tracks the scope
    try:
        return DriftConfig.model_validate(document)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}" for error in exc.errors()
        )
        raise DriftConfigError(f"{source}: {problems}") from exc


@cache
def load_drift_config(path: str | None = None) -> DriftConfig:
    file = Path(path) if path else DEFAULT_DRIFT_FILE
    return parse_drift_config(file.read_text(encoding="utf-8"), str(file))
