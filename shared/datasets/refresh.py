"""Refreshing datasets: throttle, lock, query, merge, publish, record.

For each enabled source asked for, in file order:

1. Metadata says the last publish is less than `refresh_interval_seconds` old: `throttled`, no lease,
   no query (checked again under the lease, where it counts).
2. Take the source's lease (shared.datasets.store); another refresh holds it: `locked`.
3. The window is [now - query_time_window_hours, now]. The first run, a run after the query or the
   columns changed (`query_hash`), a source that is not incremental, or one whose published file is
   gone, covers the full window and replaces the dataset. Otherwise only rows ingested after
   `watermark - incremental_overlap_minutes` are asked for and merged into the published rows.
4. Rows are deduplicated by the sha256 of their values (as written to the TSV, so None and "" are the
   same value), rows whose time column is older than the window (or not a time) are dropped, and the
   rest is sorted by time, then by text, so the same rows always make the same bytes (and publishing
   them again keeps the file's ETag).
5. A complete result is published and the watermark moves to the newest IngestionTime seen. A partial
   one (`complete` False: some part stayed partial after every split) publishes nothing: the previous
   dataset stays, the metadata says `partial`, and the watermark stays where it was. A runner that
   raises, or answers other columns than the source's, leaves the dataset as it was too (`failed`).

The HTTP answer (`RefreshReport.http_status`): 200 when any source was refreshed, else 202 when any was
locked, else 204 when all were throttled, else 503.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict

from shared.datasets.querying import QueryOutcome, QueryRunner, QueryWindow
from shared.datasets.sources import DatasetSource, SourceKind, SourceSet
from shared.datasets.store import (
    DatasetMetadata,
    DatasetStorage,
    HeldLease,
    RefreshLocked,
    StaleMetadata,
    Stored,
)
from shared.datasets.tsv import TsvError, decode_tsv, encode_line, encode_tsv
from shared.platform.clock import Clock, parse_utc
from shared.platform.ids import is_dataset_source_id
from shared.platform.redact import redact

logger = logging.getLogger(__name__)

RefreshStatus = Literal["refreshed", "throttled", "locked", "failed", "partial"]
MAX_ERROR_LENGTH = 500
MAX_ERRORS = 20


class SourceOutcome(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    source_id: str
    status: RefreshStatus
    rows: int = 0
    """Rows in the published dataset after this refresh (the previous count when nothing was published)."""
    rows_added: int = 0
    detail: str | None = None


class RefreshReport(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    outcomes: list[SourceOutcome]

    @property
    def refreshed_count(self) -> int:
        return sum(1 for outcome in self.outcomes if outcome.status == "refreshed")

    @property
    def http_status(self) -> int:
        statuses = {outcome.status for outcome in self.outcomes}
        if "refreshed" in statuses:
            return 200
        if "locked" in statuses:
            return 202
        if statuses <= {"throttled"}:
            return 204
        return 503


class UnknownSource(LookupError):
    """No enabled source of that id."""

    def __init__(self, source_id: str, reason: str = "no enabled dataset source of that id") -> None:
        self.source_id = source_id
        super().__init__(reason)


class InvalidSourceId(UnknownSource):
    """The id is not of the dataset source id grammar (the API answers 400 before asking)."""

    def __init__(self) -> None:
        super().__init__("", "not a dataset source id")


def _error_text(error: BaseException | str) -> str:
    text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    return redact(text)[:MAX_ERROR_LENGTH]


@dataclass
class _Merged:
    rows: list[list[str | None]]
    added: int
    duplicates: int
    expired: int
    untimed: int


def _row_key(line: str) -> bytes:
    return hashlib.sha256(line.encode("utf-8", "surrogatepass")).digest()


def _row_time(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    try:
        return parse_utc(value)
    except ValueError:
        return None


def merge_rows(
    previous: Sequence[Sequence[str | None]],
    new: Sequence[Sequence[str | None]],
    time_index: int,
    cutoff: dt.datetime,
) -> _Merged:
    """Previous rows plus the new ones not already there, without rows older than `cutoff` or without a
    time, sorted by (time, text). `added` counts new rows kept; `duplicates` new rows already present."""
    kept: dict[bytes, tuple[dt.datetime, str, list[str | None]]] = {}
    expired = untimed = duplicates = added = 0
    for origin, rows in (("previous", previous), ("new", new)):
        for row in rows:
            line = encode_line(row)
            key = _row_key(line)
            if key in kept:
                if origin == "new":
                    duplicates += 1
                continue
            when = _row_time(row[time_index])
            if when is None:
                untimed += 1
                continue
            if when < cutoff:
                expired += 1
                continue
            kept[key] = (when, line, list(row))
            if origin == "new":
                added += 1
    ordered = sorted(kept.values(), key=lambda item: (item[0], item[1]))
    return _Merged([row for _, _, row in ordered], added, duplicates, expired, untimed)


class RefreshService:
    def __init__(
        self,
        sources: Callable[[], SourceSet],
        store: DatasetStorage,
        runners: Mapping[SourceKind, QueryRunner],
        clock: Clock,
    ) -> None:
        self._sources = sources
        self._store = store
        self._runners = runners
        self._clock = clock

    def refresh(self, source_id: str | None = None) -> RefreshReport:
        """Refresh every enabled source that is due, or only `source_id` (UnknownSource when it is not
        an enabled source; InvalidSourceId, a kind of UnknownSource, when it is not even an id)."""
        source_set = self._sources()
        if source_id is None:
            chosen = source_set.enabled()
        else:
            if not is_dataset_source_id(source_id):
                raise InvalidSourceId()
            source = source_set.get(source_id)
            if source is None or not source.enabled:
                raise UnknownSource(source_id)
            chosen = (source,)
        return RefreshReport(outcomes=[self._refresh_source(source) for source in chosen])

    # -- one source --------------------------------------------------------------------------------

    def _throttled(self, meta: DatasetMetadata | None, source: DatasetSource, now: dt.datetime) -> bool:
        if meta is None or meta.last_refresh_at is None:
            return False
        age = now - meta.last_refresh_at
        return dt.timedelta(0) <= age < dt.timedelta(seconds=source.refresh_interval_seconds)

    def _throttled_outcome(self, source: DatasetSource, meta: DatasetMetadata) -> SourceOutcome:
        detail = f"refreshed less than {source.refresh_interval_seconds} s ago"
        return SourceOutcome(source_id=source.id, status="throttled", rows=meta.rows, detail=detail)

    def _refresh_source(self, source: DatasetSource) -> SourceOutcome:
        try:
            before = self._store.metadata(source)
            if before is not None and self._throttled(before.value, source, self._clock.now()):
                return self._throttled_outcome(source, before.value)
            with self._store.lease(source) as lease:
                return self._refresh_locked(source, lease)
        except RefreshLocked:
            return SourceOutcome(source_id=source.id, status="locked", detail="another refresh is running")
        except Exception as exc:  # storage trouble outside the query: this source failed, the others go on
            logger.exception("refresh of dataset %s failed", source.id)
            return SourceOutcome(source_id=source.id, status="failed", detail=_error_text(exc))

    def _refresh_locked(self, source: DatasetSource, lease: HeldLease) -> SourceOutcome:
        now = self._clock.now()
        stored = self._store.metadata(source)
        previous = stored.value if stored is not None else None
        if previous is not None and self._throttled(previous, source, now):
            return self._throttled_outcome(source, previous)
        runner = self._runners.get(source.kind)
        if runner is None:
            return self._give_up(source, stored, now, "failed", [f"{source.kind} sources are not configured"])

        query_hash = source.query_hash
        published_rows: list[list[str]] | None = None
        full = (
            previous is None
            or previous.watermark is None
            or previous.query_hash != query_hash
            or not source.incremental
        )
        if not full:
            published_rows = self._published_rows(source)
            full = published_rows is None
        ingested_after = None
        if not full and previous is not None and previous.watermark is not None:
            ingested_after = min(previous.watermark - source.overlap, now)
        window = QueryWindow(start=now - source.window, end=now, ingested_after=ingested_after)
        started = self._clock.monotonic()
        try:
            outcome = runner.run(source, window)
        except Exception as exc:
            logger.warning("query of dataset %s failed: %s", source.id, _error_text(exc))
            return self._give_up(source, stored, now, "failed", [_error_text(exc)])
        if outcome.columns != source.columns:
            problem = f"the query answered columns {outcome.columns}, the source declares {source.columns}"
            return self._give_up(source, stored, now, "failed", [problem], outcome)
        if not outcome.complete:
            errors = [_error_text(e) for e in outcome.errors] or ["part of the window stayed partial"]
            return self._give_up(source, stored, now, "partial", errors, outcome)

        merged = merge_rows(
            published_rows or [],
            outcome.rows,
            source.columns.index(source.time_column),
            now - source.window,
        )
        data = encode_tsv(source.columns, merged.rows)
        if not lease.held:
            lost = ["the lease was lost; nothing published"]
            return self._give_up(source, stored, now, "failed", lost, outcome)
        version = self._store.publish(source, data)
        watermark = outcome.max_ingestion_time
        if not full and previous is not None and previous.watermark is not None:
            watermark = previous.watermark if watermark is None else max(watermark, previous.watermark)
        notes = [_error_text(e) for e in outcome.errors]
        if merged.untimed:
            notes.append(f"{merged.untimed} rows without a valid {source.time_column} were dropped")
        meta = DatasetMetadata(
            source_id=source.id,
            status="ok",
            last_refresh_at=now,
            last_attempt_at=now,
            watermark=watermark,
            rows=len(merged.rows),
            rows_added=merged.added,
            duplicates_dropped=merged.duplicates,
            expired_dropped=merged.expired + merged.untimed,
            duration_ms=self._elapsed_ms(started),
            query_hash=query_hash,
            partial=False,
            splits=outcome.splits,
            errors=notes[:MAX_ERRORS],
            etag=version.etag,
            last_modified=version.last_modified,
        )
        try:
            self._store.write_metadata(meta, stored.etag if stored is not None else None)
        except StaleMetadata as exc:
            logger.error("dataset %s was published but its metadata changed meanwhile", source.id)
            detail = _error_text(exc)
            return SourceOutcome(source_id=source.id, status="failed", rows=meta.rows, detail=detail)
        return SourceOutcome(
            source_id=source.id,
            status="refreshed",
            rows=meta.rows,
            rows_added=meta.rows_added,
            detail=f"{'full window' if full else 'incremental'}; {merged.duplicates} duplicates dropped",
        )

    def _published_rows(self, source: DatasetSource) -> list[list[str]] | None:
        found = self._store.read(source)
        if found is None:
            return None
        try:
            columns, rows = decode_tsv(found[0])
        except TsvError as exc:
            logger.warning("published dataset %s unreadable (%s); covering the full window", source.id, exc)
            return None
        return rows if columns == source.columns else None

    def _elapsed_ms(self, started: float) -> int:
        return max(0, round((self._clock.monotonic() - started) * 1000))

    def _give_up(
        self,
        source: DatasetSource,
        stored: Stored[DatasetMetadata] | None,
        now: dt.datetime,
        status: Literal["failed", "partial"],
        errors: list[str],
        outcome: QueryOutcome | None = None,
    ) -> SourceOutcome:
        """Record a refresh that published nothing: the dataset, the watermark and the last refresh stay."""
        previous = stored.value if stored is not None else None
        base = previous or DatasetMetadata(source_id=source.id, status=status)
        meta = base.model_copy(
            update={
                "status": status,
                "last_attempt_at": now,
                "partial": status == "partial",
                "splits": outcome.splits if outcome is not None else 0,
                "errors": errors[:MAX_ERRORS],
                "rows_added": 0,
                "duplicates_dropped": 0,
                "expired_dropped": 0,
            }
        )
        try:
            self._store.write_metadata(meta, stored.etag if stored is not None else None)
        except StaleMetadata:
            logger.error("could not record the %s refresh of %s: stale metadata", status, source.id)
        detail = "; ".join(errors)[:1000]
        return SourceOutcome(source_id=source.id, status=status, rows=meta.rows, detail=detail)
