"""OpenSSH's sshd on a loopback port, for the tests that speak SSH to a real server (git over SSH,
a remote Docker host): key login only, and a forced command the test writes, so it can log (and
shape) what each connection asked to run."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from tests.conftest import running_in_ci

SSHD = "/usr/sbin/sshd"


def key_pair() -> tuple[str, str]:
    """(OpenSSH private key, authorized_keys public key line) of a new Ed25519 key."""
    key = ed25519.Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )
    return private, public


def unavailable(reason: str) -> None:
    """Fail in CI (which must provide sshd), skip with the reason elsewhere."""
    if running_in_ci():
        pytest.fail(f"{reason}; CI must provide sshd (Debian package openssh-server)")
    pytest.skip(f"{reason}; this test needs OpenSSH's sshd (apt-get install openssh-server)")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _banner(port: int, process: subprocess.Popen[bytes], seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as connection:
                if connection.recv(64).startswith(b"SSH-2.0-"):
                    return True
        except OSError:
            time.sleep(0.05)
    return False


@dataclass
class LoopbackSshd:
    port: int
    client_private_key: str
    client_key: Path  # the same key, as a file (mode 600)
    host_public_key: str
    known_hosts: Path  # holds the host key for [127.0.0.1]:port
    process: subprocess.Popen[bytes]

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def start_sshd(directory: Path, forced_command: str, extra_config: str = "") -> LoopbackSshd:
    """Start sshd with a new host key and one authorized client key whose every connection runs
    `forced_command` (a shell script body; `$SSH_ORIGINAL_COMMAND` is what the client asked)."""
    if not Path(SSHD).exists():
        unavailable(f"{SSHD} is not installed")
    host_private, host_public = key_pair()
    host_key = directory / "host_ed25519_key"
    host_key.write_text(host_private)
    host_key.chmod(0o600)
    private, public = key_pair()
    client_key = directory / "client_key"
    client_key.write_text(private)
    client_key.chmod(0o600)
    wrapper = directory / "forced-command.sh"
    wrapper.write_text("#!/bin/sh\n" + forced_command)
    wrapper.chmod(0o755)
    authorized = directory / "authorized_keys"
    authorized.write_text(f'command="{wrapper}",no-pty,no-port-forwarding {public}\n')
    authorized.chmod(0o600)
    if os.geteuid() == 0:
        # sshd's privilege-separation directory; Debian creates it at boot, containers lack it.
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    errors = directory / "sshd.log"
    for _attempt in range(3):  # a free port can be taken between the probe and sshd's bind
        port = _free_port()
        config = directory / "sshd_config"
        config.write_text(
            f"Port {port}\nListenAddress 127.0.0.1\nHostKey {host_key}\n"
            f"PidFile {directory / 'sshd.pid'}\nAuthorizedKeysFile {authorized}\n"
            "AuthenticationMethods publickey\nPubkeyAuthentication yes\n"
            "PasswordAuthentication no\nKbdInteractiveAuthentication no\n"
            "PermitRootLogin prohibit-password\nUsePAM no\nStrictModes no\n" + extra_config
        )
        with errors.open("wb") as stderr:
            process = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stderr=stderr)
        if _banner(port, process):
            known_hosts = directory / "known_hosts"
            known_hosts.write_text(f"[127.0.0.1]:{port} {host_public}\n")
            return LoopbackSshd(port, private, client_key, host_public, known_hosts, process)
        process.terminate()
        process.wait(timeout=10)
    unavailable(f"sshd did not start: {errors.read_text()[-500:]}")
    raise AssertionError("unreachable")
