"""A webhook sink: stands in for Microsoft Teams Workflows webhooks, Slack incoming webhooks and generic
JSON webhooks, which the alert notifier POSTs to.

`POST /webhooks/{name}` (name: 1 to 64 of `A-Z a-z 0-9 _ -`) records one delivery attempt and answers
200 `ok` (text/plain), like Slack, unless a script says otherwise. Not authenticated: real webhook URLs
carry their secret in the URL. Tests script per-name answers (`script`) to make deliveries fail or be
throttled, read the attempts back (`attempts`) and forget a name (`reset`). Thread-safe.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import re
import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from devtools.simulator.responses import Response, json_response
from devtools.simulator.routing import ApiRequest, no_route
from devtools.simulator.timefmt import iso

NAME_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")
TEXT_TYPE = "text/plain; charset=utf-8"
MAX_SCRIPTED_RESPONSES = 10_000
_RESPONSE_FIELDS = frozenset({"status", "retry_after", "body"})
_SCRIPT_FIELDS = frozenset({"responses", "then"})
_HEADER_VALUE = re.compile(r"[\x20-\x7e]{1,200}")  # printable ASCII: nothing that could split the header


def valid_name(name: object) -> bool:
    """Whether `name` can name a webhook: 1 to 64 characters of A-Z, a-z, 0-9, "_" and "-"."""
    return isinstance(name, str) and NAME_PATTERN.fullmatch(name) is not None


def check_name(name: object) -> str:
    if not valid_name(name):
        raise ValueError(f"a webhook name is 1 to 64 characters of A-Z, a-z, 0-9, '_' and '-', got {name!r}")
    assert isinstance(name, str)
    return name


@dataclass(frozen=True)
class ScriptedResponse:
    """One answer to a webhook POST: a status, an optional Retry-After value and an optional body."""

    status: int
    retry_after: str | None = None
    body: str | None = None  # None: "ok" for a status below 300, else empty

    @classmethod
    def parse(cls, value: Any, where: str) -> ScriptedResponse:
        """Validate a {"status", "retry_after"?, "body"?} object; ValueError names the offending field."""
        if not isinstance(value, dict):
            raise ValueError(f'{where} must be an object {{"status", "retry_after"?, "body"?}}: {value!r}')
        unknown = set(value) - _RESPONSE_FIELDS
        if unknown:
            raise ValueError(f"{where}: unknown field(s): {', '.join(sorted(unknown))}")
        if "status" not in value:
            raise ValueError(f"{where}.status is required")
        status = value["status"]
        if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
            raise ValueError(f"{where}.status must be an integer from 100 to 599, got {status!r}")
        retry_after = value.get("retry_after")
        if isinstance(retry_after, int) and not isinstance(retry_after, bool) and retry_after >= 0:
            retry_after = str(retry_after)
        if retry_after is not None and (
            not isinstance(retry_after, str) or _HEADER_VALUE.fullmatch(retry_after) is None
        ):
            raise ValueError(
                f'{where}.retry_after must be a Retry-After value as a string (e.g. "1"), got {retry_after!r}'
            )
        body = value.get("body")
        if body is not None and not isinstance(body, str):
            raise ValueError(f"{where}.body must be a string, got {body!r}")
        return cls(status, retry_after, body)

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {"status": self.status}
        if self.retry_after is not None:
            document["retry_after"] = self.retry_after
        if self.body is not None:
            document["body"] = self.body
        return document

    def response(self) -> Response:
        if self.status < 200 or self.status in (204, 304):  # these carry no body
            headers: list[tuple[str, str]] = []
            body = b""
        else:
            text = self.body if self.body is not None else ("ok" if self.status < 300 else "")
            headers, body = [("Content-Type", TEXT_TYPE)], text.encode("utf-8")
        if self.retry_after is not None:
            headers.append(("Retry-After", self.retry_after))
        return Response(self.status, body, headers)


DEFAULT_RESPONSE = ScriptedResponse(200)


@dataclass
class _Webhook:
    attempts: list[dict[str, Any]] = field(default_factory=list)
    script: deque[ScriptedResponse] = field(default_factory=deque)
    then: ScriptedResponse = DEFAULT_RESPONSE


class WebhookSink:
    """Every webhook's delivery attempts and scripted answers, behind one lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._webhooks: dict[str, _Webhook] = {}

    def route(self, request: ApiRequest, segments: list[str]) -> Response:
        """The router for /webhooks/{name}: POST delivers, other methods 405, other paths 404."""
        if len(segments) != 1 or not valid_name(segments[0]):
            return no_route(request.path)
        if request.method != "POST":
            return json_response(
                405,
                {"error": {"code": "MethodNotAllowed", "message": "A webhook only accepts POST."}},
                Allow="POST",
            )
        request.entry["authorized"] = True  # webhook URLs carry their secret in the URL
        return self.deliver(segments[0], request.headers, request.body, iso(request.now_us()))

    def deliver(self, name: str, headers: Mapping[str, str], body: bytes, sim_time: str) -> Response:
        """Record one POST to webhook `name` and answer it with the next scripted response."""
        check_name(name)
        lowered: dict[str, str] = {}
        for key, value in headers.items():
            key = key.lower()
            lowered[key] = f"{lowered[key]}, {value}" if key in lowered else value
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            text, document = body.decode("utf-8", "replace"), None
        else:
            try:
                document = json.loads(text)
            except (ValueError, RecursionError):
                document = None
        received_at = dt.datetime.now(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
        with self._lock:
            webhook = self._webhooks.setdefault(name, _Webhook())
            answer = webhook.script.popleft() if webhook.script else webhook.then
            webhook.attempts.append(
                {
                    "name": name,
                    "sequence": len(webhook.attempts) + 1,
                    "received_at": received_at,
                    "sim_time": sim_time,
                    "headers": lowered,
                    "body": text,
                    "json": document,
                    "status": answer.status,
                    "accepted": answer.status < 300,
                }
            )
        return answer.response()

    def script(self, name: str, responses: Any, then: Any = None) -> dict[str, Any]:
        """Answer the next POSTs to `name` with `responses` in order, then every later one with `then`
        (default {"status": 200}). Replaces an earlier script; raises ValueError when invalid."""
        check_name(name)
        if not isinstance(responses, list):
            raise ValueError(f"responses must be a list of response objects, got {responses!r}")
        if len(responses) > MAX_SCRIPTED_RESPONSES:
            raise ValueError(f"responses may hold at most {MAX_SCRIPTED_RESPONSES} entries: {len(responses)}")
        parsed = [ScriptedResponse.parse(value, f"responses[{i}]") for i, value in enumerate(responses)]
        final = DEFAULT_RESPONSE if then is None else ScriptedResponse.parse(then, "then")
        with self._lock:
            webhook = self._webhooks.setdefault(name, _Webhook())
            webhook.script = deque(parsed)
            webhook.then = final
        return {"name": name, "responses": [r.to_json() for r in parsed], "then": final.to_json()}

    def script_document(self, name: str, document: dict[str, Any]) -> dict[str, Any]:
        """`script` from a control body {"responses": [...], "then"?: {...}}."""
        unknown = set(document) - _SCRIPT_FIELDS
        if unknown:
            raise ValueError(f"unknown field(s): {', '.join(sorted(unknown))}")
        return self.script(name, document.get("responses", []), document.get("then"))

    def attempts(self, name: str) -> list[dict[str, Any]]:
        """Every recorded attempt for `name`, oldest first (empty for an unknown name)."""
        with self._lock:
            webhook = self._webhooks.get(name)
            return copy.deepcopy(webhook.attempts) if webhook is not None else []

    def summary(self) -> dict[str, dict[str, int]]:
        """{name: {"attempts": n, "accepted": m}} for every webhook posted to or scripted."""
        with self._lock:
            return {
                name: {
                    "attempts": len(webhook.attempts),
                    "accepted": sum(1 for a in webhook.attempts if a["accepted"]),
                }
                for name, webhook in sorted(self._webhooks.items())
            }

    def reset(self, name: str) -> dict[str, Any]:
        """Forget the attempts and the script of `name`."""
        check_name(name)
        with self._lock:
            webhook = self._webhooks.pop(name, None)
        return {"name": name, "forgotten_attempts": 0 if webhook is None else len(webhook.attempts)}

    def reset_document(self, name: str, document: dict[str, Any]) -> dict[str, Any]:
        """`reset` from a control body, which must be {}."""
        if document:
            raise ValueError(f"unknown field(s): {', '.join(sorted(document))}; the body must be {{}}")
        return self.reset(name)
