"""The triage routes against cosmosdb-server: the list's `actor` and `until` filters, POST
/api/alerts/bulk, and suppress similar (POST /api/alerts/{id}/suppress, GET /api/suppressions, DELETE
/api/suppressions/{id}): roles, privacy, ETags (If-Match, 412), idempotency and the audit log. The last
test suppresses an alert the alert service opened, through the route, and a new match opens nothing."""

from __future__ import annotations

import datetime as dt
import json
import urllib.parse
import uuid
from collections.abc import Mapping
from typing import Any

import pytest

from shared.alerts.store import AlertStore
from shared.alerts.suppressions import suppression_id
from shared.api.alerts_api import AlertsApi, AlertSearch
from shared.api.audit import AuditLog
from shared.api.auth import Authenticator
from shared.api.events_query import SensitivityPolicy
from shared.api.paging import ContinuationSigner
from shared.api.responses import ApiGuard, ApiResponse
from shared.platform.clients import get_clients
from shared.platform.clock import utc_iso
from shared.platform.resources import CosmosContainers
from tests.integration.test_alert_service import Harness, _ga
from tests.support.clock import ManualClock
from tests.support.principals import swa_principal

NOW = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)
BASE = "https://aoc.example/api"
JSON = {"Content-Type": "application/json"}
READER = {"x-ms-client-principal": swa_principal(["reader"], user="rita@contoso.com")}
ANALYST = {"x-ms-client-principal": swa_principal(["analyst"], user="ana@contoso.com")}
ADMIN = {"x-ms-client-principal": swa_principal(["admin"], user="root@contoso.com")}
PRIVACY_ADMIN = {"x-ms-client-principal": swa_principal(["admin", "privacy"], user="dpo@contoso.com")}
HIDDEN_SERVICE = "Exchange"


class Contended:
    """The alerts container with another writer that changes each alert of `ids` between every read and
    replace of it, as a busy triage queue might: each conditional replace of those finds a new ETag."""

    def __init__(self, container: Any) -> None:
        self._container = container
        self.ids: set[str] = set()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._container, name)

    def replace_item(self, item: str, body: dict[str, Any], **options: Any) -> Any:
        if item in self.ids:
            current = self._container.read_item(item, partition_key=body["pk"])
            self._container.replace_item(item, {**current, "touched": int(current.get("touched", 0)) + 1})
        return self._container.replace_item(item, body, **options)


class World:
    def __init__(self, tenant: str | None = None, clock: ManualClock | None = None) -> None:
        clients = get_clients()
        self.tenant = tenant or f"triage-{uuid.uuid4().hex[:10]}"
        self.clock = clock or ManualClock(NOW)
        self.contended = Contended(clients.cosmos_container(CosmosContainers.ALERTS.name))
        alerts: Any = self.contended
        self.audit_container = clients.cosmos_container(CosmosContainers.AUDIT.name)
        self.store = AlertStore(alerts)
        guard = ApiGuard(
            Authenticator(verifier=None, swa_enabled=True, key_roles=frozenset()),
            SensitivityPolicy(services=[HIDDEN_SERVICE]),
        )
        signer = ContinuationSigner(b"triage-api-test-secret-0123456789")
        self.api = AlertsApi(
            guard,
            AlertSearch(alerts, signer, self.tenant),
            self.store,
            AuditLog(self.audit_container, self.tenant, self.clock),
            self.tenant,
            self.clock,
        )

    def alert(
        self,
        *,
        status: str = "open",
        last_seen: dt.datetime = NOW,
        actor: str | None = "eve@contoso.com",
        group_actor: bool = True,
        service: str = "Directory",
        rule_id: str = "entra.global-admin-added",
        severity: str = "critical",
    ) -> dict[str, Any]:
        """An alert as the service stores it; `group_actor=False`: one stored before alerts had
        `actor`, whose group is not by actor (the filter then reads the sample's actor)."""
        seen = utc_iso(last_seen)
        group = {"actor.upn|actor.id": actor or ""} if group_actor else {"targets[].id": "lab"}
        document: dict[str, Any] = {
            "id": f"alert-{uuid.uuid4().hex}",
            "pk": self.tenant,
            "type": "alert",
            "tenant_id": self.tenant,
            "rule_id": rule_id,
            "title": "Global administrator added",
            "description": "d",
            "severity": severity,
            "group_key": "|".join(f"{k}={v.casefold()}" for k, v in group.items()),
            "group": group,
            "status": status,
            "occurrences": 1,
            "first_seen": seen,
            "last_seen": seen,
            "sample": {"service": service, "operation": "Add member to role", "actor": actor},
            "history": [],
        }
        if group_actor:
            document["actor"] = actor
        assert self.store.create(document)
        return document

    def audits(self, target_id: str) -> list[dict[str, Any]]:
        return list(
            self.audit_container.query_items(
                "SELECT * FROM c WHERE c.pk = @pk AND c.target_id = @t",
                parameters=[{"name": "@pk", "value": self.tenant}, {"name": "@t", "value": target_id}],
                partition_key=self.tenant,
            )
        )

    # -- calls, as the Functions host would make them -------------------------------------------------

    def search(self, headers: Mapping[str, str] = READER, /, **params: str) -> ApiResponse:
        return self.api.list_alerts(f"{BASE}/alerts?{urllib.parse.urlencode(params)}", headers, "/api/alerts")

    def ids(self, **params: str) -> list[str]:
        response = self.search(**params)
        assert response.status == 200, response.body
        return [a["id"] for a in _json(response)["items"]]

    def bulk(self, body: dict[str, Any], headers: Mapping[str, str] = ANALYST) -> ApiResponse:
        return self.api.bulk_update_alerts(json.dumps(body).encode(), {**headers, **JSON}, "/api/alerts/bulk")

    def suppress(
        self, alert_id: str, body: dict[str, Any], headers: Mapping[str, str] = ADMIN
    ) -> ApiResponse:
        path = f"/api/alerts/{alert_id}/suppress"
        return self.api.suppress_alert(alert_id, json.dumps(body).encode(), {**headers, **JSON}, path)

    def suppressed(self, alert: dict[str, Any], hours: float, headers: Mapping[str, str] = ADMIN) -> str:
        """Suppress `alert`'s rule and group from now for `hours`; the suppression's id."""
        expires = utc_iso(self.clock.now() + dt.timedelta(hours=hours))
        response = self.suppress(alert["id"], {"reason": "test", "expires_at": expires}, headers)
        assert response.status == 201, response.body
        identifier: str = _json(response)["id"]
        return identifier

    def suppressions(self, headers: Mapping[str, str] = READER, /, **params: str) -> ApiResponse:
        url = f"{BASE}/suppressions?{urllib.parse.urlencode(params)}"
        return self.api.list_suppressions(url, headers, "/api/suppressions")

    def remove(self, identifier: str, headers: Mapping[str, str] = ADMIN) -> ApiResponse:
        return self.api.delete_suppression(identifier, headers, f"/api/suppressions/{identifier}")

    def detail(self, alert_id: str, headers: Mapping[str, str] = READER) -> dict[str, Any]:
        response = self.api.get_alert(alert_id, headers, f"/api/alerts/{alert_id}")
        assert response.status == 200, response.body
        document: dict[str, Any] = _json(response)
        return document


@pytest.fixture
def world(app_environment: dict[str, str]) -> World:
    return World()


def _json(response: ApiResponse) -> Any:
    return json.loads(response.body)


def _ids(response: ApiResponse) -> list[str]:
    assert response.status == 200, response.body
    return [item["id"] for item in _json(response)["items"]]


def _field(response: ApiResponse) -> str:
    assert response.status == 400, response.body
    field: str = _json(response)["errors"][0]["field"]
    return field


def _in(hours: float) -> str:
    return utc_iso(NOW + dt.timedelta(hours=hours))


# -- list filters ------------------------------------------------------------------------------------


def test_the_actor_filter_matches_whom_the_alert_is_about_exactly_in_any_case(world: World) -> None:
    eve = world.alert(actor="Eve@contoso.com")
    older = world.alert(actor="eve@contoso.com", group_actor=False, last_seen=NOW - dt.timedelta(minutes=1))
    world.alert(actor="steve@contoso.com")
    world.alert(actor=None)
    assert world.ids(actor="EVE@contoso.com") == [eve["id"], older["id"]]
    assert world.ids(actor="eve") == []  # exact, not "contains"
    assert world.ids(actor="nobody@contoso.com") == []
    assert _field(world.search(actor="")) == "actor"
    assert _field(world.search(actor="x" * 201)) == "actor"


def test_until_bounds_last_seen_with_since_and_paging_keeps_the_order(world: World) -> None:
    made = [world.alert(last_seen=NOW - dt.timedelta(hours=h)) for h in range(6)]  # newest first
    assert world.ids(until=utc_iso(NOW - dt.timedelta(hours=2))) == [a["id"] for a in made[2:]]
    window = {"since": utc_iso(NOW - dt.timedelta(hours=4)), "until": utc_iso(NOW - dt.timedelta(hours=1))}
    assert world.ids(**window) == [a["id"] for a in made[1:5]]
    first = _json(world.search(**window, page_size="3"))
    assert [a["id"] for a in first["items"]] == [a["id"] for a in made[1:4]]
    rest = world.ids(**window, page_size="3", continuation=first["continuation"])
    assert rest == [made[4]["id"]]
    assert world.ids(until="2026-11-20T13:00:00+02:00") == [a["id"] for a in made[1:]]  # 11:00Z
    assert _field(world.search(since=utc_iso(NOW), until=utc_iso(NOW - dt.timedelta(hours=1)))) == "until"
    assert _field(world.search(until="yesterday")) == "until"


def test_suppressions_never_show_as_alerts(world: World) -> None:
    alert = world.alert()
    world.suppressed(alert, hours=2)
    assert world.ids() == [alert["id"]]
    summary = _json(world.api.alerts_summary(READER, "/api/alerts/summary"))
    assert summary["total_open"] == 1
    assert summary["by_status"] == {"open": 1, "acknowledged": 0, "resolved": 0, "closed": 0}


def test_the_summary_counts_open_alerts_by_severity_and_every_alert_by_status(world: World) -> None:
    made = [
        ("open", "critical", "Directory"),
        ("open", "high", "Directory"),
        ("open", "high", "Directory"),
        ("open", "low", HIDDEN_SERVICE),
        ("acknowledged", "high", "Directory"),
        ("acknowledged", "medium", HIDDEN_SERVICE),
        ("resolved", "critical", "Directory"),
        ("closed", "low", "Directory"),
        ("closed", "informational", "Directory"),
        ("closed", "critical", HIDDEN_SERVICE),
    ]
    for status, severity, service in made:
        world.alert(status=status, severity=severity, service=service)
    world.suppressed(world.alert(status="closed", severity="low"), hours=2)  # a suppression: not counted

    def summary(headers: Mapping[str, str]) -> dict[str, Any]:
        response = world.api.alerts_summary(headers, "/api/alerts/summary")
        assert response.status == 200, response.body
        return dict(_json(response))

    def expected(visible: list[tuple[str, str, str]]) -> dict[str, Any]:
        severities = ("critical", "high", "medium", "low", "informational")
        opened = {s: sum(1 for st, sv, _ in visible if (st, sv) == ("open", s)) for s in severities}
        statuses = ("open", "acknowledged", "resolved", "closed")
        return {
            "open": opened,
            "total_open": sum(opened.values()),
            "by_status": {s: sum(1 for st, _, _ in visible if st == s) for s in statuses},
        }

    every = [*made, ("closed", "low", "Directory")]
    without_hidden = [m for m in every if m[2] != HIDDEN_SERVICE]
    assert summary(READER) == expected(without_hidden)  # hidden services' alerts need AOC.Privacy
    assert summary(ADMIN) == expected(without_hidden)
    assert summary(PRIVACY_ADMIN) == expected(every)
    assert summary(PRIVACY_ADMIN)["by_status"] == {"open": 4, "acknowledged": 2, "resolved": 1, "closed": 4}


# -- bulk ----------------------------------------------------------------------------------------------


def test_bulk_changes_each_alert_as_a_patch_would_and_answers_for_each(world: World) -> None:
    opened, closed, hidden = world.alert(), world.alert(status="closed"), world.alert(service=HIDDEN_SERVICE)
    missing = f"alert-{uuid.uuid4().hex}"
    ids = [opened["id"], closed["id"], missing, hidden["id"]]
    body = {"ids": ids, "status": "acknowledged", "classification": "true_positive", "comment": "seen"}
    response = world.bulk(body, {**ANALYST, "Idempotency-Key": "bulk-1"})
    assert response.status == 200, response.body
    results = _json(response)["results"]
    assert [(r["id"], r["status"]) for r in results] == [
        (opened["id"], 200),
        (closed["id"], 422),
        (missing, 404),
        (hidden["id"], 404),  # hidden from an analyst without the privacy role
    ]
    changed = results[0]["alert"]
    assert (changed["status"], changed["classification"]) == ("acknowledged", "true_positive")
    assert [c["text"] for c in changed["comments"]] == ["seen"]
    assert "closed" in results[1]["detail"]
    assert all("alert" not in r for r in results[1:])
    assert world.audits(opened["id"])[0]["after"] == {
        "status": "acknowledged",
        "classification": "true_positive",
        "comment": "seen",
    }
    assert (world.audits(closed["id"]), world.audits(hidden["id"])) == ([], [])
    stored_closed = world.store.get(world.tenant, closed["id"])
    assert stored_closed is not None
    assert stored_closed["status"] == "closed"

    replay = world.bulk(body, {**ANALYST, "Idempotency-Key": "bulk-1"})  # a retry changes nothing more
    assert [r["status"] for r in _json(replay)["results"]] == [200, 422, 404, 404]
    stored = world.store.get(world.tenant, opened["id"])
    assert stored is not None
    assert [c["text"] for c in stored["comments"]] == ["seen"]
    assert len(world.audits(opened["id"])) == 1

    privacy = world.bulk({"ids": [hidden["id"]], "comment": "dpo"}, PRIVACY_ADMIN)
    assert [r["status"] for r in _json(privacy)["results"]] == [200]


def test_an_alert_that_keeps_changing_is_a_409_and_the_others_are_changed(world: World) -> None:
    busy, calm = world.alert(), world.alert()
    world.contended.ids.add(busy["id"])
    response = world.bulk({"ids": [busy["id"], calm["id"]], "status": "resolved"})
    assert [(r["id"], r["status"]) for r in _json(response)["results"]] == [
        (busy["id"], 409),
        (calm["id"], 200),
    ]
    stored = world.store.get(world.tenant, busy["id"])
    assert stored is not None
    assert (stored["status"], stored["touched"] > 0) == ("open", True)
    assert world.audits(busy["id"]) == []
    patched = world.api.patch_alert(
        busy["id"], b'{"status": "resolved"}', {**ANALYST, **JSON}, f"/api/alerts/{busy['id']}"
    )
    assert patched.status == 409
    assert _json(patched)["type"].endswith("/conflict")


def test_a_bulk_body_with_any_bad_id_is_refused_whole(world: World) -> None:
    alert = world.alert()
    for ids, field in [
        ([alert["id"], "../audit"], "ids.1"),
        ([alert["id"], "sup-" + "a" * 40], "ids.1"),
        ([alert["id"], alert["id"]], "ids"),
        ([], "ids"),
        ([f"alert-{i:040x}" for i in range(101)], "ids"),
        ([alert["id"], 7], "ids.1"),
    ]:
        assert _field(world.bulk({"ids": ids, "status": "closed"})) == field
    assert _field(world.bulk({"ids": [alert["id"]]})) == "body"  # no change asked for
    assert _field(world.bulk({"ids": [alert["id"]], "status": "gone"})) == "status"
    assert world.bulk({"ids": [alert["id"]], "status": "closed"}, READER).status == 403
    stored = world.store.get(world.tenant, alert["id"])
    assert stored is not None
    assert stored["status"] == "open"
    assert world.audits(alert["id"]) == []


# -- suppress similar -------------------------------------------------------------------------------


def test_suppress_similar_creates_one_per_rule_and_group_shown_on_the_alert_and_audited(world: World) -> None:
    alert = world.alert()
    sibling = world.alert()  # the same rule and group: it shows the same suppression
    response = world.suppress(alert["id"], {"reason": "  change CHG0042  ", "expires_at": _in(24)})
    assert response.status == 201, response.body
    created = _json(response)
    identifier = suppression_id(world.tenant, alert["rule_id"], alert["group_key"])
    assert created == {
        "id": identifier,
        "rule_id": alert["rule_id"],
        "group_key": alert["group_key"],
        "group": alert["group"],
        "title": alert["title"],
        "reason": "change CHG0042",
        "created_by": "root@contoso.com",
        "created_at": utc_iso(NOW),
        "expires_at": _in(24),
        "source_alert_id": alert["id"],
        "matches": 0,
        "last_match_at": None,
        "active": True,
        "etag": response.headers["ETag"],
    }
    assert world.detail(sibling["id"])["suppression"] == created
    assert world.detail(world.alert(actor="other@contoso.com")["id"])["suppression"] is None
    assert _json(world.suppressions())["items"] == [created]
    [record] = world.audits(identifier)
    assert (record["action"], record["actor"], record["before"]) == (
        "suppression.create",
        "root@contoso.com",
        None,
    )
    assert record["after"]["reason"] == "change CHG0042"

    world.clock.advance(3600)
    again = world.suppress(sibling["id"], {"reason": "longer", "expires_at": _in(48)})
    assert again.status == 201, again.body
    replaced = _json(again)
    assert (replaced["id"], replaced["source_alert_id"], replaced["reason"]) == (
        identifier,
        sibling["id"],
        "longer",
    )
    assert replaced["etag"] != created["etag"]
    assert [s["id"] for s in _json(world.suppressions())["items"]] == [identifier]
    assert len(world.audits(identifier)) == 2


def test_suppress_refuses_bad_expiries_and_reasons_and_needs_an_admin(world: World) -> None:
    alert = world.alert()
    for body, field in [
        ({"reason": "x", "expires_at": utc_iso(NOW)}, "expires_at"),  # not in the future
        ({"reason": "x", "expires_at": _in(-1)}, "expires_at"),
        ({"reason": "x", "expires_at": _in(90 * 24 + 1)}, "expires_at"),
        ({"reason": "x", "expires_at": "next week"}, "expires_at"),
        ({"reason": "x", "expires_at": "0001-01-01T00:00:00Z"}, "expires_at"),
        ({"reason": "   ", "expires_at": _in(1)}, "reason"),
        ({"reason": "x" * 501, "expires_at": _in(1)}, "reason"),
        ({"expires_at": _in(1)}, "reason"),
        ({"reason": "x"}, "expires_at"),
        ({"reason": "x", "expires_at": _in(1), "rule_id": "other"}, "rule_id"),
    ]:
        assert _field(world.suppress(alert["id"], body)) == field, body
    assert world.suppress(alert["id"], {"reason": "x", "expires_at": _in(90 * 24)}).status == 201
    ok = {"reason": "x", "expires_at": _in(1)}
    assert world.suppress(alert["id"], ok, ANALYST).status == 403
    assert world.suppress(alert["id"], ok, READER).status == 403
    assert world.suppress(f"alert-{uuid.uuid4().hex}", ok).status == 404
    hidden = world.alert(service=HIDDEN_SERVICE, actor="mailer@contoso.com")
    assert world.suppress(hidden["id"], ok).status == 404  # hidden from an admin without privacy
    assert world.suppress(hidden["id"], ok, PRIVACY_ADMIN).status == 201


def test_if_match_guards_replacing_and_removing_a_suppression(world: World) -> None:
    alert = world.alert()
    body = {"reason": "lab", "expires_at": _in(2)}
    identifier = suppression_id(world.tenant, alert["rule_id"], alert["group_key"])
    assert world.suppress(alert["id"], body, {**ADMIN, "If-Match": '"none-yet"'}).status == 412
    assert world.store.suppressions.get(world.tenant, identifier) is None
    first = world.suppress(alert["id"], body)
    etag = first.headers["ETag"]
    second = world.suppress(alert["id"], {**body, "reason": "lab 2"}, {**ADMIN, "If-Match": etag})
    assert second.status == 201, second.body
    stale = world.suppress(alert["id"], {**body, "reason": "lab 3"}, {**ADMIN, "If-Match": etag})
    assert stale.status == 412
    assert _json(stale)["type"].endswith("/precondition-failed")
    assert _field(world.remove(identifier, {**ADMIN, "If-Match": "x" * 201})) == "If-Match"
    assert world.remove(identifier, {**ADMIN, "If-Match": etag}).status == 412
    stored = world.store.suppressions.get(world.tenant, identifier)
    assert stored is not None
    assert stored["reason"] == "lab 2"
    assert world.remove(identifier, {**ADMIN, "If-Match": second.headers["ETag"]}).status == 204
    assert world.store.suppressions.get(world.tenant, identifier) is None


def test_removing_a_suppression_is_audited_with_its_reason_and_alerts_show_none(world: World) -> None:
    alert = world.alert()
    created = _json(world.suppress(alert["id"], {"reason": "maintenance", "expires_at": _in(3)}))
    assert world.remove(created["id"], READER).status == 403
    assert world.remove(created["id"], ANALYST).status == 403
    removed = world.remove(created["id"])
    assert (removed.status, removed.body) == (204, b"")
    assert world.detail(alert["id"])["suppression"] is None
    assert _json(world.suppressions())["items"] == []
    assert world.remove(created["id"]).status == 404
    assert world.remove("sup-" + "0" * 40).status == 404
    actions = {r["action"]: r for r in world.audits(created["id"])}
    assert set(actions) == {"suppression.create", "suppression.delete"}
    assert actions["suppression.delete"]["before"]["reason"] == "maintenance"
    assert actions["suppression.delete"]["after"] is None


def test_the_list_holds_active_and_recently_expired_ones_newest_first_hiding_what_it_must(
    world: World,
) -> None:
    old = world.suppressed(world.alert(actor="old@contoso.com"), hours=1)  # 12:00 to 13:00
    world.clock.advance(2 * 3600)
    expired = world.suppressed(world.alert(actor="expired@contoso.com"), hours=1)  # 14:00 to 15:00
    world.clock.advance(2 * 3600)
    other_rule = world.suppressed(
        world.alert(actor="x@contoso.com", rule_id="entra.app-registered"), hours=48
    )
    world.clock.advance(1)
    hidden = world.suppressed(world.alert(service=HIDDEN_SERVICE), hours=48, headers=PRIVACY_ADMIN)

    listed = _json(world.suppressions())
    assert [(s["id"], s["active"]) for s in listed["items"]] == [
        (other_rule, True),
        (expired, False),
        (old, False),
    ]
    assert listed["truncated"] is False
    assert _ids(world.suppressions(PRIVACY_ADMIN)) == [hidden, other_rule, expired, old]
    assert _ids(world.suppressions(rule="entra.app-registered")) == [other_rule]
    assert world.remove(hidden).status == 404  # hidden from an admin without privacy
    assert _ids(world.suppressions(PRIVACY_ADMIN))[0] == hidden

    world.clock.advance(30 * 86400 - 2 * 3600 - 1)  # 14:00, 30 days on: an hour past "old"'s 30 days
    assert _ids(world.suppressions()) == [other_rule, expired]
    assert _field(world.suppressions(rule="Not A Rule")) == "rule"
    assert _field(world.suppressions(since="1d")) == "since"


def test_a_suppression_made_through_the_route_stops_the_service_alerting(
    app_environment: dict[str, str],
) -> None:
    service = Harness(group_hours=5)
    service.service.process(service.message([_ga(service, 0)]))
    [alert] = service.alerts("entra.global-admin-added")
    world = World(service.tenant, service.clock)
    world.suppressed(alert, hours=8)
    report = service.service.process(service.message([_ga(service, 400)]))  # would open a second alert
    assert (report.created, report.notify_messages, report.suppressed) == ([], [], 1)
    assert [a["id"] for a in service.alerts("entra.global-admin-added")] == [alert["id"]]
    assert world.detail(alert["id"])["suppression"]["matches"] == 1
