"""Operator commands. `python -m shared.cli renormalize --since 2026-11-01` rebuilds events from raw blobs."""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys

from shared.clock import parse_utc
from shared.messages import IngestMessage
from shared.runtime import ingest_service, raw_archive

SOURCE_PREFIXES = ("entra_audit", "entra_signin", "intune_audit", "o365_management")


def _message_for(blob: str) -> IngestMessage:
    """Rebuild the claim check of an archived page from its name."""
    parts = blob.split("/")
    source = parts[0]
    content_type = parts[1] if source == "o365_management" else None
    run_id = parts[-1].rsplit("-", 1)[0]
    return IngestMessage(source=source, blob=blob, count=0, run_id=run_id, content_type=content_type)


def renormalize(since: dt.datetime, source: str | None, run_id: str | None = None) -> dict[str, int]:
    totals = {"pages": 0, "records": 0, "stored": 0, "new": 0, "quarantined": 0}
    service = ingest_service()
    for blob in raw_archive().list_pages(source=source, since=since):
        if run_id and not blob.rsplit("/", 1)[-1].startswith(f"{run_id}-"):
            continue
        report = service.process(_message_for(blob))
        totals["pages"] += 1
        for key in ("records", "stored", "new", "quarantined"):
            totals[key] += getattr(report, key)
    return totals


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.cli")
    commands = parser.add_subparsers(dest="command", required=True)
    rebuild = commands.add_parser("renormalize", help="re-run normalization over archived raw pages")
    rebuild.add_argument("--since", required=True, help="ISO-8601 time: pages archived at or after it")
    rebuild.add_argument("--source", choices=SOURCE_PREFIXES, default=None)
    rebuild.add_argument("--run-id", default=None, help="only the pages of this poll run")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if args.command == "renormalize":
        totals = renormalize(parse_utc(args.since), args.source, args.run_id)
        print(" ".join(f"{k}={v}" for k, v in totals.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
