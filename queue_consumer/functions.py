import logging

import azure.functions as func

from shared.app.runtime import pipeline_trigger_service
from shared.platform.resources import Queues
from shared.probe.devops import DevOpsAuthError, RunOutcomeUnknownError
from shared.probe.state import Trigger

bp = func.Blueprint()
logger = logging.getLogger(__name__)


@bp.function_name("run_backup_pipeline")
@bp.queue_trigger(arg_name="msg", queue_name=Queues.BACKUP_TRIGGER, connection="AzureWebJobsStorage")
def run_backup_pipeline(msg: func.QueueMessage) -> None:
    trigger = Trigger.model_validate_json(msg.get_body())
    try:
        result = pipeline_trigger_service().handle(trigger, message_id=msg.id)
    except (DevOpsAuthError, RunOutcomeUnknownError) as error:
        # Raise: the message retries, then lands in backup-trigger-poison for an operator to replay.
        logger.error("backup trigger %s (attempt %s): %s", trigger.trigger_id, msg.dequeue_count, error)
        raise
    logger.info(
        "backup trigger %s: %s%s",
        trigger.trigger_id,
        result.state,
        f" -> pipeline run {result.run_id} {result.url or ''}" if result.run_id is not None else "",
    )
