"""Dataset export benchmark. Run: `.venv/bin/python bench/export.py [--rows 100000] [--runs 5]`.

Our path from a Log Analytics answer to TSV bytes against the plainest one the SDK allows, on the same
LogsQueryResult (one answer of `--rows` rows from the tenant simulator's Log Analytics query API, fetched
once with the real azure-monitor-query client; the fetch is not timed):

  ours = shared.datasets.log_analytics.table_rows (values rendered to text in the source's column
         order: datetimes as UTC ISO-8601 `Z`, numbers with repr) + shared.datasets.tsv.encode_tsv
         (escaping, UTF-8)
  sdk  = iterate table.rows, str() each value, join with tabs and newlines, encode (no escaping:
         a tab or newline inside a value breaks that file)

Measured side by side, interleaved, best of `--runs`:

  ratio = ours rows per second / sdk rows per second     (target >= 0.8)

It starts the simulator itself, over TLS with a throwaway local CA (no other service).
The last line is one JSON object:
{"rows", "ours_rows_per_second", "sdk_rows_per_second", "ratio", "ours_bytes", "render_share" (the share
of our time spent rendering; the rest is encode_tsv), "sdk_bytes", "target"}.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import requests
from azure.monitor.query import LogsQueryResult, LogsTable

from bench.timing import best_of_interleaved
from devtools.certs import ensure_local_certificates
from devtools.simulator import SimulatorConfig, TenantSimulator
from shared.datasets.log_analytics import build_logs_client, table_rows
from shared.datasets.sources import DatasetSource, load_default_sources
from shared.datasets.tsv import encode_tsv
from shared.m365.auth import StaticTokenProvider

EPOCH = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
WORKSPACE = "5b2e3c1d-7a9f-4e21-b3c4-d5e6f7a8b9c0"
TARGET = 0.8


def fetch(rows: int) -> tuple[DatasetSource, LogsTable]:
    """One answer of about `rows` rows of the shipped signin_failures source, through the real SDK."""
    source = load_default_sources().get("signin_failures")
    assert source is not None
    hours = 24
    config = SimulatorConfig(
        seed=19, events_per_day=10, epoch=EPOCH, started_at_unix=time.time() - 20 * 86_400
    )
    with (
        tempfile.TemporaryDirectory() as folder,
        TenantSimulator(config, certificates=ensure_local_certificates(Path(folder))) as sim,
    ):
        per_hour = -(-rows // hours)
        answer = requests.post(
            f"{sim.base_url}/_sim/loganalytics/volume",
            json={"rows_per_hour": {"SigninLogs": per_hour}},
            verify=str(sim.ca_cert),
            timeout=10,
        )
        answer.raise_for_status()
        token = sim.app.issue_token("https://api.loganalytics.io")
        client = build_logs_client(f"{sim.base_url}/v1", StaticTokenProvider(token), str(sim.ca_cert))
        end = sim.app.now() - dt.timedelta(hours=8)  # every row of the span is ingested by now
        result = client.query_workspace(
            WORKSPACE,
            source.render_query(),
            timespan=(end - dt.timedelta(hours=hours), end),
            server_timeout=600,
        )
    assert isinstance(result, LogsQueryResult), "the simulator answered partial"
    return source, result.tables[0]


def ours(source: DatasetSource, table: LogsTable) -> bytes:
    rows, _ = table_rows(source, table)
    return encode_tsv(source.columns, rows)


def sdk(table: LogsTable) -> bytes:
    lines = ["\t".join(table.columns)]
    for row in table.rows:
        lines.append("\t".join(str(value) for value in row))
    lines.append("")
    return "\n".join(lines).encode("utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    source, table = fetch(args.rows)
    count = len(table.rows)
    ours_bytes, sdk_bytes = len(ours(source, table)), len(sdk(table))  # also warms both paths up
    ours_seconds, sdk_seconds = best_of_interleaved(
        args.runs, lambda: ours(source, table), lambda: sdk(table)
    )
    ours_rate, sdk_rate = count / ours_seconds, count / sdk_seconds
    ratio = ours_rate / sdk_rate
    # Where our time goes: rendering (the runner) and encoding (the TSV), each beside the same baseline.
    rows, _ = table_rows(source, table)
    render_seconds, _ = best_of_interleaved(args.runs, lambda: table_rows(source, table), lambda: sdk(table))
    encode_seconds, _ = best_of_interleaved(
        args.runs, lambda: encode_tsv(source.columns, rows), lambda: sdk(table)
    )
    print(
        f"ours: rendering {render_seconds:.3f} s + encoding {encode_seconds:.3f} s;"
        f" the SDK's {sdk_seconds:.3f} s"
    )
    print(
        f"{count:,} rows: ours {ours_rate:,.0f} rows/s ({ours_bytes:,} bytes), the SDK's iteration"
        f" {sdk_rate:,.0f} rows/s ({sdk_bytes:,} bytes): ratio {ratio:.2f} (target >= {TARGET})"
    )
    print(
        json.dumps(
            {
                "rows": count,
                "ours_rows_per_second": round(ours_rate),
                "sdk_rows_per_second": round(sdk_rate),
                "ratio": round(ratio, 3),
                "ours_bytes": ours_bytes,
                "render_share": round(render_seconds / (render_seconds + encode_seconds), 3),
                "sdk_bytes": sdk_bytes,
                "target": TARGET,
            }
        )
    )
    return 0 if ratio >= TARGET else 1


if __name__ == "__main__":
    raise SystemExit(main())
