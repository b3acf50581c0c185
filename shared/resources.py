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

    ALL: tuple[str, ...] = (WATERMARKS, PROBE_STATE, IDEMPOTENCY)


class BlobContainers:
    RAW = "raw"
    QUARANTINE = "quarantine"
    CONFIG = "config"

    ALL: tuple[str, ...] = (RAW, QUARANTINE, CONFIG)


@dataclass(frozen=True)
class CosmosContainerSpec:
    name: str
    partition_key_path: str
    default_ttl_seconds: int | None = None


class CosmosContainers:
    EVENTS = CosmosContainerSpec("events", "/pk")
    ALERTS = CosmosContainerSpec("alerts", "/pk")
    FACETS = CosmosContainerSpec("facets", "/pk")

    ALL: tuple[CosmosContainerSpec, ...] = (EVENTS, ALERTS, FACETS)
