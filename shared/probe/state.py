"""The debouncer as a pure function: (state, changes, now, windows) -> (new state, trigger or None).

idle --change--> armed (deadline = newest change + quiet window + audit latency)
armed --change--> armed (deadline extended)
armed --deadline passed--> cooldown (until now + cooldown), emits a trigger at T = now
cooldown --change--> cooldown, pending (the change is buffered into the next burst)
cooldown --ended--> idle, or armed if pending (deadline = the later of now + quiet and the burst's)

Times are activity times (when a change was made), not when its audit record became visible.

- A backup started at T captures every change made before T, however late its record arrives. So the
  trigger sets `covered_through` = T, and a change made at or before it never re-arms; only changes made
  after T start the next burst.
- A record can become visible up to `audit_latency` after its change. Waiting quiet + latency after the
  newest change seen means every change of the burst (each less than quiet after the one before) has
  been seen when the trigger fires, so late records never split a burst in two.
- A change stamped later than now + `clock_skew` is taken as made at now + skew, and keeps that time
  when it is delivered again (year 9999 included).
- Overlapping poll windows deliver a record many times: the burst remembers up to MAX_BURST_IDS record
  ids (8-byte digests) to count each once. Past that it forgets the oldest and counts no record at or
  before the newest one forgotten, and the summary says `count_exact: false`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import struct
from collections import Counter
from dataclasses import dataclass
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.platform.clock import parse_utc, utc_iso
from shared.platform.ids import is_scope_name, is_trigger_id

MAX_BURST_IDS = 4_000  # 16 bytes each: 64,000 bytes, within Table Storage's 64 KiB per binary property
MAX_CLAMPED_IDS = 256  # future-stamped records remembered across bursts, with the time they were given
TOP_OPERATIONS = 5
MAX_ACTORS = 25
_ENTRY = struct.Struct(">q8s")  # effective activity time (epoch ms), blake2b-64 of the record id
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


class Phase(StrEnum):
    IDLE = "idle"
    ARMED = "armed"
    COOLDOWN = "cooldown"


@dataclass(frozen=True)
class ProbeWindows:
    """The debouncer's settings. The app passes PROBE_AUDIT_LATENCY_MINUTES and PROBE_CLOCK_SKEW_SECONDS."""

    quiet: dt.timedelta
    cooldown: dt.timedelta
    audit_latency: dt.timedelta = dt.timedelta(0)  # the longest an audit record may take to become visible
    clock_skew: dt.timedelta = dt.timedelta(minutes=5)  # how far in the future a change may be stamped

    @property
    def settle(self) -> dt.timedelta:
        """How long after the newest change of a burst its trigger is due."""
        return self.quiet + self.audit_latency


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
    count_exact: bool = True  # false once the burst outgrew the ids it remembers (MAX_BURST_IDS)


class Trigger(BaseModel):
    """The message on the backup-trigger queue.

    The scope and trigger id are the TriggerLog row's keys, claimed before Azure DevOps is called: a
    message whose id is not "{scope}:{token}" of the app's grammar (shared.platform.ids.TRIGGER_ID) is
    refused when it is decoded, so it can neither address another row nor queue a pipeline run.
    """

    trigger_id: str
    scope: str
    reason: str
    summary: ChangeSummary
    checked_at: str

    @model_validator(mode="after")
    def _ids_of_the_app(self) -> Trigger:
        if not is_scope_name(self.scope):
            raise ValueError("scope is not a drift scope name")
        if not is_trigger_id(self.trigger_id, self.scope):
            raise ValueError("trigger_id is not '{scope}:{token}' for this scope")
        return self


class ProbeState(BaseModel):
    model_config = ConfigDict(ser_json_bytes="base64", val_json_bytes="base64")

    scope: str
    phase: Phase = Phase.IDLE
    quiet_deadline: str | None = None
    cooldown_until: str | None = None
    pending: bool = False
    burst_count: int = 0
    burst_count_exact: bool = True
    burst_first_at: str | None = None
    burst_last_at: str | None = None
    burst_seen: bytes = b""  # the burst's remembered record ids (_ENTRY each)
    burst_forgotten_through: str | None = None  # the newest change whose id the burst forgot
    burst_actors: list[str] = Field(default_factory=list)
    burst_operations: dict[str, int] = Field(default_factory=dict)
    burst_services: list[str] = Field(default_factory=list)
    clamped_seen: bytes = b""  # future-stamped records and the time they were given (_ENTRY each)
    covered_through: str | None = None  # the last trigger's time: every change made by then is backed up
    last_trigger_id: str | None = None
    last_triggered_at: str | None = None
    triggers_emitted: int = 0
    outbox: str | None = None  # a trigger committed but not yet queued (JSON)
    outbox_claimed_at: str | None = None  # when a probe took the outbox to queue it
    updated_at: str | None = None


def trigger_id(scope: str, first_change_at: str, last_change_at: str) -> str:
    digest = hashlib.sha256(f"{scope}|{first_change_at}|{last_change_at}".encode()).hexdigest()[:24]
    return f"{scope}:{digest}"


def _digest(event_id: str) -> bytes:
    return hashlib.blake2b(event_id.encode(), digest_size=8).digest()


def _ms(value: dt.datetime) -> int:
    return (value - _EPOCH) // dt.timedelta(milliseconds=1)


def _from_ms(value: int) -> dt.datetime:
    return _EPOCH + dt.timedelta(milliseconds=value)


def _unpack(packed: bytes) -> list[tuple[int, bytes]]:
    return list(_ENTRY.iter_unpack(packed[: len(packed) - len(packed) % _ENTRY.size]))


def _pack(entries: list[tuple[int, bytes]]) -> bytes:
    return b"".join(_ENTRY.pack(at, digest) for at, digest in entries)


@dataclass(frozen=True)
class _Fresh:
    change: Change
    at: dt.datetime  # effective activity time (clamped)
    digest: bytes


def _fresh_changes(
    state: ProbeState, changes: list[Change], now: dt.datetime, windows: ProbeWindows
) -> tuple[list[_Fresh], bytes]:
    """Changes not yet counted and not covered by the last trigger, and the updated clamped-id memory."""
    latest_allowed = now + windows.clock_skew
    clamped = dict((digest, at) for at, digest in _unpack(state.clamped_seen))
    clamped_added: list[tuple[int, bytes]] = []
    seen = {digest for _, digest in _unpack(state.burst_seen)}
    covered = parse_utc(state.covered_through) if state.covered_through else None
    forgotten = parse_utc(state.burst_forgotten_through) if state.burst_forgotten_through else None
    fresh: dict[bytes, _Fresh] = {}
    for change in changes:
        digest = _digest(change.event_id)
        if digest in seen or digest in fresh:
            continue
        if digest in clamped:
            at = _from_ms(clamped[digest])
        else:
            try:
                stamped = parse_utc(change.at)
            except ValueError:
                stamped = latest_allowed + dt.timedelta(milliseconds=1)  # unreadable: treat as far future
            at = min(stamped, latest_allowed)
            if stamped > latest_allowed:
                clamped[digest] = _ms(at)
                clamped_added.append((_ms(at), digest))
        if covered is not None and at <= covered:
            continue  # made before the last trigger: that backup has it
        if forgotten is not None and at <= forgotten:
            continue  # as old as ids the burst forgot: counting it again could double count
        fresh[digest] = _Fresh(change, at, digest)
    memory = state.clamped_seen
    if clamped_added:
        memory = _pack((_unpack(state.clamped_seen) + clamped_added)[-MAX_CLAMPED_IDS:])
    return sorted(fresh.values(), key=lambda f: f.at), memory


def _absorb(state: ProbeState, fresh: list[_Fresh]) -> ProbeState:
    """Add new changes to the burst being collected (count, times, ids, actors, operations, services)."""
    entries = _unpack(state.burst_seen) + [(_ms(f.at), f.digest) for f in fresh]
    forgotten_through, exact = state.burst_forgotten_through, state.burst_count_exact
    if len(entries) > MAX_BURST_IDS:
        entries.sort()
        dropped, entries = entries[: len(entries) - MAX_BURST_IDS], entries[-MAX_BURST_IDS:]
        forgotten_through, exact = utc_iso(_from_ms(dropped[-1][0])), False
    actors = list(state.burst_actors)
    operations = Counter(state.burst_operations)
    services = list(state.burst_services)
    first = parse_utc(state.burst_first_at) if state.burst_first_at else None
    last = parse_utc(state.burst_last_at) if state.burst_last_at else None
    for item in fresh:
        change = item.change
        if change.actor and change.actor not in actors and len(actors) < MAX_ACTORS:
            actors.append(change.actor)
        operations[change.operation] += 1
        if change.service not in services:
            services.append(change.service)
        first = item.at if first is None or item.at < first else first
        last = item.at if last is None or item.at > last else last
    return state.model_copy(
        update={
            "burst_count": state.burst_count + len(fresh),
            "burst_count_exact": exact,
            "burst_first_at": utc_iso(first) if first else None,
            "burst_last_at": utc_iso(last) if last else None,
            "burst_seen": _pack(entries),
            "burst_forgotten_through": forgotten_through,
            "burst_actors": actors,
            "burst_operations": dict(operations),
            "burst_services": services,
        }
    )


def _emit(state: ProbeState, now: dt.datetime, windows: ProbeWindows) -> tuple[ProbeState, Trigger]:
    first = state.burst_first_at or utc_iso(now)
    last = state.burst_last_at or first
    trigger = Trigger(
        trigger_id=trigger_id(state.scope, first, last),
        scope=state.scope,
        reason=f"{state.burst_count} configuration change(s) settled for {windows.quiet}",
        summary=ChangeSummary(
            count=state.burst_count,
            first_change_at=first,
            last_change_at=last,
            actors=sorted(state.burst_actors),
            top_operations=Counter(state.burst_operations).most_common(TOP_OPERATIONS),
            services=sorted(state.burst_services),
            count_exact=state.burst_count_exact,
        ),
        checked_at=utc_iso(now),
    )
    covered = utc_iso(now)
    if state.covered_through is not None and parse_utc(state.covered_through) > now:
        covered = state.covered_through  # a racing probe with a later clock covered more already
    emitted = state.model_copy(
        update={
            "phase": Phase.COOLDOWN,
            "quiet_deadline": None,
            "cooldown_until": utc_iso(now + windows.cooldown),
            "pending": False,
            "covered_through": covered,
            "last_trigger_id": trigger.trigger_id,
            "last_triggered_at": utc_iso(now),
            "triggers_emitted": state.triggers_emitted + 1,
            "outbox": trigger.model_dump_json(),
            "outbox_claimed_at": utc_iso(now),
            "burst_count": 0,
            "burst_count_exact": True,
            "burst_first_at": None,
            "burst_last_at": None,
            "burst_seen": b"",
            "burst_forgotten_through": None,
            "burst_actors": [],
            "burst_operations": {},
            "burst_services": [],
        }
    )
    return emitted, trigger


def step(
    state: ProbeState, changes: list[Change], now: dt.datetime, windows: ProbeWindows
) -> tuple[ProbeState, Trigger | None]:
    fresh, clamped = _fresh_changes(state, changes, now, windows)
    updated = state if clamped == state.clamped_seen else state.model_copy(update={"clamped_seen": clamped})

    if (
        updated.phase == Phase.COOLDOWN
        and updated.cooldown_until
        and now >= parse_utc(updated.cooldown_until)
    ):
        if updated.pending:
            deadline = now + windows.quiet
            if updated.burst_last_at:
                deadline = max(deadline, parse_utc(updated.burst_last_at) + windows.settle)
            updated = updated.model_copy(
                update={
                    "phase": Phase.ARMED,
                    "pending": False,
                    "cooldown_until": None,
                    "quiet_deadline": utc_iso(deadline),
                }
            )
        else:
            updated = updated.model_copy(update={"phase": Phase.IDLE, "cooldown_until": None})

    if fresh:
        updated = _absorb(updated, fresh)
        if updated.phase == Phase.COOLDOWN:
            updated = updated.model_copy(update={"pending": True})
        else:
            deadline = fresh[-1].at + windows.settle
            if updated.phase == Phase.ARMED and updated.quiet_deadline:
                deadline = max(deadline, parse_utc(updated.quiet_deadline))
            updated = updated.model_copy(update={"phase": Phase.ARMED, "quiet_deadline": utc_iso(deadline)})

    trigger = None
    if updated.phase == Phase.ARMED and updated.quiet_deadline and now >= parse_utc(updated.quiet_deadline):
        # An earlier trigger still in the outbox (its probe died before queuing it) is replaced: this
        # backup, taken later, covers its changes too.
        updated, trigger = _emit(updated, now, windows)
    if updated is not state:
        updated = updated.model_copy(update={"updated_at": utc_iso(now)})
    return updated, trigger
