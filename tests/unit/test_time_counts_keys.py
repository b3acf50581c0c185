"""Facet merging ignores the time-count documents sharing the facets container; the time-count keys,
slots and the histogram's choice of plan."""

from __future__ import annotations

from typing import Any

import pytest

from shared.api.events_histogram import HistogramQuery, counter_eligible
from shared.api.events_query import SensitivityPolicy
from shared.ingestion.event_store import merge_facets
from shared.ingestion.time_counts import add_hours, count_key, count_slot, split_key


def test_merge_facets_skips_time_count_documents() -> None:
    documents: list[dict[str, Any]] = [
        {"facet": "service", "values": {"Exchange": {"count": 2}}},
        {"kind": "time_counts", "day": "2026-11-20", "counts": {"Exchange||success": [1] * 24}},
        {"kind": "time_counts_since", "since": ""},
        {"facet": "service", "values": {"Exchange": {"count": 3}, "Teams": {"count": -1}}},
    ]
    assert merge_facets(documents) == {"service": {"Exchange": 5}}


@pytest.mark.parametrize(
    "values", [("Exchange", "o365_management", "success"), ("a|b", "100%", ""), ("%7C", "|", "%25|")]
)
def test_count_keys_round_trip(values: tuple[str, str, str]) -> None:
    assert split_key(count_key(*values)) == values


def test_count_slot_reads_day_hour_and_key() -> None:
    event = {"timestamp": "2026-11-20T13:05:00.000Z", "service": "Exchange", "source": "o365_management"}
    assert count_slot(event) == ("2026-11-20", 13, "Exchange|o365_management|")
    for bad in (None, "", "2026-11-20", "2026-11-20X13", "2026-13-01T00:00", "2026-11-20T24:00", 5):
        assert count_slot({"timestamp": bad}) is None


def test_add_hours_adds_and_repairs() -> None:
    stored: dict[str, list[int]] = {"k": [0] * 24, "broken": [1, 2]}
    assert add_hours(stored, {(3, "k"): 2, (0, "broken"): 1, (5, "new"): 0}) is True
    assert stored["k"][3] == 2
    assert stored["broken"] == [1] + [0] * 23
    assert "new" not in stored
    assert add_hours(stored, {(1, "k"): 0}) is False


@pytest.mark.parametrize(
    ("params", "hide", "eligible"),
    [
        ({}, None, True),
        ({"service": ["Exchange"], "exclude_result": ["failure"], "start": "7d", "buckets": 10}, None, True),
        (
            {"source": "entra_audit", "exclude_source": ["intune"]},
            SensitivityPolicy(services=["Exchange"]),
            True,
        ),
        ({}, SensitivityPolicy(operations=["Wipe ManagedDevice"]), False),
        ({"q": "x"}, None, False),
        ({"actor": "ana"}, None, False),
        ({"operation": "Set-Mailbox"}, None, False),
        ({"tag": ["reviewed"]}, None, False),
        ({"category": "x"}, None, False),
        ({"correlation_id": "c"}, None, False),
        ({"source": ""}, None, False),
    ],
)
def test_which_filters_the_counts_answer(params: dict[str, Any], hide: Any, eligible: bool) -> None:
    assert counter_eligible(HistogramQuery.model_validate(params), hide) is eligible
