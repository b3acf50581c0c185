"""Graph paging (shared.ingestion.sources.graph_paging) over an httpx.MockTransport: nextLinks are
followed as written, retries happen per page, and a link off the API's origin or back to an earlier
page stops the run."""

from __future__ import annotations

import pytest

from shared.ingestion.sources.graph_paging import iter_graph_pages
from shared.m365.http_client import ApiError
from tests.support.http_fakes import SCOPE, URL, Answer, make_client


def test_graph_paging_follows_next_link_until_absent() -> None:
    next1 = URL + "?$top=2&$skiptoken=abc"
    next2 = URL + "?$top=2&$skiptoken=def"
    client, adapter, _, _ = make_client(
        [
            Answer(200, {"value": [{"id": 1}, {"id": 2}], "@odata.nextLink": next1}),
            Answer(429, None, {"Retry-After": "1"}),
            Answer(200, {"value": [{"id": 3}, {"id": 4}], "@odata.nextLink": next2}),
            Answer(200, {"value": [{"id": 5}]}),
        ]
    )
    pages = list(iter_graph_pages(client, URL, {"$top": "2"}, scope=SCOPE, deadline=None, rate_limiter=None))
    assert [[item["id"] for item in value] for value, _ in pages] == [[1, 2], [3, 4], [5]]
    assert pages[0][1]["@odata.nextLink"] == next1
    assert [s.url for s in adapter.sent] == [URL + "?%24top=2", next1, next1, next2]
    assert all(s.headers["authorization"].startswith("Bearer ") for s in adapter.sent)


def test_graph_paging_refuses_a_next_link_to_another_host() -> None:
    client, adapter, _, _ = make_client(
        [Answer(200, {"value": [], "@odata.nextLink": "https://evil.example/steal"})]
    )
    pages = iter_graph_pages(client, URL, None, scope=SCOPE)
    assert next(pages)[0] == []
    with pytest.raises(ApiError) as caught:
        next(pages)
    assert caught.value.code == "InvalidNextLink"
    assert len(adapter.sent) == 1


def test_graph_paging_refuses_a_next_link_that_downgrades_to_http() -> None:
    client, adapter, _, _ = make_client(
        [Answer(200, {"value": [1], "@odata.nextLink": URL.replace("https://", "http://") + "?$skiptoken=x"})]
    )
    with pytest.raises(ApiError) as caught:
        list(iter_graph_pages(client, URL, None, scope=SCOPE))
    assert caught.value.code == "InvalidNextLink"
    assert len(adapter.sent) == 1


def test_graph_paging_stops_on_a_loop() -> None:
    link = URL + "?$skiptoken=same"
    client, _, _, _ = make_client(
        [
            Answer(200, {"value": [1], "@odata.nextLink": link}),
            Answer(200, {"value": [2], "@odata.nextLink": link}),
        ]
    )
    with pytest.raises(ApiError, match="repeats"):
        list(iter_graph_pages(client, URL, None, scope=SCOPE))


@pytest.mark.parametrize("body", [[1, 2], {"value": {"id": 1}}])
def test_graph_paging_refuses_a_page_that_is_not_a_value_list(body: object) -> None:
    client, _, _, _ = make_client([Answer(200, body)])
    with pytest.raises(ApiError) as caught:
        list(iter_graph_pages(client, URL, None, scope=SCOPE))
    assert caught.value.code == "InvalidPage"
