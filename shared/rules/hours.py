"""Business hours in one IANA time zone, for the `after_hours` rule operator."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class BusinessHours:
    """Working hours in one IANA time zone; `after_hours` is everything else."""

    start: dt.time
    end: dt.time  # exclusive; 24:00 is written as 00:00 on `end_of_day`
    days: frozenset[int]  # Monday = 0
    zone: ZoneInfo
    end_of_day: bool = False

    @classmethod
    def parse(cls, hours: str, days: str, zone: str) -> BusinessHours:
        """`hours` "08:00-18:00", `days` "Mon-Fri" or "Mon,Tue,Thu", `zone` "Europe/London"."""
        try:
            start_text, end_text = (part.strip() for part in hours.split("-"))
            start = dt.time.fromisoformat(start_text)
            end_of_day = end_text == "24:00"
            end = dt.time(0) if end_of_day else dt.time.fromisoformat(end_text)
        except ValueError:
            raise ValueError(f"business hours must look like 08:00-18:00, got {hours!r}") from None
        if not end_of_day and end <= start:
            raise ValueError(f"business hours must end after they start, got {hours!r}")
        try:
            tz = ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{zone!r} is not an IANA time zone such as Europe/London") from None
        return cls(start, end, frozenset(_parse_days(days)), tz, end_of_day)

    def is_after_hours(self, when: dt.datetime) -> bool:
        local = when.astimezone(self.zone)
        if local.weekday() not in self.days:
            return True
        clock = local.time()
        if clock < self.start:
            return True
        return False if self.end_of_day else clock >= self.end


ALWAYS_BUSINESS_HOURS = BusinessHours(dt.time(0), dt.time(0), frozenset(range(7)), ZoneInfo("UTC"), True)


_DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def _parse_days(text: str) -> set[int]:
    """`Mon-Fri`, `Monday - Friday`, `Mon,Wed,Fri` or `Sat Sun`; ranges may wrap (`Sun-Tue`)."""
    days: set[int] = set()
    for part in re.split(r"[,;\s]+", re.sub(r"\s*-\s*", "-", text.strip())):
        if not part:
            continue
        if "-" in part:
            first, _, last = part.partition("-")
            a, b = _day(first), _day(last)
            days.update(range(a, b + 1) if a <= b else [*range(a, 7), *range(0, b + 1)])
        else:
            days.add(_day(part))
    if not days:
        raise ValueError(f"business days must look like Mon-Fri, got {text!r}")
    return days


def _day(text: str) -> int:
    key = text.strip().lower()
    if key in _DAYS:
        return _DAYS.index(key)
    if key in _DAY_NAMES:
        return _DAY_NAMES.index(key)
    raise ValueError(f"unknown day {text!r}: use Mon, Tue, Wed, Thu, Fri, Sat, Sun")
