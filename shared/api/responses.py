"""What every API handler returns, free of azure.functions: status, body, media type, headers."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from shared.api.auth import Authenticator, AuthError, Principal, Role
from shared.api.events_query import SensitivityPolicy
from shared.api.problems import MEDIA_TYPE, ApiProblem, bad_request
from shared.platform.ids import MAX_STORAGE_ID_LENGTH, UnsafeStorageIdError, is_idempotency_key

logger = logging.getLogger(__name__)

MAX_IDEMPOTENCY_KEY = 100


@dataclass(frozen=True)
class ApiResponse:
    status: int
    body: str | bytes
    media_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


def json_response(document: Any, status: int = 200) -> ApiResponse:
    return ApiResponse(
        status, json.dumps(document, ensure_ascii=False), headers={"Cache-Control": "no-store"}
    )


def problem_response(problem: ApiProblem, instance: str | None = None) -> ApiResponse:
    return ApiResponse(problem.status, problem.to_json(instance), MEDIA_TYPE, {"Cache-Control": "no-store"})


def answer(path: str, handler: Callable[[], ApiResponse]) -> ApiResponse:
    """Run a handler; an `ApiProblem` it raises becomes its problem response.

    An id that reached the storage layer's check (shared.platform.ids.storage_id) unchecked is a
    404. Any other exception is a bug or an outage: logged, and answered as a 500 problem that tells
    nothing of it.
    """
    try:
        return handler()
    except ApiProblem as problem:
        return problem_response(problem, path)
    except UnsafeStorageIdError:
        logger.warning("%s: an unsafe id reached the storage layer", path[:200])
        return problem_response(ApiProblem(404, "Not Found", "no such item", kind="not-found"), path)
    except Exception:
        logger.exception("%s: unexpected error", path[:200])
        failure = ApiProblem(
            500, "Internal Server Error", "the request failed unexpectedly", kind="internal-error"
        )
        return problem_response(failure, path)


def header(headers: Mapping[str, str], name: str) -> str | None:
    wanted = name.lower()
    return next((v for k, v in headers.items() if k.lower() == wanted), None)


def idempotency_key(headers: Mapping[str, str]) -> str | None:
    """The Idempotency-Key header, trimmed; a 400 unless it is 1 to 100 printable ASCII characters."""
    raw = header(headers, "Idempotency-Key")
    key = raw.strip() if raw is not None else None
    if key is not None and not is_idempotency_key(key):
        raise bad_request(
            f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} printable ASCII characters",
            field="Idempotency-Key",
        )
    return key


def not_found(what: str, identifier: str) -> ApiProblem:
    return ApiProblem(404, "Not Found", f"no {what} {identifier[:MAX_STORAGE_ID_LENGTH]!r}", kind="not-found")


def require_id(what: str, identifier: str, is_valid: Callable[[object], bool]) -> str:
    """`identifier` if it has the grammar of a `what` id (shared.platform.ids); otherwise a 404, before any
    storage call, that does not echo it."""
    if not is_valid(identifier):
        raise ApiProblem(
            404, "Not Found", f"no {what} has this id: it is not a valid {what} id", kind="not-found"
        )
    return identifier


class ApiGuard:
    """Who is calling, may they, and what must stay hidden from them."""

    def __init__(self, authenticator: Authenticator, sensitivity: SensitivityPolicy) -> None:
        self._authenticator = authenticator
        self.sensitivity = sensitivity

    def require(self, headers: Mapping[str, str], role: Role) -> Principal:
        try:
            principal = self._authenticator.authenticate(headers)
        except AuthError as exc:
            title = "Unauthorized" if exc.status == 401 else "Forbidden"
            raise ApiProblem(exc.status, title, str(exc), kind=title.lower()) from None
        if not principal.has(role):
            raise ApiProblem(403, "Forbidden", f"this needs the {role.value} role", kind="forbidden")
        return principal

    def hide_for(self, principal: Principal) -> SensitivityPolicy | None:
        """The policy to apply for this caller, or None when nothing is hidden from them."""
        if principal.sees_sensitive or not (self.sensitivity.services or self.sensitivity.operations):
            return None
        return self.sensitivity
