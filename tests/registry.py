"""Registries on loopback ports for the image-update tests: Debian's `docker-registry` (the CNCF
Distribution registry, optionally behind htpasswd basic auth), and a scripted one that answers
what a test tells it to (401 with a Bearer challenge, 429 with Retry-After) and counts requests.

Images are built here from the local busybox image (a label makes each build a new digest),
pushed with the Docker daemon, and removed again by the test that made them.
"""

from __future__ import annotations

import contextlib
import http.server
import io
import secrets
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bcrypt
import httpx
import pytest

from tests.conftest import running_in_ci

DOCKER_REGISTRY = Path("/usr/bin/docker-registry")
BASE_IMAGE = "ferry-local/busybox:latest"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def require_registry() -> None:
    """Fail in CI (which installs it), skip with the reason elsewhere."""
    if DOCKER_REGISTRY.exists():
        return
    reason = f"{DOCKER_REGISTRY} is not installed"
    if running_in_ci():
        pytest.fail(f"{reason}; CI must provide it (Debian package docker-registry)")
    pytest.skip(f"{reason}; this test needs it (apt-get install docker-registry)")


@dataclass
class Registry:
    """A running docker-registry; `host` is what image references name (127.0.0.1:<port>)."""

    port: int
    directory: Path
    users: dict[str, str]
    process: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        auth = ""
        if self.users:
            htpasswd = self.directory / "htpasswd"
            htpasswd.write_text(
                "".join(
                    f"{user}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt(4)).decode()}\n"
                    for user, password in self.users.items()
                )
            )
            auth = f"auth:\n  htpasswd:\n    realm: ferry-tests\n    path: {htpasswd}\n"
        config = self.directory / "config.yml"
        config.write_text(
            "version: 0.1\n"
            "log:\n  level: warn\n"
            f"storage:\n  filesystem:\n    rootdirectory: {self.directory / 'data'}\n"
            "  delete:\n    enabled: true\n"
            f"http:\n  addr: 127.0.0.1:{self.port}\n" + auth
        )
        with (self.directory / "registry.log").open("ab") as log:
            self.process = subprocess.Popen(
                [str(DOCKER_REGISTRY), "serve", str(config)], stdout=log, stderr=log
            )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                if httpx.get(f"http://{self.host}/v2/", timeout=1).status_code in (200, 401):
                    return
            except httpx.HTTPError:
                time.sleep(0.05)
        self.stop()
        raise AssertionError(
            f"docker-registry did not start: {(self.directory / 'registry.log').read_text()}"
        )

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_registry(directory: Path, users: dict[str, str] | None = None) -> Registry:
    require_registry()
    registry = Registry(port=free_port(), directory=directory, users=users or {})
    registry.start()
    return registry


@dataclass
class PushedImages:
    """Images a test built and pushed; `remove()` deletes exactly those tags and builds."""

    references: set[str] = field(default_factory=set)
    image_ids: set[str] = field(default_factory=set)

    def push(self, reference: str, auth: dict[str, str] | None = None) -> str:
        """Build a new image (a new digest every time) as `reference`, push it, and return the
        digest the registry recorded for it."""
        import docker

        client = docker.from_env()
        dockerfile = f"FROM {BASE_IMAGE}\nLABEL ferry.test.build={secrets.token_hex(8)}\n"
        # rm: no intermediate container left behind per build (the SDK keeps them by default).
        image, _ = client.images.build(
            fileobj=io.BytesIO(dockerfile.encode()), tag=reference, rm=True, forcerm=True
        )
        self.references.add(reference)
        self.image_ids.add(str(image.id))
        repository, tag = reference.rsplit(":", 1)
        for line in client.images.push(
            repository, tag=tag, auth_config=auth, stream=True, decode=True
        ):
            if "error" in line:
                raise AssertionError(f"push of {reference} failed: {line['error']}")
        image.reload()
        digests = [d for d in image.attrs.get("RepoDigests") or [] if d.startswith(repository)]
        assert digests, f"{reference} has no RepoDigest after its push: {image.attrs}"
        return str(digests[0].split("@", 1)[1])

    def remove(self) -> None:
        import docker
        import docker.errors

        client = docker.from_env()
        # By id as well: a build whose tag moved on to a later one is left untagged.
        for name in [*self.references, *self.image_ids]:
            with contextlib.suppress(docker.errors.APIError):  # already gone
                client.images.remove(name, force=True)


Request = tuple[str, str, dict[str, str], bytes]  # method, path, headers (lowercased), body
Response = tuple[int, dict[str, str], bytes]


class ScriptedRegistry:
    """A registry that answers what the test says, on a given port (e.g. one a real registry
    just left), recording every request: by default `status` with `headers`, or whatever
    `respond(request)` returns."""

    def __init__(self, port: int, respond: Callable[[Request], Response] | None = None) -> None:
        self.status = 401
        self.headers: dict[str, str] = {}
        self.requests: list[Request] = []
        self.respond = respond
        scripted = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self) -> None:
                headers = {name.lower(): value for name, value in self.headers.items()}
                body = self.rfile.read(int(headers.get("content-length") or 0))
                request = (self.command, self.path, headers, body)
                scripted.requests.append(request)
                if scripted.respond is not None:
                    status, answer_headers, answer = scripted.respond(request)
                else:
                    status, answer_headers, answer = scripted.status, scripted.headers, b""
                self.send_response(status)
                for name, value in answer_headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(answer)

            do_GET = do_HEAD = do_POST = _answer

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = port
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def answer(self, status: int, headers: dict[str, str] | None = None) -> None:
        self.status = status
        self.headers = headers or {}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
