"""Opaque continuation tokens: the keyset position of the next page, signed so it cannot be edited.

A token binds the position to the query it came from (a hash of the normalized filters), so a token
from one query cannot page another, and an edited or forged token is refused with a 400.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from typing import Any

from shared.api.problems import bad_request
from shared.clock import parse_utc

TOKEN_VERSION = 1


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


def iso_time_or_none(value: str | None) -> str | None:
    """A pydantic field check for optional ISO 8601 query values such as `since`."""
    if value is not None:
        try:
            parse_utc(value)
        except ValueError:
            raise ValueError("use ISO 8601, e.g. 2026-11-01T00:00:00Z") from None
    return value
