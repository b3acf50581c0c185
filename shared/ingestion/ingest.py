"""Normalize one archived page and store its events: the ingest worker's service."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from pydantic import BaseModel, Field

from shared.ingestion.events import RawRef
from shared.ingestion.messages import MAX_REFS_PER_ALERT_MESSAGE, AlertWorkMessage, EventRef, IngestMessage
from shared.ingestion.normalize import NormalizationError, normalize_record, refresh_summary
from shared.ingestion.ports import ArchivedPages, EventSink, NameResolver, SourceCounts
from shared.ingestion.sources.management_windows import SOURCE as MANAGEMENT_SOURCE
from shared.ingestion.sources.management_windows import watermark_key
from shared.platform.clock import Clock, utc_iso

logger = logging.getLogger(__name__)


DIRECTORY_SOURCE = "entra_audit"
DIRECTORY_OBJECT_TYPES = frozenset({"serviceprincipal", "application"})
_OBJECT_ID_PROPERTY = ".objectid"


class ChangedObject(BaseModel):
    """One target of a directory audit event: its type and id as Graph gave them, and the object ids its
    modified properties name (`ServicePrincipal.ObjectID`, `Application.ObjectID`: the object an owner
    or an app role assignment was added to), new value else old."""

    type: str | None = None
    id: str | None = None
    object_ids: dict[str, str] = Field(default_factory=dict)


class DirectoryChange(BaseModel):
    """A directory audit event stored for the first time that touched a service principal or an
    application: what the governance path (shared.app.governance_events) needs to queue an evaluation
    of the object."""

    event_id: str
    operation: str
    result: str
    timestamp: str | None = None
    targets: list[ChangedObject]


class IngestReport(BaseModel):
    source: str
    blob: str
    records: int
    stored: int
    new: int
    quarantined: int
    enriched: int
    alert_messages: list[str]
    directory_changes: list[DirectoryChange] = Field(default_factory=list)


def _changed_object(target: dict[str, Any]) -> ChangedObject:
    object_ids: dict[str, str] = {}
    for prop in target.get("modified_properties") or ():
        name = prop.get("name")
        if isinstance(name, str) and name.casefold().endswith(_OBJECT_ID_PROPERTY):
            value = prop.get("new") or prop.get("old")
            if isinstance(value, str) and value:
                object_ids[name] = value
    kind, ident = target.get("type"), target.get("id")
    return ChangedObject(
        type=kind if isinstance(kind, str) else None,
        id=ident if isinstance(ident, str) else None,
        object_ids=object_ids,
    )


def directory_changes(source: str, documents: list[dict[str, Any]]) -> list[DirectoryChange]:
    """The directory audit events among `documents` with a service principal or application target."""
    if source != DIRECTORY_SOURCE:
        return []
    changes: list[DirectoryChange] = []
    for document in documents:
        targets = [t for t in document.get("targets") or () if isinstance(t, dict)]
        kinds = {str(t.get("type") or "").casefold() for t in targets}
        operation = document.get("operation")
        if not kinds & DIRECTORY_OBJECT_TYPES or not isinstance(operation, str):
            continue
        changes.append(
            DirectoryChange(
                event_id=document["id"],
                operation=operation,
                result=str(document.get("result") or "unknown"),
                timestamp=document.get("timestamp"),
                targets=[_changed_object(t) for t in targets],
            )
        )
    return changes


def _state_key(message: IngestMessage) -> str:
    if message.source == MANAGEMENT_SOURCE and message.content_type:
        return watermark_key(message.content_type)
    return message.source


class IngestService:
    def __init__(
        self,
        archive: ArchivedPages,
        store: EventSink,
        watermarks: SourceCounts,
        tenant_id: str,
        clock: Clock,
        *,
        keep_raw: bool = False,
        resolver: NameResolver | None = None,
        normalize: Callable[..., dict[str, Any]] = normalize_record,
    ) -> None:
        self._archive = archive
        self._store = store
        self._watermarks = watermarks
        self._tenant_id = tenant_id
        self._clock = clock
        self._keep_raw = keep_raw
        self._resolver = resolver
        self._normalize = normalize

    def process(self, message: IngestMessage) -> IngestReport:
        now = self._clock.now()
        ingested_at = utc_iso(now)
        tenant_id = message.tenant_id or self._tenant_id
        documents: dict[str, dict[str, Any]] = {}
        quarantined = newly_quarantined = records = 0
        try:
            lines = list(self._archive.read_lines(message.blob))
        except ResourceNotFoundError as exc:
            raise ValueError(f"raw page {message.blob} does not exist") from exc
        for line_number, line in lines:
            records += 1
            try:
                record = json.loads(line)
                document = self._normalize(
                    message.source,
                    record,
                    tenant_id=tenant_id,
                    ingested_at=ingested_at,
                    raw_ref=RawRef(blob=message.blob, line=line_number),
                    keep_raw=self._keep_raw,
                )
            except (json.JSONDecodeError, NormalizationError) as exc:
                reason = f"{type(exc).__name__}: {exc}"
                kept = self._archive.quarantine(message.source, message.blob, line_number, reason, line, now)
                quarantined += 1
                newly_quarantined += kept.new
                continue
            documents[document["id"]] = document  # a page may repeat a record; one id, one write

        stored = list(documents.values())
        enriched = self._resolver.enrich(stored) if self._resolver and stored else 0
        if enriched:
            for document in stored:
                refresh_summary(document)  # the names enrichment found belong in the summary too
        new = self._store.write_events(stored)
        new_ids = {d["id"] for d in new}
        existing = [d for d in stored if d["id"] not in new_ids]
        self._store.update_facets(tenant_id, new, existing, ingested_at, shard_key=message.blob)
        if newly_quarantined:
            self._watermarks.add_counts(_state_key(message), quarantined=newly_quarantined)
        if quarantined:
            logger.warning(
                "%s: %d of %d records quarantined (%d seen before)",
                message.blob, quarantined, records, quarantined - newly_quarantined,
            )  # fmt: skip

        refs = [EventRef(id=d["id"], pk=d["pk"]) for d in stored]
        alert_messages = [
            AlertWorkMessage(
                source=message.source,
                blob=message.blob,
                run_id=message.run_id,
                events=refs[i : i + MAX_REFS_PER_ALERT_MESSAGE],
            ).model_dump_json()
            for i in range(0, len(refs), MAX_REFS_PER_ALERT_MESSAGE)
        ]
        return IngestReport(
            source=message.source,
            blob=message.blob,
            records=records,
            stored=len(stored),
            new=len(new),
            quarantined=quarantined,
            enriched=enriched,
            alert_messages=alert_messages,
            # Only events stored for the first time: a poll's overlap reads recent records again, and each
            # would cost the governance path a Graph read to learn it had been evaluated already.
            directory_changes=directory_changes(message.source, new),
        )
