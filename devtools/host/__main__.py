"""`python -m devtools.host`: run function_app.py locally, as `func start` would."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path

from devtools.host.app import HostOptions, LocalFunctionsHost
from devtools.host.config import HostConfigError


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m devtools.host", description=__doc__)
    parser.add_argument("--app-dir", type=Path, default=Path.cwd(), help="folder with function_app.py")
    parser.add_argument("--port", type=int, default=None, help="HTTP port (default: 7071)")
    parser.add_argument("--bind", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--local-settings", type=Path, default=None, help="local.settings.json path")
    parser.add_argument("--keys-file", type=Path, default=None, help="host keys JSON path")
    parser.add_argument(
        "--console-dir", type=Path, default=None,
        help="built console served at / (default: <app-dir>/web/dist when built)",
    )  # fmt: skip
    parser.add_argument("--no-console", action="store_true", help="serve no console at /")
    parser.add_argument("--verbose", action="store_true")
    return parser.parse_args(argv)


def configure_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stdout,
    )
    for noisy in ("azure", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def serve(host: LocalFunctionsHost) -> None:
    """Run until SIGINT or SIGTERM, then stop cleanly."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    host.start()
    try:
        while not stop.wait(timeout=1.0):
            pass
    finally:
        host.stop()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    configure_logging(args.verbose)
    try:
        host = LocalFunctionsHost(
            HostOptions(
                app_dir=args.app_dir,
                port=args.port,
                bind=args.bind,
                local_settings=args.local_settings,
                keys_file=args.keys_file,
                console_dir=args.console_dir,
                serve_console=not args.no_console,
            )
        )
    except OSError as exc:
        if exc.errno == 98:
            print(f"error: port {args.port or 7071} is already in use", file=sys.stderr)
            return 2
        raise
    except HostConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    serve(host)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
