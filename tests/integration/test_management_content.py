"""One bad Management content blob among good ones, against the tenant simulator and Azurite.

The collector runs with the real ApiClient, the real claim check (raw archive in Blob, a message on a
queue of this test's own) and the real Table stores, under a tenant key of its own. Its clock is a
ManualClock that starts at the simulator's "now" (every blob already published) and only moves forward,
so retries, give-up and the daily re-list happen in simulated hours without waiting.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from devtools.simulator import SimulatorConfig, TenantSimulator
from shared.api.health import HealthReport, source_health
from shared.api.status_api import source_status
from shared.ingestion.archive import RawArchive
from shared.ingestion.messages import IngestMessage
from shared.ingestion.sources.handoff import PageHandOff
from shared.ingestion.sources.management import (
    MAX_CONTENT_ATTEMPTS,
    ManagementCollector,
    retry_delay,
    watermark_key,
)
from shared.ingestion.watermarks import FailedContent, HandedOffContent, WatermarkStore
from shared.m365.auth import StaticTokenProvider
from shared.m365.http_client import ApiClient, new_http_client
from shared.platform.clients import get_clients
from shared.platform.clock import utc_iso
from shared.platform.resources import Tables
from tests.support.clock import ManualClock

CONTENT_TYPE = "Audit.SharePoint"
KEY = watermark_key(CONTENT_TYPE)
FOREVER = 10**12


@pytest.fixture(scope="module")
def sim() -> Iterator[TenantSimulator]:
    now = time.time()
    config = SimulatorConfig(
        seed=23,
        events_per_day=2000,
        epoch=dt.datetime.fromtimestamp(now, dt.UTC) - dt.timedelta(days=5),
        started_at_unix=now - 5 * 86400,  # every blob is published
    )
    simulator = TenantSimulator(config).start()
    yield simulator
    simulator.stop()


@dataclass
class Run:
    """The collector and everything it writes to, under names of this test's own."""

    sim: TenantSimulator
    clock: ManualClock
    collector: ManagementCollector
    watermarks: WatermarkStore
    failed: FailedContent
    queue_name: str
    archive: RawArchive

    def poll(self) -> Any:
        return self.collector.collect(CONTENT_TYPE, uuid.uuid4().hex[:16], self.clock.now(), deadline=FOREVER)

    def stored(self) -> Counter[str]:
        """Record ids handed off since the last call: each claim check's archived page, read back."""
        queue = get_clients().queue_service.get_queue_client(self.queue_name)
        ids: Counter[str] = Counter()
        while batch := list(queue.receive_messages(max_messages=32, visibility_timeout=300)):
            for message in batch:
                claim = IngestMessage.model_validate_json(message.content)
                assert (claim.source, claim.content_type) == ("o365_management", CONTENT_TYPE)
                lines = [text for _, text in self.archive.read_lines(claim.blob)]
                assert len(lines) == claim.count
                ids.update(f"o365:{json.loads(text)['Id']}" for text in lines)
                queue.delete_message(message)
        return ids

    def fetches(self, content_id: str | None = None) -> list[dict[str, Any]]:
        return [
            entry
            for entry in self.sim.requests()
            if "/activity/feed/audit/" in entry["path"]
            and (content_id is None or entry["path"].endswith(f"/audit/{content_id}"))
        ]


@pytest.fixture
def run(sim: TenantSimulator, app_environment: dict[str, str]) -> Iterator[Run]:
    clients = get_clients()
    store_tenant = f"mgmt-{uuid.uuid4().hex[:10]}"
    queue_name = f"mgmt-ingest-{uuid.uuid4().hex[:8]}"
    clients.queue_service.create_queue(queue_name)
    clock = ManualClock(sim.now().replace(microsecond=0) + dt.timedelta(seconds=1))
    token = sim.issue_token("https://manage.office.com")
    api = ApiClient(
        StaticTokenProvider(token), http=new_http_client(), timeout=(5.0, 30.0), sleep=lambda _: None
    )
    archive = RawArchive(clients.blob_service)
    watermarks = WatermarkStore(clients.table(Tables.WATERMARKS), store_tenant)
    failed = FailedContent(clients.table(Tables.FAILED_CONTENT), store_tenant)
    collector = ManagementCollector(
        api,
        f"{sim.base_url}/manage",
        sim.config.tenant_id,
        "https://manage.office.com/.default",
        PageHandOff(archive, clients.queue_service.get_queue_client(queue_name), sim.config.tenant_id),
        watermarks,
        HandedOffContent(clients.table(Tables.HANDED_OFF_CONTENT), store_tenant),
        clock,
        failed=failed,
        overlap_seconds=86400,  # the default MANAGEMENT_OVERLAP_SECONDS
        initial_lookback_seconds=6 * 86400,
    )
    yield Run(sim, clock, collector, watermarks, failed, queue_name, archive)
    clients.queue_service.delete_queue(queue_name)
    api.close()


def test_the_simulator_serves_one_bad_or_late_blob_among_good_ones(sim: TenantSimulator) -> None:
    blobs = [b for b in sim.management_blobs() if b["content_type"] == "Audit.General"]
    bad, not_json, late, good = (b["content_id"] for b in blobs[1:5])
    session = httpx.Client(
        headers={"Authorization": f"Bearer {sim.issue_token('https://manage.office.com')}"}
    )
    feed = f"{sim.base_url}/manage/api/v1.0/{sim.config.tenant_id}/activity/feed"
    control = f"{sim.base_url}/_sim/management"

    def post(route: str, body: dict[str, Any]) -> int:
        return httpx.post(f"{control}/{route}", json=body, timeout=10).status_code

    def fetch(content_id: str) -> httpx.Response:
        return session.get(f"{feed}/audit/{content_id}", timeout=10)

    assert post("content-faults", {"content_id": bad, "kind": "not_found"}) == 200
    sim.fail_content(not_json, "not_json", times=1)
    assert post("listing-holds", {"content_id": late, "held": True}) == 200
    try:
        answer = fetch(bad)
        assert answer.status_code == 404
        assert answer.json()["error"]["code"] == "AF20050"
        answer = fetch(not_json)
        assert answer.status_code == 200
        assert answer.headers["Content-Type"].startswith("text/html")
        assert answer.text.startswith("<html>")
        assert fetch(not_json).json(), "times=1: served normally afterwards"
        assert sorted(f"o365:{r['Id']}" for r in fetch(good).json()) == sorted(blobs[4]["ids"])

        created = _created(blobs[3])
        window = {
            "contentType": "Audit.General",
            "startTime": (created - dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S"),
            "endTime": (created + dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S"),
        }
        session.post(f"{feed}/subscriptions/start", params={"contentType": "Audit.General"}, timeout=10)

        def listed() -> set[str]:
            listing = session.get(f"{feed}/subscriptions/content", params=window, timeout=10).json()
            return {b["contentId"] for b in listing}

        assert late not in listed()
        assert fetch(late).status_code == 200, "a held blob can be fetched, only its listing is late"
        sim.hold_listing(late, False)
        assert late in listed()

        summary = httpx.get(f"{control}/content-faults", timeout=10).json()
        assert summary["faults"][bad] == {"kind": "not_found", "remaining": None, "served": 1}
        assert summary["faults"][not_json] == {"kind": "not_json", "remaining": 0, "served": 1}
        assert summary["held"] == []
        assert post("content-faults", {"content_id": "nope", "kind": "not_found"}) == 400
        assert post("content-faults", {"content_id": bad, "kind": "boom"}) == 400
        assert post("content-faults", {"content_id": bad, "kind": "not_found", "times": 0}) == 400
        assert post("content-faults", {"kind": "not_found"}) == 400
        assert post("listing-holds", {"content_id": bad}) == 400
    finally:
        sim.fail_content(bad, None)
        sim.fail_content(not_json, None)
        sim.hold_listing(late, False)
    assert fetch(bad).status_code == 200, "cleared"


def test_one_bad_blob_is_retried_then_given_up_while_every_good_record_is_stored_once(run: Run) -> None:
    sim = run.sim
    blobs = [b for b in sim.management_blobs() if b["content_type"] == CONTENT_TYPE]
    by_id = {b["content_id"]: b for b in blobs}
    now = run.clock.now()
    # Blobs created well before any regular window ([watermark - 24 h, now)) reaches once polling runs.
    old = [b["content_id"] for b in blobs if _created(b) < now - dt.timedelta(days=2)]
    assert len(old) >= 8
    late, bad, recovering = old[2], old[len(old) // 2], old[len(old) // 2 + 1]
    sim.fail_content(bad, "not_found")  # 404 AF20050 on every fetch
    sim.fail_content(recovering, "not_json", times=2)
    sim.hold_listing(late, True)
    try:
        first = run.poll()
        stored = run.stored()
        good = {i for b in blobs if b["content_id"] not in (bad, recovering, late) for i in b["ids"]}
        assert stored == Counter(good), "every good record of the window, exactly once"
        assert first.failed_blobs == 2
        state = run.watermarks.get(KEY)
        assert state.watermark == utc_iso(now), "the watermark moves past the bad blobs"
        assert state.failing_blobs == 2
        rows = run.failed.all(CONTENT_TYPE)
        assert set(rows) == {bad, recovering}
        assert rows[bad].content_expiration == by_id[bad]["content_expiration"]
        assert "HTTP 404 AF20050" in rows[bad].last_error
        assert "not JSON" in rows[recovering].last_error
        assert state.last_blob_error == f"content {recovering}: {rows[recovering].last_error} (attempt 1)"

        # What GET /api/status and GET /api/health report from this state; health stays ok.
        status = source_status(state, stale=False)
        assert (status.failing_blobs, status.given_up_blobs) == (2, 0)
        report = HealthReport(status="ok", checked_at=utc_iso(now), dependencies=[])
        report.sources = source_health([state], run.clock.now(), 300)
        assert report.warnings == [
            f"{KEY}: 2 content blob(s) failing, retried on later polls; last error: {state.last_blob_error}"
        ]

        run.clock.advance(60)  # not due yet: nothing is fetched again
        fetched = len(run.fetches())
        run.poll()
        assert len(run.fetches()) == fetched

        # A poll at each retry time: the recovering blob comes through on its third try; the bad one
        # is tried MAX_CONTENT_ATTEMPTS times in all, then given up and counted.
        at = now
        for attempt in range(1, MAX_CONTENT_ATTEMPTS + 1):
            at += retry_delay(attempt)
            run.clock.current = at
            run.poll()
        assert len(run.fetches(bad)) == MAX_CONTENT_ATTEMPTS
        assert len(run.fetches(recovering)) == 3
        stored += run.stored()
        assert stored == Counter(good | set(by_id[recovering]["ids"]))
        state = run.watermarks.get(KEY)
        assert (state.failing_blobs, state.given_up_blobs) == (0, 1)
        assert (
            state.last_blob_error
            == f"content {bad}: {run.failed.all(CONTENT_TYPE)[bad].last_error} (attempt 8); given up"
        )
        assert set(run.failed.all(CONTENT_TYPE)) == {bad}
        report.sources = source_health([state], run.clock.now(), 300)
        assert len(report.warnings) == 1
        assert "given up, their records not stored (1 in all" in report.warnings[0]

        # Microsoft lists the late blob now. Regular polls do not reach back that far; the daily
        # re-list of all 7 days does, and fetches nothing that was handed off before.
        sim.hold_listing(late, False)
        run.clock.advance(300)
        run.poll()
        assert run.fetches(late) == []
        run.clock.current = now + dt.timedelta(hours=24)
        fetched, logged = len(run.fetches()), len(sim.requests())
        relist = run.poll()
        assert [e["path"].rsplit("/", 1)[-1] for e in run.fetches()[fetched:]] == [late]
        listings = [
            e for e in sim.requests()[logged:]
            if e["path"].endswith("/subscriptions/content") and "nextPage" not in e["query"]
        ]  # fmt: skip
        assert len(listings) == 7, "the re-list is 7 windows of 24 hours (plus NextPageUri pages)"
        assert relist.window_start == utc_iso(run.clock.now() - dt.timedelta(days=7, minutes=-30))
        assert run.watermarks.get(KEY).last_full_relist == utc_iso(run.clock.now())
        stored += run.stored()
        everything_but_bad = {i for b in blobs if b["content_id"] != bad for i in b["ids"]}
        assert stored == Counter(everything_but_bad), "late, recovered and good records: each exactly once"
        assert all(len(run.fetches(c)) == 1 for c in by_id if c not in (bad, recovering))
    finally:
        sim.fail_content(bad, None)
        sim.fail_content(recovering, None)
        sim.hold_listing(late, False)


def _created(blob: dict[str, Any]) -> dt.datetime:
    return dt.datetime.fromisoformat(blob["content_created"].replace("Z", "+00:00"))
