"""GET /api/alerts (filters, keyset paging), GET /api/alerts/summary, PATCH /api/alerts/{id}."""

from __future__ import annotations

from typing import Any

from azure.cosmos import ContainerProxy
from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared.alerts.model import AlertStatus
from shared.api.events_query import SensitivityPolicy
from shared.api.paging import ContinuationSigner, iso_time_or_none, query_hash
from shared.platform.clock import parse_utc, utc_iso
from shared.rules.model import SEVERITY_ORDER, Severity


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
            counts[severity] = int(
                next(iter(self._alerts.query_items(sql, parameters=params, partition_key=self._tenant_id)), 0)
            )
        return {"open": counts, "total_open": sum(counts.values())}
