"""devtools/check_min_versions.py reads requirements.txt right: one pin per floor, or a clear refusal."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from devtools.check_min_versions import (
    EXIT_REGISTRY_UNREACHABLE,
    PROJECT_ROOT,
    REQUIREMENTS,
    RequirementsError,
    floors,
    tool_requirements,
)
from devtools.services import free_port


def test_every_runtime_requirement_has_a_floor_and_a_cap() -> None:
    pins = floors()
    lines = [
        line.split(" #")[0].strip()
        for line in REQUIREMENTS.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert len(pins) == len(lines)
    for line in lines:
        operators = {spec.operator for spec in Requirement(line).specifier}
        assert operators == {">=", "<"}, line


def test_floors_pin_extras_and_markers_and_ignore_comments(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(
        "# a comment\n"
        "PyJWT[crypto]>=2.10,<3\n"
        "pydantic-settings>=2.9,<3  # the sources package\n"
        "tzdata>=2024.1,<2100; sys_platform == 'win32'\n"
        "-r other.txt\n"
    )
    assert [(f.name, f.version, f.pin) for f in floors(requirements)] == [
        ("pyjwt", "2.10", "PyJWT[crypto]==2.10"),
        ("pydantic-settings", "2.9", "pydantic-settings==2.9"),
        ("tzdata", "2024.1", 'tzdata==2024.1; sys_platform == "win32"'),
    ]


@pytest.mark.parametrize("line", ["requests<3", "requests", "requests>=2.31,>=2.32", "requests==2.32"])
def test_a_requirement_without_one_floor_is_refused(tmp_path: Path, line: str) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(f"{line}\n")
    with pytest.raises(RequirementsError, match="needs exactly one '>=' floor"):
        floors(requirements)


def test_the_test_tools_come_from_requirements_dev() -> None:
    names = {Requirement(line).name for line in tool_requirements()}
    assert names == {"pytest", "pytest-timeout", "hypothesis", "croniter"}


def test_an_unreachable_registry_is_told_apart_from_a_bad_floor(tmp_path: Path) -> None:
    """Exit 3, which the integration test turns into a missing service, not a verdict on the floors."""
    environment = {
        **os.environ,
        "PIP_INDEX_URL": f"http://127.0.0.1:{free_port()}/simple",  # nothing listens there
        "PIP_RETRIES": "0",
        "PIP_NO_CACHE_DIR": "1",
        "PIP_TIMEOUT": "5",
    }
    result = subprocess.run(
        [sys.executable, "-m", "devtools.check_min_versions", "--venv", str(tmp_path / "venv")],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        env=environment,
        timeout=300,
        check=False,
    )
    assert result.returncode == EXIT_REGISTRY_UNREACHABLE, result.stdout + result.stderr
