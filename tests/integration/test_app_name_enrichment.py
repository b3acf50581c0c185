"""Client applications named only by appId get their service principal's name from Graph (the tenant
simulator), 15 appIds a call, cached in Table Storage (Azurite); an app-only actor gets it as its display.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from devtools.simulator import SimulatorConfig, TenantSimulator
from shared.ingestion.enrichment import APP_ID_FILTER_LIMIT, DirectoryNameResolver
from shared.ingestion.normalize import normalize_record, refresh_summary
from shared.m365.auth import StaticTokenProvider
from shared.m365.http_client import ApiClient, new_http_client
from shared.platform.clients import get_clients
from tests.support.clock import ManualClock

GRAPH_SCOPE = "https://graph.microsoft.com/.default"


@pytest.fixture(scope="module")
def sim() -> Iterator[TenantSimulator]:
    now = time.time()
    config = SimulatorConfig(
        seed=29,
        events_per_day=200,
        epoch=dt.datetime.fromtimestamp(now, dt.UTC) - dt.timedelta(days=1),
        started_at_unix=now - 86400,
    )
    simulator = TenantSimulator(config).start()
    yield simulator
    simulator.stop()


@pytest.fixture
def resolver(sim: TenantSimulator, app_environment: dict[str, str]) -> Iterator[DirectoryNameResolver]:
    clients = get_clients()
    table_name = f"names{uuid.uuid4().hex[:10]}"
    clients.table_service.create_table(table_name)
    api = ApiClient(
        StaticTokenProvider(sim.issue_token("https://graph.microsoft.com")),
        http=new_http_client(),
        timeout=(5.0, 30.0),
        sleep=lambda _: None,
    )
    yield DirectoryNameResolver(
        api,
        sim.graph_base_url,
        GRAPH_SCOPE,
        clients.table_service.get_table_client(table_name),
        ManualClock(dt.datetime.now(dt.UTC)),
        3600,
    )
    api.close()
    clients.table_service.delete_table(table_name)


def _graph_calls(sim: TenantSimulator) -> list[dict[str, Any]]:
    return [entry for entry in sim.requests() if "/servicePrincipals" in entry["path"]]


def _app_only_mail_access(app_id: str, index: int) -> dict[str, Any]:
    """A Management MailItemsAccessed record by an application (UserType 5) that names only its appId."""
    return {
        "Id": str(uuid.UUID(int=index + 1)),
        "RecordType": 50,
        "CreationTime": "2026-11-10T09:00:00",
        "Operation": "MailItemsAccessed",
        "OrganizationId": "41463f53-8812-40f4-890f-865bf6e35190",
        "UserType": 5,
        "UserKey": app_id,
        "UserId": "megan.bowen@contoso.onmicrosoft.com",
        "Workload": "Exchange",
        "ResultStatus": "Succeeded",
        "ClientIPAddress": "20.190.128.10",
        "AppId": app_id,
        "ClientAppId": app_id,
        "MailboxGuid": "2e0f9b39-1f4c-4f40-9a0d-1c7e0b0f2a11",
        "MailboxOwnerUPN": "megan.bowen@contoso.onmicrosoft.com",
        "OperationProperties": [{"Name": "MailAccessType", "Value": "Bind"}],
    }


def test_app_only_actors_get_the_service_principal_name_by_app_id(
    sim: TenantSimulator, resolver: DirectoryNameResolver
) -> None:
    principals = sim.tenant.directory.service_principals
    known = {p.app_id.lower(): p.display_name for p in principals}
    unknown_app = "7a1c3f0e-0000-4000-8000-00000000beef"
    app_ids = [*known, unknown_app]
    documents = [
        normalize_record(
            "o365_management",
            _app_only_mail_access(app_id, index),
            tenant_id="t",
            ingested_at="2026-11-10T09:05:00Z",
        )
        for index, app_id in enumerate(app_ids * 2)  # each app twice: one lookup per appId
    ]
    assert all(d["actor"]["client_app"]["id"] for d in documents), "the normalizer keeps the appId"
    # Microsoft's first-party apps are named by the normalizer itself; the others need Graph.
    unnamed = {
        d["actor"]["client_app"]["id"].lower() for d in documents if d["actor"]["client_app"]["name"] is None
    }
    assert unknown_app in unnamed
    assert unnamed - {unknown_app}, "the simulated tenant has apps only enrichment can name"
    before = len(_graph_calls(sim))

    filled = resolver.enrich(documents)
    for document in documents:
        refresh_summary(document)

    calls = _graph_calls(sim)[before:]
    expected_calls = -(-len(unnamed) // APP_ID_FILTER_LIMIT)
    assert len(calls) == expected_calls
    assert filled == 2 * (len(unnamed) - 1)
    for document in documents:
        app_id = document["actor"]["client_app"]["id"].lower()
        name = document["actor"]["client_app"]["name"]
        if app_id == unknown_app:
            assert name is None
            continue
        if app_id in unnamed:
            assert name == known[app_id]
        assert name
        assert document["actor"]["display"] == name
        assert name in document["summary"]

    again = [
        normalize_record(
            "o365_management",
            _app_only_mail_access(app_id, 100 + i),
            tenant_id="t",
            ingested_at="2026-11-10T09:05:00Z",
        )
        for i, app_id in enumerate(app_ids)
    ]
    resolver.enrich(again)
    assert len(_graph_calls(sim)) == before + expected_calls, "names and misses are cached"
    assert all(
        d["actor"]["client_app"]["name"] == known[d["actor"]["client_app"]["id"].lower()]
        for d in again
        if d["actor"]["client_app"]["id"].lower() in unnamed - {unknown_app}
    )


def test_the_simulator_refuses_more_app_ids_than_graph_allows(sim: TenantSimulator) -> None:
    import httpx

    token = sim.issue_token("https://graph.microsoft.com")
    values = ",".join(f"'{uuid.UUID(int=i)}'" for i in range(APP_ID_FILTER_LIMIT + 1))
    response = httpx.get(
        f"{sim.graph_base_url}/v1.0/servicePrincipals",
        params={"$filter": f"appId in ({values})"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "Request_UnsupportedQuery"


def test_a_management_sign_in_names_the_application_signed_in_to(
    sim: TenantSimulator, resolver: DirectoryNameResolver
) -> None:
    """An STS logon names the application by its appId (Target[], ApplicationId): not a directory
    object id, so getByIds cannot name it; the appId lookup does, for the target and the client app."""
    custom = next(p for p in sim.tenant.directory.service_principals if p.display_name == "Contoso HR Sync")
    record = {
        "Id": "8a1c0f4e-1b2c-4d3e-9f40-5a6b7c8d9e0f",
        "RecordType": 15,
        "CreationTime": "2026-11-10T09:00:00",
        "Operation": "UserLoggedIn",
        "OrganizationId": "41463f53-8812-40f4-890f-865bf6e35190",
        "UserType": 0,
        "UserKey": "10037FFE8F2C3A11@contoso.onmicrosoft.com",
        "UserId": "megan.bowen@contoso.onmicrosoft.com",
        "Workload": "AzureActiveDirectory",
        "ResultStatus": "Success",
        "ClientIP": "203.0.113.9",
        "ObjectId": custom.app_id,
        "ApplicationId": custom.app_id,
        "Actor": [
            {"ID": "3f6c2a91-0000-4000-8000-000000000001", "Type": 0},
            {"ID": "megan.bowen@contoso.onmicrosoft.com", "Type": 5},
        ],
        "Target": [{"ID": custom.app_id, "Type": 0}],
    }
    document = normalize_record("o365_management", record, tenant_id="t", ingested_at="2026-11-10T09:05:00Z")
    assert document["targets"][0]["display"] is None
    assert custom.app_id in document["summary"]

    resolver.enrich([document])
    refresh_summary(document)

    assert document["targets"][0]["display"] == "Contoso HR Sync"
    assert document["actor"]["client_app"] == {"id": custom.app_id, "name": "Contoso HR Sync"}
    assert document["summary"] == "megan.bowen@contoso.onmicrosoft.com signed in to Contoso HR Sync"
