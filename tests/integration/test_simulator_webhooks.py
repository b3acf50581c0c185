"""The tenant simulator over HTTP: the webhook sink and the global_admin / user_deletion bursts."""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from devtools.simulator import TenantSimulator
from tests.support.simulator_client import graph_records, sim_time_us, simulator_at

EPOCH = dt.datetime(2026, 11, 22, tzinfo=dt.UTC)
GLOBAL_ADMIN_TEMPLATE_ID = "62e90394-69f5-4237-9190-012177145e10"


@pytest.fixture
def sim() -> Iterator[TenantSimulator]:
    """A started simulator whose sim clock reads EPOCH + 10 h (speed 1), on a free port."""
    simulator = simulator_at(EPOCH, 10 * 3600, seed=23, events_per_day=2000)
    try:
        yield simulator
    finally:
        simulator.stop()


def control(sim: TenantSimulator, path: str) -> str:
    return f"{sim.base_url}/_sim/{path}"


def directory_audits(sim: TenantSimulator, lo: str, hi: str) -> list[dict[str, Any]]:
    return graph_records(sim, "auditLogs/directoryAudits", "activityDateTime", lo, hi)


def modified(target: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["displayName"]: p for p in target["modifiedProperties"]}


# ---------------------------------------------------------------------------------------------------
# Webhook sink
# ---------------------------------------------------------------------------------------------------


def test_a_post_is_answered_ok_and_recorded(sim: TenantSimulator) -> None:
    url = sim.webhook_url("teams-alerts")
    assert url == f"{sim.base_url}/webhooks/teams-alerts"
    card: dict[str, Any] = {
        "type": "message",
        "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive"}],
    }
    sent_at, sent_sim = dt.datetime.now(dt.UTC), sim.now()
    response = requests.post(url, json=card, headers={"X-Correlation-Id": "abc-123"}, timeout=10)
    answered_at, answered_sim = dt.datetime.now(dt.UTC), sim.now()
    assert response.status_code == 200
    assert response.text == "ok"
    assert response.headers["Content-Type"].startswith("text/plain")
    plain = requests.post(url, data="Zoë: not JSON".encode(), timeout=10)
    assert (plain.status_code, plain.text) == (200, "ok")

    first, second = sim.webhook_deliveries("teams-alerts")
    assert first["name"] == "teams-alerts"
    assert (first["sequence"], second["sequence"]) == (1, 2)
    assert first["json"] == card
    assert json.loads(first["body"]) == card
    assert first["headers"]["x-correlation-id"] == "abc-123"
    assert first["headers"]["content-type"] == "application/json"
    assert all(name == name.lower() for name in first["headers"])
    assert (first["status"], first["accepted"]) == (200, True)
    received = dt.datetime.fromisoformat(first["received_at"].replace("Z", "+00:00"))
    assert first["received_at"].endswith("Z")
    # Stamped while it was served, in real and in simulated time (order, not speed).
    assert sent_at <= received <= answered_at
    assert (
        sim_time_us(sent_sim.isoformat())
        <= sim_time_us(first["sim_time"])
        <= sim_time_us(answered_sim.isoformat())
    )
    assert second["body"] == "Zoë: not JSON"
    assert second["json"] is None

    over_http = requests.get(control(sim, "webhooks/teams-alerts"), timeout=10)
    assert over_http.status_code == 200
    assert over_http.json() == [first, second]
    logged = [e for e in sim.requests() if e["path"] == "/webhooks/teams-alerts"]
    assert [(e["method"], e["api"], e["status"]) for e in logged] == [("POST", "webhook", 200)] * 2


def test_a_script_throttles_then_accepts_then_answers_then(sim: TenantSimulator) -> None:
    response = requests.post(
        control(sim, "webhooks/slack_ops/script"),
        json={
            "responses": [{"status": 429, "retry_after": "1", "body": "rate_limited"}, {"status": 200}],
            "then": {"status": 400, "body": "invalid_payload"},
        },
        timeout=10,
    )
    assert response.status_code == 200, response.text
    url = sim.webhook_url("slack_ops")
    answers = [requests.post(url, json={"text": f"alert {i}"}, timeout=10) for i in range(4)]
    assert [a.status_code for a in answers] == [429, 200, 400, 400]
    assert answers[0].headers["Retry-After"] == "1"
    assert answers[0].text == "rate_limited"
    assert "Retry-After" not in answers[1].headers
    assert answers[1].text == "ok"
    assert [a.text for a in answers[2:]] == ["invalid_payload"] * 2

    attempts = sim.webhook_deliveries("slack_ops")
    assert [(a["sequence"], a["status"], a["accepted"]) for a in attempts] == [
        (1, 429, False),
        (2, 200, True),
        (3, 400, False),
        (4, 400, False),
    ]
    assert [a["json"]["text"] for a in attempts] == [f"alert {i}" for i in range(4)]

    # A new script replaces the old one; the default `then` is 200.
    sim.script_webhook("slack_ops", [{"status": 503}])
    assert [requests.post(url, data="x", timeout=10).status_code for _ in range(2)] == [503, 200]
    summary = requests.get(control(sim, "webhooks"), timeout=10).json()
    assert summary["slack_ops"] == {"attempts": 6, "accepted": 2}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"responses": [{"status": 700}]}, "status"),
        ({"responses": [{"status": 99}]}, "status"),
        ({"responses": [{"status": "429"}]}, "status"),
        ({"responses": [{"status": True}]}, "status"),
        ({"responses": [{}]}, "status"),
        ({"responses": [{"status": 429, "retry_after": 1.5}]}, "retry_after"),
        ({"responses": [{"status": 429, "retry_after": "1\r\nX-Evil: 1"}]}, "retry_after"),
        ({"responses": [{"status": 200, "body": {"ok": True}}]}, "body"),
        ({"responses": [{"status": 200, "delay": 1}]}, "delay"),
        ({"responses": {"status": 200}}, "responses"),
        ({"responses": ["200"]}, "responses"),
        ({"responses": [], "then": {"status": 1000}}, "then"),
        ({"responses": [], "repeat": True}, "repeat"),
    ],
)
def test_invalid_scripts_are_rejected(sim: TenantSimulator, body: dict[str, Any], message: str) -> None:
    response = requests.post(control(sim, "webhooks/hook/script"), json=body, timeout=10)
    assert response.status_code == 400
    assert message in response.json()["error"]
    if set(body) <= {"responses", "then"}:  # the Python API has no room for unknown top-level fields
        with pytest.raises(ValueError, match=message):
            sim.script_webhook("hook", body["responses"], body.get("then"))
    # Nothing was scripted: a delivery still gets the default answer.
    assert requests.post(sim.webhook_url("hook"), data="{}", timeout=10).status_code == 200


def test_control_bodies_must_be_json_objects(sim: TenantSimulator) -> None:
    for data in (b"", b"[]", b"not json"):
        response = requests.post(control(sim, "webhooks/hook/script"), data=data, timeout=10)
        assert response.status_code == 400, data
    reset = requests.post(control(sim, "webhooks/hook/reset"), json={"all": True}, timeout=10)
    assert reset.status_code == 400
    assert "all" in reset.json()["error"]
    assert requests.get(control(sim, "webhooks/hook/script"), timeout=10).status_code == 405


@pytest.mark.parametrize(
    "path",
    [
        "/webhooks",
        "/webhooks/a.b",
        "/webhooks/has%20space",
        "/webhooks/a/b",
        "/webhooks/" + "x" * 65,
        "/webhooks/%C3%BC",
    ],
)
def test_names_of_the_wrong_shape_are_not_found(sim: TenantSimulator, path: str) -> None:
    response = requests.post(f"{sim.base_url}{path}", json={"text": "hi"}, timeout=10)
    assert response.status_code == 404
    control_path = path.replace("/webhooks", "/_sim/webhooks", 1)
    if path != "/webhooks":
        assert requests.get(f"{sim.base_url}{control_path}", timeout=10).status_code == 404
        script = requests.post(f"{sim.base_url}{control_path}/script", json={"responses": []}, timeout=10)
        assert script.status_code == 404
    assert requests.get(control(sim, "webhooks"), timeout=10).json() == {}
    with pytest.raises(ValueError, match="webhook name"):
        sim.webhook_url(path.rsplit("/", 1)[-1] + "/x")


def test_a_64_character_name_works_and_other_methods_are_405(sim: TenantSimulator) -> None:
    name = "A-z_9" + "x" * 59
    assert requests.post(sim.webhook_url(name), data="{}", timeout=10).status_code == 200
    response = requests.get(sim.webhook_url(name), timeout=10)
    assert response.status_code == 405
    assert response.headers["Allow"] == "POST"
    assert len(sim.webhook_deliveries(name)) == 1


def test_reset_forgets_attempts_and_script(sim: TenantSimulator) -> None:
    url = sim.webhook_url("generic")
    sim.script_webhook("generic", [{"status": 500}, {"status": 500}], then={"status": 502})
    assert requests.post(url, json={"n": 1}, timeout=10).status_code == 500
    sim.script_webhook("other", [], then={"status": 202})
    assert requests.post(sim.webhook_url("other"), json={}, timeout=10).status_code == 202
    summary = requests.get(control(sim, "webhooks"), timeout=10).json()
    assert summary == {"generic": {"attempts": 1, "accepted": 0}, "other": {"attempts": 1, "accepted": 1}}

    response = requests.post(control(sim, "webhooks/generic/reset"), json={}, timeout=10)
    assert response.status_code == 200, response.text
    assert requests.get(control(sim, "webhooks/generic"), timeout=10).json() == []
    assert requests.post(url, json={"n": 2}, timeout=10).status_code == 200  # the script is gone
    assert [a["sequence"] for a in sim.webhook_deliveries("generic")] == [1]
    sim.reset_webhook("other")
    assert requests.get(control(sim, "webhooks"), timeout=10).json() == {
        "generic": {"attempts": 1, "accepted": 1}
    }
    assert requests.get(control(sim, "webhooks/never-used"), timeout=10).json() == []


def test_concurrent_posts_get_distinct_sequences_and_consume_the_script_once(sim: TenantSimulator) -> None:
    posts = 20
    sim.script_webhook("busy", [{"status": 429, "retry_after": "2"}] * 5)
    url = sim.webhook_url("busy")
    barrier = threading.Barrier(posts)
    statuses: list[int] = []
    lock = threading.Lock()

    def post(i: int) -> None:
        barrier.wait()
        status = requests.post(url, json={"i": i}, timeout=30).status_code
        with lock:
            statuses.append(status)

    threads = [threading.Thread(target=post, args=(i,)) for i in range(posts)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(statuses) == [200] * 15 + [429] * 5
    attempts = sim.webhook_deliveries("busy")
    assert [a["sequence"] for a in attempts] == list(range(1, posts + 1))
    assert sorted(a["json"]["i"] for a in attempts) == list(range(posts))
    assert [a["status"] for a in attempts] == [429] * 5 + [200] * 15  # in sequence order
    summary = requests.get(control(sim, "webhooks"), timeout=10).json()
    assert summary["busy"] == {"attempts": 20, "accepted": 15}


# ---------------------------------------------------------------------------------------------------
# Bursts: Global Administrator assignments and user deletions
# ---------------------------------------------------------------------------------------------------


def test_global_admin_burst_renders_role_assignments(sim: TenantSimulator) -> None:
    actor = "zoe.lukasz@contoso.onmicrosoft.com"
    response = requests.post(
        control(sim, "bursts"),
        json={"kind": "global_admin", "count": 6, "spread_seconds": 30, "actor": actor},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    burst = response.json()
    assert burst["kind"] == "global_admin"
    by_id = {f"entra_audit:{v['id']}": v for v in directory_audits(sim, burst["from"], burst["to"])}
    assert set(burst["ids"]) <= set(by_id)
    for truth_id in burst["ids"]:
        audit = by_id[truth_id]
        assert audit["activityDisplayName"] == "Add member to role"
        assert audit["category"] == "RoleManagement"
        assert audit["operationType"] == "Assign"
        assert audit["result"] == "success"
        assert audit["initiatedBy"]["user"]["userPrincipalName"] == actor
        assert audit["initiatedBy"]["app"] is None
        user_target, role_target = audit["targetResources"]
        assert user_target["type"] == "User"
        props = modified(user_target)
        assert props["Role.DisplayName"]["newValue"] == '"Global Administrator"'
        assert props["Role.TemplateId"]["newValue"] == json.dumps(GLOBAL_ADMIN_TEMPLATE_ID)
        assert props["Role.WellKnownObjectName"]["newValue"] == '"TenantAdmins"'
        assert props["Role.DisplayName"]["oldValue"] is None
        assert role_target["type"] == "Role"
        assert role_target["displayName"] == "Global Administrator"
        assert role_target["id"] == GLOBAL_ADMIN_TEMPLATE_ID
        assert (
            sim_time_us(burst["from"]) <= sim_time_us(audit["activityDateTime"]) <= sim_time_us(burst["to"])
        )
    assert set(burst["ids"]) <= set(sim.ground_truth()["ids"])


def test_user_deletion_burst_renders_delete_user_records(sim: TenantSimulator) -> None:
    admin = sim.tenant.directory.admins[0]
    burst = sim.add_burst("user_deletion", 8, spread_seconds=20, actor=admin.upn)
    by_id = {f"entra_audit:{v['id']}": v for v in directory_audits(sim, burst["from"], burst["to"])}
    assert set(burst["ids"]) <= set(by_id)
    for truth_id in burst["ids"]:
        audit = by_id[truth_id]
        assert audit["activityDisplayName"] == "Delete user"
        assert audit["category"] == "UserManagement"
        assert audit["operationType"] == "Delete"
        assert (audit["result"], audit["resultReason"]) == ("success", "")
        assert audit["initiatedBy"]["user"]["userPrincipalName"] == admin.upn
        assert audit["initiatedBy"]["user"]["id"] == admin.id
        assert audit["targetResources"][0]["type"] == "User"
    without_actor = sim.add_burst("user_deletion", 3)
    audits = directory_audits(sim, without_actor["from"], without_actor["to"])
    deletions = [a for a in audits if f"entra_audit:{a['id']}" in set(without_actor["ids"])]
    assert len(deletions) == 3
    assert all(a["activityDisplayName"] == "Delete user" and a["result"] == "success" for a in deletions)
    unknown = requests.post(control(sim, "bursts"), json={"kind": "user_deletions", "count": 1}, timeout=10)
    assert unknown.status_code == 400
    assert "user_deletion" in unknown.json()["error"]
