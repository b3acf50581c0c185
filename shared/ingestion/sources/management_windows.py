"""The Office 365 Management Activity API's time windows: what each run lists, and when a failing
content blob is tried again."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from shared.ingestion.watermarks import SourceState
from shared.platform.clock import parse_utc

SOURCE = "o365_management"
MAX_WINDOW = dt.timedelta(hours=24)
CONTENT_RETENTION = dt.timedelta(days=7)
RETENTION_SAFETY_MARGIN = dt.timedelta(minutes=30)
# A daily re-list of all 7 days picks up blobs Microsoft lists late.
FULL_RELIST_INTERVAL = dt.timedelta(hours=24)
# A failing blob is tried again after 5, 10, 20 ... minutes, at most 6 hours apart, and given up after
# 8 failures of its own (about 10.5 hours after the first) or when it expires.
MAX_CONTENT_ATTEMPTS = 8
RETRY_BASE = dt.timedelta(minutes=5)
RETRY_CAP = dt.timedelta(hours=6)


def watermark_key(content_type: str) -> str:
    return f"{SOURCE}.{content_type}"


def content_windows(start: dt.datetime, end: dt.datetime) -> Iterator[tuple[dt.datetime, dt.datetime]]:
    """Consecutive windows of at most 24 hours covering [start, end)."""
    cursor = start
    while cursor < end:
        window_end = min(cursor + MAX_WINDOW, end)
        yield cursor, window_end
        cursor = window_end


def management_window_start(
    watermark: str | None, now: dt.datetime, overlap_seconds: float, initial_lookback_seconds: float
) -> dt.datetime:
    """Re-list `overlap` before the watermark, never earlier than 7 days ago plus a safety margin."""
    earliest = now - CONTENT_RETENTION + RETENTION_SAFETY_MARGIN
    if watermark is None:
        start = now - dt.timedelta(seconds=initial_lookback_seconds)
    else:
        start = parse_utc(watermark) - dt.timedelta(seconds=overlap_seconds)
    return max(start, earliest)


def full_relist_due(state: SourceState, now: dt.datetime) -> bool:
    return state.last_full_relist is None or now - parse_utc(state.last_full_relist) >= FULL_RELIST_INTERVAL


def full_relist_start(state: SourceState, now: dt.datetime) -> dt.datetime:
    """All 7 days, but never before the first window this content type was collected from."""
    earliest = now - CONTENT_RETENTION + RETENTION_SAFETY_MARGIN
    if state.collecting_since is None:
        return earliest
    return max(earliest, parse_utc(state.collecting_since))


def retry_delay(attempts: int) -> dt.timedelta:
    """The wait after the `attempts`-th failure: 5 minutes doubling, capped at 6 hours."""
    return min(RETRY_BASE * (1 << max(attempts - 1, 0)), RETRY_CAP)
