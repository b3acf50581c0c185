"""DLP.All: data loss prevention rule matches on SharePoint and OneDrive files."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from devtools.simulator.directory import guid
from devtools.simulator.render.common import Json, RenderContext, Template
from devtools.simulator.render.management.common_schema import common_schema
from devtools.simulator.render.management.sharepoint import FILES, SITES

if TYPE_CHECKING:
    from devtools.simulator.generator import Record


def _rule_match(rng: random.Random, ctx: RenderContext, record: Record) -> Json:
    user = rng.choice(ctx.directory.users)
    site, folder, workload = rng.choice(SITES)
    file_name = rng.choice(FILES)
    url = f"{site}{folder}/{file_name}"
    out = common_schema(
        ctx, record, record_type=11, operation="DLPRuleMatch", workload=workload,
        user_id=user.upn, user_key="DlpAgent", user_type=4, result="Succeeded", object_id=url, client_ip="",
    )  # fmt: skip
    out.update(
        {
            "IncidentId": guid(rng),
            "PolicyDetails": [
                {
                    "PolicyId": guid(random.Random("dlp-policy")),  # noqa: S311
                    "PolicyName": "U.S. Financial Data",
                    "Rules": [
                        {
                            "RuleId": guid(random.Random("dlp-rule")),  # noqa: S311
                            "RuleName": "Low volume of content detected U.S. Financial Data",
                            "Actions": ["NotifyUser"],
                            "ConditionsMatched": {
                                "SensitiveInformation": [
                                    {
                                        "Count": rng.randint(1, 9),
                                        "Confidence": 85,
                                        "SensitiveType": "50842eb7-edc8-4019-85dd-5a5c1f2bb085",
                                        "SensitiveInformationTypeName": "Credit Card Number",
                                    }
                                ]
                            },
                            "Severity": rng.choice(("Low", "Medium", "High")),
                            "RuleMode": "Enable",
                        }
                    ],
                }
            ],
            "SensitiveInfoDetectionIsIncluded": True,
            "SharePointMetaData": {
                "From": user.upn,
                "FileName": file_name,
                "FilePathUrl": url,
                "FileOwner": user.display_name,
                "SiteCollectionUrl": site,
                "UniqueID": guid(rng),
                "ExceptionInfo": {},
            },
        }
    )
    return out


TEMPLATES: tuple[Template, ...] = (Template("DLPRuleMatch", 1, _rule_match),)
