"""Alert documents in Cosmos DB: create-if-absent and ETag-guarded read-modify-write
(shared.platform.cosmos), both refusing unsafe ids. The suppressions stored beside them, in the same
container and partition, are `AlertStore.suppressions` (shared.alerts.suppressions)."""

from __future__ import annotations

import logging
from typing import Any

from azure.cosmos import ContainerProxy
from azure.cosmos.exceptions import CosmosResourceExistsError

from shared.alerts.suppressions import SuppressionStore
from shared.platform.cosmos import ConcurrentUpdateError, Mutation, read_or_none, update_unchanged
from shared.platform.ids import storage_id

__all__ = ["AlertStore", "ConcurrentUpdateError", "Mutation"]

logger = logging.getLogger(__name__)


class AlertStore:
    def __init__(self, container: ContainerProxy) -> None:
        self._container = container
        self.suppressions = SuppressionStore(container)

    def get(self, tenant_id: str, alert_id: str) -> dict[str, Any] | None:
        """The alert; None when there is none (or the id names a document of another type)."""
        found = read_or_none(self._container, alert_id, tenant_id)
        return found if found is not None and found.get("type", "alert") == "alert" else None

    def active_between(
        self, tenant_id: str, rule_id: str, group_key: str, first: str, last: str
    ) -> list[dict[str, Any]]:
        """The open or acknowledged alerts of a rule and group whose first match lies in [first, last]."""
        return list(
            self._container.query_items(
                "SELECT * FROM c WHERE c.pk = @pk AND c.type = 'alert' AND c.rule_id = @rule "
                "AND c.group_key = @group "
                "AND (c.status = 'open' OR c.status = 'acknowledged') "
                "AND c.first_seen >= @first AND c.first_seen <= @last",
                parameters=[
                    {"name": "@pk", "value": tenant_id},
                    {"name": "@rule", "value": rule_id},
                    {"name": "@group", "value": group_key},
                    {"name": "@first", "value": first},
                    {"name": "@last", "value": last},
                ],
                partition_key=tenant_id,
            )
        )

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
        try:
            stored, _ = update_unchanged(self._container, alert_id, tenant_id, mutate)
        except ConcurrentUpdateError:
            raise ConcurrentUpdateError(f"alert {alert_id}: too many concurrent updates") from None
        return stored
