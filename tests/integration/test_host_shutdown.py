"""SIGTERM stops the host cleanly: an in-flight message finishes and is not redelivered."""

from __future__ import annotations

from pathlib import Path

import pytest

from devtools.services import LocalServices
from tests.integration.test_host_semantics import SEMANTICS_APP, queue_client
from tests.support.host_process import HostProcess, wait_until


def test_sigterm_lets_in_flight_message_finish(local_services: LocalServices, tmp_path: Path) -> None:
    host = HostProcess(
        app_dir=SEMANTICS_APP,
        work_dir=tmp_path,
        environment={
            "AzureWebJobsStorage": local_services.storage_connection_string,
            "FAIL_QUEUE": "always-fails-shutdown",
        },
    ).start()
    try:
        queue_client(local_services, "slow-in").send_message("in-flight")
        wait_until(
            lambda: [e for e in host.events("slow") if e["phase"] == "start"],
            timeout=15,
            message="slow start",
        )
    finally:
        exit_code = host.stop()

    assert exit_code == 0, host.log()
    phases = [e["phase"] for e in host.events("slow") if e["body"] == "in-flight"]
    assert phases == ["start", "end"]
    slow = queue_client(local_services, "slow-in")
    assert slow.get_queue_properties().approximate_message_count == 0
    assert "Host stopped" in host.log()


@pytest.mark.parametrize("missing", ["FAIL_QUEUE"])
def test_unresolved_setting_reference_is_a_clear_startup_error(
    local_services: LocalServices, tmp_path: Path, missing: str
) -> None:
    host = HostProcess(
        app_dir=SEMANTICS_APP,
        work_dir=tmp_path,
        environment={"AzureWebJobsStorage": local_services.storage_connection_string},
    )
    with pytest.raises(RuntimeError, match=f"%{missing}%"):
        host.start(timeout=20)
