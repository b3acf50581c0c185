"""The ingestion stores as the services use them, as Protocols.

Each service is typed against the few methods it calls, so a unit test's fake is checked by mypy against
the same Protocol that the real store (RawArchive, EventStore, WatermarkStore) satisfies.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any, Protocol

from shared.ingestion.archive import QuarantinedRecord
from shared.ingestion.watermarks import SourceState


class ArchivedPages(Protocol):
    """The raw archive as the ingest service reads it: shared.ingestion.archive.RawArchive."""

    def read_lines(self, blob_name: str) -> Iterable[tuple[int, str]]: ...

    def quarantine(
        self, source: str, blob_name: str, line: int, reason: str, raw: str, now: dt.datetime
    ) -> QuarantinedRecord: ...


class PageWriter(Protocol):
    """The raw archive as the page hand-off writes it: shared.ingestion.archive.RawArchive."""

    def write_page(self, blob_name: str, records: list[Any]) -> None: ...


class EventSink(Protocol):
    """The event store as the ingest service writes it: shared.ingestion.event_store.EventStore."""

    def write_events(self, documents: list[dict[str, Any]]) -> list[dict[str, Any]]: ...

    def update_facets(
        self,
        tenant_id: str,
        new: list[dict[str, Any]],
        existing: list[dict[str, Any]],
        seen_at: str,
        shard_key: str,
    ) -> None: ...


class NameResolver(Protocol):
    """Fills directory display names in place: shared.ingestion.enrichment.DirectoryNameResolver."""

    def enrich(self, documents: list[dict[str, Any]]) -> int: ...


class SourceCounts(Protocol):
    """The source state store as the ingest service counts into it: WatermarkStore."""

    def add_counts(self, source: str, *, quarantined: int = 0, expired_skipped: int = 0) -> object: ...


class SourceFailures(Protocol):
    """The source state store as the poller records a failed source in it: WatermarkStore."""

    def record_failure(self, source: str, run_id: str, error: str) -> object: ...


class SourceStates(Protocol):
    """The source state store as health checks read it: WatermarkStore."""

    def all(self) -> list[SourceState]: ...
