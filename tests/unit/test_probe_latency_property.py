"""Property: exactly one backup trigger per burst, for every audit latency from 0 to 30 minutes.

Simulated time, the real ProbeService and ProbeStateStore over an in-memory table with Table Storage's
ETag rules (tests/support/probe_sim.py). Each example draws bursts of changes (each less than the quiet
window after the one before), a visibility delay per record up to the latency under test, the probe's
audit-latency setting (at least that latency), the quiet window, cooldown, poll interval and poll phase.
Graph windows reach back max(GRAPH_OVERLAP_SECONDS, the audit-latency setting), as the app's do, so late
records are delivered again and again. Bursts lie far enough apart that each must get its own trigger.
"""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.platform.clock import utc_iso
from shared.probe.state import ProbeWindows
from tests.support.probe_sim import AuditRecord, Polls, simulate

T0 = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC)
GRAPH_OVERLAP = dt.timedelta(minutes=15)  # the GRAPH_OVERLAP_SECONDS default
MIN_BURSTS_PER_LATENCY = 500
EXAMPLES_PER_LATENCY = 130  # at least 4 bursts each
CLOSE_EXAMPLES_PER_LATENCY = 25


def minutes(value: float) -> dt.timedelta:
    return dt.timedelta(milliseconds=round(value * 60_000))


@dataclass(frozen=True)
class Scenario:
    windows: ProbeWindows
    polls: Polls
    bursts: list[list[AuditRecord]]

    @property
    def records(self) -> list[AuditRecord]:
        return [r for burst in self.bursts for r in burst]

    @property
    def until(self) -> dt.datetime:
        last = max(r.at for r in self.records)
        w = self.windows
        return last + 2 * w.settle + w.cooldown + w.quiet + 3 * self.polls.interval


@st.composite
def scenarios(draw: st.DrawFn, latency: int, *, close: bool = False) -> Scenario:
    quiet = draw(st.sampled_from([5.0, 10.0, 15.0]))
    allowance = draw(st.one_of(st.just(float(latency)), st.floats(latency, 30.0)))
    cooldown = draw(st.floats(0.0, 30.0))
    windows = ProbeWindows(quiet=minutes(quiet), cooldown=minutes(cooldown), audit_latency=minutes(allowance))
    interval = draw(st.floats(2.0, 10.0))
    polls = Polls(
        first=T0 + minutes(draw(st.floats(0.0, interval))),  # the poll phase
        interval=minutes(interval),
        overlap=max(GRAPH_OVERLAP, windows.audit_latency),
    )
    delay = st.one_of(st.just(0.0), st.just(float(latency)), st.floats(0.0, float(latency)))
    bursts: list[list[AuditRecord]] = []
    cursor = 30.0
    for b in range(draw(st.integers(4, 6))):
        if b and close:
            # A separate burst (more than the quiet window later), possibly inside the previous one's
            # settling time or cooldown.
            cursor += quiet + 0.5 + draw(st.floats(0.0, allowance + interval + cooldown + quiet))
        elif b:
            # Past the previous burst's trigger (due quiet + latency after its last change, at the next
            # poll) and its cooldown: each burst must get a trigger of its own.
            cursor += quiet + allowance + interval + cooldown + 0.5 + draw(st.floats(0.0, 20.0))
        burst = []
        for c in range(draw(st.integers(1, 6))):
            if c:
                cursor += draw(st.floats(0.0, quiet - 0.5))
            at = T0 + minutes(cursor)
            burst.append(AuditRecord(f"e{b}-{c}", at, at + minutes(draw(delay))))
        bursts.append(burst)
    return Scenario(windows, polls, bursts)


def check(scenario: Scenario) -> None:
    outcome = simulate(scenario.records, scenario.polls, scenario.windows, scenario.until)

    assert len(outcome.triggers) == len(scenario.bursts), [t.summary for _, t in outcome.triggers]
    previous: dt.datetime | None = None
    for (fired_at, trigger), burst in zip(outcome.triggers, scenario.bursts, strict=True):
        # The burst is in this backup and in no earlier one, and the summary counts each change once.
        assert all(r.at <= fired_at for r in burst)
        assert previous is None or all(r.at > previous for r in burst)
        assert trigger.summary.count == len(burst)
        assert trigger.summary.count_exact
        assert trigger.summary.first_change_at == utc_iso(min(r.at for r in burst))
        assert trigger.summary.last_change_at == utc_iso(max(r.at for r in burst))
        previous = fired_at
    times = [at for at, _ in outcome.triggers]
    assert all(b - a >= scenario.windows.cooldown for a, b in itertools.pairwise(times))
    # Exactly one queue message per trigger.
    assert outcome.queue.trigger_ids() == [t.trigger_id for _, t in outcome.triggers]


def check_close(scenario: Scenario) -> None:
    """Bursts close together may share a trigger (the cooldown holds the second back), and one that
    starts less than the audit latency before another's trigger has its earlier changes in that backup
    and the rest in the next. Never more, never a trigger with nothing new, never a change left out."""
    outcome = simulate(scenario.records, scenario.polls, scenario.windows, scenario.until)

    times = [at for at, _ in outcome.triggers]
    records = scenario.records
    assert times
    assert all(r.at <= times[-1] for r in records)
    bounds = [None, *times]
    for (start, end), (_, trigger) in zip(itertools.pairwise(bounds), outcome.triggers, strict=True):
        assert end is not None
        covered = [r for r in records if (start is None or r.at > start) and r.at <= end]
        assert 1 <= trigger.summary.count <= len(covered)
    assert sum(t.summary.count for _, t in outcome.triggers) <= len(records)
    assert all(b - a >= scenario.windows.cooldown for a, b in itertools.pairwise(times))
    for burst in scenario.bursts:
        covering = sorted({next(t for t in times if t >= r.at) for r in burst})
        assert len(covering) <= 2
        if len(covering) == 2:
            assert covering[0] - burst[0].at <= scenario.windows.audit_latency
    assert outcome.queue.trigger_ids() == [t.trigger_id for _, t in outcome.triggers]


@pytest.mark.parametrize("latency", range(0, 31))
def test_exactly_one_trigger_per_burst_at_every_audit_latency(latency: int) -> None:
    bursts_run = 0

    @settings(
        max_examples=EXAMPLES_PER_LATENCY,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(scenario=scenarios(latency))
    def one_scenario(scenario: Scenario) -> None:
        nonlocal bursts_run
        check(scenario)
        bursts_run += len(scenario.bursts)

    @settings(
        max_examples=CLOSE_EXAMPLES_PER_LATENCY,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(scenario=scenarios(latency, close=True))
    def close_scenario(scenario: Scenario) -> None:
        check_close(scenario)

    one_scenario()
    assert bursts_run >= MIN_BURSTS_PER_LATENCY, bursts_run
    close_scenario()
