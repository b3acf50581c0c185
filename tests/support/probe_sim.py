"""The change probe over simulated time: Graph poll windows, late audit records, and in-memory stores.

`FakeTable` is the part of `TableClient` that `ProbeStateStore` uses, with Table Storage's ETag rules:
create fails on an existing row, a conditional replace fails once the row has changed, and every read
returns a copy. `FakeQueue` records what is sent. `simulate` runs `ProbeService.advance` at each poll, with
the records a Graph window `[previous end - overlap, poll)` returns at that moment: those made in the window
whose record is visible by then.
"""

from __future__ import annotations

import copy
import datetime as dt
import itertools
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableEntity, UpdateMode

from shared.platform.clock import utc_iso
from shared.platform.ports import MessageQueue
from shared.probe.scopes import DriftConfig, DriftRule, DriftScope, PipelineTarget
from shared.probe.service import ProbeService
from shared.probe.state import Change, ProbeWindows, Trigger
from shared.probe.store import ProbeStateStore, StateTable


class FakeTable:
    """An in-memory table with Table Storage's create / conditional-replace / ETag semantics."""

    def __init__(self) -> None:
        self._rows: dict[tuple[str, str], tuple[dict[str, Any], str]] = {}
        self._etags = itertools.count(1)
        self._lock = threading.Lock()
        self.writes = 0
        self.conflicts = 0

    def _entity(self, row: dict[str, Any], etag: str) -> TableEntity:
        entity = TableEntity(copy.deepcopy(row))
        entity._metadata = {"etag": etag, "timestamp": None}
        return entity

    def get_entity(self, partition_key: str, row_key: str) -> TableEntity:
        with self._lock:
            found = self._rows.get((partition_key, row_key))
            if found is None:
                raise ResourceNotFoundError("The specified resource does not exist.")
            return self._entity(*found)

    def create_entity(self, entity: Mapping[str, Any]) -> None:
        key = (entity["PartitionKey"], entity["RowKey"])
        with self._lock:
            if key in self._rows:
                self.conflicts += 1
                raise ResourceExistsError("The specified entity already exists.")
            self._rows[key] = (copy.deepcopy(dict(entity)), f'W/"{next(self._etags)}"')
            self.writes += 1

    def update_entity(
        self,
        entity: Mapping[str, Any],
        mode: UpdateMode = UpdateMode.MERGE,
        *,
        etag: str | None = None,
        match_condition: MatchConditions | None = None,
    ) -> None:
        key = (entity["PartitionKey"], entity["RowKey"])
        with self._lock:
            found = self._rows.get(key)
            if found is None:
                raise ResourceNotFoundError("The specified resource does not exist.")
            if match_condition == MatchConditions.IfNotModified and etag != found[1]:
                self.conflicts += 1
                raise ResourceModifiedError(
                    "The update condition specified in the request was not satisfied."
                )
            row = dict(entity) if mode == UpdateMode.REPLACE else {**found[0], **entity}
            self._rows[key] = (copy.deepcopy(row), f'W/"{next(self._etags)}"')
            self.writes += 1

    def query_entities(self, query_filter: str) -> list[TableEntity]:
        with self._lock:
            return [self._entity(row, etag) for row, etag in self._rows.values()]


class FakeQueue:
    """Records each message sent, as the backup-trigger queue would hold it."""

    def __init__(self) -> None:
        self.messages: list[str] = []
        self._lock = threading.Lock()

    def send_message(self, content: str, **_: Any) -> None:
        with self._lock:
            self.messages.append(content)

    def trigger_ids(self) -> list[str]:
        return [Trigger.model_validate_json(m).trigger_id for m in self.messages]


def probe_for(scope: str, table: StateTable, queue: MessageQueue, windows: ProbeWindows) -> ProbeService:
    """A ProbeService of one scope with a pipeline, over the given table and queue."""
    target = PipelineTarget(organization="contoso", project="aoc", pipeline_id=1)
    drift = DriftConfig(scopes=[DriftScope(name=scope, rules=[DriftRule(operations=["x"])], pipeline=target)])
    return ProbeService(ProbeStateStore(table), drift, queue, windows)


@dataclass(frozen=True)
class AuditRecord:
    """A change made at `at` whose audit record becomes visible at `visible_at`."""

    event_id: str
    at: dt.datetime
    visible_at: dt.datetime

    def change(self) -> Change:
        return Change(event_id=self.event_id, at=utc_iso(self.at), service="Intune", operation="Patch")


@dataclass(frozen=True)
class Polls:
    """Polls at `first`, then every `interval`; Graph windows reach back `overlap` before the last end."""

    first: dt.datetime
    interval: dt.timedelta
    overlap: dt.timedelta
    lookback: dt.timedelta = dt.timedelta(days=1)

    def times(self, until: dt.datetime) -> list[dt.datetime]:
        count = int((until - self.first) / self.interval) + 1
        return [self.first + self.interval * k for k in range(max(count, 1))]


def delivered(
    records: list[AuditRecord], start: dt.datetime, end: dt.datetime, poll_at: dt.datetime
) -> list[Change]:
    """What a Graph query filtered on activity time `[start, end)` returns at `poll_at`."""
    return [r.change() for r in records if start <= r.at < end and r.visible_at <= poll_at]


@dataclass
class Outcome:
    triggers: list[tuple[dt.datetime, Trigger]] = field(default_factory=list)
    queue: FakeQueue = field(default_factory=FakeQueue)
    polls: int = 0


def simulate(
    records: list[AuditRecord],
    polls: Polls,
    windows: ProbeWindows,
    until: dt.datetime,
    *,
    advance: Callable[[list[Change], dt.datetime], list[Trigger]] | None = None,
) -> Outcome:
    """Poll until `until`, then once more with every record ever made (a full replay)."""
    outcome = Outcome()
    if advance is None:
        scope = f"sim-{uuid.uuid4().hex[:8]}"
        probe = probe_for(scope, FakeTable(), outcome.queue, windows)

        def advance(changes: list[Change], now: dt.datetime) -> list[Trigger]:
            return [r.trigger for r in probe.advance({scope: changes}, now) if r.trigger is not None]

    previous_end: dt.datetime | None = None
    times = polls.times(until)
    for poll_at in times:
        start = poll_at - polls.lookback if previous_end is None else previous_end - polls.overlap
        for trigger in advance(delivered(records, start, poll_at, poll_at), poll_at):
            outcome.triggers.append((poll_at, trigger))
        previous_end = poll_at
        outcome.polls += 1
    replay_at = times[-1] + polls.interval
    for trigger in advance([r.change() for r in records if r.visible_at <= replay_at], replay_at):
        outcome.triggers.append((replay_at, trigger))
    return outcome
