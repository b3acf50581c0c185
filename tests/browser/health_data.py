"""What the Health and Home page tests see, seeded through the app's own stores and services.

- Watermarks of the stack's tenant (WatermarkStore): `entra_audit` fresh, with quarantined records, and
  `intune_audit` stale after a failure.
- The stack's drift scope (ProbeService over the host's DRIFT_FILE): a burst of changes three hours ago
  that settled into a backup trigger two hours ago, so the scope sits in a cooldown that has run out; the
  next probe run moves it to idle. The trigger handed to PipelineTriggerService against the simulator's
  Azure DevOps, as the trigger worker does (the scope's pipeline given here: the host's drift file has
  none, so the stack's own probe never queues a trigger on the shared queue), leaves its TriggerLog row:
  the run id and web link /api/status reports.
- Open alerts (AlertStore), created and removed by the Home test around itself.
"""

from __future__ import annotations

import datetime as dt
import functools
import ssl
import uuid
from dataclasses import dataclass
from typing import Any

import httpx

from devtools.simulator import DEFAULT_DEVOPS_PAT
from shared.alerts.model import Alert, alert_fingerprint
from shared.alerts.store import AlertStore
from shared.ingestion.watermarks import WatermarkStore
from shared.m365.http_client import ApiClient
from shared.platform.clients import get_clients
from shared.platform.clock import SystemClock, utc_iso
from shared.platform.resources import CosmosContainers, Tables
from shared.probe.devops import DevOpsClient, PipelineTriggerService, TriggerResult
from shared.probe.scopes import DriftConfig, PipelineTarget, load_drift_config
from shared.probe.service import ProbeService
from shared.probe.state import Change, ProbeWindows
from shared.probe.store import ProbeStateStore
from shared.rules.model import Severity
from tests.browser.helpers import Console

# The host's probe windows (the settings' defaults): quiet 15 min, cooldown 30 min, audit latency 30 min.
WINDOWS = ProbeWindows(
    quiet=dt.timedelta(minutes=15),
    cooldown=dt.timedelta(minutes=30),
    audit_latency=dt.timedelta(minutes=30),
    clock_skew=dt.timedelta(minutes=5),
)
PIPELINE = PipelineTarget(organization="contoso", project="M365Config", pipeline_id=1)


@dataclass(frozen=True)
class Seeded:
    scope: str
    trigger_id: str
    run: TriggerResult


@functools.cache
def seed_health(console: Console) -> Seeded:
    """Once per session (the console's stack is too)."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    clients = get_clients()
    watermarks = WatermarkStore(clients.table(Tables.WATERMARKS), console.tenant_id)
    watermarks.advance(
        "entra_audit", now - dt.timedelta(minutes=4), "seed-1", 12, now - dt.timedelta(minutes=1)
    )
    watermarks.add_counts("entra_audit", quarantined=2)
    watermarks.advance("intune_audit", now - dt.timedelta(hours=3), "seed-0", 5, now - dt.timedelta(hours=2))
    watermarks.record_failure("intune_audit", "seed-2", "HTTPError: 503 Service Unavailable")

    drift = load_drift_config(console.drift_file)
    assert [s.name for s in drift.scopes] == [console.probe_scope], drift
    assert drift.scopes[0].pipeline is None, "the stack's scope must not queue triggers on the shared queue"
    # ProbeService's trigger queue and PipelineTriggerService's retry queue: a queue of its own, which
    # neither sends to here (no pipeline; a run Azure DevOps takes at once).
    spare = f"browser-trigger-{uuid.uuid4().hex[:10]}"
    clients.queue_service.create_queue(spare)
    http = httpx.Client(verify=ssl.create_default_context(cafile=console.ca_bundle))
    try:
        probe = ProbeService(
            ProbeStateStore(clients.table(Tables.PROBE_STATE)), drift, clients.queue(spare), WINDOWS
        )
        burst_at = now - dt.timedelta(hours=3)
        changes = [
            Change(
                event_id=f"entra_audit:seed-{uuid.uuid4().hex}",
                at=utc_iso(burst_at - dt.timedelta(minutes=i)),
                service="Directory",
                operation="Update conditional access policy",
                actor="ana@contoso.com",
            )
            for i in range(3)
        ]
        probe.advance({console.probe_scope: changes}, burst_at)
        [settled] = probe.advance({}, now - dt.timedelta(hours=2))
        assert settled.trigger is not None, settled
        assert settled.phase == "cooldown", settled
        with_pipeline = DriftConfig(scopes=[drift.scopes[0].model_copy(update={"pipeline": PIPELINE})])
        devops = DevOpsClient(
            ApiClient(None, max_attempts=1, http=http),
            console.simulator.devops_base_url,
            pat=DEFAULT_DEVOPS_PAT,
        )
        service = PipelineTriggerService(
            devops, with_pipeline, clients.table(Tables.TRIGGER_LOG), SystemClock(), clients.queue(spare)
        )
        run = service.handle(settled.trigger, message_id="browser-seed")
    finally:
        http.close()
        clients.queue_service.delete_queue(spare)
    assert run.state == "queued", run
    return Seeded(console.probe_scope, settled.trigger.trigger_id, run)


def create_open_alerts(console: Console, severities: list[Severity]) -> list[str]:
    """Open alerts of the stack's tenant, one per severity given; their ids."""
    store = AlertStore(get_clients().cosmos_container(CosmosContainers.ALERTS.name))
    now = utc_iso(dt.datetime.now(dt.UTC))
    tag = uuid.uuid4().hex[:8]
    ids = []
    for i, severity in enumerate(severities):
        rule = f"browser.home-{tag}-{i}"
        alert = Alert(
            id=alert_fingerprint(console.tenant_id, rule, "g", 0),
            pk=console.tenant_id,
            tenant_id=console.tenant_id,
            rule_id=rule,
            title=f"Home page alert {i}",
            description="seeded for the Home page test",
            severity=severity,
            group_key="g",
            occurrences=1,
            first_seen=now,
            last_seen=now,
            sample={"service": "Directory", "operation": "Add member to role"},
            created_at=now,
            updated_at=now,
        )
        assert store.create(alert.model_dump(mode="json"))
        ids.append(alert.id)
    return ids


def delete_alerts(console: Console, ids: list[str]) -> None:
    container = get_clients().cosmos_container(CosmosContainers.ALERTS.name)
    for alert_id in ids:
        container.delete_item(alert_id, partition_key=console.tenant_id)


def status_queue(status: dict[str, Any], name: str) -> dict[str, Any]:
    return next(q for q in status["queues"] if q["name"] == name)
