"""What every source's renderer shares: the context, the template type and small value helpers.

Also the catalogues more than one source draws from: user agents, IP ranges, the client apps,
resource apps and devices of sign-ins (Entra sign-ins and Office 365 Azure AD logons both use them).
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from devtools.simulator.directory import Directory, guid

if TYPE_CHECKING:
    from devtools.simulator.generator import Record

Json = dict[str, Any]


@dataclass(frozen=True)
class RenderContext:
    """What a record's content is drawn from besides its own seed: the tenant and its directory."""

    tenant_id: str
    directory: Directory


# Builds one record's wire JSON from a Random seeded with the record's seed (draw order is part of
# the output: changing it changes every seed's day), the context and the record (ids and times).
RecordBuilder = Callable[[random.Random, RenderContext, "Record"], Json]


@dataclass(frozen=True)
class Template:
    """One kind of activity of a source: a unique name, its weight in the generated day (0: only in
    scripted bursts) and the builder of its records."""

    name: str
    weight: float
    build: RecordBuilder


def json_encoded(value: Any) -> str:
    """A value JSON-encoded into a string, as Graph sends modifiedProperties old/new values."""
    return json.dumps(value, ensure_ascii=False)


def puid(object_id: str) -> str:
    """A stable Passport unique id (PUID) for an object id, as Management records carry in UserKey."""
    return "1003" + hashlib.sha256(object_id.encode()).hexdigest()[:12].upper()


IPV4_PREFIXES = ("20.190", "40.126", "52.97", "86.12", "185.45", "91.198", "131.107")


def random_ip(rng: random.Random) -> str:
    """A client IP address: IPv4 from a few public prefixes, one in ten IPv6."""
    if rng.random() < 0.1:
        return f"2a01:111:f400:{rng.randrange(0x10000):x}::{rng.randrange(1, 0x10000):x}"
    return f"{rng.choice(IPV4_PREFIXES)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"


USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/121.0.0.0 Safari/537.36 Edg/121.0.0.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_2) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.2 Safari/605.1.15",
    "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17126; Pro)",
    "PowerShell/7.4 Microsoft.Graph.Authentication/2.11.1",
)
# (display name, app id, clientAppUsed) of the apps users sign in with.
CLIENT_APPS = (
    ("Microsoft Office", "d3590ed6-52b3-4102-aeff-aad2292ab01c", "Mobile Apps and Desktop clients"),
    ("Azure Portal", "c44b4083-3bb0-49c1-b47d-974e53cbdf3c", "Browser"),
    ("Microsoft Teams", "1fec8e78-bce4-4aaf-ab1b-5451cc387264", "Mobile Apps and Desktop clients"),
    ("Microsoft Graph PowerShell", "14d82eec-204b-4c2f-b7e8-296a70dab67e", "Mobile Apps and Desktop clients"),
    ("Office 365 Exchange Online", "00000002-0000-0ff1-ce00-000000000000", "Browser"),
)
# (display name, app id) of the resources they sign in to.
RESOURCE_APPS = (
    ("Microsoft Graph", "00000003-0000-0000-c000-000000000000"),
    ("Office 365 Exchange Online", "00000002-0000-0ff1-ce00-000000000000"),
    ("Windows Azure Service Management API", "797f4846-ba00-4fd7-ba43-dac1f8f63013"),
    ("Office 365 SharePoint Online", "00000003-0000-0ff1-ce00-000000000000"),
)
# (operatingSystem, browser) of the devices they sign in from.
DEVICES = (
    ("Windows10", "Edge 121.0.0"),
    ("Windows10", "Rich Client 4.58.1.0"),
    ("MacOs", "Safari 17.2"),
    ("Ios", "Mobile Safari 17.2"),
    ("Android", "Chrome Mobile 121.0.6167"),
)


def directory_user(ctx: RenderContext, upn: str) -> tuple[str, str | None]:
    """(object id, display name) of the directory user with this UPN, or a stable made-up id."""
    for user in ctx.directory.users:
        if user.upn.lower() == upn.lower():
            return user.id, user.display_name
    return guid(random.Random(f"actor:{upn.lower()}")), None  # noqa: S311
