"""Shared fixtures: one local stack per test session (moto server, template.yaml, in-process
handlers, API under uvicorn), and Docker detection that fails in CI instead of skipping."""

from __future__ import annotations

import functools
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ferry.local.cloud import LocalOptions
from ferry.local.stack import LocalStack
from tests.helpers import JsonReceiver
from tests.oidc_issuer import Issuer

# Short enough to test timeouts, long enough for a real compose up on a slow machine.
TEST_DEPLOY_TIMEOUT_SECONDS = 40
TEST_HEARTBEAT_SECONDS = 8


@functools.cache
def docker_daemon_answers() -> str | None:
    """None when a Docker daemon answers, else why not (asked once per session)."""
    try:
        import docker

        docker.from_env().ping()
    except Exception as exc:
        return f"no Docker daemon answers ({exc})"
    return None


def running_in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require_docker() -> None:
    """Fail in CI without a Docker daemon (a broken setup is never a pass), skip elsewhere with
    the reason, so `make test` passes on a machine without Docker."""
    reason = docker_daemon_answers()
    if reason is None:
        return
    if running_in_ci():
        pytest.fail(f"{reason}; CI must provide Docker")
    pytest.skip(f"{reason}; this test needs Docker")


@pytest.fixture(autouse=True)
def _docker_gate(request: pytest.FixtureRequest) -> None:
    """Tests marked `docker` need a daemon (`require_docker`)."""
    if request.node.get_closest_marker("docker") is not None:
        require_docker()


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """The local stack without its agent process (tests that need the agent start it)."""
    home = tmp_path_factory.mktemp("ferry-home")
    local = LocalStack(
        LocalOptions(
            home=home,
            api_port=0,
            deploy_timeout_seconds=TEST_DEPLOY_TIMEOUT_SECONDS,
            deploy_heartbeat_seconds=TEST_HEARTBEAT_SECONDS,
            run_schedules=False,  # tests fire schedules themselves (scheduler.fire_all)
        ),
        start_agent=False,
    )
    local.start()
    yield local
    local.stop()


@pytest.fixture(scope="session")
def api(stack: LocalStack) -> Iterator[httpx.Client]:
    """An HTTP client for the API, authenticated with the stack's admin token."""
    assert stack.state is not None
    with httpx.Client(
        base_url=f"{stack.api_url}/api/v1",
        headers={"Authorization": f"Bearer {stack.state.token}"},
        timeout=30,
    ) as client:
        yield client


@pytest.fixture
def unique() -> str:
    """A short random suffix for names that must not collide between tests."""
    return secrets.token_hex(3)


@pytest.fixture
def git_repo(tmp_path: Path) -> Path:
    """An empty working repository on branch main."""
    from dulwich.refs import Ref
    from dulwich.repo import Repo

    path = tmp_path / "repo"
    path.mkdir()
    repo = Repo.init(str(path))
    repo.refs.set_symbolic_ref(Ref(b"HEAD"), Ref(b"refs/heads/main"))
    repo.close()
    return path


@pytest.fixture
def receiver() -> Iterator[JsonReceiver]:
    """A loopback notification target (`receiver.url` is an apprise json:// URL)."""
    started = JsonReceiver()
    yield started
    started.close()


@pytest.fixture
def actions_issuer(monkeypatch: pytest.MonkeyPatch) -> Iterator[Issuer]:
    """A loopback OIDC issuer the stack's GitHub Actions route trusts for this test."""
    from ferry.settings import get_settings
    from ferry.sync import github_actions

    started = Issuer()
    monkeypatch.setattr(get_settings(), "github_oidc_issuer", started.url)
    github_actions._verifier.cache_clear()
    yield started
    started.close()
    github_actions._verifier.cache_clear()
