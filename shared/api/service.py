"""The API's request handling, free of azure.functions: authenticate, authorize, validate, answer.

Each handler takes what the Blueprint decoded (URL, headers, route params, body) and returns an
`ApiResponse`; every refusal is an RFC 9457 problem.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from azure.cosmos import ContainerProxy
from pydantic import ValidationError

from shared.alerts.lifecycle import AlertNotFoundError, AlertUpdate, InvalidTransitionError, update_alert
from shared.alerts.store import AlertStore
from shared.api.alerts_api import AlertQuery, AlertSearch, public_alert
from shared.api.auth import Authenticator, AuthError, Principal, Role
from shared.api.events_query import (
    EventSearch,
    SensitivityPolicy,
    parse_event_query,
    parse_query_string,
    public_event,
)
from shared.api.problems import MEDIA_TYPE, ApiProblem, bad_request, from_validation_error
from shared.clock import Clock

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ApiResponse:
    status: int
    body: str
    media_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


def json_response(document: Any, status: int = 200) -> ApiResponse:
    return ApiResponse(
        status, json.dumps(document, ensure_ascii=False), headers={"Cache-Control": "no-store"}
    )


def problem_response(problem: ApiProblem, instance: str | None = None) -> ApiResponse:
    return ApiResponse(problem.status, problem.to_json(instance), MEDIA_TYPE, {"Cache-Control": "no-store"})


class ApiService:
    def __init__(
        self,
        authenticator: Authenticator,
        search: EventSearch,
        events: ContainerProxy,
        tenant_id: str,
        clock: Clock,
        sensitivity: SensitivityPolicy,
        alert_search: AlertSearch,
        alert_store: AlertStore,
    ) -> None:
        self._alert_search = alert_search
        self._alert_store = alert_store
        self._authenticator = authenticator
        self._search = search
        self._events = events
        self._tenant_id = tenant_id
        self._clock = clock
        self._sensitivity = sensitivity

    def _guard(self, headers: Mapping[str, str], role: Role) -> Principal:
        try:
            principal = self._authenticator.authenticate(headers)
        except AuthError as exc:
            title = "Unauthorized" if exc.status == 401 else "Forbidden"
            raise ApiProblem(exc.status, title, str(exc), kind=title.lower()) from None
        if not principal.has(role):
            raise ApiProblem(403, "Forbidden", f"this needs the {role.value} role", kind="forbidden")
        return principal

    def _hide_for(self, principal: Principal) -> SensitivityPolicy | None:
        if principal.sees_sensitive or not (self._sensitivity.services or self._sensitivity.operations):
            return None
        return self._sensitivity

    def _answer(self, path: str, handler: Callable[[], ApiResponse]) -> ApiResponse:
        try:
            return handler()
        except ApiProblem as problem:
            return problem_response(problem, path)

    def list_events(self, url: str, headers: Mapping[str, str], path: str) -> ApiResponse:
        def handle() -> ApiResponse:
            principal = self._guard(headers, Role.READER)
            query = parse_event_query(parse_query_string(url))
            return json_response(self._search.search(query, self._clock.now(), self._hide_for(principal)))

        return self._answer(path, handle)

    def get_event(self, event_id: str, headers: Mapping[str, str], path: str) -> ApiResponse:
        def handle() -> ApiResponse:
            principal = self._guard(headers, Role.READER)
            found = list(
                self._events.query_items(
                    "SELECT * FROM c WHERE c.tenant_id = @tenant AND c.id = @id",
                    parameters=[
                        {"name": "@tenant", "value": self._tenant_id},
                        {"name": "@id", "value": event_id},
                    ],
                    enable_cross_partition_query=True,
                )
            )
            hide = self._hide_for(principal)
            if not found or (hide is not None and hide.hides(found[0])):
                raise ApiProblem(404, "Not Found", f"no event {event_id!r}", kind="not-found")
            return json_response(public_event(found[0]))

        return self._answer(path, handle)

    # -- alerts ----------------------------------------------------------------------------------

    def _visible_alert(self, alert_id: str, principal: Principal) -> dict[str, Any]:
        alert = self._alert_store.get(self._tenant_id, alert_id)
        hide = self._hide_for(principal)
        if alert is None or (hide is not None and hide.hides(alert.get("sample") or {})):
            raise ApiProblem(404, "Not Found", f"no alert {alert_id!r}", kind="not-found")
        return alert

    def list_alerts(self, url: str, headers: Mapping[str, str], path: str) -> ApiResponse:
        def handle() -> ApiResponse:
            principal = self._guard(headers, Role.READER)
            params = parse_query_string(url, repeatable=("status", "severity"))
            try:
                query = AlertQuery.model_validate(params)
            except ValidationError as exc:
                raise from_validation_error(exc) from None
            return json_response(self._alert_search.search(query, self._hide_for(principal)))

        return self._answer(path, handle)

    def alerts_summary(self, headers: Mapping[str, str], path: str) -> ApiResponse:
        def handle() -> ApiResponse:
            principal = self._guard(headers, Role.READER)
            return json_response(self._alert_search.summary(self._hide_for(principal)))

        return self._answer(path, handle)

    def get_alert(self, alert_id: str, headers: Mapping[str, str], path: str) -> ApiResponse:
        def handle() -> ApiResponse:
            principal = self._guard(headers, Role.READER)
            return json_response(public_alert(self._visible_alert(alert_id, principal)))

        return self._answer(path, handle)

    def patch_alert(self, alert_id: str, body: bytes, headers: Mapping[str, str], path: str) -> ApiResponse:
        def handle() -> ApiResponse:
            principal = self._guard(headers, Role.ANALYST)
            try:
                update = AlertUpdate.model_validate_json(body or b"{}")
            except ValidationError as exc:
                raise from_validation_error(exc, location="body") from None
            self._visible_alert(alert_id, principal)
            try:
                stored = update_alert(
                    self._alert_store, self._clock, self._tenant_id, alert_id, update, principal.name
                )
            except InvalidTransitionError as exc:
                raise bad_request(str(exc), field="status") from None
            except AlertNotFoundError:
                raise ApiProblem(404, "Not Found", f"no alert {alert_id!r}", kind="not-found") from None
            logger.info("alert %s updated by %s", alert_id, principal.name)
            return json_response(public_alert(stored))

        return self._answer(path, handle)
