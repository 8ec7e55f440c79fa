"""The compose security policy through the real agent and Docker (compose v1 or v2, whichever the
host has): every bypass of issue 13 that the installed compose understands is refused before
anything runs (and those it does not know, like lifecycle hooks, before compose runs), compose's
own resolved model is judged, and compose runs with a clean environment."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from ferry.local.stack import LocalStack
from tests.conftest import require_docker
from tests.e2e.conftest import application_containers, remove_deployed_projects
from tests.e2e.test_agent import Agent, agent_process
from tests.helpers import commit, create_application, create_repository, wait_for_status

pytestmark = pytest.mark.docker

IMAGE = "ferry-local/busybox:latest"
# The application whose `extends` file the first pass is told to trust: only compose's resolved
# model then shows what the service asks for.
EXTENDS_APP = f"policy extends {secrets.token_hex(3)}"


def _service(settings: str, name: str = "web") -> str:
    return f"services:\n  {name}:\n    image: {IMAGE}\n    command: [sleep, '600']\n" + "".join(
        f"    {line}\n" for line in settings.strip().splitlines()
    )


Deploy = Callable[[str, str], dict[str, Any]]

# name → (compose file, what the refusal must name). `{...}` are filled in from the host.
REFUSED: dict[str, tuple[str, list[str]]] = {
    "merge_key_first_map_wins": (
        f"""x-bad: &bad {{privileged: true, network_mode: host, volumes: ["/:/host"]}}
x-safe: &safe {{privileged: false, network_mode: bridge, volumes: ["data:/data"]}}
services:
  web:
    <<: [*bad, *safe]
    image: {IMAGE}
    command: [sleep, '600']
volumes:
  data: {{}}
""",
        ["[privileged]", "[network_mode:host]", "[host_path:/]"],
    ),
    "privileged_hook": (
        _service("post_start:\n  - command: id\n    privileged: true"),
        ["privileged post_start hook", "[privileged]"],
    ),
    "unknown_hook": (
        _service("pre_start:\n  - command: id"),
        ["unknown to the policy: pre_start", "[unknown:pre_start]"],
    ),
    "network_mode_other_container": (
        _service("network_mode: container:{container}"),
        ["[network_mode:container]", "{owner}"],
    ),
    "pid_other_container": (_service("pid: container:{container}"), ["[pid:container]"]),
    "ipc_other_container": (_service("ipc: container:{container}"), ["[ipc:container]"]),
    "volumes_from_other_container": (
        _service("volumes_from: ['container:{container}:ro']"),
        ["[volumes_from:container]"],
    ),
    "bind_option_device": (
        _service("volumes: ['root:/host']")
        + "volumes:\n  root:\n    driver_opts: {type: tmpfs, o: bind, device: /}\n",
        ["[host_path:/]"],
    ),
    "rbind_option_device": (
        _service("volumes: ['etc:/host-etc']")
        + "volumes:\n  etc:\n    driver_opts: {type: nfs, o: rbind, device: /etc}\n",
        ["[host_path:/etc]"],
    ),
    "bind_of_deployments_dir": (
        _service("volumes: ['{deployments}:/all']"),
        ["[other_applications:{deployments}]"],
    ),
    "external_volume_of_other_project": (
        _service("volumes: ['theirs:/data']")
        + "volumes:\n  theirs:\n    external: true\n    name: {volume}\n",
        ["[foreign_volume:{volume}]"],
    ),
    "external_network_of_other_project": (
        _service("") + "networks:\n  default:\n    external: true\n    name: {network}\n",
        ["[foreign_network:{network}]"],
    ),
    "provider_service": (
        "services:\n  db:\n    provider:\n      type: awesomecloud\n",
        ["[provider]"],
    ),
    "build_ssh": (_service("build:\n  context: .\n  ssh: [default]"), ["[build:ssh]"]),
    "build_dockerfile_outside": (
        _service("build:\n  context: .\n  dockerfile: /etc/shadow"),
        ["[host_path:/etc/shadow]"],
    ),
    "build_privileged": (
        _service("build:\n  context: .\n  privileged: true"),
        ["[build:privileged]"],
    ),
    "build_entitlements": (
        _service("build:\n  context: .\n  entitlements: [security.insecure]"),
        ["[build:entitlements]"],
    ),
    "label_file_host_path": (_service("label_file: /etc/shadow"), ["[host_path:/etc/shadow]"]),
    "host_wide_capabilities": (
        _service("cap_add: [SYS_TIME, AUDIT_CONTROL, SYSLOG, SYS_RESOURCE]"),
        ["[cap_add:SYS_TIME]", "[cap_add:AUDIT_CONTROL]", "[cap_add:SYSLOG]"],
    ),
    "unconfined_selinux_type": (
        _service("security_opt: ['label=type:spc_t']"),
        ["[security_opt:label=type:spc_t]"],
    ),
    "seccomp_profile_file": (
        _service("security_opt: ['seccomp=/etc/docker/seccomp.json']"),
        ["[security_opt:seccomp=profile]"],
    ),
    "cgroup_parent": (_service("cgroup_parent: /system.slice"), ["[cgroup_parent]"]),
}


@dataclass
class Foreign:
    """Resources another compose project owns on the Docker host (made by this module)."""

    owner: str
    container: str
    volume: str
    network: str


@pytest.fixture(scope="module")
def foreign() -> Iterator[Foreign]:
    import docker

    require_docker()  # module fixtures are set up before the per-test gate runs
    client = docker.from_env()
    suffix = secrets.token_hex(3)
    owner = f"someone-else-{suffix}"
    labels = {"com.docker.compose.project": owner}
    container = client.containers.create(
        IMAGE, ["sleep", "600"], name=f"{owner}-web-1", labels=labels
    )
    volume = client.volumes.create(f"{owner}_data", labels=labels)
    network = client.networks.create(f"{owner}_default", labels=labels)
    try:
        yield Foreign(owner, str(container.name), str(volume.name), str(network.name))
    finally:
        container.remove(force=True)
        volume.remove(force=True)
        network.remove()


@pytest.fixture(scope="module")
def policy_agent(
    stack: LocalStack, api: httpx.Client, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Agent]:
    """One agent for this module's deploys; EXTENDS_APP may read compose files it does not see."""
    with agent_process(
        stack,
        api,
        tmp_path_factory.mktemp("policy-agent"),
        FERRY_POLICY_BYPASS=json.dumps({EXTENDS_APP: ["unchecked_file"]}),
    ) as process:
        yield process


@pytest.fixture
def applications() -> Iterator[set[str]]:
    ids: set[str] = set()
    yield ids
    remove_deployed_projects(ids)


@pytest.fixture
def deploy(
    api: httpx.Client, git_repo: Path, policy_agent: Agent, applications: set[str]
) -> Deploy:
    """Commit a compose file and create an application for it on the module's agent; returns the
    application once its first deploy ended."""

    def run(compose_file: str, name: str) -> dict[str, Any]:
        head = commit(git_repo, "app/compose.yaml", compose_file)
        repository = create_repository(api, git_repo)
        application = create_application(
            api, name=name, repository_id=repository["id"], agent_id=policy_agent.id
        )
        applications.add(application["id"])
        return wait_for_status(
            api, application["id"], "synced", "out_of_sync", target=head, timeout=90
        )

    return run


def _fill(text: str, values: Mapping[str, str]) -> str:
    for name, value in values.items():
        text = text.replace(f"{{{name}}}", value)
    return text


def _assert_refused_nothing_started(
    application: dict[str, Any], agent: Agent, wanted: list[str]
) -> None:
    error = application["last_sync_error"] or ""
    assert application["sync_status"] == "out_of_sync", application
    assert "refused by the security policy" in error, error
    for part in wanted:
        assert part in error, error
    assert application_containers(application["id"]) == []
    assert not (agent.deployments / application["project_name"]).exists()


@pytest.mark.parametrize("case", list(REFUSED))
def test_agent_policy_bypass_refused_before_anything_runs(
    deploy: Deploy, policy_agent: Agent, foreign: Foreign, unique: str, case: str
) -> None:
    compose_file, wanted = REFUSED[case]
    fill = {
        "container": foreign.container,
        "volume": foreign.volume,
        "network": foreign.network,
        "owner": foreign.owner,
        "deployments": str(policy_agent.deployments.resolve()),
    }

    application = deploy(_fill(compose_file, fill), f"policy {case} {unique}")

    _assert_refused_nothing_started(application, policy_agent, [_fill(p, fill) for p in wanted])


def test_agent_policy_judges_what_compose_resolves(
    deploy: Deploy, policy_agent: Agent, tmp_path: Path
) -> None:
    base = tmp_path / "base.yaml"
    base.write_text(f"services:\n  base:\n    image: {IMAGE}\n    privileged: true\n")
    compose_file = (
        f"services:\n  web:\n    extends: {{file: {base}, service: base}}\n"
        "    command: [sleep, '600']\n"
    )

    application = deploy(compose_file, EXTENDS_APP)

    _assert_refused_nothing_started(application, policy_agent, ["[privileged]"])


def test_agent_compose_clean_environment_agent_variables_never_reach_containers(
    deploy: Deploy, policy_agent: Agent, unique: str
) -> None:
    token = policy_agent.environment["FERRY_AGENT_TOKEN"]
    compose_file = (
        _service(
            """environment:
  - FERRY_AGENT_TOKEN
  - FERRY_API_URL
  - LEAKED=${FERRY_AGENT_TOKEN:-nothing}
volumes:
  - ./data:/data
  - cache:/cache"""
        )
        + "volumes:\n  cache: {}\n"
    )

    application = deploy(compose_file, f"policy clean {unique}")

    assert application["sync_status"] == "synced", application["last_sync_error"]
    [container] = application_containers(application["id"])
    assert token not in json.dumps(container.attrs)
    # compose passes a variable it does not have as a bare name: Docker then leaves it unset.
    seen = container.exec_run(["env"]).output.decode().splitlines()
    assert "LEAKED=nothing" in seen
    assert not [line for line in seen if line.startswith("FERRY_")]


def test_agent_compose_secret_from_agent_variable_refused_or_empty(
    deploy: Deploy, policy_agent: Agent, unique: str
) -> None:
    token = policy_agent.environment["FERRY_AGENT_TOKEN"]
    compose_file = _service("secrets: [token]") + (
        "secrets:\n  token:\n    environment: FERRY_AGENT_TOKEN\n"
    )

    application = deploy(compose_file, f"policy secret {unique}")

    if application["sync_status"] == "out_of_sync":  # compose v1 knows no `environment` secrets
        assert token not in (application["last_sync_error"] or "")
        assert application_containers(application["id"]) == []
    else:
        [container] = application_containers(application["id"])
        read = container.exec_run(["cat", "/run/secrets/token"])
        assert read.output == b""
