"""HttpDispatcher.dispatch without a socket: routing, auth levels, request and response fidelity."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import azure.functions as func
import pytest
from werkzeug.datastructures import Headers

from devtools.host.config import HostKeys
from devtools.host.http_server import HttpDispatcher, HttpRoute
from devtools.host.invoker import AsyncRunner, FunctionInvoker, InvocationResult, QueueOutputBinding

MASTER_KEY = "master-key-value"
FUNCTION_KEY = "function-key-value"
HOST = "http://127.0.0.1:7071"


def _build_app() -> func.FunctionApp:
    app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)

    @app.route(route="items/new", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
    def new_item_form(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse("new-item-form")

    @app.route(route="items/{id}", methods=["GET", "PUT"], auth_level=func.AuthLevel.ANONYMOUS)
    def get_item(req: func.HttpRequest) -> func.HttpResponse:
        document = {
            "route_params": dict(req.route_params),
            "params": dict(req.params),
            "method": req.method,
            "url": req.url,
            "body": req.get_body().decode("utf-8"),
            "x_custom": req.headers.get("x-custom"),
        }
        return func.HttpResponse(json.dumps(document), mimetype="application/json")

    @app.route(route="secure", auth_level=func.AuthLevel.FUNCTION)
    def secure(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse("secure-ok")

    @app.route(route="default-level")
    def default_level(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse("default-ok")

    @app.route(route="admin-only", auth_level=func.AuthLevel.ADMIN)
    def admin_only(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse("admin-ok")

    @app.route(route="custom", auth_level=func.AuthLevel.ANONYMOUS)
    def custom(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse(
            "<p>created</p>",
            status_code=201,
            headers={"X-Trace-Id": "trace-123", "Cache-Control": "no-store"},
            mimetype="text/html",
            charset="iso-8859-1",
        )

    @app.route(route="binary", auth_level=func.AuthLevel.ANONYMOUS)
    def binary(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse(b"\x00\x01\xfe\xff", mimetype="application/octet-stream")

    @app.route(route="explicit-type", auth_level=func.AuthLevel.ANONYMOUS)
    def explicit_type(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse('{"a":1}', headers={"Content-Type": "application/vnd.test+json"})

    @app.route(route="cookies", auth_level=func.AuthLevel.ANONYMOUS)
    def cookies(req: func.HttpRequest) -> func.HttpResponse:
        response = func.HttpResponse("cookies")
        response.headers.add_header("Set-Cookie", "a=1")
        response.headers.add_header("Set-Cookie", "b=2")
        return response

    @app.route(route="boom", auth_level=func.AuthLevel.ANONYMOUS)
    def boom(req: func.HttpRequest) -> func.HttpResponse:
        raise RuntimeError("kaboom")

    @app.route(route="wrong-type", auth_level=func.AuthLevel.ANONYMOUS)
    def wrong_type(req: func.HttpRequest) -> func.HttpResponse:
        return 42  # type: ignore[return-value]

    @app.route(route="nothing", auth_level=func.AuthLevel.ANONYMOUS)
    def nothing(req: func.HttpRequest) -> None:
        return None

    @app.route(route="text", auth_level=func.AuthLevel.ANONYMOUS)
    def text(req: func.HttpRequest) -> str:
        return "just text"

    @app.route(route="async", auth_level=func.AuthLevel.ANONYMOUS)
    async def async_handler(req: func.HttpRequest) -> func.HttpResponse:
        await asyncio.sleep(0)
        return func.HttpResponse(f"async-ok {req.params.get('n')}")

    @app.route(route="context", auth_level=func.AuthLevel.ANONYMOUS)
    def with_context(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
        return func.HttpResponse(context.function_name)

    @app.route(route="enqueue", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
    @app.queue_output(arg_name="out", queue_name="Work-Items", connection="AzureWebJobsStorage")
    def enqueue(req: func.HttpRequest, out: func.Out[str]) -> func.HttpResponse:
        out.set(req.get_body().decode())
        return func.HttpResponse(status_code=202)

    @app.route(route="files/{*path}", auth_level=func.AuthLevel.ANONYMOUS)
    def files(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse(json.dumps(dict(req.route_params)), mimetype="application/json")

    return app


@pytest.fixture
def runner() -> Iterator[AsyncRunner]:
    async_runner = AsyncRunner()
    yield async_runner
    async_runner.close()


@pytest.fixture
def routes(runner: AsyncRunner, tmp_path: Any) -> list[HttpRoute]:
    invokers = [FunctionInvoker(f, str(tmp_path), runner) for f in _build_app().get_functions()]
    return [HttpRoute.from_invoker(i) for i in invokers]


@pytest.fixture
def records() -> list[tuple[tuple[Any, ...], dict[str, Any]]]:
    return []


@pytest.fixture
def sent() -> list[InvocationResult]:
    return []


@pytest.fixture
def keys() -> HostKeys:
    return HostKeys(master_key=MASTER_KEY, function_keys={"default": FUNCTION_KEY})


def _dispatcher(
    routes: list[HttpRoute],
    keys: HostKeys,
    records: list[Any],
    sent: list[InvocationResult],
    prefix: str = "api",
) -> HttpDispatcher:
    return HttpDispatcher(
        routes,
        prefix,
        keys,
        lambda *args, **kwargs: records.append((args, kwargs)),
        admin_routes={"/admin/host/status": lambda: {"state": "Running"}},
        send_outputs=sent.append,
    )


@pytest.fixture
def dispatcher(
    routes: list[HttpRoute], keys: HostKeys, records: list[Any], sent: list[InvocationResult]
) -> HttpDispatcher:
    return _dispatcher(routes, keys, records, sent)


def call(
    dispatcher: HttpDispatcher,
    method: str,
    path: str,
    headers: dict[str, str] | None = None,
    body: bytes = b"",
) -> tuple[int, Headers, bytes]:
    return dispatcher.dispatch(method, HOST + path, headers or {}, body)


# --- routing ----------------------------------------------------------------------------------


def test_unknown_path_is_404(dispatcher: HttpDispatcher, records: list[Any]) -> None:
    status, headers, body = call(dispatcher, "GET", "/api/does-not-exist")
    assert status == 404
    assert headers["Content-Type"] == "application/problem+json"
    assert json.loads(body) == {"status": 404, "title": "Not Found"}
    assert records == []


def test_path_outside_route_prefix_is_404(dispatcher: HttpDispatcher) -> None:
    assert call(dispatcher, "GET", "/items/5")[0] == 404
    assert call(dispatcher, "GET", "/apix/items/5")[0] == 404
    assert call(dispatcher, "GET", "/other/api/items/5")[0] == 404


def test_route_prefix_is_case_insensitive(dispatcher: HttpDispatcher) -> None:
    status, _, body = call(dispatcher, "GET", "/API/items/5")
    assert status == 200
    assert json.loads(body)["route_params"] == {"id": "5"}


def test_empty_route_prefix_serves_from_root(
    routes: list[HttpRoute], keys: HostKeys, records: list[Any], sent: list[InvocationResult]
) -> None:
    dispatcher = _dispatcher(routes, keys, records, sent, prefix="")
    status, _, body = call(dispatcher, "GET", "/items/5")
    assert status == 200
    assert json.loads(body)["route_params"] == {"id": "5"}
    assert call(dispatcher, "GET", "/api/items/5")[0] == 404


def test_wrong_method_is_405_with_allow_header(dispatcher: HttpDispatcher, records: list[Any]) -> None:
    status, headers, body = call(dispatcher, "DELETE", "/api/items/5")
    assert status == 405
    assert headers["Allow"] == "GET, PUT"
    assert json.loads(body)["status"] == 405
    assert records == []


def test_405_allow_header_unions_all_matching_routes(dispatcher: HttpDispatcher) -> None:
    status, headers, _ = call(dispatcher, "POST", "/api/items/new")
    assert status == 405
    assert headers["Allow"] == "GET, PUT"


def test_literal_route_wins_over_parameter_route(dispatcher: HttpDispatcher) -> None:
    status, _, body = call(dispatcher, "GET", "/api/items/new")
    assert status == 200
    assert body == b"new-item-form"


def test_method_selects_among_matching_routes(dispatcher: HttpDispatcher) -> None:
    # items/new only allows GET; PUT falls through to items/{id}.
    status, _, body = call(dispatcher, "PUT", "/api/items/new", body=b"payload")
    assert status == 200
    document = json.loads(body)
    assert document["route_params"] == {"id": "new"}
    assert document["method"] == "PUT"
    assert document["body"] == "payload"


def test_catch_all_route(dispatcher: HttpDispatcher) -> None:
    status, _, body = call(dispatcher, "GET", "/api/files/a/b/c.txt")
    assert status == 200
    assert json.loads(body) == {"path": "a/b/c.txt"}


# --- auth levels ------------------------------------------------------------------------------


def test_anonymous_route_needs_no_key(dispatcher: HttpDispatcher) -> None:
    status, _, body = call(dispatcher, "GET", "/api/items/new")
    assert (status, body) == (200, b"new-item-form")


def test_function_route_without_key_is_401(dispatcher: HttpDispatcher, records: list[Any]) -> None:
    status, headers, body = call(dispatcher, "GET", "/api/secure")
    assert status == 401
    assert json.loads(body) == {"status": 401, "title": "Unauthorized"}
    assert headers["Content-Type"] == "application/problem+json"
    assert records == []


def test_function_route_with_wrong_key_is_401(dispatcher: HttpDispatcher) -> None:
    assert call(dispatcher, "GET", "/api/secure", {"x-functions-key": "wrong"})[0] == 401
    assert call(dispatcher, "GET", "/api/secure?code=wrong")[0] == 401


def test_function_route_with_header_key(dispatcher: HttpDispatcher) -> None:
    status, _, body = call(dispatcher, "GET", "/api/secure", {"x-functions-key": FUNCTION_KEY})
    assert (status, body) == (200, b"secure-ok")


def test_function_key_header_name_is_case_insensitive(dispatcher: HttpDispatcher) -> None:
    status, _, body = call(dispatcher, "GET", "/api/secure", {"X-Functions-Key": FUNCTION_KEY})
    assert (status, body) == (200, b"secure-ok")


def test_function_route_with_code_query_parameter(dispatcher: HttpDispatcher) -> None:
    status, _, body = call(dispatcher, "GET", f"/api/secure?code={FUNCTION_KEY}")
    assert (status, body) == (200, b"secure-ok")


def test_function_route_accepts_master_key(dispatcher: HttpDispatcher) -> None:
    assert call(dispatcher, "GET", "/api/secure", {"x-functions-key": MASTER_KEY})[0] == 200
    assert call(dispatcher, "GET", f"/api/secure?code={MASTER_KEY}")[0] == 200


def test_app_default_auth_level_is_function(dispatcher: HttpDispatcher) -> None:
    assert call(dispatcher, "GET", "/api/default-level")[0] == 401
    status, _, body = call(dispatcher, "GET", f"/api/default-level?code={FUNCTION_KEY}")
    assert (status, body) == (200, b"default-ok")


def test_admin_route_rejects_function_key(dispatcher: HttpDispatcher) -> None:
    assert call(dispatcher, "GET", "/api/admin-only")[0] == 401
    assert call(dispatcher, "GET", "/api/admin-only", {"x-functions-key": FUNCTION_KEY})[0] == 401
    assert call(dispatcher, "GET", f"/api/admin-only?code={FUNCTION_KEY}")[0] == 401


def test_admin_route_accepts_master_key(dispatcher: HttpDispatcher) -> None:
    status, _, body = call(dispatcher, "GET", "/api/admin-only", {"x-functions-key": MASTER_KEY})
    assert (status, body) == (200, b"admin-ok")


def test_host_admin_endpoint_requires_master_key(dispatcher: HttpDispatcher) -> None:
    assert call(dispatcher, "GET", "/admin/host/status")[0] == 401
    assert call(dispatcher, "GET", "/admin/host/status", {"x-functions-key": FUNCTION_KEY})[0] == 401
    status, headers, body = call(dispatcher, "GET", "/admin/host/status/", {"x-functions-key": MASTER_KEY})
    assert status == 200
    assert headers["Content-Type"].startswith("application/json")
    assert json.loads(body) == {"state": "Running"}


# --- request fidelity -------------------------------------------------------------------------


def test_route_params_query_params_headers_and_body_reach_the_function(
    dispatcher: HttpDispatcher,
) -> None:
    path = "/api/items/42?colour=red&size=&empty"
    status, headers, body = call(dispatcher, "PUT", path, {"X-Custom": "custom-value"}, b"hello body")
    assert status == 200
    assert headers["Content-Type"].startswith("application/json")
    document = json.loads(body)
    assert document["route_params"] == {"id": "42"}
    assert document["params"] == {"colour": "red", "size": "", "empty": ""}
    assert document["method"] == "PUT"
    assert document["url"] == HOST + path
    assert document["body"] == "hello body"
    assert document["x_custom"] == "custom-value"


def test_context_parameter_is_passed(dispatcher: HttpDispatcher) -> None:
    status, _, body = call(dispatcher, "GET", "/api/context")
    assert (status, body) == (200, b"with_context")


def test_route_params_are_percent_decoded(dispatcher: HttpDispatcher) -> None:
    status, _, body = call(dispatcher, "GET", "/api/items/hello%20world")
    assert status == 200
    assert json.loads(body)["route_params"] == {"id": "hello world"}


def test_query_params_are_percent_decoded(dispatcher: HttpDispatcher) -> None:
    status, _, body = call(dispatcher, "GET", "/api/items/1?q=a%20b%26c")
    assert status == 200
    assert json.loads(body)["params"] == {"q": "a b&c"}


# --- response fidelity ------------------------------------------------------------------------


def test_status_headers_mimetype_and_body_are_written_back(dispatcher: HttpDispatcher) -> None:
    status, headers, body = call(dispatcher, "GET", "/api/custom")
    assert status == 201
    assert headers["X-Trace-Id"] == "trace-123"
    assert headers["Cache-Control"] == "no-store"
    assert headers["Content-Type"] == "text/html; charset=iso-8859-1"
    assert body == b"<p>created</p>"


def test_binary_body_is_written_back_unchanged(dispatcher: HttpDispatcher) -> None:
    status, headers, body = call(dispatcher, "GET", "/api/binary")
    assert status == 200
    assert body == b"\x00\x01\xfe\xff"
    assert headers["Content-Type"].startswith("application/octet-stream")


def test_non_text_mimetype_gets_no_charset(dispatcher: HttpDispatcher) -> None:
    _, headers, _ = call(dispatcher, "GET", "/api/binary")
    assert headers["Content-Type"] == "application/octet-stream"


def test_explicit_content_type_header_wins_over_mimetype(dispatcher: HttpDispatcher) -> None:
    _, headers, body = call(dispatcher, "GET", "/api/explicit-type")
    content_types = [v for k, v in headers.items() if k.lower() == "content-type"]
    assert content_types == ["application/vnd.test+json"]
    assert body == b'{"a":1}'


def _header_values(headers: Any, name: str) -> list[str]:
    pairs = headers.items() if hasattr(headers, "items") else headers
    values: list[str] = []
    for key, value in pairs:
        if key.lower() == name.lower():
            values.extend(value if isinstance(value, list | tuple) else [value])
    return values


def test_multiple_set_cookie_headers_are_kept(dispatcher: HttpDispatcher) -> None:
    _, headers, _ = call(dispatcher, "GET", "/api/cookies")
    assert sorted(_header_values(headers, "Set-Cookie")) == ["a=1", "b=2"]


def test_default_response_is_text_plain_utf8(dispatcher: HttpDispatcher) -> None:
    _, headers, _ = call(dispatcher, "GET", "/api/items/new")
    assert headers["Content-Type"] == "text/plain; charset=utf-8"


def test_none_return_is_204(dispatcher: HttpDispatcher) -> None:
    status, _, body = call(dispatcher, "GET", "/api/nothing")
    assert (status, body) == (204, b"")


def test_str_return_is_200_with_body(dispatcher: HttpDispatcher) -> None:
    status, _, body = call(dispatcher, "GET", "/api/text")
    assert (status, body) == (200, b"just text")


def test_async_function(dispatcher: HttpDispatcher, records: list[Any]) -> None:
    status, _, body = call(dispatcher, "GET", "/api/async?n=7")
    assert (status, body) == (200, b"async-ok 7")
    ((args, kwargs),) = records
    assert args[0].name == "async_handler"
    assert args[4] is None
    assert kwargs == {"status": 200}


# --- failures and recording -------------------------------------------------------------------


def test_exception_in_function_is_500(dispatcher: HttpDispatcher, records: list[Any]) -> None:
    status, _headers, body = call(dispatcher, "GET", "/api/boom")
    assert status == 500
    assert body == b""
    assert b"kaboom" not in body
    ((args, kwargs),) = records
    invoker, context, trigger, started, error = args
    assert invoker.name == "boom"
    assert trigger == "httpTrigger"
    assert isinstance(error, RuntimeError)
    assert str(error) == "kaboom"
    assert context.function_name == "boom"
    assert isinstance(started, float)
    assert kwargs == {}


def test_unsupported_return_type_is_500(dispatcher: HttpDispatcher, records: list[Any]) -> None:
    assert call(dispatcher, "GET", "/api/wrong-type")[0] == 500
    ((args, _),) = records
    assert isinstance(args[4], TypeError)


def test_success_is_recorded_with_status(dispatcher: HttpDispatcher, records: list[Any]) -> None:
    call(dispatcher, "GET", "/api/custom")
    ((args, kwargs),) = records
    invoker, context, trigger, _started, error = args
    assert invoker.name == "custom"
    assert trigger == "httpTrigger"
    assert error is None
    assert kwargs == {"status": 201}
    assert context.invocation_id


def test_each_invocation_gets_a_new_context(dispatcher: HttpDispatcher, records: list[Any]) -> None:
    call(dispatcher, "GET", "/api/items/new")
    call(dispatcher, "GET", "/api/items/new")
    ids = {args[1].invocation_id for args, _ in records}
    assert len(ids) == 2


def test_routes_are_sorted_by_precedence(dispatcher: HttpDispatcher) -> None:
    templates = [r.template.template for r in dispatcher.routes]
    assert templates.index("items/new") < templates.index("items/{id}")
    precedences = [r.template.precedence for r in dispatcher.routes]
    assert precedences == sorted(precedences)


# --- queue outputs from HTTP functions --------------------------------------------------------


def test_queue_output_of_http_function_is_sent(
    dispatcher: HttpDispatcher, sent: list[InvocationResult], records: list[Any]
) -> None:
    status, _, body = call(dispatcher, "POST", "/api/enqueue", body=b"job-1")
    assert (status, body) == (202, b"")
    (result,) = sent
    binding = QueueOutputBinding(name="out", queue_name="work-items", connection="AzureWebJobsStorage")
    assert result.queue_outputs == {binding: ["job-1"]}
    ((args, kwargs),) = records
    assert args[4] is None
    assert kwargs == {"status": 202}


def test_outputs_are_not_sent_when_the_function_fails(
    dispatcher: HttpDispatcher, sent: list[InvocationResult]
) -> None:
    assert call(dispatcher, "GET", "/api/boom")[0] == 500
    assert sent == []


def test_failure_to_send_outputs_is_500(routes: list[HttpRoute], keys: HostKeys, records: list[Any]) -> None:
    def failing_send(result: InvocationResult) -> None:
        raise ConnectionError("queue service unavailable")

    dispatcher = HttpDispatcher(
        routes,
        "api",
        keys,
        lambda *args, **kwargs: records.append((args, kwargs)),
        admin_routes={},
        send_outputs=failing_send,
    )
    assert call(dispatcher, "POST", "/api/enqueue", body=b"job-1")[0] == 500
    ((args, _kwargs),) = records
    assert isinstance(args[4], ConnectionError)
