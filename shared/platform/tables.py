"""Table Storage's one conditional write: create the row if we read none, else replace it only if its
ETag is still the one we read. Callers loop read → change → `write_unchanged` until it returns True."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError
from azure.data.tables import UpdateMode


class WritableTable(Protocol):
    """The writes of azure.data.tables.TableClient that `write_unchanged` makes (tests pass fakes)."""

    def create_entity(self, entity: Mapping[str, Any]) -> object: ...

    def update_entity(
        self,
        entity: Mapping[str, Any],
        mode: UpdateMode = ...,
        *,
        etag: str | None = ...,
        match_condition: MatchConditions | None = ...,
    ) -> object: ...


def write_unchanged(table: WritableTable, row: Mapping[str, Any], etag: str | None) -> bool:
    """Write `row`; False when another writer created or changed it since our read (read again)."""
    try:
        if etag is None:
            table.create_entity(dict(row))
        else:
            table.update_entity(
                dict(row), mode=UpdateMode.REPLACE, etag=etag, match_condition=MatchConditions.IfNotModified
            )
    except (ResourceExistsError, ResourceModifiedError):
        return False
    return True
