"""infra/scripts/console_app_registrations.py against an in-memory Microsoft Graph (httpx.MockTransport).

The stand-in keeps applications and service principals the way Graph does for what the script uses:
`$filter=displayName eq '...'`, `applications(appId='...')`, PATCH replacing the properties it names, and
Graph's refusal of a pre-authorization that names a scope the application does not expose yet.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import unquote

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "infra" / "scripts" / "console_app_registrations.py"
SITE = "https://nice-sea-0a1b2c3d4.5.azurestaticapps.net"
TOKEN = "eyJ.fake-graph-token.sig"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("console_app_registrations", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["console_app_registrations"] = module
    spec.loader.exec_module(module)
    return module


reg = _load()


class FakeGraph:
    def __init__(self) -> None:
        self.applications: dict[str, dict[str, Any]] = {}
        self.service_principals: set[str] = set()
        self.requests: list[tuple[str, str, Any]] = []
        self.fail_next: list[httpx.Response] = []

    # -- helpers for tests --
    def add_application(self, display_name: str, **properties: Any) -> dict[str, Any]:
        app: dict[str, Any] = {
            "id": str(uuid.uuid4()),
            "appId": str(uuid.uuid4()),
            "displayName": display_name,
            "identifierUris": [],
            "api": {
                "requestedAccessTokenVersion": None,
                "oauth2PermissionScopes": [],
                "preAuthorizedApplications": [],
                "knownClientApplications": [],
            },
            "appRoles": [],
            "spa": {"redirectUris": []},
            "requiredResourceAccess": [],
            "signInAudience": "AzureADMyOrg",
        }
        app.update(properties)
        self.applications[app["id"]] = app
        return app

    def by_name(self, name: str) -> dict[str, Any]:
        (app,) = [a for a in self.applications.values() if a["displayName"] == name]
        return app

    @property
    def writes(self) -> list[tuple[str, str, Any]]:
        return [r for r in self.requests if r[0] != "GET"]

    # -- the transport --
    def handler(self, request: httpx.Request) -> httpx.Response:
        assert request.headers["Authorization"] == f"Bearer {TOKEN}"
        assert request.extensions["timeout"]["read"] is not None
        body: Any = json.loads(request.content) if request.content else None
        path = unquote(request.url.raw_path.decode())
        self.requests.append((request.method, path, body))
        if self.fail_next:
            return self.fail_next.pop(0)
        assert path.startswith("/v1.0/"), path
        path = path.removeprefix("/v1.0")
        route, _, query = path.partition("?")
        if request.method == "GET" and route == "/applications":
            name = query.split("displayName eq '")[1].split("'&")[0].replace("''", "'")
            return httpx.Response(
                200, json={"value": [a for a in self.applications.values() if a["displayName"] == name]}
            )
        if request.method == "GET" and route.startswith("/applications(appId='"):
            app_id = route.split("'")[1]
            found = [a for a in self.applications.values() if a["appId"] == app_id]
            return httpx.Response(200, json=found[0]) if found else self._not_found()
        if request.method == "GET" and route.startswith("/applications/"):
            app = self.applications.get(route.split("/")[2])
            return httpx.Response(200, json=app) if app else self._not_found()
        if request.method == "POST" and route == "/applications":
            return httpx.Response(201, json=self.add_application(body["displayName"]))
        if request.method == "PATCH" and route.startswith("/applications/"):
            app = self.applications[route.split("/")[2]]
            api = body.get("api")
            if api is not None:
                known = {s["id"] for s in app["api"]["oauth2PermissionScopes"]}
                for entry in api.get("preAuthorizedApplications") or []:
                    if not set(entry["delegatedPermissionIds"]) <= known:
                        return httpx.Response(
                            400, json={"error": {"code": "InvalidValue", "message": "unknown permission id"}}
                        )
            app.update(json.loads(json.dumps(body)))
            return httpx.Response(204)
        if request.method == "GET" and route.startswith("/servicePrincipals(appId='"):
            app_id = route.split("'")[1]
            return (
                httpx.Response(200, json={"id": "sp"})
                if app_id in self.service_principals
                else self._not_found()
            )
        if request.method == "POST" and route == "/servicePrincipals":
            self.service_principals.add(body["appId"])
            return httpx.Response(201, json={"id": "sp", "appId": body["appId"]})
        raise AssertionError(f"unexpected {request.method} {path}")

    @staticmethod
    def _not_found() -> httpx.Response:
        return httpx.Response(
            404, json={"error": {"code": "Request_ResourceNotFound", "message": "not found"}}
        )


@pytest.fixture
def fake() -> FakeGraph:
    return FakeGraph()


def client(fake: FakeGraph, sleeps: list[float] | None = None) -> Any:
    return reg.Graph(
        "https://graph.microsoft.com",
        TOKEN,
        transport=httpx.MockTransport(fake.handler),
        sleep=(sleeps.append if sleeps is not None else lambda seconds: None),
    )


URIS = [f"{SITE}/redirect.html", reg.LOCAL_REDIRECT_URI]


def test_a_fresh_tenant_gets_both_registrations_wired_together(fake: FakeGraph) -> None:
    outcome = reg.register(client(fake), redirect_uris=URIS)

    api = fake.by_name(reg.DEFAULT_API_NAME)
    spa = fake.by_name(reg.DEFAULT_SPA_NAME)
    assert api["identifierUris"] == [f"api://{api['appId']}"]
    assert api["api"]["requestedAccessTokenVersion"] == 2
    (scope,) = api["api"]["oauth2PermissionScopes"]
    assert scope["value"] == "access_as_user"
    assert scope["isEnabled"]
    assert scope["type"] == "User"
    roles = {role["value"]: role for role in api["appRoles"]}
    assert set(roles) == {"AOC.Reader", "AOC.Analyst", "AOC.Admin", "AOC.Privacy"}
    assert all(role["allowedMemberTypes"] == ["User", "Application"] for role in roles.values())
    assert len({role["id"] for role in roles.values()}) == 4
    assert api["api"]["preAuthorizedApplications"] == [
        {"appId": spa["appId"], "delegatedPermissionIds": [scope["id"]]}
    ]
    assert spa["spa"]["redirectUris"] == URIS
    assert spa["requiredResourceAccess"] == [
        {"resourceAppId": api["appId"], "resourceAccess": [{"id": scope["id"], "type": "Scope"}]}
    ]
    assert fake.service_principals == {api["appId"], spa["appId"]}
    assert outcome.azd_settings() == {
        "API_AUTH_MODE": "entra",
        "API_AUDIENCE": f"api://{api['appId']}",
        "API_CLIENT_ID": api["appId"],
        "CONSOLE_CLIENT_ID": spa["appId"],
    }


def test_the_roles_are_the_ones_the_api_checks() -> None:
    from shared.api.auth import Role

    assert set(reg.ROLE_TEXT) == {role.value for role in Role}


def test_a_second_run_only_reads(fake: FakeGraph) -> None:
    reg.register(client(fake), redirect_uris=URIS)
    before = json.loads(json.dumps(fake.applications))
    fake.requests.clear()

    outcome = reg.register(client(fake), redirect_uris=URIS)

    assert fake.writes == []
    assert outcome.report.changes == []
    assert fake.applications == before


def test_existing_definitions_and_ids_are_kept_and_only_the_missing_added(fake: FakeGraph) -> None:
    scope_id, reader_id = str(uuid.uuid4()), str(uuid.uuid4())
    other_client = str(uuid.uuid4())
    api = fake.add_application(
        "AOC API (prod)",
        identifierUris=["api://aoc-functions"],
        api={
            "requestedAccessTokenVersion": None,
            "oauth2PermissionScopes": [
                {"id": scope_id, "value": "access_as_user", "isEnabled": True, "type": "Admin"},
                {"id": str(uuid.uuid4()), "value": "other", "isEnabled": True, "type": "User"},
            ],
            "preAuthorizedApplications": [{"appId": other_client, "delegatedPermissionIds": [scope_id]}],
        },
        appRoles=[
            {"id": reader_id, "value": "AOC.Reader", "allowedMemberTypes": ["User"], "isEnabled": True}
        ],
    )
    spa = fake.add_application("Console", spa={"redirectUris": ["https://old.example/redirect.html"]})

    outcome = reg.register(
        client(fake),
        redirect_uris=[f"{SITE}/redirect.html"],
        api_app_id=api["appId"],
        spa_app_id=spa["appId"],
        app_id_uri="api://aoc-functions",
    )

    api, spa = fake.applications[api["id"]], fake.applications[spa["id"]]
    assert api["identifierUris"] == ["api://aoc-functions"]
    assert api["api"]["requestedAccessTokenVersion"] is None, "an API that exposes scopes keeps its version"
    assert next(s["id"] for s in api["api"]["oauth2PermissionScopes"]) == scope_id
    assert len(api["api"]["oauth2PermissionScopes"]) == 2
    roles = {role["value"]: role["id"] for role in api["appRoles"]}
    assert roles["AOC.Reader"] == reader_id
    assert len(roles) == 4
    assert api["api"]["preAuthorizedApplications"] == [
        {"appId": other_client, "delegatedPermissionIds": [scope_id]},
        {"appId": spa["appId"], "delegatedPermissionIds": [scope_id]},
    ]
    assert spa["spa"]["redirectUris"] == ["https://old.example/redirect.html", f"{SITE}/redirect.html"]
    assert outcome.azd_settings()["API_AUDIENCE"] == "api://aoc-functions"
    assert len(fake.applications) == 2, "nothing was created"


def test_a_disabled_scope_is_enabled_again_with_its_id(fake: FakeGraph) -> None:
    scope_id = str(uuid.uuid4())
    fake.add_application(
        reg.DEFAULT_API_NAME,
        api={
            "requestedAccessTokenVersion": 2,
            "oauth2PermissionScopes": [
                {"id": scope_id, "value": "access_as_user", "isEnabled": False, "type": "User"}
            ],
        },
    )
    reg.register(client(fake), redirect_uris=URIS)
    (scope,) = fake.by_name(reg.DEFAULT_API_NAME)["api"]["oauth2PermissionScopes"]
    assert scope == {"id": scope_id, "value": "access_as_user", "isEnabled": True, "type": "User"}


def test_the_pre_authorization_is_a_second_write_after_the_scope_exists(fake: FakeGraph) -> None:
    reg.register(client(fake), redirect_uris=URIS)
    api_id = fake.by_name(reg.DEFAULT_API_NAME)["id"]
    api_patches = [body for method, path, body in fake.writes if method == "PATCH" and path.endswith(api_id)]
    assert len(api_patches) == 2
    assert "oauth2PermissionScopes" in api_patches[0]["api"]
    assert api_patches[0]["api"].get("preAuthorizedApplications") in (None, [])
    assert api_patches[1]["api"]["preAuthorizedApplications"]


def test_a_dry_run_reads_and_writes_nothing(fake: FakeGraph) -> None:
    outcome = reg.register(client(fake), redirect_uris=URIS, dry_run=True)
    assert fake.writes == []
    assert fake.applications == {}
    assert any("create the API app registration" in change for change in outcome.report.changes)
    assert all(change.startswith("(dry run)") for change in outcome.report.changes)

    fake.add_application(reg.DEFAULT_API_NAME)
    fake.add_application(reg.DEFAULT_SPA_NAME)
    fake.requests.clear()
    outcome = reg.register(client(fake), redirect_uris=URIS, dry_run=True)
    assert fake.writes == []
    assert any("scope access_as_user" in change for change in outcome.report.changes)


def test_two_applications_with_the_name_is_an_error_not_a_guess(fake: FakeGraph) -> None:
    fake.add_application(reg.DEFAULT_SPA_NAME)
    fake.add_application(reg.DEFAULT_SPA_NAME)
    with pytest.raises(reg.RegistrationError, match="--spa-app-id"):
        reg.register(client(fake), redirect_uris=URIS)
    assert fake.writes[:1] == [("POST", "/v1.0/applications", fake.writes[0][2])]  # the API only


def test_a_name_with_a_quote_is_escaped_for_odata(fake: FakeGraph) -> None:
    reg.register(client(fake), redirect_uris=URIS, api_name="O'Brien API")
    assert fake.by_name("O'Brien API")["appRoles"]
    assert any("displayName eq 'O''Brien API'" in path for _, path, _ in fake.requests)


def test_a_refusal_names_graphs_error_and_the_roles_needed_never_the_token(fake: FakeGraph) -> None:
    fake.fail_next.append(
        httpx.Response(
            403, json={"error": {"code": "Authorization_RequestDenied", "message": "Insufficient"}}
        )
    )
    with pytest.raises(reg.RegistrationError) as raised:
        reg.register(client(fake), redirect_uris=URIS)
    message = str(raised.value)
    assert "403 Authorization_RequestDenied: Insufficient" in message
    assert "Application Administrator" in message
    assert TOKEN not in message


def test_throttling_waits_as_told_and_a_fresh_object_is_read_again(fake: FakeGraph) -> None:
    sleeps: list[float] = []
    fake.fail_next.append(httpx.Response(429, headers={"Retry-After": "7"}))
    reg.register(client(fake, sleeps), redirect_uris=URIS)
    assert sleeps == [7.0]
    assert fake.by_name(reg.DEFAULT_API_NAME)["appRoles"]


def test_an_unknown_app_id_is_an_error(fake: FakeGraph) -> None:
    with pytest.raises(reg.RegistrationError, match="no application with appId"):
        reg.register(client(fake), redirect_uris=URIS, api_app_id=str(uuid.uuid4()))
    with pytest.raises(reg.RegistrationError, match="GUID"):
        reg.register(client(fake), redirect_uris=URIS, api_app_id="x' or 1 eq 1")
    assert fake.writes == []


@pytest.mark.parametrize(
    "url",
    [
        "http://site.example",
        "https://site.example/app",
        "https://site.example?x=1",
        "https://site.example#frag",
        "javascript:alert(1)",
        "site.example",
    ],
)
def test_the_console_url_must_be_an_https_origin(url: str) -> None:
    with pytest.raises(reg.RegistrationError, match="https origin"):
        reg.redirect_uris_for(url, local=False)


def test_redirect_uris() -> None:
    # Sign-in answers at /redirect.html; sign-out returns to / (Entra wants it registered too).
    assert reg.redirect_uris_for(SITE + "/", local=False) == [f"{SITE}/redirect.html", f"{SITE}/"]
    assert reg.redirect_uris_for(None, local=True) == [
        "http://127.0.0.1:7071/redirect.html",
        "http://127.0.0.1:7071/",
    ]
    with pytest.raises(reg.RegistrationError, match="no redirect URI"):
        reg.redirect_uris_for(None, local=False)


def test_main_prints_the_azd_settings(
    fake: FakeGraph, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    tokens: list[str] = []

    def token(resource: str) -> str:
        tokens.append(resource)
        return TOKEN

    real_graph = reg.Graph
    monkeypatch.setattr(reg, "azure_cli_token", token)
    monkeypatch.setattr(
        reg,
        "Graph",
        lambda base, tok: real_graph(
            base, tok, transport=httpx.MockTransport(fake.handler), sleep=lambda s: None
        ),
    )
    monkeypatch.delenv("M365_CLOUD", raising=False)
    assert reg.main(["--console-url", SITE, "--cloud", "dod"]) == 0
    out = capsys.readouterr().out
    spa = fake.by_name(reg.DEFAULT_SPA_NAME)
    assert f"azd env set CONSOLE_CLIENT_ID {spa['appId']}" in out
    assert "azd env set API_AUTH_MODE entra" in out
    assert TOKEN not in out
    assert tokens == ["https://dod-graph.microsoft.us"]
    assert fake.requests[0][1].startswith("/v1.0/applications?")

    assert reg.main(["--local", "--cloud", "mars"]) == 1
    assert "unknown cloud" in capsys.readouterr().err


def test_a_service_principal_for_an_application_graph_does_not_know_yet_is_retried(fake: FakeGraph) -> None:
    api = fake.add_application(reg.DEFAULT_API_NAME)
    app = reg.Application.model_validate(api)
    sleeps: list[float] = []
    graph = client(fake, sleeps)
    fake.fail_next.extend(
        [
            fake._not_found(),  # GET: no service principal yet
            httpx.Response(400, json={"error": {"code": "Request_BadRequest", "message": "no such appId"}}),
        ]
    )
    reg.ensure_service_principal(graph, reg.Report(), app, "API")
    assert fake.service_principals == {api["appId"]}
    assert sleeps == [reg.REPLICATION_DELAY_SECONDS]
