"""The Office 365 Management Activity API: subscriptions, content listing, content blobs.

One bad content blob never stops its content type. A blob that cannot be fetched or read (404
AF20050, another 4xx, a body that is not a JSON array, an outage) is recorded in the `FailedContent`
table with its error and attempt count, and every other blob of the window is still handed off and the
watermark moves. The blob is retried on later polls with exponential spacing, straight from that
record, whether or not a listing shows it again. It is given up (and counted) after
`MAX_CONTENT_ATTEMPTS` failures that are its own (4xx, unreadable body), or once its
`contentExpiration` passes; throttling, 5xx and no answer never count towards giving up.

Microsoft can list a blob late, with a `contentCreated` already behind the watermark. Once every
`FULL_RELIST_INTERVAL` a run lists the whole 7 days the API keeps; content handed off before is in
the `HandedOffContent` table and costs only its share of the listing calls.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.ingestion.sources.graph import PageObserver, SourceRunResult
from shared.ingestion.sources.handoff import PageHandOff
from shared.ingestion.watermarks import (
    FailedBlob,
    FailedContent,
    HandedOffContent,
    SourceState,
    WatermarkStore,
)
from shared.m365.http_client import ApiClient, ApiError
from shared.platform.clock import Clock, parse_utc, utc_iso
from shared.platform.redact import redact

logger = logging.getLogger(__name__)

SOURCE = "o365_management"
MAX_WINDOW = dt.timedelta(hours=24)
CONTENT_RETENTION = dt.timedelta(days=7)
RETENTION_SAFETY_MARGIN = dt.timedelta(minutes=30)
# Content blobs are small (often a handful of records); consecutive ones share one archived page.
PAGE_RECORDS = 1000
# A daily re-list of all 7 days picks up blobs Microsoft lists late.
FULL_RELIST_INTERVAL = dt.timedelta(hours=24)
# A failing blob is tried again after 5, 10, 20 ... minutes, at most 6 hours apart, and given up after
# 8 failures of its own (about 10.5 hours after the first) or when it expires.
MAX_CONTENT_ATTEMPTS = 8
RETRY_BASE = dt.timedelta(minutes=5)
RETRY_CAP = dt.timedelta(hours=6)
# So many failing blobs in a row is an outage, not bad blobs: the run stops and the watermark stays.
MAX_CONSECUTIVE_FAILURES = 5
# contentId is "an opaque string"; Microsoft's are digits, letters, "$" and "_". It becomes a table key
# (shared.platform.ids.storage_id refuses anything unsafe there too).
CONTENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9$_.\-]{0,254}")
_FRACTION = re.compile(r"(\.\d{6})\d+")


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


def full_relist_due(state: SourceState, now: dt.datetime) -> bool:
    return state.last_full_relist is None or now - parse_utc(state.last_full_relist) >= FULL_RELIST_INTERVAL


def full_relist_start(state: SourceState, now: dt.datetime) -> dt.datetime:
    """All 7 days, but never before the first window this content type was collected from."""
    earliest = now - CONTENT_RETENTION + RETENTION_SAFETY_MARGIN
    if state.collecting_since is None:
        return earliest
    return max(earliest, parse_utc(state.collecting_since))


def retry_delay(attempts: int) -> dt.timedelta:
    """The wait after the `attempts`-th failure: 5 minutes doubling, capped at 6 hours."""
    return min(RETRY_BASE * 2 ** max(attempts - 1, 0), RETRY_CAP)


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


def _parse_time(value: str | None) -> dt.datetime | None:
    """An API timestamp (up to 7 fractional digits, Z or no zone) or None when absent or unreadable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return parse_utc(_FRACTION.sub(r"\1", value))
    except ValueError:
        return None


class ListedContent(BaseModel):
    """One entry of a content listing, as far as the collector needs it."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    content_id: str = Field(alias="contentId", pattern=f"^{CONTENT_ID.pattern}$", max_length=255)
    content_uri: str = Field(alias="contentUri", max_length=4096)
    content_created: str | None = Field(default=None, alias="contentCreated", max_length=64)
    content_expiration: str | None = Field(default=None, alias="contentExpiration", max_length=64)


class BlobFailure(Exception):
    """A content blob that could not be fetched or read. `counts`: whether it counts towards giving up."""

    def __init__(self, message: str, *, counts: bool) -> None:
        super().__init__(message)
        self.counts = counts


class ContentUnavailable(RuntimeError):
    """Several blobs in a row failed: the API (not a blob) is failing, so the run stops."""


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
        run = _ContentRun(self, content_type, run_id, run_started, deadline, observer)
        return run.execute()


class _ContentRun:
    """One collect() of one content type: its listings, fetches, hand-offs and failure records."""

    def __init__(
        self,
        collector: ManagementCollector,
        content_type: str,
        run_id: str,
        run_started: dt.datetime,
        deadline: float,
        observer: PageObserver | None,
    ) -> None:
        self.c = collector
        self.content_type = content_type
        self.key = watermark_key(content_type)
        self.run_id = run_id
        self.run_started = run_started
        self.deadline = deadline
        self.observer = observer
        self.state = collector._watermarks.get(self.key)
        self.now = collector._clock.now()
        # The first run starts from the initial lookback; it is the baseline later re-lists go back to.
        self.full_relist = full_relist_due(self.state, self.now)
        self.start = management_window_start(
            self.state.watermark, self.now, collector._overlap, collector._lookback
        )
        if self.full_relist and self.state.watermark is not None:
            self.start = min(self.start, full_relist_start(self.state, self.now))
        self.result = SourceRunResult(
            source=self.key, window_start=utc_iso(self.start), window_end=utc_iso(self.now)
        )
        self.handed_off: set[str] = set()
        self.failed: dict[str, FailedBlob] = {}
        self.tried: set[str] = set()  # content ids fetched (or given up) in this run
        self.pending_records: list[Any] = []
        self.pending_ids: list[str] = []
        self.given_up = 0
        self.last_error: str | None = None
        self.consecutive_failures = 0

    def execute(self) -> SourceRunResult:
        c = self.c
        self.handed_off = c._handed_off.known(self.content_type)
        self.failed = c._failed.all(self.content_type)
        try:
            for window_start, window_end in content_windows(self.start, self.now):
                listing = c.list_content(self.content_type, window_start, window_end, self.deadline)
                entries = [self._entry(raw) for raw in listing]
                for entry in sorted((e for e in entries if e), key=lambda e: e.content_created or ""):
                    self._consider(entry)
            # Failing blobs no listing shows now (created before the window) are retried from their record.
            for blob in sorted(self.failed.values(), key=lambda b: b.first_failed_at):
                if blob.content_id not in self.tried and not blob.given_up:
                    self._consider(
                        ListedContent(
                            contentId=blob.content_id,
                            contentUri=blob.content_uri,
                            contentCreated=blob.content_created,
                            contentExpiration=blob.content_expiration,
                        )
                    )
            self._hand_off_pending()
        except Exception:
            # What was fetched is kept: the next run skips it. The watermark stays where it was.
            try:
                self._hand_off_pending()
                self._record_counts()
            except Exception:
                logger.exception("%s: could not keep what this run fetched", self.key)
            raise
        self._record_counts()
        c._watermarks.advance(
            self.key,
            self.now,
            self.run_id,
            self.result.records,
            c._clock.now(),
            window_start=self.start,
            full_relist_at=self.now if self.full_relist else None,
        )
        if self.result.expired_skipped:
            c._watermarks.add_counts(self.key, expired_skipped=self.result.expired_skipped)
        c._handed_off.prune(self.content_type, self.now)
        c._failed.prune(self.content_type, self.now)
        return self.result

    # -- one blob ---------------------------------------------------------------------------------

    def _entry(self, raw: Any) -> ListedContent | None:
        """A listing entry, or None when it has no usable content id or URI: then it is given up at
        once, recorded under a key derived from the entry so a re-list does not count it again."""
        try:
            return ListedContent.model_validate(raw)
        except ValidationError:
            pass
        text = json.dumps(raw, sort_keys=True, default=str)
        key = f"invalid-{hashlib.sha256(text.encode()).hexdigest()[:40]}"
        if key in self.failed:
            return None
        now_text = utc_iso(self.now)
        error = f"a listing entry without a usable contentId or contentUri: {redact(text)[:200]}"
        blob = FailedBlob(
            content_id=key,
            content_uri="",
            content_expiration=utc_iso(self.now + CONTENT_RETENTION),
            attempts=1,
            counted_attempts=1,
            first_failed_at=now_text,
            last_failed_at=now_text,
            next_attempt_at=now_text,
            last_error=error,
            given_up=True,
            given_up_at=now_text,
        )
        self.failed[key] = self.c._failed.update(self.content_type, key, lambda _: blob)
        self.result.failed_blobs += 1
        self.result.given_up_blobs += 1
        self.given_up += 1
        self.last_error = f"{error}; given up"
        logger.error("%s: %s", self.key, self.last_error)
        return None

    def _consider(self, entry: ListedContent) -> None:
        content_id = entry.content_id
        if content_id in self.handed_off or content_id in self.tried:
            return
        failed = self.failed.get(content_id)
        if failed is not None and (failed.given_up or parse_utc(failed.next_attempt_at) > self.now):
            return  # given up, or not due yet
        self.tried.add(content_id)
        expiration = self._expiration(entry, failed)
        if failed is not None and self.now >= expiration:
            self._give_up_expired(entry, failed)
            return
        if failed is not None:
            self.result.retried_blobs += 1
        try:
            records = self.c.fetch_content(content_id, entry.content_uri, self.deadline)
        except ApiError as error:
            if error.code != "AF20051":
                raise
            self._expired(entry, failed)
            return
        except BlobFailure as failure:
            self._record_failure(entry, expiration, str(failure), counts=failure.counts)
            return
        self.consecutive_failures = 0
        self.pending_records.extend(records)
        self.pending_ids.append(content_id)
        if len(self.pending_records) >= PAGE_RECORDS:
            self._hand_off_pending()

    def _expiration(self, entry: ListedContent, failed: FailedBlob | None) -> dt.datetime:
        expiration = _parse_time(entry.content_expiration)
        if expiration is None and failed is not None:
            expiration = _parse_time(failed.content_expiration)
        if expiration is None:
            created = _parse_time(entry.content_created)
            expiration = (created or self.now) + CONTENT_RETENTION
        return expiration

    def _hand_off_pending(self) -> None:
        # Content ids are remembered only once the page holding their records is handed off.
        if not self.pending_ids:
            return
        c = self.c
        self.result.pages += 1
        c._handoff(
            SOURCE, list(self.pending_records), run_id=self.run_id, run_started=self.run_started,
            page=self.result.pages, content_type=self.content_type,
        )  # fmt: skip
        self.result.records += len(self.pending_records)
        if self.observer is not None:
            self.observer(SOURCE, self.pending_records)
        for content_id in self.pending_ids:
            c._handed_off.remember(self.content_type, content_id, self.now)
            self.handed_off.add(content_id)
            if self.failed.pop(content_id, None) is not None:
                c._failed.clear(self.content_type, content_id)
                logger.info("content %s of %s handed off after failing before", content_id, self.content_type)
        self.pending_records.clear()
        self.pending_ids.clear()

    # -- failures ---------------------------------------------------------------------------------

    def _record_failure(
        self, entry: ListedContent, expiration: dt.datetime, error: str, *, counts: bool
    ) -> None:
        now_text = utc_iso(self.now)
        error = redact(error)[:500]

        def change(current: FailedBlob | None) -> FailedBlob:
            blob = current or FailedBlob(
                content_id=entry.content_id,
                content_uri=entry.content_uri,
                content_created=entry.content_created,
                content_expiration=utc_iso(expiration),
                first_failed_at=now_text,
                last_failed_at=now_text,
                next_attempt_at=now_text,
                last_error=error,
            )
            attempts = blob.attempts + 1
            counted = blob.counted_attempts + (1 if counts else 0)
            give_up = counted >= self.c._max_attempts
            return blob.model_copy(
                update={
                    "attempts": attempts,
                    "counted_attempts": counted,
                    "last_failed_at": now_text,
                    "next_attempt_at": utc_iso(min(self.now + retry_delay(attempts), expiration)),
                    "last_error": error,
                    "given_up": give_up,
                    "given_up_at": now_text if give_up else None,
                }
            )

        blob = self.c._failed.update(self.content_type, entry.content_id, change)
        self.failed[entry.content_id] = blob
        self.result.failed_blobs += 1
        self.last_error = f"content {entry.content_id}: {error} (attempt {blob.attempts})"
        if blob.given_up:
            self.given_up += 1
            self.result.given_up_blobs += 1
            self.last_error += "; given up"
            logger.error(
                "content %s of %s given up: %s", entry.content_id, self.content_type, self.last_error
            )
        else:
            logger.warning(
                "content %s of %s failed (%s), retried after %s",
                entry.content_id, self.content_type, error, blob.next_attempt_at,
            )  # fmt: skip
        self.consecutive_failures += 1
        if self.consecutive_failures >= MAX_CONSECUTIVE_FAILURES:
            raise ContentUnavailable(
                f"{self.consecutive_failures} content blobs of {self.content_type} failed in a row; "
                f"last: {self.last_error}"
            )

    def _give_up_expired(self, entry: ListedContent, failed: FailedBlob) -> None:
        now_text = utc_iso(self.now)
        error = f"expired after {failed.attempts} failed attempt(s); last error: {failed.last_error}"

        def change(current: FailedBlob | None) -> FailedBlob:
            base = current or failed
            return base.model_copy(
                update={"given_up": True, "given_up_at": now_text, "last_error": error[:500]}
            )

        self.failed[entry.content_id] = self.c._failed.update(self.content_type, entry.content_id, change)
        self.given_up += 1
        self.result.given_up_blobs += 1
        self.last_error = f"content {entry.content_id}: {error}"[:1000]
        logger.error("content %s of %s given up: %s", entry.content_id, self.content_type, error)

    def _expired(self, entry: ListedContent, failed: FailedBlob | None) -> None:
        """AF20051. A blob never fetched before is skipped with a count, as before; a failing one is lost."""
        if failed is not None:
            self._give_up_expired(entry, failed)
            return
        logger.warning("content %s of %s expired; skipped", entry.content_id, self.content_type)
        self.result.expired_skipped += 1
        self.c._handed_off.remember(self.content_type, entry.content_id, self.now)
        self.handed_off.add(entry.content_id)

    def _record_counts(self) -> None:
        failing = sum(1 for blob in self.failed.values() if not blob.given_up)
        if failing == self.state.failing_blobs and not self.given_up and self.last_error is None:
            return
        self.c._watermarks.record_content(
            self.key, failing=failing, given_up=self.given_up, last_error=self.last_error, now=self.now
        )
