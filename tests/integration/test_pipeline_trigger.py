"""PipelineTriggerService against the tenant simulator's Azure DevOps and real Azurite: one run per trigger.

The simulator scripts DevOps 500/503 (`devops_server_error_rate`, a deterministic sequence per seed) and
the auth rejections, but neither a 429 nor a slow answer: those come from a loopback http.server.
"""

from __future__ import annotations

import datetime as dt
import http.server
import json
import logging
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableClient
from azure.storage.queue import QueueClient

from devtools.simulator import TenantSimulator
from devtools.simulator.faults import unit
from shared.m365.http_client import ApiClient, ApiError
from shared.platform.clients import get_clients
from shared.platform.clock import utc_iso
from shared.platform.resources import Tables
from shared.probe.devops import (
    CLAIM_TIMEOUT,
    DEFER_MARGIN,
    MAX_RUN_ATTEMPTS,
    REFUSED_ATTEMPTS,
    DevOpsAuthError,
    DevOpsClient,
    PipelineTriggerService,
    RunOutcomeUnknownError,
    TriggerResult,
)
from shared.probe.scopes import DriftConfig, DriftRule, DriftScope, PipelineTarget
from shared.probe.service import ProbeService
from shared.probe.state import Change, ChangeSummary, ProbeWindows, Trigger
from shared.probe.store import ProbeStateStore
from tests.support.clock import ManualClock
from tests.support.simulator_client import simulator_at

NOW = dt.datetime(2026, 11, 22, 9, 0, tzinfo=dt.UTC)
PAT = "local-devops-pat"
STALE = (CLAIM_TIMEOUT + DEFER_MARGIN).total_seconds()


def seed_for(statuses: list[int], rate: float = 0.5) -> int:
    """A simulator seed whose first DevOps runs answer `statuses` (500, 503 or 200), as devops.py rolls."""

    def status(seed: int, call: int) -> int:
        if unit(seed, "devops-call", call) >= rate:
            return 200
        return 500 if unit(seed, "devops-status", call) < 0.5 else 503

    return next(s for s in range(1000) if [status(s, c) for c in range(1, len(statuses) + 1)] == statuses)


def start_simulator(statuses: list[int] | None = None) -> TenantSimulator:
    faults = {"seed": seed_for(statuses), "devops_server_error_rate": 0.5} if statuses else {}
    return simulator_at(NOW, 0, events_per_day=0, **faults)


@pytest.fixture
def log(app_environment: dict[str, str]) -> TableClient:
    return get_clients().table(Tables.TRIGGER_LOG)


@pytest.fixture
def retry_queue(app_environment: dict[str, str]) -> Iterator[QueueClient]:
    name = f"trigger-test-{uuid.uuid4().hex[:12]}"
    get_clients().queue_service.create_queue(name)
    yield get_clients().queue(name)
    get_clients().queue_service.delete_queue(name)


@dataclass
class World:
    log: TableClient
    retry_queue: QueueClient
    clock: ManualClock = field(default_factory=lambda: ManualClock(NOW))
    scope: str = field(default_factory=lambda: f"trig-{uuid.uuid4().hex[:10]}")
    sleeps: list[float] = field(default_factory=list)
    api: ApiClient | None = None

    def service(self, base_url: str, timeout: tuple[float, float] = (2.0, 10.0)) -> PipelineTriggerService:
        self.api = ApiClient(None, timeout=timeout, max_attempts=1)
        devops = DevOpsClient(self.api, base_url, pat=PAT)
        target = PipelineTarget(organization="contoso", project="aoc", pipeline_id=1)
        drift = DriftConfig(
            scopes=[DriftScope(name=self.scope, rules=[DriftRule(operations=["x"])], pipeline=target)]
        )
        return PipelineTriggerService(
            devops,
            drift,
            self.log,
            self.clock,
            self.retry_queue,
            sleep=self.sleeps.append,
            random=lambda: 0.5,
        )

    def trigger(self) -> Trigger:
        at = utc_iso(NOW - dt.timedelta(minutes=5))
        summary = ChangeSummary(
            count=3, first_change_at=at, last_change_at=at, actors=[], top_operations=[], services=["Intune"]
        )
        return Trigger(
            trigger_id=f"{self.scope}:t1", scope=self.scope, reason="settled", summary=summary, checked_at=at
        )

    def row(self) -> dict[str, Any]:
        return dict(self.log.get_entity(self.scope, f"{self.scope}:t1"))

    def queued_copies(self) -> int:
        """Messages in the retry queue, visible or not."""
        count = self.retry_queue.get_queue_properties().approximate_message_count
        assert count is not None
        return count

    def visible_copies(self) -> int:
        return len(self.retry_queue.peek_messages(max_messages=32))


@pytest.fixture
def world(log: TableClient, retry_queue: QueueClient) -> World:
    return World(log, retry_queue)


def statuses(sim: TenantSimulator) -> list[int]:
    return [int(a["status"]) for a in sim.devops_attempts()]


# ---------------------------------------------------------------------------------------------------
# A loopback Azure DevOps for what the simulator cannot script: 429, a slow answer, a held call
# ---------------------------------------------------------------------------------------------------


class Loopback:
    def __init__(self, respond: Callable[[int], tuple[int, dict[str, str], dict[str, Any]]]) -> None:
        self.posts: list[dict[str, Any]] = []
        self.finished = threading.Event()
        self.release = threading.Event()
        self.received = threading.Event()
        loopback = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                loopback.posts.append(body)
                loopback.received.set()
                status, headers, document = respond(len(loopback.posts))
                payload = json.dumps(document).encode()
                try:
                    self.send_response(status)
                    for name, value in {"Content-Type": "application/json", **headers}.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:
                    pass  # the client gave up (read timeout)
                finally:
                    loopback.finished.set()

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def run_document(run_id: int) -> dict[str, Any]:
    return {"id": run_id, "state": "inProgress", "_links": {"web": {"href": f"https://dev/runs/{run_id}"}}}


@pytest.fixture
def loopbacks() -> Iterator[list[Loopback]]:
    started: list[Loopback] = []
    yield started
    for loopback in started:
        loopback.stop()


# ---------------------------------------------------------------------------------------------------
# Item 1: no second POST when the outcome is unknown
# ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 503])
def test_a_5xx_keeps_the_claim_and_defers_a_copy_instead_of_posting_again(world: World, status: int) -> None:
    sim = start_simulator([status, 200])
    try:
        service = world.service(sim.devops_base_url)
        first = service.handle(world.trigger(), message_id="m1")

        assert first.state == "deferred"
        assert first.retry_at == utc_iso(NOW + CLAIM_TIMEOUT + DEFER_MARGIN)
        assert statuses(sim) == [status]  # the POST was sent once: no ApiClient retry
        assert sim.devops_runs() == []
        row = world.row()
        assert (row["status"], row["outcome"], row["attempts"]) == ("starting", "unknown", 1)
        assert f"HTTP {status}" in row["error"]
        assert (world.queued_copies(), world.visible_copies()) == (1, 0)  # a copy, invisible until stale

        # The message's redelivery and another copy within CLAIM_TIMEOUT see the held claim: no POST.
        world.clock.advance(10)
        assert service.handle(world.trigger(), message_id="m1").state == "deferred"
        world.clock.advance(60)
        assert service.handle(world.trigger(), message_id="m2").state == "deferred"
        assert statuses(sim) == [status]

        # The deferred copy arrives once the claim is stale and tries once more.
        world.clock.advance(STALE - 70)
        retried = service.handle(world.trigger(), message_id="m1-copy")
        assert retried.state == "queued"
        assert statuses(sim) == [status, 200]
        assert [r["id"] for r in sim.devops_runs()] == [retried.run_id]
        row = world.row()
        assert (row["status"], row["run_id"], row["attempts"], row["retried"]) == (
            "queued", retried.run_id, 2, True
        )  # fmt: skip
        assert "outcome" not in row

        again = service.handle(world.trigger(), message_id="m1-copy-2")
        assert (again.state, again.run_id) == ("already_queued", retried.run_id)
        assert len(sim.devops_attempts()) == 2
    finally:
        sim.stop()


def test_a_read_timeout_after_devops_queued_the_run_is_not_posted_again(
    world: World, loopbacks: list[Loopback]
) -> None:
    def slow(_: int) -> tuple[int, dict[str, str], dict[str, Any]]:
        threading.Event().wait(1.5)  # the run is queued, the answer comes after the read timeout
        return 200, {}, run_document(7)

    devops = Loopback(slow)
    loopbacks.append(devops)
    service = world.service(devops.base_url, timeout=(2.0, 0.5))

    result = service.handle(world.trigger(), message_id="m1")

    assert result.state == "deferred"
    assert devops.finished.wait(5)
    assert len(devops.posts) == 1
    row = world.row()
    assert (row["status"], row["outcome"]) == ("starting", "unknown")
    assert "ReadTimeout" in row["error"]
    world.clock.advance(30)
    assert service.handle(world.trigger(), message_id="m1").state == "deferred"
    assert len(devops.posts) == 1


def test_unknown_outcomes_stop_after_max_run_attempts_and_go_to_poison(world: World) -> None:
    sim = start_simulator([500] * MAX_RUN_ATTEMPTS)
    try:
        service = world.service(sim.devops_base_url)
        for attempt in range(1, MAX_RUN_ATTEMPTS):
            assert service.handle(world.trigger(), message_id=f"m{attempt}").state == "deferred"
            world.clock.advance(STALE)
        with pytest.raises(RunOutcomeUnknownError, match="Check the pipeline's runs"):
            service.handle(world.trigger(), message_id="last")
        with pytest.raises(RunOutcomeUnknownError):  # its redeliveries fail too, without a POST
            service.handle(world.trigger(), message_id="last")
        assert statuses(sim) == [500] * MAX_RUN_ATTEMPTS
        assert world.row()["attempts"] == MAX_RUN_ATTEMPTS
        assert world.queued_copies() == MAX_RUN_ATTEMPTS - 1
    finally:
        sim.stop()


def test_a_refused_connection_is_retried_in_process_then_releases_the_claim(world: World) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    service = world.service(closed)

    with pytest.raises(ApiError) as raised:
        service.handle(world.trigger(), message_id="m1")

    assert raised.value.status is None
    assert world.api is not None
    assert world.api.stats.requests == REFUSED_ATTEMPTS
    assert world.sleeps == [0.5, 1.0, 2.0]  # full jitter at random() = 0.5
    with pytest.raises(ResourceNotFoundError):
        world.row()  # released: the queue's redelivery may POST at once
    assert world.queued_copies() == 0


def test_a_429_waits_its_retry_after_then_queues_once(world: World, loopbacks: list[Loopback]) -> None:
    def throttled_once(call: int) -> tuple[int, dict[str, str], dict[str, Any]]:
        if call == 1:
            return 429, {"Retry-After": "2"}, {"message": "TF400733: throttled"}
        return 200, {}, run_document(41)

    devops = Loopback(throttled_once)
    loopbacks.append(devops)

    result = world.service(devops.base_url).handle(world.trigger(), message_id="m1")

    assert (result.state, result.run_id, result.url) == ("queued", 41, "https://dev/runs/41")
    assert world.sleeps == [2.0]
    assert len(devops.posts) == 2
    assert world.row()["status"] == "queued"


def test_an_auth_refusal_releases_the_claim_so_a_fixed_pat_queues_the_run(world: World) -> None:
    sim = start_simulator()
    try:
        service = world.service(sim.devops_base_url)
        sim.reject_devops("unauthorized")
        with pytest.raises(DevOpsAuthError, match="HTTP 401"):
            service.handle(world.trigger(), message_id="m1")
        with pytest.raises(ResourceNotFoundError):
            world.row()
        sim.reject_devops(None)
        assert service.handle(world.trigger(), message_id="m1").state == "queued"
        assert statuses(sim) == [401, 200]
    finally:
        sim.stop()


def test_the_service_refuses_a_client_that_retries_the_post(world: World) -> None:
    devops = DevOpsClient(ApiClient(None), "http://127.0.0.1:9", pat=PAT)
    drift = DriftConfig(scopes=[DriftScope(name="s", rules=[DriftRule(operations=["x"])])])
    with pytest.raises(ValueError, match="max_attempts=1"):
        PipelineTriggerService(devops, drift, world.log, world.clock, world.retry_queue)


# ---------------------------------------------------------------------------------------------------
# Item 2: a busy duplicate is dropped, unless dropping it could lose the backup
# ---------------------------------------------------------------------------------------------------


def test_a_copy_arriving_while_another_delivery_calls_devops_is_dropped(
    world: World, loopbacks: list[Loopback]
) -> None:
    def held(_: int) -> tuple[int, dict[str, str], dict[str, Any]]:
        devops.release.wait(10)
        return 200, {}, run_document(5)

    devops = Loopback(held)
    loopbacks.append(devops)
    service = world.service(devops.base_url)
    outcome: list[TriggerResult] = []
    first = threading.Thread(target=lambda: outcome.append(service.handle(world.trigger(), message_id="m1")))
    first.start()
    try:
        assert devops.received.wait(5)
        world.clock.advance(5)
        copy = service.handle(world.trigger(), message_id="m2")
    finally:
        devops.release.set()
        first.join(10)

    assert copy.state == "in_flight"
    assert [r.state for r in outcome] == ["queued"]
    assert len(devops.posts) == 1
    assert world.queued_copies() == 0


def test_the_redelivery_of_a_message_whose_worker_died_mid_call_is_deferred_not_dropped(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    sim = start_simulator()
    try:
        world.log.create_entity(
            {
                "PartitionKey": world.scope,
                "RowKey": f"{world.scope}:t1",
                "status": "starting",
                "claimed_at": utc_iso(NOW),
                "attempts": 1,
                "message_id": "m1",
            }
        )  # as the dead worker's claim left it
        service = world.service(sim.devops_base_url)
        world.clock.advance(15)

        with caplog.at_level(logging.INFO, logger="shared.probe.devops"):
            own = service.handle(world.trigger(), message_id="m1")
            other = service.handle(world.trigger(), message_id="m2")

        assert (own.state, own.retry_at) == ("deferred", utc_iso(NOW + CLAIM_TIMEOUT + DEFER_MARGIN))
        assert other.state == "in_flight"
        assert "dropping this copy" in caplog.text
        assert world.queued_copies() == 1
        assert sim.devops_attempts() == []

        world.clock.advance(STALE - 15)
        late = service.handle(world.trigger(), message_id="m1-copy")
        assert late.state == "queued"
        assert len(sim.devops_runs()) == 1
        assert world.row()["attempts"] == 2
    finally:
        sim.stop()


# ---------------------------------------------------------------------------------------------------
# Item 3: a scope without a pipeline queues no trigger
# ---------------------------------------------------------------------------------------------------


def test_a_scope_without_a_pipeline_steps_as_before_but_queues_no_trigger(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    tag = uuid.uuid4().hex[:8]
    with_pipeline, without = f"piped-{tag}", f"unpiped-{tag}"
    rules = [DriftRule(operations=["set-thing"])]
    target = PipelineTarget(organization="o", project="p", pipeline_id=1)
    drift = DriftConfig(
        scopes=[
            DriftScope(name=with_pipeline, rules=rules, pipeline=target),
            DriftScope(name=without, rules=rules),
        ]
    )
    store = ProbeStateStore(get_clients().table(Tables.PROBE_STATE))
    windows = ProbeWindows(quiet=dt.timedelta(minutes=5), cooldown=dt.timedelta(minutes=30))
    probe = ProbeService(store, drift, world.retry_queue, windows)

    def change(event_id: str) -> Change:
        return Change(event_id=event_id, at=utc_iso(NOW), service="Intune", operation="Set-Thing")

    probe.advance({with_pipeline: [change("a")], without: [change("b")]}, NOW)
    with caplog.at_level(logging.INFO, logger="shared.probe.service"):
        settled = probe.advance({}, NOW + dt.timedelta(minutes=6))
        probe.advance({}, NOW + dt.timedelta(minutes=7))

    assert [(r.scope, r.phase, r.trigger is not None) for r in settled] == [
        (with_pipeline, "cooldown", True),
        (without, "cooldown", True),
    ]
    messages = [json.loads(m.content) for m in world.retry_queue.peek_messages(max_messages=32)]
    assert [m["scope"] for m in messages] == [with_pipeline]
    state, _ = store.read(without)
    assert (state.phase, state.triggers_emitted, state.outbox) == ("cooldown", 1, None)
    warnings = [r.getMessage() for r in caplog.records if "has no pipeline" in r.getMessage()]
    assert len(warnings) == 1
    assert without in warnings[0]
