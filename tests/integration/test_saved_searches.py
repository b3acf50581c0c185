"""The saved-search routes against cosmosdb-server: who sees which search, owner-only changes under
If-Match (428 without it, 412 when stale), idempotent creates, the query's validation, the privacy rule,
and an audit record for every change."""

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid
from typing import Any

import pytest

from shared.api import searches_api
from shared.api.audit import AuditLog
from shared.api.auth import Authenticator
from shared.api.events_query import SensitivityPolicy
from shared.api.responses import ApiGuard, ApiResponse
from shared.api.searches_api import SearchesApi
from shared.platform.clients import get_clients
from shared.platform.clock import utc_iso
from shared.platform.resources import CosmosContainers
from shared.searches.store import SearchStore
from tests.support.clock import ManualClock

NOW = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)
HIDDEN_OPERATION = "Set-HiddenThing"
JSON_TYPE = {"Content-Type": "application/json"}


def principal(user_id: str, name: str, *roles: str) -> dict[str, str]:
    """The SWA client principal header of one user (the API takes the owner from its userId)."""
    document = {"identityProvider": "aad", "userId": user_id, "userDetails": name, "userRoles": list(roles)}
    return {"x-ms-client-principal": base64.b64encode(json.dumps(document).encode()).decode()}


ANA = principal("oid-ana", "ana@contoso.com", "analyst")
ALEX = principal("oid-alex", "alex@contoso.com", "analyst")
RITA = principal("oid-rita", "rita@contoso.com", "reader")
ROOT = principal("oid-root", "root@contoso.com", "admin")
PRIYA = principal("oid-priya", "priya@contoso.com", "reader", "privacy")


class World:
    def __init__(self) -> None:
        clients = get_clients()
        self.tenant = f"searches-{uuid.uuid4().hex[:10]}"
        self.clock = ManualClock(NOW)
        guard = ApiGuard(
            Authenticator(verifier=None, swa_enabled=True, key_roles=frozenset()),
            SensitivityPolicy(operations=[HIDDEN_OPERATION]),
        )
        self.container = clients.cosmos_container(CosmosContainers.SEARCHES.name)
        self.audit_container = clients.cosmos_container(CosmosContainers.AUDIT.name)
        self.api = SearchesApi(
            guard,
            SearchStore(self.container, self.tenant),
            AuditLog(self.audit_container, self.tenant, self.clock),
            self.tenant,
            self.clock,
        )

    # -- calls ---------------------------------------------------------------------------------------

    def create(self, who: dict[str, str], body: Any, **headers: str) -> ApiResponse:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        return self.api.create_search("http://h/api/searches", raw, {**who, **JSON_TYPE, **headers}, "/p")

    def made(self, who: dict[str, str], name: str, query: str = "", **fields: Any) -> dict[str, Any]:
        answer = self.create(who, {"name": name, "query": query, **fields})
        assert answer.status == 201, answer.body
        return dict(json.loads(answer.body))

    def listed(self, who: dict[str, str], query: str = "") -> list[dict[str, Any]]:
        answer = self.api.list_searches(f"http://h/api/searches{query}", who, "/p")
        assert answer.status == 200, answer.body
        return list(json.loads(answer.body)["items"])

    def get(self, who: dict[str, str], search_id: str) -> ApiResponse:
        return self.api.get_search(search_id, who, "/p")

    def put(self, who: dict[str, str], search_id: str, body: Any, **headers: str) -> ApiResponse:
        raw = json.dumps(body).encode()
        return self.api.put_search(search_id, "http://h/x", raw, {**who, **JSON_TYPE, **headers}, "/p")

    def delete(self, who: dict[str, str], search_id: str, **headers: str) -> ApiResponse:
        return self.api.delete_search(search_id, "http://h/x", b"", {**who, **headers}, "/p")

    def audits(self, search_id: str) -> list[dict[str, Any]]:
        rows = self.audit_container.query_items(
            "SELECT * FROM c WHERE c.pk = @pk AND c.target_id = @t ORDER BY c.at",
            parameters=[{"name": "@pk", "value": self.tenant}, {"name": "@t", "value": search_id}],
            partition_key=self.tenant,
        )
        return [dict(r) for r in rows]

    def stored(self, search_id: str) -> dict[str, Any] | None:
        rows = list(
            self.container.query_items(
                "SELECT * FROM c WHERE c.pk = @pk AND c.id = @id",
                parameters=[{"name": "@pk", "value": self.tenant}, {"name": "@id", "value": search_id}],
                partition_key=self.tenant,
            )
        )
        return dict(rows[0]) if rows else None


@pytest.fixture
def world(app_environment: dict[str, str]) -> World:
    return World()  # a tenant (partition) of its own per test


def _body(answer: ApiResponse) -> dict[str, Any]:
    return dict(json.loads(answer.body))


def _problem(answer: ApiResponse, status: int) -> dict[str, Any]:
    assert answer.status == status, answer.body
    assert answer.media_type == "application/problem+json"
    return _body(answer)


def test_a_search_is_created_read_changed_and_deleted_by_its_owner_under_its_etag(world: World) -> None:
    created = world.create(
        ANA, {"name": "Mailbox rules", "query": "start=7d&service=Exchange", "pinned": True}
    )
    assert created.status == 201, created.body
    search = _body(created)
    assert created.headers["ETag"] == search["etag"]
    assert search["etag"].startswith('"')
    assert created.headers["Location"] == f"/api/searches/{search['id']}"
    assert {k: search[k] for k in ("name", "query", "visibility", "role", "pinned", "owner", "mine")} == {
        "name": "Mailbox rules",
        "query": "start=7d&service=Exchange",
        "visibility": "private",
        "role": None,
        "pinned": True,
        "owner": "oid-ana",
        "mine": True,
    }
    assert search["owner_name"] == "ana@contoso.com"
    assert search["created_at"] == search["updated_at"] == utc_iso(NOW)
    stored = world.stored(search["id"])
    assert stored is not None
    assert {k: v for k, v in stored.items() if not k.startswith("_")} == {
        "id": search["id"],
        "pk": world.tenant,
        "type": "saved_search",
        **{k: search[k] for k in ("name", "query", "visibility", "role", "pinned", "owner", "owner_name")},
        "created_at": utc_iso(NOW),
        "updated_at": utc_iso(NOW),
    }

    read = world.get(ANA, search["id"])
    assert (read.status, read.headers["ETag"], _body(read)) == (200, search["etag"], search)

    world.clock.advance(60)
    renamed = {"name": "Exchange mailbox rules", "query": search["query"], "visibility": "role"}
    changed = world.put(ANA, search["id"], {**renamed, "role": "AOC.Analyst"}, **{"If-Match": search["etag"]})
    assert changed.status == 200, changed.body
    after = _body(changed)
    assert (after["name"], after["visibility"], after["role"], after["pinned"]) == (
        "Exchange mailbox rules",
        "role",
        "AOC.Analyst",
        False,
    )
    assert after["updated_at"] == utc_iso(NOW + dt.timedelta(minutes=1))
    assert after["created_at"] == search["created_at"]
    assert after["etag"] != search["etag"]
    assert changed.headers["ETag"] == after["etag"]

    deleted = world.delete(ANA, search["id"], **{"If-Match": after["etag"]})
    assert (deleted.status, _body(deleted)) == (200, {"id": search["id"], "deleted": True})
    assert world.stored(search["id"]) is None
    _problem(world.get(ANA, search["id"]), 404)

    audits = world.audits(search["id"])
    assert [(a["action"], a["actor"], a["actor_id"]) for a in audits] == [
        ("search.create", "ana@contoso.com", "oid-ana"),
        ("search.update", "ana@contoso.com", "oid-ana"),
        ("search.delete", "ana@contoso.com", "oid-ana"),
    ]
    assert audits[0]["before"] is None
    assert audits[0]["after"]["pinned"] is True
    assert (audits[1]["before"]["name"], audits[1]["after"]["name"]) == (
        "Mailbox rules",
        "Exchange mailbox rules",
    )
    assert audits[2]["after"] is None
    assert audits[2]["before"]["role"] == "AOC.Analyst"


def test_each_caller_sees_their_own_searches_and_those_shared_with_a_role_they_hold(world: World) -> None:
    mine = world.made(ANA, "b private of ana", "q=x")
    analysts = world.made(ANA, "A shared with analysts", "q=y", visibility="role", role="AOC.Analyst")
    readers = world.made(
        ANA, "c shared with readers", "q=z", visibility="role", role="AOC.Reader", pinned=True
    )
    admins = world.made(ROOT, "d shared with admins", visibility="role", role="AOC.Admin")

    def names(who: dict[str, str], query: str = "") -> list[str]:
        return [s["name"] for s in world.listed(who, query)]

    # Sorted by name whatever the case; Admin implies Analyst and Reader.
    assert names(ANA) == ["A shared with analysts", "b private of ana", "c shared with readers"]
    assert names(ALEX) == ["A shared with analysts", "c shared with readers"]
    assert names(RITA) == ["c shared with readers"]
    assert names(ROOT) == ["A shared with analysts", "c shared with readers", "d shared with admins"]
    assert names(ANA, "?pinned=true") == ["c shared with readers"]
    assert names(ANA, "?pinned=false") == ["A shared with analysts", "b private of ana"]
    assert [s["mine"] for s in world.listed(ALEX)] == [False, False]

    assert world.get(ALEX, analysts["id"]).status == 200
    for who, search in ((ALEX, mine), (RITA, analysts), (RITA, mine), (ANA, admins)):
        problem = _problem(world.get(who, search["id"]), 404)
        assert "shared" not in problem["detail"]
        assert "private" not in problem["detail"]
    # Someone else's search they can see: changing or deleting it is a 403; one they cannot see, a 404.
    body = {"name": "taken over", "query": ""}
    for answer in (
        world.put(ALEX, analysts["id"], body, **{"If-Match": analysts["etag"]}),
        world.delete(ALEX, analysts["id"]),
        world.delete(RITA, readers["id"], **{"If-Match": readers["etag"]}),
    ):
        assert "owner" in _problem(answer, 403)["detail"]
    _problem(world.put(ALEX, mine["id"], body, **{"If-Match": mine["etag"]}), 404)
    _problem(world.delete(RITA, mine["id"]), 404)
    assert _body(world.get(ANA, analysts["id"]))["etag"] == analysts["etag"]  # unchanged
    for search in (mine, analysts, readers):
        assert [a["action"] for a in world.audits(search["id"])] == ["search.create"]


def test_sharing_needs_a_role_the_caller_holds(world: World) -> None:
    refusals = [
        (RITA, {"visibility": "role", "role": "AOC.Analyst"}, "role you hold"),
        (ANA, {"visibility": "role", "role": "AOC.Admin"}, "role you hold"),
        (ANA, {"visibility": "role"}, "needs the role"),
        (ANA, {"visibility": "private", "role": "AOC.Reader"}, "no role"),
    ]
    for who, fields, says in refusals:
        problem = _problem(world.create(who, {"name": "n", "query": "", **fields}), 400)
        assert problem["errors"][0]["field"] == "role", problem
        assert says in problem["detail"], problem
    search = world.made(RITA, "mine", visibility="role", role="AOC.Reader")
    problem = _problem(
        world.put(
            RITA,
            search["id"],
            {"name": "mine", "query": "", "visibility": "role", "role": "AOC.Admin"},
            **{"If-Match": search["etag"]},
        ),
        400,
    )
    assert problem["errors"][0]["field"] == "role"
    assert world.listed(RITA)[0]["role"] == "AOC.Reader"


def test_a_change_needs_the_current_etag(world: World) -> None:
    search = world.made(ANA, "first")
    body = {"name": "second", "query": "start=24h"}
    problem = _problem(world.put(ANA, search["id"], body), 428)
    assert problem["type"].endswith("/precondition-required")
    problem = _problem(world.put(ANA, search["id"], body, **{"If-Match": "garbage"}), 400)
    assert problem["errors"][0]["field"] == "If-Match"
    # The clock moves between the writes: the audit trail is read back in time order.
    world.clock.advance(1)
    changed = world.put(ANA, search["id"], body, **{"If-Match": search["etag"]})
    assert changed.status == 200, changed.body
    # The same change again with the old ETag: it is already as asked (RFC 9110 13.1.1), so 200 and no write.
    again = world.put(ANA, search["id"], body, **{"If-Match": search["etag"]})
    assert (again.status, again.headers["ETag"]) == (200, changed.headers["ETag"])
    # Another change with the old ETag: 412, nothing written.
    stale = world.put(ANA, search["id"], {"name": "third", "query": ""}, **{"If-Match": search["etag"]})
    assert _problem(stale, 412)["type"].endswith("/precondition-failed")
    weak = world.put(
        ANA, search["id"], {"name": "third", "query": ""}, **{"If-Match": "W/" + changed.headers["ETag"]}
    )
    _problem(weak, 412)
    _problem(world.delete(ANA, search["id"], **{"If-Match": search["etag"]}), 412)
    assert _body(world.get(ANA, search["id"]))["name"] == "second"
    world.clock.advance(1)
    listed = world.put(
        ANA, search["id"], {"name": "third", "query": ""}, **{"If-Match": f'"x", {changed.headers["ETag"]}'}
    )
    assert listed.status == 200, listed.body
    world.clock.advance(1)
    star = world.put(ANA, search["id"], {"name": "fourth", "query": ""}, **{"If-Match": "*"})
    assert star.status == 200, star.body
    # A delete without If-Match is unconditional.
    world.clock.advance(1)
    assert world.delete(ANA, search["id"]).status == 200
    _problem(world.delete(ANA, search["id"]), 404)
    assert [a["action"] for a in world.audits(search["id"])] == [
        "search.create",
        "search.update",
        "search.update",
        "search.update",
        "search.delete",
    ]


def test_a_create_retried_with_its_idempotency_key_makes_one_search(world: World) -> None:
    body = {"name": "once", "query": "service=Exchange"}
    first = world.create(ANA, body, **{"Idempotency-Key": "create-1"})
    second = world.create(ANA, body, **{"Idempotency-Key": "create-1"})
    assert (first.status, second.status) == (201, 201)
    assert _body(first) == _body(second)
    other = world.create(ALEX, body, **{"Idempotency-Key": "create-1"})  # another owner: another search
    assert _body(other)["id"] != _body(first)["id"]
    assert [s["name"] for s in world.listed(ANA)] == ["once"]
    assert [a["action"] for a in world.audits(_body(first)["id"])] == ["search.create"]


def test_the_query_is_checked_and_stored_canonical(world: World) -> None:
    search = world.made(ANA, "canonical", "?tag=b&service=Exchange&q=mail%20box&tag=a")
    assert search["query"] == "q=mail+box&service=Exchange&tag=b&tag=a"
    for query, field_says in (
        ("page_size=10", "'page_size' is not a filter"),
        ("event=x:y", "'event' is not a filter"),
        ("service=Nope", "service.0"),
        ("start=soon", "start"),
        ("q=" + "x" * 5000, "at most 4096"),
    ):
        problem = _problem(world.create(ANA, {"name": "bad", "query": query}), 400)
        assert problem["errors"][0]["field"] == "query", problem
        assert field_says in problem["detail"], problem
    assert [s["name"] for s in world.listed(ANA)] == ["canonical"]


def test_a_search_naming_a_hidden_operation_is_shown_only_to_who_may_see_it(world: World) -> None:
    hidden = world.made(
        PRIYA, "hidden op", f"operation={HIDDEN_OPERATION}", visibility="role", role="AOC.Reader"
    )
    excluded = world.made(
        PRIYA, "excluding it", f"exclude_operation={HIDDEN_OPERATION}", visibility="role", role="AOC.Reader"
    )
    plain = world.made(PRIYA, "plain", "operation=Add+user", visibility="role", role="AOC.Reader")
    assert [s["name"] for s in world.listed(PRIYA)] == ["excluding it", "hidden op", "plain"]
    listed = world.listed(RITA)
    assert [s["name"] for s in listed] == ["plain"]
    assert HIDDEN_OPERATION not in json.dumps(listed)
    for search in (hidden, excluded):
        problem = _problem(world.get(RITA, search["id"]), 404)
        assert HIDDEN_OPERATION not in json.dumps(problem)
    assert world.get(RITA, plain["id"]).status == 200
    # Its owner always sees their own, even without the Privacy role.
    own = world.made(RITA, "my guess", f"operation={HIDDEN_OPERATION}")
    assert world.get(RITA, own["id"]).status == 200


def test_one_owner_keeps_a_bounded_number_of_searches(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(searches_api, "MAX_OWNED", 2)
    world.made(ANA, "one")
    world.made(ANA, "two")
    problem = _problem(world.create(ANA, {"name": "three", "query": ""}), 409)
    assert problem["type"].endswith("/too-many-searches")
    world.made(ALEX, "alex's first")  # the bound is per owner
    assert len(world.listed(ANA)) == 2
