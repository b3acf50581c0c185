"""The datasets routes (shared.api.datasets_api) over the real RefreshService, an in-memory dataset store,
scripted query runners, an in-memory table for the rate limit and a clock moved by hand."""

from __future__ import annotations

import base64
import datetime as dt
import email.utils
import json
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest

from shared.api.auth import Authenticator
from shared.api.datasets_api import DatasetsApi, correlation_id, if_modified_since
from shared.api.events_query import SensitivityPolicy
from shared.api.refresh_limits import CallerRateLimit, RateLimited, caller_key
from shared.api.responses import ApiGuard, ApiResponse
from shared.datasets.querying import QueryOutcome, QueryWindow
from shared.datasets.refresh import RefreshService
from shared.datasets.sources import DatasetSource, SourceSet, load_sources
from shared.datasets.tsv import decode_tsv
from shared.platform.clock import utc_iso
from tests.support.clock import ManualClock
from tests.support.dataset_memory import MemoryDatasetStore, ScriptedRunner
from tests.support.memory_table import MemoryTable

START = dt.datetime(2026, 12, 7, 10, 0, 30, tzinfo=dt.UTC)
COLUMNS = ["TimeGenerated", "UserPrincipalName", "City"]
SOURCES_YAML = f"""
version: 1
sources:
  - id: signin_failures
    name: Sign-in failures
    kind: log_analytics
    refresh_interval_seconds: 300
    query_time_window_hours: 24
    incremental: true
    output_filename: signin-failures.tsv
    columns: [{", ".join(COLUMNS)}, IngestionTime]
    query: |
      SigninLogs
      | where TimeGenerated > ago({{time_window}})
      | extend IngestionTime = ingestion_time()
      | project TimeGenerated, UserPrincipalName, City, IngestionTime
  - id: signin_failures_events
    name: Sign-in failures (events)
    kind: events
    refresh_interval_seconds: 300
    incremental: false
    incremental_overlap_minutes: 0
    output_filename: signin-failures-events.tsv
    columns: [{", ".join(COLUMNS)}]
    query: signin_failures
  - id: switched_off
    name: Switched off
    enabled: false
    kind: events
    incremental: false
    output_filename: switched-off.tsv
    columns: [{", ".join(COLUMNS)}]
    query: signin_failures
"""
# Values a TSV must carry unchanged: tab, LF, CR, backslash, non-ASCII.
AWKWARD = ["tab\there", "two\nlines", "carriage\rreturn", "back\\slash", "Zürich 東京 Москва", ""]


def principal_header(user_id: str, roles: list[str]) -> dict[str, str]:
    document = {"identityProvider": "aad", "userId": user_id, "userDetails": f"{user_id}@contoso.com"}
    document["userRoles"] = roles  # type: ignore[assignment]
    return {"x-ms-client-principal": base64.b64encode(json.dumps(document).encode()).decode()}


READER = principal_header("reader-1", ["reader"])
OTHER_READER = principal_header("reader-2", ["reader"])


@dataclass
class Fixture:
    clock: ManualClock
    store: MemoryDatasetStore
    runner_la: ScriptedRunner
    runner_events: ScriptedRunner
    table: MemoryTable
    api: DatasetsApi
    sources: SourceSet
    failing: set[str] = field(default_factory=set)

    def refresh(self, query: str = "", headers: dict[str, str] | None = None) -> ApiResponse:
        url = "https://app.example/api/refresh" + (f"?{query}" if query else "")
        return self.api.refresh(url, b"", headers if headers is not None else READER, "/api/refresh")

    def get(self, source_id: str, headers: dict[str, str] | None = None) -> ApiResponse:
        path = f"/api/datasets/{source_id}"
        return self.api.get_dataset(source_id, headers if headers is not None else READER, path)

    def listing(self) -> dict[str, Any]:
        answer = self.api.list_datasets(READER, "/api/datasets")
        assert answer.status == 200, answer.body
        return dict(json.loads(answer.body))


def _answer(fixture_ref: list[Fixture]) -> Any:
    def answer(source: DatasetSource, window: QueryWindow) -> QueryOutcome:
        fixture = fixture_ref[0]
        if source.id in fixture.failing:
            raise RuntimeError(f"query of {source.id} failed (simulated)")
        now = fixture.clock.now()
        rows: list[list[str | None]] = [
            [utc_iso(now - dt.timedelta(minutes=5 + i)), f"user{i}@contoso.com", AWKWARD[i % len(AWKWARD)]]
            for i in range(len(AWKWARD))
        ]
        if "IngestionTime" in source.columns:
            rows = [[*row, utc_iso(now - dt.timedelta(minutes=1))] for row in rows]
        return QueryOutcome(
            columns=list(source.columns),
            rows=rows,
            max_ingestion_time=now - dt.timedelta(minutes=1),
            complete=True,
        )

    return answer


@pytest.fixture
def fx() -> Fixture:
    clock = ManualClock(START)
    store = MemoryDatasetStore(now=clock.now)
    sources = load_sources(SOURCES_YAML, "test")
    ref: list[Fixture] = []
    runner_la = ScriptedRunner(_answer(ref))
    runner_events = ScriptedRunner(_answer(ref))
    service = RefreshService(
        lambda: sources, store, {"log_analytics": runner_la, "events": runner_events}, clock
    )
    table = MemoryTable()
    guard = ApiGuard(
        Authenticator(verifier=None, swa_enabled=True, key_roles=frozenset()), SensitivityPolicy()
    )
    api = DatasetsApi(guard, lambda: sources, store, service.refresh, CallerRateLimit(table, clock, 6))  # type: ignore[arg-type]
    fixture = Fixture(clock, store, runner_la, runner_events, table, api, sources)
    ref.append(fixture)
    return fixture


def problem(answer: ApiResponse) -> dict[str, Any]:
    assert answer.media_type == "application/problem+json", answer.body
    return dict(json.loads(answer.body))


# --- POST /api/refresh --------------------------------------------------------------------------------


def test_a_refresh_answers_200_with_the_outcomes_and_then_204_within_the_interval(fx: Fixture) -> None:
    first = fx.refresh()
    assert first.status == 200, first.body
    body = json.loads(first.body)
    assert [(o["source_id"], o["status"]) for o in body["outcomes"]] == [
        ("signin_failures", "refreshed"),
        ("signin_failures_events", "refreshed"),
    ]  # the disabled source is not asked for
    assert first.headers["X-Refreshed-Count"] == "2"
    assert uuid.UUID(first.headers["X-Correlation-ID"])
    assert body["outcomes"][0]["rows"] == len(AWKWARD)

    fx.clock.advance(299)
    again = fx.refresh()
    assert (again.status, again.body) == (204, b"")
    assert again.headers["X-Refreshed-Count"] == "0"
    assert "X-Correlation-ID" in again.headers
    assert (len(fx.runner_la.windows), len(fx.runner_events.windows)) == (1, 1)  # no query within it

    fx.clock.advance(1)
    assert fx.refresh("source=signin_failures").status == 200
    assert (len(fx.runner_la.windows), len(fx.runner_events.windows)) == (2, 1)


def test_one_source_is_refreshed_alone(fx: Fixture) -> None:
    answer = fx.refresh("source=signin_failures_events")
    assert answer.status == 200
    assert [o["source_id"] for o in json.loads(answer.body)["outcomes"]] == ["signin_failures_events"]
    assert (len(fx.runner_la.windows), len(fx.runner_events.windows)) == (0, 1)


@pytest.mark.parametrize(
    "query",
    [
        "source=Signin_Failures",
        "source=1abc",
        "source=a-b",
        "source=" + "a" * 64,
        "source=%0Asignin_failures",
        "source=signin_failures%0A",
        "source=..%2Fsignin_failures",
        "source=",
        "source=a&source=b",
        "sources=signin_failures",
    ],
)
def test_a_bad_source_id_or_parameter_is_a_400_before_any_query(fx: Fixture, query: str) -> None:
    answer = fx.refresh(query)
    assert answer.status == 400, (query, answer.body)
    assert problem(answer)["errors"][0]["field"] in ("source", "sources")
    assert "X-Correlation-ID" in answer.headers
    assert (len(fx.runner_la.windows), len(fx.runner_events.windows)) == (0, 0)
    with pytest.raises(Exception, match="does not exist"):  # the rate limit was not consulted either
        fx.table.get_entity("refresh", caller_key("reader-1"))


@pytest.mark.parametrize("source_id", ["no_such_source", "switched_off"])
def test_an_unknown_or_disabled_source_is_a_404(fx: Fixture, source_id: str) -> None:
    answer = fx.refresh(f"source={source_id}")
    assert answer.status == 404
    assert problem(answer)["status"] == 404
    assert (len(fx.runner_la.windows), len(fx.runner_events.windows)) == (0, 0)


def test_a_source_another_refresh_holds_answers_202(fx: Fixture) -> None:
    fx.store.held.add("signin_failures")
    answer = fx.refresh("source=signin_failures")
    assert answer.status == 202
    assert [o["status"] for o in json.loads(answer.body)["outcomes"]] == ["locked"]
    assert answer.headers["X-Refreshed-Count"] == "0"
    assert fx.runner_la.windows == []
    # With another source refreshed in the same call, the answer is 200.
    mixed = fx.refresh()
    assert mixed.status == 200
    statuses = {o["source_id"]: o["status"] for o in json.loads(mixed.body)["outcomes"]}
    assert statuses == {"signin_failures": "locked", "signin_failures_events": "refreshed"}
    assert mixed.headers["X-Refreshed-Count"] == "1"


def test_when_every_source_fails_the_answer_is_a_503_problem_naming_each(fx: Fixture) -> None:
    fx.failing.update({"signin_failures", "signin_failures_events"})
    answer = fx.refresh()
    assert answer.status == 503
    body = problem(answer)
    assert body["type"].endswith("/refresh-failed")
    assert [e["field"] for e in body["errors"]] == ["source signin_failures", "source signin_failures_events"]
    assert all("failed (simulated)" in e["message"] for e in body["errors"])
    assert answer.headers["X-Refreshed-Count"] == "0"
    assert "X-Correlation-ID" in answer.headers
    assert fx.store.files == {}  # nothing published


def test_a_caller_beyond_its_rate_gets_429_with_retry_after_and_others_are_not_affected(fx: Fixture) -> None:
    statuses = [fx.refresh("source=signin_failures").status for _ in range(6)]
    assert statuses == [200, 204, 204, 204, 204, 204]
    limited = fx.refresh("source=signin_failures")
    assert limited.status == 429
    assert problem(limited)["type"].endswith("/rate-limited")
    assert int(limited.headers["Retry-After"]) == 30  # START is 30 s into its minute
    assert "X-Correlation-ID" in limited.headers
    assert fx.refresh("source=signin_failures", OTHER_READER).status == 204  # another caller's window
    fx.clock.advance(30)  # the next minute
    assert fx.refresh("source=signin_failures").status == 204
    assert len(fx.runner_la.windows) == 1


def test_the_correlation_id_is_echoed_when_valid_and_replaced_when_not(fx: Fixture) -> None:
    mine = "req-42:abc.DEF_9"
    answer = fx.refresh(headers={**READER, "X-Correlation-ID": mine})
    assert answer.headers["X-Correlation-ID"] == mine
    for hostile in ("", " ", "a\nb", "a" * 101, "-starts-with-dash", "x;y", "ü"):
        sent = correlation_id({"x-correlation-id": hostile})
        assert sent != hostile
        assert uuid.UUID(sent)
    # Refusals carry it too: no principal (401), no role (403).
    unauthenticated = fx.refresh(headers={"X-Correlation-ID": mine})
    assert (unauthenticated.status, unauthenticated.headers["X-Correlation-ID"]) == (401, mine)
    no_role = fx.refresh(headers=principal_header("nobody", []))
    assert no_role.status == 403
    assert uuid.UUID(no_role.headers["X-Correlation-ID"])


def test_a_body_other_than_empty_json_is_refused(fx: Fixture) -> None:
    url = "https://app.example/api/refresh"
    json_type = {**READER, "Content-Type": "application/json"}
    assert fx.api.refresh(url, b"{}", json_type, "/api/refresh").status == 200
    assert fx.api.refresh(url, b'{"source": "x"}', json_type, "/api/refresh").status == 400
    assert fx.api.refresh(url, b"[]", json_type, "/api/refresh").status == 400
    assert fx.api.refresh(url, b"x=1", {**READER, "Content-Type": "text/plain"}, "/api/refresh").status == 415


# --- GET /api/datasets ------------------------------------------------------------------------------


def test_the_list_names_every_source_with_its_metadata_once_refreshed(fx: Fixture) -> None:
    before = fx.listing()
    assert [i["id"] for i in before["items"]] == ["signin_failures", "signin_failures_events", "switched_off"]
    assert all(i["metadata"] is None for i in before["items"])
    assert before["items"][2]["enabled"] is False
    assert before["items"][1]["columns"] == COLUMNS
    assert before["origin"] == "test"

    fx.refresh()
    after = {i["id"]: i for i in fx.listing()["items"]}
    meta = after["signin_failures"]["metadata"]
    assert meta["status"] == "ok"
    assert meta["rows"] == len(AWKWARD)
    assert meta["last_refresh_at"].startswith("2026-12-07T10:00:30")
    assert meta["etag"] == fx.store.files["signin-failures.tsv"][1].etag
    assert after["switched_off"]["metadata"] is None


# --- GET /api/datasets/{id} ---------------------------------------------------------------------------


def test_a_published_dataset_reads_back_exactly_with_its_version_headers(fx: Fixture) -> None:
    assert fx.get("signin_failures_events").status == 404  # never published
    fx.refresh()
    answer = fx.get("signin_failures_events")
    assert answer.status == 200
    assert answer.headers["Content-Type"] == "text/tab-separated-values; charset=utf-8"
    assert answer.headers["Cache-Control"] == "private, no-cache"
    version = fx.store.files["signin-failures-events.tsv"][1]
    assert answer.headers["ETag"] == version.etag
    assert email.utils.parsedate_to_datetime(
        answer.headers["Last-Modified"]
    ) == version.last_modified.replace(microsecond=0)
    assert isinstance(answer.body, bytes)
    columns, rows = decode_tsv(answer.body)
    assert columns == COLUMNS
    assert sorted(row[2] for row in rows) == sorted(AWKWARD)  # tabs, newlines, non-ASCII intact
    assert "X-Correlation-ID" in answer.headers


def test_conditional_gets_answer_304_while_the_dataset_is_unchanged(fx: Fixture) -> None:
    fx.refresh()
    first = fx.get("signin_failures")
    etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
    earlier = email.utils.format_datetime(START - dt.timedelta(hours=1), usegmt=True)

    def status(**headers: str) -> int:
        answer = fx.get("signin_failures", {**READER, **headers})
        if answer.status == 304:
            assert answer.body == b""
            assert answer.headers["ETag"] == etag
        return answer.status

    assert status(**{"If-None-Match": etag}) == 304
    assert status(**{"If-None-Match": f'"other", {etag}'}) == 304
    assert status(**{"If-None-Match": f"W/{etag}"}) == 304  # If-None-Match compares weakly
    assert status(**{"If-None-Match": "*"}) == 304
    assert status(**{"If-None-Match": '"other"'}) == 200
    assert status(**{"If-Modified-Since": modified}) == 304
    assert status(**{"If-Modified-Since": earlier}) == 200
    assert status(**{"If-Modified-Since": "not a date"}) == 200  # an invalid date is ignored
    assert status(**{"If-None-Match": '"other"', "If-Modified-Since": modified}) == 200  # ETag decides
    for malformed in ("abc", '"unterminated', '"a" "b"', '"a",', "\x00", '"' + "a" * 3000 + '"'):
        answer = fx.get("signin_failures", {**READER, "If-None-Match": malformed})
        assert answer.status == 400, malformed
        assert problem(answer)["errors"][0]["field"] == "If-None-Match"

    # A new publish moves the ETag: the old one no longer holds.
    fx.clock.advance(600)
    fx.refresh("source=signin_failures")
    assert status(**{"If-None-Match": etag}) == 200


@pytest.mark.parametrize("source_id", ["Bad", "a/b", "..", "a\nb", "a" * 64, "ü", ""])
def test_a_dataset_id_outside_the_grammar_is_a_400_and_an_unknown_one_a_404(
    fx: Fixture, source_id: str
) -> None:
    answer = fx.get(source_id)
    assert answer.status == 400
    assert source_id not in problem(answer)["detail"] or not source_id
    assert fx.get("valid_but_unknown").status == 404


def test_if_modified_since_reads_http_dates_only() -> None:
    assert if_modified_since({"If-Modified-Since": "Mon, 07 Dec 2026 10:00:30 GMT"}) == START
    assert if_modified_since({"If-Modified-Since": "2026-12-07T10:00:30Z"}) is None
    assert if_modified_since({"If-Modified-Since": "x" * 200}) is None
    assert if_modified_since({}) is None


# --- the rate limit -----------------------------------------------------------------------------------


def test_the_rate_limit_counts_exactly_under_concurrent_calls_of_one_caller() -> None:
    clock = ManualClock(START)
    limit = CallerRateLimit(MemoryTable(), clock, 6)  # type: ignore[arg-type]
    results: list[str] = []
    lock = threading.Lock()

    def call() -> None:
        try:
            limit.take("caller")
            outcome = "ok"
        except RateLimited:
            outcome = "limited"
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=call) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == ["limited"] * 14 + ["ok"] * 6


def test_the_rate_limit_window_is_the_minute_and_rows_are_keyed_by_a_hash() -> None:
    clock = ManualClock(START.replace(second=59))
    table = MemoryTable()
    limit = CallerRateLimit(table, clock, 2)  # type: ignore[arg-type]
    assert [limit.take("a/b?#\n"), limit.take("a/b?#\n")] == [1, 0]
    with pytest.raises(RateLimited) as raised:
        limit.take("a/b?#\n")
    assert raised.value.retry_after_seconds == 1
    row = table.get_entity("refresh", caller_key("a/b?#\n"))
    assert (row["count"], row["window_start"]) == (2, "2026-12-07T10:00:00.000Z")
    assert len(row["RowKey"]) == 40
    assert all(c in "0123456789abcdef" for c in row["RowKey"])
    clock.advance(1)
    assert limit.take("a/b?#\n") == 1  # a new minute, a new window
