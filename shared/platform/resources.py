"""Names of every queue, table, blob container and Cosmos container the app uses.

`shared/platform/resources.json` is the one source of truth: this module, the bootstrap, the health check and
the Bicep templates (`loadJsonContent`) all read it. The constants below are what bindings use; a test
checks they match the file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RESOURCES_FILE = Path(__file__).with_name("resources.json")
_DEFINITIONS: dict[str, Any] = json.loads(RESOURCES_FILE.read_text(encoding="utf-8"))


class Queues:
    INGEST = "ingest"
    ALERTS = "alerts"
    BACKUP_TRIGGER = "backup-trigger"
    NOTIFY = "notify"
    GOVERNANCE_DISCOVERY = "governance-discovery"
    GOVERNANCE_EVALUATE = "governance-evaluate"
    GOVERNANCE_UPDATE = "governance-update"

    ALL: tuple[str, ...] = tuple(_DEFINITIONS["queues"])


def poison_queue(queue_name: str) -> str:
    return f"{queue_name}-poison"


class Tables:
    WATERMARKS = "Watermarks"
    PROBE_STATE = "ProbeState"
    IDEMPOTENCY = "Idempotency"
    HANDED_OFF_CONTENT = "HandedOffContent"
    FAILED_CONTENT = "FailedContent"
    DIRECTORY_NAMES = "DirectoryNames"
    TRIGGER_LOG = "TriggerLog"
    ALERT_MATCHES = "AlertMatches"
    DELIVERY_LOG = "DeliveryLog"
    GOVERNANCE_UPDATES = "GovernanceUpdates"  # one claim per service principal notes PATCH and evaluation
    GOVERNANCE_DELTA = "GovernanceDelta"  # discovery: deltaLinks per tenant, ids to read again, lease
    REFRESH_RATE_LIMITS = "RefreshRateLimits"  # POST /api/refresh: one fixed-window counter per caller

    ALL: tuple[str, ...] = tuple(_DEFINITIONS["tables"])


class BlobContainers:
    RAW = "raw"
    QUARANTINE = "quarantine"
    CONFIG = "config"
    # Activity datasets (shared.datasets.store): the published TSV files, and per source its lease blob
    # (`{id}.lock`) and metadata (`{id}-metadata.json`).
    DATASETS = "datasets"
    LOCKS = "locks"

    ALL: tuple[str, ...] = tuple(_DEFINITIONS["blobContainers"])


@dataclass(frozen=True)
class CosmosContainerSpec:
    name: str
    partition_key_path: str
    excluded_paths: tuple[str, ...] = ()
    ttl_from_retention: bool = False
    composite_indexes: tuple[tuple[tuple[str, str], ...], ...] = ()

    def indexing_policy(self) -> dict[str, object]:
        policy: dict[str, object] = {
            "indexingMode": "consistent",
            "automatic": True,
            "includedPaths": [{"path": "/*"}],
            "excludedPaths": [{"path": p} for p in (*self.excluded_paths, '/"_etag"/?')],
        }
        if self.composite_indexes:
            policy["compositeIndexes"] = [
                [{"path": path, "order": order} for path, order in index] for index in self.composite_indexes
            ]
        return policy


def _container(name: str) -> CosmosContainerSpec:
    definition = next(c for c in _DEFINITIONS["cosmosContainers"] if c["name"] == name)
    return CosmosContainerSpec(
        name=definition["name"],
        partition_key_path=definition["partitionKey"],
        excluded_paths=tuple(definition["excludedPaths"]),
        ttl_from_retention=bool(definition["ttlFromRetention"]),
        composite_indexes=tuple(
            tuple((part["path"], part["order"]) for part in index)
            for index in definition.get("compositeIndexes", [])
        ),
    )


class CosmosContainers:
    # Events: partition key "{tenant_id}:{yyyy-mm}" (see README); raw copies and property values are never
    # filtered on, so they stay out of the index; their TTL is the retention setting.
    EVENTS = _container("events")
    ALERTS = _container("alerts")
    FACETS = _container("facets")
    AUDIT = _container("audit")  # who changed what through the API: partition key is the tenant
    SEARCHES = _container("searches")  # saved searches of the explorer: partition key is the tenant
    # Service principal governance (shared.governance.store): per-object records with last-known-good,
    # findings, exceptions and activities; partition key is the tenant.
    GOVERNANCE = _container("governance")

    ALL: tuple[CosmosContainerSpec, ...] = tuple(
        _container(c["name"]) for c in _DEFINITIONS["cosmosContainers"]
    )
