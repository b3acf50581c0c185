"""GET /api/health through the local host: failing and given-up Management content is a warning, not an
outage. The host runs under a tenant of its own, so the watermark rows written here are its only ones."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator

import pytest

from devtools.services import PROJECT_ROOT
from shared.ingestion.watermarks import WatermarkStore
from shared.platform.clients import get_clients
from shared.platform.clock import utc_iso
from shared.platform.resources import Tables
from tests.support.host_process import HostProcess, http_request

SOURCE = "o365_management.Audit.SharePoint"


@pytest.fixture(scope="module")
def tenant_host(
    app_environment: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[HostProcess, str]]:
    tenant = str(uuid.uuid4())
    host = HostProcess(
        app_dir=PROJECT_ROOT,
        work_dir=tmp_path_factory.mktemp("health-content-host"),
        environment={**app_environment, "M365_TENANT_ID": tenant},
    ).start()
    yield host, tenant
    assert host.stop() == 0, host.log()


def test_failing_and_given_up_content_blobs_are_health_warnings_with_status_ok(
    tenant_host: tuple[HostProcess, str],
) -> None:
    host, tenant = tenant_host
    watermarks = WatermarkStore(get_clients().table(Tables.WATERMARKS), tenant)
    now = dt.datetime.now(dt.UTC)
    watermarks.advance(SOURCE, now, "run-1", 40, now, window_start=now - dt.timedelta(days=1))

    healthy = http_request("GET", f"{host.base_url}/api/health").json()
    assert healthy["warnings"] == []
    assert [s["source"] for s in healthy["sources"]] == [SOURCE]

    error = (
        "content 20261120$x: HTTP 404 AF20050: The specified content does not exist. (attempt 8); given up"
    )
    watermarks.record_content(SOURCE, failing=1, given_up=1, last_error=error, now=now)
    response = http_request("GET", f"{host.base_url}/api/health")

    assert response.status == 200
    report = response.json()
    assert report["status"] == "ok", "one bad blob is not an outage"
    (source,) = report["sources"]
    assert (source["failing_blobs"], source["given_up_blobs"], source["last_blob_error"]) == (1, 1, error)
    assert report["warnings"] == [
        f"{SOURCE}: 1 content blob(s) failing, retried on later polls; content blob(s) given up, their "
        f"records not stored (1 in all, the last at {utc_iso(now)}); last error: {error}"
    ]
