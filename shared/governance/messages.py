"""The queue messages of service principal governance, and the ids they carry.

Three units of work, one queue each (the seed's Discovery, Evaluate and Update):

- `DiscoveryRequest` asks for one delta discovery of a tenant (a timer, the Admin route's full seed, or
  a directory audit event). Its consumer queues one `EvaluateObject` per changed service principal.
- `EvaluateObject` asks for one service principal to be evaluated. It carries the object as discovery
  read it (`snapshot`, a `GovernedObject` as `model_dump(mode="json")`), or only its id, when the
  consumer is to read it from Graph first (an evaluation queued from a directory audit event, or a
  snapshot too large for a queue message: `EvaluateObject.queue_text`).
- `UpdateNotes` asks for one `PATCH /servicePrincipals/{id}` of `notes`, planned by an evaluation in
  `GOVERNANCE_UPDATE_MODE=Update` (shared.governance.service).

Every message is a pydantic model with `extra="forbid"`: a message the app did not write is refused whole
(ValidationError) and ends in the poison queue. Ids are deterministic, so a redelivered message names the
same evaluation, and the work it does is recognised as done:

- evaluation ids `ev-` + 32 hex digits: `evaluation_id(tenant, object_id, cause)`. The cause is what
  made the evaluation happen: the discovery activity (one per sweep), or the audit event's id. Two
  deliveries of one message share it; a later sweep or event gets a new one;
- activity ids `act-{kind}-` + 32 hex digits: `activity_id(kind, tenant, key)`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from shared.governance.model import GovernedObject, Guid
from shared.governance.notes import MAX_NOTES_CHARS
from shared.platform.clock import parse_utc, utc_iso
from shared.platform.ids import EVALUATION_ID
from shared.platform.ids import GOVERNANCE_ACTIVITY_ID as ACTIVITY_ID

MESSAGE_VERSION: Literal[1] = 1
# A tenant id is a Cosmos DB partition key and a Table PartitionKey: letters, digits, '.', '_', '-'.
TENANT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
# A queue message is at most 64 KiB; base64 (QUEUE_MESSAGE_ENCODING) makes 4 characters of 3 bytes.
MAX_QUEUE_MESSAGE_TEXT = 48_000

ActivityKind = Literal["discovery", "evaluation", "update"]
Trigger = Literal["timer", "request", "event", "discovery", "manual"]
"""Why a unit of work runs: the discovery timer, the Admin's request (full seed), a directory audit
event, a discovery that found the object changed, or a call from code or a test."""


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()


def evaluation_id(tenant_id: str, object_id: str, cause: str) -> str:
    """The id of one evaluation of one object: the same for every delivery of the message that asks for
    it. `cause` names what asked (a discovery activity id, an audit event id)."""
    return f"ev-{_digest(tenant_id, object_id.lower(), cause)[:32]}"


def activity_id(kind: ActivityKind, tenant_id: str, key: str) -> str:
    """The id of one activity (a discovery run, an evaluation or update batch) from a key its caller
    knows on every delivery: the discovery request's id, the discovery activity for its batches."""
    return f"act-{kind}-{_digest(kind, tenant_id, key)[:32]}"


def _pattern(pattern: re.Pattern[str], what: str) -> AfterValidator:
    def check(value: str) -> str:
        if pattern.fullmatch(value) is None:
            raise ValueError(f"not {what}")
        return value

    return AfterValidator(check)


def _utc_text(value: object) -> object:
    """An aware datetime or an ISO-8601 string, as UTC ISO-8601 text (`...Z`, milliseconds)."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise ValueError("a time must carry its UTC offset")
        return utc_iso(value)
    if isinstance(value, str):
        try:
            return utc_iso(parse_utc(value))
        except ValueError:
            raise ValueError(f"{value[:40]!r} is not an ISO-8601 time") from None
    raise ValueError("a time is an ISO-8601 string")


TenantId = Annotated[str, StringConstraints(max_length=100), _pattern(TENANT_ID, "a tenant id")]
EvaluationId = Annotated[str, _pattern(EVALUATION_ID, "an evaluation id (ev- and 32 hex digits)")]
ActivityId = Annotated[str, _pattern(ACTIVITY_ID, "an activity id (act-{kind}- and 32 hex digits)")]
UtcTime = Annotated[str, BeforeValidator(_utc_text)]
"""A UTC ISO-8601 time as stored and queued: `2026-12-07T09:30:00.000Z` (sorts as it reads)."""
NotesValue = Annotated[str, StringConstraints(min_length=1, max_length=MAX_NOTES_CHARS)]


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1] = MESSAGE_VERSION


class DiscoveryRequest(_Message):
    """One delta discovery of a tenant. `full_seed` discards the stored deltaLink and reads a new
    baseline (deleted service principals are ignored, as on a first run)."""

    tenant_id: TenantId
    activity_id: ActivityId
    trigger: Trigger
    full_seed: bool = False
    requested_at: UtcTime
    requested_by: Annotated[str, StringConstraints(max_length=200)] | None = None


class EvaluateObject(_Message):
    """Evaluate one service principal. `snapshot` is the object as read at `observed_at`; without it
    the consumer reads the object first (and takes that read's time as `observed_at`). An evaluation
    whose `observed_at` is older than the object's last evaluated read is skipped as stale."""

    tenant_id: TenantId
    object_id: Guid
    evaluation_id: EvaluationId
    batch_id: ActivityId | None = None
    trigger: Trigger
    cause: Annotated[str, StringConstraints(max_length=200)] | None = None
    observed_at: UtcTime
    snapshot: GovernedObject | None = None
    baseline: bool = False
    """Read by a full listing (a baseline, a resync or the daily sweep): an object evaluated for the
    first time then was already there, so its findings are recorded without alerting."""

    def queue_text(self, limit: int = MAX_QUEUE_MESSAGE_TEXT) -> str:
        """The message as queue text; without its snapshot when that would pass `limit` characters (the
        consumer then reads the object from Graph)."""
        text = self.model_dump_json()
        if len(text) <= limit or self.snapshot is None:
            return text
        return self.model_copy(update={"snapshot": None}).model_dump_json()

    @model_validator(mode="after")
    def _snapshot_is_the_object(self) -> EvaluateObject:
        if self.snapshot is not None and self.snapshot.id != self.object_id:
            raise ValueError(f"the snapshot is service principal {self.snapshot.id}, not {self.object_id}")
        return self


class UpdateNotes(_Message):
    """Write `after` to the service principal's notes, once for this evaluation. `before` is the value
    the evaluation saw. The URL is never carried: the update builds it from the app's own Graph base."""

    tenant_id: TenantId
    object_id: Guid
    evaluation_id: EvaluationId
    batch_id: ActivityId | None = None
    trigger: Trigger = "discovery"
    before: Annotated[str, StringConstraints(max_length=4 * MAX_NOTES_CHARS)] | None = None
    after: NotesValue
    source: Literal["last-known-good", "owners"]
    planned_at: UtcTime
    reason: Annotated[str, StringConstraints(max_length=500)] = Field(default="")
