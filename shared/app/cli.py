"""Operator commands, for use inside or outside Functions.

python -m shared.app.cli renormalize --since 2026-11-01T00:00:00Z   rebuild events from raw blobs
python -m shared.app.cli probe --once                                one poll + probe cycle, as JSON
python -m shared.app.cli trigger-pipeline --organization O --project P --pipeline-id N [--branch B]
python -m shared.app.cli backfill-counts --from 2026-09-01 [--to 2026-12-07]  count days stored uncounted
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import sys

from shared.app.runtime import app_clock, event_store, ingest_service, poller, raw_archive, tenant_id
from shared.ingestion.messages import IngestMessage
from shared.platform.clock import parse_utc, utc_iso
from shared.platform.settings import get_settings
from shared.probe.devops import build_devops_client
from shared.probe.scopes import PipelineTarget

SOURCE_PREFIXES = ("entra_audit", "entra_signin", "intune_audit", "o365_management")


def _message_for(blob: str) -> IngestMessage:
    """Rebuild the claim check of an archived page from its name."""
    parts = blob.split("/")
    source = parts[0]
    content_type = parts[1] if source == "o365_management" else None
    run_id = parts[-1].rsplit("-", 1)[0]
    return IngestMessage(source=source, blob=blob, count=0, run_id=run_id, content_type=content_type)


def renormalize(since: dt.datetime, source: str | None, run_id: str | None = None) -> dict[str, int]:
    """Rewrite the events of every archived page since `since` with the current normalizers.

    The event store replaces each stored event with the new fields but keeps tags, comments and the first
    `ingested_at`, and moves facet counts to the new values. No alert work is queued: rules do not fire
    again for events they have already seen."""
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


def probe_once() -> dict[str, object]:
    """One poll and probe cycle with the app's settings and Table state, as the timer runs it."""
    report = poller().run()
    scopes = [
        {"scope": r.scope, "new_state": r.phase, "trigger": r.trigger.model_dump() if r.trigger else None,
         "reason": r.trigger.reason if r.trigger else None, "changes_seen": r.changes_seen}
        for r in report.probe
    ]  # fmt: skip
    return {"run_id": report.run_id, "scopes": scopes, "probe_error": report.probe_error}


def trigger_pipeline(organization: str, project: str, pipeline_id: int, branch: str) -> dict[str, object]:
    """Queue the backup pipeline directly (no probe state, no idempotency record)."""
    try:
        client = build_devops_client(get_settings())
    except ValueError as error:
        raise SystemExit(str(error)) from None
    target = PipelineTarget(
        organization=organization, project=project, pipeline_id=pipeline_id, branch=branch
    )
    run = client.run_pipeline(target, {})
    return {"run_id": run.get("id"), "state": run.get("state"), "url": run.get("url")}


def backfill_counts(first_day: dt.date, last_day: dt.date | None) -> dict[str, object]:
    """Count the events stored before the histogram's time counts began, day by day, so the histogram
    answers those days from the counts too (shared.ingestion.time_counts). Safe to run again."""
    now = app_clock().now()
    last = last_day or now.date()
    if last < first_day:
        raise SystemExit("--to is before --from")
    tenant = tenant_id()
    counted = event_store().backfill_counts(tenant, first_day, last, utc_iso(now))
    return {"tenant": tenant, "from": first_day.isoformat(), "to": last.isoformat(), "events": counted}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.app.cli")
    commands = parser.add_subparsers(dest="command", required=True)
    rebuild = commands.add_parser("renormalize", help="re-run normalization over archived raw pages")
    rebuild.add_argument("--since", required=True, help="ISO-8601 time: pages archived at or after it")
    rebuild.add_argument("--source", choices=SOURCE_PREFIXES, default=None)
    rebuild.add_argument("--run-id", default=None, help="only the pages of this poll run")
    probe = commands.add_parser("probe", help="run one poll and change-probe cycle and print the result")
    probe.add_argument("--once", action="store_true", required=True)
    trigger = commands.add_parser("trigger-pipeline", help="queue an Azure DevOps pipeline run now")
    trigger.add_argument("--organization", required=True)
    trigger.add_argument("--project", required=True)
    trigger.add_argument("--pipeline-id", type=int, required=True)
    trigger.add_argument("--branch", default="main")
    backfill = commands.add_parser("backfill-counts", help="count days stored before the time counts began")
    backfill.add_argument("--from", dest="first_day", type=dt.date.fromisoformat, required=True)
    backfill.add_argument("--to", dest="last_day", type=dt.date.fromisoformat, default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if args.command == "renormalize":
        totals = renormalize(parse_utc(args.since), args.source, args.run_id)
        print(" ".join(f"{k}={v}" for k, v in totals.items()))
    elif args.command == "probe":
        print(json.dumps(probe_once(), indent=2))
    elif args.command == "trigger-pipeline":
        print(json.dumps(trigger_pipeline(args.organization, args.project, args.pipeline_id, args.branch)))
    elif args.command == "backfill-counts":
        print(json.dumps(backfill_counts(args.first_day, args.last_day)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
