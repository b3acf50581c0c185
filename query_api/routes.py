import json
from urllib.parse import quote

import azure.functions as func

from shared.api.catalog import openapi_json
from shared.api.health import check_health, source_health
from shared.api.responses import ApiResponse
from shared.app.runtime import (
    api_service,
    app_clock,
    cors_policy,
    event_actions,
    rules_api,
    status_api,
    watermark_store,
)
from shared.platform.clients import get_clients
from shared.platform.clock import SystemClock
from shared.platform.settings import get_settings

bp = func.Blueprint()

# Function keys: the host checks the key before the function runs. Entra ID and Static Web Apps modes
# authenticate in code, so their routes are anonymous to the host.
API_AUTH_LEVEL = (
    func.AuthLevel.FUNCTION if get_settings().api_auth_mode == "keys" else func.AuthLevel.ANONYMOUS
)


def _segment(value: str) -> str:
    """A route parameter as one percent-encoded URI path segment, for a problem's `instance`: the
    host hands it over decoded, so it may hold '/', '?', '#', controls, or be '.' or '..'."""
    segment = quote(value, safe=":@!$&'()*+,;=")
    return segment.replace(".", "%2E") if segment in (".", "..") else segment


def _http(response: ApiResponse, req: func.HttpRequest) -> func.HttpResponse:
    headers = {**response.headers, **cors_policy().response_headers(dict(req.headers))}
    return func.HttpResponse(
        response.body, status_code=response.status, mimetype=response.media_type, headers=headers
    )


@bp.function_name("cors_preflight")
@bp.route(route="{*path}", methods=["OPTIONS"], auth_level=func.AuthLevel.ANONYMOUS)
def cors_preflight(req: func.HttpRequest) -> func.HttpResponse:
    status, headers = cors_policy().preflight(dict(req.headers))
    return func.HttpResponse(status_code=status, headers=headers)


@bp.function_name("health")
@bp.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def health(req: func.HttpRequest) -> func.HttpResponse:
    settings = get_settings()
    report = check_health(get_clients(), SystemClock(), settings.health_timeout_seconds)
    if report.status == "ok":
        clock = app_clock()
        states = watermark_store().all()
        report.sources = source_health(states, clock.now(), settings.poll_interval_seconds)
    response = ApiResponse(
        report.http_status, report.model_dump_json(), headers={"Cache-Control": "no-store"}
    )
    return _http(response, req)


@bp.function_name("openapi")
@bp.route(route="openapi.json", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def openapi(req: func.HttpRequest) -> func.HttpResponse:
    return _http(ApiResponse(200, json.dumps(openapi_json())), req)


@bp.function_name("list_events")
@bp.route(route="events", methods=["GET"], auth_level=API_AUTH_LEVEL)
def list_events(req: func.HttpRequest) -> func.HttpResponse:
    return _http(api_service().list_events(req.url, dict(req.headers), "/api/events"), req)


@bp.function_name("event_facets")
@bp.route(route="events/facets", methods=["GET"], auth_level=API_AUTH_LEVEL)
def event_facets(req: func.HttpRequest) -> func.HttpResponse:
    return _http(event_actions().facets(req.url, dict(req.headers), "/api/events/facets"), req)


@bp.function_name("export_events")
@bp.route(route="events/export", methods=["GET"], auth_level=API_AUTH_LEVEL)
def export_events(req: func.HttpRequest) -> func.HttpResponse:
    return _http(event_actions().export(req.url, dict(req.headers), "/api/events/export"), req)


@bp.function_name("bulk_tag_events")
@bp.route(route="events/tags", methods=["POST"], auth_level=API_AUTH_LEVEL)
def bulk_tag_events(req: func.HttpRequest) -> func.HttpResponse:
    return _http(event_actions().bulk_tag(req.get_body(), dict(req.headers), "/api/events/tags"), req)


@bp.function_name("get_event")
@bp.route(route="events/{id}", methods=["GET"], auth_level=API_AUTH_LEVEL)
def get_event(req: func.HttpRequest) -> func.HttpResponse:
    event_id = req.route_params["id"]
    return _http(
        api_service().get_event(event_id, dict(req.headers), f"/api/events/{_segment(event_id)}"), req
    )


@bp.function_name("get_event_raw")
@bp.route(route="events/{id}/raw", methods=["GET"], auth_level=API_AUTH_LEVEL)
def get_event_raw(req: func.HttpRequest) -> func.HttpResponse:
    event_id = req.route_params["id"]
    return _http(
        event_actions().raw(event_id, dict(req.headers), f"/api/events/{_segment(event_id)}/raw"), req
    )


@bp.function_name("tag_event")
@bp.route(route="events/{id}/tags", methods=["PATCH"], auth_level=API_AUTH_LEVEL)
def tag_event(req: func.HttpRequest) -> func.HttpResponse:
    event_id = req.route_params["id"]
    path = f"/api/events/{_segment(event_id)}/tags"
    return _http(event_actions().patch_tags(event_id, req.get_body(), dict(req.headers), path), req)


@bp.function_name("comment_event")
@bp.route(route="events/{id}/comments", methods=["POST"], auth_level=API_AUTH_LEVEL)
def comment_event(req: func.HttpRequest) -> func.HttpResponse:
    event_id = req.route_params["id"]
    path = f"/api/events/{_segment(event_id)}/comments"
    return _http(event_actions().add_comment(event_id, req.get_body(), dict(req.headers), path), req)


@bp.function_name("list_alerts")
@bp.route(route="alerts", methods=["GET"], auth_level=API_AUTH_LEVEL)
def list_alerts(req: func.HttpRequest) -> func.HttpResponse:
    return _http(api_service().list_alerts(req.url, dict(req.headers), "/api/alerts"), req)


@bp.function_name("alerts_summary")
@bp.route(route="alerts/summary", methods=["GET"], auth_level=API_AUTH_LEVEL)
def alerts_summary(req: func.HttpRequest) -> func.HttpResponse:
    return _http(api_service().alerts_summary(dict(req.headers), "/api/alerts/summary"), req)


@bp.function_name("get_alert")
@bp.route(route="alerts/{id}", methods=["GET"], auth_level=API_AUTH_LEVEL)
def get_alert(req: func.HttpRequest) -> func.HttpResponse:
    alert_id = req.route_params["id"]
    return _http(
        api_service().get_alert(alert_id, dict(req.headers), f"/api/alerts/{_segment(alert_id)}"), req
    )


@bp.function_name("patch_alert")
@bp.route(route="alerts/{id}", methods=["PATCH"], auth_level=API_AUTH_LEVEL)
def patch_alert(req: func.HttpRequest) -> func.HttpResponse:
    alert_id = req.route_params["id"]
    response = api_service().patch_alert(
        alert_id, req.get_body(), dict(req.headers), f"/api/alerts/{_segment(alert_id)}"
    )
    return _http(response, req)


@bp.function_name("list_audit")
@bp.route(route="audit", methods=["GET"], auth_level=API_AUTH_LEVEL)
def list_audit(req: func.HttpRequest) -> func.HttpResponse:
    return _http(api_service().list_audit(req.url, dict(req.headers), "/api/audit"), req)


@bp.function_name("list_rules")
@bp.route(route="rules", methods=["GET"], auth_level=API_AUTH_LEVEL)
def list_rules(req: func.HttpRequest) -> func.HttpResponse:
    return _http(rules_api().list_rules(req.url, dict(req.headers), "/api/rules"), req)


@bp.function_name("put_rule")
@bp.route(route="rules/{id}", methods=["PUT"], auth_level=API_AUTH_LEVEL)
def put_rule(req: func.HttpRequest) -> func.HttpResponse:
    rule_id = req.route_params["id"]
    response = rules_api().put_rule(
        rule_id, req.url, req.get_body(), dict(req.headers), f"/api/rules/{_segment(rule_id)}"
    )
    return _http(response, req)


@bp.function_name("test_rule")
@bp.route(route="rules/test", methods=["POST"], auth_level=API_AUTH_LEVEL)
def test_rule(req: func.HttpRequest) -> func.HttpResponse:
    return _http(rules_api().test_rule(req.url, req.get_body(), dict(req.headers), "/api/rules/test"), req)


@bp.function_name("get_status")
@bp.route(route="status", methods=["GET"], auth_level=API_AUTH_LEVEL)
def get_status(req: func.HttpRequest) -> func.HttpResponse:
    return _http(status_api().get_status(req.url, dict(req.headers), "/api/status"), req)


@bp.function_name("run_probe")
@bp.route(route="probe/run", methods=["POST"], auth_level=API_AUTH_LEVEL)
def run_probe(req: func.HttpRequest) -> func.HttpResponse:
    return _http(status_api().run_probe(req.url, req.get_body(), dict(req.headers), "/api/probe/run"), req)
