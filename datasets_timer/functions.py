import logging

import azure.functions as func

from shared.app.runtime import refresh_service

bp = func.Blueprint()
logger = logging.getLogger(__name__)


# Off by default: AzureWebJobs.refresh_datasets.Disabled is true in the Bicep and in
# local.settings.json.example. Sources are throttled per source and locked by blob lease, so the timer,
# the console's refresh button and POST /api/refresh may all run at once.
@bp.function_name("refresh_datasets")
@bp.timer_trigger(
    schedule="%DATASETS_REFRESH_SCHEDULE%", arg_name="timer", run_on_startup=False, use_monitor=True
)
def refresh_datasets(timer: func.TimerRequest) -> None:
    report = refresh_service().refresh()
    logger.info(
        "dataset refresh: %s",
        ", ".join(f"{o.source_id}={o.status}" for o in report.outcomes) or "no enabled source",
    )
    if timer.past_due:
        logger.warning("dataset refresh started late (past due)")
