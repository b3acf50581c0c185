import azure.functions as func

from shared.clients import get_clients
from shared.clock import SystemClock
from shared.health import check_health
from shared.settings import get_settings

bp = func.Blueprint()


@bp.function_name("health")
@bp.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def health(req: func.HttpRequest) -> func.HttpResponse:
    report = check_health(get_clients(), SystemClock(), get_settings().health_timeout_seconds)
    return func.HttpResponse(
        report.model_dump_json(),
        status_code=report.http_status,
        mimetype="application/json",
        headers={"Cache-Control": "no-store"},
    )
