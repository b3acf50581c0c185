"""A per-caller rate limit for POST /api/refresh: a fixed window of one minute per caller, counted in
Table Storage so every instance of the app shares it.

One row per caller (PartitionKey `refresh`, RowKey the sha256 of the caller's object id, so nothing a
caller sends reaches a key): the window's start (UTC, on the minute) and the calls counted in it. A call
reads the row, starts a new window or adds one to the count, and writes it back under the ETag it read
(create-only when there was none); a writer that lost the race reads again. A caller at the limit gets
`RateLimited` with the seconds left in its window, and the row is not written.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from collections.abc import Mapping
from typing import Any, Protocol

from azure.core.exceptions import ResourceNotFoundError

from shared.platform.clock import Clock, parse_utc, utc_iso
from shared.platform.tables import WritableTable, write_unchanged

WINDOW = dt.timedelta(minutes=1)
PARTITION = "refresh"
MAX_ATTEMPTS = 25  # concurrent calls of one caller each read again after losing a write


class RateLimited(Exception):
    """The caller used up its calls of this window."""

    def __init__(self, retry_after_seconds: int, limit: int) -> None:
        self.retry_after_seconds = retry_after_seconds
        self.limit = limit
        super().__init__(f"at most {limit} refreshes per minute; retry in {retry_after_seconds} s")


class CounterTable(WritableTable, Protocol):
    def get_entity(self, partition_key: str, row_key: str) -> Mapping[str, Any]: ...


def caller_key(caller: str) -> str:
    """The row key of a caller: a hash, so an object id never has to be a valid key itself."""
    return hashlib.sha256(caller.encode("utf-8", "surrogatepass")).hexdigest()[:40]


class CallerRateLimit:
    def __init__(self, table: CounterTable, clock: Clock, per_minute: int) -> None:
        if per_minute < 1:
            raise ValueError("per_minute must be at least 1")
        self._table = table
        self._clock = clock
        self.per_minute = per_minute

    def take(self, caller: str) -> int:
        """Count one call of `caller`; the calls it has left in this window. RateLimited when none."""
        row_key = caller_key(caller)
        for _ in range(MAX_ATTEMPTS):
            now = self._clock.now().astimezone(dt.UTC)
            window = now.replace(second=0, microsecond=0)
            existing, etag = self._read(row_key)
            count = 0
            if existing is not None and _window_of(existing) == window:
                count = int(existing.get("count", 0))
            if count >= self.per_minute:
                raise RateLimited(_seconds_left(window, now), self.per_minute)
            row = {
                "PartitionKey": PARTITION,
                "RowKey": row_key,
                "window_start": utc_iso(window),
                "count": count + 1,
            }
            if write_unchanged(self._table, row, etag):
                return self.per_minute - count - 1
        # Too many writers of this caller at once: the caller is busy enough to wait a moment.
        raise RateLimited(1, self.per_minute)

    def _read(self, row_key: str) -> tuple[Mapping[str, Any] | None, str | None]:
        try:
            entity = self._table.get_entity(PARTITION, row_key)
        except ResourceNotFoundError:
            return None, None
        metadata = getattr(entity, "metadata", {}) or {}
        return entity, metadata.get("etag")


def _window_of(entity: Mapping[str, Any]) -> dt.datetime | None:
    try:
        return parse_utc(str(entity.get("window_start", "")))
    except ValueError:
        return None


def _seconds_left(window: dt.datetime, now: dt.datetime) -> int:
    return max(1, math.ceil((window + WINDOW - now).total_seconds()))
