"""The refresh service (shared/datasets/refresh.py) against an in-memory store and a scripted workspace:
throttle, lock, the first run's full window, incremental runs with overlap and dedupe, late rows, expiry,
partial results, a changed query, failures, and the HTTP status of a report."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import pytest

from shared.datasets.querying import QueryOutcome, QueryWindow
from shared.datasets.refresh import (
    InvalidSourceId,
    RefreshReport,
    RefreshService,
    SourceOutcome,
    UnknownSource,
    merge_rows,
)
from shared.datasets.sources import DatasetSource, SourceSet
from shared.datasets.tsv import decode_tsv
from shared.platform.clock import utc_iso
from tests.support.clock import ManualClock
from tests.support.dataset_memory import MemoryDatasetStore, ScriptedRunner

T0 = dt.datetime(2026, 12, 7, 9, 0, tzinfo=dt.UTC)
COLUMNS = ["TimeGenerated", "UserPrincipalName", "IPAddress"]
QUERY = (
    "SigninLogs | where TimeGenerated > ago({time_window}) | extend IngestionTime = ingestion_time()"
    " | project TimeGenerated, IngestionTime, UserPrincipalName, IPAddress"
)


def make_source(**changes: object) -> DatasetSource:
    fields: dict[str, object] = {
        "id": "signin_failures",
        "name": "Sign-in failures",
        "kind": "log_analytics",
        "refresh_interval_seconds": 300,
        "query_time_window_hours": 24,
        "incremental": True,
        "incremental_overlap_minutes": 10,
        "output_filename": "signin-failures.tsv",
        "columns": COLUMNS,
        "query": QUERY,
    }
    fields.update(changes)
    return DatasetSource.model_validate(fields)


@dataclass(frozen=True)
class Record:
    generated: dt.datetime
    ingested: dt.datetime
    user: str
    ip: str | None
    visible_from: dt.datetime  # Log Analytics lag: queryable only from here on

    def values(self) -> list[str | None]:
        return [utc_iso(self.generated), self.user, self.ip]


@dataclass
class Workspace:
    """Ground truth of a Log Analytics table: what a query over a window sees at `clock.now()`."""

    clock: ManualClock
    records: list[Record] = field(default_factory=list)
    complete: bool = True

    def add(
        self,
        generated: dt.datetime,
        ingested: dt.datetime,
        user: str,
        ip: str | None = "203.0.113.7",
        visible_from: dt.datetime | None = None,
    ) -> None:
        self.records.append(Record(generated, ingested, user, ip, visible_from or ingested))

    def answer(self, source: DatasetSource, window: QueryWindow) -> QueryOutcome:
        visible = [
            r
            for r in self.records
            if r.visible_from <= self.clock.now()
            and window.start <= r.generated <= window.end
            and (window.ingested_after is None or window.ingested_after < r.ingested <= window.end)
        ]
        return QueryOutcome(
            columns=list(source.columns),
            rows=[r.values() for r in visible],
            max_ingestion_time=max((r.ingested for r in visible), default=None),
            complete=self.complete,
            splits=0 if self.complete else 3,
            errors=[] if self.complete else ["PartialError: query exceeded the row limit"],
        )

    def truth(self, window_hours: int = 24) -> list[list[str | None]]:
        now = self.clock.now()
        seen = {
            tuple(r.values())
            for r in self.records
            if r.visible_from <= now and now - dt.timedelta(hours=window_hours) <= r.generated <= now
        }
        return sorted([list(v) for v in seen], key=lambda v: (v[0] or "", "\t".join(x or "" for x in v)))


@dataclass
class Harness:
    clock: ManualClock
    store: MemoryDatasetStore
    workspace: Workspace
    runner: ScriptedRunner
    sources: list[DatasetSource]
    service: RefreshService

    def dataset(self, source: DatasetSource | None = None) -> list[list[str]]:
        found = self.store.read(source or self.sources[0])
        assert found is not None
        columns, rows = decode_tsv(found[0])
        assert columns == COLUMNS
        return rows


@pytest.fixture
def harness() -> Harness:
    clock = ManualClock(T0)
    store = MemoryDatasetStore(now=clock.now)
    workspace = Workspace(clock)
    runner = ScriptedRunner(workspace.answer)
    sources = [make_source()]
    service = RefreshService(
        lambda: SourceSet(tuple(sources), "memory", "v1"), store, {"log_analytics": runner}, clock
    )
    return Harness(clock, store, workspace, runner, sources, service)


def as_text(rows: list[list[str | None]]) -> list[list[str]]:
    return [[v or "" for v in row] for row in rows]


def test_the_first_run_covers_the_full_window_and_publishes(harness: Harness) -> None:
    harness.workspace.add(T0 - dt.timedelta(hours=2), T0 - dt.timedelta(hours=2), "ann@contoso.com")
    harness.workspace.add(T0 - dt.timedelta(hours=1), T0 - dt.timedelta(minutes=50), "bob@contoso.com", None)

    report = harness.service.refresh()

    assert [o.status for o in report.outcomes] == ["refreshed"]
    assert report.http_status == 200
    assert report.refreshed_count == 1
    assert harness.runner.windows == [
        QueryWindow(start=T0 - dt.timedelta(hours=24), end=T0, ingested_after=None)
    ]
    assert harness.dataset() == as_text(harness.workspace.truth())
    meta = harness.store.stored_meta("signin_failures")
    assert meta.status == "ok"
    assert meta.watermark == T0 - dt.timedelta(minutes=50)
    assert (meta.rows, meta.rows_added, meta.duplicates_dropped) == (2, 2, 0)
    assert meta.last_refresh_at == T0
    assert meta.query_hash == harness.sources[0].query_hash
    version = harness.store.version(harness.sources[0])
    assert version is not None
    assert (meta.etag, meta.last_modified) == (version.etag, version.last_modified)


def test_within_the_interval_the_answer_is_throttled_and_no_query_runs(harness: Harness) -> None:
    harness.workspace.add(T0 - dt.timedelta(hours=1), T0 - dt.timedelta(hours=1), "ann@contoso.com")
    harness.service.refresh()
    harness.clock.advance(299)

    report = harness.service.refresh()

    assert [o.status for o in report.outcomes] == ["throttled"]
    assert report.outcomes[0].rows == 1
    assert report.http_status == 204
    assert len(harness.runner.windows) == 1
    harness.clock.advance(1)
    assert harness.service.refresh().http_status == 200
    assert len(harness.runner.windows) == 2


def test_a_held_lock_answers_locked_without_a_query(harness: Harness) -> None:
    harness.store.held.add("signin_failures")

    report = harness.service.refresh("signin_failures")

    assert [o.status for o in report.outcomes] == ["locked"]
    assert report.http_status == 202
    assert harness.runner.windows == []
    assert harness.store.metadata_blobs == {}


def test_an_incremental_run_asks_from_the_watermark_minus_the_overlap_and_drops_duplicates(
    harness: Harness,
) -> None:
    w = harness.workspace
    w.add(T0 - dt.timedelta(hours=3), T0 - dt.timedelta(minutes=20), "ann@contoso.com")
    w.add(T0 - dt.timedelta(minutes=6), T0 - dt.timedelta(minutes=5), "bob@contoso.com")  # the watermark
    harness.service.refresh()
    harness.clock.advance(600)
    # Within the overlap (re-read: a duplicate), late (generated long ago, ingested now), and new.
    w.add(T0 - dt.timedelta(hours=5), T0 + dt.timedelta(minutes=4), "late@contoso.com")
    w.add(T0 + dt.timedelta(minutes=8), T0 + dt.timedelta(minutes=9), "new@contoso.com")

    report = harness.service.refresh()

    assert report.outcomes[0].status == "refreshed"
    second = harness.runner.windows[1]
    assert second.ingested_after == T0 - dt.timedelta(minutes=5) - dt.timedelta(minutes=10)
    assert (second.start, second.end) == (harness.clock.now() - dt.timedelta(hours=24), harness.clock.now())
    assert harness.dataset() == as_text(harness.workspace.truth())
    meta = harness.store.stored_meta("signin_failures")
    assert (meta.rows, meta.rows_added, meta.duplicates_dropped) == (4, 2, 1)
    assert meta.watermark == T0 + dt.timedelta(minutes=9)
    assert report.outcomes[0].rows_added == 2


def test_three_refreshes_with_late_rows_equal_the_ground_truth(harness: Harness) -> None:
    w = harness.workspace
    for minute in range(0, 60, 7):
        w.add(
            T0 - dt.timedelta(minutes=90 - minute), T0 - dt.timedelta(minutes=89 - minute), f"u{minute}@c.com"
        )
    harness.service.refresh()
    for step in (1, 2):
        last_run = harness.clock.now()
        harness.clock.advance(400)
        now = harness.clock.now()
        # Late: generated an hour ago, ingested just before now. Lagging: ingested before the last run's
        # watermark but queryable only now (the overlap catches it). Fresh: the ordinary case.
        w.add(now - dt.timedelta(hours=1), now - dt.timedelta(seconds=30), f"late{step}@c.com")
        w.add(
            last_run - dt.timedelta(hours=2),
            last_run - dt.timedelta(minutes=3),
            f"lag{step}@c.com",
            None,
            now,
        )
        w.add(now - dt.timedelta(minutes=2), now - dt.timedelta(minutes=1), f"fresh{step}@c.com")
        assert harness.service.refresh().outcomes[0].status == "refreshed"
        assert f"lag{step}@c.com" in [row[1] for row in harness.dataset()]

    rows = harness.dataset()
    assert rows == as_text(harness.workspace.truth())
    assert len(rows) == len({tuple(r) for r in rows})
    assert [w.ingested_after is None for w in harness.runner.windows] == [True, False, False]


def test_rows_older_than_the_window_are_dropped(harness: Harness) -> None:
    w = harness.workspace
    w.add(T0 - dt.timedelta(hours=23), T0 - dt.timedelta(hours=23), "old@contoso.com")
    w.add(T0 - dt.timedelta(hours=1), T0 - dt.timedelta(hours=1), "recent@contoso.com")
    harness.service.refresh()
    harness.clock.advance(2 * 3600)

    harness.service.refresh()

    assert [row[1] for row in harness.dataset()] == ["recent@contoso.com"]
    meta = harness.store.stored_meta("signin_failures")
    assert (meta.rows, meta.expired_dropped) == (1, 1)


def test_a_partial_result_keeps_the_previous_dataset_and_the_watermark(harness: Harness) -> None:
    w = harness.workspace
    w.add(T0 - dt.timedelta(hours=1), T0 - dt.timedelta(hours=1), "ann@contoso.com")
    harness.service.refresh()
    before = harness.store.read(harness.sources[0])
    watermark = harness.store.stored_meta("signin_failures").watermark
    harness.clock.advance(600)
    w.add(T0 + dt.timedelta(minutes=1), T0 + dt.timedelta(minutes=2), "bob@contoso.com")
    w.complete = False

    report = harness.service.refresh()

    assert [o.status for o in report.outcomes] == ["partial"]
    assert report.http_status == 503
    assert harness.store.read(harness.sources[0]) == before
    meta = harness.store.stored_meta("signin_failures")
    assert (meta.status, meta.partial, meta.splits) == ("partial", True, 3)
    assert meta.watermark == watermark
    assert meta.last_refresh_at == T0
    assert meta.last_attempt_at == harness.clock.now()
    assert meta.errors == ["PartialError: query exceeded the row limit"]
    # Not throttled: the next call asks again from the same watermark and completes.
    w.complete = True
    assert harness.service.refresh().outcomes[0].status == "refreshed"
    assert harness.runner.windows[2].ingested_after == harness.runner.windows[1].ingested_after
    assert [r[1] for r in harness.dataset()] == ["ann@contoso.com", "bob@contoso.com"]
    assert harness.store.stored_meta("signin_failures").partial is False


def test_a_changed_query_covers_the_full_window_again(harness: Harness) -> None:
    harness.workspace.add(T0 - dt.timedelta(hours=1), T0 - dt.timedelta(hours=1), "ann@contoso.com")
    harness.service.refresh()
    harness.clock.advance(600)
    harness.service.refresh()
    assert harness.runner.windows[1].ingested_after is not None
    harness.clock.advance(600)
    harness.sources[0] = make_source(query=QUERY + " | where UserPrincipalName != ''")

    harness.service.refresh()

    assert harness.runner.windows[2].ingested_after is None
    assert harness.store.stored_meta("signin_failures").query_hash == harness.sources[0].query_hash


def test_a_source_that_is_not_incremental_is_replaced_by_every_run(harness: Harness) -> None:
    harness.sources[0] = make_source(incremental=False)
    harness.workspace.add(T0 - dt.timedelta(hours=1), T0 - dt.timedelta(hours=1), "ann@contoso.com")
    harness.service.refresh()
    harness.clock.advance(600)
    harness.workspace.records.clear()
    harness.workspace.add(T0, T0, "bob@contoso.com")

    harness.service.refresh()

    assert [w.ingested_after for w in harness.runner.windows] == [None, None]
    assert [r[1] for r in harness.dataset()] == ["bob@contoso.com"]


def test_the_same_rows_publish_the_same_bytes_and_keep_the_version(harness: Harness) -> None:
    harness.workspace.add(T0 - dt.timedelta(hours=1), T0 - dt.timedelta(hours=1), "ann@contoso.com")
    harness.service.refresh()
    first = harness.store.version(harness.sources[0])
    harness.clock.advance(600)

    harness.service.refresh()

    assert harness.store.version(harness.sources[0]) == first
    assert harness.store.publishes == 1
    assert harness.store.stored_meta("signin_failures").last_refresh_at == harness.clock.now()


def test_a_failing_query_records_failed_and_keeps_the_dataset(harness: Harness) -> None:
    harness.workspace.add(T0 - dt.timedelta(hours=1), T0 - dt.timedelta(hours=1), "ann@contoso.com")
    harness.service.refresh()
    before = harness.store.read(harness.sources[0])
    harness.clock.advance(600)

    def broken(source: DatasetSource, window: QueryWindow) -> QueryOutcome:
        raise RuntimeError("HTTP 400 from https://api.loganalytics.io?sig=secretvalue")

    harness.runner.answer = broken
    report = harness.service.refresh()

    assert [o.status for o in report.outcomes] == ["failed"]
    assert report.http_status == 503
    assert harness.store.read(harness.sources[0]) == before
    meta = harness.store.stored_meta("signin_failures")
    assert meta.status == "failed"
    assert meta.errors == ["RuntimeError: HTTP 400 from https://api.loganalytics.io?sig=***"]
    assert "secretvalue" not in (report.outcomes[0].detail or "")


def test_other_columns_than_declared_fail_without_publishing(harness: Harness) -> None:
    harness.runner.answer = lambda source, window: QueryOutcome(
        columns=["TimeGenerated", "IPAddress", "UserPrincipalName"], rows=[], complete=True
    )

    report = harness.service.refresh()

    assert report.outcomes[0].status == "failed"
    assert "declares" in (report.outcomes[0].detail or "")
    assert harness.store.files == {}


def test_a_kind_without_a_runner_fails_as_not_configured(harness: Harness) -> None:
    harness.sources.append(
        make_source(
            id="signin_failures_events",
            kind="events",
            query="signin_failures",
            output_filename="signin-failures-events.tsv",
            incremental=False,
        )
    )

    report = harness.service.refresh()

    assert [(o.source_id, o.status) for o in report.outcomes] == [
        ("signin_failures", "refreshed"),
        ("signin_failures_events", "failed"),
    ]
    assert report.outcomes[1].detail == "events sources are not configured"
    assert report.http_status == 200


def test_unknown_disabled_and_malformed_ids_are_refused_before_any_storage_call(harness: Harness) -> None:
    harness.sources.append(make_source(id="disabled_one", enabled=False, output_filename="d.tsv"))
    with pytest.raises(UnknownSource):
        harness.service.refresh("threat_intel_indicators")
    with pytest.raises(UnknownSource):
        harness.service.refresh("disabled_one")
    for hostile in ("../signin_failures", "signin_failures\n", "Signin", "", "a" * 64):
        with pytest.raises(InvalidSourceId):
            harness.service.refresh(hostile)
    assert harness.runner.windows == []
    assert harness.store.metadata_blobs == {}
    # A disabled source is left out of a refresh of everything.
    assert [o.source_id for o in harness.service.refresh().outcomes] == ["signin_failures"]


def test_none_and_empty_text_are_one_value_for_deduplication() -> None:
    cutoff = T0 - dt.timedelta(hours=1)
    previous = [[utc_iso(T0), "ann@contoso.com", ""]]
    new: list[list[str | None]] = [[utc_iso(T0), "ann@contoso.com", None], [utc_iso(T0), "bob", None]]

    merged = merge_rows(previous, new, 0, cutoff)

    assert (merged.added, merged.duplicates, len(merged.rows)) == (1, 1, 2)


def test_rows_without_a_valid_time_are_dropped_and_counted() -> None:
    merged = merge_rows([], [["not a time", "x", None], [None, "y", None], [utc_iso(T0), "z", None]], 0, T0)

    assert [row[1] for row in merged.rows] == ["z"]
    assert merged.untimed == 2


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        (["refreshed"], 200),
        (["refreshed", "failed", "locked", "throttled", "partial"], 200),
        (["locked", "throttled"], 202),
        (["locked", "failed"], 202),
        (["throttled", "throttled"], 204),
        ([], 204),
        (["failed"], 503),
        (["partial"], 503),
        (["throttled", "failed"], 503),
    ],
)
def test_the_http_status_of_a_report(statuses: list[str], expected: int) -> None:
    report = RefreshReport(
        outcomes=[
            SourceOutcome.model_validate({"source_id": f"s{i}", "status": s}) for i, s in enumerate(statuses)
        ]
    )
    assert report.http_status == expected
    assert report.refreshed_count == statuses.count("refreshed")
