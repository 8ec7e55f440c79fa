"""The OpenAPI document is the truth: schemathesis generates requests from it (valid and
malformed) against the live local stack, as the admin and as an agent, and every answer must be
documented, of the documented shape, and never a server error. What it creates is removed after.

The run is bounded (a few examples per operation, a fixed seed) to keep the suite's time modest;
`FERRY_FUZZ_EXAMPLES` raises it for a deeper look. Records that existed before the run are never
aimed at (tests/fuzz_hooks.py): the session's other tests own them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ferry.local.stack import LocalStack
from ferry.store.tables import CounterRow
from tests.helpers import create_agent

SCHEMATHESIS = str(Path(sys.executable).with_name("st"))
ROOT = Path(__file__).resolve().parents[2]
CHECKS = ",".join(
    (
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
    )
)
COLLECTIONS = ("applications", "agents", "notifications", "repositories")


def _ids(api: httpx.Client) -> dict[str, set[str]]:
    return {name: {item["id"] for item in api.get(f"/{name}").json()} for name in COLLECTIONS}


@pytest.fixture
def cleaned_up(api: httpx.Client) -> Iterator[None]:
    """Whatever the run creates is deleted afterwards (applications first: they hold the rest)."""
    before = _ids(api)
    yield
    after = _ids(api)
    for name in COLLECTIONS:
        for leftover in sorted(after[name] - before[name]):
            params = {"force": "true"} if name == "applications" else None
            response = api.delete(f"/{name}/{leftover}", params=params)
            assert response.status_code in (202, 204, 404), (name, leftover, response.text)
    assert _ids(api) == before
    # Its refused requests were counted against this address; later tests start afresh.
    for counter in CounterRow.scan(CounterRow.id.startswith("rate#refused-")):
        counter.delete()


def _fuzz(
    stack: LocalStack, api: httpx.Client, token: str, *filters: str
) -> subprocess.CompletedProcess[str]:
    examples = os.environ.get("FERRY_FUZZ_EXAMPLES", "5")
    existing = set().union(*_ids(api).values())
    environment = os.environ | {
        "SCHEMATHESIS_HOOKS": "tests.fuzz_hooks",
        "FERRY_FUZZ_PROTECTED_IDS": ",".join(sorted(existing)),
        "PYTHONPATH": str(ROOT),
    }
    return subprocess.run(
        [
            SCHEMATHESIS,
            "--config-file",
            str(ROOT / "tests" / "fuzz.toml"),
            "run",
            f"{stack.api_url}/openapi.json",
            "--checks",
            CHECKS,
            "--phases",
            "examples,coverage,fuzzing",
            "--max-examples",
            examples,
            "--seed",
            "12",
            "--workers",
            "1",
            "--generation-database",
            "none",
            "--request-timeout",
            "40",
            "--no-color",
            "--header",
            f"Authorization: Bearer {token}",
            *filters,
        ],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        cwd=ROOT,
        env=environment,
    )


def _report(run: subprocess.CompletedProcess[str]) -> str:
    return f"exit {run.returncode}\n{run.stdout[-20000:]}\n{run.stderr[-3000:]}"


@pytest.mark.timeout(1200)
def test_fuzzing_as_admin_finds_no_server_error_and_no_schema_violation(
    stack: LocalStack, api: httpx.Client, cleaned_up: None
) -> None:
    assert stack.state is not None
    # The agents' routes take an agent token (next test); the feed streams until stopped.
    run = _fuzz(
        stack,
        api,
        stack.state.token,
        "--exclude-path-regex",
        "^/api/v1/(agent/|events)",
    )
    assert run.returncode == 0, _report(run)


@pytest.mark.timeout(600)
def test_fuzzing_as_an_agent_finds_no_server_error_and_no_schema_violation(
    stack: LocalStack, api: httpx.Client, unique: str, cleaned_up: None
) -> None:
    agent: dict[str, Any] = create_agent(api, f"fuzz-{unique}")
    run = _fuzz(stack, api, agent["token"], "--include-path-regex", "^/api/v1/agent/")
    assert run.returncode == 0, _report(run)
