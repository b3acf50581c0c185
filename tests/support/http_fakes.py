"""Scripted HTTP for unit tests: an httpx.MockTransport that answers from a list and records what was
sent, and an ApiClient over it with an instant clock and a counting token provider."""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from shared.m365.http_client import ApiClient
from shared.m365.http_transport import new_http_client

SCOPE = "https://graph.microsoft.com/.default"
URL = "https://graph.microsoft.com/v1.0/auditLogs/directoryAudits"
EPOCH = dt.datetime(2024, 5, 1, 12, 0, 0, tzinfo=dt.UTC)
TIMEOUT = {"connect": 3.0, "read": 20.0, "write": 20.0, "pool": 20.0}


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
    body: bytes


Script = Answer | Exception | Callable[[httpx.Request], Answer]


class ScriptedTransport(httpx.MockTransport):
    """Answers requests from a script, one entry per request, and records what was sent."""

    def __init__(self, script: Sequence[Script]) -> None:
        super().__init__(self._answer)
        self.script = list(script)
        self.sent: list[Sent] = []

    def _answer(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        self.sent.append(
            Sent(
                request.method,
                str(request.url),
                dict(request.headers),
                request.extensions.get("timeout"),
                body,
            )
        )
        if not self.script:
            raise AssertionError(f"unexpected request {request.method} {request.url}")
        item = self.script.pop(0)
        if isinstance(item, Exception):
            raise item
        answer = item(request) if callable(item) else item
        if answer.body is None:
            content = b""
        elif isinstance(answer.body, str | bytes):
            content = answer.body.encode() if isinstance(answer.body, str) else answer.body
        else:
            content = json.dumps(answer.body).encode()
        headers = {"Content-Type": "application/json", **answer.headers}
        return httpx.Response(answer.status, headers=headers, content=content)


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
    script: Sequence[Script], *, random_value: float = 0.5, **kwargs: Any
) -> tuple[ApiClient, ScriptedTransport, FakeClock, CountingTokens]:
    adapter = ScriptedTransport(script)
    clock = FakeClock()
    tokens = CountingTokens()
    client = ApiClient(
        tokens,
        http=new_http_client(transport=adapter),
        clock=clock,
        sleep=clock.sleep,
        random=lambda: random_value,
        timeout=(3.0, 20.0),
        **kwargs,
    )
    return client, adapter, clock, tokens
