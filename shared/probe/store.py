"""Probe state in Table `ProbeState` (PartitionKey = scope, RowKey = "state"), under ETag concurrency.

A transition that emits a trigger commits the trigger into the state's outbox in the same conditional
write, with the outbox claimed by that writer. Only the writer whose ETag matched queues it at once, then
clears the outbox. A probe that finds an outbox whose claim is older than OUTBOX_CLAIM_TIMEOUT (its writer
died or stalled between commit and queue) takes the claim over with another conditional write and queues
it again: a trigger is never lost, and racing probes queue it once unless a writer stalls that long.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from typing import Any, Protocol

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableEntity

from shared.platform.clock import parse_utc, utc_iso
from shared.platform.tables import WritableTable, write_unchanged
from shared.probe.state import Change, ProbeState, ProbeWindows, Trigger, step

ROW_KEY = "state"
MAX_CONFLICT_RETRIES = 25
OUTBOX_CLAIM_TIMEOUT = dt.timedelta(minutes=2)
_JSON_FIELDS = ("burst_actors", "burst_operations", "burst_services")
_BINARY_FIELDS = ("burst_seen", "clamped_seen")


def _to_entity(state: ProbeState) -> dict[str, Any]:
    entity: dict[str, Any] = {"PartitionKey": state.scope, "RowKey": ROW_KEY}
    dumped = state.model_dump(mode="json", exclude={"scope", *_BINARY_FIELDS})
    for name, value in dumped.items():
        if name in _JSON_FIELDS:
            entity[name] = json.dumps(value, ensure_ascii=False)
        elif value is not None:
            entity[name] = value
    for name in _BINARY_FIELDS:
        if value := getattr(state, name):
            entity[name] = value  # Edm.Binary: up to 64 KiB
    return entity


def _from_entity(entity: dict[str, Any]) -> ProbeState:
    data = {k: v for k, v in entity.items() if k in ProbeState.model_fields and k != "scope"}
    for name in _JSON_FIELDS:
        if isinstance(data.get(name), str):
            data[name] = json.loads(data[name])
    return ProbeState(scope=entity["PartitionKey"], **data)


class StateTable(WritableTable, Protocol):
    """The part of azure.data.tables.TableClient this store uses (tests pass an in-memory table)."""

    def get_entity(self, partition_key: str, row_key: str) -> TableEntity: ...

    def query_entities(self, query_filter: str) -> Iterable[TableEntity]: ...


class ProbeStateStore:
    def __init__(self, table: StateTable) -> None:
        self._table = table

    def read(self, scope: str) -> tuple[ProbeState, str | None]:
        try:
            entity = self._table.get_entity(scope, ROW_KEY)
        except ResourceNotFoundError:
            return ProbeState(scope=scope), None
        return _from_entity(entity), entity.metadata["etag"]

    def all(self) -> list[ProbeState]:
        return [_from_entity(e) for e in self._table.query_entities(f"RowKey eq '{ROW_KEY}'")]

    def _write(self, state: ProbeState, etag: str | None) -> bool:
        return write_unchanged(self._table, _to_entity(state), etag)

    def transition(
        self, scope: str, changes: list[Change], now: dt.datetime, windows: ProbeWindows
    ) -> tuple[ProbeState, Trigger | None]:
        """Apply one step under optimistic concurrency; only a committed step returns its trigger."""
        for _ in range(MAX_CONFLICT_RETRIES):
            state, etag = self.read(scope)
            new_state, trigger = step(state, changes, now, windows)
            if new_state == state:
                return state, None
            if self._write(new_state, etag):
                return new_state, trigger
        raise RuntimeError(f"probe state {scope}: too many concurrent updates")

    def claim_stale_outbox(self, scope: str, now: dt.datetime) -> Trigger | None:
        """Take over an outbox whose claim is older than OUTBOX_CLAIM_TIMEOUT; None if there is none to
        take or another probe took it first."""
        state, etag = self.read(scope)
        if not state.outbox or etag is None:
            return None
        claimed_at = parse_utc(state.outbox_claimed_at) if state.outbox_claimed_at else None
        if claimed_at is not None and now - claimed_at < OUTBOX_CLAIM_TIMEOUT:
            return None
        if not self._write(state.model_copy(update={"outbox_claimed_at": utc_iso(now)}), etag):
            return None
        return Trigger.model_validate_json(state.outbox)

    def clear_outbox(self, scope: str, trigger_id: str) -> None:
        for _ in range(MAX_CONFLICT_RETRIES):
            state, etag = self.read(scope)
            if not state.outbox or Trigger.model_validate_json(state.outbox).trigger_id != trigger_id:
                return
            cleared = state.model_copy(update={"outbox": None, "outbox_claimed_at": None})
            if self._write(cleared, etag):
                return
        raise RuntimeError(f"probe state {scope}: could not clear the outbox")
