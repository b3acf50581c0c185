"""A Table Storage row claimed before a side effect, so a redelivered message runs the effect once.

The first worker creates the row. Another one finds it and either sees the effect done, or sees the
claim held and backs off. A claim older than `stale_after` (its worker died mid-effect) is taken over
with an ETag-conditional replace, so only one of the workers racing for it wins.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError
from azure.data.tables import TableClient, UpdateMode

from shared.clock import parse_utc, utc_iso


class ClaimBusyError(RuntimeError):
    """Another worker holds the claim: raise, and the queue brings the message back later."""


@dataclass(frozen=True)
class Claim:
    state: Literal["claimed", "done"]
    existing: Mapping[str, Any] = field(default_factory=dict)
    """The row that was there before (empty when this worker created it)."""


@dataclass(frozen=True)
class RowClaimer:
    """Claims rows of one table whose `status` says where the side effect stands."""

    table: TableClient
    claim_status: str
    done_statuses: Collection[str]
    stale_after: dt.timedelta

    def claim(
        self,
        partition: str,
        row: str,
        now: dt.datetime,
        *,
        new_fields: Mapping[str, Any] | None = None,
        takeover_fields: Callable[[Mapping[str, Any]], Mapping[str, Any]] = lambda existing: {},
        label: str,
    ) -> Claim:
        entity = {
            "PartitionKey": partition,
            "RowKey": row,
            "status": self.claim_status,
            "claimed_at": utc_iso(now),
        }
        try:
            self.table.create_entity({**entity, **(new_fields or {})})
            return Claim("claimed")
        except ResourceExistsError:
            existing = self.table.get_entity(partition, row)
        if existing.get("status") in self.done_statuses:
            return Claim("done", existing)
        if (
            existing.get("status") == self.claim_status
            and now - parse_utc(existing["claimed_at"]) < self.stale_after
        ):
            raise ClaimBusyError(f"{label} is being handled by another worker; retry later")
        try:
            self.table.update_entity(
                {**entity, **takeover_fields(existing)},
                mode=UpdateMode.REPLACE,
                etag=existing.metadata["etag"],
                match_condition=MatchConditions.IfNotModified,
            )
        except ResourceModifiedError as exc:
            raise ClaimBusyError(f"{label} was claimed concurrently; retry later") from exc
        return Claim("claimed", existing)
