"""A deterministic fake Microsoft 365 tenant for local runs and tests.

It serves the real wire formats of the Entra token endpoint, the Microsoft Graph audit APIs
(directoryAudits, signIns, Intune auditEvents), Graph directoryObjects/getByIds, the Office 365
Management Activity API and Azure DevOps "Runs - Run Pipeline", with configurable delays and faults,
scripted bursts of configuration changes, and a webhook sink for the alert notifier's Teams, Slack and
JSON webhooks. See devtools/simulator/README.md.
"""

from devtools.simulator.config import DEFAULT_DEVOPS_PAT, DEFAULT_TENANT_ID, SimulatorConfig
from devtools.simulator.devops import DEVOPS_RESOURCE, DEVOPS_SCOPE
from devtools.simulator.server import TenantSimulator

__all__ = [
    "DEFAULT_DEVOPS_PAT",
    "DEFAULT_TENANT_ID",
    "DEVOPS_RESOURCE",
    "DEVOPS_SCOPE",
    "SimulatorConfig",
    "TenantSimulator",
]
