"""The local agent: the real `ferry-agent` program, as a child process of the local stack.

One local agent per state folder, and never one without its stack:
- On Linux the agent is asked to stop (SIGTERM: running deploys finish, then it exits) when the
  thread that started it ends — with the stack's process, however that ends (a SIGKILL too).
  So start it from a thread that lives as long as the stack (the main thread); the restarts
  below come from the agent's own watcher thread, which lives as long as the agent.
- Its pid is kept in `pid_path`; a new start first waits for the previous run's agent to finish
  what it was doing (and stops it, if it is still serving), so two agents never run compose on
  the same projects at once.
- When the API refuses its token (the agent exits AGENT_EXIT_TOKEN_REFUSED: the token was
  rotated), `renew_token` gives it a new one and it starts again.
- It writes its log file itself (`echo` follows the file), so what it does after its stack died
  is still in the log.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from ferry.domain.messages import AGENT_EXIT_TOKEN_REFUSED
from ferry.local.private_files import write_private

_PR_SET_PDEATHSIG = 1
FOLLOW_EVERY_SECONDS = 0.2
# How long a previous run's agent may take to finish its deploys and exit (its stop grace is
# 60 s by default), before it is killed.
PREVIOUS_AGENT_GRACE_SECONDS = 90.0


def _stop_with_parent() -> Callable[[], None] | None:
    """A pre-exec function that makes the child receive SIGTERM when its parent thread ends."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up before fork, not in the child
    parent = os.getpid()

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the line above: stop now
            os.kill(os.getpid(), signal.SIGTERM)

    return preexec


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
        pid_path: Path | None = None,
        renew_token: Callable[[], str] | None = None,
        heartbeat_seconds: float | None = None,
    ) -> None:
        self.api_url = api_url
        self.token = token
        self.deployments_dir = deployments_dir
        self.log_path = log_path
        self.echo = echo
        self.pid_path = pid_path
        self.renew_token = renew_token
        self.heartbeat_seconds = heartbeat_seconds
        self.process: subprocess.Popen[bytes] | None = None
        self._log_offset = 0  # where the running process's output starts in the log
        self.restarts = 0  # starts with a renewed token
        self._stopping = False
        self._lock = threading.Lock()
        self._watcher: threading.Thread | None = None

    def start(self) -> None:
        self._end_previous_agent()
        with self._lock:
            self._stopping = False
            self._spawn()
        self._watcher = threading.Thread(target=self._watch, name="agent-log", daemon=True)
        self._watcher.start()

    def _environment(self) -> dict[str, str]:
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
        if self.heartbeat_seconds is not None:
            environment["FERRY_HEARTBEAT_SECONDS"] = str(self.heartbeat_seconds)
        return environment

    def _spawn(self) -> None:
        """Start the program (call with the lock held)."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self._log_offset = log.tell()
            self.process = subprocess.Popen(
                [sys.executable, "-m", "ferry_agent"],
                env=self._environment(),
                stdout=log,
                stderr=subprocess.STDOUT,
                # Only prctl runs between fork and exec: nothing there takes a lock.
                preexec_fn=_stop_with_parent(),
            )
        if self.pid_path is not None:
            # Whole or not at all: a crash mid-write must not hide this agent from the next start.
            write_private(self.pid_path, str(self.process.pid))

    def _watch(self) -> None:
        """Wait for the agent to exit (echoing its output); start it again with a new token when
        its token was refused."""
        while True:
            process = self.process
            assert process is not None
            code = process.wait() if self.echo is None else self._follow(process, self.echo)
            with self._lock:
                if self._stopping:
                    return
                if code != AGENT_EXIT_TOKEN_REFUSED or self.renew_token is None:
                    self._say(f"the local agent exited ({code}); see {self.log_path}")
                    return
                self.token = self.renew_token()
                self._say("the local agent's token was refused: starting it with a new token")
                self._spawn()
                self.restarts += 1  # after the new process is in place: callers may look

    def _follow(self, process: subprocess.Popen[bytes], echo: Callable[[str], None]) -> int:
        """Echo the log's new lines until the process has exited; returns its exit status."""
        pending = b""
        with self.log_path.open("rb") as log:
            log.seek(self._log_offset)
            while True:
                code = process.poll()  # first: once it has exited, all it wrote is in the file
                *lines, pending = (pending + log.read()).split(b"\n")
                for line in lines:
                    echo(line.decode(errors="replace").rstrip())
                if code is not None:
                    if pending:
                        echo(pending.decode(errors="replace").rstrip())
                    return code
                time.sleep(FOLLOW_EVERY_SECONDS)

    def _say(self, line: str) -> None:
        with self.log_path.open("a") as log:
            log.write(f"ferry up: {line}\n")
        if self.echo is not None:
            self.echo(line)

    def _end_previous_agent(self) -> None:
        """Wait for the agent a previous run left behind (stopping it first) to exit."""
        if self.pid_path is None or not self.pid_path.exists():
            return
        try:
            pid = int(self.pid_path.read_text().strip())
        except ValueError:
            return
        if not self._is_our_agent(pid):
            return
        self._say(f"waiting for the previous run's agent (pid {pid}) to finish its deploys")
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)  # already stopping if its parent died: harmless
        deadline = time.monotonic() + PREVIOUS_AGENT_GRACE_SECONDS
        while self._is_our_agent(pid):
            if time.monotonic() > deadline:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                return
            time.sleep(0.1)

    def _is_our_agent(self, pid: int) -> bool:
        """Whether `pid` is a live agent serving this deployments folder (a pid is reused)."""
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
            environment = Path(f"/proc/{pid}/environ").read_bytes()
            status = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return False  # gone, not ours, or no /proc to tell: leave it alone
        zombie = status.rsplit(")", 1)[-1].split()[0] == "Z"
        folder = f"FERRY_DEPLOYMENTS_DIR={self.deployments_dir}".encode()
        return not zombie and b"ferry_agent" in command and folder in environment.split(b"\0")

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 30) -> None:
        with self._lock:
            self._stopping = True
            process = self.process
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def kill(self) -> None:
        """Stop without a chance to finish (as a crash would)."""
        with self._lock:
            self._stopping = True
            process = self.process
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()
