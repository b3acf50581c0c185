"""Evaluation and notes remediation (shared/governance/service.py) over in-memory stores: findings with
first and last seen, resolved and reopened; last-known-good; the audit entry of every evaluation; the
PATCH report-only records; one PATCH per object and evaluation in update mode, however often each message
is delivered; exceptions; stale snapshots; races on the object's documents; and activity counts."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

import pytest
from pydantic import ValidationError

from shared.governance.config import ValidatorSet, parse_validator_file
from shared.governance.messages import (
    DiscoveryRequest,
    EvaluateObject,
    UpdateNotes,
    activity_id,
    evaluation_id,
)
from shared.governance.model import GovernedObject
from shared.governance.notes_writer import GraphNotesWriter
from shared.governance.records import (
    ActivityCounts,
    ActivityRecord,
    ActivityShard,
    FindingRecord,
    NotesPatch,
    UpdateMode,
    activity_shard_id,
    finding_id,
    merge_shards,
    notes_patch,
)
from shared.governance.service import Actor, ExceptionError, GovernanceService
from shared.governance.store import FindingQuery, StaleWriteError
from shared.m365.http_client import ApiError
from shared.platform.clock import utc_iso
from shared.platform.ids import (
    is_evaluation_id,
    is_finding_id,
    is_governance_activity_id,
    is_governance_exception_id,
    storage_id,
)
from shared.platform.table_claim import ClaimBusyError
from tests.support.governance_memory import (
    FakeWriter,
    MemoryActivityStore,
    MemoryAudit,
    MemoryClaims,
    MemoryGovernanceStore,
)
from tests.support.http_fakes import Answer, make_client

TENANT = "contoso"
SP = "11111111-1111-4111-8111-111111111111"
APP = "22222222-2222-4222-8222-222222222222"
GRAPH = "https://graph.microsoft.com"
T0 = dt.datetime(2026, 12, 7, 9, 0, tzinfo=dt.UTC)
ADMIN = Actor(name="root@contoso.com", id="oid-root", auth="entra")

VALIDATORS: ValidatorSet = parse_validator_file(
    {
        "validators": [
            {"id": "notes-lists-owners", "severity": "medium"},
            {"id": "ownerless", "severity": "medium"},
            {"id": "credential-expiry", "severity": "high", "parameters": {"windows_days": [7, 30]}},
        ]
    },
    version="v1",
)


def user(n: int, upn: str, **changes: Any) -> dict[str, Any]:
    return {
        "@odata.type": "#microsoft.graph.user",
        "id": f"00000000-0000-4000-8000-{n:012d}",
        "displayName": upn.split("@")[0],
        "userPrincipalName": upn,
        "accountEnabled": True,
        "userType": "Member",
        **changes,
    }


ALICE = user(1, "alice@contoso.com")
BOB = user(2, "bob@contoso.com")


def sp(notes: str | None, owners: list[dict[str, Any]] | None = None, **changes: Any) -> GovernedObject:
    return GovernedObject.from_graph(
        {
            "id": SP,
            "appId": APP,
            "displayName": "Payroll sync",
            "servicePrincipalType": "Application",
            "notes": notes,
            **changes,
        },
        owners=[ALICE] if owners is None else owners,
    )


def secret_ending(end: dt.datetime) -> dict[str, Any]:
    return {
        "passwordCredentials": [
            {
                "keyId": "33333333-3333-4333-8333-333333333333",
                "displayName": "CI",
                "startDateTime": utc_iso(end - dt.timedelta(days=90)),
                "endDateTime": utc_iso(end),
            }
        ]
    }


@dataclass
class World:
    store: MemoryGovernanceStore
    activities: MemoryActivityStore
    audit: MemoryAudit
    claims: MemoryClaims
    writer: FakeWriter
    service: GovernanceService

    def evaluate(self, obj: GovernedObject, now: dt.datetime, cause: str, **kwargs: Any) -> Any:
        return self.service.evaluate(
            TENANT, obj, now, evaluation_id=evaluation_id(TENANT, obj.id, cause), **kwargs
        )

    def record(self) -> Any:
        stored = self.store.get_object(TENANT, SP)
        assert stored is not None
        return stored.value

    def findings(self, **filters: Any) -> list[FindingRecord]:
        return self.store.findings(TENANT, FindingQuery(**filters))


def world(mode: UpdateMode = "ReportOnly", validators: ValidatorSet = VALIDATORS) -> World:
    store, activities, audit = MemoryGovernanceStore(), MemoryActivityStore(), MemoryAudit()
    claims, writer = MemoryClaims(), FakeWriter()
    service = GovernanceService(
        store,
        activities,
        audit,
        claims,
        writer,
        validators,
        mode=mode,
        graph_base=GRAPH,
    )
    return World(store, activities, audit, claims, writer, service)


# -- findings ---------------------------------------------------------------------------------------


def test_a_failing_object_gets_open_findings_an_audit_entry_and_a_fail_record() -> None:
    w = world()
    outcome = w.evaluate(sp("Payroll team", **secret_ending(T0 + dt.timedelta(days=5))), T0, "sweep-1")

    assert outcome.status == "evaluated"
    assert outcome.result == "fail"
    assert [(f.validator_id, f.state) for f in outcome.findings] == [
        ("credential-expiry", "open"),
        ("notes-lists-owners", "open"),
    ]
    assert outcome.opened == outcome.findings
    expiry = w.findings(validator_id="credential-expiry")[0]
    assert expiry.id == finding_id(TENANT, SP, "credential-expiry", expiry.subject)
    assert (expiry.severity, expiry.first_seen, expiry.last_seen) == ("high", utc_iso(T0), utc_iso(T0))
    assert expiry.evidence["window_days"] == 7
    record = w.record()
    assert (record.last_result, record.open_findings, record.last_known_good) == ("fail", 2, None)
    entry = w.audit.one("governance.evaluate")
    assert (entry.actor, entry.auth, entry.target_type, entry.target_id) == (
        "aoc-functions",
        "app",
        "servicePrincipal",
        SP,
    )
    assert entry.after["result"] == "fail"  # type: ignore[index,call-overload]
    assert entry.before is None


def test_a_passing_object_becomes_last_known_good_with_notes_and_owners() -> None:
    w = world()
    outcome = w.evaluate(sp("alice@contoso.com", owners=[ALICE, BOB]), T0, "sweep-1")

    assert (outcome.result, outcome.findings, outcome.remediation) == ("pass", (), None)
    good = w.record().last_known_good
    assert good.notes == "alice@contoso.com"
    assert good.at == utc_iso(T0)
    assert [(o.upn, o.standing) for o in good.owners] == [
        ("alice@contoso.com", "accountable"),
        ("bob@contoso.com", "accountable"),
    ]
    assert w.audit.one("governance.evaluate").after["result"] == "pass"  # type: ignore[index,call-overload]


def test_first_seen_is_kept_last_seen_moves_and_fixed_findings_resolve_then_reopen() -> None:
    w = world()
    failing = sp("Payroll team", **secret_ending(T0 + dt.timedelta(days=5)))
    w.evaluate(failing, T0, "sweep-1")
    later = T0 + dt.timedelta(hours=1)
    second = w.evaluate(failing, later, "sweep-2")
    assert second.opened == ()
    notes = w.findings(validator_id="notes-lists-owners")[0]
    assert (notes.first_seen, notes.opened_at, notes.last_seen) == (utc_iso(T0), utc_iso(T0), utc_iso(later))

    fixed_at = T0 + dt.timedelta(hours=2)
    third = w.evaluate(
        sp("alice@contoso.com", **secret_ending(T0 + dt.timedelta(days=5))), fixed_at, "sweep-3"
    )
    assert [f.validator_id for f in third.resolved] == ["notes-lists-owners"]
    notes = w.findings(validator_id="notes-lists-owners")[0]
    assert (notes.state, notes.resolved_at) == ("resolved", utc_iso(fixed_at))
    assert w.record().open_findings == 1

    again = T0 + dt.timedelta(hours=3)
    fourth = w.evaluate(failing, again, "sweep-4")
    assert [f.validator_id for f in fourth.opened] == ["notes-lists-owners"]
    notes = w.findings(validator_id="notes-lists-owners")[0]
    assert (notes.state, notes.first_seen, notes.opened_at, notes.resolved_at) == (
        "open",
        utc_iso(T0),
        utc_iso(again),
        None,
    )


def test_findings_query_filters_and_pages_newest_first() -> None:
    w = world()
    w.evaluate(sp("Payroll team", **secret_ending(T0 + dt.timedelta(days=5))), T0, "sweep-1")
    first = w.findings(limit=1)
    rest = w.findings(limit=5, after=(first[0].last_seen, first[0].id))
    assert len(first) == 1
    assert len(rest) == 1
    assert {first[0].validator_id, rest[0].validator_id} == {"notes-lists-owners", "credential-expiry"}
    assert w.findings(severity="critical") == []
    assert [f.validator_id for f in w.findings(state="open", object_id=SP, severity="high")] == [
        "credential-expiry"
    ]


# -- remediation ------------------------------------------------------------------------------------


def test_report_only_records_the_exact_patch_on_the_record_and_in_the_audit_and_sends_nothing() -> None:
    w = world()
    outcome = w.evaluate(sp("Payroll team", owners=[BOB, ALICE]), T0, "sweep-1")

    request = NotesPatch(
        url=f"{GRAPH}/v1.0/servicePrincipals/{SP}", body={"notes": "alice@contoso.com, bob@contoso.com"}
    )
    assert outcome.update is None
    assert outcome.remediation.status == "reported"
    assert outcome.remediation.request == request
    record = w.record()
    assert (record.remediation_status, record.remediation.source) == ("reported", "owners")
    assert record.remediation.request.model_dump() == {
        "method": "PATCH",
        "url": f"{GRAPH}/v1.0/servicePrincipals/{SP}",
        "body": {"notes": "alice@contoso.com, bob@contoso.com"},
    }
    entry = w.audit.one("governance.notes.report")
    assert entry.before == {"notes": "Payroll team"}
    assert entry.after["request"] == request.model_dump(mode="json")  # type: ignore[index,call-overload]
    assert w.writer.sent == []
    assert w.claims.rows == {}


def test_notes_come_back_from_last_known_good_else_from_owners_else_cannot_remediate() -> None:
    w = world()
    w.evaluate(sp("bob@contoso.com", owners=[ALICE, BOB]), T0, "sweep-1")  # passes: the last-known-good
    # Notes overwritten: the last-known-good value still passes, so it is what comes back
    restored = w.evaluate(sp("nobody", owners=[ALICE, BOB]), T0 + dt.timedelta(hours=1), "sweep-2")
    assert (restored.remediation.source, restored.remediation.after) == ("last-known-good", "bob@contoso.com")

    # Bob is disabled now: the last-known-good value no longer passes; the owners' value does
    disabled_bob = user(2, "bob@contoso.com", accountEnabled=False)
    rebuilt = w.evaluate(sp("nobody", owners=[ALICE, disabled_bob]), T0 + dt.timedelta(hours=2), "sweep-3")
    assert (rebuilt.remediation.source, rebuilt.remediation.after) == ("owners", "alice@contoso.com")

    # No accountable owner at all: recorded as such, on the record and in the audit
    stuck = w.evaluate(sp("nobody", owners=[disabled_bob]), T0 + dt.timedelta(hours=3), "sweep-4")
    assert stuck.remediation.status == "cannot-remediate"
    assert stuck.remediation.request is None
    assert "no accountable owner" in stuck.remediation.reason
    assert w.record().remediation_status == "cannot-remediate"
    assert "governance.notes.cannot-remediate" in w.audit.actions(SP)


def test_update_mode_sends_one_patch_per_object_and_evaluation_even_when_every_message_comes_twice() -> None:
    w = world("Update")
    failing = sp("Payroll team")
    batch = activity_id("evaluation", TENANT, "discovery-1")
    first = w.evaluate(failing, T0, "sweep-1", batch_id=batch, trigger="discovery")
    again = w.evaluate(failing, T0 + dt.timedelta(seconds=30), "sweep-1", batch_id=batch, trigger="discovery")

    assert first.update is not None
    assert (again.status, again.update) == ("duplicate", first.update)
    assert first.remediation.status == "queued"
    for message in (first.update, again.update, first.update):
        w.service.update(message, T0 + dt.timedelta(minutes=1))

    assert w.writer.sent == [notes_patch(GRAPH, SP, "alice@contoso.com")]
    record = w.record()
    assert (record.remediation_status, record.remediation.done_at) == (
        "patched",
        utc_iso(T0 + dt.timedelta(minutes=1)),
    )
    entry = w.audit.one("governance.notes.update")
    assert (entry.actor, entry.before, entry.after["notes"]) == (  # type: ignore[index,call-overload]
        "aoc-functions",
        {"notes": "Payroll team"},
        "alice@contoso.com",
    )
    evaluations = w.activities.get(TENANT, batch)
    assert evaluations is not None
    assert (evaluations.counts.evaluated, evaluations.counts.failed) == (1, 1)
    updates = w.activities.get(TENANT, activity_id("update", TENANT, batch))
    assert updates is not None
    assert (updates.kind, updates.counts.updated) == ("update", 1)


def test_no_patch_when_the_value_already_matches_or_a_later_evaluation_came_first() -> None:
    w = world("Update")
    planned = w.evaluate(sp("Payroll team"), T0, "sweep-1").update
    assert planned is not None
    matching = planned.model_copy(update={"before": planned.after})
    assert w.service.update(matching, T0).status == "unchanged"

    w2 = world("Update")
    older = w2.evaluate(sp("Payroll team"), T0, "sweep-1").update
    newer = w2.evaluate(sp("Payroll team!"), T0 + dt.timedelta(minutes=5), "event-9").update
    assert older is not None
    assert newer is not None
    assert w2.service.update(older, T0 + dt.timedelta(minutes=6)).status == "superseded"
    assert w2.service.update(newer, T0 + dt.timedelta(minutes=6)).status == "patched"
    assert [p.body for p in w2.writer.sent] == [{"notes": "alice@contoso.com"}]
    assert w2.record().remediation.evaluation_id == newer.evaluation_id

    # A passing object plans nothing at all
    assert w.evaluate(sp("alice@contoso.com"), T0 + dt.timedelta(hours=1), "sweep-2").update is None


def test_a_refused_patch_releases_the_claim_so_the_retry_sends_it_once() -> None:
    w = world("Update")
    batch = activity_id("evaluation", TENANT, "discovery-1")
    message = w.evaluate(sp("Payroll team"), T0, "sweep-1", batch_id=batch).update
    assert message is not None
    w.writer.fail_with.append(ApiError(503, "ServiceUnavailable", "try later", "PATCH servicePrincipals"))
    with pytest.raises(ApiError):
        w.service.update(message, T0)
    assert w.writer.sent == []

    assert w.service.update(message, T0 + dt.timedelta(seconds=10)).status == "patched"
    assert w.service.update(message, T0 + dt.timedelta(seconds=20)).status == "duplicate"
    assert len(w.writer.sent) == 1
    updates = w.activities.get(TENANT, activity_id("update", TENANT, batch))
    assert updates is not None
    assert (updates.counts.errors, updates.counts.updated) == (1, 1)
    assert "ServiceUnavailable" in updates.errors[0].message


def test_a_claim_held_by_a_live_worker_defers_the_copy_and_a_stale_one_is_taken_over() -> None:
    w = world("Update")
    message = w.evaluate(sp("Payroll team"), T0, "sweep-1").update
    assert message is not None
    w.claims.claim(TENANT, SP, message.evaluation_id, T0, "worker-that-died")
    with pytest.raises(ClaimBusyError):
        w.service.update(message, T0 + dt.timedelta(minutes=1))
    assert w.writer.sent == []
    assert w.service.update(message, T0 + dt.timedelta(minutes=16)).status == "patched"
    assert len(w.writer.sent) == 1


def test_report_only_never_sends_an_update_message_it_is_given() -> None:
    update_mode = world("Update")
    message = update_mode.evaluate(sp("Payroll team"), T0, "sweep-1").update
    assert message is not None
    report_only = world("ReportOnly")
    assert report_only.service.update(message, T0).status == "skipped"
    assert report_only.writer.sent == []


def test_update_mode_needs_a_writer() -> None:
    with pytest.raises(ValueError, match="GraphWriter"):
        GovernanceService(
            MemoryGovernanceStore(),
            MemoryActivityStore(),
            MemoryAudit(),
            MemoryClaims(),
            None,
            VALIDATORS,
            mode="Update",
            graph_base=GRAPH,
        )


# -- redelivery, stale snapshots, races -------------------------------------------------------------


def test_a_redelivered_evaluation_writes_nothing_and_counts_once() -> None:
    w = world()
    batch = activity_id("evaluation", TENANT, "discovery-1")
    first = w.evaluate(sp("Payroll team"), T0, "sweep-1", batch_id=batch)
    writes, audits = w.store.writes, w.audit.writes
    second = w.evaluate(sp("Payroll team"), T0 + dt.timedelta(minutes=1), "sweep-1", batch_id=batch)

    assert (second.status, second.result) == ("duplicate", "fail")
    assert second.findings == first.findings
    assert second.opened == first.opened
    assert (w.store.writes, w.audit.writes) == (writes, audits)
    activity = w.activities.get(TENANT, batch)
    assert activity is not None
    assert (activity.counts.evaluated, activity.counts.failed) == (1, 1)


def test_an_older_snapshot_than_the_last_evaluated_is_skipped_as_stale() -> None:
    w = world()
    batch = activity_id("evaluation", TENANT, "discovery-1")
    w.evaluate(sp("alice@contoso.com"), T0, "event-2", observed_at=T0)
    stale = w.evaluate(
        sp("Payroll team"),
        T0 + dt.timedelta(minutes=1),
        "sweep-1",
        observed_at=T0 - dt.timedelta(minutes=5),
        batch_id=batch,
    )
    assert stale.status == "stale"
    assert w.record().last_result == "pass"
    assert w.findings() == []
    activity = w.activities.get(TENANT, batch)
    assert activity is not None
    assert (activity.counts.skipped, activity.counts.evaluated) == (1, 0)


def test_a_concurrent_write_to_the_object_makes_the_evaluation_start_over() -> None:
    w = world()
    w.evaluate(sp("Payroll team"), T0, "sweep-1")

    def other_worker() -> None:  # a different evaluation of the same object lands first
        w.evaluate(sp("alice@contoso.com"), T0 + dt.timedelta(minutes=1), "event-7")

    w.store.race = other_worker
    outcome = w.evaluate(sp("Payroll team"), T0 + dt.timedelta(minutes=2), "sweep-2")
    assert outcome.status == "evaluated"
    record = w.record()
    assert record.last_evaluation_id == evaluation_id(TENANT, SP, "sweep-2")
    assert record.evaluations == 3
    notes = w.findings(validator_id="notes-lists-owners")[0]
    # resolved by event-7, opened again by sweep-2
    assert (notes.state, notes.opened_at, notes.first_seen) == (
        "open",
        utc_iso(T0 + dt.timedelta(minutes=2)),
        utc_iso(T0),
    )


def test_an_object_that_never_settles_raises_stale_write() -> None:
    w = world()
    w.evaluate(sp("Payroll team"), T0, "sweep-1")
    counter = iter(range(100))

    def always_racing() -> None:  # another evaluation lands before each write of this one
        w.evaluate(sp("Payroll team"), T0 + dt.timedelta(minutes=1), f"event-{next(counter)}")
        w.store.race = always_racing

    w.store.race = always_racing
    with pytest.raises(StaleWriteError):
        w.evaluate(sp("Payroll team"), T0 + dt.timedelta(minutes=2), "sweep-2")


# -- exceptions -------------------------------------------------------------------------------------


def test_an_accepted_risk_turns_findings_accepted_stops_notes_remediation_and_expires() -> None:
    w = world("Update")
    w.evaluate(sp("Payroll team"), T0, "sweep-1")
    expires = T0 + dt.timedelta(days=30)
    exception = w.service.accept_risk(
        TENANT, SP, "notes-lists-owners", "owned by HR, notes kept", expires, ADMIN, T0
    )

    assert is_governance_exception_id(exception.id)
    assert [f.state for f in w.findings(validator_id="notes-lists-owners")] == ["accepted"]
    assert (w.record().open_findings, w.record().accepted_findings) == (0, 1)
    entry = w.audit.one("governance.exception.accept")
    assert (entry.actor, entry.actor_id, entry.after["reason"]) == (  # type: ignore[index,call-overload]
        "root@contoso.com",
        "oid-root",
        "owned by HR, notes kept",
    )

    covered = w.evaluate(sp("Payroll team"), T0 + dt.timedelta(days=1), "sweep-2")
    assert (covered.result, covered.remediation.status, covered.update) == ("pass", "accepted", None)
    assert covered.findings[0].exception_id == exception.id

    expired = w.evaluate(sp("Payroll team"), expires + dt.timedelta(seconds=1), "sweep-3")
    assert (expired.result, expired.findings[0].state) == ("fail", "open")
    assert expired.update is not None

    assert w.service.revoke_risk(TENANT, SP, "notes-lists-owners", ADMIN, expires) is True
    assert w.service.revoke_risk(TENANT, SP, "notes-lists-owners", ADMIN, expires) is False
    assert "governance.exception.revoke" in w.audit.actions(SP)


def test_revoking_a_risk_opens_its_findings_again() -> None:
    w = world()
    w.evaluate(sp("Payroll team"), T0, "sweep-1")
    w.service.accept_risk(TENANT, SP, "notes-lists-owners", "known", T0 + dt.timedelta(days=3), ADMIN, T0)
    w.service.revoke_risk(TENANT, SP, "notes-lists-owners", ADMIN, T0 + dt.timedelta(hours=1))
    assert [f.state for f in w.findings(validator_id="notes-lists-owners")] == ["open"]
    assert w.record().open_findings == 1


@pytest.mark.parametrize(
    ("validator", "reason", "days"),
    [("notes-list-owners", "x", 3), ("ownerless", " ", 3), ("ownerless", "x", 0), ("ownerless", "x", 400)],
)
def test_an_exception_needs_a_known_validator_a_reason_and_an_expiry_within_a_year(
    validator: str, reason: str, days: int
) -> None:
    w = world()
    with pytest.raises(ExceptionError):
        w.service.accept_risk(TENANT, SP, validator, reason, T0 + dt.timedelta(days=days), ADMIN, T0)
    assert w.store.documents == {}


# -- messages, ids, activities, the writer ----------------------------------------------------------


def test_messages_round_trip_and_refuse_what_the_app_did_not_write() -> None:
    obj = sp("Payroll team")
    message = EvaluateObject(
        tenant_id=TENANT,
        object_id=SP,
        evaluation_id=evaluation_id(TENANT, SP, "sweep-1"),
        batch_id=activity_id("evaluation", TENANT, "sweep-1"),
        trigger="discovery",
        observed_at=utc_iso(T0),
        snapshot=obj,
    )
    back = EvaluateObject.model_validate_json(message.queue_text())
    assert back == message
    assert back.snapshot == obj
    assert back.observed_at == "2026-12-07T09:00:00.000Z"
    assert EvaluateObject.model_validate_json(message.queue_text(limit=100)).snapshot is None

    raw = message.model_dump(mode="json")
    for hostile in (
        {**raw, "extra": 1},
        {**raw, "evaluation_id": "ev-../../x"},
        {**raw, "tenant_id": "a/b"},
        {**raw, "object_id": "not-a-guid"},
        {**raw, "observed_at": "yesterday"},
        {**raw, "version": 2},
        {**raw, "object_id": "22222222-2222-4222-8222-222222222222"},  # not the snapshot's object
    ):
        with pytest.raises(ValidationError):
            EvaluateObject.model_validate(hostile)
    request = DiscoveryRequest(
        tenant_id=TENANT,
        activity_id=activity_id("discovery", TENANT, "request-1"),
        trigger="request",
        full_seed=True,
        requested_at=utc_iso(T0),
        requested_by="root@contoso.com",
    )
    assert DiscoveryRequest.model_validate_json(request.model_dump_json()) == request
    with pytest.raises(ValidationError):
        DiscoveryRequest.model_validate({**request.model_dump(), "activity_id": "act-other-00"})
    with pytest.raises(ValidationError):
        UpdateNotes(
            tenant_id=TENANT,
            object_id=SP,
            evaluation_id=evaluation_id(TENANT, SP, "x"),
            after="a" * 1025,
            source="owners",
            planned_at=utc_iso(T0),
        )


def test_ids_are_deterministic_storage_safe_and_of_their_grammar() -> None:
    ev = evaluation_id(TENANT, SP, "sweep-1")
    assert ev == evaluation_id(TENANT, SP.upper(), "sweep-1")
    assert ev != evaluation_id(TENANT, SP, "sweep-2")
    act = activity_id("discovery", TENANT, "timer:2026-12-07T09:00")
    fnd = finding_id(TENANT, SP, "ownerless", "owners")
    for value, check in ((ev, is_evaluation_id), (act, is_governance_activity_id), (fnd, is_finding_id)):
        assert check(value)
        assert storage_id(value) == value
    assert not is_evaluation_id(ev + "\n")
    assert storage_id(activity_shard_id(act, SP)).startswith(f"{act}-s")


def test_activity_shards_sum_in_and_a_batch_succeeds_once_every_unit_settled() -> None:
    act = activity_id("evaluation", TENANT, "d1")
    batch = ActivityRecord(
        id=act, pk=TENANT, kind="evaluation", trigger="discovery", started_at=utc_iso(T0), expected=3
    )
    shards = [
        ActivityShard(
            id=f"{act}-s0",
            pk=TENANT,
            activity_id=act,
            counts=ActivityCounts(evaluated=2, passed=2),
            last_at=utc_iso(T0 + dt.timedelta(seconds=5)),
        ),
        ActivityShard(
            id=f"{act}-s3",
            pk=TENANT,
            activity_id=act,
            counts=ActivityCounts(skipped=1),
            last_at=utc_iso(T0 + dt.timedelta(seconds=9)),
        ),
    ]
    merged = merge_shards(batch, shards)
    assert (merged.counts.evaluated, merged.counts.skipped, merged.status) == (2, 1, "succeeded")
    assert merged.ended_at == utc_iso(T0 + dt.timedelta(seconds=9))
    assert merge_shards(batch, shards[:1]).status == "running"


def test_the_graph_writer_sends_the_patch_through_the_app_client_with_retries() -> None:
    client, transport, clock, _ = make_client(
        [Answer(429, {"error": {"code": "TooManyRequests"}}, {"Retry-After": "3"}), Answer(204)]
    )
    writer = GraphNotesWriter(client, "https://graph.microsoft.com/.default", GRAPH)
    writer.send(notes_patch(GRAPH, SP, "alice@contoso.com"))

    assert [(s.method, s.url) for s in transport.sent] == [
        ("PATCH", f"{GRAPH}/v1.0/servicePrincipals/{SP}")
    ] * 2
    assert json.loads(transport.sent[-1].body) == {"notes": "alice@contoso.com"}
    assert transport.sent[-1].headers["authorization"].startswith("Bearer ")
    assert clock.sleeps == [3.0]

    for foreign in (
        NotesPatch(url="https://evil.example/v1.0/servicePrincipals/" + SP, body={"notes": "x"}),
        NotesPatch(url=f"{GRAPH}/v1.0/servicePrincipals/{SP}/owners", body={"notes": "x"}),
        NotesPatch(url=f"{GRAPH}/v1.0/servicePrincipals/{SP}", body={"displayName": "x"}),
    ):
        with pytest.raises(ValueError, match="only"):
            writer.send(foreign)
    assert len(transport.sent) == 2


def test_two_admin_acts_in_the_same_instant_are_two_audit_entries() -> None:
    w = world()
    w.evaluate(sp("Payroll team"), T0, "sweep-1")
    expires = T0 + dt.timedelta(days=3)
    w.service.accept_risk(TENANT, SP, "notes-lists-owners", "first reason", expires, ADMIN, T0)
    w.service.accept_risk(TENANT, SP, "notes-lists-owners", "second reason", expires, ADMIN, T0)
    accepts = [e for e in w.audit.entries.values() if e.action == "governance.exception.accept"]
    reasons = [e.after["reason"] for e in accepts if isinstance(e.after, dict)]
    assert sorted(str(r) for r in reasons) == ["first reason", "second reason"]


def test_a_revoke_under_a_stale_etag_leaves_the_exception() -> None:
    w = world()
    w.evaluate(sp("Payroll team"), T0, "sweep-1")
    expires = T0 + dt.timedelta(days=3)
    first = w.service.accept_risk(TENANT, SP, "notes-lists-owners", "first", expires, ADMIN, T0)
    seen = w.store.get_exception(TENANT, first.id)
    assert seen is not None
    assert seen.etag is not None
    w.service.accept_risk(TENANT, SP, "notes-lists-owners", "replaced", expires, ADMIN, T0)

    assert w.service.revoke_risk(TENANT, SP, "notes-lists-owners", ADMIN, T0, etag=seen.etag) is False
    assert [f.state for f in w.findings(validator_id="notes-lists-owners")] == ["accepted"]
    current = w.store.get_exception(TENANT, first.id)
    assert current is not None
    assert w.service.revoke_risk(TENANT, SP, "notes-lists-owners", ADMIN, T0, etag=current.etag) is True
    assert [f.state for f in w.findings(validator_id="notes-lists-owners")] == ["open"]


def test_a_risk_is_accepted_only_for_an_evaluated_object() -> None:
    w = world()
    with pytest.raises(ExceptionError, match="has not been evaluated"):
        w.service.accept_risk(TENANT, SP, "ownerless", "known", T0 + dt.timedelta(days=3), ADMIN, T0)
    assert w.store.exceptions(TENANT) == []
