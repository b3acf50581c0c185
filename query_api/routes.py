"""The HTTP API: one Functions HTTP trigger per declared route (shared.api.catalog), plus CORS preflight.

Each route keeps a function of its own, generated from its declaration: its own name (for
`AzureWebJobs.<name>.Disabled`, metrics and logs), route, method and auth level. A function only turns
the `HttpRequest` into an `ApiRequest` and the `ApiResponse` back; shared.api.routing.serve does the rest.
"""

from collections.abc import Callable

import azure.functions as func

from shared.api.catalog import resource_routes
from shared.api.responses import ApiResponse
from shared.api.routing import ApiRequest, Resource, Route, serve
from shared.app.runtime import api_resource, cors_policy
from shared.platform.settings import get_settings

bp = func.Blueprint()

# Function keys: the host checks the key before the function runs. Entra ID and Static Web Apps modes
# authenticate in code, so their routes are anonymous to the host. Public routes are always anonymous.
API_AUTH_LEVEL = (
    func.AuthLevel.FUNCTION if get_settings().api_auth_mode == "keys" else func.AuthLevel.ANONYMOUS
)
HttpFunction = Callable[[func.HttpRequest], func.HttpResponse]


def auth_level(route: Route) -> func.AuthLevel:
    return func.AuthLevel.ANONYMOUS if route.role is None else API_AUTH_LEVEL


def _http(response: ApiResponse, req: func.HttpRequest) -> func.HttpResponse:
    headers = {**response.headers, **cors_policy().response_headers(dict(req.headers))}
    return func.HttpResponse(
        response.body, status_code=response.status, mimetype=response.media_type, headers=headers
    )


@bp.function_name("cors_preflight")
@bp.route(route="{*path}", methods=["OPTIONS"], auth_level=func.AuthLevel.ANONYMOUS)
def cors_preflight(req: func.HttpRequest) -> func.HttpResponse:
    status, headers = cors_policy().preflight(dict(req.headers))
    return func.HttpResponse(status_code=status, headers=headers)


def http_function(resource: type[Resource], route: Route) -> HttpFunction:
    """The function of one route. The worker binds the trigger to the parameter named `req` (the
    binding's name) and indexes the function by its signature and type hints, as for a `def`."""

    def function(req: func.HttpRequest) -> func.HttpResponse:
        body = req.get_body() if route.body is not None else b""
        request = ApiRequest(req.url, dict(req.headers), body, dict(req.route_params))
        return _http(serve(route, api_resource(resource), request), req)

    function.__name__ = function.__qualname__ = route.name
    return function


def register(resource: type[Resource], route: Route) -> None:
    trigger = bp.route(route=route.path, methods=[route.method], auth_level=auth_level(route))
    bp.function_name(route.name)(trigger(http_function(resource, route)))


for _resource, _route in resource_routes():
    register(_resource, _route)
