"""GET /api/events/histogram: event counts per time bucket for the GET /api/events filters.

Neither Azure Cosmos DB's cheap paths nor cosmosdb-server have GROUP BY over a computed bucket. The
filter's time range (`start`/`end`, resolved as GET /api/events resolves them: default the last 30
days, at most 800 days) is cut into buckets aligned to a round step (1 min, 5 min, 15 min, 1 h, 3 h,
6 h, 12 h, 1 day, then whole days), the smallest step that needs at most `buckets` buckets (1..120,
default 60). Every answer is exact; `plan` says how it was counted and `bucket_seconds` the step used.

**counters** (a range of at least an hour, filtered only by time, service or exclude_service, source or
exclude_source, result or exclude_result, and the privacy hiding of services): the hourly counts that
ingestion keeps per tenant, UTC day and (service, source, result) in the facets container
(shared.ingestion.time_counts). The step is at least an hour; the whole hours come from the counts and
the partial hours at either end of the range from one COUNT query each. A day whose counts are not
complete (stored before counting began and not yet backfilled) is counted with COUNT queries too; if
that would take more than 24, the request takes the query plan below. A range shorter than `buckets`
hours whose counts total at most 2,000 events is then bucketed finer from their timestamps.

**timestamps / counts** (any other filter, hidden operations, ranges under an hour): single-partition
queries (events are partitioned by `{tenant}:{yyyy-mm}`) built from the same WHERE conditions as
GET /api/events, every value a parameter, on a bounded pool (8 at a time per request): one COUNT per
month the range touches; then, if at most 2,000 events matched, one `SELECT VALUE c.timestamp` per
month, bucketed here (`timestamps`); otherwise one COUNT per bucket and month, at most 24 of them: the
step grows until they fit (`counts`, `bucket_seconds` reports the coarser step).

Cost per request in Azure (d = days in the range, m = months touched, s = 2 count shards):
- counters: one point read of the tenant's `since` marker (1 RU, then cached by the instance), one
  single-partition query returning at most d x (s + 1) documents of ~1-4 KB each (~1 RU per document
  at that size: ~30-90 RU for 30 days, ~3-9 RU for a day), and at most two COUNTs over less than an
  hour each (~3 RU each). Locally: one query over the facets container and two COUNT scans.
- timestamps: m COUNTs (~2.5-3 RU each plus ~0.x RU per 1,000 index entries) plus at most 2,000
  timestamps (~3 RU per 100 documents read: at most ~60 RU).
- counts: m COUNTs plus at most 24 (~60-75 RU), whatever the number of events; before the cap, 60
  buckets cost ~150-200 RU and 120 ~300-400 RU. The equality and tag filters are answered from the
  index; the substring filters (q, actor, target, operation_contains) make Cosmos read each event of
  the range once per query, as paging through GET /api/events with them would.
cosmosdb-server (local) has no index and evaluates every query over the whole container, so the query
plans cost the number of queries times the container size; the counters plan does not grow with it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

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
from shared.ingestion.time_counts import TimeCounts, split_key
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
# At most this many COUNT queries per bucket (besides the one per month): the step grows until it fits.
MAX_COUNT_QUERIES = 24
ONE_HOUR = dt.timedelta(hours=1)
# The filters the time counts can answer (the time range and the dimensions they are kept by).
COUNTER_FILTERS = frozenset(
    {
        "start",
        "end",
        "buckets",
        "service",
        "exclude_service",
        "source",
        "exclude_source",
        "result",
        "exclude_result",
    }
)
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
    plan: Literal["counters", "timestamps", "counts"] = Field(
        description="how it was counted: the hourly time counts (buckets of at least an hour), the "
        "matching events' timestamps (a small match set), or COUNT queries per bucket (at most 24: the "
        "step may be coarser than `buckets` asked for). Every plan is exact."
    )


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


def plan_buckets(start: dt.datetime, end: dt.datetime, wanted: int, min_step: int = 0) -> Plan:
    """The smallest round step of at least `min_step` seconds whose aligned buckets over [start, end)
    number at most `wanted`."""
    if wanted < 1 or start >= end:
        raise ValueError("need at least one bucket over a non-empty range")
    start_us, end_us = _micros(start), _micros(end)
    for step in (s for s in STEPS if s >= min_step):
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


def counter_eligible(query: HistogramQuery, hide: SensitivityPolicy | None) -> bool:
    """Whether the time counts can answer: only the time range, service, source and result filters (and
    a privacy policy hiding services, not operations)."""
    used = set(query.model_dump(exclude_defaults=True))
    values = [query.source, query.result, *query.exclude_source, *query.exclude_result]
    return used <= COUNTER_FILTERS and "" not in values and not (hide is not None and hide.operations)


def _matcher(query: HistogramQuery, hide: SensitivityPolicy | None) -> Callable[[str], bool]:
    """Whether the events of a count key match the filter, with the query's semantics: an include filter
    drops an event without the field, an exclusion keeps it."""
    services = set(query.service)
    excluded = {*query.exclude_service, *(hide.services if hide is not None else ())}
    excluded_sources, excluded_results = set(query.exclude_source), set(query.exclude_result)

    def matches(key: str) -> bool:
        service, source, result = split_key(key)
        return (
            (not services or service in services)
            and service not in excluded
            and (query.source is None or source == query.source)
            and source not in excluded_sources
            and (query.result is None or result == query.result)
            and result not in excluded_results
        )

    return matches


class EventHistogram:
    """Bucket counts for a filter: from the time counts (shared.ingestion.time_counts) when the filter
    allows, else from single-partition queries run on a bounded pool (a COUNT per month, then the
    timestamps of a small match set or at most `max_count_queries` COUNTs per bucket and month)."""

    def __init__(
        self,
        events: ContainerProxy,
        tenant_id: str,
        *,
        counts: TimeCounts | None = None,
        retention_days: int | None = None,
        max_concurrency: int = MAX_CONCURRENT_QUERIES,
        small_match_set: int = SMALL_MATCH_SET,
        max_count_queries: int = MAX_COUNT_QUERIES,
    ) -> None:
        self._events = events
        self._tenant_id = tenant_id
        self._counts = counts
        self._retention = dt.timedelta(days=retention_days) if retention_days else None
        self._max_concurrency = max_concurrency
        self._small_match_set = small_match_set
        self._max_count_queries = max_count_queries

    def histogram(
        self, query: HistogramQuery, now: dt.datetime, hide: SensitivityPolicy | None
    ) -> HistogramOut:
        start, end = resolve_range(query, now)
        if self._counts is not None and end - start >= ONE_HOUR and counter_eligible(query, hide):
            # Counts outlive the events that TTL removes: days that may have expired are queried.
            oldest = (now - self._retention - dt.timedelta(days=1)) if self._retention else None
            answer = self._from_counters(self._counts, query, hide, start, end, oldest)
            if answer is not None:
                return answer
        return self._from_queries(query, hide, start, end)

    def _from_counters(
        self,
        counts: TimeCounts,
        query: HistogramQuery,
        hide: SensitivityPolicy | None,
        start: dt.datetime,
        end: dt.datetime,
        oldest: dt.datetime | None = None,
    ) -> HistogramOut | None:
        """Whole hours of complete days from the counts; the partial hours at either end, the days
        counting does not cover and those before `oldest` by COUNT queries (at most max_count_queries,
        else None)."""
        natural = plan_buckets(start, end, query.buckets)
        plan = natural if natural.step_seconds >= HOUR else plan_buckets(start, end, query.buckets, HOUR)
        hour_us = HOUR * _MICROS
        low, high = -(-plan.start_us // hour_us) * hour_us, (plan.end_us // hour_us) * hour_us
        if low >= high:
            return None
        days = counts.read(self._tenant_id, utc_iso(_moment_of(low))[:10], utc_iso(_moment_of(high - 1))[:10])
        if days is None:
            return None
        matches = _matcher(query, hide)
        buckets = [0] * plan.count
        step_us = plan.step_seconds * _MICROS
        uncovered = [(plan.start_us, low)] if plan.start_us < low else []
        oldest_us = _micros(oldest) if oldest is not None else None
        for day, entry in days.items():
            day_us = _micros(dt.datetime.fromisoformat(day).replace(tzinfo=dt.UTC))
            if not entry.complete or (oldest_us is not None and day_us < oldest_us):
                uncovered.append((max(day_us, low), min(day_us + DAY * _MICROS, high)))
                continue
            hourly = [0] * 24
            for key, hours in entry.counts.items():
                if matches(key):
                    hourly = [a + b for a, b in zip(hourly, hours, strict=True)]
            for hour, count in enumerate(hourly):
                moment = day_us + hour * hour_us
                if count and low <= moment < high:
                    buckets[(moment - plan.first_us) // step_us] += count
        if high < plan.end_us:
            uncovered.append((high, plan.end_us))
        pieces = self._pieces(query, hide, plan, _merged(uncovered), None)
        if len(pieces) > self._max_count_queries:
            return None
        for (index, _), count in zip(pieces, self._run(self._count, [p for _, p in pieces]), strict=True):
            buckets[index] += count
        if natural.step_seconds < HOUR and sum(buckets) <= self._small_match_set:
            # A short range with few events: the finer step, from their timestamps.
            months = [m for m, _, _ in month_pieces(start, end)]
            return self._answer(natural, self._by_timestamps(query, hide, natural, months), "timestamps")
        return self._answer(plan, buckets, "counters")

    def _from_queries(
        self, query: HistogramQuery, hide: SensitivityPolicy | None, start: dt.datetime, end: dt.datetime
    ) -> HistogramOut:
        """A COUNT per month; then a small match set's timestamps, or a COUNT per bucket and month with
        the step coarsened until at most max_count_queries are needed."""
        months = month_pieces(start, end)
        month_totals = self._run(self._count, [self._piece(query, hide, *month) for month in months])
        busy = [month for (month, _, _), total in zip(months, month_totals, strict=True) if total]
        natural = plan_buckets(start, end, query.buckets)
        if sum(month_totals) <= self._small_match_set:
            return self._answer(natural, self._by_timestamps(query, hide, natural, busy), "timestamps")
        for wanted in range(query.buckets, 0, -1):
            plan = plan_buckets(start, end, wanted)
            pieces = self._pieces(query, hide, plan, [(plan.start_us, plan.end_us)], set(busy))
            if len(pieces) <= self._max_count_queries:
                break
        buckets = [0] * plan.count
        for (index, _), count in zip(pieces, self._run(self._count, [p for _, p in pieces]), strict=True):
            buckets[index] += count
        return self._answer(plan, buckets, "counts")

    def _pieces(
        self,
        query: HistogramQuery,
        hide: SensitivityPolicy | None,
        plan: Plan,
        intervals: Iterable[tuple[int, int]],
        busy: set[str] | None,
    ) -> list[tuple[int, Piece]]:
        """(bucket index, query) for each part of `intervals` within one bucket and one month."""
        step_us = plan.step_seconds * _MICROS
        pieces = []
        for lower, upper in intervals:
            for index in range((lower - plan.first_us) // step_us, -(-(upper - plan.first_us) // step_us)):
                _, low, high = plan.bucket(index)
                low, high = max(low, lower), min(high, upper)
                if low >= high:
                    continue
                for month in month_pieces(_moment_of(low), _moment_of(high)):
                    if busy is None or month[0] in busy:
                        pieces.append((index, self._piece(query, hide, *month)))
        return pieces

    def _by_timestamps(
        self, query: HistogramQuery, hide: SensitivityPolicy | None, plan: Plan, months: Sequence[str]
    ) -> list[int]:
        """Bucket counts from the matching events' timestamps, one query per month in `months`."""
        pieces = [
            self._piece(query, hide, *month)
            for month in month_pieces(_moment_of(plan.start_us), _moment_of(plan.end_us))
            if month[0] in months
        ]
        counts = [0] * plan.count
        step_us = plan.step_seconds * _MICROS
        for timestamps in self._run(self._timestamps, pieces):
            for timestamp in timestamps:
                index = (_micros(parse_utc(timestamp)) - plan.first_us) // step_us
                if 0 <= index < plan.count:
                    counts[index] += 1
        return counts

    @staticmethod
    def _answer(plan: Plan, counts: list[int], source: str) -> HistogramOut:
        buckets = [
            HistogramBucket(start=utc_iso(_moment_of(plan.bucket(i)[0])), count=counts[i])
            for i in range(plan.count)
        ]
        return HistogramOut.model_validate(
            {
                "from": utc_iso(_moment_of(plan.start_us)),
                "to": utc_iso(_moment_of(plan.end_us)),
                "bucket_seconds": plan.step_seconds,
                "buckets": buckets,
                "total": sum(counts),
                "plan": source,
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


def _merged(intervals: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted, with touching or overlapping intervals joined."""
    merged: list[tuple[int, int]] = []
    for lower, upper in sorted(i for i in intervals if i[0] < i[1]):
        if merged and lower <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], upper))
        else:
            merged.append((lower, upper))
    return merged
