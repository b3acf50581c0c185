"""Injected time: every piece of time logic takes a Clock so tests can control it."""

from __future__ import annotations

import datetime as dt
import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> dt.datetime:
        """The current time, timezone-aware UTC."""
        ...

    def monotonic(self) -> float:
        """Seconds from an arbitrary origin, for measuring durations."""
        ...


class SystemClock:
    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)

    def monotonic(self) -> float:
        return time.monotonic()


def utc_iso(value: dt.datetime) -> str:
    """UTC ISO-8601 with a Z suffix and millisecond precision."""
    if value.tzinfo is None:
        raise ValueError("naive datetime: pass a timezone-aware value")
    return value.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class AcceleratedClock:
    """Simulated time that runs `speed` times faster than real time from `epoch`.

    The tenant simulator and the app can share one (same epoch, speed and start instant) so a
    simulated day of audit activity passes in under a minute. In Azure the app uses SystemClock.
    """

    def __init__(self, epoch: dt.datetime, speed: float, started_at_unix: float) -> None:
        if epoch.tzinfo is None:
            raise ValueError("epoch must be timezone-aware")
        self.epoch = epoch.astimezone(dt.UTC)
        self.speed = speed
        self.started_at_unix = started_at_unix

    def now(self) -> dt.datetime:
        elapsed = (time.time() - self.started_at_unix) * self.speed
        return self.epoch + dt.timedelta(seconds=elapsed)

    def monotonic(self) -> float:
        return time.monotonic() * self.speed


def build_clock(epoch_iso: str | None, speed: float, started_at_unix: float | None) -> Clock:
    """SystemClock unless an accelerated epoch is configured (AOC_CLOCK_EPOCH and friends)."""
    if not epoch_iso:
        return SystemClock()
    epoch = dt.datetime.fromisoformat(epoch_iso.replace("Z", "+00:00"))
    return AcceleratedClock(epoch, speed, started_at_unix if started_at_unix is not None else time.time())


def parse_utc(value: str) -> dt.datetime:
    """An ISO-8601 timestamp as an aware UTC datetime; a value without a zone is taken as UTC."""
    parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed.replace(tzinfo=dt.UTC) if parsed.tzinfo is None else parsed.astimezone(dt.UTC)
