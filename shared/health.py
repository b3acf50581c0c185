"""Dependency health: Table, Queue, Blob and Cosmos DB, each with its latency."""

from __future__ import annotations

import concurrent.futures
import datetime as dt
from collections.abc import Callable
from typing import Literal

from pydantic import BaseModel

from shared.clients import AzureClients
from shared.clock import Clock, utc_iso
from shared.redact import redact
from shared.resources import BlobContainers, CosmosContainers, Queues, Tables
from shared.watermarks import SourceState

DependencyName = Literal["table", "queue", "blob", "cosmos"]


class DependencyHealth(BaseModel):
    name: DependencyName
    status: Literal["ok", "error"]
    latency_ms: float
    error: str | None = None


class SourceHealth(BaseModel):
    source: str
    watermark: str | None
    last_success: str | None
    stale: bool
    last_error: str | None
    total_count: int
    quarantined: int
    expired_skipped: int


class HealthReport(BaseModel):
    """Dependencies decide the status; sources are reported (a stale source is an alert, not an outage)."""

    status: Literal["ok", "unhealthy"]
    checked_at: str
    dependencies: list[DependencyHealth]
    sources: list[SourceHealth] = []

    @property
    def http_status(self) -> int:
        return 200 if self.status == "ok" else 503


def _probes(clients: AzureClients) -> dict[DependencyName, Callable[[], object]]:
    """Each probe reads one resource the bootstrap creates, so a missing bootstrap shows too."""

    def table() -> None:
        found = list(clients.table_service.query_tables(f"TableName eq '{Tables.WATERMARKS}'"))
        if not found:
            raise LookupError(f"table {Tables.WATERMARKS} does not exist; run the bootstrap")

    return {
        "table": table,
        "queue": lambda: clients.queue(Queues.INGEST).get_queue_properties(),
        "blob": lambda: clients.blob_container(BlobContainers.RAW).get_container_properties(),
        "cosmos": lambda: clients.cosmos_container(CosmosContainers.EVENTS.name).read(),
    }


def _describe(exc: BaseException) -> str:
    status = getattr(exc, "status_code", None)
    message = str(exc).splitlines()[0] if str(exc) else ""
    prefix = f"{type(exc).__name__}" + (f" (HTTP {status})" if status else "")
    return redact(f"{prefix}: {message}"[:300])


def check_health(clients: AzureClients, clock: Clock, timeout_seconds: float) -> HealthReport:
    """Probe every dependency in parallel; a probe slower than the timeout counts as an error."""
    probes = _probes(clients)
    started: dict[DependencyName, float] = {}
    results: dict[DependencyName, DependencyHealth] = {}

    def run(name: DependencyName, probe: Callable[[], object]) -> DependencyHealth:
        started[name] = clock.monotonic()
        try:
            probe()
        except Exception as exc:  # every failure becomes a reported status
            return DependencyHealth(
                name=name, status="error", latency_ms=_elapsed_ms(clock, started[name]), error=_describe(exc)
            )
        return DependencyHealth(name=name, status="ok", latency_ms=_elapsed_ms(clock, started[name]))

    begin = clock.monotonic()
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=len(probes), thread_name_prefix="health")
    try:
        futures = {pool.submit(run, name, probe): name for name, probe in probes.items()}
        done, _ = concurrent.futures.wait(futures, timeout=timeout_seconds)
        for future, name in futures.items():
            if future in done:
                results[name] = future.result()
            else:
                results[name] = DependencyHealth(
                    name=name,
                    status="error",
                    latency_ms=_elapsed_ms(clock, begin),
                    error=f"no answer within {timeout_seconds:g} s",
                )
    finally:
        pool.shutdown(wait=False, cancel_futures=True)

    ordered = [results[name] for name in probes]
    overall: Literal["ok", "unhealthy"] = "ok" if all(d.status == "ok" for d in ordered) else "unhealthy"
    return HealthReport(status=overall, checked_at=utc_iso(clock.now()), dependencies=ordered)


def source_health(
    states: list[SourceState], now: dt.datetime, poll_interval_seconds: float
) -> list[SourceHealth]:
    return [
        SourceHealth(
            source=state.source,
            watermark=state.watermark,
            last_success=state.last_success,
            stale=state.is_stale(now, poll_interval_seconds),
            last_error=state.last_error,
            total_count=state.total_count,
            quarantined=state.quarantined,
            expired_skipped=state.expired_skipped,
        )
        for state in sorted(states, key=lambda s: s.source)
    ]


def _elapsed_ms(clock: Clock, since: float) -> float:
    return round((clock.monotonic() - since) * 1000, 1)
