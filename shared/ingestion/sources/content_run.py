"""One collect() of one Management Activity API content type: listings, fetches, hand-offs and the
failed-blob records.

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
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.ingestion.sources.graph import PageObserver, SourceRunResult
from shared.ingestion.sources.handoff import PageHandOff
from shared.ingestion.sources.management_windows import (
    CONTENT_RETENTION,
    SOURCE,
    content_windows,
    full_relist_due,
    full_relist_start,
    management_window_start,
    retry_delay,
    watermark_key,
)
from shared.ingestion.watermarks import FailedBlob, FailedContent, HandedOffContent, WatermarkStore
from shared.m365.http_client import ApiError
from shared.platform.clock import Clock, parse_utc, utc_iso
from shared.platform.redact import redact

logger = logging.getLogger(__name__)

# Content blobs are small (often a handful of records); consecutive ones share one archived page.
PAGE_RECORDS = 1000
# So many failing blobs in a row is an outage, not bad blobs: the run stops and the watermark stays.
MAX_CONSECUTIVE_FAILURES = 5
# contentId is "an opaque string"; Microsoft's are digits, letters, "$" and "_". It becomes a table key
# (shared.platform.ids.storage_id refuses anything unsafe there too).
CONTENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9$_.\-]{0,254}")
_FRACTION = re.compile(r"(\.\d{6})\d+")


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


class ContentApi(Protocol):
    """The Management Activity API as a run calls it (shared.ingestion.sources.management)."""

    def list_content(
        self, content_type: str, start: dt.datetime, end: dt.datetime, deadline: float
    ) -> list[Any]: ...

    def fetch_content(self, content_id: str, content_uri: str, deadline: float) -> list[Any]: ...


@dataclass(frozen=True)
class ContentStores:
    """Where a run hands pages off and keeps its state, and the windows and limits it runs with."""

    handoff: PageHandOff
    watermarks: WatermarkStore
    handed_off: HandedOffContent
    failed: FailedContent
    clock: Clock
    overlap_seconds: float
    initial_lookback_seconds: float
    max_content_attempts: int


class ContentRun:
    """One collect() of one content type: its listings, fetches, hand-offs and failure records."""

    def __init__(
        self,
        api: ContentApi,
        stores: ContentStores,
        content_type: str,
        run_id: str,
        run_started: dt.datetime,
        deadline: float,
        observer: PageObserver | None,
    ) -> None:
        self.api = api
        self.stores = stores
        self.content_type = content_type
        self.key = watermark_key(content_type)
        self.run_id = run_id
        self.run_started = run_started
        self.deadline = deadline
        self.observer = observer
        self.state = stores.watermarks.get(self.key)
        self.now = stores.clock.now()
        # The first run starts from the initial lookback; it is the baseline later re-lists go back to.
        self.full_relist = full_relist_due(self.state, self.now)
        self.start = management_window_start(
            self.state.watermark, self.now, stores.overlap_seconds, stores.initial_lookback_seconds
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
        stores = self.stores
        self.handed_off = stores.handed_off.known(self.content_type)
        self.failed = stores.failed.all(self.content_type)
        try:
            for window_start, window_end in content_windows(self.start, self.now):
                listing = self.api.list_content(self.content_type, window_start, window_end, self.deadline)
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
        stores.watermarks.advance(
            self.key,
            self.now,
            self.run_id,
            self.result.records,
            stores.clock.now(),
            window_start=self.start,
            full_relist_at=self.now if self.full_relist else None,
        )
        if self.result.expired_skipped:
            stores.watermarks.add_counts(self.key, expired_skipped=self.result.expired_skipped)
        stores.handed_off.prune(self.content_type, self.now)
        stores.failed.prune(self.content_type, self.now)
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
        self.failed[key] = self.stores.failed.update(self.content_type, key, lambda _: blob)
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
            records = self.api.fetch_content(content_id, entry.content_uri, self.deadline)
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
        stores = self.stores
        self.result.pages += 1
        stores.handoff(
            SOURCE, list(self.pending_records), run_id=self.run_id, run_started=self.run_started,
            page=self.result.pages, content_type=self.content_type,
        )  # fmt: skip
        self.result.records += len(self.pending_records)
        if self.observer is not None:
            self.observer(SOURCE, self.pending_records)
        for content_id in self.pending_ids:
            stores.handed_off.remember(self.content_type, content_id, self.now)
            self.handed_off.add(content_id)
            if self.failed.pop(content_id, None) is not None:
                stores.failed.clear(self.content_type, content_id)
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
            give_up = counted >= self.stores.max_content_attempts
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

        blob = self.stores.failed.update(self.content_type, entry.content_id, change)
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

        self.failed[entry.content_id] = self.stores.failed.update(self.content_type, entry.content_id, change)
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
        self.stores.handed_off.remember(self.content_type, entry.content_id, self.now)
        self.handed_off.add(entry.content_id)

    def _record_counts(self) -> None:
        failing = sum(1 for blob in self.failed.values() if not blob.given_up)
        if failing == self.state.failing_blobs and not self.given_up and self.last_error is None:
            return
        self.stores.watermarks.record_content(
            self.key, failing=failing, given_up=self.given_up, last_error=self.last_error, now=self.now
        )
