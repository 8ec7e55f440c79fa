"""Fault injection (issue 11, acceptance): 20 pushes to a real git repository, deployed by a real
`ferry up` with its real agent and Docker, while `ferry up` is SIGKILLed at random moments after
a webhook's 202 and started again.

After every restart the job the 202 named is known (never 404), and the application reaches the
newest pushed commit: an accepted push is never lost. At the end nothing is `syncing`, no job is
`running`, every container belongs to an application and runs the commit its application says.
The moments come from a seeded random (FERRY_CRASH_SEED), so a failure can be replayed.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx
import pytest

from ferry.local.moto_server import free_port
from ferry.local.sample import SAMPLE_COMPOSE_PATH, commit_file, sample_compose
from tests.e2e.conftest import remove_deployed_projects
from tests.e2e.test_cli import FERRY, _environment, _port_open
from tests.helpers import wait_for

PUSHES = 20
SEED = int(os.environ.get("FERRY_CRASH_SEED", "11"))
KILL_CHANCE = 0.4
# The measured moments were 0.05, 1.1 and 3.1 s after the 202: the sync, the dispatch, compose.
KILL_WITHIN_SECONDS = 3.5
CONVERGE_SECONDS = 120


@dataclass
class Up:
    """`ferry up` in a state folder, started again after each crash on the same port."""

    home: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0
    _output: IO[bytes] | None = None

    def start(self) -> None:
        self.starts += 1
        self._output = (self.home.parent / f"up-{self.starts}.log").open("wb")
        self.process = subprocess.Popen(
            [FERRY, "up", "--home", str(self.home), "--port", str(self.port)],
            stdout=self._output,
            stderr=subprocess.STDOUT,
            env=_environment(),
        )
        wait_for(self._answers, timeout=120, what=f"`ferry up` start {self.starts}")

    def _answers(self) -> bool:
        assert self.process is not None
        assert self.process.poll() is None, self.log()
        if not (self.home / "local.json").exists() or not _port_open(self.port):
            return False
        return httpx.get(f"{self.url}/api/v1/health", timeout=5).status_code == 200

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=90)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._output is not None:
            self._output.close()

    def log(self) -> str:
        return (self.home.parent / f"up-{self.starts}.log").read_text(errors="replace")

    def api(self) -> httpx.Client:
        token = json.loads((self.home / "local.json").read_text())["token"]
        return httpx.Client(
            base_url=f"{self.url}/api/v1",
            headers={"Authorization": f"Bearer {token}"},
            timeout=15,
        )


@pytest.fixture
def up(tmp_path: Path) -> Iterator[Up]:
    started = Up(tmp_path / "home")
    yield started
    started.stop()
    # The agent stops with its stack; wait for it before removing what it deployed.
    pid_file = started.home / "agent.pid"
    if pid_file.exists():
        pid = int(pid_file.read_text())
        wait_for(lambda: not Path(f"/proc/{pid}").exists(), timeout=90, what="the agent to exit")
    remove_deployed_projects(set(), deployed_from=started.home / "deployments")


def _push(up: Up, number: int) -> tuple[str, str]:
    """Commit a new greeting to the sample app and tell Ferry; returns (commit, job id)."""
    written = (up.home / "sample-repo" / SAMPLE_COMPOSE_PATH).read_text()
    image = written.split("image: ", 1)[1].split("\n", 1)[0].strip()
    sha = commit_file(
        up.home / "sample-repo",
        SAMPLE_COMPOSE_PATH,
        sample_compose(image, greeting=f"push {number}"),
        f"push {number}",
    )
    secret = (up.home / "sample-webhook.secret").read_text().strip()
    with up.api() as api:
        repository = api.get("/repositories").json()[0]
        accepted = httpx.post(
            f"{up.url}/api/v1/webhooks/repositories/{repository['id']}",
            headers={"Authorization": f"Bearer {secret}"},
            json={},
            timeout=15,
        )
    assert accepted.status_code == 202, accepted.text
    return sha, str(accepted.json()["job_id"])


def _application(api: httpx.Client) -> dict[str, Any]:
    """The sample application (`ferry up` creates it right after the API answers)."""
    applications = wait_for(lambda: api.get("/applications").json(), what="the sample")
    [application] = applications
    return dict(application)


def _converged(up: Up, commit: str) -> dict[str, Any] | None:
    with up.api() as api:
        application = _application(api)
    if application["sync_status"] == "synced" and application["commit"] == commit:
        return application
    assert application["sync_status"] in ("syncing", "synced", "out_of_sync", "unknown")
    if application["sync_status"] == "out_of_sync":
        # A deploy may end interrupted by a restart; it is deployed again, never left there.
        assert application["last_sync_error"] == "interrupted by restart", application
    return None


def _wait_converged(up: Up, commit: str, what: str) -> dict[str, Any]:
    try:
        return wait_for(lambda: _converged(up, commit), timeout=CONVERGE_SECONDS, what=what)
    except AssertionError as exc:
        agent_log = (up.home / "logs" / "agent.log").read_text(errors="replace")
        raise AssertionError(
            f"{exc}\n--- ferry up ---\n{up.log()[-3000:]}\n--- agent ---\n{agent_log[-3000:]}"
        ) from None


def _containers(up: Up) -> list[Any]:
    import docker

    deployments = up.home / "deployments"
    return [
        c
        for c in docker.from_env().containers.list(
            all=True, filters={"label": "ferry.application-id"}
        )
        if Path(c.labels.get("com.docker.compose.project.working_dir", "/")).is_relative_to(
            deployments
        )
    ]


@pytest.mark.docker
def test_crash_sigkill_at_random_moments_loses_no_accepted_push(up: Up) -> None:
    rng = random.Random(SEED)
    up.start()
    with up.api() as api:
        first = wait_for(
            lambda: (a := _application(api))["sync_status"] == "synced" and a,
            timeout=CONVERGE_SECONDS,
            what="the sample's first deploy",
        )
    assert first["commit"]

    accepted: list[tuple[str, str]] = []
    kills = 0
    rotated = False
    for number in range(1, PUSHES + 1):
        sha, job_id = _push(up, number)
        accepted.append((sha, job_id))
        if rng.random() >= KILL_CHANCE:
            continue  # the next push comes at once: pushes overlap
        time.sleep(rng.uniform(0, KILL_WITHIN_SECONDS))  # the crash's moment, not a wait
        if not rotated and kills == 1:
            # Once, the local agent's token is rotated before the crash: the next start must
            # give the agent a token that works (it reaches the newest commit below).
            with up.api() as api:
                agent = next(a for a in api.get("/agents").json() if a["name"] == "local")
                assert api.post(f"/agents/{agent['id']}/token").status_code == 200
            rotated = True
        up.kill()
        kills += 1
        up.start()
        with up.api() as api:
            for _sha, earlier in accepted:  # known, whatever the moment of the crash
                assert api.get(f"/jobs/{earlier}").status_code == 200, earlier
        _wait_converged(up, sha, f"push {number} deployed after crash {kills}")
    assert 5 <= kills <= 12, kills  # the seed gives a fair number of crashes
    assert rotated

    last = accepted[-1][0]
    application = _wait_converged(up, last, "the last push deployed")
    with up.api() as api:

        def jobs_ended() -> list[str] | None:
            statuses = [api.get(f"/jobs/{job_id}").json()["status"] for _sha, job_id in accepted]
            ended = all(s in ("succeeded", "failed", "superseded") for s in statuses)
            return statuses if ended else None

        wait_for(jobs_ended, timeout=CONVERGE_SECONDS, what="every accepted job to end")
        wait_for(
            lambda: all(a["sync_status"] != "syncing" for a in api.get("/applications").json()),
            timeout=120,
            what="no application syncing",
        )
        known = {a["id"] for a in api.get("/applications").json()}
    containers = _containers(up)
    assert {c.labels["ferry.application-id"] for c in containers} <= known
    # The host runs what the application says, nothing stopped behind a `synced`.
    assert [(c.labels["ferry.commit"], c.status) for c in containers] == [
        (application["commit"], "running")
    ], [c.name for c in containers]
