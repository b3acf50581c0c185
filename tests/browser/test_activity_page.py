"""The Activity map page (/activity, issue 19) against the whole stack: the sign-in failures of the
simulator's Log Analytics workspace and of the sign-ins this app stores, published by the app's own refresh
(POST /api/refresh from the page's button). The map draws a point per place of the published rows, the
time filter narrows the map and the table, the table is the TSV the API serves (values with tabs, line
breaks and non-ASCII text included), the columns sort from the keyboard, Refresh says 200, then 204 (nothing
due) with the TSV asked for again with If-None-Match (304, not downloaded again), and 202 when it is due
while another refresh holds the dataset's lease (held here, through the app's DatasetStore), and 429 with
the wait beyond the caller's rate; axe finds nothing."""

from __future__ import annotations

import contextlib
import datetime as dt
import urllib.parse
from collections import Counter
from collections.abc import Callable

import pytest
from azure.core.exceptions import ResourceNotFoundError
from playwright.sync_api import BrowserContext, Page, Request, expect

from shared.datasets.sources import DatasetSource, load_default_sources
from shared.datasets.store import DatasetStore, dataset_blob_name, metadata_blob_name
from shared.datasets.tsv import decode_tsv
from shared.ingestion.event_store import EventStore
from shared.platform.clients import get_clients
from shared.platform.resources import BlobContainers, CosmosContainers
from tests.browser.helpers import (
    READER,
    UI_TIMEOUT_MS,
    Console,
    SignedIn,
    run_axe,
    screenshot,
    sign_in,
    tid,
)
from tests.support.signin_events import signin_events

pytestmark = pytest.mark.browser

LOG_ANALYTICS = "signin_failures"  # SigninLogs of the simulator's workspace
EVENTS = "signin_failures_events"  # the failed sign-ins this app stores
PAGE_SIZE = 50  # rows the table shows at first, and more on each "More"
Rows = list[list[str]]


def source(source_id: str) -> DatasetSource:
    found = load_default_sources().get(source_id)
    assert found is not None, source_id
    return found


def dataset_store() -> DatasetStore:
    blobs = get_clients().blob_service
    return DatasetStore(
        blobs.get_container_client(BlobContainers.DATASETS),
        blobs.get_container_client(BlobContainers.LOCKS),
    )


@pytest.fixture
def never_refreshed(console: Console) -> DatasetStore:
    """Both sign-in failure datasets as before their first refresh (no TSV, no metadata), whatever an
    earlier test of the session did with them."""
    blobs = get_clients().blob_service
    for source_id in (LOG_ANALYTICS, EVENTS):
        for container, name in (
            (BlobContainers.DATASETS, dataset_blob_name(source(source_id))),
            (BlobContainers.LOCKS, metadata_blob_name(source_id)),
        ):
            with contextlib.suppress(ResourceNotFoundError):
                blobs.get_container_client(container).delete_blob(name)
    return dataset_store()


def published(signed: SignedIn, source_id: str) -> tuple[list[str], Rows, str]:
    """The dataset as the API serves it: columns, rows and ETag."""
    response = signed.api("GET", f"/api/datasets/{source_id}")
    assert response.status_code == 200, (response.status_code, response.text[:300])
    columns, rows = decode_tsv(response.content)
    return columns, rows, response.headers["ETag"]


def refresh(page: Page, status: int) -> str:
    """Press Refresh; the outcome shows `status`. Returns what it says."""
    result = tid(page, "act-refresh-result")
    tid(page, "act-refresh").click()
    expect(result).to_have_attribute("data-status", str(status), timeout=60_000)
    return str(result.text_content())


def expect_count(page: Page, count: int) -> None:
    expect(tid(page, "act-count")).to_have_attribute("data-count", str(count), timeout=UI_TIMEOUT_MS)


def shown_rows(page: Page, every: bool = True) -> Rows:
    """The table's cells as text; with `every`, after "More" until every row is shown."""
    while every and tid(page, "act-more").count():
        before = tid(page, "act-row").count()
        tid(page, "act-more").click()
        page.wait_for_function(
            "n => document.querySelectorAll('[data-testid=\"act-row\"]').length > n", arg=before
        )
    cells = tid(page, "act-row").evaluate_all(
        "rows => rows.map(r => Array.from(r.cells, c => c.textContent))"
    )
    return [[str(c) for c in row] for row in cells]


def newest_first(columns: list[str], rows: Rows, column: str = "TimeGenerated") -> Rows:
    """The page's default order: the time column, newest first; ties keep the TSV's order."""
    index = columns.index(column)
    return sorted(rows, key=lambda r: r[index], reverse=True)


def ms(value: str) -> int:
    return int(dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1000)


def places(columns: list[str], rows: Rows) -> Counter[tuple[float, float]]:
    """Rows per (latitude, longitude), as the map groups them (rows without coordinates left out)."""
    lat, lon = columns.index("Latitude"), columns.index("Longitude")
    found: Counter[tuple[float, float]] = Counter()
    for row in rows:
        if row[lat] and row[lon]:
            found[(float(row[lat]), float(row[lon]))] += 1
    return found


def map_points(page: Page) -> Counter[tuple[float, float]]:
    points = tid(page, "map-point").evaluate_all(
        "ps => ps.map(p => [p.dataset.lat, p.dataset.lon, p.dataset.count])"
    )
    return Counter({(float(lat), float(lon)): int(count) for lat, lon, count in points})


def expect_points(page: Page, expected: Counter[tuple[float, float]]) -> None:
    expect(tid(page, "act-map")).to_have_attribute("data-points", str(len(expected)), timeout=UI_TIMEOUT_MS)
    assert map_points(page) == expected


def tsv_requests(signed: SignedIn, source_id: str) -> list[Request]:
    path = f"/api/datasets/{source_id}"
    return [r for r in signed.api_requests if urllib.parse.urlsplit(r.url).path == path and r.method == "GET"]


def test_the_log_analytics_failures_on_the_map_filtered_in_the_table_and_refreshed(
    signed_in_page: Callable[..., SignedIn], never_refreshed: DatasetStore
) -> None:
    signed = signed_in_page([READER], f"/activity?dataset={LOG_ANALYTICS}")
    page = signed.page
    expect(tid(page, "act-dataset", dataset=LOG_ANALYTICS)).to_have_attribute("aria-current", "page")
    expect(tid(page, "act-no-data")).to_be_visible(timeout=UI_TIMEOUT_MS)
    expect(tid(page, "act-meta")).to_have_attribute("data-status", "never")

    # Due (never refreshed) while another refresh holds the dataset's lease: 202, nothing published.
    with never_refreshed.lease(source(LOG_ANALYTICS)):
        assert "another refresh holds the lock" in refresh(page, 202)
    assert signed.api("GET", f"/api/datasets/{LOG_ANALYTICS}").status_code == 404
    expect(tid(page, "act-no-data")).to_be_visible()

    said = refresh(page, 200)
    columns, rows, etag = published(signed, LOG_ANALYTICS)
    assert rows, "the simulator's workspace held no failed sign-in in the last 24 hours"
    assert f"Refreshed: {len(rows):,} rows" in said
    expect(tid(page, "act-meta")).to_have_attribute("data-status", "ok", timeout=UI_TIMEOUT_MS)

    # The table is the TSV, newest first, exactly: the simulator's tabs, line breaks and non-ASCII too.
    expect_count(page, len(rows))
    header = tid(page, "act-sort").evaluate_all("bs => bs.map(b => b.dataset.column)")
    assert header == columns == list(source(LOG_ANALYTICS).columns)
    assert tid(page, "act-row").count() == min(PAGE_SIZE, len(rows))
    assert shown_rows(page) == newest_first(columns, rows)
    values = [v for row in rows for v in row]
    assert any("\t" in v for v in values)
    assert any("\n" in v for v in values)
    assert any(not v.isascii() for v in values)

    # One point per place, sized by its rows; the same places as a table.
    everywhere = places(columns, rows)
    expect_points(page, everywhere)
    place_counts = tid(page, "act-place").evaluate_all("rs => rs.map(r => +r.dataset.count)")
    assert place_counts == sorted(everywhere.values(), reverse=True)
    radii = tid(page, "map-point").evaluate_all("ps => ps.map(p => [+p.dataset.count, +p.getAttribute('r')])")
    assert [r for _, r in sorted(radii)] == sorted(r for _, r in radii), "a point's size follows its count"
    axe_clean = run_axe(page)
    tid(page, "act-map").scroll_into_view_if_needed()
    screenshot(page, "activity-map")
    assert axe_clean == []

    # A custom range (UTC, both ends included) narrows the table and the map to the rows inside it.
    times = sorted({r[columns.index("TimeGenerated")] for r in rows})  # ISO-8601 UTC, milliseconds
    start = dt.datetime.fromisoformat(times[len(times) // 3].replace("Z", "+00:00")).replace(microsecond=0)
    end = dt.datetime.fromisoformat(times[2 * len(times) // 3].replace("Z", "+00:00")).replace(microsecond=0)
    t_index = columns.index("TimeGenerated")
    inside = [r for r in rows if ms(start.isoformat()) <= ms(r[t_index]) <= ms(end.isoformat())]
    assert 0 < len(inside) < len(rows)
    tid(page, "act-time-custom").click()
    tid(page, "act-time-start").fill(start.strftime("%Y-%m-%dT%H:%M:%S"))
    tid(page, "act-time-end").fill(end.strftime("%Y-%m-%dT%H:%M:%S"))
    tid(page, "act-time-apply").click()
    expect_count(page, len(inside))
    assert shown_rows(page) == newest_first(columns, inside)
    expect_points(page, places(columns, inside))
    assert sum(places(columns, inside).values()) < sum(everywhere.values())
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(page.url).query)
    assert query["range"] == ["custom"]
    assert query["start"] == [start.strftime("%Y-%m-%dT%H:%M:%SZ")]

    # The last hour: at least the rows inside it after the click, at most those before it.
    before = dt.datetime.now(dt.UTC)
    tid(page, "act-time-1h").click()
    expect(tid(page, "act-time-1h")).to_have_attribute("aria-pressed", "true")
    shown = int(tid(page, "act-count").get_attribute("data-count") or -1)
    after = dt.datetime.now(dt.UTC)
    lower = sum(ms(r[t_index]) >= (after - dt.timedelta(hours=1)).timestamp() * 1000 for r in rows)
    upper = sum(ms(r[t_index]) >= (before - dt.timedelta(hours=1)).timestamp() * 1000 for r in rows)
    assert lower <= shown <= upper
    assert shown < len(rows)
    tid(page, "act-time-all").click()
    expect_count(page, len(rows))

    # The columns sort from the keyboard: Enter on a column's button, ascending, then descending.
    city = columns.index("City")
    tid(page, "act-sort", column="City").focus()
    page.keyboard.press("Enter")
    expect(page.locator("th[aria-sort='ascending']")).to_have_text("City")
    assert shown_rows(page, every=False) == sorted(rows, key=lambda r: r[city])[:PAGE_SIZE]
    page.keyboard.press("Enter")
    expect(page.locator("th[aria-sort='descending']")).to_have_text("City")
    assert shown_rows(page, every=False) == sorted(rows, key=lambda r: r[city], reverse=True)[:PAGE_SIZE]

    # Again within the refresh interval: 204, no query; the TSV is asked for with its ETag: 304.
    asked = len(tsv_requests(signed, LOG_ANALYTICS))
    assert "Nothing due" in refresh(page, 204)
    for _ in range(UI_TIMEOUT_MS // 100):
        if len(tsv_requests(signed, LOG_ANALYTICS)) > asked:
            break
        page.wait_for_timeout(100)
    again = tsv_requests(signed, LOG_ANALYTICS)[-1]
    assert again.headers.get("if-none-match") == etag
    answer = again.response()
    assert answer is not None
    assert answer.status == 304
    assert published(signed, LOG_ANALYTICS)[2] == etag
    expect_count(page, len(rows))


def test_the_failed_sign_ins_this_app_stores_are_on_the_map(
    signed_in_page: Callable[..., SignedIn], console: Console, never_refreshed: DatasetStore
) -> None:
    now = dt.datetime.now(dt.UTC)
    events = signin_events(
        console.tenant_id, now - dt.timedelta(hours=20), 60, spacing=dt.timedelta(minutes=19)
    )
    clients = get_clients()
    EventStore(
        clients.cosmos_container(CosmosContainers.EVENTS.name),
        clients.cosmos_container(CosmosContainers.FACETS.name),
        8,
    ).write_events(events)
    failed = [e for e in events if e["result"] == "failure"]
    assert failed

    signed = signed_in_page([READER], "/activity")
    page = signed.page
    tid(page, "act-dataset", dataset=EVENTS).click()
    expect(tid(page, "act-dataset", dataset=EVENTS)).to_have_attribute("aria-current", "page")
    expect(tid(page, "act-no-data")).to_be_visible(timeout=UI_TIMEOUT_MS)
    refresh(page, 200)
    columns, rows, _ = published(signed, EVENTS)
    expect_count(page, len(rows))
    assert shown_rows(page) == newest_first(columns, rows)

    shown = places(columns, rows)
    expect_points(page, shown)
    seeded = Counter(
        (e["signin"]["location"]["latitude"], e["signin"]["location"]["longitude"]) for e in failed
    )
    assert all(shown[place] >= count for place, count in seeded.items()), (seeded, shown)
    upn = columns.index("UserPrincipalName")
    assert {e["actor"]["upn"] for e in failed} <= {r[upn] for r in rows}
    assert run_axe(page) == []


def test_too_many_refreshes_say_when_to_retry(context: BrowserContext, console: Console) -> None:
    """Beyond DATASETS_REFRESH_PER_MINUTE (6) a minute, the API answers 429 with Retry-After and the page
    says how long to wait. 13 presses span at most two of the rate's one-minute windows, so one of them
    sees a seventh. A user of its own, so the other tests' refreshes do not count."""
    signed = sign_in(context, console, [READER], f"/activity?dataset={EVENTS}", user=2)
    page = signed.page
    result = tid(page, "act-refresh-result")
    expect(tid(page, "act-refresh")).to_be_enabled(timeout=UI_TIMEOUT_MS)
    for _ in range(13):
        with page.expect_response(lambda r: urllib.parse.urlsplit(r.url).path == "/api/refresh") as answer:
            tid(page, "act-refresh").click()
        expect(result).not_to_have_attribute("data-status", "0", timeout=60_000)
        if answer.value.status == 429:
            break
    assert answer.value.status == 429
    wait = int(answer.value.headers["retry-after"])
    assert 1 <= wait <= 60
    expect(result).to_have_attribute("data-status", "429")
    expect(result).to_have_text(f"Too many refreshes: try again in {f'{wait} s' if wait < 60 else '1 min'}.")
