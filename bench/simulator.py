"""Tenant simulator generation benchmark. Run: `.venv/bin/python bench/simulator.py [--records 50000]`.

Generating a simulated day must stay linear in its size, or a large day (the ingestion e2e and the
benchmarks use 20,000 to 50,000 records) becomes the slow part of a run. Measured side by side in one run:

  per_record_ratio = generation time per record for --records
                     / generation time per record for a tenth as many    (target <= 1.5)

No local services are needed. The last line is one JSON object:
{"per_record_ratio": x, "records": n, "small_records": m}.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.timing import best_of
from devtools.simulator import SimulatorConfig
from devtools.simulator.generator import Tenant

EPOCH = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)


def generate(records: int) -> Tenant:
    return Tenant(SimulatorConfig(epoch=EPOCH, started_at_unix=0.0, events_per_day=records, seed=7))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    small = max(args.records // 10, 1)

    generate(small)  # warm up imports and caches
    large_seconds = best_of(args.runs, lambda: generate(args.records))
    small_seconds = best_of(args.runs, lambda: generate(small))
    ratio = (large_seconds / args.records) / (small_seconds / small)
    print(f"generated {args.records:,} records at {ratio:.2f}x the per-record cost of {small:,}")
    print(json.dumps({"per_record_ratio": round(ratio, 3), "records": args.records, "small_records": small}))
    return 0 if ratio <= 1.5 else 1


if __name__ == "__main__":
    raise SystemExit(main())
