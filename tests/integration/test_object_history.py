"""GET /api/objects/{id}/history against cosmosdb-server: exact matching on the actor and the targets,
newest first across month partitions, paging by signed continuation, the bounded range, the privacy
policy, and the names and types the page gives the object."""

from __future__ import annotations

import datetime as dt
import json
import urllib.parse
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from azure.cosmos import PartitionKey

from shared.api.auth import Authenticator
from shared.api.events_query import SensitivityPolicy
from shared.api.history_api import ObjectHistory, ObjectsApi
from shared.api.paging import ContinuationSigner
from shared.api.responses import ApiGuard, ApiResponse
from shared.ingestion.events import Event, partition_key
from shared.platform.clients import get_clients
from shared.platform.clock import utc_iso
from shared.platform.resources import CosmosContainers
from tests.support.clock import ManualClock
from tests.support.principals import swa_principal

NOW = dt.datetime(2026, 11, 3, 12, 0, tzinfo=dt.UTC)  # early in the month: 30 days reach October
POLICY = SensitivityPolicy(services=["Exchange"], operations=["Delete conditional access policy"])
READER = {"x-ms-client-principal": swa_principal(["reader"], user="rita@contoso.com")}
PRIVACY = {"x-ms-client-principal": swa_principal(["reader", "privacy"], user="pia@contoso.com")}

POLICY_ID = str(uuid.uuid4())  # a Conditional Access policy
USER_ID = str(uuid.uuid4())  # an admin's object id
USER_UPN = "Adele.Vance@contoso.com"
MAILBOX = "Αλέξανδρος Παπαδόπουλος"  # an Exchange object id: the mailbox's name
# Ids the exact match must tell apart from the ones above.
NEAR_MISSES = [POLICY_ID + "0", POLICY_ID[:-1], POLICY_ID.upper(), USER_UPN.lower(), "x" + USER_ID]


def _event(
    tenant: str,
    minutes_ago: int,
    operation: str,
    *,
    actor: dict[str, Any] | None = None,
    targets: list[dict[str, Any]] | None = None,
    service: str = "Directory",
    event_id: str | None = None,
) -> dict[str, Any]:
    timestamp = utc_iso(NOW - dt.timedelta(minutes=minutes_ago))
    document = {
        "id": event_id or f"entra_audit:{uuid.uuid4()}",
        "pk": partition_key(tenant, timestamp),
        "tenant_id": tenant,
        "source": "o365_management" if service == "Exchange" else "entra_audit",
        "service": service,
        "category": "Policy",
        "operation": operation,
        "operation_type": "update",
        "result": "success",
        "actor": actor
        or {"type": "user", "id": str(uuid.uuid4()), "upn": "bob@contoso.com", "display": "Bob"},
        "targets": targets or [],
        "timestamp": timestamp,
        "ingested_at": timestamp,
        "correlation_id": None,
        "summary": f"{operation} {minutes_ago} minutes ago",
        "tags": [],
        "raw_ref": None,
        "raw": {"secret": "never served"},
    }
    Event.model_validate(document)
    return document


def _policy(policy_id: str, old: str, new: str, display: str = "Require MFA for admins") -> dict[str, Any]:
    return {
        "type": "Policy",
        "id": policy_id,
        "display": display,
        "modified_properties": [
            {"name": "ConditionalAccessPolicy", "old": {"state": old}, "new": {"state": new}}
        ],
    }


def _adele(with_upn: bool = True) -> dict[str, Any]:
    upn = USER_UPN if with_upn else None
    return {"type": "user", "id": USER_ID, "upn": upn, "display": "Adele Vance" if with_upn else None}


class World:
    """One tenant's events in a container of their own, and the ObjectsApi over them."""

    def __init__(self) -> None:
        clients = get_clients()
        self.tenant = f"tenant-{uuid.uuid4().hex[:10]}"
        self.container_name = f"history-{uuid.uuid4().hex[:8]}"
        spec = CosmosContainers.EVENTS
        self.events = clients.cosmos_database.create_container(
            id=self.container_name,
            partition_key=PartitionKey(path=spec.partition_key_path),
            indexing_policy=spec.indexing_policy(),
        )
        self.clock = ManualClock(NOW)
        guard = ApiGuard(Authenticator(verifier=None, swa_enabled=True, key_roles=frozenset()), POLICY)
        self.history = ObjectHistory(self.events, ContinuationSigner(b"h" * 32), self.tenant)
        self.api = ObjectsApi(guard, self.history, self.clock)
        t = self.tenant
        same = utc_iso(NOW - dt.timedelta(minutes=600))  # two events at one instant: ordered by id
        self.documents = [
            _event(
                t,
                5,
                "Update conditional access policy",
                actor=_adele(),
                targets=[_policy(POLICY_ID, "a", "b")],
            ),
            # Adele acts, by object id only (no UPN): matched by USER_ID, not by USER_UPN.
            _event(t, 20, "Reset user password", actor=_adele(with_upn=False), targets=[_target("u2")]),
            # The policy as the second target, renamed since.
            _event(
                t,
                60,
                "Update conditional access policy",
                targets=[_target("other"), _policy(POLICY_ID, "b", "c", display="MFA for admins (old)")],
            ),
            _event(
                t,
                600,
                "Update conditional access policy",
                targets=[_policy(POLICY_ID, "c", "d")],
                event_id=f"entra_audit:{same}-b",
            ),
            _event(
                t,
                600,
                "Update conditional access policy",
                targets=[_policy(POLICY_ID, "d", "e")],
                event_id=f"entra_audit:{same}-a",
            ),
            # Adele as a target (a user object) by UPN.
            _event(
                t, 900, "Update user", targets=[{"type": "User", "id": USER_UPN, "display": "Adele Vance"}]
            ),
            # October (another partition), still inside 30 days.
            _event(
                t,
                4 * 1440,
                "Update conditional access policy",
                actor=_adele(),
                targets=[_policy(POLICY_ID, "e", "f")],
            ),
            _event(t, 20 * 1440, "Add conditional access policy", targets=[_policy(POLICY_ID, "", "f")]),
            # Hidden from a caller without Privacy: a hidden operation and a hidden service.
            _event(t, 30, "Delete conditional access policy", targets=[_policy(POLICY_ID, "f", "")]),
            _event(t, 40, "Set-Mailbox", service="Exchange", actor=_adele(), targets=[_target("mbx")]),
            _event(
                t,
                50,
                "Add-MailboxPermission",
                targets=[{"type": "Mailbox", "id": MAILBOX, "display": MAILBOX}],
            ),
            # Older than 30 days: only a wider range finds it.
            _event(t, 45 * 1440, "Update conditional access policy", targets=[_policy(POLICY_ID, "0", "e")]),
            # Near misses: an id that starts with the policy's, another case, another user.
            *[
                _event(
                    t,
                    10 + i,
                    "Update conditional access policy",
                    actor=_actor(miss),
                    targets=[_policy(miss, "x", "y")],
                )
                for i, miss in enumerate(NEAR_MISSES)
            ],
        ]
        # The same ids in another tenant, in the same container: never part of this tenant's history.
        foreign = f"foreign-{uuid.uuid4().hex[:8]}"
        self.documents += [
            _event(
                foreign,
                7,
                "Update conditional access policy",
                actor=_adele(),
                targets=[_policy(POLICY_ID, "x", "y")],
            )
        ]
        for document in self.documents:
            self.events.create_item(document)

    def expected(self, object_id: str, hide: SensitivityPolicy | None, days: int = 30) -> list[str]:
        """The ids the history of `object_id` holds, computed from the documents in Python."""
        low, high = utc_iso(NOW - dt.timedelta(days=days)), utc_iso(NOW)
        found = [
            d
            for d in self.documents
            if d["tenant_id"] == self.tenant
            and low <= d["timestamp"] < high
            and (hide is None or not hide.hides(d))
            and (
                object_id in (d["actor"].get("id"), d["actor"].get("upn"))
                or any(t.get("id") == object_id for t in d["targets"])
            )
        ]
        return [d["id"] for d in sorted(found, key=lambda d: (d["timestamp"], d["id"]), reverse=True)]

    def call(self, object_id: str, query: str = "", headers: dict[str, str] = READER) -> ApiResponse:
        segment = urllib.parse.quote(object_id, safe="")
        url = f"https://aoc.example/api/objects/{segment}/history" + (f"?{query}" if query else "")
        return self.api.history(object_id, url, headers, f"/api/objects/{segment}/history")

    def page(self, object_id: str, query: str = "", headers: dict[str, str] = READER) -> dict[str, Any]:
        response = self.call(object_id, query, headers)
        assert response.status == 200, response.body
        answer: dict[str, Any] = json.loads(response.body)
        return answer

    def walk(self, object_id: str, query: str, headers: dict[str, str] = READER) -> list[list[str]]:
        """Every page's event ids, following the continuation."""
        pages: list[list[str]] = []
        token: str | None = None
        while True:
            more = f"&continuation={urllib.parse.quote(token)}" if token else ""
            answer = self.page(object_id, query + more, headers)
            pages.append([e["id"] for e in answer["items"]])
            token = answer["continuation"]
            if token is None:
                return pages


def _target(target_id: str) -> dict[str, Any]:
    return {"type": "User", "id": target_id, "display": target_id, "modified_properties": []}


def _actor(actor_id: str) -> dict[str, Any]:
    return {"type": "user", "id": actor_id, "upn": actor_id if "@" in actor_id else None, "display": None}


@pytest.fixture(scope="module")
def world(app_environment: dict[str, str]) -> Iterator[World]:
    world = World()
    yield world
    get_clients().cosmos_database.delete_container(world.container_name)


def test_the_history_is_every_event_that_touched_the_object_newest_first(world: World) -> None:
    answer = world.page(POLICY_ID, headers=PRIVACY)
    ids = [e["id"] for e in answer["items"]]
    assert ids == world.expected(POLICY_ID, None)
    assert len(ids) == 7  # as actor or target, first or second target, both months, hidden ones included
    timestamps = [e["timestamp"] for e in answer["items"]]
    assert timestamps == sorted(timestamps, reverse=True)
    tied = [i for i in ids if i.endswith(("-a", "-b"))]
    assert tied == sorted(tied, reverse=True)  # one instant: by id, descending
    assert answer["continuation"] is None
    assert (answer["start"], answer["end"]) == (utc_iso(NOW - dt.timedelta(days=30)), utc_iso(NOW))
    assert answer["hidden"] is None
    # The diffs come with the events, the raw record never does.
    first = answer["items"][0]
    assert first["targets"][0]["modified_properties"][0] == {
        "name": "ConditionalAccessPolicy",
        "old": {"state": "a"},
        "new": {"state": "b"},
    }
    assert all("raw" not in e and "pk" in e for e in answer["items"])


def test_ids_match_exactly_never_a_prefix_or_another_case(world: World) -> None:
    for object_id in (POLICY_ID, USER_ID, USER_UPN, *NEAR_MISSES):
        ids = [e["id"] for e in world.page(object_id, headers=PRIVACY)["items"]]
        assert ids == world.expected(object_id, None), object_id
    for miss in NEAR_MISSES:
        assert len(world.expected(miss, None)) == 1, miss  # each near miss names its own event only
    by_id = set(world.expected(USER_ID, None))
    by_upn = set(world.expected(USER_UPN, None))
    # The object id matches where events hold the object id, the UPN where they hold the UPN.
    assert len(by_id) == 4  # acting with a UPN (twice, once hidden) and once by object id alone
    assert len(by_upn) == 4  # acting with a UPN (three times), and as a target by UPN
    assert len(by_id & by_upn) == 3
    assert world.page("x' OR 1=1 --")["items"] == []  # of the grammar, and only ever a parameter


def test_the_privacy_policy_leaves_hidden_events_out_and_says_so(world: World) -> None:
    reader = world.page(POLICY_ID)
    ids = [e["id"] for e in reader["items"]]
    assert ids == world.expected(POLICY_ID, POLICY)
    assert len(ids) == len(world.expected(POLICY_ID, None)) - 1  # the deletion, a hidden operation
    assert reader["hidden"] == {"services": ["Exchange"], "operations": 1}
    adele = [e["service"] for e in world.page(USER_ID)["items"]]
    assert "Exchange" not in adele
    assert "Exchange" in [e["service"] for e in world.page(USER_ID, headers=PRIVACY)["items"]]


def test_pages_follow_the_continuation_across_months(world: World) -> None:
    expected = world.expected(POLICY_ID, POLICY)
    for size in (1, 2, 4):
        pages = world.walk(POLICY_ID, f"page_size={size}")
        assert [i for page in pages for i in page] == expected, size
        assert all(0 < len(page) <= size for page in pages[:-1])
    first = world.page(POLICY_ID, "page_size=2")
    token = urllib.parse.quote(first["continuation"])
    for other, query in (
        (USER_ID, f"page_size=2&continuation={token}"),  # another object
        (POLICY_ID, f"page_size=3&continuation={token}"),  # another page size
        (POLICY_ID, f"page_size=2&continuation={token[:-2]}"),  # edited
    ):
        refused = world.call(other, query)
        assert refused.status == 400, (other, query)
        assert json.loads(refused.body)["errors"][0]["field"] == "continuation"
    privacy = world.call(POLICY_ID, f"page_size=2&continuation={token}", PRIVACY)
    assert privacy.status == 400  # a token from a page with hidden events left out pages only such pages


def test_the_range_is_bounded(world: World) -> None:
    wide = world.page(POLICY_ID, "start=60d")
    assert [e["id"] for e in wide["items"]] == world.expected(POLICY_ID, POLICY, days=60)
    assert len(wide["items"]) == len(world.expected(POLICY_ID, POLICY)) + 1
    since = utc_iso(NOW - dt.timedelta(hours=2))
    recent = world.page(POLICY_ID, f"start={since}")
    assert [e["timestamp"] >= since for e in recent["items"]] == [True] * len(recent["items"])
    assert len(recent["items"]) == 2
    for query, detail in (
        ("start=367d", "366 days"),
        ("start=1h&end=2h", "before end"),
        ("start=yesterday", "ISO 8601"),
        ("start=0001-01-01T00:00:00Z", "years"),
        ("page_size=201", "200"),
        ("target=x", "target"),
    ):
        refused = world.call(POLICY_ID, query)
        assert refused.status == 400, query
        assert detail in str(refused.body), (query, refused.body)
    assert world.call(POLICY_ID, "start=366d").status == 200


def test_the_object_is_named_by_its_events(world: World) -> None:
    policy = world.page(POLICY_ID, headers=PRIVACY)["object"]
    assert policy == {
        "id": POLICY_ID,
        "names": ["Require MFA for admins", "MFA for admins (old)"],
        "aliases": [],
        "types": ["Policy"],
    }
    # A user's object id and UPN name each other: each is the other's history.
    by_id = world.page(USER_ID, headers=PRIVACY)["object"]
    assert by_id == {"id": USER_ID, "names": ["Adele Vance"], "aliases": [USER_UPN], "types": ["user"]}
    by_upn = world.page(USER_UPN, headers=PRIVACY)["object"]
    assert by_upn == {
        "id": USER_UPN,
        "names": ["Adele Vance"],
        "aliases": [USER_ID],
        "types": ["user", "User"],
    }
    nobody = world.page("no-such-object")
    assert nobody["object"] == {"id": "no-such-object", "names": [], "aliases": [], "types": []}
    assert (nobody["items"], nobody["continuation"]) == ([], None)


def test_ids_outside_the_grammar_and_callers_without_a_role_are_refused(world: World) -> None:
    hostile_ids = (
        "a/b",
        "..",
        "a\\b",
        "a?b",
        "a%2Fb",
        " a",
        "a ",
        "a\u202eb",
        "\ufffd",
        "a\n",
        "x" * 201,
        "#EXT#",
    )
    for hostile in hostile_ids:
        refused = world.call(hostile)
        assert refused.status == 400, hostile
        problem = json.loads(refused.body)
        assert problem["errors"][0]["field"] == "id"
    assert world.call(POLICY_ID, headers={}).status == 401
    guest = "ann_fabrikam.com#EXT#@contoso.onmicrosoft.com"
    assert world.call(guest).status == 200  # a guest's UPN is of the grammar


def test_an_object_named_in_another_script_has_a_history(world: World) -> None:
    """Exchange names mailboxes by display name, in any script: the id goes through the URL as UTF-8."""
    answer = world.page(MAILBOX)
    assert [e["id"] for e in answer["items"]] == world.expected(MAILBOX, POLICY)
    assert len(answer["items"]) == 1
    assert answer["object"] == {"id": MAILBOX, "names": [], "aliases": [], "types": ["Mailbox"]}
