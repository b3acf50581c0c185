"""Tenant simulator: the Azure DevOps run endpoint and scripted bursts, in-process (SimulatorApp.handle)."""

from __future__ import annotations

import base64
import datetime as dt
import itertools
import json
import threading
import time
from collections import Counter
from typing import Any
from urllib.parse import urlencode

import pytest

from devtools.simulator import DEVOPS_RESOURCE, DEVOPS_SCOPE, SimulatorConfig
from devtools.simulator.__main__ import build_parser
from devtools.simulator.app import SimulatorApp
from devtools.simulator.devops import TF400813, parse_api_version, tfs_service_error
from devtools.simulator.generator import MAX_BURST_RECORDS, Tenant
from devtools.simulator.render import BURST_KINDS, TEMPLATES, day_templates, render
from devtools.simulator.responses import Response
from devtools.simulator.timefmt import US_PER_SECOND, iso, parse_time, to_us

EPOCH = dt.datetime(2026, 11, 22, tzinfo=dt.UTC)
RUNS = "/devops/contoso/Tenant%20Ops/_apis/pipelines/{pipeline}/runs?api-version={version}"
INTUNE_CHANGES = {
    "Create DeviceConfiguration",
    "Patch DeviceConfiguration",
    "Delete DeviceConfiguration",
    "Create DeviceCompliancePolicy",
    "Patch DeviceCompliancePolicy",
    "Delete DeviceCompliancePolicy",
    "Assign MobileApp",
}
CA_CHANGES = {
    "Add conditional access policy",
    "Update conditional access policy",
    "Delete conditional access policy",
    "Update named location",
}


def make_app(offset_seconds: float = 10 * 3600, **overrides: Any) -> SimulatorApp:
    values: dict[str, Any] = {"epoch": EPOCH, "seed": 7, "events_per_day": 1500}
    values.update(overrides)
    speed = float(values.get("speed", 1.0))
    values["started_at_unix"] = time.time() - offset_seconds / speed
    config = SimulatorConfig(**values)
    return SimulatorApp(config, Tenant(config))


def basic(pat: str, user: str = "") -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{pat}".encode()).decode()}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def run(
    app: SimulatorApp,
    headers: dict[str, str],
    body: Any = None,
    *,
    pipeline: str | int = 1,
    version: str = "7.1",
    method: str = "POST",
) -> Response:
    raw = b"" if body is None else json.dumps(body).encode()
    target = RUNS.format(pipeline=pipeline, version=version)
    return app.handle(method, target, {**headers, "Content-Type": "application/json"}, raw)


def document(response: Response) -> Any:
    return json.loads(response.body)


def control(app: SimulatorApp, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    raw = b"" if body is None else json.dumps(body).encode()
    response = app.handle(method, f"/_sim/{path}", {}, raw)
    return response.status, document(response)


# ---------------------------------------------------------------------------------------------------
# Wire details
# ---------------------------------------------------------------------------------------------------


def test_service_error_header_is_url_encoded_like_the_service() -> None:
    assert tfs_service_error(TF400813) == (
        "TF400813%3a+The+user+%27%27+is+not+authorized+to+access+this+resource."
    )


@pytest.mark.parametrize(
    "version", ["7.1", "7.1-preview", "7.1-preview.1", "7.0", "6.0-preview.1", "6.1-preview", "7.2-preview.1"]
)
def test_supported_api_versions(version: str) -> None:
    assert parse_api_version(version) == version


@pytest.mark.parametrize(
    ("version", "type_key"),
    [
        (None, "VssVersionNotSpecifiedException"),
        ("", "VssVersionNotSpecifiedException"),
        ("latest", "VssInvalidApiVersionException"),
        ("7", "VssInvalidApiVersionException"),
        ("9.0", "VssVersionOutOfRangeException"),
        ("7.3-preview.1", "VssVersionOutOfRangeException"),
        ("5.1", "VssVersionOutOfRangeException"),
        ("6.0", "VssInvalidPreviewVersionException"),
        ("7.2", "VssInvalidPreviewVersionException"),
    ],
)
def test_unsupported_api_versions_are_400(version: str | None, type_key: str) -> None:
    result = parse_api_version(version)
    assert isinstance(result, Response)
    assert result.status == 400
    body = document(result)
    assert body["typeKey"] == type_key
    assert (body["$id"], body["innerException"], body["errorCode"], body["eventId"]) == ("1", None, 0, 3000)


def test_config_and_cli_devops_settings() -> None:
    config = SimulatorConfig()
    assert config.devops_pat == "local-devops-pat"
    assert config.devops_server_error_rate == 0.0
    assert dict(config.devops_pipelines)[1] == "tenant-config-backup"
    args = build_parser().parse_args(
        ["--devops-pat", "p@t", "--devops-pipeline", "42=backup", "--devops-pipeline", "7"]
    )
    assert args.devops_pat == "p@t"
    assert args.devops_pipelines == [(42, "backup"), (7, "pipeline-7")]
    assert build_parser().parse_args([]).devops_pat == "local-devops-pat"
    with pytest.raises(ValueError, match="devops_pat"):
        SimulatorConfig(devops_pat="")
    with pytest.raises(ValueError, match="devops_pipelines"):
        SimulatorConfig(devops_pipelines=((1, "a"), (1, "b")))
    with pytest.raises(ValueError, match="devops_server_error_rate"):
        SimulatorConfig(devops_server_error_rate=1.5)


# ---------------------------------------------------------------------------------------------------
# Runs - Run Pipeline
# ---------------------------------------------------------------------------------------------------


def test_run_pipeline_with_a_pat_answers_the_run_and_records_it() -> None:
    app = make_app()
    app.base_url = "http://127.0.0.1:9"
    body = {
        "resources": {"repositories": {"self": {"refName": "refs/heads/release/2026"}}},
        "templateParameters": {"scope": "tenant-config", "events": "41"},
    }
    response = run(app, basic("local-devops-pat", user="anything"), body, pipeline=2)
    assert response.status == 200, response.body
    assert dict(response.headers)["Content-Type"] == "application/json; charset=utf-8; api-version=7.1"
    run_json = document(response)
    project = "http://127.0.0.1:9/devops/contoso/Tenant%20Ops"
    assert run_json["id"] == 1
    assert run_json["name"] == "20261122.1"
    assert run_json["state"] == "inProgress"
    assert run_json["result"] is None
    assert run_json["url"] == f"{project}/_apis/pipelines/2/runs/1"
    assert run_json["_links"]["self"]["href"] == run_json["url"]
    assert run_json["_links"]["web"]["href"] == f"{project}/_build/results?buildId=1"
    assert run_json["_links"]["pipeline"]["href"] == f"{project}/_apis/pipelines/2?revision=1"
    assert run_json["_links"]["pipeline.web"]["href"] == f"{project}/_build/definition?definitionId=2"
    assert run_json["pipeline"] == {
        "url": f"{project}/_apis/pipelines/2?revision=1",
        "id": 2,
        "revision": 1,
        "name": "intune-config-backup",
        "folder": "\\",
    }
    assert run_json["templateParameters"] == {"scope": "tenant-config", "events": "41"}
    assert run_json["resources"]["repositories"]["self"]["refName"] == "refs/heads/release/2026"
    assert len(run_json["resources"]["repositories"]["self"]["version"]) == 40
    created, _ = parse_time(run_json["createdDate"], require_zone=True)
    assert abs(created - app.now_us()) < 5 * US_PER_SECOND
    [recorded] = app.devops.runs()
    assert recorded["id"] == 1
    assert (recorded["organization"], recorded["project"], recorded["pipeline_id"]) == (
        "contoso",
        "Tenant Ops",
        2,
    )
    assert recorded["refName"] == "refs/heads/release/2026"
    assert recorded["templateParameters"] == {"scope": "tenant-config", "events": "41"}
    assert recorded["createdDate"] == run_json["createdDate"]
    assert (recorded["auth"], recorded["identity"]) == ("basic", "anything")


def test_run_ids_increase_and_names_count_per_pipeline_and_day() -> None:
    app = make_app()
    auth = basic("local-devops-pat")
    answers = [document(run(app, auth, {}, pipeline=p)) for p in (1, 1, 3, 1)]
    assert [a["id"] for a in answers] == [1, 2, 3, 4]
    assert [a["name"] for a in answers] == ["20261122.1", "20261122.2", "20261122.1", "20261122.3"]
    assert [r["id"] for r in app.devops.runs()] == [1, 2, 3, 4]
    assert all(r["refName"] == "refs/heads/main" for r in app.devops.runs())  # the default branch
    assert all(r["templateParameters"] == {} for r in app.devops.runs())


def test_bearer_token_from_the_token_endpoint_for_the_devops_scope() -> None:
    app = make_app()
    form = {
        "client_id": "aoc",
        "client_secret": "s",
        "grant_type": "client_credentials",
        "scope": DEVOPS_SCOPE,
    }
    response = app.handle(
        "POST",
        f"/{app.config.tenant_id}/oauth2/v2.0/token",
        {"Content-Type": "application/x-www-form-urlencoded"},
        urlencode(form).encode(),
    )
    assert response.status == 200, response.body
    token = document(response)["access_token"]
    accepted = run(app, bearer(token), {"templateParameters": {"x": "1"}})
    assert accepted.status == 200
    assert app.devops.runs()[0]["auth"] == "bearer"
    assert app.devops.runs()[0]["identity"] == "aoc"
    # A DevOps token is not a Graph token, and a Graph token is not a DevOps credential.
    graph = app.handle("GET", "/graph/v1.0/auditLogs/signIns", bearer(token), b"")
    assert graph.status == 401
    assert run(app, bearer(app.issue_token()), {}).status == 401
    assert run(app, bearer(app.issue_token(DEVOPS_RESOURCE)), {}).status == 200
    assert [r["id"] for r in app.devops.runs()] == [1, 2]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        basic("wrong-pat"),
        {"Authorization": "Basic !!!not-base64"},
        {"Authorization": "Basic " + base64.b64encode(b"no-colon").decode()},
        bearer("never-issued"),
        {"Authorization": "Negotiate abc"},
    ],
)
def test_bad_credentials_are_401_tf400813(headers: dict[str, str]) -> None:
    app = make_app()
    response = run(app, headers, {})
    assert response.status == 401
    assert dict(response.headers)["X-TFS-ServiceError"] == tfs_service_error(TF400813)
    authenticate = [v for k, v in response.headers if k == "WWW-Authenticate"]
    assert any(v.startswith("Basic realm=") for v in authenticate)
    assert any(v.startswith("Bearer ") for v in authenticate)
    assert "TF400813" in document(response)["message"]
    assert app.devops.runs() == []
    [attempt] = app.devops.attempts()
    assert attempt["status"] == 401
    assert attempt["credential_valid"] is False


def test_reject_modes_and_reset() -> None:
    app = make_app()
    good = basic("local-devops-pat")
    app.devops.reject("signin")
    for headers in ({}, basic("unknown"), good):
        response = run(app, headers, {})
        assert response.status == 203
        assert dict(response.headers)["Content-Type"].startswith("text/html")
        assert b"Azure DevOps Services | Sign In" in response.body
    app.devops.reject("unauthorized")
    response = run(app, good, {})
    assert response.status == 401
    assert dict(response.headers)["X-TFS-ServiceError"].startswith("TF400813%3a+")
    app.devops.reject("forbidden")
    forbidden = run(app, good, {})
    assert forbidden.status == 403
    assert "TF215106" in document(forbidden)["message"]
    assert run(app, basic("unknown"), {}).status == 401  # no identity: not even forbidden
    assert app.devops.runs() == []
    app.devops.reject(None)
    assert run(app, good, {}).status == 200
    attempts = app.devops.attempts()
    assert [a["status"] for a in attempts] == [203, 203, 203, 401, 403, 401, 200]
    assert [a["reject_mode"] for a in attempts] == [
        *["signin"] * 3,
        "unauthorized",
        "forbidden",
        "forbidden",
        None,
    ]
    assert all(a["pipeline_id"] == 1 for a in attempts)
    with pytest.raises(ValueError, match="mode"):
        app.devops.reject("teapot")


def test_reject_control_endpoint() -> None:
    app = make_app()
    assert control(app, "POST", "devops/reject", {"mode": "signin"}) == (200, {"mode": "signin"})
    assert control(app, "GET", "devops/reject") == (200, {"mode": "signin"})
    assert run(app, basic("local-devops-pat"), {}).status == 203
    assert control(app, "POST", "devops/reject", {"mode": None}) == (200, {"mode": None})
    assert run(app, basic("local-devops-pat"), {}).status == 200
    assert control(app, "POST", "devops/reject", {"mode": "nope"})[0] == 400
    assert control(app, "POST", "devops/reject", {})[0] == 400
    assert control(app, "POST", "devops/reject", ["signin"])[0] == 400
    status, runs = control(app, "GET", "devops/runs")
    assert (status, [r["id"] for r in runs]) == (200, [1])
    status, attempts = control(app, "GET", "devops/attempts")
    assert (status, [a["status"] for a in attempts]) == (200, [203, 200])
    assert control(app, "DELETE", "devops/runs")[0] == 405


def test_api_version_pipeline_route_and_body_errors() -> None:
    app = make_app()
    auth = basic("local-devops-pat")
    missing = app.handle("POST", "/devops/contoso/ops/_apis/pipelines/1/runs", auth, b"{}")
    assert missing.status == 400
    assert document(missing)["typeKey"] == "VssVersionNotSpecifiedException"
    via_accept = app.handle(
        "POST",
        "/devops/contoso/ops/_apis/pipelines/1/runs",
        {**auth, "Accept": "application/json; api-version=7.1"},
        b"{}",
    )
    assert via_accept.status == 200
    assert run(app, auth, {}, version="8.0").status == 400
    for pipeline in (99, "abc", "²"):
        response = run(app, auth, {}, pipeline=pipeline)
        assert response.status == 404
        assert document(response)["typeKey"] == "PipelineNotFoundException"
    no_id = app.handle("POST", "/devops/contoso/ops/_apis/pipelines//runs?api-version=7.1", auth, b"{}")
    assert no_id.status == 404
    assert document(no_id)["typeKey"] == "PipelineNotFoundException"
    assert app.handle("POST", "/devops/contoso/ops/_apis/builds?api-version=7.1", auth, b"{}").status == 404
    assert run(app, auth, {}, method="GET").status == 405
    empty = run(app, auth)
    assert (empty.status, document(empty)["typeKey"]) == (400, "ArgumentNullException")
    assert run(app, auth, ["not", "an", "object"]).status == 400
    assert run(app, auth, {"templateParameters": "x=1"}).status == 400
    assert run(app, auth, {"resources": {"repositories": {"self": {"refName": 7}}}}).status == 400
    assert [r["id"] for r in app.devops.runs()] == [1]  # only the Accept-header run


def test_devops_calls_are_logged_and_take_no_part_in_graph_faults() -> None:
    app = make_app(throttle_rate=1.0)
    assert run(app, basic("local-devops-pat"), {}).status == 200
    assert run(app, {}, {}).status == 401
    graph = app.handle("GET", "/graph/v1.0/auditLogs/signIns", bearer(app.issue_token()), b"")
    assert graph.status == 429
    log = app.request_log()
    assert [(e["api"], e["status"], e["authorized"]) for e in log] == [
        ("devops", 200, True),
        ("devops", 401, False),
        ("graph", 429, True),
    ]
    assert log[0]["path"] == "/devops/contoso/Tenant Ops/_apis/pipelines/1/runs"
    assert log[0]["query"] == {"api-version": "7.1"}


def test_devops_server_errors_are_deterministic_and_separate() -> None:
    def statuses() -> list[int]:
        app = make_app(devops_server_error_rate=0.5, seed=21)
        return [run(app, basic("local-devops-pat"), {}).status for _ in range(40)]

    first = statuses()
    assert first == statuses()
    assert set(first) <= {200, 500, 503}
    assert 8 <= first.count(200) <= 32
    assert {500, 503} & set(first)


# ---------------------------------------------------------------------------------------------------
# Bursts
# ---------------------------------------------------------------------------------------------------


def test_burst_only_templates_are_not_in_the_generated_day() -> None:
    tenant = Tenant(SimulatorConfig(epoch=EPOCH, seed=5, events_per_day=6000))
    for kind, (source, mix) in BURST_KINDS.items():
        names = {t.name for t in TEMPLATES[source]}
        assert {name for name, _ in mix} <= names, kind
        day = day_templates(source)
        used = {r.template for r in tenant.records if r.source == source}
        assert max(used) < len(day)
    burst_only = {t.name for t in TEMPLATES["entra_audit"][len(day_templates("entra_audit")) :]}
    assert burst_only == (CA_CHANGES - {"Update conditional access policy"}) | {
        "Add member to role (Global Administrator)"
    }


def test_intune_burst_records_are_configuration_changes_rendered_like_the_day() -> None:
    tenant = Tenant(SimulatorConfig(epoch=EPOCH, seed=5, events_per_day=3000))
    now = to_us(EPOCH) + 10 * 3600 * US_PER_SECOND
    result = tenant.add_burst("intune", 40, now, spread_seconds=60, delay_seconds=30)
    assert len(set(result["ids"])) == len(result["ids"]) == 40
    assert result["from"] == iso(now - 60 * US_PER_SECOND)
    assert result["to"] == iso(now)
    assert result["available_at"] == iso(now + 30 * US_PER_SECOND)
    burst = tenant.records[-40:]
    assert [r.truth_id for r in burst] == result["ids"]
    times = [r.event_us for r in burst]
    assert (times[0], times[-1]) == (now - 60 * US_PER_SECOND, now)
    gaps = {b - a for a, b in itertools.pairwise(times)}
    assert max(gaps) - min(gaps) <= 1  # evenly spread
    assert {r.available_us for r in burst} == {now + 30 * US_PER_SECOND}
    day_record = next(r for r in tenant.records if r.source == "intune_audit" and not r.burst)
    day_keys = set(render(day_record, tenant.render_context))
    rendered = [render(r, tenant.render_context) for r in burst]
    for body, record in zip(rendered, burst, strict=True):
        assert set(body) == day_keys
        assert body["id"] == record.native_id
        assert body["activity"] in INTUNE_CHANGES
        assert body["activityOperationType"] in {"Create", "Patch", "Delete", "Assign"}
        assert body["category"] in {"DeviceConfiguration", "Compliance", "Application"}
        assert body["activityResult"] == "Success"
        assert set(body["resources"][0]) == {"displayName", "modifiedProperties", "type", "resourceId"}
    assert len(Counter(b["activity"] for b in rendered)) >= 4
    truth = tenant.ground_truth()
    assert set(result["ids"]) <= set(truth["ids"])
    assert truth["bursts"] == 1
    assert truth["by_source"]["intune_audit"] == sum(1 for r in tenant.records if r.source == "intune_audit")


def test_conditional_access_burst_with_an_actor() -> None:
    tenant = Tenant(SimulatorConfig(epoch=EPOCH, seed=5, events_per_day=3000))
    now = to_us(EPOCH) + 12 * 3600 * US_PER_SECOND
    admin = tenant.directory.admins[1]
    tenant.add_burst("conditional_access", 30, now, actor=admin.upn)
    tenant.add_burst("conditional_access", 5, now, actor="ext.admin@fabrikam.com")
    bodies = [render(r, tenant.render_context) for r in tenant.records[-35:]]
    assert {b["activityDisplayName"] for b in bodies} <= CA_CHANGES
    assert len({b["activityDisplayName"] for b in bodies}) >= 3
    for body in bodies:
        assert body["category"] == "Policy"
        assert body["loggedByService"] == "Conditional Access"
        assert body["result"] == "success"
        assert body["targetResources"][0]["type"] == "Policy"
        assert body["initiatedBy"]["app"] is None
    assert {b["initiatedBy"]["user"]["userPrincipalName"] for b in bodies[:30]} == {admin.upn}
    assert {b["initiatedBy"]["user"]["id"] for b in bodies[:30]} == {admin.id}
    external = {b["initiatedBy"]["user"]["id"] for b in bodies[30:]}
    assert len(external) == 1
    assert admin.id not in external
    adds = [b for b in bodies if b["activityDisplayName"] == "Add conditional access policy"]
    assert adds, "the mix has additions"
    change = adds[0]["targetResources"][0]["modifiedProperties"][0]
    assert change["oldValue"] is None
    assert json.loads(change["newValue"])["displayName"] == adds[0]["targetResources"][0]["displayName"]


def test_bursts_are_deterministic_given_the_seed_and_the_sequence() -> None:
    def bursts(seed: int) -> list[dict[str, Any]]:
        tenant = Tenant(SimulatorConfig(epoch=EPOCH, seed=seed, events_per_day=500))
        now = to_us(EPOCH) + 3600 * US_PER_SECOND
        tenant.add_burst("intune", 10, now)
        tenant.add_burst("conditional_access", 10, now + US_PER_SECOND, spread_seconds=5)
        return [render(r, tenant.render_context) for r in tenant.records[-20:]]

    assert bursts(9) == bursts(9)
    assert [b["id"] for b in bursts(9)] != [b["id"] for b in bursts(10)]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "exchange", "count": 1}, "kind"),
        ({"kind": "intune", "count": 0}, "count"),
        ({"kind": "intune", "count": MAX_BURST_RECORDS + 1}, "count"),
        ({"kind": "intune", "count": True}, "count"),
        ({"kind": "intune", "count": 2.0}, "count"),
        ({"kind": "intune", "count": 2, "spread_seconds": -1}, "spread_seconds"),
        ({"kind": "intune", "count": 2, "spread_seconds": float("nan")}, "spread_seconds"),
        ({"kind": "intune", "count": 2, "delay_seconds": "5"}, "delay_seconds"),
        ({"kind": "intune", "count": 2, "actor": "not-a-upn"}, "actor"),
    ],
)
def test_burst_arguments_are_validated(kwargs: dict[str, Any], message: str) -> None:
    tenant = Tenant(SimulatorConfig(epoch=EPOCH, seed=1, events_per_day=100))
    kind, count = kwargs.pop("kind"), kwargs.pop("count")
    with pytest.raises(ValueError, match=message):
        tenant.add_burst(kind, count, to_us(EPOCH), **kwargs)
    assert tenant.revision == 0
    assert len(tenant.records) == 100


def test_burst_control_endpoint() -> None:
    app = make_app()
    status, result = control(app, "POST", "bursts", {"kind": "intune", "count": 3, "spread_seconds": 10})
    assert status == 200
    assert len(result["ids"]) == 3
    assert set(result["ids"]) <= set(app.tenant.ground_truth()["ids"])
    assert control(app, "GET", "bursts")[1][0]["ids"] == result["ids"]
    assert control(app, "POST", "bursts", {"kind": "intune"})[0] == 400
    assert control(app, "POST", "bursts", {"kind": "intune", "count": 1, "spread": 5})[0] == 400
    assert control(app, "POST", "bursts", {"kind": "dlp", "count": 1})[0] == 400
    assert app.tenant.revision == 1


def _list_all(app: SimulatorApp, target: str, token: str) -> tuple[list[str], list[str]]:
    """(ids of the first page, ids of every page) of a Graph listing."""
    response = app.handle("GET", target, bearer(token), b"")
    assert response.status == 200
    page = document(response)
    first = [v["id"] for v in page["value"]]
    ids = list(first)
    while "@odata.nextLink" in page:
        link = page["@odata.nextLink"][len(app.base_url) :]
        response = app.handle("GET", link, bearer(token), b"")
        assert response.status == 200
        page = document(response)
        ids.extend(v["id"] for v in page["value"])
    return first, ids


def test_a_burst_during_paging_does_not_disturb_the_listing_and_shows_up_in_the_next() -> None:
    app = make_app(offset_seconds=14 * 3600, events_per_day=4000)
    token = app.issue_token()
    target = "/graph/v1.0/deviceManagement/auditEvents?$top=7"
    before = [r.native_id for r in app.tenant.graph_visible("intune_audit", None, None, app.now_us())]
    first_page = document(app.handle("GET", target, bearer(token), b""))
    assert "@odata.nextLink" in first_page
    result = app.add_burst("intune", 40, spread_seconds=3 * 3600)  # interleaves with the listing's records
    burst_ids = {i.split(":", 1)[1] for i in result["ids"]}
    ids = [v["id"] for v in first_page["value"]]
    page = first_page
    while "@odata.nextLink" in page:
        page = document(app.handle("GET", page["@odata.nextLink"][len(app.base_url) :], bearer(token), b""))
        ids.extend(v["id"] for v in page["value"])
    assert not burst_ids & set(ids)
    assert len(ids) == len(set(ids))
    assert set(before) <= set(ids)  # nothing that was visible went missing
    _, fresh = _list_all(app, "/graph/v1.0/deviceManagement/auditEvents?$top=999", token)
    assert burst_ids <= set(fresh)
    assert set(ids) <= set(fresh)


def test_a_burst_at_the_same_instant_as_a_listing_stays_out_of_it(monkeypatch: pytest.MonkeyPatch) -> None:
    # A coarse clock (or a step back) can give the burst the listing's own instant: the snapshot's
    # revision, not its time, keeps the burst out of the listing's later pages.
    app = make_app(offset_seconds=14 * 3600, events_per_day=4000)
    frozen = app.now_us()
    monkeypatch.setattr(app, "now_us", lambda: frozen)
    token = app.issue_token()
    expected = [r.native_id for r in app.tenant.graph_visible("intune_audit", None, None, frozen)]
    first_page = document(
        app.handle("GET", "/graph/v1.0/deviceManagement/auditEvents?$top=9", bearer(token), b"")
    )
    result = app.add_burst("intune", 40, spread_seconds=4 * 3600)
    app.tenant._cache.clear()  # a bounded LRU: the listing must not depend on it still holding page 1
    burst_ids = [i.split(":", 1)[1] for i in result["ids"]]
    ids = [v["id"] for v in first_page["value"]]
    page = first_page
    while "@odata.nextLink" in page:
        page = document(app.handle("GET", page["@odata.nextLink"][len(app.base_url) :], bearer(token), b""))
        ids.extend(v["id"] for v in page["value"])
    assert ids == expected
    _, fresh = _list_all(app, "/graph/v1.0/deviceManagement/auditEvents?$top=9", token)
    assert sorted(fresh) == sorted(expected + burst_ids)
    visible = app.tenant.graph_visible
    assert [r.native_id for r in visible("intune_audit", None, None, frozen, revision=0)] == expected
    assert len(visible("intune_audit", None, None, frozen, revision=1)) == len(expected) + 40


def test_bursts_and_queries_from_many_threads() -> None:
    app = make_app(offset_seconds=20 * 3600, speed=50.0)
    token = app.issue_token()
    errors: list[BaseException] = []
    added: list[dict[str, Any]] = []
    listings: list[list[str]] = []

    def burst(kind: str) -> None:
        try:
            for _ in range(10):
                added.append(app.add_burst(kind, 25, spread_seconds=600))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def query(path: str) -> None:
        try:
            for _ in range(8):
                listings.append(_list_all(app, f"/graph/v1.0/{path}?$top=50", token)[1])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=burst, args=(k,)) for k in ("intune", "conditional_access", "intune")]
    threads += [
        threading.Thread(target=query, args=(p,))
        for p in ("deviceManagement/auditEvents", "auditLogs/directoryAudits") * 2
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert all(len(ids) == len(set(ids)) for ids in listings)  # no page shifted into another
    assert len(added) == 30
    assert sorted(b["burst"] for b in added) == list(range(1, 31))
    all_ids = [i for b in added for i in b["ids"]]
    assert len(all_ids) == len(set(all_ids)) == 750
    truth = app.tenant.ground_truth()
    assert set(all_ids) <= set(truth["ids"])
    assert truth["bursts"] == 30
    _, intune = _list_all(app, "/graph/v1.0/deviceManagement/auditEvents?$top=999", token)
    intune_burst = {i.split(":", 1)[1] for b in added if b["kind"] == "intune" for i in b["ids"]}
    assert intune_burst <= set(intune)
