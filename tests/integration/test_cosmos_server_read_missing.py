"""The local cosmosdb-server answers a point read of a missing document with 404, as Cosmos DB does
(devtools/cosmos_read_missing.js), so the SDK raises CosmosResourceNotFoundError at once instead of
retrying a 500."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from azure.cosmos import PartitionKey
from azure.cosmos.exceptions import CosmosResourceNotFoundError

from shared.platform.clients import AzureClients
from shared.platform.cosmos import read_or_none
from tests.support.own_database import own_cosmos_database


@pytest.fixture
def clients(app_environment: dict[str, str]) -> Iterator[AzureClients]:
    with own_cosmos_database("read-missing") as (_, clients):
        yield clients


def test_a_missing_document_is_a_404_and_a_present_one_is_read(clients: AzureClients) -> None:
    container = clients.cosmos_database.create_container(
        id=f"c-{uuid.uuid4().hex[:8]}", partition_key=PartitionKey(path="/pk")
    )
    container.create_item({"id": "present", "pk": "tenant-a", "value": 1})
    with pytest.raises(CosmosResourceNotFoundError) as missing:
        container.read_item("absent", partition_key="tenant-a")
    assert missing.value.status_code == 404
    with pytest.raises(CosmosResourceNotFoundError):
        container.read_item("present", partition_key="tenant-b")  # another partition: not found either
    assert container.read_item("present", partition_key="tenant-a")["value"] == 1
    assert read_or_none(container, "absent", "tenant-a") is None
    assert read_or_none(container, "present", "tenant-a") == container.read_item("present", "tenant-a")
