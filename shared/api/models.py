"""Response models of the events and alerts routes: they document the wire format in OpenAPI.

They are deliberately permissive (extra fields allowed, most fields nullable): a stored document may
carry fields a newer normalizer added, and the schema must never call a real response invalid.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ActorView(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: str | None = None
    id: str | None = None
    upn: str | None = None
    display: str | None = None
    ip: str | None = None


class EventView(BaseModel):
    """A normalized audit event (the raw record is served by /events/{id}/raw)."""

    model_config = ConfigDict(extra="allow")

    id: str
    tenant_id: str | None = None
    source: str | None = None
    service: str | None = None
    category: str | None = None
    operation: str | None = None
    operation_type: str | None = None
    result: str | None = None
    actor: ActorView | None = None
    targets: list[dict[str, Any]] = Field(default_factory=list)
    timestamp: str | None = Field(default=None, description="UTC ISO-8601 event time")
    ingested_at: str | None = None
    correlation_id: str | None = None
    summary: str | None = None
    tags: list[str] = Field(default_factory=list)
    comments: list[dict[str, Any]] = Field(default_factory=list)


class EventPage(BaseModel):
    items: list[EventView]
    continuation: str | None = Field(
        default=None, description="Pass back as `continuation` for the next page; null on the last page"
    )


class AlertView(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str
    rule_id: str | None = None
    title: str | None = None
    severity: str | None = None
    status: str | None = None
    classification: str | None = None
    occurrences: int | None = None
    first_seen: str | None = None
    last_seen: str | None = None


class AlertPage(BaseModel):
    items: list[AlertView]
    continuation: str | None = None


class AlertSummary(BaseModel):
    open: dict[str, int] = Field(description="open alerts by severity")
    total_open: int
    by_status: dict[str, int] = Field(
        description="alerts by status (open, acknowledged, resolved, closed), every severity"
    )
