"""Events and facets in Cosmos DB.

Events are written create-first, which tells a new event from a redelivered one, so facet counts
grow only for new events. A redelivered event replaces the stored one under its ETag but keeps what
analysts added through the API (`tags`, `comments`) and when it was first ingested (`ingested_at`): a
re-ingest, or a `renormalize` that re-attributes stored events, never wipes annotations. When the rewrite
changes a facet value (a re-attributed actor, a remapped service), the count moves from the old value to
the new one; a value nothing holds any more drops out of the facets.

Facets (distinct services, operations, results, actors and sources with counts) replace GROUP BY and
DISTINCT, which neither cosmosdb-server nor cheap Azure queries offer.
Each (tenant, facet) is spread over a few shard documents holding value -> count maps, updated under
their ETag: a page of 1,000 events costs a handful of facet writes, and parallel pages rarely collide.
Writes run through a bounded pool; the SDK itself retries 429 responses, honouring x-ms-retry-after-ms.

The same writes keep per-hour event counts by (service, source, result) for the histogram
(shared.ingestion.time_counts): +1 for each new event in one of the day's shard documents, and a move
when a rewrite changes an event's hour, service, source or result. Before the first event of a batch
is stored, the tenant's `since` marker is written if missing (one point read per tenant and process).

Every id is checked with shared.platform.ids.storage_id before it reaches a request path:
`write_events` refuses the whole batch (UnsafeStorageIdError) before writing any of it when one
event's id is unsafe.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import zlib
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from azure.cosmos import ContainerProxy
from azure.cosmos.exceptions import CosmosResourceExistsError

from shared.ingestion.time_counts import COUNT_SHARDS, Slot, TimeCounts, count_slot, slot_changes
from shared.platform.clock import utc_iso
from shared.platform.cosmos import update_unchanged
from shared.platform.ids import storage_id

FACET_FIELDS = ("service", "operation", "result", "actor", "source")
FACET_SHARDS = 8
MAX_FACET_RETRIES = 20
MAX_EVENT_RETRIES = 10
# Fields only the API writes; a re-ingested event carries the stored values over.
ANNOTATION_FIELDS = ("tags", "comments")
# Fields not derived from the raw record that a rewrite keeps as well.
FIRST_WRITE_FIELDS = ("ingested_at",)
CARRIED_FIELDS = ANNOTATION_FIELDS + FIRST_WRITE_FIELDS


def facet_values(document: dict[str, Any]) -> list[tuple[str, str]]:
    actor = document.get("actor") or {}
    values = [
        ("service", document.get("service")),
        ("operation", document.get("operation")),
        ("result", document.get("result")),
        ("actor", actor.get("upn") or actor.get("display") or actor.get("id")),
        ("source", document.get("source")),
    ]
    return [(name, str(value)) for name, value in values if value]


def facet_document_id(tenant_id: str, facet: str, shard: int) -> str:
    return f"facet:{tenant_id}:{facet}:{shard}"


def merge_facets(documents: Iterable[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """facet -> value -> count, summed over shards. A value whose total is not positive is left out:
    rewritten events moved its counts to other values (on whichever shards), so no event holds it."""
    merged: dict[str, dict[str, int]] = defaultdict(dict)
    for document in documents:
        facet = document.get("facet")
        if not isinstance(facet, str):
            continue  # another kind of document in the container (time counts)
        values = merged[facet]
        for value, entry in (document.get("values") or {}).items():
            values[value] = values.get(value, 0) + int(entry.get("count", 0))
    return {facet: {v: c for v, c in values.items() if c > 0} for facet, values in merged.items()}


def facet_moves(replaced: list[tuple[str, str]], document: dict[str, Any]) -> list[tuple[str, str, int]]:
    """(facet, value, +1 or -1) that move one event's counts from the stored version to its rewrite."""
    before, after = set(replaced), set(facet_values(document))
    return [(f, v, -1) for f, v in sorted(before - after)] + [(f, v, 1) for f, v in sorted(after - before)]


@dataclass(frozen=True)
class Written:
    """What storing one event did: whether it was new, the facet counts to move, and for a rewrite the
    time-count slot and first `ingested_at` of the version it replaced."""

    new: bool
    facet_moves: list[tuple[str, str, int]]
    replaced_slot: Slot | None = None
    replaced_ingested_at: str = ""
    failed: bool = False


class EventStore:
    def __init__(
        self, events: ContainerProxy, facets: ContainerProxy, concurrency: int, *, count_time: bool = True
    ) -> None:
        self._events = events
        self._facets = facets
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=concurrency, thread_name_prefix="cosmos"
        )
        self.time_counts = TimeCounts(facets)
        self._count_time = count_time

    def _write(self, document: dict[str, Any]) -> Written:
        """Store one event: whether it did not exist before, and the facet counts to move when it
        replaced a stored version with other facet values."""
        if self._create(document):
            return Written(True, [])
        replaced: list[tuple[str, str]] = []  # the facet values of the version replaced last
        previous: dict[str, Any] = {}  # its time-count slot and first ingested_at

        def keep_carried_fields(current: dict[str, Any]) -> bool:
            carried = {k: current[k] for k in CARRIED_FIELDS if k in current}
            replaced[:] = facet_values(current)
            previous.update(slot=count_slot(current), ingested_at=str(current.get("ingested_at") or ""))
            etag = current.get("_etag")
            current.clear()
            current.update({**document, **carried, "_etag": etag})
            return True

        for _ in range(MAX_EVENT_RETRIES):
            stored, _ = update_unchanged(self._events, document["id"], document["pk"], keep_carried_fields)
            if stored is not None:
                return Written(
                    False, facet_moves(replaced, document), previous.get("slot"), previous["ingested_at"]
                )
            if self._create(document):  # expired (TTL) since the conflict: store it anew
                return Written(True, [])
        raise RuntimeError(f"event {document['id']}: too many concurrent updates")

    def _create(self, document: dict[str, Any]) -> bool:
        try:
            self._events.create_item(document)
            return True
        except CosmosResourceExistsError:
            return False

    def write_events(self, documents: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        """Store every event (idempotent); returns the ones that are new.

        Raises shared.platform.ids.UnsafeStorageIdError, before writing anything, when an id is unsafe."""
        documents = list(documents)
        for document in documents:
            storage_id(document.get("id"))
        tenants = sorted({str(d["tenant_id"]) for d in documents if d.get("tenant_id")})
        since: dict[str, str] = {}
        if self._count_time:
            for tenant in tenants:  # before any event is stored: those are counted from here on
                since[tenant] = self.time_counts.start_counting(tenant, _first_ingest(documents))
        futures = [self._pool.submit(self._write, document) for document in documents]
        written: list[Written] = []
        failure: BaseException | None = None
        for future in futures:
            try:
                written.append(future.result())
            except Exception as exc:  # the others were written: their facet and time moves must still apply
                failure = failure or exc
                written.append(Written(False, [], failed=True))
        moves: dict[str, Counter[tuple[str, str]]] = defaultdict(Counter)
        for document, outcome in zip(documents, written, strict=True):
            tenant_id = document.get("tenant_id")
            for facet, value, step in outcome.facet_moves if tenant_id else ():
                moves[str(tenant_id)][facet, value] += step
        for tenant_id, counts in moves.items():
            self._move_facets(tenant_id, counts, documents[0])
        if self._count_time and documents:
            self._count(documents, written, since)
        if failure is not None:
            raise failure
        return [doc for doc, outcome in zip(documents, written, strict=True) if outcome.new]

    def _count(self, documents: list[dict[str, Any]], written: list[Written], since: dict[str, str]) -> None:
        """+1 per new event, and the moves of rewritten ones, in the day documents (one shard per batch)."""
        live: dict[str, list[tuple[Slot, int]]] = defaultdict(list)
        backfilled: dict[str, list[tuple[Slot, int]]] = defaultdict(list)
        for document, outcome in zip(documents, written, strict=True):
            tenant_id = str(document.get("tenant_id") or "")
            slot = count_slot(document)
            if not tenant_id or outcome.failed:
                continue
            if outcome.new:
                if slot is not None:
                    live[tenant_id].append((slot, 1))
                continue
            if outcome.replaced_slot == slot:
                continue
            # Counted on write when first stored after counting began; else, if at all, by backfill.
            target = live if outcome.replaced_ingested_at >= since[tenant_id] else backfilled
            if outcome.replaced_slot is not None:
                target[tenant_id].append((outcome.replaced_slot, -1))
            if slot is not None:
                target[tenant_id].append((slot, 1))
        shard = zlib.crc32(str(documents[0]["id"]).encode("utf-8")) % COUNT_SHARDS
        jobs = [
            (self.time_counts.add, (tenant_id, day, shard, changes))
            for tenant_id, slots in live.items()
            for day, changes in slot_changes(slots).items()
        ] + [
            (self.time_counts.move_backfilled, (tenant_id, day, changes))
            for tenant_id, slots in backfilled.items()
            for day, changes in slot_changes(slots).items()
        ]
        list(self._pool.map(lambda job: job[0](*job[1]), jobs))

    def backfill_counts(self, tenant_id: str, first_day: dt.date, last_day: dt.date, now: str) -> int:
        """Count the events of [first_day, last_day] stored before counting began and mark those days
        complete (shared.ingestion.time_counts.TimeCounts.backfill); returns the events counted."""
        days = [first_day + dt.timedelta(days=i) for i in range((last_day - first_day).days + 1)]
        return self.time_counts.backfill(self._events, tenant_id, days, now)

    def _move_facets(self, tenant_id: str, counts: Counter[tuple[str, str]], first: dict[str, Any]) -> None:
        """Apply the counts rewritten events moved between facet values (one shard per batch)."""
        by_facet: dict[str, Counter[str]] = defaultdict(Counter)
        for (facet, value), step in counts.items():
            if step:
                by_facet[facet][value] = step
        shard = zlib.crc32(str(first["id"]).encode("utf-8")) % FACET_SHARDS
        seen_at = str(first.get("ingested_at") or "")
        jobs = list(by_facet.items())
        list(self._pool.map(lambda job: self._apply(tenant_id, job[0], shard, job[1], seen_at), jobs))

    def update_facets(
        self,
        tenant_id: str,
        new: list[dict[str, Any]],
        existing: list[dict[str, Any]],
        seen_at: str,
        shard_key: str,
    ) -> None:
        """Count the new events' facet values; make sure the existing (redelivered) ones' values exist."""
        increments: dict[str, Counter[str]] = defaultdict(Counter)
        for document in new:
            for facet, value in facet_values(document):
                increments[facet][value] += 1
        for document in existing:
            for facet, value in facet_values(document):
                increments[facet][value] += 0
        shard = zlib.crc32(shard_key.encode("utf-8")) % FACET_SHARDS
        jobs = [(facet, counts) for facet, counts in increments.items() if counts]
        list(self._pool.map(lambda job: self._apply(tenant_id, job[0], shard, job[1], seen_at), jobs))

    def _apply(self, tenant_id: str, facet: str, shard: int, counts: Counter[str], seen_at: str) -> None:
        doc_id = storage_id(facet_document_id(tenant_id, facet, shard))
        values = {v: {"count": n, "last_seen": seen_at} for v, n in counts.items()}
        try:
            # Create first: cosmosdb-server answers a read of a missing item with 500, not 404.
            self._facets.create_item(
                {"id": doc_id, "pk": tenant_id, "facet": facet, "shard": shard, "values": values}
            )
            return
        except CosmosResourceExistsError:
            pass

        def add_counts(current: dict[str, Any]) -> bool:
            stored = current.setdefault("values", {})
            changed = False
            for value, increment in counts.items():
                entry = stored.get(value)
                if entry is None:
                    stored[value] = {"count": increment, "last_seen": seen_at}
                    changed = True
                elif increment:
                    entry["count"] = int(entry.get("count", 0)) + increment
                    entry["last_seen"] = max(str(entry.get("last_seen", "")), seen_at)
                    changed = True
            return changed

        update_unchanged(self._facets, doc_id, tenant_id, add_counts, attempts=MAX_FACET_RETRIES)

    def read_facets(self, tenant_id: str) -> dict[str, dict[str, int]]:
        documents = self._facets.query_items(
            "SELECT * FROM c WHERE c.pk = @pk AND IS_DEFINED(c.facet)",
            parameters=[{"name": "@pk", "value": tenant_id}],
            partition_key=tenant_id,
        )
        return merge_facets(documents)

    def close(self) -> None:
        self._pool.shutdown(wait=True)


def _first_ingest(documents: list[dict[str, Any]]) -> str:
    """The earliest `ingested_at` of a batch (now when none has one): when its counting begins."""
    stamps = [str(d["ingested_at"]) for d in documents if d.get("ingested_at")]
    return min(stamps) if stamps else utc_iso(dt.datetime.now(dt.UTC))
