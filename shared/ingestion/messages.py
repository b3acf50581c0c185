"""The messages of the ingest and alerts queues, as JSON: the claim check of one archived raw page
(`IngestMessage`) and the alert worker's stored events (`AlertWorkMessage`). The other queues carry
shared.probe.state.Trigger (backup-trigger) and shared.alerts.model.NotifyMessage (notify).

Anyone who can write to a queue can put any text there, so every name a message gives to storage is
checked when it is decoded, against the grammar of what the app itself writes: a blob name or an id with
`..`, a separator or a control character, a source the app does not collect, is a ValidationError, and
the message goes to `<queue>-poison` without any storage call. Unknown fields are ignored (a message of a
newer version stays readable during a deployment); nothing reads them.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, Field

from shared.ingestion.normalize import SOURCES
from shared.platform.ids import storage_blob_name, storage_id

# Management Activity API content types: Audit.AzureActiveDirectory, Audit.Exchange, DLP.All, ...
CONTENT_TYPE = re.compile(r"[A-Za-z0-9]{1,40}\.[A-Za-z0-9]{1,60}")


def _known_source(value: str) -> str:
    if value not in SOURCES:
        raise ValueError(f"source must be one of {', '.join(SOURCES)}")
    return value


def _content_type(value: str) -> str:
    if CONTENT_TYPE.fullmatch(value) is None:
        raise ValueError("content_type must look like Audit.General")
    return value


Source = Annotated[str, AfterValidator(_known_source)]
BlobName = Annotated[str, AfterValidator(storage_blob_name)]  # a raw archive page, as the app names them
StorageId = Annotated[str, AfterValidator(storage_id)]  # safe as an id and in a log line


class IngestMessage(BaseModel):
    """A claim check: one archived raw page, ready to normalize."""

    source: Source
    blob: BlobName
    count: int = Field(ge=0)
    run_id: StorageId
    content_type: Annotated[str, AfterValidator(_content_type)] | None = None
    tenant_id: StorageId | None = None  # the page's tenant; a worker never stamps its own on another's page


class EventRef(BaseModel):
    id: StorageId
    pk: str


class AlertWorkMessage(BaseModel):
    """Stored events for the alert worker to evaluate, by reference."""

    source: Source
    blob: BlobName
    run_id: StorageId
    events: list[EventRef]


MAX_REFS_PER_ALERT_MESSAGE = 250
