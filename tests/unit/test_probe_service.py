"""A fetched Intune page through ChangeCollector and ProbeService, with a record stamped in year 9999."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from shared.platform.clock import utc_iso
from shared.probe.scopes import DEFAULT_DRIFT_FILE, parse_drift_config
from shared.probe.service import ChangeCollector, ProbeService
from shared.probe.state import ProbeWindows
from shared.probe.store import ProbeStateStore
from tests.support.probe_sim import FakeQueue, FakeTable

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "normalize" / "graph_intune_audit_events.json"
NOW = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC)
WINDOWS = ProbeWindows(
    quiet=dt.timedelta(minutes=15),
    cooldown=dt.timedelta(minutes=30),
    audit_latency=dt.timedelta(minutes=30),
    clock_skew=dt.timedelta(minutes=5),
)


def test_a_change_stamped_in_year_9999_is_clamped_and_triggers_one_backup(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in (
        ("DEVOPS_ORGANIZATION", "contoso"),
        ("DEVOPS_PROJECT", "aoc"),
        ("DEVOPS_PIPELINE_ID", "1"),
    ):
        monkeypatch.setenv(name, value)
    records = json.loads(FIXTURE.read_text(encoding="utf-8"))["value"]
    for record in records:
        record["activityDateTime"] = "9999-12-31T23:59:59.9999999Z"
    drift = parse_drift_config(DEFAULT_DRIFT_FILE.read_text(encoding="utf-8"))
    scope = drift.scopes[0].name
    table, queue = FakeTable(), FakeQueue()
    probe = ProbeService(ProbeStateStore(table), drift, queue, WINDOWS)

    def poll(at: dt.datetime) -> None:
        collector = ChangeCollector(drift, "tenant", utc_iso(at))
        collector("intune_audit", records)
        probe.advance(collector.changes, at)

    poll(NOW)
    (state,) = probe.status()
    assert state.burst_count == 1  # the one configuration change among the fixture's records
    assert state.burst_last_at == utc_iso(NOW + WINDOWS.clock_skew)
    assert state.quiet_deadline == utc_iso(NOW + WINDOWS.clock_skew + WINDOWS.settle)

    for minutes in range(5, 240, 5):  # the same page, delivered again at every poll
        poll(NOW + dt.timedelta(minutes=minutes))

    (state,) = probe.status()
    assert (state.triggers_emitted, state.phase, state.outbox) == (1, "idle", None)
    assert len(queue.messages) == 1
    assert scope in queue.trigger_ids()[0]
