"""Who is who in Office 365 Management Activity API records, read from the published schema.

- `UserType` (common schema, "Enum: User Type"): 0 Regular, 1 Reserved, 2 Admin, 3 DcAdmin, 4 System,
  5 Application, 6 ServicePrincipal, 7 CustomPolicy, 8 SystemPolicy, 9 PartnerTechnician, 10 Guest. Sent
  as a number, a digit string ("5") or the member name ("Regular").
- `Actor[]` / `Target[]` (Azure Active Directory schema, IdentityTypeValuePair): `{ID, Type}` where Type is
  the IdentityType enum 0 Claim, 1 Name, 2 Other, 3 PUID, 4 SPN, 5 UPN (number, digit string or name).
  One list can describe several entities: a user's entries (`User_<oid>`, `<oid>`, `User`, UPN, PUID) and
  the client application's appId (a bare GUID of no `<Class>_<guid>` entry), or a target user and a role.
  Entities are keyed by the `<Class>_<guid>` entries; bare GUIDs equal to one of those are the same object;
  other bare GUIDs are application ids. PUIDs are never an id.
- SharePoint claims (`i:0#.f|membership|jane@contoso.com`, `i:0i.t|<appId>|app@sharepoint`) are decoded to
  the user's UPN or the app's appId and never shown.
- "Not Available", "Unknown", "N/A", "<null>", empty or blank values are absent.
"""

from __future__ import annotations

from typing import Any

# UserType (common schema).
USER_TYPE_NAMES: dict[str, int] = {
    "regular": 0,
    "reserved": 1,
    "admin": 2,
    "dcadmin": 3,
    "system": 4,
    "application": 5,
    "serviceprincipal": 6,
    "custompolicy": 7,
    "systempolicy": 8,
    "partnertechnician": 9,
    "guest": 10,
}
USER_TYPE_ACTORS: dict[int, str] = {
    0: "user",
    1: "user",
    2: "user",
    3: "system",  # a Microsoft datacenter administrator or datacenter system account
    4: "system",
    5: "application",
    6: "service_principal",
    7: "system",
    8: "system",
    9: "user",
    10: "user",
}
# IdentityType (Azure Active Directory schema).
CLAIM, NAME, OTHER, PUID, SPN, UPN = range(6)
IDENTITY_TYPE_NAMES: dict[str, int] = {"claim": 0, "name": 1, "other": 2, "puid": 3, "spn": 4, "upn": 5}
_IDENTITY_TYPE_DIGITS = {"0": 0, "1": 1, "2": 2, "3": 3, "4": 4, "5": 5}

_PLACEHOLDERS = frozenset(("not available", "unknown", "n/a", "na", "null", "<null>", "none", "-"))
# The spellings Microsoft uses (exact match is one set lookup; other casings take the slow path only when
# padded, which is rare enough).
PLACEHOLDER_SPELLINGS = frozenset(
    spelling for item in _PLACEHOLDERS for spelling in (item, item.upper(), item.title(), item.capitalize())
)
# `<Class>_<guid>` prefixes -> the canonical target type.
_CLASS_TYPES = {
    "user": "User",
    "serviceprincipal": "ServicePrincipal",
    "application": "Application",
    "group": "Group",
    "role": "Role",
    "device": "Device",
    "policy": "Policy",
    "directory": "Directory",
    "contact": "Contact",
}
_CLASS_NAMES = {name: name for name in _CLASS_TYPES.values()}
APP_CLASSES = frozenset(("ServicePrincipal", "Application"))

# Application ids of Microsoft first-party resources that appear as the resource of STS logons and as
# client applications (names as Microsoft Entra sign-in logs show them).
WELL_KNOWN_APPS: dict[str, str] = {
    "00000002-0000-0000-c000-000000000000": "Windows Azure Active Directory",
    "00000003-0000-0000-c000-000000000000": "Microsoft Graph",
    "00000002-0000-0ff1-ce00-000000000000": "Office 365 Exchange Online",
    "00000003-0000-0ff1-ce00-000000000000": "Office 365 SharePoint Online",
    "00000004-0000-0ff1-ce00-000000000000": "Skype for Business Online",
    "00000006-0000-0ff1-ce00-000000000000": "Microsoft Office 365 Portal",
    "00000007-0000-0ff1-ce00-000000000000": "Exchange Online Protection",
    "797f4846-ba00-4fd7-ba43-dac1f8f63013": "Windows Azure Service Management API",
    "c5393580-f805-4401-95e8-94b7a6ef2fc2": "Office 365 Management APIs",
    "d3590ed6-52b3-4102-aeff-aad2292ab01c": "Microsoft Office",
    "1fec8e78-bce4-4aaf-ab1b-5451cc387264": "Microsoft Teams",
    "c44b4083-3bb0-49c1-b47d-974e53cbdf3c": "Azure Portal",
    "1950a258-227b-4e31-a9cf-717495945fc2": "Microsoft Azure PowerShell",
    "04b07795-8ddb-461a-bbee-02f9e1bf7b46": "Microsoft Azure CLI",
    "14d82eec-204b-4c2f-b7e8-296a70dab67e": "Microsoft Graph Command Line Tools",
    "1b730954-1685-4b74-9bfd-dac224a7b894": "Azure Active Directory PowerShell",
    "fb78d390-0c51-40cd-8e17-fdbfab77341b": "Microsoft Exchange REST API Based Powershell",
    "27922004-5251-4030-b22d-91ecd9a37ea4": "Outlook Mobile",
    "4345a7b9-9a63-4910-a426-35363201d503": "O365 Suite UX",
    "89bee1f7-5e6e-4d8a-9f3d-ecd601259da7": "Office365 Shell WCSS-Client",
}


def present(value: object) -> str | None:
    """A usable text value: None for non-strings, empty or blank text and the placeholders Microsoft
    writes for a missing value ("Not Available", "Unknown", "N/A", "<null>")."""
    if type(value) is not str or not value:
        return None
    if value[0] > " " and value[-1] > " ":  # the usual case: no padding
        return None if value in PLACEHOLDER_SPELLINGS else value
    stripped = value.strip()
    if not stripped or stripped.casefold() in _PLACEHOLDERS:
        return None
    return stripped


def user_type(value: Any) -> int | None:
    """The UserType enum value from a number, a digit string or a member name."""
    if type(value) is int:
        return value
    if type(value) is str:
        stripped = value.strip()
        if stripped.isdigit() and stripped.isascii():
            return int(stripped)
        return USER_TYPE_NAMES.get(stripped.casefold())
    return None


def identity_type(value: Any) -> int | None:
    """The IdentityType enum value (0 Claim .. 5 UPN) from a number, a digit string or a member name."""
    if type(value) is int:
        return value if 0 <= value <= 5 else None
    if type(value) is str:
        found = _IDENTITY_TYPE_DIGITS.get(value)
        if found is None:
            found = IDENTITY_TYPE_NAMES.get(value.strip().casefold())
        return found
    return None


def is_guid(value: str) -> bool:
    """GUID-shaped: 36 characters with dashes at 8, 13, 18 and 23."""
    return len(value) == 36 and value[8] == "-" and value[13] == "-" and value[18] == "-" and value[23] == "-"


def class_guid(value: str) -> tuple[str, str] | None:
    """`User_<guid>` / `ServicePrincipal_<guid>` -> ("User", guid); None for anything else."""
    prefix, _, guid = value.rpartition("_")
    if prefix and len(guid) == 36 and prefix.isalpha() and is_guid(guid):
        return _CLASS_TYPES.get(prefix.casefold(), prefix), guid
    return None


def decode_claim(value: str) -> tuple[str, str | None, str | None] | None:
    """A SharePoint / Entra claim string -> (kind, id, upn); None when the value is not a claim.

    `i:0#.f|membership|jane@contoso.com` -> ("user", None, "jane@contoso.com");
    `i:0i.t|00000003-0000-0ff1-ce00-000000000000|app@sharepoint` -> ("application", appId, None);
    `i:0h.f|membership|1003...@live.com` (a PUID) -> ("user", None, None);
    `c:0o.c|federateddirectoryclaimprovider|<guid>` -> ("group", guid, None).
    """
    if "|" not in value or value[1:2] != ":":
        return None
    parts = value.split("|")
    issuer = parts[0].casefold()
    last = parts[-1]
    if issuer.startswith("i:0i.t") or last.casefold() == "app@sharepoint":
        for part in parts[1:]:
            candidate = part.partition("@")[0]
            if is_guid(candidate):
                return "application", candidate, None
        return "application", None, None
    if issuer[:1] == "c":
        candidate = last.partition("_")[0] if "_" in last else last
        return "group", candidate if is_guid(candidate) else None, None
    if "@" in last:
        local, _, domain = last.rpartition("@")
        if domain.casefold() == "live.com" and local.isalnum() and local[:4] == "1003":
            return "user", None, None  # a PUID, not an address
        return "user", None, last
    return "user", None, None


def identities(items: list[Any]) -> tuple[list[dict[str, Any]], list[str]]:
    """Actor[] / Target[] entries -> (entities, application ids).

    Each entity is {type, id, upn, display}. `<Class>_<guid>` entries start the entities; entries that only
    carry a UPN, name or class word attach to the entity they follow (to the first one when they come
    before any). Bare GUIDs equal to an entity's object id are that entity; other bare GUIDs are returned
    as application ids (the client app of an actor, the resource of a sign-in). Without any
    `<Class>_<guid>` entry, the first bare GUID is the entity's object id.
    """
    entities: list[dict[str, Any]] = []
    by_id: dict[str, dict[str, Any]] = {}
    pending: dict[str, Any] = {"type": None, "id": None, "upn": None, "display": None}
    current: dict[str, Any] | None = None
    bare: list[tuple[Any, str]] = []
    for item in items:
        if type(item) is not dict:
            continue
        value = item.get("ID")
        if type(value) is not str or not value:
            continue
        if value[0] <= " " or value[-1] <= " " or value in PLACEHOLDER_SPELLINGS:
            value = present(value)
            if value is None:
                continue
        kind = item.get("Type")
        if type(kind) is not int:
            kind = identity_type(kind)
        if len(value) == 36 and value[8] == "-" and value[13] == "-" and value[23] == "-":
            bare.append((kind, value))
            if by_id:
                current = by_id.get(value) or by_id.get(value.lower()) or current
            continue
        if len(value) > 37 and value[-37] == "_" and value[-28] == "-" and value[-13] == "-":
            guid = value[-36:]  # `<Class>_<guid>`
            current = by_id.get(guid)
            if current is None:
                prefix = value[:-37]
                kind_name = _CLASS_NAMES.get(prefix) or _CLASS_TYPES.get(prefix.lower(), prefix)
                current = {"type": kind_name, "id": guid, "upn": None, "display": None}
                by_id[guid] = current
                by_id[guid.lower()] = current
                entities.append(current)
            continue
        target = current if current is not None else pending
        if kind == UPN:
            target["upn"] = target["upn"] or value
        elif kind in (NAME, SPN):
            target["display"] = target["display"] or value
        elif kind == OTHER:
            if value.isalpha():
                target["type"] = (
                    target["type"] or _CLASS_NAMES.get(value) or _CLASS_TYPES.get(value.lower(), value)
                )
            else:
                target["display"] = target["display"] or value
        elif kind == CLAIM:
            claim = decode_claim(value)
            if claim is not None and claim[2]:
                target["upn"] = target["upn"] or claim[2]
        # PUIDs (3) are never an id, and are not kept.
    app_ids: list[str] = []
    if entities:
        first = entities[0]
        if pending["upn"] or pending["display"] or pending["type"]:
            for key in ("type", "upn", "display"):
                if first[key] is None:
                    first[key] = pending[key]
        for kind, value in bare:
            if kind == SPN or (value not in by_id and value.lower() not in by_id):
                app_ids.append(value)
    elif bare:
        pending["id"] = bare[0][1]
        entities.append(pending)
        if len(bare) > 1:
            first_key = bare[0][1].lower()
            for _, value in bare[1:]:
                if value.lower() != first_key:
                    app_ids.append(value)
    elif pending["upn"] or pending["display"] or pending["type"]:
        entities.append(pending)
    return entities, app_ids


def app_name(app_id: str | None) -> str | None:
    """The name of a Microsoft first-party application id, else None."""
    if app_id is None:
        return None
    name = WELL_KNOWN_APPS.get(app_id)
    if name is None and not app_id.islower():
        name = WELL_KNOWN_APPS.get(app_id.lower())
    return name
