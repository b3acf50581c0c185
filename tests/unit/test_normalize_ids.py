"""Event ids from native ids: a native id that would make an unsafe storage id is a NormalizationError
(so the ingest worker quarantines that one record), for every source; safe ids are kept as received."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from shared.ingestion.events import Event
from shared.ingestion.normalize import NormalizationError, event_id, normalize_record
from shared.platform.ids import is_event_id, storage_id

TENANT = "contoso-tenant"
INGESTED = "2026-11-05T06:07:08.123Z"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "normalize"


def _first(file: str, key: str) -> dict[str, Any]:
    return json.loads((FIXTURES / file).read_bytes())[key][0]


# source -> (a real record of that source, the field holding its native id)
SAMPLES: dict[str, tuple[dict[str, Any], str]] = {
    "entra_audit": (_first("graph_directory_audits.json", "value"), "id"),
    "entra_signin": (_first("graph_signins.json", "value"), "id"),
    "intune_audit": (_first("graph_intune_audit_events.json", "value"), "id"),
    "o365_management": (_first("o365_management_content.json", "records"), "Id"),
}

UNSAFE_NATIVE_IDS = {
    "a slash": "a/b",
    "a parent segment": "../../dbs/aoc",
    "a trailing parent segment": "x/..",
    "only a slash": "/",
    "a backslash": "..\\x",
    "a query": "id?x=1",
    "a fragment": "id#x",
    "a percent escape": "%2E%2E",
    "a newline": "id\nforged",
    "a NUL": "id\x00",
    "a DEL": "id\x7f",
    "a C1 control": "id\x85",
    "a trailing blank": "id ",
    "over 255 characters": "a" * 255,
}


def _normalize(source: str, record: Any) -> dict[str, Any]:
    return normalize_record(source, record, tenant_id=TENANT, ingested_at=INGESTED)


@pytest.mark.parametrize("source", list(SAMPLES))
@pytest.mark.parametrize("name", list(UNSAFE_NATIVE_IDS))
def test_a_native_id_unsafe_for_storage_is_a_normalization_error(source: str, name: str) -> None:
    sample, field = SAMPLES[source]
    record = {**copy.deepcopy(sample), field: UNSAFE_NATIVE_IDS[name]}
    with pytest.raises(NormalizationError, match="unsafe event id") as refused:
        _normalize(source, record)
    assert len(str(refused.value)) < 400  # a long hostile id is not echoed whole into the quarantine
    with pytest.raises(NormalizationError, match="unsafe event id"):
        event_id(source, record)


@pytest.mark.parametrize("source", list(SAMPLES))
def test_safe_native_ids_are_kept_as_received(source: str) -> None:
    sample, field = SAMPLES[source]
    document = _normalize(source, sample)
    Event.model_validate(document)
    assert document["id"].endswith(f":{sample[field]}")
    assert is_event_id(document["id"])
    # Not in the API's id grammar, but a single safe path segment: stored, not quarantined.
    for native in ("..", ".", "a.b", "Zoë-1", " leading blank", "a" * 200):
        doc = _normalize(source, {**sample, field: native})
        assert doc["id"].endswith(f":{native}")
        assert storage_id(doc["id"]) == doc["id"]
        assert event_id(source, {**sample, field: native}) == doc["id"]
