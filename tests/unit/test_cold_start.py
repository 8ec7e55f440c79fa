"""Each Lambda handler imports what its own function uses, and no more: a cold start pays for
every module its handler loads (`make bench` times them). Each handler is imported in a fresh
interpreter that sees LAMBDA_TASK_ROOT, as on Lambda (Powertools Tracer on), and the libraries
and layers it has no use for must be absent afterwards."""

from __future__ import annotations

import gc
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ferry.aws import metrics
from ferry.domain.outcomes import OutcomeKind
from ferry.import_phase import collector_paused

ROOT = Path(__file__).resolve().parents[2]

# Notification senders, GitHub's OIDC tokens, the CLI's output, git transport, the local stack:
# no handler needs them at import (Notify and the API load theirs when they send or verify).
# Nor boto3: clients come from a plain botocore session (ferry/aws/__init__.py).
NEVER = (
    *("apprise", "httpx", "requests", "jwt", "rich", "typer", "uvicorn", "moto", "docker"),
    "boto3",
)
NOT_AN_API = ("fastapi", "starlette", "mangum", "ferry.api")
ABOVE_DEPLOY = ("ferry.manage", "ferry.sync", "ferry.git", "dulwich", "ferry.outbound")
# cryptography's bindings load where a key is first made (security/crypto.py), which no deploy
# task does at import.
KEYS = ("cryptography",)

ABSENT: dict[str, tuple[str, ...]] = {
    # The API uses git/source's checks of SHAs and paths; only reading a branch needs dulwich.
    # FastAPI would import pydantic.v1 to refuse its models (ferry/api/pydantic_v1_detection.py).
    "functions.api.app": (*NEVER, "dulwich", "pydantic.v1"),
    "functions.deploy_tasks.mark_in_progress": NEVER + NOT_AN_API + ABOVE_DEPLOY + KEYS,
    # The slot is one conditional write: no message, no outcome table.
    "functions.deploy_tasks.acquire_deploy_slot": NEVER
    + NOT_AN_API
    + ABOVE_DEPLOY
    + KEYS
    + ("ferry.domain.messages", "ferry.domain.outcomes", "ferry.domain.bundle"),
    "functions.deploy_tasks.apply_deploy_result": NEVER + NOT_AN_API + ABOVE_DEPLOY + KEYS,
    "functions.deploy_tasks.notify_outcome": NEVER + NOT_AN_API + ABOVE_DEPLOY + KEYS,
    "functions.deploy_tasks.apply_undeploy_result": NEVER + NOT_AN_API + ABOVE_DEPLOY + KEYS,
    "functions.poller.app": NEVER + NOT_AN_API + ("dulwich", "ferry.git", "ferry.outbound"),
    "functions.sync_worker.app": NEVER
    + NOT_AN_API
    + ("dulwich", "ferry.git", "ferry.outbound", "ferry.manage"),
    "functions.sync_tasks.app": NEVER + NOT_AN_API + ("ferry.manage",),
}

_LOADED = """
import json, sys
import {module}
print(json.dumps(sorted(sys.modules)))
"""


# Collections that begin once the handler module runs, until its import ends. The pause's own
# module is loaded first (it imports the standard library only) and the counts are reset, so that
# the few objects the handler makes before it pauses cannot start one.
_COLLECTED = """
import gc, json, sys
import ferry.import_phase
collections = []
def started(phase, info):
    if phase == "start" and "{module}" in sys.modules:
        collections.append(info["generation"])
gc.callbacks.append(started)
gc.collect()
import {module}
gc.callbacks.remove(started)
print(json.dumps({{"collections": collections, "enabled": gc.isenabled(),
                  "frozen": gc.get_freeze_count()}}))
"""


def _run_fresh(script: str) -> str:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("FERRY_", "AWS_"))}
    environment["LAMBDA_TASK_ROOT"] = str(ROOT)
    completed = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env=environment,
        timeout=120,
    )
    return completed.stdout.splitlines()[-1]


def _loaded_by(module: str) -> set[str]:
    return set(json.loads(_run_fresh(_LOADED.format(module=module))))


def _is_loaded(name: str, loaded: set[str]) -> bool:
    return name in loaded or any(m.startswith(name + ".") for m in loaded)


def test_cold_start_every_handler_listed() -> None:
    handlers = {
        f"functions.{p.parent.name}.{p.stem}"
        for p in (ROOT / "functions").glob("*/*.py")
        if p.stem != "__init__"
    }

    assert handlers == set(ABSENT)


def test_cold_start_absent_libraries_installed() -> None:
    # Absence proves nothing about a library that is not there to be loaded.
    names = {name for names in ABSENT.values() for name in names}

    assert [n for n in sorted(names) if importlib.util.find_spec(n) is None] == []


@pytest.mark.parametrize("module", sorted(ABSENT))
def test_cold_start_handler_import_leaves_unused_modules_out(module: str) -> None:
    loaded = _loaded_by(module)

    assert module in loaded
    assert [name for name in ABSENT[module] if _is_loaded(name, loaded)] == []


@pytest.mark.parametrize("module", sorted(ABSENT))
def test_cold_start_handler_imports_with_the_collector_paused_and_freezes_them(
    module: str,
) -> None:
    # Before the pause a deploy task's import ran about 125 collections (ferry/import_phase.py).
    seen = json.loads(_run_fresh(_COLLECTED.format(module=module)))

    # The handler's own definitions after the pause may start a collection of the youngest
    # generation, which walks only what they made: nothing older is walked again.
    assert set(seen["collections"]) <= {0} and len(seen["collections"]) <= 2, seen
    assert seen["enabled"] is True
    assert seen["frozen"] > 10_000  # what the import made, out of later collections' way


def test_collector_paused_gives_the_collector_back_as_it_found_it() -> None:
    assert gc.isenabled()
    with collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()

    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()  # a process that had it off keeps it off
    finally:
        gc.enable()


def test_count_deploy_every_outcome_named() -> None:
    try:
        for kind in OutcomeKind:
            metrics.count_deploy(kind)
        names = set(metrics.metrics.metric_set)
    finally:
        metrics.metrics.clear_metrics()

    assert names == {"DeploysSucceeded", "DeploysFailed", "DeploysWithoutResult"}
