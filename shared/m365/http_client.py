"""One HTTP client for Microsoft Graph and the Management Activity API: tokens, timeouts, retries.

Retried (with tenacity): HTTP 429, any 5xx, 403 whose error code is "AF429" (Management API
throttling), any error status whose code is "AF50000" (Management API internal error), and connection
errors / timeouts. Nothing else is retried: other 4xx answers raise ApiError at once. A 401 gets one
fresh token and one more try.

Waits honour Retry-After (delta-seconds or an HTTP-date); without it, exponential backoff with full
jitter (uniform in [0, min(cap, base * 2**(n-1))]). Retries stop at `max_attempts` and never sleep past
`deadline` (a `clock.monotonic()` value); a Retry-After longer than `max_retry_after` is not waited
for either: the ApiError carries it so the caller can come back later.

A URL that is itself a credential (a webhook's) is sent with `url_label`: logs and ApiErrors then show
the label, and exception text is stripped of the URL.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import logging
import math
import random as _random
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from requests.utils import requote_uri
from tenacity import (
    RetryCallState,
    RetryError,
    Retrying,
    retry_any,
    retry_if_exception,
    retry_if_result,
    stop_after_attempt,
    stop_any,
)
from tenacity.wait import wait_base

from shared.m365.auth import RefreshableTokenProvider, TokenProvider
from shared.m365.rate_limit import RateLimiter
from shared.platform.clock import Clock, SystemClock
from shared.platform.redact import redact

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT: tuple[float, float] = (5.0, 30.0)
DEFAULT_MAX_ATTEMPTS = 6
DEFAULT_BACKOFF_BASE = 1.0
DEFAULT_BACKOFF_CAP = 30.0
DEFAULT_MAX_RETRY_AFTER = 300.0
USER_AGENT = "aoc-functions/0.1"

RETRYABLE_EXCEPTIONS: tuple[type[Exception], ...] = (
    requests.ConnectionError,  # includes ConnectTimeout
    requests.Timeout,  # ReadTimeout
    requests.exceptions.ChunkedEncodingError,  # the connection broke mid-body
)


def _retryable_exception(error: BaseException) -> bool:
    # A certificate problem will not go away by itself.
    return isinstance(error, RETRYABLE_EXCEPTIONS) and not isinstance(error, requests.exceptions.SSLError)


class ApiError(Exception):
    """A failed API call: a non-retryable answer, or retries exhausted (status None: no answer at all)."""

    def __init__(
        self,
        status: int | None,
        code: str | None,
        message: str,
        url: str,
        retry_after: float | None = None,
    ) -> None:
        self.status = status
        self.code = code
        self.message = redact(message)
        self.url = redact_url(url)
        self.retry_after = retry_after
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
_URL_IN_MESSAGE = re.compile(r"(?P<keep>\burl: )\S+")  # urllib3: "Max retries exceeded with url: /path?query"


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


def scrub_url(text: str, url: str) -> str:
    """`text` (an exception's or a receiver's message) without `url`, its path or its query, as sent
    or as requests re-quoted them."""
    try:
        parts = urlsplit(url)
    except ValueError:
        parts = None
    pieces = {url}
    if parts is not None:
        path_query = parts.path + (f"?{parts.query}" if parts.query else "")
        pieces |= {path_query, parts.path, parts.query}
    pieces |= {requote_uri(piece) for piece in pieces}
    for piece in sorted((p for p in pieces if len(p) > 1), key=len, reverse=True):
        text = text.replace(piece, "***")
    return _URL_IN_MESSAGE.sub(r"\g<keep>***", text)


def parse_error_body(response: requests.Response) -> tuple[str | None, str]:
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
        message = (response.text or "").strip()[:500] or response.reason or "no details"
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


class ApiStats:
    """Thread-safe counters for one ApiClient (the benchmark reports requests per 1,000 events)."""

    FIELDS = (
        "requests",  # HTTP requests sent (every attempt, including a 401's second try)
        "retries",  # waits before another attempt
        "throttled",  # answers 429 or 403 AF429
        "server_errors",  # answers 5xx or AF50000
        "connection_errors",  # attempts that got no answer (connection error, timeout)
        "token_refreshes",  # 401s answered with a fresh token
        "failures",  # ApiErrors raised
    )

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(self.FIELDS, 0)
        self._slept = 0.0

    def add(self, field: str, count: int = 1) -> None:
        if field not in self._counts:
            raise KeyError(field)
        with self._lock:
            self._counts[field] += count

    def add_sleep(self, seconds: float) -> None:
        with self._lock:
            self._slept += seconds

    def snapshot(self) -> dict[str, float]:
        with self._lock:
            return {**self._counts, "slept_seconds": self._slept}

    def reset(self) -> None:
        with self._lock:
            self._counts = dict.fromkeys(self.FIELDS, 0)
            self._slept = 0.0

    def _get(self, field: str) -> int:
        with self._lock:
            return self._counts[field]

    @property
    def requests(self) -> int:
        return self._get("requests")

    @property
    def retries(self) -> int:
        return self._get("retries")

    @property
    def throttled(self) -> int:
        return self._get("throttled")

    @property
    def server_errors(self) -> int:
        return self._get("server_errors")

    @property
    def connection_errors(self) -> int:
        return self._get("connection_errors")

    @property
    def token_refreshes(self) -> int:
        return self._get("token_refreshes")

    @property
    def failures(self) -> int:
        return self._get("failures")

    @property
    def slept_seconds(self) -> float:
        with self._lock:
            return self._slept


_session_lock = threading.Lock()
_shared_session: requests.Session | None = None


def new_session(pool_maxsize: int = 32) -> requests.Session:
    """A Session with a connection pool per host and no urllib3-level retries (ApiClient retries)."""
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=8, pool_maxsize=pool_maxsize, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers["User-Agent"] = USER_AGENT
    return session


def shared_session() -> requests.Session:
    """The process's Session, created on first use: connections are pooled across invocations."""
    global _shared_session
    with _session_lock:
        if _shared_session is None:
            _shared_session = new_session()
        return _shared_session


@dataclass
class _Call:
    method: str
    url: str
    scope: str | None
    params: Mapping[str, Any] | None
    headers: Mapping[str, str] | None
    json: Any
    rate_limiter: RateLimiter | None
    deadline: float | None
    data: bytes | None = None
    label: str | None = None  # shown instead of the URL, which is then a secret
    refreshed: bool = False
    retry_after: float | None = None  # of the last answer, for the stop decision and the error

    @property
    def shown_url(self) -> str:
        return self.label if self.label is not None else redact_url(self.url)

    def scrub(self, text: str) -> str:
        return scrub_url(text, self.url) if self.label is not None else text


def _retry_reason(response: requests.Response) -> str | None:
    """Why this answer is worth another try, or None."""
    status = response.status_code
    if status < 400:
        return None
    if status == 429:
        return "throttled (429)"
    code, _ = parse_error_body(response)
    if status == 403 and code == "AF429":
        return "throttled (403 AF429)"
    if code == "AF50000":
        return f"server error ({status} AF50000)"
    if status >= 500:
        return f"server error ({status})"
    return None


class _RetryAfterOrFullJitter(wait_base):
    """Retry-After when the answer has one, else full-jitter exponential backoff."""

    def __init__(self, client: ApiClient, call: _Call) -> None:
        self._client = client
        self._call = call

    def __call__(self, retry_state: RetryCallState) -> float:
        call = self._call
        call.retry_after = None
        outcome = retry_state.outcome
        if outcome is not None and not outcome.failed:
            response: requests.Response = outcome.result()
            call.retry_after = parse_retry_after(
                response.headers.get("Retry-After"), self._client.clock.now()
            )
        if call.retry_after is not None:
            return call.retry_after
        ceiling = min(
            self._client.backoff_cap, self._client.backoff_base * 2 ** (retry_state.attempt_number - 1)
        )
        return self._client.random() * ceiling


class ApiClient:
    """Calls Graph and the Management API over one pooled `requests.Session`.

    Thread-safe; build one per process. `timeout` is (connect, read) seconds and goes on every call.
    `sleep`, `clock` and `random` (a callable returning [0, 1)) are injected so tests run instantly.
    """

    def __init__(
        self,
        token_provider: TokenProvider | None = None,
        *,
        session: requests.Session | None = None,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        clock: Clock | None = None,
        sleep: Callable[[float], None] = time.sleep,
        random: Callable[[], float] = _random.random,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        backoff_base: float = DEFAULT_BACKOFF_BASE,
        backoff_cap: float = DEFAULT_BACKOFF_CAP,
        max_retry_after: float = DEFAULT_MAX_RETRY_AFTER,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if len(timeout) != 2 or min(timeout) <= 0:
            raise ValueError("timeout must be (connect seconds, read seconds), both positive")
        self.token_provider = token_provider
        self.session = session or shared_session()
        self.timeout = (float(timeout[0]), float(timeout[1]))
        self.clock: Clock = clock or SystemClock()
        self.sleep = sleep
        self.random = random
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.max_retry_after = max_retry_after
        self.stats = ApiStats()

    # -- one attempt ----------------------------------------------------------------------------

    def _token(self, scope: str) -> str:
        if self.token_provider is None:
            raise ValueError("this ApiClient has no token provider, so it cannot send scope=...")
        return self.token_provider.get_token(scope)

    def _send(self, call: _Call, token: str | None) -> requests.Response:
        if call.rate_limiter is not None:
            call.rate_limiter.acquire()
        headers = {"Accept": "application/json", **(call.headers or {})}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        self.stats.add("requests")
        try:
            return self.session.request(
                call.method,
                call.url,
                params=call.params,
                headers=headers,
                json=call.json,
                data=call.data,
                timeout=self.timeout,
            )
        except RETRYABLE_EXCEPTIONS:
            self.stats.add("connection_errors")
            raise

    def _attempt(self, call: _Call) -> requests.Response:
        token = self._token(call.scope) if call.scope else None
        response = self._send(call, token)
        if response.status_code == 401 and call.scope and not call.refreshed:
            call.refreshed = True
            self.stats.add("token_refreshes")
            logger.warning("%s %s answered 401: retrying once with a new token", call.method, call.shown_url)
            if isinstance(self.token_provider, RefreshableTokenProvider):
                self.token_provider.invalidate(call.scope, token)
            response.close()
            response = self._send(call, self._token(call.scope))
        reason = _retry_reason(response)
        if reason is not None:
            self.stats.add("throttled" if reason.startswith("throttled") else "server_errors")
        return response

    # -- retry policy ---------------------------------------------------------------------------

    def _should_stop(self, call: _Call, retry_state: RetryCallState) -> bool:
        if call.retry_after is not None and call.retry_after > self.max_retry_after:
            return True
        if call.deadline is None:
            return False
        return self.clock.monotonic() + retry_state.upcoming_sleep > call.deadline

    def _before_sleep(self, call: _Call, retry_state: RetryCallState) -> None:
        outcome = retry_state.outcome
        if outcome is None:
            reason = "unknown"
        elif outcome.failed:
            error = outcome.exception()
            reason = redact(call.scrub(f"{type(error).__name__}: {error}"))
        else:
            reason = _retry_reason(outcome.result()) or "retryable answer"
        wait = retry_state.upcoming_sleep
        self.stats.add("retries")
        self.stats.add_sleep(wait)
        logger.warning(
            "%s %s: %s; retry %d/%d in %.2fs%s",
            call.method,
            call.shown_url,
            reason,
            retry_state.attempt_number,
            self.max_attempts - 1,
            wait,
            " (Retry-After)" if call.retry_after is not None else "",
        )

    def _retrying(self, call: _Call) -> Retrying:
        return Retrying(
            retry=retry_any(
                retry_if_exception(_retryable_exception),
                retry_if_result(lambda response: _retry_reason(response) is not None),
            ),
            stop=stop_any(
                stop_after_attempt(self.max_attempts),
                lambda retry_state: self._should_stop(call, retry_state),
            ),
            wait=_RetryAfterOrFullJitter(self, call),
            sleep=self.sleep,
            before_sleep=lambda retry_state: self._before_sleep(call, retry_state),
            reraise=False,
        )

    def _error_from_response(self, call: _Call, response: requests.Response) -> ApiError:
        code, message = parse_error_body(response)
        retry_after = call.retry_after
        if retry_after is None:
            retry_after = parse_retry_after(response.headers.get("Retry-After"), self.clock.now())
        return ApiError(response.status_code, code, call.scrub(message), call.shown_url, retry_after)

    def _error_from_exception(self, call: _Call, error: BaseException | None) -> ApiError:
        return ApiError(None, type(error).__name__, call.scrub(str(error)), call.shown_url, call.retry_after)

    def _fail(self, error: ApiError) -> ApiError:
        self.stats.add("failures")
        return error

    # -- public -----------------------------------------------------------------------------------

    def request(
        self,
        method: str,
        url: str,
        *,
        scope: str | None = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        json: Any = None,
        deadline: float | None = None,
        rate_limiter: RateLimiter | None = None,
        data: bytes | None = None,
        url_label: str | None = None,
    ) -> requests.Response:
        """Send with retries; return a 1xx-3xx response, or raise ApiError (AuthError for no token).

        `scope` adds "Authorization: Bearer <token for scope>". `deadline` is a `clock.monotonic()`
        value after which no retry starts (the first attempt always goes). `rate_limiter.acquire()` is
        called before every attempt. `data` sends these exact bytes (for a signed body) instead of `json`.
        `url_label` marks `url` as a secret: logs and errors show the label instead, and the ApiError
        chains no exception (whose text would hold the URL).
        """
        call = _Call(
            method.upper(), url, scope, params, headers, json, rate_limiter, deadline, data, url_label
        )
        try:
            response: requests.Response = self._retrying(call)(self._attempt, call)
        except RetryError as exhausted:
            last = exhausted.last_attempt
            if last.failed:
                error = last.exception()
                raise self._fail(self._error_from_exception(call, error)) from (None if url_label else error)
            raise self._fail(self._error_from_response(call, last.result())) from None
        except requests.RequestException as error:  # not retryable: bad URL, too many redirects...
            call.retry_after = None
            raise self._fail(self._error_from_exception(call, error)) from (None if url_label else error)
        if response.status_code >= 400:
            raise self._fail(self._error_from_response(call, response))
        return response

    def get_json(self, url: str, **kwargs: Any) -> Any:
        """GET `url` (same keywords as `request`) and return the decoded JSON body (None when empty)."""
        response = self.request("GET", url, **kwargs)
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError as error:
            shown = kwargs.get("url_label") or url
            raise self._fail(
                ApiError(response.status_code, "InvalidJson", f"the answer is not JSON: {error}", shown)
            ) from error

    def close(self) -> None:
        """Close the session (only for a session this process will not use again)."""
        self.session.close()


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


def iter_graph_pages(
    client: ApiClient,
    url: str,
    params: Mapping[str, Any] | None = None,
    *,
    scope: str | None,
    deadline: float | None = None,
    rate_limiter: RateLimiter | None = None,
    headers: Mapping[str, str] | None = None,
) -> Iterator[tuple[list[dict[str, Any]], dict[str, Any]]]:
    """Yield (value, page) for each Graph page, following `@odata.nextLink` until a page has none.

    The nextLink is absolute and already carries the query, so `params` go on the first request only.
    A nextLink to another scheme or host than `url` is refused (the bearer token stays with its API),
    and so is one that repeats an earlier page.
    """
    origin = _origin(url)
    next_url: str | None = url
    next_params = params
    seen: set[str] = set()
    while next_url is not None:
        page = client.get_json(
            next_url,
            scope=scope,
            params=next_params,
            headers=headers,
            deadline=deadline,
            rate_limiter=rate_limiter,
        )
        if not isinstance(page, dict):
            raise ApiError(None, "InvalidPage", "a Graph page must be a JSON object", next_url)
        value = page.get("value", [])
        if not isinstance(value, list):
            raise ApiError(None, "InvalidPage", "a Graph page's 'value' must be a list", next_url)
        yield value, page
        link = page.get("@odata.nextLink")
        if not link:
            return
        if not isinstance(link, str) or _origin(link) != origin:
            raise ApiError(None, "InvalidNextLink", "@odata.nextLink leaves the API's origin", str(link))
        if link in seen:
            raise ApiError(None, "PagingLoop", "@odata.nextLink repeats an earlier page", link)
        seen.add(link)
        next_url, next_params = link, None
