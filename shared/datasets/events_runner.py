"""Events sources: a dataset built from the events this app stores itself (Cosmos DB `events`).

A tenant without Sentinel still gets its sign-in failure map: the `signin_failures` events dataset
holds the same columns as the Log Analytics source of that name, taken from the canonical sign-in
events (source `entra_signin`, result `failure`; shared.ingestion.events):

| Column | From the event |
|---|---|
| TimeGenerated | `timestamp` |
| IngestionTime | `ingested_at` (what the incremental watermark advances on) |
| UserPrincipalName, UserDisplayName | `actor.upn`, `actor.display` |
| AppDisplayName, AppId | `actor.client_app.name`, `actor.client_app.id` |
| IPAddress | `actor.ip` |
| City, State, Country, Latitude, Longitude | `signin.location` |
| ResultType, ResultDescription | `result_code` (as text), `result_reason` (the failure reason) |
| ClientAppUsed, CorrelationId, EventId | `signin.client_app`, `correlation_id`, `id` |

Events are partitioned by tenant and month (`pk = "{tenant}:{YYYY-MM}"`), so a run reads the months of
its window one partition at a time, newest first: parameterized single-partition queries, pages of
`page_size` in `timestamp DESC, id DESC` order (the container's composite index) with a keyset
condition, never OFFSET, GROUP BY or DISTINCT (cosmosdb-server runs the same SQL locally). A run stops
at `max_rows` rows and then answers complete=False (the refresh keeps the published dataset).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from azure.cosmos import ContainerProxy

from shared.datasets.querying import QueryOutcome, QueryWindow
from shared.platform.clock import Clock, parse_utc, utc_iso

if TYPE_CHECKING:
    from shared.datasets.sources import DatasetSource

logger = logging.getLogger(__name__)

SIGNIN_SOURCE = "entra_signin"
FAILURE = "failure"
PAGE_SIZE = 1000
MAX_ROWS = 500_000

Document = dict[str, Any]


class EventsQueryError(RuntimeError):
    """An events source that cannot be built: unknown dataset or column (the refresh reports failed)."""


def _path(*keys: str) -> Callable[[Document], Any]:
    def get(doc: Document) -> Any:
        value: Any = doc
        for key in keys:
            if not isinstance(value, dict):
                return None
            value = value.get(key)
        return value

    return get


def _text(value: Any) -> str | None:
    """A stored value as TSV text: None stays None, numbers with repr (an int code as its digits)."""
    if value is None or type(value) is str:
        return value
    if type(value) is bool:
        return "true" if value else "false"
    if type(value) is int or type(value) is float:
        return repr(value)
    return str(value)


# The columns of the signin_failures events dataset: name -> how to read it from a stored event.
SIGNIN_COLUMNS: dict[str, Callable[[Document], Any]] = {
    "TimeGenerated": _path("timestamp"),
    "IngestionTime": _path("ingested_at"),
    "UserPrincipalName": _path("actor", "upn"),
    "UserDisplayName": _path("actor", "display"),
    "AppDisplayName": _path("actor", "client_app", "name"),
    "AppId": _path("actor", "client_app", "id"),
    "IPAddress": _path("actor", "ip"),
    "City": _path("signin", "location", "city"),
    "State": _path("signin", "location", "state"),
    "Country": _path("signin", "location", "country"),
    "Latitude": _path("signin", "location", "latitude"),
    "Longitude": _path("signin", "location", "longitude"),
    "ResultType": _path("result_code"),
    "ResultDescription": _path("result_reason"),
    "ClientAppUsed": _path("signin", "client_app"),
    "CorrelationId": _path("correlation_id"),
    "EventId": _path("id"),
}
# The fields a query reads: only what the columns above need.
_SELECT = (
    "c.id, c.timestamp, c.ingested_at, c.actor, c.signin, c.result_code, c.result_reason, c.correlation_id"
)


def months(start: dt.datetime, end: dt.datetime) -> list[str]:
    """The `YYYY-MM` months from start's to end's, newest first."""
    year, month = end.astimezone(dt.UTC).year, end.astimezone(dt.UTC).month
    first = start.astimezone(dt.UTC)
    out: list[str] = []
    while (year, month) >= (first.year, first.month):
        out.append(f"{year:04d}-{month:02d}")
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return out


class EventsRunner:
    """The QueryRunner of `events` sources (see the module docstring)."""

    def __init__(
        self,
        events: ContainerProxy,
        tenant_id: str,
        clock: Clock,
        *,
        page_size: int = PAGE_SIZE,
        max_rows: int = MAX_ROWS,
    ) -> None:
        if not 1 <= page_size <= 10_000 or max_rows < 1:
            raise ValueError("page_size must be 1..10000 and max_rows positive")
        self._events = events
        self._tenant_id = tenant_id
        self._clock = clock
        self._page_size = page_size
        self._max_rows = max_rows

    def run(self, source: DatasetSource, window: QueryWindow) -> QueryOutcome:
        if source.kind != "events":
            raise EventsQueryError(f"source {source.id} is not an events source")
        if source.query.strip() != "signin_failures":
            raise EventsQueryError(
                f"source {source.id}: unknown events dataset {source.query.strip()[:80]!r}"
            )
        columns = list(source.columns)
        unknown = [name for name in columns if name not in SIGNIN_COLUMNS]
        if unknown:
            raise EventsQueryError(
                f"source {source.id}: the signin_failures events dataset has no column {', '.join(unknown)}"
                f" (it has {', '.join(SIGNIN_COLUMNS)})"
            )
        getters = [SIGNIN_COLUMNS[name] for name in columns]
        started = self._clock.monotonic()
        rows: list[list[str | None]] = []
        newest: str | None = None
        complete = True
        errors: list[str] = []
        for doc in self._documents(window):
            if len(rows) >= self._max_rows:
                complete = False
                errors.append(f"more than {self._max_rows} sign-in failures in the window: stopped there")
                break
            rows.append([_text(get(doc)) for get in getters])
            ingested = doc.get("ingested_at")
            if isinstance(ingested, str) and (newest is None or ingested > newest):
                newest = ingested
        logger.info(
            "dataset %s: %d rows from stored events, complete=%s (%.0f ms)",
            source.id,
            len(rows),
            complete,
            (self._clock.monotonic() - started) * 1000,
        )
        return QueryOutcome(
            columns=columns,
            rows=rows,
            max_ingestion_time=parse_utc(newest) if newest is not None else None,
            complete=complete,
            errors=errors,
        )

    def _documents(self, window: QueryWindow) -> Iterator[Document]:
        """The failed sign-ins of the window, month partition by month partition, newest first."""
        conditions = [
            "c.pk = @pk",
            "c.source = @source",
            "c.result = @result",
            "c.timestamp >= @start",
            "c.timestamp <= @end",
        ]
        base: list[dict[str, Any]] = [
            {"name": "@source", "value": SIGNIN_SOURCE},
            {"name": "@result", "value": FAILURE},
            {"name": "@start", "value": utc_iso(window.start)},
            {"name": "@end", "value": utc_iso(window.end)},
        ]
        if window.ingested_after is not None:
            conditions += ["c.ingested_at > @after", "c.ingested_at <= @until"]
            base += [
                {"name": "@after", "value": utc_iso(window.ingested_after)},
                {"name": "@until", "value": utc_iso(window.end)},
            ]
        for month in months(window.start, window.end):
            pk = f"{self._tenant_id}:{month}"
            keyset: tuple[str, str] | None = None
            while True:
                where = list(conditions)
                params = [{"name": "@pk", "value": pk}, *base, {"name": "@limit", "value": self._page_size}]
                if keyset is not None:
                    where.append(
                        "(c.timestamp < @after_ts OR (c.timestamp = @after_ts AND c.id < @after_id))"
                    )
                    params += [
                        {"name": "@after_ts", "value": keyset[0]},
                        {"name": "@after_id", "value": keyset[1]},
                    ]
                # Only constant fragments are joined here; every value is a parameter.
                sql = (
                    f"SELECT TOP @limit {_SELECT} FROM c WHERE {' AND '.join(where)}"  # noqa: S608
                    " ORDER BY c.timestamp DESC, c.id DESC"
                )
                page = list(
                    self._events.query_items(
                        sql, parameters=params, partition_key=pk, max_item_count=self._page_size
                    )
                )
                yield from page
                if len(page) < self._page_size:
                    break
                last = page[-1]
                keyset = (str(last["timestamp"]), str(last["id"]))
