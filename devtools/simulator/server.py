"""The tenant simulator's HTTP server: a standard-library ThreadingHTTPServer on 127.0.0.1.

HTTP/1.1 with keep-alive; every response carries Content-Length. Optionally TLS (msal only accepts
https authorities, and MSAL.js rejects an http one outright), with a certificate from devtools.certs:
clients trust `TenantSimulator.ca_cert`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import socket
import ssl
import sys
import threading
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

from devtools.certs import LocalCertificates
from devtools.http_body import read_request_body
from devtools.simulator.app import SimulatorApp
from devtools.simulator.config import SimulatorConfig
from devtools.simulator.generator import Tenant
from devtools.simulator.signing import ApiRegistration, SpaRegistration, api_token_claims
from devtools.simulator.webhooks import check_name

logger = logging.getLogger("devtools.simulator")

MAX_BODY_BYTES = 10 * 1024 * 1024
IDLE_TIMEOUT_SECONDS = 120.0
TLS_HANDSHAKE_TIMEOUT_SECONDS = 10.0


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "aoc-tenant-simulator"
    timeout = IDLE_TIMEOUT_SECONDS
    # Headers and body are separate writes: without TCP_NODELAY, Nagle plus the client's delayed
    # ACK add ~40 ms to every keep-alive response.
    disable_nagle_algorithm = True
    server: _SimulatorHTTPServer

    def _read_body(self) -> bytes:
        return read_request_body(self.headers, self.rfile, MAX_BODY_BYTES)

    def _handle(self) -> None:
        try:
            body = self._read_body()
        except (ValueError, OSError):
            self.close_connection = True
            self._send(400, [("Content-Type", "text/plain")], b"bad request body")
            return
        headers = {name: value for name, value in self.headers.items()}
        response = self.server.app.handle(self.command, self.path, headers, body)
        self._send(response.status, response.headers, response.body)

    def _send(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(0 if self.command == "HEAD" else len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _handle

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s %s", self.address_string(), format % args)


class _SimulatorHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # socketserver's default listen backlog is 5: a burst of concurrent connections (say 20 webhook
    # deliveries at once) would overflow it and some clients would see their connection reset.
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], app: SimulatorApp, tls: ssl.SSLContext | None) -> None:
        self.app = app
        self._tls = tls
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        # Runs in the connection's own thread, so a slow TLS handshake never blocks accept().
        if self._tls is not None:
            request.settimeout(TLS_HANDSHAKE_TIMEOUT_SECONDS)
            try:
                request = self._tls.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError) as exc:
                logger.debug("TLS handshake with %s failed: %s", client_address, exc)
                return
        with self._connections_lock:
            self._connections.add(request)
        try:
            super().finish_request(request, client_address)
        finally:
            with self._connections_lock:
                self._connections.discard(request)
            if self._tls is not None:  # the TLS socket replaced the accepted one: close it here
                with contextlib.suppress(OSError):
                    request.shutdown(socket.SHUT_RDWR)
                request.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError | TimeoutError | ssl.SSLError):
            logger.debug("connection from %s ended: %r", client_address, error)  # e.g. a client was killed
            return
        logger.exception("tenant simulator: error serving %s", client_address)

    def close_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class TenantSimulator:
    """A deterministic fake Microsoft 365 tenant on 127.0.0.1.

    The day of records is generated in the constructor, so ground_truth() works before start().
    """

    def __init__(
        self, config: SimulatorConfig, port: int = 0, certificates: LocalCertificates | None = None
    ) -> None:
        self.config = config
        self._port = port
        self._certificates = certificates
        self.tenant = Tenant(config)
        self.app = SimulatorApp(config, self.tenant)
        self._server: _SimulatorHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def scheme(self) -> str:
        return "https" if self._certificates is not None else "http"

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the simulator is not started")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    @property
    def graph_base_url(self) -> str:
        return f"{self.base_url}/graph"

    @property
    def management_base_url(self) -> str:
        return f"{self.base_url}/manage"

    @property
    def devops_base_url(self) -> str:
        """The fake Azure DevOps root: {devops_base_url}/{organization}/{project}/_apis/..."""
        return f"{self.base_url}/devops"

    @property
    def authority(self) -> str:
        """The Entra authority for msal: {base_url}/{tenant_id}."""
        return f"{self.base_url}/{self.config.tenant_id}"

    @property
    def v2_authority(self) -> str:
        """The authority MSAL.js is configured with: {base_url}/{tenant_id}/v2.0 (it reads
        {v2_authority}/.well-known/openid-configuration). Needs TLS: MSAL.js refuses http."""
        return f"{self.authority}/v2.0"

    @property
    def ca_cert(self) -> Path | None:
        """The CA certificate (PEM) that issued the simulator's TLS certificate, None without TLS:
        what httpx (`verify=`), requests or a browser must trust to call the simulator."""
        return self._certificates.ca_cert if self._certificates is not None else None

    def start(self) -> TenantSimulator:
        if self._server is not None:
            return self
        tls: ssl.SSLContext | None = None
        if self._certificates is not None:
            tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            tls.load_cert_chain(str(self._certificates.server_cert), str(self._certificates.server_key))
        server = _SimulatorHTTPServer(("127.0.0.1", self._port), self.app, tls)
        self._server = server
        self.app.base_url = self.base_url
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="tenant-simulator", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        server.shutdown()
        server.close_connections()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> TenantSimulator:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def now(self) -> dt.datetime:
        """The simulated time now."""
        return self.app.now()

    def ground_truth(self) -> dict[str, Any]:
        return self.tenant.ground_truth()

    def register_api(self, api: ApiRegistration, app_roles: dict[str, list[str]] | None = None) -> None:
        """Register an API in the tenant: the token endpoint then answers a client-credentials request
        for `{App ID URI or client id}/.default` with a signed JWT in the version the registration asks
        for, with the app roles `app_roles` assigns to the calling client id."""
        self.app.register_api(api, app_roles)

    def register_spa(self, client_id: str, redirect_uris: Sequence[str]) -> SpaRegistration:
        """Register a single-page application (the admin console): the authorize endpoint then signs
        users in for `client_id` and redirects only to one of `redirect_uris` (exact match); the token
        endpoint redeems its codes with PKCE. Again with the same client id replaces the registration.
        ValueError for a client id that is not a GUID or an unacceptable redirect URI."""
        if isinstance(redirect_uris, str):
            raise ValueError("redirect_uris is a sequence of URIs, not one string")
        spa = SpaRegistration(client_id, tuple(redirect_uris))
        self.app.identity.register_spa(spa)
        return spa

    def revoke_sign_in_sessions(self) -> None:
        """Sign every user out of the simulated tenant: sessions and refresh tokens stop working."""
        self.app.identity.revoke_sign_in_sessions()

    def issue_api_token(
        self,
        api: ApiRegistration,
        roles: list[str],
        *,
        name: str = "analyst@contoso.com",
        requested_resource: str | None = None,
        tenant_id: str | None = None,
        lifetime_seconds: int = 3600,
    ) -> str:
        """A user's access token for `api` as Entra issues it (v1.0 or v2.0, as `api` asks), signed with
        the tenant's published key. `requested_resource` is what the client asked for: the App ID URI
        (default) or the client id; it decides a v1.0 token's `aud`."""
        claims = api_token_claims(
            api=api,
            authority=self.base_url,
            tenant_id=tenant_id or self.config.tenant_id,
            roles=roles,
            name=name,
            requested_resource=requested_resource,
            lifetime_seconds=lifetime_seconds,
        )
        return self.app.signing_key.sign(claims)

    def requests(self) -> list[dict[str, Any]]:
        return self.app.request_log()

    # ------------------------------------------------------------------------------------------
    # Management Activity API content faults
    # ------------------------------------------------------------------------------------------
    def management_blobs(self) -> list[dict[str, Any]]:
        """Every published content blob, oldest first: content_type, content_id, content_created,
        content_expiration, ids (its records' truth ids) and records (its record count)."""
        return self.app.management_blobs()

    def fail_content(self, content_id: str, kind: str | None, times: int | None = None) -> None:
        """Make blob `content_id` answer `kind` ("not_found": 404 AF20050, "invalid_id": 400 AF20052,
        "not_json": 200 with an HTML body) for its next `times` fetches (None: always); None clears."""
        self.app.content_faults.script(content_id, kind, times)

    def hold_listing(self, content_id: str, held: bool) -> None:
        """Keep blob `content_id` out of every content listing (a blob Microsoft lists late) until
        released with held=False."""
        self.app.content_faults.hold(content_id, held)

    def issue_token(self, audience: str = "https://graph.microsoft.com") -> str:
        """A valid bearer token for `audience` without calling the token endpoint.

        Audiences: https://graph.microsoft.com, https://manage.office.com and the Azure DevOps
        resource 499b84ac-1321-427f-aa17-267ca6975798.
        """
        return self.app.issue_token(audience)

    # ------------------------------------------------------------------------------------------
    # Azure DevOps
    # ------------------------------------------------------------------------------------------
    def devops_runs(self) -> list[dict[str, Any]]:
        """Every accepted pipeline run, oldest first: id, name, organization, project, pipeline_id,
        pipeline_name, refName, templateParameters, resources, createdDate, api_version, auth, identity."""
        return self.app.devops.runs()

    def devops_attempts(self) -> list[dict[str, Any]]:
        """Every call to /devops, accepted or not, with its status, auth scheme and reject mode."""
        return self.app.devops.attempts()

    def reject_devops(self, mode: str | None) -> None:
        """Reject every DevOps call: "signin" (203 HTML sign-in page), "unauthorized" (401 TF400813) or
        "forbidden" (403 for valid credentials); None accepts valid credentials again."""
        self.app.devops.reject(mode)

    # ------------------------------------------------------------------------------------------
    # Webhook sink (Teams Workflows, Slack incoming and generic JSON webhooks)
    # ------------------------------------------------------------------------------------------
    def webhook_url(self, name: str) -> str:
        """The absolute URL of webhook `name` on this simulator: {base_url}/webhooks/{name}.

        `name` is 1 to 64 characters of A-Z, a-z, 0-9, "_" and "-" (else ValueError). A POST there
        records one delivery attempt and answers 200 "ok" (text/plain) unless scripted otherwise.
        """
        return f"{self.base_url}/webhooks/{check_name(name)}"

    def webhook_deliveries(self, name: str) -> list[dict[str, Any]]:
        """Every delivery attempt to webhook `name`, oldest first (empty for an unknown name): name,
        sequence (1-based per name), received_at (real UTC, ISO with Z), sim_time, headers (lower-cased
        names), body (UTF-8 text), json (the parsed body, None when not JSON), status (as answered)
        and accepted (status < 300)."""
        return self.app.webhooks.attempts(name)

    def script_webhook(
        self, name: str, responses: list[dict[str, Any]], then: dict[str, Any] | None = None
    ) -> None:
        """Answer the next POSTs to webhook `name` with `responses` in order, one each, then every
        later POST with `then` (default {"status": 200}). A response is {"status": 100..599,
        "retry_after"?: str (the Retry-After header), "body"?: str (default "ok" below 300, else
        empty)}. Replaces any earlier script for `name`; raises ValueError when invalid."""
        self.app.webhooks.script(name, responses, then)

    def reset_webhook(self, name: str) -> None:
        """Forget webhook `name`'s delivery attempts and script (its sequence starts again at 1)."""
        self.app.webhooks.reset(name)

    # ------------------------------------------------------------------------------------------
    # Scripted bursts of configuration changes
    # ------------------------------------------------------------------------------------------
    def add_burst(
        self,
        kind: str,
        count: int,
        *,
        spread_seconds: float = 60.0,
        actor: str | None = None,
        delay_seconds: float = 0.0,
    ) -> dict[str, Any]:
        """Append `count` configuration changes now: kind "intune" (Intune auditEvents),
        "conditional_access", "global_admin" (Add member to role: Global Administrator) or
        "user_deletion" (Delete user), the last three Entra directoryAudits; event times spread evenly
        over [now - spread_seconds, now], available after delay_seconds (sim seconds).

        Returns {"ids": [ground-truth ids], "from": ISO, "to": ISO, "available_at": ISO, ...}.
        """
        return self.app.add_burst(
            kind, count, spread_seconds=spread_seconds, actor=actor, delay_seconds=delay_seconds
        )
