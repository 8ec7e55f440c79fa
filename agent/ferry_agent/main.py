"""`ferry-agent`: run the agent in the foreground (systemd-friendly).

ferry-agent                    take and run deploy jobs (configuration from FERRY_* variables)
ferry-agent build-local-image  build the busybox image used where no registry is reachable
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import time
from types import FrameType

from pydantic import ValidationError

from ferry_agent.compose import ComposeRunner
from ferry_agent.config import AgentConfig
from ferry_agent.control_plane import ControlPlaneError, Session, fetch_session, send_heartbeat
from ferry_agent.images import ImageUnavailable, build_local_busybox
from ferry_agent.worker import Worker

log = logging.getLogger("ferry_agent")


def _session_with_retry(config: AgentConfig, stop_after: float) -> Session:
    deadline = time.monotonic() + stop_after
    delay = 0.5
    while True:
        try:
            return fetch_session(config.api_url, config.agent_token)
        except ControlPlaneError as exc:
            if "refused the agent token" in str(exc) or time.monotonic() > deadline:
                raise
            log.warning("%s; retrying in %.0f s", exc, delay)
            time.sleep(delay)
            delay = min(delay * 2, 10)


def run() -> None:
    try:
        config = AgentConfig()
    except ValidationError as exc:
        missing = ", ".join(
            f"FERRY_{str(e['loc'][0]).upper()}" for e in exc.errors() if e["type"] == "missing"
        )
        sys.exit(f"ferry-agent: configuration incomplete: set {missing or exc}")
    try:
        session = _session_with_retry(config, stop_after=120)
    except ControlPlaneError as exc:
        sys.exit(f"ferry-agent: {exc}")
    config.deployments_dir.mkdir(parents=True, exist_ok=True)
    runner = ComposeRunner(
        config.deployments_dir,
        docker_host=config.docker_host,
        timeout_seconds=config.compose_timeout_seconds,
        health_wait_seconds=config.health_wait_seconds,
        bind_allow_list=config.policy_bind_allow_list,
        policy_bypass=config.policy_bypass,
    )
    worker = Worker(
        session,
        runner,
        poll_wait_seconds=config.poll_wait_seconds,
        contact=lambda: send_heartbeat(config.api_url, config.agent_token),
    )

    def stop(signum: int, _frame: FrameType | None) -> None:
        if not worker.busy.is_set():
            log.info("signal %d: stopping", signum)
            sys.exit(0)
        log.info("signal %d: finishing the current job, then stopping", signum)
        worker.stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    worker.run_forever()


def main() -> None:
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s ferry-agent %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    parser = argparse.ArgumentParser(prog="ferry-agent", description=__doc__.splitlines()[0])
    parser.add_argument("command", nargs="?", default="run", choices=["run", "build-local-image"])
    arguments = parser.parse_args()
    if arguments.command == "build-local-image":
        try:
            print(build_local_busybox())
        except ImageUnavailable as exc:
            sys.exit(f"ferry-agent: {exc}")
        return
    run()


if __name__ == "__main__":
    main()
