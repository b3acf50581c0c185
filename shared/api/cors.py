"""CORS for browser callers such as the Static Web App: an explicit allow-list of origins.

In Azure the platform's own CORS feature must stay empty for these headers to reach the browser
(it would otherwise answer instead of the app); `API_CORS_ORIGINS` then works the same locally,
under `func start` and in Azure.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

ALLOWED_METHODS = "GET, POST, PUT, PATCH, DELETE, OPTIONS"
ALLOWED_HEADERS = "Authorization, Content-Type, Idempotency-Key, If-Match, x-functions-key"
EXPOSED_HEADERS = (
    "Content-Disposition, ETag, Retry-After, X-AOC-Export-Count, X-AOC-Export-Truncated, X-AOC-Export-Cap"
    # The activity datasets (issue 19): the console's refresh and conditional dataset downloads.
    ", Last-Modified, X-Correlation-ID, X-Refreshed-Count"
)
PREFLIGHT_MAX_AGE_SECONDS = 600


def _header(headers: Mapping[str, str], name: str) -> str | None:
    lowered = name.lower()
    return next((v for k, v in headers.items() if k.lower() == lowered), None)


class CorsPolicy:
    def __init__(self, origins: Iterable[str]) -> None:
        self._origins = frozenset(o.strip().rstrip("/").lower() for o in origins if o.strip())

    def allows(self, origin: str | None) -> bool:
        return origin is not None and origin.rstrip("/").lower() in self._origins

    def response_headers(self, request_headers: Mapping[str, str]) -> dict[str, str]:
        """Headers for an actual response: the caller's origin echoed only when it is allowed."""
        origin = _header(request_headers, "Origin")
        if not self.allows(origin):
            return {"Vary": "Origin"} if self._origins else {}
        assert origin is not None
        return {
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Expose-Headers": EXPOSED_HEADERS,
            "Vary": "Origin",
        }

    def preflight(self, request_headers: Mapping[str, str]) -> tuple[int, dict[str, str]]:
        """Status and headers for an OPTIONS preflight: 204 for an allowed origin, else 403."""
        origin = _header(request_headers, "Origin")
        if not self.allows(origin):
            return 403, {"Vary": "Origin"}
        assert origin is not None
        return 204, {
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Allow-Methods": ALLOWED_METHODS,
            "Access-Control-Allow-Headers": ALLOWED_HEADERS,
            "Access-Control-Max-Age": str(PREFLIGHT_MAX_AGE_SECONDS),
            "Vary": "Origin",
        }
