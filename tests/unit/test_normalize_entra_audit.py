"""entra_audit: Graph directoryAudit records -> canonical events."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from shared.ingestion.events import Event, RawRef
from shared.ingestion.normalize import NormalizationError, event_id, normalize_record

SOURCE = "entra_audit"
TENANT = "contoso-tenant"
INGESTED = "2026-11-05T06:07:08.123Z"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "normalize"
FIXTURE = FIXTURES / "graph_directory_audits.json"
RECORDS: list[dict[str, Any]] = json.loads(FIXTURE.read_bytes())["value"]
DOCUMENTED, DOCUMENTED_FILTERED, ADD_TO_ROLE, CONSENT_BY_APP, CA_POLICY, SSPR, UPDATE_APP_BY_SPN = RECORDS


def normalize(record: Any, **kwargs: Any) -> dict[str, Any]:
    doc = normalize_record(SOURCE, record, tenant_id=TENANT, ingested_at=INGESTED, **kwargs)
    Event.model_validate(doc)
    return doc


@pytest.mark.parametrize("record", RECORDS, ids=[record["id"][:24] for record in RECORDS])
def test_every_fixture_validates_as_an_event(record: dict[str, Any]) -> None:
    doc = normalize(record)
    event = Event.model_validate(doc)
    assert event.source == SOURCE
    assert event.service == "Directory"
    assert event.id == f"entra_audit:{record['id']}"
    assert event.pk == f"{TENANT}:{event.timestamp[:7]}"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", event.timestamp)
    assert event.tags == []
    assert event.summary
    assert not any(gap in event.summary for gap in ("?", "None", "{"))
    assert event.result_code is None  # directory audits carry no numeric code
    assert "result_code" in doc
    assert "client_app" in doc["actor"]
    assert event.signin is None
    assert "signin" not in doc
    assert event_id(SOURCE, record) == event.id


def test_documented_example() -> None:
    doc = normalize(DOCUMENTED)
    assert doc["id"] == "entra_audit:id"
    assert doc["tenant_id"] == TENANT
    assert doc["timestamp"] == "2018-01-09T21:20:02.721Z"  # 7 fractional digits, truncated to ms
    assert doc["pk"] == f"{TENANT}:2018-01"
    assert doc["ingested_at"] == INGESTED
    assert doc["category"] == "UserManagement"
    assert doc["operation"] == "Add member to group"
    assert doc["operation_type"] == "assign"
    assert doc["result"] == "success"
    assert doc["result_reason"] == "Successfully added member to group"
    assert doc["correlation_id"] == "da159bfb-54fa-4092-8a38-6e1fa7870e30"
    assert doc["actor"] == {
        "type": "user",
        "id": "728309ae-1a37-4937-9afe-e35d964db09b",
        "upn": "bob@wingtiptoysonline.com",
        "display": "Audry Oliver",
        "ip": "127.0.0.1",
        "client_app": None,  # Graph names no client app beside a user
    }
    group, user = doc["targets"]
    assert group == {
        "type": "Group",  # the documented example spells the key "Type"
        "id": "ef7e527d-6c92-4234-8c6d-cf6fdfb57f95",
        "display": "Example.com",
        "modified_properties": [{"name": "Action Client Name", "old": None, "new": "DirectorySync"}],
    }
    assert user["type"] == "User"
    assert user["display"] == "bob@contoso.com"  # no displayName: the UPN is the readable name
    assert "Audry Oliver" in doc["summary"]
    assert "Example.com" in doc["summary"]
    assert doc["raw"] is None
    assert doc["raw_ref"] is None


def test_documented_filtered_example_keeps_the_native_id_text_and_ids_only_actor() -> None:
    doc = normalize(DOCUMENTED_FILTERED)
    assert doc["id"] == "entra_audit:SSGM_b662f17a-4e4d-4e1c-9248-cdec180024b2_MCDC4_88453290"
    assert doc["operation_type"] == "update"  # from operationType
    assert doc["actor"]["type"] == "user"
    assert doc["actor"]["display"] is None  # only an object id: enrichment fills the name
    assert doc["actor"]["upn"] is None
    assert doc["actor"]["ip"] == "10.0.0.0"
    assert doc["targets"][0]["display"] is None


def test_add_member_to_role_summary_names_the_role() -> None:
    doc = normalize(ADD_TO_ROLE)
    for part in ("Zoë Łukasz 田中", "adele@contoso.onmicrosoft.com", "Global Administrator"):
        assert part in doc["summary"]
    assert doc["actor"]["display"] == "Zoë Łukasz 田中"
    assert doc["timestamp"] == "2026-11-01T10:00:00.123Z"
    assert doc["result_reason"] is None  # "" is no reason
    properties = {prop["name"]: prop["new"] for prop in doc["targets"][0]["modified_properties"]}
    assert properties["Role.DisplayName"] == "Global Administrator"
    assert properties["Role.WellKnownObjectName"] == "TenantAdmins"


def test_remove_member_from_role_names_the_role_from_the_old_value() -> None:
    record = copy.deepcopy(ADD_TO_ROLE)
    record["activityDisplayName"] = "Remove member from role"
    for prop in record["targetResources"][0]["modifiedProperties"]:
        prop["oldValue"], prop["newValue"] = prop["newValue"], None
    doc = normalize(record)
    assert doc["operation_type"] == "unassign"
    assert "Global Administrator" in doc["summary"]  # from the old value: the new one is null


def test_null_user_falls_back_to_the_app() -> None:
    doc = normalize(CONSENT_BY_APP)
    # servicePrincipalId rather than appId: the object id in this tenant, which enrichment can resolve
    assert doc["actor"] == {
        "type": "application",
        "id": "5b0bb0b5-7c3f-4d7b-bb7e-2e7a1b0d3c11",
        "upn": None,
        "display": "Azure AD PowerShell",
        "ip": None,
        "client_app": {"id": "1b730954-1685-4b74-9bfd-dac224a7b894", "name": "Azure AD PowerShell"},
    }
    assert doc["result"] == "failure"
    assert doc["result_reason"] == "Microsoft.Online.Security.UserConsentBlockedForRiskyAppsException"
    assert doc["targets"][0]["type"] == "ServicePrincipal"
    assert doc["targets"][0]["display"] == "Contoso Expense Tracker"
    assert "Azure AD PowerShell" in doc["summary"]
    assert "Contoso Expense Tracker" in doc["summary"]


def test_app_without_service_principal_id_uses_the_app_id() -> None:
    record = copy.deepcopy(CONSENT_BY_APP)
    record["initiatedBy"]["app"]["servicePrincipalId"] = None
    actor = normalize(record)["actor"]
    assert actor["id"] == "1b730954-1685-4b74-9bfd-dac224a7b894"
    assert actor["client_app"]["id"] == actor["id"]


def test_app_named_only_by_its_service_principal_name() -> None:
    doc = normalize(UPDATE_APP_BY_SPN)
    assert doc["actor"] == {
        "type": "application",
        "id": "9f1e2d3c-4b5a-4697-8877-665544332211",
        "upn": None,
        "display": "Contoso Deployment Pipeline",
        "ip": None,
        "client_app": {"id": "9f1e2d3c-4b5a-4697-8877-665544332211", "name": "Contoso Deployment Pipeline"},
    }
    assert [target["type"] for target in doc["targets"]] == ["Application"]


def test_app_with_only_a_service_principal_id_is_still_the_application() -> None:
    record = copy.deepcopy(CONSENT_BY_APP)
    record["initiatedBy"]["app"] = {"servicePrincipalId": "5b0bb0b5-7c3f-4d7b-bb7e-2e7a1b0d3c11"}
    actor = normalize(record)["actor"]
    assert (actor["type"], actor["id"], actor["display"], actor["client_app"]) == (
        "application",
        "5b0bb0b5-7c3f-4d7b-bb7e-2e7a1b0d3c11",
        None,
        None,
    )


def test_user_beside_an_app_is_the_actor_and_the_app_its_client() -> None:
    record = copy.deepcopy(ADD_TO_ROLE)
    record["initiatedBy"]["app"] = copy.deepcopy(CONSENT_BY_APP["initiatedBy"]["app"])
    actor = normalize(record)["actor"]
    assert actor["type"] == "user"
    assert actor["id"] == "4562bcc8-c436-4f95-b7c0-4f8ce89dca5e"
    assert actor["client_app"] == {
        "id": "1b730954-1685-4b74-9bfd-dac224a7b894",
        "name": "Azure AD PowerShell",
    }


def test_additional_details_app_id_is_not_taken_for_the_client_app() -> None:
    """`AppId` in additionalDetails names the application the change was about, not the caller."""
    record = copy.deepcopy(ADD_TO_ROLE)
    record["additionalDetails"] = [{"key": "AppId", "value": "e4d3c2b1-a098-4f76-8e54-3d2c1b0a9f8e"}]
    assert normalize(record)["actor"]["client_app"] is None


@pytest.mark.parametrize(
    ("ip_address", "expected"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("203.0.113.7:51234", "203.0.113.7"),
        ("[2001:db8::7]:443", "2001:db8::7"),
        ("localhost", None),
        ("", None),
        (None, None),
    ],
)
def test_actor_ip_is_only_a_parsed_address(ip_address: str | None, expected: str | None) -> None:
    record = copy.deepcopy(ADD_TO_ROLE)
    record["initiatedBy"]["user"]["ipAddress"] = ip_address
    assert normalize(record)["actor"]["ip"] == expected


def test_no_user_and_no_app_is_the_system() -> None:
    doc = normalize(SSPR)
    assert doc["actor"]["type"] == "system"
    assert doc["actor"]["id"] is None
    assert "Adele Vance" in doc["summary"]
    assert doc["operation_type"] == "update"


def test_missing_initiated_by_is_an_unknown_actor() -> None:
    record = copy.deepcopy(SSPR)
    del record["initiatedBy"]
    assert normalize(record)["actor"] == {
        "type": "unknown",
        "id": None,
        "upn": None,
        "display": None,
        "ip": None,
        "client_app": None,
    }


def test_empty_user_object_falls_back_to_the_app() -> None:
    record = copy.deepcopy(CONSENT_BY_APP)
    record["initiatedBy"]["user"] = {
        "id": None,
        "displayName": None,
        "userPrincipalName": None,
        "ipAddress": "",
    }
    assert normalize(record)["actor"]["type"] == "application"


def test_json_object_modified_property_is_decoded() -> None:
    doc = normalize(CA_POLICY)
    prop = doc["targets"][0]["modified_properties"][0]
    assert prop["old"]["state"] == "enabled"
    assert prop["new"]["state"] == "disabled"
    assert doc["actor"]["ip"] == "2001:db8::7"
    assert doc["targets"][0]["type"] == "Policy"
    assert doc["targets"][0]["display"] == "Require MFA for admins"
    assert "Require MFA for admins" in doc["summary"]


def test_application_change_keeps_arrays_of_objects_and_decodes_twice_encoded_values() -> None:
    properties = {
        prop["name"]: (prop["old"], prop["new"])
        for prop in normalize(UPDATE_APP_BY_SPN)["targets"][0]["modified_properties"]
    }
    old, new = properties["AppAddress"]
    assert [entry["Address"] for entry in old] == ["https://expenses.contoso.com/signin-oidc"]
    assert new[-1]["Address"] == "https://expenses-contoso.azurewebsites.net/callback"
    assert properties["Included Updated Properties"] == (None, "AppAddress")
    # a JSON string holding a JSON array: decoded to the array; "" stays "" (Graph's empty old value)
    assert properties["TargetId.ServicePrincipalNames"] == ("", ["https://expenses.contoso.com"])


@pytest.mark.parametrize(
    ("encoded", "decoded"),
    [
        ('["value"]', ["value"]),
        ('["a","b"]', ["a", "b"]),
        ('"x"', "x"),
        ("[]", []),
        ('"Zoë Łukasz 田中"', "Zoë Łukasz 田中"),
        ('"say \\"hi\\""', 'say "hi"'),
        ('[\r\n  "x"\r\n]', ["x"]),
        ('[{"id": 1}]', [{"id": 1}]),
        ('{"a": [1, 2]}', {"a": [1, 2]}),
        ('"[\\"x\\"]"', ["x"]),  # encoded twice
        ('"{\\"state\\": \\"enabled\\"}"', {"state": "enabled"}),
        ('"[] => [[Id: x]]"', "[] => [[Id: x]]"),  # text that only starts like JSON
        ('"\\"quoted\\""', '"quoted"'),
        ("[not json", "[not json"),  # invalid JSON keeps the string
        ('"unterminated', '"unterminated'),
        ('{"a":', '{"a":'),
        ("plain text", "plain text"),
        ("True", "True"),
        ("", ""),
        (None, None),
    ],
)
def test_modified_property_values_are_json_decoded(encoded: Any, decoded: Any) -> None:
    record = copy.deepcopy(ADD_TO_ROLE)
    record["targetResources"][0]["modifiedProperties"] = [
        {"displayName": "Prop", "oldValue": encoded, "newValue": encoded}
    ]
    prop = normalize(record)["targets"][0]["modified_properties"][0]
    assert prop == {"name": "Prop", "old": decoded, "new": decoded}


def test_missing_fields_never_raise() -> None:
    doc = normalize({"id": "only-an-id", "activityDateTime": "2026-10-31T23:59:59Z"})
    assert doc["id"] == "entra_audit:only-an-id"
    assert doc["operation"] == "Unknown"
    assert doc["timestamp"] == "2026-10-31T23:59:59.000Z"
    assert doc["pk"] == f"{TENANT}:2026-10"
    assert doc["actor"]["type"] == "unknown"
    assert doc["targets"] == []
    assert doc["result"] == "unknown"
    assert doc["operation_type"] == "other"


def test_null_and_wrongly_typed_fields_never_raise() -> None:
    record = {
        "id": "drift-1",
        "activityDisplayName": "Update user",
        "activityDateTime": "2026-11-01T10:00:00Z",
        "result": None,
        "category": 7,
        "initiatedBy": {"user": "not-an-object", "app": None},
        "targetResources": [None, "x", {"id": 42, "modifiedProperties": [{"displayName": None}, "bad"]}],
        "additionalDetails": None,
        "brandNewField": {"nested": True},
    }
    doc = normalize(record)
    assert doc["category"] == "7"
    assert doc["result"] == "unknown"
    assert doc["actor"]["type"] == "system"
    assert doc["actor"]["client_app"] is None
    assert doc["targets"] == [
        {
            "type": None,
            "id": "42",
            "display": None,
            "modified_properties": [{"name": "", "old": None, "new": None}],
        }
    ]


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        ("success", "success"),
        ("failure", "failure"),
        ("timeout", "failure"),
        ("unknownFutureValue", "unknown"),
    ],
)
def test_result_values(result: str, expected: str) -> None:
    record = copy.deepcopy(ADD_TO_ROLE)
    record["result"] = result
    assert normalize(record)["result"] == expected


def test_keep_raw_and_raw_ref() -> None:
    kept = normalize(
        DOCUMENTED, keep_raw=True, raw_ref=RawRef(blob="entra_audit/2026/11/01/10/run-00001.jsonl.gz", line=3)
    )
    assert kept["raw"] is DOCUMENTED  # the record itself, no copy
    assert kept["raw_ref"] == {"blob": "entra_audit/2026/11/01/10/run-00001.jsonl.gz", "line": 3}
    dropped = normalize(DOCUMENTED, keep_raw=False, raw_ref={"blob": "b", "line": 0})
    assert dropped["raw"] is None
    assert dropped["raw_ref"] == {"blob": "b", "line": 0}


def test_ids_are_deterministic() -> None:
    assert normalize(ADD_TO_ROLE)["id"] == normalize(copy.deepcopy(ADD_TO_ROLE))["id"]
    assert event_id(SOURCE, ADD_TO_ROLE) == normalize(ADD_TO_ROLE)["id"]


def test_hash_id_without_native_id_is_stable_and_depends_on_the_record_not_on_attribution() -> None:
    record = copy.deepcopy(ADD_TO_ROLE)
    del record["id"]
    first = normalize(record)["id"]
    assert re.fullmatch(r"entra_audit:h:[0-9a-f]{32}", first)
    assert normalize(copy.deepcopy(record))["id"] == first
    assert event_id(SOURCE, record) == first
    reordered = dict(reversed(list(copy.deepcopy(record).items())))
    assert normalize(reordered)["id"] == first, "key order on the wire does not matter"
    other_target = copy.deepcopy(record)
    other_target["targetResources"][0]["id"] = "a-different-user"
    assert normalize(other_target)["id"] != first
    later = copy.deepcopy(record)
    later["activityDateTime"] = "2026-11-01T10:00:01.1234567Z"
    assert normalize(later)["id"] != first


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        (["not", "a", "dict"], "not a JSON object"),
        ("a string", "not a JSON object"),
        (None, "not a JSON object"),
        ({"activityDisplayName": "Update user"}, "no id"),
        ({"activityDateTime": "2026-11-01T10:00:00Z"}, "no id"),
        ({"activityDisplayName": "Update user", "activityDateTime": "yesterday"}, "no id"),
        (
            {"id": "", "activityDisplayName": "Update user", "activityDateTime": "2026-13-45T10:00:00Z"},
            "no id",
        ),
    ],
)
def test_normalization_errors(record: Any, reason: str) -> None:
    with pytest.raises(NormalizationError, match=reason):
        normalize_record(SOURCE, record, tenant_id=TENANT, ingested_at=INGESTED)
    with pytest.raises(NormalizationError):
        event_id(SOURCE, record)


def test_unknown_source_is_a_normalization_error() -> None:
    with pytest.raises(NormalizationError, match="unknown source"):
        normalize_record("entra_audits", DOCUMENTED, tenant_id=TENANT, ingested_at=INGESTED)


def test_normalization_error_is_a_value_error() -> None:
    assert issubclass(NormalizationError, ValueError)


def test_the_record_is_not_mutated() -> None:
    record = copy.deepcopy(ADD_TO_ROLE)
    normalize(record, keep_raw=True)
    assert record == ADD_TO_ROLE


def test_ingested_at_is_normalized_and_a_bad_one_is_a_caller_error() -> None:
    doc = normalize_record(SOURCE, DOCUMENTED, tenant_id=TENANT, ingested_at="2026-11-05T06:07:08Z")
    assert doc["ingested_at"] == "2026-11-05T06:07:08.000Z"
    with pytest.raises(ValueError, match="ingested_at") as raised:
        normalize_record(SOURCE, DOCUMENTED, tenant_id=TENANT, ingested_at="later")
    assert not isinstance(raised.value, NormalizationError)


def test_record_without_a_timestamp_is_rejected_not_stamped() -> None:
    """Stamping the ingestion time would file a redelivered copy under another month's partition."""
    with pytest.raises(NormalizationError, match="timestamp"):
        normalize({"id": "only-an-id"})
