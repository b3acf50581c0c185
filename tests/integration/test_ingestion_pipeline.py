"""Poll the simulator, then ingest every claim check, in process: exact ids, quarantine and counts."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator

import pytest

from devtools.simulator import SimulatorConfig, TenantSimulator
from shared.app.cli import renormalize
from shared.app.runtime import ingest_service, poller, reset_runtime, watermark_store
from shared.ingestion.messages import IngestMessage
from shared.platform.clients import get_clients, reset_clients
from shared.platform.resources import Queues
from tests.support.cosmos import event_ids
from tests.support.simulated_tenant import app_settings_for

TENANT_ID = "00000000-0000-0000-0000-0000000000cc"


@pytest.fixture
def simulator_settings(app_environment: dict[str, str]) -> Iterator[TenantSimulator]:
    now = time.time()
    config = SimulatorConfig(
        tenant_id=TENANT_ID,
        seed=11,
        events_per_day=3000,
        epoch=dt.datetime.fromtimestamp(now, dt.UTC) - dt.timedelta(days=5),
        started_at_unix=now - 5 * 86400,  # every record is already published
        throttle_rate=0.05,
        server_error_rate=0.01,
        duplicate_across_pages_rate=0.2,
        malformed_rate=0.01,
    )
    simulator = TenantSimulator(config).start()
    settings = {
        **app_settings_for(simulator),
        "SOURCE_ENTRA_SIGNIN": "true",
        "MANAGEMENT_INCLUDE_DLP": "true",
        "INITIAL_LOOKBACK_SECONDS": str(6 * 86400),
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


def _drain_ingest_queue() -> tuple[int, int]:
    queue = get_clients().queue(Queues.INGEST)
    service = ingest_service()
    messages = quarantined = 0
    while batch := list(queue.receive_messages(max_messages=32, visibility_timeout=120)):
        for message in batch:
            report = service.process(IngestMessage.model_validate_json(message.content))
            quarantined += report.quarantined
            messages += 1
            queue.delete_message(message)
    return messages, quarantined


def test_poll_and_ingest_store_exactly_the_ground_truth(simulator_settings: TenantSimulator) -> None:
    simulator = simulator_settings
    report = poller().run()
    assert report.failed == [], report.failed
    started = time.monotonic()
    _, quarantined = _drain_ingest_queue()
    print(f"poll {report.model_dump(include={'sources'})} ingest {time.monotonic() - started:.1f}s")

    truth = simulator.ground_truth()
    config = simulator.config
    stored = event_ids(TENANT_ID, {f"{config.epoch:%Y-%m}", f"{config.epoch + dt.timedelta(days=1):%Y-%m}"})
    assert stored == set(truth["ids"])
    assert quarantined == truth["malformed"]
    states = {s.source: s for s in watermark_store().all()}
    assert (
        sum(s.quarantined for s in states.values() if s.source.startswith(("entra", "intune", "o365")))
        >= (truth["malformed"])
    )

    log = simulator.requests()
    management = [r for r in log if r["path"].startswith("/manage/")]
    assert all(r["has_publisher_identifier"] for r in management)
    starts = [r for r in management if r["path"].endswith("/subscriptions/start")]
    assert len({r["query"]["contentType"] for r in starts}) == 5, (
        "a missing subscription is started (AF20022)"
    )
    assert any(r["status"] in (429, 403) for r in log), "the run was throttled and recovered"

    rebuilt = renormalize(dt.datetime.now(dt.UTC) - dt.timedelta(hours=1), source=None, run_id=report.run_id)
    assert rebuilt["stored"] == len(truth["ids"])
    assert rebuilt["new"] == 0, "re-normalizing archived pages rewrites the same events"
    assert rebuilt["quarantined"] == truth["malformed"]

    again = poller().run()
    management_runs = [s for s in again.sources if s.source.startswith("o365_management")]
    assert len(management_runs) == 5
    assert all(s.records == 0 for s in management_runs), "content handed off before is skipped"
