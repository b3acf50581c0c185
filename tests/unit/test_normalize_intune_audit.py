"""intune_audit: Graph Intune auditEvent records -> canonical events."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from shared.ingestion.events import Event
from shared.ingestion.normalize import NormalizationError, event_id, normalize_record

SOURCE = "intune_audit"
TENANT = "contoso-tenant"
INGESTED = "2026-11-05T06:07:08.123Z"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "normalize"
FIXTURE = FIXTURES / "graph_intune_audit_events.json"
RECORDS: list[dict[str, Any]] = json.loads(FIXTURE.read_bytes())["value"]
DOCUMENTED, WIPE, PATCH_BY_APP = RECORDS


def normalize(record: Any, **kwargs: Any) -> dict[str, Any]:
    doc = normalize_record(SOURCE, record, tenant_id=TENANT, ingested_at=INGESTED, **kwargs)
    Event.model_validate(doc)
    return doc


@pytest.mark.parametrize("record", RECORDS, ids=[record["id"][:8] for record in RECORDS])
def test_every_fixture_validates_as_an_event(record: dict[str, Any]) -> None:
    event = Event.model_validate(normalize(record))
    assert event.id == f"intune_audit:{record['id']}"
    assert event.service == "Intune"
    assert event_id(SOURCE, record) == event.id


def test_documented_example() -> None:
    doc = normalize(DOCUMENTED)
    assert doc["id"] == "intune_audit:59653ce8-3ce8-5965-e83c-6559e83c6559"
    # "2016-12-31T23:59:51.6363086-08:00": an offset, converted to UTC, which moves it to the next month
    assert doc["timestamp"] == "2017-01-01T07:59:51.636Z"
    assert doc["pk"] == f"{TENANT}:2017-01"
    assert doc["operation"] == "Activity value"
    assert doc["category"] == "Category value"
    assert doc["operation_type"] == "other"
    assert doc["result"] == "unknown"
    assert doc["correlation_id"] == "52effe71-fe71-52ef-71fe-ef5271feef52"
    assert doc["actor"] == {
        "type": "user",
        "id": "User Id value",
        "upn": "User Principal Name value",
        "display": None,
        "ip": None,  # "Ip Address value" is no address
        "client_app": {"id": "Application Id value", "name": "Application Display Name value"},
    }
    assert doc["result_code"] is None
    assert doc["targets"] == [
        {
            "type": "Type value",
            "id": "Resource Id value",
            "display": "Display Name value",
            "modified_properties": [
                {"name": "Display Name value", "old": "Old Value value", "new": "New Value value"}
            ],
        }
    ]


def test_wipe_managed_device() -> None:
    doc = normalize(WIPE)
    assert doc["operation"] == "Wipe ManagedDevice"  # activity is null: activityType
    assert doc["operation_type"] == "action"
    assert doc["result"] == "success"
    assert doc["category"] == "Device"
    assert doc["timestamp"] == "2026-11-01T10:00:00.123Z"
    assert doc["actor"]["type"] == "user"  # a user acting through the Intune portal app
    assert doc["actor"] == {
        "type": "user",
        "id": "4562bcc8-c436-4f95-b7c0-4f8ce89dca5e",
        "upn": "zoe@contoso.onmicrosoft.com",
        "display": None,
        "ip": None,
        "client_app": {
            "id": "5926fc8e-304e-4f59-8bed-58ca97cc39a4",
            "name": "Microsoft Intune portal extension",
        },
    }
    assert doc["targets"][0]["display"] == "DESKTOP-田中-01"
    assert "zoe@contoso.onmicrosoft.com" in doc["summary"]
    assert "DESKTOP-田中-01" in doc["summary"]


def test_app_actor_and_modified_properties() -> None:
    doc = normalize(PATCH_BY_APP)
    assert doc["actor"] == {
        "type": "application",
        "id": "14d82eec-204b-4c2f-b7e8-296a70dab67e",  # auditActor carries the appId, no object id
        "upn": None,
        "display": "Microsoft Graph Command Line Tools",
        "ip": "198.51.100.20",
        "client_app": {
            "id": "14d82eec-204b-4c2f-b7e8-296a70dab67e",
            "name": "Microsoft Graph Command Line Tools",
        },
    }
    assert doc["operation_type"] == "update"
    assert doc["targets"][0]["modified_properties"] == [
        {"name": "PasswordMinimumLength", "old": "8", "new": "14"},
        {"name": "DefenderBlockEndUserAccess", "old": "False", "new": "True"},
        {"name": "Assignments", "old": [], "new": ["All devices"]},
    ]
    assert "Microsoft Graph Command Line Tools" in doc["summary"]
    assert "Windows 11 baseline" in doc["summary"]


def test_application_named_only_by_its_service_principal_name() -> None:
    record = copy.deepcopy(PATCH_BY_APP)
    record["actor"]["applicationDisplayName"] = None
    record["actor"]["servicePrincipalName"] = "Contoso Intune Automation"
    actor = normalize(record)["actor"]
    assert (actor["type"], actor["display"]) == ("application", "Contoso Intune Automation")
    assert actor["client_app"] == {
        "id": "14d82eec-204b-4c2f-b7e8-296a70dab67e",
        "name": "Contoso Intune Automation",
    }


def test_user_without_an_app_has_no_client_app() -> None:
    record = copy.deepcopy(WIPE)
    record["actor"]["applicationId"] = record["actor"]["applicationDisplayName"] = None
    actor = normalize(record)["actor"]
    assert (actor["type"], actor["client_app"]) == ("user", None)


def test_json_encoded_resource_properties_are_decoded() -> None:
    record = copy.deepcopy(PATCH_BY_APP)
    record["resources"][0]["modifiedProperties"] = [
        {"displayName": "Assignments", "oldValue": '[{"target": "All users"}]', "newValue": "[]"},
        {"displayName": "Description", "oldValue": "", "newValue": '"Baseline \\u2013 2026"'},
        {"displayName": "Nested", "oldValue": None, "newValue": '"[\\"a\\",\\"b\\"]"'},
    ]
    props = normalize(record)["targets"][0]["modified_properties"]
    assert props == [
        {"name": "Assignments", "old": [{"target": "All users"}], "new": []},
        {"name": "Description", "old": "", "new": "Baseline \u2013 2026"},
        {"name": "Nested", "old": None, "new": ["a", "b"]},
    ]


@pytest.mark.parametrize(
    ("native", "expected"),
    [
        ("Create", "create"),
        ("Patch", "update"),
        ("Delete", "delete"),
        ("Action", "action"),
        ("Get", "read"),
        ("Assign", "assign"),
        ("Unassign", "unassign"),
        ("SomethingNew", "other"),
        (None, "other"),
    ],
)
def test_activity_operation_type(native: str | None, expected: str) -> None:
    record = copy.deepcopy(PATCH_BY_APP)
    record["activity"] = record["activityType"] = record["displayName"] = "Frobnicate Widget"
    record["activityOperationType"] = native
    assert normalize(record)["operation_type"] == expected


def test_actor_with_no_identity_is_the_system_and_missing_actor_is_unknown() -> None:
    record = copy.deepcopy(WIPE)
    record["actor"] = {"type": None, "userId": None, "userPrincipalName": None, "applicationId": None}
    assert normalize(record)["actor"]["type"] == "system"
    record["actor"]["ipAddress"] = "198.51.100.20"
    assert normalize(record)["actor"]["ip"] == "198.51.100.20"
    record["actor"] = None
    assert normalize(record)["actor"] == {
        "type": "unknown",
        "id": None,
        "upn": None,
        "display": None,
        "ip": None,
        "client_app": None,
    }


def test_operation_falls_back_to_display_name() -> None:
    record = copy.deepcopy(WIPE)
    record["activity"] = record["activityType"] = None
    assert normalize(record)["operation"] == "Wipe ManagedDevice"


def test_missing_fields_never_raise() -> None:
    doc = normalize(
        {
            "id": "x",
            "activityDateTime": "2026-11-01T08:00:00Z",
            "resources": None,
            "actor": "?",
            "activityResult": 1,
        }
    )
    assert doc["operation"] == "Unknown"
    assert doc["targets"] == []
    assert doc["result"] == "unknown"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Success", "success"),
        ("Failure", "failure"),
        ("failed", "failure"),
        ("Timeout", "failure"),
        ("Pending", "unknown"),
    ],
)
def test_activity_result(value: str, expected: str) -> None:
    record = copy.deepcopy(WIPE)
    record["activityResult"] = value
    assert normalize(record)["result"] == expected


def test_keep_raw_and_ids() -> None:
    assert normalize(WIPE, keep_raw=True)["raw"] is WIPE
    assert normalize(WIPE)["raw"] is None
    record = copy.deepcopy(WIPE)
    del record["id"]
    hashed = event_id(SOURCE, record)
    assert re.fullmatch(r"intune_audit:h:[0-9a-f]{32}", hashed)
    assert hashed == event_id(SOURCE, copy.deepcopy(record)) == normalize(record)["id"]


def test_no_id_and_no_operation_is_an_error() -> None:
    with pytest.raises(NormalizationError):
        normalize({"activityDateTime": "2026-11-01T10:00:00Z"})
