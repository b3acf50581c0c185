"""The events routes against real Azurite and cosmosdb-server: raw records, facets, export, tags,
comments, bulk tagging, the privacy policy, the audit trail, and a re-ingest that keeps annotations."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from azure.cosmos import PartitionKey

from shared.api.audit import AuditLog
from shared.api.auth import Authenticator
from shared.api.events_api import CSV_COLUMNS, MAX_TAGS_PER_EVENT, EventActions, csv_row
from shared.api.events_query import EventSearch, SensitivityPolicy, public_event
from shared.api.paging import ContinuationSigner
from shared.api.responses import ApiGuard, ApiResponse
from shared.ingestion.archive import RawArchive, raw_blob_name
from shared.ingestion.event_store import EventStore
from shared.ingestion.events import Event, RawRef, partition_key
from shared.ingestion.normalize import normalize_record
from shared.platform.clients import get_clients
from shared.platform.clock import utc_iso
from shared.platform.resources import CosmosContainers
from tests.support.audit_records import delete_user_record, role_assignment_record
from tests.support.clock import ManualClock
from tests.support.principals import swa_principal

NOW = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)
POLICY = SensitivityPolicy(services=["Exchange"], operations=["Delete user"])
READER = {"x-ms-client-principal": swa_principal(["reader"])}
ANALYST = {"x-ms-client-principal": swa_principal(["analyst"], user="ana@contoso.com")}
PRIVACY = {"x-ms-client-principal": swa_principal(["analyst", "privacy"], user="pia@contoso.com")}
JSON = {"Content-Type": "application/json"}  # a body route answers 415 to anything not labelled JSON
EXPORT = "https://aoc.example/api/events/export"


def _graph_event(tenant: str, record: dict[str, Any], blob: str, line: int) -> dict[str, Any]:
    return normalize_record(
        "entra_audit",
        record,
        tenant_id=tenant,
        ingested_at=utc_iso(NOW),
        raw_ref=RawRef(blob=blob, line=line),
    )


def _exchange_event(tenant: str, moment: dt.datetime, correlation: str, **fields: Any) -> dict[str, Any]:
    timestamp = utc_iso(moment)
    document = {
        "id": f"o365_management:{uuid.uuid4().hex}",
        "pk": partition_key(tenant, timestamp),
        "tenant_id": tenant,
        "source": "o365_management",
        "service": "Exchange",
        "category": "ExchangeAdmin",
        "operation": "Set-Mailbox",
        "operation_type": "update",
        "result": "success",
        "actor": {"type": "user", "id": "a1", "upn": "eve@contoso.com", "display": "Eve", "ip": None},
        "targets": [{"type": "Mailbox", "id": "m1", "display": "ceo@contoso.com", "modified_properties": []}],
        "timestamp": timestamp,
        "ingested_at": timestamp,
        "correlation_id": correlation,
        "summary": "Eve changed a mailbox",
        "tags": [],
        "raw_ref": None,
        **fields,
    }
    Event.model_validate(document)
    return document


class World:
    """One tenant in its own events container (cosmosdb-server scans a whole container per query)."""

    def __init__(self) -> None:
        clients = get_clients()
        self.tenant = f"tenant-{uuid.uuid4().hex[:10]}"
        self.container_name = f"events-api-{uuid.uuid4().hex[:8]}"
        spec = CosmosContainers.EVENTS
        self.events = clients.cosmos_database.create_container(
            id=self.container_name,
            partition_key=PartitionKey(path=spec.partition_key_path),
            indexing_policy=spec.indexing_policy(),
        )
        self.store = EventStore(self.events, clients.cosmos_container(CosmosContainers.FACETS.name), 8)
        self.archive = RawArchive(clients.blob_service)
        self.audit_container = clients.cosmos_container(CosmosContainers.AUDIT.name)
        self.clock = ManualClock(NOW)
        self.guard = ApiGuard(Authenticator(verifier=None, swa_enabled=True, key_roles=frozenset()), POLICY)
        self.search = EventSearch(self.events, ContinuationSigner(b"x" * 32), self.tenant)
        self.actions = self.make_actions()

        # The corpus: Graph records archived on one raw page and normalized with their raw_ref (40 days,
        # so October and November partitions and some events outside the default 30-day window), plus
        # Exchange events (a sensitive service) without one.
        self.blob = raw_blob_name("entra_audit", NOW, f"run-{uuid.uuid4().hex[:6]}", 1)
        self.records: list[dict[str, Any]] = []
        for i in range(24):
            moment = NOW - dt.timedelta(hours=40 * i + 1)
            if i % 5 == 0:
                record = delete_user_record(moment, "zoë@contoso.com", f"gone{i}@contoso.com")
            else:
                actor = "ana@contoso.com" if i % 2 else "bob@contoso.com"
                record = role_assignment_record(moment, actor, f"member{i}@contoso.com")
            self.records.append(record)
        self.archive.write_page(self.blob, self.records)
        self.graph = [_graph_event(self.tenant, r, self.blob, n) for n, r in enumerate(self.records, start=1)]
        self.exchange = [
            _exchange_event(self.tenant, NOW - dt.timedelta(hours=7 * i + 3), "exchange") for i in range(5)
        ]
        self.exchange[0]["summary"] = '=HYPERLINK("http://evil.example","click")'
        self.exchange[1]["actor"]["display"] = "+Eve"
        self.write(self.graph + self.exchange)

    def make_actions(self, export_max: int = 10_000, bulk_max: int = 1_000) -> EventActions:
        audit = AuditLog(self.audit_container, self.tenant, self.clock)
        return EventActions(
            self.guard,
            self.events,
            self.search,
            self.store,
            self.archive,
            audit,
            self.tenant,
            self.clock,
            export_max=export_max,
            bulk_max=bulk_max,
            time_counts=self.store.time_counts,
            retention_days=365,
        )

    def write(self, documents: list[dict[str, Any]]) -> None:
        new = self.store.write_events(documents)
        self.store.update_facets(self.tenant, new, [], utc_iso(NOW), shard_key=uuid.uuid4().hex)

    def stored(self, event: dict[str, Any]) -> dict[str, Any]:
        return dict(self.events.read_item(event["id"], partition_key=event["pk"]))

    def all_stored(self) -> list[dict[str, Any]]:
        return list(
            self.events.query_items(
                "SELECT * FROM c WHERE c.tenant_id = @t",
                parameters=[{"name": "@t", "value": self.tenant}],
                enable_cross_partition_query=True,
            )
        )

    def in_window(self, hide: SensitivityPolicy | None) -> list[dict[str, Any]]:
        """Stored events GET /events would list by default (last 30 days), newest first."""
        lower, upper = utc_iso(NOW - dt.timedelta(days=30)), utc_iso(NOW)
        kept = [
            e
            for e in self.all_stored()
            if lower <= e["timestamp"] < upper and (hide is None or not hide.hides(e))
        ]
        return [public_event(e) for e in sorted(kept, key=lambda e: (e["timestamp"], e["id"]), reverse=True)]

    def audit(self, action: str, target_id: str) -> list[dict[str, Any]]:
        return list(
            self.audit_container.query_items(
                "SELECT * FROM c WHERE c.pk = @pk AND c.action = @a AND c.target_id = @t",
                parameters=[
                    {"name": "@pk", "value": self.tenant},
                    {"name": "@a", "value": action},
                    {"name": "@t", "value": target_id},
                ],
                partition_key=self.tenant,
            )
        )

    def audits(self, action: str) -> list[dict[str, Any]]:
        return list(
            self.audit_container.query_items(
                "SELECT * FROM c WHERE c.pk = @pk AND c.action = @a",
                parameters=[{"name": "@pk", "value": self.tenant}, {"name": "@a", "value": action}],
                partition_key=self.tenant,
            )
        )

    def fresh(self, count: int, sensitive: int = 0) -> tuple[str, list[dict[str, Any]]]:
        """`count` new Graph events sharing a new correlation id; the first `sensitive` are hidden ones."""
        correlation = f"corr-{uuid.uuid4().hex[:8]}"
        documents = []
        for i in range(count):
            moment = NOW - dt.timedelta(minutes=10 * i + 5)
            if i < sensitive:
                record = delete_user_record(moment, "ana@contoso.com", f"x{i}@contoso.com")
            else:
                record = role_assignment_record(moment, "ana@contoso.com", f"y{i}@contoso.com")
            record["correlationId"] = correlation
            documents.append(_graph_event(self.tenant, record, self.blob, 1))
        self.write(documents)
        return correlation, documents


@pytest.fixture(scope="module")
def world(app_environment: dict[str, str]) -> Iterator[World]:
    world = World()
    yield world
    world.store.close()
    get_clients().cosmos_database.delete_container(world.container_name)


def _json(response: ApiResponse) -> Any:
    return json.loads(response.body)


def _visible_graph(world: World) -> dict[str, Any]:
    return next(e for e in world.graph if e["operation"] != "Delete user")


def _hidden_graph(world: World) -> dict[str, Any]:
    return next(e for e in world.graph if e["operation"] == "Delete user")


# -- raw ----------------------------------------------------------------------------------------------


def test_raw_returns_the_exact_archived_record(world: World) -> None:
    for line, (record, event) in enumerate(zip(world.records, world.graph, strict=True), start=1):
        if event["operation"] == "Delete user":
            continue
        response = world.actions.raw(event["id"], READER, f"/api/events/{event['id']}/raw")
        assert response.status == 200, response.body
        assert response.media_type == "application/json"
        assert _json(response) == record
        assert response.body == json.dumps(record, ensure_ascii=False, separators=(",", ":"))
        assert event["raw_ref"] == {"blob": world.blob, "line": line}


def test_raw_is_a_404_when_missing_hidden_or_without_an_archived_record(world: World) -> None:
    hidden = _hidden_graph(world)
    assert world.actions.raw(hidden["id"], READER, "/p").status == 404
    assert _json(world.actions.raw(hidden["id"], PRIVACY, "/p")) == world.records[world.graph.index(hidden)]
    assert world.actions.raw("entra_audit:nope", READER, "/p").status == 404
    exchange = world.exchange[2]
    response = world.actions.raw(exchange["id"], PRIVACY, "/api/events/x/raw")
    assert response.status == 404
    assert response.media_type == "application/problem+json"
    assert _json(response)["instance"] == "/api/events/x/raw"
    lost = _exchange_event(world.tenant, NOW - dt.timedelta(hours=1), "lost")
    lost["raw_ref"] = {"blob": "entra_audit/2026/11/20/12/never-written.jsonl.gz", "line": 1}
    world.write([lost])
    assert world.actions.raw(lost["id"], PRIVACY, "/p").status == 404
    assert world.actions.raw(hidden["id"], {}, "/p").status == 401


# -- facets -------------------------------------------------------------------------------------------


def test_facets_count_values_most_frequent_first_and_respect_privacy(world: World) -> None:
    deletes = sum(e["operation"] == "Delete user" for e in world.graph)
    assigns = len(world.graph) - deletes
    everything = _json(world.actions.facets("https://h/api/events/facets", PRIVACY, "/p"))["facets"]
    assert everything["service"][:2] == [
        {"value": "Directory", "count": sum(e["service"] == "Directory" for e in world.all_stored())},
        {"value": "Exchange", "count": sum(e["service"] == "Exchange" for e in world.all_stored())},
    ]
    operations = {v["value"]: v["count"] for v in everything["operation"]}
    assert operations["Delete user"] >= deletes
    assert operations["Add member to role"] >= assigns
    counts = [v["count"] for v in everything["actor"]]
    assert counts == sorted(counts, reverse=True)

    reader = _json(world.actions.facets("https://h/api/events/facets", READER, "/p"))["facets"]
    assert "Exchange" not in {v["value"] for v in reader["service"]}
    assert "Delete user" not in {v["value"] for v in reader["operation"]}
    assert "Set-Mailbox" in {v["value"] for v in reader["operation"]}  # only the service is sensitive

    top = _json(world.actions.facets("https://h/api/events/facets?top=1", PRIVACY, "/p"))["facets"]
    assert {facet: len(values) for facet, values in top.items()} == {
        "service": 1,
        "operation": 1,
        "result": 1,
        "actor": 1,
        "source": 1,
    }
    assert top["service"] == everything["service"][:1]
    assert world.actions.facets("https://h/api/events/facets?top=501", READER, "/p").status == 400
    assert world.actions.facets("https://h/api/events/facets?service=x", READER, "/p").status == 400


# -- export -------------------------------------------------------------------------------------------


def test_jsonl_export_is_every_visible_event_in_the_window_newest_first(world: World) -> None:
    response = world.actions.export(EXPORT, READER, "/api/events/export")
    assert response.status == 200, response.body
    assert response.media_type == "application/x-ndjson"
    assert isinstance(response.body, str)
    exported = [json.loads(line) for line in response.body.splitlines()]
    expected = world.in_window(POLICY)
    assert exported == expected
    assert not any(e["service"] == "Exchange" or e["operation"] == "Delete user" for e in exported)
    assert all("raw" not in e and "_etag" not in e for e in exported)
    assert response.headers["X-AOC-Export-Count"] == str(len(expected))
    assert response.headers["X-AOC-Export-Truncated"] == "false"
    assert response.headers["Content-Disposition"] == 'attachment; filename="events-20261120T120000Z.jsonl"'
    assert len({e["pk"] for e in exported}) == 2  # the window spans October and November

    everything = world.actions.export(EXPORT + "?format=jsonl", PRIVACY, "/p")
    assert [json.loads(line) for line in str(everything.body).splitlines()] == world.in_window(None)


def test_csv_export_has_the_columns_and_neutralizes_formulas(world: World) -> None:
    response = world.actions.export(EXPORT + "?format=csv&service=Exchange", PRIVACY, "/p")
    assert response.status == 200, response.body
    assert response.media_type == "text/csv; charset=utf-8"
    assert response.headers["Content-Disposition"] == 'attachment; filename="events-20261120T120000Z.csv"'
    rows = list(csv.reader(io.StringIO(str(response.body))))
    assert rows[0] == list(CSV_COLUMNS)
    expected = [e for e in world.in_window(None) if e["service"] == "Exchange"]
    assert len(expected) >= len(world.exchange)
    assert rows[1:] == [csv_row(e) for e in expected]
    by_id = {row[0]: dict(zip(CSV_COLUMNS, row, strict=True)) for row in rows[1:]}
    assert by_id[world.exchange[0]["id"]]["summary"] == '\'=HYPERLINK("http://evil.example","click")'
    assert by_id[world.exchange[1]["id"]]["actor_display"] == "'+Eve"
    assert by_id[world.exchange[2]["id"]]["targets"] == "ceo@contoso.com"

    hidden = world.actions.export(EXPORT + "?format=csv&service=Exchange", READER, "/p")
    assert list(csv.reader(io.StringIO(str(hidden.body)))) == [list(CSV_COLUMNS)]
    assert hidden.headers["X-AOC-Export-Count"] == "0"


def test_export_stops_at_the_cap_and_says_so(world: World) -> None:
    visible = world.in_window(POLICY)
    capped = world.make_actions(export_max=3).export(EXPORT, READER, "/p")
    assert [json.loads(line) for line in str(capped.body).splitlines()] == visible[:3]
    assert capped.headers["X-AOC-Export-Count"] == "3"
    assert capped.headers["X-AOC-Export-Truncated"] == "true"
    assert capped.headers["X-AOC-Export-Cap"] == "3"
    exact = world.make_actions(export_max=len(visible)).export(EXPORT, READER, "/p")
    assert exact.headers["X-AOC-Export-Count"] == str(len(visible))
    assert exact.headers["X-AOC-Export-Truncated"] == "false"


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("?page_size=10", "page_size"),
        ("?continuation=abc", "continuation"),
        ("?format=xlsx", "format"),
        ("?colour=red", "colour"),
        ("?start=yesterday", "start"),
        ("?end=0001-01-02T00:00:00Z", "end"),
        ("?start=0001-01-01T00:00:00%2B14:00", "start"),
    ],
)
def test_export_refuses_bad_parameters(world: World, query: str, field: str) -> None:
    response = world.actions.export(EXPORT + query, READER, "/p")
    assert response.status == 400
    assert _json(response)["errors"][0]["field"] == field


def test_export_with_more_than_one_search_page(world: World) -> None:
    correlation, documents = world.fresh(230)
    response = world.actions.export(f"{EXPORT}?correlation_id={correlation}", READER, "/p")
    ids = [json.loads(line)["id"] for line in str(response.body).splitlines()]
    assert ids == [d["id"] for d in sorted(documents, key=lambda d: (d["timestamp"], d["id"]), reverse=True)]
    assert response.headers["X-AOC-Export-Count"] == "230"


# -- tags ---------------------------------------------------------------------------------------------


def test_tags_are_added_and_removed_under_audit(world: World) -> None:
    _, [event] = world.fresh(1)
    path = f"/api/events/{event['id']}/tags"
    added = world.actions.patch_tags(
        event["id"], b'{"add": ["case:42", "reviewed", "case:42"]}', ANALYST | JSON, path
    )
    assert added.status == 200, added.body
    assert _json(added)["tags"] == ["case:42", "reviewed"]
    assert "_etag" not in _json(added)
    assert world.stored(event)["tags"] == ["case:42", "reviewed"]

    world.clock.advance(1)
    removed = world.actions.patch_tags(
        event["id"], b'{"add": ["triaged"], "remove": ["case:42"]}', ANALYST | JSON, path
    )
    assert _json(removed)["tags"] == ["reviewed", "triaged"]

    records = sorted(world.audit("event.tags", event["id"]), key=lambda r: r["at"])
    assert [(r["before"], r["after"]) for r in records] == [
        ([], ["case:42", "reviewed"]),
        (["case:42", "reviewed"], ["reviewed", "triaged"]),
    ]
    assert {(r["actor"], r["auth"], r["target_type"]) for r in records} == {
        ("ana@contoso.com", "swa", "event")
    }

    # nothing to change: no write, no audit record
    again = world.actions.patch_tags(event["id"], b'{"remove": ["not-there"]}', ANALYST | JSON, path)
    assert _json(again)["tags"] == ["reviewed", "triaged"]
    assert len(world.audit("event.tags", event["id"])) == 2


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b'{"add": ["-bad"]}', "add.0"),
        (b'{"add": ["ok"], "remove": ["ok"]}', "body"),
        (b"{}", "body"),
        (b'{"add": ["ok"], "colour": "red"}', "colour"),
        (b"not json", "body"),
        (b'{"add": ["' + b"x" * 65 + b'"]}', "add.0"),
    ],
)
def test_bad_tag_requests_are_a_400(world: World, body: bytes, field: str) -> None:
    event = _visible_graph(world)
    response = world.actions.patch_tags(event["id"], body, ANALYST | JSON, "/p")
    assert response.status == 400, response.body
    assert _json(response)["errors"][0]["field"] == field


def test_an_event_holds_at_most_50_tags(world: World) -> None:
    _, [event] = world.fresh(1)
    for start in range(0, MAX_TAGS_PER_EVENT, 20):
        tags = [f"t{i}" for i in range(start, min(start + 20, MAX_TAGS_PER_EVENT))]
        assert (
            world.actions.patch_tags(
                event["id"], json.dumps({"add": tags}).encode(), ANALYST | JSON, "/p"
            ).status
            == 200
        )
    full = world.actions.patch_tags(event["id"], b'{"add": ["one-more"]}', ANALYST | JSON, "/p")
    assert full.status == 400
    assert _json(full)["errors"][0]["field"] == "add"
    assert len(world.stored(event)["tags"]) == MAX_TAGS_PER_EVENT
    swap = world.actions.patch_tags(
        event["id"], b'{"add": ["one-more"], "remove": ["t0"]}', ANALYST | JSON, "/p"
    )
    assert swap.status == 200


def test_tag_writes_need_the_analyst_role_and_a_visible_event(world: World) -> None:
    event = _visible_graph(world)
    forbidden = world.actions.patch_tags(event["id"], b'{"add": ["x"]}', READER | JSON, "/p")
    assert forbidden.status == 403
    for unlabelled in ({}, {"Content-Type": "application/x-www-form-urlencoded"}):
        assert (
            world.actions.patch_tags(event["id"], b'{"add": ["x"]}', ANALYST | unlabelled, "/p").status == 415
        )
    assert "x" not in world.stored(event)["tags"]
    hidden = _hidden_graph(world)
    assert world.actions.patch_tags(hidden["id"], b'{"add": ["x"]}', ANALYST | JSON, "/p").status == 404
    assert world.actions.patch_tags("entra_audit:nope", b'{"add": ["x"]}', ANALYST | JSON, "/p").status == 404
    assert world.actions.patch_tags(hidden["id"], b'{"add": ["seen"]}', PRIVACY | JSON, "/p").status == 200
    assert world.actions.add_comment(event["id"], b'{"text": "hi"}', READER | JSON, "/p").status == 403
    assert world.actions.bulk_tag(b'{"filter": {}, "add": ["x"]}', READER | JSON, "/p").status == 403


# -- comments -----------------------------------------------------------------------------------------


def test_a_retried_comment_with_an_idempotency_key_is_added_once(world: World) -> None:
    _, [event] = world.fresh(1)
    headers = {**ANALYST, "Idempotency-Key": "retry-me-1"}
    first = world.actions.add_comment(
        event["id"], b'{"text": "looks like a test tenant"}', headers | JSON, "/p"
    )
    assert first.status == 201, first.body
    comment = _json(first)
    assert comment["text"] == "looks like a test tenant"
    assert (comment["author"], comment["author_id"], comment["at"]) == (
        "ana@contoso.com",
        "u1",
        utc_iso(world.clock.now()),
    )
    replay = world.actions.add_comment(
        event["id"], b'{"text": "looks like a test tenant"}', headers | JSON, "/p"
    )
    assert replay.status == 201  # answered as the first request was
    assert _json(replay) == comment
    assert world.stored(event)["comments"] == [comment]
    assert [r["after"] for r in world.audit("event.comment", event["id"])] == [comment]

    plain = [
        world.actions.add_comment(event["id"], b'{"text": "again"}', ANALYST | JSON, "/p") for _ in range(2)
    ]
    assert [r.status for r in plain] == [201, 201]
    assert len({_json(r)["id"] for r in plain}) == 2
    assert [c["text"] for c in world.stored(event)["comments"]] == [
        "looks like a test tenant",
        "again",
        "again",
    ]
    assert len(world.audit("event.comment", event["id"])) == 3

    too_long = {**ANALYST, "Idempotency-Key": "k" * 101}
    bad = world.actions.add_comment(event["id"], b'{"text": "x"}', too_long | JSON, "/p")
    assert bad.status == 400
    assert _json(bad)["errors"][0]["field"] == "Idempotency-Key"
    assert world.actions.add_comment(event["id"], b'{"text": ""}', ANALYST | JSON, "/p").status == 400
    assert (
        world.actions.add_comment(_hidden_graph(world)["id"], b'{"text": "x"}', ANALYST | JSON, "/p").status
        == 404
    )


def test_concurrent_comments_are_all_kept(world: World) -> None:
    _, [event] = world.fresh(1)
    statuses: list[int] = []

    def comment(n: int) -> None:
        body = json.dumps({"text": f"note {n}"}).encode()
        statuses.append(world.actions.add_comment(event["id"], body, ANALYST | JSON, "/p").status)

    threads = [threading.Thread(target=comment, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [201] * 6
    assert sorted(c["text"] for c in world.stored(event)["comments"]) == [f"note {n}" for n in range(6)]


# -- bulk tagging -------------------------------------------------------------------------------------


def test_bulk_tagging_touches_visible_matches_newest_first_up_to_the_cap(world: World) -> None:
    correlation, documents = world.fresh(7, sensitive=2)
    visible = [d for d in documents if d["operation"] != "Delete user"]
    body = json.dumps({"filter": {"correlation_id": correlation}, "add": ["bulk"]}).encode()

    result = world.actions.bulk_tag(body, ANALYST | JSON, "/api/events/tags")
    assert result.status == 200, result.body
    assert _json(result) == {
        "matched": 5,
        "updated": 5,
        "skipped": 0,
        "failed": 0,
        "truncated": False,
        "cap": 1000,
    }
    assert {d["id"] for d in documents if "bulk" in world.stored(d)["tags"]} == {d["id"] for d in visible}

    again = _json(world.actions.bulk_tag(body, ANALYST | JSON, "/p"))
    assert (again["matched"], again["updated"]) == (5, 0)

    capped = world.make_actions(bulk_max=3)
    remove = json.dumps({"filter": {"correlation_id": correlation}, "remove": ["bulk"]}).encode()
    assert _json(capped.bulk_tag(remove, ANALYST | JSON, "/p")) == {
        "matched": 3,
        "updated": 3,
        "skipped": 0,
        "failed": 0,
        "truncated": True,
        "cap": 3,
    }
    newest_first = sorted(visible, key=lambda d: (d["timestamp"], d["id"]), reverse=True)
    assert [("bulk" in world.stored(d)["tags"]) for d in newest_first] == [False, False, False, True, True]

    [record] = [r for r in world.audits("event.bulk_tag") if r["after"]["cap"] == 3]
    assert record["before"] == {"filter": {"correlation_id": correlation}}
    assert record["after"]["matched"] == 3
    assert record["after"]["remove"] == ["bulk"]
    assert record["after"]["truncated"] is True

    everything = json.dumps({"filter": {"correlation_id": correlation}, "add": ["all"]}).encode()
    assert _json(world.actions.bulk_tag(everything, PRIVACY | JSON, "/p"))["updated"] == 7


def test_bad_bulk_requests_are_a_400(world: World) -> None:
    for body, field in [
        (b'{"add": ["x"]}', "filter"),
        (b'{"filter": {"page_size": 5}, "add": ["x"]}', "filter.page_size"),
        (b'{"filter": {"service": ["Mail"]}, "add": ["x"]}', "filter.service.0"),
        (b'{"filter": {}}', "body"),
    ]:
        response = world.actions.bulk_tag(body, ANALYST | JSON, "/p")
        assert response.status == 400, body
        assert _json(response)["errors"][0]["field"] == field


# -- re-ingest ----------------------------------------------------------------------------------------


def test_a_redelivered_event_keeps_its_tags_and_comments(world: World) -> None:
    _, [event] = world.fresh(1)
    world.actions.patch_tags(event["id"], b'{"add": ["keep-me"]}', ANALYST | JSON, "/p")
    world.actions.add_comment(event["id"], b'{"text": "do not lose this"}', ANALYST | JSON, "/p")
    annotated = world.stored(event)

    redelivered = {**event, "summary": "renormalized summary", "tags": [], "ingested_at": utc_iso(NOW)}
    assert world.store.write_events([redelivered]) == []
    stored = world.stored(event)
    assert stored["tags"] == ["keep-me"]
    assert stored["comments"] == annotated["comments"]
    assert stored["summary"] == "renormalized summary"  # the rest follows the new document

    untouched = _exchange_event(world.tenant, NOW - dt.timedelta(hours=2), "plain")
    assert world.store.write_events([untouched]) == [untouched]
    world.store.update_facets(world.tenant, [untouched], [], utc_iso(NOW), shard_key="plain")
    assert world.store.write_events([{**untouched, "summary": "v2"}]) == []
    assert world.stored(untouched)["summary"] == "v2"
    assert world.stored(untouched)["tags"] == []
    assert "comments" not in world.stored(untouched)


# -- exclusions ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def excluding(app_environment: dict[str, str]) -> Iterator[World]:
    """A world of its own with Teams events, a failure, and app actors with a null or a missing upn."""
    world = World()
    robot = {"type": "app", "id": "app-1", "upn": None, "display": "Sync Robot", "ip": None}
    extra = [
        _exchange_event(world.tenant, NOW - dt.timedelta(hours=2), "t1", service="Teams", actor=robot),
        _exchange_event(
            world.tenant, NOW - dt.timedelta(hours=5), "t2", service="Teams", result="failure", operation="Ad"
        ),
        _exchange_event(world.tenant, NOW - dt.timedelta(hours=9), "t3", service="Teams"),
    ]
    extra[2]["actor"] = {"type": "app", "id": "app-2"}  # no upn or display at all
    world.write(extra)
    yield world
    world.store.close()
    get_clients().cosmos_database.delete_container(world.container_name)


COUNTED_EXCLUSIONS = ("exclude_service", "exclude_source", "exclude_result")


def _excluded(event: dict[str, Any], params: list[tuple[str, str]]) -> bool:
    actor = event.get("actor") or {}
    names = [(actor.get("upn") or "").lower(), (actor.get("display") or "").lower()]
    for name, value in params:
        field = name.removeprefix("exclude_")
        if field == "actor" and any(value.lower() in n for n in names):
            return True
        if field != "actor" and event.get(field) == value:
            return True
    return False


@pytest.mark.parametrize(
    ("params", "headers"),
    [
        ([("exclude_service", "Teams")], PRIVACY),
        ([("exclude_service", "Exchange"), ("exclude_service", "Teams")], PRIVACY),
        ([("exclude_actor", "ROBOT")], READER),
        ([("exclude_actor", "ana@")], PRIVACY),  # events of actors without a upn or display are kept
        ([("exclude_result", "failure"), ("exclude_operation", "Set-Mailbox")], PRIVACY),
        ([("exclude_source", "entra_audit"), ("exclude_actor", "eve")], PRIVACY),
        ([("exclude_operation", "Add member to role"), ("exclude_actor", "bob")], READER),
    ],
)
def test_exclusions_leave_out_the_same_events_in_the_list_the_histogram_and_the_export(
    excluding: World, params: list[tuple[str, str]], headers: dict[str, str]
) -> None:
    world = excluding
    hide = None if headers is PRIVACY else POLICY
    expected = [e["id"] for e in world.in_window(hide) if not _excluded(e, params)]
    everything = world.in_window(hide)
    assert 0 < len(expected) < len(everything)  # each case leaves something out and keeps something
    query = "&".join(f"{name}={value}" for name, value in params)

    listed: list[str] = []
    url = f"https://h/api/events?page_size=7&{query}"
    while True:
        page = _json(world.actions.list_events(url, headers, "/api/events"))
        listed += [e["id"] for e in page["items"]]
        if page["continuation"] is None:
            break
        url = f"https://h/api/events?page_size=7&{query}&continuation={page['continuation']}"
    assert listed == expected

    histogram = _json(world.actions.histogram(f"https://h/api/events/histogram?{query}", headers, "/p"))
    assert histogram["total"] == len(expected)
    if headers is PRIVACY and all(name in COUNTED_EXCLUSIONS for name, _ in params):
        assert histogram["plan"] == "counters"  # answered from the time counts the store keeps

    export = world.actions.export(f"{EXPORT}?{query}", headers, "/api/events/export")
    assert isinstance(export.body, str)
    assert [json.loads(line)["id"] for line in export.body.splitlines()] == expected


def test_the_list_names_the_hidden_services_for_a_reader_only(excluding: World) -> None:
    reader = _json(excluding.actions.list_events("https://h/api/events", READER, "/api/events"))
    # The hidden operation is counted, not named (its name is out of a Reader's reach).
    assert reader["hidden"] == {"services": ["Exchange"], "operations": 1}
    privacy = _json(excluding.actions.list_events("https://h/api/events", PRIVACY, "/api/events"))
    assert privacy["hidden"] is None
    narrowed = _json(
        excluding.actions.list_events(
            "https://h/api/events?service=Teams&exclude_operation=Delete+user", READER, "/api/events"
        )
    )
    assert narrowed["hidden"] is None
    assert {e["service"] for e in narrowed["items"]} == {"Teams"}
