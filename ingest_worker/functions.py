import logging

import azure.functions as func

from shared.app.governance_events import evaluation_messages
from shared.app.runtime import app_clock, ingest_service, tenant_id
from shared.ingestion.messages import IngestMessage
from shared.platform.resources import Queues

bp = func.Blueprint()
logger = logging.getLogger(__name__)


@bp.function_name("ingest_page")
@bp.queue_trigger(arg_name="msg", queue_name=Queues.INGEST, connection="AzureWebJobsStorage")
@bp.queue_output(arg_name="alerts", queue_name=Queues.ALERTS, connection="AzureWebJobsStorage")
@bp.queue_output(
    arg_name="governance", queue_name=Queues.GOVERNANCE_EVALUATE, connection="AzureWebJobsStorage"
)
def ingest_page(msg: func.QueueMessage, alerts: func.Out[list[str]], governance: func.Out[list[str]]) -> None:
    message = IngestMessage.model_validate_json(msg.get_body())  # decoded before any service is built
    report = ingest_service().process(message)
    alerts.set(report.alert_messages)
    # Directory audit events about service principals and applications: evaluate the object now.
    evaluations = evaluation_messages(report, message.tenant_id or tenant_id(), app_clock().now())
    governance.set(evaluations)
    logger.info(
        "ingested %s: %d records, %d new, %d quarantined, %d governance evaluations queued",
        report.blob, report.records, report.new, report.quarantined, len(evaluations),
    )  # fmt: skip
