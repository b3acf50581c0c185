"""Which credential reaches Azure DevOps: DEVOPS_AUTH_MODE alone decides, never M365_AUTH_MODE.

`token` asks the app's managed identity (the App Service identity endpoint, served here on 127.0.0.1)
for a token, even when Microsoft 365 is reached with an app registration; `pat` sends the PAT, and an
unresolved Key Vault reference is never sent as one.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from shared.platform.settings import AppSettings
from shared.probe.devops import build_devops_client
from shared.probe.scopes import PipelineTarget

IDENTITY_CLIENT_ID = "0f0f0f0f-1111-2222-3333-444444444444"
DEVOPS_RESOURCE = "499b84ac-1321-427f-aa17-267ca6975798"
IDENTITY_HEADER = "local-identity-header"
TARGET = PipelineTarget(organization="contoso", project="M365Config", pipeline_id=7)


@dataclass
class Recorder:
    """A local HTTP endpoint that records each request and answers from `answer`."""

    answer: Any
    requests: list[dict[str, Any]] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"


def _serve(recorder: Recorder) -> Iterator[Recorder]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            seen = {"method": self.command, "path": self.path, "headers": dict(self.headers), "body": body}
            recorder.requests.append(seen)
            status, payload = recorder.answer(seen)
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _handle

    recorder.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=recorder.server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield recorder
    recorder.server.shutdown()
    recorder.server.server_close()


@pytest.fixture(autouse=True)
def isolated_settings(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only what each test passes: no local.settings.json, no DEVOPS_* from the environment."""
    monkeypatch.setenv("AOC_LOCAL_SETTINGS_FILE", str(tmp_path / "absent.json"))
    for name in ("DEVOPS_AUTH_MODE", "DEVOPS_PAT", "DEVOPS_TOKEN_SCOPE", "AZURE_CLIENT_ID"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def identity_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[Recorder]:
    """The App Service managed identity endpoint (IDENTITY_ENDPOINT / IDENTITY_HEADER)."""

    def answer(request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        resource = parse_qs(urlsplit(request["path"]).query)["resource"][0]
        expires_on = str(int(time.time()) + 3600)
        token = {"access_token": "mi-token-for-devops", "expires_on": expires_on, "resource": resource}
        return 200, {**token, "token_type": "Bearer"}

    for name in ("MSI_ENDPOINT", "MSI_SECRET", "IMDS_ENDPOINT", "IDENTITY_SERVER_THUMBPRINT"):
        monkeypatch.delenv(name, raising=False)
    for recorder in _serve(Recorder(answer)):
        monkeypatch.setenv("IDENTITY_ENDPOINT", f"{recorder.url}/msi/token")
        monkeypatch.setenv("IDENTITY_HEADER", IDENTITY_HEADER)
        yield recorder


@pytest.fixture
def devops() -> Iterator[Recorder]:
    run = {"id": 41, "state": "inProgress", "_links": {"web": {"href": "https://dev.azure.com/run/41"}}}
    yield from _serve(Recorder(lambda request: (200, run)))


@pytest.fixture
def m365_token_service() -> Iterator[Recorder]:
    """Where an app registration's tokens would come from: it must never be asked for Azure DevOps."""
    yield from _serve(Recorder(lambda request: (500, {"error": "not for Azure DevOps"})))


def _settings(devops: Recorder, m365: Recorder, **values: str) -> AppSettings:
    base: dict[str, Any] = {
        "M365_AUTH_MODE": "msal",
        "M365_TENANT_ID": "00000000-0000-0000-0000-0000000000aa",
        "M365_CLIENT_ID": "11111111-2222-3333-4444-555555555555",
        "M365_CLIENT_SECRET": "app-registration-secret",
        "M365_AUTHORITY_HOST": m365.url,
        "AZURE_CLIENT_ID": IDENTITY_CLIENT_ID,
        "DEVOPS_BASE_URL": devops.url,
    }
    return AppSettings(**{**base, **values})


def test_token_mode_uses_the_managed_identity_even_with_an_app_registration_for_m365(
    identity_endpoint: Recorder, devops: Recorder, m365_token_service: Recorder
) -> None:
    settings = _settings(devops, m365_token_service)
    assert settings.devops_auth_mode == "token"  # the default

    run = build_devops_client(settings).run_pipeline(TARGET, {})

    assert run["id"] == 41
    (token_request,) = identity_endpoint.requests
    query = parse_qs(urlsplit(token_request["path"]).query)
    assert query["resource"] == [DEVOPS_RESOURCE]
    assert query["client_id"] == [IDENTITY_CLIENT_ID]
    assert token_request["headers"]["X-IDENTITY-HEADER"] == IDENTITY_HEADER
    (post,) = devops.requests
    assert post["method"] == "POST"
    assert post["path"].startswith("/contoso/M365Config/_apis/pipelines/7/runs?")
    assert post["headers"]["Authorization"] == "Bearer mi-token-for-devops"
    assert m365_token_service.requests == []


def test_pat_mode_sends_the_pat_and_asks_no_identity(
    identity_endpoint: Recorder, devops: Recorder, m365_token_service: Recorder
) -> None:
    settings = _settings(devops, m365_token_service, DEVOPS_AUTH_MODE="pat", DEVOPS_PAT="the-real-pat")

    build_devops_client(settings, max_attempts=1).run_pipeline(TARGET, {})

    (post,) = devops.requests
    assert post["headers"]["Authorization"] == "Basic " + base64.b64encode(b":the-real-pat").decode()
    assert identity_endpoint.requests == []
    assert m365_token_service.requests == []


def test_an_unresolved_pat_reference_is_never_sent_as_a_pat(
    identity_endpoint: Recorder, devops: Recorder, m365_token_service: Recorder
) -> None:
    reference = "@Microsoft.KeyVault(VaultName=kv-aoc-test;SecretName=devops-pat)"
    settings = _settings(devops, m365_token_service, DEVOPS_AUTH_MODE="pat", DEVOPS_PAT=reference)

    with pytest.raises(ValueError, match="DEVOPS_PAT is an unresolved Key Vault reference") as refused:
        build_devops_client(settings)

    assert reference not in str(refused.value)
    assert devops.requests == []
    assert identity_endpoint.requests == []


def test_a_missing_pat_is_named(devops: Recorder, m365_token_service: Recorder) -> None:
    settings = _settings(devops, m365_token_service, DEVOPS_AUTH_MODE="pat")
    with pytest.raises(ValueError, match="DEVOPS_PAT is not set"):
        build_devops_client(settings)
    assert devops.requests == []
