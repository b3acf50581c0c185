"""GET /api/health through the real function_app, in the local host, against real services."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from devtools.services import AZURITE_KEY, COSMOS_EMULATOR_KEY, PROJECT_ROOT, LocalServices, free_port
from tests.support.host_process import HostProcess, http_request


@pytest.fixture(scope="module")
def app_host(
    app_environment: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[HostProcess]:
    host = HostProcess(
        app_dir=PROJECT_ROOT, work_dir=tmp_path_factory.mktemp("app-host"), environment=app_environment
    ).start()
    yield host
    assert host.stop() == 0, host.log()


def test_health_is_200_with_all_four_dependencies_ok(app_host: HostProcess) -> None:
    response = http_request("GET", f"{app_host.base_url}/api/health")

    assert response.status == 200
    assert response.headers["Content-Type"].startswith("application/json")
    report = response.json()
    assert report["status"] == "ok"
    assert [d["name"] for d in report["dependencies"]] == ["table", "queue", "blob", "cosmos"]
    assert all(d["status"] == "ok" and d["error"] is None for d in report["dependencies"])
    assert report["checked_at"].endswith("Z")


def test_health_is_anonymous_and_get_only(app_host: HostProcess) -> None:
    assert http_request("POST", f"{app_host.base_url}/api/health").status == 405


def test_health_is_503_naming_the_broken_dependency_without_secrets(
    local_services: LocalServices, app_environment: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    dead_cosmos = f"https://127.0.0.1:{free_port()}/"
    host = HostProcess(
        app_dir=PROJECT_ROOT,
        work_dir=tmp_path_factory.mktemp("broken-host"),
        environment={**app_environment, "COSMOS_ENDPOINT": dead_cosmos, "HEALTH_TIMEOUT_SECONDS": "3"},
    ).start()
    try:
        response = http_request("GET", f"{host.base_url}/api/health")
    finally:
        assert host.stop() == 0

    assert response.status == 503
    report = response.json()
    statuses = {d["name"]: d["status"] for d in report["dependencies"]}
    assert statuses == {"table": "ok", "queue": "ok", "blob": "ok", "cosmos": "error"}
    body = response.body.decode()
    assert AZURITE_KEY not in body
    assert COSMOS_EMULATOR_KEY not in body
    assert "AccountKey" not in body
