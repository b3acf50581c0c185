"""The simulator's response value and JSON helper, shared by every API module."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

JSON_TYPE = "application/json; charset=utf-8"


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)


def json_response(status: int, document: Any, content_type: str = JSON_TYPE, **headers: str) -> Response:
    body = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    response = Response(status, body, [("Content-Type", content_type)])
    response.headers.extend((name.replace("_", "-"), value) for name, value in headers.items())
    return response
