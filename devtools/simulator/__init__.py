"""A deterministic fake Microsoft 365 tenant for local runs and tests.

It serves the real wire formats of the Entra token endpoint, the Microsoft Graph audit APIs
(directoryAudits, signIns, Intune auditEvents), Graph directoryObjects/getByIds and the Office 365
Management Activity API, with configurable delays and faults. See devtools/simulator/README.md.
"""

from devtools.simulator.config import DEFAULT_TENANT_ID, SimulatorConfig
from devtools.simulator.server import TenantSimulator

__all__ = ["DEFAULT_TENANT_ID", "SimulatorConfig", "TenantSimulator"]
