"""A Table Storage row claimed before a side effect, so a redelivered message runs the effect once.

The first worker creates the row. Another one finds it and either sees the effect done, or sees the
claim held and backs off. A claim older than its staleness (its worker died mid-effect) is taken over
with an ETag-conditional replace, so only one of the workers racing for it wins.

With an `owner` token (one per attempt) two more things hold:
- the storage SDK retries a request whose answer was lost; a create or conditional replace that did
  reach the table then comes back as 409/412, and the row carrying this owner is recognised as ours;
- `advance()` moves the claim on (say `claimed` -> `sending`) only if nobody took it over since: the
  check a worker makes right before the side effect, so a worker that was taken over never runs it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

from shared.platform.clock import parse_utc, utc_iso


class ClaimBusyError(RuntimeError):
    """Another worker holds the claim: raise, and the queue brings the message back later."""

    def __init__(self, message: str, held: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.held: dict[str, Any] = dict(held or {})
        """The row as this worker found it (empty when unknown)."""


class ClaimLostError(RuntimeError):
    """Another worker took the claim over: the side effect must not run here."""


@dataclass(frozen=True)
class Claim:
    state: Literal["claimed", "done"]
    existing: Mapping[str, Any] = field(default_factory=dict)
    """The row that was there before (empty when this worker created it)."""
    etag: str | None = None
    """The row's ETag as this worker left it (a "claimed" claim), for `advance()`."""


@dataclass(frozen=True)
class RowClaimer:
    """Claims rows of one table whose `status` says where the side effect stands.

    `claim_status` and every status in `held_statuses` hold the row: it is busy until `claimed_at` is
    older than that status's staleness (`stale_after` for `claim_status`). `done_statuses` are final.
    Any other status (a failed attempt that released the row) is taken over at once.
    """

    table: TableClient
    claim_status: str
    done_statuses: Collection[str]
    stale_after: dt.timedelta
    held_statuses: Mapping[str, dt.timedelta] = field(default_factory=dict)

    def staleness(self, status: str | None) -> dt.timedelta | None:
        """How long a row in `status` holds the claim; None when it does not hold it."""
        if status == self.claim_status:
            return self.stale_after
        return self.held_statuses.get(status or "")

    def claim(
        self,
        partition: str,
        row: str,
        now: dt.datetime,
        *,
        new_fields: Mapping[str, Any] | None = None,
        takeover_fields: Callable[[Mapping[str, Any]], Mapping[str, Any]] = lambda existing: {},
        label: str,
        owner: str | None = None,
    ) -> Claim:
        entity: dict[str, Any] = {
            "PartitionKey": partition,
            "RowKey": row,
            "status": self.claim_status,
            "claimed_at": utc_iso(now),
        }
        if owner is not None:
            entity["owner"] = owner
        try:
            created = self.table.create_entity({**entity, **(new_fields or {})})
            return Claim("claimed", etag=created.get("etag"))
        except ResourceExistsError:
            existing = self.table.get_entity(partition, row)
        if owner is not None and existing.get("owner") == owner:
            return Claim("claimed", etag=existing.metadata["etag"])  # our create, retried by the SDK
        if existing.get("status") in self.done_statuses:
            return Claim("done", existing)
        holds_for = self.staleness(existing.get("status"))
        if holds_for is not None and now - parse_utc(existing["claimed_at"]) < holds_for:
            raise ClaimBusyError(f"{label} is being handled by another worker; retry later", existing)
        try:
            replaced = self.table.update_entity(
                {**entity, **takeover_fields(existing)},
                mode=UpdateMode.REPLACE,
                etag=existing.metadata["etag"],
                match_condition=MatchConditions.IfNotModified,
            )
        except ResourceModifiedError as exc:
            if owner is not None:
                current = self.table.get_entity(partition, row)
                if current.get("owner") == owner and current.get("claimed_at") == entity["claimed_at"]:
                    return Claim("claimed", existing, current.metadata["etag"])  # our replace, retried
            raise ClaimBusyError(f"{label} was claimed concurrently; retry later", existing) from exc
        return Claim("claimed", existing, replaced.get("etag"))

    def advance(
        self,
        partition: str,
        row: str,
        now: dt.datetime,
        *,
        etag: str,
        owner: str,
        fields: Mapping[str, Any],
        label: str,
    ) -> str:
        """Replace the row with `fields` (and `owner`, `claimed_at` = now) if it is still as this owner
        left it (`etag`); return the new ETag. Raises ClaimLostError when another worker took it over."""
        entity = {
            **fields,
            "PartitionKey": partition,
            "RowKey": row,
            "owner": owner,
            "claimed_at": utc_iso(now),
        }
        try:
            replaced = self.table.update_entity(
                entity, mode=UpdateMode.REPLACE, etag=etag, match_condition=MatchConditions.IfNotModified
            )
        except ResourceNotFoundError as exc:
            raise ClaimLostError(f"{label}: the claim row is gone") from exc
        except ResourceModifiedError as exc:
            current = self.table.get_entity(partition, row)
            if (
                current.get("owner") == owner
                and current.get("claimed_at") == entity["claimed_at"]
                and current.get("status") == entity.get("status")
            ):
                return str(current.metadata["etag"])  # our write landed; the SDK's retry was refused
            raise ClaimLostError(
                f"{label} was taken over by another worker (now {current.get('status')!r})"
            ) from exc
        return str(replaced["etag"])
