"""Claim check: archive a fetched page in Blob, then queue a small message that points at it."""

from __future__ import annotations

import datetime as dt
from typing import Any

from shared.ingestion.archive import raw_blob_name
from shared.ingestion.messages import IngestMessage
from shared.ingestion.ports import PageWriter
from shared.platform.ports import MessageQueue


class PageHandOff:
    def __init__(self, archive: PageWriter, ingest_queue: MessageQueue, tenant_id: str | None = None) -> None:
        self._archive = archive
        self._queue = ingest_queue
        self._tenant_id = tenant_id

    def __call__(
        self,
        source: str,
        records: list[Any],
        *,
        run_id: str,
        run_started: dt.datetime,
        page: int,
        content_type: str | None = None,
    ) -> IngestMessage:
        """Durably hand off one page: the blob first, then the message. Both must succeed."""
        blob = raw_blob_name(
            source if content_type is None else f"{source}/{content_type}", run_started, run_id, page
        )
        self._archive.write_page(blob, records)
        message = IngestMessage(
            source=source,
            blob=blob,
            count=len(records),
            run_id=run_id,
            content_type=content_type,
            tenant_id=self._tenant_id,
        )
        self._queue.send_message(message.model_dump_json())
        return message
