"""App settings that point the app at a running tenant simulator."""

from __future__ import annotations

from devtools.simulator import TenantSimulator

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
    }
