"""Shared fixtures. Tests that need the local Azure services start them once per session.

Under CI=true a missing service is a failure, never a skip.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from devtools.services import LocalServices, ServiceError, ServicePorts
from tests.support.ci import service_missing


@pytest.fixture(scope="session")
def local_services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServices]:
    services = LocalServices(
        ports=ServicePorts.free(), state_dir=tmp_path_factory.mktemp("services"), in_memory=True
    )
    try:
        services.start()
    except ServiceError as exc:
        service_missing(str(exc))
    yield services
    services.stop()


@pytest.fixture(scope="session")
def app_environment(
    local_services: LocalServices, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, str]]:
    """Points this process's app settings at the test services and bootstraps them."""
    from shared.platform.bootstrap import bootstrap
    from shared.platform.clients import get_clients, reset_clients

    environment = {
        **local_services.app_environment(),
        "AOC_LOCAL_SETTINGS_FILE": str(tmp_path_factory.mktemp("settings") / "absent.json"),
        # The refresh_datasets timer (issue 19) refers to %DATASETS_REFRESH_SCHEDULE%: hosts need it too.
        "DATASETS_REFRESH_SCHEDULE": "0 0 0 1 1 *",
        # Bindings refer to %POLL_SCHEDULE%; hosts fail to start without it, as under func start.
        "POLL_SCHEDULE": "0 0 0 1 1 *",
        "GOVERNANCE_DISCOVERY_SCHEDULE": "0 0 0 1 1 *",
    }
    with pytest.MonkeyPatch.context() as patch:
        for name, value in environment.items():
            patch.setenv(name, value)
        reset_clients()
        bootstrap(get_clients())
        yield environment
    reset_clients()
