"""RowClaimer against real Azurite: the claim that guards pipeline runs and notifications."""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections.abc import Iterator

import pytest
from azure.data.tables import TableClient

from shared.platform.clients import get_clients
from shared.platform.table_claim import ClaimBusyError, ClaimLostError, RowClaimer

NOW = dt.datetime(2026, 11, 22, 9, 0, tzinfo=dt.UTC)
STALE_AFTER = dt.timedelta(minutes=5)
HELD_LONGER = dt.timedelta(minutes=15)


@pytest.fixture
def table(app_environment: dict[str, str]) -> Iterator[TableClient]:
    client = get_clients().table_service.create_table(f"claims{uuid.uuid4().hex[:12]}")
    yield client
    client.delete_table()


@pytest.fixture
def claimer(table: TableClient) -> RowClaimer:
    return RowClaimer(table, "working", {"done"}, STALE_AFTER)


def test_the_first_claim_creates_the_row_with_its_new_fields(claimer: RowClaimer, table: TableClient) -> None:
    claim = claimer.claim("p", "r", NOW, new_fields={"attempts": 0}, label="job r")
    assert claim.state == "claimed"
    assert claim.existing == {}
    row = table.get_entity("p", "r")
    assert (row["status"], row["claimed_at"], row["attempts"]) == ("working", "2026-11-22T09:00:00.000Z", 0)


def test_a_held_claim_is_busy_until_it_goes_stale(claimer: RowClaimer, table: TableClient) -> None:
    claimer.claim("p", "r", NOW, label="job r")
    with pytest.raises(ClaimBusyError, match="job r is being handled by another worker"):
        claimer.claim("p", "r", NOW + STALE_AFTER - dt.timedelta(seconds=1), label="job r")

    later = NOW + STALE_AFTER
    claim = claimer.claim("p", "r", later, takeover_fields=lambda existing: {"retried": True}, label="job r")
    assert claim.state == "claimed"
    assert claim.existing["claimed_at"] == "2026-11-22T09:00:00.000Z"
    row = table.get_entity("p", "r")
    assert row["claimed_at"] == "2026-11-22T09:05:00.000Z"
    assert row["retried"] is True


def test_a_done_row_is_reported_with_what_it_recorded(claimer: RowClaimer, table: TableClient) -> None:
    table.create_entity({"PartitionKey": "p", "RowKey": "r", "status": "done", "run_id": 42})
    claim = claimer.claim("p", "r", NOW + dt.timedelta(days=30), label="job r")
    assert claim.state == "done"
    assert claim.existing["run_id"] == 42
    assert table.get_entity("p", "r")["status"] == "done"


def test_a_row_in_another_status_is_taken_over_at_once(claimer: RowClaimer, table: TableClient) -> None:
    table.create_entity(
        {"PartitionKey": "p", "RowKey": "r", "status": "retrying", "claimed_at": "2026-11-22T09:00:00.000Z"}
    )
    claim = claimer.claim("p", "r", NOW, label="job r")
    assert claim.state == "claimed"
    assert table.get_entity("p", "r")["status"] == "working"


def test_workers_racing_for_a_stale_claim_leave_exactly_one_winner(
    claimer: RowClaimer, table: TableClient
) -> None:
    claimer.claim("p", "r", NOW, label="job r")
    later = NOW + STALE_AFTER + dt.timedelta(minutes=1)
    start = threading.Barrier(8)
    outcomes: list[str] = []
    lock = threading.Lock()

    def worker() -> None:
        start.wait()
        result: str
        try:
            result = claimer.claim("p", "r", later, label="job r").state
        except ClaimBusyError:
            result = "busy"
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(outcomes) == ["busy"] * 7 + ["claimed"]


def test_an_owner_recognises_its_own_create_after_the_sdk_retried_it(
    claimer: RowClaimer, table: TableClient
) -> None:
    first = claimer.claim("p", "r", NOW, label="job r", owner="worker-a")
    # The answer to the create was lost and the SDK sent it again: 409, but the row is ours.
    again = claimer.claim("p", "r", NOW, label="job r", owner="worker-a")
    assert (again.state, again.existing, again.etag) == ("claimed", {}, first.etag)
    with pytest.raises(ClaimBusyError) as busy:
        claimer.claim("p", "r", NOW, label="job r", owner="worker-b")
    assert busy.value.held["owner"] == "worker-a"


def test_advance_moves_the_claim_on_only_for_the_worker_that_still_holds_it(
    table: TableClient,
) -> None:
    claimer = RowClaimer(table, "claimed", {"sent"}, STALE_AFTER, held_statuses={"sending": HELD_LONGER})
    slow = claimer.claim("p", "r", NOW, label="job r", owner="slow")
    assert slow.etag is not None
    later = NOW + STALE_AFTER
    fast = claimer.claim("p", "r", later, label="job r", owner="fast")  # the slow worker's claim went stale
    assert fast.etag is not None

    with pytest.raises(ClaimLostError, match="taken over"):
        claimer.advance(
            "p", "r", later, etag=slow.etag, owner="slow", fields={"status": "sending"}, label="job r"
        )
    moved = claimer.advance(
        "p", "r", later, etag=fast.etag, owner="fast", fields={"status": "sending"}, label="job r"
    )
    # The SDK resent the same write after a lost answer: refused with 412, recognised as landed.
    assert (
        claimer.advance(
            "p", "r", later, etag=fast.etag, owner="fast", fields={"status": "sending"}, label="job r"
        )
        == moved
    )
    row = table.get_entity("p", "r")
    assert (row["status"], row["owner"]) == ("sending", "fast")

    # A `sending` row holds for its own, longer time: nobody may post while its worker may live.
    with pytest.raises(ClaimBusyError):
        claimer.claim("p", "r", later + HELD_LONGER - dt.timedelta(seconds=1), label="job r", owner="third")
    taken = claimer.claim("p", "r", later + HELD_LONGER, label="job r", owner="third")
    assert (taken.state, taken.existing["status"]) == ("claimed", "sending")
