"""The event routes beyond search: raw record, facets, export, tags, comments and bulk tagging.

Annotations (`tags`, `comments`) are written by read-modify-replace under the event's ETag, re-read on
a lost race, and every write is recorded in the audit log. Every route applies the privacy policy:
an event hidden from the caller is a 404, and never exported, counted in facets or bulk-tagged.
"""

from __future__ import annotations

import concurrent.futures
import csv
import datetime as dt
import hashlib
import io
import json
import logging
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Annotated, Any, Literal, TypeVar

from azure.core.exceptions import ResourceNotFoundError
from azure.cosmos import ContainerProxy
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema

from shared.api.audit import AuditLog
from shared.api.auth import Principal, Role
from shared.api.bodies import parse_json_body
from shared.api.events_query import (
    REPEATABLE,
    EventQuery,
    EventSearch,
    SensitivityPolicy,
    parse_query_string,
    public_event,
)
from shared.api.models import EventView
from shared.api.openapi import PathParam, RouteDoc
from shared.api.paging import query_hash
from shared.api.problems import ApiProblem, bad_request, from_validation_error
from shared.api.responses import (
    ApiGuard,
    ApiResponse,
    answer,
    idempotency_key,
    json_response,
    not_found,
    require_id,
)
from shared.ingestion.archive import RawArchive
from shared.ingestion.event_store import FACET_FIELDS, EventStore
from shared.platform.clock import Clock, utc_iso
from shared.platform.cosmos import ConcurrentUpdateError, read_or_none, update_unchanged
from shared.platform.ids import UnsafeStorageIdError, is_event_id

logger = logging.getLogger(__name__)

SEARCH_PAGE_SIZE = 200  # the largest page EventSearch serves
MAX_TAGS_PER_EVENT = 50
MAX_TAGS_PER_REQUEST = 20
MAX_COMMENTS_PER_EVENT = 100  # keeps an event well under Cosmos DB's 2 MB item limit
MAX_UPDATE_RETRIES = 8
BULK_CONCURRENCY = 8
PAGING_FIELDS = ("page_size", "continuation")
TAG_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9 _.:/-]*$"
CSV_COLUMNS = (
    "id",
    "timestamp",
    "source",
    "service",
    "operation",
    "operation_type",
    "result",
    "actor_upn",
    "actor_display",
    "actor_ip",
    "targets",
    "category",
    "correlation_id",
    "summary",
    "tags",
)
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
JSONL_MEDIA_TYPE = "application/x-ndjson"
CSV_MEDIA_TYPE = "text/csv; charset=utf-8"

M = TypeVar("M", bound=BaseModel)
Tag = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64, pattern=TAG_PATTERN)
]


# -- request and response models --------------------------------------------------------------------


FILTER_FIELDS = frozenset(EventQuery.model_fields) - set(PAGING_FIELDS)


class EventFilter(EventQuery):
    """The filters of GET /api/events without paging: export and bulk tagging walk every match."""

    page_size: SkipJsonSchema[int] = SEARCH_PAGE_SIZE
    continuation: SkipJsonSchema[str | None] = None

    @field_validator("page_size", "continuation", mode="before")
    @classmethod
    def _no_paging(cls, value: Any) -> Any:
        raise ValueError("paging parameters are not accepted here")

    def criteria(self) -> dict[str, Any]:
        """The filters the caller set, enums as their values; no paging, no export format."""
        return self.model_dump(include=FILTER_FIELDS, exclude_defaults=True)

    def search_query(self) -> EventQuery:
        return EventQuery.model_validate({**self.criteria(), "page_size": SEARCH_PAGE_SIZE})


class ExportQuery(EventFilter):
    format: Literal["jsonl", "csv"] = Field(default="jsonl", description="jsonl (default) or csv")


class FacetQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    top: int = Field(default=50, ge=1, le=500, description="values per facet, most frequent first")


class TagChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    add: list[Tag] = Field(default_factory=list, max_length=MAX_TAGS_PER_REQUEST)
    remove: list[Tag] = Field(default_factory=list, max_length=MAX_TAGS_PER_REQUEST)

    @model_validator(mode="after")
    def _meaningful(self) -> TagChange:
        if not self.add and not self.remove:
            raise ValueError("give at least one tag to add or remove")
        both = sorted(set(self.add) & set(self.remove))
        if both:
            raise ValueError(f"a tag cannot be both added and removed: {', '.join(both)}")
        return self


class BulkTagBody(TagChange):
    filter: EventFilter = Field(description="the GET /api/events filters, without paging")


class CommentBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=4000)

    @field_validator("text")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("the comment is empty")
        return value


class CommentOut(BaseModel):
    id: str
    author: str
    author_id: str
    at: str = Field(description="UTC ISO-8601 time of the comment")
    text: str


class FacetValue(BaseModel):
    value: str
    count: int


class FacetsOut(BaseModel):
    facets: dict[str, list[FacetValue]] = Field(description="facet -> values, most frequent first")


class BulkTagResult(BaseModel):
    matched: int = Field(description="events selected by the filter, at most `cap`")
    updated: int = Field(description="events whose tags changed")
    skipped: int = Field(description=f"events left alone: they would exceed {MAX_TAGS_PER_EVENT} tags")
    failed: int = Field(description="events not updated because they kept changing meanwhile")
    truncated: bool = Field(description="more events matched than `cap`")
    cap: int


# -- pure helpers -----------------------------------------------------------------------------------


class TagLimitError(ValueError):
    pass


def apply_tags(tags: Sequence[str], add: Iterable[str], remove: Iterable[str]) -> list[str]:
    """The tags after the change, in order: kept ones first, then new ones. Refuses to grow past 50."""
    removed = set(remove)
    kept = [t for t in dict.fromkeys(tags) if t not in removed]
    result = kept + [t for t in dict.fromkeys(add) if t not in kept]
    if len(result) > MAX_TAGS_PER_EVENT and len(result) > len(tags):
        raise TagLimitError(f"an event holds at most {MAX_TAGS_PER_EVENT} tags")
    return result


def csv_cell(value: Any) -> str:
    """A cell as text, with a leading quote where a spreadsheet would run it as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def csv_row(event: Mapping[str, Any]) -> list[str]:
    actor = event.get("actor") or {}
    targets = [t.get("display") or t.get("id") for t in event.get("targets") or [] if isinstance(t, dict)]
    values = {
        **{name: event.get(name) for name in CSV_COLUMNS},
        "actor_upn": actor.get("upn"),
        "actor_display": actor.get("display"),
        "actor_ip": actor.get("ip"),
        "targets": "; ".join(str(t) for t in targets if t),
        "tags": ";".join(str(t) for t in event.get("tags") or []),
    }
    return [csv_cell(values[name]) for name in CSV_COLUMNS]


def comment_id(subject: str, idempotency_key: str | None) -> str:
    if idempotency_key is None:
        return uuid.uuid4().hex
    return hashlib.sha256(f"{subject}|{idempotency_key}".encode()).hexdigest()[:32]


def export_filename(now: dt.datetime, extension: str) -> str:
    return f"events-{now.astimezone(dt.UTC):%Y%m%dT%H%M%SZ}.{extension}"


def find_event(events: ContainerProxy, tenant_id: str, event_id: str) -> dict[str, Any] | None:
    """An event by id: ids are unique per tenant, but which month partition holds it is unknown."""
    found = list(
        events.query_items(
            "SELECT * FROM c WHERE c.tenant_id = @tenant AND c.id = @id",
            parameters=[{"name": "@tenant", "value": tenant_id}, {"name": "@id", "value": event_id}],
            enable_cross_partition_query=True,
        )
    )
    return found[0] if found else None


def _parse_query(model: type[M], params: Mapping[str, Any]) -> M:
    try:
        return model.model_validate(dict(params))
    except ValidationError as exc:
        raise from_validation_error(exc) from None


# -- the routes -------------------------------------------------------------------------------------


class EventActions:
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
    ) -> None:
        self._guard = guard
        self._events = events
        self._search = search
        self._store = store
        self._archive = archive
        self._audit = audit
        self._tenant_id = tenant_id
        self._clock = clock
        self._export_max = export_max
        self._bulk_max = bulk_max

    # -- reads --------------------------------------------------------------------------------------

    def raw(self, event_id: str, headers: Mapping[str, str], path: str) -> ApiResponse:
        def handle() -> ApiResponse:
            principal = self._guard.require(headers, Role.READER)
            event = self._visible(event_id, principal)
            ref = event.get("raw_ref") or {}
            line = self._raw_line(ref.get("blob"), ref.get("line")) if isinstance(ref, dict) else None
            if line is not None:
                return ApiResponse(200, line, headers={"Cache-Control": "no-store"})
            if isinstance(event.get("raw"), dict):  # kept inline (INGEST_KEEP_RAW) without an archive ref
                return json_response(event["raw"])
            raise not_found("raw record for event", event_id)

        return answer(path, handle)

    def facets(self, url: str, headers: Mapping[str, str], path: str) -> ApiResponse:
        def handle() -> ApiResponse:
            principal = self._guard.require(headers, Role.READER)
            query = _parse_query(FacetQuery, parse_query_string(url, repeatable=()))
            hide = self._guard.hide_for(principal)
            hidden: dict[str, set[str]] = {}
            if hide is not None:
                hidden = {"service": set(hide.services), "operation": set(hide.operations)}
            merged = self._store.read_facets(self._tenant_id)
            facets: dict[str, list[dict[str, Any]]] = {}
            for facet in [*FACET_FIELDS, *sorted(set(merged) - set(FACET_FIELDS))]:
                counts = merged.get(facet, {})
                visible = [(v, n) for v, n in counts.items() if v not in hidden.get(facet, set())]
                ranked = sorted(visible, key=lambda item: (-item[1], item[0]))[: query.top]
                facets[facet] = [{"value": value, "count": count} for value, count in ranked]
            return json_response({"facets": facets})

        return answer(path, handle)

    def export(self, url: str, headers: Mapping[str, str], path: str) -> ApiResponse:
        def handle() -> ApiResponse:
            principal = self._guard.require(headers, Role.READER)
            params = parse_query_string(url)
            for name in PAGING_FIELDS:
                if name in params:
                    raise bad_request(f"{name} is not accepted by export: it returns every match", field=name)
            query = _parse_query(ExportQuery, params)
            buffer = io.StringIO()
            if query.format == "csv":
                writer = csv.writer(buffer)
                writer.writerow(CSV_COLUMNS)

                def sink(event: dict[str, Any]) -> None:
                    writer.writerow(csv_row(event))

            else:

                def sink(event: dict[str, Any]) -> None:
                    buffer.write(json.dumps(event, ensure_ascii=False) + "\n")

            count, truncated = self._walk(
                query.search_query(), self._guard.hide_for(principal), self._export_max, sink
            )
            extension, media_type = (
                ("csv", CSV_MEDIA_TYPE) if query.format == "csv" else ("jsonl", JSONL_MEDIA_TYPE)
            )
            return ApiResponse(
                200,
                buffer.getvalue(),
                media_type,
                {
                    "Cache-Control": "no-store",
                    "Content-Disposition": (
                        f'attachment; filename="{export_filename(self._clock.now(), extension)}"'
                    ),
                    "X-AOC-Export-Count": str(count),
                    "X-AOC-Export-Truncated": "true" if truncated else "false",
                    "X-AOC-Export-Cap": str(self._export_max),
                },
            )

        return answer(path, handle)

    # -- writes -------------------------------------------------------------------------------------

    def patch_tags(self, event_id: str, body: bytes, headers: Mapping[str, str], path: str) -> ApiResponse:
        def handle() -> ApiResponse:
            principal = self._guard.require(headers, Role.ANALYST)
            require_id("event", event_id, is_event_id)
            change = parse_json_body(TagChange, body, headers)
            event = self._visible(event_id, principal)
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

            stored, changed = self._update(event, mutate)
            if changed:
                self._audit.record(principal, "event.tags", "event", event_id, seen["before"], seen["after"])
                logger.info("event %s tags changed by %s", event_id, principal.name)
            return json_response(public_event(stored))

        return answer(path, handle)

    def add_comment(self, event_id: str, body: bytes, headers: Mapping[str, str], path: str) -> ApiResponse:
        """201 with the comment. A replayed Idempotency-Key answers as the first request did (201 with
        the stored comment, as the IETF Idempotency-Key draft asks) and adds nothing."""

        def handle() -> ApiResponse:
            principal = self._guard.require(headers, Role.ANALYST)
            require_id("event", event_id, is_event_id)
            key = idempotency_key(headers)
            request = parse_json_body(CommentBody, body, headers)
            event = self._visible(event_id, principal)
            comment = {
                "id": comment_id(principal.subject, key),
                "author": principal.name,
                "author_id": principal.subject,
                "at": utc_iso(self._clock.now()),
                "text": request.text,
            }
            existing: dict[str, Any] = {}

            def mutate(current: dict[str, Any]) -> bool:
                comments = current.setdefault("comments", [])
                for stored in comments:
                    if stored.get("id") == comment["id"]:
                        existing.update(stored)
                        return False
                if len(comments) >= MAX_COMMENTS_PER_EVENT:
                    raise bad_request(
                        f"an event holds at most {MAX_COMMENTS_PER_EVENT} comments", field="text"
                    )
                comments.append(comment)
                return True

            _, changed = self._update(event, mutate)
            if not changed:
                return json_response(existing, status=201)
            self._audit.record(principal, "event.comment", "event", event_id, None, comment, request_id=key)
            return json_response(comment, status=201)

        return answer(path, handle)

    def bulk_tag(self, body: bytes, headers: Mapping[str, str], path: str) -> ApiResponse:
        def handle() -> ApiResponse:
            principal = self._guard.require(headers, Role.ANALYST)
            request = parse_json_body(BulkTagBody, body, headers)
            targets: list[tuple[str, str]] = []
            matched, truncated = self._walk(
                request.filter.search_query(),
                self._guard.hide_for(principal),
                self._bulk_max,
                lambda event: targets.append((event["id"], event["pk"])),
            )
            outcomes = {"updated": 0, "unchanged": 0, "skipped": 0, "failed": 0}
            with concurrent.futures.ThreadPoolExecutor(BULK_CONCURRENCY, "bulk-tag") as pool:
                futures = [pool.submit(self._tag_one, i, pk, request) for i, pk in targets]
                for future in concurrent.futures.as_completed(futures):
                    try:
                        outcomes[future.result()] += 1
                    except Exception:
                        logger.exception("bulk tag: an event could not be updated")
                        outcomes["failed"] += 1
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
                principal,
                "event.bulk_tag",
                "events",
                f"filter:{query_hash(filters)}",
                {"filter": filters},
                {"add": request.add, "remove": request.remove, **result.model_dump()},
            )
            logger.info("bulk tag by %s: %s", principal.name, result.model_dump())
            return json_response(result.model_dump())

        return answer(path, handle)

    # -- helpers ------------------------------------------------------------------------------------

    def _visible(self, event_id: str, principal: Principal) -> dict[str, Any]:
        require_id("event", event_id, is_event_id)
        event = find_event(self._events, self._tenant_id, event_id)
        hide = self._guard.hide_for(principal)
        if event is None or (hide is not None and hide.hides(event)):
            raise not_found("event", event_id)
        return event

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

    def _update(
        self, event: dict[str, Any], mutate: Callable[[dict[str, Any]], bool]
    ) -> tuple[dict[str, Any], bool]:
        """Apply `mutate` and replace the event under its ETag, re-reading on a lost race.

        Returns the stored event and whether it changed (`mutate` returns False for nothing to do).
        """
        try:
            stored, changed = update_unchanged(
                self._events, event["id"], event["pk"], mutate, current=event, attempts=MAX_UPDATE_RETRIES
            )
        except ConcurrentUpdateError:
            raise ApiProblem(
                409, "Conflict", "the event kept changing meanwhile: read it again and retry", kind="conflict"
            ) from None
        if stored is None:
            raise not_found("event", event["id"])
        return stored, changed

    def _tag_one(self, event_id: str, pk: str, change: TagChange) -> str:
        current = read_or_none(self._events, event_id, pk)
        if current is None:
            return "unchanged"  # deleted (expired) since the search

        def mutate(document: dict[str, Any]) -> bool:
            before = list(document.get("tags") or [])
            after = apply_tags(before, change.add, change.remove)
            document["tags"] = after
            return after != before

        try:
            _, changed = self._update(current, mutate)
        except TagLimitError:
            return "skipped"
        except ApiProblem as problem:
            if problem.status == 404:
                return "unchanged"
            raise
        return "updated" if changed else "unchanged"

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


# -- OpenAPI ----------------------------------------------------------------------------------------

_EVENT_ID = (PathParam("id", "event id"),)

EVENT_ACTION_ROUTES: list[RouteDoc] = [
    RouteDoc(
        "GET",
        "events/{id}/raw",
        "getEventRaw",
        "The original record an event was normalized from",
        Role.READER,
        "events",
        path_params=_EVENT_ID,
        content={"application/json": {"type": "object", "description": "the source API's record, verbatim"}},
    ),
    RouteDoc(
        "GET",
        "events/facets",
        "getEventFacets",
        "Distinct services, operations, results, actors and sources with their event counts",
        Role.READER,
        "events",
        query=FacetQuery,
        response=FacetsOut,
    ),
    RouteDoc(
        "GET",
        "events/export",
        "exportEvents",
        "Every event matching the GET /api/events filters, as JSON lines or CSV",
        Role.READER,
        "events",
        query=ExportQuery,
        repeatable=REPEATABLE,
        content={
            JSONL_MEDIA_TYPE: {"type": "string", "description": "one event (JSON object) per line"},
            "text/csv": {"type": "string", "description": "a header row, then one event per row"},
        },
        description=(
            "Newest first, at most API_EXPORT_MAX_EVENTS events. Headers: X-AOC-Export-Count, "
            "X-AOC-Export-Truncated (true when the cap cut it short) and X-AOC-Export-Cap. CSV cells "
            "that a spreadsheet would run as a formula start with a single quote."
        ),
    ),
    RouteDoc(
        "PATCH",
        "events/{id}/tags",
        "patchEventTags",
        "Add and remove tags on an event",
        Role.ANALYST,
        "events",
        body=TagChange,
        response=EventView,
        path_params=_EVENT_ID,
        description=f"An event holds at most {MAX_TAGS_PER_EVENT} tags. Recorded in the audit log.",
    ),
    RouteDoc(
        "POST",
        "events/{id}/comments",
        "addEventComment",
        "Comment on an event",
        Role.ANALYST,
        "events",
        body=CommentBody,
        response=CommentOut,
        status=201,
        path_params=_EVENT_ID,
        description=(
            "With an Idempotency-Key header (at most 100 characters) a retried request adds the comment "
            "once: the replay answers 201 with the stored comment. Recorded in the audit log."
        ),
    ),
    RouteDoc(
        "POST",
        "events/tags",
        "bulkTagEvents",
        "Add and remove tags on every event a filter matches",
        Role.ANALYST,
        "events",
        body=BulkTagBody,
        response=BulkTagResult,
        description=(
            "Newest first, at most API_BULK_TAG_MAX_EVENTS events (`truncated` says whether more matched). "
            "Recorded in the audit log as one entry."
        ),
    ),
]
