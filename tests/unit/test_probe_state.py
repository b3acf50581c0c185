"""The debouncer's pure state machine."""

from __future__ import annotations

import datetime as dt

import pytest

from shared.platform.clock import utc_iso
from shared.probe.state import MAX_BURST_IDS, Change, Phase, ProbeState, ProbeWindows, Trigger, step

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
    assert state.outbox_claimed_at == utc_iso(minutes(16))
    assert state.covered_through == utc_iso(minutes(16))  # the trigger time: the backup has all before it


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


# --- audit latency: a change's activity time decides, not when its record shows up ---------------------

LATE = ProbeWindows(
    quiet=dt.timedelta(minutes=15), cooldown=dt.timedelta(minutes=30), audit_latency=dt.timedelta(minutes=30)
)


def test_the_deadline_waits_for_the_audit_latency_after_the_quiet_window() -> None:
    state, _ = step(ProbeState(scope="s"), [change(0), change(4)], minutes(5), LATE)
    assert state.quiet_deadline == utc_iso(minutes(4 + 15 + 30))
    state, early = step(state, [], minutes(48.9), LATE)
    assert early is None
    _, trigger = step(state, [], minutes(49), LATE)
    assert trigger is not None


def test_a_burst_change_whose_record_arrives_late_joins_the_burst_before_the_trigger() -> None:
    # Made at 10 (within the quiet window of the change at 0), visible only at 39: one trigger for both.
    state, _ = step(ProbeState(scope="s"), [change(0)], minutes(1), LATE)
    state, none_yet = step(state, [change(0)], minutes(20), LATE)
    assert none_yet is None
    state, _ = step(state, [change(0), change(10)], minutes(39), LATE)
    state, trigger = step(state, [change(0), change(10)], minutes(55), LATE)
    assert trigger is not None
    assert (trigger.summary.count, trigger.summary.last_change_at) == (2, utc_iso(minutes(10)))


def test_a_change_made_before_the_trigger_but_seen_after_it_never_rearms() -> None:
    # The case, with no latency allowance at all: the record of a change made at 14 arrives at 20.
    state, _ = step(ProbeState(scope="s"), [change(0)], minutes(1), WINDOWS)
    state, trigger = step(state, [change(0)], minutes(15), WINDOWS)
    assert trigger is not None
    state, again = step(state, [change(0), change(14, event_id="late")], minutes(20), WINDOWS)
    assert again is None
    assert (state.phase, state.pending) == (Phase.COOLDOWN, False)
    state, after = step(state, [change(14, event_id="late")], minutes(46), WINDOWS)
    assert (after, state.phase) == (None, Phase.IDLE)


def test_a_change_made_after_the_trigger_is_buffered_and_backed_up_once_more() -> None:
    state, _ = step(ProbeState(scope="s"), [change(0)], minutes(1), WINDOWS)
    state, first = step(state, [], minutes(15), WINDOWS)
    state, during = step(state, [change(15.5, event_id="after")], minutes(25), WINDOWS)
    assert (first is not None, during, state.pending) == (True, None, True)
    state, _ = step(state, [], minutes(45), WINDOWS)
    state, second = step(state, [change(15.5, event_id="after")], minutes(60), WINDOWS)
    assert second is not None
    assert second.summary.count == 1


# --- timestamps in the future -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "stamp",
    ["9999-12-31T23:59:59.9999999Z", "2026-11-21T09:00:00Z", "not a timestamp", "10000-01-01T00:00:00Z"],
)
def test_a_change_stamped_in_the_future_is_clamped_to_now_plus_the_skew(stamp: str) -> None:
    future = Change(event_id="future", at=stamp, service="Intune", operation="Patch", actor=None)
    state, _ = step(ProbeState(scope="s"), [future], minutes(1), LATE)
    assert state.burst_last_at == utc_iso(minutes(1) + LATE.clock_skew)
    assert state.quiet_deadline == utc_iso(minutes(1) + LATE.clock_skew + LATE.settle)

    state, trigger = step(state, [future], minutes(51), LATE)
    assert trigger is not None
    assert trigger.summary.count == 1
    # Delivered again later, it keeps the time it was given: covered, so it never re-arms.
    state, _ = step(state, [future], minutes(90), LATE)
    state, again = step(state, [future], minutes(200), LATE)
    assert (again, state.phase, state.triggers_emitted) == (None, Phase.IDLE, 1)


def test_a_change_within_the_skew_keeps_its_own_time() -> None:
    soon = change(3)
    state, _ = step(ProbeState(scope="s"), [soon], minutes(1), LATE)
    assert state.burst_last_at == utc_iso(minutes(3))


# --- exact counts ---------------------------------------------------------------------------------------


def test_a_thousand_changes_over_five_overlapping_polls_count_a_thousand() -> None:
    # Each poll returns every change so far (the windows overlap), as Graph does within its overlap.
    made = [change(i * 0.02, event_id=f"intune_audit:{i}") for i in range(1000)]
    state = ProbeState(scope="s")
    for poll in range(1, 6):
        state, _ = step(state, made[: poll * 200], minutes(poll * 4), WINDOWS)
    _, trigger = step(state, made, minutes(60), WINDOWS)
    assert trigger is not None
    assert (trigger.summary.count, trigger.summary.count_exact) == (1000, True)


def test_past_the_remembered_ids_re_deliveries_still_count_once_and_the_summary_says_so() -> None:
    total = MAX_BURST_IDS + 1000
    made = [change(i * 0.001, event_id=f"intune_audit:{i}") for i in range(total)]
    state = ProbeState(scope="s")
    for poll in range(1, 4):
        state, _ = step(state, made[: total * poll // 3], minutes(5 + poll), WINDOWS)
    assert len(state.burst_seen) == MAX_BURST_IDS * 16
    state, _ = step(state, made, minutes(9), WINDOWS)  # every one of them delivered again
    _, trigger = step(state, made, minutes(60), WINDOWS)
    assert trigger is not None
    assert (trigger.summary.count, trigger.summary.count_exact) == (total, False)


# --- the outbox ---------------------------------------------------------------------------------------


def test_a_trigger_replaces_one_its_probe_never_queued() -> None:
    state, _ = step(ProbeState(scope="s"), [change(0)], minutes(1), WINDOWS)
    state, first = step(state, [], minutes(15), WINDOWS)
    state, _ = step(state, [change(20)], minutes(21), WINDOWS)
    state, _ = step(state, [], minutes(45), WINDOWS)
    state, second = step(state, [], minutes(60), WINDOWS)
    assert first is not None
    assert second is not None
    assert state.outbox is not None
    # The second backup covers the first burst's changes as well.
    assert Trigger.model_validate_json(state.outbox).trigger_id == second.trigger_id
    assert state.covered_through == utc_iso(minutes(60))
