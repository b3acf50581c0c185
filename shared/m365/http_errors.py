"""What a failed HTTP call means: ApiError, which httpx exceptions are worth another try, which ones
certainly sent nothing, the Retry-After header, error bodies, and URLs made safe for logs.

Classification is by httpx's exception types, never by message text:

- `httpx.ConnectError`, `httpx.ConnectTimeout` and `httpx.PoolTimeout` happen before any byte of the
  request leaves (refused, unresolvable host, TLS handshake, no free pooled connection): "never sent".
- `httpx.ReadTimeout`, `httpx.WriteTimeout`, `httpx.ReadError`, `httpx.WriteError` and
  `httpx.RemoteProtocolError` (the server closed the connection mid-exchange) may follow a request the
  server already has: retryable for idempotent reads, but a webhook POST's outcome is then unknown.
- A TLS certificate or protocol failure (an `ssl.SSLError` in the exception's chain) will not go away
  by itself and is not retried, although it too sent nothing.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import math
import ssl
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from shared.platform.redact import redact

# Worth another try: no answer came, and the next attempt may get one.
RETRYABLE_EXCEPTIONS: tuple[type[Exception], ...] = (
    httpx.TimeoutException,  # connect, read, write and pool timeouts
    httpx.NetworkError,  # ConnectError, ReadError, WriteError, CloseError
    httpx.RemoteProtocolError,  # the connection broke mid-exchange
    httpx.ProxyError,
)
# Failed while connecting: the server never got a byte of the request.
NEVER_SENT_EXCEPTIONS: tuple[type[Exception], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
)


def _chain(error: BaseException) -> list[BaseException]:
    """`error` and the exceptions it was raised from (httpx -> httpcore -> ssl/socket)."""
    found: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in found and len(found) < 10:
        found.append(current)
        current = current.__cause__ or current.__context__
    return found


def tls_failure(error: BaseException) -> bool:
    """Whether `error` comes from the TLS layer (a certificate or protocol problem)."""
    return any(isinstance(link, ssl.SSLError) for link in _chain(error))


def retryable_exception(error: BaseException) -> bool:
    """A transport failure another attempt may get past (a certificate problem will not)."""
    return isinstance(error, RETRYABLE_EXCEPTIONS) and not tls_failure(error)


def never_sent_exception(error: BaseException | None) -> bool:
    """Whether the call failed before the request left, so sending it again cannot duplicate it."""
    return isinstance(error, NEVER_SENT_EXCEPTIONS)


class ApiError(Exception):
    """A failed API call: a non-retryable answer, or retries exhausted (status None: no answer at all).

    `never_sent` is True when the last attempt failed while connecting, so the server never got it.
    """

    def __init__(
        self,
        status: int | None,
        code: str | None,
        message: str,
        url: str,
        retry_after: float | None = None,
        *,
        never_sent: bool = False,
    ) -> None:
        self.status = status
        self.code = code
        self.message = redact(message)
        self.url = redact_url(url)
        self.retry_after = retry_after
        self.never_sent = never_sent
        super().__init__(self._describe())

    def _describe(self) -> str:
        parts = [f"HTTP {self.status}" if self.status is not None else "no response"]
        if self.code:
            parts.append(self.code)
        text = f"{' '.join(parts)}: {self.message} ({self.url})"
        if self.retry_after is not None:
            text += f"; retry after {self.retry_after:g}s"
        return text

    @property
    def throttled(self) -> bool:
        return self.status == 429 or self.code == "AF429"


_SECRET_PATH_HOSTS = frozenset({"hooks.slack.com"})


def redact_url(url: str) -> str:
    """`url` for logs and errors: secrets in the query (sig=, code=, token=, client_secret=...) masked,
    and the whole path dropped for hosts whose path is the secret (Slack incoming webhooks)."""
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
    except ValueError:
        return redact(url)
    if host in _SECRET_PATH_HOSTS:
        return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}/***"
    return redact(url)


def _sent_forms(url: str) -> set[str]:
    """`url`, its path and its query, as written and as httpx percent-encodes them on the wire."""
    forms = {url}
    try:
        parts = urlsplit(url)
    except ValueError:
        return forms
    path_query = parts.path + (f"?{parts.query}" if parts.query else "")
    forms |= {path_query, parts.path, parts.query}
    forms |= {quote(form, safe="/?&=:;@!$'()*+,~%") for form in list(forms)}
    try:
        wire = httpx.URL(url)
    except (httpx.InvalidURL, ValueError, TypeError):
        return forms
    forms |= {str(wire), wire.raw_path.decode("ascii", "replace"), wire.path, wire.query.decode("ascii")}
    return forms


def scrub_url(text: str, url: str) -> str:
    """`text` (an exception's or a receiver's message) without `url`, its path or its query."""
    for piece in sorted((p for p in _sent_forms(url) if len(p) > 1), key=len, reverse=True):
        text = text.replace(piece, "***")
    return text


def parse_error_body(response: httpx.Response) -> tuple[str | None, str]:
    """(code, message) of an error answer.

    Graph and the Management API answer {"error": {"code": ..., "message": ...}}; the token service
    {"error": "...", "error_description": "..."}; some Management API errors {"code"/"Message": ...}.
    Anything else gives (None, the start of the body or the reason phrase).
    """
    code: Any = None
    message: Any = None
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            code, message = error.get("code"), error.get("message")
        elif isinstance(error, str):
            code, message = error, body.get("error_description") or body.get("message")
        else:
            code = body.get("code") or body.get("Code")
            message = body.get("message") or body.get("Message")
    if not message:
        message = (response.text or "").strip()[:500] or response.reason_phrase or "no details"
    return (str(code) if code else None), str(message)


def parse_retry_after(value: str | None, now: dt.datetime) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP-date (relative to `now`, an
    aware datetime). None when absent or unreadable; never negative."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return max(seconds, 0.0) if math.isfinite(seconds) else None
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000" in the date: taken as UTC
        when = when.replace(tzinfo=now.tzinfo)
    return max((when - now).total_seconds(), 0.0)
