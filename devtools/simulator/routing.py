"""What the simulator's API routers share: the parsed request and a few URL and error helpers.

`SimulatorApp.handle` parses each call into an `ApiRequest` and hands it to the router mounted at
its first path segment (`Router.route`) with the remaining segments. A router fills in the request
log entry (`entry`: whether the call was authorized, API-specific fields) and returns a `Response`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote

from devtools.simulator.responses import Response, json_response


@dataclass
class ApiRequest:
    method: str
    path: str  # percent-decoded
    segments: list[str]  # the path's non-empty segments, as sent (case kept)
    query: dict[str, str]
    headers: Mapping[str, str]
    body: bytes
    entry: dict[str, Any]  # this call's request log entry, which the router completes
    base_url: str  # the simulator's own origin, for absolute links (nextLink, contentUri, ...)
    now_us: Callable[[], int]  # simulated time now, in microseconds since the Unix epoch

    def param(self, name: str) -> str | None:
        """A query parameter, matched case-insensitively (the services ignore the case of names)."""
        lowered = name.lower()
        for key, value in self.query.items():
            if key.lower() == lowered:
                return value
        return None

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        for key, value in self.headers.items():
            if key.lower() == lowered:
                return value
        return None


class Router(Protocol):
    def route(self, request: ApiRequest, segments: list[str]) -> Response:
        """Answer `request`; `segments` are the path segments after the router's mount point."""
        ...


def quote_query_value(value: str) -> str:
    """A query name or value for a link the simulator builds (keeps OData's `$`, `:`, `,`, `'`, `()`)."""
    return quote(value, safe="$:,'()")


def no_route(path: str) -> Response:
    return json_response(404, {"error": {"code": "NotFound", "message": f"No route for {path}"}})
