"""Shared by the benchmarks: the best of several timed runs (the least disturbed by other load)."""

from __future__ import annotations

import time
from collections.abc import Callable


def best_of(runs: int, action: Callable[[], object]) -> float:
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        timings.append(time.perf_counter() - started)
    return min(timings)
