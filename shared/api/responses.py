"""What every API handler returns, free of azure.functions: status, body, media type, headers."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
from azure.core.exceptions import (
    ServiceRequestError,
    ServiceRequestTimeoutError,
    ServiceResponseError,
    ServiceResponseTimeoutError,
)
from azure.cosmos.exceptions import CosmosClientTimeoutError, CosmosHttpResponseError

from shared.api.auth import Authenticator, AuthError, Principal, Role
from shared.api.events_query import SensitivityPolicy
from shared.api.problems import MEDIA_TYPE, ApiProblem, bad_request, gateway_timeout, service_unavailable
from shared.platform.ids import MAX_STORAGE_ID_LENGTH, UnsafeStorageIdError, is_idempotency_key

logger = logging.getLogger(__name__)

MAX_IDEMPOTENCY_KEY = 100
# Retry-After of a 503: Cosmos DB's own x-ms-retry-after-ms when it gave one, clamped to this range.
DEFAULT_RETRY_AFTER_SECONDS = 5
MAX_RETRY_AFTER_SECONDS = 60
# requests and urllib3 come with azure-core, not with requirements.txt: their exceptions are recognised
# by name (the SDKs wrap them in ServiceRequestError/ServiceResponseError, but a bare one may escape).
_TIMEOUT_CLASSES = frozenset({"requests.exceptions.Timeout", "urllib3.exceptions.TimeoutError"})
_CONNECTION_CLASSES = frozenset(
    {
        "requests.exceptions.ConnectionError",
        "urllib3.exceptions.ProtocolError",
        "urllib3.exceptions.NewConnectionError",
        "urllib3.exceptions.MaxRetryError",
    }
)
_MAX_CAUSES = 8


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
    headers = {**problem.headers, "Cache-Control": "no-store"}
    return ApiResponse(problem.status, problem.to_json(instance), MEDIA_TYPE, headers)


def dependency_problem(exc: BaseException) -> ApiProblem | None:
    """The problem for a storage or database call that failed after the SDK's own retries, or None
    for any other exception (a bug: a 500).

    - Cosmos DB 429 (request rate too large) or 503, a connection refused, reset or broken: 503 with
      Retry-After (Cosmos DB's x-ms-retry-after-ms when given, else 5 s; 1 to 60 s);
    - Cosmos DB 408, the SDK's own timeout, a connect or read timeout (azure-core, httpx, requests,
      urllib3, the socket's): 504.

    The exception, its `__cause__`/`__context__` and azure-core's `inner_exception` are looked at in that
    order (at most 8 deep); the first one recognised decides.
    """
    for error in _causes(exc):
        if isinstance(error, CosmosHttpResponseError):
            status = error.status_code
            if status == 408:
                return gateway_timeout("the database did not answer in time; retry the request")
            if status in (429, 503):
                return service_unavailable(
                    "the database is busy; retry the request after the Retry-After delay",
                    _retry_after(getattr(error, "headers", None)),
                )
            continue
        if _is_timeout(error):
            return gateway_timeout("a storage service did not answer in time; retry the request")
        if isinstance(error, ServiceRequestError | ServiceResponseError) or _is_connection_failure(error):
            if any(_is_timeout(inner) for inner in _causes(error)):
                return gateway_timeout("a storage service did not answer in time; retry the request")
            return service_unavailable(
                "a storage service could not be reached; retry the request after the Retry-After delay",
                DEFAULT_RETRY_AFTER_SECONDS,
            )
    return None


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """`exc`, then what it was raised from or during, and azure-core's wrapped error, without repeats."""
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending and len(seen) < _MAX_CAUSES:
        error = pending.pop(0)
        if id(error) in seen:
            continue
        seen.add(id(error))
        yield error
        inner = getattr(error, "inner_exception", None)
        for linked in (error.__cause__, error.__context__, inner):
            if isinstance(linked, BaseException):
                pending.append(linked)


def _class_names(error: BaseException) -> set[str]:
    return {f"{cls.__module__}.{cls.__qualname__}" for cls in type(error).__mro__}


def _is_timeout(error: BaseException) -> bool:
    names = _class_names(error)
    if "urllib3.exceptions.NewConnectionError" in names:
        return False  # urllib3 2 derives "connection refused" from ConnectTimeoutError
    timeouts = (
        TimeoutError,
        httpx.TimeoutException,
        ServiceRequestTimeoutError,
        ServiceResponseTimeoutError,
        CosmosClientTimeoutError,
    )
    return isinstance(error, timeouts) or bool(names & _TIMEOUT_CLASSES)


def _is_connection_failure(error: BaseException) -> bool:
    return isinstance(error, ConnectionError | httpx.TransportError) or bool(
        _class_names(error) & _CONNECTION_CLASSES
    )


def _retry_after(headers: Any) -> int:
    """Whole seconds from Cosmos DB's x-ms-retry-after-ms (or a delta-seconds Retry-After), clamped."""
    seconds: float | None = None
    if isinstance(headers, Mapping):
        for name, scale in (("x-ms-retry-after-ms", 1000.0), ("Retry-After", 1.0)):
            raw = header(headers, name)
            try:
                seconds = float(raw) / scale if raw is not None else None
            except ValueError:
                seconds = None
            if seconds is not None and math.isfinite(seconds):
                break
            seconds = None
    if seconds is None:
        return DEFAULT_RETRY_AFTER_SECONDS
    return max(1, min(MAX_RETRY_AFTER_SECONDS, math.ceil(seconds)))


def answer(path: str, handler: Callable[[], ApiResponse]) -> ApiResponse:
    """Run a handler; an `ApiProblem` it raises becomes its problem response.

    An id that reached the storage layer's check (shared.platform.ids.storage_id) unchecked is a
    404. A dependency that stayed busy or unreachable through the SDK's retries is a 503 with
    Retry-After, one that did not answer in time a 504 (`dependency_problem`). Any other exception is
    a bug: logged, and answered as a 500 problem that tells nothing of it.
    """
    try:
        return handler()
    except ApiProblem as problem:
        return problem_response(problem, path)
    except UnsafeStorageIdError:
        logger.warning("%s: an unsafe id reached the storage layer", path[:200])
        return problem_response(ApiProblem(404, "Not Found", "no such item", kind="not-found"), path)
    except Exception as exc:
        outage = dependency_problem(exc)
        if outage is not None:
            logger.warning(
                "%s: answered %d: %s%s",
                path[:200],
                outage.status,
                type(exc).__name__,
                f" (HTTP {exc.status_code})" if isinstance(exc, CosmosHttpResponseError) else "",
            )
            return problem_response(outage, path)
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
