"""Install the lowest versions requirements.txt allows into a throwaway venv, and run the app on them.

Every runtime requirement must have a floor (`name>=X`). Each is pinned to exactly its floor
(`name==X`); pip picks the newest versions of everything else (transitive dependencies), as a fresh
Azure build could. Then, in that venv, `function_app` is imported and indexed with the local settings
example, and the unit tests that exercise each runtime dependency run. A floor that lies (an API the
code uses is newer than the floor) fails here, not in Azure. The integration tests among them start
Azurite and cosmosdb-server (Node.js, `make install`), as the suite does.

    .venv/bin/python -m devtools.check_min_versions [--venv DIR] [--keep]

Exit status: 0 the floors work; 1 they do not (install, import or tests failed); 3 the package
registry could not be reached (nothing is known about the floors).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import venv
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

PROJECT_ROOT = Path(__file__).resolve().parents[1]
REQUIREMENTS = PROJECT_ROOT / "requirements.txt"
DEV_REQUIREMENTS = PROJECT_ROOT / "requirements-dev.txt"

EXIT_OK, EXIT_FLOORS_FAIL, EXIT_REGISTRY_UNREACHABLE = 0, 1, 3

# Test tools installed beside the floors, at the versions requirements-dev.txt allows.
TEST_TOOLS = ("pytest", "pytest-timeout", "hypothesis", "croniter")

# Offline unit tests that, between them, drive every runtime dependency through the app's own code.
TESTS = (
    "tests/unit/test_settings.py",  # pydantic, pydantic-settings (sources, aliases, local.settings.json)
    "tests/unit/test_auth.py",  # msal, azure-identity, requests
    "tests/unit/test_api_auth.py",  # PyJWT[crypto]
    "tests/unit/test_http_client.py",  # requests, tenacity
    "tests/unit/test_clients.py",  # azure-storage-queue/-blob, azure-data-tables, azure-cosmos
    "tests/unit/test_queue_encoding.py",  # azure-storage-queue message encoding
    "tests/unit/test_rule_engine.py",  # pyyaml rules, tzdata business hours
    "tests/unit/test_default_rules.py",  # pyyaml, the shipped rule pack
    "tests/unit/test_invoker.py",  # azure-functions bindings and types
    "tests/unit/test_notify_channels.py",  # pydantic models of ALERT_CHANNELS
    # Against the local Azurite and cosmosdb-server: the storage, tables and Cosmos DB SDKs on the wire.
    "tests/integration/test_status_api.py",
    "tests/integration/test_table_claim.py",
    "tests/integration/test_ingest_storage.py",
)

# Tests that catch a private method of the newest azure-storage-queue to see the message text; older
# releases name it differently. The encoding itself is public API, and the queue traffic of the floors
# runs for real in the integration tests above.
DESELECTED = (
    "tests/unit/test_clients.py::test_none_encoding_sends_text_as_is",
    "tests/unit/test_clients.py::test_base64_encoding_is_applied_to_sent_messages",
)

# pip's words when it could not talk to the index at all.
_UNREACHABLE = re.compile(
    r"NewConnectionError|Failed to establish a new connection|Temporary failure in name resolution|"
    r"Name or service not known|Network is unreachable|ConnectTimeoutError|ProxyError|"
    r"Could not fetch URL|connection broken",
    re.IGNORECASE,
)


class RequirementsError(ValueError):
    """requirements.txt has a runtime requirement without a usable floor."""


@dataclass(frozen=True)
class Floor:
    name: str
    version: str
    pin: str  # e.g. "PyJWT[crypto]==2.10.0", with any environment marker


def _requirement_lines(path: Path) -> list[str]:
    lines = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split(" #", 1)[0].strip()
        if line and not line.startswith(("#", "-")):
            lines.append(line)
    return lines


def floors(path: Path = REQUIREMENTS) -> list[Floor]:
    """Each runtime requirement pinned to its `>=` floor; RequirementsError if one has none."""
    found = []
    for line in _requirement_lines(path):
        requirement = Requirement(line)
        lower = [s.version for s in requirement.specifier if s.operator == ">="]
        if len(lower) != 1:
            raise RequirementsError(f"{path.name}: {line!r} needs exactly one '>=' floor")
        extras = f"[{','.join(sorted(requirement.extras))}]" if requirement.extras else ""
        marker = f"; {requirement.marker}" if requirement.marker else ""
        pin = f"{requirement.name}{extras}=={lower[0]}{marker}"
        found.append(Floor(canonicalize_name(requirement.name), lower[0], pin))
    if not found:
        raise RequirementsError(f"{path} lists no requirement")
    return found


def tool_requirements(path: Path = DEV_REQUIREMENTS) -> list[str]:
    """The lines of requirements-dev.txt for TEST_TOOLS, as written there."""
    wanted = {canonicalize_name(name) for name in TEST_TOOLS}
    lines = [line for line in _requirement_lines(path) if canonicalize_name(Requirement(line).name) in wanted]
    missing = wanted - {canonicalize_name(Requirement(line).name) for line in lines}
    if missing:
        raise RequirementsError(f"{path.name} does not list {sorted(missing)}")
    return lines


def _venv_python(venv_dir: Path) -> Path:
    return venv_dir / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _run(command: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, check=False, **kwargs)  # type: ignore[call-overload]


def _report(title: str, result: subprocess.CompletedProcess[str]) -> None:
    print(f"--- {title}: exit {result.returncode}", file=sys.stderr)
    print((result.stdout + result.stderr)[-6000:], file=sys.stderr)


def _registry_serves(python: str, name: str, work: Path) -> bool:
    """Whether the registry serves `name` at all: if not, a failed install says nothing of the floors.

    pip reports an unreachable index as "from versions: none", like a version that does not exist,
    and stays silent about the connection when it does not retry.
    """
    download = [python, "-m", "pip", "download", "--disable-pip-version-check", "--no-deps"]
    probe = _run([*download, "--only-binary=:all:", "--dest", str(work / "probe"), name])
    if probe.returncode != 0 and not _UNREACHABLE.search(probe.stderr):
        print(f"the registry serves no {name} at all:\n{probe.stderr[-1500:]}", file=sys.stderr)
    return probe.returncode == 0


def check(venv_dir: Path) -> int:
    pins = floors()
    tools = tool_requirements()
    print(f"floors: {' '.join(f.pin for f in pins)}")
    venv.EnvBuilder(with_pip=True, clear=True).create(venv_dir)
    python = str(_venv_python(venv_dir))

    # Wheels only: the floors must install without a compiler, as a remote build would need.
    install = _run(
        [python, "-m", "pip", "install", "--disable-pip-version-check", "--only-binary=:all:", "--quiet"]
        + [f.pin for f in pins]
        + tools
    )
    if install.returncode != 0:
        _report("pip install", install)
        reachable = _registry_serves(python, pins[0].name, venv_dir)
        return EXIT_FLOORS_FAIL if reachable else EXIT_REGISTRY_UNREACHABLE

    listed = _run([python, "-m", "pip", "list", "--format=json", "--disable-pip-version-check"])
    installed: dict[str, str] = {
        canonicalize_name(p["name"]): p["version"] for p in json.loads(listed.stdout or "[]")
    }
    drifted = {
        f.name: installed.get(f.name)
        for f in pins
        if f.name not in installed or Version(installed[f.name]) != Version(f.version)
    }
    if drifted:
        print(f"installed versions are not the floors: {drifted}", file=sys.stderr)
        return EXIT_FLOORS_FAIL

    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in ("VIRTUAL_ENV", "PYTHONHOME", "PYTHONPATH", "PYTEST_ADDOPTS")
    }
    environment |= {
        "PYTHONPATH": str(PROJECT_ROOT),
        "AOC_LOCAL_SETTINGS_FILE": str(PROJECT_ROOT / "local.settings.json.example"),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    imported = _run(
        [
            python,
            "-c",
            "import function_app; names = [f.get_function_name() for f in function_app.app.get_functions()]; "
            "assert names, 'no functions indexed'; print(len(names), 'functions indexed')",
        ],
        cwd=PROJECT_ROOT,
        env=environment,
    )
    if imported.returncode != 0:
        _report("import function_app", imported)
        return EXIT_FLOORS_FAIL
    print(imported.stdout.strip())

    tests = [path for path in TESTS if (PROJECT_ROOT / path).is_file()]
    if len(tests) != len(TESTS):
        print(f"missing test files: {sorted(set(TESTS) - set(tests))}", file=sys.stderr)
        return EXIT_FLOORS_FAIL
    environment["AOC_LOCAL_SETTINGS_FILE"] = str(venv_dir / "absent-local.settings.json")
    pytest = [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts="]
    tested = _run(
        [*pytest, *tests, *(f"--deselect={test}" for test in DESELECTED)],
        cwd=PROJECT_ROOT,
        env=environment,
    )
    last = (tested.stdout.strip().splitlines() or [""])[-1]
    if tested.returncode != 0:
        _report("tests on the floors", tested)
        return EXIT_FLOORS_FAIL
    print(f"tests on the floors: {last}")
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.check_min_versions", description=__doc__)
    parser.add_argument("--venv", type=Path, help="where to build the venv (default: a temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary venv")
    args = parser.parse_args(argv)
    if args.venv is not None:
        return check(args.venv)
    if args.keep:
        folder = Path(tempfile.mkdtemp(prefix="aoc-min-versions-"))
        print(f"venv kept in {folder / 'venv'}")
        return check(folder / "venv")
    with tempfile.TemporaryDirectory(prefix="aoc-min-versions-") as temporary:
        return check(Path(temporary) / "venv")


if __name__ == "__main__":
    sys.exit(main())
