"""ApiClient retries, timeouts, token handling, redirects, redaction and stats, over an
httpx.MockTransport (tests/support/http_fakes.py). Real sockets: tests/unit/test_http_transport.py."""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import logging
import threading
from typing import Any

import httpx
import pytest

from shared.m365.http_client import (
    ApiError,
    parse_error_body,
    parse_retry_after,
    redact_url,
)
from shared.m365.http_transport import MAX_REDIRECTS
from tests.support.http_fakes import EPOCH, SCOPE, TIMEOUT, URL, Answer, make_client


def graph_error(code: str, message: str = "boom") -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


# --- success, timeouts, tokens ----------------------------------------------------------------------


def test_success_sends_bearer_token_accept_and_timeout() -> None:
    client, adapter, clock, tokens = make_client([Answer(200, {"value": [1]})])
    response = client.request("GET", URL, scope=SCOPE, params={"$top": "10"})
    assert response.json() == {"value": [1]}
    [sent] = adapter.sent
    assert sent.url == URL + "?%24top=10"
    assert sent.headers["authorization"] == "Bearer eyJhbGciOiJub25lIn0.secret-token-1.c2ln"
    assert sent.headers["accept"] == "application/json"
    assert sent.headers["user-agent"] == "aoc-functions/0.1"
    assert sent.timeout == TIMEOUT
    assert clock.sleeps == []
    assert tokens.issued == 1
    assert client.stats.requests == 1
    assert client.stats.retries == 0


def test_timeout_is_set_on_every_call_including_retries() -> None:
    client, adapter, _, _ = make_client([Answer(503), httpx.ReadError("reset"), Answer(401), Answer(200, {})])
    client.request("GET", URL, scope=SCOPE)
    assert len(adapter.sent) == 4
    assert all(sent.timeout == TIMEOUT for sent in adapter.sent)


def test_no_scope_means_no_authorization_header() -> None:
    client, adapter, _, tokens = make_client([Answer(200, {"ok": True})])
    assert client.get_json("http://127.0.0.1:7072/health") == {"ok": True}
    assert "authorization" not in adapter.sent[0].headers
    assert tokens.issued == 0


def test_get_json_empty_body_is_none_and_non_json_is_an_error() -> None:
    client, _, _, _ = make_client([Answer(204), Answer(200, "<html>")])
    assert client.get_json(URL, scope=SCOPE) is None
    with pytest.raises(ApiError) as caught:
        client.get_json(URL, scope=SCOPE)
    assert caught.value.code == "InvalidJson"


def test_post_sends_json_body() -> None:
    client, adapter, _, _ = make_client([Answer(200, {"status": "enabled"})])
    client.request("post", URL, scope=SCOPE, json={"webhook": None})
    assert adapter.sent[0].method == "POST"
    assert adapter.sent[0].headers["content-type"] == "application/json"
    assert json.loads(adapter.sent[0].body) == {"webhook": None}


def test_data_sends_the_exact_bytes() -> None:
    client, adapter, _, _ = make_client([Answer(200)])
    client.request("POST", URL, data=b'{"b":1,  "a":2}', headers={"Content-Type": "application/json"})
    assert adapter.sent[0].body == b'{"b":1,  "a":2}'


def test_params_merge_into_a_query_the_url_already_has_and_none_values_are_left_out() -> None:
    client, adapter, _, _ = make_client([Answer(200)])
    client.request("GET", URL + "?$top=5", params={"api-version": "7.1", "skip": None})
    assert adapter.sent[0].url == URL + "?$top=5&api-version=7.1"


def test_a_graph_next_link_is_sent_as_written() -> None:
    link = URL + "?$top=2&$skiptoken=a%2Bb%3D%3D&$filter=activityDateTime%20ge%202024-05-01T00:00:00Z"
    client, adapter, _, _ = make_client([Answer(200)])
    client.request("GET", link)
    assert adapter.sent[0].url == link


def test_401_refreshes_the_token_once_and_succeeds() -> None:
    client, adapter, _, tokens = make_client(
        [Answer(401, graph_error("InvalidAuthenticationToken")), Answer(200, {})]
    )
    client.request("GET", URL, scope=SCOPE)
    assert [s.headers["authorization"].split(".")[1] for s in adapter.sent] == [
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
            httpx.ConnectTimeout("connect timed out"),
            httpx.ReadTimeout("read timed out"),
            httpx.RemoteProtocolError("Server disconnected without sending a response."),
            httpx.ConnectError("[Errno 111] Connection refused"),
            httpx.PoolTimeout("no free connection"),
            Answer(200, {}),
        ]
    )
    client.request("GET", URL, scope=SCOPE)
    assert len(adapter.sent) == 6
    assert len(clock.sleeps) == 5
    assert client.stats.connection_errors == 5


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
    client, adapter, _, _ = make_client([httpx.ConnectError("refused")] * 3, max_attempts=3)
    with pytest.raises(ApiError) as caught:
        client.request("GET", URL, scope=SCOPE)
    assert caught.value.status is None
    assert caught.value.code == "ConnectError"
    assert caught.value.never_sent
    assert isinstance(caught.value.__cause__, httpx.ConnectError)
    assert len(adapter.sent) == 3


@pytest.mark.parametrize(
    ("error", "never_sent"),
    [
        (httpx.ConnectError("refused"), True),
        (httpx.ConnectTimeout("connect timed out"), True),
        (httpx.PoolTimeout("no free connection"), True),
        (httpx.ReadTimeout("read timed out"), False),
        (httpx.WriteTimeout("write timed out"), False),
        (httpx.ReadError("connection reset"), False),
        (httpx.RemoteProtocolError("Server disconnected without sending a response."), False),
    ],
)
def test_never_sent_comes_from_the_exception_type(error: Exception, never_sent: bool) -> None:
    client, _, _, _ = make_client([error], max_attempts=1)
    with pytest.raises(ApiError) as caught:
        client.request("POST", URL, url_label="hook")
    assert caught.value.never_sent is never_sent
    assert caught.value.code == type(error).__name__


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
            *(logging.Formatter().formatException(r.exc_info) for r in caplog.records if r.exc_info),
            str(error),
            error.message,
            error.url,
            repr(error.__cause__),
        ]
    )


def test_a_url_label_hides_a_secret_url_from_retries_and_the_error(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    refused = httpx.ConnectError(
        "refused while connecting for https://hooks.example.test/services/T000/B000/pathsecret?k=querysecret "
        "(/services/T000/B000/pathsecret%3Fk=querysecret)"
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
    client, _, _, _ = make_client([httpx.UnsupportedProtocol(f"unsupported protocol in {SECRET_URL}")])
    with pytest.raises(ApiError) as caught:
        client.request("POST", SECRET_URL, url_label="hook")
    assert caught.value.code == "UnsupportedProtocol"
    assert "pathsecret" not in str(caught.value)
    assert caught.value.__cause__ is None


def test_redirects_are_followed_up_to_the_limit_and_a_loop_is_an_error() -> None:
    loop = Answer(302, None, {"Location": SECRET_URL})
    client, adapter, clock, _ = make_client([loop] * (MAX_REDIRECTS + 1))
    with pytest.raises(ApiError) as caught:
        client.request("POST", SECRET_URL, url_label="hook")
    assert caught.value.code == "TooManyRedirects"
    assert len(adapter.sent) == MAX_REDIRECTS + 1
    assert clock.sleeps == []
    assert "pathsecret" not in str(caught.value)


def test_a_cross_origin_redirect_drops_the_bearer_token() -> None:
    client, adapter, _, _ = make_client(
        [Answer(307, None, {"Location": "https://elsewhere.example/x"}), Answer(200, {})]
    )
    client.request("GET", URL, scope=SCOPE)
    assert "authorization" in adapter.sent[0].headers
    assert adapter.sent[1].url == "https://elsewhere.example/x"
    assert "authorization" not in adapter.sent[1].headers


def test_parse_error_body_shapes() -> None:
    def response(status: int, body: Any) -> httpx.Response:
        return httpx.Response(status, content=body if isinstance(body, bytes) else json.dumps(body).encode())

    assert parse_error_body(response(400, graph_error("BadRequest", "m"))) == ("BadRequest", "m")
    assert parse_error_body(response(400, {"error": "invalid_grant", "error_description": "d"})) == (
        "invalid_grant",
        "d",
    )
    assert parse_error_body(response(400, {"Message": "legacy"})) == (None, "legacy")
    assert parse_error_body(response(502, b"")) == (None, "Bad Gateway")


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
            httpx.ReadError("failed with Bearer eyJhbGciOiJub25lIn0.secret-token-2.c2ln"),
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

    def count() -> None:
        for _ in range(1000):
            client.stats.add("requests")

    threads = [threading.Thread(target=count) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert client.stats.requests == 8000


def test_non_retryable_request_exception_becomes_api_error() -> None:
    client, adapter, _, _ = make_client([httpx.LocalProtocolError("illegal header")])
    with pytest.raises(ApiError) as caught:
        client.request("GET", URL, scope=SCOPE)
    assert caught.value.code == "LocalProtocolError"
    assert not caught.value.never_sent
    assert len(adapter.sent) == 1


def test_an_invalid_url_is_an_api_error_before_anything_is_sent() -> None:
    client, adapter, _, _ = make_client([])
    with pytest.raises(ApiError) as caught:
        client.request("GET", "https://graph.example:port/x", scope=SCOPE)
    assert caught.value.code == "InvalidURL"
    assert adapter.sent == []
    assert client.stats.requests == 0


def test_httpx_request_lines_never_reach_the_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    client, _, _, _ = make_client([Answer(200)])
    client.request("POST", SECRET_URL, url_label="hook")
    assert not [r for r in caplog.records if r.name == "httpx"]
    assert "pathsecret" not in caplog.text
