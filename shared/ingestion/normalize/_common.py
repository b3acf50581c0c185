"""Helpers shared by the per-source normalizers. Everything here is on the hot path: keep it cheap."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import socket
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


_OFFSETS: dict[str, dt.timedelta] = {}


def _offset(zone: str) -> dt.timedelta | None:
    """`+05:30` -> timedelta(hours=5, minutes=30), cached; None when it is not an offset."""
    hours, minutes = zone[1:3], zone[4:6]
    if not (hours.isdigit() and minutes.isdigit() and hours.isascii() and minutes.isascii()):
        return None
    if int(hours) > 23 or int(minutes) > 59:
        return None
    offset = dt.timedelta(hours=int(hours), minutes=int(minutes))
    if zone[0] == "-":
        offset = -offset
    if len(_OFFSETS) < 256:
        _OFFSETS[zone] = offset
    return offset


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
        offset: dt.timedelta | None = None
        if not tail:
            millis = "000"
        elif tail[-1] == "Z" and (len(tail) == 1 or (tail[0] == "." and tail[1:-1].isdigit())):
            millis = (tail[1:-1] + "000")[:3]
        elif (
            len(tail) >= 6
            and tail[-3] == ":"
            and tail[-6] in "+-"
            and (len(tail) == 6 or (tail[0] == "." and tail[1:-6].isdigit()))
        ):
            # "...:SS[.fffffff]+HH:MM" (Intune): shift by a cached offset, no tzinfo objects.
            millis = (tail[1:-6] + "000")[:3]
            zone = tail[-6:]
            offset = _OFFSETS.get(zone)
            if offset is None:
                offset = _offset(zone)
                if offset is None:
                    return None
        else:
            head = ""
        if head:
            try:
                checked = dt.datetime.fromisoformat(head)  # validates digits and month/day/hour ranges
            except ValueError:
                return None
            if checked.tzinfo is None:
                if offset is None or not offset:
                    return f"{head}.{millis}Z"
                try:
                    return f"{(checked - offset).isoformat()}.{millis}Z"
                except OverflowError:
                    return None
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
        return utc_iso(aware)
    except (ValueError, OverflowError):  # an offset of 24 h or more; a date shifted out of years 1-9999
        return None


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
    except (ValueError, RecursionError):  # RecursionError: nested deeper than the parser's stack
        return value


def text(value: Any) -> str | None:
    """A non-empty string, or None. Numbers and other scalars become their text."""
    if type(value) is str:
        return value or None
    if value is None or isinstance(value, dict | list):
        return None
    return str(value)


_IPV4_MAPPED_PREFIX = bytes(10) + b"\xff\xff"


def _parsed_ip(candidate: str) -> str | None:
    """inet_pton is strict and runs in C: a dotted quad comes back as given, IPv6 in its compressed form."""
    try:
        socket.inet_pton(socket.AF_INET, candidate)
        return candidate
    except OSError:
        pass
    try:
        packed = socket.inet_pton(socket.AF_INET6, candidate)
    except OSError:
        return None
    if packed[:12] == _IPV4_MAPPED_PREFIX:
        return socket.inet_ntop(socket.AF_INET, packed[12:])
    return socket.inet_ntop(socket.AF_INET6, packed)


def client_ip(value: Any) -> str | None:
    """An IPv4 or IPv6 address, or None: `1.2.3.4:5678` -> `1.2.3.4`, `[2001:db8::1]:443` ->
    `2001:db8::1`, `::ffff:1.2.3.4` -> `1.2.3.4`; `localhost`, `<null>` and other non-addresses -> None.
    """
    if type(value) is not str or not value:
        return None
    try:
        if ":" not in value:
            socket.inet_pton(socket.AF_INET, value)  # the usual case: a bare IPv4 address
            return value
        if value[0] != "[" and value.count(":") > 1:
            packed = socket.inet_pton(socket.AF_INET6, value)  # a bare IPv6 address
            if packed[:12] == _IPV4_MAPPED_PREFIX:
                return socket.inet_ntop(socket.AF_INET, packed[12:])
            return socket.inet_ntop(socket.AF_INET6, packed)
    except (OSError, ValueError):
        pass
    candidate = value.strip()
    if candidate[:1] == "[":
        candidate = candidate[1 : candidate.find("]")] if "]" in candidate else candidate[1:]
    elif candidate.count(":") == 1:
        candidate = candidate.split(":", 1)[0]
    candidate = candidate.split("%", 1)[0]  # an IPv6 zone index is local to the sender
    try:
        return _parsed_ip(candidate) if candidate else None
    except ValueError:  # an embedded NUL
        return None


def integer(value: Any) -> int | None:
    """An int from a JSON number or a string of digits (`"5"`, `"-1"`); None otherwise. Bools are not
    numbers here."""
    if type(value) is int:
        return value
    if type(value) is str:
        stripped = value.strip()
        digits = stripped[1:] if stripped[:1] in "+-" else stripped
        if digits.isdigit() and digits.isascii() and len(digits) < 19:
            return int(stripped)
        return None
    if type(value) is float and value.is_integer():
        return int(value)
    return None


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


def hash_id(namespace: str, source: str, record: dict[str, Any]) -> str:
    """`{namespace}:h:` + sha256 of the record's canonical JSON, for records without a native id.

    The hash is over the record as received, not over normalized fields, so re-attribution
    (`renormalize` after a normalizer change) keeps the id and rewrites the same document.
    """
    canonical = json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    digest = hashlib.sha256(f"{source}\x1f{canonical}".encode("utf-8", "surrogatepass")).hexdigest()[:32]
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
