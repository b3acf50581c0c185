"""Hostile ids and hostile bodies through the local host, as Reader, Analyst and Admin.

Every route that takes an id gets a table of ids that are not of the app's grammar (path traversal,
separators, controls, percent-encoded variants, over-long values), and the valid ids of another
tenant's and of hidden (API_SENSITIVE_SERVICES) alerts and events. Every route that takes a body gets a
table of hostile bodies. Each answer must be the expected 4xx problem, no answer may show another
tenant's or hidden data, and storage (every Cosmos container with its definition, the rules blob, the
raw archive) must hold exactly what it held before.
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import urllib.parse
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from devtools.services import PROJECT_ROOT
from shared.alerts.model import alert_fingerprint
from shared.alerts.suppressions import new_suppression, suppression_id
from shared.governance.config import load_default_validators
from shared.governance.messages import evaluation_id
from shared.governance.model import GovernedObject
from shared.governance.records import exception_id
from shared.governance.service import Actor, GovernanceService
from shared.governance.store import (
    CosmosActivityStore,
    CosmosAuditSink,
    CosmosGovernanceStore,
    TableUpdateClaims,
)
from shared.ingestion.event_store import EventStore
from shared.ingestion.events import partition_key
from shared.platform.clients import AzureClients
from shared.platform.clock import utc_iso
from shared.platform.resources import BlobContainers, CosmosContainers, Tables
from shared.rules.source import RULES_BLOB
from tests.support.host_process import HostProcess, http_functions_only
from tests.support.own_database import own_cosmos_database
from tests.support.principals import swa_principal

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
TENANT = str(uuid.uuid4())
OTHER_TENANT = str(uuid.uuid4())
FOREIGN_MARKER = f"foreign-{uuid.uuid4().hex}"
HIDDEN_MARKER = f"hidden-{uuid.uuid4().hex}"
HIDDEN_OPERATION = f"Set-Hidden{uuid.uuid4().hex[:8]}"

VISIBLE_EVENT = f"entra_audit:Directory_{uuid.uuid4()}_AB12C_1"
HIDDEN_EVENT = f"o365:{uuid.uuid4()}"
FOREIGN_EVENT = f"entra_audit:Directory_{uuid.uuid4()}_ZZ99Q_7"
VISIBLE_ALERT = alert_fingerprint(TENANT, "entra.visible", "g", 1)
HIDDEN_ALERT = alert_fingerprint(TENANT, "exchange.hidden", "g", 1)
FOREIGN_ALERT = alert_fingerprint(OTHER_TENANT, "entra.visible", "g", 1)
RULE_ID = "entra.app-registered"  # a rule of the shipped file
# Saved searches: the callers' own (every caller below is user "u1"), another user's private one, another
# tenant's, and one shared with readers that names a hidden operation.
VISIBLE_SEARCH = "srch-" + uuid.uuid4().hex
OTHERS_SEARCH = "srch-" + uuid.uuid4().hex
FOREIGN_SEARCH = "srch-" + uuid.uuid4().hex
HIDDEN_SEARCH = "srch-" + uuid.uuid4().hex
# Suppressions of the three alerts' rules and groups (_alert: rule "test.rule", group "g").
VISIBLE_SUPPRESSION = suppression_id(TENANT, "test.rule", "g")
HIDDEN_SUPPRESSION = suppression_id(TENANT, "test.hidden", "g")
FOREIGN_SUPPRESSION = suppression_id(OTHER_TENANT, "test.rule", "g")
SUPPRESS = {"reason": "checked", "expires_at": utc_iso(NOW + dt.timedelta(days=1))}
# Governance (issue 18): a service principal of this tenant and one of the other tenant (named with the
# foreign marker), each evaluated (failing notes-lists-owners) with an exception on that validator.
VISIBLE_OBJECT = str(uuid.uuid4())
FOREIGN_OBJECT = str(uuid.uuid4())
NEVER_EVALUATED_OBJECT = str(uuid.uuid4())
GOVERNED_VALIDATOR = "notes-lists-owners"
VISIBLE_EXCEPTION = exception_id(TENANT, VISIBLE_OBJECT, GOVERNED_VALIDATOR)
FOREIGN_EXCEPTION = exception_id(OTHER_TENANT, FOREIGN_OBJECT, GOVERNED_VALIDATOR)
ACCEPT_RISK = {
    "object_id": VISIBLE_OBJECT,
    "validator_id": GOVERNED_VALIDATOR,
    "reason": "checked",
    "expires_at": utc_iso(NOW + dt.timedelta(days=1)),
}

ROLES = {
    "reader": {"x-ms-client-principal": swa_principal(["reader"], user="rita@contoso.com")},
    "analyst": {"x-ms-client-principal": swa_principal(["analyst"], user="ana@contoso.com")},
    "admin": {"x-ms-client-principal": swa_principal(["admin"], user="root@contoso.com")},
}
RANK = {"reader": 0, "analyst": 1, "admin": 2}

# (label, the path segment as sent on the wire). None of them is an id of any kind the app makes.
HOSTILE_SEGMENTS = [
    ("slash", "%2F"),
    ("dot-dot", ".."),
    ("dot", "."),
    ("encoded dot-dot", "%2E%2E"),
    ("encoded dot", "%2e"),
    ("backslash", "%5C"),
    ("question mark", "%3F"),
    ("hash", "%23"),
    ("double-encoded slash", "%252F"),
    ("traversal to the database", "a%2F..%2F.."),
    ("traversal to another container", "..%2Faudit"),
    ("backslash traversal", "..%5C..%5C"),
    ("nul", "%00"),
    ("newline", "%0A"),
    ("delete", "x%7F"),
    ("C1 control", "x%C2%85"),
    ("over-long", "a" * 300),
    ("over-long alert-shaped", "alert-" + "a" * 200),
    ("valid alert id plus newline", urllib.parse.quote(VISIBLE_ALERT + "\n", safe="")),
    ("valid alert id plus traversal", urllib.parse.quote(VISIBLE_ALERT + "/..", safe="")),
    ("valid event id plus traversal", urllib.parse.quote(VISIBLE_EVENT + "/..", safe="")),
    ("blank around a valid id", urllib.parse.quote(f" {VISIBLE_ALERT} ", safe="")),
    ("valid rule id plus newline", urllib.parse.quote(RULE_ID + "\n", safe="")),
    ("non-ASCII", "%C3%A9v%C3%A9nement"),
    ("invalid UTF-8 escape", "%FF%FE"),
]
# Ids of the app's grammar that name what this caller must not see.
OUT_OF_REACH_EVENTS = [("another tenant's event", FOREIGN_EVENT), ("a hidden event", HIDDEN_EVENT)]
OUT_OF_REACH_ALERTS = [("another tenant's alert", FOREIGN_ALERT), ("a hidden alert", HIDDEN_ALERT)]
OUT_OF_REACH_SEARCHES = [
    ("another user's private search", OTHERS_SEARCH),
    ("another tenant's search", FOREIGN_SEARCH),
    ("a search naming a hidden operation", HIDDEN_SEARCH),
]
SEARCH_BODY = {"name": "checked", "query": "start=24h"}
OUT_OF_REACH_SUPPRESSIONS = [
    ("another tenant's suppression", FOREIGN_SUPPRESSION),
    ("a hidden suppression", HIDDEN_SUPPRESSION),
]
OUT_OF_REACH_GOVERNED_OBJECTS = [
    ("another tenant's service principal", FOREIGN_OBJECT),
    ("a service principal never evaluated", NEVER_EVALUATED_OBJECT),
]
OUT_OF_REACH_EXCEPTIONS = [("another tenant's exception", FOREIGN_EXCEPTION)]
# Near misses of the governance grammars (a GUID matched whole; exc- and 40 lower-case hex digits).
HOSTILE_GOVERNANCE_SEGMENTS = {
    "/governance/objects/": [
        ("valid object id plus newline", urllib.parse.quote(VISIBLE_OBJECT + "\n", safe="")),
        ("valid object id plus traversal", urllib.parse.quote(VISIBLE_OBJECT + "/..", safe="")),
        ("object id in braces", urllib.parse.quote("{" + VISIBLE_OBJECT + "}", safe="")),
        ("object id without hyphens", VISIBLE_OBJECT.replace("-", "")),
    ],
    "/governance/exceptions/": [
        ("valid exception id plus newline", urllib.parse.quote(VISIBLE_EXCEPTION + "\n", safe="")),
        ("upper-case exception id", VISIBLE_EXCEPTION.upper()),
        ("exception id one digit short", VISIBLE_EXCEPTION[:-1]),
        ("exception id plus traversal", urllib.parse.quote(VISIBLE_EXCEPTION + "/..", safe="")),
    ],
}

RAW_RECORD = {"id": "raw-visible", "note": "the original record"}


@dataclass(frozen=True)
class IdRoute:
    method: str
    template: str  # {id} is replaced by the segment
    role: str  # the least role that may call it
    body: dict[str, Any] | None
    refused: int  # the status for an id outside the grammar, once the role is granted


ID_ROUTES = [
    IdRoute("GET", "/api/events/{id}", "reader", None, 404),
    IdRoute("GET", "/api/events/{id}/raw", "reader", None, 404),
    IdRoute("PATCH", "/api/events/{id}/tags", "analyst", {"add": ["checked"]}, 404),
    IdRoute("POST", "/api/events/{id}/comments", "analyst", {"text": "checked"}, 404),
    IdRoute("GET", "/api/alerts/{id}", "reader", None, 404),
    IdRoute("PATCH", "/api/alerts/{id}", "analyst", {"status": "closed", "comment": "x"}, 404),
    IdRoute("GET", "/api/rules/{id}", "reader", None, 400),
    IdRoute("PUT", "/api/rules/{id}", "admin", {"enabled": False}, 400),
    IdRoute("POST", "/api/queues/{id}/replay", "admin", {"max": 1}, 404),
    IdRoute("GET", "/api/searches/{id}", "reader", None, 404),
    IdRoute("PUT", "/api/searches/{id}", "reader", SEARCH_BODY, 404),
    IdRoute("DELETE", "/api/searches/{id}", "reader", None, 404),
    IdRoute("POST", "/api/alerts/{id}/suppress", "admin", SUPPRESS, 404),
    IdRoute("DELETE", "/api/suppressions/{id}", "admin", None, 404),
    IdRoute("GET", "/api/governance/objects/{id}", "reader", None, 404),
    IdRoute("DELETE", "/api/governance/exceptions/{id}", "admin", None, 404),
    IdRoute("GET", "/api/datasets/{id}", "reader", None, 400),  # issue 19: a grammar, refused with a 400
]


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


def call(
    host: HostProcess, method: str, path: str, headers: dict[str, str], body: bytes | None = None
) -> Answer:
    """One request with the path sent byte for byte as given (no client-side normalization)."""
    connection = http.client.HTTPConnection("127.0.0.1", host.port, timeout=60)
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
    finally:
        connection.close()


def _event(
    event_id: str, tenant: str, service: str, operation: str, summary: str, minutes: int
) -> dict[str, Any]:
    timestamp = utc_iso(NOW - dt.timedelta(minutes=minutes))
    return {
        "id": event_id,
        "pk": partition_key(tenant, timestamp),
        "tenant_id": tenant,
        "source": "entra_audit",
        "service": service,
        "category": None,
        "operation": operation,
        "operation_type": "update",
        "result": "success",
        "actor": {"type": "user", "id": None, "upn": "user@contoso.com", "display": None, "ip": None},
        "targets": [],
        "timestamp": timestamp,
        "ingested_at": timestamp,
        "correlation_id": None,
        "summary": summary,
        "tags": [],
        "raw_ref": None,
        "raw": RAW_RECORD if event_id == VISIBLE_EVENT else {"secret": summary},
    }


def _alert(
    alert_id: str, tenant: str, service: str, title: str, rule_id: str = "test.rule"
) -> dict[str, Any]:
    seen = utc_iso(NOW - dt.timedelta(minutes=5))
    return {
        "id": alert_id,
        "pk": tenant,
        "type": "alert",
        "tenant_id": tenant,
        "rule_id": rule_id,
        "title": title,
        "description": title,
        "severity": "high",
        "status": "open",
        "occurrences": 1,
        "first_seen": seen,
        "last_seen": seen,
        "group_key": "g",
        "sample": {"service": service, "operation": "Op"},
        "history": [],
    }


def _seed(clients: AzureClients) -> None:
    events = {
        TENANT: [
            _event(VISIBLE_EVENT, TENANT, "Directory", "Add user", "a visible event", 1),
            _event(HIDDEN_EVENT, TENANT, "Exchange", HIDDEN_OPERATION, HIDDEN_MARKER, 2),
        ],
        OTHER_TENANT: [_event(FOREIGN_EVENT, OTHER_TENANT, "Directory", FOREIGN_MARKER, FOREIGN_MARKER, 3)],
    }
    store = EventStore(
        clients.cosmos_container(CosmosContainers.EVENTS.name),
        clients.cosmos_container(CosmosContainers.FACETS.name),
        2,
    )
    try:
        for tenant, documents in events.items():
            store.write_events(documents)
            store.update_facets(tenant, documents, [], utc_iso(NOW), shard_key="hostile")
    finally:
        store.close()
    alerts = clients.cosmos_container(CosmosContainers.ALERTS.name)
    seeded = [
        (_alert(VISIBLE_ALERT, TENANT, "Directory", "a visible alert"), "a visible suppression"),
        (_alert(HIDDEN_ALERT, TENANT, "Exchange", HIDDEN_MARKER, "test.hidden"), HIDDEN_MARKER),
        (_alert(FOREIGN_ALERT, OTHER_TENANT, "Directory", FOREIGN_MARKER), FOREIGN_MARKER),
    ]
    for alert, reason in seeded:
        alerts.create_item(alert)
        expires = NOW + dt.timedelta(days=1)
        alerts.create_item(new_suppression(alert, reason, expires, "root@contoso.com", NOW, None))
    _seed_governance(clients)
    searches = clients.cosmos_container(CosmosContainers.SEARCHES.name)
    searches.create_item(_search(VISIBLE_SEARCH, TENANT, "u1", "a visible search", "service=Directory"))
    searches.create_item(_search(OTHERS_SEARCH, TENANT, "someone-else", FOREIGN_MARKER, "q=x"))
    searches.create_item(
        _search(FOREIGN_SEARCH, OTHER_TENANT, "u1", FOREIGN_MARKER, "q=x", role="AOC.Reader")
    )
    searches.create_item(
        _search(
            HIDDEN_SEARCH,
            TENANT,
            "privacy-officer",
            "what hides",
            "operation=" + urllib.parse.quote_plus(HIDDEN_OPERATION),
            role="AOC.Reader",
        )
    )


def _seed_governance(clients: AzureClients) -> None:
    """Each tenant's service principal evaluated (its notes name no owner: a finding) by the service,
    with an exception accepted on that validator."""
    container = clients.cosmos_container(CosmosContainers.GOVERNANCE.name)
    service = GovernanceService(
        CosmosGovernanceStore(container),
        CosmosActivityStore(container),
        CosmosAuditSink(clients.cosmos_container(CosmosContainers.AUDIT.name)),
        TableUpdateClaims(clients.table(Tables.GOVERNANCE_UPDATES)),
        None,
        load_default_validators(),
        mode="ReportOnly",
        graph_base="https://graph.microsoft.com",
    )
    for tenant, object_id, name in (
        (TENANT, VISIBLE_OBJECT, "a visible service principal"),
        (OTHER_TENANT, FOREIGN_OBJECT, FOREIGN_MARKER),
    ):
        obj = GovernedObject.from_graph(
            {"id": object_id, "displayName": name, "servicePrincipalType": "Application", "notes": name},
            owners=[],
        )
        seen = NOW - dt.timedelta(minutes=5)
        service.evaluate(tenant, obj, seen, evaluation_id=evaluation_id(tenant, object_id, "hostile"))
        admin = Actor(name="root@contoso.com", id="u1", auth="swa")
        service.accept_risk(
            tenant, object_id, GOVERNED_VALIDATOR, name, NOW + dt.timedelta(days=1), admin, seen
        )


def _search(
    search_id: str, tenant: str, owner: str, name: str, query: str, role: str | None = None
) -> dict[str, Any]:
    at = utc_iso(NOW - dt.timedelta(minutes=5))
    return {
        "id": search_id,
        "pk": tenant,
        "type": "saved_search",
        "name": name,
        "query": query,
        "visibility": "role" if role else "private",
        "role": role,
        "pinned": False,
        "owner": owner,
        "owner_name": owner,
        "created_at": at,
        "updated_at": at,
    }


def storage_snapshot(clients: AzureClients, database: str) -> dict[str, Any]:
    """Every container of the database (definition and documents, system fields included, so a
    replace shows as a new _etag) and the blobs of the config and raw containers."""
    snapshot: dict[str, Any] = {}
    db = clients.cosmos.get_database_client(database)
    for properties in sorted(db.list_containers(), key=lambda p: p["id"]):
        container = db.get_container_client(properties["id"])
        items = container.query_items("SELECT * FROM c", enable_cross_partition_query=True)
        snapshot[f"cosmos:{properties['id']}"] = {
            "definition": dict(properties),
            "items": sorted((dict(i) for i in items), key=lambda d: (str(d.get("pk")), d["id"])),
        }
    for name in (BlobContainers.CONFIG, BlobContainers.RAW):
        blob_container = clients.blob_service.get_container_client(name)
        blobs = {b.name: b.etag for b in blob_container.list_blobs()}
        snapshot[f"blob:{name}"] = blobs
    rules = clients.blob_service.get_container_client(BlobContainers.CONFIG).get_blob_client(RULES_BLOB)
    snapshot["rules.yaml"] = rules.download_blob().readall() if rules.exists() else None
    return snapshot


@dataclass
class Stack:
    host: HostProcess
    clients: AzureClients
    database: str

    def snapshot(self) -> dict[str, Any]:
        return storage_snapshot(self.clients, self.database)


@pytest.fixture(scope="module")
def stack(app_environment: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with own_cosmos_database("aoc-hostile") as (database, clients):
        _seed(clients)
        settings = {
            **app_environment,
            "COSMOS_DATABASE": database,
            "M365_TENANT_ID": TENANT,
            "API_AUTH_MODE": "swa",
            # SWA mode without a platform in front: the local development switch (finding 3).
            "AOC_UNSAFE_TRUST_CLIENT_PRINCIPAL_HEADER": "1",
            "API_SENSITIVE_SERVICES": "Exchange",
            "API_SENSITIVE_OPERATIONS": HIDDEN_OPERATION,
            "API_CONTINUATION_SECRET": "hostile-continuation-secret-0123456789",
            "PROBE_ENABLED": "false",
            # Only the API: a poll timer firing mid-test would ingest the simulator's events into this
            # database and fail the storage-unchanged checks.
            **http_functions_only(),
        }
        work_dir: Path = tmp_path_factory.mktemp("hostile-host")
        host = HostProcess(app_dir=PROJECT_ROOT, work_dir=work_dir, environment=settings).start(timeout=60)
        try:
            yield Stack(host, clients, database)
        finally:
            host.stop()


def assert_nothing_out_of_reach(answer: Answer, context: str, sent: str | None = None) -> None:
    """No marker, id or tenant of data out of the caller's reach in the answer (other than the id the
    caller sent itself, which a 404 names)."""
    text = answer.body.decode("utf-8", "replace")
    secrets = (FOREIGN_MARKER, HIDDEN_MARKER, HIDDEN_OPERATION, OTHER_TENANT)
    out_of_reach_ids = (
        FOREIGN_EVENT,
        HIDDEN_EVENT,
        FOREIGN_ALERT,
        HIDDEN_ALERT,
        FOREIGN_SUPPRESSION,
        HIDDEN_SUPPRESSION,
        OTHERS_SEARCH,
        FOREIGN_SEARCH,
        HIDDEN_SEARCH,
        FOREIGN_OBJECT,
        FOREIGN_EXCEPTION,
    )
    for secret in (*secrets, *out_of_reach_ids):
        if secret != sent:
            assert secret not in text, f"{context}: {secret} in the answer"


def assert_problem(answer: Answer, status: int, context: str) -> None:
    assert answer.status == status, f"{context}: {answer.status} {answer.body[:300]!r}"
    assert answer.headers.get("content-type", "").startswith("application/problem+json"), context
    problem = json.loads(answer.body)
    assert problem["status"] == status, context


def _json_body(route: IdRoute) -> tuple[bytes | None, dict[str, str]]:
    if route.body is None:
        return None, {}
    return json.dumps(route.body).encode(), {"Content-Type": "application/json"}


@pytest.mark.parametrize("role", list(ROLES))
def test_hostile_ids_on_every_id_route_are_refused_and_storage_is_unchanged(stack: Stack, role: str) -> None:
    before = stack.snapshot()
    calls = 0
    for route in ID_ROUTES:
        body, content_type = _json_body(route)
        headers = {**ROLES[role], **content_type}
        granted = RANK[role] >= RANK[route.role]
        table = list(HOSTILE_SEGMENTS)
        if "/events/" in route.template:
            table += [(label, urllib.parse.quote(i, safe="")) for label, i in OUT_OF_REACH_EVENTS]
        if "/alerts/" in route.template:
            table += [(label, urllib.parse.quote(i, safe="")) for label, i in OUT_OF_REACH_ALERTS]
        if "/searches/" in route.template:
            table += OUT_OF_REACH_SEARCHES
        if "/suppressions/" in route.template:
            table += [(label, urllib.parse.quote(i, safe="")) for label, i in OUT_OF_REACH_SUPPRESSIONS]
        if "/governance/objects/" in route.template:
            table += OUT_OF_REACH_GOVERNED_OBJECTS + HOSTILE_GOVERNANCE_SEGMENTS["/governance/objects/"]
        if "/governance/exceptions/" in route.template:
            table += OUT_OF_REACH_EXCEPTIONS + HOSTILE_GOVERNANCE_SEGMENTS["/governance/exceptions/"]
        for label, segment in table:
            path = route.template.replace("{id}", segment)
            context = f"{role} {route.method} {path} ({label})"
            answer = call(stack.host, route.method, path, headers, body)
            out_of_reach = any(
                label == other
                for other, _ in OUT_OF_REACH_EVENTS
                + OUT_OF_REACH_ALERTS
                + OUT_OF_REACH_SEARCHES
                + OUT_OF_REACH_SUPPRESSIONS
                + OUT_OF_REACH_GOVERNED_OBJECTS
                + OUT_OF_REACH_EXCEPTIONS
            )
            expected = 403 if not granted else (404 if out_of_reach else route.refused)
            assert_problem(answer, expected, context)
            assert_nothing_out_of_reach(answer, context, sent=urllib.parse.unquote(segment))
            calls += 1
    assert calls == (
        len(ID_ROUTES) * len(HOSTILE_SEGMENTS)
        + 4 * len(OUT_OF_REACH_EVENTS)
        + 3 * len(OUT_OF_REACH_ALERTS)
        + 3 * len(OUT_OF_REACH_SEARCHES)
        + len(OUT_OF_REACH_SUPPRESSIONS)
        + len(OUT_OF_REACH_GOVERNED_OBJECTS)
        + len(OUT_OF_REACH_EXCEPTIONS)
        + sum(len(segments) for segments in HOSTILE_GOVERNANCE_SEGMENTS.values())
    )
    assert stack.snapshot() == before


@pytest.mark.parametrize("role", list(ROLES))
def test_valid_ids_are_answered_and_lists_show_nothing_out_of_reach(stack: Stack, role: str) -> None:
    """The control for the table above: the same routes with the visible ids answer 200, and no list,
    facet, export or summary shows another tenant's or hidden data."""
    before = stack.snapshot()
    headers = ROLES[role]
    event = urllib.parse.quote(VISIBLE_EVENT, safe="")
    found = call(stack.host, "GET", f"/api/events/{event}", headers)
    assert found.status == 200, found.body
    assert json.loads(found.body)["id"] == VISIBLE_EVENT
    raw = call(stack.host, "GET", f"/api/events/{event}/raw", headers)
    assert (raw.status, json.loads(raw.body)) == (200, RAW_RECORD)
    alert = call(stack.host, "GET", f"/api/alerts/{VISIBLE_ALERT}", headers)
    assert alert.status == 200, alert.body
    assert json.loads(alert.body)["id"] == VISIBLE_ALERT
    search = call(stack.host, "GET", f"/api/searches/{VISIBLE_SEARCH}", headers)
    assert search.status == 200, search.body
    assert json.loads(search.body)["id"] == VISIBLE_SEARCH
    rule = call(stack.host, "GET", f"/api/rules/{RULE_ID}", headers)
    assert rule.status == 200, rule.body
    assert json.loads(rule.body)["etag"] == rule.headers["etag"]
    assert json.loads(alert.body)["suppression"]["id"] == VISIBLE_SUPPRESSION
    for path in (
        "/api/events?start=1d&page_size=200",
        "/api/events/facets",
        "/api/events/histogram?start=1d",
        "/api/events/export?start=1d",
        "/api/events/export?start=1d&format=csv",
        "/api/alerts?page_size=200",
        "/api/alerts/summary",
        "/api/searches",
        "/api/rules",
        "/api/suppressions",
        "/api/suppressions?rule=test.hidden",
        "/api/governance/findings?state=open",
        "/api/governance/findings",
        "/api/governance/findings/summary",
        "/api/governance/exceptions",
        "/api/governance/activities",
        f"/api/governance/objects/{VISIBLE_OBJECT}",
    ):
        answer = call(stack.host, "GET", path, headers)
        assert answer.status == 200, (path, answer.body[:300])
        assert_nothing_out_of_reach(answer, f"{role} GET {path}")
    listed = json.loads(call(stack.host, "GET", "/api/events?start=1d", headers).body)["items"]
    assert [e["id"] for e in listed] == [VISIBLE_EVENT]
    alerts = json.loads(call(stack.host, "GET", "/api/alerts", headers).body)["items"]
    assert [a["id"] for a in alerts] == [VISIBLE_ALERT]  # suppressions are never alerts
    searches = json.loads(call(stack.host, "GET", "/api/searches", headers).body)["items"]
    assert [s["id"] for s in searches] == [VISIBLE_SEARCH]
    suppressions = json.loads(call(stack.host, "GET", "/api/suppressions", headers).body)["items"]
    assert [s["id"] for s in suppressions] == [VISIBLE_SUPPRESSION]
    findings = json.loads(call(stack.host, "GET", "/api/governance/findings", headers).body)["items"]
    assert {f["object_id"] for f in findings} == {VISIBLE_OBJECT}
    assert (GOVERNED_VALIDATOR, "accepted") in {(f["validator_id"], f["state"]) for f in findings}
    exceptions = json.loads(call(stack.host, "GET", "/api/governance/exceptions", headers).body)["items"]
    assert [e["id"] for e in exceptions] == [VISIBLE_EXCEPTION]
    governed = call(stack.host, "GET", f"/api/governance/objects/{VISIBLE_OBJECT.upper()}", headers)
    assert governed.status == 200, governed.body
    assert json.loads(governed.body)["object"]["object_id"] == VISIBLE_OBJECT
    assert stack.snapshot() == before


# -- object history: the id is any name an event gives an object -----------------------------------

OBJECT_HISTORY = "/api/objects/{id}/history"
# Object ids are printable names in any script (shared.platform.ids.is_object_id): "non-ASCII" is one.
HOSTILE_OBJECT_SEGMENTS = [(label, segment) for label, segment in HOSTILE_SEGMENTS if label != "non-ASCII"]
# (label, query string as sent on the wire, the field the 400 names)
HOSTILE_HISTORY_QUERIES = [
    ("start not a time", "start=yesterday", "start"),
    ("start in year 1", "start=0001-01-01T00:00:00Z", "start"),
    ("over 366 days", "start=367d", "start"),
    ("start after end", "start=1h&end=2h", "start"),
    ("start twice", "start=1d&start=2d", "start"),
    ("nul start", "start=1d%00", "start"),
    ("no page", "page_size=0", "page_size"),
    ("too big a page", "page_size=201", "page_size"),
    ("forged continuation", "continuation=abc", "continuation"),
    ("an events filter", "actor=user", "actor"),
    ("SQL as a parameter name", "c.tenant_id=x", "c.tenant_id"),
]


@pytest.mark.parametrize("role", list(ROLES))
def test_hostile_object_ids_and_history_queries_are_400_and_storage_is_unchanged(
    stack: Stack, role: str
) -> None:
    before = stack.snapshot()
    headers = ROLES[role]
    for label, segment in HOSTILE_OBJECT_SEGMENTS:
        path = OBJECT_HISTORY.replace("{id}", segment)
        context = f"{role} GET {path[:80]} ({label})"
        answer = call(stack.host, "GET", path, headers)
        assert_problem(answer, 400, context)
        assert json.loads(answer.body)["errors"][0]["field"] == "id", context
        assert_nothing_out_of_reach(answer, context, sent=urllib.parse.unquote(segment))
    user = OBJECT_HISTORY.replace("{id}", "user%40contoso.com")
    for label, query, field in HOSTILE_HISTORY_QUERIES:
        context = f"{role} GET {user}?{query} ({label})"
        answer = call(stack.host, "GET", f"{user}?{query}", headers)
        assert_problem(answer, 400, context)
        assert json.loads(answer.body)["errors"][0]["field"] == field, context
        assert_nothing_out_of_reach(answer, context)
    assert_problem(call(stack.host, "GET", user, {}), 401, "anonymous object history")
    assert stack.snapshot() == before


@pytest.mark.parametrize("role", list(ROLES))
def test_an_object_history_shows_only_what_the_caller_may_see(stack: Stack, role: str) -> None:
    """user@contoso.com acts in the visible event, in the hidden one and in the other tenant's: only
    the visible one is listed. Ids that name hidden or foreign data, or nothing, answer an empty page."""
    before = stack.snapshot()
    headers = ROLES[role]
    user = call(
        stack.host, "GET", OBJECT_HISTORY.replace("{id}", "user%40contoso.com") + "?start=1d", headers
    )
    assert user.status == 200, user.body
    page = json.loads(user.body)
    assert [e["id"] for e in page["items"]] == [VISIBLE_EVENT]
    assert page["hidden"] == {"services": ["Exchange"], "operations": 1}
    assert "raw" not in page["items"][0]
    assert_nothing_out_of_reach(user, f"{role} history of user@contoso.com")
    probes = [
        "user@contoso.com",  # unencoded '@'
        "USER%40contoso.com",  # another case
        urllib.parse.quote(FOREIGN_MARKER),
        urllib.parse.quote(HIDDEN_MARKER),
        urllib.parse.quote(OTHER_TENANT),
        urllib.parse.quote("x' OR 1=1 --"),
        "%C3%A9v%C3%A9nement",
    ]
    for segment in probes:
        answer = call(stack.host, "GET", OBJECT_HISTORY.replace("{id}", segment), headers)
        assert answer.status == 200, (segment, answer.body[:300])
        items = [e["id"] for e in json.loads(answer.body)["items"]]
        assert items == ([VISIBLE_EVENT] if segment == "user@contoso.com" else []), segment
        assert_nothing_out_of_reach(
            answer, f"{role} history of {segment}", sent=urllib.parse.unquote(segment)
        )
    assert stack.snapshot() == before


# -- query strings of the governance routes ----------------------------------------------------------

FINDINGS = "/api/governance/findings"
# (label, path and query string as sent on the wire, the field the 400 names)
HOSTILE_GOVERNANCE_QUERIES = [
    ("unknown validator", f"{FINDINGS}?validator=nope", "validator"),
    ("validator with SQL", f"{FINDINGS}?validator=" + urllib.parse.quote("x' OR 1=1 --"), "validator"),
    ("unknown severity", f"{FINDINGS}?severity=severe", "severity"),
    ("object not a GUID", f"{FINDINGS}?object=not-a-guid", "object"),
    ("object plus newline", f"{FINDINGS}?object={VISIBLE_OBJECT}%0A", "object"),
    ("object invalid UTF-8", f"{FINDINGS}?object=%FF%FE", "object"),
    ("object over-long", f"{FINDINGS}?object=" + "a" * 300, "object"),
    ("unknown state", f"{FINDINGS}?state=closed", "state"),
    ("state twice", f"{FINDINGS}?state=open&state=resolved", "state"),
    ("no page", f"{FINDINGS}?limit=0", "limit"),
    ("too big a page", f"{FINDINGS}?limit=201", "limit"),
    ("exponent page", f"{FINDINGS}?limit=1e3", "limit"),
    ("empty page", f"{FINDINGS}?limit=", "limit"),
    ("5,000-digit page", f"{FINDINGS}?limit=" + "9" * 5000, "limit"),
    ("forged continuation", f"{FINDINGS}?continuation=abc", "continuation"),
    ("over-long continuation", f"{FINDINGS}?continuation=" + "a" * 2001, "continuation"),
    ("the alerts' page size", f"{FINDINGS}?page_size=10", "page_size"),
    ("SQL as a parameter name", f"{FINDINGS}?c.tenant_id=x", "c.tenant_id"),
    ("a filter of the summary", f"{FINDINGS}/summary?state=open", "state"),
    ("exceptions: object not a GUID", "/api/governance/exceptions?object=x", "object"),
    ("exceptions: nul object", "/api/governance/exceptions?object=%00", "object"),
    ("exceptions: a page", "/api/governance/exceptions?limit=1", "limit"),
    ("activities: unknown kind", "/api/governance/activities?kind=sweep", "kind"),
    ("activities: no page", "/api/governance/activities?limit=0", "limit"),
    ("activities: too big a page", "/api/governance/activities?limit=101", "limit"),
    ("activities: an object", f"/api/governance/activities?object={VISIBLE_OBJECT}", "object"),
    ("object detail: a parameter", f"/api/governance/objects/{VISIBLE_OBJECT}?history=all", "history"),
]
# Filters of the grammar that name another tenant's data or nothing: each answers an empty 200.
PROBING_GOVERNANCE_QUERIES = [
    f"{FINDINGS}?object={FOREIGN_OBJECT}",
    f"{FINDINGS}?object={FOREIGN_OBJECT}&state=accepted",
    f"{FINDINGS}?object={NEVER_EVALUATED_OBJECT}&state=resolved",
    f"/api/governance/exceptions?object={FOREIGN_OBJECT}",
]


@pytest.mark.parametrize("role", list(ROLES))
def test_hostile_governance_queries_are_400_and_probes_find_nothing_out_of_reach(
    stack: Stack, role: str
) -> None:
    before = stack.snapshot()
    headers = ROLES[role]
    for label, path, field in HOSTILE_GOVERNANCE_QUERIES:
        context = f"{role} GET {path[:100]} ({label})"
        answer = call(stack.host, "GET", path, headers)
        assert_problem(answer, 400, context)
        assert json.loads(answer.body)["errors"][0]["field"] == field, context
        assert_nothing_out_of_reach(answer, context)
    first = json.loads(call(stack.host, "GET", f"{FINDINGS}?limit=1", headers).body)
    assert first["next"] is not None
    token = urllib.parse.quote(first["next"])
    other = call(stack.host, "GET", f"{FINDINGS}?limit=1&state=open&continuation={token}", headers)
    assert_problem(other, 400, f"{role} a continuation from another query")
    assert json.loads(other.body)["errors"][0]["field"] == "continuation"
    for path in PROBING_GOVERNANCE_QUERIES:
        answer = call(stack.host, "GET", path, headers)
        assert answer.status == 200, (path, answer.body[:300])
        assert json.loads(answer.body)["items"] == [], path
        assert_nothing_out_of_reach(answer, f"{role} GET {path}", sent=FOREIGN_OBJECT)
    for path in ("/api/governance/exceptions?full_seed=true", "/api/governance/discovery?full_seed=true"):
        answer = call(stack.host, "POST", path, {**ROLES["admin"], **JSON_TYPE}, b"{}")
        assert_problem(answer, 400, f"POST {path}")
        assert json.loads(answer.body)["errors"][0]["field"] == "full_seed", path
    for path in (FINDINGS, f"{FINDINGS}/summary", "/api/governance/activities"):
        assert_problem(call(stack.host, "GET", path, {}), 401, f"anonymous GET {path}")
    for path, body in (("/api/governance/exceptions", ACCEPT_RISK), ("/api/governance/discovery", {})):
        answer = call(stack.host, "POST", path, {**ROLES["analyst"], **JSON_TYPE}, json.dumps(body).encode())
        assert_problem(answer, 403, f"analyst POST {path}")
    assert stack.snapshot() == before


# (label, body, the field the 400 names): well-formed JSON that is not an exception to accept.
HOSTILE_EXCEPTION_BODIES: list[tuple[str, dict[str, Any], str]] = [
    ("expired", {**ACCEPT_RISK, "expires_at": utc_iso(NOW - dt.timedelta(days=1))}, "expires_at"),
    ("past 365 days", {**ACCEPT_RISK, "expires_at": utc_iso(NOW + dt.timedelta(days=400))}, "expires_at"),
    ("year 1", {**ACCEPT_RISK, "expires_at": "0001-01-01T00:00:00Z"}, "expires_at"),
    ("year 99999", {**ACCEPT_RISK, "expires_at": "99999-01-01T00:00:00Z"}, "expires_at"),
    ("not a time", {**ACCEPT_RISK, "expires_at": "tomorrow"}, "expires_at"),
    ("a number for a time", {**ACCEPT_RISK, "expires_at": 1e308}, "expires_at"),
    ("unknown validator", {**ACCEPT_RISK, "validator_id": "../../audit"}, "validator_id"),
    ("object not a GUID", {**ACCEPT_RISK, "object_id": "../../audit"}, "object_id"),
    ("object plus newline", {**ACCEPT_RISK, "object_id": VISIBLE_OBJECT + "\n"}, "object_id"),
    ("object a number", {**ACCEPT_RISK, "object_id": 7}, "object_id"),
    ("object a list", {**ACCEPT_RISK, "object_id": [VISIBLE_OBJECT]}, "object_id"),
    ("blank reason", {**ACCEPT_RISK, "reason": "   "}, "reason"),
    ("reason over 1,000", {**ACCEPT_RISK, "reason": "x" * 1001}, "reason"),
    ("reason with a nul", {**ACCEPT_RISK, "reason": "a\u0000b"}, "reason"),
    ("no reason", {k: v for k, v in ACCEPT_RISK.items() if k != "reason"}, "reason"),
    ("an extra field", {**ACCEPT_RISK, "created_by": "someone"}, "created_by"),
    ("the discovery's field", {**ACCEPT_RISK, "full_seed": True}, "full_seed"),
]
HOSTILE_DISCOVERY_BODIES: list[tuple[str, dict[str, Any], str]] = [
    ("a string for a flag", {"full_seed": "true"}, "full_seed"),
    ("a number for a flag", {"full_seed": 1}, "full_seed"),
    ("null for a flag", {"full_seed": None}, "full_seed"),
    ("a tenant", {"tenant_id": OTHER_TENANT}, "tenant_id"),
    ("an activity id", {"activity_id": "act-discovery-" + "0" * 32}, "activity_id"),
]


def test_hostile_governance_bodies_are_400_naming_the_field(stack: Stack) -> None:
    before = stack.snapshot()
    admin = {**ROLES["admin"], **JSON_TYPE}
    for path, table in (
        ("/api/governance/exceptions", HOSTILE_EXCEPTION_BODIES),
        ("/api/governance/discovery", HOSTILE_DISCOVERY_BODIES),
    ):
        for label, document, field in table:
            context = f"POST {path} ({label})"
            answer = call(stack.host, "POST", path, admin, json.dumps(document).encode())
            assert_problem(answer, 400, context)
            assert json.loads(answer.body)["errors"][0]["field"] == field, (context, answer.body[:300])
            assert_nothing_out_of_reach(answer, context)
    foreign = call(
        stack.host,
        "POST",
        "/api/governance/exceptions",
        admin,
        json.dumps({**ACCEPT_RISK, "object_id": FOREIGN_OBJECT}).encode(),
    )
    assert_problem(foreign, 404, "an exception for another tenant's service principal")
    assert stack.snapshot() == before


# -- query strings of the histogram and version routes ---------------------------------------------

HISTOGRAM = "/api/events/histogram"
# (label, query string as sent on the wire, the field the 400 names)
HOSTILE_HISTOGRAM_QUERIES = [
    ("no buckets", "buckets=0", "buckets"),
    ("too many buckets", "buckets=121", "buckets"),
    ("negative buckets", "buckets=-1", "buckets"),
    ("fractional buckets", "buckets=1.5", "buckets"),
    ("exponent buckets", "buckets=1e3", "buckets"),
    ("empty buckets", "buckets=", "buckets"),
    ("word buckets", "buckets=sixty", "buckets"),
    ("5,000-digit buckets", "buckets=" + "9" * 5000, "buckets"),
    ("buckets twice", "buckets=10&buckets=20", "buckets"),
    ("nul buckets", "buckets=1%00", "buckets"),
    ("page size", "page_size=10", "page_size"),
    ("continuation", "continuation=abc", "continuation"),
    ("unknown parameter", "interval=1h", "interval"),
    ("SQL as a parameter name", "c.tenant_id=x", "c.tenant_id"),
    ("start not a time", "start=yesterday", "start"),
    ("start in year 1", "start=0001-01-01T00:00:00Z", "start"),
    ("end past year 9999", "end=99999-01-01T00:00:00Z", "end"),
    ("start invalid UTF-8", "start=%FF%FE", "start"),
    ("start after end", "start=1h&end=2h", "start"),
    ("over 800 days", "start=801d", "start"),
    ("relative out of grammar", "start=999999d", "start"),
    ("unknown service", "service=Nope", "service.0"),
    ("21 services", "&".join(["service=Directory"] * 21), "service"),
    ("unknown result", "result=maybe", "result"),
    ("empty search", "q=", "q"),
    ("over-long search", "q=" + "x" * 201, "q"),
]
# Values of the grammar that try to reach further: each answers 200, counting only what the caller sees.
PROBING_HISTOGRAM_QUERIES = [
    ("SQL in q", "q=" + urllib.parse.quote("') OR 1=1 OR CONTAINS(c.summary, '")),
    ("SQL in actor", "actor=" + urllib.parse.quote('x" OR true --')),
    ("hidden service asked for", "service=Exchange"),
    ("hidden operation asked for", "operation=" + urllib.parse.quote(HIDDEN_OPERATION)),
    ("another tenant's marker", "operation=" + urllib.parse.quote(FOREIGN_MARKER)),
    ("traversal tag", "tag=" + urllib.parse.quote("../../audit")),
    ("control characters", "target=%00%0A%7F"),
    ("the edges of the grammar", "buckets=1&start=800d"),
]


@pytest.mark.parametrize("role", list(ROLES))
def test_hostile_histogram_queries_are_400_and_probes_see_only_what_the_caller_may(
    stack: Stack, role: str
) -> None:
    before = stack.snapshot()
    headers = ROLES[role]
    for label, query, field in HOSTILE_HISTOGRAM_QUERIES:
        context = f"{role} GET {HISTOGRAM}?{query[:80]} ({label})"
        answer = call(stack.host, "GET", f"{HISTOGRAM}?{query}", headers)
        assert_problem(answer, 400, context)
        assert json.loads(answer.body)["errors"][0]["field"] == field, context
        assert_nothing_out_of_reach(answer, context)
    for label, query in PROBING_HISTOGRAM_QUERIES:
        context = f"{role} GET {HISTOGRAM}?{query} ({label})"
        answer = call(stack.host, "GET", f"{HISTOGRAM}?{query}", headers)
        assert answer.status == 200, (context, answer.body[:300])
        document = json.loads(answer.body)
        assert document["total"] == sum(b["count"] for b in document["buckets"]), context
        assert document["total"] in (0, 1), context  # at most the one visible event
        assert_nothing_out_of_reach(answer, context)
    visible = json.loads(call(stack.host, "GET", f"{HISTOGRAM}?start=1d", headers).body)
    assert (visible["total"], visible["bucket_seconds"]) == (1, 3600)  # 24 h in at most 60: hourly
    assert len(visible["buckets"]) in (24, 25)  # 25 unless the range starts on the hour
    for path in (HISTOGRAM, "/api/version"):
        assert_problem(call(stack.host, "GET", path, {}), 401, f"anonymous GET {path}")
    version = call(stack.host, "GET", "/api/version", headers)
    assert version.status == 200, version.body
    assert set(json.loads(version.body)) == {"version", "commit"}
    for query in ("verbose=1", "commit=x", "version=1"):
        assert_problem(call(stack.host, "GET", f"/api/version?{query}", headers), 400, f"version?{query}")
    assert stack.snapshot() == before


# -- bodies -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BodyRoute:
    method: str
    path: str
    cap: int  # bytes: a larger body is a 413


EVENT = urllib.parse.quote(VISIBLE_EVENT, safe="")
BODY_ROUTES = [
    BodyRoute("PATCH", f"/api/events/{EVENT}/tags", 64 * 1024),
    BodyRoute("POST", f"/api/events/{EVENT}/comments", 64 * 1024),
    BodyRoute("POST", "/api/events/tags", 64 * 1024),
    BodyRoute("PATCH", f"/api/alerts/{VISIBLE_ALERT}", 64 * 1024),
    BodyRoute("POST", "/api/alerts/bulk", 64 * 1024),
    BodyRoute("POST", f"/api/alerts/{VISIBLE_ALERT}/suppress", 64 * 1024),
    BodyRoute("DELETE", f"/api/suppressions/{VISIBLE_SUPPRESSION}", 1024),
    BodyRoute("PUT", f"/api/rules/{RULE_ID}", 256 * 1024),
    BodyRoute("POST", "/api/rules/test", 256 * 1024),
    BodyRoute("POST", "/api/probe/run", 1024),
    BodyRoute("POST", "/api/queues/notify/replay", 1024),
    BodyRoute("POST", "/api/searches", 64 * 1024),
    BodyRoute("PUT", f"/api/searches/{VISIBLE_SEARCH}", 64 * 1024),
    BodyRoute("DELETE", f"/api/searches/{VISIBLE_SEARCH}", 64 * 1024),
    BodyRoute("POST", "/api/governance/exceptions", 64 * 1024),
    BodyRoute("DELETE", f"/api/governance/exceptions/{VISIBLE_EXCEPTION}", 1024),
    BodyRoute("POST", "/api/governance/discovery", 1024),
]
JSON_TYPE = {"Content-Type": "application/json"}
FORM_TYPE = {"Content-Type": "application/x-www-form-urlencoded"}  # `curl -d`, urllib, an HTML form
YAML_BOMB = "\n".join(
    [
        'a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]',
        *(
            f"{name}: &{name} [{', '.join([f'*{previous}'] * 9)}]"
            for previous, name in zip("abcdefgh", "bcdefghi", strict=True)
        ),
        "enabled: false",
    ]
).encode()
# (label, body, headers, status when the body fits the route's size cap)
HOSTILE_BODIES: list[tuple[str, bytes, dict[str, str], int]] = [
    ("arrays nested 3,000 deep", b"[" * 3000 + b"]" * 3000, JSON_TYPE, 400),
    ("objects nested 3,000 deep", b'{"a":' * 3000 + b"1" + b"}" * 3000, JSON_TYPE, 400),
    ("a rule nested 3,000 deep", b'{"when": {"not": ' * 1500 + b"1" + b"}}" * 1500, JSON_TYPE, 400),
    ("20 MB", b'{"text": "' + b"x" * (20 * 1024 * 1024) + b'"}', JSON_TYPE, 413),
    # What a page on another site can send with the user's cookies and no CORS preflight (CSRF):
    # text/plain, multipart, form-encoded or no Content-Type at all. Each is refused, even when empty.
    ("text/plain", b'{"text": "hi"}', {"Content-Type": "text/plain"}, 415),
    ("multipart", b'{"text": "hi"}', {"Content-Type": "multipart/form-data; boundary=b"}, 415),
    ("form-encoded JSON", b'{"text": "hi", "add": ["x"]}', FORM_TYPE, 415),
    ("form-encoded fields", b"text=hi&add=x&enabled=false", FORM_TYPE, 415),
    ("an empty form post", b"", FORM_TYPE, 415),
    ("JSON without a Content-Type", b'{"text": "hi", "add": ["x"], "enabled": false}', {}, 415),
    ("xml", b"<text>hi</text>", {"Content-Type": "application/xml"}, 415),
    ("latin-1", b'{"text": "hi"}', {"Content-Type": "application/json; charset=iso-8859-1"}, 415),
    ("invalid UTF-8", b'{"text": "\xff\xfe\xfd"}', JSON_TYPE, 400),
    ("UTF-16", '{"text": "hi"}'.encode("utf-16"), JSON_TYPE, 400),
    ("duplicate keys", b'{"text": "a", "text": "b", "add": ["x"], "add": ["y"]}', JSON_TYPE, 400),
    ("top-level array", b'[{"text": "hi"}]', JSON_TYPE, 400),
    ("top-level string", b'"hi"', JSON_TYPE, 400),
    ("top-level number", b"42", JSON_TYPE, 400),
    ("top-level null", b"null", JSON_TYPE, 400),
    ("NaN", b'{"text": NaN, "last": NaN}', JSON_TYPE, 400),
    ("lone surrogate", b'{"text": "\\udc00"}', JSON_TYPE, 400),
    ("not JSON", b"{text: hi", JSON_TYPE, 400),
    ("YAML bomb as YAML", YAML_BOMB, {"Content-Type": "application/yaml"}, 415),
    ("YAML bomb as text/yaml", YAML_BOMB, {"Content-Type": "text/yaml"}, 415),
    ("YAML bomb without a media type", YAML_BOMB, {}, 415),
    ("YAML bomb labelled JSON", YAML_BOMB, JSON_TYPE, 400),
]


def test_hostile_bodies_on_every_body_route_are_400_413_or_415(stack: Stack) -> None:
    before = stack.snapshot()
    seen: dict[int, int] = {}
    for route in BODY_ROUTES:
        for label, body, content_type, status in HOSTILE_BODIES:
            expected = 413 if status == 400 and len(body) > route.cap else status
            context = f"{route.method} {route.path} ({label})"
            answer = call(stack.host, route.method, route.path, {**ROLES["admin"], **content_type}, body)
            assert_problem(answer, expected, context)
            assert_nothing_out_of_reach(answer, context)
            seen[expected] = seen.get(expected, 0) + 1
    assert set(seen) == {400, 413, 415}
    assert sum(seen.values()) == len(BODY_ROUTES) * len(HOSTILE_BODIES)
    assert stack.snapshot() == before


def test_the_body_routes_accept_well_formed_bodies(stack: Stack) -> None:
    """The control for the table above: the same routes, ids and roles with a well-formed body."""
    admin = {**ROLES["admin"], **JSON_TYPE}
    rule = {
        "title": "Try",
        "description": "Directory changes",
        "severity": "low",
        "when": {"field": "operation", "eq": "Add user"},
    }
    tested = call(
        stack.host, "POST", "/api/rules/test", admin, json.dumps({"rule": rule, "last": 10}).encode()
    )
    assert tested.status == 200, tested.body
    assert json.loads(tested.body)["matched"] == 1
    analyst = {**ROLES["analyst"], "Content-Type": "application/json; charset=utf-8"}
    tagged = call(stack.host, "PATCH", f"/api/events/{EVENT}/tags", analyst, b'{"add": ["ok"]}')
    assert tagged.status == 200, tagged.body
    assert json.loads(tagged.body)["tags"] == ["ok"]
    merge_patch = {**ROLES["analyst"], "Content-Type": "application/merge-patch+json"}
    commented = call(stack.host, "POST", f"/api/events/{EVENT}/comments", merge_patch, b'{"text": "ok"}')
    assert commented.status == 201, commented.body
    patched = call(stack.host, "PATCH", f"/api/alerts/{VISIBLE_ALERT}", admin, b'{"comment": "ok"}')
    assert patched.status == 200, patched.body
    saved = call(stack.host, "POST", "/api/searches", analyst, json.dumps(SEARCH_BODY).encode())
    assert saved.status == 201, saved.body
    path = f"/api/searches/{json.loads(saved.body)['id']}"
    renamed = json.dumps({**SEARCH_BODY, "name": "renamed"}).encode()
    assert_problem(call(stack.host, "PUT", path, analyst, renamed), 428, "PUT without If-Match")
    changed = call(stack.host, "PUT", path, {**analyst, "If-Match": saved.headers["etag"]}, renamed)
    assert changed.status == 200, changed.body
    deleted = call(stack.host, "DELETE", path, {**ROLES["analyst"], "If-Match": changed.headers["etag"]})
    assert deleted.status == 200, deleted.body
    bulk = {"ids": [VISIBLE_ALERT, HIDDEN_ALERT, FOREIGN_ALERT], "comment": "ok"}
    bulked = call(stack.host, "POST", "/api/alerts/bulk", admin, json.dumps(bulk).encode())
    assert bulked.status == 200, bulked.body
    assert [r["status"] for r in json.loads(bulked.body)["results"]] == [200, 404, 404]
    for marker in (FOREIGN_MARKER, HIDDEN_MARKER, HIDDEN_OPERATION, OTHER_TENANT):  # only the ids sent
        assert marker not in bulked.body.decode(), marker
    suppress = json.dumps(SUPPRESS).encode()
    replaced = call(stack.host, "POST", f"/api/alerts/{VISIBLE_ALERT}/suppress", admin, suppress)
    assert replaced.status == 201, replaced.body
    assert json.loads(replaced.body)["id"] == VISIBLE_SUPPRESSION
    removal = f"/api/suppressions/{VISIBLE_SUPPRESSION}"
    stale = call(stack.host, "DELETE", removal, {**ROLES["admin"], "If-Match": '"stale"'})
    assert_problem(stale, 412, "DELETE with a stale If-Match")
    fresh = {**ROLES["admin"], "If-Match": replaced.headers["etag"]}
    removed = call(stack.host, "DELETE", removal, fresh)
    assert (removed.status, removed.body) == (204, b"")
    assert_problem(call(stack.host, "DELETE", removal, ROLES["admin"]), 404, "DELETE again")
    risk = json.dumps(ACCEPT_RISK).encode()
    accepted = call(stack.host, "POST", "/api/governance/exceptions", admin, risk)
    assert accepted.status == 200, accepted.body  # the seeded exception, replaced
    assert json.loads(accepted.body)["id"] == VISIBLE_EXCEPTION
    revoke = f"/api/governance/exceptions/{VISIBLE_EXCEPTION}"
    stale = call(stack.host, "DELETE", revoke, {**ROLES["admin"], "If-Match": '"stale"'})
    assert_problem(stale, 412, "DELETE an exception with a stale If-Match")
    revoked = call(stack.host, "DELETE", revoke, {**ROLES["admin"], "If-Match": accepted.headers["etag"]})
    assert (revoked.status, revoked.body) == (204, b"")
    assert_problem(call(stack.host, "DELETE", revoke, ROLES["admin"]), 404, "DELETE an exception again")
    restored = call(stack.host, "POST", "/api/governance/exceptions", admin, risk)
    assert restored.status == 201, restored.body
    for sent, full_seed in ((b"", False), (b'{"full_seed": true}', True)):
        queued = call(
            stack.host, "POST", "/api/governance/discovery", admin if sent else ROLES["admin"], sent
        )
        assert queued.status == 202, queued.body
        assert json.loads(queued.body)["full_seed"] is full_seed


def test_a_yaml_bomb_in_the_rules_blob_is_refused_without_expanding_it(stack: Stack) -> None:
    """The override blob is YAML: a bomb planted there makes a rule edit a 409, not a hang."""
    rules = stack.clients.blob_service.get_container_client(BlobContainers.CONFIG).get_blob_client(RULES_BLOB)
    saved = rules.download_blob().readall() if rules.exists() else None
    bomb = YAML_BOMB.replace(b"enabled: false", b"rules: [*i, *i, *i]")
    rules.upload_blob(bomb, overwrite=True)
    try:
        etag = rules.get_blob_properties().etag
        answer = call(
            stack.host, "PUT", f"/api/rules/{RULE_ID}", {**ROLES["admin"], **JSON_TYPE}, b'{"enabled": false}'
        )
        assert_problem(answer, 409, "PUT over a YAML bomb")
        assert json.loads(answer.body)["type"].endswith("/rules-file-unreadable")
        assert rules.get_blob_properties().etag == etag
    finally:
        if saved is None:
            rules.delete_blob()
        else:
            rules.upload_blob(saved, overwrite=True)


# -- rules as YAML, and If-Match ----------------------------------------------------------------------

# (label, the `yaml` text, the line the problem names or None). Each is a 400 naming `yaml`.
HOSTILE_RULE_YAML: list[tuple[str, Any, int | None]] = [
    ("a YAML bomb", YAML_BOMB.decode(), None),
    ("flow sequences nested 50,000 deep", "[" * 50_000, 1),
    ("mappings nested 200 deep", "a:\n" + "".join(" " * i + "b:\n" for i in range(1, 200)), None),
    ("a recursive alias", "a: &a [*a]\n", None),
    ("an undefined alias", "when: *nothing\n", 1),
    ("a Python object tag", "title: !!python/object/apply:os.system [id]\n", 1),
    ("a date that is no date", "title: 2026-02-31\n", None),
    ("a 5,000-digit integer", "suppress_minutes: " + "9" * 5000 + "\n", None),
    ("NaN", "threshold: {count: 2, window_minutes: .nan}\n", 1),
    ("a list, not a rule", "- enabled: false\n", 1),
    ("a NUL character", "title: \x00\n", None),
    ("an unhashable key", "? [a]\n: b\n", 1),
    ("over 64K characters", "title: " + "x" * (64 * 1024), None),
    ("not a string", 42, None),
]
# (label, If-Match as sent, the status): malformed is a 400, a version that is not the rule's a 412.
HOSTILE_IF_MATCH = [
    ("unquoted", "abc", 400),
    ("unterminated", '"abc', 400),
    ("a quote inside", '"a"b"', 400),
    ("two tags without a comma", '"a" "b"', 400),
    ("empty", "", 400),
    ("a lone comma", ",", 400),
    ("non-ASCII", '"\u00e9"', 400),
    ("a control character", '"a\x01"', 400),
    ("over-long", '"' + "a" * 2000 + '"', 400),
    ("star in a list", '*, "a"', 400),
    ("a weak tag", 'W/"0123456789abcdef0123456789abcdef"', 412),
    ("a stale version", '"0123456789abcdef0123456789abcdef"', 412),
]


def test_hostile_rule_yaml_and_if_match_are_refused_and_storage_is_unchanged(stack: Stack) -> None:
    before = stack.snapshot()
    admin = {**ROLES["admin"], **JSON_TYPE}
    for label, text, line in HOSTILE_RULE_YAML:
        for method, path, body in (
            ("PUT", f"/api/rules/{RULE_ID}", {"yaml": text}),
            ("POST", "/api/rules/test", {"yaml": text, "last": 5}),
        ):
            context = f"{method} {path} ({label})"
            answer = call(stack.host, method, path, admin, json.dumps(body).encode())
            assert_problem(answer, 400, context)
            errors = json.loads(answer.body)["errors"]
            assert errors[0]["field"] == "yaml", (context, errors)
            if line is not None:
                assert errors[0]["line"] == line, (context, errors)
            assert_nothing_out_of_reach(answer, context)
    for label, value, status in HOSTILE_IF_MATCH:
        context = f"PUT If-Match {label}"
        headers = {**admin, "If-Match": value}
        answer = call(stack.host, "PUT", f"/api/rules/{RULE_ID}", headers, b'{"enabled": false}')
        assert_problem(answer, status, context)
        expected = "/invalid-input" if status == 400 else "/rule-changed"
        assert json.loads(answer.body)["type"].endswith(expected), (context, answer.body[:300])
    both = {"yaml": "enabled: false\n", "enabled": False}
    answer = call(stack.host, "PUT", f"/api/rules/{RULE_ID}", admin, json.dumps(both).encode())
    assert_problem(answer, 400, "yaml and fields")
    assert stack.snapshot() == before


def test_a_rule_read_then_saved_with_its_version_and_as_yaml(stack: Stack) -> None:
    """The control for the table above: the YAML of a rule, tested and saved back under its version,
    then under the old version again (a 412); the rules blob is restored afterwards."""
    rules = stack.clients.blob_service.get_container_client(BlobContainers.CONFIG).get_blob_client(RULES_BLOB)
    saved = rules.download_blob().readall() if rules.exists() else None
    admin = {**ROLES["admin"], **JSON_TYPE}
    try:
        read = call(stack.host, "GET", f"/api/rules/{RULE_ID}", ROLES["reader"])
        assert read.status == 200, read.body
        rule = json.loads(read.body)
        tested = call(
            stack.host, "POST", "/api/rules/test", admin, json.dumps({"yaml": rule["yaml"]}).encode()
        )
        assert tested.status == 200, tested.body
        text = rule["yaml"].replace("enabled: true", "enabled: false")
        headers = {**admin, "If-Match": read.headers["etag"]}
        put = call(stack.host, "PUT", f"/api/rules/{RULE_ID}", headers, json.dumps({"yaml": text}).encode())
        assert put.status == 200, put.body
        assert json.loads(put.body)["enabled"] is False
        assert put.headers["etag"] != read.headers["etag"]
        again = call(stack.host, "PUT", f"/api/rules/{RULE_ID}", headers, json.dumps({"yaml": text}).encode())
        assert_problem(again, 412, "PUT with the old version")
    finally:
        if saved is None:
            rules.delete_blob()
        else:
            rules.upload_blob(saved, overwrite=True)


# -- activity datasets (issue 19): POST /api/refresh, GET /api/datasets/{id} ---------------------------

REFRESH = "/api/refresh"
# (label, query string as sent on the wire, the field the 400 names)
HOSTILE_REFRESH_QUERIES = [
    ("upper case", "source=Signin_failures", "source"),
    ("a leading digit", "source=1signin", "source"),
    ("a hyphen", "source=signin-failures", "source"),
    ("over-long", "source=" + "a" * 64, "source"),
    ("empty", "source=", "source"),
    ("a trailing newline", "source=signin_failures%0A", "source"),
    ("a NUL", "source=signin%00failures", "source"),
    ("traversal", "source=..%2Fsignin_failures", "source"),
    ("non-ASCII", "source=signin_f%C3%A4ilures", "source"),
    ("invalid UTF-8", "source=%FF%FE", "source"),
    ("given twice", "source=signin_failures&source=threat_intel_indicators", "source"),
    ("an unknown parameter", "sources=signin_failures", "sources"),
    ("a 10 KB value", "source=" + "a" * 10_000, "source"),
]
# (label, body, headers, status): POST /api/refresh takes no body, or `{}`.
HOSTILE_REFRESH_BODIES = [
    ("a field", b'{"source": "signin_failures"}', JSON_TYPE, 400),
    ("a list", b"[]", JSON_TYPE, 400),
    ("not JSON", b"{", JSON_TYPE, 400),
    ("JSON null", b"null", JSON_TYPE, 400),
    ("a form", b"source=signin_failures", FORM_TYPE, 415),
    ("text", b"refresh", {"Content-Type": "text/plain"}, 415),
    ("no Content-Type", b"{}", {}, 415),
    ("JSON in another charset", b"{}", {"Content-Type": "application/json; charset=latin-1"}, 415),
    ("over 64 KB", b'{"a": "' + b"x" * (70 * 1024) + b'"}', JSON_TYPE, 413),
]
# (label, If-None-Match as sent): malformed entity tags are a 400 naming the header.
HOSTILE_IF_NONE_MATCH = [
    ("unquoted", "abc"),
    ("unterminated", '"abc'),
    ("two tags without a comma", '"a" "b"'),
    ("a lone comma", ","),
    ("a trailing comma", '"a",'),
    ("a control character", '"a\x01"'),
    ("over-long", '"' + "a" * 3000 + '"'),
]


@pytest.mark.parametrize("role", list(ROLES))
def test_hostile_refresh_queries_and_bodies_are_refused_before_any_refresh(stack: Stack, role: str) -> None:
    """Each is refused with its 4xx problem naming the field or header, with an X-Correlation-ID, and no
    refresh runs (no dataset metadata appears in the locks container, no rate-limit row is written)."""
    locks = stack.clients.blob_service.get_container_client(BlobContainers.LOCKS)
    limits = stack.clients.table(Tables.REFRESH_RATE_LIMITS)
    before = (sorted(b.name for b in locks.list_blobs()), len(list(limits.list_entities())))
    headers = ROLES[role]
    calls = 0
    for label, query, field in HOSTILE_REFRESH_QUERIES:
        answer = call(stack.host, "POST", f"{REFRESH}?{query}", headers)
        context = f"{role} POST {REFRESH}?{query[:60]} ({label})"
        assert_problem(answer, 400, context)
        assert json.loads(answer.body)["errors"][0]["field"] == field, context
        assert answer.headers.get("x-correlation-id"), context
        calls += 1
    for label, body, content_type, status in HOSTILE_REFRESH_BODIES:
        answer = call(stack.host, "POST", REFRESH, {**headers, **content_type}, body)
        context = f"{role} POST {REFRESH} body ({label})"
        assert_problem(answer, status, context)
        assert answer.headers.get("x-correlation-id"), context
        calls += 1
    # Hostile correlation ids are never echoed: a new one replaces them.
    for hostile in ("a" * 101, "x;y=1", "-dash-first", "<script>"):
        answer = call(stack.host, "POST", f"{REFRESH}?source=a-b", {**headers, "X-Correlation-ID": hostile})
        assert_problem(answer, 400, f"correlation id {hostile[:20]}")
        assert answer.headers["x-correlation-id"] != hostile
        assert uuid.UUID(answer.headers["x-correlation-id"])
        calls += 1
    valid = call(stack.host, "POST", f"{REFRESH}?source=a-b", {**headers, "X-Correlation-ID": "req-1:a.b_c"})
    assert valid.headers["x-correlation-id"] == "req-1:a.b_c"
    unknown = call(stack.host, "POST", f"{REFRESH}?source=no_such_source", headers)
    assert_problem(unknown, 404, "an unknown source")
    assert calls == len(HOSTILE_REFRESH_QUERIES) + len(HOSTILE_REFRESH_BODIES) + 4
    assert (sorted(b.name for b in locks.list_blobs()), len(list(limits.list_entities()))) == before


def test_hostile_conditional_headers_on_a_published_dataset(stack: Stack) -> None:
    """A dataset published for a shipped source: malformed If-None-Match is a 400 naming it, an invalid
    If-Modified-Since is ignored (200), hostile ids are 400 (the id table above) and the file is intact."""
    from shared.datasets.sources import load_default_sources
    from shared.datasets.store import DatasetStore

    source = load_default_sources().get("signin_failures_events")
    assert source is not None
    store = DatasetStore(
        stack.clients.blob_service.get_container_client(BlobContainers.DATASETS),
        stack.clients.blob_service.get_container_client(BlobContainers.LOCKS),
    )
    data = ("\t".join(source.columns) + "\n").encode()
    version = store.publish(source, data)
    path = f"/api/datasets/{source.id}"
    reader = ROLES["reader"]
    try:
        plain = call(stack.host, "GET", path, reader)
        assert (plain.status, plain.body) == (200, data)
        assert plain.headers["etag"] == version.etag
        for label, value in HOSTILE_IF_NONE_MATCH:
            answer = call(stack.host, "GET", path, {**reader, "If-None-Match": value})
            assert_problem(answer, 400, f"If-None-Match {label}")
            assert json.loads(answer.body)["errors"][0]["field"] == "If-None-Match", label
        for value in (
            "yesterday",
            "Mon, 32 Dec 2026 10:00:00 GMT",
            "9" * 90,
            "Thu, 01 Jan 1970 00:00:00 GMT",
        ):
            answer = call(stack.host, "GET", path, {**reader, "If-Modified-Since": value})
            assert (answer.status, answer.body) == (200, data), value
        matched = call(stack.host, "GET", path, {**reader, "If-None-Match": version.etag})
        assert (matched.status, matched.body) == (304, b"")
        assert store.read(source) == (data, version)
    finally:
        stack.clients.blob_service.get_container_client(BlobContainers.DATASETS).delete_blob(
            source.output_filename
        )
