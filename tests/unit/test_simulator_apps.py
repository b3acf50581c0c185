"""The simulated applications and service principals in-process: determinism, what the generated tenant
contains (the cases a governance check must meet), versioned state for delta, and scripted audit records."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections import Counter
from typing import Any

import pytest

from devtools.simulator import SimulatorConfig
from devtools.simulator.__main__ import build_parser
from devtools.simulator.app import SimulatorApp
from devtools.simulator.apps import APPLICATIONS, DAY_US, SERVICE_PRINCIPALS, AppsState
from devtools.simulator.generator import Tenant
from devtools.simulator.render import ENTRA_AUDIT, render
from devtools.simulator.timefmt import parse_time, to_us
from shared.ingestion.normalize import normalize_record

EPOCH = dt.datetime(2026, 11, 22, tzinfo=dt.UTC)
ANCHOR_US = to_us(EPOCH) + DAY_US
HIGH_PRIVILEGE = {
    "RoleManagement.ReadWrite.Directory",
    "AppRoleAssignment.ReadWrite.All",
    "Application.ReadWrite.All",
    "Directory.ReadWrite.All",
    "Policy.ReadWrite.ConditionalAccess",
    "UserAuthenticationMethod.ReadWrite.All",
    "Domain.ReadWrite.All",
    "Mail.ReadWrite",
    "Files.ReadWrite.All",
    "Sites.FullControl.All",
}


def tenant(seed: int = 5) -> Tenant:
    return Tenant(SimulatorConfig(epoch=EPOCH, seed=seed, events_per_day=100, started_at_unix=time.time()))


def state(size: int, seed: int = 5) -> AppsState:
    t = tenant(seed)
    return AppsState(
        seed=seed, tenant_id=t.config.tenant_id, directory=t.directory, size=size, anchor_us=ANCHOR_US
    )


def us(text: str) -> int:
    return parse_time(text, require_zone=True)[0]


def test_the_same_seed_gives_the_same_tenant_and_a_bigger_size_only_adds() -> None:
    small, again, big = state(120), state(120), state(400)
    assert small.truth() == again.truth()
    assert (
        big.truth()["service_principals"][: len(small.truth()["service_principals"])]
        == (small.truth()["service_principals"])
    )
    assert state(120, seed=6).truth()["service_principals"][20:] != small.truth()["service_principals"][20:]


def test_the_directory_principals_keep_their_ids_and_size_counts_live_principals() -> None:
    apps = state(300)
    truth = apps.truth()
    by_id = {p["id"]: p for p in truth["service_principals"]}
    assert truth["live"] == 300
    assert truth["deleted"] == sum(p["deleted"] for p in by_id.values()) > 0
    for principal in apps.directory.service_principals:
        assert (by_id[principal.id]["appId"], by_id[principal.id]["displayName"]) == (
            principal.app_id,
            principal.display_name,
        )
    graph = by_id[truth["graph_service_principal_id"]]
    assert (graph["appId"], graph["kind"]) == ("00000003-0000-0000-c000-000000000000", "resource")


def test_the_generated_tenant_holds_every_case_a_governance_check_meets() -> None:
    truth = state(1500).truth()
    live = [p for p in truth["service_principals"] if not p["deleted"]]
    credentials = [c for p in live if p["kind"] != "managed_identity" for c in p["credentials"]]

    def days_left(credential: dict[str, Any]) -> float:
        return (us(credential["endDateTime"]) - ANCHOR_US) / DAY_US

    buckets = Counter(
        "expired" if d < 0 else "7" if d <= 7 else "14" if d <= 14 else "30" if d <= 30 else "later"
        for d in map(days_left, credentials)
    )
    assert set(buckets) == {"expired", "7", "14", "30", "later"}
    assert any(c["type"] == "password" and c["lifetimeDays"] > 180 for c in credentials)
    assert any(c["type"] == "password" and c["lifetimeDays"] <= 180 for c in credentials)
    assert any(c["type"] == "certificate" and c["lifetimeDays"] > 365 for c in credentials)
    assert all(us(c["startDateTime"]) < ANCHOR_US for c in credentials)

    own = [p for p in live if p["kind"] == "line_of_business"]
    owners = [o for p in own for o in p["owners"]]
    assert any(not p["owners"] for p in own)
    assert any(o["type"] == "user" and not o["accountEnabled"] for o in owners)
    assert any(o["userType"] == "Guest" for o in owners)
    assert any(o["type"] == "servicePrincipal" for o in owners)
    assert {p["notesCase"] for p in own} >= {
        "owners",
        "owners_reformatted",
        "owners_partial",
        "non_owner",
        "unknown_upn",
        "empty",
        "blank",
        "free_text",
    }
    audiences = Counter(
        (p["signInAudience"], p["verifiedPublisher"]) for p in live if p["kind"] != "managed_identity"
    )
    assert audiences[("AzureADMultipleOrgs", False)]
    assert audiences[("AzureADMultipleOrgs", True)]
    assert audiences[("AzureADMyOrg", False)]
    assert any(g["value"] in HIGH_PRIVILEGE for p in live for g in p["permissions"])
    assert any(
        not (HIGH_PRIVILEGE & {g["value"] for g in p["permissions"]}) and p["permissions"] for p in live
    )
    privileged = {"Global Administrator", "Privileged Role Administrator", "Application Administrator"}
    holders = [p for p in live if privileged & {r["displayName"] for r in p["directoryRoles"]}]
    assert any(c["type"] == "password" for p in holders for c in p["credentials"])
    assert {p["kind"] for p in live} == {
        "resource",
        "first_party",
        "line_of_business",
        "third_party",
        "managed_identity",
    }


def test_a_change_makes_a_version_and_a_round_sees_the_state_it_started_with() -> None:
    apps = state(60)
    principal = next(p for p in apps.truth()["service_principals"] if p["kind"] == "line_of_business")
    before = apps.seq
    actor = apps.user_actor(None)
    mutation = apps.set_notes(principal["id"], "new@contoso.onmicrosoft.com", actor=actor, now_us=ANCHOR_US)
    assert mutation.seq == before + 1
    assert [a["activityDisplayName"] for a in mutation.audits] == ["Update service principal"]
    assert apps.state_at(SERVICE_PRINCIPALS, principal["id"], before).notes == principal["notes"]
    assert apps.state_at(SERVICE_PRINCIPALS, principal["id"], apps.seq).notes == "new@contoso.onmicrosoft.com"
    assert (
        apps.set_notes(principal["id"], "new@contoso.onmicrosoft.com", actor=actor, now_us=ANCHOR_US).seq
        is None
    )
    assert apps.changed_ids(SERVICE_PRINCIPALS, before, apps.seq, None, None) == [principal["id"]]
    assert apps.changed_ids(SERVICE_PRINCIPALS, before, apps.seq, frozenset({"displayname"}), None) == []

    created = apps.create_application(
        "Short-lived", owners=[], sign_in_audience="AzureADMyOrg", actor=actor, now_us=ANCHOR_US
    )
    apps.delete(created.details["applicationId"], actor=actor, now_us=ANCHOR_US)
    assert created.object_id not in apps.changed_ids(SERVICE_PRINCIPALS, before, apps.seq, None, None)
    assert created.object_id in apps.initial_ids(SERVICE_PRINCIPALS, apps.seq, None)  # as @removed
    assert created.object_id not in apps.initial_ids(SERVICE_PRINCIPALS, before, None)
    assert created.details["applicationId"] not in apps.changed_ids(
        APPLICATIONS, before, apps.seq, None, None
    )


def test_owner_and_permission_changes_are_navigation_and_no_delta_change() -> None:
    apps = state(60)
    principal = next(p for p in apps.truth()["service_principals"] if p["kind"] == "line_of_business")
    actor = apps.user_actor("zoe.lukasz@contoso.onmicrosoft.com")
    seq = apps.seq
    owner = apps.change_owner(
        principal["id"], "leeg@contoso.onmicrosoft.com", add=True, actor=actor, now_us=0
    )
    grant = apps.change_permission(
        principal["id"], "Mail.ReadWrite", grant=True, consent=True, actor=actor, now_us=0
    )
    assert (owner.seq, grant.seq, apps.seq) == (None, None, seq)
    assert [a["activityDisplayName"] for a in grant.audits] == [
        "Consent to application",
        "Add app role assignment to service principal",
    ]
    assert "Mail.ReadWrite" in {p["value"] for p in apps.truth(principal["id"])["permissions"]}
    with pytest.raises(ValueError, match="already holds"):
        apps.change_permission(
            principal["id"], "mail.readwrite", grant=True, consent=False, actor=actor, now_us=0
        )


def test_scripted_audit_records_are_ground_truth_served_as_given_and_seeded() -> None:
    first, second = tenant(), tenant()
    body = {
        "id": None,
        "correlationId": None,
        "activityDisplayName": "Add owner to service principal",
        "activityDateTime": None,
    }
    ids = first.add_directory_audits([dict(body), dict(body)], ANCHOR_US)
    assert ids == second.add_directory_audits([dict(body), dict(body)], ANCHOR_US)
    assert len(set(ids)) == 2
    assert first.revision == 1
    assert set(ids) <= set(first.ground_truth()["ids"])
    visible = [r for r in first.graph_visible(ENTRA_AUDIT, ANCHOR_US, ANCHOR_US + 1, ANCHOR_US) if r.body]
    rendered = [render(r, first.render_context) for r in visible]
    assert sorted(f"entra_audit:{r['id']}" for r in rendered) == sorted(ids)
    assert {r["activityDateTime"] for r in rendered} == {"2026-11-23T00:00:00.0000000Z"}
    assert len({r["correlationId"] for r in rendered}) == 1
    assert first.graph_visible(ENTRA_AUDIT, ANCHOR_US, ANCHOR_US + 1, ANCHOR_US, revision=0) == []


def test_every_change_writes_records_the_app_normalizes_with_actor_and_targets() -> None:
    """The ingest worker's normalizer reads each record a change writes: the acting user and the object."""
    config = SimulatorConfig(
        epoch=EPOCH, seed=5, events_per_day=50, started_at_unix=time.time() - 86400, service_principals=40
    )
    app = SimulatorApp(config, Tenant(config))
    principal = next(
        p
        for p in app.apps.state().truth()["service_principals"]
        if p["kind"] == "line_of_business"
        and p["applicationId"]
        and p["notes"] != "x@contoso.onmicrosoft.com"
    )
    changes = [
        (
            "owners",
            {
                "object": principal["id"],
                "owner": "kai.nakamura_fabrikam.com#EXT#@contoso.onmicrosoft.com",
                "action": "add",
            },
        ),
        ("credentials", {"object": principal["applicationId"], "type": "certificate"}),
        ("permissions", {"object": principal["id"], "permission": "Sites.FullControl.All"}),
        ("notes", {"object": principal["id"], "notes": "x@contoso.onmicrosoft.com"}),
        ("applications", {"display_name": "Fresh", "owners": ["meganb@contoso.onmicrosoft.com"]}),
        ("delete", {"object": principal["id"]}),
        ("users", {"user": "leeg@contoso.onmicrosoft.com", "account_enabled": False}),
    ]
    ids: list[str] = []
    for route, document in changes:
        response = app.handle("POST", f"/_sim/apps/{route}", {}, json.dumps(document).encode())
        assert response.status == 200, response.body
        ids += json.loads(response.body)["audit_ids"]
    records = {
        f"entra_audit:{r.native_id}": render(r, app.tenant.render_context)
        for r in app.tenant.records
        if r.body is not None
    }
    assert set(ids) == set(records)
    for truth_id in ids:
        event = normalize_record(
            "entra_audit", records[truth_id], tenant_id="t", ingested_at="2026-11-23T00:00:00Z"
        )
        assert event["actor"]["upn"] == "zoe.lukasz@contoso.onmicrosoft.com"
        assert event["targets"]
        assert all(target["id"] for target in event["targets"])


@pytest.mark.parametrize("size", [12, 0, 100_001, True, "5000"])
def test_the_size_setting_is_checked(size: Any) -> None:
    with pytest.raises(ValueError, match="service_principals"):
        SimulatorConfig(service_principals=size)


def test_the_command_line_sets_the_size() -> None:
    assert build_parser().parse_args(["--service-principals", "5000"]).service_principals == 5000
    assert build_parser().parse_args([]).service_principals == SimulatorConfig().service_principals
