"""What a saved search may hold as its query: the explorer's own parameters (the same lists as
web/src/state.js), each valid for GET /api/events, re-encoded in a stable order; and the If-Match
header's grammar."""

from __future__ import annotations

import re
import urllib.parse
from pathlib import Path

import pytest
from pydantic import ValidationError

from shared.api.problems import ApiProblem
from shared.api.searches_api import (
    EXPLORER_MULTI,
    EXPLORER_SINGLE,
    MAX_QUERY_LENGTH,
    SearchInput,
    canonical_query,
    if_match,
    matches,
    quoted,
)
from shared.platform.ids import is_search_id
from shared.searches.model import search_id

STATE_JS = Path(__file__).resolve().parents[2] / "web" / "src" / "state.js"


def _js_list(name: str) -> tuple[str, ...]:
    source = STATE_JS.read_text(encoding="utf-8")
    match = re.search(rf"export const {name} = \[(.*?)\];", source, re.S)
    assert match, name
    return tuple(re.findall(r'"([a-z_]+)"', match.group(1)))


def test_the_allowed_parameters_are_the_explorers() -> None:
    assert _js_list("SINGLE") == EXPLORER_SINGLE
    assert _js_list("MULTI") == EXPLORER_MULTI


def test_a_query_is_reencoded_in_the_explorers_order_with_duplicates_dropped() -> None:
    given = "?tag=b&service=Exchange&q=mail%20box&service=Exchange&start=7d&tag=a&exclude_actor=svc+backup"
    assert canonical_query(given) == (
        "q=mail+box&start=7d&service=Exchange&tag=b&tag=a&exclude_actor=svc+backup"
    )
    assert canonical_query("") == canonical_query("?") == ""
    # Repeated values collapse before the 20-value bound applies: 22 values of two services are two.
    twice = "&".join(["service=Directory", "service=Exchange"] * 11)
    assert canonical_query(twice) == "service=Directory&service=Exchange"
    every = "&".join(f"{name}=x" for name in EXPLORER_SINGLE if name not in ("start", "end", "result"))
    assert canonical_query(every + "&start=24h&end=2026-11-01T00:00:00Z&result=failure")


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("event=entra_audit:x", "'event' is not a filter"),
        ("page_size=200", "'page_size' is not a filter"),
        ("continuation=abc", "'continuation' is not a filter"),
        ("operation_type=update", "'operation_type' is not a filter"),
        ("c.tenant_id=x", "'c.tenant_id' is not a filter"),
        ("q=a&q=b", "q may be given only once"),
        ("actor=", "actor is empty"),
        ("actor=%20", "actor is empty"),
        ("actor", "not a query string"),
        ("actor=a%00b", "actor holds control characters"),
        ("target=%0A", "target is empty"),
        ("source=%FF%FE", "not a query string"),
        ("service=Nope", "service.0"),
        ("result=maybe", "result"),
        ("start=yesterday", "start"),
        ("start=0001-01-01T00:00:00Z", "start"),
        ("q=" + "x" * 201, "q"),
        ("&".join(f"tag=t{i}" for i in range(21)), "tag"),
        ("&".join(["a=b"] * 201), "not a query string"),
    ],
)
def test_anything_else_is_refused_naming_the_parameter(query: str, says: str) -> None:
    with pytest.raises(ValueError, match=re.escape(says)):
        canonical_query(query)


def test_the_body_bounds_name_and_query_and_refuses_unknown_fields() -> None:
    ok = SearchInput.model_validate({"name": "  Mailbox rules  ", "query": "service=Exchange"})
    assert (ok.name, ok.visibility, ok.role, ok.pinned) == ("Mailbox rules", "private", None, False)
    refused = [
        {"name": "", "query": ""},
        {"name": "   ", "query": ""},
        {"name": "x" * 101, "query": ""},
        {"name": "a\u0000b", "query": ""},
        {"name": "x"},
        {"name": "x", "query": "x=" + "a" * MAX_QUERY_LENGTH},
        {"name": "x", "query": "", "owner": "someone-else"},
        {"name": "x", "query": "", "visibility": "public"},
        {"name": "x", "query": "", "visibility": "role", "role": "AOC.Privacy"},
        {"name": "x", "query": "", "pinned": "true"},
    ]
    for body in refused:
        with pytest.raises(ValidationError):
            SearchInput.model_validate(body)


def test_if_match_takes_a_star_or_a_list_of_entity_tags() -> None:
    assert if_match({}) is None
    assert if_match({"if-match": "*"}) == ["*"]
    assert if_match({"If-Match": '"a", W/"b" ,"c"'}) == ['"a"', 'W/"b"', '"c"']
    for bad in ("", "abc", '"a', '"a" "b"', '"a\u0001"', '"' + "a" * 1000 + '"'):
        with pytest.raises(ApiProblem) as refused:
            if_match({"If-Match": bad})
        assert (refused.value.status, refused.value.errors[0]["field"]) == (400, "If-Match")
    etag = '"00000000-0000-0000-0000-000000000000"'
    assert matches(['"x"', etag], etag)
    assert matches(["*"], etag)
    assert not matches(["W/" + etag], etag)  # If-Match compares strongly
    assert quoted("abc") == '"abc"'
    assert quoted(etag) == etag


def test_search_ids_are_of_the_grammar_and_deterministic_with_a_key() -> None:
    random_ids = {search_id("t", "owner", None) for _ in range(20)}
    assert len(random_ids) == 20
    assert all(is_search_id(i) for i in random_ids)
    keyed = search_id("t", "owner", "key-1")
    assert keyed == search_id("t", "owner", "key-1") != search_id("t", "other", "key-1")
    assert is_search_id(keyed)
    for bad in ("srch-" + "A" * 32, "srch-" + "a" * 31, "srch-" + "a" * 33, "srch-" + "a" * 32 + "\n", ".."):
        assert not is_search_id(bad)
    assert urllib.parse.quote(keyed, safe="") == keyed
