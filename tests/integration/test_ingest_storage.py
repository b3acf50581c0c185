"""Watermarks, handed-off content, the raw archive and the event store, against real local services."""

from __future__ import annotations

import datetime as dt
import json
import threading
import uuid
from typing import Any

import pytest

from shared.ingestion.archive import RawArchive, raw_blob_name
from shared.ingestion.event_store import EventStore
from shared.ingestion.watermarks import HandedOffContent, WatermarkStore
from shared.platform.clients import get_clients
from shared.platform.resources import CosmosContainers, Tables
from tests.support.cosmos import event_ids

NOW = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def watermarks(app_environment: dict[str, str]) -> WatermarkStore:
    return WatermarkStore(get_clients().table(Tables.WATERMARKS), f"tenant-{uuid.uuid4().hex[:8]}")


def test_watermark_only_moves_forward_and_counts_accumulate(watermarks: WatermarkStore) -> None:
    source = f"test-{uuid.uuid4().hex[:8]}"
    assert watermarks.get(source).watermark is None

    watermarks.advance(source, NOW, "run-1", 10, NOW)
    watermarks.advance(source, NOW - dt.timedelta(hours=1), "run-0", 5, NOW)  # a slower, older run
    state = watermarks.get(source)

    assert state.watermark == "2026-11-20T12:00:00.000Z"
    assert state.total_count == 15
    assert state.last_run_id == "run-0"


def test_tenants_never_share_state(app_environment: dict[str, str]) -> None:
    table = get_clients().table(Tables.WATERMARKS)
    first, second = WatermarkStore(table, "tenant-one"), WatermarkStore(table, "tenant-two")
    first.advance("entra_audit", NOW, "run", 3, NOW)
    assert second.get("entra_audit").watermark is None
    assert [s.source for s in first.all()] == ["entra_audit"]


def test_concurrent_advances_lose_no_count(watermarks: WatermarkStore) -> None:
    source = f"test-{uuid.uuid4().hex[:8]}"
    threads = [
        threading.Thread(
            target=watermarks.advance, args=(source, NOW + dt.timedelta(minutes=i), f"r{i}", 1, NOW)
        )
        for i in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    state = watermarks.get(source)
    assert state.total_count == 8
    assert state.watermark == "2026-11-20T12:07:00.000Z"


def test_staleness_is_three_poll_intervals(watermarks: WatermarkStore) -> None:
    source = f"test-{uuid.uuid4().hex[:8]}"
    watermarks.advance(source, NOW, "run", 1, NOW)
    state = watermarks.get(source)
    assert not state.is_stale(NOW + dt.timedelta(minutes=15), 300)
    assert state.is_stale(NOW + dt.timedelta(minutes=15, seconds=1), 300)


def test_handed_off_content_is_remembered_then_pruned(app_environment: dict[str, str]) -> None:
    register = HandedOffContent(get_clients().table(Tables.HANDED_OFF_CONTENT), "tenant-a")
    content_type = f"Audit.Test{uuid.uuid4().hex[:6]}"
    register.remember(content_type, "blob-a", NOW)
    register.remember(content_type, "blob-b", NOW - dt.timedelta(days=8))

    assert register.seen(content_type, ["blob-a", "blob-b", "blob-c"]) == {"blob-a", "blob-b"}
    assert register.prune(content_type, NOW) == 1
    assert register.seen(content_type, ["blob-a", "blob-b"]) == {"blob-a"}


def test_raw_archive_round_trips_non_ascii_lines_and_quarantines(app_environment: dict[str, str]) -> None:
    archive = RawArchive(get_clients().blob_service)
    name = raw_blob_name("entra_audit", NOW, "run42", 3)
    assert name == "entra_audit/2026/11/20/12/run42-00003.jsonl.gz"
    archive.write_page(name, [{"id": "1", "who": "Zoë Łukasz"}, {"id": "2", "who": "田中 太郎"}])

    lines = list(archive.read_lines(name))
    assert [n for n, _ in lines] == [1, 2]
    assert "田中 太郎" in lines[1][1]

    quarantined = archive.quarantine("entra_audit", name, 2, "NormalizationError: no id", lines[1][1], NOW)
    assert quarantined.new
    body = get_clients().blob_container("quarantine").download_blob(quarantined.name).readall().decode()
    assert "no id" in body
    assert "田中 太郎" in body

    later = NOW + dt.timedelta(hours=1)
    again = archive.quarantine(
        "entra_audit", "other-page", 7, "NormalizationError: no id", lines[1][1], later
    )
    assert (again.name, again.new) == (quarantined.name, False)
    kept = json.loads(get_clients().blob_container("quarantine").download_blob(quarantined.name).readall())
    assert (kept["blob"], kept["line"]) == (name, 2), "the first sighting is kept"
    other = archive.quarantine("entra_audit", name, 1, "NormalizationError: no id", lines[0][1], NOW)
    assert other.new
    assert other.name != quarantined.name


def _event(event_id: str, tenant: str, operation: str = "Add user") -> dict[str, Any]:
    return {
        "id": event_id,
        "pk": f"{tenant}:2026-11",
        "tenant_id": tenant,
        "source": "entra_audit",
        "service": "Directory",
        "operation": operation,
        "result": "success",
        "actor": {"type": "user", "upn": "admin@contoso.com"},
        "timestamp": "2026-11-20T12:00:00.000Z",
        "ingested_at": "2026-11-20T12:01:00.000Z",
    }


def test_event_store_is_idempotent_and_facets_count_only_new_events(app_environment: dict[str, str]) -> None:
    clients = get_clients()
    store = EventStore(
        clients.cosmos_container(CosmosContainers.EVENTS.name),
        clients.cosmos_container(CosmosContainers.FACETS.name),
        concurrency=8,
    )
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    batch = [_event(f"entra_audit:{i}", tenant, "Add user" if i % 2 else "Delete user") for i in range(20)]

    first = store.write_events(batch)
    store.update_facets(tenant, first, [], "2026-11-20T12:01:00.000Z", shard_key="page-1")
    again = store.write_events(batch)  # a redelivered batch
    store.update_facets(tenant, again, batch, "2026-11-20T12:02:00.000Z", shard_key="page-1")
    other = [_event(f"entra_audit:x{i}", tenant) for i in range(5)]
    store.update_facets(tenant, store.write_events(other), [], "2026-11-20T12:03:00.000Z", shard_key="page-2")

    assert len(first) == 20
    assert again == []
    facets = store.read_facets(tenant)
    assert facets["operation"] == {"Add user": 15, "Delete user": 10}
    assert facets["service"] == {"Directory": 25}
    assert facets["actor"] == {"admin@contoso.com": 25}
    stored = event_ids(tenant, ["2026-11"])
    assert sorted(stored) == sorted(e["id"] for e in [*batch, *other])
    store.close()


def test_concurrent_pages_on_one_facet_shard_lose_no_count(app_environment: dict[str, str]) -> None:
    clients = get_clients()
    store = EventStore(
        clients.cosmos_container(CosmosContainers.EVENTS.name),
        clients.cosmos_container(CosmosContainers.FACETS.name),
        concurrency=4,
    )
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    pages = [[_event(f"entra_audit:{p}-{i}", tenant) for i in range(10)] for p in range(6)]
    threads = [
        threading.Thread(
            target=store.update_facets, args=(tenant, page, [], "2026-11-20T12:00:00.000Z", "same")
        )
        for page in pages
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert store.read_facets(tenant)["operation"] == {"Add user": 60}
    store.close()


def test_a_handed_off_page_carries_its_tenant(app_environment: dict[str, str]) -> None:
    from azure.storage.queue import QueueClient, TextBase64DecodePolicy, TextBase64EncodePolicy

    from shared.ingestion.messages import IngestMessage
    from shared.ingestion.sources.handoff import PageHandOff

    queue_name = f"handoff-{uuid.uuid4().hex[:8]}"
    queue = QueueClient.from_connection_string(
        app_environment["AzureWebJobsStorage"],
        queue_name,
        message_encode_policy=TextBase64EncodePolicy(),
        message_decode_policy=TextBase64DecodePolicy(),
    )
    queue.create_queue()
    try:
        archive = RawArchive(get_clients().blob_service)
        handoff = PageHandOff(archive, queue, "tenant-of-this-poller")
        handoff("entra_audit", [{"id": "1"}], run_id="run", run_started=NOW, page=1)
        [message] = queue.receive_messages()
        # The worker that ingests it may serve another tenant: the page names its own.
        assert IngestMessage.model_validate_json(message.content).tenant_id == "tenant-of-this-poller"
    finally:
        queue.delete_queue()


def test_records_whose_native_id_is_unsafe_are_quarantined_and_the_page_is_stored(
    app_environment: dict[str, str],
) -> None:
    """A native id holding '/' or '\\' would make an unsafe Cosmos id, and EventStore.write_events
    refuses a page that holds one: normalization quarantines those records (counted), the rest is stored."""
    from shared.ingestion.ingest import IngestService
    from shared.ingestion.messages import IngestMessage
    from tests.support.clock import ManualClock

    clients = get_clients()
    archive = RawArchive(clients.blob_service)
    store = EventStore(
        clients.cosmos_container(CosmosContainers.EVENTS.name),
        clients.cosmos_container(CosmosContainers.FACETS.name),
        concurrency=4,
    )
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    watermarks = WatermarkStore(clients.table(Tables.WATERMARKS), tenant)
    tag = uuid.uuid4().hex[:8]

    def record(native_id: str) -> dict[str, object]:
        return {
            "id": native_id,
            "activityDateTime": "2026-11-20T11:00:00Z",
            "activityDisplayName": "Add user",
        }

    unsafe = [f"../../dbs/{tag}", f"{tag}/..", f"..\\{tag}", f"{tag}?x", f"{tag}\n"]
    page = [record(f"good-1-{tag}"), *(record(native) for native in unsafe), record(f"good-2-{tag}")]
    name = raw_blob_name("entra_audit", NOW, f"run-{tag}", 1)
    archive.write_page(name, page)
    service = IngestService(archive, store, watermarks, tenant, ManualClock(NOW))
    message = IngestMessage(source="entra_audit", blob=name, count=len(page), run_id=f"run-{tag}")

    report = service.process(message)
    again = service.process(message)  # redelivered: the same records, stored and counted once

    assert (report.records, report.stored, report.new, report.quarantined) == (7, 2, 2, 5)
    assert (again.stored, again.new, again.quarantined) == (2, 0, 5)
    assert event_ids(tenant, ["2026-11"]) == {f"entra_audit:good-1-{tag}", f"entra_audit:good-2-{tag}"}
    assert watermarks.get("entra_audit").quarantined == 5
    quarantine = clients.blob_container("quarantine")
    reasons = [
        json.loads(quarantine.download_blob(blob.name).readall())
        for blob in quarantine.list_blobs(name_starts_with="entra_audit/")
    ]
    mine = [r for r in reasons if r["blob"] == name]
    assert sorted(r["line"] for r in mine) == [2, 3, 4, 5, 6]
    assert all("unsafe event id" in r["reason"] for r in mine)
    store.close()
