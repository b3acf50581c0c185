"""One HTTP client for Microsoft Graph, the Management Activity API, Azure DevOps and the webhooks:
tokens, timeouts, retries, over one pooled `httpx.Client` per process.

Retried (with tenacity): HTTP 429, any 5xx, 403 whose error code is "AF429" (Management API
throttling), any error status whose code is "AF50000" (Management API internal error), and transport
failures (connect errors, timeouts, a connection broken mid-exchange; see shared.m365.http_errors).
Nothing else is retried: other 4xx answers raise ApiError at once. A 401 gets one fresh token and one
more try.

Waits honour Retry-After (delta-seconds or an HTTP-date); without it, exponential backoff with full
jitter (uniform in [0, min(cap, base * 2**(n-1))]). Retries stop at `max_attempts` and never sleep past
`deadline` (a `clock.monotonic()` value); a Retry-After longer than `max_retry_after` is not waited
for either: the ApiError carries it so the caller can come back later.

A URL that is itself a credential (a webhook's) is sent with `url_label`: logs and ApiErrors then show
the label, and exception text is stripped of the URL (shared.m365.http_transport keeps httpx's own
request lines, which name the full URL, out of the logs).

Graph paging (`@odata.nextLink`) lives with the Graph source: shared.ingestion.sources.graph_paging.
"""

from __future__ import annotations

import logging
import random as _random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
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
from tenacity.stop import stop_base
from tenacity.wait import wait_base

from shared.m365.http_errors import (
    RETRYABLE_EXCEPTIONS,
    ApiError,
    never_sent_exception,
    parse_error_body,
    parse_retry_after,
    redact_url,
    retryable_exception,
    scrub_url,
)
from shared.m365.http_stats import ApiStats
from shared.m365.http_transport import DEFAULT_TIMEOUT, httpx_timeout, new_http_client, shared_http_client
from shared.m365.rate_limit import RateLimiter
from shared.m365.token_cache import RefreshableTokenProvider, TokenProvider
from shared.platform.clock import Clock, SystemClock
from shared.platform.redact import redact

__all__ = [
    "DEFAULT_MAX_ATTEMPTS",
    "ApiClient",
    "ApiError",
    "ApiStats",
    "StopIf",
    "new_http_client",
    "parse_error_body",
    "parse_retry_after",
    "redact_url",
    "scrub_url",
    "shared_http_client",
]

logger = logging.getLogger(__name__)

DEFAULT_MAX_ATTEMPTS = 6
DEFAULT_BACKOFF_BASE = 1.0
DEFAULT_BACKOFF_CAP = 30.0
DEFAULT_MAX_RETRY_AFTER = 300.0


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
    wire_url: httpx.URL | None = None  # `url` with `params`, built once before the first attempt

    @property
    def shown_url(self) -> str:
        return self.label if self.label is not None else redact_url(self.url)

    def scrub(self, text: str) -> str:
        return scrub_url(text, self.url) if self.label is not None else text

    def target(self) -> httpx.URL:
        """The URL with `params` appended to any query it has, which is kept as written (a Graph
        nextLink's $skiptoken); None values are left out, as requests did."""
        url = httpx.URL(self.url)
        params = {k: v for k, v in (self.params or {}).items() if v is not None}
        if not params:
            return url
        encoded = str(httpx.QueryParams(params)).encode("ascii")
        return url.copy_with(query=url.query + b"&" + encoded if url.query else encoded)


def _retry_reason(response: httpx.Response) -> str | None:
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


class StopIf(stop_base):
    """A tenacity stop condition from a predicate, combinable with `stop_any` (which wants stop_base)."""

    def __init__(self, predicate: Callable[[RetryCallState], bool]) -> None:
        self._predicate = predicate

    def __call__(self, retry_state: RetryCallState) -> bool:
        return self._predicate(retry_state)


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
            response: httpx.Response = outcome.result()
            call.retry_after = parse_retry_after(
                response.headers.get("Retry-After"), self._client.clock.now()
            )
        if call.retry_after is not None:
            return call.retry_after
        ceiling = min(
            self._client.backoff_cap, self._client.backoff_base * 2.0 ** (retry_state.attempt_number - 1)
        )
        return self._client.random() * ceiling


class ApiClient:
    """Calls Graph, the Management API, Azure DevOps or a webhook over one pooled `httpx.Client`.

    Thread-safe; build one per process. `timeout` is (connect, read) seconds and goes on every call.
    `sleep`, `clock` and `random` (a callable returning [0, 1)) are injected so tests run instantly.
    """

    def __init__(
        self,
        token_provider: TokenProvider | None = None,
        *,
        http: httpx.Client | None = None,
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
        self.http = http or shared_http_client()
        self.timeout = (float(timeout[0]), float(timeout[1]))
        self._httpx_timeout = httpx_timeout(self.timeout)
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

    def _send(self, call: _Call, token: str | None) -> httpx.Response:
        if call.rate_limiter is not None:
            call.rate_limiter.acquire()
        headers = {"Accept": "application/json", **(call.headers or {})}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        self.stats.add("requests")
        try:
            return self.http.request(
                call.method,
                call.wire_url or call.target(),
                headers=headers,
                json=call.json,
                content=call.data,
                timeout=self._httpx_timeout,
            )
        except RETRYABLE_EXCEPTIONS:
            self.stats.add("connection_errors")
            raise

    def _attempt(self, call: _Call) -> httpx.Response:
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
                retry_if_exception(retryable_exception),
                retry_if_result(lambda response: _retry_reason(response) is not None),
            ),
            stop=stop_any(
                stop_after_attempt(self.max_attempts),
                StopIf(lambda retry_state: self._should_stop(call, retry_state)),
            ),
            wait=_RetryAfterOrFullJitter(self, call),
            sleep=self.sleep,
            before_sleep=lambda retry_state: self._before_sleep(call, retry_state),
            reraise=False,
        )

    def _error_from_response(self, call: _Call, response: httpx.Response) -> ApiError:
        code, message = parse_error_body(response)
        retry_after = call.retry_after
        if retry_after is None:
            retry_after = parse_retry_after(response.headers.get("Retry-After"), self.clock.now())
        return ApiError(response.status_code, code, call.scrub(message), call.shown_url, retry_after)

    def _error_from_exception(self, call: _Call, error: BaseException | None) -> ApiError:
        return ApiError(
            None,
            type(error).__name__,
            call.scrub(str(error)),
            call.shown_url,
            call.retry_after,
            never_sent=never_sent_exception(error),
        )

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
    ) -> httpx.Response:
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
            call.wire_url = call.target()  # httpx.InvalidURL here: nothing is sent
            response: httpx.Response = self._retrying(call)(self._attempt, call)
        except RetryError as exhausted:
            last = exhausted.last_attempt
            if last.failed:
                error = last.exception()
                raise self._fail(self._error_from_exception(call, error)) from (None if url_label else error)
            raise self._fail(self._error_from_response(call, last.result())) from None
        except (httpx.HTTPError, httpx.InvalidURL) as error:  # not retryable: bad URL, TLS, redirects...
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
        """Close the HTTP client (only one this process will not use again)."""
        self.http.close()
