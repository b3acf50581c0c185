"""Saturates every core with busy-looping child processes, to run a test on a loaded machine.

`AOC_CPU_HOG=1` turns the hog on for the tests that use the `cpu_hog` fixture (see test_alerting.py).
Each child spins until its own deadline, so a hog whose parent died still ends by itself; `stop()`
kills the children it started, by pid, and reports how much CPU they burnt.

Run it by hand beside anything else: `.venv/bin/python -m tests.support.cpu_hog --seconds 120`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

ENV_FLAG = "AOC_CPU_HOG"
DEFAULT_MAX_SECONDS = 900.0

# The child: spin until the deadline passed on its command line. Pure arithmetic, no I/O, no sleep.
_SPIN = (
    "import sys, time\nend = time.monotonic() + float(sys.argv[1])\nx = 0\nwhile time.monotonic() < end:\n"
    + ("    for _ in range(10_000):\n        x = (x * 1103515245 + 12345) & 0x7FFFFFFF\n")
)


def hog_requested() -> bool:
    return os.environ.get(ENV_FLAG, "").strip().lower() in ("1", "true", "yes")


def _cpu_ticks() -> tuple[int, int] | None:
    """(idle, total) jiffies of all cores since boot (Linux /proc/stat); None where unavailable."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, IndexError, ValueError):
        return None
    return fields[3] + fields[4], sum(fields[:8])  # idle + iowait; user..steal


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a live process (Linux /proc); None where unavailable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks  # utime, stime (fields 14 and 15 of stat)


@dataclass
class HogReport:
    processes: int
    wall_seconds: float
    cpu_seconds: float | None
    alive_at_stop: int
    idle_share: float | None
    """The machine's idle share of CPU time while the hog ran (0.0: every core was busy)."""

    @property
    def cores_busy(self) -> float | None:
        """Average number of cores the hog kept busy (CPU seconds / wall seconds)."""
        if self.cpu_seconds is None or self.wall_seconds <= 0:
            return None
        return self.cpu_seconds / self.wall_seconds


@dataclass
class CpuHog:
    """`processes` busy loops (default: one per core), each ending by itself after `max_seconds`."""

    processes: int = field(default_factory=lambda: os.cpu_count() or 1)
    max_seconds: float = DEFAULT_MAX_SECONDS
    _children: list[subprocess.Popen[bytes]] = field(default_factory=list, init=False)
    _started: float = field(default=0.0, init=False)
    _ticks: tuple[int, int] | None = field(default=None, init=False)

    def start(self) -> CpuHog:
        if self._children:
            raise RuntimeError("this hog is already running")
        self._started = time.monotonic()
        self._ticks = _cpu_ticks()
        for _ in range(self.processes):
            self._children.append(
                subprocess.Popen(
                    [sys.executable, "-c", _SPIN, str(self.max_seconds)],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        return self

    def alive(self) -> int:
        return sum(1 for child in self._children if child.poll() is None)

    def stop(self) -> HogReport:
        alive = self.alive()
        wall = time.monotonic() - self._started
        burnt = [_cpu_seconds(child.pid) for child in self._children]
        ticks = _cpu_ticks()
        idle = None
        if self._ticks is not None and ticks is not None and ticks[1] > self._ticks[1]:
            idle = (ticks[0] - self._ticks[0]) / (ticks[1] - self._ticks[1])
        for child in self._children:
            if child.poll() is None:
                child.kill()
        for child in self._children:
            child.wait(timeout=10)
        cpu = None if any(b is None for b in burnt) else sum(b for b in burnt if b is not None)
        report = HogReport(len(self._children), wall, cpu, alive, idle)
        self._children.clear()
        return report

    def __enter__(self) -> CpuHog:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()


class _Stop(Exception):
    pass


def _raise_stop(signum: int, frame: object) -> None:
    raise _Stop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="how long to burn (default 60)")
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    # A background job ignores SIGINT: SIGTERM (kill <pid>) stops the children too.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _raise_stop)
    hog = CpuHog(args.processes, max_seconds=args.seconds + 5).start()
    with contextlib.suppress(_Stop):
        time.sleep(args.seconds)
    report = hog.stop()
    print(json.dumps({**report.__dict__, "cores_busy": report.cores_busy}))


if __name__ == "__main__":
    main()
