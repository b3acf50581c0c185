"""EventsRunner with a fake events container that evaluates the runner's parameterized SQL shape: columns
from the canonical sign-in event, month partitions, keyset pages, the incremental bounds, the row cap.
(tests/integration/test_datasets_events_runner.py runs the same SQL on cosmosdb-server.)"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any, cast

import pytest
from azure.cosmos import ContainerProxy

from shared.datasets.events_runner import SIGNIN_COLUMNS, EventsQueryError, EventsRunner, months
from shared.datasets.querying import QueryWindow
from shared.datasets.sources import DatasetSource, load_default_sources
from shared.platform.clock import parse_utc
from tests.support.clock import ManualClock
from tests.support.signin_events import signin_events

TENANT = "00000000-0000-0000-0000-0000000000aa"
START = dt.datetime(2026, 11, 28, tzinfo=dt.UTC)  # the window crosses into December
NOW = dt.datetime(2026, 12, 2, tzinfo=dt.UTC)


@dataclass
class FakeEvents:
    """Answers the runner's query shape over stored documents, and records every call."""

    docs: list[dict[str, Any]]
    calls: list[dict[str, Any]] = field(default_factory=list)

    def query_items(
        self, sql: str, *, parameters: list[dict[str, Any]], partition_key: str, max_item_count: int
    ) -> list[dict[str, Any]]:
        self.calls.append({"sql": sql, "parameters": parameters, "partition_key": partition_key})
        p = {item["name"]: item["value"] for item in parameters}
        assert p["@pk"] == partition_key  # a single-partition query

        def keep(d: dict[str, Any]) -> bool:
            if d["pk"] != p["@pk"] or d["source"] != p["@source"] or d["result"] != p["@result"]:
                return False
            if not p["@start"] <= d["timestamp"] <= p["@end"]:
                return False
            if "@after" in p and not p["@after"] < d["ingested_at"] <= p["@until"]:
                return False
            if "@after_ts" in p:
                return bool((d["timestamp"], d["id"]) < (p["@after_ts"], p["@after_id"]))
            return True

        found = sorted(filter(keep, self.docs), key=lambda d: (d["timestamp"], d["id"]), reverse=True)
        return found[: p["@limit"]]


@pytest.fixture(scope="module")
def source() -> DatasetSource:
    found = load_default_sources().get("signin_failures_events")
    assert found is not None
    return found


@pytest.fixture(scope="module")
def docs() -> list[dict[str, Any]]:
    return signin_events(TENANT, START - dt.timedelta(hours=6), 300, spacing=dt.timedelta(minutes=23))


def runner(events: FakeEvents, **options: Any) -> EventsRunner:
    return EventsRunner(cast(ContainerProxy, events), TENANT, ManualClock(NOW), **options)


def failures(docs: list[dict[str, Any]], window: QueryWindow) -> list[dict[str, Any]]:
    lo, hi = window.start, window.end
    return [
        d
        for d in docs
        if d["source"] == "entra_signin"
        and d["result"] == "failure"
        and lo <= parse_utc(d["timestamp"]) <= hi
        and (window.ingested_after is None or window.ingested_after < parse_utc(d["ingested_at"]) <= hi)
    ]


def test_months_are_listed_newest_first_across_a_year_end() -> None:
    assert months(dt.datetime(2026, 11, 30, tzinfo=dt.UTC), dt.datetime(2027, 2, 1, tzinfo=dt.UTC)) == [
        "2027-02",
        "2027-01",
        "2026-12",
        "2026-11",
    ]
    assert months(NOW, NOW) == ["2026-12"]


def test_every_failed_sign_in_of_the_window_becomes_one_row_with_the_contract_columns(
    source: DatasetSource, docs: list[dict[str, Any]]
) -> None:
    events = FakeEvents(docs)
    window = QueryWindow(start=START, end=NOW)
    outcome = runner(events, page_size=17).run(source, window)
    expected = failures(docs, window)
    assert outcome.complete
    assert len(expected) > 100
    assert outcome.columns == source.columns
    by_time = {row[0]: row for row in outcome.rows}
    assert len(outcome.rows) == len(by_time) == len(expected)  # every event once
    for doc in expected:
        row = dict(zip(source.columns, by_time[doc["timestamp"]], strict=True))
        location = doc["signin"]["location"]
        assert row == {
            "TimeGenerated": doc["timestamp"],
            "UserPrincipalName": doc["actor"]["upn"],
            "AppDisplayName": doc["actor"]["client_app"]["name"],
            "IPAddress": doc["actor"]["ip"],
            "City": location["city"],
            "Country": location["country"],
            "Latitude": repr(location["latitude"]),
            "Longitude": repr(location["longitude"]),
            "ResultType": str(doc["result_code"]),
            "ResultDescription": doc["result_reason"],
        }
    assert outcome.max_ingestion_time == max(parse_utc(d["ingested_at"]) for d in expected)


def test_queries_are_single_partition_parameterized_keyset_pages(
    source: DatasetSource, docs: list[dict[str, Any]]
) -> None:
    events = FakeEvents(docs)
    runner(events, page_size=17).run(source, QueryWindow(start=START, end=NOW))
    partitions = [call["partition_key"] for call in events.calls]
    assert partitions[0] == f"{TENANT}:2026-12"
    assert set(partitions) == {f"{TENANT}:2026-12", f"{TENANT}:2026-11"}
    assert partitions == sorted(partitions, reverse=True)  # newest month first, each read to its end
    for call in events.calls:
        sql = call["sql"]
        assert TENANT not in sql  # every value is a parameter
        assert not re.search(r"\b(OFFSET|LIMIT|GROUP BY|DISTINCT|JOIN)\b", sql)  # keywords are upper case
        assert sql.endswith("ORDER BY c.timestamp DESC, c.id DESC")
    keyset = [call for call in events.calls if "@after_ts" in sql_names(call)]
    assert len(keyset) == len(events.calls) - 2  # every page but each partition's first


def sql_names(call: dict[str, Any]) -> set[str]:
    return {item["name"] for item in call["parameters"]}


def test_an_incremental_window_reads_only_what_was_ingested_since(
    source: DatasetSource, docs: list[dict[str, Any]]
) -> None:
    window = QueryWindow(start=START, end=NOW, ingested_after=NOW - dt.timedelta(hours=12))
    events = FakeEvents(docs)
    outcome = runner(events).run(source, window)
    expected = failures(docs, window)
    assert 0 < len(expected) < len(failures(docs, QueryWindow(start=START, end=NOW)))
    assert sorted(str(row[0]) for row in outcome.rows) == sorted(d["timestamp"] for d in expected)
    assert {"@after", "@until"} <= sql_names(events.calls[0])


def test_more_rows_than_the_cap_is_an_incomplete_outcome(
    source: DatasetSource, docs: list[dict[str, Any]]
) -> None:
    outcome = runner(FakeEvents(docs), page_size=10, max_rows=25).run(
        source, QueryWindow(start=START, end=NOW)
    )
    assert not outcome.complete
    assert len(outcome.rows) == 25
    assert outcome.errors == ["more than 25 sign-in failures in the window: stopped there"]


def test_the_known_columns_include_ingestion_time_and_unknown_ones_are_refused(
    source: DatasetSource, docs: list[dict[str, Any]]
) -> None:
    wide = source.model_copy(update={"columns": ["EventId", "TimeGenerated", "IngestionTime", "State"]})
    outcome = runner(FakeEvents(docs)).run(wide, QueryWindow(start=START, end=NOW))
    first = outcome.rows[0]
    doc = next(d for d in docs if d["id"] == first[0])
    assert first == [doc["id"], doc["timestamp"], doc["ingested_at"], doc["signin"]["location"]["state"]]
    assert {"TimeGenerated", "IngestionTime", "Latitude"} <= set(SIGNIN_COLUMNS)
    odd = source.model_copy(update={"columns": ["TimeGenerated", "Nope"]})
    with pytest.raises(EventsQueryError, match="no column Nope"):
        runner(FakeEvents(docs)).run(odd, QueryWindow(start=START, end=NOW))
    other = source.model_copy(update={"query": "sharepoint_shares"})
    with pytest.raises(EventsQueryError, match="unknown events dataset"):
        runner(FakeEvents(docs)).run(other, QueryWindow(start=START, end=NOW))
    kql = source.model_copy(update={"kind": "log_analytics"})
    with pytest.raises(EventsQueryError, match="not an events source"):
        runner(FakeEvents(docs)).run(kql, QueryWindow(start=START, end=NOW))
