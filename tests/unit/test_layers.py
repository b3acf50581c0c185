"""The layering of shared/ (pyproject.toml [tool.importlinter]) and the rule that shared/ never imports
azure.functions. Each check is also shown to fail on a forbidden import."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
BLUEPRINTS = (
    "probe_timer",
    "ingest_worker",
    "alert_worker",
    "queue_consumer",
    "query_api",
    "datasets_timer",
    "governance_worker",
)


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=root, capture_output=True, text=True, timeout=300, check=False
    )


def azure_functions_imports(package: Path) -> list[str]:
    found = []
    for path in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            else:
                continue
            if any(name == "azure.functions" or name.startswith("azure.functions.") for name in names):
                found.append(f"{path.relative_to(package.parent)}:{node.lineno}")
    return found


def test_shared_keeps_its_layers() -> None:
    result = lint_imports(PROJECT_ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 kept, 0 broken" in result.stdout


def test_a_forbidden_import_breaks_the_layers(tmp_path: Path) -> None:
    copy = tmp_path / "project"
    shutil.copytree(PROJECT_ROOT / "shared", copy / "shared", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(PROJECT_ROOT / "pyproject.toml", copy / "pyproject.toml")
    clock = copy / "shared" / "platform" / "clock.py"
    clock.write_text(clock.read_text(encoding="utf-8") + "\nfrom shared.api import service  # noqa\n")
    result = lint_imports(copy)
    assert result.returncode != 0
    assert "shared.platform is not allowed to import shared.api" in result.stdout


def test_shared_never_imports_azure_functions(tmp_path: Path) -> None:
    assert azure_functions_imports(PROJECT_ROOT / "shared") == []
    # The Blueprints are where azure.functions belongs, so the check does see it.
    assert all(azure_functions_imports(PROJECT_ROOT / folder) for folder in BLUEPRINTS)
    planted = tmp_path / "shared"
    planted.mkdir()
    (planted / "leak.py").write_text("from azure.functions import HttpRequest\n", encoding="utf-8")
    assert azure_functions_imports(planted) == ["shared/leak.py:1"]
