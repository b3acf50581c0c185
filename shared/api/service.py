"""The API's request handling, free of azure.functions: authenticate, authorize, validate, answer.

Each handler takes what the Blueprint decoded (URL, headers, route params, body) and returns an
`ApiResponse`; every refusal is an RFC 9457 problem.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from azure.cosmos import ContainerProxy
from pydantic import ValidationError

from shared.alerts.lifecycle import (
    AlertNotFoundError,
    AlertUpdate,
    InvalidTransitionError,
    already_applied,
    update_alert,
    update_id,
)
from shared.alerts.store import AlertStore
from shared.api.alerts_api import AlertQuery, AlertSearch, public_alert
from shared.api.audit import AuditLog, AuditQuery
from shared.api.auth import Principal, Role
from shared.api.bodies import parse_json_body
from shared.api.events_query import (
    EventSearch,
    SensitivityPolicy,
    parse_event_query,
    parse_query_string,
    public_event,
)
from shared.api.paging import ContinuationSigner
from shared.api.problems import bad_request, from_validation_error
from shared.api.responses import (
    ApiGuard,
    ApiResponse,
    answer,
    idempotency_key,
    json_response,
    not_found,
    require_id,
)
from shared.platform.clock import Clock
from shared.platform.ids import is_alert_id, is_event_id

logger = logging.getLogger(__name__)


class ApiService:
    def __init__(
        self,
        guard: ApiGuard,
        search: EventSearch,
        events: ContainerProxy,
        tenant_id: str,
        clock: Clock,
        alert_search: AlertSearch,
        alert_store: AlertStore,
        audit: AuditLog,
        signer: ContinuationSigner,
    ) -> None:
        self._audit = audit
        self._signer = signer
        self._guard_policy = guard
        self._alert_search = alert_search
        self._alert_store = alert_store
        self._search = search
        self._events = events
        self._tenant_id = tenant_id
        self._clock = clock

    def _guard(self, headers: Mapping[str, str], role: Role) -> Principal:
        return self._guard_policy.require(headers, role)

    def _hide_for(self, principal: Principal) -> SensitivityPolicy | None:
        return self._guard_policy.hide_for(principal)

    def _answer(self, path: str, handler: Callable[[], ApiResponse]) -> ApiResponse:
        return answer(path, handler)

    def list_events(self, url: str, headers: Mapping[str, str], path: str) -> ApiResponse:
        def handle() -> ApiResponse:
            principal = self._guard(headers, Role.READER)
            query = parse_event_query(parse_query_string(url))
            return json_response(self._search.search(query, self._clock.now(), self._hide_for(principal)))

        return self._answer(path, handle)

    def get_event(self, event_id: str, headers: Mapping[str, str], path: str) -> ApiResponse:
        def handle() -> ApiResponse:
            principal = self._guard(headers, Role.READER)
            require_id("event", event_id, is_event_id)
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
                raise not_found("event", event_id)
            return json_response(public_event(found[0]))

        return self._answer(path, handle)

    # -- alerts ----------------------------------------------------------------------------------

    def _visible_alert(self, alert_id: str, principal: Principal) -> dict[str, Any]:
        require_id("alert", alert_id, is_alert_id)
        alert = self._alert_store.get(self._tenant_id, alert_id)
        hide = self._hide_for(principal)
        if alert is None or (hide is not None and hide.hides(alert.get("sample") or {})):
            raise not_found("alert", alert_id)
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
        """With an Idempotency-Key, a retry answers with the alert as it is and changes nothing."""

        def handle() -> ApiResponse:
            principal = self._guard(headers, Role.ANALYST)
            require_id("alert", alert_id, is_alert_id)
            key = idempotency_key(headers)
            update = parse_json_body(AlertUpdate, body, headers)
            before = self._visible_alert(alert_id, principal)
            if key is not None and already_applied(before, update_id(alert_id, principal.name, key)):
                return json_response(public_alert(before))
            try:
                stored = update_alert(
                    self._alert_store,
                    self._clock,
                    self._tenant_id,
                    alert_id,
                    update,
                    principal.name,
                    idempotency_key=key,
                )
            except InvalidTransitionError as exc:
                raise bad_request(str(exc), field="status") from None
            except AlertNotFoundError:
                raise not_found("alert", alert_id) from None
            self._audit.record(
                principal,
                "alert.update",
                "alert",
                alert_id,
                {"status": before.get("status"), "classification": before.get("classification")},
                {
                    "status": stored.get("status"),
                    "classification": stored.get("classification"),
                    "comment": update.comment,
                },
                request_id=key,
            )
            logger.info("alert %s updated by %s", alert_id, principal.name)
            return json_response(public_alert(stored))

        return self._answer(path, handle)

    # -- audit -----------------------------------------------------------------------------------

    def list_audit(self, url: str, headers: Mapping[str, str], path: str) -> ApiResponse:
        def handle() -> ApiResponse:
            self._guard(headers, Role.ADMIN)
            try:
                query = AuditQuery.model_validate(parse_query_string(url, repeatable=()))
            except ValidationError as exc:
                raise from_validation_error(exc) from None
            return json_response(self._audit.search(query, self._signer).model_dump())

        return self._answer(path, handle)
