"""Cold start: how long importing a Lambda handler takes in a fresh interpreter, against a bare
import of the libraries it cannot do without, timed in the same run on the same machine.

Each figure is the median of ROUNDS fresh interpreters (Ferry and baseline alternate, so a busy
moment weighs on both). Only the import is timed, not the interpreter's own start, and in CPU
time of the process: an import is one thread's work on files the first run brought into the
page cache, and on a machine shared with other work the wall clock mostly measured the wait for
a core (baselines twice as long as on a quiet machine, ratios from 1.3x to 1.8x for one tree). The
interpreters see LAMBDA_TASK_ROOT as on Lambda, so Powertools Tracer is on and patches botocore,
and X-Ray's SDK takes its Lambda path (outside Lambda it would build two botocore clients for its
sampling rules, a cost Lambda never pays).

Ferry's own modules are compiled to bytecode before the timing, as the layer ships them
(layers/core/Makefile): the libraries of both sides already load from the bytecode pip wrote, and
timing Ferry from source would add compiling it, a cost Lambda no longer pays.

Each deploy-task Lambda imports its own handler module (functions/deploy_tasks/<task>.py), so
each is timed on its own and the row reports the slowest; the details hold every one.
"""

from __future__ import annotations

import compileall
import os
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench.report import Row

ROOT = Path(__file__).resolve().parents[1]
# What the layer and the functions' code hold of Ferry's own (the libraries are installed).
FERRY_SOURCES = (ROOT / "layers" / "core" / "ferry", ROOT / "functions")

ROUNDS = int(os.environ.get("FERRY_BENCH_IMPORT_ROUNDS", "5"))

_TIMED_IMPORT = """
import time
started = time.process_time()
{statement}
print(time.process_time() - started)
"""


@dataclass(frozen=True)
class Figure:
    figure: str
    ferry: tuple[str, ...]  # the handler modules, one Lambda function each
    baseline: str
    goal: float  # the ratio each handler stays within
    # What any handler built on the same instrumented libraries pays before a line of Ferry, timed
    # in the same rounds and reported beside the ratio (None: no such figure).
    floor: str | None = None


_DEPLOY_TASKS = (
    "mark_in_progress",
    "acquire_deploy_slot",
    "apply_deploy_result",
    "notify_outcome",
    "apply_undeploy_result",
)

FIGURES = (
    Figure("API handler import", ("functions.api.app",), "fastapi, mangum, pydantic, boto3", 1.5),
    Figure(
        "deploy-task handlers import (slowest)",
        tuple(f"functions.deploy_tasks.{task}" for task in _DEPLOY_TASKS),
        "pydantic, boto3",
        1.2,
        # The wrappers every deploy task wears (ferry/aws/handlers.py: Logger, Metrics, Tracer
        # patching botocore), the table models' library, and pydantic's models: a bare
        # `import pydantic` loads no model machinery, and the first model a process defines
        # loads the rest of it (about 17 ms; the next one costs under 1 ms). Not boto3: Ferry's
        # clients come from botocore alone (ferry/aws/__init__.py), as pynamodb's do.
        floor=(
            "import pydantic, pynamodb.models\n"
            "from pydantic import BaseModel\n"
            "class FirstModel(BaseModel):\n"
            "    field: int = 0\n"
            "from aws_lambda_powertools import Logger, Metrics, Tracer\n"
            "Logger(); Metrics(); Tracer(patch_modules=('botocore',))"
        ),
    ),
)


def _seconds(statement: str) -> float:
    # A clean environment: no configuration the handlers would read, no bytecode writes.
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("FERRY_", "AWS_"))}
    environment["PYTHONDONTWRITEBYTECODE"] = "1"
    environment["LAMBDA_TASK_ROOT"] = tempfile.gettempdir()
    completed = subprocess.run(
        [sys.executable, "-c", _TIMED_IMPORT.format(statement=statement)],
        capture_output=True,
        text=True,
        check=True,
        env=environment,
    )
    return float(completed.stdout.strip().splitlines()[-1])


def compile_ferry() -> None:
    """Bytecode for Ferry's modules, next to them. Timestamp-checked, unlike the layer's
    unchecked bytecode: in a working tree an edited module must not run its old bytecode."""
    for directory in FERRY_SOURCES:
        if not compileall.compile_dir(directory, quiet=1, workers=0):
            raise RuntimeError(f"{directory} does not compile")


def measure_figure(figure: Figure, rounds: int = ROUNDS) -> dict[str, object]:
    ferry: dict[str, list[float]] = {module: [] for module in figure.ferry}
    baseline: list[float] = []
    floor: list[float] = []
    _seconds(f"import {figure.ferry[0]}")  # a first run warms the file system cache for all
    for _ in range(rounds):
        for module, samples in ferry.items():
            samples.append(_seconds(f"import {module}"))
        baseline.append(_seconds(f"import {figure.baseline}"))
        if figure.floor is not None:
            floor.append(_seconds(figure.floor))
    medians = {module: statistics.median(samples) for module, samples in ferry.items()}
    slowest = max(medians, key=lambda module: medians[module])
    ratio = medians[slowest] / statistics.median(baseline)
    return {
        "figure": figure.figure,
        "imports": slowest,
        "baseline": figure.baseline,
        "goal": figure.goal,
        "rounds": rounds,
        "ferry_median_ms": round(medians[slowest] * 1000, 1),
        "each_median_ms": {module: round(m * 1000, 1) for module, m in medians.items()},
        "baseline_median_ms": round(statistics.median(baseline) * 1000, 1),
        "ratio": round(ratio, 2),
        "met": ratio <= figure.goal,
        "floor_ratio": round(statistics.median(floor) / statistics.median(baseline), 2)
        if floor
        else None,
    }


def measure() -> list[Row]:
    compile_ferry()
    rows = []
    for figure in FIGURES:
        result = measure_figure(figure)
        rows.append(
            Row(
                figure=figure.figure,
                ferry=f"{result['ferry_median_ms']} ms",
                baseline=f"{result['baseline_median_ms']} ms (import {figure.baseline})",
                ratio=float(str(result["ratio"])),
                goal=f"<= {figure.goal:g}x",
                met=bool(result["met"]),
                details={
                    "imports": result["imports"],
                    "each_median_ms": result["each_median_ms"],
                    "rounds": result["rounds"],
                    **(
                        {"instrumented_floor_ratio": result["floor_ratio"]}
                        if result["floor_ratio"] is not None
                        else {}
                    ),
                },
            )
        )
    return rows
