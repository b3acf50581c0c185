"""TriggerRuns (shared/probe/trigger_log.py): a TriggerLog row as the status shows it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from azure.core.exceptions import HttpResponseError

from shared.probe.trigger_log import TriggerRun, TriggerRuns
from tests.support.memory_table import MemoryTable

SCOPE = "tenant-config"
TRIGGER = f"{SCOPE}:0123456789abcdef01234567"


def runs_with(row: dict[str, Any]) -> TriggerRuns:
    table = MemoryTable()
    table.create_entity({"PartitionKey": SCOPE, "RowKey": TRIGGER, **row})
    return TriggerRuns(table)


def test_a_queued_row_gives_the_run_id_and_its_web_link() -> None:
    runs = runs_with(
        {"status": "queued", "run_id": 42, "run_url": "https://dev.azure.com/c/p/_build/results?buildId=42"}
    )
    assert runs.run(SCOPE, TRIGGER) == TriggerRun(
        run_id=42, run_url="https://dev.azure.com/c/p/_build/results?buildId=42", state="queued"
    )


def test_a_claim_in_flight_or_with_a_lost_answer_has_no_run_yet() -> None:
    assert runs_with({"status": "starting", "claimed_at": "x"}).run(SCOPE, TRIGGER) == TriggerRun(
        state="starting"
    )
    unknown = runs_with({"status": "starting", "outcome": "unknown", "error": "ReadTimeout"})
    assert unknown.run(SCOPE, TRIGGER) == TriggerRun(state="unknown")


def test_only_http_links_are_given_to_the_console() -> None:
    for url in (
        "javascript:alert(1)",
        "data:text/html,x",
        "//evil.example/run",
        "ftp://x/y",
        "https://" + "a" * 2000,
    ):
        run = runs_with({"status": "queued", "run_id": 7, "run_url": url}).run(SCOPE, TRIGGER)
        assert run == TriggerRun(run_id=7, run_url=None, state="queued"), url


def test_no_row_a_foreign_id_or_an_unreadable_table_gives_none() -> None:
    runs = runs_with({"status": "queued", "run_id": 1})
    assert runs.run(SCOPE, f"{SCOPE}:ffffffffffffffffffffffff") is None  # no row
    assert runs.run(SCOPE, "other-scope:0123456789abcdef01234567") is None  # not this scope's trigger
    assert runs.run("../x", TRIGGER) is None

    class Broken:
        def get_entity(self, partition_key: str, row_key: str) -> Mapping[str, Any]:
            raise HttpResponseError("503 Service Unavailable")

    assert TriggerRuns(Broken()).run(SCOPE, TRIGGER) is None
