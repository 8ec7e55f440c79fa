"""The agent's compose files: how write_files judges them (as written, then as the installed
compose resolves them, with the clean environment compose runs with), what it puts on disk, and
how health settles. compose's `config` needs no Docker daemon."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from ferry.domain.messages import ContainerState, DeployRequest
from ferry.domain.models import HealthStatus
from ferry_agent.compose import (
    APPLICATION_LABEL,
    COMMIT_LABEL,
    COMPOSE_VARIABLES,
    OVERRIDE_NAME,
    STAGED_PREFIX,
    ComposeRunner,
    DeployError,
    ProjectFiles,
    settled_health,
)
from ferry_agent.policy import NOTHING_ON_HOST

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
    compose_file: str = COMPOSE,
    compose_path: str = "apps/shop/compose.yaml",
    application_name: str = "My Shop",
) -> DeployRequest:
    return DeployRequest(
        request_id="req_1",
        application_id="app_1",
        application_name=application_name,
        project_name="my-shop",
        commit=COMMIT,
        compose_path=compose_path,
        compose_file=compose_file,
        heartbeat_seconds=60,
    )


@pytest.fixture
def runner(tmp_path: Path) -> ComposeRunner:
    return ComposeRunner(tmp_path / "deployments")


def _write(runner: ComposeRunner, job: DeployRequest) -> tuple[Path, Path]:
    files = runner.write_files(job, NOTHING_ON_HOST)
    return files.compose_path, files.override_path


def _on_disk(runner: ComposeRunner) -> list[str]:
    root = runner.deployments_dir
    return sorted(str(path.relative_to(root)) for path in root.rglob("*")) if root.exists() else []


def _read(path: Path) -> dict[str, Any]:
    document = yaml.safe_load(path.read_text())
    assert isinstance(document, dict)
    return document


def test_compose_runner_write_files_compose_file_at_repository_path(
    runner: ComposeRunner, tmp_path: Path
) -> None:
    compose_path, _ = _write(runner, _job())

    assert compose_path == tmp_path / "deployments" / "my-shop" / "apps" / "shop" / "compose.yaml"
    assert compose_path.read_text() == COMPOSE


def test_compose_runner_write_files_override_labels_every_service(runner: ComposeRunner) -> None:
    compose_path, override_path = _write(runner, _job())

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

    _, override_path = _write(runner, _job(compose))

    override = _read(override_path)
    assert override["version"] == "3.8"
    assert list(override) == ["version", "services"]
    assert set(override["services"]) == {"web"}


def test_compose_runner_write_files_top_level_path_next_to_project(
    runner: ComposeRunner, tmp_path: Path
) -> None:
    compose_path, override_path = _write(runner, _job(compose_path="./compose.yaml"))

    assert compose_path == tmp_path / "deployments" / "my-shop" / "compose.yaml"
    assert override_path == tmp_path / "deployments" / "my-shop" / OVERRIDE_NAME


def test_compose_runner_write_files_redeploy_replaces_previous_files(
    runner: ComposeRunner,
) -> None:
    _write(runner, _job())
    smaller = "services:\n  web:\n    image: nginx:1.28\n"

    compose_path, override_path = _write(runner, _job(smaller))

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
        _write(runner, _job(compose_path=compose_path))

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
        _write(runner, _job(compose))

    assert not list(runner.deployments_dir.rglob(OVERRIDE_NAME))


@pytest.mark.parametrize(
    "compose", ["services: [unclosed\n", "services:\n  web: {image: x\n", "\t- :\n"]
)
def test_compose_runner_write_files_invalid_yaml_raises_deploy_error(
    runner: ComposeRunner, compose: str
) -> None:
    with pytest.raises(DeployError, match="not valid YAML"):
        _write(runner, _job(compose))

    assert not list(runner.deployments_dir.rglob(OVERRIDE_NAME))


def test_compose_runner_write_files_images_as_compose_resolves_them(
    runner: ComposeRunner,
) -> None:
    compose = "services:\n  web:\n    image: nginx:${TAG:-1.27}\n  tool:\n    build: .\n"

    files = runner.write_files(_job(compose, compose_path="compose.yaml"), NOTHING_ON_HOST)

    assert files == ProjectFiles(
        runner.deployments_dir / "my-shop" / "compose.yaml",
        runner.deployments_dir / "my-shop" / OVERRIDE_NAME,
        ["nginx:1.27"],
    )
    assert not [name for name in _on_disk(runner) if STAGED_PREFIX in name]


MERGED_PRIVILEGE = """x-bad: &bad {privileged: true, network_mode: host}
x-safe: &safe {privileged: false, network_mode: bridge}
services:
  web:
    <<: [*bad, *safe]
    image: nginx
"""


def test_compose_runner_write_files_merge_key_bypass_refused(runner: ComposeRunner) -> None:
    with pytest.raises(DeployError, match="security policy") as caught:
        runner.write_files(_job(MERGED_PRIVILEGE), NOTHING_ON_HOST)

    assert "[privileged]" in str(caught.value)
    assert "[network_mode:host]" in str(caught.value)
    assert _on_disk(runner) == []


def test_compose_runner_write_files_privileged_hook_refused_before_compose_runs(
    runner: ComposeRunner,
) -> None:
    # compose v1 knows no hooks: had compose run first, its "Unsupported config option" would be
    # all the user learns; the policy names the hook itself.
    compose = """services:
  web:
    image: nginx
    post_start:
      - command: chown -R 1000 /data
        privileged: true
    pre_start:
      - command: id
"""
    with pytest.raises(DeployError, match="security policy") as caught:
        runner.write_files(_job(compose), NOTHING_ON_HOST)

    message = str(caught.value)
    assert "privileged post_start hook" in message
    assert "unknown to the policy: pre_start" in message
    assert "docker compose config" not in message
    assert _on_disk(runner) == []


def test_compose_runner_write_files_resolved_model_judged_refused_leaves_nothing(
    tmp_path: Path,
) -> None:
    # `extends` of a file the first pass never sees (excused for this application): only
    # compose's resolved model shows that the service runs privileged.
    base = tmp_path / "base.yaml"
    base.write_text("services:\n  base:\n    image: nginx\n    privileged: true\n")
    runner = ComposeRunner(tmp_path / "deployments", policy_bypass={"My Shop": ["unchecked_file"]})
    compose = f"services:\n  web:\n    extends: {{file: {base}, service: base}}\n"

    with pytest.raises(DeployError, match="security policy") as caught:
        runner.write_files(_job(compose), NOTHING_ON_HOST)

    assert "[privileged]" in str(caught.value)
    assert _on_disk(runner) == []


def test_compose_runner_write_files_refused_redeploy_keeps_deployed_files(
    runner: ComposeRunner, tmp_path: Path
) -> None:
    compose_path, _ = _write(runner, _job())
    before = _on_disk(runner)
    base = tmp_path / "base.yaml"
    base.write_text("services:\n  base:\n    image: nginx\n    cap_add: [SYS_ADMIN]\n")
    runner.policy_bypass = {"My Shop": ["unchecked_file"]}

    with pytest.raises(DeployError, match="cap_add:SYS_ADMIN"):
        runner.write_files(
            _job(f"services:\n  web:\n    extends: {{file: {base}, service: base}}\n"),
            NOTHING_ON_HOST,
        )

    assert _on_disk(runner) == before
    assert compose_path.read_text() == COMPOSE


def test_compose_runner_write_files_compose_error_names_the_users_file(
    runner: ComposeRunner,
) -> None:
    compose = "services:\n  web:\n    image: nginx\n    restart: [always]\n"

    with pytest.raises(DeployError, match="docker compose config failed") as caught:
        runner.write_files(_job(compose), NOTHING_ON_HOST)

    assert "security policy" not in str(caught.value)
    assert STAGED_PREFIX not in str(caught.value)
    assert "restart" in str(caught.value)
    assert _on_disk(runner) == []


def test_compose_runner_write_files_project_env_file_interpolates(
    runner: ComposeRunner,
) -> None:
    folder = runner.deployments_dir / "my-shop"
    folder.mkdir(parents=True)
    (folder / ".env").write_text("MEDIA=./media\nTAG=1.27\n")
    compose = "services:\n  web:\n    image: nginx:${TAG}\n    volumes: ['${MEDIA}:/media']\n"

    files = runner.write_files(_job(compose, compose_path="compose.yaml"), NOTHING_ON_HOST)

    assert files.images == ["nginx:1.27"]


def test_compose_runner_environment_clean_of_the_agents_variables(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("FERRY_AGENT_TOKEN", "agent-secret")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws-secret")
    monkeypatch.setenv("SSH_AUTH_SOCK", "/tmp/agent.sock")
    monkeypatch.setenv("DOCKER_CONFIG", "/root/.docker")
    monkeypatch.setenv("DOCKER_HOST", "ssh://deploy@elsewhere")
    runner = ComposeRunner(tmp_path, docker_host="unix:///run/ferry/tunnel.sock")

    environment = runner.compose_environment()

    assert set(environment) <= set(COMPOSE_VARIABLES)
    assert environment["DOCKER_HOST"] == "unix:///run/ferry/tunnel.sock"
    assert environment["DOCKER_CONFIG"] == "/root/.docker"
    assert environment["PATH"]
    assert not {"FERRY_AGENT_TOKEN", "AWS_SECRET_ACCESS_KEY", "SSH_AUTH_SOCK"} & set(environment)


def test_compose_runner_agent_variables_interpolate_to_nothing(
    runner: ComposeRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FERRY_AGENT_TOKEN", "agent-secret")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws-secret")
    compose = """services:
  web:
    image: nginx
    environment:
      - FERRY_AGENT_TOKEN
      - AWS_SECRET_ACCESS_KEY
      - T=${FERRY_AGENT_TOKEN:-}
"""
    files = runner.write_files(_job(compose, compose_path="compose.yaml"), NOTHING_ON_HOST)

    model = runner.resolve(
        _job(compose), files.compose_path.parent, [files.compose_path, files.override_path]
    )
    environment = model["services"]["web"]["environment"]
    assert environment == {"FERRY_AGENT_TOKEN": None, "AWS_SECRET_ACCESS_KEY": None, "T": ""}
    assert "secret" not in str(model)


CORPUS = Path(__file__).resolve().parent.parent / "fixtures" / "awesome-compose"
EXPECTED: dict[str, dict[str, Any]] = json.loads((CORPUS / "expected.json").read_text())


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_compose_runner_write_files_corpus_verdict_through_compose(
    runner: ComposeRunner, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    # Both passes, as a deploy runs them: the verdicts of expected.json hold for compose's model.
    monkeypatch.setenv("HOME", "/home/deploy")  # minecraft's `~/minecraft_data`
    path = next(p for p in sorted((CORPUS / name).iterdir()) if p.suffix in (".yaml", ".yml"))
    job = _job(path.read_text(), compose_path=path.name, application_name=name)
    folder = runner.deployments_dir / job.project_name
    folder.mkdir(parents=True)
    (folder / ".env").write_text("PLEX_MEDIA_PATH=/srv/media\n")
    for service in (yaml.safe_load(path.read_text())["services"] or {}).values():
        build = service.get("build")
        context = build.get("context") if isinstance(build, dict) else build
        if isinstance(context, str):  # compose v1 wants build contexts to exist
            (folder / context).mkdir(parents=True, exist_ok=True)
    try:
        runner.write_files(job, NOTHING_ON_HOST)
    except DeployError as exc:
        refusal = str(exc)
    else:
        refusal = ""

    if EXPECTED[name]["verdict"] == "accept":
        # compose v1 cannot read react-rust-postgres's file (v2 can): that is compose's refusal.
        assert "security policy" not in refusal, refusal
    else:
        assert "refused by the security policy" in refusal


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
