"""`python -m shared.app.cli probe --once` and `trigger-pipeline`, against the simulator and Azurite."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devtools.simulator import SimulatorConfig, TenantSimulator
from shared.app import cli
from shared.app.runtime import probe_service, reset_runtime
from shared.platform.clients import reset_clients
from shared.platform.clock import parse_utc
from tests.support.drift import unique_drift_file
from tests.support.simulated_tenant import app_settings_for

TENANT_ID = "00000000-0000-0000-0000-0000000000ee"


@pytest.fixture
def probe_settings() -> dict[str, str]:
    """The probe's windows; a test parametrizes this name to use others."""
    return {
        "PROBE_QUIET_WINDOW_MINUTES": "0.05",
        "PROBE_COOLDOWN_MINUTES": "1",
        "PROBE_AUDIT_LATENCY_MINUTES": "0",
    }


@pytest.fixture
def simulator(
    app_environment: dict[str, str], tmp_path: Path, probe_settings: dict[str, str]
) -> Iterator[TenantSimulator]:
    now = time.time()
    config = SimulatorConfig(
        tenant_id=TENANT_ID,
        seed=5,
        events_per_day=0,
        epoch=dt.datetime.fromtimestamp(now, dt.UTC),
        started_at_unix=now,
    )
    simulator = TenantSimulator(config).start()
    settings = {
        **app_settings_for(simulator),
        "SOURCE_O365_MANAGEMENT": "false",
        "INITIAL_LOOKBACK_SECONDS": "120",
        **probe_settings,
        "DRIFT_FILE": str(unique_drift_file(tmp_path, "cli")[0]),
        "DEVOPS_PAT": "local-devops-pat",
    }
    with pytest.MonkeyPatch.context() as patch:
        for name, value in settings.items():
            patch.setenv(name, value)
        reset_clients()
        reset_runtime()
        yield simulator
    simulator.stop()
    reset_clients()
    reset_runtime()


def test_probe_once_arms_then_triggers_and_trigger_pipeline_queues_a_run(
    simulator: TenantSimulator, capsys: pytest.CaptureFixture[str]
) -> None:
    simulator.add_burst("conditional_access", 3, spread_seconds=1)

    assert cli.main(["probe", "--once"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["scopes"][0]["new_state"] == "armed"
    assert first["scopes"][0]["trigger"] is None

    time.sleep(3.5)  # past the 3 s quiet window
    assert cli.main(["probe", "--once"]) == 0
    second = json.loads(capsys.readouterr().out)
    scope = second["scopes"][0]
    assert scope["new_state"] == "cooldown"
    assert scope["trigger"]["summary"]["count"] == 3
    assert "settled" in scope["reason"]
    (status,) = probe_service().status()  # what /api/status shows per scope
    assert (status.scope, status.phase, status.triggers_emitted) == (scope["scope"], "cooldown", 1)
    assert status.cooldown_until is not None

    args = ["trigger-pipeline", "--organization", "contoso", "--project", "M365", "--pipeline-id", "2"]
    assert cli.main(args) == 0
    queued = json.loads(capsys.readouterr().out)
    runs = simulator.devops_runs()
    assert [int(r["pipeline_id"]) for r in runs] == [2]
    assert queued["run_id"] == runs[0]["id"]


LATE_PROBE = {
    "PROBE_QUIET_WINDOW_MINUTES": str(2 / 60),
    "PROBE_AUDIT_LATENCY_MINUTES": str(4 / 60),
    "PROBE_COOLDOWN_MINUTES": str(2 / 60),
}


def probe_once(capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    assert cli.main(["probe", "--once"]) == 0
    scopes: list[dict[str, Any]] = json.loads(capsys.readouterr().out)["scopes"]
    return scopes[0]


@pytest.mark.parametrize("probe_settings", [LATE_PROBE])
def test_late_audit_records_give_one_trigger_per_burst(
    simulator: TenantSimulator, capsys: pytest.CaptureFixture[str]
) -> None:
    """Through the real poller, Graph windows and Azurite: a record within the 4 s audit latency joins
    the burst; one made before the trigger but visible long after it is covered and re-arms nothing."""
    simulator.add_burst("conditional_access", 2, spread_seconds=1)
    simulator.add_burst("conditional_access", 1, spread_seconds=0, delay_seconds=3)
    very_late_visible_at = time.time() + 20
    very_late = simulator.add_burst("intune", 1, spread_seconds=0, delay_seconds=20)

    results = [probe_once(capsys)]
    while results[-1]["trigger"] is None and len(results) < 60:
        time.sleep(0.5)
        results.append(probe_once(capsys))
    trigger = results[-1]["trigger"]
    assert trigger is not None, results[-1]
    very_late_at = parse_utc(very_late["to"])
    assert very_late_at < parse_utc(trigger["checked_at"])  # made before the trigger: the backup has it
    # On a slow machine the trigger's poll may already see the very late record (the only Intune one).
    seen_very_late = len(trigger["summary"]["services"]) == 2
    assert trigger["summary"]["count"] == 3 + seen_very_late

    time.sleep(max(0.0, very_late_visible_at - time.time()) + 1)
    after = [probe_once(capsys) for _ in range(3)]
    time.sleep(2.5)  # past the cooldown
    after += [probe_once(capsys) for _ in range(2)]

    assert [r["trigger"] for r in after] == [None] * len(after)
    assert after[-1]["new_state"] == "idle"
    (status,) = probe_service().status()
    assert status.triggers_emitted == 1
