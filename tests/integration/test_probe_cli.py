"""`python -m shared.cli probe --once` and `trigger-pipeline`, against the simulator and Azurite."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.simulator import SimulatorConfig, TenantSimulator
from shared import cli
from shared.clients import reset_clients
from shared.runtime import probe_service, reset_runtime
from tests.support.drift import unique_drift_file
from tests.support.simulated_tenant import app_settings_for

TENANT_ID = "00000000-0000-0000-0000-0000000000ee"


@pytest.fixture
def simulator(app_environment: dict[str, str], tmp_path: Path) -> Iterator[TenantSimulator]:
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
        "PROBE_QUIET_WINDOW_MINUTES": "0.05",
        "PROBE_COOLDOWN_MINUTES": "1",
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
