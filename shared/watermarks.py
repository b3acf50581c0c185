"""Per-tenant, per-source polling state in Table Storage: watermark, last success, counts.

PartitionKey is the tenant id and RowKey the source, so tenants (an MSP's customers) never share state.

Writes are conditional on the entity's ETag, and a watermark never moves backwards, so two overlapping
runs cannot lose each other's progress.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode
from pydantic import BaseModel

from shared.clock import parse_utc, utc_iso

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

    def _update(self, source: str, change: Any) -> SourceState:
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
            try:
                if etag is None:
                    self._table.create_entity(row)
                else:
                    self._table.update_entity(
                        row, mode=UpdateMode.REPLACE, etag=etag, match_condition=MatchConditions.IfNotModified
                    )
                return updated
            except (ResourceExistsError, ResourceModifiedError):
                continue
        raise RuntimeError(f"watermark for {source}: too many concurrent updates")

    def advance(
        self, source: str, window_end: dt.datetime, run_id: str, count: int, now: dt.datetime
    ) -> SourceState:
        """Record a fully handed-off window. The watermark only moves forward."""
        end = utc_iso(window_end)

        def change(state: SourceState) -> SourceState:
            forward = state.watermark is None or parse_utc(state.watermark) < window_end
            return state.model_copy(
                update={
                    "watermark": end if forward else state.watermark,
                    "last_success": utc_iso(now),
                    "last_run_id": run_id,
                    "last_error": None,
                    "last_count": count,
                    "total_count": state.total_count + count,
                }
            )

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


class HandedOffContent:
    """Management API content ids already handed off, remembered for 7 days.

    Blobs arrive late and out of order, so each run re-lists a wide window and skips what it has seen.
    """

    RETENTION = dt.timedelta(days=7)

    def __init__(self, table: TableClient, tenant_id: str) -> None:
        self._table = table
        self._tenant = tenant_id

    def _partition(self, content_type: str) -> str:
        return f"{self._tenant}:{content_type}"

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
                "RowKey": content_id,
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
