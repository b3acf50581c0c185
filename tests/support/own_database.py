"""A Cosmos database of a test's own: cosmosdb-server scans a whole container for every query, so a
large corpus in the shared database would slow every later test that queries it."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

import pytest

from shared.platform.bootstrap import bootstrap
from shared.platform.clients import AzureClients, get_clients, reset_clients


@contextlib.contextmanager
def own_cosmos_database(prefix: str) -> Iterator[tuple[str, AzureClients]]:
    """Point COSMOS_DATABASE at a new, bootstrapped database; drop it afterwards."""
    database = f"{prefix}-{uuid.uuid4().hex[:8]}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("COSMOS_DATABASE", database)
        reset_clients()
        clients = get_clients()
        bootstrap(clients)
        try:
            yield database, clients
        finally:
            get_clients().cosmos.delete_database(database)
            reset_clients()
