"""What the Table `TriggerLog` says of one backup trigger: the Azure DevOps run it queued, if any.

PipelineTriggerService (shared.probe.devops) writes the row (PartitionKey = scope, RowKey = trigger id):
`status` "starting" while its Run Pipeline call is in flight (with `outcome` "unknown" when the answer
was lost), "queued" with `run_id` and `run_url` once Azure DevOps took it. /api/status reads it for each
scope's last trigger, so the console links to the run.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Literal, Protocol

from azure.core.exceptions import ResourceNotFoundError
from pydantic import BaseModel, Field

from shared.platform.ids import is_scope_name, is_trigger_id

logger = logging.getLogger(__name__)

RunState = Literal["queued", "starting", "unknown"]


class TriggerRun(BaseModel):
    run_id: int | None = Field(default=None, description="the Azure DevOps run id, once queued")
    run_url: str | None = Field(default=None, description="the run's web page (https), once queued")
    state: RunState = Field(
        description="queued: Azure DevOps took it; starting: the call is in flight; unknown: its answer "
        "was lost (retried once the claim goes stale)"
    )


class EntityReader(Protocol):
    """The read of azure.data.tables.TableClient this uses."""

    def get_entity(self, partition_key: str, row_key: str) -> Mapping[str, Any]: ...


def _web_link(value: object) -> str | None:
    """A link the console may render: an absolute http(s) URL, nothing else (no javascript:, no data:)."""
    if isinstance(value, str) and value.lower().startswith(("https://", "http://")) and len(value) <= 2000:
        return value
    return None


def trigger_run(row: Mapping[str, Any]) -> TriggerRun:
    run_id = row.get("run_id")
    if row.get("status") == "queued":
        state: RunState = "queued"
    else:
        state = "unknown" if row.get("outcome") == "unknown" else "starting"
    return TriggerRun(
        run_id=int(run_id) if isinstance(run_id, int | str) and str(run_id).isdigit() else None,
        run_url=_web_link(row.get("run_url")),
        state=state,
    )


class TriggerRuns:
    def __init__(self, table: EntityReader) -> None:
        self._table = table

    def run(self, scope: str, trigger_id: str) -> TriggerRun | None:
        """The run of a trigger; None when no row was written (no pipeline, or not handled yet) or it
        could not be read (logged: the status must not fail for it)."""
        if not is_scope_name(scope) or not is_trigger_id(trigger_id, scope):
            return None
        try:
            row = self._table.get_entity(scope, trigger_id)
        except ResourceNotFoundError:
            return None
        except Exception as exc:
            logger.warning("could not read TriggerLog row %s: %s", trigger_id, type(exc).__name__)
            return None
        return trigger_run(row)
