"""Alerting through the local host: simulator events -> ingest -> rules -> alert -> Teams, Slack, webhooks."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devtools.services import PROJECT_ROOT
from devtools.simulator import TenantSimulator
from shared.ingestion.messages import AlertWorkMessage, EventRef
from shared.platform.clients import get_clients
from shared.platform.resources import CosmosContainers, Queues
from tests.support.cpu_hog import CpuHog, hog_requested
from tests.support.host_process import HostProcess, wait_until
from tests.support.simulated_tenant import app_settings_for, start_real_time_simulator

POLL_SECONDS = 4
ACTOR = "attacker@contoso.com"
# Waits only guard against a hang: generous, so a loaded machine is slow but never fails a test.
HANG_GUARD_SECONDS = 180
QUEUED = re.compile(r"(\d+) notifications queued")


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
def cpu_hog() -> Iterator[CpuHog | None]:
    """AOC_CPU_HOG=1: one busy loop per core for the whole test, host start-up included."""
    if not hog_requested():
        yield None
        return
    hog = CpuHog().start()
    yield hog
    report = hog.stop()
    idle = "unknown" if report.idle_share is None else f"{report.idle_share:.1%}"
    print(f"cpu hog: {report.processes} busy loops alive throughout; machine idle {idle}")
    assert report.alive_at_stop == report.processes, "a busy loop ended before the test did"


@pytest.fixture
def host(
    cpu_hog: CpuHog | None,
    app_environment: dict[str, str],
    simulator: TenantSimulator,
    sinks: dict[str, str],
    tmp_path: Path,
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


def _listener(host: HostProcess, queue: str) -> dict[str, Any]:
    status = host.status()
    assert status is not None
    return next(q for q in status["queue_listeners"] if q["queue"] == queue)


def _wait_until_every_notification_is_handled(host: HostProcess) -> None:
    """Every notify message queued so far has been handled (a count, so no quiet period is guessed):
    the evaluations log how many they queued, and the host counts what the notify listener finished."""

    def handled() -> bool:
        queued = sum(int(n) for n in QUEUED.findall(host.log()))
        notify = _listener(host, Queues.NOTIFY)
        return notify["processed"] + notify["poisoned"] >= queued and notify["in_flight"] == 0

    wait_until(
        handled, timeout=HANG_GUARD_SECONDS, interval=0.25, message="every queued notification handled"
    )


@pytest.mark.timeout(600)
def test_global_admin_assignment_alerts_once_per_incident(
    host: HostProcess, simulator: TenantSimulator, sinks: dict[str, str]
) -> None:
    tenant = simulator.config.tenant_id
    simulator.add_burst("global_admin", 1, spread_seconds=0, actor=ACTOR)

    [alert] = wait_until(
        lambda: [a for a in _alerts(tenant) if _settled(a)] or None,
        timeout=HANG_GUARD_SECONDS,
        interval=0.25,
        message="the alert's deliveries",
    )
    _wait_until_every_notification_is_handled(host)
    assert alert["rule_id"] == "entra.global-admin-added"
    assert alert["occurrences"] == 1
    [teams] = _accepted(simulator, sinks["teams"])
    [slack] = _accepted(simulator, sinks["slack"])
    assert teams["json"]["attachments"][0]["content"]["actions"][0]["url"].endswith(
        f"/api/alerts/{alert['id']}"
    )
    assert teams["headers"]["x-aoc-delivery-id"] == f"{alert['id']}/secops-teams/1"
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
        timeout=HANG_GUARD_SECONDS,
        message="occurrences == 21",
    )
    # Two more evaluations of the grown window (the Graph overlap re-reads it every poll), then every
    # notification they or earlier ones queued is handled: only then are the sinks counted.
    evaluations = _listener(host, Queues.ALERTS)["processed"]
    wait_until(
        lambda: _listener(host, Queues.ALERTS)["processed"] >= evaluations + 2,
        timeout=HANG_GUARD_SECONDS,
        message="two more evaluations",
    )
    _wait_until_every_notification_is_handled(host)
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
    wait_until(
        lambda: f"evaluated {len(refs)} events of run redelivery" in host.log(),
        timeout=HANG_GUARD_SECONDS,
        message="the redelivery",
    )
    _wait_until_every_notification_is_handled(host)
    [after] = _alerts(tenant)
    assert {k: v for k, v in after.items() if not k.startswith("_")} == before
    for name in ("teams", "slack", "flaky", "broken"):
        assert len(simulator.webhook_deliveries(sinks[name])) == (2 if name == "flaky" else 1), name
