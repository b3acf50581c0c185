"""Client-side request budgets, so the app stays under an API's documented limit instead of being throttled.

Examples: Microsoft Graph directory audits and sign-ins allow 5 requests per 10 seconds per tenant
(`SlidingWindowRateLimiter(5, 10, clock)`); Intune allows 1,000 requests per 20 seconds
(`SlidingWindowRateLimiter(1000, 20, clock)`). A limiter counts requests in this process only.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol

from shared.platform.clock import Clock


class RateLimiter(Protocol):
    def acquire(self) -> float:
        """Block until one more request fits the budget, take it, and return the seconds waited."""
        ...


class SlidingWindowRateLimiter:
    """At most `max_requests` grants in any `per_seconds` window of `clock.monotonic()` time.

    A grant at time t counts against the window (t - per_seconds, t]: with 5 per 10 s, five grants at
    t=0 make the sixth wait until t=10. Thread-safe; waiting happens through the injected `sleep`
    outside the lock, so one thread's wait does not hold up the bookkeeping of others.
    """

    def __init__(
        self,
        max_requests: int,
        per_seconds: float,
        clock: Clock,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if max_requests < 1:
            raise ValueError(f"max_requests must be at least 1, got {max_requests}")
        if per_seconds <= 0:
            raise ValueError(f"per_seconds must be positive, got {per_seconds}")
        self.max_requests = max_requests
        self.per_seconds = float(per_seconds)
        self._clock = clock
        self._sleep = sleep
        self._grants: deque[float] = deque()
        self._lock = threading.Lock()

    def _try_take(self) -> float:
        """Take a grant and return 0.0, or return how long until the oldest grant leaves the window."""
        with self._lock:
            now = self._clock.monotonic()
            horizon = now - self.per_seconds
            while self._grants and self._grants[0] <= horizon:
                self._grants.popleft()
            if len(self._grants) < self.max_requests:
                self._grants.append(now)
                return 0.0
            # A tiny floor keeps a float rounding error from turning this into a busy loop.
            return max(self._grants[0] + self.per_seconds - now, 1e-3)

    def try_acquire(self) -> bool:
        """Take a grant if one is free now, without waiting."""
        return self._try_take() == 0.0

    def acquire(self) -> float:
        waited = 0.0
        while True:
            delay = self._try_take()
            if delay == 0.0:
                return waited
            self._sleep(delay)
            waited += delay

    def in_window(self) -> int:
        """Grants currently counted in the window."""
        with self._lock:
            horizon = self._clock.monotonic() - self.per_seconds
            return sum(1 for granted in self._grants if granted > horizon)
