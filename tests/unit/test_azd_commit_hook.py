"""azure.yaml's preprovision hook, run as azd runs an inline sh hook: it records the checked-out commit
as AOC_COMMIT with `azd env set` (a stand-in `azd` logs its arguments), sets nothing outside a git
checkout or without git, and fails when `azd env set` fails (continueOnError is false, so the provision
stops)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.support.ci import service_missing

ROOT = Path(__file__).resolve().parents[2]
GIT = shutil.which("git")
SH = shutil.which("sh")

FAKE_AZD = """#!/bin/sh
printf '%s\\n' "$@" >> "$FAKE_AZD_LOG"
exit "${FAKE_AZD_EXIT:-0}"
"""


def _posix_hook() -> str:
    loaded = yaml.safe_load((ROOT / "azure.yaml").read_text())
    run = loaded["hooks"]["preprovision"]["posix"]["run"]
    assert isinstance(run, str)
    return run


def _run_hook(tmp_path: Path, cwd: Path, *, path: str, azd_exit: int = 0) -> tuple[int, list[str] | None]:
    """Run the hook the way azd runs an inline sh hook (a temporary script, `#!/bin/sh` first) in `cwd`;
    the exit status and the stand-in azd's arguments (None: azd was not called)."""
    assert SH is not None
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    azd = bin_dir / "azd"
    azd.write_text(FAKE_AZD)
    azd.chmod(0o755)
    script = tmp_path / "azd-preprovision.sh"
    script.write_text(f"#!/bin/sh\n\n# Auto generated file from Azure Developer CLI\n{_posix_hook()}")
    log = tmp_path / "azd.log"
    log.unlink(missing_ok=True)
    env = {name: value for name, value in os.environ.items() if not name.startswith("GIT_")}
    env |= {
        "PATH": f"{bin_dir}{os.pathsep}{path}" if path else str(bin_dir),
        "FAKE_AZD_LOG": str(log),
        "FAKE_AZD_EXIT": str(azd_exit),
        # Never find a repository above tmp_path (the checkout running these tests, say).
        "GIT_CEILING_DIRECTORIES": str(tmp_path),
    }
    result = subprocess.run([SH, str(script)], cwd=cwd, env=env, capture_output=True, text=True, timeout=60)
    return result.returncode, (log.read_text().splitlines() if log.exists() else None)


def _git(cwd: Path, *args: str) -> str:
    assert GIT is not None
    command = [
        GIT,
        "-c",
        "user.name=t",
        "-c",
        "user.email=t@example.com",
        "-c",
        "commit.gpgsign=false",
        *args,
    ]
    return subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, check=True, timeout=60
    ).stdout.strip()


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    _git(repo, "commit", "-q", "--allow-empty", "-m", "first")
    return repo


@pytest.fixture(autouse=True)
def _git_and_sh() -> None:
    """git and sh run the hook as azd does: a skip on a developer machine without them, a failure under
    CI=true (tests.support.ci)."""
    if GIT is None or SH is None:
        service_missing("the azd hook test needs git and sh on PATH")


def test_in_a_git_checkout_the_hook_sets_the_short_commit(tmp_path: Path, checkout: Path) -> None:
    status, azd_args = _run_hook(tmp_path, checkout, path=os.environ["PATH"])
    assert status == 0
    commit = _git(checkout, "rev-parse", "--short", "HEAD")
    assert azd_args == ["env", "set", "AOC_COMMIT", commit]
    assert commit in _git(checkout, "rev-parse", "HEAD")
    assert len(commit) >= 7


def test_a_new_commit_is_recorded_at_the_next_provision(tmp_path: Path, checkout: Path) -> None:
    _, first = _run_hook(tmp_path, checkout, path=os.environ["PATH"])
    _git(checkout, "commit", "-q", "--allow-empty", "-m", "second")
    _, second = _run_hook(tmp_path, checkout, path=os.environ["PATH"])
    assert first is not None
    assert second is not None
    assert first[-1] != second[-1]
    assert second == ["env", "set", "AOC_COMMIT", _git(checkout, "rev-parse", "--short", "HEAD")]


def test_outside_a_git_checkout_the_hook_sets_nothing_and_succeeds(tmp_path: Path) -> None:
    folder = tmp_path / "unpacked"
    folder.mkdir()
    assert _run_hook(tmp_path, folder, path=os.environ["PATH"]) == (0, None)


def test_a_checkout_without_commits_sets_nothing_and_succeeds(tmp_path: Path) -> None:
    repo = tmp_path / "empty"
    repo.mkdir()
    _git(repo, "init", "-q")
    assert _run_hook(tmp_path, repo, path=os.environ["PATH"]) == (0, None)


def test_without_git_on_the_path_the_hook_sets_nothing_and_succeeds(tmp_path: Path, checkout: Path) -> None:
    assert _run_hook(tmp_path, checkout, path="") == (0, None)


def test_a_failing_azd_env_set_fails_the_hook(tmp_path: Path, checkout: Path) -> None:
    status, azd_args = _run_hook(tmp_path, checkout, path=os.environ["PATH"], azd_exit=3)
    assert status == 3
    assert azd_args is not None
    assert azd_args[:3] == ["env", "set", "AOC_COMMIT"]
