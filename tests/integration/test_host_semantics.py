"""The local Functions host, run as a process against Azurite, with a throwaway app."""

from __future__ import annotations

import contextlib
import itertools
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.queue import QueueClient, TextBase64DecodePolicy, TextBase64EncodePolicy

from devtools.services import LocalServices
from tests.support.host_process import (
    FUNCTION_KEY,
    MASTER_KEY,
    HostProcess,
    http_request,
    wait_until,
)

SEMANTICS_APP = Path(__file__).resolve().parents[1] / "host_apps" / "semantics"
MAX_DEQUEUE_COUNT = 3  # tests/host_apps/semantics/host.json


def queue_client(services: LocalServices, name: str, base64: bool = True) -> QueueClient:
    if not base64:
        return QueueClient.from_connection_string(services.storage_connection_string, name)
    return QueueClient.from_connection_string(
        services.storage_connection_string,
        name,
        message_encode_policy=TextBase64EncodePolicy(),
        message_decode_policy=TextBase64DecodePolicy(),
    )


def peek_all(client: QueueClient) -> list[str]:
    """Messages in the queue; none when the queue does not exist yet (poison queues are lazy)."""
    try:
        return [m.content for m in client.peek_messages(max_messages=32)]
    except ResourceNotFoundError:
        return []


@pytest.fixture(scope="module")
def host(local_services: LocalServices, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostProcess]:
    process = HostProcess(
        app_dir=SEMANTICS_APP,
        work_dir=tmp_path_factory.mktemp("host"),
        environment={
            "AzureWebJobsStorage": local_services.storage_connection_string,
            "FAIL_QUEUE": "always-fails",
            "AzureWebJobs.switched_off.Disabled": "true",
        },
    ).start()
    yield process
    assert process.stop() == 0, process.log()


def test_route_params_optional_params_query_and_faithful_response(host: HostProcess) -> None:
    with_name = http_request(
        "POST", f"{host.base_url}/api/items/42/widget?mode=full", body=b"hello", headers={"x-probe": "p1"}
    )
    without_name = http_request("GET", f"{host.base_url}/api/items/7")

    assert with_name.status == 201
    assert with_name.headers["X-Handled-By"] == "items"
    assert with_name.headers["Content-Type"].startswith("application/json")
    payload = with_name.json()
    assert payload["route_params"] == {"id": "42", "name": "widget"}
    assert payload["params"] == {"mode": "full"}
    assert payload["method"] == "POST"
    assert payload["body"] == "hello"
    assert payload["probe_header"] == "p1"
    assert without_name.json()["route_params"] == {"id": "7"}


def test_type_constraint_unknown_route_and_wrong_method(host: HostProcess) -> None:
    assert http_request("GET", f"{host.base_url}/api/items/not-a-number").status == 404
    assert http_request("GET", f"{host.base_url}/api/no-such-route").status == 404
    assert http_request("GET", f"{host.base_url}/items/7").status == 404  # outside routePrefix
    wrong_method = http_request("DELETE", f"{host.base_url}/api/items/7")
    assert wrong_method.status == 405
    assert set(wrong_method.headers["Allow"].split(", ")) == {"GET", "POST"}


def test_function_level_route_needs_a_key(host: HostProcess) -> None:
    url = f"{host.base_url}/api/secure"
    assert http_request("GET", url).status == 401
    assert http_request("GET", url, headers={"x-functions-key": "wrong"}).status == 401
    with_header = http_request("GET", url, headers={"x-functions-key": FUNCTION_KEY})
    assert (with_header.status, with_header.body) == (200, b"function-level ok")
    assert http_request("GET", f"{url}?code={FUNCTION_KEY}").status == 200
    assert http_request("GET", url, headers={"x-functions-key": MASTER_KEY}).status == 200


def test_admin_route_needs_the_master_key(host: HostProcess) -> None:
    url = f"{host.base_url}/api/admin-only"
    assert http_request("POST", url).status == 401
    assert http_request("POST", url, headers={"x-functions-key": FUNCTION_KEY}).status == 401
    allowed = http_request("POST", url, headers={"x-functions-key": MASTER_KEY})
    assert (allowed.status, allowed.body) == (200, b"admin ok")


def test_always_failing_message_runs_max_dequeue_count_times_then_goes_to_poison(
    host: HostProcess, local_services: LocalServices
) -> None:
    queue_client(local_services, "always-fails").send_message("doomed-1")
    poison = queue_client(local_services, "always-fails-poison")
    wait_until(lambda: "doomed-1" in peek_all(poison), timeout=30, message="poison message")
    time.sleep(1.5)  # long enough for a fourth attempt to show if the host made one

    attempts = [e for e in host.events("always_fails") if e["body"] == "doomed-1"]
    assert [a["dequeue_count"] for a in attempts] == list(range(1, MAX_DEQUEUE_COUNT + 1))
    assert queue_client(local_services, "always-fails").get_queue_properties().approximate_message_count == 0


def test_undecodable_message_goes_to_poison_without_loss(
    host: HostProcess, local_services: LocalServices
) -> None:
    raw = queue_client(local_services, "echo-in", base64=False)
    raw.send_message("this is not base64!")
    poison = queue_client(local_services, "echo-in-poison", base64=False)
    wait_until(lambda: "this is not base64!" in peek_all(poison), timeout=30, message="poisoned raw message")


def test_outputs_set_before_an_exception_are_not_sent(
    host: HostProcess, local_services: LocalServices
) -> None:
    inbound = queue_client(local_services, "outputs-in")
    inbound.send_message("fail-1")
    inbound.send_message("ok")
    poison = queue_client(local_services, "outputs-in-poison")
    wait_until(lambda: "fail-1" in peek_all(poison), timeout=30, message="fail-1 in poison")
    outbound = queue_client(local_services, "outputs-out")
    wait_until(lambda: len(peek_all(outbound)) >= 2, timeout=10, message="outputs of 'ok'")

    assert sorted(peek_all(outbound)) == ["ok-1", "ok-2"]
    assert len([e for e in host.events("outputs") if e["body"] == "fail-1"]) == MAX_DEQUEUE_COUNT


def test_reads_sdk_base64_messages_and_the_hosts_own_output_binding(
    host: HostProcess, local_services: LocalServices
) -> None:
    queue_client(local_services, "echo-in").send_message("from-the-sdk ✓")
    assert (
        http_request("POST", f"{host.base_url}/api/relay", body="from-the-binding ✓".encode()).status == 202
    )

    def echoed() -> dict[str, dict[str, object]]:
        return {str(e["body"]): e for e in host.events("echo")}

    seen = wait_until(
        lambda: echoed() if {"from-the-sdk ✓", "from-the-binding ✓"} <= set(echoed()) else None,
        timeout=15,
        message="both messages echoed",
    )
    sdk = seen["from-the-sdk ✓"]
    assert sdk["dequeue_count"] == 1
    assert sdk["has_pop_receipt"]
    assert sdk["has_insertion_time"]
    assert sdk["id"]
    assert sdk["invocation_id"] != seen["from-the-binding ✓"]["invocation_id"]


def test_empty_queue_backs_off_exponentially_to_max_polling_interval(
    host: HostProcess, local_services: LocalServices
) -> None:
    queue_client(local_services, "idle-in").send_message("wake")
    wait_until(lambda: host.events("idle"), timeout=15, message="idle message processed")

    observed: list[float] = []

    def reached_the_cap() -> bool:
        status = host.status()
        assert status is not None
        listener = next(q for q in status["queue_listeners"] if q["queue"] == "idle-in")
        if not observed or observed[-1] != listener["polling_interval_ms"]:
            observed.append(listener["polling_interval_ms"])
        return observed[-1] == 1000.0  # host.json maxPollingInterval 00:00:01

    # How many steps a sampler sees depends on the machine's load; the doubling itself is unit-tested
    # (tests/unit/test_queue_encoding.py). Here: the live host only grows to the cap, on the ladder.
    wait_until(reached_the_cap, timeout=60, interval=0.02, message="the polling interval at its cap")
    assert set(observed) <= {100.0, 200.0, 400.0, 800.0, 1000.0}
    assert observed == sorted(observed), "the interval only grows while the queue stays empty"


def test_structured_log_line_per_invocation(host: HostProcess, local_services: LocalServices) -> None:
    http_request("GET", f"{host.base_url}/api/items/5")
    queue_client(local_services, "always-fails").send_message("for the log")

    def invocation_lines() -> list[dict[str, Any]]:
        raw_lines = host.log().splitlines()
        return [json.loads(raw[raw.index("{") :]) for raw in raw_lines if '"event": "invocation"' in raw]

    lines = invocation_lines()
    ok = next(line for line in lines if line["function"] == "items")
    assert {"function", "invocation_id", "trigger", "duration_ms", "outcome"} <= set(ok)
    assert ok["trigger"] == "httpTrigger"
    assert ok["outcome"] == "succeeded"
    failed = wait_until(
        lambda: [line for line in invocation_lines() if line["function"] == "always_fails"] or None,
        timeout=60,
        message="a failed invocation line",
    )
    assert failed[0]["outcome"] == "failed"
    assert "this function always fails" in failed[0]["error"]


def test_timers_fire_repeatedly_never_overlap_run_on_startup_and_past_due(host: HostProcess) -> None:
    starts = wait_until(
        lambda: (
            (rows := host.events("every_two_seconds"))
            and len([r for r in rows if r["phase"] == "end"]) >= 3
            and rows
        ),
        timeout=30,
        message="three completed timer runs",
    )
    runs = []
    for row in starts:
        if row["phase"] == "start":
            runs.append([row["at"], None, row["past_due"]])
        elif runs and runs[-1][1] is None:
            runs[-1][1] = row["at"]
    completed = [r for r in runs if r[1] is not None]
    assert len(completed) >= 3
    for previous, following in itertools.pairwise(runs):
        assert previous[1] is not None
        assert following[0] >= previous[1], "timer runs overlapped"
    # Each run takes 3.5 s against a 2 s schedule, so later runs start late and are past due.
    assert any(run[2] for run in runs[1:])

    startup = host.events("yearly_with_startup")
    assert len(startup) == 1, "run_on_startup fires once at start; the next yearly run is months away"


def test_a_disabled_function_is_not_triggered(host: HostProcess, local_services: LocalServices) -> None:
    status = http_request(
        "GET", f"{host.base_url}/admin/host/status", headers={"x-functions-key": MASTER_KEY}
    )
    assert status.status == 200
    body = json.loads(status.body)
    assert body["disabled"] == ["switched_off"]
    assert "switched_off" not in body["functions"]

    client = queue_client(local_services, "disabled-in")
    with contextlib.suppress(ResourceExistsError):
        client.create_queue()
    client.send_message("left alone")
    time.sleep(3)
    assert host.events("switched_off") == []
    assert peek_all(client) == ["left alone"]
