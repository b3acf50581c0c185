"""The governance queue pipeline (shared/governance/pipeline.py) over a small Graph (the FakeGraph of
test_governance_discovery), the in-memory governance stores and list-backed queues; and the event-driven
path: directory audit events on the ingest report (shared/ingestion/ingest.py) mapped to evaluations
(shared/app/governance_events.py). Expectations come from the fake tenant, never from numbers here."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest
from pydantic import ValidationError

from shared.app.governance_events import changed_object_id, evaluation_messages, operation_key
from shared.governance.config import load_default_validators
from shared.governance.messages import (
    DiscoveryRequest,
    EvaluateObject,
    UpdateNotes,
    activity_id,
    evaluation_id,
)
from shared.governance.model import GovernedObject
from shared.governance.pipeline import ForeignTenant, GovernancePipeline, ObjectUnreadable
from shared.governance.records import UpdateMode
from shared.governance.service import EvaluationOutcome, GovernanceService
from shared.governance.store import FindingQuery, StaleWriteError
from shared.ingestion.ingest import (
    ChangedObject,
    DirectoryChange,
    IngestReport,
    IngestService,
    directory_changes,
)
from shared.ingestion.messages import IngestMessage
from shared.ingestion.normalize import normalize_record
from shared.platform.clock import utc_iso
from tests.support.governance_memory import (
    FakeWriter,
    MemoryActivityStore,
    MemoryAudit,
    MemoryClaims,
    MemoryGovernanceStore,
)
from tests.unit.test_governance_discovery import (
    GRAPH,
    TENANT,
    FakeGraph,
    Fault,
    Rig,
    gid,
    make_rig,
    tenant_of,
)
from tests.unit.test_ingest_service import Archive as IngestArchive
from tests.unit.test_ingest_service import Clock as IngestClock
from tests.unit.test_ingest_service import Store as IngestStore
from tests.unit.test_ingest_service import Watermarks as IngestWatermarks


@dataclass
class ListQueue:
    """A QueueSender that keeps what it was sent; `fail_after` sends succeed, then every send raises."""

    sent: list[str] = field(default_factory=list)
    fail_after: int | None = None

    def send(self, text: str) -> None:
        if self.fail_after is not None and len(self.sent) >= self.fail_after:
            raise ConnectionError("the queue refused the message")
        self.sent.append(text)


@dataclass
class RecordingPublisher:
    seen: list[tuple[str, str, int]] = field(default_factory=list)

    def publish(self, outcome: EvaluationOutcome, obj: GovernedObject) -> list[str]:
        self.seen.append((outcome.object_id, obj.id, len(outcome.opened)))
        return [json.dumps({"object": obj.id, "opened": len(outcome.opened)})] if outcome.opened else []


@dataclass
class Stack:
    rig: Rig
    store: MemoryGovernanceStore
    activities: MemoryActivityStore
    audit: MemoryAudit
    writer: FakeWriter
    evaluate_queue: ListQueue
    update_queue: ListQueue
    publisher: RecordingPublisher
    pipeline: GovernancePipeline

    @property
    def graph(self) -> FakeGraph:
        return self.rig.graph

    def request(self, *, full_seed: bool = False, key: str | None = None) -> DiscoveryRequest:
        return DiscoveryRequest(
            tenant_id=TENANT,
            activity_id=activity_id("discovery", TENANT, key or uuid.uuid4().hex),
            trigger="timer",
            full_seed=full_seed,
            requested_at=utc_iso(self.rig.clock.now()),
        )

    def drain_evaluations(self, *, twice: bool = False) -> list[EvaluationOutcome]:
        texts, self.evaluate_queue.sent = self.evaluate_queue.sent, []
        outcomes = []
        for text in texts:
            message = EvaluateObject.model_validate_json(text)
            for _ in range(2 if twice else 1):
                outcomes.append(self.pipeline.evaluate(message)[0])
        return outcomes

    def drain_updates(self, *, twice: bool = False) -> list[str]:
        texts, self.update_queue.sent = self.update_queue.sent, []
        statuses: list[str] = []
        for text in texts:
            message = UpdateNotes.model_validate_json(text)
            for _ in range(2 if twice else 1):
                statuses.append(self.pipeline.update(message).status)
        return statuses


def stack_of(graph: FakeGraph, mode: UpdateMode = "ReportOnly", **options: Any) -> Stack:
    rig = make_rig(graph)
    store, activities, audit, writer = (
        MemoryGovernanceStore(),
        MemoryActivityStore(),
        MemoryAudit(),
        FakeWriter(),
    )
    service = GovernanceService(
        store,
        activities,
        audit,
        MemoryClaims(),
        writer if mode == "Update" else None,
        load_default_validators(),
        mode=mode,
        graph_base=GRAPH,
    )
    evaluate_queue, update_queue, publisher = ListQueue(), ListQueue(), RecordingPublisher()
    pipeline = GovernancePipeline(
        TENANT,
        rig.discovery,
        service,
        activities,
        evaluate_queue,
        update_queue,
        rig.clock,
        publisher=publisher,
        send_concurrency=options.pop("send_concurrency", 1),
        **options,
    )
    return Stack(rig, store, activities, audit, writer, evaluate_queue, update_queue, publisher, pipeline)


def with_bad_notes(graph: FakeGraph, *ns: int) -> FakeGraph:
    """Principals whose notes name someone who is not an owner: notes-lists-owners fails on them."""
    for n in ns:
        graph.set_notes(gid(1, n), "someone@contoso.example")
    return graph


def failing_notes(stack: Stack) -> set[str]:
    return {
        f.object_id
        for f in stack.store.findings(TENANT, FindingQuery(validator_id="notes-lists-owners", state="open"))
    }


# -- discovery ----------------------------------------------------------------------------------------


def test_a_discovery_queues_one_evaluation_per_principal_and_records_its_activity() -> None:
    stack = stack_of(tenant_of(9))
    request = stack.request()
    result = stack.pipeline.discover(request)

    live = set(stack.graph.live())
    messages = [EvaluateObject.model_validate_json(t) for t in stack.evaluate_queue.sent]
    assert {m.object_id for m in messages} == live
    batch = activity_id("evaluation", TENANT, request.activity_id)
    for message in messages:
        assert message.snapshot is not None
        assert message.snapshot.id == message.object_id
        assert (message.trigger, message.cause, message.batch_id) == ("discovery", request.activity_id, batch)
        assert message.evaluation_id == evaluation_id(TENANT, message.object_id, request.activity_id)
    assert result.status == "succeeded"
    assert result.counts.discovered == len(live)

    activity = stack.activities.get(TENANT, request.activity_id)
    assert activity is not None
    assert (activity.kind, activity.status, activity.lock, activity.trigger) == (
        "discovery",
        "succeeded",
        "acquired",
        "timer",
    )
    assert activity.counts.discovered == len(live)
    assert activity.details["mode"] == "baseline"
    assert activity.details["evaluation_batch"] == batch
    assert activity.details["queued"] == len(messages)
    assert activity.details["requests"] == result.counts.requests
    evaluation_batch = stack.activities.get(TENANT, batch)
    assert evaluation_batch is not None
    assert evaluation_batch.parent_id == request.activity_id


def test_the_queued_evaluations_evaluate_every_principal_once_even_when_delivered_twice() -> None:
    stack = stack_of(tenant_of(9))
    request = stack.request()
    stack.pipeline.discover(request)
    outcomes = stack.drain_evaluations(twice=True)

    live = stack.graph.live()
    assert [o.status for o in outcomes] == ["evaluated", "duplicate"] * len(live)
    batch = stack.activities.get(TENANT, activity_id("evaluation", TENANT, request.activity_id))
    assert batch is not None
    assert batch.counts.evaluated == len(live)
    assert batch.counts.passed + batch.counts.failed == len(live)
    assert (batch.expected, batch.status) == (len(live), "succeeded")  # every queued unit settled
    assert stack.update_queue.sent == []  # ReportOnly: nothing for the update queue
    # a baseline's first evaluations (and their redeliveries) record without alerting
    assert all(o.first_evaluation for o in outcomes)
    assert stack.publisher.seen == []


def test_findings_after_the_baseline_are_published_on_every_delivery() -> None:
    stack = stack_of(tenant_of(9))
    stack.pipeline.discover(stack.request())
    stack.drain_evaluations()
    changed = [gid(1, 2), gid(1, 4)]
    for object_id in changed:
        stack.graph.set_notes(object_id, "someone@contoso.example")
    stack.pipeline.discover(stack.request())
    outcomes = stack.drain_evaluations(twice=True)

    assert [o.status for o in outcomes] == ["evaluated", "duplicate"] * len(changed)
    assert not any(o.first_evaluation for o in outcomes)
    # the publisher saw every delivery, with the object evaluated
    assert [(o, i) for o, i, _ in stack.publisher.seen] == [(o.object_id, o.object_id) for o in outcomes]


def test_a_periodic_full_sweep_alerts_on_known_objects_only() -> None:
    stack = stack_of(tenant_of(9))
    stack.pipeline.discover(stack.request())
    stack.drain_evaluations()
    full = stack.request(full_seed=True)
    stack.pipeline.discover(full)
    outcomes = stack.drain_evaluations()
    assert outcomes
    assert {o.status for o in outcomes} == {"evaluated"}
    assert not any(o.first_evaluation for o in outcomes)
    assert len(stack.publisher.seen) == len(outcomes)  # known objects: what opens now is news


def test_the_next_discovery_queues_only_what_changed() -> None:
    stack = stack_of(tenant_of(9))
    stack.pipeline.discover(stack.request())
    stack.drain_evaluations()
    changed = [gid(1, 2), gid(1, 4)]
    for object_id in changed:
        stack.graph.set_notes(object_id, "someone@contoso.example")
    request = stack.request()
    stack.pipeline.discover(request)

    messages = [EvaluateObject.model_validate_json(t) for t in stack.evaluate_queue.sent]
    assert sorted(m.object_id for m in messages) == sorted(changed)
    activity = stack.activities.get(TENANT, request.activity_id)
    assert activity is not None
    assert activity.details["mode"] == "incremental"
    outcomes = stack.drain_evaluations()
    assert {(o.object_id, o.result) for o in outcomes} == {(i, "fail") for i in changed}
    assert failing_notes(stack) >= set(changed)


def test_update_mode_patches_each_failing_principal_once_when_every_message_comes_twice() -> None:
    stack = stack_of(with_bad_notes(tenant_of(12), 1, 2, 4, 5), mode="Update")
    stack.pipeline.discover(stack.request())
    stack.drain_evaluations(twice=True)
    failing = failing_notes(stack)
    assert failing, "the fake tenant has principals whose notes fail"
    updates = [UpdateNotes.model_validate_json(t) for t in stack.update_queue.sent]
    # one update per failing principal that has a value to write, queued again by the redelivery
    assert {u.object_id for u in updates} <= failing
    assert len(updates) == 2 * len({u.object_id for u in updates})
    statuses = stack.drain_updates(twice=True)
    assert statuses.count("patched") == len({u.object_id for u in updates})
    assert set(statuses) == {"patched", "duplicate"}
    patched = [p.url.rsplit("/", 1)[-1] for p in stack.writer.sent]
    assert sorted(patched) == sorted({u.object_id for u in updates})


def test_report_only_writes_nothing_and_queues_no_update() -> None:
    stack = stack_of(with_bad_notes(tenant_of(12), 1, 2, 4, 5))
    stack.pipeline.discover(stack.request())
    stack.drain_evaluations()
    assert failing_notes(stack)
    assert stack.update_queue.sent == []
    assert stack.writer.sent == []
    assert "governance.notes.report" in stack.audit.actions()


def test_a_discovery_finding_the_tenant_locked_records_it_and_queues_nothing() -> None:
    stack = stack_of(tenant_of(4))
    stack.rig.store.acquire(TENANT, "act-discovery-" + "f" * 32, stack.rig.clock.now())
    request = stack.request()
    result = stack.pipeline.discover(request)
    assert (result.status, result.lock) == ("locked", "held")
    activity = stack.activities.get(TENANT, request.activity_id)
    assert activity is not None
    assert (activity.status, activity.lock) == ("locked", "held")
    assert activity.details["held_by"] == "act-discovery-" + "f" * 32
    assert stack.evaluate_queue.sent == []


def test_a_redelivered_request_of_a_finished_discovery_runs_nothing() -> None:
    stack = stack_of(tenant_of(4))
    request = stack.request()
    stack.pipeline.discover(request)
    calls, queued = len(stack.graph.outer), len(stack.evaluate_queue.sent)
    again = stack.pipeline.discover(request)
    assert again.status == "succeeded"
    assert again.mode == "baseline"
    assert again.failure is not None
    assert "redelivered" in again.failure
    assert (len(stack.graph.outer), len(stack.evaluate_queue.sent)) == (calls, queued)


def test_a_queue_that_refuses_fails_the_discovery_and_its_retry_sends_everything() -> None:
    stack = stack_of(tenant_of(9))
    stack.evaluate_queue.fail_after = 2
    request = stack.request()
    with pytest.raises(ConnectionError):
        stack.pipeline.discover(request)
    failed = stack.activities.get(TENANT, request.activity_id)
    assert failed is not None
    assert failed.status == "failed"
    assert failed.errors
    assert "ConnectionError" in failed.errors[0].message
    # the retry (the message delivered again) runs the baseline again: no deltaLink was saved
    stack.evaluate_queue.fail_after = None
    stack.evaluate_queue.sent = []
    result = stack.pipeline.discover(request)
    assert result.status == "succeeded"
    assert result.mode == "baseline"
    assert {EvaluateObject.model_validate_json(t).object_id for t in stack.evaluate_queue.sent} == set(
        stack.graph.live()
    )


def test_a_deleted_principal_has_its_findings_resolved_so_it_stops_alerting() -> None:
    stack = stack_of(with_bad_notes(tenant_of(9), 2))
    stack.pipeline.discover(stack.request())
    baseline = {EvaluateObject.model_validate_json(t).object_id: t for t in stack.evaluate_queue.sent}
    stack.drain_evaluations()
    gone = gid(1, 2)
    open_before = stack.store.findings(TENANT, FindingQuery(object_id=gone, state="open"))
    assert open_before
    stack.rig.clock.sleep(60)
    stack.graph.delete("servicePrincipals", gone)
    request = stack.request()
    stack.pipeline.discover(request)

    assert stack.store.findings(TENANT, FindingQuery(object_id=gone, state="open")) == []
    resolved = stack.store.findings(TENANT, FindingQuery(object_id=gone, state="resolved"))
    assert {f.id for f in resolved} == {f.id for f in open_before}
    record = stack.store.get_object(TENANT, gone)
    assert record is not None
    assert record.value.open_findings == 0
    assert "governance.retire" in stack.audit.actions(gone)
    activity = stack.activities.get(TENANT, request.activity_id)
    assert activity is not None
    assert (activity.details["removed"], activity.details["retired"]) == (1, 1)
    # the snapshot read before the deletion, delivered late under another evaluation: stale, skipped
    late = EvaluateObject.model_validate_json(baseline[gone]).model_copy(
        update={"evaluation_id": evaluation_id(TENANT, gone, "late")}
    )
    assert stack.pipeline.evaluate(late)[0].status == "stale"
    assert stack.store.findings(TENANT, FindingQuery(object_id=gone, state="open")) == []
    # asked for by id (an audit event): Graph answers 404, it stays retired
    by_id = late.model_copy(update={"snapshot": None, "evaluation_id": evaluation_id(TENANT, gone, "ev")})
    assert stack.pipeline.evaluate(by_id)[0].status == "retired"


# -- evaluation by id ---------------------------------------------------------------------------------


def by_id(stack: Stack, object_id: str, cause: str = "event-1") -> EvaluateObject:
    return EvaluateObject(
        tenant_id=TENANT,
        object_id=object_id,
        evaluation_id=evaluation_id(TENANT, object_id, cause),
        batch_id=activity_id("evaluation", TENANT, "event:page-1"),
        trigger="event",
        cause=cause,
        observed_at=utc_iso(stack.rig.clock.now()),
    )


def test_an_evaluation_without_a_snapshot_reads_the_principal_first() -> None:
    stack = stack_of(tenant_of(3))
    outcome, notify = stack.pipeline.evaluate(by_id(stack, gid(1, 1)))
    assert (outcome.status, outcome.object_id) == ("evaluated", gid(1, 1))
    record = stack.store.get_object(TENANT, gid(1, 1))
    assert record is not None
    assert record.value.last_trigger == "event"
    assert stack.graph.delta_calls() == []
    assert notify == (
        [json.dumps({"object": gid(1, 1), "opened": len(outcome.opened)})] if outcome.opened else []
    )


def test_an_application_id_is_evaluated_through_its_service_principal_found_by_app_id() -> None:
    graph = tenant_of(3)
    stack = stack_of(graph)
    application = graph.app_of(gid(1, 1))
    outcome, _ = stack.pipeline.evaluate(by_id(stack, application))
    assert (outcome.status, outcome.object_id) == ("evaluated", gid(1, 1))
    app_id = graph.objects["servicePrincipals"][gid(1, 1)]["appId"]
    assert any(f"(appId='{app_id}')" in url for url in graph.inner_urls())


def test_an_id_the_directory_no_longer_has_is_retired_and_one_that_cannot_be_read_is_retried() -> None:
    stack = stack_of(tenant_of(3))
    unknown = gid(1, 999)
    outcome, notify = stack.pipeline.evaluate(by_id(stack, unknown))
    assert (outcome.status, outcome.resolved, notify) == ("retired", (), [])
    assert stack.store.get_object(TENANT, unknown) is None

    stack.graph.inner_faults[f"/servicePrincipals/{gid(1, 2)}/owners"] = [Fault(503, code="Unavailable")] * 20
    with pytest.raises(ObjectUnreadable):
        stack.pipeline.evaluate(by_id(stack, gid(1, 2), "event-2"))
    assert stack.store.get_object(TENANT, gid(1, 2)) is None


# -- the event-driven path -------------------------------------------------------------------------------


def raw_record(activity: str, targets: list[dict[str, Any]], result: str = "success") -> dict[str, Any]:
    """A Graph directoryAudit record as auditLogs/directoryAudits answers it."""
    return {
        "id": f"Directory_{uuid.uuid4()}",
        "category": "ApplicationManagement",
        "correlationId": str(uuid.uuid4()),
        "result": result,
        "resultReason": "",
        "activityDisplayName": activity,
        "activityDateTime": "2026-12-07T09:30:00.1234567Z",
        "loggedByService": "Core Directory",
        "operationType": "Update",
        "initiatedBy": {"user": {"id": str(uuid.uuid4()), "userPrincipalName": "admin@contoso.com"}},
        "targetResources": targets,
        "additionalDetails": [],
    }


def target(kind: str, object_id: str, props: dict[str, tuple[Any, Any]] | None = None) -> dict[str, Any]:
    return {
        "id": object_id,
        "displayName": None,
        "type": kind,
        "modifiedProperties": [
            {
                "displayName": name,
                "oldValue": None if old is None else json.dumps(old),
                "newValue": None if new is None else json.dumps(new),
            }
            for name, (old, new) in (props or {}).items()
        ],
    }


SP_ID, APP_OBJECT, OWNER, GRAPH_SP = gid(1, 7), gid(3, 7), gid(8, 70), gid(9, 1)


def stored(*records: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        normalize_record("entra_audit", r, tenant_id=TENANT, ingested_at="2026-12-07T09:31:00.000Z")
        for r in records
    ]


def test_the_ingest_report_lists_directory_events_about_principals_and_applications_only() -> None:
    documents = stored(
        raw_record("Add owner to service principal", [
            target("User", OWNER, {"ServicePrincipal.ObjectID": (None, SP_ID), "AppId": (None, "")}),
            target("ServicePrincipal", SP_ID),
        ]),
        raw_record("Update user", [target("User", OWNER, {"AccountEnabled": ([True], [False])})]),
    )  # fmt: skip
    changes = directory_changes("entra_audit", documents)
    assert [(c.event_id, c.operation, c.result) for c in changes] == [
        (documents[0]["id"], "Add owner to service principal", "success")
    ]
    assert changes[0].targets[0] == ChangedObject(
        type="User", id=OWNER, object_ids={"ServicePrincipal.ObjectID": SP_ID}
    )
    assert directory_changes("intune_audit", documents) == []


@pytest.mark.parametrize(
    ("activity", "targets", "expected"),
    [
        ("Add owner to service principal",
         [target("User", OWNER, {"ServicePrincipal.ObjectID": (None, SP_ID)}),
          target("ServicePrincipal", SP_ID)], SP_ID),
        ("Remove owner from application",
         [target("User", OWNER, {"Application.ObjectID": (APP_OBJECT, None)}),
          target("Application", APP_OBJECT)], APP_OBJECT),
        # a service principal as the owner: the object is still the one the owner went to
        ("Add owner to service principal",
         [target("ServicePrincipal", GRAPH_SP), target("ServicePrincipal", SP_ID)], SP_ID),
        ("Update application \u2013 Certificates and secrets management ",
         [target("Application", APP_OBJECT, {"KeyDescription": ([], ["[KeyIdentifier=1]"])})], APP_OBJECT),
        ("Update application - Certificates and secrets management", [target("Application", APP_OBJECT)],
         APP_OBJECT),
        ("Add service principal credentials", [target("ServicePrincipal", SP_ID)], SP_ID),
        ("Add app role assignment to service principal",
         [target("ServicePrincipal", GRAPH_SP, {"ServicePrincipal.ObjectID": (None, SP_ID)}),
          target("ServicePrincipal", SP_ID)], SP_ID),
        ("Consent to application", [target("ServicePrincipal", SP_ID)], SP_ID),
        ("Add service principal", [target("ServicePrincipal", SP_ID)], SP_ID),
        ("Update service principal", [target("ServicePrincipal", SP_ID)], SP_ID),
        ("Update application", [target("Application", APP_OBJECT)], APP_OBJECT),
        ("Delete service principal", [target("ServicePrincipal", SP_ID)], None),
        ("Add member to group", [target("ServicePrincipal", SP_ID)], None),
    ],
)  # fmt: skip
def test_each_followed_operation_names_the_object_to_evaluate(
    activity: str, targets: list[dict[str, Any]], expected: str | None
) -> None:
    [change] = directory_changes("entra_audit", stored(raw_record(activity, targets)))
    assert changed_object_id(change) == expected


def test_a_failed_operation_queues_nothing() -> None:
    [change] = directory_changes(
        "entra_audit",
        stored(raw_record("Consent to application", [target("ServicePrincipal", SP_ID)], "failure")),
    )
    assert changed_object_id(change) is None


def test_operation_names_compare_ignoring_dashes_spacing_and_case() -> None:
    assert operation_key("Update application \u2013 Certificates and secrets management ") == operation_key(
        "update  application - certificates and secrets management"
    )


def page_report(
    changes: list[DirectoryChange], blob: str = "entra_audit/2026/12/07/09/run-00001.jsonl.gz"
) -> IngestReport:
    return IngestReport(
        source="entra_audit", blob=blob, records=len(changes), stored=len(changes), new=len(changes),
        quarantined=0, enriched=0, alert_messages=[], directory_changes=changes,
    )  # fmt: skip


def test_one_page_makes_one_evaluation_per_object_named_by_its_first_event() -> None:
    records = [
        raw_record("Consent to application", [target("ServicePrincipal", SP_ID)]),
        raw_record("Add app role assignment to service principal",
                   [target("ServicePrincipal", GRAPH_SP, {"ServicePrincipal.ObjectID": (None, SP_ID)}),
                    target("ServicePrincipal", SP_ID)]),
        raw_record("Update application", [target("Application", APP_OBJECT)]),
        raw_record("Update service principal", [target("ServicePrincipal", "not-a-guid")]),
    ]  # fmt: skip
    documents = stored(*records)
    report = page_report(directory_changes("entra_audit", documents))
    now = dt.datetime(2026, 12, 7, 9, 31, tzinfo=dt.UTC)
    texts = evaluation_messages(report, TENANT, now)
    messages = [EvaluateObject.model_validate_json(t) for t in texts]
    assert [(m.object_id, m.cause) for m in messages] == [
        (SP_ID, documents[0]["id"]),
        (APP_OBJECT, documents[2]["id"]),
    ]
    batch = activity_id("evaluation", TENANT, f"event:{report.blob}")
    for message in messages:
        assert (message.trigger, message.snapshot, message.batch_id) == ("event", None, batch)
        assert message.evaluation_id == evaluation_id(TENANT, message.object_id, str(message.cause))
    # the page delivered again asks for the same evaluations
    assert evaluation_messages(report, TENANT, now + dt.timedelta(minutes=1)) != []
    again = [EvaluateObject.model_validate_json(t) for t in evaluation_messages(report, TENANT, now)]
    assert [m.evaluation_id for m in again] == [m.evaluation_id for m in messages]


def test_an_owner_removal_seen_only_in_the_audit_log_is_evaluated_through_the_pipeline() -> None:
    graph = tenant_of(3)
    stack = stack_of(graph)
    stack.pipeline.discover(stack.request())
    stack.drain_evaluations()
    sp_id = gid(1, 1)
    assert sp_id not in failing_notes(stack)
    owner = graph.owners[sp_id][0]
    graph.owners[sp_id] = []  # no delta change: owners are navigation properties
    record = raw_record("Remove owner from service principal", [
        target("User", owner["id"], {"ServicePrincipal.ObjectID": (sp_id, None)}),
        target("ServicePrincipal", sp_id),
    ])  # fmt: skip
    report = page_report(directory_changes("entra_audit", stored(record)))
    [text] = evaluation_messages(report, TENANT, stack.rig.clock.now())
    stack.rig.clock.sleep(1)
    outcome, _ = stack.pipeline.evaluate(EvaluateObject.model_validate_json(text))
    assert (outcome.object_id, outcome.status, outcome.result) == (sp_id, "evaluated", "fail")
    assert sp_id in failing_notes(stack)


def test_hostile_event_fields_never_become_a_message() -> None:
    change = DirectoryChange(
        event_id="x" * 300, operation="Consent to application", result="success",
        targets=[ChangedObject(type="ServicePrincipal", id=SP_ID)],
    )  # fmt: skip
    assert evaluation_messages(page_report([change]), TENANT, dt.datetime(2026, 12, 7, tzinfo=dt.UTC)) == []
    with pytest.raises(ValidationError):
        EvaluateObject(
            tenant_id="../x", object_id=SP_ID, evaluation_id=evaluation_id(TENANT, SP_ID, "c"),
            trigger="event", observed_at="2026-12-07T00:00:00Z",
        )  # fmt: skip


def test_a_message_for_another_tenant_is_refused_before_any_read_or_write() -> None:
    stack = stack_of(tenant_of(3))
    other = "0b7e2f64-1111-4c2d-9e3f-5a6b7c8d9e0f"
    request = stack.request().model_copy(update={"tenant_id": other})
    evaluate = by_id(stack, gid(1, 1)).model_copy(update={"tenant_id": other})
    update = UpdateNotes(
        tenant_id=other, object_id=gid(1, 1), evaluation_id=evaluation_id(other, gid(1, 1), "c"),
        after="a@contoso.example", source="owners", planned_at="2026-12-07T00:00:00Z",
    )  # fmt: skip
    with pytest.raises(ForeignTenant):
        stack.pipeline.discover(request)
    with pytest.raises(ForeignTenant):
        stack.pipeline.evaluate(evaluate)
    with pytest.raises(ForeignTenant):
        stack.pipeline.update(update)
    assert (stack.graph.outer, stack.activities.activities, stack.store.documents) == ([], {}, {})
    assert stack.rig.table.rows == {}


class DedupingStore(IngestStore):
    """The event store's contract: write_events answers only the documents it had not stored yet."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()

    def write_events(self, documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
        new = [d for d in documents if d["id"] not in self.ids]
        self.ids.update(d["id"] for d in documents)
        return new


def test_the_ingest_report_carries_directory_changes_of_newly_stored_events_only() -> None:
    owner = raw_record("Remove owner from service principal", [
        target("User", OWNER, {"ServicePrincipal.ObjectID": (SP_ID, None)}),
        target("ServicePrincipal", SP_ID),
    ])  # fmt: skip
    user = raw_record("Update user", [target("User", OWNER, {"AccountEnabled": ([True], [False])})])
    service = IngestService(
        IngestArchive([json.dumps(owner), json.dumps(user)]), DedupingStore(), IngestWatermarks(), TENANT,
        IngestClock(),
    )  # fmt: skip
    message = IngestMessage(source="entra_audit", blob="p1", count=2, run_id="r", tenant_id=TENANT)
    first = service.process(message)
    assert [(c.operation, changed_object_id(c)) for c in first.directory_changes] == [
        ("Remove owner from service principal", SP_ID)
    ]
    again = service.process(message)  # the page again (a redelivery, or a poll's overlap)
    assert again.stored == 2
    assert again.directory_changes == []


class _Out:
    def __init__(self) -> None:
        self.value: Any = None

    def set(self, value: Any) -> None:
        self.value = value


def test_the_timer_queues_one_discovery_request_of_the_apps_tenant(monkeypatch: pytest.MonkeyPatch) -> None:
    from governance_worker import functions

    now = dt.datetime(2026, 12, 7, 9, 30, tzinfo=dt.UTC)
    monkeypatch.setattr(functions, "tenant_id", lambda: TENANT)
    monkeypatch.setattr(functions, "app_clock", lambda: type("C", (), {"now": staticmethod(lambda: now)})())
    timer = functions.discover_service_principals.build().get_user_function()
    first, second = _Out(), _Out()
    timer(None, first)
    timer(None, second)
    requests = [DiscoveryRequest.model_validate_json(out.value) for out in (first, second)]
    assert [(r.tenant_id, r.trigger, r.full_seed, r.requested_at) for r in requests] == [
        (TENANT, "timer", False, utc_iso(now))
    ] * 2
    assert requests[0].activity_id != requests[1].activity_id  # each firing is a discovery of its own


def test_a_removed_principal_that_cannot_be_retired_is_an_error_on_the_activity_not_a_failed_run() -> None:
    stack = stack_of(with_bad_notes(tenant_of(6), 2))
    stack.pipeline.discover(stack.request())
    stack.drain_evaluations()
    gone = gid(1, 2)
    stack.graph.delete("servicePrincipals", gone)

    def keeps_changing() -> None:
        raise StaleWriteError("the object keeps changing")

    original = stack.store.object_state

    def racing(tenant_id: str, object_id: str) -> Any:
        if object_id == gone:
            keeps_changing()
        return original(tenant_id, object_id)

    stack.store.object_state = racing  # type: ignore[method-assign]
    request = stack.request()
    result = stack.pipeline.discover(request)
    assert result.status == "succeeded"
    activity = stack.activities.get(TENANT, request.activity_id)
    assert activity is not None
    assert activity.status == "succeeded"
    assert [(e.object_id, "StaleWriteError" in e.message) for e in activity.errors] == [(gone, True)]
    assert activity.counts.errors == 1


def test_a_copy_of_a_request_delivered_while_it_runs_leaves_the_run_and_its_activity_to_it() -> None:
    stack = stack_of(tenant_of(6))
    request = stack.request()
    copies: list[Any] = []

    class CopyArrives(ListQueue):
        """The queue lease of the first delivery lapsed: the copy arrives while the run sends."""

        def send(self, text: str) -> None:
            if not copies:
                copies.append(stack.pipeline.discover(request))
            super().send(text)

    arriving = CopyArrives()
    stack.pipeline._evaluate_queue = arriving  # the sink of the first delivery sends through it
    result = stack.pipeline.discover(request)

    [copy] = copies
    assert (copy.status, copy.lock) == ("locked", "held")
    assert copy.held_by is not None
    assert copy.held_by.startswith(request.activity_id + ".")
    assert result.status == "succeeded"
    activity = stack.activities.get(TENANT, request.activity_id)
    assert activity is not None
    assert (activity.status, activity.lock) == ("succeeded", "acquired")  # the copy recorded nothing
    assert sorted(EvaluateObject.model_validate_json(t).object_id for t in arriving.sent) == sorted(
        stack.graph.live()
    )  # queued once, by the first delivery
