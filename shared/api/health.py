"""Dependency health: Table, Queue, Blob and Cosmos DB, each with its latency; and settings problems."""

from __future__ import annotations

import concurrent.futures
import datetime as dt
from collections.abc import Callable, Sequence
from typing import Literal

from pydantic import BaseModel, Field, computed_field

from shared.ingestion.watermarks import SourceState
from shared.platform.clients import AzureClients
from shared.platform.clock import Clock, parse_utc, utc_iso
from shared.platform.redact import redact
from shared.platform.resources import BlobContainers, CosmosContainers, Queues, Tables
from shared.platform.settings import SettingIssue, get_settings

DependencyName = Literal["table", "queue", "blob", "cosmos"]
GIVEN_UP_WARNING = dt.timedelta(days=7)


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
    failing_blobs: int = 0
    given_up_blobs: int = 0
    last_blob_error: str | None = None
    warning: str | None = Field(
        default=None, description="data at risk without an outage: failing or recently given-up content"
    )


def _source_warning(state: SourceState, now: dt.datetime) -> str | None:
    """Failing content blobs, or blobs given up within the last 7 days (after that, only counted)."""
    parts = []
    if state.failing_blobs:
        parts.append(f"{state.failing_blobs} content blob(s) failing, retried on later polls")
    if state.last_given_up_at and now - parse_utc(state.last_given_up_at) < GIVEN_UP_WARNING:
        parts.append(
            f"content blob(s) given up, their records not stored ({state.given_up_blobs} in all, the last "
            f"at {state.last_given_up_at})"
        )
    if not parts:
        return None
    return "; ".join(parts) + (f"; last error: {state.last_blob_error}" if state.last_blob_error else "")


class HealthReport(BaseModel):
    """Dependencies decide the status; sources are reported (a stale source is an alert, not an outage).

    `configuration` lists secrets that are missing or arrived as unresolved Key Vault references: the
    app runs without them, but a part of it (notifications, backups, paging) does not work.
    `warnings` names sources whose data is at risk (failing or given-up Management content blobs); one
    bad blob is not an outage, so it never changes the status.
    """

    status: Literal["ok", "unhealthy"]
    checked_at: str
    dependencies: list[DependencyHealth]
    sources: list[SourceHealth] = []
    configuration: list[SettingIssue] = []

    @computed_field(description="one line per source whose data is at risk; the status stays ok")  # type: ignore[prop-decorator]
    @property
    def warnings(self) -> list[str]:
        return [f"{s.source}: {s.warning}" for s in self.sources if s.warning]

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


def check_health(
    clients: AzureClients,
    clock: Clock,
    timeout_seconds: float,
    *,
    configuration: Sequence[SettingIssue] | None = None,
) -> HealthReport:
    """Probe every dependency in parallel; a probe slower than the timeout counts as an error.

    `configuration` defaults to the process settings' configuration_issues().
    """
    issues = list(get_settings().configuration_issues() if configuration is None else configuration)
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
    return HealthReport(
        status=overall, checked_at=utc_iso(clock.now()), dependencies=ordered, configuration=issues
    )


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
            failing_blobs=state.failing_blobs,
            given_up_blobs=state.given_up_blobs,
            last_blob_error=state.last_blob_error,
            warning=_source_warning(state, now),
        )
        for state in sorted(states, key=lambda s: s.source)
    ]


def _elapsed_ms(clock: Clock, since: float) -> float:
    return round((clock.monotonic() - since) * 1000, 1)
