"""The activity datasets routes (issue 19): POST /api/refresh, GET /api/datasets, GET /api/datasets/{id}.

- `POST /api/refresh[?source=<id>]` refreshes every enabled source that is due, or only one
  (shared.datasets.refresh): 200 with the outcomes and `X-Refreshed-Count` when something was refreshed,
  202 when another refresh holds a source's lock (and nothing was refreshed), 204 when nothing was due,
  503 (a problem listing each source's error) when every source asked for failed. A caller (object id)
  may ask `DATASETS_REFRESH_PER_MINUTE` times a minute (shared.api.refresh_limits): beyond, 429 with
  Retry-After. An unknown source is a 404, an id outside the grammar a 400.
- `GET /api/datasets` lists the sources in force with what their last refresh recorded.
- `GET /api/datasets/{id}` answers the published TSV with its ETag and Last-Modified; `If-None-Match`
  (or, without it, `If-Modified-Since`) that still holds answers 304 with no body, so the console
  downloads a dataset only when it changed.

Every answer of these routes, refusals included, carries `X-Correlation-ID`: the caller's own when it
sent a valid one (1 to 100 of letters, digits and `._:-`), else a new one; the refresh's log lines name it.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import logging
import re
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared.api.auth import Role
from shared.api.problems import ApiProblem, bad_request
from shared.api.refresh_limits import CallerRateLimit, RateLimited
from shared.api.responses import ApiGuard, ApiResponse, header, json_response, not_found
from shared.api.routing import ApiRequest, Call, EmptyBody, NoQuery, PathParam, Reply, Resource, route
from shared.datasets.refresh import RefreshReport, SourceOutcome, UnknownSource
from shared.datasets.sources import DatasetSource, SourceSet
from shared.datasets.store import CACHE_CONTROL, BlobVersion, DatasetMetadata, DatasetStorage
from shared.platform.ids import is_dataset_source_id

logger = logging.getLogger(__name__)

CORRELATION_HEADER = "X-Correlation-ID"
REFRESHED_COUNT_HEADER = "X-Refreshed-Count"
CORRELATION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,99}")
TSV_MEDIA_TYPE = "text/tab-separated-values"
TSV_CONTENT_TYPE = f"{TSV_MEDIA_TYPE}; charset=utf-8"
MAX_CONDITION_LENGTH = 2000
_ENTITY_TAG = r'(?:W/)?"[\x21\x23-\x7e\x80-\xff]*"'
IF_NONE_MATCH = re.compile(rf"\*|{_ENTITY_TAG}(?:[ \t]*,[ \t]*{_ENTITY_TAG})*")
SOURCE_ID_GRAMMAR = "a lower-case letter, then up to 62 lower-case letters, digits or '_'"

DATASET_ID = PathParam(
    "id",
    f"dataset source id: {SOURCE_ID_GRAMMAR}",
    "dataset",
    is_dataset_source_id,
    refusal=f"not a dataset source id ({SOURCE_ID_GRAMMAR})",
)

TSV_CONTENT = {
    TSV_MEDIA_TYPE: {
        "type": "string",
        "description": (
            "UTF-8, a header row then one row per line, cells separated by tabs, every line ending in LF; "
            "inside a value backslash, tab, LF and CR are written \\\\, \\t, \\n and \\r; an empty cell is "
            "an empty or null value"
        ),
    }
}


# --- documented models -------------------------------------------------------------------------------


class RefreshQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: str | None = Field(
        default=None,
        max_length=63,
        pattern=r"^[a-z][a-z0-9_]{0,62}$",
        description=f"refresh only this source (its id: {SOURCE_ID_GRAMMAR}); without it, every enabled one",
    )

    @field_validator("source")
    @classmethod
    def _source_id(cls, value: str | None) -> str | None:
        if value is not None and not is_dataset_source_id(value):
            raise ValueError(f"not a dataset source id ({SOURCE_ID_GRAMMAR})")
        return value


class RefreshAnswer(BaseModel):
    outcomes: list[SourceOutcome] = Field(
        description="one per source asked for, in the sources file's order: refreshed, throttled (refreshed "
        "less than its interval ago), locked (another refresh runs), partial or failed (dataset kept)"
    )


class DatasetView(BaseModel):
    id: str
    name: str
    kind: str = Field(description="log_analytics (a KQL query) or events (this app's stored events)")
    enabled: bool
    columns: list[str] = Field(description="the TSV's columns, in order")
    time_column: str = Field(description="the column rows are kept by (within query_time_window_hours)")
    refresh_interval_seconds: int
    query_time_window_hours: int
    output_filename: str
    metadata: DatasetMetadata | None = Field(description="what the last refresh recorded; null before any")


class DatasetList(BaseModel):
    items: list[DatasetView] = Field(description="the sources in force, in the sources file's order")
    origin: str = Field(description="where the sources come from: the shipped file or the config blob")


# --- helpers ----------------------------------------------------------------------------------------


def correlation_id(headers: Mapping[str, str]) -> str:
    """The caller's X-Correlation-ID when it is of the grammar, else a new one."""
    sent = (header(headers, CORRELATION_HEADER) or "").strip()
    return sent if CORRELATION_ID.fullmatch(sent) else str(uuid.uuid4())


def quoted(etag: str) -> str:
    """A blob ETag as an HTTP entity tag (Azure Storage's usually carries its double quotes already)."""
    return etag if etag.startswith('"') and etag.endswith('"') and len(etag) > 1 else f'"{etag}"'


def http_date(value: dt.datetime) -> str:
    return email.utils.format_datetime(value.astimezone(dt.UTC).replace(microsecond=0), usegmt=True)


def if_none_match(headers: Mapping[str, str]) -> list[str] | None:
    """The entity tags of If-None-Match ("*", or a list); None when absent; a 400 when malformed."""
    raw = header(headers, "If-None-Match")
    if raw is None:
        return None
    value = raw.strip()
    if len(value) > MAX_CONDITION_LENGTH or IF_NONE_MATCH.fullmatch(value) is None:
        raise bad_request(
            'If-None-Match must be "*" or a list of entity tags such as "0x8DC..."', field="If-None-Match"
        )
    return ["*"] if value == "*" else re.findall(_ENTITY_TAG, value)


def if_modified_since(headers: Mapping[str, str]) -> dt.datetime | None:
    """If-Modified-Since as a UTC instant; None when absent or not an HTTP-date (RFC 9110 13.1.3: a
    recipient ignores an invalid date)."""
    raw = header(headers, "If-Modified-Since")
    if raw is None or len(raw) > 100:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(raw.strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed is None:
        return None
    return parsed.replace(tzinfo=dt.UTC) if parsed.tzinfo is None else parsed.astimezone(dt.UTC)


def not_modified(headers: Mapping[str, str], version: BlobVersion) -> bool:
    """RFC 9110 13.2.2: If-None-Match decides when sent (weak comparison); else If-Modified-Since."""
    tags = if_none_match(headers)
    if tags is not None:
        mine = quoted(version.etag).removeprefix("W/")
        return "*" in tags or any(tag.removeprefix("W/") == mine for tag in tags)
    since = if_modified_since(headers)
    return since is not None and version.last_modified.replace(microsecond=0) <= since


def _version_headers(version: BlobVersion) -> dict[str, str]:
    return {
        "ETag": quoted(version.etag),
        "Last-Modified": http_date(version.last_modified),
        "Cache-Control": CACHE_CONTROL,
    }


def _failure_problem(report: RefreshReport) -> ApiProblem:
    errors: list[dict[str, Any]] = [
        {"field": f"source {o.source_id}", "message": f"{o.status}: {o.detail or 'no detail'}"}
        for o in report.outcomes
        if o.status in ("failed", "partial")
    ]
    count = len(errors)
    return ApiProblem(
        503,
        "Service Unavailable",
        f"no dataset was refreshed: {count} source{'s' if count != 1 else ''} failed "
        "(the datasets are kept as they were)",
        kind="refresh-failed",
        errors=errors,
    )


# --- the resource -------------------------------------------------------------------------------------


class DatasetsApi(Resource):
    def __init__(
        self,
        guard: ApiGuard,
        sources: Callable[[], SourceSet],
        store: DatasetStorage,
        refresh: Callable[[str | None], RefreshReport],
        rate_limit: CallerRateLimit,
    ) -> None:
        self.guard = guard
        self._sources = sources
        self._store = store
        self._refresh = refresh
        self._rate_limit = rate_limit

    def finish(self, request: ApiRequest, response: ApiResponse) -> ApiResponse:
        if any(name.lower() == CORRELATION_HEADER.lower() for name in response.headers):
            return response
        headers = {**response.headers, CORRELATION_HEADER: correlation_id(request.headers)}
        return ApiResponse(response.status, response.body, response.media_type, headers)

    @route(
        "POST",
        "refresh",
        "refresh_datasets_http",
        operation_id="refreshDatasets",
        role=Role.READER,
        summary="Refresh the activity datasets that are due (all enabled sources, or one)",
        query=RefreshQuery,
        body=EmptyBody,
        response=RefreshAnswer,
        extra_statuses=(202,),
        empty_statuses={204: "Nothing was due: every source asked for was refreshed within its interval"},
        problems={
            404: "No enabled dataset source has this id",
            429: "This caller asked too often: retry after the Retry-After delay",
            503: "Every source asked for failed; each one's error is listed, the datasets are unchanged",
        },
        tag="datasets",
        description=(
            "Runs each due source's query (a Log Analytics KQL query or this app's events), merges the rows "
            "into its TSV dataset and publishes it. 200 when at least one source was refreshed "
            "(X-Refreshed-Count says how many); 202 when none was but another refresh holds a source's lock; "
            "204 when nothing was due; 503 when all failed. Every answer carries X-Correlation-ID. A caller "
            "may ask DATASETS_REFRESH_PER_MINUTE times a minute (429 with Retry-After beyond)."
        ),
    )
    def refresh(self, call: Call[RefreshQuery, EmptyBody]) -> Reply:
        correlation = correlation_id(call.headers)
        source_id = call.query.source
        if source_id is not None:
            source = self._sources().get(source_id)
            if source is None or not source.enabled:
                raise not_found("enabled dataset source", source_id)
        try:
            self._rate_limit.take(call.principal.subject)
        except RateLimited as limited:
            raise ApiProblem(
                429,
                "Too Many Requests",
                f"at most {limited.limit} refreshes a minute per caller: retry after "
                f"{limited.retry_after_seconds} s",
                kind="rate-limited",
                headers={"Retry-After": str(limited.retry_after_seconds), CORRELATION_HEADER: correlation},
            ) from None
        try:
            report = self._refresh(source_id)
        except UnknownSource:  # disabled or removed between the check above and the refresh
            raise not_found("enabled dataset source", source_id or "") from None
        status = report.http_status
        logger.info(
            "refresh %s by %s (%s): %s",
            correlation,
            call.principal.name[:200],
            source_id or "all sources",
            ", ".join(f"{o.source_id}={o.status}" for o in report.outcomes) or "no enabled source",
        )
        headers = {CORRELATION_HEADER: correlation, REFRESHED_COUNT_HEADER: str(report.refreshed_count)}
        if status == 503:
            problem = _failure_problem(report)
            problem.headers.update(headers)
            raise problem
        if status == 204:
            return ApiResponse(204, b"", headers={**headers, "Cache-Control": "no-store"})
        answered = json_response(RefreshAnswer(outcomes=report.outcomes).model_dump(mode="json"), status)
        return ApiResponse(status, answered.body, answered.media_type, {**answered.headers, **headers})

    @route(
        "GET",
        "datasets",
        "list_datasets",
        operation_id="listDatasets",
        role=Role.READER,
        summary="The activity dataset sources in force, each with what its last refresh recorded",
        query=NoQuery,
        body=None,
        response=DatasetList,
        tag="datasets",
        description="Disabled sources are listed too. `metadata` is null until a source's first refresh.",
    )
    def list_datasets(self, call: Call[NoQuery, None]) -> Reply:
        source_set = self._sources()
        items = [self._view(source) for source in source_set]
        return DatasetList(items=items, origin=source_set.origin)

    @route(
        "GET",
        "datasets/{id}",
        "get_dataset",
        operation_id="getDataset",
        role=Role.READER,
        summary="One published dataset as TSV, with its ETag and Last-Modified",
        query=NoQuery,
        body=None,
        response=None,
        content=TSV_CONTENT,
        path_params=(DATASET_ID,),
        empty_statuses={304: "Not modified: the If-None-Match / If-Modified-Since given still holds"},
        tag="datasets",
        description=(
            "The TSV as last published (text/tab-separated-values; charset=utf-8), with ETag, Last-Modified "
            "and Cache-Control: private, no-cache. Send the ETag back in If-None-Match (or the date in "
            "If-Modified-Since) to get 304 without a body while it is unchanged. 404 for an unknown "
            "source or one never published."
        ),
    )
    def get_dataset(self, call: Call[NoQuery, None]) -> Reply:
        source = self._known(call.params["id"])
        version = self._store.version(source)
        if version is not None and not_modified(call.headers, version):
            return ApiResponse(304, b"", TSV_MEDIA_TYPE, _version_headers(version))
        found = self._store.read(source)
        if found is None:
            raise ApiProblem(
                404, "Not Found", f"dataset {source.id!r} has not been published yet", kind="not-found"
            )
        data, version = found
        headers = _version_headers(version)
        if not_modified(call.headers, version):
            return ApiResponse(304, b"", TSV_MEDIA_TYPE, headers)
        return ApiResponse(200, data, TSV_MEDIA_TYPE, {**headers, "Content-Type": TSV_CONTENT_TYPE})

    # -- helpers -----------------------------------------------------------------------------------

    def _known(self, source_id: str) -> DatasetSource:
        source = self._sources().get(source_id)
        if source is None:
            raise not_found("dataset", source_id)
        return source

    def _view(self, source: DatasetSource) -> DatasetView:
        stored = self._store.metadata(source)
        return DatasetView(
            id=source.id,
            name=source.name,
            kind=source.kind,
            enabled=source.enabled,
            columns=list(source.columns),
            time_column=source.time_column,
            refresh_interval_seconds=source.refresh_interval_seconds,
            query_time_window_hours=source.query_time_window_hours,
            output_filename=source.output_filename,
            metadata=stored.value if stored is not None else None,
        )
