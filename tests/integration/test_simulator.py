"""The tenant simulator over HTTP: the real wire formats, faults, and ground-truth consistency."""

from __future__ import annotations

import datetime as dt
import http.client
import itertools
import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from devtools.simulator import SimulatorConfig, TenantSimulator
from tests.support.simulator_client import GRAPH_SCOPE, client_token, simulator_at

EPOCH = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
DAY = 86_400.0
MANAGE_SCOPE = "https://manage.office.com/.default"
GRAPH_APIS = {
    "entra_audit": ("auditLogs/directoryAudits", "activityDateTime"),
    "entra_signin": ("auditLogs/signIns", "createdDateTime"),
    "intune_audit": ("deviceManagement/auditEvents", "activityDateTime"),
}
CONTENT_TYPES = (
    "Audit.AzureActiveDirectory",
    "Audit.Exchange",
    "Audit.SharePoint",
    "Audit.General",
    "DLP.All",
)
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def graph_pages(
    session: requests.Session, url: str, params: dict[str, str] | None = None
) -> list[list[dict]]:
    pages: list[list[dict]] = []
    response = session.get(url, params=params, timeout=30)
    while True:
        assert response.status_code == 200, response.text
        body = response.json()
        pages.append(body["value"])
        link = body.get("@odata.nextLink")
        if not link:
            return pages
        response = session.get(link, timeout=30)


def management_listing(session: requests.Session, sim: TenantSimulator, content_type: str, start: dt.datetime,
                       end: dt.datetime) -> list[list[dict]]:  # fmt: skip
    tenant = sim.config.tenant_id
    url = f"{sim.base_url}/manage/api/v1.0/{tenant}/activity/feed/subscriptions/content"
    params = {
        "contentType": content_type,
        "startTime": start.strftime("%Y-%m-%dT%H:%M:%S"),
        "endTime": end.strftime("%Y-%m-%dT%H:%M:%S"),
        "PublisherIdentifier": tenant,
    }
    pages: list[list[dict]] = []
    response = session.get(url, params=params, timeout=30)
    while True:
        assert response.status_code == 200, response.text
        pages.append(response.json())
        next_uri = response.headers.get("NextPageUri")
        if not next_uri:
            return pages
        response = session.get(next_uri, params={"PublisherIdentifier": tenant}, timeout=30)


def session_for(bearer: str) -> requests.Session:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {bearer}"
    return session


@pytest.fixture(scope="module")
def sim() -> Iterator[TenantSimulator]:
    """Sim time is EPOCH + 4.5 days: every record of the day, and every content blob, is published."""
    simulator = simulator_at(EPOCH, 4.5 * DAY, malformed_rate=0.02)
    yield simulator
    simulator.stop()


@pytest.fixture(scope="module")
def graph(sim: TenantSimulator) -> requests.Session:
    return session_for(client_token(sim, GRAPH_SCOPE))


@pytest.fixture(scope="module")
def manage(sim: TenantSimulator) -> requests.Session:
    session = session_for(client_token(sim, MANAGE_SCOPE))
    tenant = sim.config.tenant_id
    for content_type in CONTENT_TYPES:
        response = session.post(
            f"{sim.base_url}/manage/api/v1.0/{tenant}/activity/feed/subscriptions/start",
            params={"contentType": content_type, "PublisherIdentifier": tenant},
            timeout=10,
        )
        already = response.status_code == 400 and response.json()["error"]["code"] == "AF20024"
        assert response.status_code == 200 or already, response.text
    return session


# ---------------------------------------------------------------------------------------------------
# Identity
# ---------------------------------------------------------------------------------------------------


def test_token_endpoint_and_401_without_a_token(sim: TenantSimulator) -> None:
    url = f"{sim.base_url}/graph/v1.0/auditLogs/directoryAudits"
    response = requests.post(
        f"{sim.base_url}/{sim.config.tenant_id}/oauth2/v2.0/token",
        data={
            "client_id": "aoc-app",
            "client_secret": "x",
            "grant_type": "client_credentials",
            "scope": GRAPH_SCOPE,
        },
        timeout=10,
    )
    body = response.json()
    assert response.status_code == 200
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3599
    assert body["ext_expires_in"] == 3599
    assert set(body) == {"token_type", "expires_in", "ext_expires_in", "access_token"}
    missing = requests.get(url, timeout=10)
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "InvalidAuthenticationToken"
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    assert requests.get(url, headers={"Authorization": "Bearer forged"}, timeout=10).status_code == 401
    assert requests.get(url, headers={"Authorization": f"Bearer {body['access_token']}"}, timeout=10).ok
    log = [e for e in sim.requests() if e["path"] == "/graph/v1.0/auditLogs/directoryAudits"][-3:]
    assert [(e["status"], e["authorized"]) for e in log] == [(401, False), (401, False), (200, True)]


CREDENTIALS = {"client_id": "a", "client_secret": "b", "grant_type": "client_credentials"}


@pytest.mark.parametrize(
    ("form", "status", "error"),
    [
        ({"client_id": "a", "grant_type": "client_credentials", "scope": GRAPH_SCOPE}, 401, "invalid_client"),
        ({**CREDENTIALS, "grant_type": "password", "scope": GRAPH_SCOPE}, 400, "unsupported_grant_type"),
        ({**CREDENTIALS, "scope": "User.Read"}, 400, "invalid_scope"),
        ({**CREDENTIALS, "scope": f"{GRAPH_SCOPE} {MANAGE_SCOPE}"}, 400, "invalid_scope"),
        ({**CREDENTIALS, "scope": "https://vault.azure.net/.default"}, 400, "invalid_resource"),
        (
            {"client_secret": "b", "grant_type": "client_credentials", "scope": GRAPH_SCOPE},
            400,
            "invalid_request",
        ),
    ],
)
def test_token_endpoint_errors(sim: TenantSimulator, form: dict[str, str], status: int, error: str) -> None:
    response = requests.post(
        f"{sim.base_url}/{sim.config.tenant_id}/oauth2/v2.0/token", data=form, timeout=10
    )
    assert response.status_code == status
    body = response.json()
    assert body["error"] == error
    assert body["error_description"].startswith("AADSTS")
    assert body["error_codes"]


def test_client_assertion_is_accepted(sim: TenantSimulator) -> None:
    form = {
        "client_id": "a",
        "grant_type": "client_credentials",
        "scope": MANAGE_SCOPE,
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": "eyJhbGciOiJSUzI1NiJ9.e30.c2ln",
    }
    response = requests.post(
        f"{sim.base_url}/{sim.config.tenant_id}/oauth2/v2.0/token", data=form, timeout=10
    )
    assert response.status_code == 200


def test_discovery_documents(sim: TenantSimulator) -> None:
    tenant = sim.config.tenant_id
    config = requests.get(f"{sim.base_url}/{tenant}/v2.0/.well-known/openid-configuration", timeout=10).json()
    assert config["token_endpoint"] == f"{sim.base_url}/{tenant}/oauth2/v2.0/token"
    assert config["authorization_endpoint"] == f"{sim.base_url}/{tenant}/oauth2/v2.0/authorize"
    instance = requests.get(
        f"{sim.base_url}/common/discovery/instance",
        params={
            "api-version": "1.1",
            "authorization_endpoint": f"{sim.base_url}/{tenant}/oauth2/v2.0/authorize",
        },
        timeout=10,
    ).json()
    assert (
        instance["tenant_discovery_endpoint"]
        == f"{sim.base_url}/{tenant}/v2.0/.well-known/openid-configuration"
    )


def test_msal_acquires_tokens_over_tls(tmp_path: Path) -> None:
    import msal

    from devtools.certs import ensure_local_certificates

    certificates = ensure_local_certificates(tmp_path / "certs")
    config = SimulatorConfig(epoch=EPOCH, started_at_unix=time.time() - DAY, events_per_day=50)
    with TenantSimulator(config, certificates=certificates) as tls_sim:
        assert tls_sim.base_url.startswith("https://127.0.0.1:")
        http_client = requests.Session()
        http_client.verify = str(certificates.ca_cert)
        http_client.trust_env = False  # REQUESTS_CA_BUNDLE would otherwise replace `verify`
        app = msal.ConfidentialClientApplication(
            "aoc-app",
            client_credential="s3cret",
            authority=tls_sim.authority,
            http_client=http_client,
            instance_discovery=False,
        )
        result = app.acquire_token_for_client(scopes=[GRAPH_SCOPE])
        assert result.get("token_type") == "Bearer", result
        response = http_client.get(
            f"{tls_sim.base_url}/graph/v1.0/auditLogs/signIns",
            headers={"Authorization": f"Bearer {result['access_token']}"},
            timeout=10,
        )
        assert response.status_code == 200
        assert response.json()["value"]


# ---------------------------------------------------------------------------------------------------
# Microsoft Graph
# ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("source", sorted(GRAPH_APIS))
def test_graph_paging_returns_every_visible_record_exactly_once(
    sim: TenantSimulator, graph: requests.Session, source: str
) -> None:
    path, field = GRAPH_APIS[source]
    start, end = (
        EPOCH.strftime("%Y-%m-%dT%H:%M:%SZ"),
        (EPOCH + dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    pages = graph_pages(
        graph,
        f"{sim.graph_base_url}/v1.0/{path}",
        {"$filter": f"{field} ge {start} and {field} lt {end}", "$top": "97"},
    )
    assert len(pages) > 2
    assert all(len(p) <= 97 for p in pages)
    ids = [r["id"] for page in pages for r in page if "id" in r]
    malformed = sum(1 for page in pages for r in page if "id" not in r)
    truth = sim.ground_truth()
    expected = sorted(i.split(":", 1)[1] for i in truth["ids"] if i.startswith(f"{source}:"))
    assert sorted(ids) == expected  # union of pages == the expected set, each record once
    assert malformed == truth["malformed_by_source"][source]


def test_graph_honours_the_availability_time() -> None:
    half_day = simulator_at(EPOCH, 0.5 * DAY, graph_max_delay_seconds=600)
    try:
        session = session_for(client_token(half_day))
        pages = graph_pages(
            session, f"{half_day.graph_base_url}/v1.0/auditLogs/directoryAudits", {"$top": "1000"}
        )
        now = half_day.now()
        seen = {r["id"]: r["activityDateTime"] for page in pages for r in page if "id" in r}
        assert seen
        assert len(seen) < half_day.ground_truth()["by_source"]["entra_audit"]
        stamps = [dt.datetime.fromisoformat(s.replace("Z", "+00:00")) for s in seen.values()]
        assert max(stamps) <= now
        # Everything older than the maximum propagation delay is visible; nothing from the future.
        settled = now - dt.timedelta(seconds=600 + 5)
        records = half_day.tenant.records
        must_see = {
            r.native_id
            for r in records
            if r.source == "entra_audit" and not r.malformed and r.event_us / 1e6 < settled.timestamp()
        }
        assert must_see <= set(seen)
    finally:
        half_day.stop()


def test_duplicate_records_across_page_boundaries() -> None:
    duplicating = simulator_at(EPOCH, 2 * DAY, duplicate_across_pages_rate=1.0)
    try:
        session = session_for(client_token(duplicating))
        pages = graph_pages(session, f"{duplicating.graph_base_url}/v1.0/auditLogs/signIns", {"$top": "50"})
        assert len(pages) > 3
        assert all(len(p) <= 50 for p in pages)
        for previous, page in itertools.pairwise(pages):
            assert page[0] == previous[-1]
        ids = [r["id"] for page in pages for r in page]
        assert len(ids) - len(set(ids)) == len(pages) - 1
        assert len(set(ids)) == duplicating.ground_truth()["by_source"]["entra_signin"]
    finally:
        duplicating.stop()


@pytest.mark.parametrize(
    ("source", "maximum"), [("entra_audit", 1000), ("entra_signin", 1000), ("intune_audit", 1000)]
)
def test_top_above_the_maximum_is_a_bad_request(
    sim: TenantSimulator, graph: requests.Session, source: str, maximum: int
) -> None:
    url = f"{sim.graph_base_url}/v1.0/{GRAPH_APIS[source][0]}"
    assert graph.get(url, params={"$top": str(maximum)}, timeout=30).status_code == 200
    response = graph.get(url, params={"$top": str(maximum + 1)}, timeout=30)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "BadRequest"
    bad_filter = graph.get(url, params={"$filter": "activityDateTime ge yesterday"}, timeout=30)
    assert bad_filter.status_code == 400


def test_get_by_ids_resolves_objects_referenced_by_id_only(
    sim: TenantSimulator, graph: requests.Session
) -> None:
    pages = graph_pages(graph, f"{sim.graph_base_url}/v1.0/auditLogs/directoryAudits", {"$top": "1000"})
    id_only = {
        r["initiatedBy"]["user"]["id"]
        for page in pages
        for r in page
        if r["initiatedBy"]["user"] and r["initiatedBy"]["user"]["displayName"] is None
    }
    apps = {
        r["initiatedBy"]["app"]["servicePrincipalId"]
        for page in pages
        for r in page
        if r["initiatedBy"]["app"]
    }
    assert id_only
    assert apps
    url = f"{sim.graph_base_url}/v1.0/directoryObjects/getByIds"
    ids = [*sorted(id_only), *sorted(apps), "00000000-0000-0000-0000-00000000ffff"]
    body = graph.post(
        url, json={"ids": ids, "types": ["user", "servicePrincipal", "group"]}, timeout=30
    ).json()
    by_id = {v["id"]: v for v in body["value"]}
    assert set(by_id) == id_only | apps  # the unknown id is left out
    for object_id in id_only:
        user = by_id[object_id]
        assert user["@odata.type"] == "#microsoft.graph.user"
        assert user["displayName"]
        assert user["userPrincipalName"]
    for object_id in apps:
        assert by_id[object_id]["@odata.type"] == "#microsoft.graph.servicePrincipal"
        assert by_id[object_id]["appId"]
    only_apps = graph.post(url, json={"ids": ids, "types": ["servicePrincipal"]}, timeout=30).json()["value"]
    assert {v["id"] for v in only_apps} == apps
    too_many = graph.post(url, json={"ids": [f"id-{i}" for i in range(1001)]}, timeout=30)
    assert too_many.status_code == 400
    text = json.dumps(graph.post(url, json={"ids": sorted(id_only)}, timeout=30).json(), ensure_ascii=False)
    assert any(name in text for name in ("Zoë Łukasz", "田中 太郎", "Søren Ødegård"))


def test_throttling_and_server_errors_at_the_configured_rates() -> None:
    faulty = simulator_at(
        EPOCH,
        2 * DAY,
        throttle_rate=0.3,
        throttle_without_retry_after=0.5,
        server_error_rate=0.1,
        retry_after_seconds=2,
    )
    try:
        tenant = faulty.config.tenant_id
        # The token endpoint and the control endpoints are never faulted.
        for _ in range(20):
            client_token(faulty)
        assert all(requests.get(f"{faulty.base_url}/_sim/health", timeout=10).ok for _ in range(20))
        graph = session_for(client_token(faulty))
        responses = [
            graph.get(
                f"{faulty.graph_base_url}/v1.0/auditLogs/directoryAudits", params={"$top": "1"}, timeout=10
            )
            for _ in range(400)
        ]
        throttled = [r for r in responses if r.status_code == 429]
        failed = [r for r in responses if r.status_code >= 500]
        assert 0.22 < len(throttled) / 400 < 0.38
        assert 0.05 < len(failed) / 400 < 0.16
        assert {r.status_code for r in failed} <= {500, 503, 504}
        assert all(r.json()["error"]["code"] == "TooManyRequests" for r in throttled)
        with_header = [r for r in throttled if "Retry-After" in r.headers]
        assert 0.3 < len(with_header) / len(throttled) < 0.7
        assert {r.headers["Retry-After"] for r in with_header} == {"2"}
        manage = session_for(client_token(faulty, MANAGE_SCOPE))
        listing = [
            manage.get(
                f"{faulty.base_url}/manage/api/v1.0/{tenant}/activity/feed/subscriptions/list",
                params={"PublisherIdentifier": tenant},
                timeout=10,
            )
            for _ in range(300)
        ]
        af429 = [r for r in listing if r.status_code == 403]
        assert 0.22 < len(af429) / 300 < 0.38
        for response in af429:
            error = response.json()["error"]
            assert error["code"] == "AF429"
            assert error["message"].startswith("Too many requests. Method=GET")
        af50000 = [r for r in listing if r.status_code == 500]
        assert af50000
        assert all(r.json()["error"]["code"] == "AF50000" for r in af50000)
        statuses = [e["status"] for e in faulty.requests() if e["api"] == "graph"]
        assert statuses == [r.status_code for r in responses]
    finally:
        faulty.stop()


# ---------------------------------------------------------------------------------------------------
# Office 365 Management Activity API
# ---------------------------------------------------------------------------------------------------


def test_subscriptions(sim: TenantSimulator) -> None:
    session = session_for(client_token(sim, MANAGE_SCOPE))
    tenant = sim.config.tenant_id
    base = f"{sim.base_url}/manage/api/v1.0/{tenant}/activity/feed/subscriptions"
    params = {"contentType": "Audit.General", "PublisherIdentifier": tenant}
    # The module's `manage` fixture may already have started Audit.General; stop it for a clean slate.
    session.post(f"{base}/stop", params=params, timeout=10)
    content = session.get(f"{base}/content", params=params, timeout=10)
    assert content.status_code == 400
    assert content.json() == {
        "error": {"code": "AF20022", "message": "No subscription found for the specified content type"}
    }
    started = session.post(f"{base}/start", params=params, timeout=10)
    assert started.status_code == 200
    assert started.json() == {"contentType": "Audit.General", "status": "enabled", "webhook": None}
    again = session.post(f"{base}/start", params=params, timeout=10)
    assert again.status_code == 400
    assert again.json()["error"]["code"] == "AF20024"
    listed = session.get(f"{base}/list", params={"PublisherIdentifier": tenant}, timeout=10).json()
    assert {"contentType": "Audit.General", "status": "enabled", "webhook": None} in listed
    assert session.get(f"{base}/content", params=params, timeout=10).status_code == 200
    invalid = session.post(f"{base}/start", params={"contentType": "Audit.Teams"}, timeout=10)
    assert invalid.status_code == 400
    assert invalid.json()["error"]["code"] == "AF20020"
    wrong_tenant = session.get(
        f"{sim.base_url}/manage/api/v1.0/11111111-1111-1111-1111-111111111111/activity/feed/subscriptions/list",
        timeout=10,
    )
    assert wrong_tenant.status_code == 400
    assert wrong_tenant.json()["error"]["code"] == "AF20010"


@pytest.mark.parametrize(
    "window",
    [
        {"startTime": "2026-03-02T00:00:00", "endTime": "2026-03-03T00:00:01"},  # over 24 hours
        {"startTime": "2026-03-02T00:00:00"},  # only one bound
        {"endTime": "2026-03-02T00:00:00"},
        {"startTime": "2026-02-25T00:00:00", "endTime": "2026-02-25T12:00:00"},  # more than 7 days ago
        {"startTime": "2026-03-02T12:00:00", "endTime": "2026-03-02T11:00:00"},  # ends before it starts
        {"startTime": "yesterday", "endTime": "today"},
    ],
)
def test_content_listing_window_rules(sim: TenantSimulator, manage: requests.Session, window: dict) -> None:
    tenant = sim.config.tenant_id
    response = manage.get(
        f"{sim.base_url}/manage/api/v1.0/{tenant}/activity/feed/subscriptions/content",
        params={"contentType": "Audit.Exchange", "PublisherIdentifier": tenant, **window},
        timeout=10,
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "AF20030"
    assert "less than or equal to 24 hours apart" in error["message"]


def test_an_empty_window_lists_nothing(sim: TenantSimulator, manage: requests.Session) -> None:
    tenant = sim.config.tenant_id
    response = manage.get(
        f"{sim.base_url}/manage/api/v1.0/{tenant}/activity/feed/subscriptions/content",
        params={"contentType": "Audit.Exchange", "PublisherIdentifier": tenant,
                "startTime": "2026-03-02T12:00:00", "endTime": "2026-03-02T12:00:00"},
        timeout=10,
    )  # fmt: skip
    assert response.status_code == 200
    assert response.json() == []
    assert "NextPageUri" not in response.headers


def test_content_listing_pages_and_blob_download(sim: TenantSimulator, manage: requests.Session) -> None:
    start = EPOCH + dt.timedelta(hours=6)
    pages = management_listing(manage, sim, "Audit.SharePoint", start, start + dt.timedelta(hours=24))
    assert len(pages) > 1
    assert all(len(p) <= 50 for p in pages)
    assert len(pages[0]) == 50
    blobs = [b for page in pages for b in page]
    assert len({b["contentId"] for b in blobs}) == len(blobs)
    created = [b["contentCreated"] for b in blobs]
    assert created == sorted(created)
    assert all(start.strftime("%Y-%m-%dT%H:%M:%S") <= c[:19] < "2026-03-02T06:00:00" for c in created)
    first = blobs[0]
    assert set(first) == {"contentType", "contentId", "contentUri", "contentCreated", "contentExpiration"}
    expiration = dt.datetime.fromisoformat(first["contentExpiration"].replace("Z", "+00:00"))
    assert expiration - dt.datetime.fromisoformat(
        first["contentCreated"].replace("Z", "+00:00")
    ) == dt.timedelta(days=7)
    tenant = sim.config.tenant_id
    records = manage.get(first["contentUri"], params={"PublisherIdentifier": tenant}, timeout=10).json()
    assert isinstance(records, list)
    assert records
    assert all(
        r.get("OrganizationId") == tenant and r["Workload"] in ("SharePoint", "OneDrive") for r in records
    )
    unknown = manage.get(f"{first['contentUri']}x", params={"PublisherIdentifier": tenant}, timeout=10)
    assert unknown.status_code == 400
    assert unknown.json()["error"]["code"] == "AF20050"
    # NextPageUri carries no PublisherIdentifier (the caller adds it); every call above sent one.
    listing_calls = [e for e in sim.requests() if e["path"].endswith("/subscriptions/content")]
    assert listing_calls
    assert all(e["has_publisher_identifier"] for e in listing_calls[-len(pages) :])


def test_expired_content_is_af20051() -> None:
    late = simulator_at(EPOCH, 9 * DAY, management_max_delay_seconds=3600)
    try:
        session = session_for(client_token(late, MANAGE_SCOPE))
        now_us = int(late.now().timestamp() * 1e6)
        expired = next(b for b in late.tenant.blob_by_id.values() if b.expires_us < now_us)
        tenant = late.config.tenant_id
        url = f"{late.base_url}/manage/api/v1.0/{tenant}/activity/feed/audit/{expired.content_id}"
        response = session.get(url, params={"PublisherIdentifier": tenant}, timeout=10)
        assert response.status_code == 400
        error = response.json()["error"]
        assert error["code"] == "AF20051"
        assert error["message"] == (
            f"Content requested with the key {expired.content_id} has already expired. "
            "Content older than 7 days cannot be retrieved."
        )
        missing = session.get(url, timeout=10)
        assert [e["has_publisher_identifier"] for e in late.requests()[-2:]] == [True, False]
        assert missing.status_code == 400
    finally:
        late.stop()


# ---------------------------------------------------------------------------------------------------
# Ground truth, request log, control endpoints, HTTP details, CLI
# ---------------------------------------------------------------------------------------------------


def test_everything_fetchable_equals_the_ground_truth(
    sim: TenantSimulator, graph: requests.Session, manage: requests.Session
) -> None:
    assert sim.now() > EPOCH + dt.timedelta(days=4)
    fetched: set[str] = set()
    malformed = 0
    for source, (path, _) in GRAPH_APIS.items():
        for page in graph_pages(graph, f"{sim.graph_base_url}/v1.0/{path}", {"$top": "1000"}):
            for record in page:
                if "id" in record:
                    fetched.add(f"{source}:{record['id']}")
                else:
                    malformed += 1
    tenant = sim.config.tenant_id
    for content_type in CONTENT_TYPES:
        for day in range(5):
            start = EPOCH + dt.timedelta(days=day)
            for page in management_listing(manage, sim, content_type, start, start + dt.timedelta(days=1)):
                for blob in page:
                    response = manage.get(
                        blob["contentUri"], params={"PublisherIdentifier": tenant}, timeout=10
                    )
                    assert response.status_code == 200
                    for record in response.json():
                        if "Id" in record:
                            fetched.add(f"o365:{record['Id']}")
                        else:
                            malformed += 1
    truth = sim.ground_truth()
    assert sorted(fetched) == truth["ids"]
    assert malformed == truth["malformed"] > 0
    served = requests.get(f"{sim.base_url}/_sim/ground-truth", timeout=30).json()
    assert served == truth


def test_request_log_and_control_endpoints(sim: TenantSimulator, graph: requests.Session) -> None:
    sent_at = time.time()
    graph.get(f"{sim.graph_base_url}/v1.0/auditLogs/signIns", params={"$top": "3"}, timeout=10)
    answered_at = time.time()
    log = requests.get(f"{sim.base_url}/_sim/requests", timeout=10).json()
    entry = log[-1]
    assert entry["method"] == "GET"
    assert entry["path"] == "/graph/v1.0/auditLogs/signIns"
    assert entry["query"] == {"$top": "3"}
    assert entry["status"] == 200
    assert entry["authorized"] is True
    assert set(entry) >= {"sim_time", "real_time", "has_publisher_identifier"}
    assert sent_at <= entry["real_time"] <= answered_at  # stamped while it was served (order, not speed)
    assert entry["sim_time"].startswith("2026-03-05")
    assert not any(e["path"].startswith("/_sim") for e in log)  # control calls are not logged
    assert sim.requests()[: len(log)] == log
    management = [e for e in log if e["api"] == "management"]
    assert management
    assert all(isinstance(e["has_publisher_identifier"], bool) for e in management)
    config = requests.get(f"{sim.base_url}/_sim/config", timeout=10).json()
    assert config["seed"] == 11
    assert config["tenant_id"] == sim.config.tenant_id
    assert config["epoch"] == "2026-03-01T00:00:00.000Z"
    assert config["base_url"] == sim.base_url
    health = requests.get(f"{sim.base_url}/_sim/health", timeout=10).json()
    assert health["status"] == "ok"


def test_http11_keep_alive_with_content_length_on_every_response(sim: TenantSimulator) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", int(sim.base_url.rsplit(":", 1)[1]), timeout=10)
    try:
        statuses = []
        sockets = set()
        for method, path in (
            ("GET", "/_sim/health"),
            ("GET", "/graph/v1.0/auditLogs/signIns"),  # 401
            ("GET", "/nowhere"),  # 404
            ("POST", f"/manage/api/v1.0/{sim.config.tenant_id}/activity/feed/subscriptions/stop"),  # 401
            ("GET", "/_sim/health"),
        ):
            connection.request(method, path)
            response = connection.getresponse()
            response.read()
            assert response.version == 11
            assert response.getheader("Content-Length") is not None
            statuses.append(response.status)
            assert not response.will_close
            sockets.add(id(connection.sock))
        assert statuses == [200, 401, 404, 401, 200]
        assert len(sockets) == 1  # one TCP connection served every request
    finally:
        connection.close()


def test_a_client_that_vanishes_mid_request_does_not_hurt_the_server(sim: TenantSimulator) -> None:
    port = int(sim.base_url.rsplit(":", 1)[1])
    for partial in (b"GET /graph/v1.0/auditLogs/signIns HTTP/1.1\r\nHost: x\r\n", b"POST /x HTTP/1.1\r\n"
                    b"Content-Length: 100\r\n\r\n{", b""):  # fmt: skip
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            raw.sendall(partial)
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # reset on close
    assert requests.get(f"{sim.base_url}/_sim/health", timeout=10).json()["status"] == "ok"


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_cli_prints_ready_and_stops_on_signals(stop_signal: signal.Signals) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "devtools.simulator", "--port", "0", "--seed", "2", "--events-per-day", "100",
         "--speed", "1000", "--epoch", "2026-03-01T00:00:00Z", "--throttle-rate", "0.1"],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    try:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], 30)
        assert ready, "the simulator did not print its ready line"
        line = process.stdout.readline().decode().strip()
        assert line.startswith("tenant simulator ready on http://127.0.0.1:")
        base_url = line.rsplit(" ", 1)[1]
        config = requests.get(f"{base_url}/_sim/config", timeout=10).json()
        assert (config["seed"], config["events_per_day"], config["speed"]) == (2, 100, 1000.0)
        assert config["throttle_rate"] == 0.1
        assert config["epoch"] == "2026-03-01T00:00:00.000Z"
        assert requests.get(f"{base_url}/_sim/health", timeout=10).ok
        process.send_signal(stop_signal)
        assert process.wait(timeout=15) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=5)
