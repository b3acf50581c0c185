"""The Cosmos DB point operations of the whole app: read-or-none, replace-if-unchanged, and the
ETag-guarded read-modify-write loop built on them.

Each puts the id into the request path, so each refuses an unsafe id (shared.platform.ids.storage_id)
before any call.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from azure.core import MatchConditions
from azure.cosmos import ContainerProxy
from azure.cosmos.exceptions import (
    CosmosAccessConditionFailedError,
    CosmosHttpResponseError,
    CosmosResourceNotFoundError,
)

from shared.platform.ids import storage_id

logger = logging.getLogger(__name__)

MAX_UPDATE_ATTEMPTS = 10
Mutation = Callable[[dict[str, Any]], bool]
"""Changes a document in place; returns False for "nothing to change"."""


class ConcurrentUpdateError(RuntimeError):
    """The item kept changing between our read and our replace."""


def read_or_none(container: ContainerProxy, item_id: str, partition_key: str) -> dict[str, Any] | None:
    """A point read (1 RU in Azure); None when the item does not exist.

    A 500 is confirmed with a query, a sound second try against Azure (the published cosmosdb-server
    answers a read of a missing item with 500; devtools/cosmos_read_missing.js makes ours a 404). Raises
    shared.platform.ids.UnsafeStorageIdError for an id that is not safe in a request path.
    """
    storage_id(item_id)
    try:
        return dict(container.read_item(item_id, partition_key=partition_key))
    except CosmosResourceNotFoundError:
        return None
    except CosmosHttpResponseError as error:
        if error.status_code != 500:
            raise
    items = list(
        container.query_items(
            "SELECT * FROM c WHERE c.pk = @pk AND c.id = @id",
            parameters=[{"name": "@pk", "value": partition_key}, {"name": "@id", "value": item_id}],
            partition_key=partition_key,
        )
    )
    return dict(items[0]) if items else None


def replace_unchanged(
    container: ContainerProxy, document: dict[str, Any], etag: str | None
) -> dict[str, Any]:
    """Replace the item `document["id"]` if its ETag is still `etag`: CosmosAccessConditionFailedError
    when it changed meanwhile. Raises shared.platform.ids.UnsafeStorageIdError for an unsafe id."""
    item_id = storage_id(document.get("id"))
    return dict(
        container.replace_item(item_id, document, etag=etag, match_condition=MatchConditions.IfNotModified)
    )


def update_unchanged(
    container: ContainerProxy,
    item_id: str,
    partition_key: str,
    mutate: Mutation,
    *,
    current: dict[str, Any] | None = None,
    attempts: int = MAX_UPDATE_ATTEMPTS,
) -> tuple[dict[str, Any] | None, bool]:
    """Read, `mutate`, and replace under the read's ETag, reading again after a lost race.

    Returns (the stored document, whether it changed); (None, False) when the item does not exist.
    `current` saves the first read when the caller already holds the document. Raises
    ConcurrentUpdateError after `attempts` lost races.
    """
    for attempt in range(attempts):
        if attempt or current is None:
            current = read_or_none(container, item_id, partition_key)
        if current is None:
            return None, False
        if not mutate(current):
            return current, False
        try:
            return replace_unchanged(container, current, current.get("_etag")), True
        except CosmosAccessConditionFailedError:
            logger.info("item %s changed while updating it; retrying", item_id)
    raise ConcurrentUpdateError(f"item {item_id}: too many concurrent updates")
