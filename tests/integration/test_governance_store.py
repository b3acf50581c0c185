"""The governance stores against cosmosdb-server and Azurite (shared/governance/store.py), and one
evaluation with its notes PATCH against the tenant simulator: ETag writes, the one-query object state,
the findings, exceptions and activities queries, audit entries that GET /api/audit reads back, the
update claims, and in Update mode exactly one PATCH per object however often each message arrives."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from devtools.simulator import TenantSimulator
from shared.api.audit import AuditLog, AuditQuery
from shared.api.paging import ContinuationSigner
from shared.governance.config import load_default_validators
from shared.governance.messages import activity_id, evaluation_id
from shared.governance.model import GovernedObject
from shared.governance.notes_writer import GraphNotesWriter
from shared.governance.records import (
    ActivityCounts,
    ActivityError,
    ActivityRecord,
    ExceptionRecord,
    FindingRecord,
    ObjectRecord,
    UpdateMode,
    object_record_id,
)
from shared.governance.service import Actor, GovernanceService
from shared.governance.store import (
    CosmosActivityStore,
    CosmosAuditSink,
    CosmosGovernanceStore,
    FindingQuery,
    StaleWriteError,
    TableUpdateClaims,
)
from shared.m365.auth import StaticTokenProvider
from shared.m365.http_client import ApiClient
from shared.platform.clients import get_clients
from shared.platform.clock import utc_iso
from shared.platform.resources import CosmosContainers, Tables
from shared.platform.table_claim import ClaimBusyError
from tests.support.clock import ManualClock
from tests.support.governance_memory import FakeWriter
from tests.support.simulator_client import GRAPH_SCOPE, client_token, simulator_at

T0 = dt.datetime(2026, 12, 7, 9, 0, tzinfo=dt.UTC)
SP = "11111111-1111-4111-8111-111111111111"
GRAPH = "https://graph.microsoft.com"
EPOCH = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)


@dataclass
class Stores:
    tenant: str
    governance: CosmosGovernanceStore
    activities: CosmosActivityStore
    audit: CosmosAuditSink
    audit_log: AuditLog
    claims: TableUpdateClaims


@pytest.fixture
def stores(app_environment: dict[str, str]) -> Stores:
    clients = get_clients()
    container = clients.cosmos_container(CosmosContainers.GOVERNANCE.name)
    audit = clients.cosmos_container(CosmosContainers.AUDIT.name)
    tenant = f"gov-{uuid.uuid4().hex[:12]}"
    return Stores(
        tenant,
        CosmosGovernanceStore(container),
        CosmosActivityStore(container),
        CosmosAuditSink(audit),
        AuditLog(audit, tenant, ManualClock(T0)),
        TableUpdateClaims(clients.table(Tables.GOVERNANCE_UPDATES)),
    )


def user(n: int, upn: str, **changes: Any) -> dict[str, Any]:
    return {
        "@odata.type": "#microsoft.graph.user",
        "id": f"00000000-0000-4000-8000-{n:012d}",
        "userPrincipalName": upn,
        "accountEnabled": True,
        "userType": "Member",
        **changes,
    }


def sp(notes: str | None, object_id: str = SP) -> GovernedObject:
    return GovernedObject.from_graph(
        {
            "id": object_id,
            "displayName": "Payroll sync",
            "servicePrincipalType": "Application",
            "notes": notes,
        },
        owners=[user(1, "alice@contoso.com"), user(2, "bob@contoso.com")],
    )


def service(
    s: Stores, writer: FakeWriter | GraphNotesWriter | None, mode: UpdateMode, graph: str = GRAPH
) -> GovernanceService:
    return GovernanceService(
        s.governance,
        s.activities,
        s.audit,
        s.claims,
        writer,
        load_default_validators(),
        mode=mode,
        graph_base=graph,
    )


def test_an_evaluation_is_stored_read_back_in_one_query_and_audited(stores: Stores) -> None:
    svc = service(stores, None, "ReportOnly")
    ev = evaluation_id(stores.tenant, SP, "sweep-1")
    outcome = svc.evaluate(stores.tenant, sp("Payroll team"), T0, evaluation_id=ev)
    again = svc.evaluate(stores.tenant, sp("Payroll team"), T0 + dt.timedelta(minutes=1), evaluation_id=ev)

    state = stores.governance.object_state(stores.tenant, SP)
    assert state.record is not None
    assert state.record.etag
    assert (state.record.value.last_result, state.record.value.remediation_status) == ("fail", "reported")
    assert sorted(state.findings) == [(f.validator_id, f.subject) for f in outcome.findings]
    assert again.status == "duplicate"
    assert again.findings == outcome.findings
    request = state.record.value.remediation.request  # type: ignore[union-attr]
    assert request is not None
    assert request.model_dump() == {
        "method": "PATCH",
        "url": f"{GRAPH}/v1.0/servicePrincipals/{SP}",
        "body": {"notes": "alice@contoso.com, bob@contoso.com"},
    }

    page = stores.audit_log.search(AuditQuery(target_id=SP), ContinuationSigner(b"k" * 32))
    assert sorted(r.action for r in page.items) == ["governance.evaluate", "governance.notes.report"]
    evaluated = next(r for r in page.items if r.action == "governance.evaluate")
    assert (evaluated.actor, evaluated.auth, evaluated.after["result"]) == ("aoc-functions", "app", "fail")


def test_writes_are_conditional_on_the_etag_read(stores: Stores) -> None:
    record = ObjectRecord(
        id=object_record_id(SP),
        pk=stores.tenant,
        object_id=SP,
        display_name="x",
        last_evaluation_id=evaluation_id(stores.tenant, SP, "a"),
        last_evaluated_at=utc_iso(T0),
        last_observed_at=utc_iso(T0),
        last_trigger="manual",
        last_result="pass",
    )
    first = stores.governance.write_object(record, None)
    with pytest.raises(StaleWriteError):
        stores.governance.write_object(record, None)  # created already
    second = stores.governance.write_object(record.model_copy(update={"evaluations": 2}), first.etag)
    with pytest.raises(StaleWriteError):
        stores.governance.write_object(record, first.etag)  # changed since
    assert second.etag != first.etag
    found = stores.governance.get_object(stores.tenant, SP)
    assert found is not None
    assert found.value.evaluations == 2
    assert stores.governance.get_object(stores.tenant, "22222222-2222-4222-8222-222222222222") is None


def test_findings_filter_and_page_in_the_tenants_partition(stores: Stores) -> None:
    svc = service(stores, None, "ReportOnly")
    others = [f"33333333-3333-4333-8333-33333333333{i}" for i in range(3)]
    for n, object_id in enumerate(others):
        svc.evaluate(stores.tenant, sp("nobody", object_id), T0 + dt.timedelta(minutes=n))
    svc.evaluate(f"{stores.tenant}-other", sp("nobody", others[0]), T0)

    everything = stores.governance.findings(stores.tenant, FindingQuery(limit=100))
    assert len(everything) == 3
    assert [f.object_id for f in everything] == list(reversed(others))  # newest last_seen first
    paged: list[FindingRecord] = []
    after = None
    while True:
        page = stores.governance.findings(stores.tenant, FindingQuery(limit=2, after=after))
        paged.extend(page)
        if len(page) < 2:
            break
        after = (page[-1].last_seen, page[-1].id)
    assert paged == everything
    one = stores.governance.findings(
        stores.tenant,
        FindingQuery(
            validator_id="notes-lists-owners", severity="medium", state="open", object_id=others[1].upper()
        ),
    )
    assert [f.object_id for f in one] == [others[1]]
    assert stores.governance.findings(stores.tenant, FindingQuery(state="resolved")) == []


def test_exceptions_are_listed_by_expiry_and_deleted_under_their_etag(stores: Stores) -> None:
    svc = service(stores, None, "ReportOnly")
    svc.evaluate(stores.tenant, sp("nobody"), T0)
    by = Actor("root@contoso.com", "oid-root", "entra")
    later = svc.accept_risk(
        stores.tenant, SP, "notes-lists-owners", "HR owns it", T0 + dt.timedelta(days=9), by, T0
    )
    sooner = svc.accept_risk(stores.tenant, SP, "ownerless", "n/a", T0 + dt.timedelta(days=2), by, T0)
    listed = stores.governance.exceptions(stores.tenant)
    assert [e.id for e in listed] == [sooner.id, later.id]
    assert [e.id for e in stores.governance.exceptions(stores.tenant, SP)] == [sooner.id, later.id]
    assert [f.state for f in stores.governance.findings(stores.tenant, FindingQuery(object_id=SP))] == [
        "accepted"
    ]

    stored = stores.governance.get_exception(stores.tenant, later.id)
    assert stored is not None
    assert isinstance(stored.value, ExceptionRecord)
    changed = stores.governance.write_exception(
        stored.value.model_copy(update={"reason": "still HR"}), stored.etag
    )
    with pytest.raises(StaleWriteError):
        stores.governance.delete_exception(stores.tenant, later.id, stored.etag)
    assert stores.governance.delete_exception(stores.tenant, later.id, changed.etag) is True
    assert stores.governance.delete_exception(stores.tenant, later.id, None) is False


def test_activities_start_once_add_through_shards_finish_and_list_newest_first(stores: Stores) -> None:
    discovery = ActivityRecord(
        id=activity_id("discovery", stores.tenant, "timer-1"),
        pk=stores.tenant,
        kind="discovery",
        trigger="timer",
        started_at=utc_iso(T0),
        lock="acquired",
    )
    assert stores.activities.start(discovery) == discovery
    assert stores.activities.start(discovery.model_copy(update={"lock": "held"})).lock == "acquired"
    finished = stores.activities.finish(
        stores.tenant,
        discovery.id,
        T0 + dt.timedelta(minutes=1),
        status="succeeded",
        counts=ActivityCounts(discovered=40),
        details={"resynced": False},
    )
    assert finished is not None
    assert (finished.status, finished.counts.discovered, finished.details) == (
        "succeeded",
        40,
        {"resynced": False},
    )

    batch = activity_id("evaluation", stores.tenant, discovery.id)
    stores.activities.start(
        ActivityRecord(
            id=batch,
            pk=stores.tenant,
            kind="evaluation",
            trigger="discovery",
            parent_id=discovery.id,
            started_at=utc_iso(T0 + dt.timedelta(minutes=1)),
        )
    )
    for n in range(40):
        object_id = f"44444444-4444-4444-8444-{n:012d}"
        counts = ActivityCounts(evaluated=1, passed=n % 2, failed=1 - n % 2)
        error = ActivityError(at=utc_iso(T0), message="boom", object_id=object_id) if n == 7 else None
        stores.activities.add(
            stores.tenant, batch, object_id, counts, T0 + dt.timedelta(minutes=2, seconds=n),
            kind="evaluation", trigger="discovery", error=error,
        )  # fmt: skip
    running = stores.activities.get(stores.tenant, batch)
    assert running is not None
    assert (running.status, running.expected) == ("running", None)  # its size is not known yet
    stores.activities.expect(stores.tenant, batch, 40)  # the discovery has queued 40
    merged = stores.activities.get(stores.tenant, batch)
    assert merged is not None
    assert merged.expected == 40
    assert (merged.counts.evaluated, merged.counts.passed, merged.counts.failed) == (40, 20, 20)
    assert (merged.status, merged.ended_at) == (
        "succeeded",
        utc_iso(T0 + dt.timedelta(minutes=2, seconds=39)),
    )
    assert [e.object_id for e in merged.errors] == ["44444444-4444-4444-8444-000000000007"]

    # A batch nobody started is started by its first worker
    orphan = activity_id("update", stores.tenant, "x")
    stores.activities.add(
        stores.tenant,
        orphan,
        SP,
        ActivityCounts(updated=1),
        T0 - dt.timedelta(minutes=1),
        kind="update",
        trigger="event",
    )
    recent = stores.activities.recent(stores.tenant)
    assert [a.id for a in recent] == [batch, discovery.id, orphan]
    assert [a.id for a in stores.activities.recent(stores.tenant, kind="update")] == [orphan]
    assert recent[2].counts.updated == 1


def test_update_claims_hold_finish_and_release(stores: Stores) -> None:
    ev = evaluation_id(stores.tenant, SP, "c")
    first = stores.claims.claim(stores.tenant, SP, ev, T0, "owner-1")
    assert first.state == "claimed"
    with pytest.raises(ClaimBusyError):
        stores.claims.claim(stores.tenant, SP, ev, T0 + dt.timedelta(minutes=1), "owner-2")
    stores.claims.release(stores.tenant, SP, ev, T0, "owner-2", "not mine")  # not the holder: no effect
    with pytest.raises(ClaimBusyError):
        stores.claims.claim(stores.tenant, SP, ev, T0 + dt.timedelta(minutes=1), "owner-2")
    stores.claims.release(stores.tenant, SP, ev, T0, "owner-1", "503")
    assert (
        stores.claims.claim(stores.tenant, SP, ev, T0 + dt.timedelta(minutes=2), "owner-2").state == "claimed"
    )
    stores.claims.finish(stores.tenant, SP, ev, T0 + dt.timedelta(minutes=3), "owner-2", "patched")
    done = stores.claims.claim(stores.tenant, SP, ev, T0 + dt.timedelta(minutes=4), "owner-3")
    assert (done.state, done.status) == ("done", "patched")


# -- against the tenant simulator -------------------------------------------------------------------


@pytest.fixture(scope="module")
def sim() -> Iterator[TenantSimulator]:
    simulator = simulator_at(EPOCH, 86_400.0, events_per_day=50, service_principals=60)
    yield simulator
    simulator.stop()


def read_object(api: ApiClient, sim: TenantSimulator, object_id: str) -> GovernedObject:
    """The service principal and its owners as Graph returns them (discovery reads more; notes and owners
    are what this test's validator needs)."""
    base = f"{sim.graph_base_url}/v1.0/servicePrincipals/{object_id}"
    principal = api.get_json(
        base, scope=GRAPH_SCOPE, params={"$select": "id,appId,displayName,notes,servicePrincipalType"}
    )
    owners = api.get_json(
        f"{base}/owners",
        scope=GRAPH_SCOPE,
        params={"$select": "id,displayName,userPrincipalName,accountEnabled,userType,appId"},
    )
    return GovernedObject.from_graph(principal, owners=owners["value"])


def test_update_mode_patches_the_simulated_principal_once_when_every_message_comes_twice(
    stores: Stores, sim: TenantSimulator
) -> None:
    truth = requests.get(f"{sim.base_url}/_sim/apps/truth", timeout=30).json()["service_principals"]
    principal = next(
        p
        for p in truth
        if not p["deleted"]
        and p["kind"] == "line_of_business"
        and any(
            o["type"] == "user" and o["accountEnabled"] and o["userType"] == "Member" for o in p["owners"]
        )
        and p["notesCase"] in ("empty", "blank", "free_text")
    )
    api = ApiClient(StaticTokenProvider(client_token(sim, GRAPH_SCOPE)), timeout=(5.0, 30.0))
    writer = GraphNotesWriter(api, GRAPH_SCOPE, sim.graph_base_url)
    svc = service(stores, writer, "Update", sim.graph_base_url)
    obj = read_object(api, sim, principal["id"])
    batch = activity_id("evaluation", stores.tenant, "sweep-1")
    ev = evaluation_id(stores.tenant, obj.id, "sweep-1")

    outcomes = [
        svc.evaluate(stores.tenant, obj, T0, evaluation_id=ev, batch_id=batch, trigger="discovery")
        for _ in range(2)
    ]
    assert [o.status for o in outcomes] == ["evaluated", "duplicate"]
    messages = [o.update for o in outcomes]
    assert messages[0] is not None
    assert messages[0] == messages[1]
    results = [svc.update(m, T0 + dt.timedelta(minutes=1)) for m in messages if m is not None]
    assert [r.status for r in results] == ["patched", "duplicate"]

    writes = requests.get(f"{sim.base_url}/_sim/apps/writes", timeout=10).json()
    assert writes["accepted_by_object"].get(principal["id"]) == 1
    assert read_object(api, sim, principal["id"]).notes == messages[0].after

    # The next read of the object (Graph now holds the new notes) no longer fails the notes rule
    event = evaluation_id(stores.tenant, obj.id, "event-1")
    reread = read_object(api, sim, principal["id"])
    fixed = svc.evaluate(
        stores.tenant, reread, T0 + dt.timedelta(minutes=2), evaluation_id=event, trigger="event"
    )
    assert [f for f in fixed.findings if f.validator_id == "notes-lists-owners"] == []
    assert "notes-lists-owners" in [f.validator_id for f in fixed.resolved]
    page = stores.audit_log.search(
        AuditQuery(action="governance.notes.update"), ContinuationSigner(b"k" * 32)
    )
    assert [(r.target_id, r.before, r.after["notes"]) for r in page.items] == [
        (obj.id, {"notes": obj.notes}, messages[0].after)
    ]
