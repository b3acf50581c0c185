"""Governance discovery: which service principals changed, read whole, as `GovernedObject`s.

One run for a tenant (`GovernanceDiscovery.run`):

1. Takes the tenant's lease (shared.governance.delta_state). Another run holding it: the result says
   `lock="held"` (with the holder and since when) and nothing else happens: the seed's "Processor
   Locked".
2. Follows the stored `@odata.deltaLink` of `servicePrincipals/delta` and of `applications/delta`
   (credentials, owners and the publisher of an app registration live on the application object), or
   lists both from scratch:
   - **baseline**: the first run (no stored link) or a forced full seed. Every service principal is
     read; deleted ones (`@removed`) are ignored, counted in `skipped_deleted`.
   - **resync**: a stored token Graph no longer knows (`410 Gone`, DeltaExpired), or a stored link made
     with another `$select` or on another endpoint. Also a full listing; counted in `resynced`, with the
     reason in `resync_reasons`, and added to the stored total.
   - **incremental**: the objects delta reports since the last run, plus the ones whose reads failed
     last time (`pending`). An application that changed brings its service principal. Removed service
     principals are listed in `removed_ids` (their findings can be closed) and counted as skipped.
3. Reads what the validators need about each object through JSON batches of 20 (GraphReader): its
   owners (`$select=id,displayName,userPrincipalName,accountEnabled,userType,appId`), its
   appRoleAssignments, its memberOf (directory roles), its application and the application's owners
   when the app is registered in this tenant, and once per sweep the Microsoft Graph resource principal's
   appRoles (so each permission gets its name). A baseline takes the objects and applications as the
   delta listed them (complete); an incremental round reads each changed object again, since Graph
   reports an update with "at least the properties that have been updated".
4. Hands each object that was read whole to the sink (`DiscoverySink.accept`, in chunks), then saves the
   new deltaLinks and the objects to read again in one transaction that checks the lease is still this
   run's. An object whose read failed (after retries) is not handed off; it is recorded in `errors` and
   read again by the next run. A run that fails (a delta page or a batch call that kept failing, the
   lease lost) saves nothing: the next run starts from the same links.

Requests: `counts.requests` are the HTTP requests the sweep sent (every attempt), `minimum_requests`
delta pages + ceil(reads / 20). Against the tenant simulator's 5,000 live service principals (and 169
deleted), a baseline took 44 delta pages (26 + 18) and 18,309 reads (owners, appRoleAssignments and
memberOf of each, the owners of the two thirds of applications registered here, the Graph resource) in
916 batches: 960 requests, the minimum (tests/integration/test_governance_discovery.py prints it).

For the queue piece (shared.governance.messages): a `DiscoveryRequest` becomes
`run(request.tenant_id, run_id=request.activity_id, trigger=request.trigger, full_seed=request.full_seed,
sink=..., deadline=...)`; the sink turns each `DiscoveredObject` into an `EvaluateObject` (`object_id` =
`governed.id`, `evaluation_id(tenant, object_id, request.activity_id)`, `trigger="discovery"`, `cause` =
the activity id, `observed_at`, `snapshot=governed`, sent as `queue_text()`); the result fills the
discovery `ActivityRecord`: `status` and `lock` as they are, counts `discovered`, `skipped`
(`skipped_deleted` + `out_of_scope`) and `errors`, `errors` (at, message, object_id), and `details` =
`activity_details()`. `read_objects` reads principals by id for an `EvaluateObject` without a snapshot.

Scope: `in_scope` (e.g. `scope_filter(validator_set)`) skips the reads of service principals no enabled
validator looks at (Microsoft's own apps, managed identities); they are counted in `out_of_scope`. After
widening a scope, request a full seed so that the objects skipped before are read.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, JsonValue, ValidationError

from shared.governance.config import ValidatorSet
from shared.governance.delta_state import (
    MAX_PENDING_IDS,
    DeltaCursor,
    DeltaState,
    DeltaStateStore,
    DiscoveryLocked,
    Lease,
    LeaseLost,
)
from shared.governance.graph_reader import (
    DELTA_RESOURCES,
    DELTA_SELECT,
    BatchGet,
    DeltaExpired,
    DeltaResource,
    DeltaRound,
    GraphPaths,
    GraphReader,
    ReadAnswer,
    ReadStats,
)
from shared.governance.model import MICROSOFT_GRAPH_APP_ID, GovernedObject, ServicePrincipal
from shared.m365.http_client import ApiClient, ApiError
from shared.platform.clock import Clock, parse_utc, utc_iso
from shared.platform.redact import redact

logger = logging.getLogger(__name__)

GUID = re.compile(r"^[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
SINK_CHUNK = 100
MAX_RESULT_ERRORS = 20
MAX_ERROR_TEXT = 500
MAX_FULL_ROUND_TRIES = 2  # a skip token can expire mid-round too: one more full listing, then fail

DiscoveryMode = Literal["baseline", "incremental", "resync"]
DiscoveryStatus = Literal["succeeded", "failed", "locked"]
Reason = Literal["baseline", "changed", "application-changed", "pending", "requested"]
ServicePrincipalFilter = Callable[[ServicePrincipal], bool]


class DiscoveredObject(BaseModel):
    """One service principal read whole. `observed_at` is when its reads completed (UTC ISO-8601);
    `reason` why it was read: part of a baseline or resync, reported changed by servicePrincipals/delta,
    brought by its application's change, read again after a failed read, or asked for by id."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    governed: GovernedObject
    observed_at: str
    reason: Reason


class DiscoverySink(Protocol):
    """Where discovered objects go (the evaluate queue). Called in chunks of up to 100, in delta order;
    an exception stops the run before its deltaLinks are saved (the next run reads the objects again)."""

    def accept(self, objects: Sequence[DiscoveredObject]) -> None: ...


class CollectingSink:
    """A sink that keeps everything (tests, the CLI, small tenants)."""

    def __init__(self) -> None:
        self.objects: list[DiscoveredObject] = []

    def accept(self, objects: Sequence[DiscoveredObject]) -> None:
        self.objects.extend(objects)


class ObjectError(BaseModel):
    """Why an object, or the sweep, was not read whole. `object_id` None: the sweep itself."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    at: str
    message: str
    object_id: str | None = None


class DiscoveryCounts(BaseModel):
    model_config = ConfigDict(extra="forbid")

    service_principals_reported: int = 0  # live objects servicePrincipals/delta reported
    applications_reported: int = 0  # live objects applications/delta reported
    discovered: int = 0  # objects handed to the sink
    skipped_deleted: int = 0  # @removed service principals, and objects gone before their reads
    out_of_scope: int = 0
    errors: int = 0  # objects not read whole (read again next run), and sweep-level failures
    resynced: int = 0  # full listings started because a token expired or a link was unusable
    pending: int = 0  # object ids saved to be read again next run
    delta_pages: int = 0
    reads: int = 0
    batches: int = 0
    requests: int = 0
    minimum_requests: int = 0
    inner_retries: int = 0  # requests inside a batch sent again (429 or 5xx)
    inner_throttled: int = 0
    inner_server_errors: int = 0
    outer_retries: int = 0  # delta pages, batches and pages sent again (the ApiClient's retries)
    extra_pages: int = 0  # nextLink pages of collections answered inside a batch

    @property
    def request_ratio(self) -> float | None:
        """Requests sent over the minimum (1.0: every batch full, nothing retried)."""
        return self.requests / self.minimum_requests if self.minimum_requests else None


class DiscoveryResult(BaseModel):
    """What one discovery run did: everything its activity record needs."""

    model_config = ConfigDict(extra="forbid")

    tenant_id: str
    run_id: str
    trigger: str
    status: DiscoveryStatus
    lock: Literal["acquired", "held"]
    held_by: str | None = None
    held_since: str | None = None
    mode: DiscoveryMode | None = None
    started_at: str
    ended_at: str
    counts: DiscoveryCounts = DiscoveryCounts()
    resync_reasons: tuple[str, ...] = ()
    removed_ids: tuple[str, ...] = ()
    errors: tuple[ObjectError, ...] = ()
    failure: str | None = None

    def activity_details(self) -> dict[str, JsonValue]:
        """The run's specifics for an activity record's `details` (beside its counts, lock and errors)."""
        counts = self.counts
        return {
            "mode": self.mode,
            "run_id": self.run_id,
            "held_by": self.held_by,
            "held_since": self.held_since,
            "resynced": counts.resynced,
            "resync_reasons": list(self.resync_reasons),
            "removed": len(self.removed_ids),
            "out_of_scope": counts.out_of_scope,
            "skipped_deleted": counts.skipped_deleted,
            "pending": counts.pending,
            "service_principals_reported": counts.service_principals_reported,
            "applications_reported": counts.applications_reported,
            "delta_pages": counts.delta_pages,
            "reads": counts.reads,
            "batches": counts.batches,
            "requests": counts.requests,
            "minimum_requests": counts.minimum_requests,
            "inner_retries": counts.inner_retries,
            "outer_retries": counts.outer_retries,
            "failure": self.failure,
        }


class DiscoveryFailed(RuntimeError):
    """The sweep cannot hand off trustworthy objects (the Graph resource's app roles were not read)."""


def scope_filter(validators: ValidatorSet) -> ServicePrincipalFilter:
    """In scope: some enabled validator's scope (its own, else the file's) applies to the principal."""
    scopes = [validators.scope_for(v) for v in validators.enabled()]

    def in_scope(principal: ServicePrincipal) -> bool:
        probe = GovernedObject(service_principal=principal)
        return any(scope.applies_to(probe) for scope in scopes)

    return in_scope


def _is_guid(value: object) -> bool:
    return isinstance(value, str) and GUID.fullmatch(value) is not None


# ---------------------------------------------------------------------------------------------------
# Reading objects whole
# ---------------------------------------------------------------------------------------------------


@dataclass
class ObjectReads:
    """What one read of a set of objects gave."""

    objects: list[tuple[GovernedObject, Reason]] = field(default_factory=list)
    gone: set[str] = field(default_factory=set)  # service principals deleted before their reads
    out_of_scope: set[str] = field(default_factory=set)
    errors: list[ObjectError] = field(default_factory=list)
    pending_service_principals: list[str] = field(default_factory=list)
    pending_applications: list[str] = field(default_factory=list)


class ObjectReader:
    """Reads service principals whole for the validators, through one GraphReader's batches.

    Known records (a baseline's delta listing) are taken as complete; ids alone (an incremental round,
    pending ids, an evaluation asked for by id) are read first. `tenant_id` (a GUID) tells which
    applications are registered here (`appOwnerOrganizationId`); without it every changed principal's
    application is looked up (a 404 means none).
    """

    def __init__(
        self,
        reader: GraphReader,
        clock: Clock,
        *,
        tenant_id: str | None,
        in_scope: ServicePrincipalFilter | None = None,
        on_progress: Callable[[], None] | None = None,
    ) -> None:
        self._reader = reader
        self._clock = clock
        self._tenant = tenant_id.lower() if _is_guid(tenant_id) and tenant_id else None
        self._in_scope = in_scope
        self._on_progress = on_progress
        self._full = False
        self._order: list[str] = []
        self._reasons: dict[str, Reason] = {}
        self._records: dict[str, dict[str, Any]] = {}
        self._apps: dict[str, dict[str, Any] | None] = {}  # by appId; None: not registered here
        self._app_ids: dict[str, str] = {}  # application object id -> appId
        self._lists: dict[str, list[dict[str, Any]]] = {}  # "owners:{id}" ... -> items
        self._failed: dict[str, str] = {}  # service principal id or "app:{appId}" -> message
        self._failed_apps: dict[str, str] = {}  # application object id -> message (app-only changes)
        self._resource: dict[str, Any] | None = None
        self._result = ObjectReads()

    def read(
        self,
        *,
        records: Iterable[dict[str, Any]] = (),
        applications: Iterable[dict[str, Any]] | None = None,
        service_principal_ids: Iterable[tuple[str, Reason]] = (),
        application_ids: Iterable[tuple[str, Reason]] = (),
    ) -> ObjectReads:
        """Read every object named. `records` are complete servicePrincipal records (a full listing);
        `applications` then the complete listing of the tenant's applications (every app not in it is
        not registered here). `service_principal_ids` and `application_ids` are object ids to read."""
        if applications is not None:
            self._full = True
            for app in applications:
                app_id, object_id = app.get("appId"), app.get("id")
                if _is_guid(app_id) and _is_guid(object_id):
                    self._apps[str(app_id).lower()] = app
                    self._app_ids[str(object_id).lower()] = str(app_id).lower()
        initial: list[BatchGet] = []
        for record in records:
            initial.extend(self._on_record(record, "baseline"))
        for object_id, reason in service_principal_ids:
            if not _is_guid(object_id):
                self._error(object_id, "not a GUID: not read")
                continue
            sid = object_id.lower()
            if sid in self._records or sid in self._reasons:
                continue
            self._reasons[sid] = reason
            initial.append(BatchGet(f"sp:{sid}", GraphPaths.service_principal(sid)))
        for object_id, reason in application_ids:
            if not _is_guid(object_id):
                continue
            aid = object_id.lower()
            initial.append(BatchGet(f"app-obj:{aid}", GraphPaths.application(aid)))
            self._reasons.setdefault(f"app-obj:{aid}", reason)
        if not initial:
            return self._result
        # The Microsoft Graph resource principal's appRoles name every permission: first in the queue.
        initial.insert(0, BatchGet("resource:graph", GraphPaths.resource_by_app_id(MICROSOFT_GRAPH_APP_ID)))
        self._reader.read_all(initial, self._on_answer)
        self._assemble()
        return self._result

    # -- answers --------------------------------------------------------------------------------

    def _on_answer(self, answer: ReadAnswer) -> list[BatchGet]:
        if self._on_progress is not None:
            self._on_progress()
        kind, _, ident = answer.key.partition(":")
        if kind == "resource":
            if not answer.ok or answer.body is None:
                raise DiscoveryFailed(
                    "the Microsoft Graph resource principal could not be read "
                    f"({_describe(answer)}): permissions would have no names"
                )
            self._resource = answer.body
            return []
        if kind in ("sp", "sp-app"):
            if answer.ok and answer.body is not None:
                reason = self._reasons.get(ident) or self._reasons.get(f"app-obj:{self._aid_of(ident)}")
                return self._on_record(answer.body, reason or "changed")
            if answer.not_found:
                if kind == "sp":
                    self._result.gone.add(ident)
                return []  # sp-app 404: an application without a service principal here
            if kind == "sp":
                self._failed[ident] = _describe(answer)
            else:
                aid = self._aid_of(ident)
                if aid is not None:
                    self._failed_apps[aid] = _describe(answer)
            return []
        if kind == "app-obj":
            if answer.ok and answer.body is not None and _is_guid(answer.body.get("appId")):
                app_id = str(answer.body["appId"]).lower()
                self._apps[app_id] = answer.body
                self._app_ids[ident] = app_id
                return [BatchGet(f"sp-app:{app_id}", GraphPaths.service_principal_by_app_id(app_id))]
            if not answer.not_found:
                self._failed_apps[ident] = _describe(answer)
            return []
        if kind == "app":
            if answer.ok and answer.body is not None:
                self._apps[ident] = answer.body
            elif answer.not_found:
                self._apps.setdefault(ident, None)
            else:
                self._failed[f"app:{ident}"] = _describe(answer)
            return []
        if kind == "app-owners":
            if answer.ok:
                self._lists[answer.key] = answer.values()
            elif answer.not_found:
                self._lists[answer.key] = []
            else:
                self._failed[f"app:{ident}"] = _describe(answer)
            return []
        # owners, assign, memberof of a service principal
        if answer.ok:
            self._lists[answer.key] = answer.values()
        elif answer.not_found:
            self._result.gone.add(ident)
        else:
            self._failed[ident] = _describe(answer)
        return []

    def _aid_of(self, app_id: str) -> str | None:
        return next((aid for aid, known in self._app_ids.items() if known == app_id), None)

    def _on_record(self, record: Mapping[str, Any], reason: Reason) -> list[BatchGet]:
        """A complete servicePrincipal record: plan the reads that make it whole."""
        object_id = record.get("id")
        if not _is_guid(object_id):
            self._error(None, "a service principal without a GUID id was skipped")
            return []
        sid = str(object_id).lower()
        if sid in self._records:
            return []
        self._records[sid] = dict(record)
        self._order.append(sid)
        self._reasons[sid] = reason
        try:
            principal = ServicePrincipal.from_graph(record)
        except (ValidationError, ValueError) as error:
            self._failed[sid] = f"unreadable service principal: {_first_line(error)}"
            return []
        if self._in_scope is not None and not self._in_scope(principal):
            self._result.out_of_scope.add(sid)
            return []
        reads = [
            BatchGet(f"owners:{sid}", GraphPaths.owners(sid)),
            BatchGet(f"assign:{sid}", GraphPaths.app_role_assignments(sid)),
            BatchGet(f"memberof:{sid}", GraphPaths.member_of(sid)),
        ]
        app_id = principal.app_id
        if app_id is None:
            return reads
        if app_id in self._apps:
            app = self._apps[app_id]
            if app is not None and _is_guid(app.get("id")):
                path = GraphPaths.application_owners(str(app["id"]))
                reads.append(BatchGet(f"app-owners:{app_id}", path))
            return reads
        if self._full:
            return reads  # the full listing of applications does not have it: not registered here
        owner_tenant = principal.app_owner_organization_id
        if self._tenant is None or owner_tenant is None or owner_tenant == self._tenant:
            reads.append(BatchGet(f"app:{app_id}", GraphPaths.application_by_app_id(app_id)))
            reads.append(BatchGet(f"app-owners:{app_id}", GraphPaths.application_owners_by_app_id(app_id)))
        return reads

    # -- assembly -------------------------------------------------------------------------------

    def _assemble(self) -> None:
        result = self._result
        resources = [self._resource] if self._resource is not None else []
        for sid in self._order:
            if sid in result.out_of_scope or sid in result.gone:
                continue
            record = self._records[sid]
            app_id = str(record.get("appId") or "").lower() or None
            problem = self._failed.get(sid) or (self._failed.get(f"app:{app_id}") if app_id else None)
            lists = [self._lists.get(f"{kind}:{sid}") for kind in ("owners", "assign", "memberof")]
            if problem is None and any(items is None for items in lists):
                problem = "some of its reads did not complete"
            if problem is not None:
                if not problem.startswith("unreadable"):
                    result.pending_service_principals.append(sid)
                self._error(sid, problem)
                continue
            application = self._apps.get(app_id) if app_id else None
            app_owners = self._lists.get(f"app-owners:{app_id}", []) if application is not None else []
            owners, assignments, member_of = (items or [] for items in lists)
            try:
                governed = GovernedObject.from_graph(
                    record,
                    application=application,
                    owners=owners,
                    application_owners=app_owners,
                    app_role_assignments=assignments,
                    resources=resources,
                    member_of=member_of,
                )
            except (ValidationError, ValueError) as error:
                self._error(sid, f"Graph's answer does not fit the model: {_first_line(error)}")
                continue
            result.objects.append((governed, self._reasons.get(sid, "changed")))
        for aid, message in self._failed_apps.items():
            result.pending_applications.append(aid)
            self._error(aid, f"application: {message}")

    def _error(self, object_id: str | None, message: str) -> None:
        text = redact(message)[:MAX_ERROR_TEXT]
        self._result.errors.append(
            ObjectError(at=utc_iso(self._clock.now()), message=text, object_id=object_id)
        )


def _describe(answer: ReadAnswer) -> str:
    status = f"HTTP {answer.status}" if answer.status else "no answer"
    code = f" {answer.code}" if answer.code else ""
    message = f": {answer.message}" if answer.message else ""
    return f"{status}{code}{message} after {answer.attempts} attempt(s)"


def _first_line(error: Exception) -> str:
    return str(error).splitlines()[0] if str(error) else type(error).__name__


# ---------------------------------------------------------------------------------------------------
# The discovery run
# ---------------------------------------------------------------------------------------------------


@dataclass
class _Rounds:
    mode: DiscoveryMode
    service_principals: DeltaRound
    applications: DeltaRound
    reasons: list[str]


class GovernanceDiscovery:
    """Discovery of changed service principals for one tenant at a time (see the module docstring).

    `api` is the app's Graph client (its token provider, pooled connection, timeouts and retries are
    reused; requests are counted per run). `graph_base` and `scope` come from the cloud
    (shared.m365.cloud: `graph_base`, `graph_scope`). `store` keeps the deltaLinks and the lease.
    `tenant_id` given to `run` is the directory's tenant id (a GUID), also the state's partition.
    """

    def __init__(
        self,
        api: ApiClient,
        graph_base: str,
        scope: str,
        store: DeltaStateStore,
        clock: Clock,
        *,
        in_scope: ServicePrincipalFilter | None = None,
        concurrency: int = 4,
        renew_every: dt.timedelta = dt.timedelta(minutes=3),
        sink_chunk: int = SINK_CHUNK,
        full_sweep_every: dt.timedelta | None = None,
    ) -> None:
        self._api = api
        self._graph_base = graph_base
        self._scope = scope
        self._store = store
        self._clock = clock
        self._in_scope = in_scope
        self._concurrency = concurrency
        self._renew_every = renew_every
        self._sink_chunk = max(1, sink_chunk)
        self._full_sweep_every = full_sweep_every

    def reader(self, deadline: float | None = None) -> GraphReader:
        """A GraphReader for one sweep (its own request counters)."""
        return GraphReader(
            self._api, self._graph_base, self._scope, deadline=deadline, concurrency=self._concurrency
        )

    def read_objects(
        self, tenant_id: str | None, service_principal_ids: Iterable[str], *, deadline: float | None = None
    ) -> tuple[ObjectReads, ReadStats]:
        """Read the given service principals whole, without delta, lease or state (an evaluation asked
        for by id, e.g. from a directory audit event). Scope is not applied."""
        reader = self.reader(deadline)
        objects = ObjectReader(reader, self._clock, tenant_id=tenant_id).read(
            service_principal_ids=[(object_id, "requested") for object_id in service_principal_ids]
        )
        return objects, reader.stats

    def run(
        self,
        tenant_id: str,
        *,
        run_id: str,
        trigger: str,
        sink: DiscoverySink,
        full_seed: bool = False,
        deadline: float | None = None,
    ) -> DiscoveryResult:
        """One discovery of `tenant_id`. `run_id` names the run (the discovery activity's id: it becomes
        the lease's owner); `deadline` is a `clock.monotonic()` value after which no retry starts.

        Returns the result in every case it can describe: `status` "locked" (another run holds the
        tenant), "failed" (Graph kept failing, the lease was lost; nothing saved), "succeeded". An
        exception from the sink or the store propagates, after the lease is released."""
        started = self._clock.now()
        try:
            lease = self._store.acquire(tenant_id, run_id, started)
        except DiscoveryLocked as locked:
            logger.info("governance discovery of %s: the lease is held by %s", tenant_id, locked.holder)
            return DiscoveryResult(
                tenant_id=tenant_id,
                run_id=run_id,
                trigger=trigger,
                status="locked",
                lock="held",
                held_by=locked.holder,
                held_since=locked.since,
                started_at=utc_iso(started),
                ended_at=utc_iso(self._clock.now()),
            )
        run = _Run(self, tenant_id, run_id, trigger, lease, started, deadline)
        try:
            return run.execute(sink, full_seed)
        finally:
            if not self._store.release(run.lease, self._clock.now()):
                logger.warning("governance discovery of %s: the lease had been taken over", tenant_id)


class _Run:
    """The state of one discovery run (kept out of GovernanceDiscovery, which is shared)."""

    def __init__(
        self,
        owner: GovernanceDiscovery,
        tenant_id: str,
        run_id: str,
        trigger: str,
        lease: Lease,
        started: dt.datetime,
        deadline: float | None,
    ) -> None:
        self.owner = owner
        self.tenant_id = tenant_id
        self.run_id = run_id
        self.trigger = trigger
        self.lease = lease
        self.started = started
        self.clock = owner._clock
        self.reader = owner.reader(deadline)
        self.counts = DiscoveryCounts()
        self.errors: list[ObjectError] = []
        self.renewed = started

    def renew_if_due(self) -> None:
        now = self.clock.now()
        if now - self.renewed >= self.owner._renew_every:
            self.lease = self.owner._store.renew(self.lease, now)
            self.renewed = now

    def execute(self, sink: DiscoverySink, full_seed: bool) -> DiscoveryResult:
        store = self.owner._store
        mode: DiscoveryMode | None = None
        reasons: list[str] = []
        removed: tuple[str, ...] = ()
        failure: str | None = None
        try:
            state = store.load(self.tenant_id)
            rounds = self._rounds(state, full_seed)
            mode, reasons = rounds.mode, rounds.reasons
            self.renew_if_due()
            reads = self._read(state, rounds)
            if mode != "baseline":
                removed = rounds.service_principals.removed
            self._hand_off(sink, reads)
            pending_sp = tuple(dict.fromkeys(reads.pending_service_principals))
            pending_apps = tuple(dict.fromkeys(reads.pending_applications))
            self.counts.pending = len(pending_sp) + len(pending_apps)
            if max(len(pending_sp), len(pending_apps)) > MAX_PENDING_IDS:
                raise DiscoveryFailed(
                    f"{self.counts.pending} objects could not be read: the round is not saved and will be "
                    "read again"
                )
            now = self.clock.now()
            links: dict[DeltaResource, str] = {
                "servicePrincipals": rounds.service_principals.delta_link,
                "applications": rounds.applications.delta_link,
            }
            cursors = {
                resource: DeltaCursor(
                    resource=resource,
                    delta_link=link,
                    selection=",".join(DELTA_SELECT[resource]),
                    saved_at=utc_iso(now),
                    run_id=self.run_id,
                    round_kind=mode,
                )
                for resource, link in links.items()
            }
            new_state = DeltaState(
                tenant_id=self.tenant_id,
                cursors=cursors,
                pending_service_principals=pending_sp,
                pending_applications=pending_apps,
                last_baseline_at=utc_iso(now) if mode != "incremental" else state.last_baseline_at,
                resyncs=state.resyncs + self.counts.resynced,
            )
            self.lease = store.commit(self.lease, new_state, now)
        except (ApiError, LeaseLost, DiscoveryFailed, DeltaExpired) as error:
            failure = redact(str(error))[:MAX_ERROR_TEXT]
            self.counts.errors += 1
            self.errors.append(ObjectError(at=utc_iso(self.clock.now()), message=failure))
            logger.warning("governance discovery of %s failed: %s", self.tenant_id, failure)
        self._take_stats()
        return DiscoveryResult(
            tenant_id=self.tenant_id,
            run_id=self.run_id,
            trigger=self.trigger,
            status="failed" if failure is not None else "succeeded",
            lock="acquired",
            mode=mode,
            started_at=utc_iso(self.started),
            ended_at=utc_iso(self.clock.now()),
            counts=self.counts,
            resync_reasons=tuple(reasons),
            removed_ids=removed,
            errors=tuple(self.errors[:MAX_RESULT_ERRORS]),
            failure=failure,
        )

    # -- delta ----------------------------------------------------------------------------------

    def _rounds(self, state: DeltaState, full_seed: bool) -> _Rounds:
        """The two delta rounds of this run: from the stored links, or full listings (a baseline, or a
        resync when a stored link is unusable or its token expired). `resyncs` counts every full listing
        started for such a reason, including a second one when a skip token expired mid-listing."""
        reasons: list[str] = []
        links: dict[DeltaResource, str] = {}
        first_run = not full_seed and all(state.cursor(r) is None for r in DELTA_RESOURCES)
        sweep_every = self.owner._full_sweep_every
        if not full_seed and not first_run and sweep_every is not None:
            last = parse_utc(state.last_baseline_at) if state.last_baseline_at else None
            if last is None or self.clock.now() - last >= sweep_every:
                # Delta reports changes only: a credential nearing its expiry, or an owner disabled,
                # changes nothing on the service principal. A periodic full listing finds them.
                full_seed = True
                reasons.append(f"the periodic full sweep is due (every {sweep_every})")
        if full_seed:
            if not reasons:
                reasons.append("a full seed was requested")
        elif first_run:
            reasons.append("no stored deltaLink (first run)")
        else:
            for resource in DELTA_RESOURCES:
                cursor = state.cursor(resource)
                if cursor is None:
                    reasons.append(f"no stored {resource} deltaLink")
                elif cursor.selection != ",".join(DELTA_SELECT[resource]):
                    reasons.append(f"the stored {resource} deltaLink was made with another $select")
                elif not self.reader.on_graph_origin(cursor.delta_link):
                    reasons.append(f"the stored {resource} deltaLink is not on the Graph endpoint")
                else:
                    links[resource] = cursor.delta_link
        if len(links) == len(DELTA_RESOURCES):
            try:
                return _Rounds(
                    "incremental",
                    self.reader.delta_round("servicePrincipals", links["servicePrincipals"]),
                    self.reader.delta_round("applications", links["applications"]),
                    [],
                )
            except DeltaExpired as expired:
                reasons.append(
                    f"{expired.resource} delta token expired (HTTP {expired.status} {expired.code})"
                )
        mode: DiscoveryMode = "baseline" if full_seed or first_run else "resync"
        if mode == "resync":
            self.counts.resynced += 1
        for attempt in range(MAX_FULL_ROUND_TRIES):
            try:
                return _Rounds(
                    mode,
                    self.reader.delta_round("servicePrincipals"),
                    self.reader.delta_round("applications"),
                    reasons,
                )
            except DeltaExpired as expired:
                reasons.append(f"{expired.resource} skip token expired during a full listing")
                if attempt + 1 == MAX_FULL_ROUND_TRIES:
                    raise
                mode = "resync"
                self.counts.resynced += 1
        raise AssertionError("unreachable")

    # -- reads ----------------------------------------------------------------------------------

    def _read(self, state: DeltaState, rounds: _Rounds) -> ObjectReads:
        sp_round, app_round = rounds.service_principals, rounds.applications
        self.counts.service_principals_reported = len(sp_round.items)
        self.counts.applications_reported = len(app_round.items)
        self.counts.skipped_deleted = len(sp_round.removed)
        objects = ObjectReader(
            self.reader,
            self.clock,
            tenant_id=self.tenant_id,
            in_scope=self.owner._in_scope,
            on_progress=self.renew_if_due,
        )
        if rounds.mode != "incremental":
            reads = objects.read(records=sp_round.items, applications=app_round.items)
        else:
            changed: dict[str, Reason] = {}
            for item in sp_round.items:
                changed.setdefault(str(item["id"]).lower(), "changed")
            for object_id in state.pending_service_principals:
                changed.setdefault(object_id.lower(), "pending")
            apps: dict[str, Reason] = {
                str(item["id"]).lower(): "application-changed" for item in app_round.items
            }
            for object_id in state.pending_applications:
                apps.setdefault(object_id.lower(), "pending")
            reads = objects.read(service_principal_ids=changed.items(), application_ids=apps.items())
        self.counts.skipped_deleted += len(reads.gone - set(sp_round.removed))
        self.counts.out_of_scope = len(reads.out_of_scope)
        self.counts.errors += len(reads.errors)
        self.errors.extend(reads.errors)
        return reads

    def _hand_off(self, sink: DiscoverySink, reads: ObjectReads) -> None:
        observed = utc_iso(self.clock.now())
        chunk: list[DiscoveredObject] = []
        for governed, reason in reads.objects:
            chunk.append(DiscoveredObject(governed=governed, observed_at=observed, reason=reason))
            if len(chunk) >= self.owner._sink_chunk:
                sink.accept(chunk)
                self.counts.discovered += len(chunk)
                chunk = []
                self.renew_if_due()
        if chunk:
            sink.accept(chunk)
            self.counts.discovered += len(chunk)

    def _take_stats(self) -> None:
        stats = self.reader.stats
        c = self.counts
        c.delta_pages = stats.delta_pages
        c.reads = stats.reads
        c.batches = stats.batches
        c.requests = stats.requests
        c.minimum_requests = stats.minimum_requests
        c.inner_retries = stats.inner_retries
        c.inner_throttled = stats.inner_throttled
        c.inner_server_errors = stats.inner_server_errors
        c.outer_retries = stats.outer_retries
        c.extra_pages = stats.extra_pages
