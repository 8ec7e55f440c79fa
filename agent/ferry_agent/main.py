"""`ferry-agent`: run the agent in the foreground (systemd-friendly).

ferry-agent [--config FILE]    take and run deploy requests (configuration from FERRY_* variables,
                               and from FILE or $FERRY_AGENT_CONFIG: KEY=value lines; the
                               environment wins where both set a value)
ferry-agent build-local-image  build the busybox image used where no registry is reachable

The first SIGTERM or SIGINT stops taking requests: running ones finish (within
FERRY_STOP_GRACE_SECONDS), waiting ones are handed back to the queue, and the agent exits 0. A
second one exits at once. When the API refuses the agent token (it was rotated or revoked), at
start or at a heartbeat, the agent stops the same way and exits 3: it needs its new token.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import time
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import docker
from pydantic import ValidationError

from ferry.domain.agent_messages import AGENT_EXIT_TOKEN_REFUSED, AgentSession
from ferry_agent.aws_access import AwsAccess
from ferry_agent.compose import ComposeRunner
from ferry_agent.config import AgentConfig
from ferry_agent.control_plane import ControlPlane, ControlPlaneError, TokenRefused
from ferry_agent.drift import DriftWatcher
from ferry_agent.health import HealthWatcher
from ferry_agent.image_watch import ImageWatcher
from ferry_agent.images import ImageUnavailable, build_local_busybox
from ferry_agent.registry import DockerCredentials, RegistryClient
from ferry_agent.worker import Worker

if TYPE_CHECKING:
    from ferry_agent.ssh_tunnel import DockerSshTunnel

log = logging.getLogger("ferry_agent")


def _session_with_retry(control_plane: ControlPlane, stop_after: float) -> AgentSession:
    deadline = time.monotonic() + stop_after
    delay = 0.5
    while True:
        try:
            return control_plane.session()
        except ControlPlaneError as exc:
            if isinstance(exc, TokenRefused) or time.monotonic() > deadline:
                raise
            log.warning("%s; retrying in %.0f s", exc, delay)
            time.sleep(delay)
            delay = min(delay * 2, 10)


def _docker_host(config: AgentConfig) -> tuple[str | None, DockerSshTunnel | None]:
    """Where the SDK and compose find the daemon; an ssh:// host goes through a local tunnel
    (the agent exits saying why when it cannot be opened)."""
    if not config.docker_host or not config.docker_host.startswith("ssh://"):
        return config.docker_host, None
    # SSH (paramiko) is loaded only for an ssh:// host: most agents never need it.
    from ferry_agent.ssh_tunnel import DockerSshTunnel, SshTunnelError

    try:
        tunnel = DockerSshTunnel(
            config.docker_host,
            key_path=config.docker_ssh_key,
            known_hosts=config.docker_ssh_known_hosts,
            accept_new_host_key=config.docker_ssh_accept_new_host_key,
        )
        return tunnel.start(), tunnel
    except SshTunnelError as exc:
        sys.exit(f"ferry-agent: {exc}")


def load_config(config_file: Path | None) -> AgentConfig:
    """The settings from the environment, over those in `config_file` (KEY=value lines)."""
    if config_file is not None and not config_file.is_file():
        sys.exit(f"ferry-agent: configuration file {config_file} not found")
    return AgentConfig.load(config_file)


def run(config_file: Path | None = None) -> None:
    try:
        config = load_config(config_file)
    except ValidationError as exc:
        missing = ", ".join(
            f"FERRY_{str(e['loc'][0]).upper()}" for e in exc.errors() if e["type"] == "missing"
        )
        sys.exit(f"ferry-agent: configuration incomplete: set {missing or exc}")
    control_plane = ControlPlane(config.api_url, config.agent_token)
    try:
        session = _session_with_retry(control_plane, stop_after=120)
        docker_host, tunnel = _docker_host(config)
    except TokenRefused as exc:
        print(f"ferry-agent: {exc}: start it with the agent's current token", file=sys.stderr)
        sys.exit(AGENT_EXIT_TOKEN_REFUSED)
    except ControlPlaneError as exc:
        sys.exit(f"ferry-agent: {exc}")
    config.deployments_dir.mkdir(parents=True, exist_ok=True)
    aws = AwsAccess(
        control_plane.session,
        session,
        refresh_margin_seconds=config.credentials_refresh_margin_seconds,
        max_pool_connections=config.max_parallel_deploys + 4,
    )
    runner = ComposeRunner(
        config.deployments_dir,
        docker_host=docker_host,
        docker_host_name=config.docker_host,
        timeout_seconds=config.compose_timeout_seconds,
        health_wait_seconds=config.health_wait_seconds,
        bind_allow_list=config.policy_bind_allow_list,
        policy_bypass=config.policy_bypass,
        read_object=aws.read_bundle,
    )

    def docker_client() -> docker.DockerClient:
        if docker_host:
            return docker.DockerClient(base_url=docker_host, use_ssh_client=False)
        return docker.from_env()

    drift = DriftWatcher(
        docker_client,
        control_plane,
        config.deployments_dir,
        check_seconds=config.drift_check_seconds,
        debounce_seconds=config.health_debounce_seconds,
    )
    watcher = HealthWatcher(
        docker_client,
        control_plane,
        debounce_seconds=config.health_debounce_seconds,
        resync_seconds=config.health_resync_seconds,
        listeners=(drift.changed,),
    )
    images = ImageWatcher(
        docker_client,
        control_plane,
        RegistryClient(DockerCredentials(config.docker_config)),
        interval_seconds=config.image_check_seconds,
    )
    worker = Worker(
        aws,
        runner,
        max_parallel_deploys=config.max_parallel_deploys,
        poll_wait_seconds=config.poll_wait_seconds,
        stop_grace_seconds=config.stop_grace_seconds,
        contact=control_plane.heartbeat,
        contact_every_seconds=config.heartbeat_seconds,
        observers=(watcher, drift, images),
        request_is_current=lambda request: control_plane.request_is_current(
            request.request_id, request.application_id
        ),
        on_hint=lambda hint: images.hint(hint.images),
    )

    def stop(signum: int, _frame: FrameType | None) -> None:
        if worker.stopping.is_set():
            log.warning("signal %d again: exiting now", signum)
            runner.terminate_all()
            logging.shutdown()
            os._exit(128 + signum)
        log.info(
            "signal %d: taking no new requests; running ones get %g s to finish, waiting ones are "
            "handed back",
            signum,
            config.stop_grace_seconds,
        )
        worker.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("agent %s (%s)", session.name, session.agent_id)
    aws.start()
    watcher.start()
    drift.start()
    images.start()
    clean = worker.run_forever()
    images.stop()
    drift.stop()
    watcher.stop()
    aws.stop()
    if tunnel is not None:
        tunnel.close()
    if worker.token_refused.is_set():
        log.error("stopped: the Ferry API refused the agent token (rotated or revoked)")
        logging.shutdown()
        os._exit(AGENT_EXIT_TOKEN_REFUSED)
    log.info("stopped")
    if not clean:
        # A request thread is still inside compose; do not wait for it at interpreter exit.
        logging.shutdown()
        os._exit(1)


def main() -> None:
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s ferry-agent %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    # One line per API call would drown what the agent does; failures are logged by the agent.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    parser = argparse.ArgumentParser(prog="ferry-agent", description=__doc__.splitlines()[0])
    parser.add_argument("command", nargs="?", default="run", choices=["run", "build-local-image"])
    parser.add_argument(
        "--config",
        type=Path,
        default=os.environ.get("FERRY_AGENT_CONFIG") or None,
        help="a file of KEY=value settings (the environment overrides it)",
    )
    arguments = parser.parse_args()
    if arguments.command == "build-local-image":
        try:
            print(build_local_busybox())
        except ImageUnavailable as exc:
            sys.exit(f"ferry-agent: {exc}")
        return
    run(arguments.config)


if __name__ == "__main__":
    main()
