"""Alerting through the local host: simulator events -> ingest -> rules -> alert -> Teams, Slack, webhooks."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devtools.services import PROJECT_ROOT
from devtools.simulator import TenantSimulator
from shared.clients import get_clients
from shared.messages import AlertWorkMessage, EventRef
from shared.resources import CosmosContainers, Queues
from tests.support.host_process import HostProcess, wait_until
from tests.support.simulated_tenant import app_settings_for, start_real_time_simulator

POLL_SECONDS = 4
ACTOR = "attacker@contoso.com"


@pytest.fixture
def simulator() -> Iterator[TenantSimulator]:
    simulator = start_real_time_simulator(tenant_id=str(uuid.uuid4()), seed=5)
    yield simulator
    simulator.stop()


@pytest.fixture
def sinks(simulator: TenantSimulator) -> dict[str, str]:
    names = {
        channel: f"{channel}-{uuid.uuid4().hex[:6]}" for channel in ("teams", "slack", "flaky", "broken")
    }
    simulator.script_webhook(names["flaky"], [{"status": 429, "retry_after": "1"}])
    simulator.script_webhook(names["broken"], [], then={"status": 400, "body": "unknown payload format"})
    return names


@pytest.fixture
def host(
    app_environment: dict[str, str], simulator: TenantSimulator, sinks: dict[str, str], tmp_path: Path
) -> Iterator[HostProcess]:
    channels = [
        {
            "name": "secops-teams",
            "type": "teams",
            "url": simulator.webhook_url(sinks["teams"]),
            "min_severity": "high",
        },
        {"name": "secops-slack", "type": "slack", "url": simulator.webhook_url(sinks["slack"])},
        {
            "name": "siem-flaky",
            "type": "webhook",
            "url": simulator.webhook_url(sinks["flaky"]),
            "secret": "s3cret",
        },
        {"name": "siem-broken", "type": "webhook", "url": simulator.webhook_url(sinks["broken"])},
    ]
    settings = {
        **app_environment,
        **app_settings_for(simulator),
        "SOURCE_ENTRA_AUDIT": "true",
        "SOURCE_INTUNE_AUDIT": "false",
        "SOURCE_ENTRA_SIGNIN": "false",
        "SOURCE_O365_MANAGEMENT": "false",
        "PROBE_ENABLED": "false",
        "POLL_SCHEDULE": f"*/{POLL_SECONDS} * * * * *",
        "GRAPH_OVERLAP_SECONDS": "60",
        "INITIAL_LOOKBACK_SECONDS": "300",
        "ALERT_CHANNELS": json.dumps(channels),
        "ALERT_LINK_BASE_URL": "http://127.0.0.1:7071/api",
        "ALERT_BUSINESS_HOURS": "00:00-24:00",  # keep the after-hours rule out of this test
        "ALERT_BUSINESS_DAYS": "Mon-Sun",
        "AzureFunctionsJobHost__extensions__queues__maxPollingInterval": "00:00:01",
    }
    process = HostProcess(app_dir=PROJECT_ROOT, work_dir=tmp_path, environment=settings).start(timeout=60)
    yield process
    process.stop()


def _alerts(tenant_id: str) -> list[dict[str, Any]]:
    container = get_clients().cosmos_container(CosmosContainers.ALERTS.name)
    return list(
        container.query_items(
            "SELECT * FROM c WHERE c.pk = @pk",
            parameters=[{"name": "@pk", "value": tenant_id}],
            partition_key=tenant_id,
        )
    )


def _accepted(simulator: TenantSimulator, name: str) -> list[dict[str, Any]]:
    return [a for a in simulator.webhook_deliveries(name) if a["accepted"]]


def _settled(alert: dict[str, Any]) -> bool:
    return all(d["status"] in ("sent", "failed") for d in alert["deliveries"].values())


@pytest.mark.timeout(240)
def test_global_admin_assignment_alerts_once_per_incident(
    host: HostProcess, simulator: TenantSimulator, sinks: dict[str, str]
) -> None:
    tenant = simulator.config.tenant_id
    started = time.monotonic()
    simulator.add_burst("global_admin", 1, spread_seconds=0, actor=ACTOR)

    wait_until(
        lambda: _accepted(simulator, sinks["teams"]) and _accepted(simulator, sinks["slack"]),
        timeout=60,
        interval=0.25,
        message="the Teams and Slack notifications",
    )
    elapsed = time.monotonic() - started
    print(f"Teams and Slack notified {elapsed:.1f}s after the assignment (poll cycle {POLL_SECONDS}s)")
    assert elapsed <= 2 * POLL_SECONDS + 2, (
        f"notified after {elapsed:.1f}s"
    )  # two poll cycles, plus queue hops

    [alert] = wait_until(
        lambda: [a for a in _alerts(tenant) if _settled(a)] or None, timeout=30, message="deliveries"
    )
    assert alert["rule_id"] == "entra.global-admin-added"
    assert alert["occurrences"] == 1
    [teams] = _accepted(simulator, sinks["teams"])
    [slack] = _accepted(simulator, sinks["slack"])
    assert teams["json"]["attachments"][0]["content"]["actions"][0]["url"].endswith(
        f"/api/alerts/{alert['id']}"
    )
    assert "Global Administrator added" in slack["json"]["text"]

    deliveries = alert["deliveries"]
    assert deliveries["secops-teams"]["status"] == "sent"
    assert deliveries["secops-slack"]["status"] == "sent"
    # 429 then 200: retried after Retry-After, received exactly once.
    assert [a["status"] for a in simulator.webhook_deliveries(sinks["flaky"])] == [429, 200]
    assert deliveries["siem-flaky"]["status"] == "sent"
    assert deliveries["siem-flaky"]["attempts"] == 2
    # 400: never retried, and the alert says why.
    assert [a["status"] for a in simulator.webhook_deliveries(sinks["broken"])] == [400]
    assert deliveries["siem-broken"]["status"] == "failed"
    assert deliveries["siem-broken"]["http_status"] == 400
    assert "unknown payload format" in deliveries["siem-broken"]["reason"]

    # 20 more within the suppression window: the same alert grows, nobody is notified again.
    simulator.add_burst("global_admin", 20, spread_seconds=20, actor=ACTOR)
    wait_until(
        lambda: [a for a in _alerts(tenant) if a["occurrences"] == 21] or None,
        timeout=60,
        message="occurrences == 21",
    )
    time.sleep(2 * POLL_SECONDS + 2)
    [grown] = _alerts(tenant)
    assert grown["id"] == alert["id"]
    assert grown["occurrences"] == 21
    for name in ("teams", "slack", "flaky"):
        assert len(_accepted(simulator, sinks[name])) == 1, name
    assert len(simulator.webhook_deliveries(sinks["broken"])) == 1

    # Redelivering an alerts message changes nothing.
    before = {k: v for k, v in grown.items() if not k.startswith("_")}
    refs = [EventRef(id=e["id"], pk=e["pk"]) for e in grown["events"]]
    message = AlertWorkMessage(source="entra_audit", blob="redelivered", run_id="redelivery", events=refs)
    get_clients().queue(Queues.ALERTS).send_message(message.model_dump_json())
    wait_until(lambda: f"evaluated {len(refs)} events" in host.log(), timeout=30, message="the redelivery")
    time.sleep(POLL_SECONDS)
    [after] = _alerts(tenant)
    assert {k: v for k, v in after.items() if not k.startswith("_")} == before
    for name in ("teams", "slack", "flaky", "broken"):
        assert len(simulator.webhook_deliveries(sinks[name])) == (2 if name == "flaky" else 1), name
