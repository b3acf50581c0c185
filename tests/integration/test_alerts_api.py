"""ApiService's alert, event search and audit routes against cosmosdb-server: out-of-range times are a
400 naming the field, `since` compares as UTC whatever the offset, and a retried PATCH with one
Idempotency-Key comments once."""

from __future__ import annotations

import datetime as dt
import json
import urllib.parse
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from shared.alerts.store import AlertStore
from shared.api.alerts_api import AlertSearch
from shared.api.audit import AuditLog
from shared.api.auth import Authenticator
from shared.api.events_api import EventActions
from shared.api.events_query import EventSearch, SensitivityPolicy
from shared.api.paging import ContinuationSigner
from shared.api.responses import ApiGuard, ApiResponse
from shared.api.service import ApiService
from shared.ingestion.archive import RawArchive
from shared.ingestion.event_store import EventStore
from shared.platform.clients import get_clients
from shared.platform.clock import utc_iso
from shared.platform.resources import CosmosContainers
from tests.support.clock import ManualClock
from tests.support.principals import swa_principal

NOW = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)
ANALYST = {"x-ms-client-principal": swa_principal(["analyst"], user="ana@contoso.com")}
ADMIN = {"x-ms-client-principal": swa_principal(["admin"], user="root@contoso.com")}
BASE = "https://aoc.example/api"
# Both overflow Python's datetime: the first in `end - 30 days`, the second converting to UTC.
OVERFLOWING_TIMES = ("0001-01-02T00:00:00Z", "0001-01-01T00:00:00+14:00")


class World:
    def __init__(self) -> None:
        clients = get_clients()
        self.tenant = f"alerts-api-{uuid.uuid4().hex[:10]}"
        self.clock = ManualClock(NOW)
        signer = ContinuationSigner(b"alerts-api-test-secret-0123456789")
        guard = ApiGuard(
            Authenticator(verifier=None, swa_enabled=True, key_roles=frozenset()), SensitivityPolicy()
        )
        events = clients.cosmos_container(CosmosContainers.EVENTS.name)
        alerts = clients.cosmos_container(CosmosContainers.ALERTS.name)
        self.audit_container = clients.cosmos_container(CosmosContainers.AUDIT.name)
        self.store = AlertStore(alerts)
        audit = AuditLog(self.audit_container, self.tenant, self.clock)
        search = EventSearch(events, signer, self.tenant)
        self.event_store = EventStore(events, clients.cosmos_container(CosmosContainers.FACETS.name), 2)
        self.service = ApiService(
            guard,
            search,
            events,
            self.tenant,
            self.clock,
            AlertSearch(alerts, signer, self.tenant),
            self.store,
            audit,
            signer,
        )
        self.actions = EventActions(
            guard,
            events,
            search,
            self.event_store,
            RawArchive(clients.blob_service),
            audit,
            self.tenant,
            self.clock,
            export_max=100,
            bulk_max=100,
        )

    def alert(self, last_seen: dt.datetime) -> str:
        alert_id = f"alert-{uuid.uuid4().hex[:12]}"
        seen = utc_iso(last_seen)
        self.store.create(
            {
                "id": alert_id,
                "pk": self.tenant,
                "type": "alert",
                "tenant_id": self.tenant,
                "rule_id": "test.rule",
                "title": "Test alert",
                "description": "d",
                "severity": "high",
                "status": "open",
                "occurrences": 1,
                "first_seen": seen,
                "last_seen": seen,
                "sample": {"service": "Directory", "operation": "Op"},
                "history": [],
            }
        )
        return alert_id

    def audits(self, alert_id: str) -> list[dict[str, Any]]:
        return list(
            self.audit_container.query_items(
                "SELECT * FROM c WHERE c.pk = @pk AND c.target_id = @t",
                parameters=[{"name": "@pk", "value": self.tenant}, {"name": "@t", "value": alert_id}],
                partition_key=self.tenant,
            )
        )


@pytest.fixture(scope="module")
def world(app_environment: dict[str, str]) -> Iterator[World]:
    world = World()
    yield world
    world.event_store.close()


def _json(response: ApiResponse) -> Any:
    return json.loads(response.body)


def _url(route: str, **params: str) -> str:
    return f"{BASE}/{route}?{urllib.parse.urlencode(params)}"


@pytest.mark.parametrize("value", OVERFLOWING_TIMES)
@pytest.mark.parametrize(
    ("route", "field"),
    [
        ("events", "start"),
        ("events", "end"),
        ("events/export", "start"),
        ("events/export", "end"),
        ("alerts", "since"),
        ("audit", "since"),
    ],
)
def test_times_outside_the_datetime_range_are_a_400_naming_the_field(
    world: World, route: str, field: str, value: str
) -> None:
    url = _url(route, **{field: value})
    path = f"/api/{route}"
    response = {
        "events": lambda: world.service.list_events(url, ANALYST, path),
        "events/export": lambda: world.actions.export(url, ANALYST, path),
        "alerts": lambda: world.service.list_alerts(url, ANALYST, path),
        "audit": lambda: world.service.list_audit(url, ADMIN, path),
    }[route]()
    assert response.status == 400, response.body
    problem = _json(response)
    assert response.media_type == "application/problem+json"
    assert problem["status"] == 400
    assert problem["errors"][0]["field"] == field


def test_since_with_an_offset_is_compared_in_utc(world: World) -> None:
    inside = world.alert(NOW - dt.timedelta(hours=1))  # 11:00Z, after 12:00+02:00 = 10:00Z
    outside = world.alert(NOW - dt.timedelta(hours=3))  # 09:00Z
    response = world.service.list_alerts(_url("alerts", since="2026-11-20T12:00:00+02:00"), ANALYST, "/p")
    assert response.status == 200, response.body
    ids = {a["id"] for a in _json(response)["items"]}
    assert inside in ids
    assert outside not in ids


def _patch(world: World, alert_id: str, body: dict[str, Any], key: str | None) -> ApiResponse:
    headers = {**ANALYST, "Content-Type": "application/json"}
    headers |= {"Idempotency-Key": key} if key is not None else {}
    return world.service.patch_alert(alert_id, json.dumps(body).encode(), headers, f"/api/alerts/{alert_id}")


def test_a_retried_alert_comment_with_one_idempotency_key_is_added_once(world: World) -> None:
    alert_id = world.alert(NOW)
    body = {"status": "acknowledged", "comment": "looking into it"}
    first = _patch(world, alert_id, body, "retry-1")
    world.clock.advance(5)
    replay = _patch(world, alert_id, body, "retry-1")
    assert (first.status, replay.status) == (200, 200)
    assert _json(replay) == _json(first)
    stored = world.store.get(world.tenant, alert_id)
    assert stored is not None
    assert [c["text"] for c in stored["comments"]] == ["looking into it"]
    assert [h["action"] for h in stored["history"]] == ["status", "comment"]
    assert len(world.audits(alert_id)) == 1


def test_alert_comments_with_different_keys_or_no_key_are_each_added(world: World) -> None:
    alert_id = world.alert(NOW)
    for key in ("key-a", "key-b", None, None):
        assert _patch(world, alert_id, {"comment": "same words"}, key).status == 200
    stored = world.store.get(world.tenant, alert_id)
    assert stored is not None
    assert [c["text"] for c in stored["comments"]] == ["same words"] * 4
    assert len({c["id"] for c in stored["comments"]}) == 4
    assert [h["action"] for h in stored["history"]] == ["comment"] * 4


def test_a_replayed_key_does_not_redo_a_status_change_made_since(world: World) -> None:
    alert_id = world.alert(NOW)
    assert _patch(world, alert_id, {"status": "resolved", "comment": "fixed"}, "once").status == 200
    assert _patch(world, alert_id, {"status": "open"}, "reopen").status == 200
    replay = _patch(world, alert_id, {"status": "resolved", "comment": "fixed"}, "once")
    assert replay.status == 200
    assert _json(replay)["status"] == "open"
    stored = world.store.get(world.tenant, alert_id)
    assert stored is not None
    assert [h["action"] for h in stored["history"]] == ["status", "comment", "status"]


@pytest.mark.parametrize("key", ["", "   ", "k" * 101])
def test_a_bad_idempotency_key_is_a_400(world: World, key: str) -> None:
    alert_id = world.alert(NOW)
    response = _patch(world, alert_id, {"comment": "x"}, key)
    assert response.status == 400
    assert _json(response)["errors"][0]["field"] == "Idempotency-Key"
    stored = world.store.get(world.tenant, alert_id)
    assert stored is not None
    assert "comments" not in stored
