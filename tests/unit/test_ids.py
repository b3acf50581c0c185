"""The id grammar (shared.platform.ids): every id the app makes passes, every hostile value is refused,
and the storage helpers refuse an unsafe id before they call storage at all."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.alerts.lifecycle import update_id
from shared.alerts.model import alert_fingerprint
from shared.alerts.store import AlertStore
from shared.api.events_api import comment_id
from shared.ingestion.archive import RawArchive, raw_blob_name
from shared.ingestion.event_store import EventStore, facet_document_id
from shared.ingestion.events import partition_key
from shared.ingestion.normalize import NormalizationError, normalize_record
from shared.platform.cosmos import read_or_none, replace_unchanged
from shared.platform.ids import (
    UnsafeStorageIdError,
    is_alert_id,
    is_comment_id,
    is_event_id,
    is_idempotency_key,
    is_rule_id,
    storage_blob_name,
    storage_id,
)
from shared.rules.source import DEFAULT_RULES_FILE

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "normalize"
SOURCES = {
    "graph_directory_audits.json": ("entra_audit", "value"),
    "graph_signins.json": ("entra_signin", "value"),
    "graph_intune_audit_events.json": ("intune_audit", "value"),
    "o365_management_content.json": ("o365_management", "records"),
}

# Values (as the handler receives them, decoded) that must never reach storage.
HOSTILE = [
    "",
    "/",
    "\\",
    "?",
    "#",
    ".",
    "..",
    "%2F",
    "%2e%2e",
    "a/b",
    "a/../..",
    "../alerts",
    "a\\b",
    "a?b",
    "a#b",
    "a%b",
    "\x00",
    "a\nb",
    "a\x7f",
    "a\x85b",  # a C1 control
    "\ud800",  # a lone surrogate
    " a",
    "a ",
    "a" * 256,
]


def _event_ids() -> list[str]:
    ids = []
    for name, (source, key) in SOURCES.items():
        for record in json.loads((FIXTURES / name).read_bytes())[key]:
            # As received, and without its native id (the normalizer then hashes the record).
            without_id = {k: v for k, v in record.items() if k not in ("id", "Id")}
            for variant in (record, without_id):
                try:
                    document = normalize_record(
                        source, variant, tenant_id="t", ingested_at="2026-11-20T12:00:00Z"
                    )
                except NormalizationError:
                    continue
                ids.append(document["id"])
    return ids


def test_every_event_id_the_normalizers_make_is_an_event_id() -> None:
    ids = _event_ids()
    assert len(ids) >= 20
    assert any(":h:" in i for i in ids)  # the hashed ids of records without a native one
    assert [i for i in ids if not is_event_id(i)] == []
    assert [i for i in ids if storage_id(i) != i] == []


def test_alert_ids_comment_ids_and_rule_ids_the_app_makes_pass() -> None:
    alert_ids = [alert_fingerprint("t", "entra.x", f"group-{i}", i, i % 2) for i in range(50)]
    assert all(is_alert_id(a) and storage_id(a) == a for a in alert_ids)
    assert all(len(a) == 46 for a in alert_ids)
    comment_ids = [comment_id("subject", None), comment_id("subject", "key-1"), update_id("a", "b", "k")]
    assert all(is_comment_id(c) for c in comment_ids)
    rules = yaml.safe_load(DEFAULT_RULES_FILE.read_text(encoding="utf-8"))["rules"]
    assert len(rules) > 10
    assert all(is_rule_id(r["id"]) for r in rules)
    assert storage_id(facet_document_id("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0", "service", 7))


def test_each_grammar_refuses_every_hostile_value_and_the_other_kinds() -> None:
    for value in HOSTILE:
        assert not is_alert_id(value), repr(value)
        assert not is_event_id(value), repr(value)
        assert not is_rule_id(value), repr(value)
        assert not is_comment_id(value), repr(value)
    valid_alert = alert_fingerprint("t", "r", "g", 1)
    for wrapped in (valid_alert + "\n", valid_alert + "/..", "/" + valid_alert, valid_alert.upper()):
        assert not is_alert_id(wrapped), repr(wrapped)
    assert not is_rule_id("entra.app-registered\n")  # `$` alone would let a trailing newline through
    assert not is_event_id("entra_audit:")
    assert not is_event_id("entra_audit:..")
    assert not is_event_id("Entra_audit:x")
    assert not is_alert_id("alert-" + "a" * 80)
    assert not is_alert_id(None)
    assert not is_event_id(42)


@pytest.mark.parametrize("value", HOSTILE)
def test_storage_id_refuses_hostile_values(value: str) -> None:
    with pytest.raises(UnsafeStorageIdError):
        storage_id(value)


def test_storage_id_refuses_what_is_not_a_string() -> None:
    for value in (None, 7, b"alert-1", ["a"]):
        with pytest.raises(UnsafeStorageIdError):
            storage_id(value)


def test_blob_names_the_archive_writes_pass_and_traversals_do_not() -> None:
    import datetime as dt

    started = dt.datetime(2026, 11, 20, 12, tzinfo=dt.UTC)
    for source in ("entra_audit", "o365_management/Audit.AzureActiveDirectory", "o365_management/DLP.All"):
        name = raw_blob_name(source, started, "0123456789abcdef", 3)
        assert storage_blob_name(name) == name
    for name in (
        "",
        "..",
        "entra_audit/../quarantine/x.json",
        "entra_audit/./x",
        "/entra_audit/x",
        "entra_audit//x",
        "entra_audit/x?comp=list",
        "entra_audit/x#y",
        "entra_audit/x\\y",
        "entra_audit/x\ny",
        "entra_audit/%2e%2e/x",
        "a" * 1025,
    ):
        with pytest.raises(UnsafeStorageIdError):
            storage_blob_name(name)


def test_idempotency_keys_are_printable_ascii_up_to_100() -> None:
    assert is_idempotency_key("3f1c")
    assert is_idempotency_key("a b")
    assert is_idempotency_key("x" * 100)
    for key in ("", " a", "a ", "x" * 101, "a\nb", "a\x00", "clé"):
        assert not is_idempotency_key(key), repr(key)


class _NoStorage:
    """A container or blob client whose every call fails the test: the refusal must come first."""

    calls: list[str]

    def __init__(self) -> None:
        self.calls = []

    def __getattr__(self, name: str) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            raise AssertionError(f"storage was called: {name}{args}")

        return call


def test_the_storage_helpers_refuse_before_any_storage_call() -> None:
    container: Any = _NoStorage()
    for value in ("..", ".", "/", "a/../..", "a#b", "x\x00"):
        with pytest.raises(UnsafeStorageIdError):
            read_or_none(container, value, "tenant")
        with pytest.raises(UnsafeStorageIdError):
            replace_unchanged(container, {"id": value, "pk": "tenant"}, "etag")
        store = AlertStore(container)
        with pytest.raises(UnsafeStorageIdError):
            store.get("tenant", value)
        with pytest.raises(UnsafeStorageIdError):
            store.update("tenant", value, lambda alert: True)
        with pytest.raises(UnsafeStorageIdError):
            store.create({"id": value, "pk": "tenant"})
    events = EventStore(container, container, 2)
    try:
        good = {"id": "entra_audit:x", "pk": partition_key("t", "2026-11-20T00:00:00Z")}
        with pytest.raises(UnsafeStorageIdError):
            events.write_events([good, {**good, "id": ".."}])  # refused whole, before the good one
        with pytest.raises(UnsafeStorageIdError):
            events.update_facets("../..", [{"service": "Directory"}], [], "now", "shard")
    finally:
        events.close()

    archive = RawArchive.__new__(RawArchive)
    archive._raw = container
    with pytest.raises(UnsafeStorageIdError):
        list(archive.read_lines("entra_audit/../quarantine/x.json"))
    with pytest.raises(UnsafeStorageIdError):
        archive.write_page("../config/rules.yaml", [{"id": "1"}])
    assert container.calls == []
