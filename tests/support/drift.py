"""A drift.yaml of one uniquely named scope, so tests never share probe state."""

from __future__ import annotations

import uuid
from pathlib import Path

from shared.probe.scopes import DEFAULT_DRIFT_FILE


def unique_drift_file(directory: Path, prefix: str) -> tuple[Path, str]:
    """The shipped drift.yaml with its scope renamed; returns the file and the scope name."""
    scope = f"{prefix}-{uuid.uuid4().hex[:10]}"
    text = DEFAULT_DRIFT_FILE.read_text(encoding="utf-8").replace("name: tenant-config", f"name: {scope}", 1)
    path = directory / f"drift-{scope}.yaml"
    path.write_text(text, encoding="utf-8")
    return path, scope
