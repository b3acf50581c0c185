"""The ingest service with fakes: the page's tenant wins, quarantine keeps the batch going, ids dedupe."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from shared.ingestion.archive import QuarantinedRecord
from shared.ingestion.ingest import IngestService
from shared.ingestion.messages import AlertWorkMessage, IngestMessage
from shared.platform.ids import storage_id

NOW = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)


class Clock:
    def now(self) -> dt.datetime:
        return NOW

    def monotonic(self) -> float:
        return 0.0


class Archive:
    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self.quarantined: list[tuple[int, str]] = []
        self.kept: set[str] = set()

    def read_lines(self, blob: str) -> list[tuple[int, str]]:
        return list(enumerate(self.lines, start=1))

    def quarantine(
        self, source: str, blob: str, line: int, reason: str, raw: str, now: dt.datetime
    ) -> QuarantinedRecord:
        self.quarantined.append((line, reason))
        new = raw not in self.kept
        self.kept.add(raw)
        return QuarantinedRecord(f"q-{len(self.kept)}", new)


class Store:
    def __init__(self) -> None:
        self.written: list[dict[str, Any]] = []
        self.facet_tenants: list[str] = []

    def write_events(self, documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for document in documents:  # as EventStore does: one unsafe id refuses the whole page
            storage_id(document["id"])
        self.written.extend(documents)
        return list(documents)

    def update_facets(self, tenant_id: str, new: Any, existing: Any, seen_at: str, shard_key: str) -> None:
        self.facet_tenants.append(tenant_id)


class Watermarks:
    def __init__(self) -> None:
        self.quarantined = 0

    def add_counts(self, key: str, *, quarantined: int = 0, expired_skipped: int = 0) -> None:
        self.quarantined += quarantined


def _audit(record_id: str) -> str:
    return json.dumps(
        {"id": record_id, "activityDateTime": "2026-11-20T11:00:00Z", "activityDisplayName": "Add user"}
    )


def test_page_tenant_wins_bad_lines_are_quarantined_and_repeats_are_written_once() -> None:
    archive = Archive([_audit("a"), "{not json", _audit("a"), json.dumps({"no": "id"}), _audit("b")])
    store, watermarks = Store(), Watermarks()
    service = IngestService(archive, store, watermarks, "worker-tenant", Clock())

    report = service.process(
        IngestMessage(source="entra_audit", blob="p1", count=5, run_id="r", tenant_id="page-tenant")
    )

    assert [d["id"] for d in store.written] == ["entra_audit:a", "entra_audit:b"]
    assert {d["tenant_id"] for d in store.written} == {"page-tenant"}
    assert {d["pk"] for d in store.written} == {"page-tenant:2026-11"}
    assert store.facet_tenants == ["page-tenant"]
    assert [line for line, _ in archive.quarantined] == [2, 4]
    assert watermarks.quarantined == 2
    assert (report.records, report.stored, report.quarantined) == (5, 2, 2)
    refs = [r.id for m in report.alert_messages for r in AlertWorkMessage.model_validate_json(m).events]
    assert refs == ["entra_audit:a", "entra_audit:b"]


def test_bad_records_seen_again_are_reported_but_counted_once() -> None:
    """A redelivered page, or the next poll's overlap window, brings the same malformed records back."""
    archive = Archive(["{not json", _audit("a"), json.dumps({"no": "id"})])
    watermarks = Watermarks()
    service = IngestService(archive, Store(), watermarks, "t", Clock())
    message = IngestMessage(source="entra_audit", blob="p1", count=3, run_id="r")

    reports = [service.process(message), service.process(message.model_copy(update={"blob": "p2"}))]

    assert [r.quarantined for r in reports] == [2, 2]
    assert watermarks.quarantined == 2


def test_a_message_without_a_tenant_uses_the_workers() -> None:
    store = Store()
    service = IngestService(Archive([_audit("x")]), store, Watermarks(), "worker-tenant", Clock())
    service.process(IngestMessage(source="entra_audit", blob="p", count=1, run_id="r"))
    assert store.written[0]["tenant_id"] == "worker-tenant"


def test_records_whose_native_id_is_unsafe_for_storage_are_quarantined_not_the_page() -> None:
    """One record with a native id of '../x' or 'a/b' must not send its whole page to poison."""
    archive = Archive(
        [_audit("ok-1"), _audit("../../dbs/aoc"), _audit("a/b"), _audit("c\\d"), _audit("ok-2")]
    )
    store, watermarks = Store(), Watermarks()
    service = IngestService(archive, store, watermarks, "t", Clock())

    report = service.process(IngestMessage(source="entra_audit", blob="p", count=5, run_id="r"))

    assert [d["id"] for d in store.written] == ["entra_audit:ok-1", "entra_audit:ok-2"]
    assert [line for line, _ in archive.quarantined] == [2, 3, 4]
    assert all("unsafe event id" in reason for _, reason in archive.quarantined)
    assert (report.records, report.stored, report.quarantined) == (5, 2, 3)
    assert watermarks.quarantined == 3
