"""The query API through the local host: events and alerts, in function-key mode and in Static Web
Apps mode with roles and privacy gating."""

from __future__ import annotations

import datetime as dt
import json
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devtools.services import PROJECT_ROOT
from shared.alerts.store import AlertStore
from shared.clients import get_clients
from shared.clock import utc_iso
from shared.event_store import EventStore
from shared.events import partition_key
from shared.resources import CosmosContainers
from tests.support.host_process import FUNCTION_KEY, HostProcess, http_request
from tests.support.principals import swa_principal

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


def _event(tenant: str, i: int, service: str, operation: str) -> dict[str, Any]:
    timestamp = utc_iso(NOW - dt.timedelta(minutes=5 * i + 1))
    return {
        "id": f"api-test:{i:03d}",
        "pk": partition_key(tenant, timestamp),
        "tenant_id": tenant,
        "source": "entra_audit",
        "service": service,
        "category": None,
        "operation": operation,
        "operation_type": "update",
        "result": "success",
        "actor": {"type": "user", "id": None, "upn": f"user{i % 3}@contoso.com", "display": None, "ip": None},
        "targets": [],
        "timestamp": timestamp,
        "ingested_at": timestamp,
        "correlation_id": None,
        "summary": f"event {i}",
        "tags": [],
        "raw_ref": None,
        "raw": {"secret": "raw records are not returned by the API"},
    }


@pytest.fixture(scope="module")
def tenant(app_environment: dict[str, str]) -> str:
    tenant_id = f"tenant-{uuid.uuid4().hex[:10]}"
    clients = get_clients()
    store = EventStore(
        clients.cosmos_container(CosmosContainers.EVENTS.name),
        clients.cosmos_container(CosmosContainers.FACETS.name),
        4,
    )
    events = [
        _event(tenant_id, i, "Exchange" if i % 2 else "Directory", "Set-Mailbox" if i % 2 else "Add user")
        for i in range(30)
    ]
    store.write_events(events)
    alerts = AlertStore(clients.cosmos_container(CosmosContainers.ALERTS.name))
    for i, (severity, service) in enumerate(
        [("critical", "Directory"), ("high", "Exchange"), ("high", "Directory"), ("medium", "Intune")]
    ):
        seen = utc_iso(NOW - dt.timedelta(hours=i))
        alerts.create(
            {
                "id": f"alert-api-{i}",
                "pk": tenant_id,
                "type": "alert",
                "tenant_id": tenant_id,
                "rule_id": f"test.rule-{i}",
                "title": f"Alert {i}",
                "description": "d",
                "severity": severity,
                "status": "open",
                "occurrences": 1,
                "first_seen": seen,
                "last_seen": seen,
                "sample": {"service": service, "operation": "Op"},
                "history": [],
            }
        )
    return tenant_id


def _host(app_environment: dict[str, str], tenant: str, work_dir: Path, **extra: str) -> HostProcess:
    settings = {
        **app_environment,
        "M365_TENANT_ID": tenant,
        "API_CONTINUATION_SECRET": "e2e-continuation-secret-0123456789",
        "PROBE_ENABLED": "false",
        **extra,
    }
    return HostProcess(app_dir=PROJECT_ROOT, work_dir=work_dir, environment=settings).start(timeout=60)


@pytest.fixture(scope="module")
def keys_host(
    app_environment: dict[str, str], tenant: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[HostProcess]:
    host = _host(app_environment, tenant, tmp_path_factory.mktemp("keys-host"))
    yield host
    host.stop()


def _get(host: HostProcess, path: str, headers: dict[str, str] | None = None) -> Any:
    return http_request("GET", f"{host.base_url}{path}", headers=headers)


KEY = {"x-functions-key": FUNCTION_KEY}


def test_function_keys_guard_the_routes_and_pages_cover_every_event_once(keys_host: HostProcess) -> None:
    assert _get(keys_host, "/api/events").status == 401  # the host refuses a call without a key

    ids: list[str] = []
    token = None
    while True:
        query = {"page_size": "7", "start": "1d", **({"continuation": token} if token else {})}
        response = _get(keys_host, "/api/events?" + urllib.parse.urlencode(query), KEY)
        assert response.status == 200, response.body
        page = response.json()
        assert all("raw" not in item and "_rid" not in item for item in page["items"])
        ids.extend(item["id"] for item in page["items"])
        token = page["continuation"]
        if not token:
            break
    assert ids == [f"api-test:{i:03d}" for i in range(30)]  # newest first, each once


def test_bad_input_is_an_rfc9457_problem(keys_host: HostProcess) -> None:
    response = _get(keys_host, "/api/events?page_size=1000&colour=red", KEY)
    assert response.status == 400
    assert response.headers.get("Content-Type", "").startswith("application/problem+json")
    problem = response.json()
    assert problem["status"] == 400
    assert {e["field"] for e in problem["errors"]} == {"page_size", "colour"}

    forged = _get(
        keys_host, "/api/events?" + urllib.parse.urlencode({"continuation": "eyJ2IjoxfQ.AAAA"}), KEY
    )
    assert forged.status == 400
    assert forged.json()["errors"][0]["field"] == "continuation"


def test_one_event_by_id(keys_host: HostProcess) -> None:
    found = _get(keys_host, "/api/events/" + urllib.parse.quote("api-test:004"), KEY)
    assert found.status == 200
    assert found.json()["operation"] == "Add user"
    assert _get(keys_host, "/api/events/api-test:999", KEY).status == 404


def test_swa_mode_maps_roles_and_hides_sensitive_services_from_readers(
    app_environment: dict[str, str], tenant: str, tmp_path: Path
) -> None:
    host = _host(app_environment, tenant, tmp_path, API_AUTH_MODE="swa", API_SENSITIVE_SERVICES="Exchange")
    try:
        assert _get(host, "/api/events").status == 401
        assert (
            _get(host, "/api/events", {"x-ms-client-principal": swa_principal(["authenticated"])}).status
            == 403
        )

        reader = {"x-ms-client-principal": swa_principal(["authenticated", "reader"])}
        items = _get(host, "/api/events?page_size=200&start=1d", reader).json()["items"]
        assert {i["service"] for i in items} == {"Directory"}
        assert _get(host, "/api/events/api-test:001", reader).status == 404  # an Exchange event

        privileged = {"x-ms-client-principal": swa_principal(["reader", "privacy"])}
        items = _get(host, "/api/events?page_size=200&start=1d", privileged).json()["items"]
        assert {i["service"] for i in items} == {"Directory", "Exchange"}
    finally:
        host.stop()


def test_alerts_list_filter_summary_and_triage(keys_host: HostProcess) -> None:
    listed = _get(keys_host, "/api/alerts?page_size=2", KEY).json()
    assert [a["id"] for a in listed["items"]] == ["alert-api-0", "alert-api-1"]
    rest = _get(
        keys_host,
        "/api/alerts?" + urllib.parse.urlencode({"page_size": 2, "continuation": listed["continuation"]}),
        KEY,
    )
    assert [a["id"] for a in rest.json()["items"]] == ["alert-api-2", "alert-api-3"]
    high = _get(keys_host, "/api/alerts?severity=high&severity=critical", KEY).json()["items"]
    assert {a["id"] for a in high} == {"alert-api-0", "alert-api-1", "alert-api-2"}

    summary = _get(keys_host, "/api/alerts/summary", KEY).json()
    assert summary["open"] == {"critical": 1, "high": 2, "medium": 1, "low": 0, "informational": 0}

    body = json.dumps(
        {"status": "acknowledged", "classification": "true_positive", "comment": "on it"}
    ).encode()
    patched = http_request("PATCH", f"{keys_host.base_url}/api/alerts/alert-api-3", body=body, headers=KEY)
    assert patched.status == 200, patched.body
    alert = patched.json()
    assert alert["status"] == "acknowledged"
    assert alert["classification"] == "true_positive"
    assert [h["action"] for h in alert["history"]] == ["status", "classification", "comment"]
    assert _get(keys_host, "/api/alerts/summary", KEY).json()["open"]["medium"] == 0

    refused = http_request(
        "PATCH", f"{keys_host.base_url}/api/alerts/alert-api-3", body=b'{"status": "maybe"}', headers=KEY
    )
    assert refused.status == 400
    assert refused.json()["errors"][0]["field"] == "status"
    missing = http_request(
        "PATCH", f"{keys_host.base_url}/api/alerts/alert-nope", body=b'{"comment": "x"}', headers=KEY
    )
    assert missing.status == 404


def test_swa_readers_cannot_triage_and_do_not_see_sensitive_alerts(
    app_environment: dict[str, str], tenant: str, tmp_path: Path
) -> None:
    host = _host(app_environment, tenant, tmp_path, API_AUTH_MODE="swa", API_SENSITIVE_SERVICES="Exchange")
    try:
        reader = {"x-ms-client-principal": swa_principal(["reader"])}
        ids = {a["id"] for a in _get(host, "/api/alerts", reader).json()["items"]}
        assert "alert-api-1" not in ids
        assert "alert-api-0" in ids
        assert _get(host, "/api/alerts/alert-api-1", reader).status == 404
        patch = http_request(
            "PATCH", f"{host.base_url}/api/alerts/alert-api-0", body=b'{"comment": "x"}', headers=reader
        )
        assert patch.status == 403
        analyst = {"x-ms-client-principal": swa_principal(["analyst"])}
        patch = http_request(
            "PATCH", f"{host.base_url}/api/alerts/alert-api-0", body=b'{"comment": "seen"}', headers=analyst
        )
        assert patch.status == 200
        assert patch.json()["comments"][-1]["by"] == "ana@contoso.com"
    finally:
        host.stop()
