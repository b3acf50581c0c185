"""Create every queue, table, blob container and Cosmos container the app needs. Idempotent.

`make run`, the tests and a deploy-time init (`python -m shared.platform.bootstrap`) all run this.
"""

from __future__ import annotations

import contextlib
import logging

from azure.core.exceptions import ResourceExistsError
from azure.cosmos import PartitionKey
from pydantic import BaseModel

from shared.platform.clients import AzureClients, get_clients
from shared.platform.resources import BlobContainers, CosmosContainers, Queues, Tables, poison_queue

logger = logging.getLogger(__name__)


class BootstrapReport(BaseModel):
    tables: list[str]
    queues: list[str]
    blob_containers: list[str]
    cosmos_database: str
    cosmos_containers: list[str]


def bootstrap(clients: AzureClients) -> BootstrapReport:
    for table in Tables.ALL:
        clients.table_service.create_table_if_not_exists(table)

    queues = [name for queue in Queues.ALL for name in (queue, poison_queue(queue))]
    for name in queues:
        with contextlib.suppress(ResourceExistsError):
            clients.queue_service.create_queue(name)

    for container in BlobContainers.ALL:
        with contextlib.suppress(ResourceExistsError):
            clients.blob_service.create_container(container)

    database = clients.cosmos.create_database_if_not_exists(clients.settings.cosmos_database)
    retention_seconds = clients.settings.event_retention_days * 86400
    for spec in CosmosContainers.ALL:
        cosmos_container = database.create_container_if_not_exists(
            id=spec.name,
            partition_key=PartitionKey(path=spec.partition_key_path),
            indexing_policy=spec.indexing_policy(),
            default_ttl=retention_seconds if spec.ttl_from_retention else None,
        )
        if spec.ttl_from_retention and cosmos_container.read().get("defaultTtl") != retention_seconds:
            database.replace_container(
                cosmos_container,
                partition_key=PartitionKey(path=spec.partition_key_path),
                indexing_policy=spec.indexing_policy(),
                default_ttl=retention_seconds,
            )

    report = BootstrapReport(
        tables=list(Tables.ALL),
        queues=queues,
        blob_containers=list(BlobContainers.ALL),
        cosmos_database=clients.settings.cosmos_database,
        cosmos_containers=[spec.name for spec in CosmosContainers.ALL],
    )
    logger.info("bootstrap complete: %s", report.model_dump_json())
    return report


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    print(bootstrap(get_clients()).model_dump_json(indent=2))
