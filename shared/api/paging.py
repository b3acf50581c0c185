"""Opaque continuation tokens: the keyset position of the next page, signed so it cannot be edited.

A token binds the position to the query it came from (a hash of the normalized filters), so a token
from one query cannot page another, and an edited or forged token is refused with a 400.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import json
from typing import Any

from shared.api.problems import bad_request
from shared.platform.clock import parse_utc

TOKEN_VERSION = 1
# Query times are bounded well inside datetime's range, so window arithmetic (`end - 30 days`) and the
# conversion to UTC never overflow.
MIN_QUERY_YEAR = 1970
MAX_QUERY_YEAR = 9999


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class ContinuationSigner:
    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("the continuation token secret must be at least 16 bytes")
        self._secret = secret

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self._secret, payload, hashlib.sha256).digest()

    def encode(self, query_hash: str, position: dict[str, Any]) -> str:
        payload = json.dumps({"v": TOKEN_VERSION, "q": query_hash, "p": position}, separators=(",", ":"))
        raw = payload.encode("utf-8")
        return f"{_b64(raw)}.{_b64(self._mac(raw))}"

    def decode(self, token: str, query_hash: str) -> dict[str, Any]:
        """The position; a 400 problem for anything forged, edited, truncated or from another query."""
        try:
            body, _, signature = token.partition(".")
            raw = _unb64(body)
            valid = hmac.compare_digest(_unb64(signature), self._mac(raw))
        except (binascii.Error, ValueError):
            valid = False
        if not valid:
            raise bad_request("the continuation token is not valid", field="continuation")
        document = json.loads(raw)
        if document.get("v") != TOKEN_VERSION or document.get("q") != query_hash:
            raise bad_request("the continuation token belongs to another query", field="continuation")
        position = document.get("p")
        if not isinstance(position, dict):
            raise bad_request("the continuation token is not valid", field="continuation")
        return position


def query_hash(filters: dict[str, Any]) -> str:
    normalized = json.dumps(filters, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(normalized.encode("utf-8")).hexdigest()[:24]


class TimeOutOfRangeError(ValueError):
    pass


def parse_query_time(value: str) -> dt.datetime:
    """An ISO 8601 query value as aware UTC.

    Raises ValueError, which pydantic turns into a 400, for text that is not a time and for times
    outside the accepted years (OverflowError, which pydantic would let escape as a 500, included).
    """
    try:
        moment = parse_utc(value)
    except OverflowError:
        moment = None
    except ValueError:
        raise ValueError("use ISO 8601, e.g. 2026-11-01T00:00:00Z") from None
    if moment is None or not MIN_QUERY_YEAR <= moment.year <= MAX_QUERY_YEAR:
        raise TimeOutOfRangeError(f"times must fall between the years {MIN_QUERY_YEAR} and {MAX_QUERY_YEAR}")
    return moment


def iso_time_or_none(value: str | None) -> str | None:
    """A pydantic field check for optional ISO 8601 query values such as `since`."""
    if value is not None:
        parse_query_time(value)
    return value
