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
import os
import sys
import time
import traceback

os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")  # no EMF lines among the results

from bench.report import Row, markdown, table, write, write_rows

# cold_start first: a running stack would weigh on its figures; host last: it starts its own.
MODULES = ("cold_start", "spine", "ingest", "burst", "scale", "host")


def main() -> int:
    only = [m for m in os.environ.get("FERRY_BENCH_ONLY", "").split(",") if m]
    rows: list[Row] = []
    broken: list[str] = []
    started = time.monotonic()
    for name in MODULES:
        if only and name not in only:
            continue
        begun = time.monotonic()
        try:
            module = importlib.import_module(f"bench.{name}")
            measured: list[Row] = module.measure()
        except Exception:
            traceback.print_exc()
            broken.append(name)
            measured = [Row(f"{name} (did not run)", "error", "-", None, "-", False)]
        print(f"bench: {name} took {time.monotonic() - begun:.0f} s", file=sys.stderr)
        write_rows(f"{name}.json", measured)
        rows.extend(measured)
    write(
        "table.json",
        {"seconds": round(time.monotonic() - started), "rows": [r.__dict__ for r in rows]},
    )
    print(table(rows))
    print(f"\n{time.monotonic() - started:.0f} s; Markdown for docs/performance.md:\n")
    print(markdown(rows))
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
