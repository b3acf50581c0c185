"""The governance routes (shared/api/governance_api.py) against cosmosdb-server and Azurite, with data
made by GovernanceService.evaluate of GovernedObject.from_graph objects: findings keyset-paged over the
real queries, the summary's one query counted, an object's history read from the audit container
(newest 50), exceptions with Cosmos ETags in If-Match, discovery requests on the real queue, activities,
and the composition root's wiring of the routes and of GET /api/status's governance block."""

from __future__ import annotations

import datetime as dt
import json
import urllib.parse
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from shared.api.audit import AuditLog
from shared.api.auth import Authenticator
from shared.api.events_query import SensitivityPolicy
from shared.api.governance_api import CosmosObjectAuditTrail, GovernanceApi, governance_status
from shared.api.paging import ContinuationSigner
from shared.api.responses import ApiGuard, ApiResponse
from shared.api.searches_api import quoted
from shared.governance.config import VALIDATOR_IDS, load_default_validators
from shared.governance.messages import DiscoveryRequest, activity_id, evaluation_id
from shared.governance.model import GovernedObject
from shared.governance.records import ActivityCounts, ActivityRecord
from shared.governance.service import GovernanceService
from shared.governance.store import (
    CosmosActivityStore,
    CosmosAuditSink,
    CosmosGovernanceStore,
    TableUpdateClaims,
)
from shared.platform.clients import get_clients, reset_clients
from shared.platform.clock import utc_iso
from shared.platform.resources import CosmosContainers, Queues, Tables
from tests.support.clock import ManualClock
from tests.support.principals import swa_principal

T0 = dt.datetime(2026, 12, 7, 9, 0, tzinfo=dt.UTC)
READER = {"x-ms-client-principal": swa_principal(["reader"], user="rita@contoso.com")}
ADMIN = {"x-ms-client-principal": swa_principal(["admin"], user="root@contoso.com")}
JSON = {"Content-Type": "application/json"}
ALICE = {
    "@odata.type": "#microsoft.graph.user",
    "id": "00000000-0000-4000-8000-000000000001",
    "displayName": "alice",
    "userPrincipalName": "alice@contoso.com",
    "accountEnabled": True,
    "userType": "Member",
}


def guid(n: int) -> str:
    return f"11111111-1111-4111-8111-{n:012d}"


def sp(
    n: int, notes: str | None, *, owners: bool = True, expiring: dt.datetime | None = None
) -> GovernedObject:
    extra: dict[str, Any] = {}
    if expiring is not None:
        extra["passwordCredentials"] = [
            {
                "keyId": "33333333-3333-4333-8333-333333333333",
                "displayName": "CI",
                "startDateTime": utc_iso(expiring - dt.timedelta(days=90)),
                "endDateTime": utc_iso(expiring),
            }
        ]
    return GovernedObject.from_graph(
        {
            "id": guid(n),
            "appId": f"22222222-2222-4222-8222-{n:012d}",
            "displayName": f"App {n}",
            "servicePrincipalType": "Application",
            "notes": notes,
            **extra,
        },
        owners=[ALICE] if owners else [],
    )


class World:
    def __init__(self) -> None:
        clients = get_clients()
        self.tenant = f"gov-api-{uuid.uuid4().hex[:12]}"
        self.clock = ManualClock(T0)
        self.container = clients.cosmos_container(CosmosContainers.GOVERNANCE.name)
        self.audit_container = clients.cosmos_container(CosmosContainers.AUDIT.name)
        self.store = CosmosGovernanceStore(self.container)
        self.activities = CosmosActivityStore(self.container)
        self.service = GovernanceService(
            self.store,
            self.activities,
            CosmosAuditSink(self.audit_container),
            TableUpdateClaims(clients.table(Tables.GOVERNANCE_UPDATES)),
            None,
            load_default_validators(),
            mode="ReportOnly",
            graph_base="https://graph.microsoft.com",
        )
        self.queue = clients.queue(Queues.GOVERNANCE_DISCOVERY)
        guard = ApiGuard(
            Authenticator(verifier=None, swa_enabled=True, key_roles=frozenset()), SensitivityPolicy()
        )
        self.api = GovernanceApi(
            guard,
            self.service,
            self.store,
            self.activities,
            CosmosObjectAuditTrail(self.audit_container),
            self.queue,
            AuditLog(self.audit_container, self.tenant, self.clock),
            ContinuationSigner(b"governance-api-integration-0123"),
            self.tenant,
            self.clock,
        )

    def evaluate(self, obj: GovernedObject, at: dt.datetime, cause: str) -> None:
        self.service.evaluate(
            self.tenant,
            obj,
            at,
            evaluation_id=evaluation_id(self.tenant, obj.id, cause),
            batch_id=activity_id("evaluation", self.tenant, cause),
            trigger="discovery",
        )

    def documents(self, kind: str) -> list[dict[str, Any]]:
        return list(
            self.container.query_items(
                "SELECT * FROM c WHERE c.pk = @pk AND c.type = @type",
                parameters=[{"name": "@pk", "value": self.tenant}, {"name": "@type", "value": kind}],
                partition_key=self.tenant,
            )
        )

    def get(self, path: str, headers: dict[str, str] = READER) -> ApiResponse:
        route = path.partition("?")[0]
        url, instance = f"https://h/api/{path}", f"/api/{route}"
        handlers = {
            "governance/findings": self.api.list_governance_findings,
            "governance/findings/summary": self.api.governance_findings_summary,
            "governance/exceptions": self.api.list_governance_exceptions,
            "governance/activities": self.api.list_governance_activities,
        }
        if route in handlers:
            return handlers[route](url, headers, instance)
        return self.api.get_governance_object(
            route.removeprefix("governance/objects/"), url, headers, instance
        )


def body(response: ApiResponse) -> Any:
    return json.loads(response.body)


@pytest.fixture
def world(app_environment: dict[str, str]) -> World:
    return World()


def seed(w: World, count: int) -> None:
    """`count` service principals a minute apart: every third passes, the others fail notes, and the
    even ones also hold a secret expiring in three days; the first failing one is fixed later."""
    for n in range(1, count + 1):
        at = T0 + dt.timedelta(minutes=n)
        if n % 3 == 0:
            w.evaluate(sp(n, "alice@contoso.com"), at, "sweep-1")
        else:
            expiring = at + dt.timedelta(days=3) if n % 2 == 0 else None
            w.evaluate(sp(n, f"Team {n}", expiring=expiring), at, "sweep-1")
    w.evaluate(sp(1, "alice@contoso.com"), T0 + dt.timedelta(minutes=count + 1), "sweep-2")
    w.clock.current = T0 + dt.timedelta(hours=1)


def test_findings_pages_and_summary_agree_with_the_stored_findings(world: World) -> None:
    seed(world, 12)
    stored = world.documents("finding")
    current = sorted(
        (f for f in stored if f["state"] in ("open", "accepted")),
        key=lambda f: (f["last_seen"], f["id"]),
        reverse=True,
    )
    assert len(current) >= 8
    seen: list[str] = []
    path = "governance/findings?limit=3"
    pages = 0
    while True:
        answer = world.get(path)
        assert answer.status == 200, answer.body
        page = body(answer)
        pages += 1
        seen += [f["id"] for f in page["items"]]
        if page["next"] is None:
            break
        path = "governance/findings?limit=3&continuation=" + urllib.parse.quote(page["next"])
    assert seen == [f["id"] for f in current]
    assert pages == -(-len(current) // 3) + (1 if len(current) % 3 == 0 else 0)
    resolved = body(world.get("governance/findings?state=resolved"))["items"]
    assert [(f["object_id"], f["validator_id"]) for f in resolved] == [(guid(1), "notes-lists-owners")]
    expiring = body(world.get("governance/findings?validator=credential-expiry&limit=200"))["items"]
    assert sorted(f["object_id"] for f in expiring) == sorted(guid(n) for n in (2, 4, 8, 10))
    two = body(world.get(f"governance/findings?object={guid(2)}"))["items"]
    assert {f["validator_id"] for f in two} == {
        f["validator_id"] for f in current if f["object_id"] == guid(2)
    }

    summary = body(world.get("governance/findings/summary"))
    open_ones = [f for f in stored if f["state"] == "open"]
    assert summary["by_validator"] == {
        v: sum(1 for f in open_ones if f["validator_id"] == v) for v in VALIDATOR_IDS
    }
    assert sum(summary["by_severity"].values()) == len(open_ones)
    assert summary["by_severity"] == {
        s: Counter(f["severity"] for f in open_ones)[s] for s in summary["by_severity"]
    }
    assert summary["by_state"] == {
        s: Counter(f["state"] for f in stored)[s] for s in ("open", "accepted", "resolved")
    }
    assert summary["objects_failing"] == len({f["object_id"] for f in open_ones}) == 7  # 2,4,5,7,8,10,11


def test_an_objects_history_is_the_newest_50_audit_entries_about_it(world: World) -> None:
    for n in range(26):  # each failing evaluation writes an evaluate and a notes.report entry
        world.evaluate(sp(1, "Team"), T0 + dt.timedelta(minutes=n), f"sweep-{n}")
    world.evaluate(sp(2, "Team"), T0, "other")  # another object's history
    world.clock.current = T0 + dt.timedelta(hours=1)
    answer = world.get(f"governance/objects/{guid(1)}")
    assert answer.status == 200, answer.body
    detail = body(answer)
    history = detail["history"]
    assert len(history) == 50
    assert {h["target_id"] for h in history} == {guid(1)}
    assert [(h["at"], h["id"]) for h in history] == sorted(
        ((h["at"], h["id"]) for h in history), reverse=True
    )
    assert history[0]["at"] == utc_iso(T0 + dt.timedelta(minutes=25))
    assert history[-1]["at"] == utc_iso(
        T0 + dt.timedelta(minutes=1)
    )  # the first evaluation's two are past 50
    assert Counter(h["action"] for h in history) == {"governance.evaluate": 25, "governance.notes.report": 25}
    assert detail["object"]["last_result"] == "fail"
    assert detail["object"]["remediation"]["status"] == "reported"
    assert world.get(f"governance/objects/{guid(3)}").status == 404


def test_exceptions_with_cosmos_etags(world: World) -> None:
    seed(world, 4)
    request = {
        "object_id": guid(2),
        "validator_id": "credential-expiry",
        "reason": "the vendor renews it",
        "expires_at": utc_iso(world.clock.now() + dt.timedelta(days=30)),
    }
    url = "https://h/api/governance/exceptions"
    created = world.api.create_governance_exception(url, json.dumps(request).encode(), {**ADMIN, **JSON}, url)
    assert created.status == 201, created.body
    exception = body(created)
    stored = world.documents("exception")
    assert [(d["id"], quoted(d["_etag"])) for d in stored] == [(exception["id"], exception["etag"])]
    assert created.headers["ETag"] == exception["etag"]
    world.clock.advance(60)
    replaced = world.api.create_governance_exception(
        url, json.dumps({**request, "reason": "renewal booked"}).encode(), {**ADMIN, **JSON}, url
    )
    assert replaced.status == 200, replaced.body
    assert replaced.headers["ETag"] != created.headers["ETag"]
    listed = body(world.get(f"governance/exceptions?object={guid(2)}"))["items"]
    assert [(e["reason"], e["etag"], e["active"]) for e in listed] == [
        ("renewal booked", replaced.headers["ETag"], True)
    ]
    accepted = body(world.get(f"governance/findings?object={guid(2)}&state=accepted"))["items"]
    assert [f["validator_id"] for f in accepted] == ["credential-expiry"]

    world.clock.advance(60)
    path = f"https://h/api/governance/exceptions/{exception['id']}"
    stale = world.api.delete_governance_exception(
        exception["id"], path, {**ADMIN, "If-Match": created.headers["ETag"]}, path
    )
    assert stale.status == 412, stale.body
    removed = world.api.delete_governance_exception(
        exception["id"], path, {**ADMIN, "If-Match": replaced.headers["ETag"]}, path
    )
    assert removed.status == 204, removed.body
    assert world.documents("exception") == []
    assert body(world.get(f"governance/findings?object={guid(2)}&state=accepted"))["items"] == []
    again = world.api.delete_governance_exception(exception["id"], path, ADMIN, path)
    assert again.status == 404
    history = body(world.get(f"governance/objects/{guid(2)}"))["history"]
    assert [h["action"] for h in history[:3]] == [
        "governance.exception.revoke",
        "governance.exception.accept",
        "governance.exception.accept",
    ]


def test_discovery_requests_land_on_the_discovery_queue(world: World) -> None:
    url = "https://h/api/governance/discovery"
    answer = world.api.request_governance_discovery(url, b'{"full_seed": true}', {**ADMIN, **JSON}, url)
    assert answer.status == 202, answer.body
    queued = body(answer)
    requests = []
    for message in world.queue.receive_messages(messages_per_page=32, visibility_timeout=5):
        request = DiscoveryRequest.model_validate_json(message.content)
        if request.tenant_id == world.tenant:
            requests.append(request)
            world.queue.delete_message(message)
    assert [(r.activity_id, r.trigger, r.full_seed) for r in requests] == [
        (queued["activity_id"], "request", True)
    ]
    audited = list(
        world.audit_container.query_items(
            "SELECT * FROM c WHERE c.pk = @pk AND c.action = 'governance.discovery.request'",
            parameters=[{"name": "@pk", "value": world.tenant}],
            partition_key=world.tenant,
        )
    )
    assert [(a["target_id"], a["actor"]) for a in audited] == [(queued["activity_id"], "root@contoso.com")]


def test_activities_and_the_status_block_read_the_activity_store(world: World) -> None:
    seed(world, 3)
    world.activities.start(
        ActivityRecord(
            id=activity_id("discovery", world.tenant, "run-1"),
            pk=world.tenant,
            kind="discovery",
            trigger="timer",
            started_at=utc_iso(T0 + dt.timedelta(minutes=30)),
            status="succeeded",
            lock="acquired",
            counts=ActivityCounts(discovered=3),
        )
    )
    items = body(world.get("governance/activities"))["items"]
    assert [a["kind"] for a in items] == ["discovery", "evaluation", "evaluation"]
    evaluations = body(world.get("governance/activities?kind=evaluation"))["items"]
    assert sum(a["counts"]["evaluated"] for a in evaluations) == 4  # three, and object 1 again
    assert [a["id"] for a in evaluations] == [
        activity_id("evaluation", world.tenant, "sweep-2"),
        activity_id("evaluation", world.tenant, "sweep-1"),
    ]
    status = governance_status("ReportOnly", world.activities, world.tenant)
    assert [a.id for a in status.activities] == [a["id"] for a in items]


@pytest.fixture
def wired(app_environment: dict[str, str]) -> Iterator[str]:
    from shared.app.runtime import reset_runtime

    tenant = str(uuid.uuid4())
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("M365_TENANT_ID", tenant)
        patch.setenv("API_AUTH_MODE", "swa")
        patch.setenv("AOC_UNSAFE_TRUST_CLIENT_PRINCIPAL_HEADER", "1")
        patch.setenv("PROBE_ENABLED", "false")
        reset_clients()
        reset_runtime()
        yield tenant
    reset_clients()
    reset_runtime()


def test_the_composition_root_wires_the_routes_and_the_status_block(wired: str) -> None:
    from shared.api.catalog import API_RESOURCES
    from shared.app.runtime import api_resource, governance_activities, governance_api, status_api

    assert GovernanceApi in API_RESOURCES
    assert api_resource(GovernanceApi) is governance_api()
    governance_activities().start(
        ActivityRecord(
            id=activity_id("discovery", wired, "wired"),
            pk=wired,
            kind="discovery",
            trigger="request",
            started_at=utc_iso(T0),
        )
    )
    url = "https://h/api/governance/discovery"
    queued = governance_api().request_governance_discovery(url, b"", ADMIN, url)
    assert queued.status == 202, queued.body
    queue = get_clients().queue(Queues.GOVERNANCE_DISCOVERY)
    found = []
    for message in queue.receive_messages(messages_per_page=32, visibility_timeout=5):
        request = DiscoveryRequest.model_validate_json(message.content)
        if request.tenant_id == wired:
            found.append(request.activity_id)
            queue.delete_message(message)
    assert found == [body(queued)["activity_id"]]
    status = body(status_api().get_status("https://h/api/status", READER, "/api/status"))
    assert status["governance"]["mode"] == "ReportOnly"
    assert [a["id"] for a in status["governance"]["activities"]] == [activity_id("discovery", wired, "wired")]
    assert status["governance"]["error"] is None
