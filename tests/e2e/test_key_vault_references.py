"""Unresolved Key Vault references through the local host, as App Service hands them to the app.

A reference it cannot resolve (the secret was never set, or the identity's access is not in effect
yet) arrives as its own `@Microsoft.KeyVault(...)` text. The app must name it in /api/health and
/api/status, and never use it as a secret: no PAT reaches Azure DevOps, and the trigger goes to poison
with a message that says why.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.services import PROJECT_ROOT
from devtools.simulator import TenantSimulator
from shared.platform.clients import get_clients
from shared.platform.resources import Queues, poison_queue
from shared.probe.state import ChangeSummary, Trigger
from tests.support.drift import unique_drift_file
from tests.support.host_process import FUNCTION_KEY, HostProcess, http_request, wait_until
from tests.support.simulated_tenant import app_settings_for, start_real_time_simulator

TENANT_ID = "00000000-0000-0000-0000-0000000000ee"
VAULT = "kv-aoc-e2e"
UNRESOLVED = {
    "DEVOPS_PAT": "devops-pat",
    "ALERT_CHANNELS": "alert-channels",
    "API_CONTINUATION_SECRET": "api-continuation-secret",
}


def reference(secret: str) -> str:
    return f"@Microsoft.KeyVault(VaultName={VAULT};SecretName={secret})"


@pytest.fixture
def simulator() -> Iterator[TenantSimulator]:
    simulator = start_real_time_simulator(tenant_id=TENANT_ID, seed=11)
    yield simulator
    simulator.stop()


@pytest.fixture
def host(
    app_environment: dict[str, str], simulator: TenantSimulator, tmp_path: Path
) -> Iterator[tuple[HostProcess, str]]:
    drift_file, scope = unique_drift_file(tmp_path, "kvref")
    settings = {
        **app_environment,
        **app_settings_for(simulator),
        "DRIFT_FILE": str(drift_file),
        "SOURCE_ENTRA_AUDIT": "false",
        "SOURCE_INTUNE_AUDIT": "false",
        "SOURCE_ENTRA_SIGNIN": "false",
        "SOURCE_O365_MANAGEMENT": "false",
        "DEVOPS_AUTH_MODE": "pat",
        "DEVOPS_ORGANIZATION": "contoso",
        "DEVOPS_PROJECT": "M365Config",
        "DEVOPS_PIPELINE_ID": "1",
        **{setting: reference(secret) for setting, secret in UNRESOLVED.items()},
        "AzureFunctionsJobHost__extensions__queues__visibilityTimeout": "00:00:00",
        "AzureFunctionsJobHost__extensions__queues__maxPollingInterval": "00:00:01",
    }
    process = HostProcess(app_dir=PROJECT_ROOT, work_dir=tmp_path, environment=settings).start(timeout=60)
    yield process, scope
    process.stop()


def _configuration(document: dict[str, object]) -> dict[str, dict[str, str]]:
    issues = document["configuration"]
    assert isinstance(issues, list)
    return {issue["setting"]: issue for issue in issues}


def test_unresolved_references_are_reported_by_name_and_never_used_as_secrets(
    host: tuple[HostProcess, str], simulator: TenantSimulator
) -> None:
    process, scope = host

    health = http_request("GET", f"{process.base_url}/api/health")
    assert health.status == 200, health.body
    reported = _configuration(health.json())
    assert set(reported) == set(UNRESOLVED)
    for setting, secret in UNRESOLVED.items():
        assert reported[setting]["problem"] == "unresolved_key_vault_reference"
        assert reported[setting]["secret_name"] == secret
    assert "no notification is sent" in reported["ALERT_CHANNELS"]["detail"]

    status = http_request("GET", f"{process.base_url}/api/status", headers={"x-functions-key": FUNCTION_KEY})
    assert status.status == 200, status.body
    assert _configuration(status.json()) == reported

    # A backup trigger: the PAT setting is an unresolved reference, so nothing may reach Azure DevOps.
    trigger_id = f"{scope}:{uuid.uuid4().hex[:8]}"
    trigger = Trigger(
        trigger_id=trigger_id,
        scope=scope,
        reason="unresolved PAT",
        summary=ChangeSummary(
            count=1, first_change_at="2026-01-01T00:00:00Z", last_change_at="2026-01-01T00:00:00Z",
            actors=[], top_operations=[], services=["Intune"],
        ),
        checked_at="2026-01-01T00:00:00Z",
    )  # fmt: skip
    get_clients().queue(Queues.BACKUP_TRIGGER).send_message(trigger.model_dump_json())
    poison = get_clients().queue(poison_queue(Queues.BACKUP_TRIGGER))
    wait_until(
        lambda: any(trigger_id in m.content for m in poison.peek_messages(max_messages=32)),
        timeout=60,
        message="the trigger in backup-trigger-poison",
    )

    assert simulator.devops_attempts() == []
    log = process.log()
    assert "DEVOPS_PAT is an unresolved Key Vault reference" in log
    assert "@Microsoft.KeyVault(" not in log
    assert "@Microsoft.KeyVault(" not in health.body.decode() + status.body.decode()
