"""Notification delivery to the simulator's webhook sink, with the delivery log in real Azurite."""

from __future__ import annotations

import datetime as dt
import json
import logging
import socket
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from devtools.simulator import SimulatorConfig, TenantSimulator
from shared.alerts.model import NotifyMessage
from shared.alerts.store import AlertStore
from shared.clients import get_clients
from shared.http_client import ApiClient, ApiError
from shared.notify.channels import parse_channels
from shared.notify.delivery import DeliveryLog, NotificationService
from shared.notify.payloads import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify_signature
from shared.resources import CosmosContainers, Tables
from tests.support.clock import ManualClock

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
    assert setup.log.get(setup.message("slack"))["status"] == "gave_up"
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
    assert setup.log.get(setup.message("slack"))["status"] == "sent"
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
    assert setup.log.claim(setup.message("teams"))[0] == "claimed"  # another worker, still sending

    result = setup.service.deliver(setup.message("teams"))

    assert result.outcome == "duplicate"
    assert setup.sim.webhook_deliveries(setup.names["teams"]) == []
    assert setup.log.get(setup.message("teams"))["status"] == "sending"
    assert any("another worker" in r.getMessage() for r in caplog.records if r.levelno == logging.INFO)


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
    assert "Connection" in (errors[1].code or "")
    assert errors[1].url == "webhook channel 'secops-hook'"
    stored = setup.store.get(setup.tenant, setup.alert["id"])
    rows = [
        setup.log.get(NotifyMessage(alert_id=setup.alert["id"], pk=setup.tenant, channel=c, round=1))
        for c in ("secops-slack", "secops-hook")
    ]
    assert stored is not None
    assert stored["deliveries"]["secops-hook"]["reason"].startswith("no response: ")
    seen = "\n".join(
        [
            *(r.getMessage() for r in caplog.records),
            *(caplog.handler.formatter.formatException(r.exc_info) for r in caplog.records if r.exc_info),
            *(f"{e} {e.message} {e.url} {e.__cause__} {e.__context__}" for e in errors),
            json.dumps(stored["deliveries"]),
            json.dumps(rows, default=str),
        ]
    )
    assert "secops-hook" in seen
    for leaked in (secret, refused_secret, "/services/", "/webhooks/", "k=v"):
        assert leaked not in seen
