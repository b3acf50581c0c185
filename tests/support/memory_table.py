"""An in-memory stand-in for azure.data.tables.TableClient, for unit tests of the stores in
shared/ingestion/watermarks.py: ETag-conditional writes and the few filters those stores send."""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Iterator
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError

# "A eq @p" optionally followed by "and B lt @q": what WatermarkStore, HandedOffContent and
# FailedContent query with.
_FILTER = re.compile(r"(\w+) eq @(\w+)(?: and (\w+) lt @(\w+))?")


class Entity(dict[str, Any]):
    def __init__(self, values: dict[str, Any], etag: str) -> None:
        super().__init__(values)
        self.metadata = {"etag": etag}


class MemoryTable:
    def __init__(self) -> None:
        self._rows: dict[tuple[str, str], tuple[dict[str, Any], str]] = {}
        self._lock = threading.Lock()

    def _get(self, partition: str, row: str) -> tuple[dict[str, Any], str]:
        found = self._rows.get((partition, row))
        if found is None:
            raise ResourceNotFoundError("The specified resource does not exist.")
        return found

    def get_entity(self, partition_key: str, row_key: str) -> Entity:
        with self._lock:
            values, etag = self._get(partition_key, row_key)
            return Entity(dict(values), etag)

    def create_entity(self, entity: dict[str, Any]) -> None:
        with self._lock:
            key = (entity["PartitionKey"], entity["RowKey"])
            if key in self._rows:
                raise ResourceExistsError("The specified entity already exists.")
            self._rows[key] = (dict(entity), uuid.uuid4().hex)

    def update_entity(
        self, entity: dict[str, Any], mode: Any = None, etag: str | None = None, match_condition: Any = None
    ) -> None:
        with self._lock:
            key = (entity["PartitionKey"], entity["RowKey"])
            _, current = self._get(*key)
            if match_condition == MatchConditions.IfNotModified and etag != current:
                raise ResourceModifiedError(
                    "The update condition specified in the request was not satisfied."
                )
            self._rows[key] = (dict(entity), uuid.uuid4().hex)

    def upsert_entity(self, entity: dict[str, Any]) -> None:
        with self._lock:
            key = (entity["PartitionKey"], entity["RowKey"])
            merged = {**self._rows.get(key, ({}, ""))[0], **entity}
            self._rows[key] = (merged, uuid.uuid4().hex)

    def delete_entity(self, partition_key: str, row_key: str) -> None:
        with self._lock:
            self._rows.pop((partition_key, row_key), None)

    def query_entities(
        self, query_filter: str, parameters: dict[str, Any] | None = None, select: list[str] | None = None
    ) -> Iterator[Entity]:
        match = _FILTER.fullmatch(query_filter.strip())
        if match is None:
            raise NotImplementedError(f"filter not supported here: {query_filter}")
        params = parameters or {}
        eq_field, eq_param, lt_field, lt_param = match.groups()
        with self._lock:
            rows = list(self._rows.values())
        for values, etag in rows:
            if values.get(eq_field) != params[eq_param]:
                continue
            if lt_field is not None and not (
                lt_field in values and values[lt_field] < params[lt_param]  # strings, as Table compares them
            ):
                continue
            shown = {k: v for k, v in values.items() if select is None or k in select}
            yield Entity(shown, etag)

    def rows(self, partition_key: str) -> dict[str, dict[str, Any]]:
        """Every row of a partition, by RowKey (for assertions)."""
        with self._lock:
            return {row: dict(v) for (part, row), (v, _) in self._rows.items() if part == partition_key}
