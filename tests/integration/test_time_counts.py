"""The histogram from the time counts, against cosmosdb-server, every event stored through
EventStore.write_events: each bucket equals a brute-force count of the stored events across the
October/November boundary; a redelivery counts nothing twice; a rewrite that changes service or result
moves its count; privacy hiding; days stored before counting began are answered with COUNT queries
until a backfill marks them complete; and 20,000 events are answered from the counts."""

from __future__ import annotations

import copy
import datetime as dt
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from azure.cosmos import ContainerProxy, PartitionKey

from shared.api.events_histogram import EventHistogram, HistogramQuery
from shared.api.events_query import SensitivityPolicy
from shared.ingestion.event_store import EventStore
from shared.platform.clients import get_clients
from shared.platform.clock import parse_utc, utc_iso
from shared.platform.resources import CosmosContainers
from tests.support.event_corpus import NOW, make_events

Keep = Callable[[dict[str, Any]], bool]
ALL: Keep = lambda e: True  # noqa: E731
ELIGIBLE: list[tuple[str, dict[str, Any], Keep]] = [
    ("everything", {}, ALL),
    ("service", {"service": ["Exchange", "Directory"]}, lambda e: e["service"] in ("Exchange", "Directory")),
    ("exclude_service", {"exclude_service": ["Teams"]}, lambda e: e["service"] != "Teams"),
    ("source", {"source": "entra_audit"}, lambda e: e["source"] == "entra_audit"),
    ("exclude_source", {"exclude_source": ["entra_audit"]}, lambda e: e["source"] != "entra_audit"),
    ("result", {"result": "failure"}, lambda e: e["result"] == "failure"),
    (
        "combined",
        {"service": ["SharePoint", "Teams"], "exclude_result": ["success"], "start": "40d", "buckets": 7},
        lambda e: e["service"] in ("SharePoint", "Teams") and e["result"] != "success",
    ),
]


@pytest.fixture(scope="module")
def events_container(app_environment: dict[str, str]) -> Iterator[ContainerProxy]:
    clients = get_clients()
    spec = CosmosContainers.EVENTS
    name = f"events-counts-{uuid.uuid4().hex[:8]}"
    container = clients.cosmos_database.create_container(
        id=name,
        partition_key=PartitionKey(path=spec.partition_key_path),
        indexing_policy=spec.indexing_policy(),
    )
    yield container
    clients.cosmos_database.delete_container(name)


def _store(container: ContainerProxy) -> EventStore:
    return EventStore(container, get_clients().cosmos_container(CosmosContainers.FACETS.name), 8)


def _brute_force(events: list[dict[str, Any]], answer: dict[str, Any], keep: Keep) -> list[int]:
    lower, upper = parse_utc(answer["from"]), parse_utc(answer["to"])
    step = dt.timedelta(seconds=answer["bucket_seconds"])
    counts = []
    for bucket in answer["buckets"]:
        start = parse_utc(bucket["start"])
        low, high = utc_iso(max(start, lower)), utc_iso(min(start + step, upper))
        counts.append(sum(1 for e in events if low <= e["timestamp"] < high and keep(e)))
    return counts


def _answer(
    store: EventStore,
    container: ContainerProxy,
    tenant: str,
    params: dict[str, Any],
    hide: Any = None,
    retention_days: int | None = None,
) -> dict[str, Any]:
    histogram = EventHistogram(container, tenant, counts=store.time_counts, retention_days=retention_days)
    query = HistogramQuery.model_validate(params)
    return histogram.histogram(query, NOW, hide).model_dump(mode="json", by_alias=True)


@pytest.mark.parametrize(("name", "params", "keep"), ELIGIBLE, ids=[f[0] for f in ELIGIBLE])
def test_counts_equal_a_brute_force_count_redelivered_and_rewritten(
    events_container: ContainerProxy, name: str, params: dict[str, Any], keep: Keep
) -> None:
    tenant = f"tenant-{uuid.uuid4().hex[:10]}"
    events = make_events(tenant, 300)
    store = _store(events_container)
    try:
        assert len(store.write_events(events)) == 300
        assert store.time_counts.since(tenant) == ""  # a new tenant: counted from its first event
        answer = _answer(store, events_container, tenant, params)
        assert answer["plan"] == "counters"
        assert answer["bucket_seconds"] % 3600 == 0
        assert [b["count"] for b in answer["buckets"]] == _brute_force(events, answer, keep)
        assert answer["total"] > 0

        assert store.write_events(copy.deepcopy(events)) == []  # redelivered: nothing counted twice
        again = _answer(store, events_container, tenant, params)
        assert again["buckets"] == answer["buckets"]

        rewritten = copy.deepcopy(events[:60])  # as renormalize would: other service and result
        for event in rewritten:
            event["service"] = "Teams" if event["service"] != "Teams" else "Directory"
            event["result"] = "failure" if event["result"] == "success" else "success"
        assert store.write_events(rewritten) == []
        current = rewritten + events[60:]
        moved = _answer(store, events_container, tenant, params)
        assert [b["count"] for b in moved["buckets"]] == _brute_force(current, moved, keep)
    finally:
        store.close()


def test_the_month_boundary_and_unaligned_edges(events_container: ContainerProxy) -> None:
    tenant = f"tenant-{uuid.uuid4().hex[:10]}"
    events = make_events(tenant, 300)
    store = _store(events_container)
    try:
        store.write_events(events)
        params = {"start": "2026-10-30T07:13:00Z", "end": "2026-11-02T19:47:10Z", "buckets": 4}
        answer = _answer(store, events_container, tenant, params)
        assert (answer["plan"], answer["bucket_seconds"]) == ("counters", 86400)
        assert [b["start"][:10] for b in answer["buckets"]] == [
            "2026-10-30",
            "2026-10-31",
            "2026-11-01",
            "2026-11-02",
        ]
        assert [b["count"] for b in answer["buckets"]] == _brute_force(events, answer, ALL)
        assert (answer["from"], answer["to"]) == ("2026-10-30T07:13:00.000Z", "2026-11-02T19:47:10.000Z")
    finally:
        store.close()


def test_privacy_hiding_of_services(events_container: ContainerProxy) -> None:
    tenant = f"tenant-{uuid.uuid4().hex[:10]}"
    events = make_events(tenant, 300)
    store = _store(events_container)
    try:
        store.write_events(events)
        hide = SensitivityPolicy(services=["Exchange"])
        hidden = _answer(store, events_container, tenant, {"start": "7d"}, hide)
        assert hidden["plan"] == "counters"
        visible: Keep = lambda e: e["service"] != "Exchange"  # noqa: E731
        assert [b["count"] for b in hidden["buckets"]] == _brute_force(events, hidden, visible)
        assert hidden["total"] < _answer(store, events_container, tenant, {"start": "7d"})["total"]
        # Hidden operations are not in the counts: COUNT queries answer, still exactly.
        by_operation = SensitivityPolicy(operations=["Wipe ManagedDevice"])
        queried = _answer(store, events_container, tenant, {"start": "7d"}, by_operation)
        assert queried["plan"] != "counters"
        keep: Keep = lambda e: e["operation"] != "Wipe ManagedDevice"  # noqa: E731
        assert [b["count"] for b in queried["buckets"]] == _brute_force(events, queried, keep)
    finally:
        store.close()


def test_days_stored_before_counting_are_queried_until_backfilled(events_container: ContainerProxy) -> None:
    tenant = f"tenant-{uuid.uuid4().hex[:10]}"
    old = make_events(tenant, 300)
    for event in old:  # stored by a version without counts, which kept the facets
        event["ingested_at"] = "2026-11-19T00:00:00.000Z"
        events_container.create_item(event)
    store = _store(events_container)
    try:
        store.update_facets(tenant, old, [], "2026-11-19T00:00:00.000Z", shard_key="old")
        new = [
            {**event, "id": f"new:{i:05d}", "ingested_at": utc_iso(NOW)}
            for i, event in enumerate(make_events(tenant, 40))
        ]
        store.write_events(new)
        assert store.time_counts.since(tenant) == utc_iso(NOW)
        stored = old + new
        before = _answer(store, events_container, tenant, {})
        assert before["plan"] != "counters"  # every day began before counting: COUNT queries
        assert [b["count"] for b in before["buckets"]] == _brute_force(stored, before, ALL)

        first, last = dt.date(2026, 10, 10), dt.date(2026, 11, 20)
        assert store.backfill_counts(tenant, first, last, utc_iso(NOW)) == 300
        days = store.time_counts.read(tenant, first.isoformat(), last.isoformat())
        assert days is not None
        assert all(day.complete for day in days.values())
        after = _answer(store, events_container, tenant, {})
        assert after["plan"] == "counters"
        assert [b["count"] for b in after["buckets"]] == _brute_force(stored, after, ALL)

        # A rewrite of an event stored before counting moves its count in the backfill document.
        rewritten = [{**event, "service": "Teams", "result": "failure"} for event in old[:25]]
        store.write_events(rewritten)
        current = rewritten + old[25:] + new
        params = {"service": ["Teams"], "result": "failure"}
        moved = _answer(store, events_container, tenant, params)
        teams_failures: Keep = lambda e: e["service"] == "Teams" and e["result"] == "failure"  # noqa: E731
        assert moved["plan"] == "counters"
        assert [b["count"] for b in moved["buckets"]] == _brute_force(current, moved, teams_failures)
        # Backfilling again recounts the same events as they are now.
        assert store.backfill_counts(tenant, first, last, utc_iso(NOW)) == 300
        again = _answer(store, events_container, tenant, params)
        assert again["buckets"] == moved["buckets"]
    finally:
        store.close()


def test_20000_events_are_answered_from_the_counts(events_container: ContainerProxy) -> None:
    tenant = f"tenant-{uuid.uuid4().hex[:10]}"
    events = make_events(tenant, 20_000)
    store = _store(events_container)
    try:
        for i in range(0, len(events), 1000):  # pages, as ingestion writes them
            store.write_events(events[i : i + 1000])
        exchange: Keep = lambda e: e["service"] == "Exchange"  # noqa: E731
        for params, keep in (({}, ALL), ({"service": ["Exchange"], "buckets": 120}, exchange)):
            answer = _answer(store, events_container, tenant, params)
            assert answer["plan"] == "counters"
            assert [b["count"] for b in answer["buckets"]] == _brute_force(events, answer, keep)
    finally:
        store.close()


def test_days_near_the_retention_limit_are_queried_not_trusted(events_container: ContainerProxy) -> None:
    """TTL removes events but not their counts: days within a day of the retention limit are counted
    with queries, so events that expired there are not shown."""
    tenant = f"tenant-{uuid.uuid4().hex[:10]}"
    events = make_events(tenant, 400)  # spread over 40 days before NOW
    store = _store(events_container)
    try:
        store.write_events(events)
        retention = 20
        limit = utc_iso(NOW - dt.timedelta(days=retention + 1))
        expired = [e for e in events if e["timestamp"] < limit]
        assert expired
        for event in expired:  # what TTL does to them
            events_container.delete_item(event["id"], partition_key=event["pk"])
        kept = [e for e in events if e["timestamp"] >= limit]
        params = {"start": "40d", "buckets": 40}
        trusted = _answer(store, events_container, tenant, params)
        assert trusted["total"] == len(events)  # the counts still hold the expired events
        answer = _answer(store, events_container, tenant, params, retention_days=retention)
        assert answer["plan"] == "counters"
        assert [b["count"] for b in answer["buckets"]] == _brute_force(kept, answer, ALL)
    finally:
        store.close()
