"""The two quick-start paths as a user runs them: `ferry demo` and `ferry up` (with a restart)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from ferry.local.moto_server import free_port
from tests.e2e.conftest import remove_deployed_projects
from tests.helpers import wait_for

FERRY = str(Path(sys.executable).parent / "ferry")


def _environment(**extra: str) -> dict[str, str]:
    environment = {
        k: v for k, v in os.environ.items() if not k.startswith(("FERRY_", "AWS_", "MOTO_"))
    }
    environment.update(extra)
    return environment


@pytest.mark.docker
def test_demo_deploys_sample_and_prints_the_deploy_path(tmp_path: Path) -> None:
    completed = subprocess.run(
        [FERRY, "demo", "--home", str(tmp_path / "home")],
        capture_output=True,
        text=True,
        timeout=150,
        env=_environment(),
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    out = completed.stdout
    assert "hello: synced, healthy" in out
    path = [
        "Marked",
        "DispatchToAgent",
        "ApplyDeployResult",
        "Notify",
        "Done",
    ]
    assert f"{' → '.join(path)} (SUCCEEDED)" in out
    sync = ["Start", "PlanSync", "NothingToSync", "SyncApplications", "SyncBatch", "EndSync"]
    assert f"sync path          {' → '.join(sync)} → Synced → SyncSucceeded (SUCCEEDED)" in out
    assert "project label hello" in out
    assert out.rstrip().splitlines()[-1].strip().startswith("OK")
    # Only what the user needs: no emulator notices (moto naming the alarms it does not emulate,
    # Powertools warning of invocations that counted no metric).
    noise = ("No Moto CloudFormation support", "Tried to parse AWS::", "No application metrics")
    everything = (out + completed.stderr).splitlines()
    assert not [line for line in everything if any(n in line for n in noise)]


def test_demo_without_docker_says_so_and_ends_out_of_sync(tmp_path: Path) -> None:
    completed = subprocess.run(
        [FERRY, "demo", "--home", str(tmp_path / "home"), "--timeout", "60"],
        capture_output=True,
        text=True,
        timeout=150,
        env=_environment(DOCKER_HOST=f"unix://{tmp_path}/no-docker.sock"),
    )
    out = completed.stdout
    assert completed.returncode == 1, out + completed.stderr
    assert "no Docker daemon answers" in out
    assert "hello: out_of_sync" in out
    assert "Docker daemon not reachable" in out
    assert "NOT SYNCED" in out


def _start_up(home: Path, port: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [FERRY, "up", "--home", str(home), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=_environment(DOCKER_HOST=f"unix://{home}/no-docker.sock"),
    )


def _stop(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGINT)
    out, _ = process.communicate(timeout=60)
    assert process.returncode == 0, out
    return out


def _api(home: Path) -> httpx.Client:
    saved = json.loads((home / "local.json").read_text())
    return httpx.Client(
        base_url=f"{saved['api_url']}/api/v1",
        headers={"Authorization": f"Bearer {saved['token']}"},
        timeout=10,
    )


def test_up_keeps_data_across_restart_and_ends_interrupted_deploys(tmp_path: Path) -> None:
    home, port = tmp_path / "home", free_port()
    process = _start_up(home, port)
    try:
        wait_for(lambda: (home / "local.json").exists(), timeout=60, what="local.json")
        with _api(home) as api:
            application = wait_for(
                lambda: [
                    a for a in api.get("/applications").json() if a["sync_status"] == "out_of_sync"
                ],
                timeout=60,
                what="the sample's first deploy to end",
            )[0]
            before = {path: api.get(path).json() for path in ("/repositories", "/agents")}
    finally:
        out = _stop(process)
    assert "Ferry local stack is up" in out
    saved = json.loads((home / "local.json").read_text())
    assert saved["api_url"] == f"http://127.0.0.1:{port}"
    assert f"Web page: {saved['api_url']}/#token={saved['token']}\n" in out  # one clickable line

    # As if the stack had died mid-deploy: the journal's last word on the application is that
    # it is syncing, and on its deploy that it is running.
    journal_path = home / "state" / "journal.jsonl"
    items = [
        change for line in journal_path.read_text().splitlines() for change in json.loads(line)
    ]
    [app_item] = [
        (key, image)
        for logical, key, image in items
        if logical == "ApplicationsTable" and image["id"]["S"] == application["id"]
    ]
    [deploy_item] = [
        (key, image)
        for logical, key, image in items
        if logical == "ApplicationEventsTable"
        and image["application_id"]["S"] == application["id"]
        and image["type"]["S"] == "deployment"
    ]
    app_item[1]["sync_status"] = {"S": "syncing"}
    deploy_item[1]["status"] = {"S": "running"}
    with journal_path.open("a") as journal:
        journal.write(
            json.dumps([["ApplicationsTable", *app_item], ["ApplicationEventsTable", *deploy_item]])
            + "\n"
        )

    process = _start_up(home, port)
    try:
        wait_for(
            lambda: (
                httpx.get(f"http://127.0.0.1:{port}/api/v1/health").status_code == 200
                if _port_open(port)
                else None
            ),
            timeout=60,
            what="the API after restart",
        )
        with _api(home) as api:
            after = {path: api.get(path).json() for path in ("/repositories", "/agents")}
            deployments = wait_for(
                lambda: _finished_deployments(api, application["id"], at_least=2),
                timeout=60,
                what="the interrupted deploy to end and its redeploy to finish",
            )
            restored = api.get(f"/applications/{application['id']}").json()
    finally:
        out = _stop(process)
    assert [r["id"] for r in after["/repositories"]] == [r["id"] for r in before["/repositories"]]
    assert [a["id"] for a in after["/agents"]] == [a["id"] for a in before["/agents"]]
    redeploy, interrupted = deployments[:2]
    assert (interrupted["status"], interrupted["error"]) == ("failed", "interrupted by restart")
    assert redeploy["actor"] == "ferry up (after a restart)"
    assert redeploy["request_id"] != interrupted["request_id"]
    # No Docker here: the redeploy ends the way the first deploy did, never left syncing.
    assert restored["sync_status"] == "out_of_sync"
    assert "1 deploy(s) interrupted, 1 started again" in out


def _finished_deployments(
    api: httpx.Client, application_id: str, *, at_least: int
) -> list[dict[str, object]] | None:
    """The application's deployment events, newest first, once `at_least` exist and none runs."""
    items = api.get(f"/applications/{application_id}/events").json()["items"]
    deployments = [e for e in items if e["type"] == "deployment"]
    if len(deployments) < at_least or any(e["status"] == "running" for e in deployments):
        return None
    return deployments


@pytest.mark.docker
def test_up_then_status_and_history_show_the_sample_deployed(tmp_path: Path) -> None:
    home, port = tmp_path / "home", free_port()
    process = subprocess.Popen(
        [FERRY, "up", "--home", str(home), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=_environment(),
    )
    cli = _environment(FERRY_HOME=str(home), COLUMNS="200")

    def ferry(*arguments: str) -> str:
        done = subprocess.run(
            [FERRY, *arguments], capture_output=True, text=True, timeout=60, env=cli
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    try:
        wait_for(lambda: (home / "local.json").exists(), timeout=60, what="local.json")
        wait_for(
            lambda: "synced" in ferry("status"), timeout=90, what="`ferry status` to say synced"
        )
        status = ferry("status")
        history = ferry("app", "history", "hello")
    finally:
        _stop(process)
        remove_deployed_projects(set(), deployed_from=home / "deployments")
    [row] = [line for line in status.splitlines() if "hello" in line]
    assert "synced" in row and "healthy" in row and "local" in row and "main" in row
    assert "deployment" in history and "commit_sync" in history
    assert "succeeded" in history and "application_created" in history


def _port_open(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_rotate_key_keeps_every_record_readable_across_restart(tmp_path: Path) -> None:
    home, port = tmp_path / "home", free_port()
    process = _start_up(home, port)
    try:
        wait_for(lambda: (home / "local.json").exists(), timeout=60, what="local.json")
        with _api(home) as api:
            before = wait_for(
                lambda: api.get("/applications").json(), timeout=30, what="the sample"
            )
    finally:
        _stop(process)
    old_key = (home / "secret.key").read_text()

    for _ in range(2):  # a second run is harmless
        rotated = subprocess.run(
            [FERRY, "admin", "rotate-key", "--home", str(home)],
            capture_output=True,
            text=True,
            timeout=120,
            env=_environment(),
        )
        assert rotated.returncode == 0, rotated.stdout + rotated.stderr
        assert "Key rotated" in rotated.stdout
    assert (home / "secret.key").read_text() != old_key
    assert old_key in (home / "secret.key.previous").read_text()
    journal = (home / "state" / "journal.jsonl").read_text()
    assert (
        f"v1.{__import__('ferry.security.crypto', fromlist=['MasterKey']).MasterKey(old_key).kid}."
        not in journal
    )

    process = _start_up(home, port)
    try:
        wait_for(lambda: _port_open(port), timeout=60, what="the API after rotation")
        with _api(home) as api:
            after = wait_for(
                lambda: api.get("/applications").json(), timeout=30, what="applications"
            )
            duplicate = api.post(
                "/applications",
                json={
                    "name": before[0]["name"].upper(),
                    "repository_id": before[0]["repository_id"],
                    "agent_id": before[0]["agent_id"],
                    "path": "hello/compose.yaml",
                },
            )
    finally:
        _stop(process)
    assert [(a["id"], a["name"]) for a in after] == [(a["id"], a["name"]) for a in before]
    assert duplicate.status_code == 409


def _cpu_seconds(pid: int) -> float:
    """CPU time (user + system) the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_up_idle_uses_almost_no_cpu(tmp_path: Path) -> None:
    home, port = tmp_path / "home", free_port()
    # Enough records that reading them all now and then would show: 3000 rows of a feed nobody
    # reads, kept the way stacks before the journal kept them (read once at start).
    legacy = home / "state" / "tables.json"
    legacy.parent.mkdir(parents=True)
    filler = [
        {"feed": {"S": "filler"}, "seq": {"N": str(n)}, "path": {"S": "/x"}, "kind": {"S": "x"}}
        for n in range(3000)
    ]
    legacy.write_text(json.dumps({"ChangesTable": filler}))
    process = _start_up(home, port)
    try:
        wait_for(lambda: (home / "local.json").exists(), timeout=60, what="local.json")
        with _api(home) as api:
            wait_for(
                lambda: [
                    a for a in api.get("/applications").json() if a["sync_status"] == "out_of_sync"
                ],
                timeout=60,
                what="the sample's first deploy to end (no Docker here)",
            )
            # The deploy can end before its sync's last states have run: then nothing is to do.
            wait_for(
                lambda: all(r["sync_status"] != "syncing" for r in api.get("/repositories").json()),
                timeout=60,
                what="the sample's sync to end",
            )
        assert not legacy.exists()
        journal = (home / "state" / "journal.jsonl").read_text().splitlines()
        assert sum('"filler"' in line for line in journal) == 3000

        before, started = _cpu_seconds(process.pid), time.monotonic()
        time.sleep(5)  # the measurement's window, not a wait for work
        used = (_cpu_seconds(process.pid) - before) / (time.monotonic() - started)
    finally:
        _stop(process)
    assert used < 0.05, f"idle `ferry up` used {used:.1%} of a core"
