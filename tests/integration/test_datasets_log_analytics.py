"""LogAnalyticsRunner with the real azure-monitor-query SDK against the simulator's Log Analytics query API,
over TLS with the simulator's CA: the shipped sources equal the simulator's ground truth, incremental
runs catch late rows, partial answers are split and completed, 429 is retried as Retry-After says."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from devtools.certs import ensure_local_certificates
from devtools.simulator import SimulatorConfig, TenantSimulator
from shared.datasets.log_analytics import (
    LOG_ANALYTICS_SCOPE,
    LogAnalyticsRunner,
    QueryFailedError,
    QueryLimits,
    build_logs_client,
    render_value,
)
from shared.datasets.querying import QueryOutcome, QueryWindow
from shared.datasets.sources import DatasetSource, load_default_sources
from tests.support.clock import ManualClock

EPOCH = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
START = EPOCH + dt.timedelta(days=9)  # the simulator's clock when a test begins
WORKSPACE = "5b2e3c1d-7a9f-4e21-b3c4-d5e6f7a8b9c0"
TABLES = {"signin_failures": "SigninLogs", "threat_intel_indicators": "ThreatIntelligenceIndicator"}


class SimTokens:
    """A TokenProvider that asks the simulator's token endpoint (client credentials) for each scope."""

    def __init__(self, sim: TenantSimulator) -> None:
        self.sim = sim
        self.scopes: list[str] = []

    def get_token(self, scope: str) -> str:
        self.scopes.append(scope)
        response = requests.post(
            f"{self.sim.authority}/oauth2/v2.0/token",
            data={
                "client_id": "aoc-app",
                "client_secret": "s3cret",
                "grant_type": "client_credentials",
                "scope": scope,
            },
            verify=str(self.sim.ca_cert),
            timeout=10,
        )
        assert response.status_code == 200, response.text
        return str(response.json()["access_token"])


class Sim:
    def __init__(self, sim: TenantSimulator) -> None:
        self.sim = sim
        self.now = START
        sim.app.now_us = lambda: int(self.now.timestamp() * 1_000_000)  # type: ignore[method-assign]
        self.tokens = SimTokens(sim)
        self.session = requests.Session()
        self.verify = str(sim.ca_cert)  # per call: REQUESTS_CA_BUNDLE would override a session's verify

    def control(self, route: str, document: dict[str, Any]) -> Any:
        response = self.session.post(
            f"{self.sim.base_url}/_sim/loganalytics/{route}", json=document, verify=self.verify, timeout=10
        )
        assert response.status_code == 200, response.text
        return response.json()

    def queries(self) -> list[dict[str, Any]]:
        response = self.session.get(
            f"{self.sim.base_url}/_sim/loganalytics/queries", verify=self.verify, timeout=10
        )
        return list(response.json()["queries"])

    def truth(
        self, source: DatasetSource, start: dt.datetime, end: dt.datetime
    ) -> list[tuple[str | None, ...]]:
        """The rows the simulator holds for the source's table, visible now, as the source's text rows."""
        response = self.session.get(
            f"{self.sim.base_url}/_sim/loganalytics/truth",
            params={"table": TABLES[source.id], "start": iso(start), "end": iso(end)},
            verify=self.verify,
            timeout=30,
        )
        body = response.json()
        names = [c["name"] for c in body["columns"]]
        positions = [names.index(column) for column in source.columns]
        return sorted(tuple(render_value(row[p]) for p in positions) for row in body["rows"])

    def runner(self, limits: QueryLimits | None = None, **client: Any) -> LogAnalyticsRunner:
        logs = build_logs_client(f"{self.sim.base_url}/v1", self.tokens, str(self.sim.ca_cert), **client)
        return LogAnalyticsRunner(logs, WORKSPACE, 180, ManualClock(self.now), limits)


def iso(value: dt.datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def rows_of(outcome: QueryOutcome) -> list[tuple[str | None, ...]]:
    return sorted(tuple(row) for row in outcome.rows)


@pytest.fixture(scope="module")
def simulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TenantSimulator]:
    certificates = ensure_local_certificates(Path(tmp_path_factory.mktemp("certs")))
    config = SimulatorConfig(seed=19, events_per_day=10, epoch=EPOCH)
    with TenantSimulator(config, certificates=certificates) as sim:
        yield sim


@pytest.fixture
def sim(simulator: TenantSimulator) -> Iterator[Sim]:
    handle = Sim(simulator)
    handle.control("reset", {})
    yield handle
    handle.control("reset", {})


@pytest.fixture(scope="module")
def sources() -> dict[str, DatasetSource]:
    return {s.id: s for s in load_default_sources().sources if s.kind == "log_analytics"}


@pytest.mark.parametrize("source_id", list(TABLES))
def test_a_full_run_of_each_shipped_source_equals_the_ground_truth(
    sim: Sim, sources: dict[str, DatasetSource], source_id: str
) -> None:
    source = sources[source_id]
    window = QueryWindow(start=sim.now - source.window, end=sim.now)
    outcome = sim.runner().run(source, window)
    assert outcome.complete
    assert outcome.splits == 0
    assert outcome.columns == source.columns
    truth = sim.truth(source, window.start, window.end)
    assert len(truth) > 100
    assert rows_of(outcome) == truth
    assert outcome.max_ingestion_time is not None
    assert outcome.max_ingestion_time <= sim.now
    (query,) = sim.queries()
    assert query["workspace"] == WORKSPACE
    assert query["wait"] == 180  # the server timeout, as Prefer: wait=180
    assert (query["start"], query["end"]) == (iso(window.start), iso(window.end))
    assert query["ingested_after"] is None
    assert "{time_window}" not in query["query"]
    assert f"ago({source.query_time_window_hours}h)" in query["query"]
    assert sim.tokens.scopes[-1] == LOG_ANALYTICS_SCOPE


def test_three_incremental_runs_with_late_rows_end_equal_to_the_ground_truth(
    sim: Sim, sources: dict[str, DatasetSource]
) -> None:
    source = sources["signin_failures"]
    first = sim.runner().run(source, QueryWindow(start=sim.now - source.window, end=sim.now))
    dataset = set(rows_of(first))
    watermark = first.max_ingestion_time
    assert watermark is not None
    late_seen = 0
    for _ in range(2):
        sim.now += dt.timedelta(hours=2)
        window = QueryWindow(
            start=sim.now - source.window, end=sim.now, ingested_after=watermark - source.overlap
        )
        outcome = sim.runner().run(source, window)
        assert outcome.complete
        assert outcome.max_ingestion_time is not None
        assert outcome.max_ingestion_time > watermark
        time_index = source.columns.index(source.time_column)
        late_seen += sum(1 for row in outcome.rows if (row[time_index] or "") < iso(watermark))
        # What the refresh service does: merge, deduplicate, drop what left the window.
        lower = render_value(window.start) or ""
        dataset = {row for row in dataset | set(rows_of(outcome)) if (row[time_index] or "") >= lower}
        watermark = outcome.max_ingestion_time
        assert sorted(dataset) == sim.truth(source, window.start, window.end)
    assert late_seen > 0  # rows whose TimeGenerated was before the watermark arrived late and were caught
    incremental = [q for q in sim.queries() if q["ingested_after"] is not None]
    assert len(incremental) == 2


def test_a_partial_answer_is_split_and_completed(sim: Sim, sources: dict[str, DatasetSource]) -> None:
    source = sources["signin_failures"]
    sim.control("fault", {"partial_over_seconds": 6 * 3600})
    window = QueryWindow(start=sim.now - source.window, end=sim.now)
    outcome = sim.runner().run(source, window)
    assert outcome.complete
    assert outcome.errors == []
    assert outcome.splits == 3
    assert rows_of(outcome) == sim.truth(source, window.start, window.end)
    queries = sim.queries()
    assert [q["partial"] for q in queries] == [True, True, False, False, True, False, False]


def test_a_part_still_partial_at_the_deepest_split_makes_the_outcome_incomplete(
    sim: Sim, sources: dict[str, DatasetSource]
) -> None:
    source = sources["signin_failures"]
    sim.control("fault", {"partial_over_seconds": 1800})
    window = QueryWindow(start=sim.now - source.window, end=sim.now)
    outcome = sim.runner(QueryLimits(max_depth=2)).run(source, window)
    assert not outcome.complete
    assert outcome.splits == 3
    assert len(outcome.errors) == 4
    assert all("E_QUERY_RESOURCES_EXHAUSTED" in error for error in outcome.errors), outcome.errors
    assert set(rows_of(outcome)) < set(sim.truth(source, window.start, window.end))


def test_an_answer_cut_at_the_row_limit_is_split_until_it_fits(
    sim: Sim, sources: dict[str, DatasetSource]
) -> None:
    source = sources["signin_failures"]
    sim.control("fault", {"row_limit": 200})
    window = QueryWindow(start=sim.now - source.window, end=sim.now)
    outcome = sim.runner(QueryLimits(row_limit=200)).run(source, window)
    assert outcome.complete
    assert outcome.splits >= 2
    assert rows_of(outcome) == sim.truth(source, window.start, window.end)
    queries = sim.queries()
    assert queries[0]["partial"]  # 24 h of rows is more than 200: the service cut it
    assert all(q["rows"] < 200 for q in queries if not q["partial"])


def test_429_is_retried_after_what_retry_after_says(sim: Sim, sources: dict[str, DatasetSource]) -> None:
    source = sources["threat_intel_indicators"]
    sim.control("fault", {"throttle": 2, "retry_after": 1})
    window = QueryWindow(start=sim.now - source.window, end=sim.now)
    outcome = sim.runner().run(source, window)
    assert outcome.complete
    assert rows_of(outcome) == sim.truth(source, window.start, window.end)
    assert [q["status"] for q in sim.queries()] == [429, 429, 200]


def test_throttling_past_the_retry_budget_fails_the_run(sim: Sim, sources: dict[str, DatasetSource]) -> None:
    source = sources["signin_failures"]
    sim.control("fault", {"throttle": 5, "retry_after": 0})
    with pytest.raises(QueryFailedError, match="HTTP 429"):
        sim.runner(retry_total=2, backoff_factor=0.0).run(
            source, QueryWindow(start=sim.now - source.window, end=sim.now)
        )
    assert [q["status"] for q in sim.queries()] == [429, 429, 429]  # the call and two retries, no more


def test_a_retry_after_longer_than_the_cap_is_not_waited(sim: Sim, sources: dict[str, DatasetSource]) -> None:
    source = sources["signin_failures"]
    sim.control("fault", {"throttle": 1, "retry_after": 3600})
    with pytest.raises(QueryFailedError, match="HTTP 429"):
        sim.runner(max_retry_after=30).run(source, QueryWindow(start=sim.now - source.window, end=sim.now))
    assert [q["status"] for q in sim.queries()] == [429]


def test_server_errors_are_retried(sim: Sim, sources: dict[str, DatasetSource]) -> None:
    source = sources["signin_failures"]
    sim.control("fault", {"server_errors": 1})
    outcome = sim.runner(backoff_factor=0.0).run(
        source, QueryWindow(start=sim.now - source.window, end=sim.now)
    )
    assert outcome.complete
    assert [q["status"] for q in sim.queries()] == [503, 200]


def test_a_token_for_another_api_is_refused_and_the_run_fails(
    sim: Sim, sources: dict[str, DatasetSource]
) -> None:
    source = sources["signin_failures"]
    client = build_logs_client(
        f"{sim.sim.base_url}/v1", sim.tokens, str(sim.sim.ca_cert), audience="https://graph.microsoft.com"
    )
    runner = LogAnalyticsRunner(client, WORKSPACE, 180, ManualClock(sim.now))
    with pytest.raises(QueryFailedError, match="HTTP 403") as raised:
        runner.run(source, QueryWindow(start=sim.now - source.window, end=sim.now))
    assert "InvalidAuthenticationTokenAudience" in str(raised.value)
    assert "Bearer" not in str(raised.value)
