"""Tenant simulator paging and faults, exercised in-process through SimulatorApp.handle (no sockets)."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import time
from typing import Any

import pytest

from devtools.simulator import SimulatorConfig
from devtools.simulator.app import SimulatorApp
from devtools.simulator.faults import FaultPlan, page_bounds
from devtools.simulator.generator import Tenant

EPOCH = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)


def make_app(offset_seconds: float, **overrides: Any) -> SimulatorApp:
    """An app whose sim clock reads epoch + offset_seconds now, running at `speed` (default 1)."""
    values: dict[str, Any] = {"epoch": EPOCH, "seed": 3, "events_per_day": 3000}
    values.update(overrides)
    speed = float(values.get("speed", 1.0))
    values["started_at_unix"] = time.time() - offset_seconds / speed
    config = SimulatorConfig(**values)
    return SimulatorApp(config, Tenant(config))


def get(app: SimulatorApp, target: str, token: str) -> tuple[int, Any, dict[str, str]]:
    response = app.handle("GET", target, {"Authorization": f"Bearer {token}"}, b"")
    headers = dict(response.headers)
    body = json.loads(response.body) if response.body else {}
    return response.status, body, headers


def local(link: str, app: SimulatorApp) -> str:
    assert link.startswith(app.base_url)
    return link[len(app.base_url) :]


# ---------------------------------------------------------------------------------------------------


def test_page_bounds_cover_everything_once_without_duplicates() -> None:
    seen: list[int] = []
    offset = 0
    while offset < 10:
        start, end = page_bounds(10, offset, 3, duplicate=False)
        seen.extend(range(start, end))
        offset = end
    assert seen == list(range(10))


def test_page_bounds_with_duplicates_repeat_one_item_and_still_cover_everything() -> None:
    pages: list[list[int]] = []
    offset = 0
    while offset < 10:
        start, end = page_bounds(10, offset, 3, duplicate=True)
        pages.append(list(range(start, end)))
        offset = end
    assert all(len(p) <= 3 for p in pages)
    for previous, page in itertools.pairwise(pages):
        assert page[0] == previous[-1]
    assert sorted({i for p in pages for i in p}) == list(range(10))
    assert page_bounds(10, 4, 1, duplicate=True) == (4, 5)  # $top=1 can never repeat (no progress)


def test_fault_plan_is_deterministic_and_honours_rates() -> None:
    config = SimulatorConfig(
        seed=5,
        throttle_rate=0.2,
        throttle_without_retry_after=0.5,
        server_error_rate=0.1,
        retry_after_seconds=3,
    )
    plan, again = FaultPlan(config), FaultPlan(config)
    faults = [plan.for_call(n) for n in range(1, 5001)]
    assert faults == [again.for_call(n) for n in range(1, 5001)]
    throttles = [f for f in faults if f is not None and f.kind == "throttle"]
    errors = [f for f in faults if f is not None and f.kind == "server_error"]
    assert 0.18 < len(throttles) / 5000 < 0.22
    assert 0.08 < len(errors) / 5000 < 0.12
    without = sum(1 for f in throttles if f.retry_after is None)
    assert 0.42 < without / len(throttles) < 0.58
    assert {f.retry_after for f in throttles} == {None, 3}
    assert {f.status for f in errors} == {500, 503, 504}
    assert all(FaultPlan(SimulatorConfig()).for_call(n) is None for n in range(1, 500))


def test_duplicate_boundaries_follow_the_rate() -> None:
    plan = FaultPlan(SimulatorConfig(duplicate_across_pages_rate=0.25))
    hits = sum(plan.duplicate_boundary("listing", offset) for offset in range(1, 4001))
    assert 0.22 < hits / 4000 < 0.28
    assert not plan.duplicate_boundary("listing", 0)


# ---------------------------------------------------------------------------------------------------


def test_graph_pages_are_a_stable_snapshot_while_records_keep_arriving() -> None:
    # The sim clock runs 2,000x: new records become visible between calls, but a listing's pages
    # are computed against the instant of its first page.
    app = make_app(offset_seconds=6 * 3600, speed=2000.0)
    token = app.issue_token()
    status, first, _ = get(app, "/graph/v1.0/auditLogs/directoryAudits?$top=25", token)
    assert status == 200
    next_link = local(first["@odata.nextLink"], app)
    assert "$skiptoken=" in next_link
    assert "$top=25" in next_link
    time.sleep(0.3)  # ten simulated minutes pass
    _, second, _ = get(app, next_link, token)
    _, again, _ = get(app, next_link, token)
    assert second == again
    ids: list[str] = []
    page: dict[str, Any] | None = first
    while page is not None:
        ids.extend(v["id"] for v in page["value"])
        link = page.get("@odata.nextLink")
        page = get(app, local(link, app), token)[1] if link else None
    assert len(ids) == len(set(ids))
    times = [r.event_us for r in app.tenant.records if r.source == "entra_audit"]
    assert len(ids) < len(times)  # the day is not over
    status, fresh, _ = get(app, "/graph/v1.0/auditLogs/directoryAudits?$top=1000", token)
    assert len(fresh["value"]) > len(ids)  # a new listing sees the records that arrived meanwhile


def test_graph_lists_newest_first_and_filters_by_event_time() -> None:
    app = make_app(offset_seconds=3 * 86400)
    token = app.issue_token()
    target = (
        "/graph/v1.0/auditLogs/signIns?$filter=createdDateTime%20ge%202026-03-01T10:00:00Z%20and%20"
        "createdDateTime%20lt%202026-03-01T11:00:00Z"
    )
    status, body, headers = get(app, target, token)
    assert status == 200
    assert headers["Content-Type"].startswith("application/json")
    assert body["@odata.context"].endswith("/graph/v1.0/$metadata#auditLogs/signIns")
    stamps = [v["createdDateTime"] for v in body["value"] if "createdDateTime" in v]
    assert stamps == sorted(stamps, reverse=True)
    assert stamps
    assert all("2026-03-01T10:" in s for s in stamps)
    assert "@odata.nextLink" not in body


def test_a_tampered_skiptoken_is_a_bad_request() -> None:
    app = make_app(offset_seconds=3 * 86400)
    token = app.issue_token()
    _, first, _ = get(app, "/graph/v1.0/deviceManagement/auditEvents?$top=10", token)
    link = local(first["@odata.nextLink"], app)
    status, body, _ = get(app, link[:-3] + "abc", token)
    assert status == 400
    assert body["error"]["code"] == "BadRequest"
    other = link.replace("deviceManagement/auditEvents", "auditLogs/directoryAudits")
    assert get(app, other, token)[0] == 400  # a token only pages the listing it came from


def test_management_next_page_is_a_stable_snapshot() -> None:
    app = make_app(offset_seconds=2 * 86400, events_per_day=20_000)
    token = app.issue_token("https://manage.office.com")
    tenant = app.config.tenant_id
    base = f"/manage/api/v1.0/{tenant}/activity/feed"
    headers = {"Authorization": f"Bearer {token}"}
    assert (
        app.handle("POST", f"{base}/subscriptions/start?contentType=Audit.SharePoint", headers, b"").status
        == 200
    )
    window = "startTime=2026-03-01T00:00:00&endTime=2026-03-02T00:00:00"
    status, first, first_headers = get(
        app, f"{base}/subscriptions/content?contentType=Audit.SharePoint&{window}", token
    )
    assert status == 200
    assert len(first) == 50
    next_uri = local(first_headers["NextPageUri"], app)
    assert "PublisherIdentifier" not in next_uri
    _, second, _ = get(app, next_uri, token)
    _, again, _ = get(app, next_uri, token)
    assert second == again
    assert second
    created = [b["contentCreated"] for b in first + second]
    assert created == sorted(created)
    status, body, _ = get(app, next_uri.replace("nextPage=", "nextPage=x"), token)
    assert status == 400
    assert body["error"]["code"] == "AF20031"


@pytest.mark.parametrize("audience", ["https://graph.microsoft.com", "https://manage.office.com"])
def test_a_token_for_one_api_is_rejected_by_the_other(audience: str) -> None:
    app = make_app(offset_seconds=86400)
    token = app.issue_token(audience)
    graph = get(app, "/graph/v1.0/auditLogs/directoryAudits", token)[0]
    manage = get(app, f"/manage/api/v1.0/{app.config.tenant_id}/activity/feed/subscriptions/list", token)[0]
    assert (graph, manage) == ((200, 401) if "graph" in audience else (401, 200))
