"""The Office 365 Management Activity API: subscriptions, content listing, content blobs."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from shared.clock import Clock, parse_utc, utc_iso
from shared.http_client import ApiClient, ApiError
from shared.sources.graph import PageObserver, SourceRunResult
from shared.sources.handoff import PageHandOff
from shared.watermarks import HandedOffContent, WatermarkStore

logger = logging.getLogger(__name__)

SOURCE = "o365_management"
MAX_WINDOW = dt.timedelta(hours=24)
CONTENT_RETENTION = dt.timedelta(days=7)
RETENTION_SAFETY_MARGIN = dt.timedelta(minutes=30)
# Content blobs are small (often a handful of records); consecutive ones share one archived page.
PAGE_RECORDS = 1000


def watermark_key(content_type: str) -> str:
    return f"{SOURCE}.{content_type}"


def content_windows(start: dt.datetime, end: dt.datetime) -> Iterator[tuple[dt.datetime, dt.datetime]]:
    """Consecutive windows of at most 24 hours covering [start, end)."""
    cursor = start
    while cursor < end:
        window_end = min(cursor + MAX_WINDOW, end)
        yield cursor, window_end
        cursor = window_end


def management_window_start(
    watermark: str | None, now: dt.datetime, overlap_seconds: float, initial_lookback_seconds: float
) -> dt.datetime:
    """Re-list `overlap` before the watermark, never earlier than 7 days ago plus a safety margin."""
    earliest = now - CONTENT_RETENTION + RETENTION_SAFETY_MARGIN
    if watermark is None:
        start = now - dt.timedelta(seconds=initial_lookback_seconds)
    else:
        start = parse_utc(watermark) - dt.timedelta(seconds=overlap_seconds)
    return max(start, earliest)


def _api_time(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _with_publisher(url: str, tenant_id: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    query.setdefault("PublisherIdentifier", tenant_id)
    return urlunsplit(parts._replace(query=urlencode(query)))


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
        overlap_seconds: float,
        initial_lookback_seconds: float,
    ) -> None:
        self._api = api
        self._feed = f"{management_base.rstrip('/')}/api/v1.0/{tenant_id}/activity/feed"
        self._tenant_id = tenant_id
        self._scope = scope
        self._handoff = handoff
        self._watermarks = watermarks
        self._handed_off = handed_off
        self._clock = clock
        self._overlap = overlap_seconds
        self._lookback = initial_lookback_seconds

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
    ) -> list[dict[str, Any]]:
        """Content blobs created in [start, end), following NextPageUri; starts a missing subscription."""
        params = {"contentType": content_type, "startTime": _api_time(start), "endTime": _api_time(end)}
        try:
            response = self._call("GET", f"{self._feed}/subscriptions/content", deadline, params)
        except ApiError as error:
            if error.code != "AF20022":
                raise
            self.start_subscription(content_type, deadline)
            response = self._call("GET", f"{self._feed}/subscriptions/content", deadline, params)
        blobs: list[dict[str, Any]] = list(response.json() or [])
        next_page = response.headers.get("NextPageUri")
        while next_page:
            response = self._api.request(
                "GET", _with_publisher(next_page, self._tenant_id), scope=self._scope, deadline=deadline
            )
            blobs.extend(response.json() or [])
            next_page = response.headers.get("NextPageUri")
        return blobs

    def collect(
        self,
        content_type: str,
        run_id: str,
        run_started: dt.datetime,
        deadline: float,
        observer: PageObserver | None = None,
    ) -> SourceRunResult:
        key = watermark_key(content_type)
        state = self._watermarks.get(key)
        now = self._clock.now()
        start = management_window_start(state.watermark, now, self._overlap, self._lookback)
        result = SourceRunResult(source=key, window_start=utc_iso(start), window_end=utc_iso(now))
        pending_records: list[Any] = []
        pending_ids: list[str] = []

        def hand_off_pending() -> None:
            # Content ids are remembered only once the page holding their records is handed off.
            if not pending_ids:
                return
            result.pages += 1
            self._handoff(
                SOURCE, list(pending_records), run_id=run_id, run_started=run_started, page=result.pages,
                content_type=content_type,
            )  # fmt: skip
            result.records += len(pending_records)
            if observer is not None:
                observer(SOURCE, pending_records)
            for content_id in pending_ids:
                self._handed_off.remember(content_type, content_id, now)
            pending_records.clear()
            pending_ids.clear()

        for window_start, window_end in content_windows(start, now):
            blobs = self.list_content(content_type, window_start, window_end, deadline)
            already = self._handed_off.seen(content_type, [b["contentId"] for b in blobs])
            for blob in sorted(blobs, key=lambda b: b.get("contentCreated", "")):
                if blob["contentId"] in already:
                    continue
                try:
                    url = _with_publisher(blob["contentUri"], self._tenant_id)
                    response = self._api.request("GET", url, scope=self._scope, deadline=deadline)
                    records = response.json() or []
                except ApiError as error:
                    if error.code != "AF20051":
                        raise
                    logger.warning("content %s of %s expired; skipped", blob["contentId"], content_type)
                    result.expired_skipped += 1
                    self._handed_off.remember(content_type, blob["contentId"], now)
                    continue
                pending_records.extend(records)
                pending_ids.append(blob["contentId"])
                if len(pending_records) >= PAGE_RECORDS:
                    hand_off_pending()
        hand_off_pending()
        self._watermarks.advance(key, now, run_id, result.records, self._clock.now())
        if result.expired_skipped:
            self._watermarks.add_counts(key, expired_skipped=result.expired_skipped)
        self._handed_off.prune(content_type, now)
        return result
