"""bench/console.py's pure parts: which object the history view opens, and the ratios it reports."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from bench.console import ViewSamples, busiest_object, median_ratio
from shared.platform.ids import is_object_id

NOW = dt.datetime(2026, 12, 7, 12, 0, tzinfo=dt.UTC)


def event(days_ago: float, actor: dict[str, Any], *target_ids: str) -> dict[str, Any]:
    timestamp = (NOW - dt.timedelta(days=days_ago)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return {"timestamp": timestamp, "actor": actor, "targets": [{"id": t} for t in target_ids]}


ADELE = {"id": "a0000000-0000-0000-0000-00000000000a", "upn": "adele@contoso.com"}
BACKUP = {"id": "b0000000-0000-0000-0000-00000000000b", "upn": None}


def test_busiest_object_counts_actor_ids_upns_and_targets_of_the_last_30_days() -> None:
    events = [
        event(1, ADELE, "grp-finance"),
        event(2, BACKUP, "grp-finance", "team-sales"),
        event(3, BACKUP, "grp-finance"),
        event(4, ADELE, ADELE["id"]),  # the same id twice in one event counts once
        event(45, ADELE, "grp-finance"),  # older than the range: not counted
        event(46, ADELE, "grp-finance"),
    ]

    assert busiest_object(events, NOW, is_object_id) == ("grp-finance", 3)
    assert busiest_object(events, NOW, is_object_id, days=60) == ("grp-finance", 5)


def test_busiest_object_skips_ids_outside_the_grammar_and_breaks_ties_by_id() -> None:
    path = "/sites/finance/Shared Documents/Budget.xlsx"  # a SharePoint target: not an object id
    events = [event(1, BACKUP, path), event(2, BACKUP, path), event(3, ADELE, path)]

    assert busiest_object(events, NOW, is_object_id) == (BACKUP["id"], 2)
    # Adele's object id and UPN are each named once: the smaller id wins.
    assert busiest_object([event(1, ADELE)], NOW, is_object_id) == (ADELE["id"], 1)


def test_busiest_object_without_any_recent_event_is_an_error() -> None:
    with pytest.raises(ValueError, match="names an object"):
        busiest_object([event(40, ADELE)], NOW, is_object_id)


def test_median_ratio_pairs_the_rounds() -> None:
    assert median_ratio([300.0, 100.0, 900.0], [100.0, 100.0, 300.0]) == 3.0  # 3, 1, 3
    with pytest.raises(ValueError, match="2 UI and 1 API"):
        median_ratio([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="0 UI and 0 API"):
        median_ratio([], [])


def test_view_ratios_take_the_later_milestone_of_each_round_for_the_page() -> None:
    samples = ViewSamples(
        ui={"first row": [200.0, 400.0, 300.0], "counts": [250.0, 300.0, 600.0]},
        api={"first row": [100.0, 100.0, 100.0], "counts": [50.0, 200.0, 300.0]},
        calls=["/api/alerts", "/api/alerts/summary"],
    )

    assert samples.ready() == ([250.0, 400.0, 600.0], [100.0, 200.0, 300.0])
    assert samples.ratios() == {"ready": 2.0, "first row": 3.0, "counts": 2.0}
