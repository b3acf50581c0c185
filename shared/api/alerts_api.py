"""The alert routes: GET /api/alerts (filters, keyset paging), GET /api/alerts/summary (open alerts by
severity, and alerts by status), GET /api/alerts/{id} (with its active suppression), PATCH
/api/alerts/{id} and POST /api/alerts/bulk (status, classification, comment; audited, idempotent with an
Idempotency-Key), and "suppress similar": POST /api/alerts/{id}/suppress, GET /api/suppressions, DELETE
/api/suppressions/{id} (shared.alerts.suppressions). `AlertSearch` holds the queries, `AlertsApi` the
routes."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Annotated, Any

from azure.cosmos import ContainerProxy
from azure.cosmos.exceptions import (
    CosmosAccessConditionFailedError,
    CosmosResourceExistsError,
    CosmosResourceNotFoundError,
)
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from shared.alerts.lifecycle import (
    AlertNotFoundError,
    AlertUpdate,
    InvalidTransitionError,
    already_applied,
    update_alert,
    update_id,
)
from shared.alerts.model import AlertStatus
from shared.alerts.store import AlertStore, ConcurrentUpdateError
from shared.alerts.suppressions import (
    LISTED_AFTER_EXPIRY,
    MAX_REASON_LENGTH,
    MAX_SUPPRESSION_DAYS,
    PreconditionFailedError,
    etag_matches,
    is_active,
    new_suppression,
    suppression_id,
)
from shared.api.audit import AuditLog
from shared.api.auth import Principal, Role
from shared.api.events_query import SensitivityPolicy
from shared.api.models import AlertPage, AlertSummary, AlertView
from shared.api.paging import ContinuationSigner, iso_time_or_none, parse_query_time, query_hash
from shared.api.problems import ApiProblem, bad_request, conflict
from shared.api.responses import ApiGuard, ApiResponse, header, json_response, not_found
from shared.api.routing import Call, EmptyBody, NoQuery, PathParam, Reply, Resource, route
from shared.platform.clock import Clock, parse_utc, utc_iso
from shared.platform.cosmos import MAX_UPDATE_ATTEMPTS
from shared.platform.ids import is_alert_id, is_rule_id, is_suppression_id
from shared.rules.model import SEVERITY_ORDER, Severity

logger = logging.getLogger(__name__)

ALERT_ID = PathParam("id", "alert id", "alert", is_alert_id)
SUPPRESSION_ID = PathParam("id", "suppression id", "suppression", is_suppression_id)
MAX_BULK_ALERTS = 100
MAX_LISTED_SUPPRESSIONS = 500
MAX_IF_MATCH_LENGTH = 200
DELETE_BODY_BYTES = 1024  # DELETE takes no body, or {}


class AlertQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", use_enum_values=True)

    status: list[AlertStatus] = Field(default_factory=list, max_length=4)
    severity: list[Severity] = Field(default_factory=list, max_length=5)
    rule: str | None = Field(default=None, max_length=80)
    actor: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="whom the alert is about (its `actor`: the rule's actor grouping, else the first "
        "event's actor), exact, any case",
    )
    since: str | None = Field(default=None, description="last seen at or after (ISO 8601)")
    until: str | None = Field(default=None, description="last seen at or before (ISO 8601)")
    page_size: int = Field(default=50, ge=1, le=200)
    continuation: str | None = Field(default=None, max_length=2000)

    _times = field_validator("since", "until")(iso_time_or_none)


def _alert_id(value: str) -> str:
    if not is_alert_id(value):
        raise ValueError("not an alert id")
    return value


def _unique(values: list[str]) -> list[str]:
    if len(set(values)) != len(values):
        raise ValueError("an alert id is given more than once")
    return values


class BulkAlertUpdate(AlertUpdate):
    """PATCH's change (at least one of status, classification and comment) for each alert of `ids`."""

    ids: Annotated[
        list[Annotated[str, AfterValidator(_alert_id)]],
        Field(min_length=1, max_length=MAX_BULK_ALERTS),
        AfterValidator(_unique),
    ]


class BulkAlertResult(BaseModel):
    id: str
    status: int = Field(description="as PATCH would answer: 200, 404, 409 (changed meanwhile) or 422")
    title: str | None = None
    detail: str | None = None
    alert: AlertView | None = Field(default=None, description="the alert as changed (status 200)")


class BulkAlertResults(BaseModel):
    results: list[BulkAlertResult] = Field(description="one per id, in the order given")


def _utc_time(value: str) -> str:
    return utc_iso(parse_query_time(value))


class SuppressRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=MAX_REASON_LENGTH)
    expires_at: Annotated[str, Field(max_length=40), AfterValidator(_utc_time)] = Field(
        description=f"UTC ISO 8601, in the future and at most {MAX_SUPPRESSION_DAYS} days ahead"
    )

    @field_validator("reason")
    @classmethod
    def _reason(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("give a reason")
        return value.strip()


class SuppressionView(BaseModel):
    id: str
    rule_id: str
    group_key: str
    group: dict[str, str]
    title: str | None = None
    reason: str
    created_by: str
    created_at: str
    expires_at: str
    source_alert_id: str
    matches: int = Field(description="distinct events matched while it was active: they opened nothing")
    last_match_at: str | None = Field(default=None, description="event time of the last of them")
    active: bool = Field(description="whether it holds now (before expires_at)")
    etag: str | None = Field(default=None, description="for If-Match")


class SuppressionList(BaseModel):
    items: list[SuppressionView] = Field(
        description="newest first: the active ones and those expired in the last 30 days"
    )
    truncated: bool = Field(description=f"more than {MAX_LISTED_SUPPRESSIONS} matched; the newest are shown")


def _rule_or_none(value: str | None) -> str | None:
    if value is not None and not is_rule_id(value):
        raise ValueError("not a rule id")
    return value


class SuppressionQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rule: Annotated[str | None, AfterValidator(_rule_or_none)] = Field(default=None, max_length=80)


class AlertDetail(AlertView):
    suppression: SuppressionView | None = Field(
        default=None, description="the active suppression of its rule and group, if any"
    )


def suppression_view(document: dict[str, Any], now: dt.datetime) -> dict[str, Any]:
    fields = SuppressionView.model_fields
    view = {k: v for k, v in document.items() if k in fields}
    view["active"] = is_active(document, now)
    view["etag"] = document.get("_etag")
    return SuppressionView.model_validate(view).model_dump()


def precondition_failed(what: str) -> ApiProblem:
    return ApiProblem(
        412,
        "Precondition Failed",
        f"the {what} changed since the ETag given in If-Match: read it again",
        kind="precondition-failed",
    )


def _if_match(call: Call[Any, Any]) -> str | None:
    value = header(call.headers, "If-Match")
    if value is not None and (not value.strip() or len(value) > MAX_IF_MATCH_LENGTH):
        raise bad_request(
            f"If-Match must be an ETag of 1 to {MAX_IF_MATCH_LENGTH} characters", field="If-Match"
        )
    return value


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
        if query.actor:
            where.append(
                "(LOWER(c.actor) = @actor OR (NOT IS_DEFINED(c.actor) AND LOWER(c.sample.actor) = @actor))"
            )
            params.append({"name": "@actor", "value": query.actor.lower()})
        if query.since:
            where.append("c.last_seen >= @since")
            params.append({"name": "@since", "value": utc_iso(parse_utc(query.since))})
        if query.until:
            where.append("c.last_seen <= @until")
            params.append({"name": "@until", "value": utc_iso(parse_utc(query.until))})
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
        """Open alerts by severity, and alerts by status: eight single-partition COUNT queries whatever
        the number of alerts (one per severity of the open ones, one per other status; no GROUP BY, which
        cosmosdb-server lacks). The open alerts' count by status is the sum by severity, so both agree."""
        severities = sorted(SEVERITY_ORDER, key=SEVERITY_ORDER.__getitem__, reverse=True)
        counts = {s: self._count(hide, AlertStatus.OPEN.value, s) for s in severities}
        total_open = sum(counts.values())
        by_status = {
            status.value: total_open if status is AlertStatus.OPEN else self._count(hide, status.value)
            for status in AlertStatus
        }
        return {"open": counts, "total_open": total_open, "by_status": by_status}

    def _count(self, hide: SensitivityPolicy | None, status: str, severity: str | None = None) -> int:
        """How many alerts (not suppressions) the caller may see have this status (and severity)."""
        hidden, hidden_params = _hidden_conditions(hide)
        where = ["c.pk = @pk", "c.type = 'alert'", "c.status = @status"]
        params = [{"name": "@pk", "value": self._tenant_id}, {"name": "@status", "value": status}]
        if severity is not None:
            where.append("c.severity = @severity")
            params.append({"name": "@severity", "value": severity})
        clauses = " AND ".join(where + hidden)
        sql = f"SELECT VALUE COUNT(1) FROM c WHERE {clauses}"  # noqa: S608 - constant fragments only
        rows = self._alerts.query_items(sql, parameters=params + hidden_params, partition_key=self._tenant_id)
        found: Any = next(iter(rows), 0)  # SELECT VALUE COUNT(1) yields one number
        return int(found)

    def suppressions(
        self, rule_id: str | None, hide: SensitivityPolicy | None, now: dt.datetime
    ) -> dict[str, Any]:
        """The active suppressions and those expired in the last 30 days, newest first: one
        single-partition query, at most MAX_LISTED_SUPPRESSIONS."""
        where = ["c.pk = @pk", "c.type = 'suppression'", "c.expires_at >= @cutoff"]
        params: list[dict[str, Any]] = [
            {"name": "@pk", "value": self._tenant_id},
            {"name": "@cutoff", "value": utc_iso(now - LISTED_AFTER_EXPIRY)},
            {"name": "@limit", "value": MAX_LISTED_SUPPRESSIONS + 1},
        ]
        if rule_id is not None:
            where.append("c.rule_id = @rule")
            params.append({"name": "@rule", "value": rule_id})
        hidden, hidden_params = _hidden_conditions(hide)
        clauses = " AND ".join(where + hidden)  # constant fragments only; values are parameters
        sql = f"SELECT TOP @limit * FROM c WHERE {clauses} ORDER BY c.created_at DESC"  # noqa: S608
        found = list(
            self._alerts.query_items(sql, parameters=params + hidden_params, partition_key=self._tenant_id)
        )
        found.sort(key=lambda d: (str(d.get("created_at")), str(d.get("id"))), reverse=True)  # ties by id
        items = [suppression_view(d, now) for d in found[:MAX_LISTED_SUPPRESSIONS]]
        return {"items": items, "truncated": len(found) > MAX_LISTED_SUPPRESSIONS}


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
        query = call.query
        if query.since and query.until and parse_utc(query.until) < parse_utc(query.since):
            raise bad_request("until is before since", field="until")
        return self._search.search(query, call.hide)

    @route(
        "GET",
        "alerts/summary",
        "alerts_summary",
        role=Role.READER,
        summary="Open alerts by severity, and alerts by status",
        query=NoQuery,
        body=None,
        response=AlertSummary,
        description=(
            "`open` counts the open alerts by severity (`total_open` is their sum); `by_status` counts the "
            "alerts of each status (open, acknowledged, resolved, closed), every severity. Without the "
            "AOC.Privacy role, alerts of hidden services and operations are not counted. Eight COUNT "
            "queries in the tenant's partition, whatever the number of alerts."
        ),
    )
    def alerts_summary(self, call: Call[NoQuery, None]) -> Reply:
        """A constant number of queries: eight single-partition COUNTs (AlertSearch.summary)."""
        return self._search.summary(call.hide)

    @route(
        "GET",
        "alerts/{id}",
        "get_alert",
        role=Role.READER,
        summary="One alert, with the active suppression of its rule and group",
        query=NoQuery,
        body=None,
        response=AlertDetail,
        path_params=(ALERT_ID,),
    )
    def get_alert(self, call: Call[NoQuery, None]) -> Reply:
        alert = self._visible(call.params["id"], call.hide)
        now = self._clock.now()
        identifier = suppression_id(self._tenant_id, str(alert["rule_id"]), str(alert.get("group_key") or ""))
        found = self._store.suppressions.get(self._tenant_id, identifier)
        active = found is not None and is_active(found, now)
        return {
            **public_alert(alert),
            "suppression": suppression_view(found, now) if found and active else None,
        }

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
        alert_id = call.params["id"]
        try:
            return self._update(alert_id, call.body, call.principal, call.idempotency_key, call.hide)
        except InvalidTransitionError as exc:
            raise bad_request(str(exc), field="status") from None
        except AlertNotFoundError:
            raise not_found("alert", alert_id) from None
        except ConcurrentUpdateError:
            raise conflict(f"alert {alert_id} kept changing meanwhile; read it again and retry") from None

    @route(
        "POST",
        "alerts/bulk",
        "bulk_update_alerts",
        operation_id="bulkUpdateAlerts",
        role=Role.ANALYST,
        summary="Change the status or classification of up to 100 alerts, or comment on them",
        query=NoQuery,
        body=BulkAlertUpdate,
        response=BulkAlertResults,
        description=(
            "Each alert is changed, audited and made idempotent by the Idempotency-Key as PATCH "
            "/alerts/{id} would; each answers on its own: 200 with the alert, 404 (absent or hidden), "
            "409 (changed meanwhile: retry) or 422 (a status change its status does not allow). An id "
            "that is not an alert id, or given twice, makes the whole request a 400."
        ),
    )
    def bulk_update_alerts(self, call: Call[NoQuery, BulkAlertUpdate]) -> Reply:
        body = call.body
        update = AlertUpdate(status=body.status, classification=body.classification, comment=body.comment)
        results: list[dict[str, Any]] = []
        for alert_id in body.ids:
            try:
                alert = self._update(alert_id, update, call.principal, call.idempotency_key, call.hide)
            except ApiProblem as problem:  # not found, or hidden from this caller
                results.append(_failed(alert_id, problem.status, problem.title, problem.detail))
            except AlertNotFoundError:
                results.append(_failed(alert_id, 404, "Not Found", "no such alert"))
            except InvalidTransitionError as exc:
                results.append(_failed(alert_id, 422, "Unprocessable Content", str(exc)))
            except ConcurrentUpdateError:
                results.append(_failed(alert_id, 409, "Conflict", "the alert kept changing meanwhile; retry"))
            else:
                results.append({"id": alert_id, "status": 200, "alert": alert})
        changed = sum(1 for r in results if r["status"] == 200)
        logger.info("bulk alert update by %s: %d of %d changed", call.principal.name, changed, len(results))
        return {"results": results}

    def _update(
        self,
        alert_id: str,
        update: AlertUpdate,
        principal: Principal,
        key: str | None,
        hide: SensitivityPolicy | None,
    ) -> dict[str, Any]:
        """One analyst's update of one alert, audited; the public alert. With an Idempotency-Key, a
        retry answers with the alert as it is and changes nothing. Raises the lifecycle's errors."""
        before = self._visible(alert_id, hide)
        if key is not None and already_applied(before, update_id(alert_id, principal.name, key)):
            return public_alert(before)
        stored = update_alert(
            self._store, self._clock, self._tenant_id, alert_id, update, principal.name, idempotency_key=key
        )
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

    # -- suppress similar -------------------------------------------------------------------------

    @route(
        "POST",
        "alerts/{id}/suppress",
        "suppress_alert",
        operation_id="suppressAlert",
        role=Role.ADMIN,
        summary="Suppress similar: an exception for this alert's rule and group until a time",
        query=NoQuery,
        body=SuppressRequest,
        response=SuppressionView,
        path_params=(ALERT_ID,),
        status=201,
        if_match=True,
        description=(
            "While it is active, the rule and group's matches are recorded and counted on it but open or "
            "grow no alert and notify no one. One per rule and group: suppressing again replaces it (an "
            "active one keeps its count of matches); with If-Match only if its ETag is still that one. "
            "The ETag header and `etag` field give its ETag. Recorded in the audit log."
        ),
    )
    def suppress_alert(self, call: Call[NoQuery, SuppressRequest]) -> Reply:
        alert = self._visible(call.params["id"], call.hide)
        if_match = _if_match(call)
        now = self._clock.now()
        expires = parse_utc(call.body.expires_at)
        if expires <= now:
            raise bad_request("expires_at must be in the future", field="expires_at")
        if expires > now + dt.timedelta(days=MAX_SUPPRESSION_DAYS):
            raise bad_request(f"expires_at is at most {MAX_SUPPRESSION_DAYS} days ahead", field="expires_at")
        suppressions = self._store.suppressions
        identifier = suppression_id(self._tenant_id, str(alert["rule_id"]), str(alert.get("group_key") or ""))
        for _ in range(MAX_UPDATE_ATTEMPTS):
            previous = suppressions.get(self._tenant_id, identifier)
            if if_match is not None and (
                previous is None or not etag_matches(if_match, previous.get("_etag"))
            ):
                raise precondition_failed("suppression")
            document = new_suppression(alert, call.body.reason, expires, call.principal.name, now, previous)
            try:
                stored = suppressions.put(document, previous.get("_etag") if previous else None)
                break
            except (CosmosResourceExistsError, CosmosAccessConditionFailedError):
                if if_match is not None:
                    raise precondition_failed("suppression") from None
        else:
            raise conflict("the suppression kept changing meanwhile; retry")
        self._audit.record(
            call.principal,
            "suppression.create",
            "suppression",
            identifier,
            _audited(previous) if previous is not None else None,
            _audited(stored),
            request_id=call.idempotency_key,
        )
        logger.info("suppression %s of %s set by %s", identifier, alert["rule_id"], call.principal.name)
        response = json_response(suppression_view(stored, now), status=201)
        if stored.get("_etag"):
            response.headers["ETag"] = str(stored["_etag"])
        return response

    @route(
        "GET",
        "suppressions",
        "list_suppressions",
        operation_id="listSuppressions",
        role=Role.READER,
        summary="The suppressions: active ones and those expired in the last 30 days, newest first",
        query=SuppressionQuery,
        body=None,
        response=SuppressionList,
    )
    def list_suppressions(self, call: Call[SuppressionQuery, None]) -> Reply:
        return self._search.suppressions(call.query.rule, call.hide, self._clock.now())

    @route(
        "DELETE",
        "suppressions/{id}",
        "delete_suppression",
        operation_id="deleteSuppression",
        role=Role.ADMIN,
        summary="Remove a suppression: its rule and group alert again",
        query=NoQuery,
        body=EmptyBody,
        response=None,
        path_params=(SUPPRESSION_ID,),
        status=204,
        max_body_bytes=DELETE_BODY_BYTES,
        if_match=True,
        description="204 with no body; with If-Match only if its ETag is still that one. Takes no body, or "
        "{}. Recorded in the audit log, with its reason.",
    )
    def delete_suppression(self, call: Call[NoQuery, EmptyBody]) -> Reply:
        identifier = call.params["id"]
        if_match = _if_match(call)
        suppressions = self._store.suppressions
        for _ in range(MAX_UPDATE_ATTEMPTS):
            current = suppressions.get(self._tenant_id, identifier)
            if current is None or (call.hide is not None and call.hide.hides(current.get("sample") or {})):
                raise not_found("suppression", identifier)
            if if_match is not None and not etag_matches(if_match, current.get("_etag")):
                raise precondition_failed("suppression")
            try:
                suppressions.delete(self._tenant_id, identifier, str(current.get("_etag")))
                break
            except PreconditionFailedError:
                if if_match is not None:
                    raise precondition_failed("suppression") from None
            except CosmosResourceNotFoundError:
                raise not_found("suppression", identifier) from None
        else:
            raise conflict("the suppression kept changing meanwhile; retry")
        self._audit.record(
            call.principal,
            "suppression.delete",
            "suppression",
            identifier,
            _audited(current),
            None,
            request_id=call.idempotency_key,
        )
        logger.info(
            "suppression %s of %s removed by %s", identifier, current.get("rule_id"), call.principal.name
        )
        return ApiResponse(204, b"", headers={"Cache-Control": "no-store"})

    def _visible(self, alert_id: str, hide: SensitivityPolicy | None) -> dict[str, Any]:
        alert = self._store.get(self._tenant_id, alert_id)
        if alert is None or (hide is not None and hide.hides(alert.get("sample") or {})):
            raise not_found("alert", alert_id)
        return alert


def _failed(alert_id: str, status: int, title: str, detail: str) -> dict[str, Any]:
    return {"id": alert_id, "status": status, "title": title, "detail": detail}


def _audited(suppression: dict[str, Any]) -> dict[str, Any]:
    """What the audit log keeps of a suppression."""
    keep = ("rule_id", "group", "reason", "expires_at", "source_alert_id", "created_by", "matches")
    return {k: suppression.get(k) for k in keep}
