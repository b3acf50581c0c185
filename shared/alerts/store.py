"""Alert documents in Cosmos DB: create-if-absent, ETag-guarded read-modify-write, parameterized queries.

`read_or_none` and `replace_unchanged` are the Cosmos point reads and replaces of the whole app: both put
the id into the request path, so both refuse an unsafe id (shared.ids.storage_id) before any call.
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
    CosmosResourceExistsError,
    CosmosResourceNotFoundError,
)

from shared.ids import storage_id

logger = logging.getLogger(__name__)

MAX_WRITE_RETRIES = 10
Mutation = Callable[[dict[str, Any]], bool]


class ConcurrentUpdateError(RuntimeError):
    pass


def read_or_none(container: ContainerProxy, item_id: str, partition_key: str) -> dict[str, Any] | None:
    """A point read (1 RU in Azure); None when the item does not exist.

    cosmosdb-server answers a read of a missing item with 500 instead of 404; a 500 is therefore
    confirmed with a query, which is also a sound second try against Azure. Raises
    shared.ids.UnsafeStorageIdError for an id that is not safe in a request path.
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
    return items[0] if items else None


def replace_unchanged(
    container: ContainerProxy, document: dict[str, Any], etag: str | None
) -> dict[str, Any]:
    """Replace the item `document["id"]` if its ETag is still `etag`: CosmosAccessConditionFailedError
    when it changed meanwhile. Raises shared.ids.UnsafeStorageIdError for an unsafe id."""
    item_id = storage_id(document.get("id"))
    return dict(
        container.replace_item(item_id, document, etag=etag, match_condition=MatchConditions.IfNotModified)
    )


class AlertStore:
    def __init__(self, container: ContainerProxy) -> None:
        self._container = container

    def get(self, tenant_id: str, alert_id: str) -> dict[str, Any] | None:
        return read_or_none(self._container, alert_id, tenant_id)

    def create(self, document: dict[str, Any]) -> bool:
        """Store a new alert; False when one with this id already exists."""
        storage_id(document.get("id"))
        try:
            self._container.create_item(document)
            return True
        except CosmosResourceExistsError:
            return False

    def update(self, tenant_id: str, alert_id: str, mutate: Mutation) -> dict[str, Any] | None:
        """Read, apply `mutate` (it returns False for "nothing to change"), replace if unchanged since.

        Returns the stored document (None if the alert does not exist). Retries on a lost ETag race.
        """
        for _ in range(MAX_WRITE_RETRIES):
            current = self.get(tenant_id, alert_id)
            if current is None:
                return None
            if not mutate(current):
                return current
            try:
                return replace_unchanged(self._container, current, current.get("_etag"))
            except CosmosAccessConditionFailedError:
                logger.info("alert %s changed while updating it; retrying", alert_id)
        raise ConcurrentUpdateError(f"alert {alert_id}: too many concurrent updates")
