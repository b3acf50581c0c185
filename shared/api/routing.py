"""One declaration per HTTP route, and the one piece of code that serves every route.

A resource (events, alerts, rules, …) is a class whose handler methods carry a `route(...)` decorator:
method, path, Functions function name, role, query and body models, response model and OpenAPI summary
sit next to the handler, in one frozen `Route`. For every route, `serve`:

1. authenticates the caller and checks the role (none for the public routes);
2. checks each path parameter against the app's id grammar before any storage call;
3. validates the query string with the query model (repeatable parameters are its list-typed fields;
   `code`, the function key the Functions host reads, is left out);
4. checks the Idempotency-Key header of every write;
5. decodes and validates the body (shared.api.bodies: 400, 413, 415);
6. runs the handler, and answers any refusal with an RFC 9457 problem (shared.api.responses.answer).

query_api registers one Functions HTTP trigger per declaration; shared.api.openapi documents the same
declarations; tests/unit/test_route_declarations.py checks that every route declares all of it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar, overload
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, ValidationError

from shared.api.auth import Principal, Role
from shared.api.bodies import MAX_JSON_BODY_BYTES, parse_json_body, read_json_object
from shared.api.events_query import SensitivityPolicy, list_fields, parse_query_string
from shared.api.problems import bad_request, from_validation_error
from shared.api.responses import ApiGuard, ApiResponse, answer, idempotency_key, json_response, require_id

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
METHODS = frozenset({"GET", *WRITE_METHODS})
# Read by the Functions host (a function key given as ?code=), never by a handler.
HOST_QUERY_PARAMETERS = ("code",)
ANONYMOUS = Principal(subject="anonymous", name="anonymous", roles=frozenset(), auth="none")
_TEMPLATE_PARAMETER = re.compile(r"\{(\w+)\}")

Q = TypeVar("Q", bound=BaseModel)
B = TypeVar("B")
R = TypeVar("R", bound="Resource")

Reply = ApiResponse | BaseModel | Mapping[str, Any]
"""What a handler returns: a model or a JSON object (sent with the route's status), or a response."""


class NoQuery(BaseModel):
    """A route without query parameters: any given is refused with a 400 naming it."""

    model_config = ConfigDict(extra="forbid")


class EmptyBody(BaseModel):
    """A write that takes no input: no body, or `{}`."""

    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class PathParam:
    name: str
    description: str
    what: str  # the kind of id, named in the refusal ("event", "alert", "rule")
    is_valid: Callable[[object], bool]
    max_length: int = 400
    # None: an id outside the grammar is a 404 that does not echo it; otherwise a 400 with this detail.
    refusal: str | None = None

    def check(self, value: str) -> str:
        if self.refusal is not None and not self.is_valid(value):
            raise bad_request(self.refusal, field=self.name)
        return require_id(self.what, value, self.is_valid)


@dataclass(frozen=True)
class Call(Generic[Q, B]):
    """A request as its handler sees it: authenticated, checked and validated."""

    principal: Principal  # ANONYMOUS on a public route
    hide: SensitivityPolicy | None  # what the caller must not see; None when nothing is hidden
    params: Mapping[str, str]  # path parameters, each of its id grammar
    query: Q
    body: B  # the body model; None for a read; the JSON object for a `raw_body` route
    headers: Mapping[str, str]
    idempotency_key: str | None  # writes only


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # under /api, with {param} segments
    name: str  # the Functions function name: AzureWebJobs.<name>.Disabled, metrics, logs
    role: Role | None  # None: a public route (no authentication)
    summary: str
    query: type[BaseModel]
    body: type[BaseModel] | None  # None: the route reads no body
    response: type[BaseModel] | None  # None only with `content` (a body that is not a JSON model)
    handler: Callable[[Any, Call[Any, Any]], Reply]
    operation_id: str
    tag: str
    path_params: tuple[PathParam, ...] = ()
    status: int = 200
    # Success bodies other than the response model (exports, raw records): media type -> JSON schema.
    content: Mapping[str, Mapping[str, Any]] = field(default_factory=dict, compare=False)
    description: str = ""
    extra_statuses: tuple[int, ...] = ()  # other statuses answered with the same body, e.g. 503
    max_body_bytes: int = MAX_JSON_BODY_BYTES
    # The handler gets the JSON object as sent and validates it itself; `body` documents it.
    raw_body: bool = False
    # Problem statuses this route answers besides the ones every route shares (e.g. 412 and 428 for
    # writes conditional on If-Match): status -> what it means, for the OpenAPI document.
    problems: Mapping[int, str] = field(default_factory=dict, compare=False)
    # The handler honours an If-Match header (an ETag) when one is sent: documented, with its 412.
    if_match: bool = False
    # Statuses answered without a body (e.g. 204 nothing to do, 304 not modified): status -> meaning.
    empty_statuses: Mapping[int, str] = field(default_factory=dict, compare=False)

    @property
    def repeatable(self) -> tuple[str, ...]:
        """Query parameters that may be given more than once: the list-typed fields of the model."""
        return list_fields(self.query)

    @property
    def template_params(self) -> tuple[str, ...]:
        return tuple(_TEMPLATE_PARAMETER.findall(self.path))

    def instance(self, params: Mapping[str, str]) -> str:
        """The request's path, for a problem's `instance`, each parameter one percent-encoded segment."""
        return "/api/" + _TEMPLATE_PARAMETER.sub(lambda m: _segment(params.get(m.group(1), "")), self.path)


def _segment(value: str) -> str:
    """A path parameter as one URI path segment: the host hands it over decoded, so it may hold '/',
    '?', '#', controls, or be '.' or '..'."""
    segment = quote(value, safe=":@!$&'()*+,;=")
    return segment.replace(".", "%2E") if segment in (".", "..") else segment


class Resource:
    """The routes of one resource and the dependencies they share.

    `guard` authenticates callers; a resource whose routes are all public may leave it None.
    """

    guard: ApiGuard | None = None

    def finish(self, request: ApiRequest, response: ApiResponse) -> ApiResponse:
        """Every answer of this resource's routes, refusals included, passes here last (e.g. to add a
        header); by default it is left as it is."""
        return response

    @classmethod
    def routes(cls) -> list[Route]:
        """Every route this class serves (inherited ones first), in declaration order."""
        found: dict[str, Route] = {}
        for klass in reversed(cls.__mro__):
            for value in vars(klass).values():
                if isinstance(value, Endpoint):
                    found[value.route.name] = value.route
        return list(found.values())


@dataclass(frozen=True)
class ApiRequest:
    """An HTTP request as the Blueprint decoded it, free of azure.functions."""

    url: str
    headers: Mapping[str, str]
    body: bytes = b""
    route_params: Mapping[str, str] = field(default_factory=dict)
    instance: str | None = None  # default: the route's path with these parameters


class Endpoint(Generic[R]):
    """A handler method with its route; on an instance, a `BoundEndpoint` to call it."""

    def __init__(self, route: Route) -> None:
        self.route = route

    @overload
    def __get__(self, instance: None, owner: type[Any]) -> Endpoint[R]: ...

    @overload
    def __get__(self, instance: R, owner: type[Any]) -> BoundEndpoint: ...

    def __get__(self, instance: R | None, owner: type[Any]) -> Endpoint[R] | BoundEndpoint:
        return self if instance is None else BoundEndpoint(self.route, instance)


@dataclass(frozen=True)
class BoundEndpoint:
    route: Route
    resource: Resource

    def serve(self, request: ApiRequest) -> ApiResponse:
        return serve(self.route, self.resource, request)

    def __call__(self, *args: str | bytes | Mapping[str, str]) -> ApiResponse:
        """Call the route in process with its inputs in order: each path parameter's value, the URL
        (with the query string) and/or the body where given, the headers, and the path for problems.
        E.g. `rules.put_rule(rule_id, url, body, headers, path)`, `alerts.get_alert(id, headers, path)`."""
        count = len(self.route.template_params)
        params, rest = args[:count], list(args[count:])
        instance = rest.pop() if rest else None
        headers = rest.pop() if rest else None
        if not isinstance(instance, str) or not isinstance(headers, Mapping) or len(rest) > 2:
            raise TypeError(f"{self.route.name}: expected (*path values, [url], [body], headers, path)")
        url = next((a for a in rest if isinstance(a, str)), "")
        body = next((a for a in rest if isinstance(a, bytes)), b"")
        values = {name: str(value) for name, value in zip(self.route.template_params, params, strict=True)}
        return self.serve(ApiRequest(url, headers, body, values, instance))


def route(
    method: str,
    path: str,
    name: str,
    *,
    role: Role | None,
    summary: str,
    query: type[BaseModel],
    body: type[BaseModel] | None,
    response: type[BaseModel] | None,
    path_params: tuple[PathParam, ...] = (),
    operation_id: str | None = None,
    tag: str | None = None,
    status: int = 200,
    content: Mapping[str, Mapping[str, Any]] | None = None,
    description: str = "",
    extra_statuses: tuple[int, ...] = (),
    max_body_bytes: int = MAX_JSON_BODY_BYTES,
    raw_body: bool = False,
    problems: Mapping[int, str] | None = None,
    if_match: bool = False,
    empty_statuses: Mapping[int, str] | None = None,
) -> Callable[[Callable[[R, Call[Any, Any]], Reply]], Endpoint[R]]:
    """Declare the route a handler method serves. `operation_id` defaults to `name`, `tag` to the
    path's first segment; everything else a route needs has no default and must be written."""

    def declare(handler: Callable[[R, Call[Any, Any]], Reply]) -> Endpoint[R]:
        return Endpoint(
            Route(
                method=method.upper(),
                path=path,
                name=name,
                role=role,
                summary=summary,
                query=query,
                body=body,
                response=response,
                handler=handler,
                operation_id=operation_id or name,
                tag=tag or path.split("/", 1)[0],
                path_params=path_params,
                status=status,
                content=dict(content or {}),
                description=description,
                extra_statuses=extra_statuses,
                max_body_bytes=max_body_bytes,
                raw_body=raw_body,
                problems=dict(problems or {}),
                if_match=if_match,
                empty_statuses=dict(empty_statuses or {}),
            )
        )

    return declare


def serve(route: Route, resource: Resource, request: ApiRequest) -> ApiResponse:
    """Authenticate, check, validate, run the handler; every refusal is a problem response."""
    instance = request.instance or route.instance(request.route_params)

    def handle() -> ApiResponse:
        principal = _authenticate(route, resource.guard, request.headers)
        params = {p.name: p.check(request.route_params.get(p.name, "")) for p in route.path_params}
        query = _validate_query(route, request.url)
        key = idempotency_key(request.headers) if route.method in WRITE_METHODS else None
        body = _read_body(route, request)
        hide = resource.guard.hide_for(principal) if resource.guard is not None else None
        call: Call[Any, Any] = Call(principal, hide, params, query, body, request.headers, key)
        return _response(route, route.handler(resource, call))

    return resource.finish(request, answer(instance, handle))


def _authenticate(route: Route, guard: ApiGuard | None, headers: Mapping[str, str]) -> Principal:
    if route.role is None:
        return ANONYMOUS
    if guard is None:
        raise RuntimeError(f"route {route.name} needs a role but its resource has no guard")
    return guard.require(headers, route.role)


def _validate_query(route: Route, url: str) -> BaseModel:
    params = parse_query_string(url, route.repeatable)
    for name in HOST_QUERY_PARAMETERS:
        params.pop(name, None)
    try:
        return route.query.model_validate(params)
    except ValidationError as exc:
        raise from_validation_error(exc) from None


def _read_body(route: Route, request: ApiRequest) -> Any:
    if route.body is None:
        return None
    if route.raw_body:
        return read_json_object(request.body, request.headers, max_bytes=route.max_body_bytes, required=True)
    return parse_json_body(route.body, request.body, request.headers, max_bytes=route.max_body_bytes)


def _response(route: Route, reply: Reply) -> ApiResponse:
    if isinstance(reply, ApiResponse):
        return reply
    if isinstance(reply, BaseModel):
        return json_response(reply.model_dump(mode="json"), status=route.status)
    return json_response(dict(reply), status=route.status)
