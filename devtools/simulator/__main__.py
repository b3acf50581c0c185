"""`python -m devtools.simulator`: run the tenant simulator until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import datetime as dt
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from devtools.simulator.config import DEFAULT_TENANT_ID, SimulatorConfig
from devtools.simulator.server import TenantSimulator


def _epoch(text: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


def _rate(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not within [0, 1]")
    return value


def _pipeline(text: str) -> tuple[int, str]:
    pid, _, name = text.partition("=")
    if not pid.isdigit() or int(pid) <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not ID or ID=NAME with a positive integer ID")
    return int(pid), name or f"pipeline-{pid}"


def build_parser() -> argparse.ArgumentParser:
    defaults = SimulatorConfig.__dataclass_fields__
    parser = argparse.ArgumentParser(
        prog="python -m devtools.simulator",
        description="A deterministic fake Microsoft 365 tenant: Entra token endpoint, Graph audit APIs, "
        "the Office 365 Management Activity API and Azure DevOps pipeline runs.",
    )
    parser.add_argument("--port", type=int, default=7072, help="TCP port on 127.0.0.1 (0 = any free port)")
    parser.add_argument("--tenant-id", default=DEFAULT_TENANT_ID)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--events-per-day", type=int, default=2000, help="records in the simulated day, all sources"
    )
    parser.add_argument(
        "--epoch", type=_epoch, default=None, help="ISO start of the simulated day (default: now - 1 day)"
    )
    parser.add_argument("--speed", type=float, default=1.0, help="simulated seconds per real second")
    parser.add_argument(
        "--started-at",
        type=float,
        default=None,
        help="Unix time at which the sim clock reads the epoch (default: now)",
    )
    parser.add_argument(
        "--graph-max-delay",
        type=float,
        default=defaults["graph_max_delay_seconds"].default,
        help="Graph propagation delay, uniform 0..N sim seconds",
    )
    parser.add_argument(
        "--management-max-delay",
        type=float,
        default=defaults["management_max_delay_seconds"].default,
        help="latest publication of a content blob after its events, sim seconds",
    )
    parser.add_argument("--throttle-rate", type=_rate, default=0.0)
    parser.add_argument("--throttle-without-retry-after", type=_rate, default=0.5)
    parser.add_argument("--server-error-rate", type=_rate, default=0.0)
    parser.add_argument("--duplicate-across-pages-rate", "--duplicate-rate", type=_rate, default=0.0)
    parser.add_argument("--malformed-rate", type=_rate, default=0.0)
    parser.add_argument(
        "--retry-after", type=int, default=1, help="Retry-After seconds on throttled Graph calls"
    )
    parser.add_argument(
        "--devops-pat",
        default=defaults["devops_pat"].default,
        help="the personal access token the fake Azure DevOps accepts (Basic auth, any user name)",
    )
    parser.add_argument(
        "--devops-pipeline",
        dest="devops_pipelines",
        action="append",
        type=_pipeline,
        default=None,
        metavar="ID[=NAME]",
        help="a pipeline every organization/project has (repeatable; default: 1, 2 and 3)",
    )
    parser.add_argument(
        "--devops-server-error-rate",
        type=_rate,
        default=0.0,
        help="share of accepted DevOps calls answered 500/503 (own deterministic counter)",
    )
    parser.add_argument(
        "--service-principals",
        type=int,
        default=defaults["service_principals"].default,
        help="live service principals of the tenant (13..100000), generated from the seed",
    )
    parser.add_argument(
        "--tls-dir", type=Path, default=None,
        help="serve https with a local CA and certificate kept in this directory (msal requires https)",
    )  # fmt: skip
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    config = SimulatorConfig(
        tenant_id=args.tenant_id,
        seed=args.seed,
        events_per_day=args.events_per_day,
        epoch=args.epoch or (dt.datetime.now(dt.UTC) - dt.timedelta(days=1)).replace(microsecond=0),
        speed=args.speed,
        started_at_unix=args.started_at if args.started_at is not None else time.time(),
        graph_max_delay_seconds=args.graph_max_delay,
        management_max_delay_seconds=args.management_max_delay,
        throttle_rate=args.throttle_rate,
        throttle_without_retry_after=args.throttle_without_retry_after,
        server_error_rate=args.server_error_rate,
        duplicate_across_pages_rate=args.duplicate_across_pages_rate,
        malformed_rate=args.malformed_rate,
        retry_after_seconds=args.retry_after,
        devops_pat=args.devops_pat,
        devops_server_error_rate=args.devops_server_error_rate,
        service_principals=args.service_principals,
        **({"devops_pipelines": tuple(args.devops_pipelines)} if args.devops_pipelines else {}),
    )
    certificates = None
    if args.tls_dir is not None:
        from devtools.certs import ensure_local_certificates

        certificates = ensure_local_certificates(args.tls_dir)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    simulator = TenantSimulator(config, port=args.port, certificates=certificates)
    try:
        simulator.start()
    except OSError as exc:
        print(f"error: cannot listen on 127.0.0.1:{args.port}: {exc}", file=sys.stderr)
        return 2
    try:
        if certificates is not None:
            print(f"CA certificate: {certificates.ca_cert}", file=sys.stderr, flush=True)
        print(f"tenant simulator ready on {simulator.base_url}", flush=True)
        while not stop.wait(timeout=1.0):
            pass
    finally:
        simulator.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
