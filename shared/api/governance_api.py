"""The governance routes (issue 18): findings, one service principal's state and history, exceptions
(accepted risks), discovery on request, and activities.

- GET /api/governance/findings: filtered by validator, severity, object and state (default: open and
  accepted), newest `last_seen` first, keyset paged by a signed continuation (shared.api.paging);
- GET /api/governance/findings/summary: open findings by severity and validator, findings by state, and
  how many objects have an open one: one single-partition query of four properties, counted here
  (cosmosdb-server has no GROUP BY);
- GET /api/governance/objects/{id}: the object's record, all its findings and exceptions (one
  single-partition query) and the newest 50 audit entries about it (a second one, on the audit container);
- GET, POST /api/governance/exceptions and DELETE /api/governance/exceptions/{id} (Admin for writes):
  GovernanceService.accept_risk / revoke_risk, audited as the signed-in admin;
- POST /api/governance/discovery (Admin): queues a DiscoveryRequest (trigger "request") on
  Queues.GOVERNANCE_DISCOVERY and answers 202 with its activity id;
- GET /api/governance/activities: discovery runs and evaluation and update batches, newest first.

Ids from the URL, the query and the body are checked before any storage call: object ids are GUIDs
(shared.governance.model.GUID, matched whole), exception ids `exc-` + 40 hex digits
(shared.platform.ids.GOVERNANCE_EXCEPTION_ID), validator ids one of shared.governance.config.VALIDATOR_IDS.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections import Counter
from typing import Annotated, Any, Protocol

from azure.cosmos import ContainerProxy
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    StrictBool,
    StrictStr,
    field_validator,
)

from shared.api.audit import AuditLog, AuditRecord
from shared.api.auth import Principal, Role
from shared.api.paging import ContinuationSigner, parse_query_time, query_hash
from shared.api.problems import ApiProblem, bad_request
from shared.api.responses import ApiGuard, ApiResponse, json_response, not_found
from shared.api.routing import Call, EmptyBody, NoQuery, PathParam, Reply, Resource, route
from shared.api.searches_api import if_match, matches, quoted
from shared.governance.config import VALIDATOR_IDS
from shared.governance.messages import ActivityKind, DiscoveryRequest, Trigger, activity_id
from shared.governance.model import GUID
from shared.governance.records import (
    ActivityCounts,
    ActivityError,
    ActivityRecord,
    ActivityStatus,
    EvaluationResult,
    ExceptionRecord,
    FindingRecord,
    FindingState,
    LastKnownGood,
    LockState,
    ObjectRecord,
    Remediation,
    UpdateMode,
    exception_id,
)
from shared.governance.service import (
    MAX_EXCEPTION_DAYS,
    TARGET_TYPE,
    Actor,
    ExceptionError,
    GovernanceService,
)
from shared.governance.store import ActivityStore, FindingFact, FindingQuery, ObjectState, Stored
from shared.platform.clock import Clock, parse_utc, utc_iso
from shared.platform.ids import is_governance_exception_id
from shared.platform.ports import MessageQueue
from shared.platform.redact import redact
from shared.rules.model import SEVERITY_ORDER, Severity

logger = logging.getLogger(__name__)

MAX_PAGE = 200
DEFAULT_PAGE = 50
MAX_ACTIVITIES = 100
DEFAULT_ACTIVITIES = 20
STATUS_ACTIVITIES = 5
MAX_HISTORY = 50
MAX_REASON = 1000
DELETE_BODY_BYTES = 1024  # DELETE takes no body, or {}
DISCOVERY_BODY_BYTES = 1024
DEFAULT_STATES: tuple[FindingState, ...] = ("open", "accepted")
FINDING_STATES: tuple[FindingState, ...] = ("open", "accepted", "resolved")
SEVERITIES: tuple[str, ...] = tuple(sorted(SEVERITY_ORDER, key=SEVERITY_ORDER.__getitem__, reverse=True))


def is_service_principal_id(value: object) -> bool:
    """A service principal's object id: a GUID, matched whole (no trailing newline), any case."""
    return isinstance(value, str) and GUID.fullmatch(value) is not None


OBJECT_ID = PathParam(
    "id", "service principal object id: a GUID", "service principal", is_service_principal_id, max_length=36
)
EXCEPTION_ID = PathParam(
    "id", "exception id: exc- and 40 hex digits", "exception", is_governance_exception_id, max_length=44
)


def _object_or_none(value: str | None) -> str | None:
    if value is None:
        return None
    if not is_service_principal_id(value):
        raise ValueError("not a service principal object id (a GUID)")
    return value.lower()


def _object_id(value: str) -> str:
    """A GUID matched whole, lower-cased. (shared.governance.model.Guid matches with `$`, which lets a
    trailing newline through: ids from a request are checked here instead.)"""
    if not is_service_principal_id(value):
        raise ValueError("not a service principal object id (a GUID)")
    return value.lower()


def _validator(value: str) -> str:
    if value not in VALIDATOR_IDS:
        raise ValueError(f"not a validator id: one of {', '.join(VALIDATOR_IDS)}")
    return value


def _validator_or_none(value: str | None) -> str | None:
    return None if value is None else _validator(value)


ObjectFilter = Annotated[str | None, Field(max_length=36), AfterValidator(_object_or_none)]
ValidatorFilter = Annotated[str | None, Field(max_length=80), AfterValidator(_validator_or_none)]


# --- queries and bodies ------------------------------------------------------------------------------


class FindingsQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    validator: ValidatorFilter = Field(default=None, description="a validator id")
    severity: Severity | None = None
    object: ObjectFilter = Field(default=None, description="a service principal's object id (GUID)")
    state: FindingState | None = Field(default=None, description="default: open and accepted")
    limit: int = Field(default=DEFAULT_PAGE, ge=1, le=MAX_PAGE)
    continuation: str | None = Field(default=None, max_length=2000)


class ExceptionsQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    object: ObjectFilter = Field(default=None, description="a service principal's object id (GUID)")


class ActivitiesQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: ActivityKind | None = None
    limit: int = Field(default=DEFAULT_ACTIVITIES, ge=1, le=MAX_ACTIVITIES)


def _utc_time(value: str) -> str:
    return utc_iso(parse_query_time(value))


class ExceptionInput(BaseModel):
    """Accept the risk of one validator on one service principal until `expires_at`."""

    model_config = ConfigDict(extra="forbid")

    object_id: Annotated[StrictStr, Field(max_length=36), AfterValidator(_object_id)] = Field(
        description="the service principal's object id (GUID)"
    )
    validator_id: Annotated[str, Field(max_length=80), AfterValidator(_validator)]
    reason: str = Field(min_length=1, max_length=MAX_REASON, description="1 to 1,000 characters")
    expires_at: Annotated[str, Field(max_length=40), AfterValidator(_utc_time)] = Field(
        description=f"UTC ISO 8601, in the future and at most {MAX_EXCEPTION_DAYS} days ahead"
    )

    @field_validator("reason")
    @classmethod
    def _reason(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("give a reason")
        if any((ord(c) < 32 and c not in "\n\t") or 0x7F <= ord(c) < 0xA0 for c in value):
            raise ValueError("the reason holds control characters")
        return value.strip()


class DiscoveryInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    full_seed: StrictBool = Field(
        default=False, description="discard the stored deltaLinks and read a new baseline"
    )


# --- views -----------------------------------------------------------------------------------------


class FindingView(BaseModel):
    id: str
    object_id: str
    object_name: str
    app_id: str | None = None
    validator_id: str
    severity: Severity
    subject: str
    message: str
    evidence: dict[str, JsonValue]
    state: FindingState
    first_seen: str
    opened_at: str
    last_seen: str
    resolved_at: str | None = None
    exception_id: str | None = None


class FindingPage(BaseModel):
    items: list[FindingView] = Field(description="newest last_seen first")
    next: str | None = Field(
        default=None, description="pass back as `continuation` for the next page; null on the last page"
    )


class FindingsSummary(BaseModel):
    by_severity: dict[str, int] = Field(description="open findings by severity")
    by_validator: dict[str, int] = Field(description="open findings by validator")
    by_state: dict[str, int] = Field(description="findings by state: open, accepted, resolved")
    objects_failing: int = Field(description="service principals with at least one open finding")


class ObjectView(BaseModel):
    object_id: str
    display_name: str
    app_id: str | None = None
    service_principal_type: str | None = None
    last_result: EvaluationResult
    last_evaluated_at: str
    last_trigger: Trigger
    open_findings: int
    accepted_findings: int
    last_known_good: LastKnownGood | None = None
    remediation: Remediation | None = None


class ExceptionView(BaseModel):
    id: str
    object_id: str
    validator_id: str
    reason: str
    expires_at: str
    created_at: str
    created_by: str
    active: bool = Field(description="it holds now (before expires_at)")
    etag: str | None = Field(default=None, description="for If-Match on DELETE")


class ExceptionList(BaseModel):
    items: list[ExceptionView] = Field(description="soonest expiry first")


class HistoryEntry(BaseModel):
    id: str
    at: str
    actor: str
    actor_id: str
    auth: str
    action: str = Field(
        description="governance.evaluate, governance.notes.report, governance.notes.cannot-remediate, "
        "governance.notes.update, governance.exception.accept or governance.exception.revoke"
    )
    target_type: str
    target_id: str
    before: Any = None
    after: Any = None


class ObjectDetail(BaseModel):
    object: ObjectView
    findings: list[FindingView] = Field(description="every state, newest last_seen first")
    exceptions: list[ExceptionView]
    history: list[HistoryEntry] = Field(description=f"newest first, at most {MAX_HISTORY}")


class DiscoveryQueued(BaseModel):
    activity_id: str
    full_seed: bool


class ActivityView(BaseModel):
    id: str
    kind: ActivityKind
    trigger: Trigger
    started_at: str
    ended_at: str | None = None
    status: ActivityStatus
    lock: LockState
    counts: ActivityCounts
    errors: list[ActivityError]
    details: dict[str, JsonValue]


class ActivityList(BaseModel):
    items: list[ActivityView] = Field(description="newest first")


class GovernanceStatus(BaseModel):
    mode: UpdateMode = Field(description="GOVERNANCE_UPDATE_MODE")
    activities: list[ActivityView] = Field(description=f"the last {STATUS_ACTIVITIES}, newest first")
    error: str | None = Field(default=None, description="why the activities could not be read")


def finding_view(finding: FindingRecord) -> FindingView:
    return FindingView.model_validate(finding.model_dump(mode="json"))


def object_view(record: ObjectRecord) -> ObjectView:
    return ObjectView.model_validate(record.model_dump(mode="json"))


def exception_view(exception: ExceptionRecord, now: dt.datetime, etag: str | None) -> ExceptionView:
    return ExceptionView.model_validate(
        {
            **exception.model_dump(mode="json"),
            "active": exception.active(now),
            "etag": quoted(etag) if etag else None,
        }
    )


def activity_view(activity: ActivityRecord) -> ActivityView:
    return ActivityView.model_validate(activity.model_dump(mode="json"))


def summarize(facts: list[FindingFact]) -> FindingsSummary:
    """Counts of findings: the open ones by severity and validator (every known one listed, zeros too),
    all by state, and the objects with an open one."""
    open_facts = [f for f in facts if f.state == "open"]
    severities: Counter[str] = Counter(f.severity for f in open_facts)
    validators = Counter(f.validator_id for f in open_facts)
    states: Counter[str] = Counter(f.state for f in facts)
    by_validator = {v: validators.get(v, 0) for v in VALIDATOR_IDS}
    by_validator.update({v: n for v, n in sorted(validators.items()) if v not in by_validator})
    return FindingsSummary(
        by_severity={s: severities.get(s, 0) for s in SEVERITIES},
        by_validator=by_validator,
        by_state={s: states.get(s, 0) for s in FINDING_STATES},
        objects_failing=len({f.object_id for f in open_facts}),
    )


def governance_status(
    mode: UpdateMode, activities: ActivityStore, tenant_id: str, *, limit: int = STATUS_ACTIVITIES
) -> GovernanceStatus:
    """The `governance` block of GET /api/status; an unreadable activity store is reported, not raised,
    so it does not hide the rest of the status."""
    try:
        recent = activities.recent(tenant_id, None, limit)
    except Exception as exc:
        logger.warning("could not read the governance activities for the status: %s", exc)
        text = redact(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")[:300]
        return GovernanceStatus(mode=mode, activities=[], error=text)
    return GovernanceStatus(mode=mode, activities=[activity_view(a) for a in recent])


# --- what the routes read ------------------------------------------------------------------------------


class GovernanceReads(Protocol):
    """The reads of shared.governance.store.CosmosGovernanceStore the routes make."""

    def object_state(self, tenant_id: str, object_id: str) -> ObjectState: ...

    def get_exception(self, tenant_id: str, exception_id: str) -> Stored[ExceptionRecord] | None: ...

    def findings_page(
        self, tenant_id: str, query: FindingQuery, states: tuple[FindingState, ...] = ()
    ) -> list[FindingRecord]: ...

    def finding_facts(self, tenant_id: str) -> list[FindingFact]: ...

    def stored_exceptions(
        self, tenant_id: str, object_id: str | None = None
    ) -> list[Stored[ExceptionRecord]]: ...


class ObjectAuditTrail(Protocol):
    def about(self, tenant_id: str, target_type: str, target_id: str, limit: int) -> list[AuditRecord]:
        """Audit records about one object, newest first, at most `limit`."""
        ...


class CosmosObjectAuditTrail:
    """ObjectAuditTrail on the `audit` container (partition key the tenant): one single-partition
    query on target_type and target_id, ordered as GET /api/audit orders (at, id)."""

    def __init__(self, container: ContainerProxy) -> None:
        self._container = container

    def about(self, tenant_id: str, target_type: str, target_id: str, limit: int) -> list[AuditRecord]:
        rows = self._container.query_items(
            "SELECT TOP @limit * FROM c WHERE c.pk = @pk AND c.target_type = @type AND c.target_id = @id "
            "ORDER BY c.at DESC, c.id DESC",
            parameters=[
                {"name": "@limit", "value": limit},
                {"name": "@pk", "value": tenant_id},
                {"name": "@type", "value": target_type},
                {"name": "@id", "value": target_id},
            ],
            partition_key=tenant_id,
        )
        return [
            AuditRecord.model_validate({k: v for k, v in r.items() if not k.startswith("_")}) for r in rows
        ]


def _actor(principal: Principal) -> Actor:
    return Actor(name=principal.name[:200], id=principal.subject, auth=principal.auth)


def precondition_failed() -> ApiProblem:
    return ApiProblem(
        412,
        "Precondition Failed",
        "the exception changed since the ETag given in If-Match: read it again",
        kind="precondition-failed",
    )


class GovernanceApi(Resource):
    def __init__(
        self,
        guard: ApiGuard,
        service: GovernanceService,
        store: GovernanceReads,
        activities: ActivityStore,
        trail: ObjectAuditTrail,
        discovery_queue: MessageQueue,
        audit: AuditLog,
        signer: ContinuationSigner,
        tenant_id: str,
        clock: Clock,
    ) -> None:
        self.guard = guard
        self._service = service
        self._store = store
        self._activities = activities
        self._trail = trail
        self._queue = discovery_queue
        self._audit = audit
        self._signer = signer
        self._tenant_id = tenant_id
        self._clock = clock

    # -- findings -------------------------------------------------------------------------------------

    @route(
        "GET",
        "governance/findings",
        "list_governance_findings",
        operation_id="listGovernanceFindings",
        role=Role.READER,
        summary="Findings of service principal governance, newest last seen first",
        query=FindingsQuery,
        body=None,
        response=FindingPage,
        description=(
            "Filtered by validator, severity, object (a service principal's object id) and state (open, "
            "accepted or resolved; by default open and accepted). Pass `next` back as `continuation` for "
            "the next page."
        ),
    )
    def list_governance_findings(self, call: Call[FindingsQuery, None]) -> Reply:
        query = call.query
        fingerprint = query_hash(
            {**query.model_dump(exclude={"continuation"}), "kind": "governance-findings"}
        )
        after: tuple[str, str] | None = None
        if query.continuation:
            position = self._signer.decode(query.continuation, fingerprint)
            seen, ident = position.get("last_seen"), position.get("id")
            if not isinstance(seen, str) or not isinstance(ident, str):
                raise bad_request("the continuation token is not valid", field="continuation")
            after = (seen, ident)
        found = self._store.findings_page(
            self._tenant_id,
            FindingQuery(
                validator_id=query.validator,
                severity=query.severity,
                object_id=query.object,
                state=query.state,
                limit=query.limit + 1,
                after=after,
            ),
            () if query.state is not None else DEFAULT_STATES,
        )
        items = found[: query.limit]
        token = None
        if len(found) > query.limit:
            last = items[-1]
            token = self._signer.encode(fingerprint, {"last_seen": last.last_seen, "id": last.id})
        return FindingPage(items=[finding_view(f) for f in items], next=token)

    @route(
        "GET",
        "governance/findings/summary",
        "governance_findings_summary",
        operation_id="governanceFindingsSummary",
        role=Role.READER,
        summary="Open findings by severity and validator, findings by state, objects failing",
        query=NoQuery,
        body=None,
        response=FindingsSummary,
        description="One single-partition query of four properties per finding, counted by the app.",
    )
    def governance_findings_summary(self, call: Call[NoQuery, None]) -> Reply:
        return summarize(self._store.finding_facts(self._tenant_id))

    # -- one object ------------------------------------------------------------------------------------

    @route(
        "GET",
        "governance/objects/{id}",
        "get_governance_object",
        operation_id="getGovernanceObject",
        role=Role.READER,
        summary="One service principal's last evaluation, findings, exceptions and history",
        query=NoQuery,
        body=None,
        response=ObjectDetail,
        path_params=(OBJECT_ID,),
        description=(
            "The object as last evaluated (result, last-known-good, notes remediation), its findings in "
            "every state, its exceptions, and the newest 50 audit entries about it (evaluations, "
            "remediation reported or sent, exceptions accepted or revoked). 404 for an object never "
            "evaluated."
        ),
    )
    def get_governance_object(self, call: Call[NoQuery, None]) -> Reply:
        object_id = call.params["id"].lower()
        state = self._store.object_state(self._tenant_id, object_id)
        if state.record is None:
            raise not_found("service principal", object_id)
        now = self._clock.now()
        findings = sorted(
            (s.value for s in state.findings.values()), key=lambda f: (f.last_seen, f.id), reverse=True
        )
        exceptions = sorted(state.exceptions, key=lambda e: (e.value.expires_at, e.value.id))
        history = self._trail.about(self._tenant_id, TARGET_TYPE, object_id, MAX_HISTORY)
        return ObjectDetail(
            object=object_view(state.record.value),
            findings=[finding_view(f) for f in findings],
            exceptions=[exception_view(e.value, now, e.etag) for e in exceptions],
            history=[HistoryEntry.model_validate(h.model_dump()) for h in history[:MAX_HISTORY]],
        )

    # -- exceptions -------------------------------------------------------------------------------------

    @route(
        "GET",
        "governance/exceptions",
        "list_governance_exceptions",
        operation_id="listGovernanceExceptions",
        role=Role.READER,
        summary="Accepted risks: an exception per service principal and validator, soonest expiry first",
        query=ExceptionsQuery,
        body=None,
        response=ExceptionList,
        description="Active and expired ones (`active`), each with its ETag for If-Match; at most 1,000.",
    )
    def list_governance_exceptions(self, call: Call[ExceptionsQuery, None]) -> Reply:
        now = self._clock.now()
        found = self._store.stored_exceptions(self._tenant_id, call.query.object)
        return ExceptionList(items=[exception_view(s.value, now, s.etag) for s in found])

    @route(
        "POST",
        "governance/exceptions",
        "create_governance_exception",
        operation_id="createGovernanceException",
        role=Role.ADMIN,
        summary="Accept the risk of one validator on one service principal until a time",
        query=NoQuery,
        body=ExceptionInput,
        response=ExceptionView,
        status=201,
        extra_statuses=(200,),
        description=(
            "While it holds, the validator's findings on the object are `accepted`, not open, and notes "
            "remediation leaves the notes alone. One per object and validator: 201 when new, 200 when it "
            "replaces one (reason and expiry). 404 for an object never evaluated. Recorded in the audit "
            "log as the caller; the ETag header gives its ETag."
        ),
    )
    def create_governance_exception(self, call: Call[NoQuery, ExceptionInput]) -> Reply:
        body = call.body
        now = self._clock.now()
        expires = parse_utc(body.expires_at)
        if expires <= now:
            raise bad_request("expires_at must be in the future", field="expires_at")
        if expires > now + dt.timedelta(days=MAX_EXCEPTION_DAYS):
            raise bad_request(f"expires_at is at most {MAX_EXCEPTION_DAYS} days ahead", field="expires_at")
        state = self._store.object_state(self._tenant_id, body.object_id)
        if state.record is None:
            raise not_found("service principal", body.object_id)
        ident = exception_id(self._tenant_id, body.object_id, body.validator_id)
        existed = any(e.value.id == ident for e in state.exceptions)
        try:
            record = self._service.accept_risk(
                self._tenant_id,
                body.object_id,
                body.validator_id,
                body.reason,
                expires,
                _actor(call.principal),
                now,
            )
        except ExceptionError as exc:
            raise bad_request(str(exc), field="body") from None
        stored = self._store.get_exception(self._tenant_id, record.id)
        etag = stored.etag if stored is not None else None
        logger.info(
            "exception %s (%s on %s) set by %s",
            record.id,
            body.validator_id,
            body.object_id,
            call.principal.name,
        )
        status = 200 if existed else 201
        response = json_response(exception_view(record, now, etag).model_dump(mode="json"), status=status)
        if etag:
            response.headers["ETag"] = quoted(etag)
        return response

    @route(
        "DELETE",
        "governance/exceptions/{id}",
        "delete_governance_exception",
        operation_id="deleteGovernanceException",
        role=Role.ADMIN,
        summary="Revoke an exception: the validator's findings on the object are open again",
        query=NoQuery,
        body=EmptyBody,
        response=None,
        path_params=(EXCEPTION_ID,),
        status=204,
        max_body_bytes=DELETE_BODY_BYTES,
        if_match=True,
        description=(
            "204 with no body; with If-Match only if its ETag is still that one (412 otherwise). Takes no "
            "body, or {}. Recorded in the audit log as the caller."
        ),
    )
    def delete_governance_exception(self, call: Call[NoQuery, EmptyBody]) -> Reply:
        ident = call.params["id"]
        tags = if_match(call.headers)
        current = self._store.get_exception(self._tenant_id, ident)
        if current is None:
            raise not_found("exception", ident)
        if tags is not None and (current.etag is None or not matches(tags, current.etag)):
            raise precondition_failed()
        exception = current.value
        revoked = self._service.revoke_risk(
            self._tenant_id,
            exception.object_id,
            exception.validator_id,
            _actor(call.principal),
            self._clock.now(),
        )
        if not revoked:
            raise not_found("exception", ident)  # revoked by someone else meanwhile
        logger.info("exception %s revoked by %s", ident, call.principal.name)
        return ApiResponse(204, b"", headers={"Cache-Control": "no-store"})

    # -- discovery and activities ---------------------------------------------------------------------

    @route(
        "POST",
        "governance/discovery",
        "request_governance_discovery",
        operation_id="requestGovernanceDiscovery",
        role=Role.ADMIN,
        summary="Queue a discovery of changed service principals, or a full seed",
        query=NoQuery,
        body=DiscoveryInput,
        response=DiscoveryQueued,
        status=202,
        max_body_bytes=DISCOVERY_BODY_BYTES,
        description=(
            "Queues a discovery request (trigger `request`) and answers 202 with the id of the discovery "
            "activity it will record (GET /api/governance/activities). `full_seed` true reads a new "
            "baseline. An empty body is `full_seed` false. With an Idempotency-Key a retry names the same "
            "activity. Recorded in the audit log."
        ),
    )
    def request_governance_discovery(self, call: Call[NoQuery, DiscoveryInput]) -> Reply:
        principal, key = call.principal, call.idempotency_key
        now = self._clock.now()
        cause = f"request:{principal.subject}:{key}" if key is not None else f"request:{uuid.uuid4().hex}"
        ident = activity_id("discovery", self._tenant_id, cause)
        request = DiscoveryRequest(
            tenant_id=self._tenant_id,
            activity_id=ident,
            trigger="request",
            full_seed=call.body.full_seed,
            requested_at=utc_iso(now),
            requested_by=principal.name[:200],
        )
        self._queue.send_message(request.model_dump_json())
        self._audit.record(
            principal,
            "governance.discovery.request",
            "governance",
            ident,
            None,
            {"activity_id": ident, "full_seed": call.body.full_seed},
            request_id=key,
        )
        logger.info(
            "governance discovery %s (full seed %s) requested by %s",
            ident,
            call.body.full_seed,
            principal.name,
        )
        return DiscoveryQueued(activity_id=ident, full_seed=call.body.full_seed)

    @route(
        "GET",
        "governance/activities",
        "list_governance_activities",
        operation_id="listGovernanceActivities",
        role=Role.READER,
        summary="Discovery runs and evaluation and update batches, newest first",
        query=ActivitiesQuery,
        body=None,
        response=ActivityList,
        description="Each with its trigger, times, status, lock state, counts and errors.",
    )
    def list_governance_activities(self, call: Call[ActivitiesQuery, None]) -> Reply:
        found = self._activities.recent(self._tenant_id, call.query.kind, call.query.limit)
        return ActivityList(items=[activity_view(a) for a in found])

    def status(self) -> GovernanceStatus:
        return governance_status(self._service.mode, self._activities, self._tenant_id)
