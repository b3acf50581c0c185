"""The operations routes: GET /api/status (sources, probe scopes with their last trigger's Azure DevOps
run, queue depths, settings problems), GET /api/version (the app's version and commit) and
POST /api/probe/run (one polling and probe cycle now)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Sequence

from azure.core.exceptions import ResourceNotFoundError
from azure.storage.queue import QueueServiceClient
from pydantic import BaseModel, Field

from shared.api.audit import AuditLog
from shared.api.auth import Role
from shared.api.governance_api import GovernanceStatus
from shared.api.problems import ApiProblem
from shared.api.responses import ApiGuard
from shared.api.routing import Call, EmptyBody, NoQuery, Reply, Resource, route
from shared.api.version_api import VersionOut, version_info
from shared.ingestion.watermarks import SourceState, WatermarkStore
from shared.platform.clock import Clock, utc_iso
from shared.platform.redact import redact
from shared.platform.resources import Queues, poison_queue
from shared.platform.settings import SettingIssue
from shared.probe.poller import PollReport
from shared.probe.state import Phase, ProbeState
from shared.probe.trigger_log import TriggerRun

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024


class SourceStatus(BaseModel):
    source: str
    watermark: str | None = Field(default=None, description="the end of the last fully handed-off window")
    last_success: str | None = None
    last_error: str | None = None
    stale: bool = Field(description="no success within three poll intervals (or never)")
    last_count: int
    total_count: int
    quarantined: int
    expired_skipped: int
    failing_blobs: int = Field(
        default=0, description="Management API content blobs failing now; retried on later polls"
    )
    given_up_blobs: int = Field(
        default=0, description="content blobs given up (attempts used up, or expired), since the first poll"
    )
    last_blob_error: str | None = Field(default=None, description="the last content blob failure")
    last_blob_error_at: str | None = None
    last_full_relist: str | None = Field(
        default=None, description="the last run that listed all 7 days of content"
    )


class ProbeScopeStatus(BaseModel):
    scope: str
    phase: Phase = Field(description="idle, armed (collecting a burst) or cooldown (after a trigger)")
    quiet_deadline: str | None = Field(default=None, description="armed: a trigger is due after this")
    cooldown_until: str | None = None
    pending: bool = Field(description="cooldown: changes arrived meanwhile and will re-arm it")
    burst_count: int
    burst_first_at: str | None = None
    burst_last_at: str | None = None
    last_trigger_id: str | None = None
    last_triggered_at: str | None = None
    triggers_emitted: int
    outbox_pending: bool = Field(description="a committed trigger not yet queued")
    updated_at: str | None = None
    last_run: TriggerRun | None = Field(
        default=None,
        description="the Azure DevOps run of the last trigger (TriggerLog); null when none was recorded",
    )


class QueueDepth(BaseModel):
    name: str
    poison: bool = Field(description="the poison queue of a queue in Queues.ALL")
    exists: bool
    depth: int | None = Field(description="approximate message count; null when it could not be read")
    error: str | None = None


class StatusDocument(BaseModel):
    generated_at: str
    poll_interval_seconds: float
    sources: list[SourceStatus]
    probe: list[ProbeScopeStatus]
    queues: list[QueueDepth]
    configuration: list[SettingIssue] = Field(
        default=[],
        description="secrets that are missing or arrived as unresolved Key Vault references, by name",
    )
    governance: GovernanceStatus | None = Field(
        default=None,
        description="service principal governance: GOVERNANCE_UPDATE_MODE and its last activities",
    )


def source_status(state: SourceState, stale: bool) -> SourceStatus:
    return SourceStatus(
        source=state.source,
        watermark=state.watermark,
        last_success=state.last_success,
        last_error=state.last_error,
        stale=stale,
        last_count=state.last_count,
        total_count=state.total_count,
        quarantined=state.quarantined,
        expired_skipped=state.expired_skipped,
        failing_blobs=state.failing_blobs,
        given_up_blobs=state.given_up_blobs,
        last_blob_error=state.last_blob_error,
        last_blob_error_at=state.last_blob_error_at,
        last_full_relist=state.last_full_relist,
    )


def probe_scope_status(state: ProbeState, last_run: TriggerRun | None = None) -> ProbeScopeStatus:
    return ProbeScopeStatus(
        scope=state.scope,
        phase=state.phase,
        quiet_deadline=state.quiet_deadline,
        cooldown_until=state.cooldown_until,
        pending=state.pending,
        burst_count=state.burst_count,
        burst_first_at=state.burst_first_at,
        burst_last_at=state.burst_last_at,
        last_trigger_id=state.last_trigger_id,
        last_triggered_at=state.last_triggered_at,
        triggers_emitted=state.triggers_emitted,
        outbox_pending=bool(state.outbox),
        updated_at=state.updated_at,
        last_run=last_run,
    )


def run_summary(report: PollReport) -> dict[str, int | str | bool]:
    """What the audit trail keeps of a run: counts, not the records."""
    return {
        "run_id": report.run_id,
        "sources": len(report.sources),
        "failed_sources": len(report.failed),
        "pages": sum(s.pages for s in report.sources),
        "records": sum(s.records for s in report.sources),
        "expired_skipped": sum(s.expired_skipped for s in report.sources),
        "probe_scopes": len(report.probe),
        "triggers": sum(1 for p in report.probe if p.trigger is not None),
        "probe_failed": report.probe_error is not None,
    }


def _describe(exc: BaseException) -> str:
    status = getattr(exc, "status_code", None)
    message = str(exc).splitlines()[0] if str(exc) else ""
    return redact(f"{type(exc).__name__}" + (f" (HTTP {status})" if status else "") + f": {message}")[:300]


class StatusApi(Resource):
    def __init__(
        self,
        guard: ApiGuard,
        watermarks: WatermarkStore,
        probe_states: Callable[[], Sequence[ProbeState]] | None,
        queue_service: QueueServiceClient,
        clock: Clock,
        poll_interval_seconds: float,
        run_poll: Callable[[], PollReport],
        audit: AuditLog,
        *,
        expected_sources: Iterable[str] = (),
        queues: Sequence[str] = Queues.ALL,
        configuration: Sequence[SettingIssue] = (),
        commit: str | None = None,
        trigger_runs: Callable[[str, str], TriggerRun | None] | None = None,
        governance: Callable[[], GovernanceStatus] | None = None,
    ) -> None:
        self.guard = guard
        self._watermarks = watermarks
        self._probe_states = probe_states
        self._queue_service = queue_service
        self._clock = clock
        self._poll_interval = poll_interval_seconds
        self._run_poll = run_poll
        self._audit = audit
        self._expected_sources = frozenset(expected_sources)
        self._queues = tuple(queues)
        self._configuration = list(configuration)
        self._running = threading.Lock()
        self._version = version_info(commit)
        self._trigger_runs = trigger_runs
        self._governance = governance

    @route(
        "GET",
        "status",
        "get_status",
        operation_id="getStatus",
        role=Role.READER,
        summary="Sources, probe scopes and queue depths",
        tag="operations",
        query=NoQuery,
        body=None,
        response=StatusDocument,
        description="Per source: watermark, last success and error, staleness and counts; each probe "
        "scope's state and its last trigger's Azure DevOps run (TriggerLog); the depth of every queue "
        "and its poison queue; settings problems (a missing "
        "secret, an unresolved Key Vault reference); governance's update mode and last five activities.",
    )
    def get_status(self, call: Call[NoQuery, None]) -> Reply:
        return self.status()

    def status(self) -> StatusDocument:
        now = self._clock.now()
        states = {s.source: s for s in self._watermarks.all()}
        for source in self._expected_sources - set(states):
            states[source] = SourceState(source=source)  # enabled, never polled: stale
        sources = [
            source_status(state, state.is_stale(now, self._poll_interval))
            for state in sorted(states.values(), key=lambda s: s.source)
        ]
        probe = [
            probe_scope_status(s, self._last_run(s))
            for s in (self._probe_states() if self._probe_states else [])
        ]
        queues = []
        for name in self._queues:
            queues.append(self._depth(name, poison=False))
            queues.append(self._depth(poison_queue(name), poison=True))
        return StatusDocument(
            generated_at=utc_iso(now),
            poll_interval_seconds=self._poll_interval,
            sources=sources,
            probe=probe,
            queues=queues,
            configuration=self._configuration,
            governance=self._governance() if self._governance is not None else None,
        )

    @route(
        "GET",
        "version",
        "get_version",
        operation_id="getVersion",
        role=Role.READER,
        summary="The app's version and the commit it was built from",
        tag="operations",
        query=NoQuery,
        body=None,
        response=VersionOut,
        description="Which build answers, for the console and for support. The commit is the AOC_COMMIT "
        "setting, null when unset.",
    )
    def get_version(self, call: Call[NoQuery, None]) -> Reply:
        return self._version

    def _last_run(self, state: ProbeState) -> TriggerRun | None:
        if self._trigger_runs is None or state.last_trigger_id is None:
            return None
        return self._trigger_runs(state.scope, state.last_trigger_id)

    def _depth(self, name: str, *, poison: bool) -> QueueDepth:
        try:
            properties = self._queue_service.get_queue_client(name).get_queue_properties()
        except ResourceNotFoundError:
            # Poison queues appear when the host first gives up on a message.
            return QueueDepth(name=name, poison=poison, exists=False, depth=0)
        except Exception as exc:  # one unreadable queue must not hide the rest of the status
            logger.warning("could not read the depth of queue %s: %s", name, exc)
            return QueueDepth(name=name, poison=poison, exists=True, depth=None, error=_describe(exc))
        return QueueDepth(
            name=name, poison=poison, exists=True, depth=int(properties.approximate_message_count or 0)
        )

    @route(
        "POST",
        "probe/run",
        "run_probe",
        operation_id="runProbe",
        role=Role.ADMIN,
        summary="Run one polling and probe cycle now",
        tag="operations",
        query=NoQuery,
        body=EmptyBody,
        max_body_bytes=MAX_BODY_BYTES,
        response=PollReport,
        description="Polls every enabled source and steps the probe, as the timer does; one run at a time "
        "per instance (409 while one is running). Takes no body, or {}.",
    )
    def run_probe(self, call: Call[NoQuery, EmptyBody]) -> Reply:
        principal, key = call.principal, call.idempotency_key
        if not self._running.acquire(blocking=False):
            raise ApiProblem(
                409, "Conflict", "a poll run started here is still running; retry later", kind="busy"
            )
        try:
            try:
                report = self._run_poll()
            except Exception as exc:
                error = _describe(exc)
                logger.error("poll run requested by %s failed: %s", principal.name, error)
                self._audit.record(
                    principal, "probe.run", "probe", "run", None, {"error": error}, request_id=key
                )
                raise ApiProblem(
                    500, "Internal Server Error", f"the poll run failed: {error}", kind="run-failed"
                ) from None
        finally:
            self._running.release()
        self._audit.record(
            principal, "probe.run", "probe", report.run_id, None, run_summary(report), request_id=key
        )
        logger.info("poll run %s requested by %s", report.run_id, principal.name)
        return report
