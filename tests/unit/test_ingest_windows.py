"""Window arithmetic for Graph and the Management Activity API, enrichment batching, poller isolation."""

from __future__ import annotations

import datetime as dt
from typing import Any

from shared.ingestion.enrichment import GET_BY_IDS_LIMIT, DirectoryNameResolver
from shared.ingestion.sources.graph import SourceRunResult, graph_window
from shared.ingestion.sources.management import content_windows, management_window_start
from shared.platform.clock import utc_iso
from shared.probe.poller import Poller

NOW = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)


class FixedClock:
    def now(self) -> dt.datetime:
        return NOW

    def monotonic(self) -> float:
        return 0.0


def test_graph_window_starts_overlap_before_the_watermark() -> None:
    start, end = graph_window("2026-11-20T11:55:00.000Z", NOW, 900, 86400)
    assert (utc_iso(start), end) == ("2026-11-20T11:40:00.000Z", NOW)


def test_graph_first_run_looks_back_the_initial_lookback() -> None:
    start, _ = graph_window(None, NOW, 900, 3600)
    assert start == NOW - dt.timedelta(hours=1)


def test_content_windows_are_at_most_24_hours_and_contiguous() -> None:
    windows = list(content_windows(NOW - dt.timedelta(hours=50), NOW))
    assert [round((b - a).total_seconds() / 3600) for a, b in windows] == [24, 24, 2]
    assert all(windows[i][1] == windows[i + 1][0] for i in range(len(windows) - 1))
    assert windows[-1][1] == NOW


def test_management_start_never_earlier_than_seven_days_minus_margin() -> None:
    start = management_window_start("2026-11-01T00:00:00.000Z", NOW, 86400, 86400)
    assert start == NOW - dt.timedelta(days=7) + dt.timedelta(minutes=30)


def test_management_start_relists_the_overlap_before_the_watermark() -> None:
    start = management_window_start("2026-11-20T11:00:00.000Z", NOW, 3600, 86400)
    assert start == NOW - dt.timedelta(hours=2)


class FakeResponse:
    def __init__(self, payload: dict[str, Any]) -> None:
        self._payload = payload

    def json(self) -> dict[str, Any]:
        return self._payload


class SteppingClock(FixedClock):
    """A monotonic clock that FakeApi moves on with each call, as a slow Graph would."""

    def __init__(self) -> None:
        self.seconds = 100.0

    def monotonic(self) -> float:
        return self.seconds


class FakeApi:
    def __init__(self, fail: bool = False, seconds_per_call: float = 0.0) -> None:
        self.calls: list[list[str]] = []
        self.deadlines: list[float | None] = []
        self.fail = fail
        self.clock = SteppingClock()
        self.seconds_per_call = seconds_per_call

    def request(self, method: str, url: str, **kwargs: Any) -> FakeResponse:
        ids = kwargs["json"]["ids"]
        self.calls.append(ids)
        self.deadlines.append(kwargs.get("deadline"))
        self.clock.seconds += self.seconds_per_call
        if self.fail:
            raise RuntimeError("graph is down")
        return FakeResponse(
            {
                "value": [
                    {"@odata.type": "#microsoft.graph.user", "id": i, "displayName": f"User {i[:4]}"}
                    for i in ids
                ]
            }
        )


class MemoryTable:
    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], dict[str, Any]] = {}

    def get_entity(self, pk: str, rk: str) -> dict[str, Any]:
        from azure.core.exceptions import ResourceNotFoundError

        if (pk, rk) not in self.rows:
            raise ResourceNotFoundError("missing")
        return self.rows[(pk, rk)]

    def upsert_entity(self, row: dict[str, Any]) -> None:
        self.rows[(row["PartitionKey"], row["RowKey"])] = row


def _guid(n: int) -> str:
    return f"{n:08x}-0000-4000-8000-000000000000"


def test_enrichment_resolves_in_chunks_of_1000_and_caches() -> None:
    api, table = FakeApi(), MemoryTable()
    resolver = DirectoryNameResolver(api, "http://graph", "scope", table, FixedClock(), 3600)  # type: ignore[arg-type]
    documents: list[dict[str, Any]] = [
        {"actor": {"id": _guid(n)}, "targets": [{"id": _guid(n + 5000)}]} for n in range(1200)
    ]

    filled = resolver.enrich(documents)
    resolver.enrich([{"actor": {"id": _guid(1)}, "targets": []}])

    assert filled == 2400
    assert [len(c) for c in api.calls] == [GET_BY_IDS_LIMIT, GET_BY_IDS_LIMIT, 400]
    assert documents[0]["actor"]["display"] == "User 0000"


def test_enrichment_stops_at_its_time_budget() -> None:
    """A slow or throttled Graph must not hold an ingest message past the function timeout."""
    api = FakeApi(seconds_per_call=20)
    resolver = DirectoryNameResolver(api, "http://g", "s", MemoryTable(), FixedClock(), 60, budget_seconds=30)  # type: ignore[arg-type]
    documents = [{"actor": {"id": _guid(n)}, "targets": []} for n in range(3500)]

    filled = resolver.enrich(documents)

    assert [len(c) for c in api.calls] == [GET_BY_IDS_LIMIT, GET_BY_IDS_LIMIT]
    assert api.deadlines == [130.0, 130.0], "each call's retries stop at the same deadline"
    assert filled == 2 * GET_BY_IDS_LIMIT
    assert "display" not in documents[-1]["actor"]


def test_failed_lookup_leaves_ids_and_never_raises() -> None:
    resolver = DirectoryNameResolver(FakeApi(fail=True), "http://g", "s", MemoryTable(), FixedClock(), 60)  # type: ignore[arg-type]
    documents = [{"actor": {"id": _guid(7)}, "targets": []}]
    assert resolver.enrich(documents) == 0
    assert documents[0]["actor"] == {"id": _guid(7)}


class FailingGraph:
    def collect(
        self, spec: Any, run_id: str, run_started: Any, deadline: float, observer: Any = None
    ) -> SourceRunResult:
        if spec.name == "entra_audit":
            raise RuntimeError("boom with AccountKey=abc123")
        return SourceRunResult(source=spec.name, records=3)


class RecordingWatermarks:
    def __init__(self) -> None:
        self.failures: list[tuple[str, str]] = []

    def record_failure(self, source: str, run_id: str, error: str) -> None:
        self.failures.append((source, error))


def test_one_failing_source_never_stops_the_others_and_errors_are_redacted() -> None:
    watermarks = RecordingWatermarks()
    poller = Poller(
        FailingGraph(),
        None,
        watermarks,
        FixedClock(),
        graph_sources=["entra_audit", "intune_audit"],
        content_types=[],
        time_budget_seconds=60,
    )
    report = poller.run()
    by_source = {s.source: s for s in report.sources}
    assert by_source["intune_audit"].records == 3
    assert by_source["entra_audit"].error is not None
    assert "abc123" not in by_source["entra_audit"].error
    assert watermarks.failures[0][0] == "entra_audit"


def test_enrichment_sends_only_whole_guids() -> None:
    """A GUID with a trailing newline must not reach getByIds or the servicePrincipals $filter."""
    api, table = FakeApi(), MemoryTable()
    resolver = DirectoryNameResolver(api, "http://graph", "scope", table, FixedClock(), 3600)  # type: ignore[arg-type]
    tainted = _guid(7) + "\n"
    documents: list[dict[str, Any]] = [
        {"actor": {"id": tainted, "client_app": {"id": tainted, "name": None}}, "targets": [{"id": tainted}]}
    ]

    assert resolver.enrich(documents) == 0
    assert api.calls == []
