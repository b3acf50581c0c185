"""Every HTTP route is one complete declaration (shared.api.routing), and the Functions the query_api
Blueprint registers are exactly those declarations, each indexable as the Python worker indexes it.

The checker is shown to find each thing a declaration may lack; the generic serving code is shown to
authenticate, check ids, validate the query, check the Idempotency-Key of every write and decode the
body, in that order, for every route."""

from __future__ import annotations

import dataclasses
import inspect
import json
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest
from pydantic import BaseModel, ConfigDict, Field

from shared.api.auth import Authenticator, Role
from shared.api.catalog import api_routes, openapi_json
from shared.api.events_query import SensitivityPolicy
from shared.api.health import HealthReport
from shared.api.operations_api import OperationsApi
from shared.api.responses import ApiGuard, ApiResponse
from shared.api.routing import (
    METHODS,
    WRITE_METHODS,
    ApiRequest,
    Call,
    NoQuery,
    PathParam,
    Reply,
    Resource,
    Route,
    route,
    serve,
)
from tests.support.principals import swa_principal

PUBLIC_ROUTES = {"health", "openapi"}  # the only routes without a role
VALID_IDS = {
    "event": "entra_audit:Directory_1_AB12C_1",
    "alert": "alert-" + "a" * 40,
    "rule": "custom.rule",
    "queue": "notify",
    "saved search": "srch-" + "a" * 32,
    "suppression": "sup-" + "a" * 40,
    "service principal": "00000000-0000-4000-8000-000000000001",
    "exception": "exc-" + "a" * 40,
    "dataset": "signin_failures",
}
GUARD = ApiGuard(Authenticator(verifier=None, swa_enabled=True, key_roles=frozenset()), SensitivityPolicy())
ADMIN = {"x-ms-client-principal": swa_principal(["admin"], user="root@contoso.com")}
READER = {"x-ms-client-principal": swa_principal(["reader"], user="rita@contoso.com")}
JSON = {"Content-Type": "application/json"}


def route_problems(declared: Route) -> list[str]:
    """What a declaration lacks or gets wrong; empty for a complete one."""
    problems = []
    if declared.method not in METHODS:
        problems.append(f"method {declared.method!r}")
    if not declared.path or declared.path.startswith("/") or declared.path.endswith("/"):
        problems.append(f"path {declared.path!r}")
    if not declared.name.isidentifier() or not declared.operation_id:
        problems.append("name or operation id")
    if not declared.summary.strip():
        problems.append("summary")
    if declared.name in PUBLIC_ROUTES:
        if declared.role is not None:
            problems.append("a public route with a role")
    elif not isinstance(declared.role, Role):
        problems.append("role")
    if not (isinstance(declared.query, type) and issubclass(declared.query, BaseModel)):
        problems.append("query model")
    elif declared.query.model_config.get("extra") != "forbid":
        problems.append("query model does not refuse unknown parameters")
    writes = declared.method in WRITE_METHODS
    if writes and not (isinstance(declared.body, type) and issubclass(declared.body, BaseModel)):
        problems.append("body model of a write")
    if not writes and declared.body is not None:
        problems.append("body model of a read")
    if declared.response is None and not declared.content and declared.status != 204:
        problems.append("response model")
    if declared.response is not None and not issubclass(declared.response, BaseModel):
        problems.append("response model is not a model")
    if tuple(p.name for p in declared.path_params) != declared.template_params:
        problems.append("path parameters")
    if any(not p.description or not callable(p.is_valid) for p in declared.path_params):
        problems.append("path parameter grammar or description")
    if not 200 <= declared.status < 300:
        problems.append("status")
    body = dict[str, Any] if declared.raw_body else (declared.body or type(None))
    takes = typing.get_type_hints(declared.handler).get("call")
    if typing.get_origin(takes) is not Call or typing.get_args(takes) != (declared.query, body):
        problems.append(f"handler takes {takes}, not the declared models")
    return problems


def test_every_route_declares_all_it_needs() -> None:
    routes = api_routes()
    assert len(routes) >= 20  # none lost: 20 when this was written
    assert {r.name: route_problems(r) for r in routes if route_problems(r)} == {}
    for unique in ("name", "operation_id"):
        values = [getattr(r, unique) for r in routes]
        assert len(values) == len(set(values)), unique
    assert len({(r.method, r.path) for r in routes}) == len(routes)


class ThingQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    colour: list[str] = Field(default_factory=list, max_length=3)
    size: int | None = None


class ThingBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)


THING_ID = PathParam("id", "thing id", "thing", lambda value: isinstance(value, str) and value.isalnum())


class Things(Resource):
    def __init__(self, guard: ApiGuard) -> None:
        self.guard = guard
        self.calls: list[Call[ThingQuery, ThingBody]] = []

    @route(
        "PUT",
        "things/{id}",
        "put_thing",
        role=Role.ANALYST,
        summary="Replace a thing",
        query=ThingQuery,
        body=ThingBody,
        response=ThingBody,
        path_params=(THING_ID,),
        max_body_bytes=100,
    )
    def put_thing(self, call: Call[ThingQuery, ThingBody]) -> Reply:
        self.calls.append(call)
        return call.body


def test_the_checker_finds_each_thing_a_declaration_lacks() -> None:
    good = Things.routes()[0]
    assert route_problems(good) == []

    class Loose(BaseModel):
        size: int = 1

    broken = {
        "summary": dataclasses.replace(good, summary=" "),
        "role": dataclasses.replace(good, role=None),
        "query model": dataclasses.replace(good, query=Loose),
        "body model of a write": dataclasses.replace(good, body=None),
        "body model of a read": dataclasses.replace(good, method="GET"),
        "response model": dataclasses.replace(good, response=None),
        "path parameters": dataclasses.replace(good, path_params=()),
        "method": dataclasses.replace(good, method="TRACE"),
        "handler takes": dataclasses.replace(good, query=NoQuery),
    }
    for lack, declaration in broken.items():
        assert any(p.startswith(lack) for p in route_problems(declaration)), (
            lack,
            route_problems(declaration),
        )


def _problem(response: ApiResponse) -> dict[str, Any]:
    assert response.media_type == "application/problem+json", response.body
    problem: dict[str, Any] = json.loads(response.body)
    return problem


def test_one_piece_of_code_checks_every_input_in_order() -> None:
    things = Things(GUARD)
    good = {**ADMIN, **JSON, "Idempotency-Key": "k-1"}

    def put(
        thing: str, query: str = "", body: bytes = b'{"name": "n"}', headers: Mapping[str, str] = good
    ) -> Any:
        url = f"https://h/api/things/x?{query}"
        return things.put_thing.serve(ApiRequest(url, headers, body, {"id": thing}))

    assert put("a/b", headers={}).status == 401  # who is calling comes first
    assert put("a/b", headers={**READER, **JSON}).status == 403  # then the role
    refused = put("a/b")  # then the id grammar, without echoing the id
    assert (refused.status, _problem(refused)["instance"]) == (404, "/api/things/a%2Fb")
    assert "a/b" not in _problem(refused)["detail"]
    assert _problem(put("t1", query="shape=round"))["errors"][0]["field"] == "shape"
    assert _problem(put("t1", query="size=1&size=2"))["errors"][0]["field"] == "size"
    assert _problem(put("t1", headers={**ADMIN, **JSON, "Idempotency-Key": " "}))["errors"][0]["field"] == (
        "Idempotency-Key"
    )
    assert put("t1", headers={**ADMIN, "Content-Type": "text/plain"}).status == 415
    assert put("t1", body=b'{"name": "' + b"x" * 200 + b'"}').status == 413
    assert _problem(put("t1", body=b'{"name": ""}'))["errors"][0]["field"] == "name"
    assert things.calls == []  # no refused request reached the handler

    done = put("t1", query="colour=red&colour=blue&size=3&code=function-key")
    assert (done.status, json.loads(done.body)) == (200, {"name": "n"})
    call = things.calls[0]
    assert call.params == {"id": "t1"}
    assert call.query == ThingQuery(colour=["red", "blue"], size=3)  # `code` is the host's
    assert (call.principal.name, call.idempotency_key, call.hide) == ("root@contoso.com", "k-1", None)

    # The in-process form: path values, then URL and body, headers, and the path for problems.
    again = things.put_thing("t2", "https://h/api/things/t2?size=4", b'{"name": "m"}', good, "/api/things/t2")
    assert again.status == 200
    assert (things.calls[1].params, things.calls[1].query.size) == ({"id": "t2"}, 4)
    with pytest.raises(TypeError):
        things.put_thing("t2", good)


class GuardOnly(Resource):
    """A resource with nothing but a guard: a request that passes every check would fail loudly here."""

    def __init__(self) -> None:
        self.guard = GUARD


@pytest.mark.parametrize(
    "declared", [r for r in api_routes() if r.method in WRITE_METHODS], ids=lambda r: r.name
)
def test_every_write_refuses_a_malformed_idempotency_key(declared: Route) -> None:
    params = {p.name: VALID_IDS[p.what] for p in declared.path_params}
    headers = {**ADMIN, **JSON, "Idempotency-Key": "x" * 101}
    request = ApiRequest(f"https://h{declared.instance(params)}", headers, b"{}", params)
    response = serve(declared, GuardOnly(), request)
    assert response.status == 400, (declared.name, response.body)
    assert _problem(response)["errors"] == [
        {"field": "Idempotency-Key", "message": "Idempotency-Key must be 1 to 100 printable ASCII characters"}
    ]


def test_repeatable_parameters_are_the_list_fields_of_the_query_model() -> None:
    repeatable = {r.name: r.repeatable for r in api_routes() if r.repeatable}
    event_filters = (
        "service",
        "tag",
        "exclude_tag",
        "exclude_service",
        "exclude_operation",
        "exclude_result",
        "exclude_source",
        "exclude_actor",
    )
    assert repeatable == {
        "list_events": event_filters,
        "event_histogram": event_filters,
        "export_events": event_filters,
        "list_alerts": ("status", "severity"),
    }


def test_public_routes_answer_anyone_and_refuse_unknown_parameters() -> None:
    report = HealthReport(status="unhealthy", checked_at="2026-11-20T12:00:00.000Z", dependencies=[])
    operations = OperationsApi(lambda: report, lambda: {"openapi": "3.1.0"})
    health = operations.health.serve(ApiRequest("https://h/api/health?code=k", {}))
    assert (health.status, json.loads(health.body)["status"]) == (503, "unhealthy")
    document = operations.openapi.serve(ApiRequest("https://h/api/openapi.json", {}))
    assert json.loads(document.body) == {"openapi": "3.1.0"}
    assert operations.openapi.serve(ApiRequest("https://h/api/openapi.json?x=1", {})).status == 400


# -- the Functions the Blueprint registers -----------------------------------------------------------


def _http_functions() -> list[Any]:
    from query_api.routes import bp

    app = func.FunctionApp()
    app.register_functions(bp)
    return [
        f for f in app.get_functions() if f.is_http_function() and f.get_function_name() != "cors_preflight"
    ]


def test_the_registered_functions_are_the_declarations() -> None:
    from query_api.routes import API_AUTH_LEVEL

    registered = set()
    for function in _http_functions():
        trigger = function.get_trigger()
        methods = tuple(str(m.value) for m in trigger.methods)
        registered.add((function.get_function_name(), trigger.route, methods, trigger.auth_level))
    declared = {
        (r.name, r.path, (r.method,), func.AuthLevel.ANONYMOUS if r.role is None else API_AUTH_LEVEL)
        for r in api_routes()
    }
    assert registered == declared
    documented = {
        (method.upper(), path, operation["operationId"])
        for path, operations in openapi_json()["paths"].items()
        for method, operation in operations.items()
    }
    assert documented == {(r.method, f"/api/{r.path}", r.operation_id) for r in api_routes()}


def test_each_function_is_indexable_as_the_python_worker_indexes_it() -> None:
    """The v2 worker takes `get_user_function()`, requires its parameters to equal the bindings' names
    (the HTTP trigger's `req`; `$return` is the return value), resolves its type hints, and reads the
    file it is defined in."""
    functions = _http_functions()
    users = [f.get_user_function() for f in functions]
    assert len({id(u) for u in users}) == len(users) == len(api_routes())
    for function, user in zip(functions, users, strict=True):
        bindings = {b.name for b in function.get_bindings()}
        assert bindings == {"req", "$return"}
        assert list(inspect.signature(user).parameters) == ["req"]
        hints = typing.get_type_hints(user)
        assert hints == {"req": func.HttpRequest, "return": func.HttpResponse}
        assert Path(inspect.getfile(user)).as_posix().endswith("query_api/routes.py")
        assert user.__name__ == function.get_function_name()
