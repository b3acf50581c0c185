"""Readable names for actors and targets that carry only an object id, and for client applications that
carry only an appId.

Unknown object ids are resolved in bulk through Graph `POST /v1.0/directoryObjects/getByIds` (up to 1,000
a call); unknown appIds through `GET /v1.0/servicePrincipals?$filter=appId in (...)` (15 values a call,
Graph's limit for `in`). An app-only actor (a Management record that names only the client id) gets the
service principal's display name. Both are cached in Table Storage with a TTL. A failed lookup leaves
the id and never fails the batch.
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
APP_ID_FILTER_LIMIT = 15
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
CACHE_PARTITION = "directoryObject"
APP_CACHE_PARTITION = "servicePrincipalAppId"
APP_ACTOR_TYPES = frozenset(("application", "service_principal", "app"))
MEMORY_CACHE_LIMIT = 50_000
ENRICHMENT_BUDGET_SECONDS = 30.0


def _needs_name(entity: dict[str, Any]) -> str | None:
    object_id = entity.get("id")
    if object_id and not entity.get("display") and _GUID.fullmatch(str(object_id)):
        return str(object_id).lower()
    return None


def _needs_app_name(entity: dict[str, Any]) -> str | None:
    client_app = entity.get("client_app")
    if type(client_app) is not dict or client_app.get("name"):
        return None
    app_id = client_app.get("id")
    if app_id and _GUID.fullmatch(str(app_id)):
        return str(app_id).lower()
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
        self._service_principals_url = f"{graph_base.rstrip('/')}/v1.0/servicePrincipals"
        self._scope = scope
        self._cache = cache
        self._clock = clock
        self._ttl = dt.timedelta(seconds=ttl_seconds)
        # In front of the table: names seen by this process, with the same expiry.
        self._memory: dict[str, tuple[dt.datetime, dict[str, Any]]] = {}
        self._memory_lock = threading.Lock()

    def _cached(
        self, object_id: str, now: dt.datetime, partition: str = CACHE_PARTITION
    ) -> dict[str, Any] | None:
        memory_key = f"{partition}/{object_id}"
        with self._memory_lock:
            remembered = self._memory.get(memory_key)
        if remembered is not None and remembered[0] > now:
            return remembered[1]
        try:
            entity = self._cache.get_entity(partition, object_id)
        except HttpResponseError:
            return None
        expires = parse_utc(entity["expires_at"])
        if expires <= now:
            return None
        self._remember(memory_key, expires, dict(entity))
        return entity

    def _remember(self, memory_key: str, expires: dt.datetime, entry: dict[str, Any]) -> None:
        with self._memory_lock:
            if len(self._memory) >= MEMORY_CACHE_LIMIT:
                self._memory.clear()
            self._memory[memory_key] = (expires, entry)

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

    def resolve_app_names(self, app_ids: set[str], deadline: float | None = None) -> dict[str, str]:
        """appId -> the service principal's display name, for every appId that could be resolved."""
        if deadline is None:
            deadline = self._api.clock.monotonic() + self._budget_seconds
        now = self._clock.now()
        names: dict[str, str] = {}
        missing: list[str] = []
        for app_id in sorted(app_ids):
            hit = self._cached(app_id, now, APP_CACHE_PARTITION)
            if hit is None:
                missing.append(app_id)
            elif hit.get("display"):
                names[app_id] = str(hit["display"])
        for offset in range(0, len(missing), APP_ID_FILTER_LIMIT):
            chunk = missing[offset : offset + APP_ID_FILTER_LIMIT]
            if self._api.clock.monotonic() >= deadline:
                logger.warning(
                    "servicePrincipals: out of time; %d appIds left without names", len(missing) - offset
                )
                break
            # The values are GUIDs (checked by _needs_app_name), so quoting them in the filter is safe.
            quoted = ",".join(f"'{app_id}'" for app_id in chunk)
            try:
                response = self._api.request(
                    "GET",
                    self._service_principals_url,
                    scope=self._scope,
                    params={"$filter": f"appId in ({quoted})", "$select": "id,appId,displayName"},
                    deadline=deadline,
                )
                found = response.json().get("value", [])
            except Exception as exc:  # enrichment is best effort
                logger.warning(
                    "servicePrincipals lookup failed for %d appIds: %s", len(chunk), type(exc).__name__
                )
                continue
            resolved = set()
            for item in found:
                app_id = str(item.get("appId", "")).lower()
                display = item.get("displayName")
                if app_id in chunk and isinstance(display, str) and display:
                    names[app_id] = display
                    resolved.add(app_id)
                    self._store(
                        app_id,
                        {"display": display, "upn": None, "type": "servicePrincipal"},
                        now,
                        APP_CACHE_PARTITION,
                    )
            for app_id in set(chunk) - resolved:
                self._store(app_id, {"display": None, "upn": None, "type": None}, now, APP_CACHE_PARTITION)
        return names

    def _store(
        self, object_id: str, entry: dict[str, Any], now: dt.datetime, partition: str = CACHE_PARTITION
    ) -> None:
        self._remember(f"{partition}/{object_id}", now + self._ttl, entry)
        row = {"PartitionKey": partition, "RowKey": object_id, "expires_at": utc_iso(now + self._ttl)}
        row.update({k: v for k, v in entry.items() if v is not None})
        try:
            self._cache.upsert_entity(row)
        except HttpResponseError as exc:
            logger.warning("could not cache directory object name: %s", type(exc).__name__)

    def enrich(self, documents: list[dict[str, Any]], deadline: float | None = None) -> int:
        """Fill display names in place; returns how many actors, client apps and targets got one."""
        if deadline is None:
            deadline = self._api.clock.monotonic() + self._budget_seconds
        filled = self._enrich_app_names(documents, deadline)
        wanted: set[str] = set()
        for document in documents:
            for entity in (document.get("actor") or {}, *(document.get("targets") or [])):
                object_id = _needs_name(entity)
                if object_id:
                    wanted.add(object_id)
        if not wanted:
            return filled
        names = self.resolve(wanted, deadline)
        unnamed_applications: list[tuple[dict[str, Any], str]] = []
        for document in documents:
            for entity in (document.get("actor") or {}, *(document.get("targets") or [])):
                object_id = _needs_name(entity)
                if object_id and object_id in names:
                    entity["display"] = names[object_id]["display"]
                    if names[object_id].get("upn") and "upn" in entity and not entity.get("upn"):
                        entity["upn"] = names[object_id]["upn"]
                    filled += 1
                elif object_id and str(entity.get("type") or "").casefold() == "application":
                    unnamed_applications.append((entity, object_id))
        if unnamed_applications:
            # A Management sign-in names the application signed in to by its appId, not an object id.
            app_names = self.resolve_app_names({app_id for _, app_id in unnamed_applications}, deadline)
            for entity, app_id in unnamed_applications:
                if app_id in app_names:
                    entity["display"] = app_names[app_id]
                    filled += 1
        return filled

    def _enrich_app_names(self, documents: list[dict[str, Any]], deadline: float) -> int:
        wanted: set[str] = set()
        for document in documents:
            app_id = _needs_app_name(document.get("actor") or {})
            if app_id:
                wanted.add(app_id)
        if not wanted:
            return 0
        names = self.resolve_app_names(wanted, deadline)
        filled = 0
        for document in documents:
            actor = document.get("actor") or {}
            app_id = _needs_app_name(actor)
            if app_id and app_id in names:
                actor["client_app"]["name"] = names[app_id]
                if actor.get("type") in APP_ACTOR_TYPES and not actor.get("display"):
                    actor["display"] = names[app_id]
                filled += 1
        return filled
