"""Helpers shared by the per-source normalizers. Everything here is on the hot path: keep it cheap."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from typing import Any

from shared.platform.clock import utc_iso


class NormalizationError(ValueError):
    """The record cannot be normalized at all; the message is the reason."""


# Graph: 2026-11-01T10:00:00.1234567Z, Intune: 2016-12-31T23:59:51.6363086-08:00,
# Management: 2026-11-01T10:00:00 (no zone, UTC).
_TIMESTAMP = re.compile(
    r"(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(?:[.,](\d+))?\s*(Z|z|[+-]\d{2}(?::?\d{2})?)?$"
)
_UTC_ZONES = frozenset((None, "Z", "z", "+00:00", "-00:00", "+0000", "-0000", "+00", "-00"))


def parse_timestamp(value: Any) -> str | None:
    """Any ISO-8601 timestamp the sources send -> UTC `YYYY-MM-DDTHH:MM:SS.mmmZ` (None if unparseable).

    Fractional seconds are truncated to milliseconds, like shared.platform.clock.utc_iso.
    """
    if type(value) is not str:
        return None
    # Fast path for the two common shapes: "...:SS[.fffffff]Z" (Graph) and "...:SS" (Management).
    if (
        len(value) >= 19
        and value[10] == "T"
        and value[4] == value[7] == "-"
        and value[13] == value[16] == ":"
    ):
        head = value[:19]
        tail = value[19:]
        if not tail:
            millis = "000"
        elif tail[-1] == "Z" and (len(tail) == 1 or (tail[0] == "." and tail[1:-1].isdigit())):
            millis = (tail[1:-1] + "000")[:3]
        else:
            head = ""
        if head:
            try:
                checked = dt.datetime.fromisoformat(head)  # validates digits and month/day/hour ranges
            except ValueError:
                return None
            if checked.tzinfo is None:
                return f"{head}.{millis}Z"
    match = _TIMESTAMP.match(value)
    if match is None:
        return None
    date, time, fraction, zone = match.groups()
    millis = (fraction + "00")[:3] if fraction else "000"
    try:
        parsed = dt.datetime.fromisoformat(f"{date}T{time}")
    except ValueError:
        return None
    if zone in _UTC_ZONES:
        return f"{date}T{time}.{millis}Z"
    sign = -1 if zone[0] == "-" else 1
    digits = zone[1:].replace(":", "")
    offset = dt.timedelta(hours=int(digits[:2]), minutes=int(digits[2:4] or 0))
    try:
        aware = parsed.replace(microsecond=int(millis) * 1000, tzinfo=dt.timezone(sign * offset))
    except ValueError:
        return None
    return utc_iso(aware)


def decode_json_value(value: Any) -> Any:
    """Graph and Entra send modified-property values JSON-encoded ("[\\"x\\"]", "\\"x\\"", "[]").

    Values that do not start like JSON text, or do not decode, are kept as they are. The shortcuts for
    plain quoted strings and flat string arrays give what json.loads would (no escapes, all printable).
    """
    if type(value) is not str or not value:
        return value
    first = value[0]
    if first == '"':
        inner = value[1:-1]
        if (
            len(value) > 1
            and value[-1] == '"'
            and '"' not in inner
            and "\\" not in inner
            and inner.isprintable()
        ):
            return inner
    elif first == "[":
        if value == "[]":
            return []
        if value[1:2] == '"' and value[-2:] == '"]' and "\\" not in value and value.isprintable():
            items = value[2:-2].split('","')
            if not any('"' in item for item in items):
                return items
    elif first != "{":
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def text(value: Any) -> str | None:
    """A non-empty string, or None. Numbers and other scalars become their text."""
    if type(value) is str:
        return value or None
    if value is None or isinstance(value, dict | list):
        return None
    return str(value)


def client_ip(value: Any) -> str | None:
    """`1.2.3.4:5678` -> `1.2.3.4`, `[2001:db8::1]:443` -> `2001:db8::1`; bare IPv6 is left alone."""
    if type(value) is not str or not value:
        return None
    if value[0] == "[":
        end = value.find("]")
        return (value[1:end] or None) if end > 0 else value
    if value.count(":") == 1:
        return value.split(":", 1)[0] or None
    return value


def modified_properties(items: Any, name_key: str, old_key: str, new_key: str) -> list[dict[str, Any]]:
    if type(items) is not list:
        return []
    result = []
    for item in items:
        if type(item) is dict:
            result.append(
                {
                    "name": text(item.get(name_key)) or "",
                    "old": decode_json_value(item.get(old_key)),
                    "new": decode_json_value(item.get(new_key)),
                }
            )
    return result


def hash_id(namespace: str, source: str, timestamp: str, operation: str, doc: dict[str, Any]) -> str:
    """`{namespace}:h:` + sha256 of the canonical fields, for records without a native id."""
    actor = doc["actor"]
    parts = [source, timestamp, operation, actor["id"] or "", actor["upn"] or ""]
    parts.extend(target["id"] or "" for target in doc["targets"])
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:32]
    return f"{namespace}:h:{digest}"


# --- operation_type -------------------------------------------------------------------------------------

_WORDS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")

# Native operation types: Graph directoryAudit.operationType, Intune auditEvent.activityOperationType.
NATIVE_OPERATION_TYPES: dict[str, str] = {
    "add": "create",
    "create": "create",
    "new": "create",
    "update": "update",
    "patch": "update",
    "set": "update",
    "put": "update",
    "delete": "delete",
    "remove": "delete",
    "assign": "assign",
    "unassign": "unassign",
    "action": "action",
    "get": "read",
    "read": "read",
}

_VERB_WORDS = {
    "create": "add added new create created register registered provision provisioned upload uploaded "
    "install installed invite invited",
    "update": "update updated set patch patched enable enabled disable disabled change changed modify "
    "modified edit edited rename renamed restore restored move moved reset replace replaced "
    "upgrade upgraded convert converted confirm confirmed",
    "delete": "remove removed delete deleted purge purged recycle recycled harddelete softdelete "
    "uninstall uninstalled",
    "assign": "assign assigned grant granted",
    "unassign": "unassign unassigned revoke revoked",
    "read": "get read view viewed list listed search searched access accessed preview previewed "
    "download downloaded export exported",
    "action": "action wipe retire reboot rebootnow restart sync send sent run start stop invoke "
    "resetpasscode lock locate shutdown consent approve approved reject rejected block blocked",
}
_VERBS = {word: kind for kind, words in _VERB_WORDS.items() for word in words.split()}
_MEMBERSHIP_NOUNS = ("member", "owner", "role assignment", "app role", "permission", "delegate", "license")
_SIGN_IN_OPERATIONS = frozenset(
    ("sign-in", "userloggedin", "userloginfailed", "passwordlogoninitialauthusingpassword", "mailboxlogin")
)


def operation_key(operation: str) -> str:
    """The lookup key for mappings: case-insensitive, trailing "." ignored (Management adds one)."""
    return operation.casefold().rstrip(". ")


def _words(operation: str, key: str) -> list[str]:
    """Lower-case words: `Set-Mailbox` -> set mailbox, `MemberAdded` -> member added."""
    if " " in key:
        return key.split()
    verb, dash, noun = operation.partition("-")
    if dash:
        return [verb.lower(), *(word.lower() for word in _WORDS.findall(noun))]
    return [word.lower() for word in _WORDS.findall(operation)]


def derive_operation_type(operation: str, native: str | None) -> str:
    """Membership phrases first, then the source's own operation type, then the operation's verb."""
    key = operation_key(operation)
    if key in _SIGN_IN_OPERATIONS:
        return "sign_in"
    words = _words(operation, key)
    verb = (_VERBS.get(words[0]) or _VERBS.get(words[-1])) if words else None
    if verb in ("create", "delete", "assign", "unassign"):
        phrase = " ".join(words)
        if any(noun in phrase for noun in _MEMBERSHIP_NOUNS):
            return "assign" if verb in ("create", "assign") else "unassign"
    if "unassign" in words:
        return "unassign"
    if "assign" in words:
        return "assign"
    if native:
        mapped = NATIVE_OPERATION_TYPES.get(native.casefold())
        if mapped:
            return mapped
    return verb or "other"
