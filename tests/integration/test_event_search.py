"""Event search against cosmosdb-server: each filter returns exactly the expected ids, paging visits
every match once and in order, and a forged continuation token is a 400."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from azure.cosmos import PartitionKey

from shared.api.events_query import EventSearch, SensitivityPolicy, parse_event_query
from shared.api.paging import ContinuationSigner
from shared.api.problems import ApiProblem
from shared.ingestion.event_store import EventStore
from shared.platform.clients import get_clients
from shared.platform.clock import utc_iso
from shared.platform.resources import CosmosContainers
from tests.support.event_corpus import FILTERS, NOW, make_events

SECRET = b"test-continuation-secret-0123"


class Corpus:
    """Its own container with the events container's spec: cosmosdb-server scans a whole container per
    query, so other tests' events would only make this slow."""

    def __init__(self) -> None:
        clients = get_clients()
        spec = CosmosContainers.EVENTS
        self.container_name = f"events-search-{uuid.uuid4().hex[:8]}"
        container = clients.cosmos_database.create_container(
            id=self.container_name,
            partition_key=PartitionKey(path=spec.partition_key_path),
            indexing_policy=spec.indexing_policy(),
        )
        self.tenant = f"tenant-{uuid.uuid4().hex[:10]}"
        self.events = make_events(self.tenant, 400)
        store = EventStore(container, clients.cosmos_container(CosmosContainers.FACETS.name), 8)
        store.write_events(self.events)
        self.search = EventSearch(container, ContinuationSigner(SECRET), self.tenant)

    def all_ids(self, params: dict[str, Any], hide: SensitivityPolicy | None = None) -> list[str]:
        ids: list[str] = []
        token = None
        while True:
            page = self.search.search(
                parse_event_query({**params, **({"continuation": token} if token else {})}), NOW, hide
            )
            ids.extend(item["id"] for item in page["items"])
            token = page["continuation"]
            if token is None:
                return ids

    def expected(self, keep: Any, start: dt.datetime | None = None) -> list[str]:
        lower = utc_iso(start or NOW - dt.timedelta(days=30))
        matches = [e for e in self.events if lower <= e["timestamp"] < utc_iso(NOW) and keep(e)]
        return [e["id"] for e in sorted(matches, key=lambda e: (e["timestamp"], e["id"]), reverse=True)]


@pytest.fixture(scope="module")
def corpus(app_environment: dict[str, str]) -> Iterator[Corpus]:
    corpus = Corpus()
    yield corpus
    get_clients().cosmos_database.delete_container(corpus.container_name)


@pytest.mark.parametrize(("name", "params", "keep"), FILTERS, ids=[f[0] for f in FILTERS])
def test_each_filter_pages_through_exactly_the_expected_ids_newest_first(
    corpus: Corpus, name: str, params: dict[str, Any], keep: Any
) -> None:
    assert corpus.all_ids({"page_size": "23", **params}) == corpus.expected(keep)


def test_relative_start_and_explicit_end(corpus: Corpus) -> None:
    end = NOW - dt.timedelta(days=2)
    ids = corpus.all_ids({"start": "7d", "end": utc_iso(end), "page_size": "200"})
    lower, upper = utc_iso(NOW - dt.timedelta(days=7)), utc_iso(end)
    expected = [e for e in corpus.events if lower <= e["timestamp"] < upper]
    assert ids == [e["id"] for e in sorted(expected, key=lambda e: (e["timestamp"], e["id"]), reverse=True)]


def test_sensitive_services_are_invisible_without_the_privacy_role(corpus: Corpus) -> None:
    hide = SensitivityPolicy(services=["Exchange"], operations=["Wipe ManagedDevice"])
    ids = corpus.all_ids({"page_size": "50"}, hide)
    assert ids == corpus.expected(
        lambda e: e["service"] != "Exchange" and e["operation"] != "Wipe ManagedDevice"
    )


def test_a_forged_or_foreign_continuation_token_is_a_400(corpus: Corpus) -> None:
    page = corpus.search.search(parse_event_query({"page_size": "5"}), NOW, None)
    token = page["continuation"]
    assert token
    for bad in (
        token[:-2] + "xx",
        "garbage",
        ContinuationSigner(b"other-secret-0123456").encode("x", {"month": "2026-11"}),
    ):
        with pytest.raises(ApiProblem) as caught:
            corpus.search.search(parse_event_query({"page_size": "5", "continuation": bad}), NOW, None)
        assert caught.value.status == 400
    with pytest.raises(ApiProblem):  # a token from another query
        corpus.search.search(
            parse_event_query({"page_size": "5", "service": ["Teams"], "continuation": token}), NOW, None
        )


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"page_size": "500"}, "page_size"),
        ({"colour": "red"}, "colour"),
        ({"start": "yesterday"}, "start"),
        ({"end": "0001-01-02T00:00:00Z"}, "end"),
        ({"start": "0001-01-01T00:00:00+14:00"}, "start"),
        ({"service": ["Mail"]}, "service.0"),
    ],
)
def test_bad_parameters_are_a_400_naming_the_field(params: dict[str, Any], field: str) -> None:
    with pytest.raises(ApiProblem) as caught:
        parse_event_query(params)
    assert caught.value.status == 400
    assert caught.value.body()["errors"][0]["field"] == field
