"""GET /api/objects/{id}/history: every event that touched one object (as its actor or as a target),
across all sources, newest first.

The id is matched exactly (case and all) against what the events store: `actor.id`, `actor.upn` and
each `targets[].id`. It goes through the object id grammar (shared.platform.ids.OBJECT_ID) before any
query, and only ever as a query parameter.

Why a bounded range and not a per-object index: events are partitioned by tenant and month
(`pk = "<tenant>:<YYYY-MM>"`), so a bounded range is a few single-partition queries, the same plan as
GET /api/events (one month at a time, newest first, `ORDER BY c.timestamp DESC, c.id DESC` with `TOP`
and a keyset from the signed continuation token). The fields it filters on are all in the events
container's default range index (only the modified properties' values, the raw record and the sign-in,
DLP and alert details are excluded: shared/platform/resources.json), so Cosmos answers the filter from
the index. A per-object index would cost a write per actor and target of every ingested event (about
2-3 per event, on every page of every source) for a page an admin opens now and then; the range keeps
ingestion as it is. The range defaults to the last 30 days and may span at most 366 days (the default
retention is 365), so a request reads at most 14 month partitions, and usually one or two.

Measured (bench/object_history.py, 100,000 events over two months on cosmosdb-server, a loaded 2-core
machine): 0.73-1.85 s per first page, 0.7-2.1 times the explorer's newest page and 0.7-1.2 times its
`target=` filter; cosmosdb-server scans the whole container per query, so only the ratios carry over.
The RU charge in Azure has not been measured (x-ms-request-charge gives it per query).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from azure.cosmos import ContainerProxy
from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared.api.auth import Role
from shared.api.events_query import (
    RELATIVE,
    EventQuery,
    HiddenFromCaller,
    SensitivityPolicy,
    hidden_for,
    months_between,
    public_event,
    query_month_page,
)
from shared.api.models import EventView
from shared.api.paging import ContinuationSigner, TimeOutOfRangeError, parse_query_time, query_hash
from shared.api.problems import bad_request
from shared.api.responses import ApiGuard
from shared.api.routing import Call, PathParam, Reply, Resource, route
from shared.platform.clock import Clock, parse_utc, utc_iso
from shared.platform.ids import MAX_OBJECT_ID_LENGTH, is_object_id

DEFAULT_HISTORY_RANGE = dt.timedelta(days=30)
MAX_HISTORY_RANGE = dt.timedelta(days=366)
MAX_NAMES = 10  # names, other ids and types reported for the object
_UNITS = {"m": dt.timedelta(minutes=1), "h": dt.timedelta(hours=1), "d": dt.timedelta(days=1)}

OBJECT_ID = PathParam(
    "id",
    "object id, exactly as events store it: a GUID, a UPN, an object name",
    "object",
    is_object_id,
    max_length=MAX_OBJECT_ID_LENGTH,
    refusal=(
        f"an object id is 1 to {MAX_OBJECT_ID_LENGTH} printable characters, a letter or digit first, without "
        "a blank at the end and without '/', '\\', '?' or '%'"
    ),
)

# The event touched the object: it acted, or it is one of the targets. Exact, case-sensitive matches.
TOUCHES = (
    "(c.actor.id = @object OR c.actor.upn = @object OR "
    "EXISTS(SELECT VALUE t FROM t IN c.targets WHERE t.id = @object))"
)


def _query_time(value: str | None) -> str | None:
    """The time grammar of GET /api/events: ISO 8601, or relative (30m, 24h, 7d)."""
    if value is None or RELATIVE.match(value):
        return value
    try:
        parse_query_time(value)
    except TimeOutOfRangeError:
        raise
    except ValueError:
        raise ValueError("use ISO 8601 (2026-11-01T00:00:00Z) or a relative time such as 24h or 7d") from None
    return value


class HistoryQuery(BaseModel):
    """The range and paging of an object's history. Unknown parameters are refused."""

    model_config = ConfigDict(extra="forbid")

    start: str | None = Field(
        default=None,
        description="ISO 8601 or relative (30m, 24h, 7d); default 30 days before `end`; at most 366 days "
        "before it",
    )
    end: str | None = Field(default=None, description="ISO 8601 or relative; default now")
    page_size: int = Field(default=50, ge=1, le=200)
    continuation: str | None = Field(default=None, max_length=2000)

    @field_validator("start", "end")
    @classmethod
    def _time(cls, value: str | None) -> str | None:
        return _query_time(value)

    def fingerprint(self, object_id: str, hide: SensitivityPolicy | None) -> str:
        filters = self.model_dump(exclude={"continuation"}, exclude_defaults=True)
        return query_hash({**filters, "object": object_id, "privacy": hide is None})


class ObjectSummary(BaseModel):
    id: str = Field(description="the object id, as asked for")
    names: list[str] = Field(
        description="the display names the events of this page give it, newest first, at most 10"
    )
    aliases: list[str] = Field(
        description="its other ids in the events of this page, newest first, at most 10: the UPN of a user "
        "asked for by object id, or the object id of a UPN (each has a history of its own)"
    )
    types: list[str] = Field(description="its types as the events of this page give them, at most 10")


class ObjectHistoryPage(BaseModel):
    """A page of an object's history and the range it covers."""

    object: ObjectSummary
    start: str = Field(description="UTC ISO-8601 start of the range (inclusive)")
    end: str = Field(description="UTC ISO-8601 end of the range (exclusive)")
    items: list[EventView] = Field(description="events that touched the object, newest first")
    continuation: str | None = Field(
        default=None, description="Pass back as `continuation` for the next page; null on the last page"
    )
    hidden: HiddenFromCaller | None = Field(
        default=None,
        description="the sensitive services and operations left out for this caller (they need the Privacy "
        "role); null when nothing was left out",
    )


def _moment(value: str | None, now: dt.datetime, default: dt.datetime) -> dt.datetime:
    if value is None:
        return default
    match = RELATIVE.match(value)
    if match:
        return now - int(match.group(1)) * _UNITS[match.group(2)]
    return parse_utc(value)


def describe(object_id: str, events: Sequence[Mapping[str, Any]]) -> ObjectSummary:
    """The names, other ids and types `events` give the object, newest first, each once."""
    names: dict[str, None] = {}
    aliases: dict[str, None] = {}
    types: dict[str, None] = {}

    def add(found: dict[str, None], value: Any) -> None:
        if isinstance(value, str) and value and value != object_id:
            found.setdefault(value)

    for event in events:
        actor = event.get("actor") or {}
        if object_id in (actor.get("id"), actor.get("upn")):
            add(names, actor.get("display"))
            add(aliases, actor.get("upn"))
            add(aliases, actor.get("id"))
            if actor.get("type") != "unknown":
                add(types, actor.get("type"))
        for target in event.get("targets") or []:
            if isinstance(target, Mapping) and target.get("id") == object_id:
                add(names, target.get("display"))
                add(types, target.get("type"))
    return ObjectSummary(
        id=object_id,
        names=list(names)[:MAX_NAMES],
        aliases=list(aliases)[:MAX_NAMES],
        types=list(types)[:MAX_NAMES],
    )


class ObjectHistory:
    """The query behind the route: one single-partition query per month of the range, newest first."""

    def __init__(self, events: ContainerProxy, signer: ContinuationSigner, tenant_id: str) -> None:
        self._events = events
        self._signer = signer
        self._tenant_id = tenant_id

    def page(
        self, object_id: str, query: HistoryQuery, now: dt.datetime, hide: SensitivityPolicy | None
    ) -> ObjectHistoryPage:
        fingerprint = query.fingerprint(object_id, hide)
        position = self._signer.decode(query.continuation, fingerprint) if query.continuation else None
        start, end = self._window(query, now, position)
        months = months_between(start, end)
        if position is not None:
            if position.get("month") not in months:
                raise bad_request("the continuation token is not valid", field="continuation")
            months = months[months.index(position["month"]) :]
        window = {"start": utc_iso(start), "end": utc_iso(end)}
        conditions = ["c.timestamp >= @start", "c.timestamp < @end", TOUCHES]
        parameters: list[dict[str, Any]] = [
            {"name": "@start", "value": window["start"]},
            {"name": "@end", "value": window["end"]},
            {"name": "@object", "value": object_id},
        ]
        if hide is not None and hide.services:
            conditions.append("NOT ARRAY_CONTAINS(@hidden_services, c.service)")
            parameters.append({"name": "@hidden_services", "value": list(hide.services)})
        if hide is not None and hide.operations:
            conditions.append("NOT ARRAY_CONTAINS(@hidden_operations, c.operation)")
            parameters.append({"name": "@hidden_operations", "value": list(hide.operations)})
        items: list[dict[str, Any]] = []
        token: str | None = None
        for index, month in enumerate(months):
            resume = position is not None and position.get("month") == month and position.get("ts")
            wanted = query.page_size - len(items)
            found = self._query_month(month, conditions, parameters, position if resume else None, wanted + 1)
            if len(found) > wanted:
                items.extend(found[:wanted])
                last = items[-1]
                token = self._signer.encode(
                    fingerprint, {**window, "month": month, "ts": last["timestamp"], "id": last["id"]}
                )
                break
            items.extend(found)
            if len(items) == query.page_size and index + 1 < len(months):
                token = self._signer.encode(
                    fingerprint, {**window, "month": months[index + 1], "ts": None, "id": None}
                )
                break
        hidden = hidden_for(EventQuery(), hide)
        return ObjectHistoryPage(
            object=describe(object_id, items),
            start=window["start"],
            end=window["end"],
            items=[EventView.model_validate(public_event(i)) for i in items],
            continuation=token,
            hidden=hidden,
        )

    def _window(
        self, query: HistoryQuery, now: dt.datetime, position: Mapping[str, Any] | None
    ) -> tuple[dt.datetime, dt.datetime]:
        """The range the first page resolved (kept in the token, so `7d` means the same on every page)."""
        if position is not None:
            try:
                return parse_utc(position["start"]), parse_utc(position["end"])
            except (KeyError, TypeError, ValueError):
                raise bad_request("the continuation token is not valid", field="continuation") from None
        end = _moment(query.end, now, now)
        start = _moment(query.start, now, end - DEFAULT_HISTORY_RANGE)
        if start >= end:
            raise bad_request("start must be before end", field="start")
        if end - start > MAX_HISTORY_RANGE:
            raise bad_request("an object's history may span at most 366 days", field="start")
        return start, end

    def _query_month(
        self,
        month: str,
        conditions: Sequence[str],
        parameters: Sequence[dict[str, Any]],
        keyset: Mapping[str, Any] | None,
        limit: int,
    ) -> list[dict[str, Any]]:
        return query_month_page(self._events, self._tenant_id, month, conditions, parameters, keyset, limit)


class ObjectsApi(Resource):
    """GET /api/objects/{id}/history."""

    def __init__(self, guard: ApiGuard, history: ObjectHistory, clock: Clock) -> None:
        self.guard = guard
        self._history = history
        self._clock = clock

    @route(
        "GET",
        "objects/{id}/history",
        "object_history",
        operation_id="getObjectHistory",
        role=Role.READER,
        summary="Every event that touched an object (as actor or target), newest first",
        query=HistoryQuery,
        body=None,
        response=ObjectHistoryPage,
        path_params=(OBJECT_ID,),
        description=(
            "The id is matched exactly (case included) against each event's `actor.id`, `actor.upn` and "
            "`targets[].id`, across all sources. The range defaults to the last 30 days and may span at "
            "most 366 days; paging as GET /api/events. `object` gives the names, other ids and types "
            "the page's events give it; `hidden` what the privacy policy left out for this caller. An "
            "id that no event holds answers an empty page. Cost: one single-partition query per month "
            "of the range (until the page is full), filtered on range-indexed paths and ordered by the "
            "(timestamp, id) composite index."
        ),
    )
    def history(self, call: Call[HistoryQuery, None]) -> Reply:
        """A bounded range, not a per-object index: the module docstring gives why and what it costs."""
        return self._history.page(call.params["id"], call.query, self._clock.now(), call.hide)
