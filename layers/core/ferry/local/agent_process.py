"""The local agent: the real `ferry-agent` program, as a child process of the local stack."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO

_AWS_KEYS = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"}


class AgentProcess:
    def __init__(
        self,
        *,
        api_url: str,
        token: str,
        deployments_dir: Path,
        log_path: Path,
        echo: Callable[[str], None] | None = None,
    ) -> None:
        self.api_url = api_url
        self.token = token
        self.deployments_dir = deployments_dir
        self.log_path = log_path
        self.echo = echo
        self.process: subprocess.Popen[str] | None = None
        self._pump: threading.Thread | None = None

    def start(self) -> None:
        # The agent gets its own configuration only: never the control plane's FERRY_* settings
        # (FERRY_SECRET_KEY among them) that the local stack keeps in its own environment, nor
        # its AWS credentials: the agent acts only with those of its session (AgentRole).
        environment = {
            k: v for k, v in os.environ.items() if not k.startswith("FERRY_") and k not in _AWS_KEYS
        }
        environment.update(
            {
                "FERRY_API_URL": self.api_url,
                "FERRY_AGENT_TOKEN": self.token,
                "FERRY_DEPLOYMENTS_DIR": str(self.deployments_dir),
                "PYTHONUNBUFFERED": "1",
            }
        )
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "ferry_agent"],
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert self.process.stdout is not None
        self._pump = threading.Thread(
            target=self._copy_output, args=(self.process.stdout,), name="agent-log", daemon=True
        )
        self._pump.start()

    def _copy_output(self, stream: IO[str]) -> None:
        with self.log_path.open("a") as log:
            for line in stream:
                log.write(line)
                log.flush()
                if self.echo is not None:
                    self.echo(line.rstrip())

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 30) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def kill(self) -> None:
        """Stop without a chance to finish (as a crash would)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
