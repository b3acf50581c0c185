"""The tenant simulator's OData subset: $filter time ranges, $top bounds and page tokens."""

from __future__ import annotations

import datetime as dt

import pytest

from devtools.simulator.odata import ODataError, PageTokens, TimeRange, parse_time_filter, parse_top
from devtools.simulator.timefmt import (
    TimeParseError,
    content_time,
    graph_time,
    management_time,
    parse_time,
    to_us,
)

T10 = to_us(dt.datetime(2026, 11, 1, 10, tzinfo=dt.UTC))
T11 = to_us(dt.datetime(2026, 11, 1, 11, tzinfo=dt.UTC))


def test_the_documented_range_filter() -> None:
    text = "activityDateTime ge 2026-11-01T10:00:00Z and activityDateTime lt 2026-11-01T11:00:00Z"
    assert parse_time_filter(text, "activityDateTime") == TimeRange(T10, T11)


def test_gt_and_le_are_exclusive_and_inclusive_bounds() -> None:
    text = "createdDateTime gt 2026-11-01T10:00:00Z and createdDateTime le 2026-11-01T11:00:00Z"
    assert parse_time_filter(text, "createdDateTime") == TimeRange(T10 + 1, T11 + 1)


def test_eq_selects_one_instant() -> None:
    assert parse_time_filter("activityDateTime eq 2026-11-01T10:00:00Z", "activityDateTime") == TimeRange(
        T10, T10 + 1
    )


def test_parentheses_case_and_repeated_bounds() -> None:
    text = (
        "(ActivityDateTime GE 2026-11-01T09:00:00Z) and (activityDateTime ge 2026-11-01T10:00:00Z "
        "and activityDateTime lt 2026-11-01T12:00:00Z) and activityDateTime lt 2026-11-01T11:00:00Z"
    )
    assert parse_time_filter(text, "activityDateTime") == TimeRange(T10, T11)


def test_fractional_seconds_and_offsets() -> None:
    assert parse_time_filter("activityDateTime ge 2026-11-01T10:00:00.1234567Z", "activityDateTime").lo == (
        T10 + 123_457  # 123456.7 us: the first whole microsecond at or after it
    )
    assert parse_time_filter("activityDateTime lt 2026-11-01T12:00:00+02:00", "activityDateTime").hi == T10
    assert (
        parse_time_filter("activityDateTime ge 2026-11-01", "activityDateTime").lo == T10 - 10 * 3600 * 10**6
    )


def test_no_filter_is_unbounded() -> None:
    assert parse_time_filter(None, "activityDateTime") == TimeRange()
    assert parse_time_filter("  ", "activityDateTime") == TimeRange()


@pytest.mark.parametrize(
    "text",
    [
        "activityDateTime ge 2026-11-01T10:00:00",  # no zone
        "activityDateTime ge '2026-11-01T10:00:00Z'",  # quoted DateTimeOffset
        "createdDateTime ge 2026-11-01T10:00:00Z",  # another API's field
        "activityDateTime ge 2026-11-01T10:00:00Z or activityDateTime lt 2026-11-01T11:00:00Z",
        "activityDateTime ne 2026-11-01T10:00:00Z",
        "activityDateTime ge",
        "activityDateTime ge 2026-13-01T10:00:00Z",
        "(activityDateTime ge 2026-11-01T10:00:00Z",
        "startswith(activityDisplayName,'Add')",
    ],
)
def test_unsupported_filters_are_rejected(text: str) -> None:
    with pytest.raises(ODataError):
        parse_time_filter(text, "activityDateTime")


def test_top_bounds() -> None:
    assert parse_top(None, 100, 1000) == 100
    assert parse_top("1", 100, 1000) == 1
    assert parse_top("1000", 100, 1000) == 1000
    for bad in ("0", "1001", "-5", "ten", ""):
        with pytest.raises(ODataError):
            parse_top(bad, 100, 1000)


def test_page_tokens_round_trip_and_are_tamper_evident() -> None:
    tokens = PageTokens("secret")
    state = {"api": "entra_audit", "lo": None, "hi": 5, "top": 100, "offset": 200, "snap": 123}
    token = tokens.encode(state)
    assert tokens.decode(token) == state
    assert "=" not in token
    assert "/" not in token
    assert "+" not in token
    flipped = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    for bad in (flipped, "not-a-token", "", token + "x"):
        with pytest.raises(ODataError):
            tokens.decode(bad)
    with pytest.raises(ODataError):
        PageTokens("other secret").decode(token)


def test_wire_time_formats() -> None:
    us = T10 + 721_537
    assert graph_time(us) == "2026-11-01T10:00:00.7215370Z"
    assert management_time(us) == "2026-11-01T10:00:00"
    assert content_time(us) == "2026-11-01T10:00:00.721Z"
    assert parse_time(graph_time(us), require_zone=True) == (us, False)
    assert parse_time("2026-11-01T10:00", require_zone=False) == (T10, False)
    with pytest.raises(TimeParseError):
        parse_time("2026-11-01T10:00", require_zone=True)
