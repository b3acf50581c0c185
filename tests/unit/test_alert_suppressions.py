"""Suppressions (shared.alerts.suppressions): the id grammar, when one holds, how matches are counted
(distinct events, so a redelivered batch counts once), what replacing one keeps, If-Match parsing, and
the store refusing an unsafe id before any storage call."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from shared.alerts.ledger import MatchRow
from shared.alerts.service import group_actor
from shared.alerts.suppressions import (
    MAX_MATCH_IDS,
    SuppressionStore,
    etag_matches,
    is_active,
    new_suppression,
    record_matches,
    suppression_id,
)
from shared.api.catalog import openapi_json
from shared.platform.clock import utc_iso
from shared.platform.ids import (
    UnsafeStorageIdError,
    is_alert_id,
    is_event_id,
    is_suppression_id,
    storage_id,
)
from tests.unit.test_ids import HOSTILE, _NoStorage

NOW = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)
ALERT: dict[str, Any] = {
    "id": "alert-" + "b" * 40,
    "pk": "tenant-1",
    "rule_id": "entra.global-admin-added",
    "title": "Global administrator added",
    "group_key": "actor.upn|actor.id=eve@contoso.com",
    "group": {"actor.upn|actor.id": "Eve@contoso.com"},
    "sample": {"service": "Directory", "operation": "Add member to role", "actor": "Eve@contoso.com"},
}


def _rows(*numbers: int) -> list[MatchRow]:
    """Matches of events e<n>, n minutes after 11:00."""
    start = dt.datetime(2026, 11, 20, 11, 0, tzinfo=dt.UTC)
    return [
        MatchRow(utc_iso(start + dt.timedelta(minutes=n)), f"entra_audit:e{n}", "tenant-1:2026-11")
        for n in numbers
    ]


def test_suppression_ids_are_one_per_tenant_rule_and_group_and_of_their_own_grammar() -> None:
    ids = {
        suppression_id(t, r, g) for t in ("t1", "t2") for r in ("a.rule", "b.rule") for g in ("", "g1", "g2")
    }
    assert len(ids) == 12
    assert suppression_id("t1", "a.rule", "g1") == suppression_id("t1", "a.rule", "g1")
    for identifier in ids:
        assert is_suppression_id(identifier)
        assert storage_id(identifier) == identifier
        assert [is_alert_id(identifier), is_event_id(identifier)] == [False, False]
    valid = next(iter(ids))
    for value in (
        *HOSTILE,
        valid.upper(),
        valid + "\n",
        valid + "/..",
        valid[:-1],
        valid + "0",
        "sup-",
        None,
    ):
        assert not is_suppression_id(value), repr(value)
    assert not is_suppression_id("alert-" + "a" * 40)


def test_a_suppression_holds_until_it_expires_by_the_clock() -> None:
    document = new_suppression(ALERT, "change window", NOW + dt.timedelta(hours=2), "root", NOW, None)
    assert document["id"] == suppression_id("tenant-1", ALERT["rule_id"], ALERT["group_key"])
    assert (document["type"], document["pk"], document["source_alert_id"]) == (
        "suppression",
        "tenant-1",
        ALERT["id"],
    )
    assert document["group"] == ALERT["group"]
    assert document["sample"] == {"service": "Directory", "operation": "Add member to role"}
    assert (document["matches"], document["last_match_at"]) == (0, None)
    assert is_active(document, NOW)
    assert is_active(document, NOW + dt.timedelta(hours=2) - dt.timedelta(milliseconds=1))
    assert not is_active(document, NOW + dt.timedelta(hours=2))
    assert not is_active({**document, "type": "alert"}, NOW)


def test_matches_count_distinct_events_so_a_redelivered_batch_counts_once() -> None:
    document = new_suppression(ALERT, "r", NOW + dt.timedelta(hours=1), "root", NOW, None)
    assert record_matches(document, _rows(1, 3, 2))
    assert (document["matches"], document["last_match_at"]) == (3, "2026-11-20T11:03:00.000Z")
    assert not record_matches(document, _rows(3, 1))  # the same batch again: nothing to write
    assert document["matches"] == 3
    assert record_matches(document, _rows(2, 0, 0))  # one new event, listed twice
    assert (document["matches"], document["last_match_at"]) == (4, "2026-11-20T11:03:00.000Z")
    assert record_matches(document, _rows(*range(4, 4 + MAX_MATCH_IDS)))
    assert document["matches"] == 4 + MAX_MATCH_IDS
    assert len(document["match_ids"]) == MAX_MATCH_IDS  # the last ones are kept
    assert document["match_ids"][-1] == f"entra_audit:e{3 + MAX_MATCH_IDS}"


def test_replacing_an_active_suppression_keeps_its_count_and_an_expired_one_starts_again() -> None:
    first = new_suppression(ALERT, "first", NOW + dt.timedelta(hours=1), "root", NOW, None)
    record_matches(first, _rows(1, 2))
    later = NOW + dt.timedelta(minutes=30)
    extended = new_suppression(ALERT, "longer", later + dt.timedelta(days=3), "ada", later, first)
    assert (extended["matches"], extended["match_ids"]) == (2, first["match_ids"])
    assert (extended["reason"], extended["created_by"], extended["created_at"]) == (
        "longer",
        "ada",
        "2026-11-20T12:30:00.000Z",
    )
    after = NOW + dt.timedelta(hours=2)
    renewed = new_suppression(ALERT, "again", after + dt.timedelta(hours=1), "ada", after, first)
    assert (renewed["matches"], renewed["last_match_at"], renewed["match_ids"]) == (0, None, [])


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ('"00000a-1"', True),
        ("00000a-1", True),
        ('W/"00000a-1"', True),
        ('"other", "00000a-1"', True),
        ("*", True),
        ('"00000a-2"', False),
        ('"00000a-1x"', False),
        (",", False),
        ('""', False),
    ],
)
def test_if_match_names_the_etag_quoted_or_not(header: str, expected: bool) -> None:
    assert etag_matches(header, '"00000a-1"') is expected


def test_if_match_never_matches_a_missing_etag() -> None:
    assert not etag_matches("*", None)
    assert not etag_matches("*", "")


def test_the_store_refuses_an_unsafe_id_before_any_storage_call() -> None:
    container: Any = _NoStorage()
    store = SuppressionStore(container)
    for value in ("..", ".", "/", "a/../..", "a#b", "x\x00"):
        with pytest.raises(UnsafeStorageIdError):
            store.get("tenant", value)
        with pytest.raises(UnsafeStorageIdError):
            store.update("tenant", value, lambda document: True)
        with pytest.raises(UnsafeStorageIdError):
            store.put({"id": value, "pk": "tenant"}, None)
        with pytest.raises(UnsafeStorageIdError):
            store.put({"id": value, "pk": "tenant"}, '"etag"')
        with pytest.raises(UnsafeStorageIdError):
            store.delete("tenant", value, '"etag"')
    assert container.calls == []


def test_an_alert_is_about_its_actor_grouping_else_its_first_events_actor() -> None:
    sample = {"actor": "first@contoso.com"}
    assert group_actor({"actor.upn|actor.id": "Eve@contoso.com"}, sample) == "Eve@contoso.com"
    assert group_actor({"targets[].display|targets[].id": "Lab", "actor.upn": "eve"}, sample) == "eve"
    assert group_actor({"targets[].display|targets[].id": "Lab"}, sample) == "first@contoso.com"
    assert group_actor({"actor.upn|targets[].id": "x"}, sample) == "first@contoso.com"  # not only actor
    assert group_actor({"actor.upn|actor.id": ""}, {}) is None


def test_the_suppression_routes_are_documented_with_their_roles_etags_and_statuses() -> None:
    paths = openapi_json()["paths"]
    suppress = paths["/api/alerts/{id}/suppress"]["post"]
    remove = paths["/api/suppressions/{id}"]["delete"]
    listing = paths["/api/suppressions"]["get"]
    bulk = paths["/api/alerts/bulk"]["post"]
    for operation in (suppress, remove):
        assert "Needs the AOC.Admin role." in operation["description"]
        assert {"name": "If-Match", "in": "header"}.items() <= next(
            p for p in operation["parameters"] if p["name"] == "If-Match"
        ).items()
        assert {"400", "401", "403", "404", "409", "412"} <= set(operation["responses"])
    assert "201" in suppress["responses"]
    assert "content" not in remove["responses"]["204"]
    assert "Needs the AOC.Reader role." in listing["description"]
    assert [p["name"] for p in listing["parameters"]] == ["rule"]
    assert "Needs the AOC.Analyst role." in bulk["description"]
    assert "412" not in bulk["responses"]
    alerts = {p["name"] for p in paths["/api/alerts"]["get"]["parameters"]}
    assert {"actor", "since", "until"} <= alerts
