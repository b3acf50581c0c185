"""GET /api/events/histogram: event counts per time bucket for the GET /api/events filters.

Neither Azure Cosmos DB's cheap paths nor cosmosdb-server have GROUP BY over a computed bucket, so the
histogram is a set of range counts. The filter's time range (`start`/`end`, resolved as GET /api/events
resolves them: default the last 30 days, at most 800 days) is cut into buckets aligned to a round step
(1 min, 5 min, 15 min, 1 h, 3 h, 6 h, 12 h, 1 day, then whole days), the smallest step that needs at
most `buckets` buckets (1..120, default 60). Every query is single-partition, with the partition key
set (events are partitioned by `{tenant}:{yyyy-mm}`), built from the same WHERE conditions as
GET /api/events (privacy hiding included), every value a parameter, and they run on a bounded pool
(8 at a time per request):

1. one `SELECT VALUE COUNT(1) FROM c WHERE c.pk = @pk AND c.timestamp >= @start AND … < @end AND …`
   per month the range touches;
2. then, over the months that matched anything: if at most 2,000 events matched in all, one
   `SELECT VALUE c.timestamp …` per month, bucketed here; otherwise one COUNT per bucket and month
   (steps up to a day are aligned to UTC midnight, so a month boundary never splits one; a longer step
   adds at most one query per month).

Cost per request, m = months touched (1-2 for the default 30 days): a COUNT over a range served by the
index is ~2.5-3 RU plus ~0.x RU per 1,000 index entries matched. A small match set costs m COUNTs plus
reading at most 2,000 timestamps (~3 RU per 100 documents read: at most ~60 RU, usually far less). A
large one costs m COUNTs plus one per bucket: ~150-200 RU for the default 60 buckets, ~300-400 RU for
120, ~30-40 RU for 12, whatever the number of events. The equality and tag filters (service, source,
operation, operation_type, result, category, correlation_id, tag, exclude_tag, privacy hiding) are
answered from the index; the substring filters (q, actor, target, operation_contains) make Cosmos read
each event of the range once per pass, as paging through GET /api/events with them would.

cosmosdb-server (local) has no index and evaluates every query over the whole container, so there the
cost is the number of queries times the container size: ~5 s for 60 buckets over 5,000 events.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from azure.cosmos import ContainerProxy
from pydantic import BaseModel, ConfigDict, Field

from shared.api.events_models import EventFilter
from shared.api.events_query import (
    DEFAULT_RANGE,
    MAX_RANGE,
    RELATIVE,
    SensitivityPolicy,
    build_conditions,
)
from shared.api.problems import bad_request
from shared.platform.clock import parse_utc, utc_iso

DEFAULT_BUCKETS = 60
MAX_BUCKETS = 120
MAX_CONCURRENT_QUERIES = 8
MINUTE, HOUR, DAY = 60, 3600, 86400
# The round steps, smallest first; beyond a day, whole days.
STEPS = (MINUTE, 5 * MINUTE, 15 * MINUTE, HOUR, 3 * HOUR, 6 * HOUR, 12 * HOUR, DAY)
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MICROS = 1_000_000
# At most this many matches in the range: read their timestamps (one query per month) instead of
# counting bucket by bucket.
SMALL_MATCH_SET = 2000
T = TypeVar("T")
_RELATIVE_UNITS = {"m": dt.timedelta(minutes=1), "h": dt.timedelta(hours=1), "d": dt.timedelta(days=1)}


class HistogramQuery(EventFilter):
    """The GET /api/events filters (without paging) and the number of buckets wanted."""

    model_config = ConfigDict(extra="forbid", use_enum_values=True)

    buckets: int = Field(
        default=DEFAULT_BUCKETS,
        ge=1,
        le=MAX_BUCKETS,
        description="the most buckets wanted; the step is the smallest round one that needs no more",
    )


class HistogramBucket(BaseModel):
    start: str = Field(description="UTC ISO-8601 start of the bucket, a multiple of bucket_seconds")
    count: int = Field(ge=0, description="matching events from max(start, from) to min(start + step, to)")


class HistogramOut(BaseModel):
    """Counts per bucket. The first and last buckets may begin before `from` or end after `to`: they
    count only the events within [from, to)."""

    from_: str = Field(alias="from", description="UTC ISO-8601 start of the range (inclusive)")
    to: str = Field(description="UTC ISO-8601 end of the range (exclusive)")
    bucket_seconds: int = Field(
        description="the step: 60, 300, 900, 3600, 10800, 21600, 43200 or a multiple of 86400"
    )
    buckets: list[HistogramBucket] = Field(description="oldest first, contiguous")
    total: int = Field(ge=0, description="the sum of the counts: every matching event in [from, to)")


def resolve_range(query: EventFilter, now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) of the filter, as GET /api/events resolves it (relative times count back from now;
    the default start is 30 days before the end); a 400 for an empty or over-long range."""
    end = _moment(query.end, now, now)
    start = _moment(query.start, now, end - DEFAULT_RANGE)
    if start >= end:
        raise bad_request("start must be before end", field="start")
    if end - start > MAX_RANGE:
        raise bad_request("the time range may span at most 800 days", field="start")
    return start, end


def _moment(value: str | None, now: dt.datetime, default: dt.datetime) -> dt.datetime:
    if value is None:
        return default
    match = RELATIVE.match(value)
    if match:
        return now - int(match.group(1)) * _RELATIVE_UNITS[match.group(2)]
    return parse_utc(value)


@dataclass(frozen=True)
class Plan:
    """Aligned buckets over [start, end): times in integer microseconds since the Unix epoch, so no
    bucket edge beyond the range is ever made a datetime (9999-12-31 has no next day)."""

    start_us: int
    end_us: int
    step_seconds: int
    first_us: int  # the first bucket's aligned start, at or before start_us
    count: int

    def bucket(self, index: int) -> tuple[int, int, int]:
        """(aligned start, clipped lower bound, clipped upper bound) of bucket `index`."""
        aligned = self.first_us + index * self.step_seconds * _MICROS
        return aligned, max(aligned, self.start_us), min(aligned + self.step_seconds * _MICROS, self.end_us)


def _micros(moment: dt.datetime) -> int:
    return (moment - EPOCH) // dt.timedelta(microseconds=1)


def _moment_of(micros: int) -> dt.datetime:
    return EPOCH + dt.timedelta(microseconds=micros)


def _aligned(start_us: int, end_us: int, step_seconds: int) -> tuple[int, int]:
    """(first aligned start, how many buckets of `step_seconds` cover [start_us, end_us))."""
    step = step_seconds * _MICROS
    first = (start_us // step) * step
    return first, -(-(end_us - first) // step)


def plan_buckets(start: dt.datetime, end: dt.datetime, wanted: int) -> Plan:
    """The smallest round step whose aligned buckets over [start, end) number at most `wanted`."""
    if wanted < 1 or start >= end:
        raise ValueError("need at least one bucket over a non-empty range")
    start_us, end_us = _micros(start), _micros(end)
    for step in STEPS:
        first, count = _aligned(start_us, end_us, step)
        if count <= wanted:
            return Plan(start_us, end_us, step, first, count)
    days = max(2, -(-(end_us - start_us) // (DAY * _MICROS * wanted)))
    while True:  # alignment may add a bucket: at most a step or two more
        first, count = _aligned(start_us, end_us, days * DAY)
        if count <= wanted:
            return Plan(start_us, end_us, days * DAY, first, count)
        days += 1


def month_pieces(lower: dt.datetime, upper: dt.datetime) -> list[tuple[str, dt.datetime, dt.datetime]]:
    """[lower, upper) cut at month boundaries: (yyyy-mm, piece start, piece end), oldest first."""
    pieces = []
    year, month, cursor = lower.year, lower.month, lower
    while cursor < upper:
        next_year, next_month = (year, month + 1) if month < 12 else (year + 1, 1)
        boundary = dt.datetime(next_year, next_month, 1, tzinfo=dt.UTC) if next_year <= dt.MAXYEAR else upper
        piece_end = min(boundary, upper)
        pieces.append((f"{year:04d}-{month:02d}", cursor, piece_end))
        year, month, cursor = next_year, next_month, piece_end
    return pieces


@dataclass(frozen=True)
class Piece:
    """One single-partition query's partition key, WHERE clause and parameters."""

    pk: str
    where: str
    parameters: list[dict[str, Any]]


class EventHistogram:
    """Bucket counts for a filter from single-partition queries run on a bounded pool: a COUNT per month,
    then the timestamps of a small match set or a COUNT per bucket of a large one."""

    def __init__(
        self,
        events: ContainerProxy,
        tenant_id: str,
        *,
        max_concurrency: int = MAX_CONCURRENT_QUERIES,
        small_match_set: int = SMALL_MATCH_SET,
    ) -> None:
        self._events = events
        self._tenant_id = tenant_id
        self._max_concurrency = max_concurrency
        self._small_match_set = small_match_set

    def histogram(
        self, query: HistogramQuery, now: dt.datetime, hide: SensitivityPolicy | None
    ) -> HistogramOut:
        start, end = resolve_range(query, now)
        plan = plan_buckets(start, end, query.buckets)
        months = month_pieces(start, end)
        month_totals = self._run(self._count, [self._piece(query, hide, *month) for month in months])
        busy = {month for (month, _, _), total in zip(months, month_totals, strict=True) if total}
        counts = [0] * plan.count
        step_us = plan.step_seconds * _MICROS
        if sum(month_totals) <= self._small_match_set:
            pieces = [self._piece(query, hide, *month) for month in months if month[0] in busy]
            for timestamps in self._run(self._timestamps, pieces):
                for timestamp in timestamps:
                    index = (_micros(parse_utc(timestamp)) - plan.first_us) // step_us
                    if 0 <= index < plan.count:
                        counts[index] += 1
        else:
            indexed = []
            for index in range(plan.count):
                _, lower, upper = plan.bucket(index)
                for month in month_pieces(_moment_of(lower), _moment_of(upper)):
                    if month[0] in busy:
                        indexed.append((index, self._piece(query, hide, *month)))
            for (index, _), count in zip(
                indexed, self._run(self._count, [p for _, p in indexed]), strict=True
            ):
                counts[index] += count
        buckets = [
            HistogramBucket(start=utc_iso(_moment_of(plan.bucket(i)[0])), count=counts[i])
            for i in range(plan.count)
        ]
        return HistogramOut.model_validate(
            {
                "from": utc_iso(start),
                "to": utc_iso(end),
                "bucket_seconds": plan.step_seconds,
                "buckets": buckets,
                "total": sum(counts),
            }
        )

    def _piece(
        self,
        query: HistogramQuery,
        hide: SensitivityPolicy | None,
        month: str,
        lower: dt.datetime,
        upper: dt.datetime,
    ) -> Piece:
        """The partition key and the WHERE conditions of [lower, upper) within one month."""
        conditions, parameters = build_conditions(query, utc_iso(lower), utc_iso(upper), hide)
        return Piece(
            f"{self._tenant_id}:{month}",
            " AND ".join(["c.pk = @pk", *conditions]),
            [{"name": "@pk", "value": f"{self._tenant_id}:{month}"}, *parameters],
        )

    def _run(self, task: Callable[[Piece], T], pieces: Sequence[Piece]) -> list[T]:
        if len(pieces) <= 1:
            return [task(piece) for piece in pieces]
        workers = min(self._max_concurrency, len(pieces))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="histogram") as pool:
            return list(pool.map(task, pieces))

    def _count(self, piece: Piece) -> int:
        # Only constant fragments are joined into SQL; every caller-supplied value is a parameter.
        sql = f"SELECT VALUE COUNT(1) FROM c WHERE {piece.where}"  # noqa: S608
        values: list[Any] = list(
            self._events.query_items(sql, parameters=piece.parameters, partition_key=piece.pk)
        )
        # One number; an engine may answer no row at all for an empty partition.
        return sum(int(v) for v in values if isinstance(v, int | float) and not isinstance(v, bool))

    def _timestamps(self, piece: Piece) -> list[str]:
        sql = f"SELECT VALUE c.timestamp FROM c WHERE {piece.where}"  # noqa: S608
        rows: Iterable[Any] = self._events.query_items(
            sql, parameters=piece.parameters, partition_key=piece.pk, max_item_count=1000
        )
        return [row for row in rows if isinstance(row, str)]
