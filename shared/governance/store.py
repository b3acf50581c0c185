"""Where governance keeps its state: Protocols the service depends on, and their Cosmos DB and Table
Storage implementations.

- `GovernanceStore`: per object its record, findings and exceptions (shared.governance.records), read in
  one single-partition query and written with ETags: a write made on a stale read raises
  `StaleWriteError`, and the caller reads again.
- `ActivityStore`: activity documents; batch counts go to shards so the workers of a batch do not race
  for one document's ETag.
- `AuditSink`: records in the `audit` container, where `GET /api/audit` finds them (governance may not
  import shared.api, so it writes the same document shape; shared.api.audit.AuditRecord reads it).
- `UpdateClaims`: one Table row per (object, evaluation) claimed before a notes PATCH, so a redelivered
  message never sends a second one (shared.platform.table_claim, as shared.notify.delivery claims).

Every query names the partition (the tenant) and uses only what cosmosdb-server runs too: equality
filters, `TOP`, `ORDER BY` on one or two properties (the second with a composite index in Azure), and
keyset paging on them. Ids go through shared.platform.ids.storage_id before any point operation.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, Protocol, TypeVar

from azure.core import MatchConditions
from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError
from azure.cosmos import ContainerProxy
from azure.cosmos.exceptions import (
    CosmosAccessConditionFailedError,
    CosmosResourceExistsError,
    CosmosResourceNotFoundError,
)
from azure.data.tables import TableClient, UpdateMode
from pydantic import BaseModel, ConfigDict, Field

from shared.governance.messages import ActivityKind, Trigger
from shared.governance.records import (
    MAX_ACTIVITY_ERRORS,
    ActivityCounts,
    ActivityError,
    ActivityRecord,
    ActivityShard,
    AuditEntry,
    ExceptionRecord,
    FindingRecord,
    FindingState,
    ObjectRecord,
    activity_shard_id,
    merge_shards,
    object_record_id,
)
from shared.platform.clock import utc_iso
from shared.platform.cosmos import read_or_none
from shared.platform.ids import storage_id
from shared.platform.table_claim import Claim, RowClaimer
from shared.rules.model import Severity

T = TypeVar("T", bound=BaseModel)

MAX_QUERY_ITEMS = 1000
SHARD_WRITE_ATTEMPTS = 10
# A claim held longer than the host's functionTimeout (10 minutes) belongs to a dead worker.
UPDATE_CLAIM_STALE = dt.timedelta(minutes=15)


class StaleWriteError(RuntimeError):
    """The document was created, changed or deleted since the read the write was based on."""


@dataclass(frozen=True)
class Stored(Generic[T]):
    value: T
    etag: str | None
    """Cosmos DB's `_etag` of the stored document; None for one not stored yet."""


@dataclass(frozen=True)
class ObjectState:
    """Everything stored about one object, as of one read."""

    record: Stored[ObjectRecord] | None = None
    findings: dict[tuple[str, str], Stored[FindingRecord]] = field(default_factory=dict)
    """By (validator_id, subject)."""
    exceptions: tuple[Stored[ExceptionRecord], ...] = ()


class FindingQuery(BaseModel):
    """Findings of a tenant, newest `last_seen` first; `after` is the (last_seen, id) of the last finding
    of the previous page."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    validator_id: str | None = None
    severity: Severity | None = None
    object_id: str | None = None
    state: FindingState | None = None
    limit: int = Field(default=50, ge=1, le=MAX_QUERY_ITEMS)
    after: tuple[str, str] | None = None


class FindingFact(BaseModel):
    """What the findings summary counts of one finding."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    object_id: str
    validator_id: str
    severity: Severity
    state: FindingState


class GovernanceStore(Protocol):
    def object_state(self, tenant_id: str, object_id: str) -> ObjectState: ...

    def get_object(self, tenant_id: str, object_id: str) -> Stored[ObjectRecord] | None: ...

    def write_object(self, record: ObjectRecord, etag: str | None) -> Stored[ObjectRecord]:
        """Create the record (`etag` None) or replace it if unchanged; StaleWriteError otherwise."""
        ...

    def write_finding(self, finding: FindingRecord, etag: str | None) -> Stored[FindingRecord]: ...

    def write_exception(self, exception: ExceptionRecord, etag: str | None) -> Stored[ExceptionRecord]: ...

    def delete_exception(self, tenant_id: str, exception_id: str, etag: str | None) -> bool:
        """False when it was gone already; StaleWriteError when it changed since `etag`."""
        ...

    def get_exception(self, tenant_id: str, exception_id: str) -> Stored[ExceptionRecord] | None: ...

    def exceptions(self, tenant_id: str, object_id: str | None = None) -> list[ExceptionRecord]:
        """The tenant's exceptions (of one object), soonest expiry first, at most MAX_QUERY_ITEMS."""
        ...

    def findings(self, tenant_id: str, query: FindingQuery) -> list[FindingRecord]: ...


class ActivityStore(Protocol):
    def start(self, activity: ActivityRecord) -> ActivityRecord:
        """Store a new activity; an activity with its id already stored is returned as it is (a
        redelivered request starts nothing twice)."""
        ...

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
        """End a stored activity (None when there is none): counts are added to what it holds."""
        ...

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
        """Add a worker's counts to a batch (started here when nobody started it)."""
        ...

    def expect(self, tenant_id: str, activity_id: str, expected: int) -> None:
        """Set how many units a batch is to settle (known only once its discovery has queued them):
        the batch reads `succeeded` when that many have settled."""
        ...

    def get(self, tenant_id: str, activity_id: str) -> ActivityRecord | None: ...

    def recent(
        self, tenant_id: str, kind: ActivityKind | None = None, limit: int = 50
    ) -> list[ActivityRecord]:
        """Newest first, shards summed in."""
        ...


class AuditSink(Protocol):
    def record(self, entry: AuditEntry) -> None:
        """Store the entry under its id (a second write of the same id replaces it)."""
        ...


@dataclass(frozen=True)
class UpdateClaim:
    state: Literal["claimed", "done"]
    status: str | None = None
    """For "done": how the claimed PATCH ended (patched, unchanged, superseded, skipped)."""
    etag: str | None = None


class UpdateClaims(Protocol):
    def claim(
        self, tenant_id: str, object_id: str, evaluation_id: str, now: dt.datetime, owner: str
    ) -> UpdateClaim:
        """Claim the PATCH of this object for this evaluation. Raises
        shared.platform.table_claim.ClaimBusyError while another worker holds it."""
        ...

    def finish(
        self,
        tenant_id: str,
        object_id: str,
        evaluation_id: str,
        now: dt.datetime,
        owner: str,
        status: Literal["patched", "unchanged", "superseded", "skipped"],
    ) -> None: ...

    def release(
        self, tenant_id: str, object_id: str, evaluation_id: str, now: dt.datetime, owner: str, reason: str
    ) -> None:
        """Give the claim up after a failed PATCH, so the message's retry takes it over at once."""
        ...


# -- Cosmos DB --------------------------------------------------------------------------------------


def _clean(document: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in document.items() if not k.startswith("_")}


def _stored(model: type[T], document: dict[str, Any]) -> Stored[T]:
    return Stored(model.model_validate(_clean(document)), str(document.get("_etag") or "") or None)


def _write(container: ContainerProxy, body: dict[str, Any], etag: str | None) -> dict[str, Any]:
    item_id = storage_id(body.get("id"))
    try:
        if etag is None:
            return dict(container.create_item(body))
        return dict(
            container.replace_item(item_id, body, etag=etag, match_condition=MatchConditions.IfNotModified)
        )
    except (CosmosResourceExistsError, CosmosAccessConditionFailedError, CosmosResourceNotFoundError):
        raise StaleWriteError(f"{body.get('type')} {item_id} changed since it was read") from None


class CosmosGovernanceStore:
    """GovernanceStore on the `governance` container."""

    def __init__(self, container: ContainerProxy) -> None:
        self._container = container

    def _query(self, tenant_id: str, sql: str, parameters: list[dict[str, Any]]) -> list[dict[str, Any]]:
        rows = self._container.query_items(
            sql, parameters=[{"name": "@pk", "value": tenant_id}, *parameters], partition_key=tenant_id
        )
        return [dict(row) for row in rows]

    def object_state(self, tenant_id: str, object_id: str) -> ObjectState:
        """The object's record, findings and exceptions. An object never evaluated has no record: one
        point read (1 RU) answers that, instead of a query (a baseline evaluates thousands of them).
        Nothing else of it can exist then: findings are written only by an evaluation, which ends by
        writing the record, and the API accepts a risk only for an evaluated object. (Findings left by
        an attempt that died before its record are written again, the same, by its redelivery.)"""
        if self.get_object(tenant_id, object_id) is None:
            return ObjectState(None, {}, ())
        rows = self._query(
            tenant_id,
            "SELECT * FROM c WHERE c.pk = @pk AND c.object_id = @object",
            [{"name": "@object", "value": object_id.lower()}],
        )
        record: Stored[ObjectRecord] | None = None
        findings: dict[tuple[str, str], Stored[FindingRecord]] = {}
        exceptions: list[Stored[ExceptionRecord]] = []
        for row in rows:
            kind = row.get("type")
            if kind == "object":
                record = _stored(ObjectRecord, row)
            elif kind == "finding":
                finding = _stored(FindingRecord, row)
                findings[(finding.value.validator_id, finding.value.subject)] = finding
            elif kind == "exception":
                exceptions.append(_stored(ExceptionRecord, row))
        return ObjectState(record, findings, tuple(sorted(exceptions, key=lambda e: e.value.id)))

    def get_object(self, tenant_id: str, object_id: str) -> Stored[ObjectRecord] | None:
        document = read_or_none(self._container, object_record_id(object_id), tenant_id)
        return None if document is None else _stored(ObjectRecord, document)

    def write_object(self, record: ObjectRecord, etag: str | None) -> Stored[ObjectRecord]:
        return _stored(ObjectRecord, _write(self._container, record.document(), etag))

    def write_finding(self, finding: FindingRecord, etag: str | None) -> Stored[FindingRecord]:
        return _stored(FindingRecord, _write(self._container, finding.document(), etag))

    def write_exception(self, exception: ExceptionRecord, etag: str | None) -> Stored[ExceptionRecord]:
        return _stored(ExceptionRecord, _write(self._container, exception.document(), etag))

    def delete_exception(self, tenant_id: str, exception_id: str, etag: str | None) -> bool:
        condition: dict[str, Any] = {}
        if etag is not None:
            condition = {"etag": etag, "match_condition": MatchConditions.IfNotModified}
        try:
            self._container.delete_item(storage_id(exception_id), partition_key=tenant_id, **condition)
        except CosmosAccessConditionFailedError:
            raise StaleWriteError(f"exception {exception_id} changed since it was read") from None
        except CosmosResourceNotFoundError:
            return False
        return True

    def get_exception(self, tenant_id: str, exception_id: str) -> Stored[ExceptionRecord] | None:
        document = read_or_none(self._container, exception_id, tenant_id)
        if document is None or document.get("type") != "exception":
            return None
        return _stored(ExceptionRecord, document)

    def exceptions(self, tenant_id: str, object_id: str | None = None) -> list[ExceptionRecord]:
        conditions = ["c.pk = @pk", "c.type = 'exception'"]
        parameters: list[dict[str, Any]] = [{"name": "@limit", "value": MAX_QUERY_ITEMS}]
        if object_id is not None:
            conditions.append("c.object_id = @object")
            parameters.append({"name": "@object", "value": object_id.lower()})
        clauses = " AND ".join(conditions)  # constant fragments only; values are parameters
        sql = f"SELECT TOP @limit * FROM c WHERE {clauses} ORDER BY c.expires_at"  # noqa: S608
        return [ExceptionRecord.model_validate(_clean(r)) for r in self._query(tenant_id, sql, parameters)]

    def findings(self, tenant_id: str, query: FindingQuery) -> list[FindingRecord]:
        conditions = ["c.pk = @pk", "c.type = 'finding'"]
        parameters: list[dict[str, Any]] = [{"name": "@limit", "value": query.limit}]
        for name in ("validator_id", "severity", "object_id", "state"):
            value = getattr(query, name)
            if value is not None:
                conditions.append(f"c.{name} = @{name}")
                parameters.append(
                    {"name": f"@{name}", "value": value.lower() if name == "object_id" else value}
                )
        if query.after is not None:
            conditions.append("(c.last_seen < @after_at OR (c.last_seen = @after_at AND c.id < @after_id))")
            parameters += [
                {"name": "@after_at", "value": query.after[0]},
                {"name": "@after_id", "value": query.after[1]},
            ]
        clauses = " AND ".join(conditions)  # constant fragments only; values are parameters
        sql = f"SELECT TOP @limit * FROM c WHERE {clauses} ORDER BY c.last_seen DESC, c.id DESC"  # noqa: S608
        return [FindingRecord.model_validate(_clean(r)) for r in self._query(tenant_id, sql, parameters)]

    # -- reads of the governance API (shared.api.governance_api) -------------------------------------

    def findings_page(
        self, tenant_id: str, query: FindingQuery, states: tuple[FindingState, ...] = ()
    ) -> list[FindingRecord]:
        """`findings`, or with `states` those in any of them (with query.state None): newest `last_seen`
        first, keyset paged on (last_seen, id) by `query.after`."""
        conditions = ["c.pk = @pk", "c.type = 'finding'"]
        parameters: list[dict[str, Any]] = [{"name": "@limit", "value": query.limit}]
        for name in ("validator_id", "severity", "object_id", "state"):
            value = getattr(query, name)
            if value is not None:
                conditions.append(f"c.{name} = @{name}")
                parameters.append(
                    {"name": f"@{name}", "value": value.lower() if name == "object_id" else value}
                )
        if states:
            conditions.append("ARRAY_CONTAINS(@states, c.state)")
            parameters.append({"name": "@states", "value": list(states)})
        if query.after is not None:
            conditions.append("(c.last_seen < @after_at OR (c.last_seen = @after_at AND c.id < @after_id))")
            parameters += [
                {"name": "@after_at", "value": query.after[0]},
                {"name": "@after_id", "value": query.after[1]},
            ]
        clauses = " AND ".join(conditions)  # constant fragments only; values are parameters
        sql = f"SELECT TOP @limit * FROM c WHERE {clauses} ORDER BY c.last_seen DESC, c.id DESC"  # noqa: S608
        return [FindingRecord.model_validate(_clean(r)) for r in self._query(tenant_id, sql, parameters)]

    def finding_facts(self, tenant_id: str) -> list[FindingFact]:
        """Object, validator, severity and state of every finding of the tenant: one single-partition
        query of four properties, for counts made in Python (cosmosdb-server has no GROUP BY)."""
        rows = self._query(
            tenant_id,
            "SELECT c.object_id, c.validator_id, c.severity, c.state FROM c "
            "WHERE c.pk = @pk AND c.type = 'finding'",
            [],
        )
        return [FindingFact.model_validate(r) for r in rows]

    def stored_exceptions(
        self, tenant_id: str, object_id: str | None = None
    ) -> list[Stored[ExceptionRecord]]:
        """`exceptions`, each with its ETag (for If-Match), soonest expiry first."""
        conditions = ["c.pk = @pk", "c.type = 'exception'"]
        parameters: list[dict[str, Any]] = [{"name": "@limit", "value": MAX_QUERY_ITEMS}]
        if object_id is not None:
            conditions.append("c.object_id = @object")
            parameters.append({"name": "@object", "value": object_id.lower()})
        clauses = " AND ".join(conditions)  # constant fragments only; values are parameters
        sql = f"SELECT TOP @limit * FROM c WHERE {clauses} ORDER BY c.expires_at"  # noqa: S608
        return [_stored(ExceptionRecord, r) for r in self._query(tenant_id, sql, parameters)]


class CosmosActivityStore:
    """ActivityStore on the `governance` container: `activity` documents and their `activity-counts`
    shards (shared.governance.records.activity_shard_id)."""

    def __init__(self, container: ContainerProxy, *, attempts: int = SHARD_WRITE_ATTEMPTS) -> None:
        self._container = container
        self._attempts = attempts

    def start(self, activity: ActivityRecord) -> ActivityRecord:
        try:
            _write(self._container, activity.document(), None)
        except StaleWriteError:
            existing = self.get(activity.pk, activity.id)
            if existing is not None:
                return existing
            raise
        return activity

    def _update(
        self, tenant_id: str, item_id: str, change: Callable[[dict[str, Any] | None], dict[str, Any] | None]
    ) -> dict[str, Any] | None:
        """Read, change (None: leave it) and write under the read's ETag, again after a lost race."""
        for _ in range(self._attempts):
            current = read_or_none(self._container, item_id, tenant_id)
            changed = change(None if current is None else _clean(current))
            if changed is None:
                return current
            try:
                return _write(self._container, changed, None if current is None else current.get("_etag"))
            except StaleWriteError:
                continue
        raise StaleWriteError(f"activity document {item_id}: too many concurrent updates")

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
        new_errors = tuple(errors)

        def change(document: dict[str, Any] | None) -> dict[str, Any] | None:
            if document is None:
                return None
            activity = ActivityRecord.model_validate(document)
            update: dict[str, Any] = {
                "ended_at": utc_iso(ended_at),
                "status": status,
                "errors": (*activity.errors, *new_errors)[-MAX_ACTIVITY_ERRORS:],
                "details": {**activity.details, **(details or {})},
            }
            if counts is not None:
                update["counts"] = activity.counts.plus(counts)
            if lock is not None:
                update["lock"] = lock
            return ActivityRecord.model_validate({**activity.model_dump(), **update}).document()

        if self._update(tenant_id, activity_id, change) is None:
            return None
        return self.get(tenant_id, activity_id)

    def expect(self, tenant_id: str, activity_id: str, expected: int) -> None:
        def change(document: dict[str, Any] | None) -> dict[str, Any] | None:
            if document is None or document.get("expected") == expected:
                return None
            return {**document, "expected": expected}

        self._update(tenant_id, activity_id, change)

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
        shard_id = activity_shard_id(activity_id, shard_key)
        created: list[bool] = []

        def change(document: dict[str, Any] | None) -> dict[str, Any]:
            if document is None:
                created.append(True)
                shard = ActivityShard(id=shard_id, pk=tenant_id, activity_id=activity_id, last_at=utc_iso(at))
            else:
                shard = ActivityShard.model_validate(document)
            errors = (*shard.errors, error)[-MAX_ACTIVITY_ERRORS:] if error is not None else shard.errors
            return shard.model_copy(
                update={
                    "counts": shard.counts.plus(counts),
                    "errors": errors,
                    "last_at": max(shard.last_at, utc_iso(at)),
                }
            ).document()

        self._update(tenant_id, shard_id, change)
        if created:  # the first write to this shard: make sure the batch itself exists
            self.start(
                ActivityRecord(
                    id=activity_id, pk=tenant_id, kind=kind, trigger=trigger, started_at=utc_iso(at)
                )
            )

    def _shards(self, tenant_id: str, activity_ids: list[str]) -> dict[str, list[ActivityShard]]:
        found: dict[str, list[ActivityShard]] = {a: [] for a in activity_ids}
        if not activity_ids:
            return found
        rows = self._container.query_items(
            "SELECT * FROM c WHERE c.pk = @pk AND c.type = 'activity-counts' "
            "AND ARRAY_CONTAINS(@ids, c.activity_id)",
            parameters=[{"name": "@pk", "value": tenant_id}, {"name": "@ids", "value": activity_ids}],
            partition_key=tenant_id,
        )
        for row in rows:
            shard = ActivityShard.model_validate(_clean(dict(row)))
            found.setdefault(shard.activity_id, []).append(shard)
        return found

    def get(self, tenant_id: str, activity_id: str) -> ActivityRecord | None:
        document = read_or_none(self._container, activity_id, tenant_id)
        if document is None or document.get("type") != "activity":
            return None
        activity = ActivityRecord.model_validate(_clean(document))
        return merge_shards(activity, self._shards(tenant_id, [activity_id])[activity_id])

    def recent(
        self, tenant_id: str, kind: ActivityKind | None = None, limit: int = 50
    ) -> list[ActivityRecord]:
        conditions = ["c.pk = @pk", "c.type = 'activity'"]
        parameters: list[dict[str, Any]] = [
            {"name": "@pk", "value": tenant_id},
            {"name": "@limit", "value": max(1, min(limit, MAX_QUERY_ITEMS))},
        ]
        if kind is not None:
            conditions.append("c.kind = @kind")
            parameters.append({"name": "@kind", "value": kind})
        clauses = " AND ".join(conditions)  # constant fragments only; values are parameters
        sql = f"SELECT TOP @limit * FROM c WHERE {clauses} ORDER BY c.started_at DESC, c.id DESC"  # noqa: S608
        rows = self._container.query_items(sql, parameters=parameters, partition_key=tenant_id)
        activities = [ActivityRecord.model_validate(_clean(dict(r))) for r in rows]
        shards = self._shards(tenant_id, [a.id for a in activities])
        return [merge_shards(a, shards[a.id]) for a in activities]


class CosmosAuditSink:
    """AuditSink on the `audit` container (partition key the tenant, as shared.api.audit.AuditLog)."""

    def __init__(self, container: ContainerProxy) -> None:
        self._container = container

    def record(self, entry: AuditEntry) -> None:
        storage_id(entry.id)
        self._container.upsert_item(entry.model_dump(mode="json"))


# -- Table Storage ----------------------------------------------------------------------------------

DONE_STATUSES = frozenset({"patched", "unchanged", "superseded", "skipped"})


class TableUpdateClaims:
    """UpdateClaims on Table `GovernanceUpdates`: PartitionKey the tenant, RowKey `{object}:{evaluation}`.

    `patching` holds the claim; a row left `patching` by a worker that died is taken over after
    UPDATE_CLAIM_STALE (past the host's functionTimeout). `patched`, `unchanged`, `superseded` and
    `skipped` are final; `released` (a PATCH that failed) is taken over at once by the retry.
    """

    def __init__(self, table: TableClient, *, stale_after: dt.timedelta = UPDATE_CLAIM_STALE) -> None:
        self._table = table
        self._claimer = RowClaimer(table, "patching", DONE_STATUSES, stale_after)

    @staticmethod
    def _row(object_id: str, evaluation_id: str) -> str:
        return f"{object_id.lower()}:{evaluation_id}"

    def claim(
        self, tenant_id: str, object_id: str, evaluation_id: str, now: dt.datetime, owner: str
    ) -> UpdateClaim:
        claim: Claim = self._claimer.claim(
            tenant_id,
            self._row(object_id, evaluation_id),
            now,
            label=f"notes update of {object_id} ({evaluation_id})",
            owner=owner,
        )
        if claim.state == "done":
            return UpdateClaim("done", str(claim.existing.get("status")))
        return UpdateClaim("claimed", etag=claim.etag)

    def finish(
        self,
        tenant_id: str,
        object_id: str,
        evaluation_id: str,
        now: dt.datetime,
        owner: str,
        status: Literal["patched", "unchanged", "superseded", "skipped"],
    ) -> None:
        self._table.upsert_entity(
            {
                "PartitionKey": tenant_id,
                "RowKey": self._row(object_id, evaluation_id),
                "status": status,
                "owner": owner,
                "claimed_at": utc_iso(now),
                "finished_at": utc_iso(now),
            },
            mode=UpdateMode.REPLACE,
        )

    def release(
        self, tenant_id: str, object_id: str, evaluation_id: str, now: dt.datetime, owner: str, reason: str
    ) -> None:
        row = self._row(object_id, evaluation_id)
        try:
            current = self._table.get_entity(tenant_id, row)
        except ResourceNotFoundError:
            return
        if current.get("owner") != owner:
            return  # taken over meanwhile: not ours to release
        try:
            self._table.update_entity(
                {
                    "PartitionKey": tenant_id,
                    "RowKey": row,
                    "status": "released",
                    "owner": owner,
                    "claimed_at": utc_iso(now),
                    "reason": reason[:500],
                },
                mode=UpdateMode.REPLACE,
                etag=current.metadata["etag"],
                match_condition=MatchConditions.IfNotModified,
            )
        except ResourceModifiedError:
            return  # taken over between the read and the write
