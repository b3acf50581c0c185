"""Queue message models. Every message on every queue is one of these, as JSON."""

from __future__ import annotations

from pydantic import BaseModel, Field


class IngestMessage(BaseModel):
    """A claim check: one archived raw page, ready to normalize."""

    source: str
    blob: str
    count: int = Field(ge=0)
    run_id: str
    content_type: str | None = None
    tenant_id: str | None = None  # the page's tenant; a worker never stamps its own on another's page


class EventRef(BaseModel):
    id: str
    pk: str


class AlertWorkMessage(BaseModel):
    """Stored events for the alert worker to evaluate, by reference."""

    source: str
    blob: str
    run_id: str
    events: list[EventRef]


MAX_REFS_PER_ALERT_MESSAGE = 250
