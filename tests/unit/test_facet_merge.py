"""Facet shards merge into one count per value; a value rewritten events moved away from drops out,
whichever shard the move landed on (renormalize re-attributes stored events)."""

from __future__ import annotations

from shared.ingestion.event_store import facet_moves, merge_facets


def _shard(facet: str, counts: dict[str, int]) -> dict[str, object]:
    return {"facet": facet, "values": {value: {"count": count} for value, count in counts.items()}}


def test_counts_sum_over_shards() -> None:
    merged = merge_facets(
        [_shard("service", {"Exchange": 2, "Teams": 1}), _shard("service", {"Exchange": 3})]
    )
    assert merged == {"service": {"Exchange": 5, "Teams": 1}}


def test_a_value_moved_away_on_the_same_shard_drops_out() -> None:
    # The +1 and the -1 of a re-attributed actor landed on one shard: its count there is 0.
    merged = merge_facets([_shard("actor", {"megan@contoso.com": 0, "Contoso Mail Archiver": 1})])
    assert merged == {"actor": {"Contoso Mail Archiver": 1}}


def test_a_value_moved_away_on_another_shard_drops_out() -> None:
    merged = merge_facets(
        [_shard("actor", {"1003BFFD@contoso.com": 1}), _shard("actor", {"1003BFFD@contoso.com": -1})]
    )
    assert merged == {"actor": {}}


def test_facet_moves_take_one_from_the_old_value_and_give_one_to_the_new() -> None:
    document = {
        "service": "Exchange",
        "operation": "MailItemsAccessed",
        "result": "success",
        "source": "o365_management",
        "actor": {"upn": None, "display": "Contoso Mail Archiver", "id": "a1"},
    }
    replaced = [("actor", "megan@contoso.com"), ("service", "Exchange")]
    moves = facet_moves(replaced, document)
    assert ("actor", "megan@contoso.com", -1) in moves
    assert ("service", "Exchange", -1) not in moves
    assert all(step == 1 for facet, value, step in moves if (facet, value) != ("actor", "megan@contoso.com"))
