"""The object id grammar (shared.platform.ids.is_object_id) of GET /api/objects/{id}/history: the ids
the normalizers store for actors and targets pass, unless they hold a path separator; hostile values and
look-alikes do not."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared.ingestion.normalize import NormalizationError, normalize_record
from shared.platform.ids import MAX_OBJECT_ID_LENGTH, OBJECT_ID_EXCLUDED, is_object_id

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "normalize"
SOURCES = {
    "graph_directory_audits.json": ("entra_audit", "value"),
    "graph_signins.json": ("entra_signin", "value"),
    "graph_intune_audit_events.json": ("intune_audit", "value"),
    "o365_management_content.json": ("o365_management", "records"),
}

VALID = [
    "0",
    "00000003-0000-0000-c000-000000000000",
    "adele@contoso.onmicrosoft.com",
    "Adele.Vance@contoso.com",
    "ann_fabrikam.com#EXT#@contoso.onmicrosoft.com",  # a guest's UPN
    "Default Role Assignment Policy",
    "Αλέξανδρος Παπαδόπουλος",
    "Disclaimer \u2013 Société",  # an en dash
    "x' OR 1=1 --",  # only ever a query parameter
    "a" * MAX_OBJECT_ID_LENGTH,
]
HOSTILE = [
    "",
    ".",
    "..",
    "#",
    "#EXT#",
    "-a",
    " a",
    "a ",
    "a/b",
    "a/../..",
    "a\\b",
    "a?b",
    "a%2Fb",
    "a\x00",
    "a\nb",
    "a\x7f",
    "a\x85b",  # a C1 control
    "a\u00a0b",  # a no-break space
    "a\u202eb",  # a right-to-left override
    "a\u200bb",  # a zero-width space
    "\ufffd",  # what an invalid UTF-8 escape decodes to
    "a\ud800",  # a lone surrogate
    "a\ue000",  # private use
    "a" * (MAX_OBJECT_ID_LENGTH + 1),
]


def _stored_ids() -> list[str]:
    ids = []
    for name, (source, key) in SOURCES.items():
        for record in json.loads((FIXTURES / name).read_bytes())[key]:
            try:
                document = normalize_record(source, record, tenant_id="t", ingested_at="2026-11-20T12:00:00Z")
            except NormalizationError:
                continue
            actor = document["actor"]
            ids += [actor.get("id"), actor.get("upn"), *(t.get("id") for t in document["targets"])]
    return [i for i in ids if i is not None]


def test_the_ids_events_store_are_object_ids_unless_they_hold_a_path_separator() -> None:
    ids = _stored_ids()
    assert len(ids) >= 50
    refused = [i for i in ids if not is_object_id(i)]
    assert [i for i in refused if "/" not in i and "\\" not in i] == []
    assert len(refused) < len(ids) / 10  # SharePoint URLs, an Exchange `Users/name` path


@pytest.mark.parametrize("value", VALID)
def test_object_ids_pass(value: str) -> None:
    assert is_object_id(value)


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_values_are_not_object_ids(value: str) -> None:
    assert not is_object_id(value)


def test_what_is_not_a_string_is_not_an_object_id() -> None:
    assert not is_object_id(None)
    assert not is_object_id(42)
    assert not is_object_id(b"abc")
    assert set("/\\?%") <= OBJECT_ID_EXCLUDED
