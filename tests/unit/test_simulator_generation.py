"""The tenant simulator's generated day: determinism, counts, shares, delays and realistic content."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from typing import Any

import pytest

from devtools.simulator import SimulatorConfig
from devtools.simulator.directory import build_directory
from devtools.simulator.generator import (
    CONTENT_TYPE_SHARES,
    CONTENT_TYPES,
    O365,
    SOURCE_SHARES,
    SOURCES,
    Record,
    Tenant,
    apportion,
)
from devtools.simulator.render import render
from devtools.simulator.timefmt import to_us

EPOCH = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
DAY_US = 86_400 * 10**6


def make_tenant(**overrides: Any) -> Tenant:
    values: dict[str, Any] = {"epoch": EPOCH, "started_at_unix": 0.0, "events_per_day": 4000, "seed": 7}
    values.update(overrides)
    return Tenant(SimulatorConfig(**values))


@pytest.fixture(scope="module")
def tenant() -> Tenant:
    return make_tenant(malformed_rate=0.02)


@pytest.fixture(scope="module")
def rendered(tenant: Tenant) -> list[tuple[Record, dict[str, Any]]]:
    return [(r, render(r, tenant.render_context)) for r in tenant.records]


def test_same_seed_same_day_different_seed_different_day() -> None:
    first, second, other = make_tenant(), make_tenant(), make_tenant(seed=8)
    assert first.ground_truth() == second.ground_truth()
    sample = range(0, 4000, 37)
    for i in sample:
        assert render(first.records[i], first.render_context) == render(
            second.records[i], second.render_context
        )
    assert set(first.ground_truth()["ids"]).isdisjoint(other.ground_truth()["ids"])


def test_counts_and_shares(tenant: Tenant) -> None:
    assert len(tenant.records) == 4000
    by_source = Counter(r.source for r in tenant.records)
    assert dict(by_source) == apportion(4000, SOURCE_SHARES)
    assert by_source == {"entra_audit": 1000, "entra_signin": 1200, "intune_audit": 400, O365: 1400}
    by_type = Counter(r.kind for r in tenant.records if r.source == O365)
    assert dict(by_type) == apportion(1400, CONTENT_TYPE_SHARES)
    assert set(by_type) == set(CONTENT_TYPES)
    assert 0 < by_type["DLP.All"] < by_type["Audit.General"]


def test_apportion_sums_exactly() -> None:
    for total in (0, 1, 7, 1999, 2000, 50_001):
        assert sum(apportion(total, SOURCE_SHARES).values()) == total


def test_ground_truth_uses_the_app_id_scheme_and_excludes_malformed(tenant: Tenant) -> None:
    truth = tenant.ground_truth()
    ids = truth["ids"]
    assert ids == sorted(ids)
    assert len(ids) == len(set(ids))
    malformed = [r for r in tenant.records if r.malformed]
    assert truth["malformed"] == len(malformed) > 0
    assert len(ids) + truth["malformed"] == 4000
    assert sum(truth["by_source"].values()) == len(ids)
    prefixes = Counter(i.split(":", 1)[0] for i in ids)
    assert set(prefixes) == {"entra_audit", "entra_signin", "intune_audit", "o365"}
    for source, prefix in (("entra_audit", "entra_audit"), ("entra_signin", "entra_signin"),
                           ("intune_audit", "intune_audit"), (O365, "o365")):  # fmt: skip
        first = next(r for r in tenant.records if r.source == source and not r.malformed)
        assert f"{prefix}:{first.native_id}" in ids  # the native id text, unchanged
    assert all(i.startswith("entra_audit:Directory_") for i in ids if i.startswith("entra_audit:"))
    for record in malformed:
        assert record.truth_id not in ids


def test_malformed_records_have_no_id_and_no_timestamp(rendered: list[tuple[Record, dict[str, Any]]]) -> None:
    for record, body in rendered:
        if record.source == O365:
            keys = ("Id", "CreationTime")
        elif record.source == "entra_signin":
            keys = ("id", "createdDateTime")
        else:
            keys = ("id", "activityDateTime")
        present = [k in body for k in keys]
        assert present == [not record.malformed] * 2


def test_times_delays_and_late_out_of_order_blobs(tenant: Tenant) -> None:
    epoch_us = to_us(EPOCH)
    config = tenant.config
    graph_max = int(config.graph_max_delay_seconds * 10**6)
    mgmt_max = int(config.management_max_delay_seconds * 10**6)
    for record in tenant.records:
        assert epoch_us <= record.event_us < epoch_us + DAY_US
        delay = record.available_us - record.event_us
        assert 0 <= delay <= (mgmt_max if record.source == O365 else graph_max)
        if record.source == O365:
            assert record.event_us % 10**6 == 0  # CreationTime has whole seconds
    o365 = [r for r in tenant.records if r.source == O365]
    assert max(r.available_us - r.event_us for r in o365) > DAY_US  # some blobs are days late
    blobs = sorted(tenant.blob_by_id.values(), key=lambda b: b.created_us)
    assert all(all(tenant.records[i].available_us == b.created_us for i in b.records) for b in blobs)
    first_events = [min(tenant.records[i].event_us for i in b.records) for b in blobs]
    assert first_events != sorted(first_events)  # publication order is not event order
    assert sum(len(b.records) for b in blobs) == len(o365)
    assert len({b.content_id for b in blobs}) == len(blobs)


def test_the_day_follows_working_hours(tenant: Tenant) -> None:
    hours = Counter((r.event_us - to_us(EPOCH)) // (3600 * 10**6) for r in tenant.records)
    assert hours[14] > 3 * hours[2]


def test_real_operation_names_and_codes(rendered: list[tuple[Record, dict[str, Any]]]) -> None:
    entra = {b["activityDisplayName"] for r, b in rendered if r.source == "entra_audit"}
    assert {
        "Add member to role",
        "Update conditional access policy",
        "Add service principal credentials",
        "Consent to application",
        "Reset user password",
        "Update user",
        "Add user",
        "Delete user",
        "Add app role assignment to service principal",
        "Set domain authentication",
    } <= entra
    codes = {b["status"]["errorCode"] for r, b in rendered if r.source == "entra_signin"}
    assert {0, 50126, 50074, 53003} <= codes
    intune = {(b["activity"], b["activityOperationType"]) for r, b in rendered if r.source == "intune_audit"}
    assert {
        ("Create DeviceConfiguration", "Create"),
        ("Patch DeviceCompliancePolicy", "Patch"),
        ("Delete DeviceCompliancePolicy", "Delete"),
        ("Wipe ManagedDevice", "Action"),
        ("Assign MobileApp", "Assign"),
    } <= intune
    operations = {(r.kind, b["Operation"]) for r, b in rendered if r.source == O365}
    for expected in (
        ("Audit.Exchange", "Set-Mailbox"),
        ("Audit.Exchange", "New-TransportRule"),
        ("Audit.Exchange", "Add-MailboxPermission"),
        ("Audit.Exchange", "New-InboxRule"),
        ("Audit.Exchange", "Set-AdminAuditLogConfig"),
        ("Audit.SharePoint", "FileAccessed"),
        ("Audit.SharePoint", "FileModified"),
        ("Audit.SharePoint", "SharingSet"),
        ("Audit.SharePoint", "AnonymousLinkCreated"),
        ("Audit.SharePoint", "SharingPolicyChanged"),
        ("Audit.General", "TeamCreated"),
        ("Audit.General", "MemberAdded"),
        ("Audit.General", "ChannelAdded"),
        ("DLP.All", "DLPRuleMatch"),
        ("Audit.AzureActiveDirectory", "Add member to role."),
    ):
        assert expected in operations


def test_graph_shapes(rendered: list[tuple[Record, dict[str, Any]]]) -> None:
    results: Counter[str] = Counter()
    app_actors = id_only_actors = 0
    for record, body in rendered:
        if record.malformed:
            continue
        if record.source == "entra_audit":
            assert body["activityDateTime"].endswith("Z")
            assert len(body["activityDateTime"]) == 28
            assert set(body) >= {
                "id",
                "category",
                "correlationId",
                "result",
                "initiatedBy",
                "targetResources",
            }
            results[body["result"]] += 1
            initiated = body["initiatedBy"]
            if initiated["app"] is not None:
                app_actors += 1
            elif initiated["user"]["displayName"] is None:
                id_only_actors += 1
            for target in body["targetResources"]:
                for prop in target["modifiedProperties"]:
                    for side in ("oldValue", "newValue"):
                        if prop[side] is not None:
                            json.loads(prop[side])  # Graph sends JSON-encoded strings
        elif record.source == "entra_signin":
            assert set(body["status"]) == {"errorCode", "failureReason", "additionalDetails"}
            assert body["createdDateTime"].endswith("Z")
        elif record.source == "intune_audit":
            assert set(body["actor"]) >= {"userPrincipalName", "userId", "applicationId"}
            assert body["resources"]
            assert "modifiedProperties" in body["resources"][0]
    assert results["success"] > results["failure"] > 0
    assert app_actors > 0
    assert id_only_actors > 0


def test_management_common_schema(rendered: list[tuple[Record, dict[str, Any]]], tenant: Tenant) -> None:
    workloads = set()
    for record, body in rendered:
        if record.source != O365 or record.malformed:
            continue
        for key in ("Id", "RecordType", "CreationTime", "Operation", "OrganizationId", "UserType", "UserKey",
                    "Workload", "ResultStatus", "ObjectId", "UserId", "ClientIP"):  # fmt: skip
            assert key in body, (key, body)
        assert isinstance(body["RecordType"], int)
        assert isinstance(body["UserType"], int)
        assert body["OrganizationId"] == tenant.config.tenant_id
        dt.datetime.strptime(body["CreationTime"], "%Y-%m-%dT%H:%M:%S")  # no zone, no fraction
        workloads.add(body["Workload"])
        if body["Workload"] == "Exchange" and record.kind == "Audit.Exchange":
            assert all(set(p) == {"Name", "Value"} for p in body["Parameters"])
        if body["Operation"] in ("FileAccessed", "FileModified"):
            assert body["SiteUrl"]
            assert body["SourceFileName"]
        if body["Operation"] == "MemberAdded":
            assert body["TeamName"]
            assert body["Members"][0]["UPN"]
        if body["RecordType"] == 8:
            assert body["Actor"]
            assert body["Target"]
            assert "ModifiedProperties" in body
    assert {"Exchange", "SharePoint", "AzureActiveDirectory", "MicrosoftTeams"} <= workloads


def test_non_ascii_names_travel_in_the_records(rendered: list[tuple[Record, dict[str, Any]]]) -> None:
    text = "\n".join(json.dumps(b, ensure_ascii=False) for _, b in rendered)
    for name in ("Zoë Łukasz", "田中 太郎", "Søren Ødegård"):
        assert name in text


def test_every_referenced_object_id_resolves(
    rendered: list[tuple[Record, dict[str, Any]]], tenant: Tenant
) -> None:
    directory = tenant.directory
    referenced = set()
    for record, body in rendered:
        if record.source == "entra_audit":
            user = body["initiatedBy"]["user"]
            app = body["initiatedBy"]["app"]
            referenced.add(user["id"] if user else app["servicePrincipalId"])
            referenced.update(t["id"] for t in body["targetResources"] if t["type"] in ("User", "Group"))
        elif record.source == "intune_audit" and body["actor"]["userId"]:
            referenced.add(body["actor"]["userId"])
        elif record.source == "entra_signin":
            referenced.add(body["userId"])
    assert referenced
    assert all(directory.get(object_id) is not None for object_id in referenced)


def test_directory_is_stable_per_seed() -> None:
    assert build_directory(3) == build_directory(3)
    assert build_directory(3).users[0].id != build_directory(4).users[0].id


def test_fifty_thousand_records_are_generated() -> None:
    # How fast is a benchmark's business (bench/simulator.py: per-record cost, large day vs small).
    tenant = make_tenant(events_per_day=50_000)
    assert len(tenant.records) == 50_000


def test_sources_constant_matches_ground_truth(tenant: Tenant) -> None:
    assert set(tenant.ground_truth()["by_source"]) == set(SOURCES)
