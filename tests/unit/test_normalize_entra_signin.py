"""entra_signin: Graph signIn records -> canonical events."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from shared.ingestion.events import Event
from shared.ingestion.normalize import NormalizationError, event_id, normalize_record

SOURCE = "entra_signin"
TENANT = "contoso-tenant"
INGESTED = "2026-11-05T06:07:08.123Z"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "normalize"
FIXTURE = FIXTURES / "graph_signins.json"
RECORDS: list[dict[str, Any]] = json.loads(FIXTURE.read_bytes())["value"]
DOCUMENTED, FAILED = RECORDS


def normalize(record: Any, **kwargs: Any) -> dict[str, Any]:
    doc = normalize_record(SOURCE, record, tenant_id=TENANT, ingested_at=INGESTED, **kwargs)
    Event.model_validate(doc)
    return doc


@pytest.mark.parametrize("record", RECORDS, ids=[record["id"][:8] for record in RECORDS])
def test_every_fixture_validates_as_an_event(record: dict[str, Any]) -> None:
    event = Event.model_validate(normalize(record))
    assert event.id == f"entra_signin:{record['id']}"
    assert event.service == "SignIns"
    assert event.operation == "Sign-in"
    assert event.operation_type == "sign_in"
    assert event_id(SOURCE, record) == event.id


def test_documented_example() -> None:
    doc = normalize(DOCUMENTED)
    assert doc["id"] == "entra_signin:66ea54eb-6301-4ee5-be62-ff5a759b0100"
    assert doc["timestamp"] == "2020-03-13T19:15:41.619Z"
    assert doc["pk"] == f"{TENANT}:2020-03"
    assert doc["category"] == "InteractiveSignIn"
    assert doc["result"] == "success"
    assert doc["result_reason"] is None
    assert doc["correlation_id"] == "d79f5bee-5860-4832-928f-3133e22ae912"
    assert doc["actor"] == {
        "type": "user",
        "id": "26be570a-ae82-4189-b4e2-a37c6808512d",
        "upn": "testaccount1@contoso.com",
        "display": "Test Contoso",
        "ip": "131.107.159.37",
    }
    assert doc["targets"] == [
        {
            "type": "Application",
            "id": "de8bc8b5-d9f9-48b1-a8ad-b748da725064",
            "display": "Graph explorer",
            "modified_properties": [],
        },
        {
            "type": "Resource",
            "id": "00000003-0000-0000-c000-000000000000",
            "display": "Microsoft Graph",
            "modified_properties": [],
        },
    ]
    assert doc["summary"] == "Test Contoso signed in to Graph explorer from 131.107.159.37: success"


def test_failed_sign_in_carries_the_failure_reason_and_code() -> None:
    doc = normalize(FAILED)
    assert doc["result"] == "failure"
    assert (
        doc["result_reason"]
        == "Error validating credentials due to invalid username or password. (error 50126)"
    )
    assert doc["category"] == "NonInteractiveSignIn"
    assert doc["actor"]["display"] == "Zoë Łukasz 田中"
    assert doc["actor"]["ip"] == "2001:db8::42"
    assert doc["timestamp"] == "2026-11-01T10:00:00.123Z"
    assert (
        doc["summary"] == "Zoë Łukasz 田中 signed in to Office 365 Exchange Online from 2001:db8::42: failure"
    )


@pytest.mark.parametrize(
    ("status", "result", "reason"),
    [
        ({"errorCode": 0}, "success", None),
        ({"errorCode": "0"}, "success", None),
        ({"errorCode": 50053, "failureReason": None}, "failure", "Error 50053"),
        (
            {"errorCode": "53003", "failureReason": "Blocked by Conditional Access"},
            "failure",
            "Blocked by Conditional Access (error 53003)",
        ),
        ({"errorCode": None}, "unknown", None),
        ({}, "unknown", None),
        (None, "unknown", None),
        ("weird", "unknown", None),
    ],
)
def test_status_to_result(status: Any, result: str, reason: str | None) -> None:
    record = copy.deepcopy(DOCUMENTED)
    record["status"] = status
    doc = normalize(record)
    assert (doc["result"], doc["result_reason"]) == (result, reason)


def test_sign_in_without_is_interactive_has_a_generic_category() -> None:
    record = copy.deepcopy(DOCUMENTED)
    del record["isInteractive"]
    assert normalize(record)["category"] == "SignIn"


def test_service_principal_sign_in_is_an_app_actor() -> None:
    record = {
        "id": "sp-1",
        "createdDateTime": "2026-11-01T10:00:00Z",
        "servicePrincipalId": "5b0bb0b5-7c3f-4d7b-bb7e-2e7a1b0d3c11",
        "servicePrincipalName": "Contoso Backup",
        "appId": "1b730954-1685-4b74-9bfd-dac224a7b894",
        "status": {"errorCode": 0},
    }
    doc = normalize(record)
    assert doc["actor"]["type"] == "app"
    assert doc["actor"]["display"] == "Contoso Backup"
    assert doc["targets"][0]["display"] is None  # only the app id: enrichment may name it


def test_missing_fields_never_raise() -> None:
    doc = normalize({"id": "bare", "createdDateTime": "2026-11-01T08:00:00Z"})
    assert doc["actor"]["type"] == "unknown"
    assert doc["targets"] == []
    assert doc["timestamp"] == "2026-11-01T08:00:00.000Z"
    assert doc["summary"] == "Sign-in to ?: unknown"


def test_summary_without_an_ip_uses_the_shorter_template() -> None:
    record = copy.deepcopy(DOCUMENTED)
    record["ipAddress"] = None
    assert normalize(record)["summary"] == "Test Contoso signed in to Graph explorer: success"


def test_keep_raw() -> None:
    assert normalize(DOCUMENTED, keep_raw=True)["raw"] is DOCUMENTED
    assert normalize(DOCUMENTED)["raw"] is None


def test_hash_id_fallback_is_stable() -> None:
    record = copy.deepcopy(FAILED)
    del record["id"]
    first = event_id(SOURCE, record)
    assert re.fullmatch(r"entra_signin:h:[0-9a-f]{32}", first)
    assert normalize(record)["id"] == first
    assert event_id(SOURCE, copy.deepcopy(record)) == first
    record["userId"] = "someone-else"
    assert event_id(SOURCE, record) != first


def test_no_id_and_no_timestamp_is_an_error() -> None:
    record = copy.deepcopy(FAILED)
    del record["id"]
    del record["createdDateTime"]
    with pytest.raises(NormalizationError):
        normalize(record)
