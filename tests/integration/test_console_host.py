"""`python -m devtools.host` serves the built console at `/` next to the API, as `make run` does: the
pages with web/staticwebapp.config.json's headers (the CSP widened to this run's sign-in authority),
/config.json from the settings, the SPA fallback, and hostile request lines over a real socket.

web/dist is what `make install` builds; the test builds it when it is missing.
"""

from __future__ import annotations

import http.client
import json
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devtools.services import PROJECT_ROOT
from tests.support.ci import IN_CI
from tests.support.host_process import HostProcess, http_request

WEB = PROJECT_ROOT / "web"
TENANT = "7d1c3f0a-16b2-4e5f-9a8b-c0d1e2f3a416"
AUTHORITY_ORIGIN = "https://127.0.0.1:7443"
AUTHORITY = f"{AUTHORITY_ORIGIN}/{TENANT}/v2.0"
CONSOLE_CLIENT_ID = "3f6d2a1b-9c8e-4b7a-a6f5-e4d3c2b1a016"
SCOPE = "api://aoc-functions/access_as_user"


def _ensure_built() -> None:
    if (WEB / "dist" / "index.html").is_file():
        return
    node = shutil.which("node")
    if node is None or not (WEB / "node_modules" / "esbuild").is_dir():
        message = "the console is not built and cannot be: run `make install` (npm ci and the build in web/)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    done = subprocess.run(
        [node, "build.mjs"], cwd=WEB, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, f"web/build.mjs failed:\n{done.stdout}\n{done.stderr}"


@pytest.fixture(scope="module")
def host(app_environment: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostProcess]:
    _ensure_built()
    process = HostProcess(
        app_dir=PROJECT_ROOT,
        work_dir=tmp_path_factory.mktemp("console-host"),
        environment={
            **app_environment,
            "M365_TENANT_ID": TENANT,
            "PROBE_ENABLED": "false",
            "API_CONTINUATION_SECRET": "console-host-continuation-secret-0123",
            "CONSOLE_CLIENT_ID": CONSOLE_CLIENT_ID,
            "CONSOLE_AUTHORITY": AUTHORITY,
            "CONSOLE_SCOPES": SCOPE,
        },
    ).start(timeout=60)
    yield process
    process.stop()


def _raw(host: HostProcess, request_line: bytes) -> tuple[int, bytes]:
    """Status and body of one request sent byte for byte (no client normalizes the path)."""
    with socket.create_connection(("127.0.0.1", host.port), timeout=30) as connection:
        connection.sendall(request_line + b"\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        chunks = []
        while chunk := connection.recv(65536):
            chunks.append(chunk)
    response = b"".join(chunks)
    head, _, body = response.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def _directives(policy: str) -> dict[str, list[str]]:
    return {part.split()[0]: part.split()[1:] for part in policy.split(";") if part.strip()}


def _header(headers: dict[str, str], name: str) -> str | None:
    return next((v for k, v in headers.items() if k.lower() == name.lower()), None)


def test_the_console_is_served_at_the_root_with_the_security_headers(host: HostProcess) -> None:
    response = http_request("GET", f"{host.base_url}/")
    assert response.status == 200
    assert response.body == (WEB / "dist" / "index.html").read_bytes()
    assert _header(response.headers, "Content-Type") == "text/html; charset=utf-8"
    assert _header(response.headers, "Cache-Control") == "no-cache"
    assert _header(response.headers, "X-Content-Type-Options") == "nosniff"
    assert _header(response.headers, "X-Frame-Options") == "SAMEORIGIN"
    assert _header(response.headers, "Referrer-Policy")
    assert _header(response.headers, "Permissions-Policy")
    policy_text = _header(response.headers, "Content-Security-Policy") or ""
    assert "unsafe-inline" not in policy_text
    assert "unsafe-eval" not in policy_text
    policy = _directives(policy_text)
    assert policy["script-src"] == ["'self'"]
    assert AUTHORITY_ORIGIN in policy["connect-src"]
    assert AUTHORITY_ORIGIN in policy["frame-src"]
    assert policy["frame-ancestors"] == ["'self'"]


def test_config_json_tells_the_console_where_to_sign_in(host: HostProcess) -> None:
    response = http_request("GET", f"{host.base_url}/config.json")
    assert response.status == 200
    assert _header(response.headers, "Content-Type") == "application/json"
    config: dict[str, Any] = response.json()
    assert config == {
        "apiBaseUrl": "/api",
        "clientId": CONSOLE_CLIENT_ID,
        "authority": AUTHORITY,
        "knownAuthorities": ["127.0.0.1:7443"],
        "scopes": [SCOPE],
        "redirectUri": f"{host.base_url}/redirect.html",
        "version": config["version"],
    }
    version = http_request("GET", f"{host.base_url}/api/version")
    if version.status == 200:  # keys mode: the route answers key holders; the version is the same
        assert version.json()["version"] == config["version"]


def test_deep_links_get_the_app_and_assets_their_types(host: HostProcess) -> None:
    deep = http_request("GET", f"{host.base_url}/events?q=admin&from=2024-01-01T00:00:00Z&event=abc")
    assert deep.status == 200
    assert deep.body == (WEB / "dist" / "index.html").read_bytes()
    script = http_request("GET", f"{host.base_url}/app.js")
    assert script.status == 200
    assert _header(script.headers, "Content-Type") == "text/javascript; charset=utf-8"
    css = http_request("GET", f"{host.base_url}/app.css")
    assert _header(css.headers, "Content-Type") == "text/css; charset=utf-8"
    bridge = http_request("GET", f"{host.base_url}/redirect.html")
    assert bridge.status == 200
    assert not any(k.lower() == "cross-origin-opener-policy" for k in bridge.headers)
    missing = http_request("GET", f"{host.base_url}/chunks/not-there-123.js")
    assert missing.status == 404
    assert _header(missing.headers, "Content-Type") == "application/problem+json"


def test_the_api_keeps_its_own_answers_under_the_route_prefix(host: HostProcess) -> None:
    unknown = http_request("GET", f"{host.base_url}/api/no-such-route")
    assert unknown.status in (404, 405)  # 405: the CORS preflight route matches every /api path
    assert _header(unknown.headers, "Content-Type") == "application/problem+json"
    assert b"<!doctype" not in unknown.body.lower()
    health = http_request("GET", f"{host.base_url}/api/health")
    assert health.status in (200, 503)
    assert "status" in health.json()


def test_head_and_conditional_get(host: HostProcess) -> None:
    get = http_request("GET", f"{host.base_url}/app.js")
    connection = http.client.HTTPConnection("127.0.0.1", host.port, timeout=30)
    try:
        connection.request("HEAD", "/app.js")
        head = connection.getresponse()
        assert head.status == 200
        assert head.read() == b""
        assert int(head.getheader("Content-Length") or "-1") == len(get.body)
        etag = _header(get.headers, "ETag")
        assert etag
        connection.request("GET", "/app.js", headers={"If-None-Match": etag})
        conditional = connection.getresponse()
        assert conditional.status == 304
        assert conditional.read() == b""
    finally:
        connection.close()


@pytest.mark.parametrize(
    "target",
    [
        b"/../../../../etc/passwd",
        b"/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        b"/chunks/%2E%2E/%2E%2E/%2E%2E/etc/passwd",
        b"/..%2f..%2f..%2fetc%2fpasswd",
        b"/..%5c..%5c..%5cetc%5cpasswd",
        b"/..\\..\\..\\etc\\passwd",
        b"/index.html%00.js",
        b"/%c0%ae%c0%ae/%c0%ae%c0%ae/etc/passwd",
        b"/" + b"a" * 4000,
    ],
)
def test_hostile_paths_never_leave_the_console_folder(host: HostProcess, target: bytes) -> None:
    status, body = _raw(host, b"GET " + target + b" HTTP/1.1")
    assert status in (400, 404)
    assert b"root:" not in body


def test_a_nul_in_the_request_line_is_refused(host: HostProcess) -> None:
    status, body = _raw(host, b"GET /index.html\x00/../../etc/passwd HTTP/1.1")
    assert status == 400
    assert b"root:" not in body


def test_the_console_folder_is_the_build(host: HostProcess) -> None:
    info = json.loads((WEB / "dist" / "build-info.json").read_text())
    for name in ("index.html", "app.js", "redirect.html"):
        assert name in info["files"]
        assert Path(WEB / "dist" / name).stat().st_size == info["files"][name]["bytes"]
