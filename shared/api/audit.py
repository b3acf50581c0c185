"""The API's audit trail: every write (PATCH, POST, PUT) as who, what, when, before and after.

Records live in the Cosmos `audit` container, partitioned by tenant, with a deterministic id per
request so a retried write records once. `GET /api/audit` (admins, `AuditApi`) pages through them
newest first.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from azure.cosmos import ContainerProxy
from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared.api.auth import Principal, Role
from shared.api.paging import ContinuationSigner, iso_time_or_none, query_hash
from shared.api.responses import ApiGuard
from shared.api.routing import Call, Reply, Resource, route
from shared.platform.clock import Clock, parse_utc, utc_iso


class AuditRecord(BaseModel):
    id: str
    pk: str
    at: str = Field(description="UTC ISO-8601 time of the change")
    actor: str = Field(description="who made the change (UPN, app or key name)")
    actor_id: str
    auth: str = Field(description="how the caller authenticated: entra, swa or key")
    action: str = Field(description="what was done, e.g. alert.update or event.tag")
    target_type: str
    target_id: str
    before: Any = None
    after: Any = None


class AuditQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: str | None = Field(default=None, max_length=80)
    actor: str | None = Field(default=None, max_length=200)
    target_id: str | None = Field(default=None, max_length=400)
    since: str | None = None
    page_size: int = Field(default=50, ge=1, le=200)
    continuation: str | None = Field(default=None, max_length=2000)

    _since = field_validator("since")(iso_time_or_none)


class AuditPage(BaseModel):
    items: list[AuditRecord]
    continuation: str | None = None


class AuditLog:
    def __init__(self, container: ContainerProxy, tenant_id: str, clock: Clock) -> None:
        self._container = container
        self._tenant_id = tenant_id
        self._clock = clock

    def record(
        self,
        principal: Principal,
        action: str,
        target_type: str,
        target_id: str,
        before: Any,
        after: Any,
        *,
        request_id: str | None = None,
    ) -> AuditRecord:
        """Store one change. With `request_id` (an idempotency key) a retried request records once."""
        at = utc_iso(self._clock.now())
        key = request_id or uuid.uuid4().hex
        digest = hashlib.sha256(f"{principal.subject}|{action}|{target_id}|{key}".encode()).hexdigest()[:32]
        record = AuditRecord(
            id=digest,
            pk=self._tenant_id,
            at=at,
            actor=principal.name,
            actor_id=principal.subject,
            auth=principal.auth,
            action=action,
            target_type=target_type,
            target_id=target_id,
            before=before,
            after=after,
        )
        self._container.upsert_item(record.model_dump())
        return record

    def search(self, query: AuditQuery, signer: ContinuationSigner) -> AuditPage:
        fingerprint = query_hash({**query.model_dump(exclude={"continuation", "page_size"}), "kind": "audit"})
        conditions = ["c.pk = @pk"]
        parameters: list[dict[str, Any]] = [{"name": "@pk", "value": self._tenant_id}]
        for name in ("action", "actor", "target_id"):
            value = getattr(query, name)
            if value is not None:
                conditions.append(f"c.{name} = @{name}")
                parameters.append({"name": f"@{name}", "value": value})
        if query.since is not None:
            conditions.append("c.at >= @since")
            parameters.append({"name": "@since", "value": utc_iso(parse_utc(query.since))})
        if query.continuation:
            position = signer.decode(query.continuation, fingerprint)
            conditions.append("(c.at < @after_at OR (c.at = @after_at AND c.id < @after_id))")
            parameters += [
                {"name": "@after_at", "value": position.get("at")},
                {"name": "@after_id", "value": position.get("id")},
            ]
        parameters.append({"name": "@limit", "value": query.page_size + 1})
        clauses = " AND ".join(conditions)  # constant fragments only; values are parameters
        sql = f"SELECT TOP @limit * FROM c WHERE {clauses} ORDER BY c.at DESC, c.id DESC"  # noqa: S608
        rows = list(
            self._container.query_items(
                sql, parameters=parameters, partition_key=self._tenant_id, max_item_count=query.page_size + 1
            )
        )
        items = [
            AuditRecord.model_validate({k: v for k, v in r.items() if not k.startswith("_")}) for r in rows
        ]
        continuation = None
        if len(items) > query.page_size:
            items = items[: query.page_size]
            continuation = signer.encode(fingerprint, {"at": items[-1].at, "id": items[-1].id})
        return AuditPage(items=items, continuation=continuation)


class AuditApi(Resource):
    def __init__(self, guard: ApiGuard, log: AuditLog, signer: ContinuationSigner) -> None:
        self.guard = guard
        self._log = log
        self._signer = signer

    @route(
        "GET",
        "audit",
        "list_audit",
        role=Role.ADMIN,
        summary="Who changed what through the API",
        tag="operations",
        query=AuditQuery,
        body=None,
        response=AuditPage,
    )
    def list_audit(self, call: Call[AuditQuery, None]) -> Reply:
        return self._log.search(call.query, self._signer)
