"""Evaluation and notes remediation of one service principal (the seed's Evaluate and Update units of
work), over the stores of shared.governance.store.

`GovernanceService.evaluate(tenant, obj, now, evaluation_id=...)`:

1. reads everything stored about the object in one query (record, findings, exceptions);
2. a redelivery of an evaluation already recorded (`last_evaluation_id`) changes nothing and answers
   what was recorded; a snapshot older than the one last evaluated (`observed_at`) is skipped as stale;
3. runs the validators (shared.governance.validators.evaluate) and writes the findings: a new or
   re-found one is opened (`first_seen` kept, `opened_at` now), a known one has `last_seen` moved, one
   no longer found is resolved; an active exception for the object and validator makes it `accepted`;
4. passes when no finding is open: the object becomes the new last-known-good (notes and owners);
5. when notes-lists-owners is open, plans the notes value (shared.governance.notes.
   plan_notes_remediation: last-known-good if it still passes, else from the owners, else "cannot
   remediate") and, by GOVERNANCE_UPDATE_MODE, records the exact PATCH it would send (ReportOnly) or
   returns an `UpdateNotes` message for the update queue (Update);
6. writes an audit entry (pass or fail, and the remediation), then the object record under the ETag it
   read: the record is the commit point, so a worker that dies before it leaves the evaluation to the
   message's redelivery, and two workers racing on one object make one of them start over.

`GovernanceService.update(message, now)` sends that PATCH at most once per object and evaluation: it
claims a Table row first (a redelivery finds it done), sends nothing when a later evaluation of the
object superseded this one or the value already matches, and audits who (the app), what, before and
after. Graph's answer lost after the PATCH went out leaves the claim held; its redelivery takes it over
once stale and sends the same value again, which changes nothing in the directory.

Activities: an evaluation adds its counts (evaluated, passed, failed, skipped) to its batch's activity
once (a redelivery adds nothing), an update its own (updated, skipped, errors).

`accept_risk` / `revoke_risk` store or remove an exception (object, validator, reason, expiry, who) and
restate that validator's findings at once (accepted, or open again); both are audited as the admin.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, JsonValue

from shared.governance.config import VALIDATOR_IDS, ValidatorSet
from shared.governance.messages import Trigger, UpdateNotes, activity_id, evaluation_id
from shared.governance.model import GovernedObject
from shared.governance.notes import DirectoryLookup, plan_notes_remediation
from shared.governance.notes_writer import GraphWriter
from shared.governance.records import (
    ActivityCounts,
    ActivityError,
    AuditEntry,
    EvaluationResult,
    ExceptionRecord,
    FindingRecord,
    LastKnownGood,
    NotesPatch,
    ObjectRecord,
    Remediation,
    RemediationStatus,
    UpdateMode,
    audit_entry_id,
    exception_id,
    finding_id,
    notes_patch,
    object_record_id,
)
from shared.governance.store import (
    ActivityStore,
    AuditSink,
    GovernanceStore,
    ObjectState,
    StaleWriteError,
    UpdateClaims,
)
from shared.governance.validators import Finding, evaluate
from shared.platform.clock import parse_utc, utc_iso
from shared.platform.redact import redact

logger = logging.getLogger(__name__)

NOTES_VALIDATOR = "notes-lists-owners"
TARGET_TYPE = "servicePrincipal"
MAX_WRITE_ROUNDS = 5
MAX_EXCEPTION_DAYS = 365


@dataclass(frozen=True)
class Actor:
    """Who a change is recorded as: the app for evaluations and updates, the signed-in admin for an
    exception (the API passes its principal's name, subject and auth)."""

    name: str
    id: str
    auth: str


APP_ACTOR = Actor(name="aoc-functions", id="aoc-functions", auth="app")


class EvaluationOutcome(BaseModel):
    """What one evaluate call did. `opened` are the findings that started an open (or accepted)
    stretch in this evaluation, what alerting turns into events; `update` is the message to queue on
    the update queue (Update mode only)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tenant_id: str
    object_id: str
    evaluation_id: str
    status: Literal["evaluated", "duplicate", "stale", "retired"]
    result: EvaluationResult | None = None
    findings: tuple[FindingRecord, ...] = ()
    opened: tuple[FindingRecord, ...] = ()
    resolved: tuple[FindingRecord, ...] = ()
    remediation: Remediation | None = None
    update: UpdateNotes | None = None
    first_evaluation: bool = False
    """The object's first evaluation ever (also on its redelivery): what a baseline records without
    alerting (shared.governance.pipeline)."""


UpdateStatus = Literal["patched", "duplicate", "unchanged", "superseded", "skipped"]


class UpdateOutcome(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    tenant_id: str
    object_id: str
    evaluation_id: str
    status: UpdateStatus
    request: NotesPatch | None = None
    reason: str = ""


class ExceptionError(ValueError):
    """An exception (accepted risk) that cannot be stored as asked; the message says why."""


ValidatorSource = Callable[[], ValidatorSet]


class GovernanceService:
    def __init__(
        self,
        store: GovernanceStore,
        activities: ActivityStore,
        audit: AuditSink,
        claims: UpdateClaims,
        writer: GraphWriter | None,
        validators: ValidatorSet | ValidatorSource,
        *,
        mode: UpdateMode,
        graph_base: str,
        actor: Actor = APP_ACTOR,
    ) -> None:
        if mode == "Update" and writer is None:
            raise ValueError("GOVERNANCE_UPDATE_MODE=Update needs a GraphWriter")
        self._store = store
        self._activities = activities
        self._audit = audit
        self._claims = claims
        self._writer = writer
        self._validators: ValidatorSource = validators if callable(validators) else (lambda: validators)
        self._mode: UpdateMode = mode
        self._graph_base = graph_base
        self._actor = actor

    @property
    def mode(self) -> UpdateMode:
        return self._mode

    # -- evaluation ---------------------------------------------------------------------------------

    def evaluate(
        self,
        tenant_id: str,
        obj: GovernedObject,
        now: dt.datetime,
        *,
        evaluation_id: str | None = None,
        batch_id: str | None = None,
        trigger: Trigger = "manual",
        observed_at: dt.datetime | None = None,
        directory: DirectoryLookup | None = None,
    ) -> EvaluationOutcome:
        """Evaluate `obj` as read at `observed_at` (default `now`). `evaluation_id` must be the same on
        every delivery of one request (shared.governance.messages.evaluation_id); without it the call
        is an evaluation of its own. Raises StaleWriteError when the object kept changing under it."""
        evaluation = evaluation_id or _adhoc_evaluation(tenant_id, obj.id, now)
        observed = observed_at or now
        validators = self._validators()
        for _ in range(MAX_WRITE_ROUNDS):
            state = self._store.object_state(tenant_id, obj.id)
            record = state.record.value if state.record is not None else None
            if record is not None and record.last_evaluation_id == evaluation:
                return self._recorded(tenant_id, evaluation, state, record)
            if record is not None and parse_utc(record.last_observed_at) > observed:
                logger.info(
                    "evaluation %s of %s: an older read than the last evaluated; skipped", evaluation, obj.id
                )
                self._count(
                    tenant_id, batch_id, obj.id, now, trigger, "evaluation", ActivityCounts(skipped=1)
                )
                return EvaluationOutcome(
                    tenant_id=tenant_id, object_id=obj.id, evaluation_id=evaluation, status="stale"
                )
            try:
                outcome = self._evaluate_once(
                    tenant_id, obj, now, evaluation, batch_id, trigger, observed, directory, validators, state
                )
            except StaleWriteError:
                logger.info(
                    "evaluation %s of %s: the object's documents changed meanwhile; again", evaluation, obj.id
                )
                continue
            passed = outcome.result == "pass"
            counts = ActivityCounts(evaluated=1, passed=int(passed), failed=int(not passed))
            self._count(tenant_id, batch_id, obj.id, now, trigger, "evaluation", counts)
            return outcome
        raise StaleWriteError(f"service principal {obj.id}: its documents kept changing during evaluation")

    def _evaluate_once(
        self,
        tenant_id: str,
        obj: GovernedObject,
        now: dt.datetime,
        evaluation: str,
        batch_id: str | None,
        trigger: Trigger,
        observed: dt.datetime,
        directory: DirectoryLookup | None,
        validators: ValidatorSet,
        state: ObjectState,
    ) -> EvaluationOutcome:
        previous = state.record.value if state.record is not None else None
        active = {e.value.validator_id: e.value for e in state.exceptions if e.value.active(now)}
        found = evaluate(obj, validators, now, directory=directory)
        current, opened = self._write_found(tenant_id, obj, now, evaluation, found, active, state)
        resolved = self._write_resolved(
            tenant_id, now, evaluation, {(f.validator_id, f.subject) for f in found}, state
        )

        open_findings = [f for f in current if f.state == "open"]
        result: EvaluationResult = "fail" if open_findings else "pass"
        last_known_good = previous.last_known_good if previous is not None else None
        if result == "pass":
            last_known_good = LastKnownGood.of(obj, now, evaluation)
        remediation, update = self._remediate(
            tenant_id,
            obj,
            now,
            evaluation,
            batch_id,
            trigger,
            current,
            last_known_good,
            validators,
            directory,
        )

        self._audit_evaluation(tenant_id, obj, now, evaluation, trigger, result, current, resolved, previous)
        if remediation is not None:
            self._audit_remediation(tenant_id, obj.id, now, remediation)
        record = ObjectRecord(
            id=object_record_id(obj.id),
            pk=tenant_id,
            object_id=obj.id,
            app_id=obj.service_principal.app_id,
            display_name=obj.display_name,
            service_principal_type=obj.service_principal.service_principal_type,
            last_evaluation_id=evaluation,
            last_evaluated_at=utc_iso(now),
            last_observed_at=utc_iso(observed),
            last_batch_id=batch_id,
            last_trigger=trigger,
            last_result=result,
            open_findings=len(open_findings),
            accepted_findings=sum(1 for f in current if f.state == "accepted"),
            validators_version=validators.version,
            evaluations=(previous.evaluations if previous is not None else 0) + 1,
            last_known_good=last_known_good,
            remediation=remediation,
            remediation_status=remediation.status if remediation is not None else None,
        )
        self._store.write_object(record, state.record.etag if state.record is not None else None)
        return EvaluationOutcome(
            tenant_id=tenant_id,
            object_id=obj.id,
            evaluation_id=evaluation,
            status="evaluated",
            result=result,
            findings=tuple(current),
            opened=tuple(opened),
            resolved=tuple(resolved),
            remediation=remediation,
            update=update,
            first_evaluation=previous is None,
        )

    def _write_found(
        self,
        tenant_id: str,
        obj: GovernedObject,
        now: dt.datetime,
        evaluation: str,
        found: Iterable[Finding],
        active: dict[str, ExceptionRecord],
        state: ObjectState,
    ) -> tuple[list[FindingRecord], list[FindingRecord]]:
        current: list[FindingRecord] = []
        opened: list[FindingRecord] = []
        for finding in found:
            existing = state.findings.get((finding.validator_id, finding.subject))
            before = existing.value if existing is not None else None
            covering = active.get(finding.validator_id)
            # Opened here: new, found again after it was resolved, or opened by an earlier attempt of
            # this same evaluation (whose write landed before its worker died).
            starts = (
                before is None
                or before.state == "resolved"
                or (before.evaluation_id == evaluation and before.opened_at == before.last_seen)
            )
            record = FindingRecord(
                id=finding_id(tenant_id, obj.id, finding.validator_id, finding.subject),
                pk=tenant_id,
                object_id=obj.id,
                object_name=obj.display_name,
                app_id=obj.service_principal.app_id,
                validator_id=finding.validator_id,
                severity=finding.severity,
                subject=finding.subject,
                message=finding.message,
                evidence=finding.evidence,
                state="accepted" if covering is not None else "open",
                first_seen=before.first_seen if before is not None else utc_iso(now),
                opened_at=utc_iso(now) if starts or before is None else before.opened_at,
                last_seen=utc_iso(now),
                exception_id=covering.id if covering is not None else None,
                evaluation_id=evaluation,
            )
            stored = self._store.write_finding(record, existing.etag if existing is not None else None)
            current.append(stored.value)
            if starts:
                opened.append(stored.value)
        return current, opened

    def _write_resolved(
        self,
        tenant_id: str,
        now: dt.datetime,
        evaluation: str,
        found: set[tuple[str, str]],
        state: ObjectState,
    ) -> list[FindingRecord]:
        resolved: list[FindingRecord] = []
        for key, existing in sorted(state.findings.items()):
            if key in found:
                continue
            finding = existing.value
            if finding.state == "resolved":
                if finding.evaluation_id == evaluation:
                    resolved.append(finding)  # resolved by an earlier attempt of this evaluation
                continue
            closed = FindingRecord.model_validate(
                {
                    **finding.model_dump(),
                    "state": "resolved",
                    "resolved_at": utc_iso(now),
                    "exception_id": None,
                    "evaluation_id": evaluation,
                }
            )
            resolved.append(self._store.write_finding(closed, existing.etag).value)
        return resolved

    def _remediate(
        self,
        tenant_id: str,
        obj: GovernedObject,
        now: dt.datetime,
        evaluation: str,
        batch_id: str | None,
        trigger: Trigger,
        current: list[FindingRecord],
        last_known_good: LastKnownGood | None,
        validators: ValidatorSet,
        directory: DirectoryLookup | None,
    ) -> tuple[Remediation | None, UpdateNotes | None]:
        notes_finding = next((f for f in current if f.validator_id == NOTES_VALIDATOR), None)
        if notes_finding is None:
            return None, None

        def remediation(status: RemediationStatus, reason: str, **found: object) -> Remediation:
            return Remediation.model_validate(
                {
                    "evaluation_id": evaluation,
                    "planned_at": utc_iso(now),
                    "mode": self._mode,
                    "before": obj.notes,
                    "status": status,
                    "reason": reason,
                    **found,
                }
            )

        if notes_finding.state == "accepted":
            return remediation("accepted", f"accepted by exception {notes_finding.exception_id}"), None
        plan = plan_notes_remediation(
            obj,
            last_known_good.notes if last_known_good is not None else None,
            validators.notes_parameters(),
            directory,
        )
        if plan.value is None:
            return remediation("cannot-remediate", plan.reason), None
        if plan.unchanged or plan.source == "current":
            return remediation("unchanged", plan.reason, source=plan.source, after=plan.value), None
        request = notes_patch(self._graph_base, obj.id, plan.value)
        status: RemediationStatus = "reported" if self._mode == "ReportOnly" else "queued"
        planned = remediation(status, plan.reason, source=plan.source, after=plan.value, request=request)
        if status == "reported":
            return planned, None
        return planned, self._update_message(tenant_id, obj.id, batch_id, trigger, planned)

    def _update_message(
        self, tenant_id: str, object_id: str, batch_id: str | None, trigger: Trigger, remediation: Remediation
    ) -> UpdateNotes | None:
        source = remediation.source
        if remediation.after is None or source not in ("last-known-good", "owners"):
            return None
        return UpdateNotes(
            tenant_id=tenant_id,
            object_id=object_id,
            evaluation_id=remediation.evaluation_id,
            batch_id=activity_id("update", tenant_id, batch_id) if batch_id is not None else None,
            trigger=trigger,
            before=remediation.before,
            after=remediation.after,
            source=source,
            planned_at=remediation.planned_at,
            reason=remediation.reason[:500],
        )

    def _recorded(
        self, tenant_id: str, evaluation: str, state: ObjectState, record: ObjectRecord
    ) -> EvaluationOutcome:
        """What an evaluation already recorded, answered to its redelivery (nothing is written)."""
        mine = [s.value for s in state.findings.values() if s.value.evaluation_id == evaluation]
        current = tuple(f for f in mine if f.state != "resolved")
        remediation = record.remediation
        update = None
        if remediation is not None and remediation.status == "queued":
            update = self._update_message(
                tenant_id, record.object_id, record.last_batch_id, record.last_trigger, remediation
            )
        return EvaluationOutcome(
            tenant_id=tenant_id,
            object_id=record.object_id,
            evaluation_id=evaluation,
            status="duplicate",
            result=record.last_result,
            findings=tuple(sorted(current, key=lambda f: (f.validator_id, f.subject))),
            opened=tuple(f for f in current if f.opened_at == f.last_seen),
            resolved=tuple(f for f in mine if f.state == "resolved"),
            remediation=remediation,
            update=update,
            first_evaluation=record.evaluations == 1,
        )

    # -- retirement ---------------------------------------------------------------------------------

    def retire(
        self,
        tenant_id: str,
        object_id: str,
        now: dt.datetime,
        *,
        evaluation_id: str | None = None,
        batch_id: str | None = None,
        trigger: Trigger = "discovery",
    ) -> EvaluationOutcome:
        """The service principal is gone from the directory (delta reported it removed, or a read by id
        answered 404): its open and accepted findings are resolved, so a deleted app stops alerting,
        and its record says so (no open findings, `last_observed_at` now, so a snapshot read before the
        deletion and delivered late is skipped as stale). Nothing stored about it: nothing to do. A
        redelivery (same `evaluation_id`) changes nothing. Raises StaleWriteError when the object kept
        changing under it."""
        evaluation = evaluation_id or _adhoc_evaluation(tenant_id, object_id, now)
        for _ in range(MAX_WRITE_ROUNDS):
            state = self._store.object_state(tenant_id, object_id)
            stored = state.record
            if stored is not None and stored.value.last_evaluation_id == evaluation:
                return EvaluationOutcome(
                    tenant_id=tenant_id, object_id=object_id, evaluation_id=evaluation, status="retired"
                )
            try:
                resolved = self._write_resolved(tenant_id, now, evaluation, set(), state)
                if stored is not None:
                    previous = stored.value
                    record = previous.model_copy(
                        update={
                            "last_evaluation_id": evaluation,
                            "last_evaluated_at": utc_iso(now),
                            "last_observed_at": max(previous.last_observed_at, utc_iso(now)),
                            "last_batch_id": batch_id,
                            "last_trigger": trigger,
                            "open_findings": 0,
                            "accepted_findings": 0,
                        }
                    )
                    self._audit.record(
                        self._entry(
                            self._actor,
                            "governance.retire",
                            object_id,
                            evaluation,
                            now,
                            tenant_id,
                            before={
                                "result": previous.last_result,
                                "open_findings": previous.open_findings,
                                "accepted_findings": previous.accepted_findings,
                            },
                            after={
                                "reason": "the service principal is no longer in the directory",
                                "evaluation_id": evaluation,
                                "resolved": [f.validator_id for f in resolved],
                            },
                        )
                    )
                    self._store.write_object(record, stored.etag)
            except StaleWriteError:
                continue
            self._count(tenant_id, batch_id, object_id, now, trigger, "evaluation", ActivityCounts(skipped=1))
            return EvaluationOutcome(
                tenant_id=tenant_id,
                object_id=object_id,
                evaluation_id=evaluation,
                status="retired",
                resolved=tuple(resolved),
            )
        raise StaleWriteError(f"service principal {object_id}: its documents kept changing while retired")

    # -- update -------------------------------------------------------------------------------------

    def update(self, message: UpdateNotes, now: dt.datetime) -> UpdateOutcome:
        """Send the notes PATCH `message` asks for, at most once for its object and evaluation. Raises
        shared.platform.table_claim.ClaimBusyError while another worker holds the claim, and the
        writer's error when Graph refuses (the claim is released for the message's retry)."""
        tenant, object_id, evaluation = message.tenant_id, message.object_id, message.evaluation_id

        def outcome(status: UpdateStatus, reason: str, request: NotesPatch | None = None) -> UpdateOutcome:
            return UpdateOutcome(
                tenant_id=tenant,
                object_id=object_id,
                evaluation_id=evaluation,
                status=status,
                request=request,
                reason=reason,
            )

        if self._mode != "Update" or self._writer is None:
            self._count(
                tenant, message.batch_id, object_id, now, message.trigger, "update", ActivityCounts(skipped=1)
            )
            return outcome("skipped", "GOVERNANCE_UPDATE_MODE is ReportOnly: nothing is written")
        owner = uuid.uuid4().hex
        claim = self._claims.claim(tenant, object_id, evaluation, now, owner)
        if claim.state == "done":
            logger.info(
                "notes update of %s for %s was done already (%s)", object_id, evaluation, claim.status
            )
            return outcome("duplicate", f"already {claim.status}")
        record = self._store.get_object(tenant, object_id)
        if record is None or record.value.last_evaluation_id != evaluation:
            # The record holds the newer evaluation's plan; this one's PATCH is simply not sent.
            self._claims.finish(tenant, object_id, evaluation, now, owner, "superseded")
            self._count(
                tenant, message.batch_id, object_id, now, message.trigger, "update", ActivityCounts(skipped=1)
            )
            return outcome("superseded", "a later evaluation of the object came first")
        if message.before == message.after:
            self._claims.finish(tenant, object_id, evaluation, now, owner, "unchanged")
            self._count(
                tenant, message.batch_id, object_id, now, message.trigger, "update", ActivityCounts(skipped=1)
            )
            return outcome("unchanged", "the notes already hold this value")
        request = notes_patch(self._graph_base, object_id, message.after)
        try:
            self._writer.send(request)
        except Exception as error:
            text = redact(f"{type(error).__name__}: {error}")[:500]
            self._claims.release(tenant, object_id, evaluation, now, owner, text)
            failure = ActivityError(at=utc_iso(now), message=text, object_id=object_id)
            self._count(
                tenant,
                message.batch_id,
                object_id,
                now,
                message.trigger,
                "update",
                ActivityCounts(errors=1),
                failure,
            )
            raise
        self._claims.finish(tenant, object_id, evaluation, now, owner, "patched")
        self._audit.record(
            self._entry(
                self._actor,
                "governance.notes.update",
                object_id,
                evaluation,
                now,
                tenant,
                before={"notes": message.before},
                after={
                    "notes": message.after,
                    "source": message.source,
                    "evaluation_id": evaluation,
                    "request": request.model_dump(mode="json"),
                },
            )
        )
        self._mark(tenant, object_id, evaluation, "patched", now)
        self._count(
            tenant, message.batch_id, object_id, now, message.trigger, "update", ActivityCounts(updated=1)
        )
        logger.info("notes of service principal %s written (%s, %s)", object_id, message.source, evaluation)
        return outcome("patched", message.reason, request)

    def _mark(
        self, tenant_id: str, object_id: str, evaluation: str, status: RemediationStatus, now: dt.datetime
    ) -> None:
        """Record on the object how its planned PATCH ended, if the record still holds that plan."""
        for _ in range(MAX_WRITE_ROUNDS):
            stored = self._store.get_object(tenant_id, object_id)
            if stored is None:
                return
            remediation = stored.value.remediation
            if remediation is None or remediation.evaluation_id != evaluation or remediation.status == status:
                return
            changed = remediation.model_copy(update={"status": status, "done_at": utc_iso(now)})
            record = stored.value.model_copy(update={"remediation": changed, "remediation_status": status})
            try:
                self._store.write_object(record, stored.etag)
                return
            except StaleWriteError:
                continue
        logger.warning(
            "could not record the %s notes update of %s: the record kept changing", status, object_id
        )

    # -- exceptions (accepted risks) ------------------------------------------------------------------

    def accept_risk(
        self,
        tenant_id: str,
        object_id: str,
        validator_id: str,
        reason: str,
        expires_at: dt.datetime,
        by: Actor,
        now: dt.datetime,
    ) -> ExceptionRecord:
        """Accept the risk of `validator_id` on the object until `expires_at` (at most MAX_EXCEPTION_DAYS
        ahead): its open findings become `accepted` now, and evaluations keep them so until it expires.
        Accepting again replaces the reason and expiry."""
        if validator_id not in VALIDATOR_IDS:
            raise ExceptionError(f"unknown validator {validator_id!r}")
        if expires_at <= now or expires_at > now + dt.timedelta(days=MAX_EXCEPTION_DAYS):
            raise ExceptionError(f"an exception expires after now and within {MAX_EXCEPTION_DAYS} days")
        if not reason.strip():
            raise ExceptionError("an exception needs a reason")
        if self._store.get_object(tenant_id, object_id) is None:
            # An exception belongs to an evaluated object (store.object_state relies on it).
            raise ExceptionError(f"service principal {object_id} has not been evaluated")
        ident = exception_id(tenant_id, object_id, validator_id)
        record = ExceptionRecord(
            id=ident,
            pk=tenant_id,
            object_id=object_id.lower(),
            validator_id=validator_id,
            reason=reason.strip(),
            expires_at=utc_iso(expires_at),
            created_at=utc_iso(now),
            created_by=by.name,
            created_by_id=by.id,
        )
        for _ in range(MAX_WRITE_ROUNDS):
            existing = self._store.get_exception(tenant_id, ident)
            try:
                self._store.write_exception(record, existing.etag if existing is not None else None)
                break
            except StaleWriteError:
                continue
        else:
            raise StaleWriteError(f"exception {ident} kept changing")
        self._restate(tenant_id, object_id, validator_id, record, now)
        self._audit.record(
            self._entry(
                by,
                "governance.exception.accept",
                object_id,
                f"{ident}|{utc_iso(now)}|{uuid.uuid4().hex}",
                now,
                tenant_id,
                before=existing.value.model_dump(mode="json") if existing is not None else None,
                after=record.model_dump(mode="json"),
            )
        )
        return record

    def revoke_risk(
        self,
        tenant_id: str,
        object_id: str,
        validator_id: str,
        by: Actor,
        now: dt.datetime,
        *,
        etag: str | None = None,
    ) -> bool:
        """Remove the exception of `validator_id` on the object: its accepted findings are open again.
        False when there was none, or when `etag` is given and the exception is no longer that version
        (the API's If-Match, checked by the delete itself)."""
        ident = exception_id(tenant_id, object_id, validator_id)
        existing = self._store.get_exception(tenant_id, ident)
        if existing is None or (etag is not None and existing.etag != etag):
            return False
        if not self._store.delete_exception(tenant_id, ident, etag or existing.etag):
            return False
        self._restate(tenant_id, object_id, validator_id, None, now)
        self._audit.record(
            self._entry(
                by,
                "governance.exception.revoke",
                object_id,
                f"{ident}|{utc_iso(now)}|{uuid.uuid4().hex}",
                now,
                tenant_id,
                before=existing.value.model_dump(mode="json"),
                after=None,
            )
        )
        return True

    def _restate(
        self,
        tenant_id: str,
        object_id: str,
        validator_id: str,
        exception: ExceptionRecord | None,
        now: dt.datetime,
    ) -> None:
        """Open findings of the validator become accepted under `exception`, accepted ones open without
        one; the object's counts follow. The next evaluation states them from scratch anyway."""
        covering = exception if exception is not None and exception.active(now) else None
        for _ in range(MAX_WRITE_ROUNDS):
            state = self._store.object_state(tenant_id, object_id)
            try:
                for (validator, _subject), stored in state.findings.items():
                    finding = stored.value
                    if validator != validator_id or finding.state == "resolved":
                        continue
                    wanted = "accepted" if covering is not None else "open"
                    if finding.state != wanted:
                        changed = finding.model_copy(
                            update={"state": wanted, "exception_id": covering.id if covering else None}
                        )
                        self._store.write_finding(changed, stored.etag)
                self._recount(tenant_id, object_id)
                return
            except StaleWriteError:
                continue
        raise StaleWriteError(f"service principal {object_id}: its findings kept changing")

    def _recount(self, tenant_id: str, object_id: str) -> None:
        state = self._store.object_state(tenant_id, object_id)
        if state.record is None:
            return
        findings = [s.value for s in state.findings.values()]
        opened = sum(1 for f in findings if f.state == "open")
        accepted = sum(1 for f in findings if f.state == "accepted")
        record = state.record.value
        if (record.open_findings, record.accepted_findings) == (opened, accepted):
            return
        self._store.write_object(
            record.model_copy(update={"open_findings": opened, "accepted_findings": accepted}),
            state.record.etag,
        )

    # -- audit and activity ---------------------------------------------------------------------------

    def _entry(
        self,
        actor: Actor,
        action: str,
        object_id: str,
        key: str,
        now: dt.datetime,
        tenant_id: str,
        *,
        before: JsonValue,
        after: JsonValue,
    ) -> AuditEntry:
        return AuditEntry(
            id=audit_entry_id(actor.id, action, object_id, key),
            pk=tenant_id,
            at=utc_iso(now),
            actor=actor.name,
            actor_id=actor.id,
            auth=actor.auth,
            action=action,
            target_type=TARGET_TYPE,
            target_id=object_id,
            before=before,
            after=after,
        )

    def _audit_evaluation(
        self,
        tenant_id: str,
        obj: GovernedObject,
        now: dt.datetime,
        evaluation: str,
        trigger: Trigger,
        result: EvaluationResult,
        current: list[FindingRecord],
        resolved: list[FindingRecord],
        previous: ObjectRecord | None,
    ) -> None:
        def brief(finding: FindingRecord) -> dict[str, JsonValue]:
            return {
                "validator_id": finding.validator_id,
                "subject": finding.subject,
                "severity": finding.severity,
                "state": finding.state,
            }

        before: JsonValue = None
        if previous is not None:
            before = {
                "result": previous.last_result,
                "evaluation_id": previous.last_evaluation_id,
                "open_findings": previous.open_findings,
                "accepted_findings": previous.accepted_findings,
            }
        after: dict[str, JsonValue] = {
            "result": result,
            "evaluation_id": evaluation,
            "trigger": trigger,
            "display_name": obj.display_name,
            "findings": [brief(f) for f in current],
            "resolved": [brief(f) for f in resolved],
        }
        self._audit.record(
            self._entry(
                self._actor,
                "governance.evaluate",
                obj.id,
                evaluation,
                now,
                tenant_id,
                before=before,
                after=after,
            )
        )

    def _audit_remediation(
        self, tenant_id: str, object_id: str, now: dt.datetime, remediation: Remediation
    ) -> None:
        actions: dict[str, str] = {
            "reported": "governance.notes.report",
            "cannot-remediate": "governance.notes.cannot-remediate",
        }
        action = actions.get(remediation.status)
        if action is None:
            return  # queued: the update audits what it sends; unchanged and accepted write nothing
        after: dict[str, JsonValue] = {
            "status": remediation.status,
            "mode": remediation.mode,
            "reason": remediation.reason,
            "source": remediation.source,
            "notes": remediation.after,
            "request": remediation.request.model_dump(mode="json")
            if remediation.request is not None
            else None,
        }
        self._audit.record(
            self._entry(
                self._actor,
                action,
                object_id,
                remediation.evaluation_id,
                now,
                tenant_id,
                before={"notes": remediation.before},
                after=after,
            )
        )

    def _count(
        self,
        tenant_id: str,
        batch_id: str | None,
        object_id: str,
        now: dt.datetime,
        trigger: Trigger,
        kind: Literal["evaluation", "update"],
        counts: ActivityCounts,
        error: ActivityError | None = None,
    ) -> None:
        if batch_id is None:
            return
        self._activities.add(
            tenant_id, batch_id, object_id, counts, now, kind=kind, trigger=trigger, error=error
        )


def _adhoc_evaluation(tenant_id: str, object_id: str, now: dt.datetime) -> str:
    return evaluation_id(tenant_id, object_id, f"adhoc:{utc_iso(now)}:{uuid.uuid4().hex}")
