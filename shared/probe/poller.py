"""One polling cycle over every enabled source: the probe timer's service."""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import functools
import logging
import uuid
from collections.abc import Callable
from typing import Protocol

from pydantic import BaseModel

from shared.ingestion.ports import SourceFailures
from shared.ingestion.sources.graph import GRAPH_SOURCES, GraphSourceSpec, PageObserver, SourceRunResult
from shared.ingestion.sources.management_windows import watermark_key
from shared.platform.clock import Clock, SystemClock, utc_iso
from shared.platform.redact import redact
from shared.probe.service import ChangeCollector, ProbeService, ScopeResult

logger = logging.getLogger(__name__)


class PollReport(BaseModel):
    run_id: str
    started_at: str
    sources: list[SourceRunResult]
    probe: list[ScopeResult] = []
    probe_error: str | None = None

    @property
    def failed(self) -> list[SourceRunResult]:
        return [s for s in self.sources if s.error]


class GraphSources(Protocol):
    """Collects one Graph source's new window: shared.ingestion.sources.graph.GraphCollector."""

    def collect(
        self,
        spec: GraphSourceSpec,
        run_id: str,
        run_started: dt.datetime,
        deadline: float,
        observer: PageObserver | None = None,
    ) -> SourceRunResult: ...


class ContentSources(Protocol):
    """Collects one Management API content type: shared.ingestion.sources.management.ManagementCollector."""

    def collect(
        self,
        content_type: str,
        run_id: str,
        run_started: dt.datetime,
        deadline: float,
        observer: PageObserver | None = None,
    ) -> SourceRunResult: ...


class Poller:
    def __init__(
        self,
        graph: GraphSources | None,
        management: ContentSources | None,
        watermarks: SourceFailures,
        clock: Clock,
        *,
        graph_sources: list[str],
        content_types: list[str],
        time_budget_seconds: float,
        real_time: Clock | None = None,
        probe: ProbeService | None = None,
        tenant_id: str | None = None,
    ) -> None:
        self._graph = graph
        self._management = management
        self._watermarks = watermarks
        self._clock = clock
        self._real_time = real_time or SystemClock()
        self._graph_sources = graph_sources
        self._content_types = content_types
        self._budget = time_budget_seconds
        self._probe = probe
        self._tenant_id = tenant_id or "unknown"

    def _jobs(
        self, run_id: str, run_started: dt.datetime, deadline: float, observer: ChangeCollector | None
    ) -> dict[str, Callable[[], SourceRunResult]]:
        jobs: dict[str, Callable[[], SourceRunResult]] = {}
        if self._graph is not None:
            for name in self._graph_sources:
                jobs[name] = functools.partial(
                    self._graph.collect, GRAPH_SOURCES[name], run_id, run_started, deadline, observer
                )
        if self._management is not None:
            for content_type in self._content_types:
                jobs[watermark_key(content_type)] = functools.partial(
                    self._management.collect, content_type, run_id, run_started, deadline, observer
                )
        return jobs

    def run(self) -> PollReport:
        """Poll every source in parallel. A failing source is recorded and never stops the others."""
        run_id = uuid.uuid4().hex[:16]
        run_started = self._clock.now()
        deadline = self._real_time.monotonic() + self._budget
        observer = (
            ChangeCollector(self._probe.drift, self._tenant_id, utc_iso(run_started)) if self._probe else None
        )
        jobs = self._jobs(run_id, run_started, deadline, observer)
        results: list[SourceRunResult] = []
        with concurrent.futures.ThreadPoolExecutor(
            max_workers=max(1, len(jobs)), thread_name_prefix="poll"
        ) as pool:
            futures = {pool.submit(job): name for name, job in jobs.items()}
            for future in concurrent.futures.as_completed(futures):
                name = futures[future]
                try:
                    results.append(future.result())
                except Exception as exc:
                    error = redact(f"{type(exc).__name__}: {exc}")[:500]
                    logger.error("source %s failed in run %s: %s", name, run_id, error)
                    self._watermarks.record_failure(name, run_id, error)
                    results.append(SourceRunResult(source=name, error=error))
        results.sort(key=lambda r: r.source)
        report = PollReport(run_id=run_id, started_at=utc_iso(run_started), sources=results)
        if self._probe is not None and observer is not None:
            # Deadlines pass even when a source failed, so the probe steps on every run.
            try:
                report.probe = self._probe.advance(observer.changes, self._clock.now())
            except Exception as exc:
                report.probe_error = redact(f"{type(exc).__name__}: {exc}")[:500]
                logger.error("probe failed in run %s: %s", run_id, report.probe_error)
        return report
