"""`python -m shared.app.cli backfill-counts`: the days it asks the event store to count, and its output."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from shared.app import cli
from tests.support.clock import ManualClock

NOW = dt.datetime(2026, 12, 7, 9, 30, tzinfo=dt.UTC)


class RecordingStore:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def backfill_counts(self, tenant_id: str, first_day: dt.date, last_day: dt.date, now: str) -> int:
        self.calls.append((tenant_id, first_day, last_day, now))
        return 42


@pytest.fixture
def store(monkeypatch: pytest.MonkeyPatch) -> RecordingStore:
    recording = RecordingStore()
    monkeypatch.setattr(cli, "event_store", lambda: recording)
    monkeypatch.setattr(cli, "tenant_id", lambda: "contoso-tenant")
    monkeypatch.setattr(cli, "app_clock", lambda: ManualClock(NOW))
    return recording


def test_it_counts_from_the_first_day_to_today_by_default(
    store: RecordingStore, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["backfill-counts", "--from", "2026-09-01"]) == 0
    assert store.calls == [
        ("contoso-tenant", dt.date(2026, 9, 1), dt.date(2026, 12, 7), "2026-12-07T09:30:00.000Z")
    ]
    printed = json.loads(capsys.readouterr().out)
    assert printed == {"tenant": "contoso-tenant", "from": "2026-09-01", "to": "2026-12-07", "events": 42}


def test_an_explicit_last_day(store: RecordingStore, capsys: pytest.CaptureFixture[str]) -> None:
    cli.main(["backfill-counts", "--from", "2026-09-01", "--to", "2026-09-30"])
    assert store.calls[0][2] == dt.date(2026, 9, 30)
    assert json.loads(capsys.readouterr().out)["to"] == "2026-09-30"


@pytest.mark.parametrize(
    "argv",
    [
        ["backfill-counts"],
        ["backfill-counts", "--from", "yesterday"],
        ["backfill-counts", "--from", "2026-09-01", "--to", "2026-13-01"],
    ],
)
def test_bad_days_are_refused_before_anything_runs(store: RecordingStore, argv: list[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(argv)
    assert store.calls == []


def test_a_range_that_ends_before_it_begins_is_refused(store: RecordingStore) -> None:
    with pytest.raises(SystemExit, match="before"):
        cli.main(["backfill-counts", "--from", "2026-10-02", "--to", "2026-10-01"])
    assert store.calls == []
