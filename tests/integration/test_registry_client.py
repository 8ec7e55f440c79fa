"""The agent's registry client against real registries: Debian's docker-registry on a loopback
port (open, and behind htpasswd with the credentials taken from a Docker config), and a scripted
one for what a real one will not do on demand (a Bearer token service, 429 with Retry-After).
Images are pushed with the Docker daemon."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import parse_qs

import pytest

from ferry_agent.registry import (
    DockerCredentials,
    RateLimited,
    RegistryClient,
    RegistryError,
    parse_reference,
    repo_digest,
)
from tests.registry import (
    PushedImages,
    Registry,
    Request,
    Response,
    ScriptedRegistry,
    free_port,
    start_registry,
)

DIGEST = "sha256:" + "d1" * 32


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    started = start_registry(tmp_path / "registry")
    yield started
    started.stop()


@pytest.fixture
def pushed() -> Iterator[PushedImages]:
    images = PushedImages()
    yield images
    images.remove()


@pytest.fixture
def scripted() -> Iterator[ScriptedRegistry]:
    server = ScriptedRegistry(free_port())
    yield server
    server.close()


def anonymous(tmp_path: Path, clock: Callable[[], float] = time.time) -> RegistryClient:
    """A client with no Docker configuration (anonymous requests)."""
    return RegistryClient(DockerCredentials(tmp_path / "no-docker-config"), clock=clock)


@pytest.mark.docker
def test_registry_client_tag_pushed_again_digest_follows(
    registry: Registry, pushed: PushedImages, tmp_path: Path
) -> None:
    reference = f"{registry.host}/shop-{tmp_path.name[-6:].lower()}:latest"
    client = anonymous(tmp_path)
    first = pushed.push(reference)

    assert client.digest(parse_reference(reference)) == first
    second = pushed.push(reference)

    assert second != first
    assert client.digest(parse_reference(reference)) == second
    assert repo_digest([f"{reference.rsplit(':', 1)[0]}@{second}"], parse_reference(reference)) == (
        second
    )


@pytest.mark.docker
def test_registry_client_unknown_tag_is_an_error(registry: Registry, tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match="has no nothing-here:latest"):
        anonymous(tmp_path).digest(parse_reference(f"{registry.host}/nothing-here"))


@pytest.mark.docker
def test_registry_client_htpasswd_registry_uses_host_docker_credentials(
    tmp_path: Path, pushed: PushedImages
) -> None:
    locked = start_registry(tmp_path / "locked", users={"deployer": "s3cret-pw"})
    try:
        reference = f"{locked.host}/private:latest"
        digest = pushed.push(reference, auth={"username": "deployer", "password": "s3cret-pw"})

        with pytest.raises(RegistryError, match=r"answered 401 .*docker login"):
            anonymous(tmp_path).digest(parse_reference(reference))

        config = tmp_path / "docker"
        config.mkdir()
        auth = base64.b64encode(b"deployer:s3cret-pw").decode()
        (config / "config.json").write_text(json.dumps({"auths": {locked.host: {"auth": auth}}}))
        client = RegistryClient(DockerCredentials(config))

        assert client.digest(parse_reference(reference)) == digest
    finally:
        locked.stop()


def test_registry_client_429_not_asked_again_before_retry_after(
    scripted: ScriptedRegistry, tmp_path: Path
) -> None:
    now = [1000.0]
    client = anonymous(tmp_path, clock=lambda: now[0])
    scripted.answer(429, {"Retry-After": "120"})
    reference = parse_reference(f"{scripted.host}/shop:latest")

    with pytest.raises(RateLimited) as limited:
        client.digest(reference)
    assert limited.value.retry_after == 120
    asked = len(scripted.requests)

    now[0] += 119
    with pytest.raises(RateLimited):
        client.digest(reference)
    assert len(scripted.requests) == asked  # not asked while it said to wait

    now[0] += 2
    scripted.answer(200, {"Docker-Content-Digest": DIGEST})
    assert client.digest(reference) == DIGEST
    assert len(scripted.requests) == asked + 1


def test_registry_client_401_without_credentials_is_an_error(
    scripted: ScriptedRegistry, tmp_path: Path
) -> None:
    scripted.answer(401, {"WWW-Authenticate": 'Basic realm="shop"'})
    with pytest.raises(RegistryError, match="answered 401"):
        anonymous(tmp_path).digest(parse_reference(f"{scripted.host}/shop:latest"))


def test_registry_client_bearer_challenge_token_fetched_once_with_credentials(
    tmp_path: Path,
) -> None:
    port = free_port()
    realm = f"http://127.0.0.1:{port}/token"
    basic = "Basic " + base64.b64encode(b"robot:pw").decode()

    def respond(request: Request) -> Response:
        _, path, headers, _ = request
        if path.startswith("/token"):
            assert headers.get("authorization") == basic
            assert "scope=repository%3Ateam%2Fshop%3Apull" in path
            return 200, {"Content-Type": "application/json"}, b'{"token": "t-1", "expires_in": 300}'
        if headers.get("authorization") == "Bearer t-1":
            return 200, {"Docker-Content-Digest": DIGEST}, b""
        challenge = (
            f'Bearer realm="{realm}",service="shop-registry",scope="repository:team/shop:pull"'
        )
        return 401, {"WWW-Authenticate": challenge}, b""

    server = ScriptedRegistry(port, respond)
    try:
        config = tmp_path / "docker"
        config.mkdir()
        (config / "config.json").write_text(
            json.dumps({"auths": {server.host: {"username": "robot", "password": "pw"}}})
        )
        client = RegistryClient(DockerCredentials(config))
        reference = parse_reference(f"{server.host}/team/shop:2")

        assert client.digest(reference) == DIGEST
        assert client.digest(reference) == DIGEST
    finally:
        server.close()
    paths = [path for _, path, _, _ in server.requests]
    assert sum(path.startswith("/token") for path in paths) == 1  # the token is reused
    manifests = [r for r in server.requests if "/manifests/" in r[1]]
    assert {method for method, _, _, _ in manifests} == {"HEAD"}
    accepted = manifests[0][2]["accept"]
    assert "application/vnd.oci.image.index.v1+json" in accepted
    assert "application/vnd.docker.distribution.manifest.list.v2+json" in accepted


def test_registry_client_identity_token_exchanged_as_refresh_token(tmp_path: Path) -> None:
    port = free_port()
    realm = f"http://127.0.0.1:{port}/token"
    forms: list[bytes] = []

    def respond(request: Request) -> Response:
        method, path, headers, body = request
        if method == "POST" and path.startswith("/token"):
            forms.append(body)
            return 200, {"Content-Type": "application/json"}, b'{"access_token": "t-2"}'
        if headers.get("authorization") == "Bearer t-2":
            return 200, {"Docker-Content-Digest": DIGEST}, b""
        return 401, {"WWW-Authenticate": f'Bearer realm="{realm}",service="reg"'}, b""

    server = ScriptedRegistry(port, respond)
    try:
        config = tmp_path / "docker"
        config.mkdir()
        (config / "config.json").write_text(
            json.dumps({"auths": {server.host: {"identitytoken": "refresh-me"}}})
        )
        digest = RegistryClient(DockerCredentials(config)).digest(
            parse_reference(f"{server.host}/shop:1")
        )
    finally:
        server.close()
    assert digest == DIGEST
    [form] = forms
    assert parse_qs(form.decode()) == {
        "scope": ["repository:shop:pull"],
        "service": ["reg"],
        "grant_type": ["refresh_token"],
        "refresh_token": ["refresh-me"],
        "client_id": ["ferry-agent"],
    }
