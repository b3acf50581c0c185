"""Re-normalization benchmark. Run: `.venv/bin/python bench/renormalize.py [--records 20000]`.

Starts its own Azurite and cosmosdb-server on free loopback ports, archives the tenant simulator's
records as raw pages the way the poller hands them off, ingests them once (the ingest worker's service,
page by page), then runs `python -m shared.app.cli renormalize` over the same pages, which rewrites every
stored event in place (create, 409, read, replace under the ETag, keeping tags, comments and
`ingested_at`). Directory-name enrichment is off in both runs: it is a Graph cost of its own, cached by
object id, and would hide the storage cost being measured.

Prints seconds per 100,000 events for both (absolute: extrapolated from this machine, for orientation
only) and the ratio renormalize / first ingest of the same records, measured side by side. The last
line is one JSON object with the figures and the record count.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.ingest import PAGE_SIZE, TENANT_ID, build_corpus
from devtools.services import LocalServices, ServicePorts

MANAGEMENT = "o365_management"
PER = 100_000


def content_type(record: dict[str, Any]) -> str:
    """The Management Activity API content type a record would have been fetched under."""
    workload = str(record.get("Workload") or "").casefold()
    if str(record.get("Operation") or "").casefold().startswith("dlp"):
        return "DLP.All"
    if workload == "exchange":
        return "Audit.Exchange"
    if workload in ("sharepoint", "onedrive"):
        return "Audit.SharePoint"
    if workload == "azureactivedirectory":
        return "Audit.AzureActiveDirectory"
    return "Audit.General"


def archive_pages(
    corpus: list[tuple[str, dict[str, Any]]], run_id: str, run_started: dt.datetime
) -> list[str]:
    """Write the corpus as raw pages of PAGE_SIZE records; returns the blob names."""
    from shared.app.runtime import raw_archive
    from shared.ingestion.archive import raw_blob_name

    by_prefix: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for source, record in corpus:
        prefix = f"{source}/{content_type(record)}" if source == MANAGEMENT else source
        by_prefix[prefix].append(record)
    archive = raw_archive()
    blobs = []
    page = 0
    for prefix, records in sorted(by_prefix.items()):
        for offset in range(0, len(records), PAGE_SIZE):
            page += 1
            blob = raw_blob_name(prefix, run_started, run_id, page)
            archive.write_page(blob, records[offset : offset + PAGE_SIZE])
            blobs.append(blob)
    return blobs


def first_ingest(blobs: list[str]) -> tuple[float, int]:
    """The ingest worker's service over every page, one page at a time as renormalize does."""
    from shared.app.cli import _message_for  # the claim check renormalize rebuilds
    from shared.app.runtime import ingest_service

    service = ingest_service()
    started = time.perf_counter()
    stored = sum(service.process(_message_for(blob)).stored for blob in blobs)
    return time.perf_counter() - started, stored


def rebuild(since: dt.datetime, run_id: str) -> tuple[float, dict[str, int]]:
    from shared.app.cli import renormalize

    started = time.perf_counter()
    totals = renormalize(since, source=None, run_id=run_id)
    return time.perf_counter() - started, totals


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=20000, help="raw records to archive (default 20,000)")
    args = parser.parse_args()

    config, corpus = build_corpus(args.records)
    print(f"corpus: {len(corpus)} records from the tenant simulator (seed {config.seed})")

    state = Path(tempfile.mkdtemp(prefix="aoc-bench-renormalize-"))
    services = LocalServices(ports=ServicePorts.free(), state_dir=state, in_memory=True)
    services.start()
    try:
        os.environ.update(services.app_environment())
        os.environ.update(
            {
                "AOC_LOCAL_SETTINGS_FILE": str(state / "absent.json"),
                "M365_TENANT_ID": TENANT_ID,
                "ENRICHMENT_ENABLED": "false",
            }
        )
        from shared.platform.bootstrap import bootstrap
        from shared.platform.clients import get_clients

        bootstrap(get_clients())

        run_id = uuid.uuid4().hex[:12]
        run_started = dt.datetime.now(dt.UTC)
        blobs = archive_pages(corpus, run_id, run_started)
        print(f"archived {len(blobs)} pages")

        ingest_seconds, stored = first_ingest(blobs)
        print(f"first ingest: {stored} events in {ingest_seconds:.1f}s")
        renormalize_seconds, totals = rebuild(run_started - dt.timedelta(minutes=5), run_id)
        print(f"renormalize: {totals} in {renormalize_seconds:.1f}s")
        if totals["stored"] != stored or totals["new"] != 0:
            raise SystemExit(f"renormalize stored {totals['stored']} (new {totals['new']}), ingest {stored}")

        renormalize_per = PER * renormalize_seconds / stored
        ingest_per = PER * ingest_seconds / stored
        ratio = renormalize_seconds / ingest_seconds
        print(
            f"renormalize {renormalize_per:.0f}s per {PER:,} events, first ingest {ingest_per:.0f}s per "
            f"{PER:,} events (extrapolated on this machine); renormalize / first ingest {ratio:.2f}x"
        )
        print(
            json.dumps(
                {
                    "renormalize_seconds_per_100k_events": round(renormalize_per, 1),
                    "ingest_seconds_per_100k_events": round(ingest_per, 1),
                    "renormalize_vs_first_ingest": round(ratio, 3),
                    "records": len(corpus),
                    "events": stored,
                }
            )
        )
    finally:
        services.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
