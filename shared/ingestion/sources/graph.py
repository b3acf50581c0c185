"""Microsoft Graph audit sources: directory audits, sign-ins and Intune audit events.

Each run reads the window `[watermark - overlap, now)` page by page (shared.ingestion.sources.graph_paging)
within the source's documented request budget, hands every page off, and only then moves the watermark.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from shared.ingestion.sources.graph_paging import iter_graph_pages
from shared.ingestion.sources.handoff import PageHandOff
from shared.ingestion.watermarks import WatermarkStore
from shared.m365.http_client import ApiClient
from shared.m365.rate_limit import SlidingWindowRateLimiter
from shared.platform.clock import Clock, SystemClock, parse_utc, utc_iso


@dataclass(frozen=True)
class GraphSourceSpec:
    name: str
    path: str
    time_field: str
    page_size: int
    budget_requests: int
    budget_seconds: float


# Page sizes are each API's documented maximum $top; budgets are the documented throttling limits.
GRAPH_SOURCES: dict[str, GraphSourceSpec] = {
    spec.name: spec
    for spec in (
        GraphSourceSpec("entra_audit", "/v1.0/auditLogs/directoryAudits", "activityDateTime", 1000, 5, 10.0),
        GraphSourceSpec("entra_signin", "/v1.0/auditLogs/signIns", "createdDateTime", 1000, 5, 10.0),
        GraphSourceSpec(
            "intune_audit", "/v1.0/deviceManagement/auditEvents", "activityDateTime", 999, 1000, 20.0
        ),
    )
}


PageObserver = Callable[[str, list[Any]], None]


class SourceRunResult(BaseModel):
    source: str
    window_start: str | None = None
    window_end: str | None = None
    pages: int = 0
    records: int = 0
    expired_skipped: int = 0
    # Management API content blobs: failed in this run, given up in this run, failing ones tried again.
    failed_blobs: int = 0
    given_up_blobs: int = 0
    retried_blobs: int = 0
    error: str | None = None


_limiters: dict[str, SlidingWindowRateLimiter] = {}
_limiters_lock = threading.Lock()


def rate_limiter_for(spec: GraphSourceSpec, clock: Clock) -> SlidingWindowRateLimiter:
    """One budget per source per process: the limits are per app per tenant, not per run."""
    with _limiters_lock:
        limiter = _limiters.get(spec.name)
        if limiter is None:
            limiter = SlidingWindowRateLimiter(spec.budget_requests, spec.budget_seconds, clock)
            _limiters[spec.name] = limiter
        return limiter


def reset_rate_limiters() -> None:
    """Forget the per-process budgets (tests that switch tenants between runs)."""
    with _limiters_lock:
        _limiters.clear()


def graph_window(
    watermark: str | None, now: dt.datetime, overlap_seconds: float, initial_lookback_seconds: float
) -> tuple[dt.datetime, dt.datetime]:
    """`[watermark - overlap, now)`; a first run starts `initial_lookback` ago."""
    if watermark is None:
        return now - dt.timedelta(seconds=initial_lookback_seconds), now
    return parse_utc(watermark) - dt.timedelta(seconds=overlap_seconds), now


class GraphCollector:
    def __init__(
        self,
        api: ApiClient,
        graph_base: str,
        scope: str,
        handoff: PageHandOff,
        watermarks: WatermarkStore,
        clock: Clock,
        *,
        overlap_seconds: float,
        initial_lookback_seconds: float,
    ) -> None:
        self._api = api
        self._graph_base = graph_base.rstrip("/")
        self._scope = scope
        self._handoff = handoff
        self._watermarks = watermarks
        self._clock = clock
        # Throttling budgets are in real seconds, whatever clock the event windows use.
        self._limiter_clock = SystemClock()
        self._overlap = overlap_seconds
        self._lookback = initial_lookback_seconds

    def collect(
        self,
        spec: GraphSourceSpec,
        run_id: str,
        run_started: dt.datetime,
        deadline: float,
        observer: PageObserver | None = None,
    ) -> SourceRunResult:
        state = self._watermarks.get(spec.name)
        start, end = graph_window(state.watermark, self._clock.now(), self._overlap, self._lookback)
        result = SourceRunResult(source=spec.name, window_start=utc_iso(start), window_end=utc_iso(end))
        params = {
            "$filter": f"{spec.time_field} ge {utc_iso(start)} and {spec.time_field} lt {utc_iso(end)}",
            "$top": str(spec.page_size),
        }
        pages = iter_graph_pages(
            self._api,
            f"{self._graph_base}{spec.path}",
            params,
            scope=self._scope,
            deadline=deadline,
            rate_limiter=rate_limiter_for(spec, self._limiter_clock),
        )
        for records, _page in pages:
            if records:
                result.pages += 1
                self._handoff(spec.name, records, run_id=run_id, run_started=run_started, page=result.pages)
                result.records += len(records)
                if observer is not None:
                    observer(spec.name, records)
        # Every page of the window is archived and queued: only now may the watermark move.
        self._watermarks.advance(spec.name, end, run_id, result.records, self._clock.now())
        return result
