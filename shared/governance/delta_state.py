"""Where governance discovery keeps its place, per tenant, in Table storage (table `GovernanceDelta`):
the `@odata.deltaLink` of each delta resource (servicePrincipals, applications), the objects whose reads
failed and are read again next time, and the lease that lets one discovery run at a time.

Rows, all in the tenant's partition (PartitionKey = tenant id):

- `lock`: the lease. `status` "running" while a discovery holds it (until `claimed_at` + the lease's
  length: a run that died is taken over after that), "released" when it ended; `owner` the run id.
  Taken with an ETag-conditional create or replace (shared.platform.table_claim.RowClaimer), so of two
  runs that race only one gets it; the other gets `DiscoveryLocked` with the holder and since when, to
  record and exit.
- `state`: the cursors (`cursors`, JSON: per resource the deltaLink, the `$select` it was made with, when
  and by which run it was saved, and how its round started), `pending_service_principals` and
  `pending_applications` (JSON lists of object ids), `last_baseline_at`, `resyncs` (the total so far).

`commit()` writes `state` in one entity-group transaction with an ETag-conditional replace of `lock`:
the cursors move only if this run still holds the lease (a run taken over after it overran saves
nothing). A deltaLink is not a secret (it is useless without a token), but it is never logged whole.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any, Literal, Protocol

from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.governance.graph_reader import DELTA_RESOURCES, DeltaResource
from shared.platform.clock import utc_iso
from shared.platform.resources import Tables
from shared.platform.table_claim import ClaimBusyError, ClaimLostError, RowClaimer

GOVERNANCE_DELTA_TABLE = Tables.GOVERNANCE_DELTA
LOCK_ROW = "lock"
STATE_ROW = "state"
RUNNING = "running"
RELEASED = "released"
DEFAULT_LEASE = dt.timedelta(minutes=15)
# A Table string property holds 64 KiB (32K UTF-16 characters): 500 GUIDs as JSON take about 19.5K.
MAX_PENDING_IDS = 500
# Table keys may not hold / \ # ? or control characters.
_UNSAFE_KEY = re.compile(r"[/\\#?\x00-\x1f\x7f-\x9f]")

RoundKind = Literal["baseline", "incremental", "resync"]


def check_tenant_key(tenant_id: str) -> str:
    """`tenant_id` as a PartitionKey: 1 to 256 characters, none of / \\ # ? or control characters."""
    if not tenant_id or len(tenant_id) > 256 or _UNSAFE_KEY.search(tenant_id):
        raise ValueError(
            "a tenant id for the delta state is 1 to 256 characters without / \\ # ? or controls"
        )
    return tenant_id


class DeltaCursor(BaseModel):
    """Where one resource's delta stands: the link that starts its next round."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    resource: DeltaResource
    delta_link: str = Field(min_length=1)
    selection: str
    """The $select the link was made with (comma-separated): a link made with another selection is not
    followed (it would report other changes), the round starts again as a resync."""
    saved_at: str
    run_id: str
    round_kind: RoundKind


class DeltaState(BaseModel):
    """A tenant's discovery state as stored."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tenant_id: str
    cursors: dict[DeltaResource, DeltaCursor] = Field(default_factory=dict)
    pending_service_principals: tuple[str, ...] = ()
    pending_applications: tuple[str, ...] = ()
    last_baseline_at: str | None = None
    resyncs: int = 0

    def cursor(self, resource: DeltaResource) -> DeltaCursor | None:
        return self.cursors.get(resource)


class Lease(BaseModel):
    """A discovery's hold on its tenant: pass it back to renew, commit and release."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tenant_id: str
    run_id: str
    etag: str
    acquired_at: str
    renewed_at: str


class DiscoveryLocked(RuntimeError):
    """Another discovery holds the tenant's lease: record it and exit."""

    def __init__(self, tenant_id: str, holder: str | None, since: str | None) -> None:
        self.tenant_id = tenant_id
        self.holder = holder
        self.since = since
        super().__init__(
            f"discovery for tenant {tenant_id} is held by run {holder or '?'} since {since or '?'}"
        )


class LeaseLost(RuntimeError):
    """Another discovery took the lease over (this one overran it): nothing more may be saved."""


class DeltaStateStore(Protocol):
    """The discovery's state and lease for one or more tenants."""

    def acquire(self, tenant_id: str, run_id: str, now: dt.datetime) -> Lease:
        """Take the tenant's lease, or raise DiscoveryLocked."""
        ...

    def renew(self, lease: Lease, now: dt.datetime) -> Lease:
        """Extend the lease from `now`; LeaseLost if another run took it over."""
        ...

    def load(self, tenant_id: str) -> DeltaState:
        """The stored state (empty: a first run)."""
        ...

    def commit(self, lease: Lease, state: DeltaState, now: dt.datetime) -> Lease:
        """Save `state` if `lease` still holds, atomically with renewing it; LeaseLost otherwise."""
        ...

    def release(self, lease: Lease, now: dt.datetime) -> bool:
        """Let the next discovery in; False when the lease had already been taken over."""
        ...


def _ids(text: object, what: str) -> tuple[str, ...]:
    if text in (None, ""):
        return ()
    values = json.loads(str(text))
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise ValueError(f"{what} must be a JSON list of strings")
    return tuple(values)


class TableDeltaStateStore:
    """DeltaStateStore over one Table (`GovernanceDelta`). `lease_for` is how long a run holds the tenant
    without renewing: longer than the longest gap between renewals (discovery renews between phases),
    and longer than the Functions timeout, so that a live run is never taken over."""

    def __init__(self, table: TableClient, *, lease_for: dt.timedelta = DEFAULT_LEASE) -> None:
        if lease_for <= dt.timedelta(0):
            raise ValueError("lease_for must be positive")
        self._table = table
        self._lease_for = lease_for
        self._claimer = RowClaimer(table, RUNNING, frozenset(), lease_for)

    def acquire(self, tenant_id: str, run_id: str, now: dt.datetime) -> Lease:
        partition = check_tenant_key(tenant_id)
        try:
            claim = self._claimer.claim(
                partition,
                LOCK_ROW,
                now,
                label=f"governance discovery of tenant {tenant_id}",
                owner=run_id,
            )
        except ClaimBusyError as busy:
            held = busy.held
            raise DiscoveryLocked(
                tenant_id, _text(held.get("owner")), _text(held.get("claimed_at"))
            ) from None
        if claim.state != "claimed" or claim.etag is None:  # no done status exists; a safeguard
            raise DiscoveryLocked(tenant_id, _text(claim.existing.get("owner")), None)
        stamp = utc_iso(now)
        return Lease(tenant_id=tenant_id, run_id=run_id, etag=claim.etag, acquired_at=stamp, renewed_at=stamp)

    def renew(self, lease: Lease, now: dt.datetime) -> Lease:
        return self._advance(lease, now, RUNNING)

    def release(self, lease: Lease, now: dt.datetime) -> bool:
        try:
            self._advance(lease, now, RELEASED)
        except LeaseLost:
            return False
        return True

    def _advance(self, lease: Lease, now: dt.datetime, status: str) -> Lease:
        try:
            etag = self._claimer.advance(
                check_tenant_key(lease.tenant_id),
                LOCK_ROW,
                now,
                etag=lease.etag,
                owner=lease.run_id,
                fields={"status": status},
                label=f"governance discovery of tenant {lease.tenant_id}",
            )
        except ClaimLostError as lost:
            raise LeaseLost(str(lost)) from None
        return lease.model_copy(update={"etag": etag, "renewed_at": utc_iso(now)})

    def load(self, tenant_id: str) -> DeltaState:
        partition = check_tenant_key(tenant_id)
        try:
            row = self._table.get_entity(partition, STATE_ROW)
        except ResourceNotFoundError:
            return DeltaState(tenant_id=tenant_id)
        try:
            cursors_doc = json.loads(str(row.get("cursors") or "{}"))
            cursors = {
                resource: DeltaCursor.model_validate(cursors_doc[resource])
                for resource in DELTA_RESOURCES
                if isinstance(cursors_doc, dict) and resource in cursors_doc
            }
            return DeltaState(
                tenant_id=tenant_id,
                cursors=cursors,
                pending_service_principals=_ids(row.get("pending_service_principals"), "pending ids"),
                pending_applications=_ids(row.get("pending_applications"), "pending ids"),
                last_baseline_at=_text(row.get("last_baseline_at")),
                resyncs=int(row.get("resyncs") or 0),
            )
        except (ValueError, ValidationError, TypeError):
            # A row this code cannot read is treated as no state: the next round is a baseline, which
            # rebuilds it. Never a reason to stop governing the tenant.
            return DeltaState(tenant_id=tenant_id)

    def commit(self, lease: Lease, state: DeltaState, now: dt.datetime) -> Lease:
        if state.tenant_id != lease.tenant_id:
            raise ValueError("the state and the lease are for different tenants")
        for pending in (state.pending_service_principals, state.pending_applications):
            if len(pending) > MAX_PENDING_IDS:
                raise ValueError(f"at most {MAX_PENDING_IDS} pending ids per resource can be stored")
        partition = check_tenant_key(state.tenant_id)
        stamp = utc_iso(now)
        lock = {
            "PartitionKey": partition,
            "RowKey": LOCK_ROW,
            "status": RUNNING,
            "owner": lease.run_id,
            "claimed_at": stamp,
        }
        row: dict[str, Any] = {
            "PartitionKey": partition,
            "RowKey": STATE_ROW,
            "cursors": json.dumps(
                {resource: cursor.model_dump(mode="json") for resource, cursor in state.cursors.items()},
                sort_keys=True,
            ),
            "pending_service_principals": json.dumps(list(state.pending_service_principals)),
            "pending_applications": json.dumps(list(state.pending_applications)),
            "resyncs": state.resyncs,
            "saved_at": stamp,
            "saved_by": lease.run_id,
        }
        if state.last_baseline_at is not None:
            row["last_baseline_at"] = state.last_baseline_at
        operations: list[Any] = [
            (
                "update",
                lock,
                {
                    "mode": UpdateMode.REPLACE,
                    "etag": lease.etag,
                    "match_condition": MatchConditions.IfNotModified,
                },
            ),
            ("upsert", row, {"mode": UpdateMode.REPLACE}),
        ]
        try:
            results = self._table.submit_transaction(operations)
        except HttpResponseError:  # TableTransactionError among them
            # Decided by the lock row, not by the error's details: a row that moved on without us means
            # another run took over; our own write (its answer lost, the SDK's retry refused) landed;
            # a lease still as we left it means the failure was something else.
            current = self._lock_row(partition)
            if (
                current is not None
                and current.get("owner") == lease.run_id
                and current.get("claimed_at") == stamp
            ):
                return lease.model_copy(update={"etag": current.metadata["etag"], "renewed_at": stamp})
            if current is None or current.metadata["etag"] != lease.etag:
                lost = f"governance discovery of tenant {lease.tenant_id} was taken over; nothing was saved"
                raise LeaseLost(lost) from None
            raise
        etag = results[0].get("etag") if results else None
        if not isinstance(etag, str):
            current = self._lock_row(partition)
            if current is None:
                raise LeaseLost(f"governance discovery of tenant {lease.tenant_id}: the lease row is gone")
            etag = str(current.metadata["etag"])
        return lease.model_copy(update={"etag": etag, "renewed_at": stamp})

    def _lock_row(self, partition: str) -> Any:
        try:
            return self._table.get_entity(partition, LOCK_ROW)
        except ResourceNotFoundError:
            return None


def _text(value: object) -> str | None:
    return None if value is None else str(value)
