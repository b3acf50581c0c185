"""GET /api/events/export's body: JSON lines or CSV, with cells a spreadsheet would run defused."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Mapping
from typing import Any, Literal

from shared.api.responses import ApiResponse

CSV_COLUMNS = (
    "id",
    "timestamp",
    "source",
    "service",
    "operation",
    "operation_type",
    "result",
    "actor_upn",
    "actor_display",
    "actor_ip",
    "targets",
    "category",
    "correlation_id",
    "summary",
    "tags",
)
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
JSONL_MEDIA_TYPE = "application/x-ndjson"
CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
# The OpenAPI description of the two bodies.
EXPORT_CONTENT = {
    JSONL_MEDIA_TYPE: {"type": "string", "description": "one event (JSON object) per line"},
    "text/csv": {"type": "string", "description": "a header row, then one event per row"},
}

ExportFormat = Literal["jsonl", "csv"]


def csv_cell(value: Any) -> str:
    """A cell as text, with a leading quote where a spreadsheet would run it as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def csv_row(event: Mapping[str, Any]) -> list[str]:
    actor = event.get("actor") or {}
    targets = [t.get("display") or t.get("id") for t in event.get("targets") or [] if isinstance(t, dict)]
    values = {
        **{name: event.get(name) for name in CSV_COLUMNS},
        "actor_upn": actor.get("upn"),
        "actor_display": actor.get("display"),
        "actor_ip": actor.get("ip"),
        "targets": "; ".join(str(t) for t in targets if t),
        "tags": ";".join(str(t) for t in event.get("tags") or []),
    }
    return [csv_cell(values[name]) for name in CSV_COLUMNS]


def export_filename(now: dt.datetime, extension: str) -> str:
    return f"events-{now.astimezone(dt.UTC):%Y%m%dT%H%M%SZ}.{extension}"


class ExportWriter:
    """Collects the exported events in one format; `response` is the download."""

    def __init__(self, export_format: ExportFormat) -> None:
        self._format = export_format
        self._buffer = io.StringIO()
        self._csv = csv.writer(self._buffer) if export_format == "csv" else None
        if self._csv is not None:
            self._csv.writerow(CSV_COLUMNS)

    def add(self, event: Mapping[str, Any]) -> None:
        if self._csv is not None:
            self._csv.writerow(csv_row(event))
        else:
            self._buffer.write(json.dumps(event, ensure_ascii=False) + "\n")

    def response(self, now: dt.datetime, count: int, truncated: bool, cap: int) -> ApiResponse:
        media_type = CSV_MEDIA_TYPE if self._format == "csv" else JSONL_MEDIA_TYPE
        return ApiResponse(
            200,
            self._buffer.getvalue(),
            media_type,
            {
                "Cache-Control": "no-store",
                "Content-Disposition": f'attachment; filename="{export_filename(now, self._format)}"',
                "X-AOC-Export-Count": str(count),
                "X-AOC-Export-Truncated": "true" if truncated else "false",
                "X-AOC-Export-Cap": str(cap),
            },
        )
