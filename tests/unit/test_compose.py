"""The agent's compose files: what write_files puts on disk, and how health settles."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from ferry.domain.messages import ContainerState, DeployRequest
from ferry.domain.models import HealthStatus
from ferry_agent.compose import (
    APPLICATION_LABEL,
    COMMIT_LABEL,
    OVERRIDE_NAME,
    ComposeRunner,
    DeployError,
    settled_health,
)

COMMIT = "0123456789abcdef0123456789abcdef01234567"
COMPOSE = """services:
  web:
    image: nginx:1.27
    ports: ["8080:80"]
  worker:
    image: busybox:1.36
    command: ["sleep", "3600"]
"""


def _job(
    compose_file: str = COMPOSE, compose_path: str = "apps/shop/compose.yaml"
) -> DeployRequest:
    return DeployRequest(
        request_id="req_1",
        application_id="app_1",
        application_name="My Shop",
        project_name="my-shop",
        commit=COMMIT,
        compose_path=compose_path,
        compose_file=compose_file,
        heartbeat_seconds=60,
    )


@pytest.fixture
def runner(tmp_path: Path) -> ComposeRunner:
    return ComposeRunner(tmp_path / "deployments")


def _read(path: Path) -> dict[str, Any]:
    document = yaml.safe_load(path.read_text())
    assert isinstance(document, dict)
    return document


def test_compose_runner_write_files_compose_file_at_repository_path(
    runner: ComposeRunner, tmp_path: Path
) -> None:
    compose_path, _ = runner.write_files(_job())

    assert compose_path == tmp_path / "deployments" / "my-shop" / "apps" / "shop" / "compose.yaml"
    assert compose_path.read_text() == COMPOSE


def test_compose_runner_write_files_override_labels_every_service(runner: ComposeRunner) -> None:
    compose_path, override_path = runner.write_files(_job())

    assert override_path == compose_path.parent / OVERRIDE_NAME
    assert OVERRIDE_NAME == ".ferry.override.yaml"
    override = _read(override_path)
    assert set(override) == {"services"}
    assert override["services"] == {
        service: {"labels": {APPLICATION_LABEL: "app_1", COMMIT_LABEL: COMMIT}}
        for service in ("web", "worker")
    }
    assert APPLICATION_LABEL == "ferry.application-id"
    assert COMMIT_LABEL == "ferry.commit"


def test_compose_runner_write_files_version_key_copied_into_override(
    runner: ComposeRunner,
) -> None:
    compose = 'version: "3.8"\nservices:\n  web:\n    image: nginx:1.27\n'

    _, override_path = runner.write_files(_job(compose))

    override = _read(override_path)
    assert override["version"] == "3.8"
    assert list(override) == ["version", "services"]
    assert set(override["services"]) == {"web"}


def test_compose_runner_write_files_top_level_path_next_to_project(
    runner: ComposeRunner, tmp_path: Path
) -> None:
    compose_path, override_path = runner.write_files(_job(compose_path="./compose.yaml"))

    assert compose_path == tmp_path / "deployments" / "my-shop" / "compose.yaml"
    assert override_path == tmp_path / "deployments" / "my-shop" / OVERRIDE_NAME


def test_compose_runner_write_files_redeploy_replaces_previous_files(
    runner: ComposeRunner,
) -> None:
    runner.write_files(_job())
    smaller = "services:\n  web:\n    image: nginx:1.28\n"

    compose_path, override_path = runner.write_files(_job(smaller))

    assert compose_path.read_text() == smaller
    assert set(_read(override_path)["services"]) == {"web"}


@pytest.mark.parametrize(
    "compose_path",
    ["../compose.yaml", "../../escape.yaml", "apps/../../x.yaml", "/etc/compose.yaml"],
)
def test_compose_runner_write_files_escaping_path_raises_deploy_error(
    runner: ComposeRunner, tmp_path: Path, compose_path: str
) -> None:
    with pytest.raises(DeployError, match="escapes"):
        runner.write_files(_job(compose_path=compose_path))

    assert not (tmp_path / "escape.yaml").exists()
    assert not (tmp_path / "deployments" / "compose.yaml").exists()


@pytest.mark.parametrize(
    "compose",
    [
        "",
        "version: '3'\n",
        "services:\n",
        "services:\n  - web\n",
        "services: web\n",
        "- services\n",
        "just text\n",
    ],
)
def test_compose_runner_write_files_without_services_raises_deploy_error(
    runner: ComposeRunner, compose: str
) -> None:
    with pytest.raises(DeployError, match="no services"):
        runner.write_files(_job(compose))

    assert not list(runner.deployments_dir.rglob(OVERRIDE_NAME))


@pytest.mark.parametrize(
    "compose", ["services: [unclosed\n", "services:\n  web: {image: x\n", "\t- :\n"]
)
def test_compose_runner_write_files_invalid_yaml_raises_deploy_error(
    runner: ComposeRunner, compose: str
) -> None:
    with pytest.raises(DeployError, match="not valid YAML"):
        runner.write_files(_job(compose))

    assert not list(runner.deployments_dir.rglob(OVERRIDE_NAME))


def _container(state: str = "running", health: str | None = None) -> ContainerState:
    return ContainerState(name=f"c-{state}-{health}", service="web", state=state, health=health)


def test_settled_health_no_containers_unhealthy() -> None:
    assert settled_health([]) is HealthStatus.UNHEALTHY


@pytest.mark.parametrize("state", ["exited", "restarting", "created", "paused", "dead"])
def test_settled_health_any_container_not_running_unhealthy(state: str) -> None:
    containers = [_container("running", "healthy"), _container(state)]

    assert settled_health(containers) is HealthStatus.UNHEALTHY


def test_settled_health_failing_check_unhealthy() -> None:
    containers = [_container("running", "healthy"), _container("running", "unhealthy")]

    assert settled_health(containers) is HealthStatus.UNHEALTHY


def test_settled_health_check_starting_unknown() -> None:
    containers = [_container("running", "healthy"), _container("running", "starting")]

    assert settled_health(containers) is HealthStatus.UNKNOWN


def test_settled_health_starting_and_exited_unhealthy() -> None:
    containers = [_container("running", "starting"), _container("exited")]

    assert settled_health(containers) is HealthStatus.UNHEALTHY


def test_settled_health_all_running_healthy_or_without_check_healthy() -> None:
    containers = [_container("running", "healthy"), _container("running", None)]

    assert settled_health(containers) is HealthStatus.HEALTHY
    assert settled_health([_container("running", None)]) is HealthStatus.HEALTHY
