"""A database or storage call that fails after the SDK's own retries answers a problem a client can act
on: 503 with Retry-After (busy, unreachable) or 504 (no answer in time), never a 500 "internal error".
Each failure is raised by a fake Cosmos container behind the real search, histogram and export."""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Any

import httpx
import pytest
import requests
import urllib3.exceptions
from azure.core.exceptions import (
    ServiceRequestError,
    ServiceRequestTimeoutError,
    ServiceResponseError,
    ServiceResponseTimeoutError,
)
from azure.cosmos.exceptions import CosmosClientTimeoutError, CosmosHttpResponseError

from shared.api.auth import Authenticator
from shared.api.events_api import EventsApi
from shared.api.events_query import EventSearch, SensitivityPolicy
from shared.api.paging import ContinuationSigner
from shared.api.problems import MEDIA_TYPE
from shared.api.responses import ApiGuard, answer, dependency_problem
from shared.api.routing import ApiRequest
from tests.support.clock import ManualClock
from tests.support.principals import swa_principal

NOW = dt.datetime(2026, 11, 20, 12, 30, 5, tzinfo=dt.UTC)
READER = {"x-ms-client-principal": swa_principal(["reader"])}


class FakeResponse:
    """What CosmosHttpResponseError reads from a response: its status and headers."""

    def __init__(self, status: int, headers: dict[str, str]) -> None:
        self.status_code = status
        self.headers = headers
        self.reason = "fake"

    def text(self) -> str:
        return ""


def cosmos_error(status: int, headers: dict[str, str] | None = None) -> CosmosHttpResponseError:
    return CosmosHttpResponseError(
        status_code=status, message="fake", response=FakeResponse(status, headers or {})
    )


def wrapped(outer: type[Exception], inner: BaseException) -> Exception:
    """An azure-core error as its requests transport raises it: the transport's error inside."""
    try:
        raise outer(inner, error=inner) from inner  # type: ignore[call-arg]
    except Exception as exc:
        return exc


class FailingContainer:
    """A Cosmos container whose every query raises `error`."""

    def __init__(self, error: BaseException) -> None:
        self.error = error
        self.queries = 0

    def query_items(self, *args: Any, **kwargs: Any) -> Any:
        self.queries += 1
        raise self.error


def _api(container: FailingContainer) -> EventsApi:
    guard = ApiGuard(
        Authenticator(verifier=None, swa_enabled=True, key_roles=frozenset()),
        SensitivityPolicy(services=["Exchange"]),
    )
    events: Any = container
    search = EventSearch(events, ContinuationSigner(b"0123456789abcdef0123"), "tenant")
    unused: Any = None
    return EventsApi(
        guard, events, search, unused, unused, unused, "tenant", ManualClock(NOW), export_max=10, bulk_max=10
    )


BUSY = [
    (cosmos_error(429, {"x-ms-retry-after-ms": "1500"}), "2"),  # rounded up to whole seconds
    (cosmos_error(429, {"x-ms-retry-after-ms": "120000"}), "60"),  # clamped
    (cosmos_error(429, {"x-ms-retry-after-ms": "0"}), "1"),
    (cosmos_error(429, {"x-ms-retry-after-ms": "soon"}), "5"),
    (cosmos_error(429, {"x-ms-retry-after-ms": "nan"}), "5"),
    (cosmos_error(429), "5"),
    (cosmos_error(503), "5"),
    (cosmos_error(503, {"Retry-After": "7"}), "7"),
    (wrapped(ServiceRequestError, requests.exceptions.ConnectionError("refused")), "5"),
    (wrapped(ServiceResponseError, requests.exceptions.ChunkedEncodingError("reset")), "5"),
    (ServiceRequestError("name or service not known"), "5"),
    (requests.exceptions.ConnectionError("refused"), "5"),
    (urllib3.exceptions.NewConnectionError(None, "refused"), "5"),  # type: ignore[arg-type]
    (httpx.ConnectError("refused"), "5"),
    (ConnectionResetError("reset"), "5"),
]
SLOW = [
    cosmos_error(408),
    CosmosClientTimeoutError(),
    wrapped(ServiceResponseTimeoutError, requests.exceptions.ReadTimeout("read timed out")),
    wrapped(ServiceRequestTimeoutError, requests.exceptions.ConnectTimeout("connect timed out")),
    wrapped(ServiceResponseError, requests.exceptions.ReadTimeout("read timed out")),  # older azure-core
    requests.exceptions.ReadTimeout("read timed out"),
    urllib3.exceptions.ReadTimeoutError(None, "/", "read timed out"),  # type: ignore[arg-type]
    httpx.ReadTimeout("read timed out"),
    TimeoutError("timed out"),
]
ROUTES = [
    ("list_events", "https://h/api/events?q=x&exclude_service=Teams"),
    ("histogram", "https://h/api/events/histogram?start=2d&exclude_result=failure"),
    ("export", "https://h/api/events/export?format=csv&exclude_actor=svc"),
]


@pytest.mark.parametrize(("error", "retry_after"), BUSY, ids=lambda v: type(v).__name__)
@pytest.mark.parametrize(("route", "url"), ROUTES, ids=[r for r, _ in ROUTES])
def test_a_busy_or_unreachable_database_is_a_503_with_retry_after(
    error: BaseException, retry_after: str, route: str, url: str, caplog: pytest.LogCaptureFixture
) -> None:
    container = FailingContainer(error)
    with caplog.at_level(logging.WARNING):
        response = getattr(_api(container), route).serve(ApiRequest(url, READER))
    assert container.queries >= 1
    assert response.status == 503
    assert response.media_type == MEDIA_TYPE
    assert response.headers["Retry-After"] == retry_after
    assert response.headers["Cache-Control"] == "no-store"
    body = json.loads(response.body)
    assert body["title"] == "Service Unavailable"
    assert body["type"].endswith("/unavailable")
    assert "internal" not in response.body
    assert not any(r.levelno >= logging.ERROR for r in caplog.records)  # an outage, not a bug


@pytest.mark.parametrize("error", SLOW, ids=lambda v: type(v).__name__)
@pytest.mark.parametrize(("route", "url"), ROUTES, ids=[r for r, _ in ROUTES])
def test_a_database_that_does_not_answer_in_time_is_a_504(error: BaseException, route: str, url: str) -> None:
    response = getattr(_api(FailingContainer(error)), route).serve(ApiRequest(url, READER))
    assert response.status == 504
    assert "Retry-After" not in response.headers
    body = json.loads(response.body)
    assert (body["title"], body["status"]) == ("Gateway Timeout", 504)
    assert body["type"].endswith("/timeout")


def test_one_event_by_id_maps_the_same_way() -> None:
    api = _api(FailingContainer(cosmos_error(429, {"x-ms-retry-after-ms": "3000"})))
    response = api.get_event("entra_audit:1", READER, "/api/events/entra_audit:1")
    assert (response.status, response.headers["Retry-After"]) == (503, "3")


@pytest.mark.parametrize(
    "error",
    [
        cosmos_error(400),
        cosmos_error(500),
        ValueError("a bug"),
        KeyError("id"),
        RuntimeError("wrapping nothing known"),
    ],
    ids=lambda v: f"{type(v).__name__}",
)
def test_anything_else_is_still_a_500_that_tells_nothing(
    error: BaseException, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR):
        response = _api(FailingContainer(error)).list_events.serve(ApiRequest("https://h/api/events", READER))
    assert response.status == 500
    assert json.loads(response.body)["detail"] == "the request failed unexpectedly"
    assert "Retry-After" not in response.headers
    assert any(r.levelno == logging.ERROR for r in caplog.records)


def test_an_outage_raised_from_another_error_is_recognised_through_the_chain() -> None:
    def handler() -> Any:
        try:
            raise cosmos_error(429, {"x-ms-retry-after-ms": "2000"})
        except CosmosHttpResponseError as exc:
            raise RuntimeError("the search failed") from exc

    response = answer("/api/events", handler)
    assert (response.status, response.headers["Retry-After"]) == (503, "2")


def test_a_cycle_of_causes_ends() -> None:
    first, second = RuntimeError("a"), RuntimeError("b")
    first.__context__, second.__context__ = second, first
    assert dependency_problem(first) is None
