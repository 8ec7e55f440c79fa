"""The agent end to end: the real `ferry-agent` process against the local stack and a real Docker
daemon — parallel and per-application order, cancellation, crash and stop, the health watcher,
the security policy, and a remote Docker host reached through a real sshd."""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest

from ferry.domain.messages import DeployRequest
from ferry.local.stack import LocalStack
from tests.conftest import TEST_HEARTBEAT_SECONDS
from tests.e2e.conftest import application_containers, remove_deployed_projects
from tests.helpers import (
    agent_queue_url,
    commit,
    compose,
    create_agent,
    create_application,
    create_repository,
    dispatch_definition,
    get_application,
    push_webhook,
    wait_for,
    wait_for_status,
)
from tests.sshd import start_sshd, unavailable

pytestmark = pytest.mark.docker

IMAGE = "ferry-local/busybox:latest"

# `up` waits for `gate` to be healthy, which it never is (its failing check is still in its start
# period): compose runs until someone stops it. (busybox as PID 1 ignores SIGTERM: a short stop
# grace period keeps replacing these containers quick.)
ENDLESS_UP = f"""services:
  gate:
    image: {IMAGE}
    command: ["sleep", "100000"]
    stop_grace_period: 1s
    healthcheck:
      test: ["CMD", "false"]
      interval: 1s
      start_period: 10m
  web:
    image: {IMAGE}
    command: ["sleep", "100000"]
    stop_grace_period: 1s
    depends_on:
      gate:
        condition: service_healthy
"""

PRIVILEGED = f"""services:
  web:
    image: {IMAGE}
    command: ["sleep", "100000"]
    privileged: true
"""


def settling(greeting: str, check_after_seconds: int = 3) -> str:
    """A web service whose first health check runs after `check_after_seconds`: the agent waits
    that long for the health to settle, so the job visibly takes time."""
    return f"""services:
  web:
    image: {IMAGE}
    command: ["sh", "-c", "echo '{greeting}' > /tmp/index.html && exec httpd -f -p 8080 -h /tmp"]
    stop_grace_period: 1s
    healthcheck:
      test: ["CMD", "true"]
      interval: {check_after_seconds}s
"""


# --- helpers ---------------------------------------------------------------------------------


def _compose_processes(project: str) -> list[int]:
    """Process ids of compose commands running for the project."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            arguments = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if (
            b"--project-name" in arguments
            and project.encode() in arguments
            and any(b"compose" in argument for argument in arguments)
        ):
            found.append(int(entry.name))
    return found


_LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ferry-agent \w+ (.*)$")


def _log(path: Path) -> list[tuple[datetime, str]]:
    lines = []
    for line in path.read_text().splitlines() if path.exists() else []:
        match = _LOG_LINE.match(line)
        if match:
            lines.append((datetime.strptime(match[1], "%Y-%m-%d %H:%M:%S,%f"), match[2]))
    return lines


def _logged(path: Path, *parts: str) -> datetime | None:
    """When the first agent log line containing every part was written."""
    for at, text in _log(path):
        if all(part in text for part in parts):
            return at
    return None


def _queue_empty(queue_url: str) -> bool:
    attributes = boto3.client("sqs").get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return all(int(value) == 0 for value in attributes.values())


def _health(api: httpx.Client, application_id: str, status: str) -> Callable[[], bool]:
    return lambda: get_application(api, application_id)["health_status"] == status


@dataclass
class App:
    repository: dict[str, Any]
    application: dict[str, Any]
    repo: Path
    head: str

    @property
    def id(self) -> str:
        return str(self.application["id"])

    @property
    def project(self) -> str:
        return str(self.application["project_name"])

    def started(self, log: Path) -> datetime | None:
        return _logged(log, f"deploy {self.id}-{self.head[:12]}", "started")


@pytest.fixture
def agent(stack: LocalStack, api: httpx.Client, tmp_path: Path) -> Iterator[Agent]:
    """A `ferry-agent` process of a new agent, for this test alone: the session's local agent
    is shared with other modules (which stop and replace it), while this one's queue and log
    belong to the test, and tests can give it settings of its own."""
    with agent_process(stack, api, tmp_path) as process:
        yield process


@pytest.fixture
def applications() -> Iterator[set[str]]:
    """Application ids whose containers are removed after the test."""
    ids: set[str] = set()
    yield ids
    remove_deployed_projects(ids)


@pytest.fixture
def new_app(
    api: httpx.Client, git_repo: Path, unique: str, applications: set[str]
) -> Callable[[str, str], App]:
    """Commit a compose file and create an application for it (its first deploy starts)."""

    def create(compose_file: str, agent_id: str) -> App:
        head = commit(git_repo, "app/compose.yaml", compose_file)
        repository = create_repository(api, git_repo)
        application = create_application(
            api, name=f"agent {unique}", repository_id=repository["id"], agent_id=agent_id
        )
        applications.add(application["id"])
        return App(repository, application, git_repo, head)

    return create


def _push(stack: LocalStack, app: App, compose_file: str, message: str) -> str:
    app.head = commit(app.repo, "app/compose.yaml", compose_file, message)
    response = push_webhook(
        stack.api_url,
        app.repository["id"],
        app.repository["webhook_secret"],
        {"ref": "refs/heads/main", "commit": app.head},
    )
    assert response.status_code == 202, response.text
    return app.head


@contextmanager
def agent_process(
    stack: LocalStack, api: httpx.Client, directory: Path, **settings: str
) -> Iterator[Agent]:
    """A `ferry-agent` process of a new agent, with settings of its own (the stack's local agent
    process gets only the stack's)."""
    created = create_agent(api, f"agent-{secrets.token_hex(3)}")
    process = Agent(stack, created, directory, settings)
    process.start()
    try:
        yield process
    finally:
        process.stop()


class Agent:
    """The real `ferry-agent` program for one agent, started and stopped by the test; its
    output goes to its own log."""

    def __init__(
        self, stack: LocalStack, created: dict[str, Any], directory: Path, settings: dict[str, str]
    ) -> None:
        self.id = str(created["id"])
        self.log = directory / f"{self.id}.log"
        self.deployments = directory / "deployments"
        self.environment = {
            k: v for k, v in os.environ.items() if not k.startswith(("FERRY_", "DOCKER_HOST"))
        }
        self.environment.update(
            {
                "FERRY_API_URL": stack.api_url,
                "FERRY_AGENT_TOKEN": str(created["token"]),
                "FERRY_DEPLOYMENTS_DIR": str(self.deployments),
                "PYTHONUNBUFFERED": "1",
                **settings,
            }
        )
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "ferry_agent"],
                env=self.environment,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        wait_for(
            lambda: _logged(self.log, "taking deploy requests from"),
            timeout=30,
            what="the agent to start",
        )

    def kill(self) -> None:
        """Stop without a chance to finish (as a crash would)."""
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    def signal(self, number: int) -> None:
        assert self.process is not None
        self.process.send_signal(number)

    def wait(self, timeout: float) -> int:
        assert self.process is not None
        return self.process.wait(timeout=timeout)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


# --- parallel across applications, serial within one -------------------------------------------


@pytest.fixture(scope="module")
def dispatch_machine(stack: LocalStack) -> str:
    """A state machine that does what DispatchToAgent does, with the job from its input: jobs
    reach the agent side by side, which the control plane's deploy slot never lets happen for one
    application. It acts as the deploy state machine's role (moto checks IAM), which may send to
    agents' queues."""
    definition = dispatch_definition(
        queue_url=None, heartbeat_seconds=TEST_HEARTBEAT_SECONDS, timeout_seconds=90
    )
    return str(
        boto3.client("stepfunctions").create_state_machine(
            name=f"e2e-agent-dispatch-{secrets.token_hex(3)}",
            definition=json.dumps(definition),
            roleArn=stack.cloud.role_arn("DeployStateMachineRole"),
        )["stateMachineArn"]
    )


def _dispatch(machine: str, queue_url: str, job: DeployRequest) -> str:
    return str(
        boto3.client("stepfunctions").start_execution(
            stateMachineArn=machine,
            name=job.request_id,
            input=json.dumps({"queue_url": queue_url, "request": job.model_dump()}),
        )["executionArn"]
    )


def _output(execution_arn: str) -> dict[str, Any]:
    client = boto3.client("stepfunctions")

    def finished() -> dict[str, Any] | None:
        described = client.describe_execution(executionArn=execution_arn)
        if described["status"] == "RUNNING":
            return None
        assert described["status"] == "SUCCEEDED", described
        return dict(json.loads(described["output"]))

    return wait_for(finished, timeout=60, what=f"{execution_arn} to finish")


def test_agent_jobs_parallel_across_applications_serial_within_one(
    agent: Agent,
    dispatch_machine: str,
    unique: str,
    applications: set[str],
) -> None:
    queue_url = agent_queue_url(agent.id)

    def job(application: str, number: int) -> DeployRequest:
        return DeployRequest(
            request_id=f"par-{unique}-{application}{number}",
            application_id=f"app_par{unique}{application}",
            application_name=f"par {unique} {application}",
            project_name=f"par-{unique}-{application}",
            commit=secrets.token_hex(20),
            compose_path="compose.yaml",
            compose_file=settling(f"{application}{number}"),
            heartbeat_seconds=TEST_HEARTBEAT_SECONDS,
        )

    a1, a2, b1 = job("a", 1), job("a", 2), job("b", 1)
    applications.update({a1.application_id, b1.application_id})
    log = agent.log
    executions = [_dispatch(dispatch_machine, queue_url, a1)]
    wait_for(lambda: _logged(log, a1.request_id, "started"), timeout=30, what="a1 to start")
    executions += [_dispatch(dispatch_machine, queue_url, j) for j in (a2, b1)]

    outputs = [_output(execution) for execution in executions]

    assert [o["success"] for o in outputs] == [True, True, True], outputs
    times = {
        j.request_id: (
            _logged(log, j.request_id, "started"),
            _logged(log, j.request_id, "finished: done"),
        )
        for j in (a1, a2, b1)
    }
    (a1_start, a1_end), (a2_start, a2_end), (b1_start, b1_end) = (
        times[j.request_id] for j in (a1, a2, b1)
    )
    assert a1_start and a1_end and a2_start and a2_end and b1_start and b1_end, times
    assert b1_start < a1_end and a1_start < b1_end  # two applications at once
    assert a2_start >= a1_end  # one application's jobs one after the other
    [container] = application_containers(a1.application_id)
    assert container.labels["ferry.commit"] == a2.commit  # the later job's state stands
    wait_for(lambda: _queue_empty(queue_url), timeout=10, what="every message deleted")


# --- cancellation, policy, health ------------------------------------------------------------


def test_agent_deploy_cancelled_stops_compose_and_deletes_message_unanswered(
    api: httpx.Client,
    agent: Agent,
    new_app: Callable[[str, str], App],
) -> None:
    app = new_app(ENDLESS_UP, agent.id)
    wait_for(lambda: app.started(agent.log), timeout=60, what="the deploy to start")
    wait_for(lambda: _compose_processes(app.project), timeout=30, what="compose up to run")

    response = api.post(f"/applications/{app.id}/cancel")

    assert response.status_code == 200, response.text
    done = wait_for_status(api, app.id, "out_of_sync", timeout=10)
    assert done["last_sync_error"] == "cancelled"
    wait_for(
        lambda: not _compose_processes(app.project),
        timeout=TEST_HEARTBEAT_SECONDS + 10,
        what="compose up to be stopped",
    )
    request = f"{app.id}-{app.head[:12]}"
    assert wait_for(
        lambda: _logged(agent.log, request, "cancelled: its deploy ended"),
        timeout=10,
        what="the agent to note the cancellation",
    )
    assert _logged(agent.log, request, "finished") is None  # never answered
    wait_for(
        lambda: _queue_empty(agent_queue_url(agent.id)),
        timeout=10,
        what="the message to be deleted",
    )
    assert "web" not in {
        c.labels["com.docker.compose.service"] for c in application_containers(app.id)
    }


def test_agent_policy_violation_refused_out_of_sync_unhealthy_nothing_started(
    api: httpx.Client,
    agent: Agent,
    new_app: Callable[[str, str], App],
) -> None:
    app = new_app(PRIVILEGED, agent.id)

    done = wait_for_status(api, app.id, "out_of_sync", target=app.head, timeout=60)

    assert "refused by the security policy" in done["last_sync_error"]
    assert "privileged" in done["last_sync_error"]
    assert done["health_status"] == "unhealthy"
    assert application_containers(app.id) == []
    assert not (agent.deployments / app.project).exists()


def test_agent_container_stopped_and_started_health_reported_by_watcher(
    api: httpx.Client,
    agent: Agent,
    new_app: Callable[[str, str], App],
) -> None:
    app = new_app(compose(greeting="watched"), agent.id)
    wait_for_status(api, app.id, "synced", commit=app.head, timeout=60)
    wait_for(_health(api, app.id, "healthy"), timeout=20, what="healthy after the deploy")
    [container] = application_containers(app.id)

    container.stop(timeout=1)

    wait_for(_health(api, app.id, "unhealthy"), timeout=20, what="unhealthy after docker stop")
    # The agent logs a report once it was taken, a moment after the API shows it.
    wait_for(
        lambda: _logged(agent.log, app.id, "is unhealthy", "exited"), timeout=5, what="the log"
    )

    container.start()

    wait_for(_health(api, app.id, "healthy"), timeout=20, what="healthy after docker start")
    # The stop was drift too (tests/e2e/test_desired_state.py); started again, it is over.
    wait_for_status(api, app.id, "synced", timeout=20)


# --- crash and stop ----------------------------------------------------------------------------


def test_agent_sigterm_past_grace_hands_job_back_to_next_process(
    stack: LocalStack,
    api: httpx.Client,
    new_app: Callable[[str, str], App],
    tmp_path: Path,
) -> None:
    with agent_process(stack, api, tmp_path, FERRY_STOP_GRACE_SECONDS="1") as first:
        app = new_app(settling("handed back", check_after_seconds=8), first.id)
        wait_for(lambda: app.started(first.log), timeout=60, what="the deploy to start")

        first.signal(signal.SIGTERM)

        assert first.wait(timeout=30) == 0
        assert _logged(first.log, f"{app.id}-", "the agent is stopping; handing it back")
        handed_back = time.monotonic()
        first.start()  # the next process of the same agent takes the job at once
        done = wait_for_status(api, app.id, "synced", commit=app.head, timeout=40)
        # Well inside the ~38 s the message would stay hidden if it had not been handed back.
        assert time.monotonic() - handed_back < 25
        assert done["last_sync_error"] is None


def test_agent_sigterm_idle_exits_zero_at_once(
    stack: LocalStack, api: httpx.Client, tmp_path: Path
) -> None:
    with agent_process(stack, api, tmp_path) as process:
        started = time.monotonic()
        process.signal(signal.SIGTERM)

        assert process.wait(timeout=10) == 0
        assert time.monotonic() - started < 5


def test_agent_sigkill_mid_deploy_times_out_then_restarted_agent_serves(
    stack: LocalStack,
    api: httpx.Client,
    agent: Agent,
    new_app: Callable[[str, str], App],
) -> None:
    app = new_app(ENDLESS_UP, agent.id)
    wait_for(lambda: app.started(agent.log), timeout=60, what="the deploy to start")
    wait_for(lambda: _compose_processes(app.project), timeout=30, what="compose up to run")

    agent.kill()
    killed = time.monotonic()

    try:
        done = wait_for_status(
            api, app.id, "out_of_sync", target=app.head, timeout=TEST_HEARTBEAT_SECONDS + 20
        )
        assert time.monotonic() - killed < TEST_HEARTBEAT_SECONDS + 10
        assert "agent stopped responding" in done["last_sync_error"]
        # compose was tied to the agent: it did not run on behind the control plane's back.
        wait_for(lambda: not _compose_processes(app.project), timeout=15, what="compose gone")
    finally:
        agent.start()

    # The crashed deploy's message comes back once its visibility lapses, and the restarted agent
    # drops it (its deploy ended) instead of running it. By then the dead process's long poll,
    # which the queue would still have served a new message to, is over as well.
    stale = f"{app.id}-{app.head[:12]}"
    wait_for(
        lambda: _logged(agent.log, "dropping", stale, "its deploy has already ended"),
        timeout=60,
        what="the stale job to be dropped",
    )
    later = _push(stack, app, compose(greeting="after the crash"), "after the crash")
    wait_for_status(api, app.id, "synced", commit=later, timeout=90)
    [container] = application_containers(
        app.id
    )  # the crashed deploy's `gate` is gone with the orphans
    assert container.labels["ferry.commit"] == later


# --- a remote Docker host over SSH ---------------------------------------------------------------


@dataclass
class Sshd:
    port: int
    key: Path
    known_hosts: Path
    commands: Path

    @property
    def docker_host(self) -> str:
        return f"ssh://root@127.0.0.1:{self.port}"


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    """OpenSSH's sshd on a loopback port: key login as root only, every command logged (the
    forced command) before it runs, so the test sees the Docker traffic go through it."""
    if os.geteuid() != 0:
        unavailable("not root (the remote Docker host is reached as root)")
    directory = tmp_path_factory.mktemp("sshd")
    commands = directory / "commands.log"
    started = start_sshd(
        directory,
        f'echo "$SSH_ORIGINAL_COMMAND" >> "{commands}"\nexec /bin/sh -c "$SSH_ORIGINAL_COMMAND"\n',
    )
    try:
        yield Sshd(
            port=started.port,
            key=started.client_key,
            known_hosts=started.known_hosts,
            commands=commands,
        )
    finally:
        started.stop()


def test_agent_ssh_docker_host_deploys_through_sshd(
    stack: LocalStack,
    api: httpx.Client,
    sshd: Sshd,
    new_app: Callable[[str, str], App],
    tmp_path: Path,
) -> None:
    with agent_process(
        stack,
        api,
        tmp_path,
        DOCKER_HOST=sshd.docker_host,
        FERRY_DOCKER_SSH_KEY=str(sshd.key),
        FERRY_DOCKER_SSH_KNOWN_HOSTS=str(sshd.known_hosts),
    ) as remote:
        app = new_app(compose(greeting="over ssh"), remote.id)

        done = wait_for_status(api, app.id, "synced", commit=app.head, timeout=90)
        wait_for(_health(api, app.id, "healthy"), timeout=20, what="healthy")

    assert done["last_sync_error"] is None
    [container] = application_containers(app.id)
    assert container.status == "running"
    assert _logged(remote.log, f"connected to the Docker host {sshd.docker_host} over SSH")
    assert "docker system dial-stdio" in sshd.commands.read_text().splitlines()


def test_agent_ssh_docker_host_unknown_host_key_refused(
    stack: LocalStack,
    api: httpx.Client,
    sshd: Sshd,
    new_app: Callable[[str, str], App],
    tmp_path: Path,
) -> None:
    strangers = tmp_path / "known_hosts"
    strangers.write_text("")
    before = sshd.commands.read_text() if sshd.commands.exists() else ""
    with agent_process(
        stack,
        api,
        tmp_path,
        DOCKER_HOST=sshd.docker_host,
        FERRY_DOCKER_SSH_KEY=str(sshd.key),
        FERRY_DOCKER_SSH_KNOWN_HOSTS=str(strangers),
    ) as remote:
        app = new_app(compose(greeting="refused"), remote.id)

        done = wait_for_status(api, app.id, "out_of_sync", target=app.head, timeout=90)

    assert f"Docker daemon not reachable at {sshd.docker_host}" in done["last_sync_error"]
    assert _logged(remote.log, f"is not in {strangers}")
    assert (sshd.commands.read_text() if sshd.commands.exists() else "") == before
    assert application_containers(app.id) == []


def test_pull_of_local_only_images_asks_no_registry(tmp_path: Path, unique: str) -> None:
    import docker

    from ferry_agent.compose import ComposeRunner, DeployError

    runner = ComposeRunner(tmp_path / "deployments")
    pulls: list[list[str]] = []

    def run(arguments: list[str], what: str, cancel: object = None) -> str:
        pulls.append(arguments)
        raise DeployError(f"{what} failed: no registry reachable from here")

    runner._run = run  # type: ignore[method-assign]
    client = docker.from_env()
    try:
        runner.pull(["compose"], client, [IMAGE])  # built here: no registry knows it
        assert pulls == []
        absent = f"ferry-absent-{unique}/none:1"
        with pytest.raises(DeployError, match=f"missing here: {absent}"):
            runner.pull(["compose"], client, [IMAGE, absent])
        assert pulls == [["compose", "pull"]]
        with pytest.raises(DeployError):
            runner.pull(["compose"], client, [IMAGE], required=True)  # an image update pulls
        assert len(pulls) == 2
    finally:
        client.close()
