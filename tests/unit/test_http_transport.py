"""The pooled httpx client over real sockets on 127.0.0.1: connections are reused, every call has its
timeout, and httpx's transport failures are classified by type (refused and TLS failures never sent the
request; a read timeout may have; a TLS failure is not retried)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest

from shared.m365.http_client import ApiClient, ApiError
from shared.m365.http_transport import new_http_client


class Listener:
    """A TCP server that counts connections and answers each one with `reply` (None: never answers)."""

    def __init__(self, reply: bytes | None) -> None:
        self.reply = reply
        self.connections = 0
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._stop = threading.Event()
        self._held: list[socket.socket] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self._sock.getsockname()[1])

    def _serve(self) -> None:
        self._sock.settimeout(0.05)
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            self.connections += 1
            if self.reply is None:
                self._held.append(conn)  # accepted, never answered
                continue
            conn.settimeout(2)
            try:
                conn.recv(65536)
                conn.sendall(self.reply)
            except OSError:
                pass
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for conn in self._held:
            conn.close()
        self._sock.close()


@contextmanager
def listening(reply: bytes | None) -> Iterator[Listener]:
    listener = Listener(reply)
    try:
        yield listener
    finally:
        listener.close()


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def api(max_attempts: int, timeout: tuple[float, float] = (2.0, 2.0)) -> tuple[ApiClient, list[float]]:
    slept: list[float] = []
    client = ApiClient(
        None, http=new_http_client(), timeout=timeout, sleep=slept.append, max_attempts=max_attempts
    )
    return client, slept


def test_a_refused_connection_never_sent_the_request_and_is_retried() -> None:
    client, slept = api(max_attempts=3)
    with pytest.raises(ApiError) as caught:
        client.request("POST", f"http://127.0.0.1:{closed_port()}/hook", url_label="hook")
    assert caught.value.status is None
    assert caught.value.code == "ConnectError"
    assert caught.value.never_sent
    assert client.stats.requests == 3
    assert len(slept) == 2


def test_a_read_timeout_may_have_been_received_and_is_retried() -> None:
    with listening(None) as silent:
        client, slept = api(max_attempts=2, timeout=(2.0, 0.2))
        with pytest.raises(ApiError) as caught:
            client.request("GET", f"http://127.0.0.1:{silent.port}/slow")
        assert silent.connections == 2
    assert caught.value.code == "ReadTimeout"
    assert not caught.value.never_sent
    assert len(slept) == 1


def test_a_tls_failure_never_sent_the_request_and_is_not_retried() -> None:
    with listening(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n") as plain:
        client, slept = api(max_attempts=4)
        with pytest.raises(ApiError) as caught:
            client.request("GET", f"https://127.0.0.1:{plain.port}/")
        assert plain.connections == 1
    assert caught.value.code == "ConnectError"
    assert caught.value.never_sent
    assert slept == []


class _KeepAlive(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    ports: ClassVar[list[int]] = []

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        type(self).ports.append(self.client_address[1])
        body = b'{"ok": true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_sequential_calls_reuse_one_pooled_connection() -> None:
    _KeepAlive.ports = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _KeepAlive)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        client, _ = api(max_attempts=1)
        for _ in range(5):
            assert client.get_json(f"http://127.0.0.1:{server.server_address[1]}/page") == {"ok": True}
    finally:
        server.shutdown()
        server.server_close()
    assert len(_KeepAlive.ports) == 5
    assert len(set(_KeepAlive.ports)) == 1
