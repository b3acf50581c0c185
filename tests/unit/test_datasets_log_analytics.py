"""LogAnalyticsRunner with a fake LogsQueryClient: KQL rendering, values as text, splitting on partial or
near-limit answers, errors; the retry policy's decisions; the token credential; and the simulator's
query API parsing (in process, no sockets)."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError
from azure.monitor.query import LogsQueryError, LogsQueryPartialResult, LogsQueryResult, LogsTable

from devtools.simulator import SimulatorConfig
from devtools.simulator.app import SimulatorApp
from devtools.simulator.generator import Tenant
from devtools.simulator.identity import LOG_ANALYTICS_AUDIENCE
from shared.datasets.log_analytics import (
    LOG_ANALYTICS_RESOURCE,
    BoundedRetryPolicy,
    LogAnalyticsRunner,
    QueryFailedError,
    QueryLimits,
    TokenProviderCredential,
    build_logs_client,
    default_audience,
    render_kql,
    render_rows,
    render_value,
    table_rows,
)
from shared.datasets.querying import QueryWindow
from shared.datasets.sources import DatasetSource
from shared.m365.token_cache import AuthError
from tests.support.clock import ManualClock

WORKSPACE = "3f0a8f0e-1b2c-4d5e-8f90-0123456789ab"
NOW = dt.datetime(2026, 12, 7, 12, 0, tzinfo=dt.UTC)
COLUMNS = ["TimeGenerated", "UserPrincipalName", "City", "Latitude"]
QUERY = (
    "SigninLogs\n| where TimeGenerated > ago({time_window})\n| extend IngestionTime = ingestion_time()\n"
    "| project TimeGenerated, IngestionTime, UserPrincipalName, City, Latitude"
)
# The answer's columns: another order than the source's, and IngestionTime, which is not a source column.
WIRE = [
    ("IngestionTime", "datetime"),
    ("City", "string"),
    ("TimeGenerated", "datetime"),
    ("Latitude", "real"),
    ("UserPrincipalName", "string"),
]


def source(**overrides: Any) -> DatasetSource:
    values: dict[str, Any] = {
        "id": "signin_failures",
        "name": "Sign-in failures",
        "kind": "log_analytics",
        "output_filename": "signin-failures.tsv",
        "columns": COLUMNS,
        "query": QUERY,
    }
    values.update(overrides)
    return DatasetSource(**values)


def at(minutes: float) -> dt.datetime:
    return NOW - dt.timedelta(hours=24) + dt.timedelta(minutes=minutes)


def wire_row(minute: int) -> list[Any]:
    """One answer row as the SDK hands it over: datetimes parsed, the rest as JSON decoded it."""
    return [at(minute + 3), f"City {minute}", at(minute), 47.5 + minute, f"user{minute}@contoso.com"]


@dataclass
class FakeClient:
    """Answers with the rows whose TimeGenerated is in the span; `partial_over` minutes: a longer span
    is partial with its first half of rows; `fail` spans (start, end) raise."""

    rows: list[list[Any]]
    partial_over: float | None = None
    fail: set[tuple[dt.datetime, dt.datetime]] = field(default_factory=set)
    calls: list[dict[str, Any]] = field(default_factory=list)

    def query_workspace(
        self,
        workspace_id: str,
        query: str,
        *,
        timespan: tuple[dt.datetime, dt.datetime],
        server_timeout: int | None = None,
        **kwargs: Any,
    ) -> LogsQueryResult | LogsQueryPartialResult:
        start, end = timespan
        self.calls.append(
            {"workspace": workspace_id, "query": query, "span": (start, end), "wait": server_timeout}
        )
        if (start, end) in self.fail:
            raise HttpResponseError(message="Service unavailable")
        rows = [row for row in self.rows if start <= row[2] <= end]
        table = LogsTable(
            name="PrimaryResult",
            columns=[name for name, _ in WIRE],
            columns_types=[kind for _, kind in WIRE],
            rows=rows,
        )
        if self.partial_over is not None and (end - start) > dt.timedelta(minutes=self.partial_over):
            half = LogsTable(
                name="PrimaryResult",
                columns=table.columns,
                columns_types=table.columns_types,
                rows=rows[: len(rows) // 2],
            )
            error = LogsQueryError(
                code="PartialError",
                message="Response contained partial errors",
                details=[{"code": "EngineError", "innererror": {"message": "E_QUERY_RESULT_SET_TOO_LARGE"}}],
            )
            return LogsQueryPartialResult(partial_data=[half], partial_error=error)
        return LogsQueryResult(tables=[table])


def runner(client: FakeClient, limits: QueryLimits | None = None) -> LogAnalyticsRunner:
    return LogAnalyticsRunner(client, WORKSPACE, 180, ManualClock(NOW), limits)


FULL = QueryWindow(start=at(0), end=NOW)


def expected(rows: list[list[Any]]) -> list[list[str | None]]:
    return [[render_value(r[2]), r[4], r[1], repr(r[3])] for r in rows]


# --- rendering ------------------------------------------------------------------------------------


def test_the_kql_gets_its_window_literal_and_for_an_incremental_run_the_ingestion_bounds() -> None:
    full = render_kql(source(), FULL)
    assert "ago(24h)" in full
    assert "{time_window}" not in full
    assert "IngestionTime >" not in full
    window = QueryWindow(
        start=at(0), end=NOW, ingested_after=dt.datetime(2026, 12, 7, 9, 50, 0, 123456, dt.UTC)
    )
    incremental = render_kql(source(query_time_window_hours=48), window)
    assert "ago(48h)" in incremental
    assert incremental.endswith(
        "\n| where IngestionTime > datetime(2026-12-07T09:50:00.123456Z)"
        " and IngestionTime <= datetime(2026-12-07T12:00:00.000000Z)"
    )


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, None),
        ("tab\there\nand newline", "tab\there\nand newline"),  # escaping is the TSV's business
        ("Zürich 東京", "Zürich 東京"),
        (dt.datetime(2026, 12, 7, 10, 0, 1, 234567, dt.UTC), "2026-12-07T10:00:01.234Z"),
        (
            dt.datetime(2026, 12, 7, 12, 0, tzinfo=dt.timezone(dt.timedelta(hours=2))),
            "2026-12-07T10:00:00.000Z",
        ),
        (dt.datetime(2026, 12, 7, 10, 0), "2026-12-07T10:00:00.000Z"),
        (True, "true"),
        (False, "false"),
        (50126, "50126"),
        (-33.8688, "-33.8688"),
        (0.1 + 0.2, "0.30000000000000004"),
        ({"b": [1, "x"], "a": None}, '{"a":null,"b":[1,"x"]}'),
        ([1.5, "ü"], '[1.5,"ü"]'),
    ],
)
def test_values_render_as_the_contract_says(value: Any, text: str | None) -> None:
    assert render_value(value) == text


def test_render_rows_orders_columns_and_only_converts_what_is_not_text() -> None:
    raw: list[list[Any]] = [["a", 1, None], ["b\tc", None, dt.datetime(2026, 1, 1, tzinfo=dt.UTC)]]
    rows = render_rows(raw, [2, 0, 1])
    assert rows == [[None, "a", "1"], ["2026-01-01T00:00:00.000Z", "b\tc", None]]
    # A string column that holds something else after all is rendered, not passed through.
    assert render_rows([[5]], [0]) == [["5"]]
    assert render_rows([], [0, 1]) == []


@pytest.mark.parametrize(
    "column",
    [
        [dt.datetime(2026, 1, 1, 0, 0, 0, 999999, dt.UTC), dt.datetime(1999, 12, 31, 23, 59, tzinfo=dt.UTC)],
        [dt.datetime(2026, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=-5))), dt.datetime(2026, 1, 1)],
        [dt.datetime(2026, 1, 1, tzinfo=dt.UTC), None, "2026-01-01T00:00:00Z"],
        [1.5, -0.0, 1e300, None, 7],
        [1, 2, 3],
        [True, False, None],
        [{"a": 1}, [], "x", None, 2.5],
    ],
)
def test_a_column_rendered_whole_reads_like_its_values_rendered_one_by_one(column: list[Any]) -> None:
    assert render_rows([[v] for v in column], [0]) == [[render_value(v)] for v in column]
    assert render_rows([["x", v] for v in column], [1, 0]) == [[render_value(v), "x"] for v in column]


# --- the runner -----------------------------------------------------------------------------------


def test_a_complete_answer_is_rendered_in_the_source_column_order_with_the_newest_ingestion_time() -> None:
    rows = [wire_row(m) for m in range(0, 600, 7)]
    client = FakeClient(rows)
    outcome = runner(client).run(source(), FULL)
    assert outcome.complete
    assert outcome.splits == 0
    assert outcome.errors == []
    assert outcome.columns == COLUMNS
    assert outcome.rows == expected(rows)
    assert outcome.max_ingestion_time == max(r[0] for r in rows)
    assert [c["span"] for c in client.calls] == [(FULL.start, FULL.end)]
    assert client.calls[0]["workspace"] == WORKSPACE
    assert client.calls[0]["wait"] == 180


def test_a_null_guid_or_timespan_is_a_null_although_the_sdk_made_it_text() -> None:
    table = LogsTable(
        name="PrimaryResult",
        columns=["TimeGenerated", "UserPrincipalName", "City", "Latitude", "IngestionTime"],
        columns_types=["datetime", "guid", "timespan", "real", "datetime"],
        rows=[
            [at(1), None, None, 1.5, at(2)],
            [at(3), "0b9a3c1e-aaaa-4bbb-8ccc-0123456789ab", "01:00:00", None, at(4)],
        ],
    )
    rows, newest = table_rows(source(), table)
    assert rows == [
        ["2026-12-06T12:01:00.000Z", None, None, "1.5"],
        ["2026-12-06T12:03:00.000Z", "0b9a3c1e-aaaa-4bbb-8ccc-0123456789ab", "01:00:00", None],
    ]
    assert newest == at(4)


def test_a_partial_answer_is_split_in_halves_until_every_part_is_complete() -> None:
    rows = [wire_row(m) for m in range(0, 24 * 60, 11)]
    client = FakeClient(rows, partial_over=6 * 60)  # spans over 6 hours are cut
    outcome = runner(client).run(source(), FULL)
    assert outcome.complete
    assert outcome.errors == []
    assert outcome.splits == 3  # 24 h -> 2 x 12 h -> 4 x 6 h
    assert sorted(map(tuple, outcome.rows)) == sorted(map(tuple, expected(rows)))
    assert len(outcome.rows) == len(rows)  # nothing twice, although both halves include their boundary
    spans = [c["span"] for c in client.calls]
    assert len(spans) == 7
    leaves = sorted(s for s in spans if s[1] - s[0] <= dt.timedelta(hours=6))
    assert [s[0] for s in leaves] == [at(i * 360) for i in range(4)]
    assert [s[1] for s in leaves] == [at((i + 1) * 360) for i in range(4)]


def test_a_row_on_a_split_boundary_is_kept_once() -> None:
    rows = [wire_row(720), wire_row(719), wire_row(721)]  # minute 720 is the middle of the window
    outcome = runner(FakeClient(rows, partial_over=13 * 60)).run(source(), FULL)
    assert outcome.complete
    assert outcome.splits == 1
    assert sorted(map(tuple, outcome.rows)) == sorted(map(tuple, expected(rows)))


def test_still_partial_at_the_deepest_split_keeps_the_rows_but_is_not_complete() -> None:
    rows = [wire_row(m) for m in range(0, 24 * 60, 5)]
    client = FakeClient(rows, partial_over=60)
    outcome = runner(client, QueryLimits(max_depth=2)).run(source(), FULL)
    assert not outcome.complete
    assert outcome.splits == 3
    assert len(outcome.errors) == 4  # each 6-hour part stayed partial
    assert all("PartialError" in e and "E_QUERY_RESULT_SET_TOO_LARGE" in e for e in outcome.errors)
    assert 0 < len(outcome.rows) < len(rows)  # what the parts returned, flagged incomplete


def test_an_answer_near_the_row_limit_is_split_and_one_at_the_limit_at_the_bottom_is_incomplete() -> None:
    rows = [wire_row(m) for m in range(0, 24 * 60, 60)]  # 24 rows, one per hour
    near = runner(FakeClient(rows), QueryLimits(row_limit=20, near_ratio=0.9)).run(source(), FULL)
    assert near.complete
    assert near.splits == 1
    assert len(near.rows) == 24
    cut = runner(FakeClient(rows), QueryLimits(row_limit=12, near_ratio=0.9, max_depth=1)).run(source(), FULL)
    assert not cut.complete
    assert cut.splits == 1
    assert len(cut.errors) == 2
    assert all("at the query API's limit" in e for e in cut.errors)


def test_a_span_is_not_split_below_the_smallest_part() -> None:
    rows = [wire_row(m) for m in range(0, 24 * 60, 30)]
    limits = QueryLimits(min_span_seconds=8 * 3600)  # 24 h -> 12 h, and no further
    outcome = runner(FakeClient(rows, partial_over=60), limits).run(source(), FULL)
    assert outcome.splits == 1
    assert not outcome.complete
    assert len(outcome.errors) == 2


def test_a_failed_query_raises_and_a_failed_half_makes_the_outcome_incomplete() -> None:
    rows = [wire_row(m) for m in range(0, 24 * 60, 30)]
    with pytest.raises(QueryFailedError, match=r"signin_failures.*Service unavailable"):
        runner(FakeClient(rows, fail={(FULL.start, FULL.end)})).run(source(), FULL)
    middle = at(720)
    client = FakeClient(rows, partial_over=13 * 60, fail={(middle, FULL.end)})
    outcome = runner(client).run(source(), FULL)
    assert not outcome.complete
    assert outcome.splits == 1
    assert len(outcome.errors) == 1
    assert "Service unavailable" in outcome.errors[0]
    assert outcome.rows == expected([r for r in rows if r[2] <= middle])


def test_a_missing_column_is_an_error_not_an_empty_column() -> None:
    with pytest.raises(QueryFailedError, match="no column Country"):
        runner(FakeClient([wire_row(1)])).run(source(columns=[*COLUMNS, "Country"]), FULL)


def test_an_incremental_answer_without_ingestion_time_is_an_error() -> None:
    @dataclass
    class NoIngestion(FakeClient):
        def query_workspace(self, *args: Any, **kwargs: Any) -> LogsQueryResult | LogsQueryPartialResult:
            result = super().query_workspace(*args, **kwargs)
            assert isinstance(result, LogsQueryResult)
            table = result.tables[0]
            keep = [i for i, name in enumerate(table.columns) if name != "IngestionTime"]
            rows = [[list(row)[i] for i in keep] for row in table.rows]
            names = [table.columns[i] for i in keep]
            types = [table.columns_types[i] for i in keep]
            return LogsQueryResult(
                tables=[LogsTable(name="t", columns=names, columns_types=types, rows=rows)]
            )

    with pytest.raises(QueryFailedError, match="no IngestionTime column"):
        runner(NoIngestion([wire_row(1)])).run(source(), FULL)
    query = QUERY.replace("| extend IngestionTime = ingestion_time()\n", "").replace("IngestionTime, ", "")
    outcome = runner(NoIngestion([wire_row(1)])).run(source(incremental=False, query=query), FULL)
    assert outcome.complete
    assert outcome.max_ingestion_time is None
    assert len(outcome.rows) == 1


def test_an_events_source_is_refused() -> None:
    events = source(kind="events", query="signin_failures", id="signin_failures_events")
    with pytest.raises(QueryFailedError, match="not a log_analytics source"):
        runner(FakeClient([])).run(events, FULL)


# --- retries, tokens, the client ------------------------------------------------------------------


@dataclass
class _Http:
    status_code: int
    headers: dict[str, str]


@dataclass
class _Pipeline:
    http_response: _Http


@pytest.mark.parametrize(
    ("status", "headers", "retried"),
    [
        (429, {}, True),
        (429, {"Retry-After": "5"}, True),
        (429, {"Retry-After": "600"}, False),  # longer than we wait: fail now
        (500, {}, True),
        (502, {}, True),
        (503, {"Retry-After": "1"}, True),
        (504, {}, True),
        (400, {"Retry-After": "1"}, False),  # the stock policy would retry this
        (401, {}, False),
        (403, {}, False),
        (404, {}, False),
        (501, {}, False),
    ],
)
def test_the_retry_policy_retries_throttling_and_server_errors_only(
    status: int, headers: dict[str, str], retried: bool
) -> None:
    policy = BoundedRetryPolicy(retry_total=3, max_retry_after=60)
    settings = policy.configure_retries({})
    assert policy.is_retry(settings, _Pipeline(_Http(status, headers))) is retried  # type: ignore[arg-type]
    settings["total"] = 0
    assert policy.is_retry(settings, _Pipeline(_Http(429, {}))) is False  # type: ignore[arg-type]


class _Provider:
    def __init__(self, fail: bool = False) -> None:
        self.scopes: list[str] = []
        self.fail = fail

    def get_token(self, scope: str) -> str:
        self.scopes.append(scope)
        if self.fail:
            raise AuthError("AADSTS7000215: invalid client secret")
        return "token-for-" + scope


def test_the_credential_asks_the_app_provider_for_each_request() -> None:
    provider = _Provider()
    credential = TokenProviderCredential(provider, wall_clock=lambda: 1_000.0)
    token = credential.get_token(f"{LOG_ANALYTICS_RESOURCE}/.default")
    assert token.token == "token-for-https://api.loganalytics.io/.default"
    assert token.expires_on == 1_060  # the policy asks again; the provider's cache decides
    assert "token-for" not in repr(credential)
    with pytest.raises(ValueError, match="one scope"):
        credential.get_token("a/.default", "b/.default")
    with pytest.raises(ClientAuthenticationError, match="invalid client secret"):
        TokenProviderCredential(_Provider(fail=True)).get_token("x/.default")


@pytest.mark.parametrize(
    ("endpoint", "audience"),
    [
        ("https://api.loganalytics.io/v1", "https://api.loganalytics.io"),
        ("https://api.loganalytics.us/v1", "https://api.loganalytics.us"),
        ("https://api.loganalytics.azure.cn/v1", "https://api.loganalytics.azure.cn"),
        ("https://127.0.0.1:7072/v1", LOG_ANALYTICS_RESOURCE),  # the simulator keeps the real resource
        ("https://localhost:7072/v1", LOG_ANALYTICS_RESOURCE),
    ],
)
def test_the_token_audience_follows_the_endpoint(endpoint: str, audience: str) -> None:
    assert default_audience(endpoint) == audience
    assert build_logs_client(endpoint, _Provider())._endpoint == endpoint.rsplit("/v1", 1)[0]


def test_the_client_refuses_plain_http_and_relative_endpoints() -> None:
    for endpoint in ("http://api.loganalytics.io/v1", "http://127.0.0.1:7072/v1"):
        with pytest.raises(ValueError, match="https"):
            build_logs_client(endpoint, _Provider())
    with pytest.raises(ValueError, match="absolute"):
        default_audience("api.loganalytics.io/v1")


def test_the_runner_takes_a_bounded_server_timeout() -> None:
    for seconds in (0, 601):
        with pytest.raises(ValueError, match="server_timeout_seconds"):
            LogAnalyticsRunner(FakeClient([]), WORKSPACE, seconds, ManualClock(NOW))


# --- the simulator's query API, in process --------------------------------------------------------

SIM_EPOCH = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def sim_app() -> SimulatorApp:
    config = SimulatorConfig(seed=5, events_per_day=10, epoch=SIM_EPOCH, started_at_unix=0.0)
    app = SimulatorApp(config, Tenant(config))
    fixed = int((SIM_EPOCH + dt.timedelta(days=3)).timestamp() * 1_000_000)
    app.now_us = lambda: fixed  # type: ignore[method-assign]
    return app


def call(
    app: SimulatorApp,
    body: Any,
    token: str | None = "issue",  # noqa: S107 - "issue": a fresh token of the simulator's
    prefer: str = "wait=180",
) -> tuple[int, Any]:
    headers = {"Prefer": prefer, "Content-Type": "application/json"}
    if token == "issue":
        token = app.issue_token(LOG_ANALYTICS_AUDIENCE)
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = app.handle("POST", f"/v1/workspaces/{WORKSPACE}/query", headers, raw)
    return response.status, json.loads(response.body)


def span(hours_from: float, hours_to: float) -> str:
    start = SIM_EPOCH + dt.timedelta(days=2, hours=hours_from)
    end = SIM_EPOCH + dt.timedelta(days=2, hours=hours_to)
    return f"{start.isoformat().replace('+00:00', 'Z')}/{end.isoformat().replace('+00:00', 'Z')}"


def test_the_simulator_answers_the_projected_columns_over_the_timespan(sim_app: SimulatorApp) -> None:
    status, body = call(sim_app, {"query": source().render_query(), "timespan": span(0, 6)})
    assert status == 200
    assert "error" not in body
    table = body["tables"][0]
    assert table["name"] == "PrimaryResult"
    assert [c["name"] for c in table["columns"]] == [
        "TimeGenerated", "IngestionTime", "UserPrincipalName", "City", "Latitude"
    ]  # fmt: skip
    assert [c["type"] for c in table["columns"]] == ["datetime", "datetime", "string", "string", "real"]
    lo, hi = span(0, 6).split("/")
    assert table["rows"]
    assert all(lo <= row[0] <= hi for row in table["rows"])
    assert all(row[1] > row[0] for row in table["rows"])  # ingested after it happened
    again = call(sim_app, {"query": source().render_query(), "timespan": span(0, 6)})[1]
    assert again == body  # deterministic


def test_the_simulator_honours_the_appended_ingestion_bounds(sim_app: SimulatorApp) -> None:
    after = SIM_EPOCH + dt.timedelta(days=2, hours=3)
    window = QueryWindow(
        start=SIM_EPOCH + dt.timedelta(days=2),
        end=SIM_EPOCH + dt.timedelta(days=2, hours=6),
        ingested_after=after,
    )
    status, body = call(sim_app, {"query": render_kql(source(), window), "timespan": span(0, 6)})
    assert status == 200
    ingested = [row[1] for row in body["tables"][0]["rows"]]
    assert ingested
    assert all("2026-11-03T03:00:00.000Z" < t <= "2026-11-03T06:00:00.000Z" for t in ingested)
    full = call(sim_app, {"query": source().render_query(), "timespan": span(0, 6)})[1]["tables"][0]["rows"]
    assert sorted(ingested) == sorted(
        r[1] for r in full if "2026-11-03T03:00:00.000Z" < r[1] <= "2026-11-03T06:00:00.000Z"
    )


def test_the_simulator_without_a_project_answers_every_column_and_parses_durations(
    sim_app: SimulatorApp,
) -> None:
    status, body = call(sim_app, {"query": "ThreatIntelligenceIndicator | where Active", "timespan": "PT6H"})
    assert status == 200
    names = [c["name"] for c in body["tables"][0]["columns"]]
    assert names[:3] == ["TimeGenerated", "IngestionTime", "IndicatorId"]
    assert "ExpirationDateTime" in names
    rows = body["tables"][0]["rows"]
    assert rows
    assert all(row[0] >= "2026-11-03T18:00:00.000Z" for row in rows)


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"{not json", 400, "BadArgumentError"),
        ({"timespan": "PT1H"}, 400, "BadArgumentError"),
        ({"query": "Heartbeat | take 1", "timespan": "PT1H"}, 400, "BadArgumentError"),
        ({"query": "SigninLogs | project Nope", "timespan": "PT1H"}, 400, "BadArgumentError"),
        ({"query": "SigninLogs", "timespan": "yesterday"}, 400, "BadArgumentError"),
        ({"query": "SigninLogs", "timespan": 5}, 400, "BadArgumentError"),
    ],
)
def test_the_simulator_refuses_what_the_service_refuses(
    sim_app: SimulatorApp, body: Any, status: int, code: str
) -> None:
    answer_status, answer = call(sim_app, body)
    assert (answer_status, answer["error"]["code"]) == (status, code)


def test_the_simulator_checks_the_token_like_the_service(sim_app: SimulatorApp) -> None:
    assert call(sim_app, {"query": "SigninLogs"}, token=None)[1]["error"]["code"] == "AuthenticationFailed"
    status, body = call(sim_app, {"query": "SigninLogs"}, token="forged")
    assert (status, body["error"]["code"]) == (403, "InvalidAuthenticationToken")
    graph = sim_app.issue_token("https://graph.microsoft.com")
    status, body = call(sim_app, {"query": "SigninLogs"}, token=graph)
    assert (status, body["error"]["code"]) == (403, "InvalidAuthenticationTokenAudience")


def test_simulator_faults_partial_throttle_and_row_limit(sim_app: SimulatorApp) -> None:
    def control(route: str, document: dict[str, Any]) -> Any:
        response = sim_app.handle("POST", f"/_sim/loganalytics/{route}", {}, json.dumps(document).encode())
        assert response.status == 200, response.body
        return json.loads(response.body)

    query = {"query": source().render_query(), "timespan": span(0, 12)}
    try:
        control("fault", {"partial_over_seconds": 6 * 3600, "throttle": 1, "retry_after": 2})
        response = sim_app.handle(
            "POST",
            f"/v1/workspaces/{WORKSPACE}/query",
            {"Authorization": f"Bearer {sim_app.issue_token(LOG_ANALYTICS_AUDIENCE)}"},
            json.dumps(query).encode(),
        )
        assert response.status == 429
        assert ("Retry-After", "2") in response.headers
        status, partial = call(sim_app, query)
        full = call(sim_app, {**query, "timespan": span(0, 6)})[1]["tables"][0]["rows"]
        assert status == 200
        assert partial["error"]["code"] == "PartialError"
        assert "E_QUERY_RESOURCES_EXHAUSTED" in partial["error"]["details"][0]["innererror"]["message"]
        assert len(partial["tables"][0]["rows"]) > 0
        assert len(full) > 0
        control("fault", {"partial_over_seconds": None, "row_limit": 5})
        status, cut = call(sim_app, query)
        assert len(cut["tables"][0]["rows"]) == 5
        assert "E_QUERY_RESULT_SET_TOO_LARGE" in json.dumps(cut["error"])
        log = json.loads(sim_app.handle("GET", "/_sim/loganalytics/queries", {}, b"").body)
        assert [q["status"] for q in log["queries"][-4:]] == [429, 200, 200, 200]
        assert [q["partial"] for q in log["queries"][-3:]] == [True, False, True]
        assert log["queries"][-1]["wait"] == 180
        assert log["count"] == len(log["queries"])
    finally:
        control("reset", {})
    bad = sim_app.handle("POST", "/_sim/loganalytics/fault", {}, b'{"throttle": -1}')
    assert bad.status == 400


def test_simulator_truth_is_what_a_query_of_every_column_sees(sim_app: SimulatorApp) -> None:
    lo, hi = span(0, 24).split("/")
    truth = json.loads(
        sim_app.handle("GET", f"/_sim/loganalytics/truth?table=SigninLogs&start={lo}&end={hi}", {}, b"").body
    )
    answer = call(sim_app, {"query": "SigninLogs", "timespan": span(0, 24)})[1]["tables"][0]
    assert truth["rows"] == answer["rows"]
    assert truth["columns"] == answer["columns"]
    texts = {value for row in truth["rows"] for value in row if isinstance(value, str)}
    assert any("\n" in t for t in texts)
    assert any(not t.isascii() for t in texts)
