"""Rule evaluation benchmark. Run: `.venv/bin/python bench/rules.py [--records 20000]`.

Renders a simulated tenant day (every source, every template, realistic mix), then measures in one run:

  rules_vs_normalize = time to evaluate the default rule pack on every normalized event
                       / time to normalize the same raw records            (target <= 0.5)

Rule evaluation here is the in-memory match (RuleSet.match), the part that runs for every event; the
ledger and alert writes happen only for the few events that match. No local services are needed.
The last line is one JSON object: {"rules_vs_normalize": x, "rules": n}.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.timing import best_of
from devtools.simulator import SimulatorConfig
from devtools.simulator.generator import Tenant
from devtools.simulator.render import render
from shared.ingestion.normalize import normalize_record
from shared.rules.engine import BusinessHours
from shared.rules.source import DEFAULT_RULES_FILE, compile_rules

TENANT_ID = "00000000-0000-0000-0000-0000000000cc"
INGESTED_AT = "2026-11-22T00:00:00.000Z"


def build_corpus(records: int) -> list[tuple[str, dict[str, Any]]]:
    now = time.time()
    config = SimulatorConfig(
        tenant_id=TENANT_ID,
        seed=11,
        events_per_day=records,
        epoch=dt.datetime.fromtimestamp(now, dt.UTC) - dt.timedelta(days=2),
        started_at_unix=now - 2 * 86400,
    )
    tenant = Tenant(config)
    return [(r.source, render(r, tenant.render_context)) for r in tenant.records if not r.malformed]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20_000)
    args = parser.parse_args()

    corpus = build_corpus(args.records)
    hours = BusinessHours.parse("08:00-18:00", "Mon-Fri", "Europe/London")
    rule_set = compile_rules(DEFAULT_RULES_FILE.read_text(encoding="utf-8"), hours, "default")
    events = [
        normalize_record(source, record, tenant_id=TENANT_ID, ingested_at=INGESTED_AT)
        for source, record in corpus
    ]

    def normalize() -> None:
        for source, record in corpus:
            normalize_record(source, record, tenant_id=TENANT_ID, ingested_at=INGESTED_AT)

    def evaluate() -> None:
        match = rule_set.match
        for event in events:
            match(event)

    normalize()
    evaluate()
    normalize_seconds = best_of(5, normalize)
    rules_seconds = best_of(5, evaluate)
    ratio = rules_seconds / normalize_seconds

    fired: Counter[str] = Counter()
    for event in events:
        fired.update(c.id for c in rule_set.match(event))
    rules = len(rule_set.compiled)
    print(f"events: {len(events)} from {Counter(s for s, _ in corpus)}")
    print(f"rules in the default pack: {rules}")
    print(f"matches per rule: {dict(sorted(fired.items()))}")
    print(f"normalize: {normalize_seconds / len(events) * 1e6:.1f} us/event (reference)")
    print(f"rules:     {rules_seconds / len(events) * 1e6:.1f} us/event (reference)")
    print(f"rules_vs_normalize = {ratio:.3f}  (target <= 0.5)")
    print(json.dumps({"rules_vs_normalize": round(ratio, 3), "rules": rules}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
