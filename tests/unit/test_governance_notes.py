"""The notes rule's parsing and the pure helpers remediation uses (shared/governance/notes.py): the value
built from the owners, the check that a last-known-good value still passes, and the plan that picks
current, last-known-good or owners, in the seed's order."""

from __future__ import annotations

import datetime as dt
from typing import Any

from shared.governance.config import NotesParameters, parse_validator_file
from shared.governance.notes import (
    MAX_NOTES_CHARS,
    NOTES_JOINER,
    last_known_good_acceptable,
    notes_from_owners,
    notes_problems,
    parse_notes,
    plan_notes_remediation,
)
from shared.governance.validators import evaluate
from tests.unit.test_governance_model import (
    APP_OWNERS,
    LIMITED_OWNER,
    SP_OWNERS,
    graph_object,
    sp_with,
)

NOW = dt.datetime(2026, 12, 10, 12, 0, tzinfo=dt.UTC)
ALICE, PIPELINE = SP_OWNERS["value"]
BOB, _, CAROL = APP_OWNERS["value"]
NOTES_ONLY = parse_validator_file({"validators": [{"id": "notes-lists-owners", "severity": "medium"}]})


def user(n: int, upn: str, **changes: Any) -> dict[str, Any]:
    return {
        "@odata.type": "#microsoft.graph.user",
        "id": f"00000000-0000-4000-8000-{n:012d}",
        "displayName": upn.split("@")[0],
        "userPrincipalName": upn,
        "accountEnabled": True,
        "userType": "Member",
        **changes,
    }


def test_parse_notes_splits_trims_and_deduplicates() -> None:
    parsed = parse_notes(" alice@contoso.com ;Bob@contoso.com,, ALICE@CONTOSO.COM ; Alice Wong;x@y ;")
    assert parsed.upns == ("alice@contoso.com", "Bob@contoso.com")
    assert parsed.invalid == ("Alice Wong", "x@y")
    assert parse_notes(None).empty
    assert parse_notes(" ;; , ").empty
    assert not parse_notes("Alice Wong").empty


def test_notes_from_owners_writes_enabled_members_sorted() -> None:
    obj = graph_object(
        owners=[user(1, "zoe@contoso.com"), ALICE, PIPELINE, LIMITED_OWNER],
        application_owners=[
            BOB,
            CAROL,
            user(2, "Yann@contoso.com", accountEnabled=False),
            user(3, "ALICE@contoso.com"),
        ],
    )
    # Alice appears twice (different objects, same UPN ignoring case): written once, as first read
    assert notes_from_owners(obj) == "alice@contoso.com, bob@contoso.com, zoe@contoso.com"
    assert notes_from_owners(obj, allow_guests=True) == (
        "alice@contoso.com, bob@contoso.com, carol_fabrikam.com#EXT#@contoso.onmicrosoft.com, zoe@contoso.com"
    )
    assert NOTES_JOINER == ", "


def test_the_value_built_from_owners_passes_the_rule() -> None:
    obj = graph_object(owners=[ALICE, user(1, "zoe@contoso.com")], application_owners=[BOB])
    built = notes_from_owners(obj)
    assert evaluate(obj.with_notes(built), NOTES_ONLY, NOW) == []
    assert notes_problems(built, obj) == ()


def test_notes_from_owners_keeps_whole_upns_within_the_limit() -> None:
    owners = [user(n, f"{'owner' * 8}{n:03d}@contoso.com") for n in range(40)]  # 55 characters each
    obj = graph_object(owners=owners, application_owners=[])
    built = notes_from_owners(obj)
    assert built is not None
    assert len(built) <= MAX_NOTES_CHARS
    entries = built.split(NOTES_JOINER)
    assert len(entries) == (MAX_NOTES_CHARS + len(NOTES_JOINER)) // (55 + len(NOTES_JOINER))
    assert entries == sorted(o["userPrincipalName"] for o in owners)[: len(entries)]
    assert notes_problems(built, obj) == ()


def test_no_accountable_owner_gives_no_value() -> None:
    obj = graph_object(owners=[PIPELINE, LIMITED_OWNER], application_owners=[CAROL])
    assert notes_from_owners(obj) is None


def test_a_last_known_good_value_is_acceptable_while_its_owners_are() -> None:
    obj = graph_object()
    good = "alice@contoso.com, bob@contoso.com"
    assert last_known_good_acceptable(good, obj)
    bob_disabled = graph_object(application_owners=[{**BOB, "accountEnabled": False}, CAROL])
    assert not last_known_good_acceptable(good, bob_disabled)
    bob_gone = graph_object(application_owners=[CAROL])
    assert not last_known_good_acceptable(good, bob_gone)
    assert not last_known_good_acceptable(None, obj)
    assert not last_known_good_acceptable("alice@contoso.com, " + " " * MAX_NOTES_CHARS, obj)
    guest = "carol_fabrikam.com#EXT#@contoso.onmicrosoft.com"
    assert not last_known_good_acceptable(guest, obj)
    assert last_known_good_acceptable(guest, obj, NotesParameters(allow_guests=True))


def test_the_plan_keeps_notes_that_already_pass() -> None:
    plan = plan_notes_remediation(graph_object(), last_known_good="bob@contoso.com")
    assert (plan.value, plan.source, plan.unchanged) == (
        "alice@contoso.com; Bob@Contoso.com",
        "current",
        True,
    )


def test_the_plan_restores_an_acceptable_last_known_good() -> None:
    obj = graph_object(sp=sp_with(notes="mallory@contoso.com"))
    plan = plan_notes_remediation(obj, last_known_good="bob@contoso.com")
    assert (plan.value, plan.source, plan.unchanged) == ("bob@contoso.com", "last-known-good", False)


def test_the_plan_falls_back_to_the_owners_then_gives_up() -> None:
    obj = graph_object(sp=sp_with(notes=None), application_owners=[{**BOB, "accountEnabled": False}])
    stale = plan_notes_remediation(obj, last_known_good="bob@contoso.com")
    assert (stale.value, stale.source, stale.unchanged) == ("alice@contoso.com", "owners", False)
    orphan = graph_object(sp=sp_with(notes=""), owners=[PIPELINE], application_owners=[CAROL])
    nothing = plan_notes_remediation(orphan, last_known_good="bob@contoso.com")
    assert (nothing.value, nothing.source, nothing.unchanged) == (None, None, False)
    assert nothing.reason == (
        "cannot remediate: no accountable owner with a UPN, and the last-known-good notes no longer pass"
    )
    assert plan_notes_remediation(orphan).reason == "cannot remediate: no accountable owner with a UPN"
