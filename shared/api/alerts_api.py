"""The alert routes: GET /api/alerts (filters, keyset paging), GET /api/alerts/summary (open alerts by
severity), GET /api/alerts/{id}, and PATCH /api/alerts/{id} (status, classification, comment; audited,
idempotent with an Idempotency-Key). `AlertSearch` holds the queries, `AlertsApi` the routes."""

from __future__ import annotations

import logging
from typing import Any

from azure.cosmos import ContainerProxy
from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared.alerts.lifecycle import (
    AlertNotFoundError,
    AlertUpdate,
    InvalidTransitionError,
    already_applied,
    update_alert,
    update_id,
)
from shared.alerts.model import AlertStatus
from shared.alerts.store import AlertStore
from shared.api.audit import AuditLog
from shared.api.auth import Role
from shared.api.events_query import SensitivityPolicy
from shared.api.models import AlertPage, AlertSummary, AlertView
from shared.api.paging import ContinuationSigner, iso_time_or_none, query_hash
from shared.api.problems import bad_request
from shared.api.responses import ApiGuard, not_found
from shared.api.routing import Call, NoQuery, PathParam, Reply, Resource, route
from shared.platform.clock import Clock, parse_utc, utc_iso
from shared.platform.ids import is_alert_id
from shared.rules.model import SEVERITY_ORDER, Severity

logger = logging.getLogger(__name__)

ALERT_ID = PathParam("id", "alert id", "alert", is_alert_id)


class AlertQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", use_enum_values=True)

    status: list[AlertStatus] = Field(default_factory=list, max_length=4)
    severity: list[Severity] = Field(default_factory=list, max_length=5)
    rule: str | None = Field(default=None, max_length=80)
    since: str | None = None
    page_size: int = Field(default=50, ge=1, le=200)
    continuation: str | None = Field(default=None, max_length=2000)

    _since = field_validator("since")(iso_time_or_none)


def public_alert(document: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in document.items() if not k.startswith("_")}


def _hidden_conditions(hide: SensitivityPolicy | None) -> tuple[list[str], list[dict[str, Any]]]:
    conditions: list[str] = []
    parameters: list[dict[str, Any]] = []
    if hide is not None and hide.services:
        conditions.append("NOT ARRAY_CONTAINS(@hidden_services, c.sample.service)")
        parameters.append({"name": "@hidden_services", "value": hide.services})
    if hide is not None and hide.operations:
        conditions.append("NOT ARRAY_CONTAINS(@hidden_operations, c.sample.operation)")
        parameters.append({"name": "@hidden_operations", "value": hide.operations})
    return conditions, parameters


class AlertSearch:
    def __init__(self, alerts: ContainerProxy, signer: ContinuationSigner, tenant_id: str) -> None:
        self._alerts = alerts
        self._signer = signer
        self._tenant_id = tenant_id

    def search(self, query: AlertQuery, hide: SensitivityPolicy | None) -> dict[str, Any]:
        fingerprint = query_hash({**query.model_dump(exclude={"continuation"}), "privacy": hide is None})
        position = self._signer.decode(query.continuation, fingerprint) if query.continuation else None
        where = ["c.pk = @pk", "c.type = 'alert'"]
        params: list[dict[str, Any]] = [{"name": "@pk", "value": self._tenant_id}]
        if query.status:
            where.append("ARRAY_CONTAINS(@statuses, c.status)")
            params.append({"name": "@statuses", "value": list(query.status)})
        if query.severity:
            where.append("ARRAY_CONTAINS(@severities, c.severity)")
            params.append({"name": "@severities", "value": list(query.severity)})
        if query.rule:
            where.append("c.rule_id = @rule")
            params.append({"name": "@rule", "value": query.rule})
        if query.since:
            where.append("c.last_seen >= @since")
            params.append({"name": "@since", "value": utc_iso(parse_utc(query.since))})
        hidden, hidden_params = _hidden_conditions(hide)
        where += hidden
        params += hidden_params
        if position is not None:
            where.append("(c.last_seen < @after_seen OR (c.last_seen = @after_seen AND c.id < @after_id))")
            params += [
                {"name": "@after_seen", "value": position.get("last_seen")},
                {"name": "@after_id", "value": position.get("id")},
            ]
        params.append({"name": "@limit", "value": query.page_size + 1})
        clauses = " AND ".join(where)
        sql = f"SELECT TOP @limit * FROM c WHERE {clauses} ORDER BY c.last_seen DESC, c.id DESC"  # noqa: S608
        found = list(self._alerts.query_items(sql, parameters=params, partition_key=self._tenant_id))
        items = found[: query.page_size]
        token = None
        if len(found) > query.page_size:
            last = items[-1]
            token = self._signer.encode(fingerprint, {"last_seen": last["last_seen"], "id": last["id"]})
        return {"items": [public_alert(a) for a in items], "continuation": token}

    def summary(self, hide: SensitivityPolicy | None) -> dict[str, Any]:
        """Open alerts by severity: one COUNT per severity (no GROUP BY, which cosmosdb-server lacks)."""
        hidden, hidden_params = _hidden_conditions(hide)
        counts: dict[str, int] = {}
        for severity in sorted(SEVERITY_ORDER, key=SEVERITY_ORDER.__getitem__, reverse=True):
            clauses = " AND ".join(["c.pk = @pk", "c.status = @open", "c.severity = @severity", *hidden])
            sql = f"SELECT VALUE COUNT(1) FROM c WHERE {clauses}"  # noqa: S608 - constant fragments only
            params = [
                {"name": "@pk", "value": self._tenant_id},
                {"name": "@open", "value": AlertStatus.OPEN.value},
                {"name": "@severity", "value": severity},
                *hidden_params,
            ]
            found: Any = next(
                iter(self._alerts.query_items(sql, parameters=params, partition_key=self._tenant_id)), 0
            )  # SELECT VALUE COUNT(1) yields one number
            counts[severity] = int(found)
        return {"open": counts, "total_open": sum(counts.values())}


class AlertsApi(Resource):
    def __init__(
        self,
        guard: ApiGuard,
        search: AlertSearch,
        store: AlertStore,
        audit: AuditLog,
        tenant_id: str,
        clock: Clock,
    ) -> None:
        self.guard = guard
        self._search = search
        self._store = store
        self._audit = audit
        self._tenant_id = tenant_id
        self._clock = clock

    @route(
        "GET",
        "alerts",
        "list_alerts",
        role=Role.READER,
        summary="Search alerts, most recent first",
        query=AlertQuery,
        body=None,
        response=AlertPage,
    )
    def list_alerts(self, call: Call[AlertQuery, None]) -> Reply:
        return self._search.search(call.query, call.hide)

    @route(
        "GET",
        "alerts/summary",
        "alerts_summary",
        role=Role.READER,
        summary="Open alerts by severity",
        query=NoQuery,
        body=None,
        response=AlertSummary,
    )
    def alerts_summary(self, call: Call[NoQuery, None]) -> Reply:
        return self._search.summary(call.hide)

    @route(
        "GET",
        "alerts/{id}",
        "get_alert",
        role=Role.READER,
        summary="One alert",
        query=NoQuery,
        body=None,
        response=AlertView,
        path_params=(ALERT_ID,),
    )
    def get_alert(self, call: Call[NoQuery, None]) -> Reply:
        return public_alert(self._visible(call.params["id"], call.hide))

    @route(
        "PATCH",
        "alerts/{id}",
        "patch_alert",
        role=Role.ANALYST,
        summary="Change an alert's status or classification, or comment",
        query=NoQuery,
        body=AlertUpdate,
        response=AlertView,
        path_params=(ALERT_ID,),
        description=(
            "With an Idempotency-Key header (at most 100 characters) a retried request changes the alert "
            "once: the replay answers 200 with the alert as it is, adding no second comment or history "
            "entry. Recorded in the audit log."
        ),
    )
    def patch_alert(self, call: Call[NoQuery, AlertUpdate]) -> Reply:
        """With an Idempotency-Key, a retry answers with the alert as it is and changes nothing."""
        alert_id, principal, key, update = call.params["id"], call.principal, call.idempotency_key, call.body
        before = self._visible(alert_id, call.hide)
        if key is not None and already_applied(before, update_id(alert_id, principal.name, key)):
            return public_alert(before)
        try:
            stored = update_alert(
                self._store,
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
        return public_alert(stored)

    def _visible(self, alert_id: str, hide: SensitivityPolicy | None) -> dict[str, Any]:
        alert = self._store.get(self._tenant_id, alert_id)
        if alert is None or (hide is not None and hide.hides(alert.get("sample") or {})):
            raise not_found("alert", alert_id)
        return alert
