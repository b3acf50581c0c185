"""Deterministic fault injection: which API call is throttled or fails, and which page repeats a record.

Every decision is a pure function of the seed and a counter or key, so a run with the same seed and
the same request order misbehaves identically.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

from devtools.simulator.config import SimulatorConfig


def unit(seed: int, salt: str, key: object) -> float:
    """A uniform number in [0, 1) from (seed, salt, key)."""
    digest = hashlib.blake2b(f"{seed}:{salt}:{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


@dataclass(frozen=True)
class Fault:
    kind: Literal["throttle", "server_error"]
    status: int
    retry_after: int | None = None


class FaultPlan:
    def __init__(self, config: SimulatorConfig) -> None:
        self._config = config

    def for_call(self, counter: int) -> Fault | None:
        """The fault for the `counter`-th API call (1-based), if any."""
        config = self._config
        roll = unit(config.seed, "call", counter)
        if roll < config.throttle_rate:
            without = unit(config.seed, "retry-after", counter) < config.throttle_without_retry_after
            return Fault("throttle", 429, None if without else config.retry_after_seconds)
        if roll < config.throttle_rate + config.server_error_rate:
            status = (500, 503, 504)[int(unit(config.seed, "server-error", counter) * 3)]
            return Fault("server_error", status)
        return None

    def duplicate_boundary(self, key: str, offset: int) -> bool:
        """Whether the page starting at `offset` of listing `key` repeats the previous page's last item."""
        rate = self._config.duplicate_across_pages_rate
        return rate > 0 and offset > 0 and unit(self._config.seed, f"dup:{key}", offset) < rate


def page_bounds(total: int, offset: int, top: int, duplicate: bool) -> tuple[int, int]:
    """(start, end) of the page whose first new item is at `offset`; the next page starts at `end`.

    With `duplicate`, the page starts one item early, so its first item repeats the last item of the
    previous page, and it still holds at most `top` items. Every item is still served at least once.
    """
    start = offset - 1 if duplicate and offset > 0 and top >= 2 else offset
    return start, min(start + top, total)
