"""The OData subset the audit APIs need: a time-range `$filter`, `$top`, and opaque page tokens."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from typing import Any

from devtools.simulator.timefmt import TimeParseError, parse_time


class ODataError(ValueError):
    """A query the real API rejects with 400 Bad Request."""


@dataclass(frozen=True)
class TimeRange:
    """lo <= t < hi, in microseconds; None means unbounded."""

    lo: int | None = None
    hi: int | None = None

    def narrow(self, lo: int | None = None, hi: int | None = None) -> TimeRange:
        new_lo = self.lo if lo is None else lo if self.lo is None else max(self.lo, lo)
        new_hi = self.hi if hi is None else hi if self.hi is None else min(self.hi, hi)
        return TimeRange(new_lo, new_hi)


_TOKEN = re.compile(r"\(|\)|'[^']*'|[^\s()]+")
_OPERATORS = ("ge", "gt", "le", "lt", "eq")


def parse_time_filter(text: str | None, field: str) -> TimeRange:
    """Parse `$filter` made of `field op timestamp` comparisons joined by `and`.

    Supports ge, gt, le, lt and eq on the API's own time property (activityDateTime or
    createdDateTime), optional parentheses, and DateTimeOffset literals such as
    2026-11-01T10:00:00Z (fractional seconds and offsets allowed; a time without a zone is
    rejected). Anything else is an ODataError.
    """
    if text is None or not text.strip():
        return TimeRange()
    tokens = _TOKEN.findall(text)
    position = 0
    result = TimeRange()

    def peek() -> str | None:
        return tokens[position] if position < len(tokens) else None

    def take() -> str:
        nonlocal position
        if position >= len(tokens):
            raise ODataError(f"Invalid filter clause: unexpected end of expression in {text!r}")
        token = tokens[position]
        position += 1
        return token

    def expression() -> None:
        term()
        while peek() is not None and peek().lower() == "and":  # type: ignore[union-attr]
            take()
            term()

    def term() -> None:
        nonlocal result
        first = take()
        if first == "(":
            expression()
            if take() != ")":
                raise ODataError(f"Invalid filter clause: missing ')' in {text!r}")
            return
        name = first
        operator = take().lower()
        literal = take()
        if name.lower() != field.lower():
            raise ODataError(f"Invalid filter clause: filtering on '{name}' is not supported; use '{field}'")
        if operator not in _OPERATORS:
            raise ODataError(f"Invalid filter clause: operator '{operator}' is not supported")
        if literal.startswith("'"):
            raise ODataError(
                f"Invalid filter clause: '{field}' is a DateTimeOffset; use an unquoted literal such as "
                "2026-11-01T10:00:00Z"
            )
        try:
            us, remainder = parse_time(literal, require_zone=True)
        except TimeParseError as exc:
            raise ODataError(f"Invalid filter clause: {exc}") from exc
        # t >= x.5us  <=>  t >= x+1 (our times have whole microseconds), and so on.
        ceiling = us + 1 if remainder else us
        if operator == "ge":
            result = result.narrow(lo=ceiling)
        elif operator == "gt":
            result = result.narrow(lo=us + 1)
        elif operator == "le":
            result = result.narrow(hi=us + 1)
        elif operator == "lt":
            result = result.narrow(hi=ceiling)
        else:  # eq
            result = result.narrow(lo=us, hi=us if remainder else us + 1)

    expression()
    if position != len(tokens):
        rest = " ".join(tokens[position:])
        raise ODataError(
            f"Invalid filter clause: unsupported expression near {rest!r} (only 'and' is supported)"
        )
    return result


def parse_top(text: str | None, default: int, maximum: int) -> int:
    if text is None:
        return default
    try:
        value = int(text.strip())
    except ValueError as exc:
        raise ODataError(f"Invalid value '{text}' for query parameter '$top'.") from exc
    if value < 1 or value > maximum:
        raise ODataError(
            f"Invalid page size specified: '{value}'. Must be between 1 and {maximum} inclusive."
        )
    return value


class PageTokens:
    """Opaque, tamper-evident page tokens (Graph $skiptoken, Management nextPage).

    A token carries the query and the snapshot instant, so every page of one listing is computed
    against the same result set, however often a page is fetched.
    """

    def __init__(self, secret: str) -> None:
        self._key = hashlib.sha256(secret.encode()).digest()

    def encode(self, state: dict[str, Any]) -> str:
        payload = json.dumps(state, separators=(",", ":"), sort_keys=True).encode()
        mac = hmac.new(self._key, payload, hashlib.sha256).digest()[:12]
        return base64.urlsafe_b64encode(mac + payload).decode().rstrip("=")

    def decode(self, token: str) -> dict[str, Any]:
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (ValueError, TypeError) as exc:
            raise ODataError("Invalid skip token.") from exc
        mac, payload = raw[:12], raw[12:]
        if len(mac) != 12 or not hmac.compare_digest(
            mac, hmac.new(self._key, payload, hashlib.sha256).digest()[:12]
        ):
            raise ODataError("Invalid skip token.")
        try:
            state = json.loads(payload)
        except ValueError as exc:
            raise ODataError("Invalid skip token.") from exc
        if not isinstance(state, dict):
            raise ODataError("Invalid skip token.")
        return state
