"""What a dataset refresh asks of a query runner, and what a runner answers.

A runner (shared.datasets.log_analytics.LogAnalyticsRunner, shared.datasets.events_runner.EventsRunner)
runs one source's query over one window and renders every value to text: datetimes as UTC ISO-8601
with a `Z` suffix, numbers with `repr`, None stays None (an empty TSV cell). The refresh service
(shared.datasets.refresh) merges the rows with the published dataset, so a runner never writes storage.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Protocol

from pydantic import BaseModel, ConfigDict, Field, model_validator

if TYPE_CHECKING:
    from shared.datasets.sources import DatasetSource


def _require_aware(value: dt.datetime | None, name: str) -> None:
    if value is not None and value.tzinfo is None:
        raise ValueError(f"{name} must be timezone-aware (UTC)")


class QueryWindow(BaseModel):
    """The rows a run asks for: the source's time column in [start, end]; when `ingested_after` is set
    (an incremental run), only the rows whose IngestionTime is > ingested_after and <= end."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start: dt.datetime
    end: dt.datetime
    ingested_after: dt.datetime | None = None

    @model_validator(mode="after")
    def _ordered(self) -> QueryWindow:
        _require_aware(self.start, "start")
        _require_aware(self.end, "end")
        _require_aware(self.ingested_after, "ingested_after")
        if self.start > self.end:
            raise ValueError("start is after end")
        if self.ingested_after is not None and self.ingested_after > self.end:
            raise ValueError("ingested_after is after end")
        return self


class QueryOutcome(BaseModel):
    """What a run found. `rows` hold text values in `columns` order (the source's columns).

    `max_ingestion_time` is the newest IngestionTime seen: the next watermark. `complete` is False when
    some part of the window stayed partial after every split; the refresh service then publishes nothing
    and keeps the watermark where it was.
    """

    model_config = ConfigDict(extra="forbid")

    columns: list[str]
    rows: list[list[str | None]]
    max_ingestion_time: dt.datetime | None = None
    complete: bool
    splits: int = Field(default=0, ge=0)
    errors: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _rows_fit_columns(self) -> QueryOutcome:
        _require_aware(self.max_ingestion_time, "max_ingestion_time")
        width = len(self.columns)
        for index, row in enumerate(self.rows):
            if len(row) != width:
                raise ValueError(f"rows[{index}] has {len(row)} values for {width} columns")
        return self


class QueryRunner(Protocol):
    """Runs one source's query over one window. Raises on a failure it could not recover from (the
    refresh service reports the source failed); answers complete=False for a partial result."""

    def run(self, source: DatasetSource, window: QueryWindow) -> QueryOutcome: ...
