"""An in-memory DatasetStorage and scripted query runners for the refresh service's unit tests."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from shared.datasets.querying import QueryOutcome, QueryWindow
from shared.datasets.sources import DatasetSource
from shared.datasets.store import BlobVersion, DatasetMetadata, RefreshLocked, StaleMetadata, Stored


@dataclass
class MemoryLease:
    held: bool = True


@dataclass
class MemoryDatasetStore:
    """Implements shared.datasets.store.DatasetStorage; `now` stamps Last-Modified."""

    now: Callable[[], dt.datetime]
    files: dict[str, tuple[bytes, BlobVersion]] = field(default_factory=dict)
    metadata_blobs: dict[str, tuple[str, str]] = field(default_factory=dict)  # id -> (json, etag)
    held: set[str] = field(default_factory=set)
    publishes: int = 0
    writes: int = 0
    _counter: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _etag(self, content: bytes) -> str:
        self._counter += 1
        return f'"{hashlib.sha256(content).hexdigest()[:12]}-{self._counter}"'

    def publish(self, source: DatasetSource, data: bytes) -> BlobVersion:
        with self._lock:
            current = self.files.get(source.output_filename)
            if current is not None and current[0] == data:
                return current[1]
            version = BlobVersion(etag=self._etag(data), last_modified=self.now())
            self.files[source.output_filename] = (data, version)
            self.publishes += 1
            return version

    def read(self, source: DatasetSource) -> tuple[bytes, BlobVersion] | None:
        return self.files.get(source.output_filename)

    def version(self, source: DatasetSource) -> BlobVersion | None:
        found = self.files.get(source.output_filename)
        return None if found is None else found[1]

    def metadata(self, source: DatasetSource) -> Stored[DatasetMetadata] | None:
        found = self.metadata_blobs.get(source.id)
        if found is None:
            return None
        return Stored(value=DatasetMetadata.model_validate_json(found[0]), etag=found[1])

    def write_metadata(self, meta: DatasetMetadata, etag: str | None) -> str:
        with self._lock:
            current = self.metadata_blobs.get(meta.source_id)
            if (current is None) != (etag is None) or (current is not None and current[1] != etag):
                raise StaleMetadata(meta.source_id)
            body = meta.model_dump_json()
            new_etag = self._etag(body.encode())
            self.metadata_blobs[meta.source_id] = (body, new_etag)
            self.writes += 1
            return new_etag

    @contextlib.contextmanager
    def lease(self, source: DatasetSource) -> Iterator[MemoryLease]:
        with self._lock:
            if source.id in self.held:
                raise RefreshLocked(source.id)
            self.held.add(source.id)
        try:
            yield MemoryLease()
        finally:
            with self._lock:
                self.held.discard(source.id)

    def stored_meta(self, source_id: str) -> DatasetMetadata:
        return DatasetMetadata.model_validate_json(self.metadata_blobs[source_id][0])


@dataclass
class ScriptedRunner:
    """A QueryRunner that answers from a function of the window and records every window it was asked."""

    answer: Callable[[DatasetSource, QueryWindow], QueryOutcome]
    windows: list[QueryWindow] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self, source: DatasetSource, window: QueryWindow) -> QueryOutcome:
        with self._lock:
            self.windows.append(window)
        return self.answer(source, window)
