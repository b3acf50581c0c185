"""The Management Activity API collector's protocol handling, with a fake API client."""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import parse_qs, urlsplit

from shared.http_client import ApiError
from shared.sources.management import PAGE_RECORDS, ManagementCollector

NOW = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)
TENANT = "00000000-0000-0000-0000-0000000000aa"
FEED = f"https://manage.example/api/v1.0/{TENANT}/activity/feed"


class Clock:
    def now(self) -> dt.datetime:
        return NOW

    def monotonic(self) -> float:
        return 0.0


class Response:
    def __init__(self, payload: Any, headers: dict[str, str] | None = None) -> None:
        self._payload = payload
        self.headers = headers or {}

    def json(self) -> Any:
        return self._payload


class FakeManagementApi:
    def __init__(self, blobs: list[dict[str, Any]], records_per_blob: int, expired: set[str]) -> None:
        self.blobs = blobs
        self.records_per_blob = records_per_blob
        self.expired = expired
        self.subscribed = False
        self.calls: list[tuple[str, str, dict[str, str]]] = []

    def request(self, method: str, url: str, *, params: dict[str, str] | None = None, **_: Any) -> Response:
        query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()} | (params or {})
        path = urlsplit(url).path
        self.calls.append((method, path, query))
        if path.endswith("/subscriptions/start"):
            if self.subscribed:
                raise ApiError(400, "AF20024", "already enabled", url, None)
            self.subscribed = True
            return Response({"status": "enabled"})
        if path.endswith("/subscriptions/content"):
            if not self.subscribed:
                raise ApiError(400, "AF20022", "No subscription found", url, None)
            page = int(query.get("page", "0"))
            chunk = self.blobs[page * 2 : page * 2 + 2]
            more = page * 2 + 2 < len(self.blobs)
            headers = {"NextPageUri": f"{FEED}/subscriptions/content?page={page + 1}"} if more else {}
            return Response(chunk, headers)
        content_id = path.rsplit("/", 1)[-1]
        if content_id in self.expired:
            raise ApiError(400, "AF20051", "expired", url, None)
        return Response([{"Id": f"{content_id}-{i}"} for i in range(self.records_per_blob)])


class FakeWatermarks:
    def __init__(self) -> None:
        self.advanced: list[tuple[str, int]] = []
        self.counts: dict[str, int] = {}

    def get(self, key: str) -> Any:
        from shared.watermarks import SourceState

        return SourceState(source=key)

    def advance(self, key: str, end: dt.datetime, run_id: str, count: int, now: dt.datetime) -> None:
        self.advanced.append((key, count))

    def add_counts(self, key: str, *, expired_skipped: int = 0, quarantined: int = 0) -> None:
        self.counts[key] = self.counts.get(key, 0) + expired_skipped


class FakeRegister:
    def __init__(self, known: set[str]) -> None:
        self.known = set(known)
        self.remembered: list[str] = []

    def seen(self, content_type: str, ids: list[str]) -> set[str]:
        return self.known & set(ids)

    def remember(self, content_type: str, content_id: str, now: dt.datetime) -> None:
        self.remembered.append(content_id)
        self.known.add(content_id)

    def prune(self, content_type: str, now: dt.datetime) -> int:
        return 0


def _collector(api: FakeManagementApi, register: FakeRegister, pages: list[list[Any]]) -> ManagementCollector:
    def handoff(source: str, records: list[Any], **kwargs: Any) -> None:
        assert kwargs["content_type"] == "Audit.Exchange"
        handed_ids = {r["Id"].rsplit("-", 1)[0] for r in records}
        assert not handed_ids & set(register.remembered), "content ids are remembered only after hand-off"
        pages.append(records)

    return ManagementCollector(
        api,  # type: ignore[arg-type]
        "https://manage.example",
        TENANT,
        "https://manage.office.com/.default",
        handoff,  # type: ignore[arg-type]
        FakeWatermarks(),  # type: ignore[arg-type]
        register,  # type: ignore[arg-type]
        Clock(),
        overlap_seconds=3600,
        initial_lookback_seconds=3600,
    )


def _blobs(n: int) -> list[dict[str, Any]]:
    return [
        {
            "contentId": f"c{i:03d}",
            "contentUri": f"{FEED}/audit/c{i:03d}",
            "contentCreated": f"2026-11-20T11:{i:02d}:00",
        }
        for i in range(n)
    ]


def test_subscribes_pages_with_publisher_identifier_skips_known_and_expired() -> None:
    api = FakeManagementApi(_blobs(7), records_per_blob=3, expired={"c004"})
    register, pages = FakeRegister(known={"c001"}), []
    result = _collector(api, register, pages).collect("Audit.Exchange", "run", NOW, deadline=10**9)

    assert api.subscribed
    assert all(query.get("PublisherIdentifier") == TENANT for _, _, query in api.calls)
    listings = [c for c in api.calls if c[1].endswith("/subscriptions/content")]
    assert len(listings) == 1 + 1 + 3  # AF20022, retry after subscribing, then two NextPageUri pages
    downloaded = [c[1].rsplit("/", 1)[-1] for c in api.calls if "/audit/" in c[1]]
    assert "c001" not in downloaded
    assert result.expired_skipped == 1
    assert result.records == 5 * 3
    assert sorted(register.remembered) == ["c000", "c002", "c003", "c004", "c005", "c006"]


def test_small_blobs_share_pages_of_at_most_page_records() -> None:
    per_blob = 300
    api = FakeManagementApi(_blobs(8), records_per_blob=per_blob, expired=set())
    api.subscribed = True
    pages: list[list[Any]] = []
    result = _collector(api, FakeRegister(set()), pages).collect("Audit.Exchange", "run", NOW, deadline=10**9)

    assert [len(p) for p in pages] == [1200, 1200]
    assert all(len(p) < PAGE_RECORDS + per_blob for p in pages)
    assert result.pages == 2
    assert result.records == 8 * per_blob


def test_an_already_enabled_subscription_is_not_an_error() -> None:
    api = FakeManagementApi([], records_per_blob=1, expired=set())
    collector = _collector(api, FakeRegister(set()), [])
    collector.start_subscription("Audit.Exchange", deadline=10**9)
    collector.start_subscription("Audit.Exchange", deadline=10**9)
    assert api.subscribed
