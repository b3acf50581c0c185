import logging
import uuid

import azure.functions as func

from shared.app.runtime import app_clock, governance_pipeline, tenant_id
from shared.governance.messages import DiscoveryRequest, EvaluateObject, UpdateNotes, activity_id
from shared.platform.clock import utc_iso
from shared.platform.resources import Queues

bp = func.Blueprint()
logger = logging.getLogger(__name__)


# GOVERNANCE_DISCOVERY_SCHEDULE, by default the seed's every 30 minutes. The directory audit log queues
# evaluations in between (shared.app.governance_events), and the Admin route queues a full seed.
@bp.function_name("discover_service_principals")
@bp.timer_trigger(
    arg_name="timer", schedule="%GOVERNANCE_DISCOVERY_SCHEDULE%", run_on_startup=False, use_monitor=True
)
@bp.queue_output(
    arg_name="requests", queue_name=Queues.GOVERNANCE_DISCOVERY, connection="AzureWebJobsStorage"
)
def discover_service_principals(timer: func.TimerRequest, requests: func.Out[str]) -> None:
    tenant = tenant_id()
    now = app_clock().now()
    request = DiscoveryRequest(
        tenant_id=tenant,
        activity_id=activity_id("discovery", tenant, f"timer:{utc_iso(now)}:{uuid.uuid4().hex}"),
        trigger="timer",
        requested_at=utc_iso(now),
    )
    requests.set(request.model_dump_json())
    logger.info("governance discovery %s of %s queued (timer)", request.activity_id, tenant)


@bp.function_name("run_governance_discovery")
@bp.queue_trigger(arg_name="msg", queue_name=Queues.GOVERNANCE_DISCOVERY, connection="AzureWebJobsStorage")
def run_governance_discovery(msg: func.QueueMessage) -> None:
    request = DiscoveryRequest.model_validate_json(msg.get_body())  # decoded before any service is built
    governance_pipeline().discover(request)


@bp.function_name("evaluate_service_principal")
@bp.queue_trigger(arg_name="msg", queue_name=Queues.GOVERNANCE_EVALUATE, connection="AzureWebJobsStorage")
@bp.queue_output(arg_name="notify", queue_name=Queues.NOTIFY, connection="AzureWebJobsStorage")
def evaluate_service_principal(msg: func.QueueMessage, notify: func.Out[list[str]]) -> None:
    message = EvaluateObject.model_validate_json(msg.get_body())
    _, notifications = governance_pipeline().evaluate(message)
    notify.set(notifications)


@bp.function_name("update_service_principal_notes")
@bp.queue_trigger(arg_name="msg", queue_name=Queues.GOVERNANCE_UPDATE, connection="AzureWebJobsStorage")
def update_service_principal_notes(msg: func.QueueMessage) -> None:
    message = UpdateNotes.model_validate_json(msg.get_body())
    governance_pipeline().update(message)
