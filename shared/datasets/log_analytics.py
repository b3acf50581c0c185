"""Log Analytics (Sentinel) sources: run a source's KQL with azure-monitor-query's LogsQueryClient.

`LogAnalyticsRunner.run(source, window)`:

- renders the KQL: `{time_window}` becomes a KQL timespan literal of the source's window (`24h`), and an
  incremental window appends `| where IngestionTime > datetime(...) and IngestionTime <= datetime(...)`
  (the query projects `IngestionTime = ingestion_time()`, see shared.datasets.sources);
- calls `query_workspace(workspace_id, kql, timespan=(start, end), server_timeout=...)`; the timespan
  bounds TimeGenerated, the appended clause bounds IngestionTime;
- splits the time span in two halves and queries each, recursively to `QueryLimits.max_depth`, when the
  answer is a `LogsQueryPartialResult` (the service stopped early: row, size or time limit) or comes
  near the service's limits (500,000 rows, 64 MB) where it may have been cut without saying so;
- a part still partial at the smallest split keeps its rows, but the outcome is `complete=False` with
  the errors, and the refresh service then publishes nothing (never a truncated dataset as complete);
- renders every value to text in the source's column order (`render_value`): a column the answer lacks
  is an error, not an empty column.

A query that fails outright (bad KQL, 403, throttled past the retry budget) raises `QueryFailedError`;
inside a split, the failed half makes the outcome incomplete instead.

Retries: one policy, the SDK's own pipeline (`BoundedRetryPolicy`): 429 and 500/502/503/504 only, at
most `retry_total` times, waiting what Retry-After says (never longer than `max_retry_after` seconds:
a longer ask is not waited, the call fails), else exponential backoff. Every call has a connection
and a read timeout, and the service a server timeout (`Prefer: wait=N`).

Tokens: `TokenProviderCredential` makes the app's TokenProvider (shared.m365.auth: managed identity in
Azure, the simulator's token endpoint locally) an azure-core TokenCredential for the scope
`https://api.loganalytics.io/.default`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import json
import logging
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from operator import attrgetter
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from azure.core.credentials import AccessToken
from azure.core.exceptions import AzureError, ClientAuthenticationError, HttpResponseError
from azure.core.pipeline.policies import RetryPolicy
from azure.monitor.query import LogsQueryClient, LogsQueryPartialResult, LogsQueryResult, LogsTable
from pydantic import BaseModel, ConfigDict, Field

from shared.datasets.querying import QueryOutcome, QueryWindow
from shared.m365.token_cache import AuthError, TokenProvider
from shared.platform.clock import Clock

if TYPE_CHECKING:
    from azure.core.pipeline import PipelineResponse

    from shared.datasets.sources import DatasetSource

logger = logging.getLogger(__name__)

# The public cloud's Log Analytics query API: requests go to {endpoint}/workspaces/{id}/query, tokens are
# for {resource}/.default. National clouds: https://api.loganalytics.us (US Government),
# https://api.loganalytics.azure.cn (21Vianet); their resource is their origin.
DEFAULT_ENDPOINT = "https://api.loganalytics.io/v1"
LOG_ANALYTICS_RESOURCE = "https://api.loganalytics.io"
LOG_ANALYTICS_SCOPE = f"{LOG_ANALYTICS_RESOURCE}/.default"
INGESTION_TIME = "IngestionTime"
# The query API's documented limits: 500,000 rows and 64 MB of data per answer, 10 minutes per query.
ROW_LIMIT = 500_000
BYTE_LIMIT = 64 * 1024 * 1024
MAX_SERVER_TIMEOUT_SECONDS = 600
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_ERROR_CHARS = 500
GC_PAUSE_ROWS = 10_000  # answers this large are rendered with the cyclic collector paused
_LOOPBACK = ("127.0.0.1", "localhost", "::1")
_TEXT_TYPES = frozenset({str, type(None)})
_NUMBER_TYPES = frozenset({int, float, type(None)})
_DATETIME = {dt.datetime}
_ZERO_OFFSET = {dt.timedelta(0)}
_STR_CONVERTED = ("guid", "timespan")
_TEXT_COLUMNS = ("string", *_STR_CONVERTED)


class QueryFailedError(RuntimeError):
    """The query failed outright: the source's refresh fails with this message (no secrets in it)."""


class QueryLimits(BaseModel):
    """When to split a span: an answer with `near_ratio` of the row or byte limit may have been cut.
    `max_depth` bounds the halvings (6: 64 parts), `min_span_seconds` the smallest part."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    row_limit: int = Field(default=ROW_LIMIT, ge=1)
    byte_limit: int = Field(default=BYTE_LIMIT, ge=1)
    near_ratio: float = Field(default=0.9, gt=0.0, le=1.0)
    max_depth: int = Field(default=6, ge=0, le=16)
    min_span_seconds: float = Field(default=60.0, gt=0.0)


class LogsQueryApi(Protocol):
    """The part of LogsQueryClient the runner uses (a fake in unit tests)."""

    def query_workspace(
        self,
        workspace_id: str,
        query: str,
        *,
        timespan: tuple[dt.datetime, dt.datetime],
        server_timeout: int | None = None,
        **kwargs: Any,
    ) -> LogsQueryResult | LogsQueryPartialResult: ...


# --- values ---------------------------------------------------------------------------------------


def render_time(value: dt.datetime) -> str:
    """UTC ISO-8601 with milliseconds and `Z` (the app's format, shared.platform.clock.utc_iso)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    elif value.utcoffset():
        value = value.astimezone(dt.UTC)
    return value.isoformat(timespec="milliseconds")[:23] + "Z"


def render_value(value: Any) -> str | None:
    """One value as TSV text: None stays None, str as is, datetimes `...Z`, bools `true`/`false`
    (as KQL writes them), numbers with repr, dynamic values (dict, list) as compact JSON."""
    kind = type(value)
    if kind is str or value is None:
        return value  # type: ignore[no-any-return]
    if kind is dt.datetime:
        return render_time(value)
    if kind is bool:
        return "true" if value else "false"
    if kind is int or kind is float:
        return repr(value)
    if kind is dict or kind is list:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    return str(value)


def kql_datetime(value: dt.datetime) -> str:
    """A KQL datetime literal, to the microsecond: datetime(2026-12-07T10:00:00.000000Z)."""
    return f"datetime({value.astimezone(dt.UTC).strftime('%Y-%m-%dT%H:%M:%S.%fZ')})"


def render_kql(source: DatasetSource, window: QueryWindow) -> str:
    """The source's KQL with `{time_window}` replaced (DatasetSource.render_query: `24h`) and, for an
    incremental window, the IngestionTime bounds appended (ingested_after < IngestionTime <= end)."""
    kql: str = source.render_query()
    if window.ingested_after is not None:
        kql = (
            f"{kql.rstrip()}\n| where {INGESTION_TIME} > {kql_datetime(window.ingested_after)}"
            f" and {INGESTION_TIME} <= {kql_datetime(window.end)}"
        )
    return kql


# --- tokens, retries, the client ------------------------------------------------------------------


class TokenProviderCredential:
    """An azure-core TokenCredential over the app's TokenProvider (which caches per scope).

    The AccessToken says it expires a minute from now (wall time, what azure-core compares with), so
    the pipeline asks again on every request and the provider's own cache decides when to renew.
    """

    def __init__(self, provider: TokenProvider, wall_clock: Callable[[], float] = time.time) -> None:
        self._provider = provider
        self._wall_clock = wall_clock

    def __repr__(self) -> str:
        return f"TokenProviderCredential(provider={type(self._provider).__name__})"

    def get_token(
        self,
        *scopes: str,
        claims: str | None = None,
        tenant_id: str | None = None,
        enable_cae: bool = False,
        **kwargs: Any,
    ) -> AccessToken:
        if len(scopes) != 1:
            raise ValueError("exactly one scope is expected")
        try:
            token = self._provider.get_token(scopes[0])
        except AuthError as exc:
            raise ClientAuthenticationError(message=f"no token for {scopes[0]}: {exc}") from None
        return AccessToken(token, int(self._wall_clock()) + 60)


class BoundedRetryPolicy(RetryPolicy):  # type: ignore[type-arg]
    """azure-core's RetryPolicy, narrowed: only 429 and 500/502/503/504 are retried (the stock policy
    also retries any answer carrying Retry-After, and never a POST's 429 without one), at most
    `retry_total` times, and a Retry-After longer than `max_retry_after` seconds is not waited (the
    call fails with that answer). Waits honour Retry-After (seconds or HTTP-date), else exponential
    backoff from `backoff_factor`, capped at `backoff_max`."""

    def __init__(
        self,
        *,
        retry_total: int = 3,
        max_retry_after: float = 60.0,
        backoff_factor: float = 0.8,
        backoff_max: int = 30,
    ) -> None:
        super().__init__(
            retry_total=retry_total,
            retry_status=retry_total,
            retry_connect=0,
            retry_read=0,
            retry_backoff_factor=backoff_factor,
            retry_backoff_max=backoff_max,
        )
        self.max_retry_after = max_retry_after

    def is_retry(self, settings: dict[str, Any], response: PipelineResponse[Any, Any]) -> bool:
        if response.http_response.status_code not in RETRYABLE_STATUSES:
            return False
        retry_after = self.get_retry_after(response)
        if retry_after is not None and retry_after > self.max_retry_after:
            return False
        return bool(settings["total"] > 0)


def default_audience(endpoint: str) -> str:
    """The token audience for an endpoint: its origin (https://api.loganalytics.io for the public
    cloud's https://api.loganalytics.io/v1), except a loopback endpoint (the local simulator), which
    keeps the public cloud's resource, as the Graph and Management bases do (shared.m365.cloud)."""
    parts = urlsplit(endpoint)
    if not parts.scheme or not parts.hostname:
        raise ValueError(f"LOG_ANALYTICS_ENDPOINT must be an absolute URL, got {endpoint!r}")
    if parts.hostname in _LOOPBACK:
        return LOG_ANALYTICS_RESOURCE
    return f"{parts.scheme}://{parts.netloc}"


def build_logs_client(
    endpoint: str,
    credential: TokenProvider,
    ca_bundle: str | None = None,
    *,
    audience: str | None = None,
    retry_total: int = 3,
    max_retry_after: float = 60.0,
    backoff_factor: float = 0.8,
    connection_timeout: float = 10.0,
    read_timeout: float = MAX_SERVER_TIMEOUT_SECONDS + 30.0,
) -> LogsQueryClient:
    """A LogsQueryClient for `endpoint` (e.g. https://api.loganalytics.io/v1) with the app's tokens,
    one bounded retry policy, and connection/read timeouts (the read timeout outlasts the longest
    server timeout). `ca_bundle`: a PEM file to trust instead of the default roots (the local CA)."""
    if urlsplit(endpoint).scheme != "https":  # azure-core sends no bearer token over plain http
        raise ValueError("LOG_ANALYTICS_ENDPOINT must use https (the local simulator: --tls-dir)")
    options: dict[str, Any] = {
        "endpoint": endpoint.rstrip("/"),
        "audience": audience or default_audience(endpoint),
        "retry_policy": BoundedRetryPolicy(
            retry_total=retry_total, max_retry_after=max_retry_after, backoff_factor=backoff_factor
        ),
        "connection_timeout": connection_timeout,
        "read_timeout": read_timeout,
    }
    if ca_bundle:
        options["connection_verify"] = ca_bundle
    return LogsQueryClient(TokenProviderCredential(credential), **options)


# --- the runner -----------------------------------------------------------------------------------


@dataclass
class _Part:
    """What one span (and its splits) produced."""

    rows: list[list[str | None]] = field(default_factory=list)
    max_ingestion_time: dt.datetime | None = None
    complete: bool = True
    splits: int = 0
    errors: list[str] = field(default_factory=list)


def _error_text(error: Any) -> str:
    """A LogsQueryError or an HttpResponseError's model as `code: message (detail; ...)`, bounded."""
    code = getattr(error, "code", None) or "Error"
    message = getattr(error, "message", None) or ""
    parts: list[str] = []
    for detail in getattr(error, "details", None) or []:
        if isinstance(detail, Mapping):  # a dict, or the SDK's generated model (a MutableMapping)
            inner = detail
            while isinstance(inner.get("innererror"), Mapping):
                inner = inner["innererror"]
            text = inner.get("message") or detail.get("message")
            if isinstance(text, str) and text and text not in parts:
                parts.append(text)
    text = f"{code}: {message}" + (f" ({'; '.join(parts)})" if parts else "")
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 3] + "..."


def _http_error_text(exc: AzureError) -> str:
    if isinstance(exc, HttpResponseError):
        status = exc.status_code
        model = getattr(exc, "model", None)
        if model is not None and getattr(model, "code", None):
            return f"HTTP {status} {_error_text(model)}"
        text = str(exc.message or exc.reason or type(exc).__name__).splitlines()[0]
        return f"HTTP {status}: {text[:300]}" if status else text[:300]
    return f"{type(exc).__name__}: {str(exc.message)[:200]}"


class LogAnalyticsRunner:
    """The QueryRunner of `log_analytics` sources (see the module docstring)."""

    def __init__(
        self,
        client: LogsQueryApi,
        workspace_id: str,
        server_timeout_seconds: int,
        clock: Clock,
        limits: QueryLimits | None = None,
    ) -> None:
        if not 1 <= server_timeout_seconds <= MAX_SERVER_TIMEOUT_SECONDS:
            raise ValueError(f"server_timeout_seconds must be 1..{MAX_SERVER_TIMEOUT_SECONDS}")
        self._client = client
        self._workspace_id = workspace_id
        self._server_timeout = server_timeout_seconds
        self._clock = clock
        self._limits = limits or QueryLimits()

    def run(self, source: DatasetSource, window: QueryWindow) -> QueryOutcome:
        if source.kind != "log_analytics":
            raise QueryFailedError(f"source {source.id} is not a log_analytics source")
        kql = render_kql(source, window)
        started = self._clock.monotonic()
        part = self._span(source, kql, window.start, window.end, 0)
        logger.info(
            "dataset %s: %d rows from Log Analytics, %d splits, complete=%s (%.0f ms)",
            source.id,
            len(part.rows),
            part.splits,
            part.complete,
            (self._clock.monotonic() - started) * 1000,
        )
        return QueryOutcome.model_construct(
            columns=list(source.columns),
            rows=part.rows,
            max_ingestion_time=part.max_ingestion_time,
            complete=part.complete,
            splits=part.splits,
            errors=part.errors,
        )

    # A span's query, and its halves when the answer is partial or near the limits.
    def _span(
        self, source: DatasetSource, kql: str, start: dt.datetime, end: dt.datetime, depth: int
    ) -> _Part:
        sizes: list[int] = []
        try:
            result = self._client.query_workspace(
                self._workspace_id,
                kql,
                timespan=(start, end),
                server_timeout=self._server_timeout,
                raw_response_hook=lambda response: sizes.append(_body_size(response)),
            )
        except AzureError as exc:
            text = _http_error_text(exc)
            if depth == 0:
                raise QueryFailedError(f"Log Analytics query for {source.id} failed: {text}") from None
            return _Part(complete=False, errors=[f"{_span_text(start, end)}: {text}"])
        partial = isinstance(result, LogsQueryPartialResult)
        tables = (result.partial_data if partial else result.tables) or []  # type: ignore[union-attr]
        rows = len(tables[0].rows) if tables else 0
        size = max(sizes, default=0)
        limits = self._limits
        near = rows >= limits.row_limit * limits.near_ratio or size >= limits.byte_limit * limits.near_ratio
        can_split = depth < limits.max_depth and (end - start).total_seconds() >= 2 * limits.min_span_seconds
        if (partial or near) and can_split:
            return self._halves(source, kql, start, end, depth)
        part = self._rows(source, tables[0] if tables else None)
        if partial:
            error = result.partial_error  # type: ignore[union-attr]
            part.complete = False
            part.errors.append(f"{_span_text(start, end)}: {_error_text(error)}")
        elif rows >= limits.row_limit or size >= limits.byte_limit:
            part.complete = False
            part.errors.append(
                f"{_span_text(start, end)}: {rows} rows, {size} bytes: at the query API's limit"
                " after every split (the answer may be cut)"
            )
        return part

    def _halves(
        self, source: DatasetSource, kql: str, start: dt.datetime, end: dt.datetime, depth: int
    ) -> _Part:
        middle = start + (end - start) / 2
        middle = middle.replace(microsecond=middle.microsecond // 1000 * 1000)  # a millisecond instant
        left = self._span(source, kql, start, middle, depth + 1)
        right = self._span(source, kql, middle, end, depth + 1)
        # Both halves include the instant `middle`: a row there came back twice.
        time_index = list(source.columns).index(source.time_column)
        boundary = render_time(middle)
        seen = {tuple(row) for row in left.rows if row[time_index] == boundary}
        right_rows = [row for row in right.rows if row[time_index] != boundary or tuple(row) not in seen]
        times = [t for t in (left.max_ingestion_time, right.max_ingestion_time) if t is not None]
        return _Part(
            rows=left.rows + right_rows,
            max_ingestion_time=max(times, default=None),
            complete=left.complete and right.complete,
            splits=1 + left.splits + right.splits,
            errors=left.errors + right.errors,
        )

    def _rows(self, source: DatasetSource, table: LogsTable | None) -> _Part:
        if table is None:
            return _Part()
        rows, newest = table_rows(source, table)
        return _Part(rows=rows, max_ingestion_time=newest)


def table_rows(source: DatasetSource, table: LogsTable) -> tuple[list[list[str | None]], dt.datetime | None]:
    """A result table's rows as text in the source's column order, and the newest IngestionTime.
    QueryFailedError when the table lacks a column (or IngestionTime, for an incremental source)."""
    names: Sequence[str] = table.columns
    positions = {name: index for index, name in enumerate(names)}
    missing = [name for name in source.columns if name not in positions]
    if missing:
        raise QueryFailedError(
            f"the answer for {source.id} has no column {', '.join(missing)} (it has {', '.join(names)})"
        )
    ingestion = positions.get(INGESTION_TIME)
    if ingestion is None and source.incremental:
        raise QueryFailedError(
            f"the answer for {source.id} has no {INGESTION_TIME} column: an incremental query must"
            f" project {INGESTION_TIME} = ingestion_time()"
        )
    raw = _raw_rows(table)
    if not raw:
        return [], None
    with _collector_paused(len(raw) >= GC_PAUSE_ROWS):
        columns: list[Sequence[Any]] = list(zip(*raw, strict=True))  # one transposition, in C
        # The SDK str()s guid and timespan values, a null included: "None" there is a null.
        for position, kind in enumerate(table.columns_types):
            if kind in _STR_CONVERTED and "None" in columns[position]:
                columns[position] = [None if value == "None" else value for value in columns[position]]
        wanted = [positions[name] for name in source.columns]
        # A `string` column holds JSON strings and nulls only, and guid/timespan ones are text now: no
        # value to look at (a scan of types costs as much as the column's share of the encoding).
        text = {position for position, kind in enumerate(table.columns_types) if kind in _TEXT_COLUMNS}
        rows = _rows_of(columns, wanted, text)
    return rows, _max_time(columns[ingestion]) if ingestion is not None else None


def _raw_rows(table: LogsTable) -> list[Sequence[Any]]:
    """The table's rows as sequences of the SDK's values. LogsTableRow keeps them in a list (`_row`,
    what its public iteration walks); reading that list skips a Python-level iterator per row, which
    costs as much as the rest of the rendering. A row without it is iterated the public way."""
    try:
        raw: list[Sequence[Any]] = list(map(attrgetter("_row"), table.rows))
    except AttributeError:
        raw = [list(row) for row in table.rows]
    if raw and set(map(len, raw)) != {len(table.columns)}:
        raise QueryFailedError("the answer has rows of another width than its columns")
    return raw


def render_rows(raw: Sequence[Sequence[Any]], positions: Sequence[int]) -> list[list[str | None]]:
    """Rows of SDK values -> rows of text, with the values at `positions`, in that order.

    Column by column, at C speed where it can be: the rows are transposed once, a column of text
    (string, guid, None) is taken as it is, a column of UTC datetimes or of numbers goes through one
    map, any other column value by value through render_value; then transposed back. The text is
    render_value's either way (the unit tests check it)."""
    if not raw:
        return []
    with _collector_paused(len(raw) >= GC_PAUSE_ROWS):
        return _rows_of(list(zip(*raw, strict=True)), positions)


def _rows_of(
    columns: Sequence[Sequence[Any]], positions: Sequence[int], text: Collection[int] = ()
) -> list[list[str | None]]:
    rendered = [
        columns[position] if position in text else _render_column(columns[position]) for position in positions
    ]
    return list(map(list, zip(*rendered, strict=True)))


@contextlib.contextmanager
def _collector_paused(pause: bool) -> Iterator[None]:
    """The cyclic garbage collector off while a large answer is turned into rows: each of the new row
    lists would make it walk every young object again (a fifth of the time at 100,000 rows), and none of
    them can be part of a cycle. It is switched back on only if it was on (bench/export.py measures)."""
    if not pause or not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _render_column(values: Sequence[Any]) -> Sequence[str | None]:
    """`values` itself when it holds text only, else a new list of their text."""
    kinds = set(map(type, values))
    if kinds <= _TEXT_TYPES:
        return values
    if kinds == _DATETIME and set(map(dt.datetime.utcoffset, values)) == _ZERO_OFFSET:
        return [
            text[:23] + "Z"
            for text in map(dt.datetime.isoformat, values, repeat("T"), repeat("milliseconds"))
        ]
    if kinds <= _NUMBER_TYPES:
        return list(map(_repr_or_none, values)) if type(None) in kinds else list(map(repr, values))
    return [render_value(value) for value in values]


def _repr_or_none(value: Any) -> str | None:
    return None if value is None else repr(value)


def _max_time(values: Sequence[Any]) -> dt.datetime | None:
    times = [value for value in values if type(value) is dt.datetime]
    if not times:
        return None
    newest: dt.datetime = max(times)
    return newest if newest.tzinfo is not None else newest.replace(tzinfo=dt.UTC)


def _body_size(response: PipelineResponse[Any, Any]) -> int:
    headers = response.http_response.headers
    length = headers.get("Content-Length")
    if length is not None and length.isdigit():
        return int(length)
    try:
        return len(response.http_response.body())
    except Exception:  # a streamed body without a length: the rows decide alone
        return 0


def _span_text(start: dt.datetime, end: dt.datetime) -> str:
    return f"{render_time(start)}/{render_time(end)}"
