"""Cold-start import benchmark. Run: `.venv/bin/python bench/cold_start.py [--runs 15]`.

What a Functions worker pays before the first invocation is, mostly, `import function_app`. This
measures, in one run and alternating so that machine load hits both alike:

  sdk_import_s = median time for a fresh interpreter to import the app's runtime SDKs alone
                 (every distribution in requirements.txt, by its import name)
  app_import_s = median time for a fresh interpreter to `import function_app`
  ratio        = app_import_s / sdk_import_s                                  (target <= 1.3)

Each figure is measured inside the child (`time.perf_counter` around the import), so interpreter
start-up is left out of both. The last line is one JSON object:
{"app_import_s": …, "sdk_import_s": …, "ratio": …, "runs": n}.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
REQUIREMENT_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")

# Distributions whose import has no effect on the app's start (data only).
NOT_IMPORTED = {"tzdata"}

CHILD = """
import sys, time
sys.path.insert(0, {root!r})
start = time.perf_counter()
for name in {modules!r}:
    __import__(name)
print(time.perf_counter() - start)
"""


def runtime_distributions() -> list[str]:
    names = []
    for line in (PROJECT_ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines():
        match = REQUIREMENT_NAME.match(line.split("#", 1)[0])
        if match:
            names.append(match.group(1).lower().replace("_", "-"))
    return [name for name in names if name not in NOT_IMPORTED]


def sdk_modules() -> list[str]:
    """The import names of the runtime distributions, e.g. azure-cosmos -> azure.cosmos."""
    wanted = set(runtime_distributions())
    by_distribution: dict[str, set[str]] = {}
    for top_level, distributions in packages_distributions().items():
        for distribution in distributions:
            by_distribution.setdefault(distribution.lower().replace("_", "-"), set()).add(top_level)
    modules = []
    for distribution in sorted(wanted):
        tops = by_distribution.get(distribution, set())
        if "azure" in tops:
            # Namespace package: azure-storage-blob -> azure.storage.blob.
            modules.append(distribution.replace("-", "."))
        else:
            modules.extend(sorted(top for top in tops if not top.startswith("_")))
    return modules


def time_import(modules: list[str]) -> float:
    code = CHILD.format(root=str(PROJECT_ROOT), modules=modules)
    completed = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True
    )
    return float(completed.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="fresh interpreters per figure (>= 10)")
    args = parser.parse_args()
    runs = max(args.runs, 10)

    sdk = sdk_modules()
    print(f"SDK modules: {', '.join(sdk)}", file=sys.stderr, flush=True)
    time_import(sdk)  # warm the file cache and .pyc files for both sides
    time_import(["function_app"])
    sdk_times, app_times = [], []
    for _ in range(runs):
        sdk_times.append(time_import(sdk))
        app_times.append(time_import(["function_app"]))

    sdk_s = statistics.median(sdk_times)
    app_s = statistics.median(app_times)
    print(f"SDK modules: {', '.join(sdk)}", file=sys.stderr)
    print(
        json.dumps(
            {
                "app_import_s": round(app_s, 4),
                "sdk_import_s": round(sdk_s, 4),
                "ratio": round(app_s / sdk_s, 3),
                "runs": runs,
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
