"""The host side (issue 17): the idle stack's CPU, the agent's idle memory, push → synced.

A real `ferry-agent` process (agent_process.py, as `ferry up` starts it) runs for an agent of
its own with one application of a unique name, so nothing here touches another compose project
on the shared Docker daemon; the application is deleted (undeployed) at the end.

- idle stack: the CPU this process (moto, the API, the pollers: everything `ferry up` runs but
  the agent) uses over IDLE_SECONDS once nothing is queued, as a share of one core.
- agent idle memory: the agent's resident set (VmRSS) once it has deployed and sits idle.
- push → synced: a commit changes the page the application serves, one webhook, until the API
  says `synced` at that commit; against `docker-compose up -d` of the same file under a
  project of its own plus the wait for its container to be healthy (and a pull first when the
  image comes from a registry: the local busybox has none).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

from bench.harness import Stack, running_stack, wait_for
from bench.report import Row

IDLE_SECONDS = float(os.environ.get("FERRY_BENCH_IDLE_SECONDS", "10"))
ROUNDS = 3
IMAGE = "ferry-local/busybox:latest"
CPU_GOAL = 5.0  # % of a core
RSS_GOAL_MB = 60.0
DEPLOY_GOAL = 1.15
# Both sides are read this often for "done": late by at most this much each, and a read costs
# little next to what is measured (an API request here, a `docker inspect` for the bare deploy).
POLL_SECONDS = 0.05


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def _bare_deploy(folder: Path, project: str, compose: str) -> float:
    (folder / "compose.yaml").write_text(compose)
    started = time.perf_counter()
    command = ["docker-compose", "-p", project, "-f", str(folder / "compose.yaml")]
    if not IMAGE.startswith("ferry-local/"):
        subprocess.run([*command, "pull"], check=True, capture_output=True)
    subprocess.run([*command, "up", "-d"], check=True, capture_output=True)
    # The containers `up` left (found by their project label, as the agent finds them); then
    # only their health is read, as often as Ferry's status.
    ids = subprocess.run(
        ["docker", "ps", "-q", "--filter", f"label=com.docker.compose.project={project}"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()

    def healthy() -> bool:
        states = subprocess.run(
            ["docker", "inspect", "-f", "{{.State.Health.Status}}", *ids],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.split()
        return bool(states) and all(s == "healthy" for s in states)

    wait_for(healthy, timeout=60, what="the bare deploy to be healthy", interval=POLL_SECONDS)
    return time.perf_counter() - started


def _synced(stack: Stack, application_id: str, commit: str | None) -> dict[str, Any] | None:
    application = stack.api.get(f"/applications/{application_id}").json()
    if application["sync_status"] == "synced" and commit in (None, application["commit"]):
        return dict(application)
    return None


def measure() -> list[Row]:
    from ferry.local.agent_process import AgentProcess
    from ferry.local.sample import commit_file, create_sample_repository, sample_compose

    unique = f"bench{os.getpid()}"
    bare_project = f"ferry-{unique}-bare"
    bare_folder = Path(tempfile.mkdtemp(prefix="ferry-bench-bare-"))
    with running_stack() as stack:
        repo_path = stack.home / "repo"
        create_sample_repository(repo_path, IMAGE)
        repository = stack.repository(repo_path)
        created = stack.api.post("/agents", json={"name": unique}).json()
        agent = AgentProcess(
            api_url=stack.cloud.api_url,
            token=created["token"],
            deployments_dir=stack.home / "deployments",
            log_path=stack.home / "logs" / "agent.log",
        )
        agent.start()
        application: dict[str, Any] | None = None
        try:
            application = stack.application(
                unique, repository["id"], created["id"], "hello/compose.yaml"
            )
            app_id = application["id"]
            wait_for(lambda: _synced(stack, app_id, None), timeout=120, what="the first deploy")

            ferry: list[float] = []
            bare: list[float] = []
            # Like Ferry's, every timed bare deploy replaces a running container (stopping it
            # is a second of each: stop_grace_period); a first `up` only creates one.
            _bare_deploy(bare_folder, bare_project, sample_compose(IMAGE, "before the rounds"))
            for n in range(ROUNDS):
                compose = sample_compose(IMAGE, f"round {n}")
                sha = commit_file(repo_path, "hello/compose.yaml", compose, f"round {n}")
                started = time.perf_counter()
                stack.webhook(repository, {"branch": "main"})
                wait_for(
                    partial(_synced, stack, app_id, sha),
                    timeout=120,
                    what="synced",
                    interval=POLL_SECONDS,
                )
                ferry.append(time.perf_counter() - started)
                bare.append(_bare_deploy(bare_folder, bare_project, compose))

            time.sleep(2)  # let the last deploy's tail (result, notify, feed) finish
            assert agent.process is not None
            rss = _rss_mb(agent.process.pid)
            before = _cpu_seconds(os.getpid())
            started = time.monotonic()
            time.sleep(IDLE_SECONDS)  # the measurement itself: nothing happens on purpose
            cpu = (_cpu_seconds(os.getpid()) - before) / (time.monotonic() - started) * 100
        finally:
            if application is not None:
                stack.api.delete(f"/applications/{application['id']}")
                wait_for(
                    lambda: stack.api.get(f"/applications/{application['id']}").status_code == 404,
                    timeout=60,
                    what="the bench application's removal",
                )
            agent.stop()
            subprocess.run(
                [
                    "docker-compose",
                    "-p",
                    bare_project,
                    "-f",
                    str(bare_folder / "compose.yaml"),
                    "down",
                    "--remove-orphans",
                ],
                capture_output=True,
            )

    ratio = round(statistics.median(ferry) / statistics.median(bare), 2)
    return [
        Row(
            figure="push → synced, one small app",
            ferry=f"{statistics.median(ferry):.2f} s",
            baseline=f"{statistics.median(bare):.2f} s (docker-compose up -d + health wait)",
            ratio=ratio,
            goal=f"<= {DEPLOY_GOAL:g}x",
            met=ratio <= DEPLOY_GOAL,
            details={"ferry_s": ferry, "bare_s": bare, "image": IMAGE},
        ),
        Row(
            figure="agent idle memory (RSS)",
            ferry=f"{rss:.1f} MB",
            baseline="-",
            ratio=None,
            goal=f"<= {RSS_GOAL_MB:g} MB",
            met=rss <= RSS_GOAL_MB,
        ),
        Row(
            figure="idle stack CPU (ferry up without its agent)",
            ferry=f"{cpu:.1f} % of a core",
            baseline="-",
            ratio=None,
            goal=f"<= {CPU_GOAL:g} %",
            met=cpu <= CPU_GOAL,
            details={"seconds": IDLE_SECONDS},
        ),
    ]
