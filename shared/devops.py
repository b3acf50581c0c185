"""Azure DevOps "Runs - Run Pipeline", run once per trigger.

A Table `TriggerLog` row keyed by trigger id is claimed before the call and records the run id and URL
after it, so a redelivered trigger message never queues a second run. A claim left by a worker that died
mid-call is retried only after CLAIM_TIMEOUT: the run may have been queued, and a late duplicate backup
is safer than none.
"""

from __future__ import annotations

import base64
import datetime as dt
import logging
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError
from azure.data.tables import TableClient, UpdateMode
from pydantic import BaseModel

from shared.clock import Clock, parse_utc, utc_iso
from shared.http_client import ApiClient, ApiError
from shared.probe.scopes import DriftConfig, PipelineTarget
from shared.probe.state import Trigger
from shared.redact import redact

logger = logging.getLogger(__name__)

API_VERSION = "7.1"
CLAIM_TIMEOUT = dt.timedelta(minutes=10)


class DevOpsAuthError(RuntimeError):
    """Authentication or permission failure: retrying will not help, the message goes to poison."""


class PipelineRun(BaseModel):
    trigger_id: str
    run_id: int
    url: str | None
    duplicate: bool = False


class DevOpsClient:
    def __init__(
        self, api: ApiClient, base_url: str, *, pat: str | None = None, token_scope: str | None = None
    ) -> None:
        if not pat and not token_scope:
            raise ValueError("Azure DevOps needs a PAT (DEVOPS_PAT) or an Entra token scope")
        self._api = api
        self._base = base_url.rstrip("/")
        self._pat = pat
        self._scope = None if pat else token_scope

    def _headers(self) -> dict[str, str]:
        if self._pat:
            encoded = base64.b64encode(f":{self._pat}".encode()).decode("ascii")
            return {"Authorization": f"Basic {encoded}"}
        return {}

    def run_pipeline(self, target: PipelineTarget, template_parameters: dict[str, str]) -> dict[str, Any]:
        url = f"{self._base}/{target.organization}/{target.project}/_apis/pipelines/{target.pipeline_id}/runs"
        body: dict[str, Any] = {"resources": {"repositories": {"self": {"refName": target.ref_name}}}}
        if template_parameters:
            body["templateParameters"] = template_parameters
        where = f"{target.organization}/{target.project} pipeline {target.pipeline_id}"
        try:
            response = self._api.request(
                "POST",
                url,
                scope=self._scope,
                params={"api-version": API_VERSION},
                headers=self._headers(),
                json=body,
            )
        except ApiError as error:
            if error.status in (401, 403):
                raise DevOpsAuthError(
                    f"Azure DevOps refused {where} (HTTP {error.status}): {redact(error.message)[:300]}. "
                    "Check the PAT (Build: Read & execute) or that the identity is a member of the "
                    "organization."
                ) from error
            raise
        if response.status_code == 203 or "text/html" in response.headers.get("Content-Type", ""):
            service_error = response.headers.get("X-TFS-ServiceError", "")
            raise DevOpsAuthError(
                f"Azure DevOps answered {where} with a sign-in page (HTTP {response.status_code}): the "
                f"credential was not accepted. {redact(service_error)[:300]}"
            )
        return dict(response.json())


def template_parameters(target: PipelineTarget, trigger: Trigger) -> dict[str, str]:
    """The scope's fixed parameters, plus the trigger as JSON when the scope names a parameter for it.

    Azure DevOps rejects template parameters a pipeline does not declare, so the summary is opt-in.
    """
    parameters = dict(target.template_parameters)
    if target.summary_parameter:
        parameters[target.summary_parameter] = trigger.model_dump_json(exclude={"checked_at"})
    return parameters


class PipelineTriggerService:
    def __init__(self, devops: DevOpsClient, drift: DriftConfig, log: TableClient, clock: Clock) -> None:
        self._devops = devops
        self._drift = drift
        self._log = log
        self._clock = clock

    def _claim(self, trigger: Trigger) -> PipelineRun | None:
        """Claim the trigger; returns the earlier run when one was already queued."""
        now = self._clock.now()
        row = {
            "PartitionKey": trigger.scope,
            "RowKey": trigger.trigger_id,
            "status": "starting",
            "claimed_at": utc_iso(now),
        }
        try:
            self._log.create_entity(row)
            return None
        except ResourceExistsError:
            existing = self._log.get_entity(trigger.scope, trigger.trigger_id)
        if existing.get("status") == "queued":
            return PipelineRun(
                trigger_id=trigger.trigger_id,
                run_id=int(existing["run_id"]),
                url=existing.get("run_url"),
                duplicate=True,
            )
        if now - parse_utc(existing["claimed_at"]) < CLAIM_TIMEOUT:
            raise RuntimeError(
                f"trigger {trigger.trigger_id} is being handled by another worker; retry later"
            )
        try:
            self._log.update_entity(
                {**row, "retried": True},
                mode=UpdateMode.REPLACE,
                etag=existing.metadata["etag"],
                match_condition=MatchConditions.IfNotModified,
            )
        except ResourceModifiedError as exc:
            raise RuntimeError(f"trigger {trigger.trigger_id} was claimed concurrently; retry later") from exc
        return None

    def handle(self, trigger: Trigger) -> PipelineRun:
        scope = next((s for s in self._drift.scopes if s.name == trigger.scope), None)
        if scope is None or scope.pipeline is None:
            raise ValueError(f"scope {trigger.scope!r} has no pipeline configured in drift.yaml")
        earlier = self._claim(trigger)
        if earlier is not None:
            logger.info(
                "trigger %s already queued run %s; not queuing another", trigger.trigger_id, earlier.run_id
            )
            return earlier
        try:
            run = self._devops.run_pipeline(scope.pipeline, template_parameters(scope.pipeline, trigger))
        except Exception:
            self._log.delete_entity(trigger.scope, trigger.trigger_id)  # release the claim for the retry
            raise
        web = ((run.get("_links") or {}).get("web") or {}).get("href") or run.get("url")
        self._log.upsert_entity(
            {
                "PartitionKey": trigger.scope,
                "RowKey": trigger.trigger_id,
                "status": "queued",
                "claimed_at": utc_iso(self._clock.now()),
                "run_id": int(run["id"]),
                "run_url": web,
                "change_count": trigger.summary.count,
            }
        )
        logger.info("trigger %s queued pipeline run %s (%s)", trigger.trigger_id, run["id"], web)
        return PipelineRun(trigger_id=trigger.trigger_id, run_id=int(run["id"]), url=web)
