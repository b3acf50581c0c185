"""The debouncer's pure state machine."""

from __future__ import annotations

import datetime as dt

from shared.clock import utc_iso
from shared.probe.state import Change, Phase, ProbeState, ProbeWindows, step

T0 = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC)
WINDOWS = ProbeWindows(quiet=dt.timedelta(minutes=15), cooldown=dt.timedelta(minutes=30))


def minutes(n: float) -> dt.datetime:
    return T0 + dt.timedelta(minutes=n)


def change(n: float, event_id: str | None = None, actor: str = "admin@contoso.com") -> Change:
    return Change(
        event_id=event_id or f"intune_audit:{n}",
        at=utc_iso(minutes(n)),
        service="Intune",
        operation="Patch DeviceCompliancePolicy",
        actor=actor,
    )


def test_idle_change_arms_with_deadline_last_change_plus_quiet() -> None:
    state, trigger = step(ProbeState(scope="s"), [change(0), change(2)], minutes(3), WINDOWS)
    assert state.phase == Phase.ARMED
    assert state.quiet_deadline == utc_iso(minutes(17))
    assert trigger is None


def test_newer_change_extends_the_deadline() -> None:
    state, _ = step(ProbeState(scope="s"), [change(0)], minutes(1), WINDOWS)
    state, trigger = step(state, [change(0), change(10)], minutes(11), WINDOWS)
    assert state.quiet_deadline == utc_iso(minutes(25))
    assert trigger is None


def test_deadline_passed_emits_one_trigger_with_summary_and_cools_down() -> None:
    state, _ = step(
        ProbeState(scope="s"), [change(0), change(1, actor="other@contoso.com")], minutes(2), WINDOWS
    )
    state, trigger = step(state, [], minutes(16), WINDOWS)

    assert trigger is not None
    assert state.phase == Phase.COOLDOWN
    assert state.cooldown_until == utc_iso(minutes(46))
    assert trigger.summary.count == 2
    assert trigger.summary.first_change_at == utc_iso(minutes(0))
    assert trigger.summary.last_change_at == utc_iso(minutes(1))
    assert trigger.summary.actors == ["admin@contoso.com", "other@contoso.com"]
    assert trigger.summary.top_operations == [("Patch DeviceCompliancePolicy", 2)]
    assert trigger.summary.services == ["Intune"]
    assert state.outbox is not None
    assert state.covered_through == utc_iso(minutes(1))


def test_trigger_id_is_deterministic_for_the_burst() -> None:
    a, _ = step(ProbeState(scope="s"), [change(0), change(1)], minutes(2), WINDOWS)
    b, _ = step(ProbeState(scope="s"), [change(1), change(0)], minutes(5), WINDOWS)
    _, first = step(a, [], minutes(20), WINDOWS)
    _, second = step(b, [], minutes(21), WINDOWS)
    assert first is not None
    assert second is not None
    assert first.trigger_id == second.trigger_id


def test_changes_in_cooldown_are_buffered_and_trigger_once_after_it() -> None:
    state, _ = step(ProbeState(scope="s"), [change(0)], minutes(1), WINDOWS)
    state, first = step(state, [], minutes(15), WINDOWS)
    state, during = step(state, [change(20), change(25)], minutes(26), WINDOWS)
    assert first is not None
    assert during is None
    assert state.phase == Phase.COOLDOWN
    assert state.pending

    state, at_end = step(state, [], minutes(45), WINDOWS)
    assert at_end is None
    assert state.phase == Phase.ARMED
    assert state.quiet_deadline == utc_iso(minutes(60))

    state, second = step(state, [], minutes(60), WINDOWS)
    assert second is not None
    assert second.summary.count == 2
    assert second.trigger_id != first.trigger_id


def test_cooldown_without_changes_returns_to_idle() -> None:
    state, _ = step(ProbeState(scope="s"), [change(0)], minutes(1), WINDOWS)
    state, _ = step(state, [], minutes(15), WINDOWS)
    state, trigger = step(state, [], minutes(46), WINDOWS)
    assert state.phase == Phase.IDLE
    assert trigger is None


def test_replayed_old_changes_never_rearm() -> None:
    state, _ = step(ProbeState(scope="s"), [change(0), change(5)], minutes(6), WINDOWS)
    state, _ = step(state, [], minutes(20), WINDOWS)
    state, _ = step(state, [], minutes(51), WINDOWS)
    assert state.phase == Phase.IDLE

    replay = [change(0), change(5), change(3, event_id="late-but-older")]
    state, trigger = step(state, replay, minutes(60), WINDOWS)
    assert state.phase == Phase.IDLE
    assert trigger is None


def test_the_same_change_seen_twice_counts_once() -> None:
    state, _ = step(ProbeState(scope="s"), [change(0)], minutes(1), WINDOWS)
    state, _ = step(state, [change(0), change(0)], minutes(2), WINDOWS)
    _, trigger = step(state, [], minutes(16), WINDOWS)
    assert trigger is not None
    assert trigger.summary.count == 1


def test_no_change_and_no_deadline_leaves_the_state_untouched() -> None:
    state = ProbeState(scope="s")
    new_state, trigger = step(state, [], minutes(1), WINDOWS)
    assert new_state is state
    assert trigger is None
