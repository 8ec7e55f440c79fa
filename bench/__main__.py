"""`make bench`: every figure of issues 14 and 17 in one run, each against a baseline measured
in the same run (so ratios compare across machines), printed as one table and written to
bench/results/ (one JSON file per module, and table.json).

One module per figure: cold_start (handler imports), spine (webhook → agent queue, store calls),
ingest (webhook throughput and latency), burst (200 deliveries for 5 commits), scale (issue 14:
500 applications, t(100)/t(1), registering, transitions), host (a real `ferry up`: idle CPU, the
agent's memory, push → synced). `FERRY_BENCH_ONLY=spine,burst` runs some of them.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import time
from dataclasses import asdict

os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")  # no EMF lines among the results

from bench.report import RESULTS, Row, markdown, table, write, write_rows

# cold_start first: a running stack would weigh on its figures; host last: it starts its own.
MODULES = ("cold_start", "spine", "ingest", "burst", "scale", "host")


def run_one(name: str) -> int:
    """Measure one module in this process and write its rows to bench/results/<name>.json."""
    module = importlib.import_module(f"bench.{name}")
    measured: list[Row] = module.measure()
    write_rows(f"{name}.json", measured)
    return 0


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "--one":
        return run_one(sys.argv[2])
    only = [m for m in os.environ.get("FERRY_BENCH_ONLY", "").split(",") if m]
    rows: list[Row] = []
    broken: list[str] = []
    started = time.monotonic()
    for name in MODULES:
        if only and name not in only:
            continue
        begun = time.monotonic()
        # Each module in a fresh interpreter: a stack's process-wide hooks (IAM signing, moto's
        # patches) end with it, and no module's leftovers weigh on the next one's figures.
        (RESULTS / f"{name}.json").unlink(missing_ok=True)
        done = subprocess.run([sys.executable, "-W", "ignore", "-m", "bench", "--one", name])
        if done.returncode == 0:
            rows.extend(Row(**row) for row in json.loads((RESULTS / f"{name}.json").read_text()))
        else:
            broken.append(name)
            rows.append(Row(f"{name} (did not run)", "error", "-", None, "-", False))
        print(f"bench: {name} took {time.monotonic() - begun:.0f} s", file=sys.stderr)
    seconds = round(time.monotonic() - started)
    write("table.json", {"seconds": seconds, "rows": [asdict(r) for r in rows]})
    print(table(rows))
    print(f"\n{seconds} s; the same table in Markdown (docs/performance.md):\n")
    print(markdown(rows))
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
