"""The probe's outbox: one queue message per trigger when probes race, and none lost when a probe dies.

Over the in-memory table of tests/support/probe_sim.py, which keeps Table Storage's ETag rules; the
interleavings are forced at the exact point where they matter.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest

from shared.probe.service import ProbeService
from shared.probe.state import Change, ProbeWindows
from shared.probe.store import OUTBOX_CLAIM_TIMEOUT, ProbeStateStore
from tests.support.probe_sim import FakeQueue, FakeTable, probe_for

T0 = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC)
WINDOWS = ProbeWindows(quiet=dt.timedelta(minutes=5), cooldown=dt.timedelta(minutes=30))
SCOPE = "tenant-config"
CHANGE = Change(event_id="intune_audit:1", at="2026-11-20T09:00:00.000Z", service="Intune", operation="Patch")


def at(minutes: float) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


class HookedQueue(FakeQueue):
    """Runs `before_send` once, just before the first message is recorded."""

    def __init__(self, before_send: Callable[[], object] | None = None) -> None:
        super().__init__()
        self.before_send = before_send

    def send_message(self, content: str, **kwargs: Any) -> None:
        hook, self.before_send = self.before_send, None
        if hook is not None:
            hook()
        super().send_message(content, **kwargs)


class FailingQueue(FakeQueue):
    def send_message(self, content: str, **kwargs: Any) -> None:
        raise ConnectionError("queue unreachable")


class HookedTable(FakeTable):
    """Runs `before_update` once, between a caller's read and its conditional write."""

    before_update: Callable[[], object] | None = None

    def update_entity(self, entity: Any, *args: Any, **kwargs: Any) -> None:
        hook, self.before_update = self.before_update, None
        if hook is not None:
            hook()
        super().update_entity(entity, *args, **kwargs)


def armed(table: FakeTable, queue: FakeQueue) -> ProbeService:
    probe = probe_for(SCOPE, table, queue, WINDOWS)
    probe.advance({SCOPE: [CHANGE]}, at(1))
    return probe


def test_a_probe_racing_the_committer_queues_nothing_while_the_committer_queues_it() -> None:
    table = FakeTable()
    other_queue = FakeQueue()
    other = probe_for(SCOPE, table, other_queue, WINDOWS)
    # The second probe runs its whole cycle between the committer's conditional write and its send.
    queue = HookedQueue(before_send=lambda: other.advance({SCOPE: [CHANGE]}, at(6)))
    committer = armed(table, queue)

    (result,) = committer.advance({SCOPE: [CHANGE]}, at(6))

    assert result.trigger is not None
    assert queue.trigger_ids() == [result.trigger.trigger_id]
    assert other_queue.messages == []
    state, _ = ProbeStateStore(table).read(SCOPE)
    assert (state.outbox, state.triggers_emitted) == (None, 1)


def test_an_outbox_left_by_a_dead_probe_is_queued_once_after_the_claim_timeout() -> None:
    table = FakeTable()
    dead = armed(table, FailingQueue())
    with pytest.raises(ConnectionError):
        dead.advance({SCOPE: [CHANGE]}, at(6))  # committed, never queued
    queue = FakeQueue()
    survivor = probe_for(SCOPE, table, queue, WINDOWS)

    survivor.advance({SCOPE: [CHANGE]}, at(6) + OUTBOX_CLAIM_TIMEOUT - dt.timedelta(seconds=1))
    assert queue.messages == []  # the claim is fresh: its probe may still be queuing it
    survivor.advance({SCOPE: [CHANGE]}, at(6) + OUTBOX_CLAIM_TIMEOUT)
    survivor.advance({SCOPE: [CHANGE]}, at(6) + 2 * OUTBOX_CLAIM_TIMEOUT)

    assert len(queue.messages) == 1
    state, _ = ProbeStateStore(table).read(SCOPE)
    assert state.outbox is None
    assert queue.trigger_ids() == [state.last_trigger_id]


def test_two_probes_taking_over_a_stale_outbox_at_once_queue_it_once() -> None:
    table = HookedTable()
    dead = armed(table, FailingQueue())
    with pytest.raises(ConnectionError):
        dead.advance({SCOPE: [CHANGE]}, at(6))
    first_queue, second_queue = FakeQueue(), FakeQueue()
    first = probe_for(SCOPE, table, first_queue, WINDOWS)
    second = probe_for(SCOPE, table, second_queue, WINDOWS)
    later = at(6) + OUTBOX_CLAIM_TIMEOUT
    # The second probe reads, claims and queues between the first one's read and its claiming write.
    table.before_update = lambda: second.recover_outbox(SCOPE, later)

    assert first.recover_outbox(SCOPE, later) is None  # its conditional write lost

    assert first_queue.messages == []
    assert len(second_queue.messages) == 1
    assert table.conflicts == 1
