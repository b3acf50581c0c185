import logging

import azure.functions as func

from shared.app.runtime import poller

bp = func.Blueprint()
logger = logging.getLogger(__name__)


@bp.function_name("poll_audit_sources")
@bp.timer_trigger(schedule="%POLL_SCHEDULE%", arg_name="timer", run_on_startup=False, use_monitor=True)
def poll_audit_sources(timer: func.TimerRequest) -> None:
    report = poller().run()
    logger.info("poll run %s: %s", report.run_id, report.model_dump_json(exclude={"run_id"}))
    if timer.past_due:
        logger.warning("poll run %s started late (past due)", report.run_id)
