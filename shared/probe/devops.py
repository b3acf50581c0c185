"""Azure DevOps "Runs - Run Pipeline", run once per trigger.

A Table `TriggerLog` row keyed by trigger id is claimed before the call and records the run id and URL
after it, so a redelivered trigger message never queues a second run.

The POST is sent again only when Azure DevOps certainly did not act on it: no connection was made, or it
answered 429. A timeout, a dropped connection or a 5xx leaves the outcome unknown (503 too: Azure DevOps
throttles with 429, and a gateway's 503 can follow a request the service already took). Then the claim is
kept and marked `outcome: unknown`, and a copy of the trigger is queued to arrive when the claim goes
stale after CLAIM_TIMEOUT; so is a claim left by a worker that died mid-call. A late duplicate backup is
safer than none, but one per CLAIM_TIMEOUT at most, and MAX_RUN_ATTEMPTS in all before poison.
"""

from __future__ import annotations

import base64
import datetime as dt
import logging
import math
import random as _random
import time
from collections.abc import Callable
from typing import Any, Literal

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode
from azure.storage.queue import QueueClient
from pydantic import BaseModel
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, stop_any

from shared.m365.auth import TokenProvider, build_token_provider
from shared.m365.http_client import DEFAULT_MAX_ATTEMPTS, ApiClient, ApiError, StopIf
from shared.platform.clock import Clock, parse_utc, utc_iso
from shared.platform.redact import redact
from shared.platform.settings import AppSettings
from shared.platform.table_claim import ClaimBusyError, RowClaimer
from shared.probe.scopes import DriftConfig, PipelineTarget
from shared.probe.state import Trigger

logger = logging.getLogger(__name__)

API_VERSION = "7.1"
CLAIM_TIMEOUT = dt.timedelta(minutes=10)
DEFER_MARGIN = dt.timedelta(seconds=30)  # the deferred copy arrives this long after the claim goes stale
MAX_RUN_ATTEMPTS = 3  # POSTs with an unknown outcome per trigger before the message goes to poison
REFUSED_ATTEMPTS = 4  # POSTs per delivery while Azure DevOps refuses them (no connection, 429)
MAX_REFUSED_WAIT = 60.0  # a longer Retry-After is not waited for: the queue brings the message back
BACKOFF_BASE, BACKOFF_CAP = 1.0, 30.0


class DevOpsAuthError(RuntimeError):
    """Authentication or permission failure: retrying will not help, the message goes to poison."""


class RunOutcomeUnknownError(RuntimeError):
    """Azure DevOps may have queued the run and the attempts are used up: check the pipeline, then replay."""


class TriggerResult(BaseModel):
    """What one delivery of a trigger did."""

    trigger_id: str
    state: Literal["queued", "already_queued", "in_flight", "deferred"]
    run_id: int | None = None
    url: str | None = None
    retry_at: str | None = None


def refused(error: BaseException) -> bool:
    """Whether a failed Run Pipeline POST certainly queued no run."""
    if isinstance(error, DevOpsAuthError):
        return True
    if isinstance(error, ApiError):
        if error.status is None:
            return error.never_sent  # no connection was made (httpx.ConnectError, ConnectTimeout...)
        return 400 <= error.status < 500
    return False


def _refused_for_now(error: BaseException) -> bool:
    """A refusal that may pass: no connection, or throttled."""
    return isinstance(error, ApiError) and (
        error.status == 429 or (error.status is None and error.never_sent)
    )


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

    @property
    def api(self) -> ApiClient:
        return self._api

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


def devops_token_provider(settings: AppSettings) -> TokenProvider:
    """DEVOPS_AUTH_MODE=token: the app's managed identity (AZURE_CLIENT_ID), whatever M365_AUTH_MODE is.

    Without AZURE_CLIENT_ID (a developer machine) DefaultAzureCredential signs in as you (`az login`).
    An app registration (M365_AUTH_MODE=msal) usually lives in the Microsoft 365 tenant, not in the
    Azure DevOps organization's, so its tokens are never used here.
    """
    return build_token_provider("identity", managed_identity_client_id=settings.managed_identity_client_id)


def build_devops_client(
    settings: AppSettings, *, max_attempts: int | None = None, token_provider: TokenProvider | None = None
) -> DevOpsClient:
    """The Azure DevOps client DEVOPS_AUTH_MODE asks for: a PAT, or the managed identity's token.

    `max_attempts` is the ApiClient's (1 for the Run Pipeline POST); `token_provider` overrides the
    identity (tests).
    """
    timeout = (settings.http_connect_timeout_seconds, settings.http_read_timeout_seconds)
    attempts = DEFAULT_MAX_ATTEMPTS if max_attempts is None else max_attempts
    if settings.devops_auth_mode == "pat":
        if not settings.devops_pat:
            why = (
                "is an unresolved Key Vault reference"
                if "DEVOPS_PAT" in settings.unresolved_key_vault_references
                else "is not set"
            )
            raise ValueError(f"DEVOPS_AUTH_MODE is pat but DEVOPS_PAT {why}")
        api = ApiClient(None, timeout=timeout, max_attempts=attempts)
        return DevOpsClient(api, settings.devops_base_url, pat=settings.devops_pat.get_secret_value())
    api = ApiClient(token_provider or devops_token_provider(settings), timeout=timeout, max_attempts=attempts)
    return DevOpsClient(api, settings.devops_base_url, token_scope=settings.devops_token_scope)


def template_parameters(target: PipelineTarget, trigger: Trigger) -> dict[str, str]:
    """The scope's fixed parameters, plus the trigger as JSON when the scope names a parameter for it.

    Azure DevOps rejects template parameters a pipeline does not declare, so the summary is opt-in.
    """
    parameters = dict(target.template_parameters)
    if target.summary_parameter:
        parameters[target.summary_parameter] = trigger.model_dump_json(exclude={"checked_at"})
    return parameters


class PipelineTriggerService:
    """Queues one pipeline run per trigger; `devops` must send each POST once (ApiClient max_attempts=1).

    Busy claim: another delivery's call in flight drops this copy; an unknown outcome, or this message's
    own earlier claim (its worker died), defers it until the claim goes stale, so the backup is not lost.
    """

    def __init__(
        self,
        devops: DevOpsClient,
        drift: DriftConfig,
        log: TableClient,
        clock: Clock,
        retry_queue: QueueClient,
        *,
        sleep: Callable[[float], None] = time.sleep,
        random: Callable[[], float] = _random.random,
    ) -> None:
        if devops.api.max_attempts != 1:
            raise ValueError(
                "the Run Pipeline POST must not be retried blindly: use ApiClient(max_attempts=1)"
            )
        self._devops = devops
        self._drift = drift
        self._log = log
        self._claimer = RowClaimer(log, "starting", {"queued"}, CLAIM_TIMEOUT)
        self._clock = clock
        self._retry_queue = retry_queue
        self._sleep = sleep
        self._random = random

    def handle(self, trigger: Trigger, *, message_id: str | None) -> TriggerResult:
        scope = next((s for s in self._drift.scopes if s.name == trigger.scope), None)
        if scope is None or scope.pipeline is None:
            raise ValueError(f"scope {trigger.scope!r} has no pipeline configured in drift.yaml")
        owner = {"message_id": message_id} if message_id else {}
        try:
            claim = self._claimer.claim(
                trigger.scope,
                trigger.trigger_id,
                self._clock.now(),
                new_fields={"attempts": 1, **owner},
                takeover_fields=lambda existing: {
                    "retried": True,
                    "attempts": int(existing.get("attempts") or 1) + 1,
                    **owner,
                },
                label=f"trigger {trigger.trigger_id}",
            )
        except ClaimBusyError:
            return self._busy(trigger, message_id)
        if claim.state == "done":
            return self._already_queued(trigger, claim.existing)
        attempt = int(claim.existing.get("attempts") or 1) + 1 if claim.existing else 1
        try:
            run = self._post(scope.pipeline, template_parameters(scope.pipeline, trigger))
            run_id = int(run["id"])
        except Exception as error:
            if refused(error):
                self._log.delete_entity(trigger.scope, trigger.trigger_id)  # release the claim for the retry
                raise
            return self._unknown(trigger, attempt, error)
        web = ((run.get("_links") or {}).get("web") or {}).get("href") or run.get("url")
        self._log.upsert_entity(
            {
                "PartitionKey": trigger.scope,
                "RowKey": trigger.trigger_id,
                "status": "queued",
                "claimed_at": utc_iso(self._clock.now()),
                "run_id": run_id,
                "run_url": web,
                "change_count": trigger.summary.count,
            }
        )
        logger.info("trigger %s queued pipeline run %s (%s)", trigger.trigger_id, run_id, web)
        return TriggerResult(trigger_id=trigger.trigger_id, state="queued", run_id=run_id, url=web)

    # -- the POST -------------------------------------------------------------------------------------

    def _post(self, target: PipelineTarget, parameters: dict[str, str]) -> dict[str, Any]:
        retrying = Retrying(
            retry=retry_if_exception(_refused_for_now),
            stop=stop_any(
                stop_after_attempt(REFUSED_ATTEMPTS),
                StopIf(lambda retry_state: retry_state.upcoming_sleep > MAX_REFUSED_WAIT),
            ),
            wait=self._wait,
            sleep=self._sleep,
            before_sleep=lambda retry_state: logger.warning(
                "Azure DevOps did not take the run request (%s); retry %d/%d in %.1fs",
                retry_state.outcome.exception() if retry_state.outcome else "?",
                retry_state.attempt_number,
                REFUSED_ATTEMPTS - 1,
                retry_state.upcoming_sleep,
            ),
            reraise=True,
        )
        return retrying(self._devops.run_pipeline, target, parameters)

    def _wait(self, retry_state: RetryCallState) -> float:
        error = retry_state.outcome.exception() if retry_state.outcome else None
        if isinstance(error, ApiError) and error.retry_after is not None:
            return error.retry_after
        return self._random() * min(BACKOFF_CAP, BACKOFF_BASE * 2.0 ** (retry_state.attempt_number - 1))

    # -- outcomes -------------------------------------------------------------------------------------

    def _already_queued(self, trigger: Trigger, row: Any) -> TriggerResult:
        run_id = int(row["run_id"])
        logger.info("trigger %s already queued run %s; not queuing another", trigger.trigger_id, run_id)
        return TriggerResult(
            trigger_id=trigger.trigger_id, state="already_queued", run_id=run_id, url=row.get("run_url")
        )

    def _unknown(self, trigger: Trigger, attempt: int, error: Exception) -> TriggerResult:
        """Keep the claim held (status "starting") and mark it, so no copy POSTs before it goes stale."""
        now = self._clock.now()
        self._log.update_entity(
            {
                "PartitionKey": trigger.scope,
                "RowKey": trigger.trigger_id,
                "claimed_at": utc_iso(now),
                "outcome": "unknown",
                "error": redact(f"{type(error).__name__}: {error}")[:500],
            },
            mode=UpdateMode.MERGE,
        )
        if attempt >= MAX_RUN_ATTEMPTS:
            raise RunOutcomeUnknownError(
                f"trigger {trigger.trigger_id}: Azure DevOps may or may not have queued the run after "
                f"{attempt} attempts (last: {redact(str(error))[:300]}). Check the pipeline's runs before "
                "replaying the message."
            ) from error
        logger.warning(
            "trigger %s: the run request's outcome is unknown (%s); keeping the claim",
            trigger.trigger_id, redact(str(error))[:300],
        )  # fmt: skip
        return self._defer(trigger, now)

    def _busy(self, trigger: Trigger, message_id: str | None) -> TriggerResult:
        try:
            held = self._log.get_entity(trigger.scope, trigger.trigger_id)
        except ResourceNotFoundError as error:  # released meanwhile: the queue brings this copy back
            raise ClaimBusyError(
                f"trigger {trigger.trigger_id} was released meanwhile; retry later"
            ) from error
        if held.get("status") == "queued":
            return self._already_queued(trigger, held)
        unknown = held.get("outcome") == "unknown"
        if not unknown and held.get("message_id") != message_id:
            logger.info(
                "trigger %s: another delivery is calling Azure DevOps for it; dropping this copy",
                trigger.trigger_id,
            )
            return TriggerResult(trigger_id=trigger.trigger_id, state="in_flight")
        if unknown and int(held.get("attempts") or 1) >= MAX_RUN_ATTEMPTS:
            raise RunOutcomeUnknownError(
                f"trigger {trigger.trigger_id}: Azure DevOps may or may not have queued the run "
                f"({held.get('error', 'no details')}). Check the pipeline's runs before replaying the "
                "message."
            )
        return self._defer(trigger, parse_utc(held["claimed_at"]))

    def _defer(self, trigger: Trigger, held_since: dt.datetime) -> TriggerResult:
        """Queue a copy that arrives once the claim held since `held_since` is stale."""
        now = self._clock.now()
        retry_at = min(held_since, now) + CLAIM_TIMEOUT + DEFER_MARGIN
        delay = max(1, math.ceil((retry_at - now).total_seconds()))
        self._retry_queue.send_message(trigger.model_dump_json(), visibility_timeout=delay)
        logger.warning("trigger %s: deferred; a copy retries it at %s", trigger.trigger_id, utc_iso(retry_at))
        return TriggerResult(trigger_id=trigger.trigger_id, state="deferred", retry_at=utc_iso(retry_at))
