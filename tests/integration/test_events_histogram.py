"""GET /api/events/histogram against cosmosdb-server: for every search filter, each bucket's count equals
a brute-force count of the corpus (both ways: reading a small match set's timestamps, and counting
bucket by bucket) and the total equals the number of events GET /api/events pages through; buckets
that straddle the October/November partition boundary count both months; the privacy policy hides
the same events as the search; the route answers as declared."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from azure.cosmos import PartitionKey

from shared.api.audit import AuditLog
from shared.api.auth import Authenticator
from shared.api.events_api import EventsApi
from shared.api.events_histogram import EventHistogram, HistogramQuery
from shared.api.events_query import EventSearch, SensitivityPolicy, parse_event_query
from shared.api.paging import ContinuationSigner
from shared.api.responses import ApiGuard
from shared.ingestion.archive import RawArchive
from shared.ingestion.event_store import EventStore
from shared.platform.clients import get_clients
from shared.platform.clock import parse_utc, utc_iso
from shared.platform.resources import CosmosContainers
from tests.support.clock import ManualClock
from tests.support.event_corpus import FILTERS, NOW, make_events
from tests.support.principals import swa_principal

POLICY = SensitivityPolicy(services=["Exchange"], operations=["Wipe ManagedDevice"])
READER = {"x-ms-client-principal": swa_principal(["reader"], user="rita@contoso.com")}
PRIVACY = {"x-ms-client-principal": swa_principal(["reader", "privacy"], user="pia@contoso.com")}
# The search filters without paging (the histogram refuses page_size and continuation).
HISTOGRAM_FILTERS = [
    (name, {k: v for k, v in params.items() if k != "page_size"}, keep) for name, params, keep in FILTERS
]
Keep = Callable[[dict[str, Any]], bool]


class Corpus:
    """400 events over 40 days (October and November 2026) in a container of their own."""

    def __init__(self) -> None:
        clients = get_clients()
        spec = CosmosContainers.EVENTS
        self.container_name = f"events-histogram-{uuid.uuid4().hex[:8]}"
        self.container = clients.cosmos_database.create_container(
            id=self.container_name,
            partition_key=PartitionKey(path=spec.partition_key_path),
            indexing_policy=spec.indexing_policy(),
        )
        self.tenant = f"tenant-{uuid.uuid4().hex[:10]}"
        self.events = make_events(self.tenant, 400)
        store = EventStore(self.container, clients.cosmos_container(CosmosContainers.FACETS.name), 8)
        store.write_events(self.events)
        store.close()
        self.histogram = EventHistogram(self.container, self.tenant)  # 400 events: reads timestamps
        # COUNT per bucket, uncapped here (test_time_counts and the unit tests cover the cap).
        self.counting = EventHistogram(
            self.container, self.tenant, small_match_set=0, max_count_queries=10**4
        )
        self.search = EventSearch(self.container, ContinuationSigner(b"h" * 32), self.tenant)

    def run(self, params: dict[str, Any], hide: SensitivityPolicy | None = None) -> dict[str, Any]:
        """The answer, the same whether timestamps are read or each bucket is counted."""
        query = HistogramQuery.model_validate(params)
        read = self.histogram.histogram(query, NOW, hide).model_dump(mode="json", by_alias=True)
        counted = self.counting.histogram(query, NOW, hide).model_dump(mode="json", by_alias=True)
        expected = "counts" if counted["total"] else "timestamps"  # nothing matched: nothing to count
        assert (read.pop("plan"), counted.pop("plan")) == ("timestamps", expected)
        assert read == counted
        return read

    def paged_count(self, params: dict[str, Any], hide: SensitivityPolicy | None = None) -> int:
        """How many events GET /api/events pages through for the same filter."""
        count, token = 0, None
        while True:
            extra = {"page_size": "200", **({"continuation": token} if token else {})}
            filters = {k: v for k, v in params.items() if k != "buckets"}
            page = self.search.search(parse_event_query({**filters, **extra}), NOW, hide)
            count += len(page["items"])
            token = page["continuation"]
            if token is None:
                return count

    def brute_force(self, answer: dict[str, Any], keep: Keep) -> list[int]:
        """Each bucket's count, from the corpus in memory, over [max(start, from), min(end, to))."""
        lower, upper = parse_utc(answer["from"]), parse_utc(answer["to"])
        step = dt.timedelta(seconds=answer["bucket_seconds"])
        counts = []
        for bucket in answer["buckets"]:
            start = parse_utc(bucket["start"])
            low, high = utc_iso(max(start, lower)), utc_iso(min(start + step, upper))
            counts.append(sum(1 for e in self.events if low <= e["timestamp"] < high and keep(e)))
        return counts


@pytest.fixture(scope="module")
def corpus(app_environment: dict[str, str]) -> Iterator[Corpus]:
    made = Corpus()
    yield made
    get_clients().cosmos_database.delete_container(made.container_name)


def _visible(keep: Keep, policy: SensitivityPolicy) -> Keep:
    return lambda e: keep(e) and not policy.hides(e)


@pytest.mark.parametrize(("name", "params", "keep"), HISTOGRAM_FILTERS, ids=[f[0] for f in HISTOGRAM_FILTERS])
def test_each_filter_counts_exactly_the_events_the_search_returns(
    corpus: Corpus, name: str, params: dict[str, Any], keep: Keep
) -> None:
    answer = corpus.run(params)
    assert (answer["from"], answer["to"]) == (utc_iso(NOW - dt.timedelta(days=30)), utc_iso(NOW))
    assert answer["bucket_seconds"] == 12 * 3600  # 30 days in at most 60 buckets
    assert len(answer["buckets"]) == 60
    assert [b["count"] for b in answer["buckets"]] == corpus.brute_force(answer, keep)
    assert answer["total"] == sum(b["count"] for b in answer["buckets"]) == corpus.paged_count(params)


def test_buckets_across_the_month_boundary_count_both_partitions(corpus: Corpus) -> None:
    # 40 days in at most 5 buckets: 9-day steps aligned to the epoch (8 would need 6 once aligned), one
    # of which straddles 1 November.
    params = {"start": utc_iso(NOW - dt.timedelta(days=40)), "end": utc_iso(NOW), "buckets": 5}
    answer = corpus.run(params)
    assert (answer["bucket_seconds"], len(answer["buckets"])) == (9 * 86400, 5)
    starts = [parse_utc(b["start"]) for b in answer["buckets"]]
    step = dt.timedelta(days=9)
    boundary = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    straddling = [s for s in starts if s < boundary < s + step]
    assert len(straddling) == 1
    counts = corpus.brute_force(answer, lambda e: True)
    assert [b["count"] for b in answer["buckets"]] == counts
    index = starts.index(straddling[0])
    before = [e for e in corpus.events if utc_iso(straddling[0]) <= e["timestamp"] < utc_iso(boundary)]
    assert before
    assert counts[index] > len(before)
    assert (
        answer["total"]
        == corpus.paged_count(params)
        == 400 - sum(1 for e in corpus.events if e["timestamp"] < params["start"])
    )


def test_daily_buckets_over_the_month_boundary(corpus: Corpus) -> None:
    params = {"start": "2026-10-25T00:00:00Z", "end": "2026-11-05T00:00:00Z", "buckets": 12}
    answer = corpus.run(params)
    assert answer["bucket_seconds"] == 86400
    assert [b["start"][:10] for b in answer["buckets"]] == [
        (dt.date(2026, 10, 25) + dt.timedelta(days=i)).isoformat() for i in range(11)
    ]
    assert [b["count"] for b in answer["buckets"]] == corpus.brute_force(answer, lambda e: True)
    assert answer["total"] == corpus.paged_count(params) > 0


def test_unaligned_range_edges_are_clipped(corpus: Corpus) -> None:
    params = {"start": "2026-10-30T07:13:00Z", "end": "2026-11-02T19:47:00Z", "service": ["Directory"]}
    answer = corpus.run(params)
    assert answer["bucket_seconds"] == 3 * 3600
    assert answer["buckets"][0]["start"] == "2026-10-30T06:00:00.000Z"
    assert answer["buckets"][-1]["start"] == "2026-11-02T18:00:00.000Z"
    keep: Keep = lambda e: e["service"] == "Directory"  # noqa: E731
    assert [b["count"] for b in answer["buckets"]] == corpus.brute_force(answer, keep)
    assert answer["total"] == corpus.paged_count(params)


@pytest.mark.parametrize(
    ("name", "params", "keep"), HISTOGRAM_FILTERS[:4], ids=[f[0] for f in HISTOGRAM_FILTERS[:4]]
)
def test_privacy_hides_the_events_the_search_hides(
    corpus: Corpus, name: str, params: dict[str, Any], keep: Keep
) -> None:
    hidden = corpus.run(params, POLICY)
    assert [b["count"] for b in hidden["buckets"]] == corpus.brute_force(hidden, _visible(keep, POLICY))
    assert hidden["total"] == corpus.paged_count(params, POLICY)
    everything = corpus.run(params)
    if any(keep(e) and POLICY.hides(e) for e in corpus.events if e["timestamp"] >= hidden["from"]):
        assert hidden["total"] < everything["total"]


def test_the_route_serves_it_with_the_callers_privacy(corpus: Corpus) -> None:
    clients = get_clients()
    api = EventsApi(
        ApiGuard(Authenticator(verifier=None, swa_enabled=True, key_roles=frozenset()), POLICY),
        corpus.container,
        corpus.search,
        EventStore(corpus.container, clients.cosmos_container(CosmosContainers.FACETS.name), 2),
        RawArchive(clients.blob_service),
        AuditLog(clients.cosmos_container(CosmosContainers.AUDIT.name), corpus.tenant, ManualClock(NOW)),
        corpus.tenant,
        ManualClock(NOW),
        export_max=10,
        bulk_max=10,
    )
    url = "https://h/api/events/histogram?start=7d&buckets=8&service=Exchange&service=Directory"
    reader = api.histogram(url, READER, "/api/events/histogram")
    privacy = api.histogram(url, PRIVACY, "/api/events/histogram")
    assert (reader.status, privacy.status) == (200, 200)
    seen, all_ = json.loads(reader.body), json.loads(privacy.body)
    assert set(seen) == {"from", "to", "bucket_seconds", "buckets", "total", "plan"}
    assert (seen["bucket_seconds"], len(seen["buckets"])) == (86400, 8)  # 7 days from noon
    params = {"start": "7d", "service": ["Exchange", "Directory"]}
    assert seen["total"] == corpus.paged_count(params, POLICY)
    assert all_["total"] == corpus.paged_count(params) > seen["total"]  # Exchange is hidden from a reader
    exchange = api.histogram("https://h/api/events/histogram?service=Exchange", READER, "/p")
    assert json.loads(exchange.body)["total"] == 0
    refused = api.histogram("https://h/api/events/histogram?buckets=121", READER, "/p")
    assert refused.status == 400
    assert json.loads(refused.body)["errors"][0]["field"] == "buckets"
