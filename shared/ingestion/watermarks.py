"""Per-tenant, per-source polling state in Table Storage: watermark, last success, counts.

PartitionKey is the tenant id and RowKey the source, so tenants (an MSP's customers) never share state.

Writes are conditional on the entity's ETag, and a watermark never moves backwards, so two overlapping
runs cannot lose each other's progress.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableClient
from pydantic import BaseModel

from shared.platform.clock import parse_utc, utc_iso
from shared.platform.ids import storage_id
from shared.platform.tables import write_unchanged

MAX_CONFLICT_RETRIES = 10


class SourceState(BaseModel):
    source: str
    watermark: str | None = None
    last_success: str | None = None
    last_run_id: str | None = None
    last_error: str | None = None
    last_count: int = 0
    total_count: int = 0
    quarantined: int = 0
    expired_skipped: int = 0
    # Management Activity API content blobs (see shared/ingestion/sources/content_run.py).
    failing_blobs: int = 0  # failing now, retried on later polls
    given_up_blobs: int = 0  # given up since the source was first polled
    last_blob_error: str | None = None
    last_blob_error_at: str | None = None
    last_given_up_at: str | None = None
    last_full_relist: str | None = None  # the last run that re-listed the whole 7 days
    collecting_since: str | None = None  # the start of the first window ever collected

    def is_stale(self, now: dt.datetime, poll_interval_seconds: float) -> bool:
        """Stale when the last success is older than three poll intervals (or never happened)."""
        if not self.last_success:
            return True
        return (now - parse_utc(self.last_success)).total_seconds() > 3 * poll_interval_seconds


def _to_state(entity: dict[str, Any]) -> SourceState:
    fields = {k: v for k, v in entity.items() if k in SourceState.model_fields}
    return SourceState(source=entity["RowKey"], **{k: v for k, v in fields.items() if k != "source"})


class WatermarkStore:
    def __init__(self, table: TableClient, tenant_id: str) -> None:
        self._table = table
        self._tenant = tenant_id

    def get(self, source: str) -> SourceState:
        try:
            return _to_state(self._table.get_entity(self._tenant, source))
        except ResourceNotFoundError:
            return SourceState(source=source)

    def all(self) -> list[SourceState]:
        entities = self._table.query_entities("PartitionKey eq @tenant", parameters={"tenant": self._tenant})
        return [_to_state(e) for e in entities]

    def _update(self, source: str, change: Callable[[SourceState], SourceState]) -> SourceState:
        for _ in range(MAX_CONFLICT_RETRIES):
            try:
                entity = self._table.get_entity(self._tenant, source)
                etag = entity.metadata["etag"]
            except ResourceNotFoundError:
                entity, etag = None, None
            state = _to_state(entity) if entity else SourceState(source=source)
            updated = change(state)
            row = {"PartitionKey": self._tenant, "RowKey": source, **updated.model_dump(exclude={"source"})}
            row = {k: v for k, v in row.items() if v is not None}
            if write_unchanged(self._table, row, etag):
                return updated
        raise RuntimeError(f"watermark for {source}: too many concurrent updates")

    def advance(
        self,
        source: str,
        window_end: dt.datetime,
        run_id: str,
        count: int,
        now: dt.datetime,
        *,
        window_start: dt.datetime | None = None,
        full_relist_at: dt.datetime | None = None,
    ) -> SourceState:
        """Record a fully handed-off window. The watermark only moves forward.

        `window_start` is kept as `collecting_since` by the first advance; `full_relist_at` (the start of
        a run that listed all 7 days) becomes `last_full_relist`.
        """
        end = utc_iso(window_end)

        def change(state: SourceState) -> SourceState:
            forward = state.watermark is None or parse_utc(state.watermark) < window_end
            update: dict[str, Any] = {
                "watermark": end if forward else state.watermark,
                "last_success": utc_iso(now),
                "last_run_id": run_id,
                "last_error": None,
                "last_count": count,
                "total_count": state.total_count + count,
            }
            if window_start is not None and state.collecting_since is None:
                update["collecting_since"] = utc_iso(window_start)
            if full_relist_at is not None:
                update["last_full_relist"] = utc_iso(full_relist_at)
            return state.model_copy(update=update)

        return self._update(source, change)

    def record_failure(self, source: str, run_id: str, error: str) -> SourceState:
        return self._update(
            source, lambda s: s.model_copy(update={"last_run_id": run_id, "last_error": error[:1000]})
        )

    def add_counts(self, source: str, *, quarantined: int = 0, expired_skipped: int = 0) -> SourceState:
        return self._update(
            source,
            lambda s: s.model_copy(
                update={
                    "quarantined": s.quarantined + quarantined,
                    "expired_skipped": s.expired_skipped + expired_skipped,
                }
            ),
        )

    def record_content(
        self, source: str, *, failing: int, given_up: int, last_error: str | None, now: dt.datetime
    ) -> SourceState:
        """After a Management API run: blobs failing now, blobs given up in the run, its last error."""

        def change(state: SourceState) -> SourceState:
            update: dict[str, Any] = {
                "failing_blobs": failing,
                "given_up_blobs": state.given_up_blobs + given_up,
            }
            if given_up:
                update["last_given_up_at"] = utc_iso(now)
            if last_error is not None:
                update["last_blob_error"] = last_error[:1000]
                update["last_blob_error_at"] = utc_iso(now)
            return state.model_copy(update=update)

        return self._update(source, change)


class HandedOffContent:
    """Management API content ids already handed off, remembered for 7 days.

    Blobs arrive late and out of order, so each run re-lists a wide window and skips what it has seen.
    """

    RETENTION = dt.timedelta(days=7)

    def __init__(self, table: TableClient, tenant_id: str) -> None:
        self._table = table
        self._tenant = tenant_id

    def _partition(self, content_type: str) -> str:
        return storage_id(f"{self._tenant}:{content_type}")

    def known(self, content_type: str) -> set[str]:
        """Every content id of `content_type` handed off within 7 days: one partition query."""
        return {
            e["RowKey"]
            for e in self._table.query_entities(
                "PartitionKey eq @pk", parameters={"pk": self._partition(content_type)}, select=["RowKey"]
            )
        }

    def seen(self, content_type: str, content_ids: list[str]) -> set[str]:
        if not content_ids:
            return set()
        wanted = set(content_ids)
        found = {
            e["RowKey"]
            for e in self._table.query_entities(
                "PartitionKey eq @pk", parameters={"pk": self._partition(content_type)}, select=["RowKey"]
            )
        }
        return wanted & found

    def remember(self, content_type: str, content_id: str, now: dt.datetime) -> None:
        self._table.upsert_entity(
            {
                "PartitionKey": self._partition(content_type),
                "RowKey": storage_id(content_id),
                "expires_at": utc_iso(now + self.RETENTION),
            }
        )

    def prune(self, content_type: str, now: dt.datetime) -> int:
        expired = list(
            self._table.query_entities(
                "PartitionKey eq @pk and expires_at lt @now",
                parameters={"pk": self._partition(content_type), "now": utc_iso(now)},
                select=["PartitionKey", "RowKey"],
            )
        )
        for entity in expired:
            self._table.delete_entity(entity["PartitionKey"], entity["RowKey"])
        return len(expired)


class FailedBlob(BaseModel):
    """A Management API content blob that could not be fetched or read, and its retry state."""

    content_id: str
    content_uri: str
    content_created: str | None = None
    content_expiration: str  # after this the API no longer serves it: no retry is useful
    attempts: int = 0  # every failed fetch
    counted_attempts: int = 0  # failures that count towards giving up (not throttling or outages)
    first_failed_at: str
    last_failed_at: str
    next_attempt_at: str
    last_error: str
    given_up: bool = False
    given_up_at: str | None = None


class FailedContent:
    """Failing Management API content blobs, per tenant and content type, until they expire.

    PartitionKey "{tenant}:{content type}", RowKey the content id: a blob has one row whoever fails it.
    A given-up row stays until the blob's contentExpiration, so a re-list does not fetch it again.
    Writes are conditional on the row's ETag, so overlapping runs never lose an attempt.
    """

    def __init__(self, table: TableClient, tenant_id: str) -> None:
        self._table = table
        self._tenant = tenant_id

    def _partition(self, content_type: str) -> str:
        return storage_id(f"{self._tenant}:{content_type}")

    @staticmethod
    def _to_blob(entity: dict[str, Any]) -> FailedBlob:
        fields = {k: v for k, v in entity.items() if k in FailedBlob.model_fields and k != "content_id"}
        return FailedBlob(content_id=entity["RowKey"], **fields)

    def all(self, content_type: str) -> dict[str, FailedBlob]:
        entities = self._table.query_entities(
            "PartitionKey eq @pk", parameters={"pk": self._partition(content_type)}
        )
        return {e["RowKey"]: self._to_blob(e) for e in entities}

    def update(
        self, content_type: str, content_id: str, change: Callable[[FailedBlob | None], FailedBlob]
    ) -> FailedBlob:
        """Apply `change` to the stored row (None when there is none) and write it back if unchanged since."""
        partition, row_key = self._partition(content_type), storage_id(content_id)
        for _ in range(MAX_CONFLICT_RETRIES):
            try:
                entity = self._table.get_entity(partition, row_key)
                current, etag = self._to_blob(entity), entity.metadata["etag"]
            except ResourceNotFoundError:
                current, etag = None, None
            updated = change(current)
            row = {"PartitionKey": partition, "RowKey": row_key, **updated.model_dump(exclude={"content_id"})}
            row["expires_at"] = updated.content_expiration
            row = {k: v for k, v in row.items() if v is not None}
            if write_unchanged(self._table, row, etag):
                return updated
        raise RuntimeError(f"failed content {content_id}: too many concurrent updates")

    def clear(self, content_type: str, content_id: str) -> None:
        """Forget a blob that has now been handed off (or has expired)."""
        self._table.delete_entity(self._partition(content_type), storage_id(content_id))

    def prune(self, content_type: str, now: dt.datetime) -> int:
        """Delete rows of blobs past their contentExpiration: the API can no longer list them."""
        expired = list(
            self._table.query_entities(
                "PartitionKey eq @pk and expires_at lt @now",
                parameters={"pk": self._partition(content_type), "now": utc_iso(now)},
                select=["PartitionKey", "RowKey"],
            )
        )
        for entity in expired:
            self._table.delete_entity(entity["PartitionKey"], entity["RowKey"])
        return len(expired)
