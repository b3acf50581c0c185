"""SlidingWindowRateLimiter with a fake clock whose sleep advances time."""

from __future__ import annotations

import datetime as dt
import threading

import pytest

from shared.m365.rate_limit import SlidingWindowRateLimiter


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0
        self.sleeps: list[float] = []
        self._lock = threading.RLock()

    def now(self) -> dt.datetime:
        return dt.datetime(2024, 1, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=self.t)

    def monotonic(self) -> float:
        with self._lock:
            return self.t

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self.t += seconds

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.t += seconds


def test_five_per_ten_seconds_sixth_waits_until_the_window_frees() -> None:
    clock = FakeClock()
    limiter = SlidingWindowRateLimiter(5, 10, clock, sleep=clock.sleep)
    for _ in range(5):
        assert limiter.acquire() == 0.0
    assert clock.sleeps == []
    waited = limiter.acquire()
    assert waited == pytest.approx(10.0)
    assert clock.sleeps == [pytest.approx(10.0)]
    assert clock.t == pytest.approx(1010.0)
    assert limiter.in_window() == 1  # the five at t=1000 left the window (t-10, t]


def test_spread_requests_wait_only_for_the_oldest_grant() -> None:
    clock = FakeClock()
    limiter = SlidingWindowRateLimiter(5, 10, clock, sleep=clock.sleep)
    for _ in range(5):
        limiter.acquire()
        clock.advance(1.5)  # grants at 0, 1.5, 3, 4.5, 6; now 7.5
    waited = limiter.acquire()
    assert waited == pytest.approx(2.5)  # until the grant at 0 is 10 s old
    waited = limiter.acquire()
    assert waited == pytest.approx(1.5)  # then the grant at 1.5


def test_no_wait_when_the_window_has_passed() -> None:
    clock = FakeClock()
    limiter = SlidingWindowRateLimiter(5, 10, clock, sleep=clock.sleep)
    for _ in range(5):
        limiter.acquire()
    clock.advance(10.0)
    assert limiter.acquire() == 0.0
    assert clock.sleeps == []


def test_intune_budget_of_1000_per_20_seconds() -> None:
    clock = FakeClock()
    limiter = SlidingWindowRateLimiter(1000, 20, clock, sleep=clock.sleep)
    for _ in range(1000):
        limiter.acquire()
    assert clock.sleeps == []
    assert limiter.try_acquire() is False
    assert limiter.acquire() == pytest.approx(20.0)


def test_thread_safe_no_more_than_the_budget_in_any_window() -> None:
    clock = FakeClock()
    granted: list[float] = []

    class RecordingLimiter(SlidingWindowRateLimiter):
        def _try_take(self) -> float:
            with clock._lock:  # time cannot move between the grant and its record
                delay = super()._try_take()
                if delay == 0.0:
                    granted.append(clock.monotonic())
                return delay

    limiter = RecordingLimiter(5, 10, clock, sleep=clock.sleep)

    def worker() -> None:
        for _ in range(5):
            limiter.acquire()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert len(granted) == 20
    granted.sort()
    for i in range(len(granted) - 5):
        # Any six consecutive grants span at least the window.
        assert granted[i + 5] - granted[i] >= 10.0 - 1e-9


@pytest.mark.parametrize(("max_requests", "per_seconds"), [(0, 10), (5, 0), (5, -1)])
def test_rejects_an_empty_budget(max_requests: int, per_seconds: float) -> None:
    with pytest.raises(ValueError, match="must be"):
        SlidingWindowRateLimiter(max_requests, per_seconds, FakeClock())
