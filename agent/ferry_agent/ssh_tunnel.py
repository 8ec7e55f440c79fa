"""A remote Docker daemon over SSH (`DOCKER_HOST=ssh://user@host[:port]`), as a local socket.

Why a tunnel instead of handing `ssh://` to every tool: the Docker SDK would speak SSH through
paramiko, but the compose CLI shells out to the `ssh` binary, which reads its own configuration
(~/.ssh/config, the SSH agent, its own known_hosts): two SSH setups that can disagree, and a
host without an `ssh` client could not deploy at all. Here one paramiko connection, with the key
and known-hosts file from the agent's configuration, serves both. The agent listens on a unix
socket in a private temporary directory; every connection to it becomes an SSH channel running
`docker system dial-stdio` on the remote host (exactly what the Docker CLI does for ssh:// hosts,
so the remote host needs the docker CLI, and the SSH user access to the daemon's socket). The
SDK and compose are then pointed at `unix://<that directory>/docker.sock`.

Host keys are checked against a known_hosts file; an unknown host is refused unless first-use
recording is switched on, and a changed key is always refused. The SSH connection is opened
lazily and again after it drops, so a remote host that reboots costs a failed request, not the
agent.
"""

from __future__ import annotations

import contextlib
import getpass
import logging
import os
import select
import shutil
import socket
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import paramiko  # type: ignore[import-untyped]

log = logging.getLogger("ferry_agent")

DIAL_COMMAND = "docker system dial-stdio"
_CHUNK = 65536


class SshTunnelError(Exception):
    """The remote Docker host cannot be reached over SSH (the message says why)."""


@dataclass(frozen=True)
class SshTarget:
    user: str
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"ssh://{self.user}@{self.host}:{self.port}"


def parse_ssh_url(url: str) -> SshTarget:
    """`ssh://[user@]host[:port]` → its parts (the user defaults to the agent's own)."""
    parts = urlsplit(url)
    if parts.scheme != "ssh" or not parts.hostname:
        raise SshTunnelError(f"{url!r} is not an ssh://[user@]host[:port] address")
    if parts.path not in ("", "/") or parts.query or parts.password:
        raise SshTunnelError(f"{url!r}: only ssh://[user@]host[:port] is supported")
    return SshTarget(
        user=parts.username or getpass.getuser(), host=parts.hostname, port=parts.port or 22
    )


SESSIONS_PER_CONNECTION = 8  # below sshd's default MaxSessions (10)


class _Connection:
    """One SSH connection and the channels open on it."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.channels = 0
        self.limit = SESSIONS_PER_CONNECTION
        client.get_transport().set_keepalive(30)

    @property
    def alive(self) -> bool:
        transport = self.client.get_transport()
        return transport is not None and bool(transport.is_active())

    @property
    def has_room(self) -> bool:
        return self.channels < self.limit


class DockerSshTunnel:
    def __init__(
        self,
        url: str,
        *,
        key_path: Path | None = None,
        known_hosts: Path = Path("~/.ssh/known_hosts"),
        accept_new_host_key: bool = False,
        timeout: float = 15.0,
    ) -> None:
        self.target = parse_ssh_url(url)
        self._key_path = key_path.expanduser() if key_path else None
        self._known_hosts = known_hosts.expanduser()
        self._accept_new = accept_new_host_key
        self._timeout = timeout
        self._lock = threading.Lock()
        self._connections: list[_Connection] = []
        self._directory = Path(tempfile.mkdtemp(prefix="ferry-docker-ssh-"))
        self.socket_path = self._directory / "docker.sock"
        self._server: socket.socket | None = None
        self._closed = threading.Event()

    @property
    def docker_host(self) -> str:
        """What the Docker SDK and compose are pointed at."""
        return f"unix://{self.socket_path}"

    def start(self) -> str:
        """Listen on the local socket; returns its DOCKER_HOST. The SSH connection is tried
        once here so a misconfiguration shows up at start (a failure is logged, not fatal)."""
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(str(self.socket_path))
        os.chmod(self.socket_path, 0o600)
        server.listen(16)
        self._server = server
        threading.Thread(target=self._serve, name="ssh-tunnel", daemon=True).start()
        try:
            self.check()
        except SshTunnelError as exc:
            log.warning("%s (will retry on the first Docker call)", exc)
        return self.docker_host

    def check(self) -> None:
        """Connect now if not connected (SshTunnelError says why that fails)."""
        with self._lock:
            if not any(connection.alive for connection in self._connections):
                self._connections.append(_Connection(self._connect()))

    def close(self) -> None:
        self._closed.set()
        if self._server is not None:
            with contextlib.suppress(OSError):
                self._server.close()
        with self._lock:
            for connection in self._connections:
                connection.client.close()
            self._connections.clear()
        shutil.rmtree(self._directory, ignore_errors=True)

    def _open_channel(self) -> tuple[_Connection, Any]:
        """A new channel running the dial command, on an SSH connection with a session to
        spare (sshd allows MaxSessions, 10 by default, per connection; the Docker SDK and
        compose open connections in parallel)."""
        for _attempt in range(3):
            with self._lock:
                self._connections = [c for c in self._connections if c.alive or c.channels]
                spare = [c for c in self._connections if c.alive and c.has_room]
                connection = spare[0] if spare else None
                if connection is None:
                    connection = _Connection(self._connect())
                    self._connections.append(connection)
                connection.channels += 1
            try:
                channel = connection.client.get_transport().open_session(timeout=self._timeout)
                channel.exec_command(DIAL_COMMAND)
            except paramiko.ChannelException:
                # This server allows fewer sessions per connection: use what it took as the limit.
                with self._lock:
                    connection.channels -= 1
                    connection.limit = max(1, connection.channels)
                continue
            except Exception:
                with self._lock:
                    connection.channels -= 1
                raise
            return connection, channel
        raise SshTunnelError(f"{self.target.url} refused new SSH sessions")

    def _closed_channel(self, connection: _Connection) -> None:
        with self._lock:
            connection.channels -= 1
            idle = [c for c in self._connections if c.channels == 0]
            # Keep one idle connection for the next call; close the rest.
            for extra in idle[1:]:
                extra.client.close()
                self._connections.remove(extra)

    def _connect(self) -> Any:
        where = self.target.url
        client = paramiko.SSHClient()
        if self._accept_new:
            self._known_hosts.parent.mkdir(parents=True, exist_ok=True)
            self._known_hosts.touch(exist_ok=True)
        if self._known_hosts.exists():
            # Also where AutoAddPolicy records a first-seen key.
            client.load_host_keys(str(self._known_hosts))
        client.set_missing_host_key_policy(
            paramiko.AutoAddPolicy() if self._accept_new else paramiko.RejectPolicy()
        )
        try:
            client.connect(
                self.target.host,
                port=self.target.port,
                username=self.target.user,
                key_filename=str(self._key_path) if self._key_path else None,
                look_for_keys=self._key_path is None,
                allow_agent=self._key_path is None,
                timeout=self._timeout,
                banner_timeout=self._timeout,
                auth_timeout=self._timeout,
            )
        except paramiko.BadHostKeyException as exc:
            client.close()
            raise SshTunnelError(
                f"the SSH host key of {where} is not the one in {self._known_hosts}; refusing"
            ) from exc
        except paramiko.AuthenticationException as exc:
            client.close()
            raise SshTunnelError(f"SSH authentication to {where} failed: {exc}") from exc
        except paramiko.SSHException as exc:
            client.close()
            if "not found in known_hosts" in str(exc):
                raise SshTunnelError(
                    f"{where} is not in {self._known_hosts} (add its key, e.g. with ssh-keyscan, "
                    "or set FERRY_DOCKER_SSH_ACCEPT_NEW_HOST_KEY=true)"
                ) from exc
            raise SshTunnelError(f"SSH connection to {where} failed: {exc}") from exc
        except OSError as exc:
            client.close()
            raise SshTunnelError(f"cannot reach {where}: {exc}") from exc
        log.info("connected to the Docker host %s over SSH", where)
        return client

    def _serve(self) -> None:
        assert self._server is not None
        while not self._closed.is_set():
            try:
                local, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(
                target=self._pipe, args=(local,), name="ssh-tunnel-conn", daemon=True
            ).start()

    def _pipe(self, local: socket.socket) -> None:
        """Carry one local connection over its own SSH channel to the remote daemon."""
        try:
            connection, channel = self._open_channel()
        except (SshTunnelError, paramiko.SSHException, OSError) as exc:
            log.warning("Docker host %s unreachable: %s", self.target.url, exc)
            local.close()
            return
        try:
            self._copy(local, channel)
        except (OSError, EOFError, paramiko.SSHException) as exc:
            if not self._closed.is_set():
                log.warning("connection to the Docker host %s broke: %s", self.target.url, exc)
        finally:
            errors = b""
            with contextlib.suppress(Exception):
                while channel.recv_stderr_ready():
                    errors += channel.recv_stderr(_CHUNK)
            channel.close()
            local.close()
            self._closed_channel(connection)
            if errors.strip():
                where = self.target.url
                log.warning("%s on %s: %s", DIAL_COMMAND, where, errors.decode()[-500:])

    @staticmethod
    def _copy(local: socket.socket, channel: Any) -> None:
        sources: list[Any] = [local, channel]
        while sources:
            readable, _, _ = select.select(sources, [], [])
            if local in readable:
                data = local.recv(_CHUNK)
                if data:
                    channel.sendall(data)
                else:  # the client is done sending; the daemon may still answer
                    channel.shutdown_write()
                    sources.remove(local)
            if channel in readable:
                data = channel.recv(_CHUNK)
                if not data:
                    return
                local.sendall(data)
