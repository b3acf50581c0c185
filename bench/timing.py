"""Shared by the benchmarks: the best of several timed runs (the least disturbed by other load)."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable


def best_of(runs: int, action: Callable[[], object]) -> float:
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        timings.append(time.perf_counter() - started)
    return min(timings)


def best_of_interleaved(
    runs: int, first: Callable[[], object], second: Callable[[], object]
) -> tuple[float, float]:
    """The best time of each of two actions, run alternately so both see the same spells of other load.

    Objects alive before the runs (the corpus) are frozen out of the garbage collector: a worker holds
    one page at a time, so a collector walking a 20,000-record corpus would time the benchmark, not the code.
    """
    gc.collect()
    gc.freeze()
    try:
        first_timings: list[float] = []
        second_timings: list[float] = []
        for _ in range(runs):
            for action, timings in ((first, first_timings), (second, second_timings)):
                started = time.perf_counter()
                action()
                timings.append(time.perf_counter() - started)
        return min(first_timings), min(second_timings)
    finally:
        gc.unfreeze()
