"""Against the local Cosmos DB: what an unchecked id does through the azure-cosmos SDK, and that the
storage helpers refuse it before the SDK sees it, leaving every document and the container as they were."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from azure.cosmos import ContainerProxy

from shared.alerts.store import AlertStore
from shared.platform.cosmos import read_or_none, replace_unchanged
from shared.platform.ids import UnsafeStorageIdError
from shared.platform.resources import CosmosContainers
from tests.support.own_database import own_cosmos_database


def _everything(container: ContainerProxy) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    items = container.query_items("SELECT * FROM c", enable_cross_partition_query=True)
    return dict(container.read()), sorted(items, key=lambda d: (d["pk"], d["id"]))


@pytest.fixture
def alerts(app_environment: dict[str, str]) -> Any:
    with own_cosmos_database("aoc-ids") as (_, clients):
        container = clients.cosmos_container(CosmosContainers.ALERTS.name)
        for tenant in ("tenant-a", "tenant-b"):
            container.create_item({"id": f"alert-{uuid.uuid4().hex}", "pk": tenant, "title": tenant})
        yield container


def test_the_sdk_puts_an_unchecked_id_into_the_path(alerts: ContainerProxy) -> None:
    """Why the check exists: '..' reads the container itself, '/' the documents of every tenant."""
    definition = alerts.read_item("..", partition_key="tenant-a")
    assert definition["id"] == CosmosContainers.ALERTS.name
    assert "partitionKey" in definition
    feed = alerts.read_item("/", partition_key="tenant-a")
    assert {d["pk"] for d in feed["Documents"]} == {"tenant-a", "tenant-b"}


@pytest.mark.parametrize("hostile", ["..", ".", "/", "a/../..", "..\\..", "x?y", "x#y", "%2F", "a\x00"])
def test_the_storage_helpers_refuse_an_unsafe_id_and_change_nothing(
    alerts: ContainerProxy, hostile: str
) -> None:
    before = _everything(alerts)
    store = AlertStore(alerts)
    with pytest.raises(UnsafeStorageIdError):
        read_or_none(alerts, hostile, "tenant-a")
    with pytest.raises(UnsafeStorageIdError):
        store.get("tenant-a", hostile)
    with pytest.raises(UnsafeStorageIdError):
        store.update("tenant-a", hostile, lambda alert: alert.update(title="replaced") is None)
    with pytest.raises(UnsafeStorageIdError):
        replace_unchanged(alerts, {"id": hostile, "pk": "tenant-a", "title": "replaced"}, None)
    assert _everything(alerts) == before


def test_a_safe_id_still_reads_and_replaces(alerts: ContainerProxy) -> None:
    store = AlertStore(alerts)
    existing = next(
        iter(alerts.query_items("SELECT * FROM c WHERE c.pk = 'tenant-a'", partition_key="tenant-a"))
    )
    found = store.get("tenant-a", existing["id"])
    assert found is not None
    assert found["title"] == "tenant-a"
    assert store.get("tenant-a", f"alert-{uuid.uuid4().hex}") is None
    stored = store.update("tenant-a", existing["id"], lambda alert: alert.update(title="seen") is None)
    assert stored is not None
    assert stored["title"] == "seen"
