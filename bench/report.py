"""One row per figure: what Ferry measured, the baseline measured in the same run, their ratio,
the goal and whether it is met; printed as one table and written to bench/results/."""

from __future__ import annotations

import json
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"


@dataclass
class Row:
    figure: str
    ferry: str  # the measured value, with its unit
    baseline: str  # what it is compared with ("-" for an absolute goal)
    ratio: float | None  # ferry / baseline, when both are times or rates
    goal: str
    met: bool
    details: dict[str, Any] = field(default_factory=dict)  # counts, samples, what was measured


def median_ms(samples: list[float]) -> float:
    return round(statistics.median(samples) * 1000, 1)


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def write(name: str, result: Any) -> None:
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / name).write_text(
        json.dumps(result, indent=2, ensure_ascii=False, default=str) + "\n"
    )


def write_rows(name: str, rows: list[Row]) -> None:
    write(name, [asdict(row) for row in rows])


def table(rows: list[Row]) -> str:
    header = ("figure", "Ferry", "baseline", "ratio", "goal", "met")
    lines = [
        (
            row.figure,
            row.ferry,
            row.baseline,
            "-" if row.ratio is None else f"{row.ratio:g}x",
            row.goal,
            "yes" if row.met else "no",
        )
        for row in rows
    ]
    widths = [max(len(cells[i]) for cells in [header, *lines]) for i in range(len(header))]
    return "\n".join(
        " | ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)).rstrip()
        for cells in [header, *lines]
    )


def markdown(rows: list[Row]) -> str:
    """The same table for docs/performance.md."""
    out = ["| figure | Ferry | baseline | ratio | goal | met |", "|---|---|---|---|---|---|"]
    for row in rows:
        ratio = "-" if row.ratio is None else f"{row.ratio:g}x"
        out.append(
            f"| {row.figure} | {row.ferry} | {row.baseline} | {ratio} | {row.goal} | "
            f"{'yes' if row.met else 'no'} |"
        )
    return "\n".join(out)
