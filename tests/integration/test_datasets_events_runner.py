"""EventsRunner on cosmosdb-server: its parameterized single-partition SQL (TOP, keyset, ORDER BY on the
composite index) runs there and returns exactly the failed sign-ins of the window, once each."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from azure.cosmos import ContainerProxy, PartitionKey

from shared.datasets.events_runner import EventsRunner
from shared.datasets.querying import QueryWindow
from shared.datasets.sources import DatasetSource, load_default_sources
from shared.platform.clients import get_clients
from shared.platform.clock import parse_utc
from shared.platform.resources import CosmosContainers
from tests.support.clock import ManualClock
from tests.support.signin_events import signin_events

START = dt.datetime(2026, 11, 29, 12, tzinfo=dt.UTC)  # the window crosses from November into December
NOW = dt.datetime(2026, 12, 1, 12, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def stored(app_environment: dict[str, str]) -> Iterator[tuple[ContainerProxy, str, list[dict[str, Any]]]]:
    """Its own container with the events container's spec (cosmosdb-server scans a container per query)."""
    clients = get_clients()
    spec = CosmosContainers.EVENTS
    name = f"events-datasets-{uuid.uuid4().hex[:8]}"
    container = clients.cosmos_database.create_container(
        id=name,
        partition_key=PartitionKey(path=spec.partition_key_path),
        indexing_policy=spec.indexing_policy(),
    )
    tenant = str(uuid.uuid4())
    docs = signin_events(tenant, START - dt.timedelta(hours=5), 160, spacing=dt.timedelta(minutes=23))
    other = signin_events(str(uuid.uuid4()), START, 20, spacing=dt.timedelta(minutes=30), seed=7)
    for doc in [*docs, *other]:  # another tenant's sign-ins share the container and must not show
        container.upsert_item(doc)
    yield container, tenant, docs
    clients.cosmos_database.delete_container(name)


@pytest.fixture(scope="module")
def source() -> DatasetSource:
    found = load_default_sources().get("signin_failures_events")
    assert found is not None
    return found


def expected(docs: list[dict[str, Any]], window: QueryWindow) -> list[str]:
    return sorted(
        d["id"]
        for d in docs
        if d["result"] == "failure"
        and window.start <= parse_utc(d["timestamp"]) <= window.end
        and (
            window.ingested_after is None or window.ingested_after < parse_utc(d["ingested_at"]) <= window.end
        )
    )


@pytest.mark.parametrize("page_size", [7, 1000])
def test_the_window_failed_sign_ins_once_each_in_any_page_size(
    stored: tuple[ContainerProxy, str, list[dict[str, Any]]], source: DatasetSource, page_size: int
) -> None:
    container, tenant, docs = stored
    wide = source.model_copy(update={"columns": ["EventId", *source.columns]})
    window = QueryWindow(start=START, end=NOW)
    outcome = EventsRunner(container, tenant, ManualClock(NOW), page_size=page_size).run(wide, window)
    ids = [str(row[0]) for row in outcome.rows]
    assert outcome.complete
    assert len(ids) == len(set(ids))
    assert sorted(ids) == expected(docs, window)
    assert len(ids) > 50
    by_id = {d["id"]: d for d in docs}
    for row in outcome.rows:
        doc = by_id[str(row[0])]
        assert row[1:] == [
            doc["timestamp"],
            doc["actor"]["upn"],
            doc["actor"]["client_app"]["name"],
            doc["actor"]["ip"],
            doc["signin"]["location"]["city"],
            doc["signin"]["location"]["country"],
            repr(doc["signin"]["location"]["latitude"]),
            repr(doc["signin"]["location"]["longitude"]),
            str(doc["result_code"]),
            doc["result_reason"],
        ]


def test_an_incremental_window_returns_what_was_ingested_since(
    stored: tuple[ContainerProxy, str, list[dict[str, Any]]], source: DatasetSource
) -> None:
    container, tenant, docs = stored
    wide = source.model_copy(update={"columns": ["EventId", "IngestionTime"]})
    window = QueryWindow(start=START, end=NOW, ingested_after=START + dt.timedelta(hours=20))
    outcome = EventsRunner(container, tenant, ManualClock(NOW), page_size=5).run(wide, window)
    ids = sorted(str(row[0]) for row in outcome.rows)
    assert ids == expected(docs, window)
    assert 0 < len(ids) < len(expected(docs, QueryWindow(start=START, end=NOW)))
    assert outcome.max_ingestion_time == max(parse_utc(str(row[1])) for row in outcome.rows)
