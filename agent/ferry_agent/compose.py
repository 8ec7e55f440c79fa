"""Docker Compose on this host: receive and judge the bundle, run `up`, read back what runs.

A deploy request carries the application's bundle: its directory from the repository, with the
compose file somewhere below it (ferry_agent/bundles.py puts it on disk). Compose runs in the
compose file's directory of the unpacked bundle, so relative paths, `.env`, `env_file`, configs,
secrets and build contexts mean what they mean in a checkout; the policy keeps them inside the
bundle.

`docker compose` (v2) is used when the Docker CLI has it, else `docker-compose` (v1). Containers
get the normalized project name and a `ferry.application-id` label (through an override file, so
the user's compose file is deployed exactly as committed).

The security policy judges the file twice before anything starts: as written (which refuses
before compose reads a single host file or meets a key it does not know), then as compose itself
resolves the project (`config`) in the new bundle's directory, with the files `up` will use and
the environment it will run with, so no difference between compose's parser and ours can hide a
setting. Compose always runs with a clean environment (`COMPOSE_VARIABLES`): none of the agent's
own variables (its token, AWS credentials, ...) reach interpolation or containers.

Compose runs as a child process the agent can stop: a request whose deploy was cancelled (or that a
stopping agent hands back) has its compose process terminated instead of left to finish behind
the control plane's back. On Linux the child also gets SIGTERM when the agent dies, even by
SIGKILL, so a crashed agent leaves no compose running into the request another agent process redoes.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import docker.errors
import yaml
from dotenv import dotenv_values

from ferry.domain.agent_messages import ContainerState, DeployRequest, HealthStatus
from ferry_agent.bundles import (
    LEGACY_OVERRIDE,
    BundleRefused,
    Carried,
    ProjectFolder,
    ReadObject,
    Unpacked,
    receive,
)
from ferry_agent.compose_yaml import load_compose, service_names
from ferry_agent.deployed import deployed_state, forget_deployed, observe, write_deployed
from ferry_agent.policy import (
    HostResources,
    PolicyOptions,
    PolicyViolation,
    ResourceKind,
    check_application_name,
    enforce,
)

APPLICATION_LABEL = "ferry.application-id"
COMMIT_LABEL = "ferry.commit"
PROJECT_LABEL = "com.docker.compose.project"
# What compose gets of the agent's environment: where programs are, the home directory (`~`, the
# Docker CLI's configuration and registry credentials), the locale, and how to reach the daemon.
COMPOSE_VARIABLES = (
    "PATH",
    "HOME",
    "TMPDIR",
    "LANG",
    "LC_ALL",
    "DOCKER_HOST",
    "DOCKER_CONTEXT",
    "DOCKER_CONFIG",
    "DOCKER_CERT_PATH",
    "DOCKER_TLS_VERIFY",
    "DOCKER_API_VERSION",
    "DOCKER_DEFAULT_PLATFORM",
    "DOCKER_BUILDKIT",
    "SETUPTOOLS_USE_DISTUTILS",  # the operator's choice over compose_speedups'
)
_OUTPUT_TAIL = 2000
_POLL_SECONDS = 0.25
# How often a deploy reads its containers while their health checks start: each read is a
# container list and an image lookup on the local daemon (a few milliseconds), and a deploy is
# reported once its health settles, so half a step is added to every deploy on average (0.5 s
# cost a quarter of a second; `make bench`, push → synced).
_HEALTH_POLL_SECONDS = 0.05
_TERMINATE_WAIT_SECONDS = 10


class DeployError(Exception):
    """A deploy step failed; the message is what the user sees as last_sync_error."""


class DeployCancelled(Exception):
    """The request was cancelled while it ran; what it started was stopped."""


@dataclass
class Prepared:
    """A judged bundle unpacked beside the running one, with what the host made carried into
    it, and the images compose resolved; `install` swaps it in, `abandon` takes it apart."""

    folder: ProjectFolder
    bundle: Unpacked
    root: str
    carried: Carried
    images: list[str]

    @property
    def compose_path(self) -> Path:
        return self.bundle.compose_path

    @property
    def override_path(self) -> Path:
        return self.bundle.override_path

    def install(self) -> None:
        self.folder.swap_in(self.bundle, self.root)

    def abandon(self) -> None:
        self.carried.undo()
        self.folder.discard(self.bundle)


@dataclass
class Snapshot:
    health: HealthStatus
    containers: list[ContainerState] = field(default_factory=list)
    image_digests: dict[str, str] = field(default_factory=dict)


def compose_command() -> list[str]:
    """The compose CLI of this host: v2 plugin first, then v1.

    Found once per PATH for the agent's life (a deploy runs compose two or three times, and the
    probe is a process of its own): a plugin installed later is used after the agent restarts.
    Not finding any is not remembered, so installing one is noticed at the next deploy."""
    return list(_compose_command_on(os.environ.get("PATH", "")))


@functools.lru_cache(maxsize=4)
def _compose_command_on(_path: str) -> tuple[str, ...]:
    docker_cli = shutil.which("docker")
    if docker_cli:
        probe = subprocess.run(
            [docker_cli, "compose", "version"], capture_output=True, text=True, check=False
        )
        if probe.returncode == 0:
            return (docker_cli, "compose")
    legacy = shutil.which("docker-compose")
    if legacy:
        return (legacy,)
    raise DeployError("neither `docker compose` nor `docker-compose` is installed on this host")


# Debian's docker-compose 1.29 is Python and imports `distutils`, which setuptools' shim (on by
# default for the system's packages) answers by importing all of setuptools: about half of the
# 0.36 s each compose command takes to start here, paid two or three times a deploy. The
# standard library's own distutils (Python 3.11 and before) answers in milliseconds.
_STDLIB_DISTUTILS = {"SETUPTOOLS_USE_DISTUTILS": "stdlib"}


def compose_speedups() -> dict[str, str]:
    """Variables the host's compose starts faster with, where it was seen to run with them (a
    `version` under them, once per PATH): none for the v2 plugin, nor for a v1 on a Python with
    no distutils of its own, nor when the agent's environment chose already."""
    if "SETUPTOOLS_USE_DISTUTILS" in os.environ:
        return {}
    try:
        return dict(_speedups_on(os.environ.get("PATH", "")))
    except DeployError:
        return {}


@functools.lru_cache(maxsize=4)
def _speedups_on(path: str) -> tuple[tuple[str, str], ...]:
    command = _compose_command_on(path)
    if len(command) != 1:  # `docker compose`: a Go plugin
        return ()
    try:
        probe = subprocess.run(
            [*command, "version"],
            capture_output=True,
            env={"PATH": path, **_STDLIB_DISTUTILS},
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return ()
    return tuple(_STDLIB_DISTUTILS.items()) if probe.returncode == 0 else ()


class DockerResources:
    """`HostResources` from the Docker daemon: a resource's compose project is its label."""

    def __init__(self, client: docker.DockerClient) -> None:
        self.client = client

    def project_of(self, kind: ResourceKind, name: str) -> str | None:
        collections = {
            "container": self.client.containers,
            "volume": self.client.volumes,
            "network": self.client.networks,
        }
        try:
            found = collections[kind].get(name)
        except docker.errors.NotFound:
            return None
        except docker.errors.DockerException as exc:
            raise DeployError(f"could not look up the {kind} {name}: {exc}") from exc
        attributes = found.attrs
        labels = attributes.get("Labels") or (attributes.get("Config") or {}).get("Labels") or {}
        return str(labels.get(PROJECT_LABEL, ""))


def _tied_to_agent(arguments: list[str]) -> list[str]:
    """The command, wrapped so the kernel sends it SIGTERM when the agent goes away (Linux,
    util-linux `setpriv`). The signal is tied to the thread that starts the child; the agent
    starts compose from its request pool, whose threads live as long as the agent does."""
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
        read_object: ReadObject | None = None,
    ) -> None:
        self.deployments_dir = deployments_dir
        # Reads a bundle handed over through the bundle bucket (the agent's session client).
        self.read_object = read_object
        self.docker_host = docker_host
        # What users know the daemon as (the ssh:// URL behind a local tunnel socket).
        self.docker_host_name = docker_host_name or docker_host
        self.timeout_seconds = timeout_seconds
        self.health_wait_seconds = health_wait_seconds
        self.bind_allow_list = bind_allow_list
        self.policy_bypass = policy_bypass or {}
        self._processes: set[subprocess.Popen[str]] = set()
        self._processes_lock = threading.Lock()

    def policy_for(self, request: DeployRequest) -> PolicyOptions:
        bypass = [
            *self.policy_bypass.get(request.application_id, []),
            *self.policy_bypass.get(request.application_name, []),
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

    def compose_environment(self) -> dict[str, str]:
        """The whole environment compose runs with (and interpolates from, with the project's
        `.env`)."""
        environment = {name: os.environ[name] for name in COMPOSE_VARIABLES if name in os.environ}
        if self.docker_host:
            environment["DOCKER_HOST"] = self.docker_host
        return {**compose_speedups(), **environment}

    def prepare(
        self,
        request: DeployRequest,
        resources: HostResources,
        cancel: threading.Event | None = None,
    ) -> Prepared:
        """Receive the request's bundle, unpack it into a fresh directory beside the running one,
        bring over what the host made there, and judge it with the security policy (as written,
        then as compose resolves it). Nothing that runs changes; a refused bundle is taken apart
        again and the host's files moved back."""
        try:
            check_application_name(request.application_name)
        except PolicyViolation as exc:
            raise DeployError(str(exc)) from exc
        try:
            received = receive(request, self.read_object)
        except BundleRefused as exc:
            raise DeployError(str(exc)) from exc
        compose_text = next(f.data for f in received.files if f.path == received.compose)
        try:
            documents = load_compose(compose_text.decode("utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise DeployError(f"{request.compose_path} is not valid YAML: {exc}") from exc
        services = service_names(documents)
        if not services:
            raise DeployError(f"{request.compose_path} has no services")
        folder = ProjectFolder(self.project_dir(request.project_name).resolve())
        bundle = folder.unpack(received)
        carried = folder.carry(bundle, received.root)
        try:
            # Compose interpolates from its environment first, then the project's `.env`.
            environment = {**_dotenv(bundle.project_dir / ".env"), **self.compose_environment()}
            self._enforce(request, bundle, documents, resources, environment=environment)
            bundle.override_path.write_text(_override(documents, services, request))
            model = self.resolve(request, bundle.project_dir, self._files(bundle), cancel)
            self._enforce(request, bundle, [model], resources, resolved=True)
        except BaseException:
            carried.undo()
            folder.discard(bundle)
            raise
        return Prepared(folder, bundle, received.root, carried, _model_images(model))

    def _enforce(
        self,
        request: DeployRequest,
        bundle: Unpacked,
        documents: list[object],
        resources: HostResources,
        *,
        environment: dict[str, str] | None = None,
        resolved: bool = False,
    ) -> None:
        try:
            enforce(
                documents,
                project_dir=bundle.project_dir,
                bundle_root=bundle.directory,
                project_name=request.project_name,
                environment=environment or {},
                options=self.policy_for(request),
                resources=resources,
                resolved=resolved,
            )
        except PolicyViolation as exc:
            raise DeployError(str(exc)) from exc

    @staticmethod
    def _files(bundle: Unpacked) -> list[Path]:
        return [bundle.compose_path, bundle.override_path]

    def resolve(
        self,
        request: DeployRequest,
        folder: Path,
        files: list[Path],
        cancel: threading.Event | None = None,
    ) -> dict[str, Any]:
        """The project as compose resolves it (`config`): interpolated, merged, paths absolute."""
        command = compose_command()
        arguments = [
            *command,
            "--project-name",
            request.project_name,
            "--project-directory",
            str(folder),
        ]
        for path in files:
            arguments += ["-f", str(path)]
        v2 = command[-1] == "compose"
        arguments += ["config", "--format", "json"] if v2 else ["config"]
        output = self._run(arguments, "docker compose config", cancel)
        try:
            model = json.loads(output) if v2 else yaml.safe_load(output)
        except (ValueError, yaml.YAMLError) as exc:
            raise DeployError(f"docker compose config printed no compose model: {exc}") from exc
        if not isinstance(model, dict):
            raise DeployError("docker compose config printed no compose model")
        return model

    def _run(self, arguments: list[str], what: str, cancel: threading.Event | None = None) -> str:
        """Run one compose command; stopped (DeployCancelled) as soon as `cancel` is set."""
        environment = self.compose_environment()
        deadline = time.monotonic() + self.timeout_seconds
        process = subprocess.Popen(
            _tied_to_agent(arguments),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=environment,
            # Its own session: a Ctrl-C meant for the agent (which finishes the request) must not
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
                        raise DeployCancelled(
                            f"{what} stopped: the request was cancelled"
                        ) from None
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

    def deploy(self, request: DeployRequest, cancel: threading.Event | None = None) -> Snapshot:
        """Bring the application's project to the request's bundle (DeployCancelled when `cancel` is
        set meanwhile). The new bundle goes live only once its images are here: a refused
        bundle or a failed pull leaves the running one as it was."""
        with contextlib.closing(self._docker()) as client:
            prepared = self.prepare(request, DockerResources(client), cancel)
            base = self._base(request.project_name, prepared.bundle)
            try:
                self.pull(base, client, prepared.images, cancel, required=request.pull)
            except BaseException:
                prepared.abandon()
                raise
            prepared.install()
            forget_deployed(self.project_dir(request.project_name))
            self._run([*base, "up", "-d", "--remove-orphans"], "docker compose up", cancel)
            snapshot = self.snapshot(client, request.project_name, cancel)
            self.record_deployed(client, request)
            return snapshot

    def record_deployed(self, client: docker.DockerClient, request: DeployRequest) -> None:
        """Keep what `up` left beside the project: the drift watcher compares against it."""
        observed = [
            found
            for container in self._project_containers(client, request.project_name)
            if container.labels.get(APPLICATION_LABEL) == request.application_id
            and (found := observe(container)) is not None
        ]
        write_deployed(
            self.project_dir(request.project_name),
            deployed_state(request.application_id, request.project_name, request.commit, observed),
        )

    def _project_containers(self, client: docker.DockerClient, project_name: str) -> list[Any]:
        return list(
            client.containers.list(all=True, filters={"label": f"{PROJECT_LABEL}={project_name}"})
        )

    def _base(self, project_name: str, bundle: Unpacked) -> list[str]:
        arguments = [
            *compose_command(),
            "--project-name",
            project_name,
            "--project-directory",
            str(bundle.project_dir),
        ]
        for path in self._files(bundle):
            arguments += ["-f", str(path)]
        return arguments

    def pull(
        self,
        base: list[str],
        client: docker.DockerClient,
        images: list[str],
        cancel: threading.Event | None = None,
        *,
        required: bool = False,
    ) -> None:
        """Fetch every image before anything is replaced: a failed pull leaves the running
        version untouched. Images only this host has (built or imported locally, no registry
        knows them) are fine as long as they are here, unless the pull is `required` (an image
        update, which must not end running the image it replaces). When every image is such a
        local one, no registry is asked at all: a pull could only fail."""
        if not required and images and all(_local_only(client, image) for image in images):
            return
        try:
            self._run([*base, "pull"], "docker compose pull", cancel)
        except DeployError as failure:
            if required:
                raise
            missing = [image for image in images if not _image_present(client, image)]
            if missing:
                raise DeployError(f"{failure} (missing here: {', '.join(missing)})") from failure

    def remove(self, project_name: str, cancel: threading.Event | None = None) -> None:
        """Tear the project down (`down --remove-orphans`) and delete its folder.

        Uses the running bundle's files (or those an earlier version wrote); without any (never
        deployed here, or the folder was lost) the project's containers are removed by their
        compose label instead.
        """
        folder = self.project_dir(project_name)
        arguments = self._down_arguments(project_name, folder)
        if arguments is not None:
            self._run(arguments, "docker compose down", cancel)
        else:
            with contextlib.closing(self._docker()) as client:
                for container in client.containers.list(
                    all=True, filters={"label": f"{PROJECT_LABEL}={project_name}"}
                ):
                    container.remove(force=True)
        if folder.exists():
            shutil.rmtree(folder)

    def _down_arguments(self, project_name: str, folder: Path) -> list[str] | None:
        current = ProjectFolder(folder).current()
        if current is not None:
            return [*self._base(project_name, current), "down", "--remove-orphans"]
        overrides = sorted(folder.rglob(LEGACY_OVERRIDE)) if folder.exists() else []
        if not overrides:
            return None
        override = overrides[0]
        arguments = [
            *compose_command(),
            "--project-name",
            project_name,
            "--project-directory",
            str(override.parent),
        ]
        for path in override.parent.iterdir():
            if path.suffix in (".yaml", ".yml") and path != override:
                arguments += ["-f", str(path)]
        return [*arguments, "-f", str(override), "down", "--remove-orphans"]

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
            if waiting.wait(_HEALTH_POLL_SECONDS):
                raise DeployCancelled(
                    "stopped waiting for health checks: the request was cancelled"
                )

    def _read(self, client: docker.DockerClient, project_name: str) -> Snapshot:
        containers = self._project_containers(client, project_name)
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


def _model_images(model: dict[str, Any]) -> list[str]:
    """The images a resolved compose model names (services that only `build:` name none)."""
    services = model.get("services") or {}
    return sorted(
        {str(s["image"]) for s in services.values() if isinstance(s, dict) and s.get("image")}
    )


def _override(documents: list[object], services: list[str], request: DeployRequest) -> str:
    """Our labels on every service, in a file compose merges over the user's."""
    override: dict[str, Any] = {
        "services": {
            name: {
                "labels": {APPLICATION_LABEL: request.application_id, COMMIT_LABEL: request.commit}
            }
            for name in services
        }
    }
    # Compose v1 wants every file of a project on one version.
    version = next(
        (d["version"] for d in documents if isinstance(d, dict) and "version" in d), None
    )
    if version is not None:
        override = {"version": version, **override}
    return yaml.safe_dump(override, sort_keys=False)


def _dotenv(path: Path) -> dict[str, str]:
    """The project's `.env` for the check of the file as written. Its values are taken as
    written: what compose expands them to is judged in its resolved model."""
    if not path.is_file():
        return {}
    values = dotenv_values(path, interpolate=False)
    return {name: value for name, value in values.items() if value is not None}


def _local_only(client: docker.DockerClient, image: str) -> bool:
    """Here, and never pulled from or pushed to a registry (built or imported on this host):
    Docker records a registry digest for every image that came from one."""
    try:
        found = client.images.get(image)
    except docker.errors.ImageNotFound:
        return False
    return not found.attrs.get("RepoDigests")


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
