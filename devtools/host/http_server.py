"""HTTP triggers: route matching, auth levels, and a faithful func.HttpRequest / HttpResponse."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast
from urllib.parse import parse_qsl, unquote, urlsplit

import azure.functions as func
from werkzeug.datastructures import Headers

from devtools.host.config import HostKeys
from devtools.host.invoker import FunctionInvoker, InvocationResult
from devtools.host.routing import RouteTemplate
from devtools.host.static_site import StaticSite
from devtools.http_body import read_request_body

logger = logging.getLogger("devtools.host.http")

ALL_METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE")


@dataclass
class HttpRoute:
    invoker: FunctionInvoker
    template: RouteTemplate
    methods: tuple[str, ...]
    auth_level: str

    @classmethod
    def from_invoker(cls, invoker: FunctionInvoker) -> HttpRoute:
        trigger = invoker.trigger
        methods = tuple(str(m).upper() for m in (trigger.get("methods") or ALL_METHODS))
        return cls(
            invoker=invoker,
            template=RouteTemplate(str(trigger.get("route") or invoker.name)),
            methods=methods,
            auth_level=str(trigger.get("authLevel") or "function").lower(),
        )


class HttpDispatcher:
    def __init__(
        self,
        routes: list[HttpRoute],
        route_prefix: str,
        keys: HostKeys,
        record: Callable[..., None],
        admin_routes: dict[str, Callable[[], Any]],
        send_outputs: Callable[[InvocationResult], None],
        static_site: StaticSite | None = None,
    ) -> None:
        self.routes = sorted(routes, key=lambda r: r.template.precedence)
        self.route_prefix = route_prefix.strip("/")
        self.keys = keys
        self._record = record
        self._admin_routes = admin_routes
        self._send_outputs = send_outputs
        # The built console at `/` (outside the route prefix), as the Static Web App serves it in Azure.
        self.static_site = static_site

    def _strip_prefix(self, path: str) -> str | None:
        if not self.route_prefix:
            return path
        prefix = "/" + self.route_prefix
        if path.lower() == prefix.lower():
            return "/"
        if path.lower().startswith(prefix.lower() + "/"):
            return path[len(prefix) :]
        return None

    def _key_from(self, headers: dict[str, str], params: dict[str, str]) -> str | None:
        for name, value in headers.items():
            if name.lower() == "x-functions-key":
                return value
        return params.get("code")

    def _authorized(self, level: str, key: str | None) -> bool:
        if level == "anonymous":
            return True
        if key is None:
            return False
        if level == "admin":
            return self.keys.is_master_key(key)
        return self.keys.is_master_key(key) or self.keys.is_function_key(key)

    def dispatch(
        self, method: str, url: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, Headers, bytes]:
        parts = urlsplit(url)
        params = dict(parse_qsl(parts.query, keep_blank_values=True))
        key = self._key_from(headers, params)

        admin = self._admin_routes.get(parts.path.rstrip("/").lower())
        if admin is not None:
            if not self._authorized("admin", key):
                return _problem(HTTPStatus.UNAUTHORIZED)
            return 200, Headers({"Content-Type": "application/json"}), json.dumps(admin()).encode()

        path = self._strip_prefix(parts.path)
        if path is None:
            if self.static_site is not None:
                return self.static_site.serve(method, url, headers)
            return _problem(HTTPStatus.NOT_FOUND)
        matched: list[tuple[HttpRoute, dict[str, str]]] = []
        for route in self.routes:
            values = route.template.match(path)
            if values is not None:
                matched.append((route, {name: unquote(value) for name, value in values.items()}))
        if not matched:
            if self.static_site is not None and not self.route_prefix:
                return self.static_site.serve(method, url, headers)
            return _problem(HTTPStatus.NOT_FOUND)
        allowed = [(r, v) for r, v in matched if method in r.methods]
        if not allowed:
            methods = sorted({m for r, _ in matched for m in r.methods})
            status, response_headers, response_body = _problem(HTTPStatus.METHOD_NOT_ALLOWED)
            response_headers["Allow"] = ", ".join(methods)
            return status, response_headers, response_body
        route, route_params = allowed[0]
        if not self._authorized(route.auth_level, key):
            return _problem(HTTPStatus.UNAUTHORIZED)
        return self._invoke(route, method, url, headers, params, route_params, body)

    def _invoke(
        self,
        route: HttpRoute,
        method: str,
        url: str,
        headers: dict[str, str],
        params: dict[str, str],
        route_params: dict[str, str],
        body: bytes,
    ) -> tuple[int, Headers, bytes]:
        request = func.HttpRequest(
            method=method, url=url, headers=headers, params=params, route_params=route_params, body=body
        )
        context = route.invoker.new_context()
        started = time.monotonic()
        try:
            result = route.invoker.invoke(request, context)
            response = _to_response(result.return_value)
            self._send_outputs(result)
        except Exception as exc:
            self._record(route.invoker, context, "httpTrigger", started, exc)
            return 500, Headers(), b""
        self._record(route.invoker, context, "httpTrigger", started, None, status=response.status_code)
        return _serialize(response)


def _to_response(value: Any) -> func.HttpResponse:
    if isinstance(value, func.HttpResponse):
        return value
    if value is None:
        return func.HttpResponse(status_code=204)
    if isinstance(value, str | bytes):
        return func.HttpResponse(value, status_code=200)
    raise TypeError(f"an HTTP function must return func.HttpResponse, not {type(value).__name__}")


def _serialize(response: func.HttpResponse) -> tuple[int, Headers, bytes]:
    """Status, headers (repeated ones kept) and body, with Content-Type as the Python worker sets it."""
    headers = Headers(list(response.headers.items()))
    if "Content-Type" not in headers and response.mimetype:
        text = response.mimetype.startswith("text/")
        charset = f"; charset={response.charset}" if text and response.charset else ""
        headers["Content-Type"] = f"{response.mimetype}{charset}"
    return int(response.status_code), headers, response.get_body() or b""


def _problem(status: HTTPStatus) -> tuple[int, Headers, bytes]:
    body = json.dumps({"status": status.value, "title": status.phrase}).encode()
    return status.value, Headers({"Content-Type": "application/problem+json"}), body


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "aoc-local-functions-host"
    # Headers and body are written separately; with Nagle on, a reused keep-alive connection waits ~40 ms.
    disable_nagle_algorithm = True
    dispatcher: HttpDispatcher  # set on the subclass the server builds

    def _read_body(self) -> bytes:
        return read_request_body(self.headers, self.rfile)

    def _handle(self) -> None:
        body = self._read_body()
        bound = cast(tuple[str, int], self.server.server_address)  # a TCP server, not a Unix socket
        host = self.headers.get("Host") or f"{bound[0]}:{bound[1]}"
        url = f"http://{host}{self.path}"
        headers: dict[str, str] = {}
        for name, value in self.headers.items():
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        status, response_headers, response_body = self.dispatcher.dispatch(self.command, url, headers, body)
        self.send_response(status)
        for name, value in response_headers.items():
            if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                self.send_header(name, value)
        # HEAD: the length GET would send (the body a HEAD call produced), and no body. 304: neither.
        if status != HTTPStatus.NOT_MODIFIED:
            self.send_header("Content-Length", str(len(response_body)))
        self.end_headers()
        if self.command != "HEAD" and status != HTTPStatus.NOT_MODIFIED:
            self.wfile.write(response_body)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = do_TRACE = _handle

    def __getattr__(self, name: str) -> Any:
        """Any other method token (QUERY, PROPFIND, ...) is routed too: no route matches it, so the
        caller gets the host's 404 as from Azure, not http.server's 501."""
        if name.startswith("do_") and name[3:].isalpha():
            return self._handle
        raise AttributeError(name)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s %s", self.address_string(), format % args)


class LocalHttpServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], dispatcher: HttpDispatcher) -> None:
        handler = type("BoundHandler", (_Handler,), {"dispatcher": dispatcher})
        super().__init__(address, handler)
