"""The Management Activity API collector's protocol handling and its handling of bad content blobs.

The API is a fake (HTTP is mocked here only); the watermark, handed-off and failed-content stores are
the real classes over an in-memory table. tests/integration/test_management_content.py runs the same
story against the tenant simulator and Azurite.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections import Counter
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from shared.ingestion.sources.management import (
    MAX_CONSECUTIVE_FAILURES,
    MAX_CONTENT_ATTEMPTS,
    PAGE_RECORDS,
    ContentUnavailable,
    ManagementCollector,
    retry_delay,
    watermark_key,
)
from shared.ingestion.watermarks import FailedContent, HandedOffContent, WatermarkStore
from shared.m365.http_client import ApiError
from tests.support.clock import ManualClock
from tests.support.memory_table import MemoryTable

NOW = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)
TENANT = "00000000-0000-0000-0000-0000000000aa"
HOST = "manage.example"
FEED = f"https://{HOST}/api/v1.0/{TENANT}/activity/feed"
CONTENT_TYPE = "Audit.Exchange"
KEY = watermark_key(CONTENT_TYPE)
FOREVER = 10**9


class Response:
    def __init__(
        self, payload: Any, headers: dict[str, str] | None = None, *, not_json: bool = False
    ) -> None:
        self._payload = payload
        self._not_json = not_json
        self.headers = headers or {}

    def json(self) -> Any:
        if self._not_json:
            raise ValueError("Expecting value: line 1 column 1 (char 0)")
        return self._payload


@dataclass
class Blob:
    content_id: str
    created: dt.datetime
    records: int = 3
    uri: str | None = None

    def listing(self) -> dict[str, Any]:
        return {
            "contentType": CONTENT_TYPE,
            "contentId": self.content_id,
            "contentUri": self.uri or f"{FEED}/audit/{self.content_id}",
            "contentCreated": self.created.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "contentExpiration": (self.created + dt.timedelta(days=7)).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        }


@dataclass
class Call:
    method: str
    host: str
    path: str
    query: dict[str, str]
    at: dt.datetime


def _error(kind: str, url: str) -> ApiError | Response:
    errors = {
        "not_found": ApiError(404, "AF20050", "The specified content does not exist.", url),
        "invalid_id": ApiError(400, "AF20052", "Content ID in the URL is invalid.", url),
        "forbidden": ApiError(403, "AF10001", "The permission set did not include ActivityFeed.Read", url),
        "expired": ApiError(400, "AF20051", "Content has already expired.", url),
        "server_error": ApiError(503, "ServiceUnavailable", "retries exhausted", url),
        "no_answer": ApiError(None, "ConnectError", "[Errno 111] Connection refused", url, never_sent=True),
        "unauthorized": ApiError(401, "InvalidAuthenticationToken", "denied", url),
    }
    if kind == "not_json":
        return Response(None, not_json=True)
    if kind == "object":
        return Response({"records": []})
    return errors[kind]


class FakeManagementApi:
    """Lists blobs by contentCreated as the API does (startTime inclusive, endTime exclusive, 24 h at
    most, not before 7 days ago), `page_size` per page with NextPageUri, and serves their records."""

    def __init__(self, blobs: list[Blob], clock: ManualClock, page_size: int = 2) -> None:
        self.blobs = {b.content_id: b for b in blobs}
        self.clock = clock
        self.page_size = page_size
        self.held: set[str] = set()
        self.faults: dict[str, list[str | None]] = {}  # per content id: the answers of its next fetches
        self.always: dict[str, str] = {}  # per content id: the answer of every fetch
        self.subscribed = True
        self.calls: list[Call] = []

    def fail(self, content_id: str, kind: str, times: int | None = None) -> None:
        if times is None:
            self.always[content_id] = kind
        else:
            self.faults[content_id] = [kind] * times

    def listings(self) -> list[Call]:
        return [c for c in self.calls if c.path.endswith("/subscriptions/content")]

    def fetches(self, content_id: str | None = None) -> list[Call]:
        return [
            c
            for c in self.calls
            if "/audit/" in c.path and (content_id is None or c.path.endswith(content_id))
        ]

    def request(self, method: str, url: str, *, params: dict[str, str] | None = None, **_: Any) -> Response:
        parts = urlsplit(url)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()} | (params or {})
        call = Call(method, parts.netloc, parts.path, query, self.clock.now())
        self.calls.append(call)
        assert parts.netloc == HOST, "the token only ever goes to the Management API"
        assert query.get("PublisherIdentifier") == TENANT
        if parts.path.endswith("/subscriptions/start"):
            if self.subscribed:
                raise ApiError(400, "AF20024", "already enabled", url, None)
            self.subscribed = True
            return Response({"status": "enabled"})
        if parts.path.endswith("/subscriptions/content"):
            return self._list(url, query)
        content_id = parts.path.rsplit("/", 1)[-1]
        blob = self.blobs[content_id]
        kind = self.faults[content_id].pop(0) if self.faults.get(content_id) else self.always.get(content_id)
        if kind is not None:
            answer = _error(kind, url)
            if isinstance(answer, ApiError):
                raise answer
            return answer
        return Response([{"Id": f"{content_id}-{i}"} for i in range(blob.records)])

    def _list(self, url: str, query: dict[str, str]) -> Response:
        if not self.subscribed:
            raise ApiError(400, "AF20022", "No subscription found", url, None)
        start = dt.datetime.fromisoformat(query["startTime"]).replace(tzinfo=dt.UTC)
        end = dt.datetime.fromisoformat(query["endTime"]).replace(tzinfo=dt.UTC)
        if end - start > dt.timedelta(hours=24) or start < self.clock.now() - dt.timedelta(days=7):
            raise ApiError(400, "AF20030", "must be less than or equal to 24 hours apart", url, None)
        visible = sorted(
            (b for b in self.blobs.values() if start <= b.created < end and b.content_id not in self.held),
            key=lambda b: b.created,
        )
        page = int(query.get("nextPage", "0"))
        chunk = visible[page * self.page_size : (page + 1) * self.page_size]
        headers = {}
        if (page + 1) * self.page_size < len(visible):
            headers["NextPageUri"] = (
                f"{FEED}/subscriptions/content?contentType={CONTENT_TYPE}&startTime={query['startTime']}"
                f"&endTime={query['endTime']}&nextPage={page + 1}"
            )
        return Response([b.listing() for b in chunk], headers)


class Harness:
    def __init__(self, blobs: list[Blob], *, lookback: float = 3600, overlap: float = 3600) -> None:
        self.clock = ManualClock(NOW)
        self.api = FakeManagementApi(blobs, self.clock)
        self.watermark_table, self.handed_table, self.failed_table = (
            MemoryTable(),
            MemoryTable(),
            MemoryTable(),
        )
        self.watermarks = WatermarkStore(self.watermark_table, TENANT)  # type: ignore[arg-type]
        self.failed = FailedContent(self.failed_table, TENANT)  # type: ignore[arg-type]
        self.pages: list[list[Any]] = []
        self.handed_off = HandedOffContent(self.handed_table, TENANT)  # type: ignore[arg-type]
        self.collector = ManagementCollector(
            self.api,  # type: ignore[arg-type]
            f"https://{HOST}",
            TENANT,
            "https://manage.office.com/.default",
            self._handoff,  # type: ignore[arg-type]
            self.watermarks,
            self.handed_off,
            self.clock,
            failed=self.failed,
            overlap_seconds=overlap,
            initial_lookback_seconds=lookback,
        )

    def _handoff(self, source: str, records: list[Any], **kwargs: Any) -> None:
        assert source == "o365_management"
        assert kwargs["content_type"] == CONTENT_TYPE
        remembered = set(self.handed_table.rows(f"{TENANT}:{CONTENT_TYPE}"))
        assert not {r["Id"].rsplit("-", 1)[0] for r in records} & remembered, "remembered only after hand-off"
        self.pages.append(list(records))

    def poll(self) -> Any:
        return self.collector.collect(CONTENT_TYPE, "run", self.clock.now(), deadline=FOREVER)

    def handed(self) -> Counter[str]:
        return Counter(r["Id"] for page in self.pages for r in page)

    def state(self) -> Any:
        return self.watermarks.get(KEY)

    def failed_rows(self) -> dict[str, Any]:
        return self.failed.all(CONTENT_TYPE)


def _blobs(
    n: int, *, first: dt.datetime = NOW - dt.timedelta(minutes=50), step_minutes: int = 1
) -> list[Blob]:
    return [Blob(f"c{i:03d}", first + dt.timedelta(minutes=i * step_minutes)) for i in range(n)]


def _ids(*content_ids: str, per_blob: int = 3) -> set[str]:
    return {f"{c}-{i}" for c in content_ids for i in range(per_blob)}


# -- the protocol -------------------------------------------------------------------------------------


def test_subscribes_pages_with_publisher_identifier_skips_known_and_expired() -> None:
    harness = Harness(_blobs(7))
    harness.api.subscribed = False
    harness.api.fail("c004", "expired")
    harness.handed_off.remember(CONTENT_TYPE, "c001", NOW)
    result = harness.poll()

    listings = harness.api.listings()
    assert len(listings) == 1 + 1 + 3  # AF20022, retry after subscribing, then three NextPageUri pages
    assert [c.query.get("nextPage") for c in listings[2:]] == ["1", "2", "3"]
    assert [c.path.rsplit("/", 1)[-1] for c in harness.api.fetches()] == [
        "c000",
        "c002",
        "c003",
        "c004",
        "c005",
        "c006",
    ]
    assert result.expired_skipped == 1
    assert result.records == 5 * 3
    assert set(harness.handed()) == _ids("c000", "c002", "c003", "c005", "c006")
    assert set(harness.handed_table.rows(f"{TENANT}:{CONTENT_TYPE}")) == {f"c00{i}" for i in range(7)}
    assert harness.state().expired_skipped == 1


def test_small_blobs_share_pages_of_at_most_page_records() -> None:
    per_blob = 300
    harness = Harness([Blob(b.content_id, b.created, per_blob) for b in _blobs(8)])
    result = harness.poll()

    assert [len(p) for p in harness.pages] == [1200, 1200]
    assert all(len(p) < PAGE_RECORDS + per_blob for p in harness.pages)
    assert result.pages == 2
    assert result.records == 8 * per_blob


def test_an_already_enabled_subscription_is_not_an_error() -> None:
    harness = Harness([])
    harness.api.subscribed = False
    harness.collector.start_subscription(CONTENT_TYPE, deadline=FOREVER)
    harness.collector.start_subscription(CONTENT_TYPE, deadline=FOREVER)
    assert harness.api.subscribed


def test_a_next_page_uri_on_another_origin_is_refused() -> None:
    harness = Harness(_blobs(3))
    original = harness.api._list

    def listing(url: str, query: dict[str, str]) -> Response:
        response = original(url, query)
        if "NextPageUri" in response.headers:
            response.headers["NextPageUri"] = "https://attacker.example/steal?nextPage=1"
        return response

    harness.api._list = listing  # type: ignore[method-assign]
    with pytest.raises(ApiError, match="origin"):
        harness.poll()
    assert harness.state().watermark is None
    assert all(c.host == HOST for c in harness.api.calls)


# -- one bad blob among good ones ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "error"),
    [
        ("not_found", "HTTP 404 AF20050"),
        ("invalid_id", "HTTP 400 AF20052"),
        ("forbidden", "HTTP 403 AF10001"),
        ("not_json", "the content is not JSON"),
        ("object", "the content is a JSON dict, not an array"),
    ],
)
def test_one_bad_blob_never_costs_the_others(kind: str, error: str) -> None:
    harness = Harness(_blobs(10))
    harness.api.fail("c004", kind)
    result = harness.poll()

    good = [f"c{i:03d}" for i in range(10) if i != 4]
    assert harness.handed() == Counter(_ids(*good)), "every good record handed off exactly once"
    assert result.failed_blobs == 1
    assert result.given_up_blobs == 0
    state = harness.state()
    assert state.watermark == "2026-11-20T12:00:00.000Z", "the watermark moves past the bad blob"
    assert state.failing_blobs == 1
    assert state.last_blob_error is not None
    assert state.last_blob_error.startswith(f"content c004: {error}")
    row = harness.failed_rows()["c004"]
    assert (row.attempts, row.counted_attempts, row.given_up) == (1, 1, False)
    assert row.content_uri == f"{FEED}/audit/c004"
    assert row.next_attempt_at == "2026-11-20T12:05:00.000Z"
    assert error in row.last_error


def test_a_failing_blob_is_retried_with_growing_spacing_then_given_up_and_counted() -> None:
    harness = Harness(_blobs(10))
    harness.api.fail("c004", "not_found")
    for _ in range(12 * 12):  # every 5 minutes for 12 hours
        harness.poll()
        harness.clock.advance(300)

    fetches = [c.at for c in harness.api.fetches("c004")]
    assert len(fetches) == MAX_CONTENT_ATTEMPTS
    gaps = [later - earlier for earlier, later in itertools.pairwise(fetches)]
    assert gaps == [retry_delay(n) for n in range(1, MAX_CONTENT_ATTEMPTS)]
    assert gaps[-1] == dt.timedelta(hours=5, minutes=20)
    state = harness.state()
    assert (state.failing_blobs, state.given_up_blobs) == (0, 1)
    assert state.last_given_up_at == "2026-11-20T22:35:00.000Z"
    assert state.last_blob_error is not None
    assert state.last_blob_error.endswith("; given up")
    row = harness.failed_rows()["c004"]
    assert row.given_up
    assert row.attempts == MAX_CONTENT_ATTEMPTS
    good = [f"c{i:03d}" for i in range(10) if i != 4]
    assert harness.handed() == Counter(_ids(*good)), "144 polls, and still every good record once"
    assert len(harness.api.fetches()) == 9 + MAX_CONTENT_ATTEMPTS, "handed-off blobs are never fetched again"


def test_a_blob_that_recovers_is_handed_off_once_and_forgotten() -> None:
    harness = Harness(_blobs(6))
    harness.api.fail("c002", "not_json", times=2)
    first = harness.poll()
    harness.clock.advance(300)
    second = harness.poll()
    harness.clock.advance(600)
    third = harness.poll()

    assert (first.failed_blobs, second.failed_blobs, third.failed_blobs) == (1, 1, 0)
    assert (second.retried_blobs, third.retried_blobs) == (1, 1)
    assert third.records == 3
    assert harness.handed() == Counter(_ids(*(f"c{i:03d}" for i in range(6))))
    assert harness.failed_rows() == {}
    assert harness.state().failing_blobs == 0
    assert harness.state().given_up_blobs == 0


def test_throttling_and_outages_do_not_count_towards_giving_up_but_expiry_does() -> None:
    blobs = _blobs(3)
    harness = Harness(blobs)
    harness.api.fail("c001", "server_error")
    for _ in range(8 * 24):  # hourly for 8 days: past the blob's contentExpiration
        harness.poll()
        harness.clock.advance(3600)

    row = harness.failed_rows().get("c001")
    fetches = harness.api.fetches("c001")
    assert len(fetches) > MAX_CONTENT_ATTEMPTS, "a blob the API cannot serve now is not given up early"
    assert max(c.at for c in fetches) < blobs[1].created + dt.timedelta(days=7)
    state = harness.state()
    assert state.given_up_blobs == 1
    assert state.failing_blobs == 0
    assert state.last_blob_error is not None
    assert "expired after" in state.last_blob_error
    assert row is None, "the record is pruned once the blob has expired"


def test_an_outage_stops_the_run_keeps_what_was_fetched_and_holds_the_watermark() -> None:
    harness = Harness(_blobs(10))
    for i in range(3, 10):
        harness.api.fail(f"c{i:03d}", "no_answer")
    with pytest.raises(ContentUnavailable, match="5 content blobs"):
        harness.poll()

    assert harness.handed() == Counter(_ids("c000", "c001", "c002")), "fetched before the outage: kept"
    state = harness.state()
    assert state.watermark is None
    assert state.failing_blobs == MAX_CONSECUTIVE_FAILURES
    assert [c.path.rsplit("/", 1)[-1] for c in harness.api.fetches()][3:] == [
        f"c{i:03d}" for i in range(3, 8)
    ]

    for i in range(3, 10):
        harness.api.always.pop(f"c{i:03d}")
    harness.clock.advance(300)
    result = harness.poll()
    assert result.error is None
    assert result.retried_blobs == 5
    assert harness.handed() == Counter(_ids(*(f"c{i:03d}" for i in range(10))))
    assert harness.state().failing_blobs == 0


def test_an_expired_token_is_not_blamed_on_the_blob() -> None:
    harness = Harness(_blobs(3))
    harness.api.fail("c001", "unauthorized")
    with pytest.raises(ApiError, match="401"):
        harness.poll()
    assert harness.failed_rows() == {}
    assert harness.handed() == Counter(_ids("c000"))


# -- listing entries that cannot be trusted --------------------------------------------------------


def test_a_content_uri_on_another_origin_gets_no_token_and_is_fetched_from_the_feed() -> None:
    blobs = _blobs(3)
    blobs[1].uri = f"https://attacker.example/api/v1.0/{TENANT}/activity/feed/audit/c001"
    harness = Harness(blobs)
    harness.poll()

    assert [c.host for c in harness.api.calls] == [HOST] * len(harness.api.calls)
    assert harness.handed() == Counter(_ids("c000", "c001", "c002"))


def test_a_listing_entry_without_a_usable_id_is_given_up_once_and_never_stored_under_its_id() -> None:
    harness = Harness(_blobs(3))
    original = harness.api._list

    def listing(url: str, query: dict[str, str]) -> Response:
        response = original(url, query)
        entries = response.json()
        if query.get("nextPage") is None:
            bad = {**entries[0], "contentId": "../../Watermarks"}
            response = Response([*entries, bad, {"contentId": 7}], response.headers)
        return response

    harness.api._list = listing  # type: ignore[method-assign]
    first = harness.poll()
    harness.clock.advance(300)
    second = harness.poll()

    assert (first.given_up_blobs, second.given_up_blobs) == (2, 0), "counted once, not on every re-list"
    assert harness.state().given_up_blobs == 2
    keys = set(harness.failed_table.rows(f"{TENANT}:{CONTENT_TYPE}"))
    assert len(keys) == 2
    assert all(k.startswith("invalid-") for k in keys)
    assert harness.handed() == Counter(_ids("c000", "c001", "c002"))
    assert len(harness.api.fetches()) == 3


# -- the daily re-list of all 7 days --------------------------------------------------------------


def test_a_late_listed_blob_is_picked_up_by_the_daily_relist_and_nothing_is_fetched_twice() -> None:
    blobs = _blobs(6, step_minutes=10)  # created from 11:10 to 12:00
    late = Blob("late", NOW - dt.timedelta(minutes=20))
    harness = Harness([*blobs, late])
    harness.api.held.add("late")  # Microsoft lists it hours after its contentCreated
    harness.poll()
    for _ in range(3 * 12):  # every 5 minutes for 3 hours: the watermark moves on
        harness.clock.advance(300)
        harness.poll()
    harness.api.held.discard("late")
    harness.clock.advance(300)
    harness.poll()  # listed now, but its contentCreated is before this poll's window (watermark - 1 h)
    assert harness.api.listings()[-1].query["startTime"] == "2026-11-20T14:00:00"
    assert harness.api.fetches("late") == []
    assert harness.state().last_full_relist == "2026-11-20T12:00:00.000Z"  # the first run

    harness.clock.current = NOW + dt.timedelta(hours=24)
    fetches_before = len(harness.api.fetches())
    result = harness.poll()

    assert result.window_start == "2026-11-20T11:00:00.000Z", "back to where collecting started"
    assert [c.path.rsplit("/", 1)[-1] for c in harness.api.fetches()[fetches_before:]] == ["late"]
    assert harness.handed() == Counter(_ids(*(b.content_id for b in [*blobs, late])))
    assert harness.state().last_full_relist == "2026-11-21T12:00:00.000Z"


def test_the_daily_relist_lists_seven_24_hour_windows() -> None:
    harness = Harness(_blobs(3), lookback=8 * 86400)

    def first_pages() -> int:
        return sum(1 for c in harness.api.listings() if "nextPage" not in c.query)

    harness.poll()  # the first run: its lookback, clamped to 7 days less 30 minutes
    assert first_pages() == 7
    harness.clock.advance(300)
    harness.poll()
    assert first_pages() == 7 + 1  # [watermark - 1 h, now)
    harness.clock.current = NOW + dt.timedelta(hours=24)
    harness.poll()
    assert first_pages() == 7 + 1 + 7
    windows = [c.query for c in harness.api.listings() if "nextPage" not in c.query][-7:]
    assert windows[0]["startTime"] == "2026-11-14T12:30:00"
    assert windows[-1]["endTime"] == "2026-11-21T12:00:00"
    assert len(harness.api.fetches()) == 3, "the re-list fetched nothing handed off before"


# --- on the wire: the real ApiClient over an httpx.MockTransport ------------------------------------


def test_every_request_on_the_wire_carries_the_publisher_identifier_once() -> None:
    from tests.support.http_fakes import Answer, make_client

    listing = Blob("20261120120000000$abc_1", NOW - dt.timedelta(minutes=30)).listing()
    next_page = f"{FEED}/subscriptions/content?contentType={CONTENT_TYPE}&nextPage=1"
    client, transport, _, _ = make_client(
        [
            Answer(400, {"error": {"code": "AF20022", "message": "No subscription found"}}),
            Answer(200, {"contentType": CONTENT_TYPE, "status": "enabled"}),
            Answer(200, [listing], {"NextPageUri": next_page}),
            Answer(429, None, {"Retry-After": "1"}),
            Answer(200, []),
            Answer(200, [{"Id": "r1"}]),
        ]
    )
    collector = ManagementCollector(
        client,
        f"https://{HOST}",
        TENANT,
        "https://manage.office.com/.default",
        lambda *_args, **_kwargs: None,  # type: ignore[arg-type]
        WatermarkStore(MemoryTable(), TENANT),  # type: ignore[arg-type]
        HandedOffContent(MemoryTable(), TENANT),  # type: ignore[arg-type]
        ManualClock(NOW),
        failed=FailedContent(MemoryTable(), TENANT),  # type: ignore[arg-type]
        overlap_seconds=0,
        initial_lookback_seconds=3600,
    )
    blobs = collector.list_content(CONTENT_TYPE, NOW - dt.timedelta(hours=1), NOW, deadline=FOREVER)
    assert [b["contentId"] for b in blobs] == [listing["contentId"]]
    assert collector.fetch_content(listing["contentId"], listing["contentUri"], FOREVER) == [{"Id": "r1"}]
    paths = [urlsplit(sent.url).path.rsplit("/", 2)[-2:] for sent in transport.sent]
    assert paths == [
        ["subscriptions", "content"],
        ["subscriptions", "start"],
        ["subscriptions", "content"],
        ["subscriptions", "content"],
        ["subscriptions", "content"],
        ["audit", listing["contentId"]],
    ]
    for sent in transport.sent:
        assert parse_qs(urlsplit(sent.url).query)["PublisherIdentifier"] == [TENANT]
        assert urlsplit(sent.url).hostname == HOST
        assert sent.headers["authorization"].startswith("Bearer ")
        assert sent.timeout == {"connect": 3.0, "read": 20.0, "write": 20.0, "pool": 20.0}
