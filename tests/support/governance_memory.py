"""In-memory stand-ins for the governance stores (shared.governance.store Protocols) and the Graph writer,
for unit tests. They keep the contracts the service relies on: ETags change on every write, a write on a
stale ETag (or a create over an existing document) raises StaleWriteError, claims are held until done or
stale, and `race` lets a test slip a concurrent write in before the next one."""

from __future__ import annotations

import copy
import datetime as dt
import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from pydantic import BaseModel

from shared.governance.messages import ActivityKind, Trigger
from shared.governance.records import (
    ActivityCounts,
    ActivityError,
    ActivityRecord,
    AuditEntry,
    ExceptionRecord,
    FindingRecord,
    NotesPatch,
    ObjectRecord,
    object_record_id,
)
from shared.governance.store import FindingQuery, ObjectState, StaleWriteError, Stored, UpdateClaim
from shared.platform.clock import parse_utc, utc_iso
from shared.platform.table_claim import ClaimBusyError

M = TypeVar("M", bound=BaseModel)
_etags = itertools.count(1)


class MemoryGovernanceStore:
    def __init__(self) -> None:
        self.documents: dict[tuple[str, str], tuple[dict[str, Any], str]] = {}
        self.writes = 0
        self.race: Callable[[], None] | None = None
        """Called once before the next write (then cleared): a concurrent worker's write."""

    def _read(self, model: type[M], tenant_id: str, item_id: str) -> Stored[M] | None:
        found = self.documents.get((tenant_id, item_id))
        if found is None:
            return None
        return Stored(model.model_validate(copy.deepcopy(found[0])), found[1])

    def _write(self, model: type[M], value: M, etag: str | None) -> Stored[M]:
        race, self.race = self.race, None
        if race is not None:
            race()
        body = value.model_dump(mode="json")
        key = (body["pk"], body["id"])
        current = self.documents.get(key)
        if (etag is None and current is not None) or (
            etag is not None and (current is None or current[1] != etag)
        ):
            raise StaleWriteError(f"{body['id']} changed")
        new_etag = f'"{next(_etags)}"'
        self.documents[key] = (body, new_etag)
        self.writes += 1
        return Stored(model.model_validate(copy.deepcopy(body)), new_etag)

    def of_type(self, tenant_id: str, kind: str) -> list[dict[str, Any]]:
        return [
            copy.deepcopy(d)
            for (pk, _), (d, _) in sorted(self.documents.items())
            if pk == tenant_id and d["type"] == kind
        ]

    # GovernanceStore

    def object_state(self, tenant_id: str, object_id: str) -> ObjectState:
        record = self._read(ObjectRecord, tenant_id, object_record_id(object_id))
        findings: dict[tuple[str, str], Stored[FindingRecord]] = {}
        exceptions: list[Stored[ExceptionRecord]] = []
        for (pk, item_id), (document, _) in sorted(self.documents.items()):
            if pk != tenant_id or document.get("object_id") != object_id.lower():
                continue
            if document["type"] == "finding":
                finding = self._read(FindingRecord, pk, item_id)
                assert finding is not None
                findings[(finding.value.validator_id, finding.value.subject)] = finding
            elif document["type"] == "exception":
                exception = self._read(ExceptionRecord, pk, item_id)
                assert exception is not None
                exceptions.append(exception)
        return ObjectState(record, findings, tuple(exceptions))

    def get_object(self, tenant_id: str, object_id: str) -> Stored[ObjectRecord] | None:
        return self._read(ObjectRecord, tenant_id, object_record_id(object_id))

    def write_object(self, record: ObjectRecord, etag: str | None) -> Stored[ObjectRecord]:
        return self._write(ObjectRecord, record, etag)

    def write_finding(self, finding: FindingRecord, etag: str | None) -> Stored[FindingRecord]:
        return self._write(FindingRecord, finding, etag)

    def write_exception(self, exception: ExceptionRecord, etag: str | None) -> Stored[ExceptionRecord]:
        return self._write(ExceptionRecord, exception, etag)

    def delete_exception(self, tenant_id: str, exception_id: str, etag: str | None) -> bool:
        current = self.documents.get((tenant_id, exception_id))
        if current is None:
            return False
        if etag is not None and current[1] != etag:
            raise StaleWriteError(exception_id)
        del self.documents[(tenant_id, exception_id)]
        return True

    def get_exception(self, tenant_id: str, exception_id: str) -> Stored[ExceptionRecord] | None:
        return self._read(ExceptionRecord, tenant_id, exception_id)

    def exceptions(self, tenant_id: str, object_id: str | None = None) -> list[ExceptionRecord]:
        found = [ExceptionRecord.model_validate(d) for d in self.of_type(tenant_id, "exception")]
        found = [e for e in found if object_id is None or e.object_id == object_id.lower()]
        return sorted(found, key=lambda e: e.expires_at)

    def findings(self, tenant_id: str, query: FindingQuery) -> list[FindingRecord]:
        found = [FindingRecord.model_validate(d) for d in self.of_type(tenant_id, "finding")]
        for name in ("validator_id", "severity", "object_id", "state"):
            wanted = getattr(query, name)
            if wanted is not None:
                found = [f for f in found if getattr(f, name) == wanted]
        found.sort(key=lambda f: (f.last_seen, f.id), reverse=True)
        if query.after is not None:
            found = [f for f in found if (f.last_seen, f.id) < query.after]
        return found[: query.limit]


class MemoryActivityStore:
    def __init__(self) -> None:
        self.activities: dict[tuple[str, str], ActivityRecord] = {}
        self.additions: list[tuple[str, str, ActivityCounts]] = []
        self.last_at: dict[tuple[str, str], str] = {}

    def start(self, activity: ActivityRecord) -> ActivityRecord:
        return self.activities.setdefault((activity.pk, activity.id), activity)

    def finish(
        self,
        tenant_id: str,
        activity_id: str,
        ended_at: dt.datetime,
        *,
        status: Literal["succeeded", "failed", "locked"],
        counts: ActivityCounts | None = None,
        lock: Literal["acquired", "held", "none"] | None = None,
        errors: Iterable[ActivityError] = (),
        details: dict[str, Any] | None = None,
    ) -> ActivityRecord | None:
        activity = self.activities.get((tenant_id, activity_id))
        if activity is None:
            return None
        update: dict[str, Any] = {
            "ended_at": utc_iso(ended_at),
            "status": status,
            "errors": (*activity.errors, *errors),
        }
        if counts is not None:
            update["counts"] = activity.counts.plus(counts)
        if lock is not None:
            update["lock"] = lock
        if details:
            update["details"] = {**activity.details, **details}
        finished = activity.model_copy(update=update)
        self.activities[(tenant_id, activity_id)] = finished
        return finished

    def add(
        self,
        tenant_id: str,
        activity_id: str,
        shard_key: str,
        counts: ActivityCounts,
        at: dt.datetime,
        *,
        kind: ActivityKind,
        trigger: Trigger,
        error: ActivityError | None = None,
    ) -> None:
        self.additions.append((activity_id, shard_key, counts))
        self.last_at[(tenant_id, activity_id)] = utc_iso(at)
        activity = self.start(
            ActivityRecord(id=activity_id, pk=tenant_id, kind=kind, trigger=trigger, started_at=utc_iso(at))
        )
        errors = (*activity.errors, error) if error is not None else activity.errors
        self.activities[(tenant_id, activity_id)] = activity.model_copy(
            update={"counts": activity.counts.plus(counts), "errors": errors}
        )

    def expect(self, tenant_id: str, activity_id: str, expected: int) -> None:
        activity = self.activities.get((tenant_id, activity_id))
        if activity is not None:
            self.activities[(tenant_id, activity_id)] = activity.model_copy(update={"expected": expected})

    def get(self, tenant_id: str, activity_id: str) -> ActivityRecord | None:
        """As the Cosmos store reads it: a running batch that settled its expected units succeeded."""
        activity = self.activities.get((tenant_id, activity_id))
        last = self.last_at.get((tenant_id, activity_id))
        if (
            activity is not None
            and activity.status == "running"
            and activity.expected is not None
            and activity.counts.settled >= activity.expected
            and last is not None
        ):
            return activity.model_copy(update={"status": "succeeded", "ended_at": last})
        return activity

    def recent(
        self, tenant_id: str, kind: ActivityKind | None = None, limit: int = 50
    ) -> list[ActivityRecord]:
        found = [
            self.get(pk, a.id) or a
            for (pk, _), a in self.activities.items()
            if pk == tenant_id and kind in (None, a.kind)
        ]
        return sorted(found, key=lambda a: (a.started_at, a.id), reverse=True)[:limit]


class MemoryAudit:
    def __init__(self) -> None:
        self.entries: dict[str, AuditEntry] = {}
        self.writes = 0

    def record(self, entry: AuditEntry) -> None:
        self.entries[entry.id] = entry
        self.writes += 1

    def actions(self, target_id: str | None = None) -> list[str]:
        return sorted(e.action for e in self.entries.values() if target_id in (None, e.target_id))

    def one(self, action: str) -> AuditEntry:
        found = [e for e in self.entries.values() if e.action == action]
        assert len(found) == 1, [e.action for e in self.entries.values()]
        return found[0]


@dataclass
class _Row:
    status: str
    owner: str
    claimed_at: dt.datetime
    reason: str = ""


class MemoryClaims:
    """UpdateClaims with TableUpdateClaims' rules: `patching` holds until `stale_after`; patched,
    unchanged, superseded and skipped are final; released is taken over at once."""

    def __init__(self, stale_after: dt.timedelta = dt.timedelta(minutes=15)) -> None:
        self.rows: dict[tuple[str, str, str], _Row] = {}
        self.stale_after = stale_after

    def claim(
        self, tenant_id: str, object_id: str, evaluation_id: str, now: dt.datetime, owner: str
    ) -> UpdateClaim:
        key = (tenant_id, object_id, evaluation_id)
        row = self.rows.get(key)
        if row is not None:
            if row.status in ("patched", "unchanged", "superseded", "skipped"):
                return UpdateClaim("done", row.status)
            if row.status == "patching" and now - row.claimed_at < self.stale_after:
                raise ClaimBusyError(f"update of {object_id} is being handled by another worker")
        self.rows[key] = _Row("patching", owner, now)
        return UpdateClaim("claimed", etag=owner)

    def finish(
        self,
        tenant_id: str,
        object_id: str,
        evaluation_id: str,
        now: dt.datetime,
        owner: str,
        status: Literal["patched", "unchanged", "superseded", "skipped"],
    ) -> None:
        self.rows[(tenant_id, object_id, evaluation_id)] = _Row(status, owner, now)

    def release(
        self, tenant_id: str, object_id: str, evaluation_id: str, now: dt.datetime, owner: str, reason: str
    ) -> None:
        row = self.rows.get((tenant_id, object_id, evaluation_id))
        if row is not None and row.owner == owner:
            self.rows[(tenant_id, object_id, evaluation_id)] = _Row("released", owner, now, reason)


@dataclass
class FakeWriter:
    """A GraphWriter that records each PATCH and applies it to `notes`, or raises `fail_with` (once per
    entry) first."""

    sent: list[NotesPatch] = field(default_factory=list)
    notes: dict[str, str] = field(default_factory=dict)
    fail_with: list[Exception] = field(default_factory=list)

    def send(self, patch: NotesPatch) -> None:
        if self.fail_with:
            raise self.fail_with.pop(0)
        self.sent.append(patch)
        self.notes[patch.url.rsplit("/", 1)[-1]] = patch.body["notes"]


def at(value: str) -> dt.datetime:
    return parse_utc(value)
