""".gitignore and .funcignore, read by git itself (the reference for their shared syntax).

.funcignore decides what `azd deploy` zips. The package must hold every module and data file the app
loads, and nothing else: no virtual environment of any name, no caches, docs, tests or local
settings. .gitignore must keep azd's environments (webhook URLs in .azure/<env>/.env) out of git.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
APP_ENTRIES = ("function_app.py", "host.json", "requirements.txt")

# What a developer's tree holds beside the repository's own files; none of it may ship.
NEVER_SHIPPED = (
    "myenv/pyvenv.cfg",
    "myenv/bin/python",
    "myenv/lib/python3.11/site-packages/requests/__init__.py",
    ".venv/pyvenv.cfg",
    ".venv/lib/python3.11/site-packages/pydantic/__init__.py",
    "shared/__pycache__/settings.cpython-311.pyc",
    "query_api/__pycache__/routes.cpython-311.pyc",
    "shared/stale.pyc",
    ".pytest_cache/v/cache/nodeids",
    ".ruff_cache/0.8.0/cache",
    ".mypy_cache/3.11/shared.json",
    ".hypothesis/examples/x",
    "shared/.pytest_cache/README.md",
    "docs/guide.md",
    "shared/NOTES.md",
    "README.md",
    "local.settings.json",
    ".azure/aoc-prod/.env",
    ".azure/config.json",
    ".env",
    "app.zip",
    "devtools/node_modules/azurite/package.json",
    ".local/azurite/__blobstorage__/x",
    # The console is the Static Web App's (azure.yaml service web), never the Function App's.
    "web/package.json",
    "web/src/main.js",
    "web/staticwebapp.config.json",
    "web/dist/index.html",
    "web/dist/config.json",
    "web/node_modules/preact/package.json",
)
# Prebuilt dependencies (README, manual deployment) ship as they are.
PREBUILT = (
    ".python_packages/lib/site-packages/requests/__init__.py",
    ".python_packages/lib/site-packages/cryptography/include/x.h",
)


def _git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout


@pytest.fixture(scope="module")
def repository_files() -> list[str]:
    if shutil.which("git") is None:
        pytest.fail("git is required to read the ignore files")
    listed = _git("ls-files", "--cached", "--others", "--exclude-standard", cwd=ROOT).splitlines()
    return [line for line in listed if line and (ROOT / line).is_file()]


def _not_ignored(ignore_file: Path, files: list[str], work: Path) -> set[str]:
    """The files git does not ignore when `ignore_file` is a repository's top-level .gitignore."""
    _git("init", "-q", cwd=work)
    (work / ".gitignore").write_bytes(ignore_file.read_bytes())
    for name in files:
        path = work / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
    listed = _git("ls-files", "--others", "--exclude-standard", cwd=work).splitlines()
    return set(listed) - {".gitignore"}


@pytest.fixture(scope="module")
def package(repository_files: list[str], tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    """What azd would zip: the tree minus .funcignore (azd also drops .funcignore itself)."""
    files = sorted(set(repository_files) | set(NEVER_SHIPPED) | set(PREBUILT))
    shipped = _not_ignored(ROOT / ".funcignore", files, tmp_path_factory.mktemp("package"))
    return shipped - {".funcignore"}


def test_the_package_holds_the_app_entries_and_prebuilt_dependencies(package: set[str]) -> None:
    assert set(APP_ENTRIES) <= package
    assert set(PREBUILT) <= package


def test_nothing_that_is_not_needed_at_run_time_ships(package: set[str], repository_files: list[str]) -> None:
    assert not set(NEVER_SHIPPED) & package, sorted(set(NEVER_SHIPPED) & package)
    for folder in ("tests/", "devtools/", "bench/", "infra/", "docs/", ".ci/", ".azure/", "web/"):
        assert not [name for name in package if name.startswith(folder)], folder
    for name in ("local.settings.json.example", "Makefile", "pyproject.toml", "azure.yaml", ".gitignore"):
        assert name not in package, name
    assert not [name for name in package if name.endswith(".md")]


def test_every_module_and_data_file_the_app_loads_ships(package: set[str], tmp_path: Path) -> None:
    """Import function_app as the host does, and list every first-party file it loaded."""
    probe = (
        "import json, sys, function_app\n"
        "from shared.platform import resources\n"
        "from shared.ingestion.normalize.mappings import DEFAULT_MAPPINGS_PATH\n"
        "from shared.probe.scopes import DEFAULT_DRIFT_FILE\n"
        "from shared.rules.source import DEFAULT_RULES_FILE\n"
        "files = [m.__file__ for m in list(sys.modules.values()) if getattr(m, '__file__', None)]\n"
        "files += [str(resources.RESOURCES_FILE), str(DEFAULT_MAPPINGS_PATH), str(DEFAULT_DRIFT_FILE),\n"
        "          str(DEFAULT_RULES_FILE)]\n"
        "print(json.dumps(files))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "", "AOC_LOCAL_SETTINGS_FILE": str(tmp_path / "absent.json")},
    )
    loaded = {
        Path(name).resolve().relative_to(ROOT).as_posix()
        for name in json.loads(result.stdout)
        if Path(name).resolve().is_relative_to(ROOT) and ".venv" not in Path(name).parts
    }
    assert "function_app.py" in loaded
    assert "shared/platform/resources.json" in loaded
    assert len(loaded) > 50
    missing = sorted(loaded - package)
    assert not missing, f"the app loads these, but .funcignore leaves them out: {missing}"


def test_gitignore_keeps_azd_environments_and_caches_out_of_git(tmp_path: Path) -> None:
    wanted_ignored = [
        ".azure/aoc-prod/.env",
        ".azure/config.json",
        "local.settings.json",
        "shared/__pycache__/settings.cpython-311.pyc",
        ".venv/pyvenv.cfg",
        ".pytest_cache/v/cache/nodeids",
        ".ruff_cache/x",
        ".mypy_cache/x",
        ".hypothesis/examples/x",
        ".local/azurite/x",
    ]
    kept = ["local.settings.json.example", "shared/platform/settings.py", "infra/main.bicep", "azure.yaml"]
    visible = _not_ignored(ROOT / ".gitignore", wanted_ignored + kept, tmp_path)
    assert visible == set(kept)


def test_the_consoles_build_and_deployed_config_stay_out_of_git(tmp_path: Path) -> None:
    """web/dist holds the build and the config.json the deploy writes (from the azd environment)."""
    wanted_ignored = [
        "web/dist/index.html",
        "web/dist/config.json",
        "web/dist/staticwebapp.config.json",
        "web/node_modules/preact/package.json",
    ]
    kept = [
        "web/package.json",
        "web/package-lock.json",
        "web/staticwebapp.config.json",
        "web/build.mjs",
        "infra/app/staticwebapp.bicep",
        "infra/scripts/console_config.py",
        "infra/scripts/console_app_registrations.py",
    ]
    visible = _not_ignored(ROOT / ".gitignore", wanted_ignored + kept, tmp_path)
    assert visible == set(kept)
