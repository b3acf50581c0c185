"""Where datasets live: the published TSV files, their per-source metadata, and the refresh lock.

Layout (Blob Storage):
- `datasets/{output_filename}`: the published TSV. A publish stages the bytes as blocks and then commits
  the block list in one call, so a reader sees the previous file whole until the commit and the new one
  whole after it, never half of either. The blob's metadata holds the sha256 of its bytes: publishing
  the same bytes again writes nothing and keeps the ETag and Last-Modified, so the console's conditional
  GET answers 304.
- `locks/{id}-metadata.json`: DatasetMetadata, written under an ETag condition (create-only the first
  time, If-Match after).
- `locks/{id}.lock`: an empty blob whose 60 s lease is the source's refresh lock. The holder renews it
  every `renew_interval` seconds from a background thread and releases it when it leaves the `with`
  block, on an exception too; a holder that dies loses it when the 60 s run out. Another taker gets
  RefreshLocked.

Every source id and file name is checked against its grammar before any storage call.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Generic, Literal, Protocol, TypeVar

from azure.core import MatchConditions
from azure.core.exceptions import (
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.storage.blob import BlobBlock, BlobClient, BlobLeaseClient, ContainerClient, ContentSettings
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from shared.datasets.sources import DatasetSource
from shared.platform.ids import UnsafeStorageIdError, is_dataset_source_id, storage_blob_name

logger = logging.getLogger(__name__)

TSV_CONTENT_TYPE = "text/tab-separated-values; charset=utf-8"
CACHE_CONTROL = "private, no-cache"
LEASE_SECONDS = 60
RENEW_INTERVAL_SECONDS = 20.0
BLOCK_SIZE = 4 * 1024 * 1024
SHA256_METADATA_KEY = "sha256"

T = TypeVar("T")


class BlobVersion(BaseModel):
    """What identifies one published file: its ETag and Last-Modified."""

    model_config = ConfigDict(frozen=True)

    etag: str
    last_modified: AwareDatetime


@dataclass(frozen=True)
class Stored(Generic[T]):
    value: T
    etag: str
    """The blob's ETag as of the read: the condition of the next write."""


class DatasetMetadata(BaseModel):
    """What the last refresh of a source did (`locks/{id}-metadata.json`)."""

    model_config = ConfigDict(extra="ignore")

    source_id: str
    status: Literal["ok", "partial", "failed"]
    last_refresh_at: AwareDatetime | None = None
    """When a dataset was last published (status ok): what the throttle counts from."""
    last_attempt_at: AwareDatetime | None = None
    watermark: AwareDatetime | None = None
    """The newest IngestionTime taken into the dataset; None: the next run covers the full window."""
    rows: int = Field(default=0, ge=0)
    rows_added: int = Field(default=0, ge=0)
    duplicates_dropped: int = Field(default=0, ge=0)
    expired_dropped: int = Field(default=0, ge=0)
    duration_ms: int = Field(default=0, ge=0)
    query_hash: str = ""
    partial: bool = False
    splits: int = Field(default=0, ge=0)
    errors: list[str] = Field(default_factory=list)
    etag: str | None = None
    """ETag of the published TSV."""
    last_modified: AwareDatetime | None = None
    """Last-Modified of the published TSV."""


class RefreshLocked(Exception):
    """Another refresh holds the source's lease."""

    def __init__(self, source_id: str) -> None:
        self.source_id = source_id
        super().__init__(f"a refresh of {source_id} is already running")


class StaleMetadata(Exception):
    """The metadata blob changed (or appeared) since the read the write was based on."""


class HeldLease(Protocol):
    @property
    def held(self) -> bool:
        """False once a renewal failed: the lease may be someone else's by now."""
        ...


class DatasetStorage(Protocol):
    """What the refresh service needs of storage. DatasetStore is the Blob Storage one."""

    def publish(self, source: DatasetSource, data: bytes) -> BlobVersion: ...

    def read(self, source: DatasetSource) -> tuple[bytes, BlobVersion] | None: ...

    def version(self, source: DatasetSource) -> BlobVersion | None: ...

    def metadata(self, source: DatasetSource) -> Stored[DatasetMetadata] | None: ...

    def write_metadata(self, meta: DatasetMetadata, etag: str | None) -> str: ...

    def lease(self, source: DatasetSource) -> AbstractContextManager[HeldLease]: ...


def _source_id(value: str) -> str:
    if not is_dataset_source_id(value):
        raise UnsafeStorageIdError("not a dataset source id")
    return value


def metadata_blob_name(source_id: str) -> str:
    return f"{_source_id(source_id)}-metadata.json"


def lock_blob_name(source_id: str) -> str:
    return f"{_source_id(source_id)}.lock"


def dataset_blob_name(source: DatasetSource) -> str:
    _source_id(source.id)
    return storage_blob_name(source.output_filename)


def _version(etag: object, last_modified: object) -> BlobVersion:
    return BlobVersion.model_validate({"etag": str(etag), "last_modified": last_modified})


class _Renewer:
    """Renews a lease every `interval` seconds until stopped; `held` turns False when a renewal fails."""

    def __init__(self, lease: BlobLeaseClient, interval: float, source_id: str) -> None:
        self._lease = lease
        self._interval = interval
        self._source_id = source_id
        self._stop = threading.Event()
        self._lost = threading.Event()
        self.renewals = 0
        self._thread = threading.Thread(target=self._run, name=f"lease-renew-{source_id}", daemon=True)

    @property
    def held(self) -> bool:
        return not self._lost.is_set()

    @property
    def lease_id(self) -> str:
        return str(self._lease.id)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._lease.renew()
                self.renewals += 1
            except Exception as exc:
                self._lost.set()
                logger.warning("lost the refresh lease of %s: %s", self._source_id, exc)
                return

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


class DatasetStore:
    def __init__(
        self,
        datasets: ContainerClient,
        locks: ContainerClient,
        *,
        block_size: int = BLOCK_SIZE,
        lease_seconds: int = LEASE_SECONDS,
        renew_interval: float = RENEW_INTERVAL_SECONDS,
    ) -> None:
        if not 15 <= lease_seconds <= 60:
            raise ValueError("a blob lease lasts 15 to 60 seconds")
        if not 0 < renew_interval < lease_seconds:
            raise ValueError("the lease is renewed before it runs out")
        self._datasets = datasets
        self._locks = locks
        self._block_size = block_size
        self._lease_seconds = lease_seconds
        self._renew_interval = renew_interval

    # -- the published file ------------------------------------------------------------------------

    def _dataset_blob(self, source: DatasetSource) -> BlobClient:
        return self._datasets.get_blob_client(dataset_blob_name(source))

    def publish(self, source: DatasetSource, data: bytes) -> BlobVersion:
        """Publish `data` as the source's file at once (stage blocks, commit the list); the same bytes
        as the file already there write nothing and keep its version."""
        blob = self._dataset_blob(source)
        digest = hashlib.sha256(data).hexdigest()
        try:
            properties = blob.get_blob_properties()
        except ResourceNotFoundError:
            pass
        else:
            if (properties.metadata or {}).get(SHA256_METADATA_KEY) == digest:
                return _version(properties.etag, properties.last_modified)
        run = uuid.uuid4().hex
        blocks: list[BlobBlock] = []
        for index, offset in enumerate(range(0, len(data), self._block_size)):
            block_id = f"{run}-{index:08d}"  # one length for every block of a blob
            chunk = data[offset : offset + self._block_size]
            blob.stage_block(block_id, chunk, length=len(chunk))
            blocks.append(BlobBlock(block_id=block_id))
        result = blob.commit_block_list(
            blocks,
            content_settings=ContentSettings(content_type=TSV_CONTENT_TYPE, cache_control=CACHE_CONTROL),
            metadata={SHA256_METADATA_KEY: digest, "source_id": source.id},
        )
        return _version(result["etag"], result["last_modified"])

    def read(self, source: DatasetSource) -> tuple[bytes, BlobVersion] | None:
        """The published bytes and their version (one consistent read), or None before the first publish."""
        try:
            downloader = self._dataset_blob(source).download_blob()
        except ResourceNotFoundError:
            return None
        data = downloader.readall()
        return data, _version(downloader.properties.etag, downloader.properties.last_modified)

    def version(self, source: DatasetSource) -> BlobVersion | None:
        try:
            properties = self._dataset_blob(source).get_blob_properties()
        except ResourceNotFoundError:
            return None
        return _version(properties.etag, properties.last_modified)

    # -- metadata ----------------------------------------------------------------------------------

    def metadata(self, source: DatasetSource) -> Stored[DatasetMetadata] | None:
        """The source's metadata and its ETag; None before the first refresh. Unreadable metadata reads
        as a failed status with no watermark (the next run covers the full window and overwrites it)."""
        blob = self._locks.get_blob_client(metadata_blob_name(source.id))
        try:
            downloader = blob.download_blob()
        except ResourceNotFoundError:
            return None
        data = downloader.readall()
        etag = str(downloader.properties.etag)
        try:
            meta = DatasetMetadata.model_validate_json(data)
        except ValidationError as exc:
            logger.warning("metadata of %s unreadable (%d problems)", source.id, exc.error_count())
            meta = DatasetMetadata(source_id=source.id, status="failed", errors=["unreadable metadata"])
        if meta.source_id != source.id:
            meta = meta.model_copy(update={"source_id": source.id})
        return Stored(value=meta, etag=etag)

    def write_metadata(self, meta: DatasetMetadata, etag: str | None) -> str:
        """Write `meta` if the blob is still at `etag` (None: only if there is none yet); its new ETag.
        StaleMetadata otherwise."""
        blob = self._locks.get_blob_client(metadata_blob_name(meta.source_id))
        body = meta.model_dump_json().encode("utf-8")
        settings = ContentSettings(content_type="application/json")
        try:
            if etag is None:
                result = blob.upload_blob(body, overwrite=False, content_settings=settings)
            else:
                result = blob.upload_blob(
                    body,
                    overwrite=True,
                    etag=etag,
                    match_condition=MatchConditions.IfNotModified,
                    content_settings=settings,
                )
        except (ResourceExistsError, ResourceModifiedError) as exc:
            raise StaleMetadata(f"the metadata of {meta.source_id} changed meanwhile") from exc
        return str(result["etag"])

    # -- the lock ----------------------------------------------------------------------------------

    def _acquire(self, blob: BlobClient, lease: BlobLeaseClient, source_id: str) -> None:
        try:
            try:
                lease.acquire(lease_duration=self._lease_seconds)
            except ResourceNotFoundError:
                # The first refresh of this source: create the lock blob (a racing creator may win).
                with contextlib.suppress(ResourceExistsError, ResourceModifiedError):
                    blob.upload_blob(b"", overwrite=False)
                lease.acquire(lease_duration=self._lease_seconds)
        except HttpResponseError as exc:
            if exc.status_code in (409, 412):
                raise RefreshLocked(source_id) from None
            raise

    @contextlib.contextmanager
    def lease(self, source: DatasetSource) -> Iterator[HeldLease]:
        """Hold the source's refresh lock for the `with` block; RefreshLocked when someone else holds it."""
        blob = self._locks.get_blob_client(lock_blob_name(source.id))
        lease = BlobLeaseClient(blob)
        self._acquire(blob, lease, source.id)
        renewer = _Renewer(lease, self._renew_interval, source.id)
        renewer.start()
        try:
            yield renewer
        finally:
            renewer.stop()
            try:
                lease.release()
            except HttpResponseError as exc:  # expired or taken: it is not ours to release any more
                logger.warning("could not release the refresh lease of %s: %s", source.id, exc)


def lease_state(locks: ContainerClient, source_id: str) -> str | None:
    """The lock blob's lease state (`available`, `leased`, `expired`, ...), None when it does not exist."""
    try:
        properties = locks.get_blob_client(lock_blob_name(source_id)).get_blob_properties()
    except ResourceNotFoundError:
        return None
    return str(properties.lease.state)
