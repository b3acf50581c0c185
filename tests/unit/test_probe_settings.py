"""The probe's audit-latency and skew settings, and the Graph window overlap that must cover the latency."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError

from shared.app.runtime import probe_windows, reset_runtime
from shared.platform.settings import LOCAL_SETTINGS_ENV, AppSettings, get_settings

NAMES = (
    "PROBE_ENABLED",
    "PROBE_QUIET_WINDOW_MINUTES",
    "PROBE_COOLDOWN_MINUTES",
    "PROBE_AUDIT_LATENCY_MINUTES",
    "PROBE_CLOCK_SKEW_SECONDS",
    "GRAPH_OVERLAP_SECONDS",
)


@pytest.fixture
def environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    for name in NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(LOCAL_SETTINGS_ENV, str(tmp_path / "absent.json"))
    get_settings.cache_clear()
    yield monkeypatch
    get_settings.cache_clear()
    reset_runtime()


def test_defaults_wait_thirty_minutes_of_audit_latency_and_widen_the_graph_windows(
    environment: pytest.MonkeyPatch,
) -> None:
    settings = AppSettings()
    assert (settings.probe_audit_latency_minutes, settings.probe_clock_skew_seconds) == (30, 300)
    assert settings.graph_overlap_seconds == 900
    assert settings.graph_window_overlap_seconds == 1800


def test_the_probe_windows_take_the_settings(environment: pytest.MonkeyPatch) -> None:
    environment.setenv("PROBE_QUIET_WINDOW_MINUTES", "10")
    environment.setenv("PROBE_AUDIT_LATENCY_MINUTES", "20")
    environment.setenv("PROBE_CLOCK_SKEW_SECONDS", "60")
    windows = probe_windows()
    assert windows.audit_latency == dt.timedelta(minutes=20)
    assert windows.clock_skew == dt.timedelta(seconds=60)
    assert windows.settle == dt.timedelta(minutes=30)


@pytest.mark.parametrize(
    ("enabled", "overlap", "latency", "expected"),
    [
        ("true", "3600", "30", 3600),
        ("true", "60", "0.5", 60),
        ("true", "60", "2", 120),
        ("false", "60", "30", 60),
    ],
)
def test_graph_windows_reach_back_at_least_the_audit_latency_while_the_probe_runs(
    environment: pytest.MonkeyPatch, enabled: str, overlap: str, latency: str, expected: float
) -> None:
    environment.setenv("PROBE_ENABLED", enabled)
    environment.setenv("GRAPH_OVERLAP_SECONDS", overlap)
    environment.setenv("PROBE_AUDIT_LATENCY_MINUTES", latency)
    assert AppSettings().graph_window_overlap_seconds == expected


@pytest.mark.parametrize(
    ("name", "value"), [("PROBE_AUDIT_LATENCY_MINUTES", "-1"), ("PROBE_CLOCK_SKEW_SECONDS", "x")]
)
def test_invalid_probe_settings_are_refused(environment: pytest.MonkeyPatch, name: str, value: str) -> None:
    environment.setenv(name, value)
    with pytest.raises(ValidationError, match=name):
        AppSettings()
