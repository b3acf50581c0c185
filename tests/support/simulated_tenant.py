"""App settings that point the app at a running tenant simulator."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from devtools.simulator import SimulatorConfig, TenantSimulator

CLIENT_ID = "11111111-2222-3333-4444-555555555555"


def app_settings_for(simulator: TenantSimulator) -> dict[str, str]:
    return {
        "M365_TENANT_ID": simulator.config.tenant_id,
        "M365_AUTH_MODE": "msal",
        "M365_CLIENT_ID": CLIENT_ID,
        "M365_CLIENT_SECRET": "simulator-secret",
        "M365_AUTHORITY_HOST": simulator.base_url,
        "GRAPH_BASE_URL": f"{simulator.base_url}/graph",
        "MANAGEMENT_BASE_URL": f"{simulator.base_url}/manage",
        "DEVOPS_BASE_URL": simulator.devops_base_url,
        # The simulator's Azure DevOps takes a PAT; token mode would use the machine's Azure identity.
        "DEVOPS_AUTH_MODE": "pat",
    }


def start_real_time_simulator(**config: Any) -> TenantSimulator:
    """A simulator with no generated day whose clock reads real time, as the app's does."""
    now = time.time()
    settings: dict[str, Any] = {"events_per_day": 0, **config}
    return TenantSimulator(
        SimulatorConfig(epoch=dt.datetime.fromtimestamp(now, dt.UTC), started_at_unix=now, **settings)
    ).start()
