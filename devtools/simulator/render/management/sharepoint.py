"""Audit.SharePoint: SharePoint and OneDrive file, sharing and sharing-policy operations."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from devtools.simulator.directory import guid
from devtools.simulator.render.common import (
    USER_AGENTS,
    Json,
    RecordBuilder,
    RenderContext,
    Template,
    puid,
    random_ip,
)
from devtools.simulator.render.management.common_schema import common_schema

if TYPE_CHECKING:
    from devtools.simulator.generator import Record


# (site URL, folder, Workload) of the sites files live in; DLP.All matches files there too.
SITES = (
    ("https://contoso.sharepoint.com/sites/Finance/", "Shared Documents/Budget", "SharePoint"),
    ("https://contoso.sharepoint.com/sites/Marketing/", "Shared Documents/Kampagnen", "SharePoint"),
    ("https://contoso.sharepoint.com/sites/Fjordprosjekt/", "Delte dokumenter", "SharePoint"),
    (
        "https://contoso-my.sharepoint.com/personal/zoe_lukasz_contoso_onmicrosoft_com/",
        "Documents",
        "OneDrive",
    ),
)
FILES = (
    "Q3 Forecast \u2013 Zoë.xlsx",
    "Budget 2026.xlsx",
    "Präsentation Vertrieb.pptx",
    "議事録.docx",
    "Kontrakt Ødegård.pdf",
    "passwords.txt",
)


def _file_operation_builder(operation: str, record_type: int) -> RecordBuilder:
    def build(rng: random.Random, ctx: RenderContext, record: Record) -> Json:
        user = rng.choice(ctx.directory.users)
        site, folder, workload = rng.choice(SITES)
        file_name = rng.choice(FILES)
        object_id = f"{site}{folder}/{file_name}" if operation != "SharingPolicyChanged" else site.rstrip("/")
        out = common_schema(
            ctx, record, record_type=record_type, operation=operation, workload=workload,
            user_id=user.upn, user_key=f"i:0h.f|membership|{puid(user.id).lower()}@live.com",
            user_type=2 if operation == "SharingPolicyChanged" else 0,
            result="Succeeded", object_id=object_id, client_ip=random_ip(rng),
        )  # fmt: skip
        out.update(
            {
                "CorrelationId": guid(rng),
                "EventSource": "SharePoint",
                "ItemType": "Web" if operation == "SharingPolicyChanged" else "File",
                "Site": guid(random.Random(site)),  # noqa: S311 - stable per site
                "UserAgent": rng.choice(USER_AGENTS),
                "WebId": guid(random.Random(site + "web")),  # noqa: S311
                "SiteUrl": site,
            }
        )
        if operation != "SharingPolicyChanged":
            out.update(
                {
                    "ListId": guid(random.Random(site + folder)),  # noqa: S311
                    "ListItemUniqueId": guid(rng),
                    "SourceFileExtension": file_name.rsplit(".", 1)[-1],
                    "SourceFileName": file_name,
                    "SourceRelativeUrl": folder,
                }
            )
        if operation == "SharingSet":
            guest = rng.random() < 0.4
            out.update(
                {
                    "TargetUserOrGroupType": "Guest" if guest else "Member",
                    "TargetUserOrGroupName": "partner@fabrikam.com"
                    if guest
                    else rng.choice(ctx.directory.users).upn,
                    "EventData": "<Type>Edit</Type><MembersCanShare>Yes</MembersCanShare>",
                }
            )
        elif operation == "AnonymousLinkCreated":
            out["EventData"] = rng.choice(("<Type>View</Type>", "<Type>Edit</Type>"))
        elif operation == "SharingPolicyChanged":
            out["ModifiedProperties"] = [
                {
                    "Name": "SharingCapability",
                    "NewValue": "ExternalUserAndGuestSharing",
                    "OldValue": "ExistingExternalUserSharingOnly",
                }
            ]
        return out

    return build


TEMPLATES: tuple[Template, ...] = (
    Template("FileAccessed", 6, _file_operation_builder("FileAccessed", 6)),
    Template("FileModified", 3, _file_operation_builder("FileModified", 6)),
    Template("SharingSet", 1.5, _file_operation_builder("SharingSet", 14)),
    Template("AnonymousLinkCreated", 1, _file_operation_builder("AnonymousLinkCreated", 14)),
    Template("SharingPolicyChanged", 0.3, _file_operation_builder("SharingPolicyChanged", 4)),
)
