"""The tenant simulator over HTTP: the Azure DevOps run endpoint and scripted configuration-change bursts."""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from devtools.simulator import DEVOPS_SCOPE, TenantSimulator
from tests.support.simulator_client import client_token, graph_records, sim_time_us, simulator_at

EPOCH = dt.datetime(2026, 11, 22, tzinfo=dt.UTC)
PAT = "local-devops-pat"
TF400813_HEADER = "TF400813%3a+The+user+%27%27+is+not+authorized+to+access+this+resource."


@pytest.fixture
def sim() -> Iterator[TenantSimulator]:
    """A started simulator whose sim clock reads EPOCH + 10 h (speed 1), on a free port."""
    simulator = simulator_at(EPOCH, 10 * 3600, seed=17, events_per_day=3000)
    try:
        yield simulator
    finally:
        simulator.stop()


def runs_url(sim: TenantSimulator, pipeline: int = 1, version: str = "7.1") -> str:
    return f"{sim.devops_base_url}/contoso/aoc/_apis/pipelines/{pipeline}/runs?api-version={version}"


def pat_auth(pat: str = PAT, user: str = "") -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{pat}".encode()).decode()}


def intune_audits(sim: TenantSimulator, lo: str, hi: str) -> list[dict[str, Any]]:
    return graph_records(sim, "deviceManagement/auditEvents", "activityDateTime", lo, hi)


def directory_audits(sim: TenantSimulator, lo: str, hi: str) -> list[dict[str, Any]]:
    return graph_records(sim, "auditLogs/directoryAudits", "activityDateTime", lo, hi)


# ---------------------------------------------------------------------------------------------------
# Azure DevOps
# ---------------------------------------------------------------------------------------------------


def test_run_pipeline_with_pat_and_with_a_devops_bearer_token(sim: TenantSimulator) -> None:
    first = requests.post(
        runs_url(sim, pipeline=1),
        json={
            "resources": {"repositories": {"self": {"refName": "refs/heads/main"}}},
            "templateParameters": {"scope": "tenant-config", "changes": "40"},
        },
        headers=pat_auth(user="aoc"),
        timeout=10,
    )
    assert first.status_code == 200, first.text
    assert first.headers["Content-Type"].startswith("application/json")
    run = first.json()
    assert run["state"] == "inProgress"
    assert run["result"] is None
    assert run["pipeline"]["id"] == 1
    assert run["pipeline"]["folder"] == "\\"
    assert run["url"] == f"{sim.devops_base_url}/contoso/aoc/_apis/pipelines/1/runs/{run['id']}"
    assert (
        run["_links"]["web"]["href"]
        == f"{sim.devops_base_url}/contoso/aoc/_build/results?buildId={run['id']}"
    )
    assert run["name"].startswith("20261122.")
    assert run["templateParameters"] == {"scope": "tenant-config", "changes": "40"}

    bearer = client_token(sim, DEVOPS_SCOPE)
    second = requests.post(
        runs_url(sim, pipeline=3),
        json={
            "resources": {"repositories": {"self": {"refName": "refs/heads/backup"}}},
            "templateParameters": {"scope": "entra"},
        },
        headers={"Authorization": f"Bearer {bearer}"},
        timeout=10,
    )
    assert second.status_code == 200, second.text
    third = requests.post(runs_url(sim, pipeline=1), json={}, headers=pat_auth(), timeout=10)
    assert third.status_code == 200
    ids = [first.json()["id"], second.json()["id"], third.json()["id"]]
    assert ids == sorted(ids)
    assert len(set(ids)) == 3

    recorded = requests.get(f"{sim.base_url}/_sim/devops/runs", timeout=10).json()
    assert recorded == sim.devops_runs()
    assert [r["id"] for r in recorded] == ids
    assert [(r["organization"], r["project"], r["pipeline_id"]) for r in recorded] == [
        ("contoso", "aoc", 1),
        ("contoso", "aoc", 3),
        ("contoso", "aoc", 1),
    ]
    assert [r["refName"] for r in recorded] == ["refs/heads/main", "refs/heads/backup", "refs/heads/main"]
    assert [r["templateParameters"] for r in recorded] == [
        {"scope": "tenant-config", "changes": "40"},
        {"scope": "entra"},
        {},
    ]
    assert [r["auth"] for r in recorded] == ["basic", "bearer", "basic"]
    assert all(r["createdDate"].startswith("2026-11-22T10:") for r in recorded)
    devops_log = [e for e in sim.requests() if e["api"] == "devops"]
    assert [(e["method"], e["status"]) for e in devops_log] == [("POST", 200)] * 3


def test_api_version_and_unknown_pipeline(sim: TenantSimulator) -> None:
    for version in ("", "1.0", "9.9", "7.2"):
        response = requests.post(runs_url(sim, version=version), json={}, headers=pat_auth(), timeout=10)
        assert response.status_code == 400, version
        assert response.json()["typeKey"].startswith("Vss")
    unknown = requests.post(runs_url(sim, pipeline=404), json={}, headers=pat_auth(), timeout=10)
    assert unknown.status_code == 404
    error = unknown.json()
    assert set(error) == {"$id", "innerException", "message", "typeName", "typeKey", "errorCode", "eventId"}
    assert error["typeKey"] == "PipelineNotFoundException"
    assert "404" in error["message"]
    assert sim.devops_runs() == []
    assert [a["status"] for a in sim.devops_attempts()] == [400, 400, 400, 400, 404]


def test_rejections_sign_in_page_unauthorized_forbidden_and_reset(sim: TenantSimulator) -> None:
    control = f"{sim.base_url}/_sim/devops/reject"

    default = requests.post(runs_url(sim), json={}, headers=pat_auth("expired-pat"), timeout=10)
    assert default.status_code == 401
    assert default.headers["X-TFS-ServiceError"] == TF400813_HEADER
    assert "TF400813" in default.json()["message"]
    anonymous = requests.post(runs_url(sim), json={}, timeout=10)
    assert anonymous.status_code == 401

    assert requests.post(control, json={"mode": "signin"}, timeout=10).json() == {"mode": "signin"}
    for headers in ({}, pat_auth("expired-pat"), pat_auth()):
        page = requests.post(runs_url(sim), json={}, headers=headers, timeout=10)
        assert page.status_code == 203
        assert page.reason == "Non-Authoritative Information"
        assert page.headers["Content-Type"].startswith("text/html")
        assert "Azure DevOps Services | Sign In" in page.text

    assert requests.post(control, json={"mode": "unauthorized"}, timeout=10).status_code == 200
    unauthorized = requests.post(runs_url(sim), json={}, headers=pat_auth(), timeout=10)
    assert unauthorized.status_code == 401
    assert unauthorized.headers["X-TFS-ServiceError"] == TF400813_HEADER
    assert "TF400813" in unauthorized.json()["message"]

    sim.reject_devops("forbidden")
    forbidden = requests.post(runs_url(sim), json={}, headers=pat_auth(), timeout=10)
    assert forbidden.status_code == 403
    assert "Queue builds" in forbidden.json()["message"]
    assert sim.devops_runs() == []

    assert requests.post(control, json={"mode": None}, timeout=10).json() == {"mode": None}
    accepted = requests.post(runs_url(sim), json={}, headers=pat_auth(), timeout=10)
    assert accepted.status_code == 200
    assert [r["id"] for r in sim.devops_runs()] == [accepted.json()["id"]]
    attempts = requests.get(f"{sim.base_url}/_sim/devops/attempts", timeout=10).json()
    assert [a["status"] for a in attempts] == [401, 401, 203, 203, 203, 401, 403, 200]
    assert [a["auth"] for a in attempts[:2]] == ["basic", "none"]


# ---------------------------------------------------------------------------------------------------
# Bursts
# ---------------------------------------------------------------------------------------------------


def test_intune_burst_appears_in_the_next_audit_events_query_and_ground_truth(sim: TenantSimulator) -> None:
    response = requests.post(
        f"{sim.base_url}/_sim/bursts",
        json={
            "kind": "intune",
            "count": 40,
            "spread_seconds": 60,
            "actor": "zoe.lukasz@contoso.onmicrosoft.com",
        },
        timeout=10,
    )
    assert response.status_code == 200, response.text
    burst = response.json()
    assert len(burst["ids"]) == 40
    assert all(i.startswith("intune_audit:") for i in burst["ids"])
    values = intune_audits(sim, burst["from"], burst["to"])
    by_id = {f"intune_audit:{v['id']}": v for v in values}
    assert set(burst["ids"]) <= set(by_id)
    for truth_id in burst["ids"]:
        event = by_id[truth_id]
        assert event["activityOperationType"] in {"Create", "Patch", "Delete", "Assign"}
        assert event["category"] in {"DeviceConfiguration", "Compliance", "Application"}
        assert event["activityResult"] == "Success"
        assert event["actor"]["userPrincipalName"] == "zoe.lukasz@contoso.onmicrosoft.com"
        assert (
            sim_time_us(burst["from"]) <= sim_time_us(event["activityDateTime"]) <= sim_time_us(burst["to"])
        )
    truth = requests.get(f"{sim.base_url}/_sim/ground-truth", timeout=10).json()
    assert set(burst["ids"]) <= set(truth["ids"])
    assert truth["bursts"] == 1


def test_conditional_access_burst_appears_in_directory_audits(sim: TenantSimulator) -> None:
    burst = sim.add_burst("conditional_access", 12, spread_seconds=30)
    values = directory_audits(sim, burst["from"], burst["to"])
    by_id = {f"entra_audit:{v['id']}": v for v in values}
    assert set(burst["ids"]) <= set(by_id)
    audits = [by_id[i] for i in burst["ids"]]
    assert {a["activityDisplayName"] for a in audits} <= {
        "Add conditional access policy",
        "Update conditional access policy",
        "Delete conditional access policy",
        "Update named location",
    }
    assert all(a["category"] == "Policy" for a in audits)
    assert all(a["loggedByService"] == "Conditional Access" for a in audits)
    assert all(a["result"] == "success" for a in audits)
    assert set(burst["ids"]) <= set(sim.ground_truth()["ids"])


def test_a_delayed_burst_is_invisible_until_its_delay_passes(sim: TenantSimulator) -> None:
    burst = sim.add_burst("intune", 5, spread_seconds=10, delay_seconds=3600)
    values = intune_audits(sim, burst["from"], burst["to"])
    assert not {f"intune_audit:{v['id']}" for v in values} & set(burst["ids"])
    assert set(burst["ids"]) <= set(sim.ground_truth()["ids"])  # the truth has it already
