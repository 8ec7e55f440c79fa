"""The agent's reading of image references and of the host's Docker credentials, as the Docker
CLI reads them: `auths` entries, credential helpers (a real helper program on PATH speaking the
helper protocol), the default store."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest

from ferry_agent.registry import (
    Credentials,
    DockerCredentials,
    ImageReference,
    is_loopback,
    parse_reference,
    repo_digest,
)

DIGEST = "sha256:" + "c0" * 32


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("nginx", ImageReference("docker.io", "library/nginx", "latest", None)),
        ("nginx:1.27", ImageReference("docker.io", "library/nginx", "1.27", None)),
        ("octo/shop", ImageReference("docker.io", "octo/shop", "latest", None)),
        ("docker.io/octo/shop:2", ImageReference("docker.io", "octo/shop", "2", None)),
        (
            "index.docker.io/library/redis",
            ImageReference("docker.io", "library/redis", "latest", None),
        ),
        ("ghcr.io/octo-org/web:main", ImageReference("ghcr.io", "octo-org/web", "main", None)),
        ("127.0.0.1:5000/app", ImageReference("127.0.0.1:5000", "app", "latest", None)),
        ("localhost/team/app:v1", ImageReference("localhost", "team/app", "v1", None)),
        (f"nginx@{DIGEST}", ImageReference("docker.io", "library/nginx", None, DIGEST)),
        (f"ghcr.io/o/w:1@{DIGEST}", ImageReference("ghcr.io", "o/w", "1", DIGEST)),
        (
            "ferry-local/busybox:latest",
            ImageReference("docker.io", "ferry-local/busybox", "latest", None),
        ),
    ],
)
def test_parse_reference_normalized_as_docker_does(text: str, expected: ImageReference) -> None:
    assert parse_reference(text) == expected


@pytest.mark.parametrize("text", ["Nginx", "nginx:bad tag", "ghcr.io/o/W:1", ""])
def test_parse_reference_invalid_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"invalid|not a valid|empty"):
        parse_reference(text)


def test_repo_digest_matches_the_reference_repository_only() -> None:
    digests = [f"127.0.0.1:5000/app@{DIGEST}", "nginx@sha256:" + "11" * 32]
    assert repo_digest(digests, parse_reference("127.0.0.1:5000/app:latest")) == DIGEST
    assert (
        repo_digest(digests, parse_reference("docker.io/library/nginx:1")) == "sha256:" + "11" * 32
    )
    assert repo_digest(digests, parse_reference("127.0.0.1:5001/app:latest")) is None
    assert repo_digest([], parse_reference("ferry-local/busybox:latest")) is None


@pytest.mark.parametrize(
    ("registry", "loopback"),
    [("127.0.0.1:5000", True), ("localhost:5000", True), ("[::1]:5000", True),
     ("ghcr.io", False), ("10.0.0.5:5000", False), ("docker.io", False)],
)  # fmt: skip
def test_is_loopback(registry: str, loopback: bool) -> None:
    assert is_loopback(registry) is loopback


def _config(directory: Path, config: dict[str, object]) -> DockerCredentials:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(config))
    return DockerCredentials(directory)


def _auth(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


def test_docker_credentials_auths_entry_by_host_and_docker_hub_key(tmp_path: Path) -> None:
    credentials = _config(
        tmp_path / "docker",
        {
            "auths": {
                "127.0.0.1:5000": {"auth": _auth("ci", "s3cret:with-colon")},
                "https://index.docker.io/v1/": {"auth": _auth("octo", "hub-token")},
                "https://registry.example.com": {"identitytoken": "refresh-me"},
            }
        },
    )
    assert credentials.for_registry("127.0.0.1:5000") == Credentials("ci", "s3cret:with-colon")
    assert credentials.for_registry("docker.io") == Credentials("octo", "hub-token")
    assert credentials.for_registry("registry.example.com") == Credentials(
        identity_token="refresh-me"
    )
    assert credentials.for_registry("ghcr.io") is None


def test_docker_credentials_missing_config_means_anonymous(tmp_path: Path) -> None:
    assert DockerCredentials(tmp_path / "absent").for_registry("ghcr.io") is None


def test_docker_credentials_repr_hides_the_password() -> None:
    assert "hub-token" not in repr(Credentials("octo", "hub-token"))


@pytest.fixture
def helper_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """`docker-credential-ferrytest`: a real helper program answering `get` for one server
    (and "not found" for others), logging what it was asked."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    helper = bin_dir / "docker-credential-ferrytest"
    asked = tmp_path / "asked"
    helper.write_text(
        "#!/bin/sh\n"
        '[ "$1" = get ] || exit 2\n'
        "read server\n"
        f'echo "$server" >> {asked}\n'
        f'echo "${{FERRY_AGENT_TOKEN:-none}} ${{AWS_SECRET_ACCESS_KEY:-none}}" >> {asked}.env\n'
        'case "$server" in\n'
        "  123456789012.dkr.ecr.eu-west-1.amazonaws.com)\n"
        '    echo \'{"ServerURL":"x","Username":"AWS","Secret":"ecr-password"}\' ;;\n'
        '  ghcr.io) echo \'{"ServerURL":"ghcr.io","Username":"<token>","Secret":"gho-id"}\' ;;\n'
        '  *) echo "credentials not found in native keychain"; exit 1 ;;\n'
        "esac\n"
    )
    helper.chmod(helper.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FERRY_AGENT_TOKEN", "agt_1.the-agents-secret")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "the-agents-session")
    return asked


def test_docker_credentials_cred_helper_for_its_registry(
    tmp_path: Path, helper_on_path: Path
) -> None:
    ecr = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
    credentials = _config(
        tmp_path / "docker",
        {"credHelpers": {ecr: "ferrytest"}, "auths": {"ghcr.io": {"auth": _auth("u", "p")}}},
    )
    assert credentials.for_registry(ecr) == Credentials("AWS", "ecr-password")
    assert credentials.for_registry("ghcr.io") == Credentials("u", "p")  # no helper for it
    assert helper_on_path.read_text().split() == [ecr]
    # The helper runs without the agent's own secrets, as compose does.
    assert helper_on_path.with_suffix(".env").read_text().split() == ["none", "none"]


def test_docker_credentials_default_store_identity_token_and_fallback_to_auths(
    tmp_path: Path, helper_on_path: Path
) -> None:
    credentials = _config(
        tmp_path / "docker",
        {"credsStore": "ferrytest", "auths": {"quay.io": {"auth": _auth("robot", "pw")}}},
    )
    assert credentials.for_registry("ghcr.io") == Credentials(identity_token="gho-id")
    # The store has nothing for quay.io: the entry `docker login` left in auths is used.
    assert credentials.for_registry("quay.io") == Credentials("robot", "pw")
    assert credentials.for_registry("docker.io") is None
    assert helper_on_path.read_text().split() == [
        "ghcr.io",
        "quay.io",
        "https://index.docker.io/v1/",
    ]


def test_docker_credentials_helper_not_installed_falls_back_to_auths(tmp_path: Path) -> None:
    credentials = _config(
        tmp_path / "docker",
        {"credsStore": "not-installed-here", "auths": {"ghcr.io": {"auth": _auth("u", "p")}}},
    )
    assert credentials.for_registry("ghcr.io") == Credentials("u", "p")
