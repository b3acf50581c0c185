import azure.functions as func

from shared.clients import get_clients
from shared.clock import SystemClock
from shared.health import check_health, source_health
from shared.runtime import app_clock, watermark_store
from shared.settings import get_settings

bp = func.Blueprint()


@bp.function_name("health")
@bp.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def health(req: func.HttpRequest) -> func.HttpResponse:
    settings = get_settings()
    report = check_health(get_clients(), SystemClock(), settings.health_timeout_seconds)
    if report.status == "ok":
        clock = app_clock()
        states = watermark_store().all()
        report.sources = source_health(states, clock.now(), settings.poll_interval_seconds)
    return func.HttpResponse(
        report.model_dump_json(),
        status_code=report.http_status,
        mimetype="application/json",
        headers={"Cache-Control": "no-store"},
    )
