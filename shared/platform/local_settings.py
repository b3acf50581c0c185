"""`local.settings.json` as a settings source, for local runs: its `Values`, read like the environment."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

from pydantic_settings import BaseSettings, EnvSettingsSource
from pydantic_settings.sources.utils import parse_env_vars

LOCAL_SETTINGS_ENV = "AOC_LOCAL_SETTINGS_FILE"


def local_settings_path() -> Path:
    return Path(os.environ.get(LOCAL_SETTINGS_ENV) or "local.settings.json")


def read_local_settings_values(path: Path) -> dict[str, str]:
    """The `Values` of a local.settings.json file, as strings; {} when the file does not exist."""
    if not path.is_file():
        return {}
    document = json.loads(path.read_text(encoding="utf-8") or "{}")
    values = document.get("Values") or {}
    if not isinstance(values, dict):
        raise ValueError(f"{path}: 'Values' must be an object")
    return {str(k): "" if v is None else str(v) for k, v in values.items()}


class LocalSettingsJsonSource(EnvSettingsSource):
    """Reads `local.settings.json` Values with the same alias and case rules as the environment."""

    def __init__(self, settings_cls: type[BaseSettings], path: Path) -> None:
        self._path = path
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        values = read_local_settings_values(self._path)
        return parse_env_vars(values, self.case_sensitive, self.env_ignore_empty, self.env_parse_none_str)
