"""The Home page (/home) against the local stack: its counts are the API's (open alerts by severity, source
health, the last backup trigger and its run), each severity links to the alerts queue filtered, and the
pinned searches section stays empty, with no error, while GET /api/searches is not there (a 404, or the
local host's 405)."""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import expect

from tests.browser.health_data import Seeded, create_open_alerts, delete_alerts, seed_health
from tests.browser.helpers import READER, TID, UI_TIMEOUT_MS, Console, SignedIn, run_axe, screenshot, tid

pytestmark = pytest.mark.browser


@pytest.fixture
def seeded(console: Console) -> Iterator[Seeded]:
    alerts = create_open_alerts(console, ["critical", "high", "high", "low"])
    yield seed_health(console)
    delete_alerts(console, alerts)


def test_home_shows_what_the_api_counts_and_links_to_the_filtered_queues(
    signed_in_page: Callable[..., SignedIn], seeded: Seeded
) -> None:
    signed = signed_in_page([READER], "/home")
    page = signed.page
    expect(tid(page, TID.HOME_ALERTS_TOTAL)).to_be_visible(timeout=UI_TIMEOUT_MS)
    summary = signed.api_json("/api/alerts/summary")
    status = signed.api_json("/api/status")
    assert summary["total_open"] >= 4
    assert summary["open"]["high"] >= 2

    expect(tid(page, TID.HOME_ALERTS_TOTAL)).to_have_text(f"{summary['total_open']:,} open")
    severities = tid(page, TID.HOME_ALERT_SEVERITY)
    expect(severities).to_have_count(len(summary["open"]))
    for severity, count in summary["open"].items():
        link = tid(page, TID.HOME_ALERT_SEVERITY, severity=severity)
        expect(link).to_have_attribute("data-count", str(count))
        expect(link).to_have_attribute("href", f"/alerts?status=open&severity={severity}")

    stale = [s["source"] for s in status["sources"] if s["stale"]]
    healthy = tid(page, TID.HOME_SOURCES_HEALTHY)
    expect(healthy).to_have_attribute("data-total", str(len(status["sources"])))
    expect(healthy).to_have_attribute("data-healthy", str(len(status["sources"]) - len(stale)))
    expect(tid(page, TID.HOME_STALE_SOURCE)).to_have_text(stale)
    assert "intune_audit" in stale
    expect(tid(page, TID.HOME_HEALTH_LINK)).to_have_attribute("href", "/health")

    latest = max((p for p in status["probe"] if p["last_triggered_at"]), key=lambda p: p["last_triggered_at"])
    assert latest["scope"] == seeded.scope
    expect(tid(page, TID.HOME_BACKUP_SCOPE)).to_have_text(seeded.scope)
    expect(tid(page, TID.HOME_BACKUP_TIME)).to_have_text(latest["last_triggered_at"][:19].replace("T", " "))
    run = tid(page, TID.HOME_BACKUP_RUN)
    expect(run).to_have_attribute("href", latest["last_run"]["run_url"])
    expect(run).to_have_text(f"Azure DevOps run {seeded.run.run_id}")

    pinned = signed.api("GET", "/api/searches", {"pinned": "true"})
    if pinned.status_code in (404, 405):  # no saved searches on this API (yet): empty, and no error
        expect(tid(page, TID.HOME_PINNED_NONE)).to_be_visible()
        expect(tid(page, TID.ERROR)).to_have_count(0)
    else:
        assert pinned.status_code == 200, pinned.text
        items = pinned.json()["items"]
        links = tid(page, TID.HOME_PINNED_SEARCH)
        expect(links).to_have_count(len(items))
        for item in items:
            link = tid(page, TID.HOME_PINNED_SEARCH, search_id=item["id"])
            expect(link).to_have_attribute("href", "/?" + item["query"].lstrip("?"))
    assert run_axe(page) == []
    screenshot(page, "home")

    tid(page, TID.HOME_ALERT_SEVERITY, severity="high").click()
    page.wait_for_url(lambda url: urllib.parse.urlsplit(url).path == "/alerts", timeout=UI_TIMEOUT_MS)
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(page.url).query)
    assert query == {"status": ["open"], "severity": ["high"]}
