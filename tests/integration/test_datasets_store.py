"""The dataset store against Azurite (shared/datasets/store.py): publishes are atomic and skipped for
identical bytes, metadata writes are ETag-conditional, the lease lock admits one holder and is released
on an exception, and ten simultaneous refreshes of one source run exactly one query (acceptance 1)."""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections.abc import Iterator
from typing import Any, cast

import pytest
from azure.storage.blob import BlobClient, ContainerClient

from shared.datasets.querying import QueryOutcome, QueryWindow
from shared.datasets.refresh import RefreshService
from shared.datasets.sources import DatasetSource, SourceSet
from shared.datasets.store import (
    TSV_CONTENT_TYPE,
    DatasetMetadata,
    DatasetStore,
    RefreshLocked,
    StaleMetadata,
    lease_state,
    lock_blob_name,
    metadata_blob_name,
)
from shared.platform.clients import get_clients
from shared.platform.clock import utc_iso
from shared.platform.ids import UnsafeStorageIdError
from shared.platform.resources import BlobContainers
from tests.support.clock import ManualClock

NOW = dt.datetime(2026, 12, 7, 9, 0, tzinfo=dt.UTC)
SOURCE = DatasetSource.model_validate(
    {
        "id": "signin_failures",
        "name": "Sign-in failures",
        "kind": "log_analytics",
        "output_filename": "signin-failures.tsv",
        "columns": ["TimeGenerated", "UserPrincipalName"],
        "query": "SigninLogs | where TimeGenerated > ago({time_window})"
        " | extend IngestionTime = ingestion_time()",
    }
)


@pytest.fixture
def containers(app_environment: dict[str, str]) -> Iterator[tuple[ContainerClient, ContainerClient]]:
    suffix = uuid.uuid4().hex[:8]
    service = get_clients().blob_service
    datasets = service.get_container_client(f"datasets-{suffix}")
    locks = service.get_container_client(f"locks-{suffix}")
    datasets.create_container()
    locks.create_container()
    yield datasets, locks
    datasets.delete_container()
    locks.delete_container()


@pytest.fixture
def store(containers: tuple[ContainerClient, ContainerClient]) -> DatasetStore:
    return DatasetStore(*containers)


def test_the_bootstrap_creates_the_datasets_and_locks_containers(app_environment: dict[str, str]) -> None:
    clients = get_clients()
    assert {BlobContainers.DATASETS, BlobContainers.LOCKS} <= set(BlobContainers.ALL)
    assert clients.blob_container(BlobContainers.DATASETS).exists()
    assert clients.blob_container(BlobContainers.LOCKS).exists()


def test_publish_read_and_version(
    store: DatasetStore, containers: tuple[ContainerClient, ContainerClient]
) -> None:
    assert store.read(SOURCE) is None
    assert store.version(SOURCE) is None
    data = "TimeGenerated\tUserPrincipalName\n2026-12-07T09:00:00.000Z\tzoë@contoso.com\n".encode()

    version = store.publish(SOURCE, data)

    found = store.read(SOURCE)
    assert found == (data, version)
    assert store.version(SOURCE) == version
    properties = containers[0].get_blob_client("signin-failures.tsv").get_blob_properties()
    assert properties.content_settings.content_type == TSV_CONTENT_TYPE
    assert properties.content_settings.cache_control == "private, no-cache"


def test_the_same_bytes_keep_the_etag_and_other_bytes_change_it(store: DatasetStore) -> None:
    first = store.publish(SOURCE, b"A\nx\n")
    again = store.publish(SOURCE, b"A\nx\n")
    changed = store.publish(SOURCE, b"A\ny\n")

    assert again == first
    assert changed.etag != first.etag
    assert changed.last_modified >= first.last_modified
    assert store.read(SOURCE) == (b"A\ny\n", changed)


class _InterleavingBlob:
    """A BlobClient whose stage_block calls `after_block` once each block is staged."""

    def __init__(self, blob: BlobClient, after_block: Any) -> None:
        self._blob = blob
        self._after_block = after_block

    def stage_block(self, *args: Any, **kwargs: Any) -> Any:
        result = self._blob.stage_block(*args, **kwargs)
        self._after_block()
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self._blob, name)


class _InterleavingContainer:
    def __init__(self, container: ContainerClient, after_block: Any) -> None:
        self._container = container
        self._after_block = after_block

    def get_blob_client(self, name: str) -> Any:
        return _InterleavingBlob(self._container.get_blob_client(name), self._after_block)


def test_a_reader_never_sees_a_partial_file_during_a_large_publish(
    store: DatasetStore, containers: tuple[ContainerClient, ContainerClient]
) -> None:
    datasets, locks = containers
    old = b"A\n" + b"old row\n" * 100_000  # about 0.8 MB
    new = b"A\n" + b"a new, longer row\n" * 200_000  # about 3.6 MB: 55 blocks of 64 KiB
    store.publish(SOURCE, old)
    reads_between_blocks: list[bytes] = []

    def read_now() -> None:
        found = store.read(SOURCE)
        assert found is not None
        reads_between_blocks.append(found[0])

    publisher = DatasetStore(
        cast(ContainerClient, _InterleavingContainer(datasets, read_now)), locks, block_size=64 * 1024
    )
    polled: list[bytes] = []
    done = threading.Event()

    def poll() -> None:
        while not done.is_set():
            found = store.read(SOURCE)
            assert found is not None
            polled.append(found[0])

    poller = threading.Thread(target=poll)
    poller.start()
    try:
        publisher.publish(SOURCE, new)
    finally:
        done.set()
        poller.join()

    assert len(reads_between_blocks) == -(-len(new) // (64 * 1024)) == 55
    assert all(read == old for read in reads_between_blocks)  # staged blocks are invisible until the commit
    assert polled
    assert all(read in (old, new) for read in polled)
    assert store.read(SOURCE) is not None
    assert store.read(SOURCE)[0] == new  # type: ignore[index]


def test_metadata_writes_are_conditional_on_the_etag(store: DatasetStore) -> None:
    assert store.metadata(SOURCE) is None
    meta = DatasetMetadata(source_id=SOURCE.id, status="ok", last_refresh_at=NOW, watermark=NOW, rows=3)

    etag = store.write_metadata(meta, None)
    with pytest.raises(StaleMetadata):
        store.write_metadata(meta, None)  # a second creator loses
    stored = store.metadata(SOURCE)
    assert stored is not None
    assert (stored.value, stored.etag) == (meta, etag)

    newer = store.write_metadata(meta.model_copy(update={"rows": 4}), etag)
    with pytest.raises(StaleMetadata):
        store.write_metadata(meta.model_copy(update={"rows": 5}), etag)  # based on an old read
    stored = store.metadata(SOURCE)
    assert stored is not None
    assert (stored.value.rows, stored.etag) == (4, newer)


def test_unreadable_metadata_reads_as_a_fresh_start_that_can_be_overwritten(
    store: DatasetStore, containers: tuple[ContainerClient, ContainerClient]
) -> None:
    containers[1].get_blob_client(metadata_blob_name(SOURCE.id)).upload_blob(b"{not json")

    stored = store.metadata(SOURCE)

    assert stored is not None
    assert (stored.value.status, stored.value.watermark, stored.value.last_refresh_at) == (
        "failed",
        None,
        None,
    )
    store.write_metadata(DatasetMetadata(source_id=SOURCE.id, status="ok"), stored.etag)
    assert store.metadata(SOURCE).value.status == "ok"  # type: ignore[union-attr]


def test_two_concurrent_takers_of_the_lease_one_gets_refresh_locked(store: DatasetStore) -> None:
    barrier = threading.Barrier(2)
    release = threading.Event()
    results: list[str] = []
    lock = threading.Lock()

    def take() -> None:
        barrier.wait()
        try:
            with store.lease(SOURCE):
                with lock:
                    results.append("held")
                release.wait(timeout=30)
        except RefreshLocked:
            with lock:
                results.append("locked")
            release.set()

    threads = [threading.Thread(target=take) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(results) == ["held", "locked"]


def test_the_lease_is_released_on_an_exception(
    store: DatasetStore, containers: tuple[ContainerClient, ContainerClient]
) -> None:
    seen: list[str | None] = []

    def refresh_that_fails() -> None:
        with store.lease(SOURCE) as lease:
            seen.append(lease_state(containers[1], SOURCE.id) if lease.held else None)
            try:
                with store.lease(SOURCE):
                    seen.append("taken twice")
            except RefreshLocked:
                seen.append("locked")
            raise RuntimeError("query blew up")

    with pytest.raises(RuntimeError, match="query blew up"):
        refresh_that_fails()

    assert seen == ["leased", "locked"]

    assert lease_state(containers[1], SOURCE.id) == "available"
    with store.lease(SOURCE):  # at once, not after 60 s
        assert lease_state(containers[1], SOURCE.id) == "leased"


def test_the_lease_is_renewed_while_held(containers: tuple[ContainerClient, ContainerClient]) -> None:
    store = DatasetStore(*containers, lease_seconds=15, renew_interval=0.05)
    with store.lease(SOURCE) as lease:
        renewer = cast(Any, lease)
        for _ in range(400):
            if renewer.renewals >= 2:
                break
            threading.Event().wait(0.05)
        assert renewer.renewals >= 2
        assert lease.held
        assert lease_state(containers[1], SOURCE.id) == "leased"


def test_blob_names_come_from_checked_ids() -> None:
    assert lock_blob_name("signin_failures") == "signin_failures.lock"
    for hostile in ("../x", "x/y", "X", "", "x\n"):
        with pytest.raises(UnsafeStorageIdError):
            lock_blob_name(hostile)
        with pytest.raises(UnsafeStorageIdError):
            metadata_blob_name(hostile)


class CountingRunner:
    def __init__(self) -> None:
        self.calls = 0
        self._lock = threading.Lock()

    def run(self, source: DatasetSource, window: QueryWindow) -> QueryOutcome:
        with self._lock:
            self.calls += 1
        return QueryOutcome(
            columns=list(source.columns),
            rows=[[utc_iso(NOW - dt.timedelta(minutes=5)), "ann@contoso.com"]],
            max_ingestion_time=NOW - dt.timedelta(minutes=4),
            complete=True,
        )


def test_ten_simultaneous_refreshes_of_one_source_run_exactly_one_query(store: DatasetStore) -> None:
    runner = CountingRunner()
    service = RefreshService(
        lambda: SourceSet((SOURCE,), "memory", "v1"), store, {"log_analytics": runner}, ManualClock(NOW)
    )
    barrier = threading.Barrier(10)
    statuses: list[str] = []
    http: list[int] = []
    lock = threading.Lock()

    def refresh() -> None:
        barrier.wait()
        report = service.refresh(SOURCE.id)
        with lock:
            statuses.extend(o.status for o in report.outcomes)
            http.append(report.http_status)

    threads = [threading.Thread(target=refresh) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert runner.calls == 1
    assert statuses.count("refreshed") == 1
    assert set(statuses) <= {"refreshed", "locked", "throttled"}
    assert len(statuses) == 10
    assert sorted(set(http)) <= [200, 202, 204]
    assert http.count(200) == 1
    stored = store.metadata(SOURCE)
    assert stored is not None
    assert (stored.value.status, stored.value.rows) == ("ok", 1)
