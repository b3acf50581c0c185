"""Event counts per tenant, UTC day and hour, and (service, source, result), kept on write like the facets.

The histogram (shared.api.events_histogram) answers a filter that uses only the time range, service
(include or exclude), source, result and the privacy hiding of services from these counts instead of
one COUNT query per bucket. They live in the `facets` container (partition key: the tenant):

- `counts:{tenant}:{yyyy-mm-dd}:{shard}` (COUNT_SHARDS per day, the shard chosen per written page as
  the facets' is, so parallel pages rarely race for one ETag):
  `{"kind": "time_counts", "day": "2026-12-07", "counts": {"Exchange|o365_management|success": [24
  hourly counts]}}`. A key joins the three values with `|` (`%` and `|` inside a value are escaped as
  %25 and %7C; a missing value is empty). A tenant with 40 combinations writes 40 x ~110 bytes: ~4 KB
  per document, far below the 2 MB limit (2 MB would take ~18,000 combinations).
- `counts:{tenant}:since`: when counting began for the tenant (`since`, the `ingested_at` of the first
  counted page; empty when the tenant had no facets yet, so no event was ever stored uncounted).
- `counts:{tenant}:{yyyy-mm-dd}:backfill`: written by `backfill`, the counts of that day's events that
  were stored before counting began (`ingested_at` < `since`), with `"complete": true`.

A day's counts are complete, and the histogram trusts them, when its backfill document exists or the
day begins at or after `since` (an event is ingested after it happens, so every event of such a day
was counted on write). Other days are answered with COUNT queries.

Counts grow only for new events (EventStore writes create-first). A rewrite (renormalize) that moves
an event to another (day, hour, service, source, result) moves its count: in the shard documents when
the event was counted on write (its first `ingested_at` >= `since`), else in the day's backfill
document if there is one (a later backfill counts the event as it is then).

Known limits: an instance still running code from before the counters (during a rollout) stores
events nobody counts on days after `since`; events that expire (TTL) stay counted, so the histogram
queries, rather than trusts, the days within a day of the retention limit; a backfill that runs while
renormalize rewrites the same day may miss a move (run backfill again).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from azure.cosmos import ContainerProxy
from azure.cosmos.exceptions import CosmosResourceExistsError

from shared.platform.clock import utc_iso
from shared.platform.cosmos import read_or_none, update_unchanged
from shared.platform.ids import storage_id

COUNT_SHARDS = 2
COUNT_KIND = "time_counts"
SINCE_KIND = "time_counts_since"
HOURS = 24
MAX_COUNT_RETRIES = 20
COUNT_FIELDS = ("service", "source", "result")

Slot = tuple[str, int, str]
"""(UTC day yyyy-mm-dd, hour 0-23, count key) of one event."""


def _escape(value: str) -> str:
    return value.replace("%", "%25").replace("|", "%7C")


def _unescape(value: str) -> str:
    return value.replace("%7C", "|").replace("%25", "%")


def count_key(service: str, source: str, result: str) -> str:
    return "|".join(_escape(v) for v in (service, source, result))


def split_key(key: str) -> tuple[str, str, str]:
    service, source, result = (_unescape(part) for part in key.split("|"))
    return service, source, result


def count_slot(document: Mapping[str, Any]) -> Slot | None:
    """Where one event is counted; None without a `YYYY-MM-DDTHH…` timestamp."""
    timestamp = document.get("timestamp")
    if not isinstance(timestamp, str) or len(timestamp) < 13 or timestamp[10] != "T":
        return None
    try:
        dt.date.fromisoformat(timestamp[:10])
        hour = int(timestamp[11:13])
    except ValueError:
        return None
    if not 0 <= hour < HOURS:
        return None
    values = (document.get(name) for name in COUNT_FIELDS)
    return timestamp[:10], hour, count_key(*(str(v) if v else "" for v in values))


def counts_document_id(tenant_id: str, day: str, shard: int | str) -> str:
    return storage_id(f"counts:{tenant_id}:{day}:{shard}")


def since_document_id(tenant_id: str) -> str:
    return storage_id(f"counts:{tenant_id}:since")


def add_hours(stored: dict[str, list[int]], changes: Mapping[tuple[int, str], int]) -> bool:
    """Add (hour, key) -> step to a document's `counts` map; whether anything changed."""
    changed = False
    for (hour, key), step in changes.items():
        if not step:
            continue
        hours = stored.get(key)
        if not isinstance(hours, list) or len(hours) != HOURS:
            hours = stored[key] = [0] * HOURS
        hours[hour] = int(hours[hour]) + step
        changed = True
    return changed


@dataclass
class DayCounts:
    """One day's counts, summed over its documents: key -> 24 hourly counts."""

    complete: bool
    counts: dict[str, list[int]] = field(default_factory=dict)


class TimeCounts:
    """The count documents of the facets container: writes (on ingest, on rewrite, by backfill), reads."""

    def __init__(self, facets: ContainerProxy) -> None:
        self._facets = facets
        self._since: dict[str, str] = {}  # `since` never changes once written

    # -- since ------------------------------------------------------------------------------------

    def since(self, tenant_id: str) -> str | None:
        """When counting began for the tenant (empty: from its first event); None if it has not."""
        if tenant_id in self._since:
            return self._since[tenant_id]
        marker = read_or_none(self._facets, since_document_id(tenant_id), tenant_id)
        if marker is None:
            return None
        self._since[tenant_id] = str(marker.get("since") or "")
        return self._since[tenant_id]

    def start_counting(self, tenant_id: str, now: str) -> str:
        """`since` for the tenant, writing it first if there is none: empty when the tenant has no
        facets yet (nothing stored before), else `now`."""
        known = self.since(tenant_id)
        if known is not None:
            return known
        facets = self._facets.query_items(
            "SELECT VALUE COUNT(1) FROM c WHERE c.pk = @pk AND IS_DEFINED(c.facet)",
            parameters=[{"name": "@pk", "value": tenant_id}],
            partition_key=tenant_id,
        )
        had_facets = any(isinstance(n, int) and n > 0 for n in facets)
        marker = {
            "id": since_document_id(tenant_id),
            "pk": tenant_id,
            "kind": SINCE_KIND,
            "since": now if had_facets else "",
        }
        try:
            self._facets.create_item(marker)
        except CosmosResourceExistsError:
            self._since.pop(tenant_id, None)
            return self.since(tenant_id) or ""
        self._since[tenant_id] = str(marker["since"])
        return self._since[tenant_id]

    # -- writes -----------------------------------------------------------------------------------

    def add(self, tenant_id: str, day: str, shard: int, changes: Mapping[tuple[int, str], int]) -> None:
        """Add (hour, key) -> step to one shard document of `day`, creating it first."""
        if not any(changes.values()):
            return
        doc_id = counts_document_id(tenant_id, day, shard)
        counts: dict[str, list[int]] = {}
        add_hours(counts, changes)
        try:
            # Create first: cosmosdb-server answers a read of a missing item with 500, not 404.
            self._facets.create_item(
                {
                    "id": doc_id,
                    "pk": tenant_id,
                    "kind": COUNT_KIND,
                    "day": day,
                    "shard": shard,
                    "counts": counts,
                }
            )
            return
        except CosmosResourceExistsError:
            pass
        update_unchanged(
            self._facets,
            doc_id,
            tenant_id,
            lambda current: add_hours(current.setdefault("counts", {}), changes),
            attempts=MAX_COUNT_RETRIES,
        )

    def move_backfilled(self, tenant_id: str, day: str, changes: Mapping[tuple[int, str], int]) -> None:
        """Apply moves of events stored before counting began to the day's backfill document, if any."""
        if any(changes.values()):
            update_unchanged(
                self._facets,
                counts_document_id(tenant_id, day, "backfill"),
                tenant_id,
                lambda current: add_hours(current.setdefault("counts", {}), changes),
                attempts=MAX_COUNT_RETRIES,
            )

    def backfill(self, events: ContainerProxy, tenant_id: str, days: Iterable[dt.date], now: str) -> int:
        """Count each day's events stored before counting began and mark the day complete.

        One single-partition query per day reads (timestamp, service, source, result, ingested_at) of
        the day's events; the day's backfill document is then written whole (running it again recounts).
        Starts counting for the tenant when it has not begun. Returns the events counted."""
        since = self.start_counting(tenant_id, now)
        total = 0
        for day in days:
            lower = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
            upper = lower + dt.timedelta(days=1)
            rows = events.query_items(
                "SELECT c.timestamp, c.service, c.source, c.result, c.ingested_at FROM c "
                "WHERE c.pk = @pk AND c.timestamp >= @start AND c.timestamp < @end",
                parameters=[
                    {"name": "@pk", "value": f"{tenant_id}:{day.isoformat()[:7]}"},
                    {"name": "@start", "value": utc_iso(lower)},
                    {"name": "@end", "value": utc_iso(upper)},
                ],
                partition_key=f"{tenant_id}:{day.isoformat()[:7]}",
                max_item_count=1000,
            )
            changes: Counter[tuple[int, str]] = Counter()
            for row in rows:
                slot = count_slot(row)
                if slot is not None and str(row.get("ingested_at") or "") < since:
                    changes[slot[1], slot[2]] += 1
            counts: dict[str, list[int]] = {}
            add_hours(counts, changes)
            total += sum(changes.values())
            self._facets.upsert_item(
                {
                    "id": counts_document_id(tenant_id, day.isoformat(), "backfill"),
                    "pk": tenant_id,
                    "kind": COUNT_KIND,
                    "day": day.isoformat(),
                    "shard": "backfill",
                    "complete": True,
                    "since": since,
                    "backfilled_at": now,
                    "counts": counts,
                }
            )
        return total

    # -- reads ------------------------------------------------------------------------------------

    def read(self, tenant_id: str, first_day: str, last_day: str) -> dict[str, DayCounts] | None:
        """The days from `first_day` to `last_day` (inclusive, yyyy-mm-dd): every day in range, complete
        or not; None when counting has not begun for the tenant. One point read of the `since` marker
        (cached) and one single-partition query."""
        since = self.since(tenant_id)
        if since is None:
            return None
        days: dict[str, DayCounts] = {}
        cursor, last = dt.date.fromisoformat(first_day), dt.date.fromisoformat(last_day)
        while cursor <= last:
            day = cursor.isoformat()
            days[day] = DayCounts(complete=f"{day}T00:00:00.000Z" >= since)
            cursor += dt.timedelta(days=1)
        documents = self._facets.query_items(
            "SELECT c.day, c.complete, c.counts FROM c WHERE c.pk = @pk AND c.kind = @kind "
            "AND c.day >= @first AND c.day <= @last",
            parameters=[
                {"name": "@pk", "value": tenant_id},
                {"name": "@kind", "value": COUNT_KIND},
                {"name": "@first", "value": first_day},
                {"name": "@last", "value": last_day},
            ],
            partition_key=tenant_id,
            max_item_count=1000,
        )
        for document in documents:
            entry = days.get(str(document.get("day")))
            if entry is None:
                continue
            if document.get("complete") is True:
                entry.complete = True
            merged = entry.counts
            for key, hours in (document.get("counts") or {}).items():
                if isinstance(hours, list) and len(hours) == HOURS:
                    total = merged.setdefault(key, [0] * HOURS)
                    for hour, count in enumerate(hours):
                        total[hour] += int(count)
        return days


def slot_changes(moves: Iterable[tuple[Slot, int]]) -> dict[str, Counter[tuple[int, str]]]:
    """(slot, step) pairs grouped by day: day -> (hour, key) -> summed step."""
    by_day: dict[str, Counter[tuple[int, str]]] = defaultdict(Counter)
    for (day, hour, key), step in moves:
        by_day[day][hour, key] += step
    return by_day
