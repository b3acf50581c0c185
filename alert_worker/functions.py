import logging

import azure.functions as func

from shared.alerts.model import NotifyMessage
from shared.app.runtime import alert_service, notification_service, source_health_check
from shared.ingestion.messages import AlertWorkMessage
from shared.notify.delivery_log import QUEUE_MAX_DEQUEUE_COUNT
from shared.platform.clients import get_clients
from shared.platform.resources import Queues

bp = func.Blueprint()
logger = logging.getLogger(__name__)


@bp.function_name("evaluate_alerts")
@bp.queue_trigger(arg_name="msg", queue_name=Queues.ALERTS, connection="AzureWebJobsStorage")
@bp.queue_output(arg_name="notify", queue_name=Queues.NOTIFY, connection="AzureWebJobsStorage")
def evaluate_alerts(msg: func.QueueMessage, notify: func.Out[list[str]]) -> None:
    work = AlertWorkMessage.model_validate_json(msg.get_body())
    report = alert_service().process(work)
    notify.set(report.notify_messages)
    logger.info(
        "evaluated %d events of run %s: %d matches, %d alerts opened, %d updated, %d notifications queued",
        report.events, work.run_id, report.matches, len(report.created), len(report.updated),
        len(report.notify_messages),
    )  # fmt: skip


@bp.function_name("deliver_notification")
@bp.queue_trigger(arg_name="msg", queue_name=Queues.NOTIFY, connection="AzureWebJobsStorage")
def deliver_notification(msg: func.QueueMessage) -> None:
    message = NotifyMessage.model_validate_json(msg.get_body())
    notification_service().deliver(
        message,
        message_id=msg.id,
        last_attempt=(msg.dequeue_count or 1) >= QUEUE_MAX_DEQUEUE_COUNT,
        defer=_notify_later,
    )


def _notify_later(message: NotifyMessage, delay_seconds: int) -> None:
    """A copy of the message that becomes visible after `delay_seconds` (an output binding cannot wait)."""
    get_clients().queue(Queues.NOTIFY).send_message(
        message.model_dump_json(), visibility_timeout=delay_seconds
    )


@bp.function_name("check_source_health")
@bp.timer_trigger(arg_name="timer", schedule="0 */5 * * * *", run_on_startup=False)
@bp.queue_output(arg_name="notify", queue_name=Queues.NOTIFY, connection="AzureWebJobsStorage")
def check_source_health(timer: func.TimerRequest, notify: func.Out[list[str]]) -> None:
    report = source_health_check().run()
    notify.set(report.notify_messages)
    if report.matches:
        logger.warning(
            "%d stale sources; %d notifications queued", report.matches, len(report.notify_messages)
        )
