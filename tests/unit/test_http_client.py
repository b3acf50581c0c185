"""ApiClient retries, timeouts, token handling and stats, over a fake transport mounted on a Session."""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

from shared.m365.http_client import (
    ApiClient,
    ApiError,
    iter_graph_pages,
    parse_error_body,
    parse_retry_after,
    redact_url,
)

SCOPE = "https://graph.microsoft.com/.default"
URL = "https://graph.microsoft.com/v1.0/auditLogs/directoryAudits"
EPOCH = dt.datetime(2024, 5, 1, 12, 0, 0, tzinfo=dt.UTC)


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0
        self.sleeps: list[float] = []

    def now(self) -> dt.datetime:
        return EPOCH + dt.timedelta(seconds=self.t)

    def monotonic(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds


@dataclass
class Answer:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Sent:
    method: str
    url: str
    headers: dict[str, str]
    timeout: Any


Script = Answer | Exception | Callable[[requests.PreparedRequest], Answer]


class FakeAdapter(BaseAdapter):
    """Answers requests from a script, one entry per request, and records what was sent."""

    def __init__(self, script: list[Script]) -> None:
        super().__init__()
        self.script = list(script)
        self.sent: list[Sent] = []

    def send(  # type: ignore[override]
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: Any = True,
        cert: Any = None,
        proxies: Any = None,
    ) -> requests.Response:
        self.sent.append(Sent(request.method or "", request.url or "", dict(request.headers), timeout))
        if not self.script:
            raise AssertionError(f"unexpected request {request.method} {request.url}")
        item = self.script.pop(0)
        if isinstance(item, Exception):
            raise item
        answer = item(request) if callable(item) else item
        response = requests.Response()
        response.status_code = answer.status
        response.reason = "Test"
        if answer.body is None:
            response._content = b""
        elif isinstance(answer.body, str | bytes):
            response._content = answer.body.encode() if isinstance(answer.body, str) else answer.body
        else:
            response._content = json.dumps(answer.body).encode()
        response.headers = CaseInsensitiveDict({"Content-Type": "application/json", **answer.headers})
        response.url = request.url or ""
        response.request = request
        return response

    def close(self) -> None:
        pass


class CountingTokens:
    def __init__(self) -> None:
        self.issued = 0
        self.invalidated: list[tuple[str, str | None]] = []
        self._lock = threading.Lock()
        self._current: str | None = None

    def get_token(self, scope: str) -> str:
        with self._lock:
            if self._current is None:
                self.issued += 1
                self._current = f"eyJhbGciOiJub25lIn0.secret-token-{self.issued}.c2ln"
            return self._current

    def invalidate(self, scope: str, token: str | None = None) -> None:
        with self._lock:
            self.invalidated.append((scope, token))
            if token is None or token == self._current:
                self._current = None


def make_client(
    script: list[Script], *, random_value: float = 0.5, **kwargs: Any
) -> tuple[ApiClient, FakeAdapter, FakeClock, CountingTokens]:
    adapter = FakeAdapter(script)
    session = requests.Session()
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    clock = FakeClock()
    tokens = CountingTokens()
    client = ApiClient(
        tokens,
        session=session,
        clock=clock,
        sleep=clock.sleep,
        random=lambda: random_value,
        timeout=(3.0, 20.0),
        **kwargs,
    )
    return client, adapter, clock, tokens


def graph_error(code: str, message: str = "boom") -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


# --- success, timeouts, tokens ----------------------------------------------------------------------


def test_success_sends_bearer_token_accept_and_timeout() -> None:
    client, adapter, clock, tokens = make_client([Answer(200, {"value": [1]})])
    response = client.request("GET", URL, scope=SCOPE, params={"$top": "10"})
    assert response.json() == {"value": [1]}
    [sent] = adapter.sent
    assert sent.url == URL + "?%24top=10"
    assert sent.headers["Authorization"] == "Bearer eyJhbGciOiJub25lIn0.secret-token-1.c2ln"
    assert sent.headers["Accept"] == "application/json"
    assert sent.timeout == (3.0, 20.0)
    assert clock.sleeps == []
    assert tokens.issued == 1
    assert client.stats.requests == 1
    assert client.stats.retries == 0


def test_timeout_is_set_on_every_call_including_retries() -> None:
    client, adapter, _, _ = make_client(
        [Answer(503), requests.ConnectionError("reset"), Answer(401), Answer(200, {})]
    )
    client.request("GET", URL, scope=SCOPE)
    assert len(adapter.sent) == 4
    assert all(sent.timeout == (3.0, 20.0) for sent in adapter.sent)


def test_no_scope_means_no_authorization_header() -> None:
    client, adapter, _, tokens = make_client([Answer(200, {"ok": True})])
    assert client.get_json("http://127.0.0.1:7072/health") == {"ok": True}
    assert "Authorization" not in adapter.sent[0].headers
    assert tokens.issued == 0


def test_get_json_empty_body_is_none_and_non_json_is_an_error() -> None:
    client, _, _, _ = make_client([Answer(204), Answer(200, "<html>")])
    assert client.get_json(URL, scope=SCOPE) is None
    with pytest.raises(ApiError) as caught:
        client.get_json(URL, scope=SCOPE)
    assert caught.value.code == "InvalidJson"


def test_post_sends_json_body() -> None:
    seen: list[bytes] = []

    def answer(request: requests.PreparedRequest) -> Answer:
        seen.append(request.body if isinstance(request.body, bytes) else str(request.body).encode())
        return Answer(200, {"status": "enabled"})

    client, adapter, _, _ = make_client([answer])
    client.request("post", URL, scope=SCOPE, json={"webhook": None})
    assert adapter.sent[0].method == "POST"
    assert json.loads(seen[0]) == {"webhook": None}


def test_401_refreshes_the_token_once_and_succeeds() -> None:
    client, adapter, _, tokens = make_client(
        [Answer(401, graph_error("InvalidAuthenticationToken")), Answer(200, {})]
    )
    client.request("GET", URL, scope=SCOPE)
    assert [s.headers["Authorization"].split(".")[1] for s in adapter.sent] == [
        "secret-token-1",
        "secret-token-2",
    ]
    assert tokens.invalidated == [(SCOPE, "eyJhbGciOiJub25lIn0.secret-token-1.c2ln")]
    assert client.stats.token_refreshes == 1
    assert client.stats.requests == 2


def test_401_twice_raises_without_a_second_refresh() -> None:
    client, adapter, clock, tokens = make_client(
        [Answer(401, graph_error("InvalidAuthenticationToken", "expired")), Answer(401, graph_error("X"))]
    )
    with pytest.raises(ApiError) as caught:
        client.request("GET", URL, scope=SCOPE)
    assert caught.value.status == 401
    assert caught.value.code == "X"
    assert len(adapter.sent) == 2
    assert tokens.issued == 2
    assert clock.sleeps == []


# --- what is retried ----------------------------------------------------------------------------------


def test_retry_after_seconds_is_honoured() -> None:
    client, adapter, clock, _ = make_client(
        [Answer(429, graph_error("TooManyRequests"), {"Retry-After": "7"}), Answer(200, {})]
    )
    client.request("GET", URL, scope=SCOPE)
    assert clock.sleeps == [7.0]
    assert len(adapter.sent) == 2
    assert client.stats.throttled == 1
    assert client.stats.retries == 1
    assert client.stats.slept_seconds == 7.0


def test_retry_after_http_date_is_honoured() -> None:
    when = email.utils.format_datetime(EPOCH + dt.timedelta(seconds=42), usegmt=True)
    client, _, clock, _ = make_client([Answer(503, None, {"Retry-After": when}), Answer(200, {})])
    client.request("GET", URL, scope=SCOPE)
    assert clock.sleeps == [pytest.approx(42.0)]


def test_missing_retry_after_uses_full_jitter_exponential_backoff_with_cap() -> None:
    client, _, clock, _ = make_client([Answer(500)] * 7 + [Answer(200, {})], random_value=0.5, max_attempts=8)
    client.request("GET", URL, scope=SCOPE)
    # 0.5 * min(30, 1 * 2**(n-1)) for n = 1..7
    assert clock.sleeps == [0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 15.0]


def test_jitter_draws_from_the_injected_random() -> None:
    client, _, clock, _ = make_client([Answer(502), Answer(502), Answer(200, {})], random_value=0.0)
    client.request("GET", URL, scope=SCOPE)
    assert clock.sleeps == [0.0, 0.0]
    client, _, clock, _ = make_client([Answer(502), Answer(502), Answer(200, {})], random_value=0.999)
    client.request("GET", URL, scope=SCOPE)
    assert clock.sleeps == [pytest.approx(0.999), pytest.approx(1.998)]


def test_403_af429_is_retried_as_throttling() -> None:
    client, adapter, clock, _ = make_client(
        [Answer(403, graph_error("AF429", "Too many requests. Method=GetBlob")), Answer(200, [])],
        random_value=1.0,
    )
    assert client.get_json("https://manage.office.com/api/v1.0/t/activity/feed/audit/x", scope=SCOPE) == []
    assert len(adapter.sent) == 2
    assert clock.sleeps == [1.0]
    assert client.stats.throttled == 1


def test_500_af50000_is_retried() -> None:
    client, adapter, _, _ = make_client([Answer(500, graph_error("AF50000", "internal")), Answer(200, {})])
    client.request("GET", URL, scope=SCOPE)
    assert len(adapter.sent) == 2
    assert client.stats.server_errors == 1


def test_af50000_with_a_4xx_status_is_retried_too() -> None:
    client, adapter, _, _ = make_client([Answer(400, graph_error("AF50000")), Answer(200, {})])
    client.request("GET", URL, scope=SCOPE)
    assert len(adapter.sent) == 2


def test_connection_errors_and_timeouts_are_retried() -> None:
    client, adapter, clock, _ = make_client(
        [
            requests.ConnectTimeout("connect timed out"),
            requests.ReadTimeout("read timed out"),
            Answer(200, {}),
        ]
    )
    client.request("GET", URL, scope=SCOPE)
    assert len(adapter.sent) == 3
    assert len(clock.sleeps) == 2
    assert client.stats.connection_errors == 2


@pytest.mark.parametrize(
    ("status", "code"),
    [(400, "BadRequest"), (403, "Authorization_RequestDenied"), (403, "AF20022"), (404, "NotFound")],
)
def test_other_4xx_are_not_retried(status: int, code: str) -> None:
    client, adapter, clock, _ = make_client([Answer(status, graph_error(code, "nope")), Answer(200, {})])
    with pytest.raises(ApiError) as caught:
        client.request("GET", URL, scope=SCOPE)
    assert caught.value.status == status
    assert caught.value.code == code
    assert caught.value.message == "nope"
    assert len(adapter.sent) == 1
    assert clock.sleeps == []
    assert client.stats.failures == 1


def test_attempts_are_bounded() -> None:
    client, adapter, clock, _ = make_client([Answer(503, graph_error("ServiceUnavailable"))] * 10)
    with pytest.raises(ApiError) as caught:
        client.request("GET", URL, scope=SCOPE)
    assert len(adapter.sent) == 6  # the default max_attempts
    assert len(clock.sleeps) == 5
    assert caught.value.status == 503
    assert caught.value.code == "ServiceUnavailable"
    assert client.stats.retries == 5
    assert client.stats.failures == 1


def test_exhausted_connection_errors_raise_api_error_without_status() -> None:
    client, adapter, _, _ = make_client([requests.ConnectionError("refused")] * 3, max_attempts=3)
    with pytest.raises(ApiError) as caught:
        client.request("GET", URL, scope=SCOPE)
    assert caught.value.status is None
    assert caught.value.code == "ConnectionError"
    assert isinstance(caught.value.__cause__, requests.ConnectionError)
    assert len(adapter.sent) == 3


def test_deadline_stops_retries_before_sleeping_past_it() -> None:
    client, adapter, clock, _ = make_client([Answer(429, None, {"Retry-After": "5"})] * 6)
    with pytest.raises(ApiError) as caught:
        client.request("GET", URL, scope=SCOPE, deadline=12.0)
    # Attempts at t=0 and t=5 and t=10; the next wait would end at 15 > 12.
    assert clock.sleeps == [5.0, 5.0]
    assert len(adapter.sent) == 3
    assert caught.value.status == 429
    assert caught.value.retry_after == 5.0
    assert caught.value.throttled


def test_deadline_in_the_past_still_makes_the_first_attempt() -> None:
    client, adapter, clock, _ = make_client([Answer(500), Answer(200, {})])
    clock.t = 100.0
    with pytest.raises(ApiError):
        client.request("GET", URL, scope=SCOPE, deadline=50.0)
    assert len(adapter.sent) == 1
    assert clock.sleeps == []


def test_a_retry_after_longer_than_the_maximum_is_handed_to_the_caller() -> None:
    client, adapter, clock, _ = make_client([Answer(429, None, {"Retry-After": "3600"})], max_retry_after=300)
    with pytest.raises(ApiError) as caught:
        client.request("GET", URL, scope=SCOPE)
    assert caught.value.retry_after == 3600.0
    assert clock.sleeps == []
    assert len(adapter.sent) == 1


def test_rate_limiter_is_acquired_before_every_attempt() -> None:
    class Limiter:
        calls = 0

        def acquire(self) -> float:
            Limiter.calls += 1
            return 0.0

    client, _, _, _ = make_client([Answer(500), Answer(401), Answer(200, {})])
    client.request("GET", URL, scope=SCOPE, rate_limiter=Limiter())
    assert Limiter.calls == 3


# --- errors, logs, stats --------------------------------------------------------------------------


def test_error_url_and_message_are_redacted() -> None:
    client, _, _, _ = make_client([Answer(400, graph_error("BadRequest", "client_secret=hunter2 rejected"))])
    with pytest.raises(ApiError) as caught:
        client.request("GET", "https://example.test/x?sig=abcdef&top=1", scope=SCOPE)
    assert "abcdef" not in caught.value.url
    assert "top=1" in caught.value.url
    assert "hunter2" not in caught.value.message
    assert "hunter2" not in str(caught.value)


def test_redact_url_drops_a_slack_webhook_path() -> None:
    assert redact_url("https://hooks.slack.com/services/T000/B000/XXXXXXXX") == "https://hooks.slack.com/***"
    assert (
        redact_url("https://HOOKS.slack.com:443/services/T0/B0/X?a=1#f") == "https://HOOKS.slack.com:443/***"
    )
    assert (
        redact_url("https://graph.microsoft.com/v1.0/users?top=1")
        == "https://graph.microsoft.com/v1.0/users?top=1"
    )


SECRET_URL = "https://hooks.example.test/services/T000/B000/pathsecret?k=querysecret"


def _all_text(caplog: pytest.LogCaptureFixture, error: ApiError) -> str:
    return "\n".join(
        [
            *(r.getMessage() for r in caplog.records),
            *(caplog.handler.formatter.formatException(r.exc_info) for r in caplog.records if r.exc_info),
            str(error),
            error.message,
            error.url,
            repr(error.__cause__),
        ]
    )


def test_a_url_label_hides_a_secret_url_from_retries_and_the_error(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    refused = requests.ConnectionError(
        "HTTPSConnectionPool(host='hooks.example.test', port=443): Max retries exceeded with url: "
        "/services/T000/B000/pathsecret?k=querysecret (Caused by NewConnectionError('refused'))"
    )
    client, _, _, _ = make_client([Answer(503), Answer(401), refused], max_attempts=2)
    with pytest.raises(ApiError) as caught:
        client.request("POST", SECRET_URL, scope=SCOPE, url_label="webhook channel 'ops'")
    error = caught.value
    assert error.status is None
    assert error.url == "webhook channel 'ops'"
    assert "refused" in error.message
    assert error.__cause__ is None
    assert error.__suppress_context__
    text = _all_text(caplog, error)
    assert "webhook channel 'ops'" in text
    assert "server error (503)" in text
    assert "answered 401" in text
    for leaked in ("pathsecret", "querysecret", "/services/"):
        assert leaked not in text


def test_a_url_label_hides_a_secret_url_echoed_in_an_error_body(caplog: pytest.LogCaptureFixture) -> None:
    client, _, _, _ = make_client([Answer(404, f"no hook at {SECRET_URL}")])
    with pytest.raises(ApiError) as caught:
        client.request("POST", SECRET_URL, url_label="slack channel 'ops'")
    assert caught.value.status == 404
    assert "pathsecret" not in _all_text(caplog, caught.value)
    assert caught.value.message.startswith("no hook at ")


def test_a_url_label_hides_the_url_of_a_non_retryable_request_error() -> None:
    client, _, _, _ = make_client([requests.TooManyRedirects(f"Exceeded 30 redirects: {SECRET_URL}")])
    with pytest.raises(ApiError) as caught:
        client.request("POST", SECRET_URL, url_label="hook")
    assert caught.value.code == "TooManyRedirects"
    assert "pathsecret" not in str(caught.value)
    assert caught.value.__cause__ is None


def test_parse_error_body_shapes() -> None:
    def response(status: int, body: Any) -> requests.Response:
        r = requests.Response()
        r.status_code = status
        r.reason = "Reason"
        r._content = body if isinstance(body, bytes) else json.dumps(body).encode()
        return r

    assert parse_error_body(response(400, graph_error("BadRequest", "m"))) == ("BadRequest", "m")
    assert parse_error_body(response(400, {"error": "invalid_grant", "error_description": "d"})) == (
        "invalid_grant",
        "d",
    )
    assert parse_error_body(response(400, {"Message": "legacy"})) == (None, "legacy")
    assert parse_error_body(response(502, b"")) == (None, "Reason")


def test_parse_retry_after() -> None:
    assert parse_retry_after(None, EPOCH) is None
    assert parse_retry_after("2.5", EPOCH) == 2.5
    assert parse_retry_after("-3", EPOCH) == 0.0
    past = email.utils.format_datetime(EPOCH - dt.timedelta(seconds=30), usegmt=True)
    assert parse_retry_after(past, EPOCH) == 0.0
    assert parse_retry_after("soon", EPOCH) is None
    assert parse_retry_after("nan", EPOCH) is None
    assert parse_retry_after("inf", EPOCH) is None


def test_retries_are_logged_at_warning_without_the_token(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    client, _, _, tokens = make_client(
        [
            Answer(429, None, {"Retry-After": "1"}),
            Answer(401),
            requests.ConnectionError("failed with Bearer eyJhbGciOiJub25lIn0.secret-token-2.c2ln"),
            Answer(200, {}),
        ]
    )
    client.request("GET", URL + "?token=querysecret", scope=SCOPE)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) >= 3
    assert any("throttled (429)" in r.getMessage() for r in warnings)
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "secret-token" not in text
    assert "querysecret" not in text
    assert tokens.issued == 2


def test_stats_count_requests_retries_and_throttles() -> None:
    client, _, _, _ = make_client(
        [
            Answer(429, None, {"Retry-After": "0"}),
            Answer(403, graph_error("AF429")),
            Answer(503),
            Answer(200, {}),
            Answer(404, graph_error("NotFound")),
        ]
    )
    client.request("GET", URL, scope=SCOPE)
    with pytest.raises(ApiError):
        client.request("GET", URL, scope=SCOPE)
    snapshot = client.stats.snapshot()
    assert snapshot["requests"] == 5
    assert snapshot["retries"] == 3
    assert snapshot["throttled"] == 2
    assert snapshot["server_errors"] == 1
    assert snapshot["failures"] == 1
    client.stats.reset()
    assert client.stats.requests == 0


def test_stats_are_thread_safe() -> None:
    client, _, _, _ = make_client([])
    threads = [
        threading.Thread(target=lambda: [client.stats.add("requests") for _ in range(1000)]) for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert client.stats.requests == 8000


def test_non_retryable_request_exception_becomes_api_error() -> None:
    client, adapter, _, _ = make_client([requests.exceptions.InvalidURL("bad url")])
    with pytest.raises(ApiError) as caught:
        client.request("GET", URL, scope=SCOPE)
    assert caught.value.code == "InvalidURL"
    assert len(adapter.sent) == 1


# --- Graph paging ----------------------------------------------------------------------------------


def test_graph_paging_follows_next_link_until_absent() -> None:
    next1 = URL + "?$top=2&$skiptoken=abc"
    next2 = URL + "?$top=2&$skiptoken=def"
    client, adapter, _, _ = make_client(
        [
            Answer(200, {"value": [{"id": 1}, {"id": 2}], "@odata.nextLink": next1}),
            Answer(429, None, {"Retry-After": "1"}),
            Answer(200, {"value": [{"id": 3}, {"id": 4}], "@odata.nextLink": next2}),
            Answer(200, {"value": [{"id": 5}]}),
        ]
    )
    pages = list(iter_graph_pages(client, URL, {"$top": "2"}, scope=SCOPE, deadline=None, rate_limiter=None))
    assert [[item["id"] for item in value] for value, _ in pages] == [[1, 2], [3, 4], [5]]
    assert pages[0][1]["@odata.nextLink"] == next1
    assert [s.url for s in adapter.sent] == [URL + "?%24top=2", next1, next1, next2]


def test_graph_paging_refuses_a_next_link_to_another_host() -> None:
    client, adapter, _, _ = make_client(
        [Answer(200, {"value": [], "@odata.nextLink": "https://evil.example/steal"})]
    )
    pages = iter_graph_pages(client, URL, None, scope=SCOPE)
    assert next(pages)[0] == []
    with pytest.raises(ApiError) as caught:
        next(pages)
    assert caught.value.code == "InvalidNextLink"
    assert len(adapter.sent) == 1


def test_graph_paging_stops_on_a_loop() -> None:
    link = URL + "?$skiptoken=same"
    client, _, _, _ = make_client(
        [
            Answer(200, {"value": [1], "@odata.nextLink": link}),
            Answer(200, {"value": [2], "@odata.nextLink": link}),
        ]
    )
    with pytest.raises(ApiError, match="repeats"):
        list(iter_graph_pages(client, URL, None, scope=SCOPE))
