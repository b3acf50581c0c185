"""Property test: two probe instances interleave their read-modify-write against real Azurite.

Time is injected: ticks of one minute, a quiet window of 3 and a cooldown of 6. Each instance sees the
changes that happened in the last OVERLAP minutes on every tick (as overlapping poll windows deliver them
again), and at the end both replay every change ever made.
"""

from __future__ import annotations

import datetime as dt
import itertools
import threading
import uuid
from dataclasses import dataclass

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.clients import get_clients
from shared.clock import parse_utc, utc_iso
from shared.probe.state import Change, Phase, ProbeWindows, Trigger
from shared.probe.store import ProbeStateStore
from shared.resources import Tables

T0 = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC)
QUIET, COOLDOWN, OVERLAP = 3, 6, 5
WINDOWS = ProbeWindows(quiet=dt.timedelta(minutes=QUIET), cooldown=dt.timedelta(minutes=COOLDOWN))


@dataclass(frozen=True)
class Burst:
    start: float  # minutes after T0
    offsets: tuple[float, ...]  # minutes after start, each below the quiet window apart


@st.composite
def schedules(draw: st.DrawFn) -> list[Burst]:
    bursts: list[Burst] = []
    cursor = 0.0
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        # A gap either lands inside the previous cooldown or clears quiet + cooldown with room to spare.
        cursor += draw(
            st.one_of(st.floats(0.5, 8.0), st.floats(QUIET + COOLDOWN + 2.5, QUIET + COOLDOWN + 6))
        )
        steps = draw(st.lists(st.floats(0.0, QUIET - 1.0), min_size=0, max_size=4))
        offsets, at = [0.0], 0.0
        for step_minutes in steps:
            at += step_minutes
            offsets.append(round(at, 3))
        bursts.append(Burst(start=round(cursor, 3), offsets=tuple(offsets)))
        cursor += offsets[-1]
    return bursts


def _changes(bursts: list[Burst]) -> list[Change]:
    changes = []
    for b, burst in enumerate(bursts):
        for c, offset in enumerate(burst.offsets):
            at = T0 + dt.timedelta(minutes=burst.start + offset)
            changes.append(Change(event_id=f"e{b}-{c}", at=utc_iso(at), service="Intune", operation="Patch"))
    return changes


class Instance:
    """One probe instance. It skips ticks where nothing can change for it (no unseen change, no deadline
    it knows of has passed), as a cheaper poll loop might; both still race at every meaningful moment."""

    def __init__(self, store: ProbeStateStore, scope: str) -> None:
        self.store = store
        self.scope = scope
        self.seen: set[str] = set()
        self.wake_at: dt.datetime | None = None

    def tick(self, now: dt.datetime, visible: list[Change], force: bool) -> Trigger | None:
        unseen = {c.event_id for c in visible} - self.seen
        if not force and not unseen and (self.wake_at is None or now < self.wake_at):
            return None
        state, trigger = self.store.transition(self.scope, visible, now, WINDOWS)
        self.seen |= unseen
        due = state.quiet_deadline if state.phase == Phase.ARMED else state.cooldown_until
        self.wake_at = parse_utc(due) if due else None
        return trigger


def _run(
    store: ProbeStateStore, scope: str, changes: list[Change], end_minute: int
) -> list[tuple[int, Trigger]]:
    emitted: list[tuple[int, Trigger]] = []
    lock = threading.Lock()
    instances = [Instance(store, scope), Instance(store, scope)]

    def run(instance: Instance, minute: int, replay_all: bool, barrier: threading.Barrier) -> None:
        now = T0 + dt.timedelta(minutes=minute)
        earliest = now - dt.timedelta(minutes=OVERLAP)
        visible = [
            c for c in changes if parse_utc(c.at) <= now and (replay_all or parse_utc(c.at) >= earliest)
        ]
        barrier.wait()
        trigger = instance.tick(now, visible, force=replay_all)
        if trigger is not None:
            with lock:
                emitted.append((minute, trigger))

    for minute in range(end_minute + 1):
        replay_all = minute >= end_minute - 2
        barrier = threading.Barrier(2)
        threads = [threading.Thread(target=run, args=(i, minute, replay_all, barrier)) for i in instances]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    return emitted


@settings(
    max_examples=1000,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(bursts=schedules())
def test_two_interleaved_probes_trigger_exactly_once_per_burst(
    app_environment: dict[str, str], bursts: list[Burst]
) -> None:
    store = ProbeStateStore(get_clients().table(Tables.PROBE_STATE))
    scope = f"prop-{uuid.uuid4().hex[:12]}"
    changes = _changes(bursts)
    last_change = max(parse_utc(c.at) for c in changes)
    end_minute = int((last_change - T0).total_seconds() // 60) + QUIET + COOLDOWN + QUIET + 4

    emitted = _run(store, scope, changes, end_minute)
    ids = [trigger.trigger_id for _, trigger in emitted]

    # Only the writer whose ETag matched emits: no trigger is emitted twice.
    assert len(ids) == len(set(ids))
    # Every change is covered by exactly one trigger (changes in a cooldown by exactly one later one).
    assert sum(t.summary.count for _, t in emitted) == len(changes)
    for change in changes:
        covering = [
            t for _, t in emitted if t.summary.first_change_at <= change.at <= t.summary.last_change_at
        ]
        assert len(covering) == 1, change
    # No trigger falls inside the cooldown of the one before.
    minutes_of = [m for m, _ in emitted]
    assert all(later - earlier >= COOLDOWN for earlier, later in itertools.pairwise(minutes_of))
    # A burst clear of quiet + cooldown (plus a tick) on both sides yields exactly one trigger of its own.
    for index, burst in enumerate(bursts):
        before = index == 0 or burst.start - _end(bursts[index - 1]) > QUIET + COOLDOWN + 1
        after = index + 1 == len(bursts) or bursts[index + 1].start - _end(burst) > QUIET + COOLDOWN + 1
        if before and after:
            own = [
                t
                for _, t in emitted
                if any(c.event_id.startswith(f"e{index}-") for c in _covered(t, changes))
            ]
            assert len(own) == 1
            assert own[0].summary.count == len(burst.offsets)
    # Replaying every old change in the last ticks never triggers again.
    assert all(minute < end_minute - 2 for minute in minutes_of)


def _end(burst: Burst) -> float:
    return burst.start + burst.offsets[-1]


def _covered(trigger: Trigger, changes: list[Change]) -> list[Change]:
    return [c for c in changes if trigger.summary.first_change_at <= c.at <= trigger.summary.last_change_at]
