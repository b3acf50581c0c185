"""The browser tests' own rule for a missing browser: a skip naming the install command on a developer
machine, a failure under CI=true. (No browser needed: not marked `browser`.)"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.browser import conftest


def test_a_missing_chromium_skips_with_the_install_command(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(conftest, "CHROMIUM", tmp_path / "no-chromium")
    with pytest.raises(pytest.skip.Exception) as skipped:
        conftest.require_browser(in_ci=False)
    assert "apt-get install -y chromium" in str(skipped.value)


def test_a_missing_chromium_fails_under_ci(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(conftest, "CHROMIUM", tmp_path / "no-chromium")
    with pytest.raises(pytest.fail.Exception) as failed:
        conftest.require_browser(in_ci=True)
    assert "CI=true" in str(failed.value)
    assert "apt-get install -y chromium" in str(failed.value)


def test_missing_playwright_names_the_pip_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "playwright.sync_api", None)  # the import fails
    with pytest.raises(pytest.skip.Exception) as skipped:
        conftest.require_browser(in_ci=False)
    assert ".venv/bin/pip install 'playwright>=1.49,<2'" in str(skipped.value)
