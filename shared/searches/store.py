"""Saved searches in Cosmos DB (container `searches`, partition key the tenant id): point reads, one
single-partition parameterized query for what a caller may see, and creates, replaces and deletes
conditional on the ETag the caller last read. Every id goes through shared.platform.ids.storage_id."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from azure.core import MatchConditions
from azure.cosmos import ContainerProxy
from azure.cosmos.exceptions import (
    CosmosAccessConditionFailedError,
    CosmosResourceExistsError,
    CosmosResourceNotFoundError,
)

from shared.platform.cosmos import read_or_none
from shared.platform.ids import storage_id
from shared.searches.model import DOCUMENT_TYPE, SavedSearch


class SearchExistsError(Exception):
    """A search with this id exists already."""


class StaleSearchError(Exception):
    """The search changed (or went) since the ETag the change was conditional on."""


@dataclass(frozen=True)
class StoredSearch:
    search: SavedSearch
    etag: str  # Cosmos DB's _etag, as the service gives it


def _stored(document: dict[str, Any]) -> StoredSearch:
    return StoredSearch(SavedSearch.model_validate(document), str(document.get("_etag") or ""))


class SearchStore:
    def __init__(self, container: ContainerProxy, tenant_id: str) -> None:
        self._container = container
        self._tenant_id = tenant_id

    def get(self, search_id: str) -> StoredSearch | None:
        document = read_or_none(self._container, search_id, self._tenant_id)
        if document is None or document.get("type") != DOCUMENT_TYPE:
            return None
        return _stored(document)

    def visible(
        self, subject: str, roles: Collection[str], *, pinned: bool | None = None, limit: int = 1000
    ) -> list[StoredSearch]:
        """The caller's own searches and those shared with a role they hold, at most `limit`, by name
        (as Cosmos DB orders strings). One query, in the tenant's partition."""
        conditions = [
            "c.pk = @pk",
            "c.type = @type",
            "(c.owner = @owner OR (c.visibility = 'role' AND ARRAY_CONTAINS(@roles, c.role)))",
        ]
        parameters: list[dict[str, Any]] = [
            {"name": "@pk", "value": self._tenant_id},
            {"name": "@type", "value": DOCUMENT_TYPE},
            {"name": "@owner", "value": subject},
            {"name": "@roles", "value": sorted(roles)},
            {"name": "@limit", "value": limit},
        ]
        if pinned is not None:
            conditions.append("c.pinned = @pinned")
            parameters.append({"name": "@pinned", "value": pinned})
        clauses = " AND ".join(conditions)  # constant fragments only; values are parameters
        sql = f"SELECT TOP @limit * FROM c WHERE {clauses} ORDER BY c.name"  # noqa: S608
        rows = self._container.query_items(sql, parameters=parameters, partition_key=self._tenant_id)
        return [_stored(dict(row)) for row in rows]

    def count_owned(self, subject: str) -> int:
        found: Any = next(
            iter(
                self._container.query_items(
                    "SELECT VALUE COUNT(1) FROM c WHERE c.pk = @pk AND c.type = @type AND c.owner = @owner",
                    parameters=[
                        {"name": "@pk", "value": self._tenant_id},
                        {"name": "@type", "value": DOCUMENT_TYPE},
                        {"name": "@owner", "value": subject},
                    ],
                    partition_key=self._tenant_id,
                )
            ),
            0,
        )
        return int(found)

    def create(self, search: SavedSearch) -> StoredSearch:
        """Store a new search; SearchExistsError when its id is taken."""
        storage_id(search.id)
        try:
            return _stored(dict(self._container.create_item(search.document())))
        except CosmosResourceExistsError:
            raise SearchExistsError(search.id) from None

    def replace(self, search: SavedSearch, etag: str) -> StoredSearch:
        """Replace the search if its ETag is still `etag`; StaleSearchError if not (or if it is gone)."""
        try:
            replaced = self._container.replace_item(
                storage_id(search.id),
                search.document(),
                etag=etag,
                match_condition=MatchConditions.IfNotModified,
            )
        except (CosmosAccessConditionFailedError, CosmosResourceNotFoundError):
            raise StaleSearchError(search.id) from None
        return _stored(dict(replaced))

    def delete(self, search_id: str, etag: str | None) -> bool:
        """Delete the search (if its ETag is still `etag`, when given): False when it was gone already,
        StaleSearchError when it changed."""
        condition: dict[str, Any] = {}
        if etag is not None:
            condition = {"etag": etag, "match_condition": MatchConditions.IfNotModified}
        try:
            self._container.delete_item(storage_id(search_id), partition_key=self._tenant_id, **condition)
        except CosmosAccessConditionFailedError:
            raise StaleSearchError(search_id) from None
        except CosmosResourceNotFoundError:
            return False
        return True
