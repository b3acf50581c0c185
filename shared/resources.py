"""Names of every queue, table, blob container and Cosmos container the app uses.

Bindings, the bootstrap, the health check and the infrastructure templates all read these, so a name
lives in one place.
"""

from __future__ import annotations

from dataclasses import dataclass


class Queues:
    INGEST = "ingest"
    ALERTS = "alerts"
    BACKUP_TRIGGER = "backup-trigger"
    NOTIFICATIONS = "notifications"

    ALL: tuple[str, ...] = (INGEST, ALERTS, BACKUP_TRIGGER, NOTIFICATIONS)


def poison_queue(queue_name: str) -> str:
    return f"{queue_name}-poison"


class Tables:
    WATERMARKS = "Watermarks"
    PROBE_STATE = "ProbeState"
    IDEMPOTENCY = "Idempotency"
    HANDED_OFF_CONTENT = "HandedOffContent"
    DIRECTORY_NAMES = "DirectoryNames"
    TRIGGER_LOG = "TriggerLog"

    ALL: tuple[str, ...] = (
        WATERMARKS,
        PROBE_STATE,
        IDEMPOTENCY,
        HANDED_OFF_CONTENT,
        DIRECTORY_NAMES,
        TRIGGER_LOG,
    )


class BlobContainers:
    RAW = "raw"
    QUARANTINE = "quarantine"
    CONFIG = "config"

    ALL: tuple[str, ...] = (RAW, QUARANTINE, CONFIG)


@dataclass(frozen=True)
class CosmosContainerSpec:
    name: str
    partition_key_path: str
    excluded_paths: tuple[str, ...] = ()
    ttl_from_retention: bool = False

    def indexing_policy(self) -> dict[str, object]:
        return {
            "indexingMode": "consistent",
            "automatic": True,
            "includedPaths": [{"path": "/*"}],
            "excludedPaths": [{"path": p} for p in (*self.excluded_paths, '/"_etag"/?')],
        }


class CosmosContainers:
    # Events: partition key "{tenant_id}:{yyyy-mm}" (see README). Raw copies and property values are
    # never filtered on, so they stay out of the index; their TTL is the retention setting.
    EVENTS = CosmosContainerSpec(
        "events",
        "/pk",
        excluded_paths=(
            "/raw/*",
            "/raw_ref/*",
            "/targets/[]/modified_properties/[]/old/*",
            "/targets/[]/modified_properties/[]/new/*",
        ),
        ttl_from_retention=True,
    )
    ALERTS = CosmosContainerSpec("alerts", "/pk")
    FACETS = CosmosContainerSpec("facets", "/pk")

    ALL: tuple[CosmosContainerSpec, ...] = (EVENTS, ALERTS, FACETS)
