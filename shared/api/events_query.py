"""GET /api/events: validated filters -> parameterized Cosmos SQL, newest first, keyset paging.

Events are partitioned by tenant and month, so a query walks the months of its time range newest
first, one partition at a time, with `ORDER BY c.timestamp DESC, c.id DESC` (a composite index) and a
keyset condition from the continuation token. No OFFSET, no cross-partition fan-out, and every value
the caller sends is a query parameter, never SQL text.
"""

from __future__ import annotations

import datetime as dt
import re
import typing
import unicodedata
from collections.abc import Mapping, Sequence
from typing import Annotated, Any
from urllib.parse import parse_qs, urlsplit

from azure.cosmos import ContainerProxy
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator

from shared.api.paging import ContinuationSigner, TimeOutOfRangeError, parse_query_time, query_hash
from shared.api.problems import bad_request, from_validation_error
from shared.ingestion.events import OperationType, Result, Service
from shared.platform.clock import parse_utc, utc_iso

RELATIVE = re.compile(r"^(\d{1,5})([mhd])$")
DEFAULT_RANGE = dt.timedelta(days=30)
MAX_RANGE = dt.timedelta(days=800)
HIDDEN_FIELDS = ("raw",)
MAX_EXCLUSIONS = 20  # values per exclude_* parameter


def _printable(value: str) -> str:
    """Refuse control characters (C0, DEL, C1) and lone surrogates: no stored value holds them, and
    in a filter they would only hide a typo, or an attack, in logs and shared links."""
    if any(unicodedata.category(char) in ("Cc", "Cs") for char in value):
        raise ValueError("control characters are not allowed")
    return value


ExcludedOperation = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_printable)]
ExcludedSource = Annotated[str, Field(min_length=1, max_length=64), AfterValidator(_printable)]
ExcludedActor = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_printable)]


class EventQuery(BaseModel):
    """The filters of GET /api/events. Unknown parameters are refused."""

    model_config = ConfigDict(extra="forbid", use_enum_values=True)

    service: list[Service] = Field(default_factory=list, max_length=20)
    source: str | None = Field(default=None, max_length=64)
    operation: str | None = Field(default=None, max_length=200)
    operation_contains: str | None = Field(default=None, min_length=1, max_length=200)
    operation_type: OperationType | None = None
    result: Result | None = None
    actor: str | None = Field(default=None, min_length=1, max_length=200)
    target: str | None = Field(default=None, min_length=1, max_length=200)
    category: str | None = Field(default=None, max_length=100)
    tag: list[str] = Field(default_factory=list, max_length=20)
    exclude_tag: list[str] = Field(default_factory=list, max_length=20)
    exclude_service: list[Service] = Field(
        default_factory=list, max_length=MAX_EXCLUSIONS, description="leave out these services (repeatable)"
    )
    exclude_operation: list[ExcludedOperation] = Field(
        default_factory=list,
        max_length=MAX_EXCLUSIONS,
        description="leave out these operations, exact names (repeatable)",
    )
    exclude_result: list[Result] = Field(
        default_factory=list, max_length=MAX_EXCLUSIONS, description="leave out these results (repeatable)"
    )
    exclude_source: list[ExcludedSource] = Field(
        default_factory=list, max_length=MAX_EXCLUSIONS, description="leave out these sources (repeatable)"
    )
    exclude_actor: list[ExcludedActor] = Field(
        default_factory=list,
        max_length=MAX_EXCLUSIONS,
        description="leave out events whose actor UPN or display name contains this, any case (repeatable)",
    )
    correlation_id: str | None = Field(default=None, max_length=100)
    start: str | None = None
    end: str | None = None
    q: str | None = Field(default=None, min_length=1, max_length=200)
    page_size: int = Field(default=50, ge=1, le=200)
    continuation: str | None = Field(default=None, max_length=2000)

    @field_validator("start", "end")
    @classmethod
    def _time(cls, value: str | None) -> str | None:
        if value is None or RELATIVE.match(value):
            return value
        try:
            parse_query_time(value)
        except TimeOutOfRangeError:
            raise
        except ValueError:
            raise ValueError(
                "use ISO 8601 (2026-11-01T00:00:00Z) or a relative time such as 24h or 7d"
            ) from None
        return value

    def filters(self) -> dict[str, Any]:
        return self.model_dump(exclude={"continuation"}, exclude_defaults=True)


def list_fields(model: type[BaseModel]) -> tuple[str, ...]:
    """The query parameters of `model` that may be given more than once: its list-typed fields."""
    return tuple(name for name, info in model.model_fields.items() if _is_list(info.annotation))


def _is_list(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if origin in (list, tuple, set, frozenset):
        return True
    return origin is not None and any(_is_list(a) for a in typing.get_args(annotation) if a is not type(None))


REPEATABLE = list_fields(EventQuery)


def parse_query_string(url: str, repeatable: Sequence[str] = REPEATABLE) -> dict[str, Any]:
    """Query parameters with repeatable ones as lists (func.HttpRequest.params keeps only one value)."""
    values = parse_qs(urlsplit(url).query, keep_blank_values=True)
    parsed: dict[str, Any] = {}
    for name, items in values.items():
        if name in repeatable:
            parsed[name] = items
        elif len(items) > 1:
            raise bad_request(f"{name} may be given only once", field=name)
        else:
            parsed[name] = items[0]
    return parsed


def parse_event_query(params: Mapping[str, Any]) -> EventQuery:
    try:
        return EventQuery.model_validate(dict(params))
    except ValidationError as exc:
        raise from_validation_error(exc) from None


def _moment(value: str | None, now: dt.datetime, default: dt.datetime) -> dt.datetime:
    if value is None:
        return default
    match = RELATIVE.match(value)
    if match:
        amount, unit = int(match.group(1)), match.group(2)
        return (
            now
            - {
                "m": dt.timedelta(minutes=amount),
                "h": dt.timedelta(hours=amount),
                "d": dt.timedelta(days=amount),
            }[unit]
        )
    return parse_utc(value)


def months_between(start: dt.datetime, end: dt.datetime) -> list[str]:
    """`YYYY-MM` of every month the range touches, newest first."""
    months = []
    year, month = end.year, end.month
    while (year, month) >= (start.year, start.month):
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return months


class SensitivityPolicy(BaseModel):
    """Services and operations hidden from callers without the privacy role."""

    services: list[str] = Field(default_factory=list)
    operations: list[str] = Field(default_factory=list)

    def hides(self, event: Mapping[str, Any]) -> bool:
        return event.get("service") in self.services or event.get("operation") in self.operations


class HiddenFromCaller(BaseModel):
    """The sensitive services and operations the privacy policy left out of an answer for its caller."""

    services: list[str] = Field(description="sensitive services whose events were left out")
    operations: int = Field(
        ge=0,
        description="how many sensitive operations had their events left out; their names are not "
        "shown to a caller who may not see them",
    )


def hidden_for(query: EventQuery, hide: SensitivityPolicy | None) -> HiddenFromCaller | None:
    """What `hide` left out of the answer to `query`: the sensitive services and operations the filter
    would otherwise have matched (a filter on other services, or excluding them, hides nothing); None
    when nothing was left out."""
    if hide is None:
        return None
    services = [
        s
        for s in hide.services
        if (not query.service or s in query.service) and s not in query.exclude_service
    ]
    operations = [
        o for o in hide.operations if query.operation in (None, o) and o not in query.exclude_operation
    ]
    if not services and not operations:
        return None
    return HiddenFromCaller(services=services, operations=len(operations))


def build_conditions(
    query: EventQuery, start: str, end: str, hide: SensitivityPolicy | None
) -> tuple[list[str], list[dict[str, Any]]]:
    """WHERE conditions (besides the partition and the keyset) and their parameters."""
    conditions = ["c.timestamp >= @start", "c.timestamp < @end"]
    parameters: list[dict[str, Any]] = [{"name": "@start", "value": start}, {"name": "@end", "value": end}]

    def add(condition: str, name: str, value: Any) -> None:
        conditions.append(condition)
        parameters.append({"name": name, "value": value})

    if query.service:
        add("ARRAY_CONTAINS(@services, c.service)", "@services", list(query.service))
    for field in ("source", "operation", "operation_type", "result", "category", "correlation_id"):
        value = getattr(query, field)
        if value is not None:
            add(f"c.{field} = @{field}", f"@{field}", value)
    if query.operation_contains:
        add(
            "CONTAINS(LOWER(c.operation), @operation_contains)",
            "@operation_contains",
            query.operation_contains.lower(),
        )
    if query.actor:
        add(
            "(CONTAINS(LOWER(c.actor.upn), @actor) OR CONTAINS(LOWER(c.actor.display), @actor))",
            "@actor",
            query.actor.lower(),
        )
    if query.target:
        add(
            "EXISTS(SELECT VALUE t FROM t IN c.targets WHERE CONTAINS(LOWER(t.display), @target) "
            "OR CONTAINS(LOWER(t.id), @target))",
            "@target",
            query.target.lower(),
        )
    for i, tag in enumerate(query.tag):
        add(f"ARRAY_CONTAINS(c.tags, @tag{i})", f"@tag{i}", tag)
    for i, tag in enumerate(query.exclude_tag):
        add(f"NOT ARRAY_CONTAINS(c.tags, @exclude_tag{i})", f"@exclude_tag{i}", tag)
    # ARRAY_CONTAINS(@list, undefined) is false, so an event without the field is kept.
    for field in ("service", "operation", "result", "source"):
        excluded = _unique(getattr(query, f"exclude_{field}"))
        if excluded:
            add(f"NOT ARRAY_CONTAINS(@exclude_{field}, c.{field})", f"@exclude_{field}", excluded)
    for i, actor in enumerate(_unique(a.lower() for a in query.exclude_actor)):
        # IS_STRING first: CONTAINS over a missing upn is undefined, and NOT undefined would drop
        # the event (an app acting has no upn).
        add(
            f"NOT ((IS_STRING(c.actor.upn) AND CONTAINS(LOWER(c.actor.upn), @exclude_actor{i})) OR "
            f"(IS_STRING(c.actor.display) AND CONTAINS(LOWER(c.actor.display), @exclude_actor{i})))",
            f"@exclude_actor{i}",
            actor,
        )
    if query.q:
        add(
            "(CONTAINS(LOWER(c.summary), @q) OR CONTAINS(LOWER(c.operation), @q) OR "
            "CONTAINS(LOWER(c.actor.upn), @q) OR CONTAINS(LOWER(c.actor.display), @q) OR "
            "EXISTS(SELECT VALUE t FROM t IN c.targets WHERE CONTAINS(LOWER(t.display), @q)))",
            "@q",
            query.q.lower(),
        )
    if hide is not None and hide.services:
        add("NOT ARRAY_CONTAINS(@hidden_services, c.service)", "@hidden_services", hide.services)
    if hide is not None and hide.operations:
        add("NOT ARRAY_CONTAINS(@hidden_operations, c.operation)", "@hidden_operations", hide.operations)
    return conditions, parameters


def _unique(values: typing.Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))


def public_event(document: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in document.items() if not k.startswith("_") and k not in HIDDEN_FIELDS}


class EventSearch:
    def __init__(self, events: ContainerProxy, signer: ContinuationSigner, tenant_id: str) -> None:
        self._events = events
        self._signer = signer
        self._tenant_id = tenant_id

    def search(self, query: EventQuery, now: dt.datetime, hide: SensitivityPolicy | None) -> dict[str, Any]:
        # The token binds the filters as written ("7d" included) and carries the window they resolved
        # to on the first page, so later pages see the same range.
        fingerprint = query_hash({**query.filters(), "privacy": hide is None})
        position = self._signer.decode(query.continuation, fingerprint) if query.continuation else None
        if position is not None:
            try:
                start, end = parse_utc(position["start"]), parse_utc(position["end"])
            except (KeyError, TypeError, ValueError):
                raise bad_request("the continuation token is not valid", field="continuation") from None
        else:
            end = _moment(query.end, now, now)
            start = _moment(query.start, now, end - DEFAULT_RANGE)
        if start >= end:
            raise bad_request("start must be before end", field="start")
        if end - start > MAX_RANGE:
            raise bad_request("the time range may span at most 800 days", field="start")
        window = {"start": utc_iso(start), "end": utc_iso(end)}
        months = months_between(start, end)
        if position is not None:
            if position.get("month") not in months:
                raise bad_request("the continuation token is not valid", field="continuation")
            months = months[months.index(position["month"]) :]
        conditions, parameters = build_conditions(query, window["start"], window["end"], hide)
        items: list[dict[str, Any]] = []
        for index, month in enumerate(months):
            resume = position is not None and position.get("month") == month and position.get("ts")
            keyset = position if resume else None
            wanted = query.page_size - len(items)
            page = self._query_month(month, conditions, parameters, keyset, wanted + 1)
            if len(page) > wanted:
                items.extend(page[:wanted])
                last = items[-1]
                token = self._signer.encode(
                    fingerprint, {**window, "month": month, "ts": last["timestamp"], "id": last["id"]}
                )
                return {"items": [public_event(i) for i in items], "continuation": token}
            items.extend(page)
            if len(items) == query.page_size and index + 1 < len(months):
                token = self._signer.encode(
                    fingerprint, {**window, "month": months[index + 1], "ts": None, "id": None}
                )
                return {"items": [public_event(i) for i in items], "continuation": token}
        return {"items": [public_event(i) for i in items], "continuation": None}

    def _query_month(
        self,
        month: str,
        conditions: Sequence[str],
        parameters: Sequence[dict[str, Any]],
        keyset: Mapping[str, Any] | None,
        limit: int,
    ) -> list[dict[str, Any]]:
        return query_month_page(self._events, self._tenant_id, month, conditions, parameters, keyset, limit)


def query_month_page(
    events: ContainerProxy,
    tenant_id: str,
    month: str,
    conditions: Sequence[str],
    parameters: Sequence[dict[str, Any]],
    keyset: Mapping[str, Any] | None,
    limit: int,
) -> list[dict[str, Any]]:
    """Up to `limit` events of one month's partition, newest first (timestamp, then id, descending),
    after the keyset position (the last event of the previous page) when one is given. `conditions` are
    constant SQL fragments whose values are all in `parameters`."""
    pk = f"{tenant_id}:{month}"
    where = ["c.pk = @pk", *conditions]
    params = [{"name": "@pk", "value": pk}, *parameters]
    if keyset is not None:
        where.append("(c.timestamp < @after_ts OR (c.timestamp = @after_ts AND c.id < @after_id))")
        params += [
            {"name": "@after_ts", "value": keyset["ts"]},
            {"name": "@after_id", "value": keyset["id"]},
        ]
    params.append({"name": "@limit", "value": int(limit)})
    # Only constant fragments are joined here; every caller-supplied value is a parameter.
    clauses = " AND ".join(where)
    sql = f"SELECT TOP @limit * FROM c WHERE {clauses} ORDER BY c.timestamp DESC, c.id DESC"  # noqa: S608
    return list(events.query_items(sql, parameters=params, partition_key=pk, max_item_count=int(limit)))
