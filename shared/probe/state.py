"""The debouncer as a pure function: (state, changes, now, settings) -> (new state, trigger or None).

idle --change--> armed (deadline = last change + quiet window)
armed --newer change--> armed (deadline extended)
armed --deadline passed--> cooldown (until now + cooldown), emits a trigger
cooldown --change--> cooldown, pending (the change is buffered)
cooldown --ended--> idle, or armed if pending (deadline = now + quiet window)

A change no newer than the newest change covered by the last trigger never re-arms: audit latency and
overlapping poll windows deliver old changes again.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import Counter
from dataclasses import dataclass
from enum import StrEnum

from pydantic import BaseModel, Field

from shared.clock import parse_utc, utc_iso

MAX_BURST_IDS = 300
TOP_OPERATIONS = 5
MAX_ACTORS = 25


class Phase(StrEnum):
    IDLE = "idle"
    ARMED = "armed"
    COOLDOWN = "cooldown"


@dataclass(frozen=True)
class ProbeWindows:
    quiet: dt.timedelta
    cooldown: dt.timedelta


class Change(BaseModel):
    """One configuration change, from a normalized audit event."""

    event_id: str
    at: str
    service: str
    operation: str
    actor: str | None = None


class ChangeSummary(BaseModel):
    count: int
    first_change_at: str
    last_change_at: str
    actors: list[str]
    top_operations: list[tuple[str, int]]
    services: list[str]


class Trigger(BaseModel):
    """The message on the backup-trigger queue."""

    trigger_id: str
    scope: str
    reason: str
    summary: ChangeSummary
    checked_at: str


class ProbeState(BaseModel):
    scope: str
    phase: Phase = Phase.IDLE
    quiet_deadline: str | None = None
    cooldown_until: str | None = None
    pending: bool = False
    burst_count: int = 0
    burst_first_at: str | None = None
    burst_last_at: str | None = None
    burst_ids: list[str] = Field(default_factory=list)
    burst_actors: list[str] = Field(default_factory=list)
    burst_operations: dict[str, int] = Field(default_factory=dict)
    burst_services: list[str] = Field(default_factory=list)
    covered_through: str | None = None
    last_trigger_id: str | None = None
    last_triggered_at: str | None = None
    triggers_emitted: int = 0
    outbox: str | None = None  # a trigger committed but not yet queued (JSON)
    updated_at: str | None = None


def trigger_id(scope: str, first_change_at: str, last_change_at: str) -> str:
    digest = hashlib.sha256(f"{scope}|{first_change_at}|{last_change_at}".encode()).hexdigest()[:24]
    return f"{scope}:{digest}"


def _absorb(state: ProbeState, changes: list[Change]) -> ProbeState:
    """Add new changes to the burst being collected (count, times, actors, operations, services)."""
    ids = list(state.burst_ids)
    actors = list(state.burst_actors)
    operations = Counter(state.burst_operations)
    services = list(state.burst_services)
    count = state.burst_count
    first, last = state.burst_first_at, state.burst_last_at
    for change in changes:
        count += 1
        if len(ids) < MAX_BURST_IDS:
            ids.append(change.event_id)
        if change.actor and change.actor not in actors and len(actors) < MAX_ACTORS:
            actors.append(change.actor)
        operations[change.operation] += 1
        if change.service not in services:
            services.append(change.service)
        first = change.at if first is None or change.at < first else first
        last = change.at if last is None or change.at > last else last
    return state.model_copy(
        update={
            "burst_count": count,
            "burst_first_at": first,
            "burst_last_at": last,
            "burst_ids": ids,
            "burst_actors": actors,
            "burst_operations": dict(operations),
            "burst_services": services,
        }
    )


def _new_changes(state: ProbeState, changes: list[Change]) -> list[Change]:
    seen = set(state.burst_ids)
    fresh: dict[str, Change] = {}
    for change in changes:
        if state.covered_through is not None and parse_utc(change.at) <= parse_utc(state.covered_through):
            continue
        if change.event_id in seen or change.event_id in fresh:
            continue
        fresh[change.event_id] = change
    return sorted(fresh.values(), key=lambda c: c.at)


def step(
    state: ProbeState, changes: list[Change], now: dt.datetime, windows: ProbeWindows
) -> tuple[ProbeState, Trigger | None]:
    new = _new_changes(state, changes)
    updated = state

    if (
        updated.phase == Phase.COOLDOWN
        and updated.cooldown_until
        and now >= parse_utc(updated.cooldown_until)
    ):
        if updated.pending:
            updated = updated.model_copy(
                update={
                    "phase": Phase.ARMED,
                    "pending": False,
                    "cooldown_until": None,
                    "quiet_deadline": utc_iso(now + windows.quiet),
                }
            )
        else:
            updated = updated.model_copy(update={"phase": Phase.IDLE, "cooldown_until": None})

    if new:
        updated = _absorb(updated, new)
        newest = parse_utc(max(c.at for c in new))
        if updated.phase == Phase.COOLDOWN:
            updated = updated.model_copy(update={"pending": True})
        else:
            deadline = newest + windows.quiet
            if updated.phase == Phase.ARMED and updated.quiet_deadline:
                deadline = max(deadline, parse_utc(updated.quiet_deadline))
            updated = updated.model_copy(update={"phase": Phase.ARMED, "quiet_deadline": utc_iso(deadline)})

    trigger = None
    if updated.phase == Phase.ARMED and updated.quiet_deadline and now >= parse_utc(updated.quiet_deadline):
        first = updated.burst_first_at or utc_iso(now)
        last = updated.burst_last_at or first
        top = Counter(updated.burst_operations).most_common(TOP_OPERATIONS)
        trigger = Trigger(
            trigger_id=trigger_id(updated.scope, first, last),
            scope=updated.scope,
            reason=f"{updated.burst_count} configuration change(s) settled for {windows.quiet}",
            summary=ChangeSummary(
                count=updated.burst_count,
                first_change_at=first,
                last_change_at=last,
                actors=sorted(updated.burst_actors),
                top_operations=top,
                services=sorted(updated.burst_services),
            ),
            checked_at=utc_iso(now),
        )
        covered = (
            last
            if updated.covered_through is None or last > updated.covered_through
            else updated.covered_through
        )
        updated = updated.model_copy(
            update={
                "phase": Phase.COOLDOWN,
                "quiet_deadline": None,
                "cooldown_until": utc_iso(now + windows.cooldown),
                "pending": False,
                "covered_through": covered,
                "last_trigger_id": trigger.trigger_id,
                "last_triggered_at": utc_iso(now),
                "triggers_emitted": updated.triggers_emitted + 1,
                "outbox": trigger.model_dump_json(),
                "burst_count": 0,
                "burst_first_at": None,
                "burst_last_at": None,
                "burst_ids": [],
                "burst_actors": [],
                "burst_operations": {},
                "burst_services": [],
            }
        )
    if updated is not state:
        updated = updated.model_copy(update={"updated_at": utc_iso(now)})
    return updated, trigger
