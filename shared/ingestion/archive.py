"""The raw archive: every fetched page as gzip JSON lines in Blob, plus the quarantine.

Blob names are checked with shared.platform.ids.storage_blob_name before any call: a name that an event's
`raw_ref` carries is read back by the API, and `..` in it would address another container.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from azure.core.exceptions import ResourceExistsError
from azure.storage.blob import BlobServiceClient, ContentSettings

from shared.platform.clock import utc_iso
from shared.platform.ids import storage_blob_name
from shared.platform.resources import BlobContainers


def raw_blob_name(source: str, run_started: dt.datetime, run_id: str, page: int) -> str:
    """`{source}/{yyyy}/{mm}/{dd}/{HH}/{run_id}-{page:05}.jsonl.gz` inside the `raw` container."""
    return f"{source}/{run_started:%Y/%m/%d/%H}/{run_id}-{page:05d}.jsonl.gz"


def encode_lines(records: list[Any]) -> bytes:
    text = "\n".join(json.dumps(r, ensure_ascii=False, separators=(",", ":")) for r in records)
    return gzip.compress(text.encode("utf-8"), compresslevel=5)


@dataclass(frozen=True)
class QuarantinedRecord:
    name: str
    new: bool


class RawArchive:
    def __init__(self, blob_service: BlobServiceClient) -> None:
        self._raw = blob_service.get_container_client(BlobContainers.RAW)
        self._quarantine = blob_service.get_container_client(BlobContainers.QUARANTINE)

    def write_page(self, blob_name: str, records: list[Any]) -> None:
        self._raw.upload_blob(
            storage_blob_name(blob_name),
            encode_lines(records),
            overwrite=True,
            content_settings=ContentSettings(content_type="application/gzip"),
        )

    def read_lines(self, blob_name: str) -> Iterator[tuple[int, str]]:
        """(line number starting at 1, raw line text) for each line of an archived page.

        Raises shared.platform.ids.UnsafeStorageIdError for a name the app would not have written."""
        data = gzip.decompress(self._raw.download_blob(storage_blob_name(blob_name)).readall()).decode(
            "utf-8"
        )
        for number, line in enumerate(data.split("\n"), start=1):
            if line.strip():
                yield number, line

    def list_pages(self, source: str | None = None, since: dt.datetime | None = None) -> Iterator[str]:
        prefix = f"{source}/" if source else None
        for blob in self._raw.list_blobs(name_starts_with=prefix):
            if since is None or (blob.last_modified and blob.last_modified >= since):
                yield blob.name

    def quarantine(
        self, source: str, blob_name: str, line: int, reason: str, raw: str, now: dt.datetime
    ) -> QuarantinedRecord:
        """Keep a record that could not be normalized, with why and where it was first seen.

        The blob is named by the record's hash and never overwritten, so the same bad record fetched
        again by an overlapping poll, or redelivered, is stored and counted once.
        """
        digest = hashlib.sha256(raw.encode("utf-8")).hexdigest()
        name = storage_blob_name(f"{source}/{digest}.json")  # a `..` source would leave the container
        body = {
            "source": source,
            "blob": blob_name,
            "line": line,
            "reason": reason,
            "at": utc_iso(now),
            "raw": raw,
        }
        try:
            self._quarantine.upload_blob(
                name, json.dumps(body, ensure_ascii=False).encode("utf-8"), overwrite=False
            )
        except ResourceExistsError:
            return QuarantinedRecord(name, new=False)
        return QuarantinedRecord(name, new=True)
