"""GET /api/events through the local Functions host over 10,000 events in cosmosdb-server.

Every filter, alone and combined, returns exactly the expected ids; paging through all pages returns
each match once, newest first; an edited, forged or foreign continuation token is a 400 problem.
"""

from __future__ import annotations

import datetime as dt
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devtools.services import PROJECT_ROOT
from shared.api.paging import ContinuationSigner
from shared.ingestion.event_store import EventStore
from shared.platform.clock import utc_iso
from shared.platform.resources import CosmosContainers
from tests.support.event_corpus import FILTERS, NOW, expected_ids, make_events
from tests.support.host_process import FUNCTION_KEY, HostProcess, http_request
from tests.support.own_database import own_cosmos_database

EVENT_COUNT = 10_000
START = NOW - dt.timedelta(days=30)
KEY = {"x-functions-key": FUNCTION_KEY}


class HostCorpus:
    def __init__(self, host: HostProcess, events: list[dict[str, Any]]) -> None:
        self.host = host
        self.events = events

    def get(self, params: dict[str, Any]) -> Any:
        query = urllib.parse.urlencode(params, doseq=True)
        return http_request("GET", f"{self.host.base_url}/api/events?{query}", headers=KEY)

    def all_ids(self, params: dict[str, Any]) -> tuple[list[str], int]:
        """Every id over all pages, and the number of pages."""
        ids: list[str] = []
        token, pages = None, 0
        window = {"start": utc_iso(START), "end": utc_iso(NOW)}
        while True:
            response = self.get({**window, **params, **({"continuation": token} if token else {})})
            assert response.status == 200, response.body
            page = response.json()
            pages += 1
            ids.extend(item["id"] for item in page["items"])
            token = page["continuation"]
            if token is None:
                return ids, pages


@pytest.fixture(scope="module")
def corpus(app_environment: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostCorpus]:
    """10,000 events in a Cosmos database of this module's own, and a host reading it."""
    tenant = str(uuid.uuid4())
    with own_cosmos_database("aoc-search") as (database, clients):
        events = make_events(tenant, EVENT_COUNT)
        store = EventStore(
            clients.cosmos_container(CosmosContainers.EVENTS.name),
            clients.cosmos_container(CosmosContainers.FACETS.name),
            8,
        )
        store.write_events(events)
        store.close()
        settings = {
            **app_environment,
            "COSMOS_DATABASE": database,
            "M365_TENANT_ID": tenant,
            "API_CONTINUATION_SECRET": "search-host-continuation-secret-0123",
            "PROBE_ENABLED": "false",
        }
        work_dir: Path = tmp_path_factory.mktemp("search-host")
        host = HostProcess(app_dir=PROJECT_ROOT, work_dir=work_dir, environment=settings).start(timeout=60)
        try:
            yield HostCorpus(host, events)
        finally:
            host.stop()


def test_the_corpus_spans_two_months_with_ten_thousand_events(corpus: HostCorpus) -> None:
    assert len(corpus.events) == EVENT_COUNT
    assert {e["pk"].rsplit(":", 1)[-1] for e in corpus.events} == {"2026-10", "2026-11"}


@pytest.mark.parametrize(("name", "params", "keep"), FILTERS, ids=[f[0] for f in FILTERS])
def test_each_filter_pages_through_exactly_the_expected_ids(
    corpus: HostCorpus, name: str, params: dict[str, Any], keep: Any
) -> None:
    expected = expected_ids(corpus.events, keep, START, NOW)
    ids, pages = corpus.all_ids({"page_size": "200", **params})
    assert len(ids) == len(set(ids)), "an event came back twice"
    assert ids == expected
    assert expected, "a filter case must match something"
    page_size = int(params.get("page_size", 200))
    assert pages == max(1, -(-len(expected) // page_size)) or pages == -(-len(expected) // page_size) + 1


def test_more_combinations_of_filters(corpus: HostCorpus) -> None:
    cases: list[tuple[dict[str, Any], Any]] = [
        (
            {"service": ["Exchange", "SharePoint"], "result": "failure", "tag": ["reviewed"]},
            lambda e: (
                e["service"] in ("Exchange", "SharePoint")
                and e["result"] == "failure"
                and "reviewed" in e["tags"]
            ),
        ),
        (
            {"operation_contains": "mail", "actor": "ana", "exclude_tag": ["noise"]},
            lambda e: (
                "mail" in e["operation"].lower()
                and "ana" in (e["actor"]["upn"] or "").lower()
                and "noise" not in e["tags"]
            ),
        ),
        (
            {"target": "target-5", "correlation_id": "corr-0", "operation_type": "assign"},
            lambda e: (
                any("target-5" in (t["display"] or "") for t in e["targets"])
                and e["correlation_id"] == "corr-0"
                and e["operation_type"] == "assign"
            ),
        ),
        (
            {"q": "bob stone", "source": "entra_audit"},
            lambda e: "bob stone" in e["summary"].lower() and e["source"] == "entra_audit",
        ),
    ]
    for params, keep in cases:
        ids, _ = corpus.all_ids({"page_size": "150", **params})
        assert ids == expected_ids(corpus.events, keep, START, NOW), params


def test_a_forged_edited_or_foreign_continuation_token_is_a_400(corpus: HostCorpus) -> None:
    window = {"start": utc_iso(START), "end": utc_iso(NOW), "page_size": "50"}
    first = corpus.get(window).json()
    token = first["continuation"]
    assert token
    body, _, signature = token.partition(".")
    edited_body = body[:-3] + ("AAA" if body[-3:] != "AAA" else "BBB")
    forged = ContinuationSigner(b"an-attacker-secret-0123").encode("x", {"month": "2026-11", "ts": None})
    for bad in (f"{edited_body}.{signature}", token[:-2] + "xx", token[: len(token) // 2], forged, "%%%"):
        response = corpus.get({**window, "continuation": bad})
        assert response.status == 400, bad
        assert response.headers["Content-Type"].startswith("application/problem+json")
        assert response.json()["errors"][0]["field"] == "continuation"
    foreign = corpus.get({**window, "service": ["Teams"], "continuation": token})
    assert foreign.status == 400
    second = corpus.get({**window, "continuation": token})
    assert second.status == 200
    assert not {i["id"] for i in first["items"]} & {i["id"] for i in second.json()["items"]}
