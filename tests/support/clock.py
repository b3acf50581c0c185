"""A clock tests move by hand."""

from __future__ import annotations

import datetime as dt


class ManualClock:
    def __init__(self, start: dt.datetime) -> None:
        self.current = start
        self._monotonic = 0.0

    def now(self) -> dt.datetime:
        return self.current

    def monotonic(self) -> float:
        return self._monotonic

    def advance(self, seconds: float) -> None:
        self.current += dt.timedelta(seconds=seconds)
        self._monotonic += seconds
