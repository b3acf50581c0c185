"""Microsoft Graph paging: follow `@odata.nextLink` from page to page, safely.

Graph answers a collection one page at a time, `{"value": [...], "@odata.nextLink": "<absolute URL>"}`,
and the last page has no nextLink. The link already carries the query (and the `$skiptoken`), so the
caller's params go on the first request only. The bearer token goes with every request, so a link to
another scheme or host is refused, and so is one that repeats an earlier page (it would never end).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

from shared.m365.http_client import ApiClient, ApiError
from shared.m365.rate_limit import RateLimiter

GraphPage = tuple[list[Any], dict[str, Any]]


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


def iter_graph_pages(
    client: ApiClient,
    url: str,
    params: Mapping[str, Any] | None = None,
    *,
    scope: str | None,
    deadline: float | None = None,
    rate_limiter: RateLimiter | None = None,
    headers: Mapping[str, str] | None = None,
) -> Iterator[GraphPage]:
    """Yield (value, page) for each Graph page, following `@odata.nextLink` until a page has none.

    Each request goes through `client` (retries, Retry-After, `deadline`, `rate_limiter`). ApiError
    "InvalidPage" for a page that is not `{"value": [...]}`, "InvalidNextLink" for a link off the
    API's origin, "PagingLoop" for a link to a page already read.
    """
    origin = _origin(url)
    next_url: str | None = url
    next_params = params
    seen: set[str] = set()
    while next_url is not None:
        page = client.get_json(
            next_url,
            scope=scope,
            params=next_params,
            headers=headers,
            deadline=deadline,
            rate_limiter=rate_limiter,
        )
        if not isinstance(page, dict):
            raise ApiError(None, "InvalidPage", "a Graph page must be a JSON object", next_url)
        value = page.get("value", [])
        if not isinstance(value, list):
            raise ApiError(None, "InvalidPage", "a Graph page's 'value' must be a list", next_url)
        yield value, page
        link = page.get("@odata.nextLink")
        if not link:
            return
        if not isinstance(link, str) or _origin(link) != origin:
            raise ApiError(None, "InvalidNextLink", "@odata.nextLink leaves the API's origin", str(link))
        if link in seen:
            raise ApiError(None, "PagingLoop", "@odata.nextLink repeats an earlier page", link)
        seen.add(link)
        next_url, next_params = link, None
