"""entra_signin: Graph signIn records -> canonical events."""

from __future__ import annotations

import copy
import datetime as dt
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from devtools.simulator import SimulatorConfig
from devtools.simulator.generator import Tenant
from devtools.simulator.render import render
from shared.ingestion.events import Event
from shared.ingestion.normalize import NormalizationError, event_id, normalize_record

SOURCE = "entra_signin"
TENANT = "contoso-tenant"
INGESTED = "2026-11-05T06:07:08.123Z"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "normalize"
FIXTURE = FIXTURES / "graph_signins.json"
RECORDS: list[dict[str, Any]] = json.loads(FIXTURE.read_bytes())["value"]
DOCUMENTED, FAILED, SERVICE_PRINCIPAL, MANAGED_IDENTITY, MFA_DENIED = RECORDS


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
    assert event.signin is not None
    assert not any(gap in event.summary for gap in ("?", "None", "{"))
    assert event_id(SOURCE, record) == event.id


def test_documented_example() -> None:
    doc = normalize(DOCUMENTED)
    assert doc["id"] == "entra_signin:66ea54eb-6301-4ee5-be62-ff5a759b0100"
    assert doc["timestamp"] == "2020-03-13T19:15:41.619Z"
    assert doc["pk"] == f"{TENANT}:2020-03"
    assert doc["category"] == "InteractiveSignIn"
    assert doc["result"] == "success"
    assert doc["result_reason"] is None
    assert doc["result_code"] == 0
    assert doc["correlation_id"] == "d79f5bee-5860-4832-928f-3133e22ae912"
    assert doc["actor"] == {
        "type": "user",
        "id": "26be570a-ae82-4189-b4e2-a37c6808512d",
        "upn": "testaccount1@contoso.com",
        "display": "Test Contoso",
        "ip": "131.107.159.37",
        "client_app": {"id": "de8bc8b5-d9f9-48b1-a8ad-b748da725064", "name": "Graph explorer"},
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
    assert doc["signin"] == {
        "interactive": True,
        "client_app": "Browser",
        "legacy_auth": False,
        "ca_status": "notApplied",
        "ca_policies": [],  # both documented policies are notEnabled
        "location": {
            "city": "Redmond",
            "state": "Washington",
            "country": "US",
            "latitude": 47.68050003051758,
            "longitude": -122.12094116210938,
        },
        "device": {
            "id": None,  # "" is no id
            "name": None,
            "os": "Windows 10",
            "browser": "Edge 80.0.361",
            "compliant": None,
            "managed": None,
            "trust_type": None,
        },
        "risk_level": "none",
        "risk_level_aggregated": "none",
        "risk_state": "none",
        "risk_events": [],
        "authentication_requirement": None,
        "additional_details": None,
        "user_agent": None,
    }
    for part in ("Test Contoso", "Graph explorer"):
        assert part in doc["summary"]


def test_legacy_imap_sign_in_with_a_bad_password() -> None:
    doc = normalize(FAILED)
    assert doc["result"] == "failure"
    assert doc["result_code"] == 50126
    assert doc["result_reason"] == "Error validating credentials due to invalid username or password."
    assert doc["category"] == "NonInteractiveSignIn"
    assert doc["actor"]["display"] == "Zoë Łukasz 田中"
    assert doc["actor"]["ip"] == "2001:db8::42"
    assert doc["timestamp"] == "2026-11-01T10:00:00.123Z"
    signin = doc["signin"]
    assert (signin["client_app"], signin["legacy_auth"], signin["interactive"]) == ("IMAP4", True, False)
    assert signin["ca_status"] == "failure"
    assert signin["risk_level"] is None  # riskLevelDuringSignIn not sent
    assert (signin["risk_level_aggregated"], signin["risk_state"]) == ("medium", "atRisk")
    assert signin["risk_events"] == []
    assert signin["additional_details"] == "The user didn't enter the right credentials."
    assert signin["location"] == {
        "city": "Kraków",
        "state": "Małopolskie",
        "country": "PL",
        "latitude": None,
        "longitude": None,
    }
    assert signin["device"] == {
        "id": None,
        "name": None,
        "os": "Linux",
        "browser": None,
        "compliant": None,
        "managed": None,
        "trust_type": None,
    }
    assert "Zoë Łukasz 田中" in doc["summary"]


def test_mfa_denied_sign_in_keeps_every_fact() -> None:
    doc = normalize(MFA_DENIED)
    assert (doc["result"], doc["result_code"]) == ("failure", 500121)
    assert doc["result_reason"] == "Authentication failed during strong authentication request."
    assert doc["signin"] == {
        "interactive": True,
        "client_app": "Browser",
        "legacy_auth": False,
        "ca_status": "failure",
        "ca_policies": [
            {
                "id": "2c9f0e1d-3b4a-4c5d-8e6f-7a8b9c0d1e2f",
                "name": "Require MFA for all users",
                "result": "failure",
            },
            {
                "id": "4e1b2a3f-5d6c-4e7f-a08b-9c0d1e2f3a4b",
                "name": "Require compliant device (pilot)",
                "result": "reportOnlyFailure",
            },
        ],  # the notApplied and notEnabled policies are left out
        "location": {
            "city": "Frankfurt am Main",
            "state": "Hessen",
            "country": "DE",
            "latitude": 50.1109,
            "longitude": 8.6821,
        },
        "device": {
            "id": None,
            "name": None,
            "os": "Windows10",
            "browser": "Chrome 131.0.0",
            "compliant": False,
            "managed": False,
            "trust_type": None,
        },
        "risk_level": "medium",
        "risk_level_aggregated": "medium",
        "risk_state": "atRisk",
        "risk_events": ["unfamiliarFeatures", "anonymizedIPAddress"],  # v2 wins over riskEventTypes
        "authentication_requirement": "multiFactorAuthentication",
        "additional_details": "MFA denied; user declined the authentication",
        "user_agent": MFA_DENIED["userAgent"],
    }


def test_risk_events_fall_back_to_the_first_version() -> None:
    record = copy.deepcopy(MFA_DENIED)
    record["riskEventTypes_v2"] = None
    assert normalize(record)["signin"]["risk_events"] == ["unfamiliarFeatures"]
    record["riskEventTypes"] = ["unlikelyTravel", 7, "", None]
    assert normalize(record)["signin"]["risk_events"] == ["unlikelyTravel"]


@pytest.mark.parametrize(
    ("client_app", "legacy"),
    [
        ("Browser", False),
        ("Mobile Apps and Desktop clients", False),
        ("Exchange ActiveSync", True),
        ("IMAP4", True),
        ("POP3", True),
        ("SMTP", True),
        ("Authenticated SMTP", True),
        ("Autodiscover", True),
        ("Exchange Web Services", True),
        ("MAPI Over HTTP", True),
        ("Offline Address Book", True),
        ("Outlook Anywhere (RPC over HTTP)", True),
        ("Other clients", True),
        ("Reporting Web Services", True),
        ("Exchange Online PowerShell", True),
        ("exchange activesync", True),  # case as the v1.0 reference and filters spell it
        ("Something new", None),
        ("", None),
        (None, None),
        (42, None),
    ],
)
def test_legacy_authentication_clients(client_app: Any, legacy: bool | None) -> None:
    record = copy.deepcopy(DOCUMENTED)
    record["clientAppUsed"] = client_app
    signin = normalize(record)["signin"]
    assert signin["legacy_auth"] is legacy
    assert signin["client_app"] == (client_app if type(client_app) is str and client_app else None)


def test_empty_location_and_device_are_none() -> None:
    record = copy.deepcopy(DOCUMENTED)
    record["location"] = {"city": "", "state": None, "countryOrRegion": "", "geoCoordinates": {}}
    record["deviceDetail"] = {"deviceId": "", "displayName": "", "operatingSystem": "", "browser": None}
    signin = normalize(record)["signin"]
    assert signin["location"] is None
    assert signin["device"] is None
    record["location"] = None
    record["deviceDetail"] = "unexpected"
    signin = normalize(record)["signin"]
    assert (signin["location"], signin["device"]) == (None, None)


@pytest.mark.parametrize(
    ("coordinates", "expected"),
    [
        ({"latitude": 47.5, "longitude": -122}, (47.5, -122.0)),
        ({"latitude": "47.5", "longitude": True}, (None, None)),
        ({"latitude": float("nan"), "longitude": float("inf")}, (None, None)),
        ({"latitude": 10**400, "longitude": -(10**400)}, (None, None)),
        ("not an object", (None, None)),
    ],
)
def test_coordinates_are_finite_numbers_or_none(coordinates: Any, expected: tuple[Any, Any]) -> None:
    record = copy.deepcopy(DOCUMENTED)
    record["location"]["geoCoordinates"] = coordinates
    location = normalize(record)["signin"]["location"]
    assert (location["latitude"], location["longitude"]) == expected


def test_device_flags_are_booleans_only() -> None:
    record = copy.deepcopy(DOCUMENTED)
    record["deviceDetail"] = {"isCompliant": "true", "isManaged": 1, "trustType": "Azure AD joined"}
    device = normalize(record)["signin"]["device"]
    assert (device["compliant"], device["managed"], device["trust_type"]) == (None, None, "Azure AD joined")


@pytest.mark.parametrize(
    ("status", "result", "code", "reason"),
    [
        ({"errorCode": 0}, "success", 0, None),
        ({"errorCode": "0"}, "success", 0, None),
        ({"errorCode": 0, "failureReason": "Other."}, "success", 0, None),
        ({"errorCode": 50053, "failureReason": None}, "failure", 50053, None),
        (
            {"errorCode": "53003", "failureReason": "Blocked by Conditional Access"},
            "failure",
            53003,
            "Blocked by Conditional Access",
        ),
        ({"errorCode": True}, "unknown", None, None),
        ({"errorCode": "5e3"}, "unknown", None, None),
        ({"errorCode": None}, "unknown", None, None),
        ({}, "unknown", None, None),
        (None, "unknown", None, None),
        ("weird", "unknown", None, None),
    ],
)
def test_status_to_result(status: Any, result: str, code: int | None, reason: str | None) -> None:
    record = copy.deepcopy(DOCUMENTED)
    record["status"] = status
    doc = normalize(record)
    assert (doc["result"], doc["result_code"], doc["result_reason"]) == (result, code, reason)
    assert doc["signin"]["additional_details"] is None


def test_sign_in_without_is_interactive_has_a_generic_category() -> None:
    record = copy.deepcopy(DOCUMENTED)
    del record["isInteractive"]
    assert normalize(record)["category"] == "SignIn"


def test_service_principal_sign_in() -> None:
    doc = normalize(SERVICE_PRINCIPAL)
    assert doc["category"] == "ServicePrincipalSignIn"
    assert doc["actor"] == {
        "type": "service_principal",
        "id": "a7b8c9d0-e1f2-4a3b-8c4d-5e6f7a8b9c0d",  # servicePrincipalId: the object id
        "upn": None,
        "display": "Contoso Nightly Export",
        "ip": "20.190.151.9",
        "client_app": {"id": "8c2a4f1e-6b3d-4e5a-9c7b-1d2e3f4a5b6c", "name": "Contoso Nightly Export"},
    }
    # the app signed in with is the actor itself: the target is the resource
    assert [(t["type"], t["display"]) for t in doc["targets"]] == [("Resource", "Microsoft Graph")]
    assert doc["signin"]["client_app"] is None
    assert doc["signin"]["legacy_auth"] is None
    assert doc["signin"]["device"] == {
        "id": None,
        "name": None,
        "os": None,
        "browser": None,
        "compliant": False,
        "managed": False,
        "trust_type": None,
    }


def test_managed_identity_sign_in() -> None:
    doc = normalize(MANAGED_IDENTITY)
    assert doc["category"] == "ManagedIdentitySignIn"
    assert doc["actor"]["type"] == "service_principal"
    assert doc["actor"]["id"] == "b8c9d0e1-f2a3-4b4c-9d5e-6f7a8b9c0d1e"
    assert doc["actor"]["display"] == "func-contoso-billing"
    assert doc["actor"]["ip"] is None
    assert doc["actor"]["client_app"] == {"id": "3d4e5f6a-7b8c-4d9e-8f0a-1b2c3d4e5f6a", "name": None}
    assert doc["signin"]["location"] is None
    assert doc["signin"]["device"] is None


def test_service_principal_without_event_types_or_a_user() -> None:
    record: dict[str, Any] = {
        "id": "sp-1",
        "createdDateTime": "2026-11-01T10:00:00Z",
        "servicePrincipalId": "5b0bb0b5-7c3f-4d7b-bb7e-2e7a1b0d3c11",
        "servicePrincipalName": "Contoso Backup",
        "appId": "1b730954-1685-4b74-9bfd-dac224a7b894",
        "status": {"errorCode": 0},
    }
    doc = normalize(record)
    assert doc["actor"]["type"] == "service_principal"
    assert doc["actor"]["display"] == "Contoso Backup"
    assert doc["category"] == "ServicePrincipalSignIn"
    record["servicePrincipalId"] = None
    record["servicePrincipalName"] = None
    actor = normalize(record)["actor"]
    assert (actor["type"], actor["id"]) == ("unknown", None)


def test_service_principal_falls_back_to_the_app() -> None:
    record = copy.deepcopy(SERVICE_PRINCIPAL)
    record["servicePrincipalId"] = record["servicePrincipalName"] = ""
    actor = normalize(record)["actor"]
    assert (actor["id"], actor["display"]) == (
        "8c2a4f1e-6b3d-4e5a-9c7b-1d2e3f4a5b6c",
        "Contoso Nightly Export",
    )


def test_user_sign_in_naming_a_service_principal_stays_the_user() -> None:
    record = copy.deepcopy(DOCUMENTED)
    record["servicePrincipalId"] = "5b0bb0b5-7c3f-4d7b-bb7e-2e7a1b0d3c11"
    record["signInEventTypes"] = ["interactiveUser"]
    assert normalize(record)["actor"]["type"] == "user"


def test_missing_fields_never_raise() -> None:
    doc = normalize({"id": "bare", "createdDateTime": "2026-11-01T08:00:00Z"})
    assert doc["actor"] == {
        "type": "unknown",
        "id": None,
        "upn": None,
        "display": None,
        "ip": None,
        "client_app": None,
    }
    assert doc["targets"] == []
    assert doc["timestamp"] == "2026-11-01T08:00:00.000Z"
    assert (doc["result"], doc["result_code"]) == ("unknown", None)
    assert doc["signin"] == {
        "interactive": None,
        "client_app": None,
        "legacy_auth": None,
        "ca_status": None,
        "ca_policies": [],
        "location": None,
        "device": None,
        "risk_level": None,
        "risk_level_aggregated": None,
        "risk_state": None,
        "risk_events": [],
        "authentication_requirement": None,
        "additional_details": None,
        "user_agent": None,
    }


def test_wrongly_typed_sign_in_fields_are_dropped() -> None:
    record = copy.deepcopy(MFA_DENIED)
    record.update(
        {
            "isInteractive": "yes",
            "conditionalAccessStatus": 3,
            "riskLevelDuringSignIn": ["high"],
            "userAgent": {"ua": "x"},
            "appliedConditionalAccessPolicies": [None, "x", {"id": 5, "result": None}],
            "riskEventTypes_v2": "unfamiliarFeatures",
        }
    )
    record["status"]["additionalDetails"] = 12
    signin = normalize(record)["signin"]
    assert signin["interactive"] is None
    assert signin["ca_status"] is None
    assert signin["risk_level"] is None
    assert signin["user_agent"] is None
    assert signin["ca_policies"] == [{"id": None, "name": None, "result": None}]
    assert signin["risk_events"] == ["unfamiliarFeatures"]  # riskEventTypes, as v2 is no list
    assert signin["additional_details"] is None


def test_summary_without_an_ip_still_names_the_actor_and_app() -> None:
    record = copy.deepcopy(DOCUMENTED)
    record["ipAddress"] = None
    summary = normalize(record)["summary"]
    assert "Test Contoso" in summary
    assert "Graph explorer" in summary
    assert "131.107.159.37" not in summary


@pytest.mark.parametrize("ip_address", ["localhost", "<null>", "", "131.107.159.37:443"])
def test_actor_ip_is_only_a_parsed_address(ip_address: str) -> None:
    record = copy.deepcopy(DOCUMENTED)
    record["ipAddress"] = ip_address
    expected = "131.107.159.37" if ip_address.startswith("131.") else None
    assert normalize(record)["actor"]["ip"] == expected


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


def test_simulated_sign_ins_carry_the_facts_detections_need() -> None:
    """The benchmark corpus and the local stack come from the simulator: its sign-ins must exercise every
    part of the signin block (legacy clients, CA blocks, MFA denials, risk)."""
    config = SimulatorConfig(
        epoch=dt.datetime(2026, 3, 1, tzinfo=dt.UTC), started_at_unix=0.0, events_per_day=2000, seed=11
    )
    tenant = Tenant(config)
    bodies = [
        render(r, tenant.render_context) for r in tenant.records if r.source == SOURCE and not r.malformed
    ]
    docs = [normalize(body) for body in bodies]
    codes = Counter(doc["result_code"] for doc in docs)
    assert {0, 50126, 50074, 500121, 53003} <= set(codes)
    signins = [doc["signin"] for doc in docs]
    assert all(s["location"] is not None and s["location"]["country"] for s in signins)
    assert sum(1 for s in signins if s["ca_policies"]) > len(signins) / 4
    assert all(p["result"] not in ("notApplied", "notEnabled") for s in signins for p in s["ca_policies"])
    assert {s["legacy_auth"] for s in signins} == {True, False}
    blocked = [doc for doc in docs if doc["result_code"] == 53003]
    assert all(doc["signin"]["legacy_auth"] and doc["signin"]["ca_status"] == "failure" for doc in blocked)
    denied = [doc for doc in docs if doc["result_code"] == 500121]
    assert all(doc["signin"]["additional_details"] for doc in denied)
    assert any(s["risk_level"] not in ("none", None) and s["risk_events"] for s in signins)
    assert any(s["device"] is not None and s["device"]["managed"] for s in signins)
