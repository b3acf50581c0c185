"""The governance queue pipeline: the seed's three units of work (Discovery, Evaluate, Update) over
GovernanceDiscovery, GovernanceService, the ActivityStore and the queues.

- `discover(DiscoveryRequest)`: starts the discovery activity (its id is the request's `activity_id`,
  so a redelivered request starts nothing twice), runs one delta discovery of the tenant with a sink
  that queues one `EvaluateObject` per object read whole (with its snapshot, or without it when the
  snapshot would not fit a queue message: the evaluation then reads the object by id), retires the
  service principals delta reported removed (their findings are resolved, so a deleted app stops
  alerting), and finishes the activity: status and lock as the run ended ("locked": another run held
  the tenant, the seed's "Processor Locked"), counts discovered / skipped / errors, the errors, and the
  run's details (mode, resync reasons, requests, the evaluation batch it queued). A run that raised
  (the queue refused a message, the state store failed) is recorded as failed and raised again, so the
  request is delivered again; its deltaLinks were not saved, so nothing is lost. Each delivery holds
  the tenant's lease under its own name (`{activity id}.{token}`): a copy of the request delivered
  while the first still runs finds the lease held by it and leaves the run and the activity to it.
  The run stops starting Graph retries after `discovery_budget` (under the host's functionTimeout).
- `evaluate(EvaluateObject)`: without a snapshot (an audit event, a snapshot too big), reads the object
  first: the id may name a service principal or an application (an audit event about an app
  registration), both are asked in one JSON batch and an application brings its service principal by
  its appId (`servicePrincipals(appId='...')`). A service principal that is gone is retired. Then
  GovernanceService.evaluate; the outcome's `update` (GOVERNANCE_UPDATE_MODE=Update) goes to the update
  queue, and the outcome with the object to the optional FindingPublisher, whose notify messages are
  returned for the caller's output binding. A redelivered message is answered from what its first
  delivery recorded (the service's `duplicate`), and its update message is queued again: the update's
  Table claim keeps the PATCH to one.
- `update(UpdateNotes)`: GovernanceService.update (one PATCH per object and evaluation at most).

Batches: the evaluations a discovery queues share one evaluation activity,
`activity_id("evaluation", tenant, discovery activity id)`, whose parent is the discovery; their notes
updates one update activity (shared.governance.service). The event-driven path
(shared.app.governance_events) names its own batch per ingested page.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

from pydantic import JsonValue

from shared.governance.discovery import (
    DiscoveredObject,
    DiscoveryResult,
    GovernanceDiscovery,
    ObjectReader,
)
from shared.governance.messages import (
    DiscoveryRequest,
    EvaluateObject,
    UpdateNotes,
    activity_id,
    evaluation_id,
)
from shared.governance.model import GovernedObject
from shared.governance.records import ActivityCounts, ActivityError, ActivityRecord
from shared.governance.service import EvaluationOutcome, GovernanceService, UpdateOutcome
from shared.governance.store import ActivityStore
from shared.platform.clock import Clock, parse_utc, utc_iso
from shared.platform.redact import redact

logger = logging.getLogger(__name__)

# host.json functionTimeout is 10 minutes: no Graph retry starts after 8, so a run ends in time.
DISCOVERY_BUDGET = dt.timedelta(minutes=8)
READ_BUDGET = dt.timedelta(minutes=2)
SEND_CONCURRENCY = 8
MAX_ERROR_TEXT = 500


class QueueSender(Protocol):
    """One queue (in the app: azure.storage.queue QueueClient.send_message through get_clients().queue,
    which encodes as the Functions host reads)."""

    def send(self, text: str) -> None: ...


class FindingPublisher(Protocol):
    """Turns an evaluation's outcome into alerting (shared.governance.alerting): returns the messages for
    the notify queue."""

    def publish(self, outcome: EvaluationOutcome, obj: GovernedObject) -> list[str]: ...


class ForeignTenant(ValueError):
    """A message for a tenant this app does not serve: refused before any storage call or Graph read
    (the app's Graph token is for its own tenant; a forged tenant id must not write state under
    another partition). The message ends in the poison queue."""


class ObjectUnreadable(RuntimeError):
    """An evaluation by id could not read its object (Graph kept failing): the message is tried again."""


class _EvaluateSink:
    """The discovery sink: one EvaluateObject per object, sent as it arrives (a chunk at a time)."""

    def __init__(
        self,
        sender: QueueSender,
        activities: ActivityStore,
        request: DiscoveryRequest,
        clock: Clock,
        concurrency: int,
    ) -> None:
        self._sender = sender
        self._activities = activities
        self._request = request
        self._clock = clock
        self._concurrency = max(1, concurrency)
        self.batch_id = activity_id("evaluation", request.tenant_id, request.activity_id)
        self.queued = 0
        self.without_snapshot = 0
        self._started = False

    def _message(self, found: DiscoveredObject) -> str:
        request = self._request
        object_id = found.governed.id
        message = EvaluateObject(
            tenant_id=request.tenant_id,
            object_id=object_id,
            evaluation_id=evaluation_id(request.tenant_id, object_id, request.activity_id),
            batch_id=self.batch_id,
            trigger="discovery",
            cause=request.activity_id,
            observed_at=found.observed_at,
            snapshot=found.governed,
            baseline=found.reason == "baseline",
        )
        return message.queue_text()

    def accept(self, objects: Sequence[DiscoveredObject]) -> None:
        if not objects:
            return
        if not self._started:
            self._activities.start(
                ActivityRecord(
                    id=self.batch_id,
                    pk=self._request.tenant_id,
                    kind="evaluation",
                    trigger="discovery",
                    parent_id=self._request.activity_id,
                    started_at=utc_iso(self._clock.now()),
                )
            )
            self._started = True
        texts = [self._message(found) for found in objects]
        if self._concurrency == 1 or len(texts) == 1:
            for text in texts:
                self._sender.send(text)
        else:
            with ThreadPoolExecutor(max_workers=min(self._concurrency, len(texts))) as pool:
                list(pool.map(self._sender.send, texts))  # an exception from any send is raised here
        self.queued += len(texts)
        self.without_snapshot += sum(1 for text in texts if '"snapshot":null' in text)


def _error_text(error: BaseException) -> str:
    return redact(f"{type(error).__name__}: {error}")[:MAX_ERROR_TEXT]


class GovernancePipeline:
    """The three units of work (see the module docstring). `tenant_id` is the tenant the app serves (a
    message naming another is refused); `update_queue` receives UpdateNotes messages, `evaluate_queue`
    EvaluateObject messages; `publisher` None: findings raise no alerts."""

    def __init__(
        self,
        tenant_id: str,
        discovery: GovernanceDiscovery,
        service: GovernanceService,
        activities: ActivityStore,
        evaluate_queue: QueueSender,
        update_queue: QueueSender,
        clock: Clock,
        *,
        publisher: FindingPublisher | None = None,
        discovery_budget: dt.timedelta = DISCOVERY_BUDGET,
        read_budget: dt.timedelta = READ_BUDGET,
        send_concurrency: int = SEND_CONCURRENCY,
    ) -> None:
        self._tenant = tenant_id.lower()
        self._discovery = discovery
        self._service = service
        self._activities = activities
        self._evaluate_queue = evaluate_queue
        self._update_queue = update_queue
        self._clock = clock
        self._publisher = publisher
        self._discovery_budget = discovery_budget
        self._read_budget = read_budget
        self._send_concurrency = send_concurrency

    def _served(self, tenant_id: str) -> str:
        if tenant_id.lower() != self._tenant:
            raise ForeignTenant(f"tenant {tenant_id!r} is not the tenant this app serves")
        return tenant_id

    # -- discovery ----------------------------------------------------------------------------------

    def discover(self, request: DiscoveryRequest) -> DiscoveryResult:
        tenant = self._served(request.tenant_id)
        started = self._clock.now()
        details: dict[str, JsonValue] = {
            "full_seed": request.full_seed,
            "requested_at": request.requested_at,
            "requested_by": request.requested_by,
        }
        activity = self._activities.start(
            ActivityRecord(
                id=request.activity_id,
                pk=tenant,
                kind="discovery",
                trigger=request.trigger,
                started_at=utc_iso(started),
                details=details,
            )
        )
        if activity.status in ("succeeded", "locked"):
            logger.info(
                "discovery %s of %s was done already (%s)", request.activity_id, tenant, activity.status
            )
            return _recorded_result(activity)
        sink = _EvaluateSink(
            self._evaluate_queue, self._activities, request, self._clock, self._send_concurrency
        )
        deadline = self._clock.monotonic() + self._discovery_budget.total_seconds()
        # The lease's owner is this delivery of the request: a copy delivered while it still runs (its
        # queue lease could not be renewed) finds the tenant locked by it, and leaves the run to it.
        delivery = f"{request.activity_id}.{uuid.uuid4().hex[:12]}"
        try:
            result = self._discovery.run(
                tenant,
                run_id=delivery,
                trigger=request.trigger,
                sink=sink,
                full_seed=request.full_seed,
                deadline=deadline,
            )
        except Exception as error:
            now = self._clock.now()
            self._activities.finish(
                tenant,
                request.activity_id,
                now,
                status="failed",
                errors=[ActivityError(at=utc_iso(now), message=_error_text(error))],
                details={"failure": _error_text(error), "queued": sink.queued},
            )
            raise
        if result.status == "locked" and (result.held_by or "").startswith(f"{request.activity_id}."):
            logger.info(
                "discovery %s of %s: another delivery of the request runs it (%s)",
                request.activity_id, tenant, result.held_by,
            )  # fmt: skip
            return result  # its activity is that delivery's to finish
        if sink.queued:
            self._activities.expect(tenant, sink.batch_id, sink.queued)
        retired, retire_errors = self._retire(request, result.removed_ids)
        counts = result.counts
        finished_details: dict[str, JsonValue] = {
            **result.activity_details(),
            "evaluation_batch": sink.batch_id if sink.queued else None,
            "queued": sink.queued,
            "queued_without_snapshot": sink.without_snapshot,
            "retired": retired,
        }
        self._activities.finish(
            tenant,
            request.activity_id,
            self._clock.now(),
            status=result.status,
            counts=ActivityCounts(
                discovered=counts.discovered,
                skipped=counts.skipped_deleted + counts.out_of_scope,
                errors=counts.errors + len(retire_errors),
            ),
            lock=result.lock,
            errors=[
                *(
                    ActivityError(at=e.at, message=e.message[:MAX_ERROR_TEXT], object_id=e.object_id)
                    for e in result.errors
                ),
                *retire_errors,
            ],
            details=finished_details,
        )
        logger.info(
            "discovery %s of %s: %s (%s, lock %s): %d discovered, %d queued, %d removed, %d errors, "
            "%d requests (minimum %d)",
            request.activity_id, tenant, result.status, result.mode, result.lock, counts.discovered,
            sink.queued, len(result.removed_ids), counts.errors, counts.requests, counts.minimum_requests,
        )  # fmt: skip
        return result

    def _retire(
        self, request: DiscoveryRequest, removed_ids: Sequence[str]
    ) -> tuple[int, list[ActivityError]]:
        """Resolve the findings of the service principals delta reported removed. The deltaLinks moved
        past them already, so one that fails is recorded on the activity (and found again by an
        evaluation by id, which answers 404 and retires it), never raised."""
        retired = 0
        errors: list[ActivityError] = []
        for object_id in removed_ids:
            try:
                outcome = self._service.retire(
                    request.tenant_id,
                    object_id,
                    self._clock.now(),
                    evaluation_id=evaluation_id(
                        request.tenant_id, object_id, f"removed:{request.activity_id}"
                    ),
                    trigger="discovery",
                )
            except Exception as error:
                logger.warning("discovery %s: %s could not be retired", request.activity_id, object_id)
                errors.append(
                    ActivityError(
                        at=utc_iso(self._clock.now()), message=_error_text(error), object_id=object_id
                    )
                )
                continue
            retired += 1 if outcome.resolved else 0
        return retired, errors

    # -- evaluation ---------------------------------------------------------------------------------

    def evaluate(self, message: EvaluateObject) -> tuple[EvaluationOutcome, list[str]]:
        tenant = self._served(message.tenant_id)
        obj = message.snapshot
        observed = parse_utc(message.observed_at)
        if obj is None:
            found = self._read(message)
            if found is None:
                outcome = self._service.retire(
                    tenant,
                    message.object_id,
                    self._clock.now(),
                    evaluation_id=message.evaluation_id,
                    batch_id=message.batch_id,
                    trigger=message.trigger,
                )
                logger.info(
                    "evaluation %s: %s is not a service principal or application in the directory "
                    "(%d findings resolved)",
                    message.evaluation_id, message.object_id, len(outcome.resolved),
                )  # fmt: skip
                return outcome, []
            obj, observed = found
        outcome = self._service.evaluate(
            tenant,
            obj,
            self._clock.now(),
            evaluation_id=message.evaluation_id,
            batch_id=message.batch_id,
            trigger=message.trigger,
            observed_at=observed,
        )
        if outcome.update is not None:
            self._update_queue.send(outcome.update.model_dump_json())
        notify: list[str] = []
        if self._publisher is not None and not (message.baseline and outcome.first_evaluation):
            # What a baseline finds was there before governance looked: the Governance page lists it,
            # and alerts are for findings that open afterwards (changes, new apps, credentials nearing
            # expiry found by the daily sweep).
            notify = self._publisher.publish(outcome, obj)
        logger.info(
            "evaluation %s of %s (%s): %s %s, %d findings, %d opened, %d resolved, update %s, "
            "%d notifications",
            message.evaluation_id, obj.id, message.trigger, outcome.status, outcome.result,
            len(outcome.findings), len(outcome.opened), len(outcome.resolved),
            "queued" if outcome.update is not None else "none", len(notify),
        )  # fmt: skip
        return outcome, notify

    def _read(self, message: EvaluateObject) -> tuple[GovernedObject, dt.datetime] | None:
        """The object the message names, read now: a service principal, or the service principal of an
        application (found by its appId). None when the directory has neither."""
        object_id = message.object_id
        deadline = self._clock.monotonic() + self._read_budget.total_seconds()
        reader = self._discovery.reader(deadline)
        reads = ObjectReader(reader, self._clock, tenant_id=message.tenant_id).read(
            service_principal_ids=[(object_id, "requested")],
            application_ids=[(object_id, "requested")],
        )
        if reads.objects:
            governed, _ = reads.objects[0]
            return governed, self._clock.now()
        if reads.errors:
            problems = "; ".join(e.message for e in reads.errors[:3])
            raise ObjectUnreadable(f"{object_id} could not be read: {problems}"[:MAX_ERROR_TEXT])
        return None

    # -- update -------------------------------------------------------------------------------------

    def update(self, message: UpdateNotes) -> UpdateOutcome:
        self._served(message.tenant_id)
        outcome = self._service.update(message, self._clock.now())
        logger.info("notes update of %s for %s: %s", message.object_id, message.evaluation_id, outcome.status)
        return outcome


def _recorded_result(activity: ActivityRecord) -> DiscoveryResult:
    """A finished discovery activity as the result its redelivered request answers (nothing is run)."""
    status = activity.status if activity.status in ("succeeded", "failed", "locked") else "failed"
    details = activity.details
    mode = details.get("mode")
    return DiscoveryResult(
        tenant_id=activity.pk,
        run_id=activity.id,
        trigger=activity.trigger,
        status=status,
        lock="held" if activity.lock == "held" else "acquired",
        mode=mode if mode in ("baseline", "incremental", "resync") else None,  # type: ignore[arg-type]
        started_at=activity.started_at,
        ended_at=activity.ended_at or activity.started_at,
        failure="already recorded: a redelivered request runs nothing",
    )
