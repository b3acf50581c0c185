"""Readable names for actors and targets that carry only an object id.

Unknown ids are resolved in bulk through Graph `POST /v1.0/directoryObjects/getByIds` (up to 1,000 a
call) and cached in Table Storage with a TTL. A failed lookup leaves the id and never fails the batch.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import threading
from typing import Any

from azure.core.exceptions import HttpResponseError
from azure.data.tables import TableClient

from shared.m365.http_client import ApiClient
from shared.platform.clock import Clock, parse_utc, utc_iso

logger = logging.getLogger(__name__)

GET_BY_IDS_LIMIT = 1000
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
CACHE_PARTITION = "directoryObject"
MEMORY_CACHE_LIMIT = 50_000
ENRICHMENT_BUDGET_SECONDS = 30.0


def _needs_name(entity: dict[str, Any]) -> str | None:
    object_id = entity.get("id")
    if object_id and not entity.get("display") and _GUID.match(str(object_id)):
        return str(object_id).lower()
    return None


class DirectoryNameResolver:
    def __init__(
        self,
        api: ApiClient,
        graph_base: str,
        scope: str,
        cache: TableClient,
        clock: Clock,
        ttl_seconds: float,
        budget_seconds: float = ENRICHMENT_BUDGET_SECONDS,
    ) -> None:
        self._api = api
        self._budget_seconds = budget_seconds
        self._url = f"{graph_base.rstrip('/')}/v1.0/directoryObjects/getByIds"
        self._scope = scope
        self._cache = cache
        self._clock = clock
        self._ttl = dt.timedelta(seconds=ttl_seconds)
        # In front of the table: names seen by this process, with the same expiry.
        self._memory: dict[str, tuple[dt.datetime, dict[str, Any]]] = {}
        self._memory_lock = threading.Lock()

    def _cached(self, object_id: str, now: dt.datetime) -> dict[str, Any] | None:
        with self._memory_lock:
            remembered = self._memory.get(object_id)
        if remembered is not None and remembered[0] > now:
            return remembered[1]
        try:
            entity = self._cache.get_entity(CACHE_PARTITION, object_id)
        except HttpResponseError:
            return None
        expires = parse_utc(entity["expires_at"])
        if expires <= now:
            return None
        self._remember(object_id, expires, dict(entity))
        return entity

    def _remember(self, object_id: str, expires: dt.datetime, entry: dict[str, Any]) -> None:
        with self._memory_lock:
            if len(self._memory) >= MEMORY_CACHE_LIMIT:
                self._memory.clear()
            self._memory[object_id] = (expires, entry)

    def resolve(self, object_ids: set[str], deadline: float | None = None) -> dict[str, dict[str, Any]]:
        """id -> {display, upn, type} for every id that could be resolved.

        Without a deadline the lookups get `budget_seconds`: names are best effort, and a long
        Retry-After must not hold an ingest message past the function timeout.
        """
        if deadline is None:
            deadline = self._api.clock.monotonic() + self._budget_seconds
        now = self._clock.now()
        names: dict[str, dict[str, Any]] = {}
        missing: list[str] = []
        for object_id in sorted(object_ids):
            hit = self._cached(object_id, now)
            if hit is None:
                missing.append(object_id)
            elif hit.get("display"):
                names[object_id] = {"display": hit["display"], "upn": hit.get("upn"), "type": hit.get("type")}
        for offset in range(0, len(missing), GET_BY_IDS_LIMIT):
            chunk = missing[offset : offset + GET_BY_IDS_LIMIT]
            if self._api.clock.monotonic() >= deadline:
                logger.warning("getByIds: out of time; %d ids left without names", len(missing) - offset)
                break
            try:
                response = self._api.request(
                    "POST", self._url, scope=self._scope, json={"ids": chunk}, deadline=deadline
                )
                found = response.json().get("value", [])
            except Exception as exc:  # enrichment is best effort
                logger.warning("getByIds failed for %d ids: %s", len(chunk), type(exc).__name__)
                continue
            resolved = set()
            for item in found:
                object_id = str(item.get("id", "")).lower()
                entry = {
                    "display": item.get("displayName"),
                    "upn": item.get("userPrincipalName"),
                    "type": str(item.get("@odata.type", "")).rsplit(".", 1)[-1] or None,
                }
                names[object_id] = entry
                resolved.add(object_id)
                self._store(object_id, entry, now)
            for object_id in set(chunk) - resolved:
                self._store(object_id, {"display": None, "upn": None, "type": None}, now)
        return names

    def _store(self, object_id: str, entry: dict[str, Any], now: dt.datetime) -> None:
        self._remember(object_id, now + self._ttl, entry)
        row = {"PartitionKey": CACHE_PARTITION, "RowKey": object_id, "expires_at": utc_iso(now + self._ttl)}
        row.update({k: v for k, v in entry.items() if v is not None})
        try:
            self._cache.upsert_entity(row)
        except HttpResponseError as exc:
            logger.warning("could not cache directory object name: %s", type(exc).__name__)

    def enrich(self, documents: list[dict[str, Any]], deadline: float | None = None) -> int:
        """Fill display names in place; returns how many actors and targets got one."""
        wanted: set[str] = set()
        for document in documents:
            for entity in (document.get("actor") or {}, *(document.get("targets") or [])):
                object_id = _needs_name(entity)
                if object_id:
                    wanted.add(object_id)
        if not wanted:
            return 0
        names = self.resolve(wanted, deadline)
        filled = 0
        for document in documents:
            for entity in (document.get("actor") or {}, *(document.get("targets") or [])):
                object_id = _needs_name(entity)
                if object_id and object_id in names:
                    entity["display"] = names[object_id]["display"]
                    if names[object_id].get("upn") and "upn" in entity and not entity.get("upn"):
                        entity["upn"] = names[object_id]["upn"]
                    filled += 1
        return filled
