"""Notification delivery to the simulator's webhook sink, with the delivery log in real Azurite."""

from __future__ import annotations

import datetime as dt
import json
import logging
import socket
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from devtools.simulator import SimulatorConfig, TenantSimulator
from shared.alerts.model import NotifyMessage
from shared.alerts.store import AlertStore
from shared.m365.http_client import ApiClient, ApiError
from shared.notify.channels import parse_channels
from shared.notify.delivery import NotificationService
from shared.notify.delivery_log import (
    CLAIM_STALE,
    DEFER_MARGIN,
    FUNCTION_TIMEOUT,
    SENDING_STALE,
    DeliveryLog,
)
from shared.notify.payloads import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify_signature
from shared.platform.clients import get_clients
from shared.platform.resources import CosmosContainers, Tables
from tests.support.clock import ManualClock
from tests.support.host_process import wait_until

NOW = dt.datetime(2026, 11, 18, 10, 0, tzinfo=dt.UTC)
SECRET = "shared-secret-for-tests"


@pytest.fixture
def sim() -> Iterator[TenantSimulator]:
    simulator = TenantSimulator(SimulatorConfig(events_per_day=0)).start()
    yield simulator
    simulator.stop()


class Setup:
    def __init__(self, sim: TenantSimulator) -> None:
        self.sim = sim
        self.tenant = f"tenant-{uuid.uuid4().hex[:10]}"
        self.names = {kind: f"{kind}-{uuid.uuid4().hex[:6]}" for kind in ("teams", "slack", "webhook")}
        channels = [
            {"name": "teams", "type": "teams", "url": sim.webhook_url(self.names["teams"])},
            {"name": "slack", "type": "slack", "url": sim.webhook_url(self.names["slack"])},
            {
                "name": "hook",
                "type": "webhook",
                "url": sim.webhook_url(self.names["webhook"]),
                "secret": SECRET,
            },
        ]
        self.clock = ManualClock(NOW)
        self.store = AlertStore(get_clients().cosmos_container(CosmosContainers.ALERTS.name))
        self.log = DeliveryLog(get_clients().table(Tables.DELIVERY_LOG), self.clock)
        client = ApiClient(None, timeout=(2, 5), max_attempts=3, max_retry_after=5, sleep=lambda s: None)
        self.service = NotificationService(
            self.store,
            self.log,
            parse_channels(json.dumps(channels)),
            client,
            self.clock,
            link_base_url="https://aoc.example.com/api",
        )
        self.alert = self._alert()

    def _alert(self) -> dict[str, Any]:
        alert_id = f"alert-{uuid.uuid4().hex}"
        document = {
            "id": alert_id,
            "pk": self.tenant,
            "type": "alert",
            "tenant_id": self.tenant,
            "rule_id": "entra.global-admin-added",
            "title": "Global Administrator added",
            "description": "A user was made Global Administrator.",
            "severity": "critical",
            "mitre": ["T1098.003"],
            "group_key": "actor.upn|actor.id=attacker@contoso.com",
            "group": {"actor.upn|actor.id": "attacker@contoso.com"},
            "status": "open",
            "occurrences": 1,
            "first_seen": "2026-11-18T09:59:00.000Z",
            "last_seen": "2026-11-18T09:59:00.000Z",
            "sample": {
                "actor": "attacker@contoso.com",
                "operation": "Add member to role",
                "target": "eve@contoso.com",
            },
            "notification_round": 1,
            "deliveries": {},
        }
        assert self.store.create(document)
        return document

    def message(self, channel: str) -> NotifyMessage:
        return NotifyMessage(alert_id=self.alert["id"], pk=self.tenant, channel=channel, round=1)

    def delivery(self, channel: str) -> dict[str, Any]:
        stored = self.store.get(self.tenant, self.alert["id"])
        assert stored is not None
        return stored["deliveries"][channel]


@pytest.fixture
def setup(app_environment: dict[str, str], sim: TenantSimulator) -> Setup:
    return Setup(sim)


def test_teams_and_slack_receive_their_formats_once(setup: Setup) -> None:
    for channel in ("teams", "slack"):
        assert setup.service.deliver(setup.message(channel)).outcome == "sent"
        assert setup.service.deliver(setup.message(channel)).outcome == "duplicate"

    [teams] = setup.sim.webhook_deliveries(setup.names["teams"])
    card = teams["json"]["attachments"][0]
    assert teams["json"]["type"] == "message"
    assert card["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert card["content"]["version"] == "1.4"
    assert card["content"]["actions"][0]["url"] == f"https://aoc.example.com/api/alerts/{setup.alert['id']}"
    assert len(teams["body"].encode("utf-8")) <= 28 * 1024
    assert teams["headers"]["x-aoc-delivery-id"] == f"{setup.alert['id']}/teams/1"

    [slack] = setup.sim.webhook_deliveries(setup.names["slack"])
    assert slack["json"]["blocks"][0]["type"] == "header"
    assert "Global Administrator added" in slack["json"]["text"]
    assert setup.delivery("teams")["status"] == "sent"
    assert setup.delivery("slack")["status"] == "sent"


def test_generic_webhook_is_signed(setup: Setup) -> None:
    setup.service.deliver(setup.message("hook"))
    [hook] = setup.sim.webhook_deliveries(setup.names["webhook"])
    body = hook["body"].encode("utf-8")
    headers = hook["headers"]
    assert hook["json"]["alert"]["alert_id"] == setup.alert["id"]
    now = setup.clock.now().timestamp()
    assert verify_signature(
        SECRET, body, headers[TIMESTAMP_HEADER.lower()], headers[SIGNATURE_HEADER.lower()], now
    )
    assert not verify_signature(
        SECRET, body + b" ", headers[TIMESTAMP_HEADER.lower()], headers[SIGNATURE_HEADER.lower()], now
    )


def test_throttled_then_accepted_is_posted_once(setup: Setup) -> None:
    setup.sim.script_webhook(setup.names["teams"], [{"status": 429, "retry_after": "1"}])
    result = setup.service.deliver(setup.message("teams"))
    attempts = setup.sim.webhook_deliveries(setup.names["teams"])
    assert [a["status"] for a in attempts] == [429, 200]
    assert result.outcome == "sent"
    assert result.attempts == 2
    setup.service.deliver(setup.message("teams"))  # the queue redelivers the message
    assert len([a for a in setup.sim.webhook_deliveries(setup.names["teams"]) if a["accepted"]]) == 1
    assert setup.delivery("teams")["attempts"] == 2


def test_a_400_is_final_and_shown_on_the_alert(setup: Setup) -> None:
    setup.sim.script_webhook(setup.names["slack"], [{"status": 400, "body": "invalid_blocks"}])
    result = setup.service.deliver(setup.message("slack"))
    assert result.outcome == "failed"
    assert result.http_status == 400
    assert setup.service.deliver(setup.message("slack")).outcome == "duplicate"
    assert len(setup.sim.webhook_deliveries(setup.names["slack"])) == 1
    delivery = setup.delivery("slack")
    assert delivery["status"] == "failed"
    assert delivery["http_status"] == 400
    assert "invalid_blocks" in delivery["reason"]


def test_server_errors_go_back_to_the_queue_until_the_last_attempt(setup: Setup) -> None:
    setup.sim.script_webhook(setup.names["slack"], [], then={"status": 503})
    with pytest.raises(ApiError):
        setup.service.deliver(setup.message("slack"))
    assert setup.delivery("slack")["status"] == "retrying"
    assert len(setup.sim.webhook_deliveries(setup.names["slack"])) == 3  # bounded in-process retries

    with pytest.raises(ApiError):  # the last dequeue: the message goes to poison, to be replayed
        setup.service.deliver(setup.message("slack"), last_attempt=True)
    assert setup.delivery("slack")["status"] == "gave_up"
    row = setup.log.get(setup.message("slack"))
    assert row is not None
    assert row["status"] == "gave_up"
    assert setup.delivery("slack")["attempts"] == 6


def test_a_replay_from_poison_after_the_outage_posts_once(setup: Setup) -> None:
    setup.sim.script_webhook(setup.names["slack"], [], then={"status": 503})
    with pytest.raises(ApiError):
        setup.service.deliver(setup.message("slack"), last_attempt=True)
    assert setup.delivery("slack")["status"] == "gave_up"
    setup.sim.reset_webhook(setup.names["slack"])  # Slack is back: every POST answers 200

    result = setup.service.deliver(setup.message("slack"))  # moved from notify-poison back to notify

    assert result.outcome == "sent"
    [posted] = setup.sim.webhook_deliveries(setup.names["slack"])
    assert posted["accepted"]
    assert setup.delivery("slack")["status"] == "sent"
    assert setup.delivery("slack")["attempts"] == 4
    row = setup.log.get(setup.message("slack"))
    assert row is not None
    assert row["status"] == "sent"
    assert setup.service.deliver(setup.message("slack")).outcome == "duplicate"
    assert len(setup.sim.webhook_deliveries(setup.names["slack"])) == 1


def test_a_final_4xx_is_not_replayed(setup: Setup) -> None:
    setup.sim.script_webhook(setup.names["teams"], [{"status": 404}])
    assert setup.service.deliver(setup.message("teams"), last_attempt=True).outcome == "failed"
    assert setup.service.deliver(setup.message("teams")).outcome == "duplicate"
    assert len(setup.sim.webhook_deliveries(setup.names["teams"])) == 1


def test_a_copy_of_a_delivery_another_worker_is_sending_is_dropped(
    setup: Setup, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="shared.notify.delivery")
    message = setup.message("teams")
    held = setup.log.claim(message, "other-worker", "message-1")  # another worker, still sending
    assert held.state == "claimed"
    assert held.etag is not None
    setup.log.move(
        message, etag=held.etag, owner="other-worker", status="sending", attempts=1, message_id="message-1"
    )

    result = setup.service.deliver(message, message_id="message-2")

    assert result.outcome == "duplicate"
    assert setup.sim.webhook_deliveries(setup.names["teams"]) == []
    row = setup.log.get(message)
    assert row is not None
    assert (row["status"], row["owner"]) == ("sending", "other-worker")
    assert any("another delivery holds it" in r.getMessage() for r in caplog.records)


def _closed_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_secret_webhook_path_reaches_no_log_error_or_stored_reason(
    setup: Setup, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)  # host.json's level; urllib3 logs every request path at DEBUG
    secret = f"T000-B000-{uuid.uuid4().hex}"
    refused_secret = f"refused{uuid.uuid4().hex}"
    channels = [
        {"name": "secops-slack", "type": "slack", "url": setup.sim.webhook_url(secret)},
        {
            "name": "secops-hook",
            "type": "webhook",
            "url": f"http://127.0.0.1:{_closed_loopback_port()}/services/T000/B000/{refused_secret}?k=v",
        },
    ]
    client = ApiClient(None, timeout=(2, 5), max_attempts=2, sleep=lambda s: None)
    service = NotificationService(
        setup.store,
        setup.log,
        parse_channels(json.dumps(channels)),
        client,
        setup.clock,
        link_base_url=None,
    )
    setup.sim.script_webhook(secret, [], then={"status": 503})
    errors: list[ApiError] = []
    for channel in ("secops-slack", "secops-hook"):
        message = NotifyMessage(alert_id=setup.alert["id"], pk=setup.tenant, channel=channel, round=1)
        with pytest.raises(ApiError) as caught:
            service.deliver(message, last_attempt=True)
        errors.append(caught.value)

    assert len(setup.sim.webhook_deliveries(secret)) == 2
    assert errors[0].status == 503
    assert errors[1].status is None
    assert errors[1].code == "ConnectError"  # refused: httpx's type, never message text
    assert errors[1].never_sent
    assert errors[1].url == "webhook channel 'secops-hook'"
    stored = setup.store.get(setup.tenant, setup.alert["id"])
    rows = [
        setup.log.get(NotifyMessage(alert_id=setup.alert["id"], pk=setup.tenant, channel=c, round=1))
        for c in ("secops-slack", "secops-hook")
    ]
    assert stored is not None
    assert stored["deliveries"]["secops-hook"]["reason"].startswith("no response: ")
    formatter = caplog.handler.formatter
    assert formatter is not None
    seen = "\n".join(
        [
            *(r.getMessage() for r in caplog.records),
            *(formatter.formatException(r.exc_info) for r in caplog.records if r.exc_info),
            *(f"{e} {e.message} {e.url} {e.__cause__} {e.__context__}" for e in errors),
            json.dumps(stored["deliveries"]),
            json.dumps(rows, default=str),
        ]
    )
    assert "secops-hook" in seen
    for leaked in (secret, refused_secret, "/services/", "/webhooks/", "k=v"):
        assert leaked not in seen


# --- Exactly once when workers are slow, die, or get no answer (finding 7) ---------------------------


class GatedLimiter:
    """A rate limiter whose first grant waits for `release`: a worker descheduled right before its POST."""

    def __init__(self) -> None:
        self.waiting = threading.Event()
        self.release = threading.Event()
        self.grants = 0

    def acquire(self) -> float:
        self.grants += 1
        if self.grants == 1:
            self.waiting.set()
            assert self.release.wait(HANG_GUARD_SECONDS), "the test never released the worker"
        return 0.0


class HeldReceiver(ThreadingHTTPServer):
    """A webhook receiver on 127.0.0.1 that records each POST and answers the first one only once
    `release` is set: a receiver (or a machine) so slow that the sender's read timeout fires first."""

    daemon_threads = True

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.bodies.append(body)
                if len(receiver.bodies) == 1:
                    receiver.release.wait(HANG_GUARD_SECONDS)
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook/{uuid.uuid4().hex}"

    def close(self) -> None:
        self.release.set()
        self.shutdown()
        self.server_close()


HANG_GUARD_SECONDS = 60


def _teams_service(setup: Setup, url: str, client: ApiClient, **kwargs: Any) -> NotificationService:
    channels = parse_channels(json.dumps([{"name": "teams", "type": "teams", "url": url}]))
    return NotificationService(
        setup.store, setup.log, channels, client, setup.clock, link_base_url=None, **kwargs
    )


def _accepted(setup: Setup) -> list[dict[str, Any]]:
    return [a for a in setup.sim.webhook_deliveries(setup.names["teams"]) if a["accepted"]]


def test_a_worker_taken_over_before_its_post_never_posts(setup: Setup) -> None:
    """The cause of the Teams duplicate: a claim went stale while its worker, slowed down, still ran;
    the redelivered message took it over and posted, and so did the first worker when it resumed."""
    client = ApiClient(None, timeout=(2, 30), max_attempts=3, sleep=lambda s: None)
    url = setup.sim.webhook_url(setup.names["teams"])
    gate = GatedLimiter()
    slow = _teams_service(setup, url, client, limiters={"teams": gate})
    message = setup.message("teams")
    outcomes: list[str] = []
    first = threading.Thread(target=lambda: outcomes.append(slow.deliver(message, message_id="m1").outcome))
    first.start()
    assert gate.waiting.wait(HANG_GUARD_SECONDS)  # claimed, about to post, descheduled
    setup.clock.advance((CLAIM_STALE + dt.timedelta(seconds=1)).total_seconds())

    outcomes.append(setup.service.deliver(message, message_id="m1").outcome)  # the redelivery takes over
    gate.release.set()
    first.join(HANG_GUARD_SECONDS)

    assert outcomes == ["sent", "duplicate"]  # the redelivery posted; the first worker then stood down
    assert len(_accepted(setup)) == 1
    row = setup.log.get(message)
    assert row is not None
    assert (row["status"], row["attempts"], row["taken_over_from"]) == ("sent", 1, "claimed")
    assert setup.delivery("teams")["status"] == "sent"


def test_a_delivery_still_sending_is_never_posted_twice_within_the_function_timeout(setup: Setup) -> None:
    receiver = HeldReceiver()
    try:
        client = ApiClient(None, timeout=(2, HANG_GUARD_SECONDS), max_attempts=3, sleep=lambda s: None)
        service = _teams_service(setup, receiver.url, client)
        message = setup.message("teams")
        deferred: list[tuple[NotifyMessage, int]] = []
        outcomes: list[str] = []

        def first_delivery() -> None:
            outcomes.append(service.deliver(message, message_id="m1", defer=lambda m, s: None).outcome)

        first = threading.Thread(target=first_delivery)
        first.start()
        wait_until(lambda: receiver.bodies, timeout=HANG_GUARD_SECONDS, message="the first POST")
        # The first worker is still waiting for its answer when the host's lease on its message runs
        # out and the queue redelivers it, just inside the function timeout; other copies come too.
        setup.clock.advance(FUNCTION_TIMEOUT.total_seconds() - 1)
        redelivered = service.deliver(message, message_id="m1", defer=lambda m, s: deferred.append((m, s)))
        copy = service.deliver(message, message_id="m2", defer=lambda m, s: deferred.append((m, s)))
        receiver.release.set()
        first.join(HANG_GUARD_SECONDS)
    finally:
        receiver.close()

    assert (redelivered.outcome, copy.outcome, outcomes) == ("deferred", "duplicate", ["sent"])
    assert len(receiver.bodies) == 1
    [(again, delay)] = deferred  # the redelivery comes back once the claim is provably abandoned
    assert again == message
    assert (
        delay == (SENDING_STALE - FUNCTION_TIMEOUT + dt.timedelta(seconds=1) + DEFER_MARGIN).total_seconds()
    )
    setup.clock.advance(delay)
    assert service.deliver(again, message_id="m3").outcome == "duplicate"  # sent meanwhile: done
    assert len(receiver.bodies) == 1


def test_no_answer_after_sending_is_not_posted_again_until_the_claim_is_abandoned(setup: Setup) -> None:
    """A read timeout used to be retried at once: the receiver got the POST twice."""
    receiver = HeldReceiver()
    url = receiver.url
    try:
        impatient = ApiClient(None, timeout=(2, 0.5), max_attempts=4, sleep=lambda s: None)
        patient = ApiClient(None, timeout=(2, HANG_GUARD_SECONDS), max_attempts=4, sleep=lambda s: None)
        message = setup.message("teams")
        deferred: list[tuple[NotifyMessage, int]] = []
        result = _teams_service(setup, url, impatient).deliver(
            message, message_id="m1", defer=lambda m, s: deferred.append((m, s))
        )
        assert result.outcome == "unknown"
        wait_until(lambda: receiver.bodies, timeout=HANG_GUARD_SECONDS, message="the first POST")
        assert setup.delivery("teams")["status"] == "retrying"
        assert "not sent again before" in setup.delivery("teams")["reason"]
        receiver.release.set()

        service = _teams_service(setup, url, patient)
        assert service.deliver(message, message_id="m2").outcome == "duplicate"  # any copy meanwhile
        assert len(receiver.bodies) == 1
        [(again, delay)] = deferred
        assert delay == (SENDING_STALE + DEFER_MARGIN).total_seconds()
        setup.clock.advance(delay)
        # Abandoned: posted once more (at least once at this edge; X-AOC-Delivery-Id lets a receiver
        # drop it), then done.
        assert service.deliver(again, message_id="m3").outcome == "sent"
        assert service.deliver(again, message_id="m4").outcome == "duplicate"
    finally:
        receiver.close()
    assert len(receiver.bodies) == 2
    row = setup.log.get(message)
    assert row is not None
    assert (row["status"], row["attempts"], row["taken_over_from"]) == ("sent", 2, "unknown")
    assert setup.delivery("teams")["status"] == "sent"


def test_a_copy_of_a_sent_delivery_repairs_the_alert_status(setup: Setup) -> None:
    message = setup.message("slack")
    assert setup.service.deliver(message, message_id="m1").outcome == "sent"

    def forget_the_outcome(alert: dict[str, Any]) -> bool:  # the worker died before marking the alert
        alert["deliveries"]["slack"]["status"] = "queued"
        return True

    setup.store.update(setup.tenant, setup.alert["id"], forget_the_outcome)
    assert setup.delivery("slack")["status"] == "queued"

    assert setup.service.deliver(message, message_id="m2").outcome == "duplicate"

    assert setup.delivery("slack")["status"] == "sent"
    assert len(setup.sim.webhook_deliveries(setup.names["slack"])) == 1
