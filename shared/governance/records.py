"""The documents governance keeps, one Cosmos DB container `governance`, partition key `pk` = tenant id.

| `type` | id | one per | holds |
|---|---|---|---|
| `object` | `obj-{object id}` | service principal | last evaluation, result, last-known-good, remediation |
| `finding` | `fnd-` + 40 hex | object, validator, subject | severity, evidence, state, first/last seen |
| `exception` | `exc-` + 40 hex | object, validator | a risk accepted until `expires_at`, by whom, why |
| `activity` | `act-{kind}-` + 32 hex | discovery, evaluation or update batch | trigger, times, counts, lock |
| `activity-counts` | `{activity id}-s{0..7}` | shard of an activity | counts the workers of a batch add |

Every document of one object carries `object_id`, so one single-partition query reads all an evaluation
needs. Times are UTC ISO-8601 text with milliseconds and a `Z` (shared.platform.clock.utc_iso): they
compare as they sort, so `ORDER BY c.last_seen DESC` is time order.

Finding states: `open` (seen in the last evaluation), `accepted` (seen, and an active exception covers its
object and validator), `resolved` (no longer seen: the object was fixed, or its validator switched off or
out of scope). `first_seen` is the first time ever; `opened_at` the start of the current open or accepted
stretch (a resolved finding seen again opens a new stretch, and is "opened" again for alerting).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, StringConstraints

from shared.governance.messages import ActivityKind, EvaluationId, Trigger, UtcTime
from shared.governance.model import DirectoryPrincipal, GovernedObject, OwnerStanding
from shared.platform.clock import parse_utc, utc_iso
from shared.rules.model import Severity

FindingState = Literal["open", "resolved", "accepted"]
EvaluationResult = Literal["pass", "fail"]
UpdateMode = Literal["ReportOnly", "Update"]
RemediationStatus = Literal[
    "reported",  # ReportOnly: the PATCH that would have been sent is recorded
    "queued",  # Update: an UpdateNotes message was handed to the update queue
    "patched",  # Update: Graph accepted the PATCH
    "unchanged",  # the planned value is the current notes: nothing to send
    "cannot-remediate",  # no last-known-good that still passes and no accountable owner with a UPN
    "accepted",  # the notes finding is covered by an exception: left as it is
]
ActivityStatus = Literal["running", "succeeded", "failed", "locked"]
LockState = Literal["acquired", "held", "none"]
"""`acquired`: this run took the tenant's discovery lock; `held`: another run had it, so this one did
nothing (the seed's "Processor Locked"); `none`: the unit of work takes no lock (evaluation, update)."""

ACTIVITY_SHARDS = 8
MAX_ACTIVITY_ERRORS = 20
MAX_ERROR_TEXT = 500


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()


def object_record_id(object_id: str) -> str:
    return f"obj-{object_id.lower()}"


def finding_id(tenant_id: str, object_id: str, validator_id: str, subject: str) -> str:
    return f"fnd-{_digest(tenant_id, object_id.lower(), validator_id, subject)[:40]}"


def exception_id(tenant_id: str, object_id: str, validator_id: str) -> str:
    return f"exc-{_digest(tenant_id, object_id.lower(), validator_id)[:40]}"


def activity_shard_id(activity_id: str, shard_key: str) -> str:
    """The counter shard of `activity_id` that `shard_key` (an object id) adds to: workers of one batch
    spread over ACTIVITY_SHARDS documents instead of racing for one ETag."""
    shard = int(_digest(shard_key)[:8], 16) % ACTIVITY_SHARDS
    return f"{activity_id}-s{shard}"


def iso(value: dt.datetime) -> str:
    return utc_iso(value)


class _Document(BaseModel):
    """A stored document: Cosmos DB's own properties (`_etag`, `_ts`, ...) are dropped when read."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str
    pk: str

    def document(self) -> dict[str, object]:
        return self.model_dump(mode="json")


class FindingRecord(_Document):
    type: Literal["finding"] = "finding"
    object_id: str
    object_name: str
    app_id: str | None = None
    validator_id: str
    severity: Severity
    subject: str
    message: str
    evidence: dict[str, JsonValue]
    state: FindingState
    first_seen: UtcTime
    opened_at: UtcTime
    last_seen: UtcTime
    resolved_at: UtcTime | None = None
    exception_id: str | None = None
    evaluation_id: EvaluationId


class OwnerSnapshot(BaseModel):
    """An owner as the last-known-good state saw it."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str
    upn: str | None = None
    display_name: str | None = None
    kind: str
    standing: OwnerStanding

    @classmethod
    def of(cls, owner: DirectoryPrincipal) -> OwnerSnapshot:
        return cls(
            id=owner.id,
            upn=owner.user_principal_name,
            display_name=owner.display_name,
            kind=owner.kind,
            standing=owner.standing(),
        )


class LastKnownGood(BaseModel):
    """The object as last seen passing (no open finding): what notes remediation restores first."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    at: UtcTime
    evaluation_id: EvaluationId
    notes: str | None
    owners: tuple[OwnerSnapshot, ...] = ()
    application_owners: tuple[OwnerSnapshot, ...] = ()

    @classmethod
    def of(cls, obj: GovernedObject, at: dt.datetime, evaluation_id: str) -> LastKnownGood:
        return cls(
            at=iso(at),
            evaluation_id=evaluation_id,
            notes=obj.notes,
            owners=tuple(OwnerSnapshot.of(o) for o in obj.owners),
            application_owners=tuple(OwnerSnapshot.of(o) for o in obj.application_owners),
        )


class NotesPatch(BaseModel):
    """The exact request that writes a service principal's notes (Graph v1.0 "Update servicePrincipal":
    PATCH /servicePrincipals/{id}, body {"notes": value}, answered 204 No Content)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    method: Literal["PATCH"] = "PATCH"
    url: str
    body: dict[str, str]


def notes_patch(graph_base: str, object_id: str, value: str) -> NotesPatch:
    """The PATCH for `object_id` (a GUID, checked by the model that carried it) under `graph_base`, the
    cloud's Graph root without a version (shared.m365.cloud.CloudEndpoints.graph_base)."""
    return NotesPatch(
        url=f"{graph_base.rstrip('/')}/v1.0/servicePrincipals/{object_id.lower()}", body={"notes": value}
    )


class Remediation(BaseModel):
    """What the last evaluation did about the notes (only when notes-lists-owners failed)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    evaluation_id: EvaluationId
    planned_at: UtcTime
    mode: UpdateMode
    status: RemediationStatus
    source: Literal["current", "last-known-good", "owners"] | None = None
    reason: str
    before: str | None = None
    after: str | None = None
    request: NotesPatch | None = None
    done_at: UtcTime | None = None


class ObjectRecord(_Document):
    type: Literal["object"] = "object"
    object_id: str
    app_id: str | None = None
    display_name: str
    service_principal_type: str | None = None
    last_evaluation_id: EvaluationId
    last_evaluated_at: UtcTime
    last_observed_at: UtcTime
    last_batch_id: str | None = None
    last_trigger: Trigger
    last_result: EvaluationResult
    open_findings: int = 0
    accepted_findings: int = 0
    validators_version: str = ""
    evaluations: int = 0
    last_known_good: LastKnownGood | None = None
    remediation: Remediation | None = None
    remediation_status: RemediationStatus | None = None  # remediation.status, indexed for queries


class ExceptionRecord(_Document):
    """A risk accepted for one object and validator until `expires_at`: while active, that validator's
    findings on the object are `accepted`, not `open` (and notes remediation leaves the notes alone)."""

    type: Literal["exception"] = "exception"
    object_id: str
    validator_id: str
    reason: Annotated[str, StringConstraints(min_length=1, max_length=1000)]
    expires_at: UtcTime
    created_at: UtcTime
    created_by: str
    created_by_id: str

    def active(self, now: dt.datetime) -> bool:
        return parse_utc(self.expires_at) > now


class ActivityCounts(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    discovered: int = 0
    evaluated: int = 0
    passed: int = 0
    failed: int = 0
    updated: int = 0
    skipped: int = 0
    errors: int = 0

    def plus(self, other: ActivityCounts) -> ActivityCounts:
        return ActivityCounts(
            **{name: getattr(self, name) + getattr(other, name) for name in ActivityCounts.model_fields}
        )

    @property
    def settled(self) -> int:
        """Units of work that reached an end: evaluated, skipped or failed with an error."""
        return self.evaluated + self.skipped + self.errors


class ActivityError(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    at: UtcTime
    message: Annotated[str, StringConstraints(max_length=MAX_ERROR_TEXT)]
    object_id: str | None = None


class ActivityRecord(_Document):
    """A discovery run, or an evaluation or update batch (the seed's activity context). A batch's
    workers add their counts to shards (`ActivityShard`); reading the activity sums them in, and a batch
    with `expected` units is `succeeded` once that many settled."""

    type: Literal["activity"] = "activity"
    kind: ActivityKind
    trigger: Trigger
    parent_id: str | None = None
    started_at: UtcTime
    ended_at: UtcTime | None = None
    status: ActivityStatus = "running"
    lock: LockState = "none"
    expected: int | None = None
    counts: ActivityCounts = ActivityCounts()
    errors: tuple[ActivityError, ...] = ()
    details: dict[str, JsonValue] = Field(default_factory=dict)


class ActivityShard(_Document):
    type: Literal["activity-counts"] = "activity-counts"
    activity_id: str
    counts: ActivityCounts = ActivityCounts()
    errors: tuple[ActivityError, ...] = ()
    last_at: UtcTime


def merge_shards(activity: ActivityRecord, shards: list[ActivityShard]) -> ActivityRecord:
    """The activity with its shards' counts and errors added; a running batch that has settled all its
    `expected` units is reported `succeeded`, ending at its last shard write."""
    counts = activity.counts
    errors = list(activity.errors)
    last: str | None = None
    for shard in shards:
        counts = counts.plus(shard.counts)
        errors.extend(shard.errors)
        last = max(last or shard.last_at, shard.last_at)
    errors.sort(key=lambda e: e.at)
    update: dict[str, object] = {"counts": counts, "errors": tuple(errors[-MAX_ACTIVITY_ERRORS:])}
    if (
        activity.status == "running"
        and activity.expected is not None
        and counts.settled >= activity.expected
        and last is not None
    ):
        update.update(status="succeeded", ended_at=last)
    return activity.model_copy(update=update)


class AuditEntry(BaseModel):
    """One record of the `audit` container, in the shape `GET /api/audit` reads (shared.api.audit
    AuditRecord): who (the app), what, on which object, before and after."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    pk: str
    at: UtcTime
    actor: str
    actor_id: str
    auth: str
    action: str
    target_type: str
    target_id: str
    before: JsonValue = None
    after: JsonValue = None


def audit_entry_id(actor_id: str, action: str, target_id: str, key: str) -> str:
    """The audit id scheme of shared.api.audit.AuditLog (32 hex digits of actor|action|target|key), so a
    redelivered evaluation or update writes its record again in place instead of adding one."""
    return hashlib.sha256(f"{actor_id}|{action}|{target_id}|{key}".encode()).hexdigest()[:32]
