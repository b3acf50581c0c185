"""The histogram's plan (round, aligned steps; never more buckets than asked; the smallest step that
fits), its range and parameter validation, the queries it sends (one parameterized single-partition
COUNT per bucket and month, privacy conditions included), and GET /api/version."""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import json
import random
import threading
import tomllib
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
from pydantic import ValidationError

from shared.api.auth import Authenticator
from shared.api.events_histogram import (
    DAY,
    EPOCH,
    MAX_BUCKETS,
    STEPS,
    EventHistogram,
    HistogramQuery,
    month_pieces,
    plan_buckets,
    resolve_range,
)
from shared.api.events_query import SensitivityPolicy
from shared.api.problems import ApiProblem
from shared.api.responses import ApiGuard
from shared.api.status_api import StatusApi
from shared.api.version_api import APP_VERSION, version_info
from shared.app import runtime
from shared.platform.clock import parse_utc, utc_iso
from shared.platform.settings import LOCAL_SETTINGS_ENV, get_settings
from tests.support.principals import swa_principal

ROOT = Path(__file__).resolve().parents[2]
NOW = dt.datetime(2026, 11, 20, 12, 0, 30, 250000, tzinfo=dt.UTC)
UTC = dt.UTC


def t(text: str) -> dt.datetime:
    return parse_utc(text)


# -- the plan -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end", "wanted", "step", "count", "first"),
    [
        ("2026-11-20T11:00:00Z", "2026-11-20T12:00:00Z", 60, 60, 60, "2026-11-20T11:00:00Z"),
        ("2026-11-20T11:00:00Z", "2026-11-20T12:00:00Z", 59, 300, 12, "2026-11-20T11:00:00Z"),
        ("2026-11-20T11:00:30Z", "2026-11-20T12:00:00Z", 60, 60, 60, "2026-11-20T11:00:00Z"),
        ("2026-11-19T12:00:00Z", "2026-11-20T12:00:00Z", 60, 3600, 24, "2026-11-19T12:00:00Z"),
        ("2026-11-13T12:00:00Z", "2026-11-20T12:00:00Z", 60, 3 * 3600, 56, "2026-11-13T12:00:00Z"),
        ("2026-10-21T12:00:00Z", "2026-11-20T12:00:00Z", 60, 12 * 3600, 60, "2026-10-21T12:00:00Z"),
        ("2026-10-21T12:00:01Z", "2026-11-20T12:00:00Z", 60, 12 * 3600, 60, "2026-10-21T12:00:00Z"),
        ("2026-10-21T12:00:01Z", "2026-11-20T12:00:01Z", 60, DAY, 31, "2026-10-21T00:00:00Z"),
        ("2026-11-20T12:00:00Z", "2026-11-20T12:00:00.001Z", 1, 60, 1, "2026-11-20T12:00:00Z"),
        ("2025-01-01T00:00:00Z", "2026-11-20T00:00:00Z", 120, 6 * DAY, 115, "2024-12-31T00:00:00Z"),
    ],
)
def test_the_plan_takes_the_smallest_round_step_that_fits(
    start: str, end: str, wanted: int, step: int, count: int, first: str
) -> None:
    plan = plan_buckets(t(start), t(end), wanted)
    assert (plan.step_seconds, plan.count) == (step, count)
    assert utc_iso(EPOCH + dt.timedelta(microseconds=plan.first_us)) == utc_iso(t(first))


def test_the_plan_always_fits_is_aligned_and_covers_the_range() -> None:
    rng = random.Random(16)  # noqa: S311 - reproducible cases
    for _ in range(2000):
        start = t("2020-01-01T00:00:00Z") + dt.timedelta(seconds=rng.randrange(0, 6 * 365 * DAY))
        span = dt.timedelta(microseconds=rng.choice([1, 10**6, 10**9, 10**11, 10**12, 6 * 10**13]))
        end = start + span * rng.random() + dt.timedelta(microseconds=1)
        wanted = rng.randint(1, MAX_BUCKETS)
        plan = plan_buckets(start, end, wanted)
        step_us = plan.step_seconds * 10**6
        assert 1 <= plan.count <= wanted, (start, end, wanted)
        assert plan.step_seconds in STEPS or plan.step_seconds % DAY == 0
        assert plan.first_us % step_us == 0  # aligned to the epoch, so to UTC midnight from a day up
        first_start, first_low, _ = plan.bucket(0)
        assert first_start <= first_low == plan.start_us < first_start + step_us
        last_start, _, last_high = plan.bucket(plan.count - 1)
        assert last_high == plan.end_us
        assert last_start < plan.end_us <= last_start + step_us
        smaller = [s for s in (*STEPS, *range(2 * DAY, plan.step_seconds, DAY)) if s < plan.step_seconds]
        for step in smaller:  # no smaller round step would have fitted
            first = (plan.start_us // (step * 10**6)) * step * 10**6
            assert -(-(plan.end_us - first) // (step * 10**6)) > wanted, (plan, step)


def test_the_last_representable_day_does_not_overflow() -> None:
    end = t("9999-12-31T23:59:59.999Z")
    plan = plan_buckets(end - dt.timedelta(days=800), end, 120)
    assert plan.count <= 120
    _, _, high = plan.bucket(plan.count - 1)
    assert high == plan.end_us
    pieces = month_pieces(t("9999-11-15T00:00:00Z"), end)
    assert [(m, utc_iso(a), utc_iso(b)) for m, a, b in pieces] == [
        ("9999-11", "9999-11-15T00:00:00.000Z", "9999-12-01T00:00:00.000Z"),
        ("9999-12", "9999-12-01T00:00:00.000Z", "9999-12-31T23:59:59.999Z"),
    ]


def test_month_pieces_split_exactly_at_boundaries() -> None:
    assert month_pieces(t("2026-12-20T00:00:00Z"), t("2027-02-01T00:00:00Z")) == [
        ("2026-12", t("2026-12-20T00:00:00Z"), t("2027-01-01T00:00:00Z")),
        ("2027-01", t("2027-01-01T00:00:00Z"), t("2027-02-01T00:00:00Z")),
    ]
    assert month_pieces(t("2026-11-01T00:00:00Z"), t("2026-11-01T00:00:00Z")) == []


# -- validation ---------------------------------------------------------------------------------------


def test_the_range_is_resolved_as_the_search_resolves_it() -> None:
    default = resolve_range(HistogramQuery(), NOW)
    assert default == (NOW - dt.timedelta(days=30), NOW)
    relative = resolve_range(HistogramQuery(start="24h", end="1h"), NOW)
    assert relative == (NOW - dt.timedelta(hours=24), NOW - dt.timedelta(hours=1))
    explicit = resolve_range(HistogramQuery(end="2026-01-10T00:00:00Z"), NOW)
    assert explicit == (t("2025-12-11T00:00:00Z"), t("2026-01-10T00:00:00Z"))
    for start, end, field in (
        ("1h", "2h", "start"),
        ("2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z", "start"),
    ):
        with pytest.raises(ApiProblem) as refused:
            resolve_range(HistogramQuery(start=start, end=end), NOW)
        assert (refused.value.status, refused.value.errors[0]["field"]) == (400, field)
    with pytest.raises(ApiProblem) as too_long:
        resolve_range(HistogramQuery(start="801d"), NOW)
    assert "800 days" in too_long.value.detail


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"buckets": "0"}, "buckets"),
        ({"buckets": "121"}, "buckets"),
        ({"buckets": "-1"}, "buckets"),
        ({"buckets": "1.5"}, "buckets"),
        ({"buckets": "1e3"}, "buckets"),
        ({"buckets": "sixty"}, "buckets"),
        ({"buckets": "9" * 5000}, "buckets"),
        ({"page_size": "10"}, "page_size"),
        ({"continuation": "abc"}, "continuation"),
        ({"interval": "1h"}, "interval"),
        ({"start": "yesterday"}, "start"),
        ({"end": "99999-01-01"}, "end"),
        ({"start": "0001-01-01T00:00:00Z"}, "start"),
        ({"service": ["Nope"]}, "service"),
        ({"result": "maybe"}, "result"),
        ({"q": ""}, "q"),
        ({"q": "x" * 201}, "q"),
    ],
)
def test_hostile_parameters_are_refused_by_the_model(params: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as refused:
        HistogramQuery.model_validate(params)
    assert refused.value.errors()[0]["loc"][0] == field


def test_buckets_defaults_to_60_and_accepts_its_bounds() -> None:
    assert HistogramQuery().buckets == 60
    assert [HistogramQuery.model_validate({"buckets": v}).buckets for v in ("1", "120")] == [1, 120]


# -- the queries --------------------------------------------------------------------------------------


class FakeEvents:
    """Answers COUNT and timestamp queries from timestamps in memory, by partition and [@start, @end);
    keeps each query."""

    def __init__(self, tenant: str, timestamps: list[str]) -> None:
        self.tenant = tenant
        self.timestamps = timestamps
        self.calls: list[tuple[str, dict[str, Any], str]] = []
        self.lock = threading.Lock()

    def query_items(
        self, sql: str, *, parameters: list[dict[str, Any]], partition_key: str, max_item_count: int = 100
    ) -> list[Any]:
        values = {p["name"]: p["value"] for p in parameters}
        with self.lock:
            self.calls.append((sql, values, partition_key))
        matched = [
            ts
            for ts in self.timestamps
            if f"{self.tenant}:{ts[:7]}" == partition_key and values["@start"] <= ts < values["@end"]
        ]
        return [len(matched)] if "COUNT(1)" in sql else matched


MOMENTS = [t("2026-10-31T20:00:00Z") + dt.timedelta(minutes=37 * i) for i in range(300)]
TIMESTAMPS = [utc_iso(m) for m in MOMENTS]
HOSTILE_Q = "x') OR 1=1 --"
SPANNING = {"start": "2026-10-29T00:00:00Z", "end": "2026-11-10T00:00:00Z", "buckets": "4", "q": HOSTILE_Q}
SPANNING_STARTS = [
    "2026-10-26T00:00:00.000Z",  # 12 days in 4: epoch-aligned 4-day steps need 4
    "2026-10-30T00:00:00.000Z",
    "2026-11-03T00:00:00.000Z",
    "2026-11-07T00:00:00.000Z",
]


def _expected(starts: list[str]) -> list[int]:
    edges = [max(s, "2026-10-29T00:00:00.000Z") for s in starts] + ["2026-11-10T00:00:00.000Z"]
    return [sum(1 for ts in TIMESTAMPS if low <= ts < high) for low, high in itertools.pairwise(edges)]


def _assert_parameterized(fake: FakeEvents) -> None:
    for sql, values, pk in fake.calls:
        assert sql.startswith(
            ("SELECT VALUE COUNT(1) FROM c WHERE c.pk = @pk AND ", "SELECT VALUE c.timestamp ")
        )
        assert HOSTILE_Q.lower() not in sql
        assert "Exchange" not in sql  # values are parameters only
        assert values["@pk"] == pk
        assert values["@q"] == HOSTILE_Q.lower()
        assert values["@hidden_services"] == ["Exchange"]


@pytest.mark.parametrize("small_match_set", [0, 299])
def test_a_large_match_set_is_counted_per_bucket_and_month(small_match_set: int) -> None:
    fake = FakeEvents("tenant-1", TIMESTAMPS)
    histogram = EventHistogram(
        cast(Any, fake), "tenant-1", max_concurrency=3, small_match_set=small_match_set
    )
    answer = histogram.histogram(
        HistogramQuery.model_validate(SPANNING), NOW, SensitivityPolicy(services=["Exchange"])
    )
    assert answer.bucket_seconds == 4 * DAY
    assert [b.start for b in answer.buckets] == SPANNING_STARTS
    assert [b.count for b in answer.buckets] == _expected(SPANNING_STARTS)
    assert answer.total == 300  # every moment falls within the range
    # First one COUNT per month, then one per bucket and month: the bucket holding 1 November is two.
    assert all("COUNT(1)" in sql for sql, _, _ in fake.calls)
    assert sorted(pk for _, _, pk in fake.calls[:2]) == ["tenant-1:2026-10", "tenant-1:2026-11"]
    assert sorted(pk for _, _, pk in fake.calls[2:]) == ["tenant-1:2026-10"] * 2 + ["tenant-1:2026-11"] * 3
    _assert_parameterized(fake)
    dumped = answer.model_dump(mode="json", by_alias=True)
    assert list(dumped) == ["from", "to", "bucket_seconds", "buckets", "total", "plan"]
    assert dumped["plan"] == ("counts" if small_match_set < 300 else "timestamps")
    assert (dumped["from"], dumped["to"]) == ("2026-10-29T00:00:00.000Z", "2026-11-10T00:00:00.000Z")


def test_a_small_match_set_reads_timestamps_once_per_month() -> None:
    fake = FakeEvents("tenant-1", TIMESTAMPS)
    histogram = EventHistogram(cast(Any, fake), "tenant-1", small_match_set=300)
    answer = histogram.histogram(
        HistogramQuery.model_validate(SPANNING), NOW, SensitivityPolicy(services=["Exchange"])
    )
    assert [b.count for b in answer.buckets] == _expected(SPANNING_STARTS)
    assert answer.total == 300
    kinds = [("COUNT" if "COUNT(1)" in sql else "timestamps", pk[-7:]) for sql, _, pk in fake.calls]
    assert sorted(kinds[:2]) == [("COUNT", "2026-10"), ("COUNT", "2026-11")]
    assert sorted(kinds[2:]) == [("timestamps", "2026-10"), ("timestamps", "2026-11")]
    assert answer.plan == "timestamps"
    _assert_parameterized(fake)


def test_count_queries_are_capped_by_coarser_buckets() -> None:
    fake = FakeEvents("tenant-1", TIMESTAMPS)
    query = HistogramQuery.model_validate({**SPANNING, "buckets": "120"})
    answer = EventHistogram(cast(Any, fake), "tenant-1", small_match_set=0, max_count_queries=24).histogram(
        query, NOW, None
    )
    assert len(fake.calls) - 2 <= 24  # besides the COUNT per month
    assert answer.plan == "counts"
    assert answer.bucket_seconds > plan_buckets(t(SPANNING["start"]), t(SPANNING["end"]), 120).step_seconds
    step = dt.timedelta(seconds=answer.bucket_seconds)
    for bucket in answer.buckets:
        low = max(bucket.start, "2026-10-29T00:00:00.000Z")
        high = min(utc_iso(t(bucket.start) + step), "2026-11-10T00:00:00.000Z")
        assert bucket.count == sum(1 for ts in TIMESTAMPS if low <= ts < high)
    assert answer.total == 300


def test_empty_months_are_not_queried_again_and_a_privacy_caller_gets_no_hiding() -> None:
    fake = FakeEvents("t", [])
    answer = EventHistogram(cast(Any, fake), "t").histogram(HistogramQuery(start="1h"), NOW, None)
    # 11:00:30.25 to 12:00:30.25 needs 61 one-minute buckets once aligned: 13 of five minutes.
    assert (answer.bucket_seconds, len(answer.buckets), answer.total) == (300, 13, 0)
    assert answer.buckets[0].start == "2026-11-20T11:00:00.000Z"
    assert [b.count for b in answer.buckets] == [0] * 13
    assert len(fake.calls) == 1  # one month, no match: nothing more to ask
    assert all("hidden" not in sql for sql, _, _ in fake.calls)


# -- GET /api/version ---------------------------------------------------------------------------------


def test_the_version_is_the_projects() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["version"] == APP_VERSION
    assert version_info(None).model_dump() == {"version": APP_VERSION, "commit": None}
    assert version_info("  ").commit is None
    assert version_info(" 0123abc ").commit == "0123abc"


def test_the_version_route_needs_a_signed_in_reader_and_takes_no_parameters() -> None:
    guard = ApiGuard(
        Authenticator(verifier=None, swa_enabled=True, key_roles=frozenset()), SensitivityPolicy()
    )
    unused = cast(Any, None)
    api = StatusApi(guard, unused, None, unused, unused, 60.0, unused, unused, commit="0123abc")
    reader = {"x-ms-client-principal": swa_principal(["reader"])}
    analyst = {"x-ms-client-principal": swa_principal(["analyst"])}
    ok = api.get_version("https://h/api/version", reader, "/api/version")
    assert (ok.status, json.loads(ok.body)) == (200, {"version": APP_VERSION, "commit": "0123abc"})
    assert api.get_version("https://h/api/version", analyst, "/api/version").status == 200
    assert api.get_version("https://h/api/version", {}, "/api/version").status == 401
    refused = api.get_version("https://h/api/version?verbose=1", reader, "/api/version")
    assert (refused.status, json.loads(refused.body)["errors"][0]["field"]) == (400, "verbose")


def test_the_runtime_hands_aoc_commit_to_the_version_route(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """shared.app.runtime builds the status resource with the AOC_COMMIT setting (its storage and
    database dependencies stubbed: the version route reads none of them)."""
    monkeypatch.setenv(LOCAL_SETTINGS_ENV, str(tmp_path / "absent.json"))
    monkeypatch.setenv("AOC_COMMIT", " 89abcdef ")
    monkeypatch.setenv("PROBE_ENABLED", "false")
    guard = ApiGuard(
        Authenticator(verifier=None, swa_enabled=True, key_roles=frozenset()), SensitivityPolicy()
    )
    for name in ("watermark_store", "audit_log", "app_clock", "poller"):
        monkeypatch.setattr(runtime, name, functools.cache(lambda: None))  # reset_runtime clears them
    monkeypatch.setattr(runtime, "api_guard", functools.cache(lambda: guard))
    monkeypatch.setattr(runtime, "get_clients", lambda: SimpleNamespace(queue_service=None))
    get_settings.cache_clear()
    runtime.reset_runtime()
    try:
        api = runtime.api_resource(StatusApi)
        assert isinstance(api, StatusApi)
        reader = {"x-ms-client-principal": swa_principal(["reader"])}
        answer = api.get_version("https://h/api/version", reader, "/api/version")
        assert json.loads(answer.body) == {"version": APP_VERSION, "commit": "89abcdef"}
    finally:
        get_settings.cache_clear()
        runtime.reset_runtime()


def test_the_histogram_applies_the_exclusions_as_parameters() -> None:
    fake = FakeEvents("t", TIMESTAMPS)
    query = HistogramQuery.model_validate(
        {**SPANNING, "exclude_service": ["Teams"], "exclude_actor": ["Robot"], "exclude_result": ["failure"]}
    )
    EventHistogram(cast(Any, fake), "t").histogram(query, NOW, SensitivityPolicy(services=["Exchange"]))
    assert fake.calls
    for sql, values, _ in fake.calls:
        assert "NOT ARRAY_CONTAINS(@exclude_service, c.service)" in sql
        assert "NOT ARRAY_CONTAINS(@exclude_result, c.result)" in sql
        assert (values["@exclude_service"], values["@exclude_result"]) == (["Teams"], ["failure"])
        assert values["@exclude_actor0"] == "robot"
        assert "robot" not in sql.lower()
