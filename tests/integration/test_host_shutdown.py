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
            timeout=60,
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


def _slow_host(
    services: LocalServices, work_dir: Path, lease_seconds: int, slow_seconds: float
) -> HostProcess:
    return HostProcess(
        app_dir=SEMANTICS_APP,
        work_dir=work_dir,
        environment={
            "AzureWebJobsStorage": services.storage_connection_string,
            "FAIL_QUEUE": "always-fails-lease",
            "AOC_HOST_QUEUE_LEASE_SECONDS": str(lease_seconds),
            "SLOW_SECONDS": str(slow_seconds),
        },
    )


def test_lease_is_renewed_while_a_long_function_runs(local_services: LocalServices, tmp_path: Path) -> None:
    queue_client(local_services, "slow-in").clear_messages()
    # The function outlives its lease twice over; renewals every lease/3 leave seconds of slack for a
    # loaded machine. (A lease of 2 s left well under a second.)
    host = _slow_host(local_services, tmp_path, lease_seconds=6, slow_seconds=14).start()
    try:
        queue_client(local_services, "slow-in").send_message("long-runner")
        wait_until(
            lambda: [e for e in host.events("slow") if e["phase"] == "end"], timeout=120, message="slow end"
        )
    finally:
        host.stop()
    starts = [e for e in host.events("slow") if e["phase"] == "start" and e["body"] == "long-runner"]
    assert len(starts) == 1, "the message was redelivered while its function still ran"


def test_sigkilled_host_releases_its_message_within_the_lease(
    local_services: LocalServices, tmp_path: Path
) -> None:
    queue_client(local_services, "slow-in").clear_messages()
    first = _slow_host(local_services, tmp_path / "a", lease_seconds=4, slow_seconds=60)
    (tmp_path / "a").mkdir()
    first.start()
    queue_client(local_services, "slow-in").send_message("survivor")
    wait_until(lambda: first.events("slow"), timeout=60, message="first attempt")
    assert first.process is not None
    first.process.kill()
    first.process.wait()

    (tmp_path / "b").mkdir()
    second = _slow_host(local_services, tmp_path / "b", lease_seconds=4, slow_seconds=0.1).start()
    try:
        done = wait_until(
            lambda: [e for e in second.events("slow") if e["phase"] == "end"],
            timeout=60,
            message="redelivery",
        )
    finally:
        second.stop()
    assert done[0]["body"] == "survivor"
    retried = [e for e in second.events("slow") if e["phase"] == "start"]
    assert retried[0]["dequeue_count"] == 2
