"""Docker Compose on this host: write the files, run `up`, read back what runs.

`docker compose` (v2) is used when the Docker CLI has it, else `docker-compose` (v1). Containers
get the normalized project name and a `ferry.application-id` label (through an override file, so
the user's compose file is deployed exactly as committed).

Compose runs as a child process the agent can stop: a job whose deploy was cancelled (or that a
stopping agent hands back) has its compose process terminated instead of left to finish behind
the control plane's back. On Linux the child also gets SIGTERM when the agent dies, even by
SIGKILL, so a crashed agent leaves no compose running into the job another agent process redoes.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import docker
import docker.errors
import yaml

from ferry.domain.messages import ContainerState, DeployRequest
from ferry.domain.models import HealthStatus
from ferry_agent.policy import PolicyOptions, PolicyViolation, check_application_name, enforce

APPLICATION_LABEL = "ferry.application-id"
COMMIT_LABEL = "ferry.commit"
PROJECT_LABEL = "com.docker.compose.project"
OVERRIDE_NAME = ".ferry.override.yaml"
_OUTPUT_TAIL = 2000
_POLL_SECONDS = 0.25
_TERMINATE_WAIT_SECONDS = 10


class DeployError(Exception):
    """A deploy step failed; the message is what the user sees as last_sync_error."""


class JobCancelled(Exception):
    """The job was cancelled while it ran; what it started was stopped."""


@dataclass
class Snapshot:
    health: HealthStatus
    containers: list[ContainerState] = field(default_factory=list)
    image_digests: dict[str, str] = field(default_factory=dict)


def compose_command() -> list[str]:
    """The compose CLI of this host: v2 plugin first, then v1."""
    docker_cli = shutil.which("docker")
    if docker_cli:
        probe = subprocess.run(
            [docker_cli, "compose", "version"], capture_output=True, text=True, check=False
        )
        if probe.returncode == 0:
            return [docker_cli, "compose"]
    legacy = shutil.which("docker-compose")
    if legacy:
        return [legacy]
    raise DeployError("neither `docker compose` nor `docker-compose` is installed on this host")


def _tied_to_agent(arguments: list[str]) -> list[str]:
    """The command, wrapped so the kernel sends it SIGTERM when the agent goes away (Linux,
    util-linux `setpriv`). The signal is tied to the thread that starts the child; the agent
    starts compose from its job pool, whose threads live as long as the agent does."""
    setpriv = shutil.which("setpriv") if sys.platform == "linux" else None
    return [setpriv, "--pdeathsig", "TERM", "--", *arguments] if setpriv else arguments


def _stop(process: subprocess.Popen[str]) -> None:
    process.terminate()
    try:
        process.communicate(timeout=_TERMINATE_WAIT_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()


def _tail(text: str) -> str:
    text = text.strip()
    return text if len(text) <= _OUTPUT_TAIL else "…" + text[-_OUTPUT_TAIL:]


class ComposeRunner:
    def __init__(
        self,
        deployments_dir: Path,
        *,
        docker_host: str | None = None,
        docker_host_name: str | None = None,
        timeout_seconds: int = 600,
        health_wait_seconds: int = 10,
        bind_allow_list: bool = False,
        policy_bypass: dict[str, list[str]] | None = None,
    ) -> None:
        self.deployments_dir = deployments_dir
        self.docker_host = docker_host
        # What users know the daemon as (the ssh:// URL behind a local tunnel socket).
        self.docker_host_name = docker_host_name or docker_host
        self.timeout_seconds = timeout_seconds
        self.health_wait_seconds = health_wait_seconds
        self.bind_allow_list = bind_allow_list
        self.policy_bypass = policy_bypass or {}
        self._processes: set[subprocess.Popen[str]] = set()
        self._processes_lock = threading.Lock()

    def policy_for(self, job: DeployRequest) -> PolicyOptions:
        bypass = [
            *self.policy_bypass.get(job.application_id, []),
            *self.policy_bypass.get(job.application_name, []),
        ]
        return PolicyOptions(
            bind_allow_list_mode=self.bind_allow_list,
            deployments_dir=self.deployments_dir.resolve(),
            bypass=frozenset(bypass),
        )

    def _docker(self) -> docker.DockerClient:
        try:
            client = (
                docker.DockerClient(base_url=self.docker_host, use_ssh_client=False)
                if self.docker_host
                else docker.from_env()
            )
            client.ping()
        except docker.errors.DockerException as exc:
            where = self.docker_host_name or os.environ.get("DOCKER_HOST") or "the local socket"
            raise DeployError(f"Docker daemon not reachable at {where}: {exc}") from exc
        return client

    def project_dir(self, project_name: str) -> Path:
        return self.deployments_dir / project_name

    def write_files(self, job: DeployRequest) -> tuple[Path, Path]:
        """Check the compose file against the security policy, then write it (at its repository
        path) and our label override. Nothing is written for a refused file."""
        relative = PurePosixPath(job.compose_path)
        if relative.is_absolute() or ".." in relative.parts:
            raise DeployError(f"compose path {job.compose_path!r} escapes the deployment folder")
        try:
            document = yaml.safe_load(job.compose_file)
        except yaml.YAMLError as exc:
            raise DeployError(f"{job.compose_path} is not valid YAML: {exc}") from exc
        if not isinstance(document, dict) or not isinstance(document.get("services"), dict):
            raise DeployError(f"{job.compose_path} has no services")
        compose_path = (self.project_dir(job.project_name) / relative).resolve()
        try:
            check_application_name(job.application_name)
            enforce(
                document,
                project_dir=compose_path.parent,
                environment=dict(os.environ),
                options=self.policy_for(job),
            )
        except PolicyViolation as exc:
            raise DeployError(str(exc)) from exc
        compose_path.parent.mkdir(parents=True, exist_ok=True)
        compose_path.write_text(job.compose_file)
        override: dict[str, Any] = {
            "services": {
                name: {"labels": {APPLICATION_LABEL: job.application_id, COMMIT_LABEL: job.commit}}
                for name in document["services"]
            }
        }
        if "version" in document:  # compose v1 wants every file of a project on one version
            override = {"version": document["version"], **override}
        override_path = compose_path.parent / OVERRIDE_NAME
        override_path.write_text(yaml.safe_dump(override, sort_keys=False))
        return compose_path, override_path

    def _run(self, arguments: list[str], what: str, cancel: threading.Event | None = None) -> str:
        """Run one compose command; stopped (JobCancelled) as soon as `cancel` is set."""
        environment = dict(os.environ)
        if self.docker_host:
            environment["DOCKER_HOST"] = self.docker_host
        deadline = time.monotonic() + self.timeout_seconds
        process = subprocess.Popen(
            _tied_to_agent(arguments),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=environment,
            # Its own session: a Ctrl-C meant for the agent (which finishes the job) must not
            # reach compose through the terminal's process group.
            start_new_session=True,
        )
        with self._processes_lock:
            self._processes.add(process)
        try:
            while True:
                try:
                    stdout, stderr = process.communicate(timeout=_POLL_SECONDS)
                    break
                except subprocess.TimeoutExpired:
                    if cancel is not None and cancel.is_set():
                        _stop(process)
                        raise JobCancelled(f"{what} stopped: the job was cancelled") from None
                    if time.monotonic() > deadline:
                        _stop(process)
                        raise DeployError(
                            f"{what} did not finish within {self.timeout_seconds} s"
                        ) from None
        finally:
            with self._processes_lock:
                self._processes.discard(process)
        if process.returncode != 0:
            raise DeployError(f"{what} failed: {_tail(stderr or stdout)}")
        return stdout

    def terminate_all(self) -> None:
        """Stop every compose process still running (the agent is exiting at once)."""
        with self._processes_lock:
            running = list(self._processes)
        for process in running:
            process.terminate()

    def deploy(self, job: DeployRequest, cancel: threading.Event | None = None) -> Snapshot:
        """Bring the application's project to the job's compose file (JobCancelled when `cancel`
        is set meanwhile)."""
        compose_path, override_path = self.write_files(job)
        base = [
            *compose_command(),
            "--project-name",
            job.project_name,
            "--project-directory",
            str(compose_path.parent),
            "-f",
            str(compose_path),
            "-f",
            str(override_path),
        ]
        with contextlib.closing(self._docker()) as client:
            self.pull(base, client, document_images(job.compose_file), cancel)
            self._run([*base, "up", "-d", "--remove-orphans"], "docker compose up", cancel)
            return self.snapshot(client, job.project_name, cancel)

    def pull(
        self,
        base: list[str],
        client: docker.DockerClient,
        images: list[str],
        cancel: threading.Event | None = None,
    ) -> None:
        """Fetch every image before anything is replaced: a failed pull leaves the running
        version untouched. Images only this host has (built or imported locally, no registry
        knows them) are fine as long as they are here."""
        try:
            self._run([*base, "pull"], "docker compose pull", cancel)
        except DeployError as failure:
            missing = [image for image in images if not _image_present(client, image)]
            if missing:
                raise DeployError(f"{failure} (missing here: {', '.join(missing)})") from failure

    def remove(self, project_name: str, cancel: threading.Event | None = None) -> None:
        """Tear the project down (`down --remove-orphans`) and delete its folder.

        Uses the files written at deploy time; without them (never deployed here, or the folder
        was lost) the project's containers are removed by their compose label instead.
        """
        folder = self.project_dir(project_name)
        overrides = sorted(folder.rglob(OVERRIDE_NAME)) if folder.exists() else []
        if overrides:
            override = overrides[0]
            compose_files = [
                p
                for p in override.parent.iterdir()
                if p.suffix in (".yaml", ".yml") and p != override
            ]
            arguments = [
                *compose_command(),
                "--project-name",
                project_name,
                "--project-directory",
                str(override.parent),
            ]
            for path in compose_files:
                arguments += ["-f", str(path)]
            arguments += ["-f", str(override), "down", "--remove-orphans"]
            self._run(arguments, "docker compose down", cancel)
        else:
            with contextlib.closing(self._docker()) as client:
                for container in client.containers.list(
                    all=True, filters={"label": f"{PROJECT_LABEL}={project_name}"}
                ):
                    container.remove(force=True)
        if folder.exists():
            shutil.rmtree(folder)

    def snapshot(
        self,
        client: docker.DockerClient,
        project_name: str,
        cancel: threading.Event | None = None,
    ) -> Snapshot:
        """Containers of the project and their settled health (waits while checks start)."""
        deadline = time.monotonic() + self.health_wait_seconds
        waiting = cancel or threading.Event()
        while True:
            snapshot = self._read(client, project_name)
            if snapshot.health is not HealthStatus.UNKNOWN or time.monotonic() >= deadline:
                return snapshot
            if waiting.wait(0.5):
                raise JobCancelled("stopped waiting for health checks: the job was cancelled")

    def _read(self, client: docker.DockerClient, project_name: str) -> Snapshot:
        containers = client.containers.list(
            all=True, filters={"label": f"{PROJECT_LABEL}={project_name}"}
        )
        states: list[ContainerState] = []
        digests: dict[str, str] = {}
        for container in containers:
            image_name = container.attrs.get("Config", {}).get("Image")
            image_id = container.attrs.get("Image")
            digest = image_id
            try:
                repo_digests = client.images.get(image_id).attrs.get("RepoDigests") or []
                digest = repo_digests[0] if repo_digests else image_id
            except docker.errors.DockerException:
                pass
            if image_name and digest:
                digests[image_name] = digest
            states.append(container_state(container, digest))
        return Snapshot(health=settled_health(states), containers=states, image_digests=digests)


def container_state(container: Any, image_digest: str | None = None) -> ContainerState:
    """What Ferry records of one container (from the Docker SDK's inspected attributes)."""
    attributes = container.attrs
    state = attributes.get("State", {})
    return ContainerState(
        name=container.name,
        service=container.labels.get("com.docker.compose.service"),
        state=state.get("Status", container.status),
        health=(state.get("Health") or {}).get("Status"),
        image=attributes.get("Config", {}).get("Image"),
        image_digest=image_digest,
    )


def document_images(compose_file: str) -> list[str]:
    """The images a compose file names (services that only `build:` name none)."""
    document = yaml.safe_load(compose_file) or {}
    services = document.get("services") or {}
    return sorted(
        {str(s["image"]) for s in services.values() if isinstance(s, dict) and s.get("image")}
    )


def _image_present(client: docker.DockerClient, image: str) -> bool:
    try:
        client.images.get(image)
    except docker.errors.ImageNotFound:
        return False
    return True


def settled_health(containers: list[ContainerState]) -> HealthStatus:
    """Unhealthy if a container is down or failing its check; unknown while checks start."""
    if not containers:
        return HealthStatus.UNHEALTHY
    if any(c.state != "running" or c.health == "unhealthy" for c in containers):
        return HealthStatus.UNHEALTHY
    if any(c.health == "starting" for c in containers):
        return HealthStatus.UNKNOWN
    return HealthStatus.HEALTHY
