import logging

import azure.functions as func

from shared.app.runtime import ingest_service
from shared.ingestion.messages import IngestMessage
from shared.platform.resources import Queues

bp = func.Blueprint()
logger = logging.getLogger(__name__)


@bp.function_name("ingest_page")
@bp.queue_trigger(arg_name="msg", queue_name=Queues.INGEST, connection="AzureWebJobsStorage")
@bp.queue_output(arg_name="alerts", queue_name=Queues.ALERTS, connection="AzureWebJobsStorage")
def ingest_page(msg: func.QueueMessage, alerts: func.Out[list[str]]) -> None:
    message = IngestMessage.model_validate_json(msg.get_body())  # decoded before any service is built
    report = ingest_service().process(message)
    alerts.set(report.alert_messages)
    logger.info(
        "ingested %s: %d records, %d new, %d quarantined",
        report.blob, report.records, report.new, report.quarantined,
    )  # fmt: skip
