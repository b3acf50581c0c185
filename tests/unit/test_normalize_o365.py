"""o365_management: Office 365 Management Activity API records (every content type) -> canonical events."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from shared.ingestion.events import Event
from shared.ingestion.normalize import NormalizationError, event_id, normalize_record, o365_identity

SOURCE = "o365_management"
TENANT = "contoso-tenant"
INGESTED = "2026-11-05T06:07:08.123Z"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "normalize"
FIXTURE = FIXTURES / "o365_management_content.json"
RECORDS: list[dict[str, Any]] = json.loads(FIXTURE.read_bytes())["records"]
BY_ID = {record["Id"]: record for record in RECORDS}
LOGON_FAILED, LOGON_OK, ADD_USER = RECORDS[:3]
ADD_TO_ROLE = BY_ID["5a1f2e3d-4c5b-4a69-8778-96a5b4c3d2e1"]
SET_MAILBOX = BY_ID["6b2e3f4a-5d6c-4b7a-8988-a7b6c5d4e3f2"]
NEW_INBOX_RULE = BY_ID["7c3f4a5b-6e7d-4c8b-9a99-b8c7d6e5f4a3"]
SHARING_SET = BY_ID["8d4a5b6c-7f8e-4d9c-8baa-c9d8e7f6a5b4"]
TEAMS_MEMBER_ADDED = BY_ID["9e5b6c7d-8a9f-4eac-9cbb-dae9f8a7b6c5"]
DLP_MATCH = BY_ID["af6c7d8e-9bac-4fbd-8dcc-ebfa09b8c7d6"]
MAIL_ITEMS_ACCESSED = BY_ID["b07d8e9f-cbd0-4ace-9edd-fc0b1ac9d8e8"]
STS_LOGIN_FAILED = BY_ID["c18e9fa0-dce1-4bdf-8fee-0d1c2bdae9f9"]
GRAPH_AUDITS = json.loads((FIXTURES / "graph_directory_audits.json").read_bytes())["value"]


def normalize(record: Any, **kwargs: Any) -> dict[str, Any]:
    doc = normalize_record(SOURCE, record, tenant_id=TENANT, ingested_at=INGESTED, **kwargs)
    Event.model_validate(doc)
    return doc


@pytest.mark.parametrize("record", RECORDS, ids=[record["Operation"] for record in RECORDS])
def test_every_fixture_validates_as_an_event(record: dict[str, Any]) -> None:
    event = Event.model_validate(normalize(record))
    assert event.id == f"o365:{record['Id']}"  # one namespace for every content type
    assert event.source == SOURCE
    assert event.operation == record["Operation"]
    assert event.summary
    assert event_id(SOURCE, record) == event.id


def test_documented_failed_logon() -> None:
    doc = normalize(LOGON_FAILED)
    assert doc["timestamp"] == "2015-06-29T20:03:19.000Z"  # naive CreationTime is UTC
    assert doc["pk"] == f"{TENANT}:2015-06"
    assert doc["service"] == "Directory"
    assert doc["category"] == "AzureActiveDirectoryAccountLogon"
    assert doc["operation_type"] == "sign_in"
    assert doc["result"] == "failure"
    # LoginError "-2147217390;PP_E_BAD_PASSWORD;The entered and stored passwords do not match."
    assert doc["result_reason"] == "The entered and stored passwords do not match."
    assert doc["result_code"] == -2147217390  # LoginStatus
    assert doc["actor"]["type"] == "user"
    assert doc["actor"]["upn"] == "admin@contoso.onmicrosoft.com"
    assert doc["actor"]["ip"] == "134.170.188.221"


def test_documented_successful_logon() -> None:
    doc = normalize(LOGON_OK)
    assert doc["result"] == "success"
    assert doc["result_reason"] is None


def test_documented_add_user_with_actor_and_target_identities() -> None:
    doc = normalize(ADD_USER)
    assert doc["operation"] == "Add User."  # as received
    assert doc["operation_type"] == "create"
    assert doc["actor"] == {
        "type": "user",
        "id": "1cef1fdb-ff52-48c4-8e4e-dfb5ea83d357",
        "upn": "admin@contoso.onmicrosoft.com",
        "display": None,
        "ip": None,
        "client_app": None,
    }
    assert doc["targets"] == [
        {"type": None, "id": None, "display": "user001@contoso.onmicrosoft.com", "modified_properties": []}
    ]
    assert doc["correlation_id"] == "c2ced078-ad57-4079-a743-5c37f5284790"  # InterSystemsId
    assert doc["result_code"] is None
    # Entra activities fall back to the entra_audit templates ("Add User." matches "Add user")
    assert "user001@contoso.onmicrosoft.com" in doc["summary"]


def test_add_member_to_role_through_management() -> None:
    doc = normalize(ADD_TO_ROLE)
    assert doc["operation_type"] == "assign"
    assert doc["actor"]["id"] == "4562bcc8-c436-4f95-b7c0-4f8ce89dca5e"
    assert doc["actor"]["upn"] == "zoe@contoso.onmicrosoft.com"
    assert doc["actor"]["ip"] is None  # ClientIP ""
    (target,) = doc["targets"]
    assert target["type"] == "User"
    assert target["id"] == "e3a7c5f1-6f0e-4f0c-9a55-0f9d5bd26a11"
    assert target["display"] == "adele@contoso.onmicrosoft.com"
    assert {"name": "Role.DisplayName", "old": "", "new": "Global Administrator"} in target[
        "modified_properties"
    ]
    assert "Global Administrator" in doc["summary"]


def test_same_entra_change_from_graph_and_management_is_two_events() -> None:
    graph = normalize_record("entra_audit", GRAPH_AUDITS[2], tenant_id=TENANT, ingested_at=INGESTED)
    management = normalize(ADD_TO_ROLE)
    assert graph["correlation_id"] == management["correlation_id"]  # the same change...
    assert graph["id"] != management["id"]  # ...stored twice, told apart by source
    assert (graph["source"], management["source"]) == ("entra_audit", "o365_management")


def test_exchange_admin_parameters_become_modified_properties() -> None:
    doc = normalize(SET_MAILBOX)
    assert doc["service"] == "Exchange"
    assert doc["category"] == "ExchangeAdmin"
    assert doc["operation_type"] == "update"
    assert doc["result"] == "success"  # ResultStatus "True"
    assert doc["actor"]["ip"] == "203.0.113.7"  # port dropped
    assert doc["targets"] == [
        {
            "type": "Mailbox",
            "id": "adele",
            "display": None,
            "modified_properties": [
                {"name": "Identity", "old": None, "new": "adele"},
                {"name": "ForwardingSmtpAddress", "old": None, "new": "smtp:adele.backup@example.net"},
                {"name": "DeliverToMailboxAndForward", "old": None, "new": "True"},
            ],
        }
    ]
    assert doc["actor"]["client_app"] is None  # AppId ""
    assert "adele" in doc["summary"]


def test_new_inbox_rule() -> None:
    doc = normalize(NEW_INBOX_RULE)
    assert doc["operation_type"] == "create"
    assert doc["actor"]["ip"] == "2001:db8::1"  # [IPv6]:port
    assert doc["correlation_id"] == "1f2e3d4c-5b6a-4978-8695-a4b3c2d1e0f9"  # AppAccessContext
    assert doc["targets"][0]["type"] == "InboxRule"
    assert doc["summary"] == (
        "adele@contoso.onmicrosoft.com created inbox rule '.forward' on "
        "contoso.onmicrosoft.com/Users/adele\\.forward"
    )


@pytest.mark.parametrize(
    ("client_ip", "expected"),
    [
        ("134.170.188.221:53412", "134.170.188.221"),
        ("[2001:db8::1]:443", "2001:db8::1"),
        ("[2001:db8::1]", "2001:db8::1"),
        ("2001:db8::1", "2001:db8::1"),
        ("::ffff:10.0.0.1", "10.0.0.1"),
        ("localhost", None),
        ("10.0.0.1", "10.0.0.1"),
        ("", None),
        (None, None),
    ],
)
def test_client_ip(client_ip: str | None, expected: str | None) -> None:
    record = copy.deepcopy(SET_MAILBOX)
    record["ClientIP"] = client_ip
    assert normalize(record)["actor"]["ip"] == expected


def test_sharepoint_sharing() -> None:
    doc = normalize(SHARING_SET)
    assert doc["service"] == "SharePoint"
    assert doc["operation_type"] == "assign"  # mappings.yaml override
    assert doc["result"] == "unknown"  # no ResultStatus
    file, guest = doc["targets"]
    assert file == {
        "type": "File",
        "id": "https://contoso.sharepoint.com/sites/Finance/Shared Documents/Budget 2026.xlsx",
        "display": "Budget 2026.xlsx",
        "modified_properties": [],
    }
    assert guest["type"] == "Guest"
    assert guest["display"] == "guest_łukasz@fabrikam.com"
    assert doc["correlation_id"] == "2a3b4c5d-6e7f-4a8b-9cad-beef00112233"
    assert (
        doc["summary"] == "zoe@contoso.onmicrosoft.com shared Budget 2026.xlsx with guest_łukasz@fabrikam.com"
    )


def test_onedrive_workload() -> None:
    record = copy.deepcopy(SHARING_SET)
    record["Workload"] = "OneDrive"
    assert normalize(record)["service"] == "OneDrive"


def test_teams_member_added() -> None:
    doc = normalize(TEAMS_MEMBER_ADDED)
    assert doc["service"] == "Teams"
    assert doc["operation_type"] == "assign"
    team, member = doc["targets"]
    assert (team["type"], team["display"]) == ("Team", "Project Ω")
    assert member == {
        "type": "User",
        "id": "taro@contoso.onmicrosoft.com",
        "display": "田中 太郎",
        "modified_properties": [{"name": "Role", "old": None, "new": "Owner"}],  # MemberRoleType 1
    }
    assert "田中 太郎" in doc["summary"]


def test_teams_setting_change_is_a_modified_property() -> None:
    record = {
        "Id": "teams-setting-1",
        "CreationTime": "2026-11-01T10:00:00",
        "RecordType": 25,
        "Workload": "MicrosoftTeams",
        "Operation": "TeamSettingChanged",
        "UserId": "zoe@contoso.onmicrosoft.com",
        "TeamName": "Project Ω",
        "TeamGuid": "19:0a1b2c3d4e5f@thread.skype",
        "Name": "Team access type",
        "OldValue": "Private",
        "NewValue": "Public",
    }
    doc = normalize(record)
    assert doc["operation_type"] == "update"
    assert doc["targets"][0]["modified_properties"] == [
        {"name": "Team access type", "old": "Private", "new": "Public"}
    ]


def test_dlp_record_is_dlp_whatever_its_workload() -> None:
    doc = normalize(DLP_MATCH)
    assert doc["service"] == "DLP"
    assert doc["category"] == "ComplianceDLPSharePoint"
    assert doc["operation_type"] == "action"
    policy, file = doc["targets"]
    assert (policy["type"], policy["display"]) == ("DlpPolicy", "PCI DSS")
    assert (file["type"], file["display"]) == ("File", "cards.xlsx")
    assert doc["dlp"] == {
        "policy": "PCI DSS",
        "rule": "Credit card numbers",
        "severity": "High",
        "actions": ["NotifyUser"],
        "sensitive_types": ["Credit Card Number"],
    }
    assert "PCI DSS" in doc["summary"]


def test_dlp_agent_record_names_the_user_as_actor() -> None:
    record = copy.deepcopy(DLP_MATCH)
    record["UserType"] = 4  # logged by the DLP agent
    record["UserKey"] = "DlpAgent"
    actor = normalize(record)["actor"]
    assert actor == {
        "type": "user",
        "id": None,
        "upn": "zoe@contoso.onmicrosoft.com",
        "display": None,
        "ip": None,
        "client_app": None,
    }


def test_dlp_exchange_message() -> None:
    record = {
        "Id": "dlp-ex-1",
        "CreationTime": "2026-11-01T10:00:00",
        "RecordType": 13,
        "Workload": "Exchange",
        "Operation": "DlpRuleMatch",
        "UserId": "zoe@contoso.onmicrosoft.com",
        "PolicyDetails": [{"PolicyId": "p1", "PolicyName": "GDPR"}],
        "ExchangeMetaData": {
            "MessageID": "<m1@contoso.com>",
            "Subject": "Zoë's passport scan",
            "From": "zoe@contoso.com",
        },
    }
    doc = normalize(record)
    assert doc["service"] == "DLP"
    assert doc["targets"][1] == {
        "type": "Message",
        "id": "<m1@contoso.com>",
        "display": "Zoë's passport scan",
        "modified_properties": [],
    }


def test_mailbox_audit_targets_the_mailbox() -> None:
    doc = normalize(MAIL_ITEMS_ACCESSED)
    assert doc["operation_type"] == "read"
    assert doc["actor"]["ip"] == "40.97.1.2"  # ClientIPAddress
    assert doc["actor"]["upn"] == "zoe@contoso.onmicrosoft.com"
    assert doc["targets"][0] == {
        "type": "Mailbox",
        "id": "f1e2d3c4-b5a6-4978-8a9b-0c1d2e3f4a5b",
        "display": "adele@contoso.onmicrosoft.com",
        "modified_properties": [],
    }
    assert "adele@contoso.onmicrosoft.com" in doc["summary"]


def test_sts_logon_error_is_a_failure_whatever_the_result_status() -> None:
    doc = normalize(STS_LOGIN_FAILED)
    assert doc["result"] == "failure"
    assert doc["result_reason"] == "InvalidPasswordExpiredPassword"
    assert doc["operation_type"] == "sign_in"
    assert doc["result_code"] == 50055  # ErrorNumber, a digit string
    assert doc["actor"]["ip"] == "2001:db8::5"
    assert doc["actor"]["id"] == "4562bcc8-c436-4f95-b7c0-4f8ce89dca5e"  # UserKey is an object id here
    assert doc["actor"]["client_app"] == {
        "id": "14d82eec-204b-4c2f-b7e8-296a70dab67e",
        "name": "Microsoft Graph Command Line Tools",
    }
    assert doc["targets"] == [
        {
            "type": "Application",
            "id": "00000003-0000-0000-c000-000000000000",
            "display": "Microsoft Graph",
            "modified_properties": [],
        }
    ]
    assert "InvalidPasswordExpiredPassword" in doc["summary"]


@pytest.mark.parametrize(
    ("status", "result", "reason"),
    [
        ("Succeeded", "success", None),
        ("Success", "success", None),
        ("success", "success", None),
        ("True", "success", None),
        ("PartiallySucceeded", "success", "PartiallySucceeded"),
        ("Failed", "failure", None),
        ("failed", "failure", None),
        ("False", "failure", None),
        ("Something new", "unknown", None),
        (None, "unknown", None),
        (1, "unknown", None),
    ],
)
def test_result_status(status: Any, result: str, reason: str | None) -> None:
    record = copy.deepcopy(SET_MAILBOX)
    record["ResultStatus"] = status
    doc = normalize(record)
    assert (doc["result"], doc["result_reason"]) == (result, reason)


@pytest.mark.parametrize(
    ("record_type", "workload", "service", "category"),
    [
        (9999, "BrandNewWorkload", "Other", "RecordType 9999"),
        (None, None, "Other", None),
        (9999, "Exchange", "Exchange", "RecordType 9999"),
        (1, None, "Exchange", "ExchangeAdmin"),
        (1, "BrandNewWorkload", "Exchange", "ExchangeAdmin"),
        ("8", "AzureActiveDirectory", "Directory", "AzureActiveDirectory"),
        (18, "SecurityComplianceCenter", "Security", "SecurityComplianceCenterEOPCmdlet"),
        (20, "PowerBI", "PowerPlatform", "PowerBIAudit"),
        (22, "Yammer", "VivaEngage", "VivaEngage"),
        ("22", None, "VivaEngage", "VivaEngage"),
        (261, "Copilot", "Copilot", "CopilotInteraction"),
        (66, "MicrosoftForms", "Forms", "MicrosoftForms"),
        (190, "Planner", "Planner", "PlannerTask"),
        (32, "MicrosoftStream", "Stream", "MicrosoftStream"),
        (256, "PowerPlatform", "PowerPlatform", "PowerPlatformAdministratorActivity"),
        (235, None, "Security", "MicrosoftDefenderForIdentityAudit"),
        (24, "SecurityComplianceCenter", "Purview", "Discovery"),
        (40, "SecurityComplianceCenter", "Security", "SecurityComplianceAlerts"),
        (216, "VivaGoals", "Viva", "VivaGoals"),
        (463, "VivaGlint", "Viva", "VivaGlintAgenticCampaign"),
        (372, "AzureActiveDirectory", "Directory", "CrossTenantAccessPolicy"),
    ],
)
def test_service_and_category(record_type: Any, workload: Any, service: str, category: str | None) -> None:
    record = copy.deepcopy(SET_MAILBOX)
    record["RecordType"] = record_type
    record["Workload"] = workload
    doc = normalize(record)
    assert doc["service"] == service
    assert doc["category"] == category


@pytest.mark.parametrize(
    ("user_id", "user_type", "actor_type"),
    [
        ("NT AUTHORITY\\SYSTEM (Microsoft.Exchange.ServiceHost)", 4, "system"),
        ("NT AUTHORITY\\SYSTEM (w3wp)", None, "system"),
        ("SHAREPOINT\\system", 0, "system"),
        ("S-1-5-18", 4, "system"),
        ("app@sharepoint", 0, "application"),
        ("ServicePrincipal_5b0bb0b5-7c3f-4d7b-bb7e-2e7a1b0d3c11", 4, "service_principal"),
        ("zoe@contoso.onmicrosoft.com", 2, "user"),
        ("zoe@contoso.onmicrosoft.com", "2", "user"),
        ("zoe@contoso.onmicrosoft.com", "Admin", "user"),
        ("zoe@contoso.onmicrosoft.com", 6, "service_principal"),
        ("zoe@contoso.onmicrosoft.com", "6", "service_principal"),
        ("zoe@contoso.onmicrosoft.com", "ServicePrincipal", "service_principal"),
        ("zoe@contoso.onmicrosoft.com", 3, "system"),
        ("Not Available", None, "unknown"),  # a placeholder, and UserKey is a PUID: nobody is named
        (None, None, "unknown"),  # UserKey only, and it is a PUID: never an id
    ],
)
def test_actor_types(user_id: str | None, user_type: int | None, actor_type: str) -> None:
    record = copy.deepcopy(SET_MAILBOX)
    record["UserId"] = user_id
    record["UserType"] = user_type
    actor = normalize(record)["actor"]
    assert actor["type"] == actor_type
    if user_id == "S-1-5-18":
        assert (actor["id"], actor["display"]) == (None, "System")  # never the SID
    elif actor_type == "system" and user_id:
        assert actor["display"] == user_id
    assert actor["id"] != "10032001A2B3C4D5"  # the PUID UserKey
    if user_id and user_id.startswith("ServicePrincipal_"):
        assert actor["id"] == "5b0bb0b5-7c3f-4d7b-bb7e-2e7a1b0d3c11"


def test_service_principal_actor_from_the_actor_list() -> None:
    record = copy.deepcopy(ADD_TO_ROLE)
    record["UserId"] = "ServicePrincipal_5b0bb0b5-7c3f-4d7b-bb7e-2e7a1b0d3c11"
    record["UserType"] = 4
    record["Actor"] = [
        {"ID": "MS-PIM", "Type": 1},
        {"ID": "ServicePrincipal_5b0bb0b5-7c3f-4d7b-bb7e-2e7a1b0d3c11", "Type": 2},
        {"ID": "5b0bb0b5-7c3f-4d7b-bb7e-2e7a1b0d3c11", "Type": 2},
        {"ID": "ServicePrincipal", "Type": 2},
    ]
    actor = normalize(record)["actor"]
    assert actor == {
        "type": "service_principal",
        "id": "5b0bb0b5-7c3f-4d7b-bb7e-2e7a1b0d3c11",
        "upn": None,
        "display": "MS-PIM",
        "ip": None,
        "client_app": None,
    }


def test_user_actor_keeps_its_object_id_when_the_actor_list_also_names_the_client_app() -> None:
    record = copy.deepcopy(ADD_TO_ROLE)
    record["Actor"] = [  # the order Microsoft sends: UPN, PUID, the client appId, then the user's object
        {"ID": "zoe@contoso.onmicrosoft.com", "Type": 5},
        {"ID": "10032001A2B3C4D5", "Type": 3},
        {"ID": "1950a258-227b-4e31-a9cf-717495945fc2", "Type": 2},
        {"ID": "User_4562bcc8-c436-4f95-b7c0-4f8ce89dca5e", "Type": 2},
        {"ID": "4562bcc8-c436-4f95-b7c0-4f8ce89dca5e", "Type": 2},
        {"ID": "User", "Type": 2},
    ]
    actor = normalize(record)["actor"]
    assert (actor["type"], actor["id"], actor["upn"]) == (
        "user",
        "4562bcc8-c436-4f95-b7c0-4f8ce89dca5e",
        "zoe@contoso.onmicrosoft.com",
    )
    assert actor["client_app"] == {
        "id": "1950a258-227b-4e31-a9cf-717495945fc2",
        "name": "Microsoft Azure PowerShell",
    }


def test_service_principal_in_the_actor_list_beside_the_user_is_the_client_app() -> None:
    record = copy.deepcopy(ADD_TO_ROLE)
    record["Actor"] = [
        {"ID": "ServicePrincipal_5b0bb0b5-7c3f-4d7b-bb7e-2e7a1b0d3c11", "Type": "2"},
        {"ID": "Contoso Provisioning", "Type": "Name"},
        {"ID": "User_4562bcc8-c436-4f95-b7c0-4f8ce89dca5e", "Type": "Other"},
        {"ID": "zoe@contoso.onmicrosoft.com", "Type": "5"},
    ]
    actor = normalize(record)["actor"]
    assert (actor["type"], actor["id"]) == ("user", "4562bcc8-c436-4f95-b7c0-4f8ce89dca5e")
    assert actor["client_app"] == {"id": None, "name": "Contoso Provisioning"}


@pytest.mark.parametrize(
    ("value", "expected"),
    [(5, 5), ("5", 5), (" 6 ", 6), ("Application", 5), ("serviceprincipal", 6), ("Regular", 0), ("x", None)],
)
def test_user_type_enum(value: Any, expected: int | None) -> None:
    assert o365_identity.user_type(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [(0, 0), (5, 5), ("5", 5), ("UPN", 5), ("puid", 3), ("Claim", 0), (6, None), ("6", None), (None, None)],
)
def test_identity_type_enum(value: Any, expected: int | None) -> None:
    assert o365_identity.identity_type(value) == expected


@pytest.mark.parametrize(
    ("claim", "expected"),
    [
        ("i:0#.f|membership|zoe@contoso.onmicrosoft.com", ("user", None, "zoe@contoso.onmicrosoft.com")),
        (
            "i:0i.t|00000003-0000-0ff1-ce00-000000000000|app@sharepoint",
            ("application", "00000003-0000-0ff1-ce00-000000000000", None),
        ),
        (
            "i:0i.t|ms.sp.ext|6c1f9a3e-2b4d-4e8f-9a7b-1c2d3e4f5a6b@41463f53-8812-40f4-890f-865bf6e35190",
            ("application", "6c1f9a3e-2b4d-4e8f-9a7b-1c2d3e4f5a6b", None),
        ),
        ("i:0h.f|membership|10032001a2b3c4d5@live.com", ("user", None, None)),  # a PUID
        (
            "c:0o.c|federateddirectoryclaimprovider|af0e1d2c-3b4a-4596-8877-665544332211",
            ("group", "af0e1d2c-3b4a-4596-8877-665544332211", None),
        ),
        ("zoe@contoso.onmicrosoft.com", None),
    ],
)
def test_claims_are_decoded(claim: str, expected: tuple[str, str | None, str | None] | None) -> None:
    assert o365_identity.decode_claim(claim) == expected


@pytest.mark.parametrize(
    "value", ["Not Available", "NOT AVAILABLE", "", "   ", "\t", "N/A", "<null>", None, 5]
)
def test_placeholders_are_absent(value: Any) -> None:
    assert o365_identity.present(value) is None


def test_app_only_mailbox_access_names_the_application_and_targets_the_mailbox() -> None:
    record = copy.deepcopy(MAIL_ITEMS_ACCESSED)
    record["UserType"] = "5"
    record["UserId"] = "adele@contoso.onmicrosoft.com"  # the mailbox owner, not the actor
    record["AppId"] = "7d2a1f4e-0b3c-4d5e-8f6a-9b0c1d2e3f4a"
    record["ClientAppId"] = "7d2a1f4e-0b3c-4d5e-8f6a-9b0c1d2e3f4a"
    doc = normalize(record)
    assert doc["actor"] == {
        "type": "application",
        "id": "7d2a1f4e-0b3c-4d5e-8f6a-9b0c1d2e3f4a",
        "upn": None,
        "display": None,  # no name in the record: enrichment by appId fills it
        "ip": "40.97.1.2",
        "client_app": {"id": "7d2a1f4e-0b3c-4d5e-8f6a-9b0c1d2e3f4a", "name": None},
    }
    assert doc["targets"][0]["display"] == "adele@contoso.onmicrosoft.com"


def test_sharepoint_app_actor_is_decoded_from_its_claim() -> None:
    record = copy.deepcopy(SHARING_SET)
    record["UserId"] = "app@sharepoint"
    record["UserKey"] = "i:0i.t|00000003-0000-0ff1-ce00-000000000000|app@sharepoint"
    actor = normalize(record)["actor"]
    assert actor["type"] == "application"
    assert actor["id"] == "00000003-0000-0ff1-ce00-000000000000"
    assert actor["display"] == "Office 365 SharePoint Online"
    assert "|" not in str(actor)


def test_exchange_item_update_lists_property_names() -> None:
    record = copy.deepcopy(MAIL_ITEMS_ACCESSED)
    record.update(
        {
            "RecordType": 2,
            "Operation": "Update",
            "Item": {"Id": "RgAAAAB", "Subject": "Q3 invoice", "ParentFolder": {"Path": "\\Drafts"}},
            "ModifiedProperties": ["HtmlBody", "RtfBody", "Subject"],
        }
    )
    mailbox, item = normalize(record)["targets"]
    assert mailbox["modified_properties"] == []
    assert (item["type"], item["display"]) == ("MailItem", "Q3 invoice")
    assert [prop["name"] for prop in item["modified_properties"]] == ["HtmlBody", "RtfBody", "Subject"]
    assert all(prop["old"] is None and prop["new"] is None for prop in item["modified_properties"])


def test_security_compliance_alert_is_named_and_graded() -> None:
    record = {
        "Id": "3c0f8a1e-7b2d-4e6f-9a01-b2c3d4e5f607",
        "CreationTime": "2026-11-01T10:00:00",
        "RecordType": "40",
        "Workload": "SecurityComplianceCenter",
        "Operation": "AlertTriggered",
        "UserId": "SecurityComplianceAlerts",
        "UserKey": "SecurityComplianceAlerts",
        "UserType": "4",
        "AlertId": "8e1b2c3d-4f5a-46b7-9c8d-0e1f2a3b4c5d",
        "AlertType": "System",
        "Name": "Elevation of Exchange admin privilege",
        "Severity": "Low",
        "Category": "AccessGovernance",
        "Status": "Active",
        "Source": "Office 365 Security & Compliance",
        "Data": '{"f3u":"zoe@contoso.onmicrosoft.com","op":"GrantAdminPermission","wl":"Exchange",'
        '"an":"Elevation of Exchange admin privilege","sev":"Low"}',
    }
    doc = normalize(record)
    assert doc["service"] == "Security"
    assert doc["security_alert"] == {
        "id": "8e1b2c3d-4f5a-46b7-9c8d-0e1f2a3b4c5d",
        "name": "Elevation of Exchange admin privilege",
        "severity": "Low",
        "category": "AccessGovernance",
        "status": "Active",
        "source": "Office 365 Security & Compliance",
        "entity": "zoe@contoso.onmicrosoft.com",
    }
    assert doc["targets"][0]["display"] == "Elevation of Exchange admin privilege"
    assert doc["actor"]["type"] == "system"


def test_optional_blocks_are_absent_on_other_records() -> None:
    doc = normalize(SET_MAILBOX)
    assert "dlp" not in doc
    assert "security_alert" not in doc
    assert "signin" not in doc
    assert doc["result_code"] is None


def test_aad_modified_properties_are_json_decoded() -> None:
    record = copy.deepcopy(ADD_TO_ROLE)
    record["ModifiedProperties"] = [
        {"Name": "AccountEnabled", "OldValue": "[\r\n  true\r\n]", "NewValue": "[\r\n  false\r\n]"},
        {
            "Name": "StrongAuthenticationMethod",
            "OldValue": "[]",
            "NewValue": '[{"MethodType": 6, "Default": true}]',
        },
        {"Name": "Broken", "OldValue": "[oops", "NewValue": '"ok"'},
    ]
    properties = normalize(record)["targets"][0]["modified_properties"]
    assert properties == [
        {"name": "AccountEnabled", "old": [True], "new": [False]},
        {"name": "StrongAuthenticationMethod", "old": [], "new": [{"MethodType": 6, "Default": True}]},
        {"name": "Broken", "old": "[oops", "new": "ok"},
    ]


@pytest.mark.parametrize(
    ("creation_time", "expected"),
    [
        ("2026-11-01T10:00:00", "2026-11-01T10:00:00.000Z"),
        ("2026-11-01T10:00:00.5", "2026-11-01T10:00:00.500Z"),
        ("2026-11-01T10:00:00Z", "2026-11-01T10:00:00.000Z"),
        ("2026-11-30T23:30:00-01:00", "2026-12-01T00:30:00.000Z"),
    ],
)
def test_creation_time(creation_time: str, expected: str) -> None:
    record = copy.deepcopy(SET_MAILBOX)
    record["CreationTime"] = creation_time
    doc = normalize(record)
    assert doc["timestamp"] == expected
    assert doc["pk"] == f"{TENANT}:{expected[:7]}"


def test_missing_fields_never_raise() -> None:
    doc = normalize({"Id": "only-id", "CreationTime": "2026-11-01T10:00:00"})
    assert doc["id"] == "o365:only-id"
    assert doc["service"] == "Other"
    assert doc["operation"] == "Unknown"
    assert doc["actor"]["type"] == "unknown"
    assert doc["targets"] == []


def test_wrongly_typed_fields_never_raise() -> None:
    record = {
        "Id": "drift",
        "CreationTime": "2026-11-01T10:00:00",
        "Operation": "Set-Mailbox",
        "RecordType": [1],
        "Workload": 5,
        "UserType": "Admin",
        "Actor": "x",
        "Target": [None, {"ID": 5, "Type": 2}, {"ID": "a", "Type": "UPN"}],
        "Parameters": [None, {"Name": None, "Value": {"x": 1}}],
        "ModifiedProperties": {"not": "a list"},
        "ExtendedProperties": "nope",
        "ClientIP": 12345,
    }
    doc = normalize(record)
    assert doc["service"] == "Other"
    assert doc["targets"] == [{"type": None, "id": None, "display": "a", "modified_properties": []}]


def test_native_id_text_is_kept_exactly() -> None:
    record = copy.deepcopy(SET_MAILBOX)
    record["Id"] = "ABCDEF01-Mixed-Case"
    assert normalize(record)["id"] == "o365:ABCDEF01-Mixed-Case"


def test_hash_fallback_and_errors() -> None:
    record = copy.deepcopy(SET_MAILBOX)
    del record["Id"]
    hashed = event_id(SOURCE, record)
    assert re.fullmatch(r"o365:h:[0-9a-f]{32}", hashed)
    assert normalize(record)["id"] == hashed == event_id(SOURCE, copy.deepcopy(record))
    record["ObjectId"] = "someone-else"
    assert event_id(SOURCE, record) != hashed
    del record["CreationTime"]
    with pytest.raises(NormalizationError):
        event_id(SOURCE, record)


def test_keep_raw() -> None:
    assert normalize(SHARING_SET, keep_raw=True)["raw"] is SHARING_SET
    assert normalize(SHARING_SET)["raw"] is None
