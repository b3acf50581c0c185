"""`make run`: local services, bootstrap, then the local Functions host on http://127.0.0.1:7071."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

from devtools.host.__main__ import configure_logging, serve
from devtools.host.app import HostOptions, LocalFunctionsHost
from devtools.services import (
    LOCAL_STATE_DIR,
    PROJECT_ROOT,
    LocalServices,
    ServiceError,
    ServicePorts,
    ensure_port_free,
)
from devtools.simulator import DEFAULT_TENANT_ID, SimulatorConfig, TenantSimulator

DEFAULT_PORTS = ServicePorts()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m devtools.run", description=__doc__)
    parser.add_argument("--port", type=int, default=7071, help="HTTP port of the Functions host")
    parser.add_argument("--blob-port", type=int, default=DEFAULT_PORTS.blob)
    parser.add_argument("--queue-port", type=int, default=DEFAULT_PORTS.queue)
    parser.add_argument("--table-port", type=int, default=DEFAULT_PORTS.table)
    parser.add_argument("--cosmos-port", type=int, default=DEFAULT_PORTS.cosmos)
    parser.add_argument("--state-dir", type=Path, default=LOCAL_STATE_DIR, help="data, logs, certificates")
    parser.add_argument("--verbose", action="store_true")
    return parser.parse_args(argv)


def start_simulator_if_configured() -> TenantSimulator | None:
    """Start the tenant simulator when the app's Microsoft endpoints point at this machine."""
    names = ("M365_AUTHORITY_HOST", "GRAPH_BASE_URL", "MANAGEMENT_BASE_URL")
    loopback = [urlsplit(os.environ[n]) for n in names if os.environ.get(n)]
    loopback = [u for u in loopback if u.hostname in ("127.0.0.1", "localhost")]
    if not loopback:
        return None
    port = loopback[0].port or 80
    ensure_port_free(port, "tenant simulator")
    now = time.time()
    config = SimulatorConfig(
        tenant_id=os.environ.get("M365_TENANT_ID") or DEFAULT_TENANT_ID,
        epoch=dt.datetime.fromtimestamp(now - 86400, dt.UTC),  # a day of activity that just ended
        started_at_unix=now - 86400,  # the simulator's clock reads real time, as the app's does
    )
    return TenantSimulator(config, port=port).start()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    configure_logging(args.verbose)

    settings_file = PROJECT_ROOT / "local.settings.json"
    if not settings_file.exists():
        shutil.copy(PROJECT_ROOT / "local.settings.json.example", settings_file)
        print(f"created {settings_file.name} from local.settings.json.example")

    ports = ServicePorts(
        blob=args.blob_port, queue=args.queue_port, table=args.table_port, cosmos=args.cosmos_port
    )
    services = LocalServices(ports=ports, state_dir=args.state_dir)
    try:
        ensure_port_free(args.port, "local Functions host")
        services.start()
    except ServiceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        if ports != DEFAULT_PORTS or args.state_dir != LOCAL_STATE_DIR:
            # Non-default ports: point the app at them. The environment wins over local.settings.json.
            os.environ.update(services.app_environment())
        host = LocalFunctionsHost(HostOptions(app_dir=PROJECT_ROOT, port=args.port))
        simulator = start_simulator_if_configured()
        # The host has loaded local.settings.json into the environment; the bootstrap reads it.
        from shared.platform.bootstrap import bootstrap
        from shared.platform.clients import get_clients

        bootstrap(get_clients())
        print(f"Azurite: blob {ports.blob}, queue {ports.queue}, table {ports.table}")
        print(f"cosmosdb-server: {services.cosmos_endpoint}")
        if simulator is not None:
            print(
                f"tenant simulator: {simulator.base_url}  (remove the 127.0.0.1 base URLs to use Microsoft)"
            )
        print(f"Health: http://127.0.0.1:{args.port}/api/health  (Ctrl-C stops everything)")
        try:
            serve(host)
        finally:
            if simulator is not None:
                simulator.stop()
    finally:
        services.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
