"""Exact time arithmetic in integer microseconds since the Unix epoch, and the wire formats."""

from __future__ import annotations

import datetime as dt
import re

UNIX_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
US_PER_SECOND = 1_000_000


def to_us(value: dt.datetime) -> int:
    if value.tzinfo is None:
        raise ValueError("naive datetime")
    delta = value.astimezone(dt.UTC) - UNIX_EPOCH
    return (delta.days * 86_400 + delta.seconds) * US_PER_SECOND + delta.microseconds


def from_us(us: int) -> dt.datetime:
    return UNIX_EPOCH + dt.timedelta(microseconds=us)


def graph_time(us: int) -> str:
    """Graph's DateTimeOffset: seven fractional digits and Z, e.g. 2026-11-01T10:00:02.7215370Z."""
    return from_us(us).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


def management_time(us: int) -> str:
    """The Management API record CreationTime: whole seconds, no zone."""
    return from_us(us).strftime("%Y-%m-%dT%H:%M:%S")


def content_time(us: int) -> str:
    """contentCreated / contentExpiration: milliseconds and Z."""
    return from_us(us).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def iso(us: int) -> str:
    return from_us(us).isoformat().replace("+00:00", "Z")


_ISO = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})"
    r"(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,7}))?)?)?"
    r"(Z|[+-]\d{2}:\d{2})?$",
    re.IGNORECASE,
)


class TimeParseError(ValueError):
    pass


def parse_time(text: str, *, require_zone: bool) -> tuple[int, bool]:
    """Parse an ISO-8601 timestamp into (microseconds, sub-microsecond remainder present).

    A date alone means midnight UTC. With require_zone, a timestamp with a time part must end in
    Z or an offset (Graph's DateTimeOffset literals); otherwise a missing zone means UTC (the
    Management API's startTime/endTime).
    """
    match = _ISO.match(text.strip())
    if not match:
        raise TimeParseError(f"not an ISO-8601 timestamp: {text!r}")
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    if hour is not None and zone is None and require_zone:
        raise TimeParseError(f"timestamp without a time zone: {text!r}")
    try:
        value = dt.datetime(
            int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0), tzinfo=dt.UTC
        )
    except ValueError as exc:
        raise TimeParseError(f"invalid timestamp {text!r}: {exc}") from exc
    if zone and zone.upper() != "Z":
        sign = 1 if zone[0] == "+" else -1
        offset = dt.timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
        value -= sign * offset
    digits = (fraction or "").ljust(7, "0")
    micro = int(digits[:6])
    remainder = digits[6] != "0"
    return to_us(value) + micro, remainder
