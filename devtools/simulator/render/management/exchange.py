"""Audit.Exchange: Exchange admin cmdlets (Set-Mailbox, New-TransportRule, New-InboxRule, ...).

Each cmdlet draws its ObjectId and Parameters with a parameters function (`_..._parameters`);
`_cmdlet_builder` wraps them in the Exchange admin schema.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import TYPE_CHECKING

from devtools.simulator.directory import User, guid
from devtools.simulator.render.common import Json, RecordBuilder, RenderContext, Template, puid, random_ip
from devtools.simulator.render.management.common_schema import common_schema

if TYPE_CHECKING:
    from devtools.simulator.generator import Record

# A cmdlet's (ObjectId, Parameters).
CmdletParameters = tuple[str, list[Json]]

_EXCHANGE_SERVERS = (
    "DM6PR11MB4122 (15.20.7316.030)",
    "AM0PR07MB6211 (15.20.7292.022)",
    "TYZPR04MB5848 (15.20.7270.015)",
)
_SYSTEM_EXCHANGE = "NT AUTHORITY\\SYSTEM (Microsoft.Exchange.ServiceHost)"


def _cmdlet_builder(
    operation: str, parameters: Callable[[random.Random, RenderContext, User], CmdletParameters]
) -> RecordBuilder:
    def build(rng: random.Random, ctx: RenderContext, record: Record) -> Json:
        actor = rng.choice(ctx.directory.admins if operation != "New-InboxRule" else ctx.directory.users)
        target = rng.choice(ctx.directory.users)
        object_id, params = parameters(rng, ctx, target)
        system = rng.random() < 0.05
        out = common_schema(
            ctx, record, record_type=1, operation=operation, workload="Exchange",
            user_id=_SYSTEM_EXCHANGE if system else actor.upn,
            user_key=_SYSTEM_EXCHANGE if system else puid(actor.id),
            user_type=4 if system else (0 if operation == "New-InboxRule" else 2),
            result="False" if rng.random() < 0.04 else "True",
            object_id=object_id, client_ip=random_ip(rng) if rng.random() < 0.7 else "",
        )  # fmt: skip
        out.update(
            {
                "AppId": "fb78d390-0c51-40cd-8e17-fdbfab77341b" if rng.random() < 0.5 else "",
                "ExternalAccess": system,
                "OrganizationName": ctx.directory.domain,
                "OriginatingServer": rng.choice(_EXCHANGE_SERVERS),
                "Parameters": params,
                "SessionId": guid(rng),
            }
        )
        return out

    return build


def _set_mailbox_parameters(rng: random.Random, ctx: RenderContext, target: User) -> CmdletParameters:
    external = rng.choice(("collector@proton.example", "zoë.backup@gmail.example", "archive@fabrikam.com"))
    return target.display_name, [
        {"Name": "Identity", "Value": target.upn},
        {"Name": "ForwardingSmtpAddress", "Value": f"smtp:{external}"},
        {"Name": "DeliverToMailboxAndForward", "Value": str(rng.random() < 0.5)},
    ]


def _transport_rule_parameters(rng: random.Random, ctx: RenderContext, target: User) -> CmdletParameters:
    name = rng.choice(("Bcc external mail to archive", "Disclaimer \u2013 Société", "Block .iso attachments"))
    return name, [
        {"Name": "Name", "Value": name},
        {"Name": "SentToScope", "Value": "NotInOrganization"},
        {"Name": "BlindCopyTo", "Value": target.upn},
        {"Name": "Mode", "Value": "Enforce"},
    ]


def _mailbox_permission_parameters(rng: random.Random, ctx: RenderContext, target: User) -> CmdletParameters:
    grantee = rng.choice(ctx.directory.users)
    return target.display_name, [
        {"Name": "Identity", "Value": target.id},
        {"Name": "User", "Value": grantee.upn},
        {"Name": "AccessRights", "Value": "FullAccess"},
        {"Name": "InheritanceType", "Value": "All"},
        {"Name": "AutoMapping", "Value": "False"},
    ]


def _inbox_rule_parameters(rng: random.Random, ctx: RenderContext, target: User) -> CmdletParameters:
    name = rng.choice(("..", "Rechnungen", "RSS Feeds", "請求書"))
    return f"{target.display_name}\\{name}", [
        {"Name": "Name", "Value": name},
        {"Name": "SubjectOrBodyContainsWords", "Value": "invoice;payment;Überweisung"},
        {"Name": "MoveToFolder", "Value": "RSS Feeds"},
        {"Name": "MarkAsRead", "Value": "True"},
        {"Name": "StopProcessingRules", "Value": "True"},
    ]


def _audit_config_parameters(rng: random.Random, ctx: RenderContext, target: User) -> CmdletParameters:
    return "Admin Audit Log Settings", [
        {"Name": "UnifiedAuditLogIngestionEnabled", "Value": str(rng.random() < 0.5)},
        {"Name": "AdminAuditLogAgeLimit", "Value": "90.00:00:00"},
    ]


TEMPLATES: tuple[Template, ...] = (
    Template("Set-Mailbox", 3, _cmdlet_builder("Set-Mailbox", _set_mailbox_parameters)),
    Template("New-TransportRule", 1, _cmdlet_builder("New-TransportRule", _transport_rule_parameters)),
    Template(
        "Add-MailboxPermission", 2, _cmdlet_builder("Add-MailboxPermission", _mailbox_permission_parameters)
    ),
    Template("New-InboxRule", 3, _cmdlet_builder("New-InboxRule", _inbox_rule_parameters)),
    Template(
        "Set-AdminAuditLogConfig", 0.5, _cmdlet_builder("Set-AdminAuditLogConfig", _audit_config_parameters)
    ),
)
