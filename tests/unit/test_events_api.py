"""The events routes' pure logic: CSV cells and columns, tag rules, body and query models, export
paging against a scripted search, facet ranking, and the routes' declarations."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from typing import Any

import pytest
from pydantic import ValidationError

from shared.api.auth import Authenticator
from shared.api.events_api import EventsApi
from shared.api.events_export import CSV_COLUMNS, csv_cell, csv_row, export_filename
from shared.api.events_histogram import HistogramQuery
from shared.api.events_models import (
    MAX_TAGS_PER_EVENT,
    BulkTagBody,
    CommentBody,
    ExportQuery,
    FacetQuery,
    TagChange,
    TagLimitError,
    apply_tags,
    comment_id,
)
from shared.api.events_query import (
    EventQuery,
    SensitivityPolicy,
    build_conditions,
    list_fields,
    parse_query_string,
)
from shared.api.models import EventView
from shared.api.openapi import openapi_document
from shared.api.responses import ApiGuard
from shared.api.routing import ApiRequest
from tests.support.clock import ManualClock
from tests.support.principals import swa_principal

NOW = dt.datetime(2026, 11, 20, 12, 30, 5, tzinfo=dt.UTC)
READER = {"x-ms-client-principal": swa_principal(["reader"])}
PRIVACY_READER = {"x-ms-client-principal": swa_principal(["reader", "privacy"])}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+1", "'+1"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tcmd", "'\tcmd"),
        ("\rcmd", "'\rcmd"),
        ("a=b", "a=b"),
        ("plain", "plain"),
        ("", ""),
        (None, ""),
        (7, "7"),
    ],
)
def test_csv_cells_that_a_spreadsheet_would_evaluate_get_a_leading_quote(value: Any, expected: str) -> None:
    assert csv_cell(value) == expected


def _event(**overrides: Any) -> dict[str, Any]:
    event = {
        "id": "entra_audit:1",
        "pk": "t:2026-11",
        "timestamp": "2026-11-20T12:00:00.000Z",
        "source": "entra_audit",
        "service": "Directory",
        "operation": "Add member to role",
        "operation_type": "assign",
        "result": "success",
        "actor": {"type": "user", "upn": "ana@contoso.com", "display": "Ana Lopez", "ip": "203.0.113.7"},
        "targets": [
            {"type": "User", "id": "u1", "display": "bob@contoso.com"},
            {"type": "Role", "id": "r1", "display": None},
            {"type": "Role", "id": None, "display": None},
        ],
        "category": "RoleManagement",
        "correlation_id": "c-1",
        "summary": "Ana Lopez added bob, to a role",
        "tags": ["reviewed", "vip"],
    }
    return {**event, **overrides}


def test_a_csv_row_has_every_column_in_order() -> None:
    row = csv_row(_event())
    assert dict(zip(CSV_COLUMNS, row, strict=True)) == {
        "id": "entra_audit:1",
        "timestamp": "2026-11-20T12:00:00.000Z",
        "source": "entra_audit",
        "service": "Directory",
        "operation": "Add member to role",
        "operation_type": "assign",
        "result": "success",
        "actor_upn": "ana@contoso.com",
        "actor_display": "Ana Lopez",
        "actor_ip": "203.0.113.7",
        "targets": "bob@contoso.com; r1",
        "category": "RoleManagement",
        "correlation_id": "c-1",
        "summary": "Ana Lopez added bob, to a role",
        "tags": "reviewed;vip",
    }


def test_a_csv_row_tolerates_missing_fields_and_guards_every_cell() -> None:
    row = csv_row({"id": "x", "actor": None, "targets": None, "summary": "=1+1", "operation": "-rf"})
    values = dict(zip(CSV_COLUMNS, row, strict=True))
    assert values["summary"] == "'=1+1"
    assert values["operation"] == "'-rf"
    assert values["actor_upn"] == values["targets"] == values["tags"] == ""


def test_apply_tags_keeps_order_dedupes_and_removes() -> None:
    assert apply_tags(["a", "b", "c"], ["d", "a", "d"], ["b"]) == ["a", "c", "d"]
    assert apply_tags([], ["x"], ["not-there"]) == ["x"]
    assert apply_tags(["x"], [], ["x"]) == []


def test_apply_tags_refuses_to_grow_past_the_limit_but_may_shrink_an_overfull_event() -> None:
    full = [f"t{i}" for i in range(MAX_TAGS_PER_EVENT)]
    with pytest.raises(TagLimitError):
        apply_tags(full, ["one-more"], [])
    assert apply_tags(full, ["swap"], ["t0"])[-1] == "swap"
    overfull = [f"t{i}" for i in range(MAX_TAGS_PER_EVENT + 5)]
    assert len(apply_tags(overfull, [], ["t1"])) == MAX_TAGS_PER_EVENT + 4


@pytest.mark.parametrize(
    "tag",
    ["reviewed", "case:1234", "team/secops", "A b_c.d-e", "9", "x" * 64, "  padded  "],
)
def test_valid_tags(tag: str) -> None:
    assert TagChange.model_validate({"add": [tag]}).add == [tag.strip()]


@pytest.mark.parametrize(
    "tag", ["", "   ", "-leading-dash", "_x", "x" * 65, "semi;colon", "quote'", "new\nline", "ünïcode"]
)
def test_invalid_tags_are_refused(tag: str) -> None:
    with pytest.raises(ValidationError) as caught:
        TagChange.model_validate({"add": [tag]})
    assert caught.value.errors()[0]["loc"] == ("add", 0)


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"add": [], "remove": []},
        {"add": ["a"], "remove": ["a"]},
        {"add": [f"t{i}" for i in range(21)]},
        {"remove": [f"t{i}" for i in range(21)]},
        {"add": ["a"], "colour": "red"},
        {"add": "a"},
    ],
)
def test_bad_tag_bodies_are_refused(body: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        TagChange.model_validate(body)


def test_bulk_body_needs_a_filter_without_paging() -> None:
    body = BulkTagBody.model_validate({"filter": {"service": ["Exchange"], "start": "7d"}, "add": ["x"]})
    query = body.filter.search_query()
    assert isinstance(query, EventQuery)
    assert (query.service, query.start, query.page_size) == (["Exchange"], "7d", 200)
    bad: dict[str, Any]
    for bad in (
        {"add": ["x"]},
        {"filter": {"page_size": 10}, "add": ["x"]},
        {"filter": {"continuation": "abc"}, "add": ["x"]},
        {"filter": {"colour": "red"}, "add": ["x"]},
        {"filter": {}},
    ):
        with pytest.raises(ValidationError):
            BulkTagBody.model_validate(bad)


def test_comment_body() -> None:
    assert CommentBody.model_validate({"text": "looks fine"}).text == "looks fine"
    for bad in ({}, {"text": ""}, {"text": "   \n"}, {"text": "x" * 4001}, {"text": "a", "extra": 1}):
        with pytest.raises(ValidationError):
            CommentBody.model_validate(bad)


def test_export_and_facet_queries() -> None:
    assert ExportQuery.model_validate({}).format == "jsonl"
    assert (
        ExportQuery.model_validate({"format": "csv", "result": "failure"}).search_query().result == "failure"
    )
    for bad in ({"format": "xml"}, {"page_size": "10"}, {"continuation": "x"}, {"colour": "red"}):
        with pytest.raises(ValidationError):
            ExportQuery.model_validate(bad)
    assert FacetQuery.model_validate({}).top == 50
    assert FacetQuery.model_validate({"top": "500"}).top == 500
    for bad in ({"top": "0"}, {"top": "501"}, {"limit": "5"}):
        with pytest.raises(ValidationError):
            FacetQuery.model_validate(bad)


def test_comment_ids_are_stable_per_caller_and_key_and_random_without_a_key() -> None:
    assert comment_id("u1", "k") == comment_id("u1", "k")
    assert comment_id("u1", "k") != comment_id("u2", "k")
    assert comment_id("u1", "k") != comment_id("u1", "k2")
    assert comment_id("u1", None) != comment_id("u1", None)


def test_export_filename_is_utc() -> None:
    moment = dt.datetime(2026, 11, 20, 14, 30, 5, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert export_filename(moment, "csv") == "events-20261120T123005Z.csv"


class ScriptedSearch:
    """Pages served from a script; the continuation token is the index of the next page."""

    def __init__(self, pages: list[tuple[list[dict[str, Any]], bool]]) -> None:
        self.pages = pages
        self.calls: list[tuple[int, SensitivityPolicy | None]] = []

    def search(self, query: EventQuery, now: dt.datetime, hide: SensitivityPolicy | None) -> dict[str, Any]:
        index = int(query.continuation or 0)
        self.calls.append((query.page_size, hide))
        items, more = self.pages[index]
        return {"items": items, "continuation": str(index + 1) if more else None}


class FacetStore:
    def __init__(self, facets: dict[str, dict[str, int]]) -> None:
        self.facets = facets

    def read_facets(self, tenant_id: str) -> dict[str, dict[str, int]]:
        return self.facets


def _actions(search: Any = None, store: Any = None, export_max: int = 1000) -> EventsApi:
    guard = ApiGuard(
        Authenticator(verifier=None, swa_enabled=True, key_roles=frozenset()),
        SensitivityPolicy(services=["Exchange"], operations=["Wipe device"]),
    )
    return EventsApi(
        guard,
        None,  # type: ignore[arg-type]  # no Cosmos: these routes only use the search and the store
        search,
        store,
        None,  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        "tenant",
        ManualClock(NOW),
        export_max=export_max,
        bulk_max=10,
    )


def _items(start: int, count: int) -> list[dict[str, Any]]:
    return [_event(id=f"e{i}", summary=f"=cmd {i}") for i in range(start, start + count)]


@pytest.mark.parametrize(
    ("pages", "cap", "count", "truncated"),
    [
        ([(_items(0, 3), True), (_items(3, 2), False)], 10, 5, False),
        ([(_items(0, 3), True), (_items(3, 2), False)], 4, 4, True),
        ([(_items(0, 3), True), (_items(3, 2), False)], 5, 5, False),
        # the cap is reached exactly, and the pages after it (empty months) hold nothing more
        ([(_items(0, 3), True), ([], True), ([], False)], 3, 3, False),
        ([(_items(0, 3), True), ([], True), (_items(3, 1), False)], 3, 3, True),
        ([([], False)], 3, 0, False),
    ],
)
def test_export_walks_pages_up_to_the_cap(
    pages: list[tuple[list[dict[str, Any]], bool]], cap: int, count: int, truncated: bool
) -> None:
    search = ScriptedSearch(pages)
    response = _actions(search, export_max=cap).export.serve(
        ApiRequest("https://h/api/events/export?format=jsonl", READER)
    )
    assert response.status == 200
    assert response.media_type == "application/x-ndjson"
    lines = response.body.splitlines() if isinstance(response.body, str) else []
    assert [json.loads(line)["id"] for line in lines] == [f"e{i}" for i in range(count)]
    assert response.headers["X-AOC-Export-Count"] == str(count)
    assert response.headers["X-AOC-Export-Truncated"] == ("true" if truncated else "false")
    assert response.headers["X-AOC-Export-Cap"] == str(cap)
    assert response.headers["Content-Disposition"] == 'attachment; filename="events-20261120T123005Z.jsonl"'
    assert {size for size, _ in search.calls} == {200}
    assert search.calls[0][1] == SensitivityPolicy(services=["Exchange"], operations=["Wipe device"])


def test_csv_export_is_a_header_then_guarded_rows() -> None:
    search = ScriptedSearch([(_items(0, 2), False)])
    response = _actions(search).export.serve(
        ApiRequest("https://h/api/events/export?format=csv", PRIVACY_READER)
    )
    assert response.media_type == "text/csv; charset=utf-8"
    assert response.headers["Content-Disposition"].endswith('.csv"')
    assert isinstance(response.body, str)
    rows = list(csv.reader(io.StringIO(response.body)))
    assert rows[0] == list(CSV_COLUMNS)
    assert [r[0] for r in rows[1:]] == ["e0", "e1"]
    assert rows[1][CSV_COLUMNS.index("summary")] == "'=cmd 0"
    assert search.calls[0][1] is None  # the privacy role sees everything


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("page_size=10", "page_size"),
        ("continuation=abc", "continuation"),
        ("format=xml", "format"),
        ("end=0001-01-02T00:00:00Z", "end"),
        ("start=0001-01-01T00:00:00%2B14:00", "start"),
    ],
)
def test_export_refuses_paging_and_unknown_formats(query: str, field: str) -> None:
    response = _actions(ScriptedSearch([([], False)])).export(
        f"https://h/api/events/export?{query}", READER, "/api/events/export"
    )
    assert response.status == 400
    assert json.loads(response.body)["errors"][0]["field"] == field


def test_facets_rank_by_count_then_value_cut_at_top_and_hide_sensitive_values() -> None:
    store = FacetStore(
        {
            "service": {"Exchange": 9, "Directory": 5, "Intune": 5, "Teams": 1},
            "operation": {"Wipe device": 7, "Add user": 2},
            "result": {"success": 3},
        }
    )
    actions = _actions(store=store)
    reader = json.loads(actions.facets("https://h/api/events/facets?top=2", READER, "/p").body)["facets"]
    assert reader["service"] == [{"value": "Directory", "count": 5}, {"value": "Intune", "count": 5}]
    assert reader["operation"] == [{"value": "Add user", "count": 2}]
    assert reader["actor"] == reader["source"] == []
    privacy = json.loads(actions.facets("https://h/api/events/facets", PRIVACY_READER, "/p").body)["facets"]
    assert [v["value"] for v in privacy["service"]] == ["Exchange", "Directory", "Intune", "Teams"]
    assert privacy["operation"][0] == {"value": "Wipe device", "count": 7}
    bad = actions.facets("https://h/api/events/facets?top=0", READER, "/p")
    assert bad.status == 400
    assert actions.facets("https://h/api/events/facets?limit=3", READER, "/p").status == 400
    assert actions.facets("https://h/api/events/facets", {}, "/p").status == 401


def test_the_event_schema_accepts_real_events() -> None:
    stored = {**_event(), "comments": [{"id": "c", "text": "x"}], "raw_ref": None, "new_field": 1}
    stored["actor"] = {"type": "app", "upn": None, "display": None, "id": None, "ip": None}
    assert EventView.model_validate(stored).model_dump()["new_field"] == 1
    assert EventView.model_validate({"id": "bare"}).id == "bare"


def test_the_routes_document_themselves() -> None:
    routes = EventsApi.routes()
    document = openapi_document(routes, title="AOC", version="test")
    paths = document["paths"]
    assert set(paths) == {
        "/api/events",
        "/api/events/{id}",
        "/api/events/{id}/raw",
        "/api/events/facets",
        "/api/events/histogram",
        "/api/events/export",
        "/api/events/{id}/tags",
        "/api/events/{id}/comments",
        "/api/events/tags",
    }
    export = paths["/api/events/export"]["get"]
    names = {p["name"] for p in export["parameters"]}
    assert {"format", "service", "start", "q"} <= names
    assert not names & {"page_size", "continuation"}
    repeated = {p["name"] for p in export["parameters"] if p["schema"]["type"] == "array"}
    assert repeated == {  # the list-typed fields of the filter model
        "service",
        "tag",
        "exclude_tag",
        "exclude_service",
        "exclude_operation",
        "exclude_result",
        "exclude_source",
        "exclude_actor",
    }
    listing = paths["/api/events"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    page = document["components"]["schemas"][listing["$ref"].rsplit("/", 1)[-1]]
    assert {"items", "continuation", "hidden"} <= set(page["properties"])
    hidden = document["components"]["schemas"]["HiddenFromCaller"]
    assert set(hidden["required"]) == {"services", "operations"}
    assert set(export["responses"]["200"]["content"]) == {"application/x-ndjson", "text/csv"}
    assert paths["/api/events/{id}/comments"]["post"]["responses"].keys() >= {"201", "400", "403", "404"}
    assert paths["/api/events/{id}/raw"]["get"]["responses"]["200"]["content"]["application/json"]
    assert "page_size" not in document["components"]["schemas"]["EventFilter"]["properties"]
    assert {r.role.value for r in routes if r.role and r.method != "GET"} == {"AOC.Analyst"}
    assert {r.role.value for r in routes if r.role and r.method == "GET"} == {"AOC.Reader"}


def test_the_export_path_in_a_problem_is_the_request_path() -> None:
    response = _actions(ScriptedSearch([([], False)])).export.serve(
        ApiRequest("https://h/api/events/export?format=xml", READER)
    )
    assert response.status == 400
    assert json.loads(response.body)["instance"] == "/api/events/export"


# -- privacy: what was left out ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "headers", "hidden"),
    [
        ("", READER, {"services": ["Exchange"], "operations": 1}),
        ("", PRIVACY_READER, None),
        ("service=Directory", READER, {"services": [], "operations": 1}),
        ("service=Exchange&service=Teams", READER, {"services": ["Exchange"], "operations": 1}),
        ("exclude_service=Exchange", READER, {"services": [], "operations": 1}),
        ("exclude_service=Exchange&exclude_operation=Wipe+device", READER, None),
        ("service=Directory&operation=Add+user", READER, None),
        ("operation=Wipe+device", READER, {"services": ["Exchange"], "operations": 1}),
    ],
)
def test_the_event_list_says_what_the_privacy_policy_left_out(
    query: str, headers: dict[str, str], hidden: dict[str, Any] | None
) -> None:
    search = ScriptedSearch([(_items(0, 2), False)])
    response = _actions(search).list_events.serve(ApiRequest(f"https://h/api/events?{query}", headers))
    assert response.status == 200
    body = json.loads(response.body)
    assert [e["id"] for e in body["items"]] == ["e0", "e1"]
    assert body["continuation"] is None
    assert body["hidden"] == hidden
    assert "Wipe device" not in response.body or "operation=Wipe" in query  # counted, never named


# -- exclusions ---------------------------------------------------------------------------------------

EXCLUSIONS = (
    "exclude_service=Exchange&exclude_service=Teams&exclude_operation=Wipe+device&exclude_result=failure"
    "&exclude_source=o365_management&exclude_actor=SVC-&exclude_actor=Robot&exclude_actor=svc-"
)


def test_exclusions_are_parameters_of_not_conditions_never_sql_text() -> None:
    query = EventQuery.model_validate(parse_query_string(f"https://h/api/events?{EXCLUSIONS}"))
    conditions, parameters = build_conditions(query, "2026-11-01T00:00:00Z", "2026-11-02T00:00:00Z", None)
    values = {p["name"]: p["value"] for p in parameters}
    assert values["@exclude_service"] == ["Exchange", "Teams"]
    assert values["@exclude_operation"] == ["Wipe device"]
    assert values["@exclude_result"] == ["failure"]
    assert values["@exclude_source"] == ["o365_management"]
    # actors are matched in lower case: "SVC-" and "svc-" are one condition
    assert [values[f"@exclude_actor{i}"] for i in range(2)] == ["svc-", "robot"]
    assert "@exclude_actor2" not in values
    sql = " AND ".join(conditions)
    for field in ("service", "operation", "result", "source"):
        assert f"NOT ARRAY_CONTAINS(@exclude_{field}, c.{field})" in conditions
    assert sql.count("IS_STRING(c.actor.upn)") == 2  # a missing upn (an app acting) is not excluded
    for text in ("Exchange", "Wipe", "failure", "o365", "svc", "robot"):
        assert text not in sql


def test_exclusions_reach_the_histogram_the_export_and_bulk_tagging_alike() -> None:
    url = f"https://h/api/events/export?{EXCLUSIONS}"
    export = ExportQuery.model_validate(parse_query_string(url, list_fields(ExportQuery)))
    histogram = HistogramQuery.model_validate(parse_query_string(url, list_fields(HistogramQuery)))
    expected = EventQuery.model_validate(parse_query_string(url)).filters()
    assert export.search_query().filters() == {**expected, "page_size": 200}
    assert {k: v for k, v in histogram.filters().items() if k != "buckets"} == expected
    bulk = BulkTagBody.model_validate({"add": ["x"], "filter": {"exclude_service": ["Exchange"]}})
    assert bulk.filter.criteria() == {"exclude_service": ["Exchange"]}


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("&".join(["exclude_service=Teams"] * 21), "exclude_service"),
        ("&".join(f"exclude_operation=op{i}" for i in range(21)), "exclude_operation"),
        ("&".join(f"exclude_actor=a{i}" for i in range(21)), "exclude_actor"),
        ("exclude_service=NotAService", "exclude_service.0"),
        ("exclude_service=", "exclude_service.0"),
        ("exclude_result=maybe", "exclude_result.0"),
        ("exclude_operation=", "exclude_operation.0"),
        ("exclude_operation=" + "o" * 201, "exclude_operation.0"),
        ("exclude_source=" + "s" * 65, "exclude_source.0"),
        ("exclude_actor=" + "a" * 201, "exclude_actor.0"),
        ("exclude_actor=", "exclude_actor.0"),
        ("exclude_operation=Add%00user", "exclude_operation.0"),
        ("exclude_actor=ana%0D%0AX-Injected:1", "exclude_actor.0"),
        ("exclude_source=entra%1Baudit", "exclude_source.0"),
        ("exclude_actor=ana%C2%85", "exclude_actor.0"),  # NEL, a C1 control
        ("exclude_operation=a%7F", "exclude_operation.0"),
        ("exclude_services=Teams", "exclude_services"),
    ],
)
@pytest.mark.parametrize("route", ["list_events", "histogram", "export"])
def test_hostile_exclusions_are_a_400_naming_the_parameter(query: str, field: str, route: str) -> None:
    search = ScriptedSearch([([], False)])
    path = {"list_events": "events", "histogram": "events/histogram", "export": "events/export"}[route]
    response = getattr(_actions(search), route).serve(ApiRequest(f"https://h/api/{path}?{query}", READER))
    assert response.status == 400
    body = json.loads(response.body)
    assert body["errors"][0]["field"] == field
    assert "\\u0000" not in response.body  # the refusal never echoes the value
    assert search.calls == []  # refused before any query


def test_exclusion_values_may_hold_any_printable_text() -> None:
    query = EventQuery.model_validate(
        {"exclude_actor": ["Zoë Ångström", "東京"], "exclude_operation": ["Update policy — 'x' OR 1=1"]}
    )
    assert query.exclude_actor == ["Zoë Ångström", "東京"]
    assert query.exclude_operation == ["Update policy — 'x' OR 1=1"]
