"""The event corpus of the query benchmark (bench/query.py): one tenant's events over two months.

Services, operations, actors and targets are weighted like a real tenant's audit log: a few busy admins,
mostly Exchange and SharePoint, some failures, after-hours and privileged tags. A seed makes it repeatable.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from typing import Any

TENANT_ID = "00000000-0000-0000-0000-0000000000dd"

# (service, source, category, operations as (name, operation_type), weight)
CATALOGUE: list[tuple[str, str, str, list[tuple[str, str]], int]] = [
    (
        "Exchange",
        "o365_management",
        "ExchangeAdmin",
        [
            ("Set-Mailbox", "update"),
            ("Add-MailboxPermission", "assign"),
            ("New-InboxRule", "create"),
            ("Set-TransportRule", "update"),
            ("MailItemsAccessed", "read"),
            ("Send", "action"),
        ],
        30,
    ),
    (
        "SharePoint",
        "o365_management",
        "SharePointFileOperation",
        [
            ("FileAccessed", "read"),
            ("FileModified", "update"),
            ("FileDeleted", "delete"),
            ("SharingSet", "assign"),
            ("AnonymousLinkCreated", "create"),
            ("SiteCollectionAdminAdded", "assign"),
        ],
        30,
    ),
    (
        "Directory",
        "entra_audit",
        "UserManagement",
        [
            ("Add user", "create"),
            ("Update user", "update"),
            ("Delete user", "delete"),
            ("Add member to group", "assign"),
            ("Remove member from group", "unassign"),
            ("Add member to role", "assign"),
            ("Reset user password", "update"),
            ("Update conditional access policy", "update"),
        ],
        20,
    ),
    (
        "Teams",
        "o365_management",
        "MicrosoftTeams",
        [
            ("TeamCreated", "create"),
            ("MemberAdded", "assign"),
            ("MemberRemoved", "unassign"),
            ("ChannelAdded", "create"),
            ("TeamDeleted", "delete"),
        ],
        12,
    ),
    (
        "Intune",
        "intune_audit",
        "Compliance",
        [
            ("Create DeviceCompliancePolicy", "create"),
            ("Patch DeviceConfiguration", "update"),
            ("Assign MobileApp", "assign"),
            ("Wipe ManagedDevice", "action"),
            ("Retire ManagedDevice", "action"),
        ],
        8,
    ),
]
FIRST_NAMES = [
    "adele", "alex", "allan", "debra", "diego", "emily", "enrico", "grady", "henrietta", "irvin",
    "isaiah", "johanna", "joni", "lee", "lidia", "lynne", "megan", "miriam", "nestor", "patti",
]  # fmt: skip
LAST_NAMES = ["vance", "wilber", "deyoung", "berger", "siciliani", "braun", "cattaneo", "archie", "sellers"]
APPS = ["Contoso Backup", "Provisioning Connector", "Mail Archiver", "MDM Sync", "Power Automate"]
DEPARTMENTS = ["finance", "sales", "marketing", "legal", "hr", "engineering", "operations"]
FILES = ["Budget FY27.xlsx", "Board deck.pptx", "Contract draft.docx", "Payroll.csv", "Roadmap.docx"]


def _actors(rng: random.Random) -> list[dict[str, Any]]:
    users = []
    for first in FIRST_NAMES:
        for last in rng.sample(LAST_NAMES, 3):
            users.append(
                {
                    "type": "user",
                    "id": str(uuid.UUID(int=rng.getrandbits(128))),
                    "upn": f"{first}.{last}@contoso.com",
                    "display": f"{first.title()} {last.title()}",
                    "ip": f"203.0.113.{rng.randrange(1, 255)}",
                }
            )
    apps = [
        {"type": "app", "id": str(uuid.UUID(int=rng.getrandbits(128))), "upn": None, "display": a, "ip": None}
        for a in APPS
    ]
    return users + apps


def _targets(service: str, rng: random.Random, actors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    department = rng.choice(DEPARTMENTS)
    if service == "SharePoint":
        path = f"/sites/{department}/Shared Documents/{rng.choice(FILES)}"
        return [{"type": "file", "id": path, "display": path, "modified_properties": []}]
    if service == "Intune":
        device = f"{department.upper()}-LT-{rng.randrange(1000, 9999)}"
        return [{"type": "device", "id": device, "display": device, "modified_properties": []}]
    if service == "Teams":
        return [
            {"type": "team", "id": f"team-{department}", "display": f"{department.title()} Team",
             "modified_properties": []}
        ]  # fmt: skip
    other = rng.choice(actors)
    targets = [
        {
            "type": "user",
            "id": other["id"],
            "display": other["upn"] or other["display"],
            "modified_properties": [],
        }
    ]
    if service == "Directory" and rng.random() < 0.4:
        targets.append(
            {
                "type": "group",
                "id": f"grp-{department}",
                "display": f"SG-{department.title()}-Members",
                "modified_properties": [{"name": "MembershipRule", "old": None, "new": department}],
            }
        )
    return targets


def build_events(count: int, now: dt.datetime, seed: int = 7) -> list[dict[str, Any]]:
    """`count` events for TENANT_ID spread over this month and the previous one, up to `now`."""
    from shared.ingestion.events import partition_key
    from shared.platform.clock import utc_iso

    rng = random.Random(seed)
    actors = _actors(rng)
    actor_weights = [1.0 / (rank + 1) ** 0.8 for rank in range(len(actors))]  # a few busy admins
    this_month = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    first = (this_month - dt.timedelta(days=1)).replace(day=1)
    span = (now - dt.timedelta(minutes=1) - first).total_seconds()
    services = [entry for entry in CATALOGUE for _ in range(entry[4])]
    events = []
    for i in range(count):
        service, source, category, operations, _ = rng.choice(services)
        operation, operation_type = rng.choice(operations)
        actor = rng.choices(actors, actor_weights)[0]
        when = first + dt.timedelta(seconds=rng.random() * span)
        timestamp = utc_iso(when)
        roll = rng.random()
        result = "failure" if roll < 0.07 else "unknown" if roll < 0.09 else "success"
        targets = _targets(service, rng, actors)
        tags = []
        if operation in ("Add member to role", "SiteCollectionAdminAdded", "Add-MailboxPermission"):
            tags.append("privileged")
        if operation in ("AnonymousLinkCreated", "SharingSet") and rng.random() < 0.5:
            tags.append("external")
        if when.hour < 7 or when.hour >= 19:
            tags.append("after-hours")
        who = actor["display"] or actor["upn"]
        events.append(
            {
                "id": f"bench:{i:07d}",
                "pk": partition_key(TENANT_ID, timestamp),
                "tenant_id": TENANT_ID,
                "source": source,
                "service": service,
                "category": category,
                "operation": operation,
                "operation_type": operation_type,
                "result": result,
                "result_reason": "Access denied" if result == "failure" else None,
                "actor": actor,
                "targets": targets,
                "timestamp": timestamp,
                "ingested_at": utc_iso(when + dt.timedelta(seconds=rng.randrange(30, 900))),
                "correlation_id": str(uuid.UUID(int=rng.getrandbits(128))),
                "summary": f"{who} {operation} {targets[0]['display']}",
                "tags": tags,
                "raw_ref": {
                    "blob": f"{source}/{timestamp[:10]}/page-{i // 1000:04d}.jsonl",
                    "line": i % 1000,
                },
                "raw": None,
            }
        )
    return events
