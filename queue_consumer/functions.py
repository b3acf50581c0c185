import logging

import azure.functions as func

from shared.devops import DevOpsAuthError
from shared.probe.state import Trigger
from shared.resources import Queues
from shared.runtime import pipeline_trigger_service

bp = func.Blueprint()
logger = logging.getLogger(__name__)


@bp.function_name("run_backup_pipeline")
@bp.queue_trigger(arg_name="msg", queue_name=Queues.BACKUP_TRIGGER, connection="AzureWebJobsStorage")
def run_backup_pipeline(msg: func.QueueMessage) -> None:
    trigger = Trigger.model_validate_json(msg.get_body())
    try:
        run = pipeline_trigger_service().handle(trigger)
    except DevOpsAuthError as error:
        # Raise: the message retries, then lands in backup-trigger-poison for an operator to replay.
        logger.error("backup trigger %s (attempt %s): %s", trigger.trigger_id, msg.dequeue_count, error)
        raise
    logger.info("backup trigger %s -> pipeline run %s %s", trigger.trigger_id, run.run_id, run.url or "")
