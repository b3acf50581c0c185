"""The sources file (shared/datasets/sources.py): the shipped file loads; every field's problem names the
source and the field; the IngestionTime check; the override blob with its cache."""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

import pytest
import yaml

from shared.datasets.sources import (
    DEFAULT_SOURCES_FILE,
    EVENT_DATASETS,
    SourceCatalog,
    SourceConfigError,
    SourcesText,
    load_default_sources,
    load_sources,
    parse_sources,
    timespan_literal,
)
from shared.platform.ids import is_dataset_source_id
from tests.support.clock import ManualClock

SHIPPED_COLUMNS = [
    "TimeGenerated",
    "UserPrincipalName",
    "AppDisplayName",
    "IPAddress",
    "City",
    "Country",
    "Latitude",
    "Longitude",
    "ResultType",
    "ResultDescription",
]

VALID: dict[str, Any] = {
    "id": "signin_failures",
    "name": "Sign-in failures",
    "enabled": True,
    "kind": "log_analytics",
    "refresh_interval_seconds": 300,
    "query_time_window_hours": 24,
    "incremental": True,
    "incremental_overlap_minutes": 10,
    "output_filename": "signin-failures.tsv",
    "columns": ["TimeGenerated", "UserPrincipalName"],
    "time_column": "TimeGenerated",
    "query": "SigninLogs | where TimeGenerated > ago({time_window}) | extend IngestionTime = ingestion_time()"
    " | project TimeGenerated, IngestionTime, UserPrincipalName",
}
EVENTS: dict[str, Any] = {
    **VALID,
    "id": "signin_failures_events",
    "kind": "events",
    "output_filename": "signin-failures-events.tsv",
    "query": "signin_failures",
}


def problems_of(*entries: dict[str, Any]) -> list[str]:
    with pytest.raises(SourceConfigError) as caught:
        parse_sources({"version": 1, "sources": list(entries)})
    return caught.value.problems


def test_the_shipped_file_loads_with_the_three_sources() -> None:
    sources = load_default_sources()
    assert [s.id for s in sources] == ["signin_failures", "threat_intel_indicators", "signin_failures_events"]
    assert sources.origin == f"file:{DEFAULT_SOURCES_FILE.name}"
    by_id = {s.id: s for s in sources}
    assert by_id["signin_failures"].columns == SHIPPED_COLUMNS
    assert by_id["signin_failures_events"].columns == SHIPPED_COLUMNS
    assert by_id["signin_failures_events"].kind == "events"
    assert by_id["signin_failures_events"].query in EVENT_DATASETS
    assert "SigninLogs" in by_id["signin_failures"].query
    assert 'ResultType != "0"' in by_id["signin_failures"].query
    assert "ThreatIntelligenceIndicator" in by_id["threat_intel_indicators"].query
    assert all(is_dataset_source_id(s.id) and s.enabled for s in sources)
    assert len({s.output_filename for s in sources}) == 3
    assert by_id["signin_failures"].render_query().count("ago(24h)") == 1
    assert "ago(168h)" in by_id["threat_intel_indicators"].render_query()


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("id", "Signin-Failures", "sources[0] (id Signin-Failures).id: String should match pattern"),
        ("name", "", "sources[0] (id signin_failures).name: String should have at least 1 character"),
        ("name", " padded", "sources[0] (id signin_failures).name: a name is printable"),
        ("enabled", "maybe", "sources[0] (id signin_failures).enabled: Input should be a valid boolean"),
        (
            "kind",
            "splunk",
            "sources[0] (id signin_failures).kind: Input should be 'log_analytics' or 'events'",
        ),
        (
            "refresh_interval_seconds",
            59,
            "sources[0] (id signin_failures).refresh_interval_seconds: Input should",
        ),
        (
            "refresh_interval_seconds",
            86401,
            "sources[0] (id signin_failures).refresh_interval_seconds: Input",
        ),
        (
            "query_time_window_hours",
            0,
            "sources[0] (id signin_failures).query_time_window_hours: Input should",
        ),
        (
            "query_time_window_hours",
            721,
            "sources[0] (id signin_failures).query_time_window_hours: Input should",
        ),
        (
            "incremental",
            "often",
            "sources[0] (id signin_failures).incremental: Input should be a valid boolean",
        ),
        (
            "incremental_overlap_minutes",
            -1,
            "sources[0] (id signin_failures).incremental_overlap_minutes: Input",
        ),
        ("incremental_overlap_minutes", 1441, "sources[0] (id signin_failures).incremental_overlap_minutes:"),
        ("output_filename", "../x.tsv", "sources[0] (id signin_failures).output_filename: must match"),
        ("output_filename", "report.csv", "sources[0] (id signin_failures).output_filename: must match"),
        ("columns", [], "sources[0] (id signin_failures).columns: List should have at least 1 item"),
        (
            "columns",
            [f"c{i}" for i in range(65)],
            "sources[0] (id signin_failures).columns: List should have at",
        ),
        (
            "columns",
            ["TimeGenerated", "bad name"],
            "sources[0] (id signin_failures).columns[1]: String should",
        ),
        (
            "columns",
            ["TimeGenerated", "TimeGenerated"],
            "sources[0] (id signin_failures).columns: columns are",
        ),
        (
            "time_column",
            "Timestamp",
            "sources[0] (id signin_failures).time_column: 'Timestamp' is not one of",
        ),
        ("query", "", "sources[0] (id signin_failures).query: String should have at least 1 character"),
        (
            "query",
            "SigninLogs | take 10",
            "sources[0] (id signin_failures).query: a log_analytics query holds",
        ),
        ("surprise", 1, "sources[0] (id signin_failures).surprise: Extra inputs are not permitted"),
    ],
)
def test_every_field_problem_names_the_source_and_the_field(field: str, value: object, expected: str) -> None:
    entry = {**VALID, field: value}
    problems = problems_of(entry)
    assert any(p.startswith(expected) for p in problems), problems


def test_a_missing_field_is_named_and_positions_count_from_zero() -> None:
    entry = {k: v for k, v in VALID.items() if k != "output_filename"}
    problems = problems_of(EVENTS, entry)
    assert problems == ["sources[1] (id signin_failures).output_filename: Field required"]


def test_a_source_without_a_usable_id_is_named_by_its_position() -> None:
    entry = {k: v for k, v in VALID.items() if k != "id"}
    assert problems_of(entry) == ["sources[0].id: Field required"]
    assert problems_of("just text") == ["sources[0]: must be a mapping with id, name, kind, ..."]  # type: ignore[arg-type]


def test_every_problem_of_every_source_is_reported_together() -> None:
    first = {**VALID, "refresh_interval_seconds": 5, "query_time_window_hours": 0}
    second = {**EVENTS, "query": "unknown_dataset"}
    problems = problems_of(first, second)
    assert [p.split(":")[0] for p in problems] == [
        "sources[0] (id signin_failures).refresh_interval_seconds",
        "sources[0] (id signin_failures).query_time_window_hours",
        "sources[1] (id signin_failures_events).query",
    ]


def test_ids_and_output_filenames_are_unique() -> None:
    again = {**VALID, "name": "Copy"}
    other = {**EVENTS, "output_filename": VALID["output_filename"]}
    problems = problems_of(VALID, again, other)
    assert problems == [
        "sources[1] (id signin_failures).id: 'signin_failures' is used more than once",
        "sources[2] (id signin_failures_events).output_filename: 'signin-failures.tsv'"
        " is used more than once",
    ]


@pytest.mark.parametrize(
    ("query", "problem"),
    [
        (
            "SigninLogs | where TimeGenerated > ago({time_window})",
            "must set IngestionTime = ingestion_time()",
        ),
        (
            "SigninLogs | where TimeGenerated > ago({time_window}) | project TimeGenerated, UserPrincipalName"
            " | extend IngestionTime = ingestion_time()",
            "must come before any project or summarize",
        ),
        (
            "SigninLogs | where TimeGenerated > ago({time_window}) | extend IngestionTime = ingestion_time()"
            " | project TimeGenerated, UserPrincipalName",
            "a project after IngestionTime = ingestion_time() must keep IngestionTime",
        ),
        (
            "SigninLogs | where TimeGenerated > ago({time_window}) | extend IngestionTime = ingestion_time()"
            " | project-away IngestionTime",
            "project-away after IngestionTime",
        ),
        (
            "SigninLogs | where TimeGenerated > ago({time_window}) | extend IngestionTime = ingestion_time()"
            " | summarize count() by UserPrincipalName",
            "a summarize after IngestionTime = ingestion_time() must keep IngestionTime",
        ),
        (
            "SigninLogs | where TimeGenerated > ago({time_window})\n"
            "// | extend IngestionTime = ingestion_time()\n| project TimeGenerated",
            "must set IngestionTime = ingestion_time()",
        ),
    ],
)
def test_an_incremental_query_must_carry_ingestion_time(query: str, problem: str) -> None:
    problems = problems_of({**VALID, "query": query})
    assert len(problems) == 1
    assert problems[0].startswith("sources[0] (id signin_failures).query: ")
    assert problem in problems[0]


@pytest.mark.parametrize(
    "query",
    [
        "SigninLogs | where TimeGenerated > ago({time_window}) | extend IngestionTime = ingestion_time()",
        "SigninLogs | where TimeGenerated > ago({time_window}) | project TimeGenerated, IngestionTime ="
        " ingestion_time(), UserPrincipalName",
        "SigninLogs | where TimeGenerated > ago({time_window}) | extend IngestionTime=ingestion_time()"
        " | summarize arg_max(TimeGenerated, *) by UserPrincipalName",
    ],
)
def test_queries_that_keep_ingestion_time_are_accepted(query: str) -> None:
    assert parse_sources({"sources": [{**VALID, "query": query}]}).sources[0].query == query


def test_a_source_that_is_not_incremental_needs_no_ingestion_time() -> None:
    query = "SigninLogs | where TimeGenerated > ago({time_window}) | project TimeGenerated, UserPrincipalName"
    source = parse_sources({"sources": [{**VALID, "incremental": False, "query": query}]}).sources[0]
    assert source.incremental is False


def test_defaults_fill_what_is_left_out() -> None:
    entry = {k: VALID[k] for k in ("id", "name", "kind", "output_filename", "columns", "query")}
    source = parse_sources({"sources": [entry]}).sources[0]
    assert (source.enabled, source.refresh_interval_seconds, source.query_time_window_hours) == (
        True,
        300,
        24,
    )
    assert (source.incremental, source.incremental_overlap_minutes, source.time_column) == (
        True,
        10,
        "TimeGenerated",
    )


def test_the_query_hash_follows_the_query_and_the_columns() -> None:
    base = parse_sources({"sources": [VALID]}).sources[0]
    renamed = parse_sources({"sources": [{**VALID, "name": "Other name", "refresh_interval_seconds": 900}]})
    other_columns = parse_sources({"sources": [{**VALID, "columns": ["TimeGenerated", "IPAddress"]}]})
    other_query = parse_sources({"sources": [{**VALID, "query": VALID["query"] + " | take 5"}]})
    assert renamed.sources[0].query_hash == base.query_hash
    assert other_columns.sources[0].query_hash != base.query_hash
    assert other_query.sources[0].query_hash != base.query_hash
    assert len(base.query_hash) == 64


@pytest.mark.parametrize(
    ("length", "literal"),
    [
        (dt.timedelta(hours=24), "24h"),
        (dt.timedelta(hours=168), "168h"),
        (dt.timedelta(minutes=90), "90m"),
        (dt.timedelta(seconds=45), "45s"),
        (dt.timedelta(milliseconds=1500), "1500ms"),
    ],
)
def test_timespan_literals(length: dt.timedelta, literal: str) -> None:
    assert timespan_literal(length) == literal


def test_file_level_problems() -> None:
    for document, expected in [
        ([], "the sources file is a mapping"),
        ({"sources": []}, "sources: must be a non-empty list"),
        ({"version": 2, "sources": [VALID]}, "version: only version 1 is known"),
        ({"sources": [VALID], "extra": 1}, "unknown top-level key(s): extra"),
    ]:
        with pytest.raises(SourceConfigError) as caught:
            parse_sources(document)
        assert any(expected in p for p in caught.value.problems), caught.value.problems


def test_bad_yaml_and_alias_bombs_are_refused() -> None:
    with pytest.raises(SourceConfigError, match="not valid YAML"):
        load_sources("sources: [unclosed", "blob:sources.yaml")
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]\n" for i in range(6)
    )
    with pytest.raises(SourceConfigError, match="not valid YAML"):
        load_sources(bomb, "blob:sources.yaml")


def shipped_text() -> str:
    return DEFAULT_SOURCES_FILE.read_text(encoding="utf-8")


def test_the_override_replaces_the_shipped_sources_after_the_ttl_and_a_bad_one_is_refused() -> None:
    clock = ManualClock(dt.datetime(2026, 12, 7, 9, tzinfo=dt.UTC))
    document = yaml.safe_load(shipped_text())
    only_events = copy.deepcopy(document)
    only_events["sources"] = [s for s in document["sources"] if s["kind"] == "events"]
    blob: list[SourcesText | None] = [None]
    catalog = SourceCatalog(clock, override=lambda: blob[0], ttl_seconds=60)

    assert [s.id for s in catalog.current()] == [s["id"] for s in document["sources"]]
    blob[0] = SourcesText(yaml.safe_dump(only_events), '"1"', "blob:sources.yaml")
    clock.advance(59)
    assert len(catalog.current()) == 3
    clock.advance(1)
    assert [s.id for s in catalog.current()] == ["signin_failures_events"]
    assert catalog.current().origin == "blob:sources.yaml"

    broken = copy.deepcopy(only_events)
    broken["sources"][0]["refresh_interval_seconds"] = 1
    blob[0] = SourcesText(yaml.safe_dump(broken), '"2"', "blob:sources.yaml")
    catalog.invalidate()
    assert [s.id for s in catalog.current()] == ["signin_failures_events"]
    assert catalog.last_error is not None
    assert "sources[0] (id signin_failures_events).refresh_interval_seconds" in catalog.last_error

    blob[0] = None
    catalog.invalidate()
    assert len(catalog.current()) == 3
    assert catalog.last_error is None


def test_storage_trouble_keeps_the_sources_in_force() -> None:
    clock = ManualClock(dt.datetime(2026, 12, 7, 9, tzinfo=dt.UTC))

    def unreachable() -> SourcesText | None:
        raise ConnectionError("storage down")

    catalog = SourceCatalog(clock, override=unreachable)
    assert len(catalog.current()) == 3


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("signin_failures", True),
        ("a", True),
        ("a" + "b" * 62, True),
        ("a" + "b" * 63, False),
        ("signin_failures\n", False),
        ("Signin_failures", False),
        ("1source", False),
        ("_source", False),
        ("signin-failures", False),
        ("../locks", False),
        ("", False),
        (None, False),
        (7, False),
    ],
)
def test_the_dataset_source_id_grammar(value: object, expected: bool) -> None:
    assert is_dataset_source_id(value) is expected
