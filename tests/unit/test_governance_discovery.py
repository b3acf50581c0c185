"""Governance discovery (shared/governance/{graph_reader,discovery,delta_state}.py) against a small Graph
served by an httpx.MockTransport.

`FakeGraph` answers what discovery sends, in Graph v1.0's wire formats: `servicePrincipals/delta` and
`applications/delta` rounds (pages linked by `@odata.nextLink`, a last page with `@odata.deltaLink`,
`@removed` entries, `$select` kept in the links, 410 Gone for a token it no longer knows), JSON
`$batch` of up to 20 GETs (answers in any order, each request throttled on its own), the reads by id and
by the `appId` alternate key, and owners/appRoleAssignments/memberOf collections. Faults are scripted
per URL. Every expectation is computed from the fake's own tenant, never written as a number here.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import parse_qsl, unquote, urlsplit

import httpx
import pytest
from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableClient, TableTransactionError

from shared.governance.config import load_default_validators
from shared.governance.delta_state import (
    LOCK_ROW,
    MAX_PENDING_IDS,
    STATE_ROW,
    DeltaCursor,
    DeltaState,
    DiscoveryLocked,
    LeaseLost,
    TableDeltaStateStore,
    check_tenant_key,
)
from shared.governance.discovery import (
    CollectingSink,
    DiscoveredObject,
    DiscoveryResult,
    GovernanceDiscovery,
    scope_filter,
)
from shared.governance.graph_reader import (
    APPLICATION_SELECT,
    MAX_BATCH_REQUESTS,
    SERVICE_PRINCIPAL_SELECT,
    BatchGet,
    DeltaExpired,
    GraphReader,
    ReadAnswer,
)
from shared.governance.model import MICROSOFT_GRAPH_APP_ID
from shared.m365.http_client import ApiClient, ApiError
from shared.m365.http_transport import new_http_client
from shared.platform.resources import Tables
from tests.support.http_fakes import CountingTokens, FakeClock

GRAPH = "https://graph.example.test"
ROOT = f"{GRAPH}/v1.0"
SCOPE = "https://graph.microsoft.com/.default"
TENANT = "41463f53-8812-40f4-890f-865bf6e35190"
MICROSOFT_SERVICES_TENANT = "f8cdef31-a31e-4b4a-93e4-5f571e91255a"
MAIL_READWRITE = "e2a3a72e-5f79-4c64-b1b1-878b674786c9"
USER_READ_ALL = "df021288-bdef-4463-88db-98f22de89214"
GLOBAL_ADMIN = "62e90394-69f5-4237-9190-012177145e10"


def gid(kind: int, n: int) -> str:
    return f"{kind:08x}-0000-4000-8000-{n:012x}"


# ---------------------------------------------------------------------------------------------------
# A small Graph
# ---------------------------------------------------------------------------------------------------


@dataclass
class Fault:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    code: str = "TooManyRequests"


class FakeGraph:
    """A tenant of service principals and applications, served as Graph v1.0 serves them."""

    def __init__(self, *, page_size: int = 3, owner_page: int = 100) -> None:
        self.page_size = page_size
        self.owner_page = owner_page
        self.lock = threading.Lock()
        self.seq = 0
        self.objects: dict[str, dict[str, dict[str, Any]]] = {"servicePrincipals": {}, "applications": {}}
        self.deleted: dict[str, set[str]] = {"servicePrincipals": set(), "applications": set()}
        self.changed_at: dict[tuple[str, str], int] = {}
        self.owners: dict[str, list[dict[str, Any]]] = {}
        self.assignments: dict[str, list[dict[str, Any]]] = {}
        self.member_of: dict[str, list[dict[str, Any]]] = {}
        self.reset_before = 0  # tokens issued at a seq below this answer 410
        self.partial_updates = False  # an incremental round reports only the changed properties
        self.last_change: dict[tuple[str, str], set[str]] = {}
        self.inner_faults: dict[str, list[Fault]] = {}  # inner url (path) -> answers to give first
        self.outer_faults: list[Fault] = []  # the next outer calls' answers
        self.outer: list[tuple[str, str]] = []  # (method, url) of every HTTP request
        self.batches: list[list[str]] = []  # inner urls of every $batch
        self.shuffle_batch_answers = True
        self.graph_sp = gid(9, 1)
        self._add_graph_resource()

    # -- the tenant ---------------------------------------------------------------------------------

    def _touch(self, resource: str, object_id: str, properties: set[str]) -> None:
        self.seq += 1
        self.changed_at[(resource, object_id)] = self.seq
        self.last_change[(resource, object_id)] = properties

    def _add_graph_resource(self) -> None:
        self.objects["servicePrincipals"][self.graph_sp] = {
            "id": self.graph_sp,
            "appId": MICROSOFT_GRAPH_APP_ID,
            "displayName": "Microsoft Graph",
            "appOwnerOrganizationId": MICROSOFT_SERVICES_TENANT,
            "servicePrincipalType": "Application",
            "signInAudience": "AzureADMultipleOrgs",
            "passwordCredentials": [],
            "keyCredentials": [],
            "tags": [],
            "appRoles": [
                {"id": MAIL_READWRITE, "value": "Mail.ReadWrite", "allowedMemberTypes": ["Application"]},
                {"id": USER_READ_ALL, "value": "User.Read.All", "allowedMemberTypes": ["Application"]},
            ],
        }
        self._touch("servicePrincipals", self.graph_sp, {"id"})

    def add_app(
        self,
        n: int,
        *,
        registered: bool = True,
        owners: int = 1,
        app_owners: int = 1,
        permission: str | None = USER_READ_ALL,
        role: bool = False,
        owner_tenant: str = TENANT,
        principal_type: str = "Application",
    ) -> str:
        sp_id, app_id, app_object = gid(1, n), gid(2, n), gid(3, n)
        users = [self.user(n * 10 + i) for i in range(owners)]
        self.objects["servicePrincipals"][sp_id] = {
            "id": sp_id,
            "appId": app_id,
            "displayName": f"App {n}",
            "notes": ";".join(u["userPrincipalName"] for u in users) or None,
            "accountEnabled": True,
            "servicePrincipalType": principal_type,
            "appOwnerOrganizationId": owner_tenant if registered else MICROSOFT_SERVICES_TENANT,
            "signInAudience": "AzureADMyOrg",
            "passwordCredentials": [],
            "keyCredentials": [
                {
                    "keyId": gid(4, n),
                    "type": "AsymmetricX509Cert",
                    "usage": "Verify",
                    "key": "TUlJQ...secret-material",
                    "startDateTime": "2026-01-01T00:00:00Z",
                    "endDateTime": "2027-01-01T00:00:00Z",
                }
            ],
            "verifiedPublisher": {"displayName": None, "verifiedPublisherId": None, "addedDateTime": None},
            "tags": ["WindowsAzureActiveDirectoryIntegratedApp"],
        }
        self._touch("servicePrincipals", sp_id, {"id"})
        self.owners[sp_id] = users
        self.assignments[sp_id] = (
            [
                {
                    "id": f"assignment-{n}",
                    "appRoleId": permission,
                    "principalId": sp_id,
                    "principalType": "ServicePrincipal",
                    "resourceId": self.graph_sp,
                    "resourceDisplayName": "Microsoft Graph",
                    "createdDateTime": "2026-02-01T00:00:00Z",
                    "deletedDateTime": None,
                }
            ]
            if permission
            else []
        )
        self.member_of[sp_id] = (
            [
                {
                    "@odata.type": "#microsoft.graph.directoryRole",
                    "id": gid(5, n),
                    "displayName": "Global Administrator",
                    "roleTemplateId": GLOBAL_ADMIN,
                }
            ]
            if role
            else [{"@odata.type": "#microsoft.graph.group", "id": gid(6, n), "displayName": "Apps"}]
        )
        if registered:
            self.objects["applications"][app_object] = {
                "id": app_object,
                "appId": app_id,
                "displayName": f"App {n}",
                "notes": None,
                "signInAudience": "AzureADMyOrg",
                "publisherDomain": "contoso.example",
                "passwordCredentials": [
                    {
                        "keyId": gid(7, n),
                        "displayName": "deploy",
                        "secretText": None,
                        "startDateTime": "2026-01-01T00:00:00Z",
                        "endDateTime": "2026-07-01T00:00:00Z",
                    }
                ],
                "keyCredentials": [],
                "verifiedPublisher": {
                    "displayName": None,
                    "verifiedPublisherId": None,
                    "addedDateTime": None,
                },
            }
            self._touch("applications", app_object, {"id"})
            self.owners[app_object] = [self.user(n * 10 + 5 + i) for i in range(app_owners)]
        return sp_id

    @staticmethod
    def user(n: int) -> dict[str, Any]:
        return {
            "@odata.type": "#microsoft.graph.user",
            "id": gid(8, n),
            "displayName": f"User {n}",
            "userPrincipalName": f"user{n}@contoso.example",
            "accountEnabled": True,
            "userType": "Member",
            "mail": f"user{n}@contoso.example",
        }

    def app_of(self, sp_id: str) -> str:
        app_id = self.objects["servicePrincipals"][sp_id]["appId"]
        return next(k for k, v in self.objects["applications"].items() if v["appId"] == app_id)

    def set_notes(self, sp_id: str, notes: str | None) -> None:
        with self.lock:
            self.objects["servicePrincipals"][sp_id]["notes"] = notes
            self._touch("servicePrincipals", sp_id, {"notes"})

    def add_app_secret(self, app_object: str, n: int) -> None:
        with self.lock:
            app = self.objects["applications"][app_object]
            app["passwordCredentials"] = [
                *app["passwordCredentials"],
                {
                    "keyId": gid(7, 1000 + n),
                    "displayName": "new",
                    "secretText": None,
                    "startDateTime": "2026-03-01T00:00:00Z",
                    "endDateTime": "2029-03-01T00:00:00Z",
                },
            ]
            self._touch("applications", app_object, {"passwordCredentials"})

    def delete(self, resource: str, object_id: str) -> None:
        with self.lock:
            self.deleted[resource].add(object_id)
            self._touch(resource, object_id, {"id"})

    def live(self, resource: str = "servicePrincipals") -> list[str]:
        return [i for i in self.objects[resource] if i not in self.deleted[resource]]

    def expire_tokens(self) -> None:
        with self.lock:
            self.reset_before = self.seq + 1
            self.seq += 1

    # -- HTTP ---------------------------------------------------------------------------------------

    def handler(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            self.outer.append((request.method, str(request.url)))
            if self.outer_faults:
                fault = self.outer_faults.pop(0)
                return self._error(fault.status, fault.code, fault.headers)
        url = str(request.url)
        if not url.startswith(ROOT + "/"):
            raise AssertionError(f"a request left the Graph endpoint: {url}")
        relative = url[len(ROOT) :]
        if request.method == "POST" and urlsplit(relative).path == "/$batch":
            return self._batch(json.loads(request.content))
        status, body, headers = self._get(relative)
        return httpx.Response(status, json=body, headers=headers)

    @staticmethod
    def _error(status: int, code: str, headers: dict[str, str] | None = None) -> httpx.Response:
        return httpx.Response(
            status, json={"error": {"code": code, "message": f"{code} here"}}, headers=headers
        )

    def _batch(self, document: dict[str, Any]) -> httpx.Response:
        requests = document["requests"]
        assert 1 <= len(requests) <= MAX_BATCH_REQUESTS
        assert len({r["id"] for r in requests}) == len(requests)
        with self.lock:
            self.batches.append([r["url"] for r in requests])
        responses = []
        for item in requests:
            assert item["method"] == "GET"
            path = urlsplit(item["url"]).path
            with self.lock:
                faults = self.inner_faults.get(path)
                fault = faults.pop(0) if faults else None
            if fault is not None:
                responses.append(
                    {
                        "id": item["id"],
                        "status": fault.status,
                        "headers": fault.headers,
                        "body": {"error": {"code": fault.code, "message": "scripted"}},
                    }
                )
                continue
            status, body, headers = self._get(item["url"])
            responses.append({"id": item["id"], "status": status, "headers": headers, "body": body})
        if self.shuffle_batch_answers:
            responses.reverse()  # Graph does not promise the order
        return httpx.Response(200, json={"responses": responses})

    def _get(self, relative: str) -> tuple[int, dict[str, Any], dict[str, str]]:
        parts = urlsplit(relative)
        path = unquote(parts.path)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        select = query.get("$select")
        names = select.split(",") if select else None
        with self.lock:
            delta = re.fullmatch(r"/(servicePrincipals|applications)/delta", path)
            if delta:
                return self._delta(delta.group(1), query)
            keyed = re.fullmatch(r"/(servicePrincipals|applications)\(appId='([^']+)'\)(/owners)?", path)
            plain = re.fullmatch(
                r"/(servicePrincipals|applications)/([^/]+)(?:/(owners|appRoleAssignments|memberOf))?", path
            )
            if keyed:
                resource, ref, nav = keyed.group(1), keyed.group(2), "owners" if keyed.group(3) else None
                found = next(
                    (
                        k
                        for k, v in self.objects[resource].items()
                        if v["appId"] == ref and k not in self.deleted[resource]
                    ),
                    None,
                )
            elif plain:
                resource, found, nav = plain.group(1), plain.group(2), plain.group(3)
                if found not in self.objects[resource] or found in self.deleted[resource]:
                    found = None
            else:
                raise AssertionError(f"not a route of the fake: {relative}")
            if found is None:
                return 404, {"error": {"code": "Request_ResourceNotFound", "message": "not found"}}, {}
            if nav is None:
                return 200, self._selected(self.objects[resource][found], names), {}
            if nav == "owners":
                assert names == [
                    "id",
                    "displayName",
                    "userPrincipalName",
                    "accountEnabled",
                    "userType",
                    "appId",
                ]
                items = [
                    {"@odata.type": o["@odata.type"], **{k: v for k, v in o.items() if k in names}}
                    for o in self.owners.get(found, [])
                ]
                start = int(query.get("$skiptoken", "0"))
                page = items[start : start + self.owner_page]
                body: dict[str, Any] = {"value": page}
                if start + self.owner_page < len(items):
                    body["@odata.nextLink"] = (
                        f"{ROOT}{parts.path}?$select={select}&$skiptoken={start + self.owner_page}"
                    )
                return 200, body, {}
            if nav == "appRoleAssignments":
                return 200, {"value": [self._selected(a, names) for a in self.assignments.get(found, [])]}, {}
            return 200, {"value": list(self.member_of.get(found, []))}, {}

    @staticmethod
    def _selected(document: dict[str, Any], names: list[str] | None) -> dict[str, Any]:
        if names is None:
            return dict(document)
        return {k: v for k, v in document.items() if k in names or k == "id"}

    def _delta(self, resource: str, query: dict[str, str]) -> tuple[int, dict[str, Any], dict[str, str]]:
        token = query.get("$deltatoken") or query.get("$skiptoken")
        if token is not None:
            since_text, upto_text, offset_text, issued_text, select = token.split("~")
            if int(issued_text) < self.reset_before:
                gone = {
                    "error": {
                        "code": "syncStateNotFound",
                        "message": "The sync state generation is not found.",
                    }
                }
                return 410, gone, {"Location": f"{ROOT}/{resource}/delta?$select={select}"}
            since = None if since_text == "" else int(since_text)
            if "$deltatoken" in query:
                since, upto, offset = int(upto_text), self.seq, 0
            else:
                upto, offset = int(upto_text), int(offset_text)
        else:
            select = query.get("$select", "")
            since, upto, offset = None, self.seq, 0
        names = select.split(",") if select else None
        ids = [
            object_id
            for (res, object_id), at in sorted(self.changed_at.items(), key=lambda entry: entry[1])
            if res == resource and at <= upto and (since is None or at > since)
        ]
        page = ids[offset : offset + self.page_size]
        values = []
        for object_id in page:
            if object_id in self.deleted[resource]:
                values.append({"id": object_id, "@removed": {"reason": "changed"}})
            elif since is not None and self.partial_updates:
                properties = self.last_change.get((resource, object_id), set())
                values.append(
                    {k: v for k, v in self.objects[resource][object_id].items() if k in properties | {"id"}}
                )
            else:
                values.append(self._selected(self.objects[resource][object_id], names))
        body: dict[str, Any] = {"value": values}
        since_text = "" if since is None else str(since)
        if offset + self.page_size < len(ids):
            token = f"{since_text}~{upto}~{offset + self.page_size}~{self.seq}~{select}"
            body["@odata.nextLink"] = f"{ROOT}/{resource}/delta?$skiptoken={token}"
        else:
            token = f"{since_text}~{upto}~0~{self.seq}~{select}"
            body["@odata.deltaLink"] = f"{ROOT}/{resource}/delta?$deltatoken={token}"
        return 200, body, {}

    # -- what was sent ---------------------------------------------------------------------------

    def delta_calls(self) -> list[str]:
        return [url for method, url in self.outer if "/delta" in url]

    def inner_urls(self) -> list[str]:
        return [url for batch in self.batches for url in batch]


# ---------------------------------------------------------------------------------------------------
# An in-memory Table with ETags and entity-group transactions
# ---------------------------------------------------------------------------------------------------


class Row(dict[str, Any]):
    def __init__(self, values: dict[str, Any], etag: str) -> None:
        super().__init__(values)
        self.metadata = {"etag": etag}


class FakeTable:
    """The TableClient calls the delta state store makes: ETag-conditional creates and replaces, and
    `submit_transaction` applied all or nothing."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], tuple[dict[str, Any], str]] = {}
        self.lock = threading.Lock()
        self.transactions = 0

    def get_entity(self, partition_key: str, row_key: str) -> Row:
        with self.lock:
            found = self.rows.get((partition_key, row_key))
            if found is None:
                raise ResourceNotFoundError("The specified resource does not exist.")
            return Row(dict(found[0]), found[1])

    def create_entity(self, entity: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            return self._create(entity)

    def _create(self, entity: dict[str, Any]) -> dict[str, Any]:
        key = (entity["PartitionKey"], entity["RowKey"])
        if key in self.rows:
            raise ResourceExistsError("The specified entity already exists.")
        etag = uuid.uuid4().hex
        self.rows[key] = (dict(entity), etag)
        return {"etag": etag}

    def update_entity(
        self,
        entity: dict[str, Any],
        mode: Any = None,
        *,
        etag: str | None = None,
        match_condition: Any = None,
    ) -> dict[str, Any]:
        with self.lock:
            return self._update(entity, etag, match_condition)

    def _update(self, entity: dict[str, Any], etag: str | None, match_condition: Any) -> dict[str, Any]:
        key = (entity["PartitionKey"], entity["RowKey"])
        found = self.rows.get(key)
        if found is None:
            raise ResourceNotFoundError("The specified resource does not exist.")
        if match_condition == MatchConditions.IfNotModified and etag != found[1]:
            raise ResourceModifiedError("The update condition specified in the request was not satisfied.")
        new_etag = uuid.uuid4().hex
        self.rows[key] = (dict(entity), new_etag)
        return {"etag": new_etag}

    def submit_transaction(self, operations: list[Any]) -> list[dict[str, Any]]:
        with self.lock:
            saved = dict(self.rows)
            results = []
            try:
                for index, (kind, entity, options) in enumerate(operations):
                    try:
                        if kind == "update":
                            results.append(
                                self._update(entity, options.get("etag"), options.get("match_condition"))
                            )
                        elif kind == "upsert":
                            etag = uuid.uuid4().hex
                            self.rows[(entity["PartitionKey"], entity["RowKey"])] = (dict(entity), etag)
                            results.append({"etag": etag})
                        else:
                            raise AssertionError(kind)
                    except (ResourceModifiedError, ResourceNotFoundError) as error:
                        raise TableTransactionError(message=f"{index}:{error}") from error
            except TableTransactionError:
                self.rows = saved
                raise
            self.transactions += 1
            return results

    def values(self, partition: str, row: str) -> dict[str, Any]:
        return dict(self.rows[(partition, row)][0])


# ---------------------------------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------------------------------


@dataclass
class Rig:
    graph: FakeGraph
    table: FakeTable
    store: TableDeltaStateStore
    clock: FakeClock
    api: ApiClient
    discovery: GovernanceDiscovery
    runs: int = 0

    def run(
        self, *, full_seed: bool = False, sink: Any = None, run_id: str | None = None
    ) -> tuple[DiscoveryResult, list[DiscoveredObject]]:
        self.runs += 1
        collected = sink if sink is not None else CollectingSink()
        result = self.discovery.run(
            TENANT,
            run_id=run_id or f"act-discovery-{self.runs:032x}",
            trigger="timer",
            sink=collected,
            full_seed=full_seed,
        )
        return result, list(getattr(collected, "objects", []))

    def state(self) -> DeltaState:
        return self.store.load(TENANT)


def make_rig(graph: FakeGraph, *, concurrency: int = 1, **options: Any) -> Rig:
    clock = FakeClock()
    api = ApiClient(
        CountingTokens(),
        http=new_http_client(transport=httpx.MockTransport(graph.handler)),
        clock=clock,
        sleep=clock.sleep,
        random=lambda: 0.5,
        timeout=(3.0, 20.0),
    )
    table = FakeTable()
    store = TableDeltaStateStore(cast(TableClient, table), lease_for=dt.timedelta(minutes=15))
    discovery = GovernanceDiscovery(api, GRAPH, SCOPE, store, clock, concurrency=concurrency, **options)
    return Rig(graph, table, store, clock, api, discovery)


def tenant_of(size: int, **options: Any) -> FakeGraph:
    """`size` apps: two thirds registered here, some with a privileged permission or a directory role,
    plus Microsoft Graph's own principal."""
    graph = FakeGraph(**options)
    for n in range(1, size + 1):
        graph.add_app(
            n,
            registered=n % 3 != 0,
            owners=n % 3,
            permission=MAIL_READWRITE if n % 5 == 0 else USER_READ_ALL if n % 2 else None,
            role=n % 7 == 0,
        )
    return graph


def by_id(objects: list[DiscoveredObject]) -> dict[str, DiscoveredObject]:
    return {o.governed.id: o for o in objects}


def expected_reads(graph: FakeGraph, ids: list[str]) -> int:
    """A baseline's reads: owners, appRoleAssignments and memberOf of each principal, the owners of each
    registered application, and the Graph resource principal once."""
    apps = {
        v["appId"] for k, v in graph.objects["applications"].items() if k not in graph.deleted["applications"]
    }
    return 1 + sum(3 + (graph.objects["servicePrincipals"][i]["appId"] in apps) for i in ids)


# ---------------------------------------------------------------------------------------------------
# Baseline
# ---------------------------------------------------------------------------------------------------


def test_a_first_run_is_a_baseline_that_reads_every_live_principal_whole_and_ignores_deleted_ones() -> None:
    graph = tenant_of(12)
    doomed = gid(1, 4)
    graph.delete("servicePrincipals", doomed)
    graph.delete("applications", graph.app_of(doomed))
    rig = make_rig(graph)

    result, objects = rig.run()

    live = graph.live()
    assert result.status == "succeeded"
    assert result.lock == "acquired"
    assert result.mode == "baseline"
    assert set(by_id(objects)) == set(live)
    assert [o.governed.id for o in objects] == [i for i in graph.objects["servicePrincipals"] if i in live]
    assert {o.reason for o in objects} == {"baseline"}
    assert result.counts.discovered == len(live)
    assert result.counts.skipped_deleted == 1
    assert result.removed_ids == ()
    assert result.counts.errors == 0
    assert result.errors == ()
    assert result.counts.service_principals_reported == len(live)
    # Nothing was read about the deleted principal.
    assert not [u for u in graph.inner_urls() if doomed in u]


def test_a_baseline_object_carries_its_owners_application_permissions_and_roles_as_graph_has_them() -> None:
    graph = tenant_of(14)
    rig = make_rig(graph)
    _, objects = rig.run()
    found = by_id(objects)
    for sp_id in graph.live():
        governed = found[sp_id].governed
        record = graph.objects["servicePrincipals"][sp_id]
        assert governed.notes == record.get("notes")
        assert [o.id for o in governed.owners] == [o["id"] for o in graph.owners.get(sp_id, [])]
        assert all(o.account_enabled is not None and o.user_type is not None for o in governed.owners)
        apps = [k for k, v in graph.objects["applications"].items() if v["appId"] == record["appId"]]
        if apps:
            assert governed.application is not None
            assert governed.application.id == apps[0]
            assert [o.id for o in governed.application_owners] == [o["id"] for o in graph.owners[apps[0]]]
        else:
            assert governed.application is None
            assert governed.application_owners == ()
        names = {a["appRoleId"]: a for a in graph.assignments.get(sp_id, [])}
        assert {p.app_role_id for p in governed.app_permissions} == set(names)
        assert all(p.value in {"Mail.ReadWrite", "User.Read.All"} for p in governed.app_permissions)
        roles = [m["roleTemplateId"] for m in graph.member_of.get(sp_id, []) if "roleTemplateId" in m]
        assert [r.role_template_id for r in governed.directory_roles] == roles
        # Secret material is never kept, whatever Graph sent.
        assert "secret-material" not in governed.model_dump_json()


def test_a_baseline_costs_its_delta_pages_plus_full_batches_of_20() -> None:
    graph = tenant_of(45, page_size=7)
    rig = make_rig(graph)
    result, objects = rig.run()

    counts = result.counts
    live = graph.live()
    sp_pages = math.ceil(len(graph.objects["servicePrincipals"]) / graph.page_size)
    app_pages = math.ceil(len(graph.objects["applications"]) / graph.page_size)
    assert counts.delta_pages == sp_pages + app_pages == len(graph.delta_calls())
    assert counts.reads == expected_reads(graph, live) == len(graph.inner_urls())
    assert counts.batches == len(graph.batches) == math.ceil(counts.reads / MAX_BATCH_REQUESTS)
    assert all(len(batch) == MAX_BATCH_REQUESTS for batch in graph.batches[:-1])
    assert counts.minimum_requests == counts.delta_pages + counts.batches
    assert counts.requests == len(graph.outer) == counts.minimum_requests
    assert counts.request_ratio == 1.0
    # The resource principal's app roles are read once, first.
    assert (
        graph.batches[0][0]
        == f"/servicePrincipals(appId='{MICROSOFT_GRAPH_APP_ID}')?$select=id,appId,displayName,appRoles"
    )
    assert sum("appRoles" in u for u in graph.inner_urls()) == 1
    assert len(objects) == len(live)


def test_delta_asks_for_what_the_model_needs_and_owners_for_their_standing() -> None:
    graph = tenant_of(3)
    rig = make_rig(graph)
    rig.run()
    first = graph.delta_calls()
    sp_first = next(u for u in first if "/servicePrincipals/delta" in u)
    app_first = next(u for u in first if "/applications/delta" in u)
    assert dict(parse_qsl(urlsplit(sp_first).query))["$select"] == ",".join(SERVICE_PRINCIPAL_SELECT)
    assert dict(parse_qsl(urlsplit(app_first).query))["$select"] == ",".join(APPLICATION_SELECT)
    owners = [u for u in graph.inner_urls() if "/owners" in u]
    assert owners
    assert all(
        u.endswith("/owners?$select=id,displayName,userPrincipalName,accountEnabled,userType,appId")
        for u in owners
    )


def test_concurrent_batches_give_the_same_objects_and_the_same_request_count() -> None:
    one, four = tenant_of(60, page_size=9), tenant_of(60, page_size=9)
    serial, _ = make_rig(one).run()
    parallel_rig = make_rig(four, concurrency=4)
    parallel, objects = parallel_rig.run()
    assert parallel.status == serial.status == "succeeded"
    assert parallel.counts.discovered == serial.counts.discovered == len(objects) == len(four.live())
    assert parallel.counts.reads == serial.counts.reads
    assert parallel.counts.requests == serial.counts.requests == serial.counts.minimum_requests


# ---------------------------------------------------------------------------------------------------
# Incremental rounds
# ---------------------------------------------------------------------------------------------------


def test_the_next_run_follows_the_stored_links_and_reads_only_what_changed() -> None:
    graph = tenant_of(20)
    rig = make_rig(graph)
    rig.run()
    saved = rig.state()
    assert set(saved.cursors) == {"servicePrincipals", "applications"}
    assert all(c.round_kind == "baseline" for c in saved.cursors.values())

    noted, credentialed, doomed = gid(1, 2), gid(1, 5), gid(1, 7)
    graph.set_notes(noted, "someone@contoso.example")
    graph.add_app_secret(graph.app_of(credentialed), 1)
    graph.delete("servicePrincipals", doomed)
    before = len(graph.outer)
    result, objects = rig.run()

    assert result.mode == "incremental"
    assert result.status == "succeeded"
    found = by_id(objects)
    assert set(found) == {noted, credentialed}
    assert found[noted].reason == "changed"
    assert found[noted].governed.notes == "someone@contoso.example"
    assert found[credentialed].reason == "application-changed"
    application = found[credentialed].governed.application
    assert application is not None
    assert len(application.password_credentials) == 2
    assert result.removed_ids == (doomed,)
    assert result.counts.skipped_deleted == 1
    # The links stored by the baseline were followed, not a new full listing.
    followed = [url for _, url in graph.outer[before:] if "/delta" in url]
    assert {c.delta_link for c in saved.cursors.values()} <= set(followed)
    assert not any("$select=" in url for url in followed)
    assert rig.state().cursors["servicePrincipals"].round_kind == "incremental"


def test_an_incremental_round_reads_changed_objects_again_since_delta_may_report_only_what_changed() -> None:
    graph = tenant_of(9)
    graph.partial_updates = True
    rig = make_rig(graph)
    rig.run()
    changed = gid(1, 4)
    graph.set_notes(changed, "new@contoso.example")
    result, objects = rig.run()
    (only,) = objects
    record = graph.objects["servicePrincipals"][changed]
    assert only.governed.id == changed
    assert only.governed.service_principal.app_id == record["appId"]  # not in the partial delta item
    assert only.governed.service_principal.display_name == record["displayName"]
    assert only.governed.application is not None  # looked up by appId
    app_id = record["appId"]
    # The resource's app roles, the principal again, its three collections, its application by appId
    # and the application's owners.
    expected = {
        f"/servicePrincipals(appId='{MICROSOFT_GRAPH_APP_ID}')",
        f"/servicePrincipals/{changed}",
        f"/servicePrincipals/{changed}/owners",
        f"/servicePrincipals/{changed}/appRoleAssignments",
        f"/servicePrincipals/{changed}/memberOf",
        f"/applications(appId='{app_id}')",
        f"/applications(appId='{app_id}')/owners",
    }
    sent = graph.inner_urls()[-result.counts.reads :]
    assert {urlsplit(u).path for u in sent} == expected
    assert result.counts.reads == len(expected)
    assert f"/servicePrincipals/{changed}?$select={','.join(SERVICE_PRINCIPAL_SELECT)}" in sent


def test_a_round_without_changes_sends_only_the_delta_pages() -> None:
    graph = tenant_of(6)
    rig = make_rig(graph)
    rig.run()
    batches = len(graph.batches)
    result, objects = rig.run()
    assert objects == []
    assert result.counts.discovered == 0
    assert result.counts.reads == result.counts.batches == 0
    assert len(graph.batches) == batches
    assert result.counts.requests == result.counts.delta_pages == 2


def test_a_forced_full_seed_ignores_the_stored_links() -> None:
    graph = tenant_of(8)
    rig = make_rig(graph)
    rig.run()
    graph.delete("servicePrincipals", gid(1, 1))
    result, objects = rig.run(full_seed=True)
    assert result.mode == "baseline"
    assert result.resync_reasons == ("a full seed was requested",)
    assert set(by_id(objects)) == set(graph.live())
    assert result.removed_ids == ()
    assert result.counts.skipped_deleted == 1
    assert result.counts.resynced == 0


# ---------------------------------------------------------------------------------------------------
# Resync
# ---------------------------------------------------------------------------------------------------


def test_an_expired_token_answered_410_starts_a_full_resync_counted_and_recorded() -> None:
    graph = tenant_of(10)
    rig = make_rig(graph)
    rig.run()
    graph.expire_tokens()
    result, objects = rig.run()
    assert result.mode == "resync"
    assert result.status == "succeeded"
    assert result.counts.resynced == 1
    assert rig.state().resyncs == 1
    assert any("expired" in reason and "410" in reason for reason in result.resync_reasons)
    assert set(by_id(objects)) == set(graph.live())
    assert result.activity_details()["resynced"] == 1
    assert rig.state().cursors["applications"].round_kind == "resync"


def test_a_token_answered_400_sync_state_not_found_is_also_a_resync() -> None:
    graph = tenant_of(4)
    rig = make_rig(graph)
    rig.run()
    graph.outer_faults.append(Fault(400, code="syncStateNotFound"))
    result, _ = rig.run()
    assert result.mode == "resync"
    assert result.counts.resynced == 1


def test_a_stored_link_made_with_another_select_or_on_another_host_is_not_followed() -> None:
    graph = tenant_of(5)
    rig = make_rig(graph)
    rig.run()
    state = rig.state()
    lease = rig.store.acquire(TENANT, "editor", rig.clock.now())
    stale = {
        "servicePrincipals": state.cursors["servicePrincipals"].model_copy(update={"selection": "id,notes"}),
        "applications": state.cursors["applications"].model_copy(
            update={"delta_link": "https://attacker.example/v1.0/applications/delta?$deltatoken=x"}
        ),
    }
    lease = rig.store.commit(lease, state.model_copy(update={"cursors": stale}), rig.clock.now())
    rig.store.release(lease, rig.clock.now())
    result, objects = rig.run()
    assert result.mode == "resync"
    assert result.counts.resynced == 1
    assert len(result.resync_reasons) == 2
    assert all(url.startswith(ROOT) for _, url in graph.outer)
    assert len(objects) == len(graph.live())


def test_a_skip_token_that_expires_mid_listing_starts_the_listing_once_more() -> None:
    graph = tenant_of(10, page_size=4)
    rig = make_rig(graph)
    original = graph._delta
    calls = {"n": 0}

    def expire_after_first_page(
        resource: str, query: dict[str, str]
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        calls["n"] += 1
        if calls["n"] == 2:
            graph.reset_before = graph.seq + 1
            graph.seq += 1
        return original(resource, query)

    graph._delta = expire_after_first_page  # type: ignore[method-assign]
    result, objects = rig.run()
    assert result.status == "succeeded"
    assert result.mode == "resync"
    assert result.counts.resynced == 1
    assert len(objects) == len(graph.live())


# ---------------------------------------------------------------------------------------------------
# Throttling and failures inside batches
# ---------------------------------------------------------------------------------------------------


def test_a_throttled_request_inside_a_batch_is_sent_again_alone_after_its_retry_after() -> None:
    graph = tenant_of(12)
    target = gid(1, 3)
    path = f"/servicePrincipals/{target}/owners"
    graph.inner_faults[path] = [Fault(429, {"Retry-After": "7"})]
    rig = make_rig(graph)
    result, objects = rig.run()

    assert result.status == "succeeded"
    assert target in by_id(objects)
    assert result.counts.inner_retries == 1
    assert result.counts.inner_throttled == 1
    assert 7.0 in rig.clock.sleeps
    sent = [u for u in graph.inner_urls() if urlsplit(u).path == path]
    assert len(sent) == 2  # only the throttled request again, not its batch
    assert sum(len(b) for b in graph.batches) == result.counts.reads + 1
    assert result.counts.requests == len(graph.outer)


def test_retries_ride_with_other_reads_so_a_sweep_stays_near_its_minimum() -> None:
    graph = tenant_of(40, page_size=10)
    for n in (3, 11, 19):
        graph.inner_faults[f"/servicePrincipals/{gid(1, n)}/appRoleAssignments"] = [
            Fault(429, {"Retry-After": "1"})
        ]
    graph.inner_faults[f"/servicePrincipals/{gid(1, 23)}/memberOf"] = [Fault(503, code="ServiceUnavailable")]
    rig = make_rig(graph)
    result, objects = rig.run()
    counts = result.counts
    assert result.status == "succeeded"
    assert len(objects) == len(graph.live())
    assert counts.inner_retries == 4
    # Four retried requests need at most one batch more than the minimum.
    assert counts.minimum_requests <= counts.requests <= counts.minimum_requests + 1


def test_a_read_that_keeps_failing_leaves_its_object_out_and_reads_it_again_next_run() -> None:
    graph = tenant_of(8)
    target = gid(1, 5)
    graph.inner_faults[f"/servicePrincipals/{target}/memberOf"] = [
        Fault(403, code="Authorization_RequestDenied")
    ]
    rig = make_rig(graph)
    result, objects = rig.run()
    assert result.status == "succeeded"
    assert target not in by_id(objects)
    assert len(objects) == len(graph.live()) - 1
    assert result.counts.errors == 1
    assert result.counts.pending == 1
    (error,) = result.errors
    assert error.object_id == target
    assert "403" in error.message
    assert "Authorization_RequestDenied" in error.message
    assert rig.state().pending_service_principals == (target,)

    again, objects = rig.run()  # nothing changed in Graph: only the pending object is read
    assert again.mode == "incremental"
    assert [(o.governed.id, o.reason) for o in objects] == [(target, "pending")]
    assert rig.state().pending_service_principals == ()


def test_a_throttle_past_the_deadline_is_not_waited_for() -> None:
    graph = tenant_of(4)
    target = gid(1, 1)
    graph.inner_faults[f"/servicePrincipals/{target}/owners"] = [Fault(429, {"Retry-After": "120"})]
    rig = make_rig(graph)
    result = rig.discovery.run(
        TENANT, run_id="act-discovery-" + "d" * 32, trigger="timer", sink=CollectingSink(), deadline=60.0
    )
    assert result.status == "succeeded"
    assert result.counts.pending == 1
    assert 120.0 not in rig.clock.sleeps
    assert "429" in result.errors[0].message


def test_a_batch_call_that_keeps_failing_fails_the_run_and_saves_nothing() -> None:
    graph = tenant_of(5)
    rig = make_rig(graph)
    rig.run()
    saved = rig.state()
    graph.set_notes(gid(1, 1), "x@contoso.example")
    original = graph._batch
    graph._batch = lambda document: FakeGraph._error(500, "InternalServerError")  # type: ignore[method-assign]
    result, objects = rig.run()
    graph._batch = original  # type: ignore[method-assign]
    assert result.status == "failed"
    assert result.lock == "acquired"
    assert result.failure is not None
    assert "500" in result.failure
    assert objects == []
    assert rig.state() == saved
    retried, objects = rig.run()  # the same links again: the change is still there
    assert retried.status == "succeeded"
    assert [o.governed.id for o in objects] == [gid(1, 1)]


def test_when_the_graph_resource_cannot_be_read_no_object_is_handed_off() -> None:
    graph = tenant_of(5)
    graph.inner_faults[f"/servicePrincipals(appId='{MICROSOFT_GRAPH_APP_ID}')"] = [
        Fault(403, code="Forbidden")
    ]
    rig = make_rig(graph)
    result, objects = rig.run()
    assert result.status == "failed"
    assert objects == []
    assert result.failure is not None
    assert "permissions would have no names" in result.failure
    assert rig.state().cursors == {}


def test_a_collection_answered_in_pages_inside_a_batch_is_read_to_its_end() -> None:
    graph = FakeGraph(owner_page=2)
    sp_id = graph.add_app(1, owners=5)
    rig = make_rig(graph)
    result, objects = rig.run()
    governed = by_id(objects)[sp_id].governed
    assert [o.id for o in governed.owners] == [o["id"] for o in graph.owners[sp_id]]
    assert result.counts.extra_pages == 2
    assert result.counts.requests == result.counts.minimum_requests + 2


def test_too_many_failed_reads_do_not_move_the_links() -> None:
    graph = tenant_of(3)
    rig = make_rig(graph)
    rig.run()
    saved = rig.state()
    for n in range(MAX_PENDING_IDS + 1):
        graph.add_app(100 + n, registered=False, owners=0, permission=None)
        graph.inner_faults[f"/servicePrincipals/{gid(1, 100 + n)}/owners"] = [Fault(403, code="Forbidden")]
    result, _ = rig.run()
    assert result.status == "failed"
    assert result.counts.pending == MAX_PENDING_IDS + 1
    assert rig.state() == saved


# ---------------------------------------------------------------------------------------------------
# Scope
# ---------------------------------------------------------------------------------------------------


def test_principals_no_validator_looks_at_are_not_read() -> None:
    graph = tenant_of(6)
    social = graph.add_app(50, principal_type="SocialIdp", owners=0)  # no validator's scope has this type
    rig = make_rig(graph, in_scope=scope_filter(load_default_validators()))
    result, objects = rig.run()
    skipped = {graph.graph_sp, social} | {
        i
        for i in graph.live()
        if graph.objects["servicePrincipals"][i]["appOwnerOrganizationId"] == MICROSOFT_SERVICES_TENANT
    }
    assert set(by_id(objects)) == set(graph.live()) - skipped
    assert result.counts.out_of_scope == len(skipped)
    assert not [u for u in graph.inner_urls() if any(f"/servicePrincipals/{s}/" in u for s in skipped)]


# ---------------------------------------------------------------------------------------------------
# One discovery at a time
# ---------------------------------------------------------------------------------------------------


def test_a_second_run_finds_the_lock_held_records_it_and_sends_nothing() -> None:
    graph = tenant_of(3)
    rig = make_rig(graph)
    holder = rig.store.acquire(TENANT, "act-discovery-" + "a" * 32, rig.clock.now())
    result, objects = rig.run()
    assert result.status == "locked"
    assert result.lock == "held"
    assert result.held_by == holder.run_id
    assert result.held_since == holder.acquired_at
    assert objects == []
    assert graph.outer == []
    assert rig.store.release(holder, rig.clock.now())
    assert rig.run()[0].status == "succeeded"


def test_a_run_whose_lease_was_taken_over_saves_nothing() -> None:
    graph = tenant_of(4)
    rig = make_rig(graph)

    class Thief(CollectingSink):
        def accept(self, objects: Any) -> None:
            super().accept(objects)
            rig.clock.t += 20 * 60  # the run overran its lease; another run takes the tenant over
            rig.store.acquire(TENANT, "act-discovery-" + "b" * 32, rig.clock.now())

    result, _ = rig.run(sink=Thief())
    assert result.status == "failed"
    assert result.failure is not None
    assert "taken over" in result.failure
    assert rig.state().cursors == {}
    assert rig.table.values(TENANT, LOCK_ROW)["owner"] == "act-discovery-" + "b" * 32  # not released by us


def test_a_sink_that_fails_releases_the_lease_and_moves_no_link() -> None:
    graph = tenant_of(4)
    rig = make_rig(graph)

    class Broken(CollectingSink):
        def accept(self, objects: Any) -> None:
            raise RuntimeError("queue unavailable")

    with pytest.raises(RuntimeError, match="queue unavailable"):
        rig.run(sink=Broken())
    assert rig.state().cursors == {}
    assert rig.table.values(TENANT, LOCK_ROW)["status"] == "released"
    assert rig.run()[0].status == "succeeded"


# ---------------------------------------------------------------------------------------------------
# The delta state store
# ---------------------------------------------------------------------------------------------------


def test_the_state_store_keeps_links_and_pending_ids_per_tenant_under_the_lease() -> None:
    table = FakeTable()
    store = TableDeltaStateStore(cast(TableClient, table), lease_for=dt.timedelta(minutes=10))
    now = dt.datetime(2026, 12, 7, 9, 0, tzinfo=dt.UTC)
    assert store.load(TENANT) == DeltaState(tenant_id=TENANT)
    lease = store.acquire(TENANT, "run-1", now)
    with pytest.raises(DiscoveryLocked) as locked:
        store.acquire(TENANT, "run-2", now + dt.timedelta(minutes=5))
    assert locked.value.holder == "run-1"
    other_tenant = store.acquire("other-tenant", "run-3", now)  # a lease per tenant
    cursor = DeltaCursor(
        resource="servicePrincipals",
        delta_link=f"{ROOT}/servicePrincipals/delta?$deltatoken=abc",
        selection="id",
        saved_at="2026-12-07T09:00:00.000Z",
        run_id="run-1",
        round_kind="baseline",
    )
    state = DeltaState(
        tenant_id=TENANT,
        cursors={"servicePrincipals": cursor},
        pending_service_principals=(gid(1, 1),),
        pending_applications=(gid(3, 2),),
        last_baseline_at="2026-12-07T09:00:00.000Z",
        resyncs=2,
    )
    lease = store.commit(lease, state, now + dt.timedelta(minutes=1))
    assert store.load(TENANT) == state
    assert store.load("other-tenant") == DeltaState(tenant_id="other-tenant")
    assert store.release(lease, now + dt.timedelta(minutes=2))
    assert store.release(other_tenant, now)
    again = store.acquire(TENANT, "run-2", now + dt.timedelta(minutes=3))  # released: taken at once
    assert again.run_id == "run-2"


def test_a_stale_lease_is_taken_over_and_its_holder_can_no_longer_commit() -> None:
    table = FakeTable()
    store = TableDeltaStateStore(cast(TableClient, table), lease_for=dt.timedelta(minutes=10))
    now = dt.datetime(2026, 12, 7, 9, 0, tzinfo=dt.UTC)
    first = store.acquire(TENANT, "run-1", now)
    second = store.acquire(TENANT, "run-2", now + dt.timedelta(minutes=11))
    with pytest.raises(LeaseLost):
        store.commit(first, DeltaState(tenant_id=TENANT, resyncs=9), now + dt.timedelta(minutes=12))
    with pytest.raises(LeaseLost):
        store.renew(first, now + dt.timedelta(minutes=12))
    assert not store.release(first, now + dt.timedelta(minutes=12))
    assert store.load(TENANT).resyncs == 0
    renewed = store.renew(second, now + dt.timedelta(minutes=15))
    with pytest.raises(DiscoveryLocked):  # renewed at +15: still held at +24
        store.acquire(TENANT, "run-3", now + dt.timedelta(minutes=24))
    assert store.commit(renewed, DeltaState(tenant_id=TENANT, resyncs=1), now).run_id == "run-2"
    assert store.load(TENANT).resyncs == 1


def test_an_unreadable_state_row_means_a_new_baseline_not_a_stuck_tenant() -> None:
    table = FakeTable()
    store = TableDeltaStateStore(cast(TableClient, table))
    table.create_entity({"PartitionKey": TENANT, "RowKey": STATE_ROW, "cursors": "{not json", "resyncs": 3})
    assert store.load(TENANT) == DeltaState(tenant_id=TENANT)


def test_tenant_keys_and_pending_lists_are_bounded() -> None:
    for bad in ("", "a/b", "a#b", "a?b", "a\\b", "a\nb", "x" * 257):
        with pytest.raises(ValueError, match="tenant id"):
            check_tenant_key(bad)
    assert check_tenant_key(TENANT) == TENANT
    table = FakeTable()
    store = TableDeltaStateStore(cast(TableClient, table))
    lease = store.acquire(TENANT, "run-1", dt.datetime(2026, 12, 7, tzinfo=dt.UTC))
    too_many = tuple(gid(1, n) for n in range(MAX_PENDING_IDS + 1))
    with pytest.raises(ValueError, match="pending ids"):
        store.commit(
            lease, DeltaState(tenant_id=TENANT, pending_service_principals=too_many), dt.datetime.now(dt.UTC)
        )
    assert Tables.GOVERNANCE_DELTA in Tables.ALL


# ---------------------------------------------------------------------------------------------------
# The reader on its own
# ---------------------------------------------------------------------------------------------------


def reader_for(graph: FakeGraph, **options: Any) -> tuple[GraphReader, FakeClock]:
    clock = FakeClock()
    api = ApiClient(
        CountingTokens(),
        http=new_http_client(transport=httpx.MockTransport(graph.handler)),
        clock=clock,
        sleep=clock.sleep,
        random=lambda: 0.5,
        timeout=(3.0, 20.0),
    )
    return GraphReader(api, GRAPH, SCOPE, concurrency=1, **options), clock


def test_a_delta_round_keeps_one_report_per_object_and_the_ids_removed() -> None:
    graph = tenant_of(5, page_size=2)
    reader, _ = reader_for(graph)
    first = reader.delta_round("servicePrincipals")
    assert [i["id"] for i in first.items] == list(graph.objects["servicePrincipals"])
    graph.set_notes(gid(1, 1), "a@contoso.example")
    graph.set_notes(gid(1, 1), "b@contoso.example")
    graph.delete("servicePrincipals", gid(1, 2))
    second = reader.delta_round("servicePrincipals", first.delta_link)
    assert [i["id"] for i in second.items] == [gid(1, 1)]
    assert second.items[0]["notes"] == "b@contoso.example"
    assert second.removed == (gid(1, 2),)
    assert reader.stats.delta_pages == first.pages + second.pages


def test_a_delta_page_answered_410_raises_delta_expired() -> None:
    graph = tenant_of(2)
    reader, _ = reader_for(graph)
    link = reader.delta_round("applications").delta_link
    graph.expire_tokens()
    with pytest.raises(DeltaExpired) as expired:
        reader.delta_round("applications", link)
    assert expired.value.status == 410
    assert expired.value.resource == "applications"


def test_the_reader_refuses_links_off_the_graph_endpoint_and_relative_reads_only() -> None:
    graph = tenant_of(1)
    reader, _ = reader_for(graph)
    with pytest.raises(ApiError) as caught:
        reader.delta_round(
            "servicePrincipals", "https://evil.example/v1.0/servicePrincipals/delta?$deltatoken=x"
        )
    assert caught.value.code == "InvalidDeltaLink"
    assert graph.outer == []
    with pytest.raises(ValueError, match="relative"):
        reader.read_all([BatchGet("x", "https://evil.example/v1.0/users")], lambda answer: [])


def test_each_read_ends_in_one_answer_and_follow_ups_join_the_queue_once() -> None:
    graph = tenant_of(3)
    reader, _ = reader_for(graph, batch_size=2)
    answers: list[ReadAnswer] = []

    def on_answer(answer: ReadAnswer) -> list[BatchGet]:
        answers.append(answer)
        if answer.key.startswith("sp:") and answer.ok and answer.body is not None:
            sp_id = answer.body["id"]
            return [
                BatchGet(
                    f"owners:{sp_id}",
                    f"/servicePrincipals/{sp_id}/owners?$select=id,displayName,userPrincipalName,accountEnabled,userType,appId",
                )
            ] * 2
        return []

    reads = [BatchGet(f"sp:{gid(1, n)}", f"/servicePrincipals/{gid(1, n)}") for n in (1, 2, 3)]
    reads.append(BatchGet("sp:missing", f"/servicePrincipals/{gid(1, 99)}"))
    reader.read_all([*reads, reads[0]], on_answer)
    keys = [a.key for a in answers]
    assert sorted(keys) == sorted({*(r.key for r in reads), *(f"owners:{gid(1, n)}" for n in (1, 2, 3))})
    assert next(a for a in answers if a.key == "sp:missing").not_found
    assert all(len(batch) <= 2 for batch in graph.batches)
    assert reader.stats.reads == len(keys) == len(graph.inner_urls())


def test_no_token_or_secret_reaches_the_logs(caplog: pytest.LogCaptureFixture) -> None:
    graph = tenant_of(4)
    graph.inner_faults[f"/servicePrincipals/{gid(1, 2)}/owners"] = [Fault(429, {"Retry-After": "1"})]
    graph.outer_faults.append(Fault(503, code="ServiceUnavailable"))
    rig = make_rig(graph)
    with caplog.at_level("DEBUG"):
        result, _ = rig.run()
    assert result.status == "succeeded"
    text = caplog.text
    assert "secret-token" not in text
    assert "secret-material" not in text
    assert "Bearer" not in text


def test_objects_asked_for_by_id_are_read_whole_without_delta_lease_or_state() -> None:
    graph = tenant_of(6)
    gone = gid(1, 2)
    graph.delete("servicePrincipals", gone)
    rig = make_rig(graph)
    wanted = [gid(1, 1), gid(1, 3), gone, "not-a-guid"]
    reads, stats = rig.discovery.read_objects(TENANT, wanted)
    assert [(g.id, reason) for g, reason in reads.objects] == [
        (gid(1, 1), "requested"),
        (gid(1, 3), "requested"),
    ]
    found = {g.id: g for g, _ in reads.objects}
    assert found[gid(1, 1)].application is not None  # registered here: read by appId
    assert found[gid(1, 3)].application is None  # owned by another tenant: not looked up
    assert not [u for u in graph.inner_urls() if gid(2, 3) in u]
    assert reads.gone == {gone}
    assert [e.object_id for e in reads.errors] == ["not-a-guid"]
    assert graph.delta_calls() == []
    assert rig.table.rows == {}
    assert stats.reads == len(graph.inner_urls())
    assert stats.requests == len(graph.outer) == len(graph.batches)


def test_retries_falling_due_at_the_end_of_a_sweep_share_one_batch() -> None:
    graph = tenant_of(10)
    paths = [f"/servicePrincipals/{gid(1, n)}/memberOf" for n in (2, 5, 8)]
    for seconds, path in enumerate(paths, start=1):
        graph.inner_faults[path] = [Fault(503, {"Retry-After": str(seconds)}, code="ServiceUnavailable")]
    rig = make_rig(graph)
    result, objects = rig.run()
    assert result.status == "succeeded"
    assert len(objects) == len(graph.live())
    # The three retries left together (with the last reads), not in three batches of their own.
    assert set(paths) <= {urlsplit(u).path for u in graph.batches[-1]}
    assert result.counts.inner_server_errors == 3
    assert result.counts.batches == math.ceil((result.counts.reads + 3) / MAX_BATCH_REQUESTS)


def test_a_periodic_full_sweep_lists_everything_again_once_due() -> None:
    graph = tenant_of(20)
    rig = make_rig(graph, full_sweep_every=dt.timedelta(hours=24))
    baseline, first = rig.run()
    assert baseline.mode == "baseline"

    rig.clock.t += 23 * 3600  # not due yet: delta is followed, and nothing changed
    quiet, none = rig.run()
    assert (quiet.mode, len(none)) == ("incremental", 0)

    first_baseline_at = rig.state().last_baseline_at
    rig.clock.t += 3600  # 24 hours after the baseline: every object is read again
    swept, again = rig.run()
    assert swept.mode == "baseline"
    assert any("periodic full sweep" in reason for reason in swept.resync_reasons)
    assert set(by_id(again)) == set(by_id(first))
    assert {found.reason for found in again} == {"baseline"}
    assert first_baseline_at is not None
    assert (rig.state().last_baseline_at or "") > first_baseline_at  # the next sweep counts from here

    rig.clock.t += 3600
    after, nothing = rig.run()
    assert (after.mode, len(nothing)) == ("incremental", 0)
