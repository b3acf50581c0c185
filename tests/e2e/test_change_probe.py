"""The change probe through the local host: a burst of drift queues exactly one backup pipeline run."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.services import PROJECT_ROOT
from devtools.simulator import TenantSimulator
from shared.platform.clients import get_clients
from shared.platform.clock import parse_utc
from shared.platform.resources import Queues, Tables
from shared.probe.state import ChangeSummary, Trigger
from shared.probe.store import ProbeStateStore
from tests.support.drift import unique_drift_file
from tests.support.host_process import HostProcess, wait_until
from tests.support.simulated_tenant import app_settings_for, start_real_time_simulator

TENANT_ID = "00000000-0000-0000-0000-0000000000dd"
QUIET_SECONDS, COOLDOWN_SECONDS = 6, 12
LATENCY_SECONDS = 2  # the simulator's bursts are visible at once
PAT = "e2e-devops-pat-value"


@pytest.fixture
def simulator() -> Iterator[TenantSimulator]:
    simulator = start_real_time_simulator(tenant_id=TENANT_ID, seed=3, devops_pat=PAT)
    yield simulator
    simulator.stop()


@pytest.fixture
def drift(tmp_path: Path) -> tuple[Path, str]:
    return unique_drift_file(tmp_path, "e2e")


@pytest.fixture
def host(
    app_environment: dict[str, str], simulator: TenantSimulator, drift: tuple[Path, str], tmp_path: Path
) -> Iterator[HostProcess]:
    settings = {
        "DRIFT_FILE": str(drift[0]),
        **app_environment,
        **app_settings_for(simulator),
        "SOURCE_ENTRA_AUDIT": "true",
        "SOURCE_INTUNE_AUDIT": "true",
        "SOURCE_ENTRA_SIGNIN": "false",
        "SOURCE_O365_MANAGEMENT": "false",
        "POLL_SCHEDULE": "*/2 * * * * *",
        "GRAPH_OVERLAP_SECONDS": "60",
        "INITIAL_LOOKBACK_SECONDS": "300",
        "PROBE_QUIET_WINDOW_MINUTES": str(QUIET_SECONDS / 60),
        "PROBE_COOLDOWN_MINUTES": str(COOLDOWN_SECONDS / 60),
        "PROBE_AUDIT_LATENCY_MINUTES": str(LATENCY_SECONDS / 60),
        "DEVOPS_AUTH_MODE": "pat",
        "DEVOPS_PAT": PAT,
        "DEVOPS_ORGANIZATION": "contoso",
        "DEVOPS_PROJECT": "M365Config",
        "DEVOPS_PIPELINE_ID": "1",
        # Host.json overrides, as app settings do in Azure: fail fast in this test.
        "AzureFunctionsJobHost__extensions__queues__visibilityTimeout": "00:00:00",
        "AzureFunctionsJobHost__extensions__queues__maxPollingInterval": "00:00:01",
    }
    process = HostProcess(app_dir=PROJECT_ROOT, work_dir=tmp_path, environment=settings).start(timeout=60)
    yield process
    process.stop()


def _poison_messages() -> list[str]:
    queue = get_clients().queue(Queues.BACKUP_TRIGGER + "-poison")
    return [m.content for m in queue.peek_messages(max_messages=32)]


def test_burst_gives_one_run_after_quiet_window_redelivery_none_and_bad_pat_goes_to_poison(
    host: HostProcess, simulator: TenantSimulator, drift: tuple[Path, str]
) -> None:
    scope = drift[1]
    burst = simulator.add_burst("intune", 40, spread_seconds=4)
    last_change = parse_utc(burst["to"])

    runs = wait_until(simulator.devops_runs, timeout=60, interval=0.5, message="a pipeline run")
    time.sleep(QUIET_SECONDS + COOLDOWN_SECONDS + 4)  # long enough for a second run to show if one came

    runs = simulator.devops_runs()
    assert len(runs) == 1, runs
    run = runs[0]
    assert (run["organization"], run["project"], int(run["pipeline_id"])) == ("contoso", "M365Config", 1)
    assert run["refName"] == "refs/heads/main"
    settled = dt.timedelta(seconds=QUIET_SECONDS + LATENCY_SECONDS)
    assert parse_utc(run["createdDate"]) >= last_change + settled

    state, _ = ProbeStateStore(get_clients().table(Tables.PROBE_STATE)).read(scope)
    assert state.triggers_emitted == 1
    assert state.last_trigger_id is not None
    logged = get_clients().table(Tables.TRIGGER_LOG).get_entity(scope, state.last_trigger_id)
    assert logged["status"] == "queued"
    assert int(logged["run_id"]) == int(run["id"])
    assert logged["change_count"] == 40

    # The same trigger delivered again (at-least-once) queues no second run.
    redelivered = Trigger(
        trigger_id=state.last_trigger_id,
        scope=scope,
        reason="redelivery",
        summary=ChangeSummary(
            count=40, first_change_at=burst["from"], last_change_at=burst["to"], actors=[], top_operations=[],
            services=["Intune"],
        ),
        checked_at=burst["to"],
    )  # fmt: skip
    get_clients().queue(Queues.BACKUP_TRIGGER).send_message(redelivered.model_dump_json())
    wait_until(lambda: "not queuing another" in host.log(), timeout=30, message="the duplicate to be seen")
    assert len(simulator.devops_runs()) == 1

    # A rejected PAT: the message is tried maxDequeueCount times, then lands in backup-trigger-poison.
    simulator.reject_devops("unauthorized")
    rejected = redelivered.model_copy(update={"trigger_id": f"{scope}:rejected-pat", "reason": "rejected"})
    get_clients().queue(Queues.BACKUP_TRIGGER).send_message(rejected.model_dump_json())
    wait_until(
        lambda: any("rejected-pat" in m for m in _poison_messages()), timeout=60, message="the poison message"
    )
    attempts = [a for a in simulator.devops_attempts() if a["status"] == 401]
    assert len(attempts) == 5  # host.json maxDequeueCount
    log = host.log()
    assert "Azure DevOps refused contoso/M365Config pipeline 1 (HTTP 401)" in log
    assert "TF400813" in log
    assert PAT not in log
    assert len(simulator.devops_runs()) == 1
