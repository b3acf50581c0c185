"""The process's pooled `httpx.Client`, shared by every ApiClient, msal's token client and the JWKS fetch.

One client per process keeps TCP and TLS connections alive across Function invocations. It makes one
attempt per call (ApiClient retries with tenacity), follows redirects as requests did (httpx drops the
Authorization header on a cross-origin one), and puts a timeout on every call.

httpx logs `HTTP Request: POST <full URL> ...` at INFO for every request. A webhook URL is itself a
credential and a query may carry a signature, so a filter on the "httpx" logger drops its records
below WARNING: URLs reach the logs only through the redacted lines ApiClient writes.

HTTP/2 (the `h2` extra) is off: measured against HTTP/1.1 it brought no gain for the app's sequential
Graph paging (README, Dependencies).
"""

from __future__ import annotations

import logging
import threading

import httpx

DEFAULT_TIMEOUT: tuple[float, float] = (5.0, 30.0)
MAX_REDIRECTS = 30  # requests' limit
KEEPALIVE_SECONDS = 60.0  # an idle pooled connection is closed after this (Azure's load balancers: 4 min)
USER_AGENT = "aoc-functions/0.1"


def _not_a_request_line(record: logging.LogRecord) -> bool:
    return record.levelno >= logging.WARNING


logging.getLogger("httpx").addFilter(_not_a_request_line)


def httpx_timeout(timeout: tuple[float, float]) -> httpx.Timeout:
    """(connect, read) seconds as an httpx.Timeout; sending a body and waiting for a pooled connection
    get the read timeout."""
    return httpx.Timeout(timeout[1], connect=timeout[0])


def new_http_client(
    max_connections: int = 100,
    max_keepalive: int = 32,
    *,
    transport: httpx.BaseTransport | None = None,
    follow_redirects: bool = True,
    http2: bool = False,
) -> httpx.Client:
    """A pooled httpx.Client. `transport` replaces the network (httpx.MockTransport in unit tests)."""
    limits = httpx.Limits(
        max_connections=max_connections,
        max_keepalive_connections=max_keepalive,
        keepalive_expiry=KEEPALIVE_SECONDS,
    )
    return httpx.Client(
        transport=transport,
        limits=limits,
        http2=http2,
        timeout=httpx_timeout(DEFAULT_TIMEOUT),
        follow_redirects=follow_redirects,
        max_redirects=MAX_REDIRECTS,
        headers={"User-Agent": USER_AGENT},
    )


_client_lock = threading.Lock()
_shared_client: httpx.Client | None = None


def shared_http_client() -> httpx.Client:
    """The process's client, created on first use: connections are pooled across invocations."""
    global _shared_client
    with _client_lock:
        if _shared_client is None:
            _shared_client = new_http_client()
        return _shared_client
