"""The query API through the local host: events and alerts, in function-key mode, in Static Web Apps
mode (local development only, behind the unsafe flag) and in Entra mode with real v1.0 and v2.0 tokens
from the simulated tenant, with roles and privacy gating."""

from __future__ import annotations

import base64
import datetime as dt
import json
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devtools.services import PROJECT_ROOT
from devtools.simulator import TenantSimulator
from shared.alerts.store import AlertStore
from shared.api.catalog import openapi_json
from shared.ingestion.event_store import EventStore
from shared.ingestion.events import partition_key
from shared.platform.clients import get_clients
from shared.platform.clock import utc_iso
from shared.platform.resources import CosmosContainers
from tests.support.host_process import FUNCTION_KEY, HostProcess, http_request
from tests.support.principals import API_APP_ID_URI, API_CLIENT_ID, aoc_api, swa_principal
from tests.support.simulated_tenant import start_real_time_simulator

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
    tenant_id = str(uuid.uuid4())  # a GUID, as Entra tenant ids are
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
    store.update_facets(tenant_id, events, [], utc_iso(NOW), shard_key="e2e")
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


def _send_json(host: HostProcess, method: str, path: str, body: bytes, headers: dict[str, str]) -> Any:
    """A JSON body, labelled as such: a body route answers 415 to anything else."""
    return http_request(
        method, f"{host.base_url}{path}", body=body, headers={**headers, "Content-Type": "application/json"}
    )


KEY = {"x-functions-key": FUNCTION_KEY}
# SWA mode believes x-ms-client-principal; without App Service authentication in front (never the case
# on this machine) the app refuses it unless told, in so many words, that this is unsafe.
UNSAFE_SWA = {"API_AUTH_MODE": "swa", "AOC_UNSAFE_TRUST_CLIENT_PRINCIPAL_HEADER": "1"}


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
    host = _host(
        app_environment,
        tenant,
        tmp_path,
        **UNSAFE_SWA,
        API_SENSITIVE_SERVICES="Exchange",
        API_SENSITIVE_OPERATIONS="Set-Mailbox",
    )
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

        facets = _get(host, "/api/events/facets", reader).json()["facets"]
        assert {f["value"] for f in facets["service"]} == {"Directory"}
        assert "Set-Mailbox" not in {f["value"] for f in facets["operation"]}
        export = _get(host, "/api/events/export?format=jsonl&start=1d", reader)
        assert export.status == 200
        exported = [json.loads(line) for line in export.body.decode().splitlines() if line.strip()]
        assert len(exported) == 15
        assert {e["service"] for e in exported} == {"Directory"}
        assert _get(host, "/api/events/api-test:001/raw", reader).status == 404

        privileged = {"x-ms-client-principal": swa_principal(["reader", "privacy"])}
        items = _get(host, "/api/events?page_size=200&start=1d", privileged).json()["items"]
        assert {i["service"] for i in items} == {"Directory", "Exchange"}
        facets = _get(host, "/api/events/facets", privileged).json()["facets"]
        assert {f["value"] for f in facets["service"]} == {"Directory", "Exchange"}
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
    # urllib labels a body it is given form-encoded, as `curl -d` does: refused, nothing changes.
    unlabelled = http_request("PATCH", f"{keys_host.base_url}/api/alerts/alert-api-3", body=body, headers=KEY)
    assert unlabelled.status == 415, unlabelled.body
    assert unlabelled.json()["type"].endswith("/unsupported-media-type")
    assert _get(keys_host, "/api/alerts/alert-api-3", KEY).json()["status"] == "open"
    patched = _send_json(keys_host, "PATCH", "/api/alerts/alert-api-3", body, KEY)
    assert patched.status == 200, patched.body
    alert = patched.json()
    assert alert["status"] == "acknowledged"
    assert alert["classification"] == "true_positive"
    assert [h["action"] for h in alert["history"]] == ["status", "classification", "comment"]
    assert _get(keys_host, "/api/alerts/summary", KEY).json()["open"]["medium"] == 0

    refused = _send_json(keys_host, "PATCH", "/api/alerts/alert-api-3", b'{"status": "maybe"}', KEY)
    assert refused.status == 400
    assert refused.json()["errors"][0]["field"] == "status"
    missing = _send_json(keys_host, "PATCH", "/api/alerts/alert-nope", b'{"comment": "x"}', KEY)
    assert missing.status == 404


def test_swa_readers_cannot_triage_and_do_not_see_sensitive_alerts(
    app_environment: dict[str, str], tenant: str, tmp_path: Path
) -> None:
    host = _host(app_environment, tenant, tmp_path, **UNSAFE_SWA, API_SENSITIVE_SERVICES="Exchange")
    try:
        reader = {"x-ms-client-principal": swa_principal(["reader"])}
        ids = {a["id"] for a in _get(host, "/api/alerts", reader).json()["items"]}
        assert "alert-api-1" not in ids
        assert "alert-api-0" in ids
        assert _get(host, "/api/alerts/alert-api-1", reader).status == 404
        patch = _send_json(host, "PATCH", "/api/alerts/alert-api-0", b'{"comment": "x"}', reader)
        assert patch.status == 403
        analyst = {"x-ms-client-principal": swa_principal(["analyst"])}
        patch = _send_json(host, "PATCH", "/api/alerts/alert-api-0", b'{"comment": "seen"}', analyst)
        assert patch.status == 200
        assert patch.json()["comments"][-1]["by"] == "ana@contoso.com"
    finally:
        host.stop()


def test_swa_mode_does_not_start_without_the_platform_or_the_unsafe_flag(
    app_environment: dict[str, str], tenant: str, tmp_path: Path
) -> None:
    """A direct caller could forge x-ms-client-principal, so the app refuses SWA mode outright."""
    with pytest.raises(RuntimeError) as caught:
        _host(app_environment, tenant, tmp_path, API_AUTH_MODE="swa", WEBSITE_AUTH_ENABLED="False")
    log = str(caught.value)
    assert "host exited" in log
    assert "API_AUTH_MODE=swa" in log
    assert "WEBSITE_AUTH_ENABLED=True" in log
    assert "AOC_UNSAFE_TRUST_CLIENT_PRINCIPAL_HEADER=1" in log


@pytest.fixture(scope="module")
def identity_provider(tenant: str) -> Iterator[TenantSimulator]:
    """The simulated Entra tenant: publishes the signing keys (JWKS) that verify the API's tokens."""
    simulator = start_real_time_simulator(tenant_id=tenant)
    yield simulator
    simulator.stop()


@pytest.fixture(scope="module")
def entra_host(
    app_environment: dict[str, str],
    tenant: str,
    identity_provider: TenantSimulator,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[HostProcess]:
    """The API in Entra mode, configured as the README says: App ID URI and client id."""
    host = _host(
        app_environment,
        tenant,
        tmp_path_factory.mktemp("entra-host"),
        API_AUTH_MODE="entra",
        API_AUDIENCE=API_APP_ID_URI,
        API_CLIENT_ID=API_CLIENT_ID,
        M365_AUTHORITY_HOST=identity_provider.base_url,
        API_SENSITIVE_SERVICES="Exchange",
    )
    yield host
    host.stop()


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def test_entra_mode_accepts_the_v1_and_v2_tokens_entra_issues(
    entra_host: HostProcess, identity_provider: TenantSimulator, tenant: str
) -> None:
    shapes = {
        "v2.0": identity_provider.issue_api_token(aoc_api(2), ["AOC.Reader"], name="rita@contoso.com"),
        "v1.0 for the App ID URI": identity_provider.issue_api_token(
            aoc_api(1), ["AOC.Reader"], name="rita@contoso.com"
        ),
        "v1.0 for the client id": identity_provider.issue_api_token(
            aoc_api(1), ["AOC.Reader"], name="rita@contoso.com", requested_resource=API_CLIENT_ID
        ),
    }
    assert {
        name: (_claims(t)["ver"], _claims(t)["aud"], _claims(t)["iss"]) for name, t in shapes.items()
    } == {
        "v2.0": ("2.0", API_CLIENT_ID, f"{identity_provider.base_url}/{tenant}/v2.0"),
        "v1.0 for the App ID URI": ("1.0", API_APP_ID_URI, f"https://sts.windows.net/{tenant}/"),
        "v1.0 for the client id": ("1.0", API_CLIENT_ID, f"https://sts.windows.net/{tenant}/"),
    }
    for name, token in shapes.items():
        listed = _get(entra_host, "/api/events?page_size=200&start=1d", _bearer(token))
        assert listed.status == 200, (name, listed.body)
        assert {i["service"] for i in listed.json()["items"]} == {"Directory"}  # Exchange is sensitive
    # The keys came from the simulated tenant's JWKS endpoint, fetched by the host.
    assert any(r["path"].endswith("/discovery/v2.0/keys") for r in identity_provider.requests())


@pytest.mark.parametrize("version", [1, 2])
def test_a_daemon_gets_an_app_token_from_the_token_endpoint_and_calls_the_api(
    entra_host: HostProcess, identity_provider: TenantSimulator, tenant: str, version: int
) -> None:
    daemon = f"0000000{version}-aaaa-4bbb-8ccc-dddddddddddd"
    identity_provider.register_api(aoc_api(version), {daemon: ["AOC.Reader"]})  # type: ignore[arg-type]
    form = urllib.parse.urlencode(
        {
            "grant_type": "client_credentials",
            "client_id": daemon,
            "client_secret": "daemon-secret",
            "scope": f"{API_APP_ID_URI}/.default",
        }
    ).encode()
    answer = http_request(
        "POST",
        f"{identity_provider.base_url}/{tenant}/oauth2/v2.0/token",
        body=form,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert answer.status == 200, answer.body
    token = answer.json()["access_token"]
    claims = _claims(token)
    assert claims["ver"] == f"{version}.0"
    assert claims["aud"] == (API_CLIENT_ID if version == 2 else API_APP_ID_URI)
    assert claims["roles"] == ["AOC.Reader"]
    summary = _get(entra_host, "/api/alerts/summary", _bearer(token))
    assert summary.status == 200, summary.body


def test_entra_mode_refuses_odd_tokens_and_enforces_roles(
    entra_host: HostProcess, identity_provider: TenantSimulator, tenant: str
) -> None:
    reader = identity_provider.issue_api_token(aoc_api(2), ["AOC.Reader"], name="rita@contoso.com")
    analyst = identity_provider.issue_api_token(aoc_api(1), ["AOC.Analyst"], name="ana@contoso.com")
    other_api = aoc_api(2, client_id="99999999-9999-4999-8999-999999999999", app_id_uri="api://other")

    def signed(**changes: Any) -> str:
        claims = {**_claims(reader), **changes}
        return identity_provider.app.signing_key.sign(claims)

    refusals = {
        "no token": _get(entra_host, "/api/events").status,
        "a function key is not a token here": _get(entra_host, "/api/events", KEY).status,
        "another API": _get(
            entra_host, "/api/events", _bearer(identity_provider.issue_api_token(other_api, ["AOC.Reader"]))
        ).status,
        # The pair the simulator used to mint: a v2.0 issuer with the App ID URI as audience.
        "v2.0 issuer, App ID URI": _get(
            entra_host, "/api/events", _bearer(signed(aud=API_APP_ID_URI))
        ).status,
        "v1.0 issuer, ver 2.0": _get(
            entra_host, "/api/events", _bearer(signed(iss=f"https://sts.windows.net/{tenant}/"))
        ).status,
        "roles not a list": _get(entra_host, "/api/events", _bearer(signed(roles="AOC.Admin"))).status,
        "iat in the future": _get(
            entra_host, "/api/events", _bearer(signed(iat=_claims(reader)["iat"] + 86400))
        ).status,
        "expired": _get(
            entra_host,
            "/api/events",
            _bearer(identity_provider.issue_api_token(aoc_api(2), ["AOC.Reader"], lifetime_seconds=-3600)),
        ).status,
        "no role": _get(
            entra_host, "/api/events", _bearer(identity_provider.issue_api_token(aoc_api(2), []))
        ).status,
        "tampered": _get(entra_host, "/api/events", _bearer(f"{reader[:-4]}AAAA")).status,
    }
    assert refusals == {
        "no token": 401,
        "a function key is not a token here": 401,
        "another API": 401,
        "v2.0 issuer, App ID URI": 401,
        "v1.0 issuer, ver 2.0": 401,
        "roles not a list": 403,
        "iat in the future": 401,
        "expired": 401,
        "no role": 403,
        "tampered": 401,
    }

    body = b'{"comment": "checked with the user"}'
    path = "/api/alerts/alert-api-2"
    assert _send_json(entra_host, "PATCH", path, body, _bearer(reader)).status == 403
    patched = _send_json(entra_host, "PATCH", path, body, _bearer(analyst))  # a v1.0 token
    assert patched.status == 200, patched.body
    assert patched.json()["comments"][-1]["by"] == "ana@contoso.com"


def test_writes_are_audited_and_the_audit_log_is_for_admins(keys_host: HostProcess, tmp_path: Path) -> None:
    body = json.dumps({"comment": "audit me"}).encode()
    headers = {**KEY, "Idempotency-Key": "audit-e2e-1"}
    assert _send_json(keys_host, "PATCH", "/api/alerts/alert-api-0", body, headers).status == 200
    found = _get(keys_host, "/api/audit?" + urllib.parse.urlencode({"target_id": "alert-api-0"}), KEY)
    assert found.status == 200, found.body
    records = [r for r in found.json()["items"] if r["after"].get("comment") == "audit me"]
    assert len(records) == 1
    record = records[0]
    assert record["action"] == "alert.update"
    assert record["auth"] == "key"
    assert record["before"]["status"] == "open"
    assert _get(keys_host, "/api/audit?colour=red", KEY).status == 400


def test_cors_allows_only_the_configured_origin(
    app_environment: dict[str, str], tenant: str, tmp_path: Path
) -> None:
    origin = "https://aoc.example.azurestaticapps.net"
    host = _host(app_environment, tenant, tmp_path, API_CORS_ORIGINS=origin)
    try:
        preflight = http_request(
            "OPTIONS",
            f"{host.base_url}/api/events",
            headers={"Origin": origin, "Access-Control-Request-Method": "GET"},
        )
        assert preflight.status == 204
        assert preflight.headers["Access-Control-Allow-Origin"] == origin
        assert "x-functions-key" in preflight.headers["Access-Control-Allow-Headers"]
        stranger = http_request(
            "OPTIONS",
            f"{host.base_url}/api/events",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
        )
        assert stranger.status == 403
        assert "Access-Control-Allow-Origin" not in stranger.headers

        allowed = _get(host, "/api/alerts/summary", {**KEY, "Origin": origin})
        assert allowed.status == 200
        assert allowed.headers["Access-Control-Allow-Origin"] == origin
        other = _get(host, "/api/alerts/summary", {**KEY, "Origin": "https://evil.example"})
        assert "Access-Control-Allow-Origin" not in other.headers
    finally:
        host.stop()


def test_the_host_serves_the_openapi_document_without_a_key(keys_host: HostProcess) -> None:
    response = _get(keys_host, "/api/openapi.json")
    assert response.status == 200
    document = response.json()
    assert document["openapi"] == "3.1.0"
    assert document == json.loads(json.dumps(openapi_json()))
