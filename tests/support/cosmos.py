"""Reading test results back from cosmosdb-server, which re-evaluates a query for every page."""

from __future__ import annotations

from collections.abc import Iterable
from typing import cast

from shared.platform.clients import get_clients
from shared.platform.resources import CosmosContainers


def event_ids(tenant_id: str, months: Iterable[str]) -> set[str]:
    """Event ids in the tenant's month partitions, each read as one large page."""
    container = get_clients().cosmos_container(CosmosContainers.EVENTS.name)
    ids: set[str] = set()
    for month in set(months):
        pk = f"{tenant_id}:{month}"
        values = container.query_items(
            "SELECT VALUE c.id FROM c WHERE c.pk = @pk",
            parameters=[{"name": "@pk", "value": pk}],
            partition_key=pk,
            max_item_count=200_000,
        )
        ids.update(cast(Iterable[str], values))  # SELECT VALUE: the ids themselves, not documents
    return ids
