"""The event routes: search, one event, its raw record, facets, histogram, export, tags, comments, bulk
tagging.

Annotations (`tags`, `comments`) are written under the event's ETag (shared.api.event_annotations),
and every write is recorded in the audit log. Every route applies the privacy policy:
an event hidden from the caller is a 404, and never exported, counted in facets or bulk-tagged.
The models are in shared.api.events_models, the export formats in shared.api.events_export.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from azure.cosmos import ContainerProxy
from pydantic import Field

from shared.api.audit import AuditLog
from shared.api.auth import Role
from shared.api.event_annotations import EventAnnotator
from shared.api.events_export import CSV_COLUMNS as CSV_COLUMNS
from shared.api.events_export import EXPORT_CONTENT, ExportWriter
from shared.api.events_export import csv_row as csv_row
from shared.api.events_histogram import EventHistogram, HistogramOut, HistogramQuery
from shared.api.events_models import (
    MAX_COMMENTS_PER_EVENT,
    BulkTagBody,
    BulkTagResult,
    CommentOut,
    ExportQuery,
    FacetQuery,
    FacetsOut,
    TagChange,
    TagLimitError,
    apply_tags,
)
from shared.api.events_models import MAX_TAGS_PER_EVENT as MAX_TAGS_PER_EVENT
from shared.api.events_models import CommentBody as CommentBody
from shared.api.events_models import comment_id as comment_id
from shared.api.events_query import (
    EventQuery,
    EventSearch,
    HiddenFromCaller,
    SensitivityPolicy,
    hidden_for,
    public_event,
)
from shared.api.models import EventPage as PlainEventPage
from shared.api.models import EventView
from shared.api.paging import query_hash
from shared.api.problems import bad_request
from shared.api.responses import ApiGuard, ApiResponse, json_response, not_found
from shared.api.routing import Call, NoQuery, PathParam, Reply, Resource, route
from shared.ingestion.archive import RawArchive
from shared.ingestion.event_store import FACET_FIELDS, EventStore
from shared.ingestion.time_counts import TimeCounts
from shared.platform.clock import Clock, utc_iso
from shared.platform.ids import UnsafeStorageIdError, is_event_id

logger = logging.getLogger(__name__)

EVENT_ID = PathParam("id", "event id", "event", is_event_id)
RAW_CONTENT = {"application/json": {"type": "object", "description": "the source API's record, verbatim"}}


def find_event(events: ContainerProxy, tenant_id: str, event_id: str) -> dict[str, Any] | None:
    """An event by id: ids are unique per tenant, but which month partition holds it is unknown."""
    found = list(
        events.query_items(
            "SELECT * FROM c WHERE c.tenant_id = @tenant AND c.id = @id",
            parameters=[{"name": "@tenant", "value": tenant_id}, {"name": "@id", "value": event_id}],
            enable_cross_partition_query=True,
        )
    )
    return dict(found[0]) if found else None


class EventPage(PlainEventPage):
    """A page of GET /api/events, and what the privacy policy left out of it for this caller."""

    hidden: HiddenFromCaller | None = Field(
        default=None,
        description="the sensitive services and operations left out for this caller (they need the Privacy "
        "role); null when nothing was left out",
    )


class EventSearchApi(Resource):
    """GET /api/events and GET /api/events/{id}."""

    def __init__(
        self, guard: ApiGuard, search: EventSearch, events: ContainerProxy, tenant_id: str, clock: Clock
    ) -> None:
        self.guard = guard
        self._search = search
        self._events = events
        self._tenant_id = tenant_id
        self._clock = clock

    @route(
        "GET",
        "events",
        "list_events",
        role=Role.READER,
        summary="Search events, newest first",
        query=EventQuery,
        body=None,
        response=EventPage,
        description=(
            "Filters combine with AND; `exclude_*` parameters (repeatable, at most 20 values each) leave "
            "matching events out. `hidden` names the sensitive services and operations left out for a "
            "caller without the Privacy role."
        ),
    )
    def list_events(self, call: Call[EventQuery, None]) -> Reply:
        page = self._search.search(call.query, self._clock.now(), call.hide)
        hidden = hidden_for(call.query, call.hide)
        return {**page, "hidden": hidden.model_dump() if hidden is not None else None}

    @route(
        "GET",
        "events/{id}",
        "get_event",
        role=Role.READER,
        summary="One event",
        query=NoQuery,
        body=None,
        response=EventView,
        path_params=(EVENT_ID,),
    )
    def get_event(self, call: Call[NoQuery, None]) -> Reply:
        return public_event(self._visible(call.params["id"], call.hide))

    def _visible(self, event_id: str, hide: SensitivityPolicy | None) -> dict[str, Any]:
        event = find_event(self._events, self._tenant_id, event_id)
        if event is None or (hide is not None and hide.hides(event)):
            raise not_found("event", event_id)
        return event


class EventsApi(EventSearchApi):
    """Every event route: search and one event (inherited), and the routes beyond them."""

    def __init__(
        self,
        guard: ApiGuard,
        events: ContainerProxy,
        search: EventSearch,
        store: EventStore,
        archive: RawArchive,
        audit: AuditLog,
        tenant_id: str,
        clock: Clock,
        *,
        export_max: int,
        bulk_max: int,
        time_counts: TimeCounts | None = None,
        retention_days: int | None = None,
    ) -> None:
        """`time_counts`, when given, answers histograms whose filter they can (events_histogram) for
        days younger than `retention_days`."""
        super().__init__(guard, search, events, tenant_id, clock)
        self._store = store
        self._annotator = EventAnnotator(events)
        self._archive = archive
        self._audit = audit
        self._export_max = export_max
        self._bulk_max = bulk_max
        self._histogram = EventHistogram(events, tenant_id, counts=time_counts, retention_days=retention_days)

    # -- reads --------------------------------------------------------------------------------------

    @route(
        "GET",
        "events/{id}/raw",
        "get_event_raw",
        operation_id="getEventRaw",
        role=Role.READER,
        summary="The original record an event was normalized from",
        query=NoQuery,
        body=None,
        response=None,
        content=RAW_CONTENT,
        path_params=(EVENT_ID,),
    )
    def raw(self, call: Call[NoQuery, None]) -> Reply:
        event_id = call.params["id"]
        event = self._visible(event_id, call.hide)
        ref = event.get("raw_ref") or {}
        line = self._raw_line(ref.get("blob"), ref.get("line")) if isinstance(ref, dict) else None
        if line is not None:
            return ApiResponse(200, line, headers={"Cache-Control": "no-store"})
        if isinstance(event.get("raw"), dict):  # kept inline (INGEST_KEEP_RAW) without an archive ref
            return json_response(event["raw"])
        raise not_found("raw record for event", event_id)

    @route(
        "GET",
        "events/facets",
        "event_facets",
        operation_id="getEventFacets",
        role=Role.READER,
        summary="Distinct services, operations, results, actors and sources with their event counts",
        query=FacetQuery,
        body=None,
        response=FacetsOut,
    )
    def facets(self, call: Call[FacetQuery, None]) -> Reply:
        hidden: dict[str, set[str]] = {}
        if call.hide is not None:
            hidden = {"service": set(call.hide.services), "operation": set(call.hide.operations)}
        merged = self._store.read_facets(self._tenant_id)
        facets: dict[str, list[dict[str, Any]]] = {}
        for facet in [*FACET_FIELDS, *sorted(set(merged) - set(FACET_FIELDS))]:
            counts = merged.get(facet, {})
            visible = [(v, n) for v, n in counts.items() if v not in hidden.get(facet, set())]
            ranked = sorted(visible, key=lambda item: (-item[1], item[0]))[: call.query.top]
            facets[facet] = [{"value": value, "count": count} for value, count in ranked]
        return {"facets": facets}

    @route(
        "GET",
        "events/histogram",
        "event_histogram",
        operation_id="getEventHistogram",
        role=Role.READER,
        summary="Event counts per time bucket for the GET /api/events filters",
        query=HistogramQuery,
        body=None,
        response=HistogramOut,
        description=(
            "The range is the filter's start and end (default: the last 30 days). Buckets are aligned to "
            "1 min, 5 min, 15 min, 1 h, 3 h, 6 h, 12 h, 1 day or whole days, the smallest step that needs at "
            "most `buckets` of them. Cost: one single-partition COUNT query per bucket (about 3 RU each)."
        ),
    )
    def histogram(self, call: Call[HistogramQuery, None]) -> Reply:
        return self._histogram.histogram(call.query, self._clock.now(), call.hide).model_dump(
            mode="json", by_alias=True
        )

    @route(
        "GET",
        "events/export",
        "export_events",
        operation_id="exportEvents",
        role=Role.READER,
        summary="Every event matching the GET /api/events filters, as JSON lines or CSV",
        query=ExportQuery,
        body=None,
        response=None,
        content=EXPORT_CONTENT,
        description=(
            "Newest first, at most API_EXPORT_MAX_EVENTS events. Headers: X-AOC-Export-Count, "
            "X-AOC-Export-Truncated (true when the cap cut it short) and X-AOC-Export-Cap. CSV cells "
            "that a spreadsheet would run as a formula start with a single quote."
        ),
    )
    def export(self, call: Call[ExportQuery, None]) -> Reply:
        writer = ExportWriter(call.query.format)
        count, truncated = self._walk(call.query.search_query(), call.hide, self._export_max, writer.add)
        return writer.response(self._clock.now(), count, truncated, self._export_max)

    # -- writes -------------------------------------------------------------------------------------

    @route(
        "PATCH",
        "events/{id}/tags",
        "tag_event",
        operation_id="patchEventTags",
        role=Role.ANALYST,
        summary="Add and remove tags on an event",
        query=NoQuery,
        body=TagChange,
        response=EventView,
        path_params=(EVENT_ID,),
        description=f"An event holds at most {MAX_TAGS_PER_EVENT} tags. Recorded in the audit log.",
    )
    def patch_tags(self, call: Call[NoQuery, TagChange]) -> Reply:
        event_id, change = call.params["id"], call.body
        event = self._visible(event_id, call.hide)
        seen: dict[str, list[str]] = {}

        def mutate(current: dict[str, Any]) -> bool:
            before = list(current.get("tags") or [])
            try:
                after = apply_tags(before, change.add, change.remove)
            except TagLimitError as exc:
                raise bad_request(str(exc), field="add") from None
            seen.update(before=before, after=after)
            current["tags"] = after
            return after != before

        stored, changed = self._annotator.update(event, mutate)
        if changed:
            self._audit.record(
                call.principal,
                "event.tags",
                "event",
                event_id,
                seen["before"],
                seen["after"],
                request_id=call.idempotency_key,
            )
            logger.info("event %s tags changed by %s", event_id, call.principal.name)
        return public_event(stored)

    @route(
        "POST",
        "events/{id}/comments",
        "comment_event",
        operation_id="addEventComment",
        role=Role.ANALYST,
        summary="Comment on an event",
        query=NoQuery,
        body=CommentBody,
        response=CommentOut,
        status=201,
        path_params=(EVENT_ID,),
        description=(
            "With an Idempotency-Key header (at most 100 characters) a retried request adds the comment "
            "once: the replay answers 201 with the stored comment. Recorded in the audit log."
        ),
    )
    def add_comment(self, call: Call[NoQuery, CommentBody]) -> Reply:
        """A replayed Idempotency-Key answers as the first request did (201 with the stored comment,
        as the IETF Idempotency-Key draft asks) and adds nothing."""
        event_id, principal, key = call.params["id"], call.principal, call.idempotency_key
        event = self._visible(event_id, call.hide)
        comment = {
            "id": comment_id(principal.subject, key),
            "author": principal.name,
            "author_id": principal.subject,
            "at": utc_iso(self._clock.now()),
            "text": call.body.text,
        }
        existing: dict[str, Any] = {}

        def mutate(current: dict[str, Any]) -> bool:
            comments = current.setdefault("comments", [])
            for stored in comments:
                if stored.get("id") == comment["id"]:
                    existing.update(stored)
                    return False
            if len(comments) >= MAX_COMMENTS_PER_EVENT:
                raise bad_request(f"an event holds at most {MAX_COMMENTS_PER_EVENT} comments", field="text")
            comments.append(comment)
            return True

        _, changed = self._annotator.update(event, mutate)
        if not changed:
            return existing
        self._audit.record(principal, "event.comment", "event", event_id, None, comment, request_id=key)
        return comment

    @route(
        "POST",
        "events/tags",
        "bulk_tag_events",
        operation_id="bulkTagEvents",
        role=Role.ANALYST,
        summary="Add and remove tags on every event a filter matches",
        query=NoQuery,
        body=BulkTagBody,
        response=BulkTagResult,
        description=(
            "Newest first, at most API_BULK_TAG_MAX_EVENTS events (`truncated` says whether more matched). "
            "Recorded in the audit log as one entry."
        ),
    )
    def bulk_tag(self, call: Call[NoQuery, BulkTagBody]) -> Reply:
        request = call.body
        targets: list[tuple[str, str]] = []
        matched, truncated = self._walk(
            request.filter.search_query(),
            call.hide,
            self._bulk_max,
            lambda event: targets.append((event["id"], event["pk"])),
        )
        outcomes = self._annotator.tag_all(targets, request)
        result = BulkTagResult(
            matched=matched,
            updated=outcomes["updated"],
            skipped=outcomes["skipped"],
            failed=outcomes["failed"],
            truncated=truncated,
            cap=self._bulk_max,
        )
        filters = request.filter.criteria()
        self._audit.record(
            call.principal,
            "event.bulk_tag",
            "events",
            f"filter:{query_hash(filters)}",
            {"filter": filters},
            {"add": request.add, "remove": request.remove, **result.model_dump()},
            request_id=call.idempotency_key,
        )
        logger.info("bulk tag by %s: %s", call.principal.name, result.model_dump())
        return result

    # -- helpers ------------------------------------------------------------------------------------

    def _raw_line(self, blob: Any, line: Any) -> str | None:
        if not isinstance(blob, str) or not blob or not isinstance(line, int):
            return None
        try:
            text = next((t for number, t in self._archive.read_lines(blob) if number == line), None)
        except ResourceNotFoundError:
            return None
        except UnsafeStorageIdError:
            logger.warning("an event's raw_ref names a blob the app would not write: not read")
            return None
        if text is None:
            return None
        try:
            json.loads(text)
        except ValueError:
            logger.warning("raw line %s:%d is not JSON", blob, line)
            return None
        return text

    def _walk(
        self,
        query: EventQuery,
        hide: SensitivityPolicy | None,
        cap: int,
        sink: Callable[[dict[str, Any]], None],
    ) -> tuple[int, bool]:
        """Feed up to `cap` matching events, newest first, to `sink`: (how many, whether more matched)."""
        now = self._clock.now()
        count = 0
        while True:
            page = self._search.search(query, now, hide)
            for item in page["items"]:
                if count == cap:
                    return count, True
                sink(item)
                count += 1
            if page["continuation"] is None:
                return count, False
            query = query.model_copy(update={"continuation": page["continuation"]})


# The name the integration tests and older callers build this resource by.
EventActions = EventsApi
