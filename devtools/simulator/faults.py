"""Deterministic fault injection: which API call is throttled or fails, and which page repeats a record.

Every decision is a pure function of the seed and a counter or key, so a run with the same seed and
the same request order misbehaves identically.
"""

from __future__ import annotations

import hashlib
import threading
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
    """Which Graph and Management calls fail. Both APIs share one call counter, so the faults follow
    the order calls arrive in across the two APIs. Thread-safe."""

    def __init__(self, config: SimulatorConfig) -> None:
        self._config = config
        self._lock = threading.Lock()
        self._calls = 0

    def next_call(self) -> Fault | None:
        """Count one more API call and return its fault, if any."""
        with self._lock:
            self._calls += 1
            counter = self._calls
        return self.for_call(counter)

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


ContentFaultKind = Literal["not_found", "invalid_id", "not_json"]
CONTENT_FAULT_KINDS: tuple[str, ...] = ("not_found", "invalid_id", "not_json")


@dataclass
class _ContentFault:
    kind: ContentFaultKind
    remaining: int | None  # failing fetches left; None: every fetch fails
    served: int = 0  # failing answers given so far


class ContentFaults:
    """Scripted Management API content faults, for one bad blob among good ones. Thread-safe.

    - A failing blob: its content URI answers `not_found` (404 AF20050), `invalid_id` (400 AF20052) or
      `not_json` (200 with an HTML body), for its next `times` fetches or for good (`times` None).
    - A late-listed blob: held back from every listing (its contentCreated unchanged) until released,
      as Microsoft sometimes lists content late. Fetching it works meanwhile.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: dict[str, _ContentFault] = {}
        self._held: set[str] = set()

    def script(self, content_id: str, kind: str | None, times: int | None = None) -> None:
        """Fail `content_id` `times` times (None: always) with `kind`; `kind` None clears its fault."""
        if kind is not None and kind not in CONTENT_FAULT_KINDS:
            raise ValueError(f"kind must be one of {', '.join(CONTENT_FAULT_KINDS)} or null, got {kind!r}")
        if times is not None and (isinstance(times, bool) or not isinstance(times, int) or times < 1):
            raise ValueError(f"times must be a positive integer or null, got {times!r}")
        with self._lock:
            if kind is None:
                self._faults.pop(content_id, None)
            else:
                self._faults[content_id] = _ContentFault(kind, times)  # type: ignore[arg-type]

    def hold(self, content_id: str, held: bool) -> None:
        with self._lock:
            if held:
                self._held.add(content_id)
            else:
                self._held.discard(content_id)

    def listed(self, content_id: str) -> bool:
        with self._lock:
            return content_id not in self._held

    def take(self, content_id: str) -> ContentFaultKind | None:
        """The fault this fetch of `content_id` answers with, if any (uses up one of `times`)."""
        with self._lock:
            fault = self._faults.get(content_id)
            if fault is None or fault.remaining == 0:
                return None
            if fault.remaining is not None:
                fault.remaining -= 1
            fault.served += 1
            return fault.kind

    def summary(self) -> dict[str, object]:
        with self._lock:
            return {
                "faults": {
                    content_id: {"kind": f.kind, "remaining": f.remaining, "served": f.served}
                    for content_id, f in sorted(self._faults.items())
                },
                "held": sorted(self._held),
            }
