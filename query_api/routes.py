import azure.functions as func

from shared.api.service import ApiResponse
from shared.clients import get_clients
from shared.clock import SystemClock
from shared.health import check_health, source_health
from shared.runtime import api_service, app_clock, watermark_store
from shared.settings import get_settings

bp = func.Blueprint()

# Function keys: the host checks the key before the function runs. Entra ID and Static Web Apps modes
# authenticate in code, so their routes are anonymous to the host.
API_AUTH_LEVEL = (
    func.AuthLevel.FUNCTION if get_settings().api_auth_mode == "keys" else func.AuthLevel.ANONYMOUS
)


def _http(response: ApiResponse) -> func.HttpResponse:
    return func.HttpResponse(
        response.body, status_code=response.status, mimetype=response.media_type, headers=response.headers
    )


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


@bp.function_name("list_events")
@bp.route(route="events", methods=["GET"], auth_level=API_AUTH_LEVEL)
def list_events(req: func.HttpRequest) -> func.HttpResponse:
    return _http(api_service().list_events(req.url, dict(req.headers), "/api/events"))


@bp.function_name("get_event")
@bp.route(route="events/{id}", methods=["GET"], auth_level=API_AUTH_LEVEL)
def get_event(req: func.HttpRequest) -> func.HttpResponse:
    event_id = req.route_params["id"]
    return _http(api_service().get_event(event_id, dict(req.headers), f"/api/events/{event_id}"))


@bp.function_name("list_alerts")
@bp.route(route="alerts", methods=["GET"], auth_level=API_AUTH_LEVEL)
def list_alerts(req: func.HttpRequest) -> func.HttpResponse:
    return _http(api_service().list_alerts(req.url, dict(req.headers), "/api/alerts"))


@bp.function_name("alerts_summary")
@bp.route(route="alerts/summary", methods=["GET"], auth_level=API_AUTH_LEVEL)
def alerts_summary(req: func.HttpRequest) -> func.HttpResponse:
    return _http(api_service().alerts_summary(dict(req.headers), "/api/alerts/summary"))


@bp.function_name("get_alert")
@bp.route(route="alerts/{id}", methods=["GET"], auth_level=API_AUTH_LEVEL)
def get_alert(req: func.HttpRequest) -> func.HttpResponse:
    alert_id = req.route_params["id"]
    return _http(api_service().get_alert(alert_id, dict(req.headers), f"/api/alerts/{alert_id}"))


@bp.function_name("patch_alert")
@bp.route(route="alerts/{id}", methods=["PATCH"], auth_level=API_AUTH_LEVEL)
def patch_alert(req: func.HttpRequest) -> func.HttpResponse:
    alert_id = req.route_params["id"]
    response = api_service().patch_alert(
        alert_id, req.get_body(), dict(req.headers), f"/api/alerts/{alert_id}"
    )
    return _http(response)
