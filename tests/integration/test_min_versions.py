"""The floors in requirements.txt: the app imports, indexes its functions and passes the tests that
drive each runtime dependency on exactly those versions (devtools/check_min_versions.py).

It installs from the package registry into a throwaway venv (about a minute with a warm pip cache).
An unreachable registry is a missing service: a failure under CI=true, a skip elsewhere.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from devtools.check_min_versions import EXIT_OK, EXIT_REGISTRY_UNREACHABLE, PROJECT_ROOT, floors
from tests.support.ci import service_missing


def test_the_app_runs_on_the_lowest_versions_requirements_txt_allows(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "devtools.check_min_versions", "--venv", str(tmp_path / "venv")],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    output = result.stdout + result.stderr
    if result.returncode == EXIT_REGISTRY_UNREACHABLE:
        service_missing(f"the package registry could not be reached: {output[-2000:]}")
    assert result.returncode == EXIT_OK, output[-8000:]

    pinned = result.stdout.splitlines()[0]
    assert all(floor.pin in pinned for floor in floors())
    assert re.search(r"^\d+ functions indexed$", result.stdout, re.MULTILINE), output
    passed = re.search(r"tests on the floors: (\d+) passed", result.stdout)
    assert passed is not None, output
    assert int(passed.group(1)) > 100, output
    assert " failed" not in result.stdout.splitlines()[-1]
