"""RFC 9457 problem details: every refused request gets one, naming the field at fault."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

PROBLEM_TYPE_BASE = "https://aoc-functions.dev/problems/"
MEDIA_TYPE = "application/problem+json"


class ApiProblem(Exception):
    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        *,
        kind: str | None = None,
        errors: list[dict[str, Any]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.status = status
        self.headers = dict(headers or {})  # sent with the problem, e.g. Retry-After
        self.title = title
        self.detail = detail
        self.kind = kind or title.lower().replace(" ", "-")
        self.errors = errors or []
        super().__init__(detail)

    def body(self, instance: str | None = None) -> dict[str, Any]:
        document: dict[str, Any] = {
            "type": PROBLEM_TYPE_BASE + self.kind,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if instance:
            document["instance"] = instance
        if self.errors:
            document["errors"] = self.errors
        return document

    def to_json(self, instance: str | None = None) -> str:
        return json.dumps(self.body(instance), ensure_ascii=False)


def bad_request(detail: str, field: str | None = None) -> ApiProblem:
    errors = [{"field": field, "message": detail}] if field else None
    return ApiProblem(400, "Bad Request", detail, kind="invalid-input", errors=errors)


def conflict(detail: str) -> ApiProblem:
    """409: what the request builds on changed meanwhile; read it again and retry."""
    return ApiProblem(409, "Conflict", detail, kind="conflict")


def service_unavailable(detail: str, retry_after_seconds: int) -> ApiProblem:
    """503: a dependency is busy or unreachable; the same request may succeed after Retry-After."""
    return ApiProblem(
        503,
        "Service Unavailable",
        detail,
        kind="unavailable",
        headers={"Retry-After": str(retry_after_seconds)},
    )


def gateway_timeout(detail: str) -> ApiProblem:
    """504: a dependency did not answer in time."""
    return ApiProblem(504, "Gateway Timeout", detail, kind="timeout")


def from_validation_error(error: ValidationError, location: str = "query") -> ApiProblem:
    """A 400 listing each invalid field (never echoing the input value)."""
    errors = []
    for item in error.errors(include_input=False, include_url=False):
        field = ".".join(str(p) for p in item["loc"]) or location
        errors.append({"field": field, "message": item["msg"]})
    first = errors[0] if errors else {"field": location, "message": "invalid input"}
    return ApiProblem(
        400, "Bad Request", f"{first['field']}: {first['message']}", kind="invalid-input", errors=errors
    )
