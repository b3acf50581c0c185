"""One probe cycle: match the run's events against drift scopes, step each scope, queue triggers."""

from __future__ import annotations

import datetime as dt
import logging
import threading
from typing import Any, Protocol

from pydantic import BaseModel

from shared.ingestion.normalize import NormalizationError, normalize_record
from shared.platform.ports import MessageQueue
from shared.probe.scopes import DriftConfig
from shared.probe.state import Change, ProbeState, ProbeWindows, Trigger

logger = logging.getLogger(__name__)


class ScopeResult(BaseModel):
    scope: str
    phase: str
    changes_seen: int
    trigger: Trigger | None = None


class ChangeCollector:
    """Receives each fetched page during a poll run and keeps the configuration changes in it."""

    def __init__(self, drift: DriftConfig, tenant_id: str, ingested_at: str) -> None:
        self._drift = drift
        self._tenant_id = tenant_id
        self._ingested_at = ingested_at
        self._lock = threading.Lock()
        self.changes: dict[str, list[Change]] = {scope.name: [] for scope in drift.scopes}

    def __call__(self, source: str, records: list[Any]) -> None:
        events = []
        for record in records:
            try:
                events.append(
                    normalize_record(source, record, tenant_id=self._tenant_id, ingested_at=self._ingested_at)
                )
            except NormalizationError:
                continue  # the ingest worker quarantines it
        found = self._drift.changes_by_scope(events)
        with self._lock:
            for scope, changes in found.items():
                self.changes[scope].extend(changes)


class ProbeStates(Protocol):
    """Each scope's probe state under ETag concurrency: shared.probe.store.ProbeStateStore."""

    def all(self) -> list[ProbeState]: ...

    def transition(
        self, scope: str, changes: list[Change], now: dt.datetime, windows: ProbeWindows
    ) -> tuple[ProbeState, Trigger | None]: ...

    def claim_stale_outbox(self, scope: str, now: dt.datetime) -> Trigger | None: ...

    def clear_outbox(self, scope: str, trigger_id: str) -> None: ...


class ProbeService:
    def __init__(
        self, store: ProbeStates, drift: DriftConfig, trigger_queue: MessageQueue, windows: ProbeWindows
    ) -> None:
        self._store = store
        self.drift = drift
        self._queue = trigger_queue
        self._windows = windows
        self._pipelines = {scope.name: scope.pipeline is not None for scope in drift.scopes}

    def advance(self, changes: dict[str, list[Change]], now: dt.datetime) -> list[ScopeResult]:
        results = []
        for scope in self.drift.scopes:
            scope_changes = changes.get(scope.name, [])
            state, trigger = self._store.transition(scope.name, scope_changes, now, self._windows)
            if trigger is not None:
                self._queue_trigger(trigger)  # this probe committed it and holds the outbox's claim
            elif state.outbox:
                self.recover_outbox(scope.name, now)
            if trigger is not None and scope.pipeline is None:
                logger.warning(
                    "probe %s: %d change(s) settled, but the scope has no pipeline (set DEVOPS_ORGANIZATION, "
                    "DEVOPS_PROJECT and DEVOPS_PIPELINE_ID, or its pipeline in drift.yaml); no backup queued",
                    scope.name, trigger.summary.count,
                )  # fmt: skip
            elif trigger is not None:
                logger.info(
                    "probe %s: %d change(s) settled; queued backup trigger %s",
                    scope.name, trigger.summary.count, trigger.trigger_id,
                )  # fmt: skip
            results.append(
                ScopeResult(
                    scope=scope.name, phase=state.phase, changes_seen=len(scope_changes), trigger=trigger
                )
            )
        return results

    def recover_outbox(self, scope: str, now: dt.datetime) -> Trigger | None:
        """Queue a trigger whose committing probe did not clear it within OUTBOX_CLAIM_TIMEOUT.

        A fresher claim means that probe is queuing it right now: leave it, so racing probes queue it
        once. The takeover is an ETag write, so of several probes finding it stale only one queues it.
        """
        trigger = self._store.claim_stale_outbox(scope, now)
        if trigger is not None:
            logger.warning("probe %s: queuing trigger %s left in the outbox", scope, trigger.trigger_id)
            self._queue_trigger(trigger)
        return trigger

    def _queue_trigger(self, trigger: Trigger) -> None:
        """Queue the trigger, unless its scope has no pipeline (it could only fail), then clear the outbox."""
        if self._pipelines.get(trigger.scope, False):
            self._queue.send_message(trigger.model_dump_json())
        self._store.clear_outbox(trigger.scope, trigger.trigger_id)

    def status(self) -> list[ProbeState]:
        """Every scope's current state, for /api/status."""
        known = {s.scope: s for s in self._store.all()}
        return [known.get(scope.name, ProbeState(scope=scope.name)) for scope in self.drift.scopes]
