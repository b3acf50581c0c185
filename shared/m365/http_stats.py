"""Thread-safe request counters of one ApiClient (the ingestion benchmark reports them per 1,000 events)."""

from __future__ import annotations

import threading


class ApiStats:
    """Thread-safe counters for one ApiClient (the benchmark reports requests per 1,000 events)."""

    FIELDS = (
        "requests",  # HTTP requests sent (every attempt, including a 401's second try)
        "retries",  # waits before another attempt
        "throttled",  # answers 429 or 403 AF429
        "server_errors",  # answers 5xx or AF50000
        "connection_errors",  # attempts that got no answer (connection error, timeout)
        "token_refreshes",  # 401s answered with a fresh token
        "failures",  # ApiErrors raised
    )

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(self.FIELDS, 0)
        self._slept = 0.0

    def add(self, field: str, count: int = 1) -> None:
        if field not in self._counts:
            raise KeyError(field)
        with self._lock:
            self._counts[field] += count

    def add_sleep(self, seconds: float) -> None:
        with self._lock:
            self._slept += seconds

    def snapshot(self) -> dict[str, float]:
        with self._lock:
            return {**self._counts, "slept_seconds": self._slept}

    def reset(self) -> None:
        with self._lock:
            self._counts = dict.fromkeys(self.FIELDS, 0)
            self._slept = 0.0

    def _get(self, field: str) -> int:
        with self._lock:
            return self._counts[field]

    @property
    def requests(self) -> int:
        return self._get("requests")

    @property
    def retries(self) -> int:
        return self._get("retries")

    @property
    def throttled(self) -> int:
        return self._get("throttled")

    @property
    def server_errors(self) -> int:
        return self._get("server_errors")

    @property
    def connection_errors(self) -> int:
        return self._get("connection_errors")

    @property
    def token_refreshes(self) -> int:
        return self._get("token_refreshes")

    @property
    def failures(self) -> int:
        return self._get("failures")

    @property
    def slept_seconds(self) -> float:
        with self._lock:
            return self._slept
