"""Two probes race on one Azurite row, with late audit records: one trigger per burst, one message each.

Time is injected: ticks of one minute, a quiet window of 3, a cooldown of 6 and an audit-latency setting
of 0 to 5 minutes, which bounds each record's visibility delay. At every tick both probes run a whole
`ProbeService.advance` at once (threads behind a barrier) against real Azurite Table and Queue storage,
each with the records its Graph window `[previous tick - overlap, tick)` returns at that moment; at the
end both replay every record ever made. The big sweep over latencies 0 to 30 minutes is the in-memory
property in tests/unit/test_probe_latency_property.py; this one proves the same against the real ETags.
"""

from __future__ import annotations

import datetime as dt
import itertools
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from azure.storage.queue import QueueClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.platform.clients import get_clients
from shared.platform.clock import utc_iso
from shared.platform.resources import Tables
from shared.probe.service import ProbeService
from shared.probe.state import MAX_BURST_IDS, Change, ProbeState, ProbeWindows, Trigger, step
from shared.probe.store import ProbeStateStore
from tests.support.probe_sim import AuditRecord, delivered, probe_for

T0 = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC)
QUIET, COOLDOWN, OVERLAP = 3, 6, 5


@dataclass(frozen=True)
class Scenario:
    latency: int  # the probe's audit-latency setting, minutes; every record's delay is at most this
    bursts: list[list[AuditRecord]]

    @property
    def windows(self) -> ProbeWindows:
        return ProbeWindows(
            quiet=dt.timedelta(minutes=QUIET),
            cooldown=dt.timedelta(minutes=COOLDOWN),
            audit_latency=dt.timedelta(minutes=self.latency),
        )

    @property
    def records(self) -> list[AuditRecord]:
        return [r for burst in self.bursts for r in burst]


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    latency = draw(st.integers(0, 5))
    bursts: list[list[AuditRecord]] = []
    cursor = 2.0
    for b in range(draw(st.integers(1, 3))):
        if b:  # past the previous burst's trigger (quiet + latency, at the next tick) and its cooldown
            cursor += QUIET + latency + 1 + COOLDOWN + 0.5 + draw(st.floats(0.0, 4.0))
        burst = []
        for c in range(draw(st.integers(1, 4))):
            if c:
                cursor += draw(st.floats(0.0, QUIET - 0.5))
            made = T0 + dt.timedelta(minutes=round(cursor, 3))
            delay = dt.timedelta(minutes=round(draw(st.floats(0.0, float(latency))), 3))
            burst.append(AuditRecord(f"e{b}-{c}", made, made + delay))
        bursts.append(burst)
    return Scenario(latency, bursts)


@pytest.fixture
def trigger_queue(app_environment: dict[str, str]) -> Iterator[QueueClient]:
    name = f"probe-race-{uuid.uuid4().hex[:12]}"
    get_clients().queue_service.create_queue(name)
    yield get_clients().queue(name)
    get_clients().queue_service.delete_queue(name)


def drain(queue: QueueClient) -> list[str]:
    """Every message in the queue (each received once and deleted), as trigger ids."""
    ids: list[str] = []
    while batch := list(queue.receive_messages(max_messages=32, visibility_timeout=60)):
        for message in batch:
            ids.append(Trigger.model_validate_json(message.content).trigger_id)
            queue.delete_message(message)
    return ids


def race(scenario: Scenario, probes: list[ProbeService], scope: str) -> list[tuple[int, Trigger]]:
    emitted: list[tuple[int, Trigger]] = []
    lock = threading.Lock()
    records = scenario.records
    last = max(r.at for r in records)
    end = int((last - T0).total_seconds() // 60) + QUIET + scenario.latency + COOLDOWN + QUIET + 4

    def tick(probe: ProbeService, minute: int, replay: bool, barrier: threading.Barrier) -> None:
        now = T0 + dt.timedelta(minutes=minute)
        start = T0 - dt.timedelta(days=1) if minute == 0 else now - dt.timedelta(minutes=1 + OVERLAP)
        if replay:
            changes = [r.change() for r in records if r.visible_at <= now]
        else:
            changes = delivered(records, start, now, now)
        barrier.wait()
        for result in probe.advance({scope: changes}, now):
            if result.trigger is not None:
                with lock:
                    emitted.append((minute, result.trigger))

    for minute in range(end + 1):
        barrier = threading.Barrier(len(probes))
        threads = [
            threading.Thread(target=tick, args=(p, minute, minute >= end - 1, barrier)) for p in probes
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    return emitted


@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(scenario=scenarios())
def test_two_racing_probes_trigger_once_per_burst_and_queue_one_message_per_trigger(
    trigger_queue: QueueClient, scenario: Scenario
) -> None:
    table = get_clients().table(Tables.PROBE_STATE)
    scope = f"prop-{uuid.uuid4().hex[:12]}"
    probes = [probe_for(scope, table, trigger_queue, scenario.windows) for _ in range(2)]

    emitted = race(scenario, probes, scope)
    messages = drain(trigger_queue)

    # Each burst gets one trigger, committed by one probe only, covering that burst and no other.
    assert len(emitted) == len(scenario.bursts), [t.summary for _, t in emitted]
    previous: int | None = None
    for (minute, trigger), burst in zip(emitted, scenario.bursts, strict=True):
        fired = T0 + dt.timedelta(minutes=minute)
        assert all(r.at <= fired for r in burst)
        assert previous is None or all(r.at > T0 + dt.timedelta(minutes=previous) for r in burst)
        assert trigger.summary.count == len(burst)
        previous = minute
    assert all(b - a >= COOLDOWN for (a, _), (b, _) in itertools.pairwise(emitted))
    # One queue message per trigger, although both probes saw every committed outbox.
    assert Counter(messages) == Counter(t.trigger_id for _, t in emitted)
    state, _ = ProbeStateStore(table).read(scope)
    assert (state.outbox, state.triggers_emitted) == (None, len(scenario.bursts))


def test_a_burst_of_remembered_ids_round_trips_through_table_storage(app_environment: dict[str, str]) -> None:
    """MAX_BURST_IDS record ids fit the row (one 64,000-byte binary property) and read back unchanged."""
    store = ProbeStateStore(get_clients().table(Tables.PROBE_STATE))
    scope = f"ids-{uuid.uuid4().hex[:12]}"
    windows = ProbeWindows(quiet=dt.timedelta(minutes=15), cooldown=dt.timedelta(minutes=30))
    made = [
        Change(
            event_id=f"intune_audit:{i}",
            at=utc_iso(T0 + dt.timedelta(seconds=i / 10)),
            service="Intune",
            operation="Patch",
        )
        for i in range(MAX_BURST_IDS + 500)
    ]
    now = T0 + dt.timedelta(minutes=10)
    for poll in range(1, 6):  # overlapping windows: each poll returns every change so far
        store.transition(scope, made[: len(made) * poll // 5], now, windows)

    state, _ = store.read(scope)
    assert len(state.burst_seen) == MAX_BURST_IDS * 16
    expected, _ = step(ProbeState(scope=scope), made, now, windows)
    assert state.burst_count == len(made)
    assert state.burst_seen == expected.burst_seen
    _, trigger = store.transition(scope, made, T0 + dt.timedelta(minutes=40), windows)
    assert trigger is not None
    assert (trigger.summary.count, trigger.summary.count_exact) == (len(made), False)
