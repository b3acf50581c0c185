"""Timer schedules: 6-field NCRONTAB and TimeSpan intervals, in UTC."""

from __future__ import annotations

import datetime as dt

import pytest

from devtools.host.config import HostConfigError
from devtools.host.timers import Schedule

UTC = dt.UTC


def at(hour: int, minute: int, second: int, microsecond: int = 0) -> dt.datetime:
    return dt.datetime(2024, 5, 6, hour, minute, second, microsecond, tzinfo=UTC)


def test_every_two_seconds_next_after() -> None:
    schedule = Schedule("*/2 * * * * *")
    assert schedule.interval is None
    assert schedule.next_after(at(12, 0, 1)) == at(12, 0, 2)
    assert schedule.next_after(at(12, 0, 1, 500_000)) == at(12, 0, 2)


def test_next_after_is_strictly_after_an_occurrence() -> None:
    schedule = Schedule("*/2 * * * * *")
    assert schedule.next_after(at(12, 0, 2)) == at(12, 0, 4)


def test_next_after_rolls_over_the_minute() -> None:
    assert Schedule("*/2 * * * * *").next_after(at(12, 0, 59)) == at(12, 1, 0)


def test_every_five_minutes() -> None:
    schedule = Schedule("0 */5 * * * *")
    assert schedule.next_after(at(12, 3, 0)) == at(12, 5, 0)
    assert schedule.next_after(at(12, 5, 0)) == at(12, 10, 0)
    assert schedule.next_after(at(12, 57, 30)) == at(13, 0, 0)


def test_seconds_field_comes_first() -> None:
    # "30 0 * * * *" is 30 seconds past minute 0 of every hour, not minute 30.
    schedule = Schedule("30 0 * * * *")
    assert schedule.next_after(at(12, 0, 0)) == at(12, 0, 30)
    assert schedule.next_after(at(12, 0, 30)) == at(13, 0, 30)


def test_daily_schedule_crosses_midnight() -> None:
    schedule = Schedule("0 0 9 * * *")
    assert schedule.next_after(at(10, 0, 0)) == dt.datetime(2024, 5, 7, 9, 0, 0, tzinfo=UTC)


def test_result_stays_in_utc() -> None:
    nxt = Schedule("0 */5 * * * *").next_after(at(12, 3, 0))
    assert nxt.utcoffset() == dt.timedelta(0)


def test_latest_at_or_before_includes_an_exact_occurrence() -> None:
    schedule = Schedule("*/2 * * * * *")
    assert schedule.latest_at_or_before(at(12, 0, 2)) == at(12, 0, 2)


def test_latest_at_or_before_between_occurrences() -> None:
    schedule = Schedule("*/2 * * * * *")
    assert schedule.latest_at_or_before(at(12, 0, 3)) == at(12, 0, 2)
    assert schedule.latest_at_or_before(at(12, 0, 3, 999_999)) == at(12, 0, 2)


def test_latest_at_or_before_five_minutes() -> None:
    schedule = Schedule("0 */5 * * * *")
    assert schedule.latest_at_or_before(at(12, 9, 59)) == at(12, 5, 0)
    assert schedule.latest_at_or_before(at(12, 10, 0)) == at(12, 10, 0)
    assert schedule.latest_at_or_before(at(12, 10, 0, 1)) == at(12, 10, 0)


def test_timespan_interval() -> None:
    schedule = Schedule("00:00:05")
    assert schedule.interval == dt.timedelta(seconds=5)
    assert schedule.next_after(at(12, 0, 1)) == at(12, 0, 6)
    assert schedule.latest_at_or_before(at(12, 0, 1)) == at(12, 0, 1)


def test_timespan_with_days() -> None:
    assert Schedule("1.02:03:04").interval == dt.timedelta(days=1, hours=2, minutes=3, seconds=4)


def test_expression_is_stripped() -> None:
    assert Schedule("  */2 * * * * *  ").next_after(at(12, 0, 1)) == at(12, 0, 2)


def test_zero_timespan_rejected() -> None:
    with pytest.raises(HostConfigError, match="positive"):
        Schedule("00:00:00")


@pytest.mark.parametrize("expression", ["*/5 * * * *", "0 0 * * *", "* * * * * * *", ""])
def test_wrong_field_count_rejected(expression: str) -> None:
    with pytest.raises(HostConfigError, match="6-field"):
        Schedule(expression)


@pytest.mark.parametrize(
    "expression",
    ["61 * * * * *", "* 60 * * * *", "* * 25 * * *", "a b c d e f", "*/0x * * * * *", "* * * 32 * *"],
)
def test_invalid_expression_rejected(expression: str) -> None:
    with pytest.raises(HostConfigError, match="not a valid NCRONTAB"):
        Schedule(expression)
