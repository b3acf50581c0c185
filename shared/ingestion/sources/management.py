"""The Office 365 Management Activity API client: subscriptions, content listings and content blobs.

Each collect() of a content type is a shared.ingestion.sources.content_run.ContentRun, which keeps a
failing blob's record and retries it (see there); the windows it lists are in management_windows.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from shared.ingestion.sources.content_run import (
    MAX_CONSECUTIVE_FAILURES,
    PAGE_RECORDS,
    BlobFailure,
    ContentRun,
    ContentStores,
    ContentUnavailable,
)
from shared.ingestion.sources.graph import PageObserver, SourceRunResult
from shared.ingestion.sources.handoff import PageHandOff
from shared.ingestion.sources.management_windows import (
    MAX_CONTENT_ATTEMPTS,
    SOURCE,
    content_windows,
    management_window_start,
    retry_delay,
    watermark_key,
)
from shared.ingestion.watermarks import FailedContent, HandedOffContent, WatermarkStore
from shared.m365.http_client import ApiClient, ApiError
from shared.platform.clock import Clock

# Re-exported: the collector's callers and tests name the Management API's limits and windows from here.
__all__ = [
    "MAX_CONSECUTIVE_FAILURES",
    "MAX_CONTENT_ATTEMPTS",
    "PAGE_RECORDS",
    "SOURCE",
    "ContentUnavailable",
    "ManagementCollector",
    "content_windows",
    "management_window_start",
    "retry_delay",
    "watermark_key",
]

logger = logging.getLogger(__name__)


def _api_time(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _with_publisher(url: str, tenant_id: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    query.setdefault("PublisherIdentifier", tenant_id)
    return urlunsplit(parts._replace(query=urlencode(query)))


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


class ManagementCollector:
    def __init__(
        self,
        api: ApiClient,
        management_base: str,
        tenant_id: str,
        scope: str,
        handoff: PageHandOff,
        watermarks: WatermarkStore,
        handed_off: HandedOffContent,
        clock: Clock,
        *,
        failed: FailedContent,
        overlap_seconds: float,
        initial_lookback_seconds: float,
        max_content_attempts: int = MAX_CONTENT_ATTEMPTS,
    ) -> None:
        self._api = api
        self._feed = f"{management_base.rstrip('/')}/api/v1.0/{tenant_id}/activity/feed"
        self._tenant_id = tenant_id
        self._scope = scope
        self._handoff = handoff
        self._watermarks = watermarks
        self._handed_off = handed_off
        self._failed = failed
        self._clock = clock
        self._overlap = overlap_seconds
        self._lookback = initial_lookback_seconds
        self._max_attempts = max_content_attempts

    def _call(self, method: str, url: str, deadline: float, params: dict[str, str] | None = None) -> Any:
        query = {**(params or {}), "PublisherIdentifier": self._tenant_id}
        return self._api.request(method, url, scope=self._scope, params=query, deadline=deadline)

    def start_subscription(self, content_type: str, deadline: float) -> None:
        try:
            self._call("POST", f"{self._feed}/subscriptions/start", deadline, {"contentType": content_type})
        except ApiError as error:
            if error.code != "AF20024":  # already enabled, e.g. by a concurrent run
                raise
        logger.info("Management Activity API subscription for %s is enabled", content_type)

    def list_content(
        self, content_type: str, start: dt.datetime, end: dt.datetime, deadline: float
    ) -> list[Any]:
        """Content blobs created in [start, end), following NextPageUri; starts a missing subscription."""
        params = {"contentType": content_type, "startTime": _api_time(start), "endTime": _api_time(end)}
        try:
            response = self._call("GET", f"{self._feed}/subscriptions/content", deadline, params)
        except ApiError as error:
            if error.code != "AF20022":
                raise
            self.start_subscription(content_type, deadline)
            response = self._call("GET", f"{self._feed}/subscriptions/content", deadline, params)
        blobs: list[Any] = []
        seen_pages: set[str] = set()
        while True:
            page = response.json() or []
            if not isinstance(page, list):
                raise ApiError(None, "InvalidListing", "a content listing must be a JSON array", self._feed)
            blobs.extend(page)
            next_page = response.headers.get("NextPageUri")
            if not next_page:
                return blobs
            # The bearer token stays with the API's own origin, and a repeated page would never end.
            if _origin(next_page) != _origin(self._feed):
                raise ApiError(None, "InvalidNextPage", "NextPageUri leaves the API's origin", next_page)
            if next_page in seen_pages:
                raise ApiError(None, "PagingLoop", "NextPageUri repeats an earlier page", next_page)
            seen_pages.add(next_page)
            response = self._api.request(
                "GET", _with_publisher(next_page, self._tenant_id), scope=self._scope, deadline=deadline
            )

    def _content_url(self, content_id: str, content_uri: str) -> str:
        """The contentUri, unless it leaves the API's origin: the token is then sent only to our feed."""
        if _origin(content_uri) == _origin(self._feed):
            return _with_publisher(content_uri, self._tenant_id)
        logger.warning("contentUri of %s is on another origin; fetched from the feed instead", content_id)
        return _with_publisher(f"{self._feed}/audit/{quote(content_id, safe='$')}", self._tenant_id)

    def fetch_content(self, content_id: str, content_uri: str, deadline: float) -> list[Any]:
        """The records of one blob. Raises BlobFailure, or ApiError AF20051 when it has expired."""
        url = self._content_url(content_id, content_uri)
        try:
            response = self._api.request("GET", url, scope=self._scope, deadline=deadline)
        except ApiError as error:
            if error.code == "AF20051" or error.status == 401:
                raise  # expired: counted apart; 401: the token, not the blob, is at fault
            transient = (
                error.status is None or error.status >= 500 or error.throttled or error.code == "AF50000"
            )
            raise BlobFailure(str(error), counts=not transient) from None
        try:
            records = response.json()
        except ValueError:
            raise BlobFailure("the content is not JSON", counts=True) from None
        if records is None:
            return []
        if not isinstance(records, list):
            raise BlobFailure(f"the content is a JSON {type(records).__name__}, not an array", counts=True)
        return records

    def collect(
        self,
        content_type: str,
        run_id: str,
        run_started: dt.datetime,
        deadline: float,
        observer: PageObserver | None = None,
    ) -> SourceRunResult:
        stores = ContentStores(
            self._handoff,
            self._watermarks,
            self._handed_off,
            self._failed,
            self._clock,
            self._overlap,
            self._lookback,
            self._max_attempts,
        )
        return ContentRun(self, stores, content_type, run_id, run_started, deadline, observer).execute()
