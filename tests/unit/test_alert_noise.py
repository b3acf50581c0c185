"""bench/alert_noise.py's figures: the most alerts in one window, and the per-rule summary."""

from __future__ import annotations

import datetime as dt

import pytest

from bench.alert_noise import max_in_window, summarize, table

DAY = dt.datetime(2026, 11, 28, tzinfo=dt.UTC)
FIVE_HOURS = dt.timedelta(hours=5)


def at(hours: float) -> dt.datetime:
    return DAY + dt.timedelta(hours=hours)


@pytest.mark.parametrize(
    ("hours", "expected"),
    [
        ([], 0),
        ([3.0], 1),
        ([0.0, 5.0, 10.0], 1),  # exactly one window apart: one alert per 5 hours
        ([0.0, 4.99, 9.98], 2),
        ([0.0, 1.0, 2.0, 6.5, 7.0], 3),
        ([7.0, 0.0, 6.5, 2.0, 1.0], 3),  # input order does not matter
        ([0.0, 4.0, 8.0, 9.0, 12.9], 3),  # the densest window is not the first one
        ([1.0, 1.0, 1.0], 3),  # same instant
    ],
)
def test_max_in_window(hours: list[float], expected: int) -> None:
    assert max_in_window([at(h) for h in hours], FIVE_HOURS) == expected


def alert(rule_id: str, group_key: str, hours: float) -> dict[str, str]:
    first_seen = at(hours).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return {"rule_id": rule_id, "group_key": group_key, "first_seen": first_seen}


def test_summarize_counts_per_rule_and_group() -> None:
    alerts = [
        alert("after-hours", "alex", 0.0),
        alert("after-hours", "alex", 1.0),
        alert("after-hours", "alex", 4.0),
        alert("after-hours", "alex", 20.0),
        alert("after-hours", "soren", 2.0),
        alert("role-assigned", "alex", 0.0),
        alert("role-assigned", "alex", 6.0),
    ]
    matches = {
        "after-hours": {"a": 9, "s": 2},
        "role-assigned": {"a": 2},
        "bulk-deletion": {"x": 4, "y": 1},  # a threshold rule that matched and opened nothing
    }

    report = summarize(alerts, matches, FIVE_HOURS)

    by_rule = {r.rule_id: r for r in report.rules}
    assert [r.rule_id for r in report.rules] == ["after-hours", "role-assigned", "bulk-deletion"]
    assert (by_rule["after-hours"].matches, by_rule["after-hours"].alerts) == (11, 5)
    assert (by_rule["after-hours"].groups, by_rule["after-hours"].max_per_group_in_window) == (2, 3)
    assert (by_rule["role-assigned"].alerts, by_rule["role-assigned"].max_per_group_in_window) == (2, 1)
    bulk = by_rule["bulk-deletion"]
    assert (bulk.matches, bulk.matched_groups, bulk.alerts, bulk.groups) == (5, 2, 0, 0)
    assert (report.matches, report.alerts, report.groups, report.max_per_group_in_window) == (18, 7, 3, 3)

    lines = table(report).splitlines()
    assert lines[0].split() == ["rule", "matches", "alerts", "groups", "max/group/5h", "matched", "groups"]
    assert lines[2].split() == ["after-hours", "11", "5", "2", "3", "2"]
    assert lines[-1].split() == ["total", "18", "7", "3", "3", "5"]
