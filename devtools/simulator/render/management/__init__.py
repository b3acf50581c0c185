"""Office 365 Management Activity API records, one module per content type.

Every record starts from the common schema (`common_schema`) and adds its workload's fields:
Audit.AzureActiveDirectory (`azure_ad`), Audit.Exchange (`exchange`), Audit.SharePoint
(`sharepoint`), Audit.General (`teams`, Microsoft Teams) and DLP.All (`dlp`).
"""

from __future__ import annotations

from devtools.simulator.render.common import Template
from devtools.simulator.render.management import azure_ad, dlp, exchange, sharepoint, teams

# Content type -> its templates, in the order the generator's CONTENT_TYPES lists them.
TEMPLATES_BY_CONTENT_TYPE: dict[str, tuple[Template, ...]] = {
    "Audit.AzureActiveDirectory": azure_ad.TEMPLATES,
    "Audit.Exchange": exchange.TEMPLATES,
    "Audit.SharePoint": sharepoint.TEMPLATES,
    "Audit.General": teams.TEMPLATES,
    "DLP.All": dlp.TEMPLATES,
}
