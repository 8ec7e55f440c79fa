"""The compose security policy: every rule, how compose syntax is read (as written and as compose
resolves it), isolation between applications, default deny, and the awesome-compose corpus with
the verdicts in its expected.json."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from ferry.errors import InvalidInput
from ferry_agent.compose import ComposeRunner
from ferry_agent.compose_yaml import load_compose, service_names
from ferry_agent.policy import (
    DANGEROUS_CAPABILITIES,
    HARMLESS_CAPABILITIES,
    HostResources,
    PolicyOptions,
    PolicyViolation,
    ResourceKind,
    Violation,
    check_application_name,
    check_compose,
    enforce,
)

CORPUS = Path(__file__).resolve().parent.parent / "fixtures" / "awesome-compose"
EXPECTED: dict[str, dict[str, Any]] = json.loads((CORPUS / "expected.json").read_text())
COMPOSE_NAMES = ("compose.yaml", "compose.yml", "docker-compose.yml", "docker-compose.yaml")
# The rules each `because` of expected.json stands for.
REASON_RULES = {
    "bind mounts of /etc/pihole and /etc/dnsmasq.d": {
        "host_path:/etc/pihole",
        "host_path:/etc/dnsmasq.d",
    },
    "cap_add NET_ADMIN": {"cap_add:NET_ADMIN"},
    "network_mode: host": {"network_mode:host"},
    "bind mount of the Docker socket /var/run/docker.sock": {"docker_socket:/var/run/docker.sock"},
    "cap_add NET_ADMIN and SYS_MODULE": {"cap_add:NET_ADMIN", "cap_add:SYS_MODULE"},
    "bind mounts under /usr and /lib": {
        "host_path:/usr/share/appdata/wireguard/config",
        "host_path:/usr/src",
        "host_path:/lib/modules",
    },
}
# compose always runs with HOME set; minecraft's `~/minecraft_data` needs it.
CORPUS_ENVIRONMENT = {"HOME": "/home/deploy"}


@pytest.fixture
def deployments(tmp_path: Path) -> Path:
    return tmp_path / "deployments"


@pytest.fixture
def project(deployments: Path) -> Path:
    path = deployments / "web"
    path.mkdir(parents=True)
    return path


def service(**settings: Any) -> dict[str, Any]:
    return {"services": {"web": {"image": "nginx", **settings}}}


def bind(source: str) -> dict[str, Any]:
    return service(volumes=[f"{source}:/data"])


class Host:
    """What a Docker host has, as the policy asks for it: (kind, name) → compose project."""

    def __init__(self, resources: Mapping[tuple[ResourceKind, str], str] | None = None) -> None:
        self.resources = dict(resources or {})

    def project_of(self, kind: ResourceKind, name: str) -> str | None:
        return self.resources.get((kind, name))


def rules(
    document: Any,
    project: Path,
    environment: Mapping[str, str] | None = None,
    *,
    host: HostResources | None = None,
    resolved: bool = False,
    **options: Any,
) -> set[str]:
    violations = check_compose(
        document,
        project_dir=project,
        environment=environment or {},
        options=PolicyOptions(**options),
        resources=host or Host(),
        resolved=resolved,
    )
    return {violation.rule for violation in violations}


def written(text: str, project: Path, **kwargs: Any) -> set[str]:
    """The rules a compose file's text breaks, read the way compose reads it."""
    found: set[str] = set()
    for document in load_compose(text):
        found |= rules(document, project, **kwargs)
    return found


def compose_file(folder: Path) -> Path:
    return next(folder / name for name in COMPOSE_NAMES if (folder / name).exists())


# --- service settings ---------------------------------------------------------------------------


@pytest.mark.parametrize("value", [True, "true", "yes", "${PRIVILEGED:-true}", "maybe"])
def test_check_compose_privileged_true_refused(project: Path, value: object) -> None:
    assert rules(service(privileged=value), project) == {"privileged"}


@pytest.mark.parametrize("value", [False, "false", None, "${PRIVILEGED:-false}"])
def test_check_compose_privileged_false_accepted(project: Path, value: object) -> None:
    assert rules(service(privileged=value), project) == set()


def test_check_compose_use_api_socket_true_refused(project: Path) -> None:
    assert rules(service(use_api_socket=True), project) == {"use_api_socket"}
    assert rules(service(use_api_socket=False), project) == set()


@pytest.mark.parametrize("capability", sorted(DANGEROUS_CAPABILITIES))
@pytest.mark.parametrize("spelling", ["{}", "CAP_{}", "cap_{lower}", "{lower}", " Cap_{} "])
def test_check_compose_dangerous_capability_any_spelling_refused(
    project: Path, capability: str, spelling: str
) -> None:
    written = spelling.format(capability, lower=capability.lower())
    assert rules(service(cap_add=[written]), project) == {f"cap_add:{capability}"}


@pytest.mark.parametrize("capability", ["CHOWN", "NET_BIND_SERVICE", "cap_kill", "SETUID"])
def test_check_compose_harmless_capability_accepted(project: Path, capability: str) -> None:
    assert rules(service(cap_add=[capability]), project) == set()


def test_check_compose_cap_drop_all_accepted(project: Path) -> None:
    assert rules(service(cap_drop=["ALL"]), project) == set()


@pytest.mark.parametrize("key", ["network_mode", "pid", "ipc", "uts", "userns_mode", "cgroup"])
@pytest.mark.parametrize("value", ["host", "HOST", " host "])
def test_check_compose_host_namespace_refused(project: Path, key: str, value: str) -> None:
    assert rules(service(**{key: value}), project) == {f"{key}:host"}


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("network_mode", "bridge"),
        ("network_mode", "none"),
        ("network_mode", "service:db"),
        ("pid", "service:db"),
        ("ipc", "shareable"),
        ("ipc", "private"),
        ("cgroup", "private"),
    ],
)
def test_check_compose_other_namespace_modes_accepted(project: Path, key: str, value: str) -> None:
    assert rules(service(**{key: value}), project) == set()


@pytest.mark.parametrize(
    ("option", "rule"),
    [
        ("seccomp:unconfined", "security_opt:seccomp=unconfined"),
        ("seccomp=unconfined", "security_opt:seccomp=unconfined"),
        ("SECCOMP=Unconfined", "security_opt:seccomp=unconfined"),
        ("apparmor=unconfined", "security_opt:apparmor=unconfined"),
        ("apparmor:unconfined", "security_opt:apparmor=unconfined"),
        ("label:disable", "security_opt:label=disable"),
        ("label=disable", "security_opt:label=disable"),
        ("systempaths=unconfined", "security_opt:systempaths=unconfined"),
    ],
)
def test_check_compose_unconfined_security_opt_refused(
    project: Path, option: str, rule: str
) -> None:
    assert rules(service(security_opt=[option]), project) == {rule}


@pytest.mark.parametrize(
    "option",
    [
        "no-new-privileges:true",
        "no-new-privileges",
        "seccomp=builtin",
        "apparmor=docker-default",
        "label=type:svirt_apache_t",
        "label=level:s0:c100,c200",
        "label:user:system_u",
    ],
)
def test_check_compose_confining_security_opt_accepted(project: Path, option: str) -> None:
    assert rules(service(security_opt=[option]), project) == set()


def test_check_compose_devices_listed_refused(project: Path) -> None:
    assert rules(service(devices=["/dev/ttyUSB0:/dev/ttyUSB0"]), project) == {"devices"}
    assert rules(service(devices=[]), project) == set()


def test_check_compose_device_cgroup_rules_listed_refused(project: Path) -> None:
    assert rules(service(device_cgroup_rules=["c 1:3 mr"]), project) == {"device_cgroup_rules"}


def test_check_compose_volumes_from_outside_container_refused(project: Path) -> None:
    assert rules(service(volumes_from=["container:other-app"]), project) == {
        "volumes_from:container"
    }
    assert rules(service(volumes_from=["db", "service:db:ro"]), project) == set()


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("network_mode", "container:other-web-1"),
        ("pid", "container:other-web-1"),
        ("ipc", "container:other-web-1"),
        ("volumes_from", ["container:other-web-1:ro"]),
        ("external_links", ["other-web-1:web"]),
    ],
)
def test_check_compose_container_of_other_project_refused(
    project: Path, key: str, value: object
) -> None:
    host = Host({("container", "other-web-1"): "other"})
    assert rules(service(**{key: value}), project, host=host) == {f"{key}:container"}
    unlabelled = Host({("container", "other-web-1"): ""})
    assert rules(service(**{key: value}), project, host=unlabelled) == {f"{key}:container"}
    assert rules(service(**{key: value}), project) == {f"{key}:container"}


@pytest.mark.parametrize("key", ["network_mode", "pid", "ipc"])
def test_check_compose_container_of_own_project_accepted(project: Path, key: str) -> None:
    host = Host({("container", "web-db-1"): "web"})
    assert rules(service(**{key: "container:web-db-1"}), project, host=host) == set()
    assert rules(service(volumes_from=["container:web-db-1:ro"]), project, host=host) == set()


def test_check_compose_own_container_name_not_yet_created_accepted(project: Path) -> None:
    document = service(network_mode="container:shop-vpn")
    document["services"]["vpn"] = {"image": "vpn", "container_name": "shop-vpn"}
    assert rules(document, project) == set()
    # The name is taken by another project's container: joining it would reach that one.
    assert rules(document, project, host=Host({("container", "shop-vpn"): "other"})) == {
        "network_mode:container"
    }


def test_check_compose_container_reference_message_says_whose(project: Path) -> None:
    host = Host({("container", "db"): "shop"})
    [violation] = check_compose(service(pid="container:db"), project_dir=project, resources=host)
    assert "compose project shop" in violation.detail
    assert "service:<name>" in violation.detail


def test_check_compose_yaml_merge_key_settings_checked(project: Path) -> None:
    text = "x-base: &base\n  privileged: true\nservices:\n  web:\n    <<: *base\n    image: nginx\n"
    assert written(text, project) == {"privileged"}


MERGE_FIRST_WINS = """
x-bad: &bad {privileged: true, network_mode: host, volumes: ["/:/host"]}
x-safe: &safe {privileged: false, network_mode: bridge, volumes: ["data:/data"]}
services:
  web:
    <<: [*bad, *safe]
    image: nginx
"""


def test_check_compose_merge_key_list_first_map_wins_like_compose(project: Path) -> None:
    assert written(MERGE_FIRST_WINS, project) == {"privileged", "network_mode:host", "host_path:/"}


def test_load_compose_merge_keys_first_map_and_own_keys_win() -> None:
    [document] = load_compose(
        "a: &a {x: 1, longer_key: a, shared: a}\n"
        "b: &b {x: 2, longer_key: b, shared: b, only_b: b}\n"
        "c: {<<: [*a, *b], shared: own}\n"
    )
    assert isinstance(document, dict)
    assert document["c"] == {"x": 1, "longer_key": "a", "shared": "own", "only_b": "b"}


def test_load_compose_reset_and_override_tags_read_like_compose(project: Path) -> None:
    text = """
services:
  web:
    image: nginx
    ports: !reset []
    cap_add: !override [CHOWN]
    command: !override sleep 1
"""
    [document] = load_compose(text)
    assert isinstance(document, dict)
    assert document["services"]["web"] == {
        "image": "nginx",
        "cap_add": ["CHOWN"],
        "command": "sleep 1",
    }
    assert written(text, project) == set()


def test_check_compose_override_tag_still_judged(project: Path) -> None:
    text = "services:\n  web:\n    image: nginx\n    privileged: !override true\n"
    assert written(text, project) == {"privileged"}


def test_check_compose_reset_keeps_merged_value_stricter_than_compose(project: Path) -> None:
    text = """
x-bad: &bad {privileged: true}
services:
  web:
    <<: *bad
    image: nginx
    privileged: !reset null
"""
    assert written(text, project) == {"privileged"}


def test_check_compose_multi_document_file_accepted_and_every_document_judged(
    project: Path,
) -> None:
    safe = "services:\n  web:\n    image: nginx\n---\nservices:\n  db:\n    image: postgres\n"
    assert written(safe, project) == set()
    assert service_names(load_compose(safe)) == ["web", "db"]
    bad = safe + "---\nservices:\n  db:\n    cap_add: [SYS_ADMIN]\n"
    assert written(bad, project) == {"cap_add:SYS_ADMIN"}


def test_enforce_documents_of_one_file_share_container_names(project: Path) -> None:
    documents = load_compose(
        "services:\n  db:\n    image: postgres\n    container_name: shop-db\n"
        "---\n"
        "services:\n  web:\n    image: nginx\n    network_mode: container:shop-db\n"
    )
    enforce(documents, project_dir=project)


# --- lifecycle hooks, providers, builds and other settings ---------------------------------------


@pytest.mark.parametrize("hook", ["post_start", "pre_stop"])
def test_check_compose_privileged_hook_refused(project: Path, hook: str) -> None:
    document = service(**{hook: [{"command": "chown -R 1000 /data", "privileged": True}]})
    [violation] = check_compose(document, project_dir=project)
    assert violation.rule == "privileged"
    assert hook in violation.detail


@pytest.mark.parametrize("hook", ["post_start", "pre_stop"])
def test_check_compose_unprivileged_hook_accepted(project: Path, hook: str) -> None:
    document = service(
        **{hook: [{"command": ["sh", "-c", "echo"], "user": "root", "environment": ["A=1"]}]}
    )
    assert rules(document, project) == set()


def test_check_compose_unknown_hook_and_hook_option_refused_by_name(project: Path) -> None:
    document = service(
        pre_start=[{"command": "x"}], post_start=[{"command": "x", "cgroup": "host"}]
    )
    violations = check_compose(document, project_dir=project)
    assert {v.rule for v in violations} == {"unknown:pre_start", "unknown:post_start.cgroup"}
    assert "unknown to the policy: pre_start" in str(PolicyViolation(violations))


def test_check_compose_provider_service_refused(project: Path) -> None:
    document = {"services": {"db": {"provider": {"type": "awesomecloud", "options": {"a": 1}}}}}
    assert rules(document, project) == {"provider"}


@pytest.mark.parametrize(
    ("build", "rule"),
    [
        ({"context": ".", "ssh": ["default"]}, "build:ssh"),
        ({"context": ".", "ssh": {"deploy": "/home/alice/.ssh/id_ed25519"}}, "build:ssh"),
        ({"context": ".", "privileged": True}, "build:privileged"),
        ({"context": ".", "entitlements": ["security.insecure"]}, "build:entitlements"),
        ({"context": ".", "network": "host"}, "build:network=host"),
    ],
)
def test_check_compose_privileged_build_refused(
    project: Path, build: dict[str, Any], rule: str
) -> None:
    assert rules(service(build=build), project) == {rule}


def test_check_compose_build_dockerfile_outside_project_refused(project: Path) -> None:
    absolute = service(build={"context": ".", "dockerfile": "/etc/shadow"})
    assert rules(absolute, project) == {"host_path:/etc/shadow", "project_escape:/etc/shadow"}
    elsewhere = service(build={"context": ".", "dockerfile": "/srv/build/Dockerfile"})
    assert rules(elsewhere, project) == {"project_escape:/srv/build/Dockerfile"}
    sibling = service(build={"context": "app", "dockerfile": "../../other/Dockerfile"})
    assert rules(sibling, project) == {f"project_escape:{project.parent}/other/Dockerfile"}


def test_check_compose_build_dockerfile_inside_project_accepted(project: Path) -> None:
    for dockerfile in ("Dockerfile", "../docker/Dockerfile.prod", f"{project}/Dockerfile"):
        build = {"context": "app", "dockerfile": dockerfile}
        assert rules(service(build=build), project) == set(), dockerfile
    remote = {"context": "https://github.com/a/b.git", "dockerfile": "Dockerfile"}
    assert rules(service(build=remote), project) == set()


def test_check_compose_build_local_cache_paths_checked(project: Path) -> None:
    build = {
        "context": ".",
        "cache_from": ["type=local,src=/home/alice/.docker/cache", "user/app:cache"],
        "cache_to": ["type=local,dest=./cache"],
    }
    assert rules(service(build=build), project) == {"credential_path:/home/alice/.docker/cache"}


def test_check_compose_label_file_host_path_refused(project: Path) -> None:
    assert rules(service(label_file="/etc/shadow"), project) == {"host_path:/etc/shadow"}
    assert rules(service(label_file=["./labels"]), project) == set()


@pytest.mark.parametrize("capability", ["SYS_TIME", "AUDIT_CONTROL", "SYSLOG", "SYS_RESOURCE"])
def test_check_compose_host_wide_capability_refused(project: Path, capability: str) -> None:
    assert rules(service(cap_add=[capability.lower()]), project) == {f"cap_add:{capability}"}


def test_check_compose_capability_unknown_to_policy_refused(project: Path) -> None:
    violations = check_compose(service(cap_add=["CHECKPOINT_RESTORE"]), project_dir=project)
    assert [v.rule for v in violations] == ["cap_add:CHECKPOINT_RESTORE"]
    assert "unknown to the policy" in violations[0].detail


@pytest.mark.parametrize("capability", sorted(HARMLESS_CAPABILITIES))
def test_check_compose_harmless_capability_set_accepted(project: Path, capability: str) -> None:
    assert rules(service(cap_add=[capability]), project) == set()


@pytest.mark.parametrize(
    ("option", "rule"),
    [
        ("label=type:spc_t", "security_opt:label=type:spc_t"),
        ("label:type:unconfined_t", "security_opt:label=type:unconfined_t"),
        ("label=type:container_runtime_t", "security_opt:label=type:container_runtime_t"),
        ("seccomp=/srv/profiles/allow-all.json", "security_opt:seccomp=profile"),
        ("seccomp:./seccomp.json", "security_opt:seccomp=profile"),
        ("writable-cgroups=true", "unknown:security_opt.writable-cgroups"),
        ("label=whatever", "unknown:security_opt.label=whatever"),
    ],
)
def test_check_compose_security_opt_unconfined_type_profile_or_unknown_refused(
    project: Path, option: str, rule: str
) -> None:
    assert rules(service(security_opt=[option]), project) == {rule}


def test_check_compose_cgroup_parent_refused(project: Path) -> None:
    assert rules(service(cgroup_parent="/system.slice"), project) == {"cgroup_parent"}
    assert rules(service(cgroup_parent=""), project) == set()


@pytest.mark.parametrize(
    "settings",
    [
        {"gpus": "all"},
        {"deploy": {"resources": {"reservations": {"devices": [{"capabilities": ["gpu"]}]}}}},
    ],
)
def test_check_compose_gpus_and_device_reservations_refused(
    project: Path, settings: dict[str, Any]
) -> None:
    assert rules(service(**settings), project) == {"devices"}


# --- default deny -------------------------------------------------------------------------------


def test_check_compose_unknown_keys_refused_by_name(project: Path) -> None:
    document = service(
        credential_spec={"file": "spec.json"},
        models=["llm"],
        build={"context": ".", "frobnicate": True},
        volumes=[{"type": "bind", "source": "./x", "target": "/x", "bind": {"magic": 1}}],
    )
    document["models"] = {"llm": {"model": "ai/smollm2"}}
    document["volumes"] = {"v": {"driver": "local", "mystery": "x"}}
    document["networks"] = {"n": {"driver": "bridge", "mystery": "x"}}
    document["secrets"] = {"s": {"file": "./s", "mystery": "x"}}
    found = rules(document, project)
    assert found == {
        "unknown:credential_spec",
        "unknown:models",
        "unknown:build.frobnicate",
        "unknown:volumes.bind.magic",
        "unknown:volume.mystery",
        "unknown:network.mystery",
        "unknown:secret.mystery",
    }


def test_check_compose_extension_and_empty_unknown_keys_ignored(project: Path) -> None:
    document = service(**{"x-notes": {"privileged": True}, "models": [], "pre_start": None})
    document["x-anchors"] = {"anything": True}
    assert rules(document, project) == set()


def test_check_compose_unknown_key_bypassed_by_id(project: Path) -> None:
    document = service(pre_start=[{"command": "x"}], credential_spec={"file": "x"})
    found = rules(document, project, bypass=frozenset({"unknown:pre_start"}))
    assert found == {"unknown:credential_spec"}


def test_check_compose_every_key_of_the_corpus_known() -> None:
    unknown = set()
    for name in EXPECTED:
        folder = CORPUS / name
        for document in load_compose(compose_file(folder).read_text()):
            violations = check_compose(document, project_dir=folder, environment=CORPUS_ENVIRONMENT)
            unknown |= {v.rule for v in violations if v.kind == "unknown"}
    assert unknown == set()


# --- compose's resolved model -------------------------------------------------------------------


def test_check_compose_resolved_model_judged_without_interpolation(project: Path) -> None:
    # What `docker-compose config` prints: paths absolute, variables substituted, `$` escaped.
    model = {
        "services": {
            "web": {
                "image": "nginx",
                "environment": {"PRICE": "$$5", "TOKEN": None},
                "privileged": True,
                "volumes": [f"{project}/data:/data:rw", "/etc:/host-etc:rw"],
                "network_mode": "$$host",
            }
        },
        "version": "3.9",
    }
    found = rules(model, project, resolved=True)
    assert found == {"privileged", "host_path:/etc", "foreign_network:$host"}


def test_check_compose_resolved_model_v2_long_syntax_judged(project: Path) -> None:
    model = {
        "name": "web",
        "services": {
            "web": {
                "image": "nginx",
                "command": None,
                "networks": {"default": None},
                "volumes": [
                    {
                        "type": "bind",
                        "source": "/var/run/docker.sock",
                        "target": "/var/run/docker.sock",
                        "bind": {"create_host_path": True},
                    }
                ],
                "post_start": [{"command": ["id"], "privileged": True}],
            }
        },
        "networks": {"default": {"name": "web_default", "ipam": {}, "external": False}},
    }
    assert rules(model, project, resolved=True) == {
        "docker_socket:/var/run/docker.sock",
        "privileged",
    }


def test_check_compose_resolved_relative_bind_device_is_the_daemon_s(project: Path) -> None:
    model = service()
    model["volumes"] = {"v": {"driver_opts": {"type": "none", "o": "bind", "device": "etc"}}}
    assert rules(model, project, resolved=True) == {"host_path:/etc"}


# --- host paths ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "rule"),
    [
        ("/", "host_path:/"),
        ("/etc", "host_path:/etc"),
        ("/etc/pihole/", "host_path:/etc/pihole"),
        ("/boot", "host_path:/boot"),
        ("/root", "host_path:/root"),
        ("/root/.ssh", "host_path:/root/.ssh"),
        ("/sys/fs/cgroup", "host_path:/sys/fs/cgroup"),
        ("/proc", "host_path:/proc"),
        ("/usr/src", "host_path:/usr/src"),
        ("/bin", "host_path:/bin"),
        ("/sbin", "host_path:/sbin"),
        ("/lib/modules", "host_path:/lib/modules"),
        ("/lib64", "host_path:/lib64"),
        ("/dev/sda", "host_path:/dev/sda"),
        ("/run/containerd", "host_path:/run/containerd"),
        ("/var/run", "host_path:/var/run"),
        ("/var", "host_path:/var"),
        ("/var/lib/docker/volumes", "host_path:/var/lib/docker/volumes"),
    ],
)
def test_check_compose_bind_of_system_path_refused(project: Path, source: str, rule: str) -> None:
    assert rules(bind(source), project) == {rule}


@pytest.mark.parametrize(
    "source",
    [
        "/var/run/docker.sock",
        "/run/docker.sock",
        "/home/alice/.docker/run/docker.sock",
        "/srv/sockets/docker.sock",
    ],
)
def test_check_compose_bind_of_docker_socket_refused(project: Path, source: str) -> None:
    assert rules(bind(source), project) == {f"docker_socket:{source}"}


@pytest.mark.parametrize(
    "source",
    [
        "/home",
        "/home/alice",
        "/home/alice/.ssh",
        "/home/alice/.ssh/id_ed25519",
        "/home/alice/.aws/credentials",
        "/home/alice/.kube/config",
        "/home/alice/.docker/config.json",
        "/home/alice/.gnupg",
        "/home/alice/keys/id_rsa",
        "/home/alice/tls/server.key",
        "/home/alice/tls/server.PEM",
        "/home/alice/backup/shadow",
        "/home/alice/backup/passwd",
        "/home/alice/backup/sudoers",
        "/home/alice/backup/cron.d",
        "/home/alice/backup/crontabs/alice",
        "/home/alice/backup/pam.d",
        "/var/spool/cron",
        "/srv/.netrc",
    ],
)
def test_check_compose_bind_of_credential_path_refused(project: Path, source: str) -> None:
    assert rules(bind(source), project) == {f"credential_path:{source}"}


@pytest.mark.parametrize(
    "source",
    [
        "/home/alice/media",
        "/home/alice/keys/id_rsa.pub",
        "/home/alice/.sshrc.d",
        "/srv/data",
        "/opt/app/config",
        "/etcetera",
        "/usr2/data",
        "/mnt/media",
    ],
)
def test_check_compose_bind_of_ordinary_host_path_accepted(project: Path, source: str) -> None:
    assert rules(bind(source), project) == set()


@pytest.mark.parametrize(
    ("source", "rule"),
    [
        ("/etc/../etc/shadow", "host_path:/etc/shadow"),
        ("//etc", "host_path:/etc"),
        ("/./etc/", "host_path:/etc"),
        ("/srv/../etc", "host_path:/etc"),
        ("/../../etc", "host_path:/etc"),
        ("//", "host_path:/"),
        ("/.", "host_path:/"),
        ("/srv/..", "host_path:/"),
        ("/var/run//docker.sock/", "docker_socket:/var/run/docker.sock"),
        ("/home/alice/x/../.ssh", "credential_path:/home/alice/.ssh"),
    ],
)
def test_check_compose_path_normalization_tricks_refused(
    project: Path, source: str, rule: str
) -> None:
    assert rules(bind(source), project) == {rule}


def test_check_compose_bind_target_inside_container_ignored(project: Path) -> None:
    document = service(
        volumes=[
            "./prometheus:/etc/prometheus",
            "data:/var/run/app",
            "/srv/app:/root/.ssh:ro",
        ]
    )
    assert rules(document, project) == set()


def test_check_compose_named_and_anonymous_volumes_accepted(project: Path) -> None:
    document = service(
        volumes=[
            "db-data:/var/lib/mysql",
            "etc:/etc/app",
            "/code/node_modules",
            "/usr/src/app/node_modules",
            {"type": "volume", "source": "cache", "target": "/cache"},
            {"type": "volume", "target": "/scratch"},
            {"type": "tmpfs", "target": "/tmp"},
        ]
    )
    document["volumes"] = {"db-data": None, "etc": {}, "cache": {"driver": "local"}}
    assert rules(document, project) == set()


def test_check_compose_long_syntax_bind_checked_by_source(project: Path) -> None:
    refused = service(volumes=[{"type": "bind", "source": "/etc", "target": "/config"}])
    inside = service(volumes=[{"type": "bind", "source": "./conf", "target": "/etc/nginx"}])
    bare = service(volumes=[{"type": "bind", "source": "conf", "target": "/etc/nginx"}])
    assert rules(refused, project) == {"host_path:/etc"}
    assert rules(inside, project) == set()
    assert rules(bare, project) == set()


def test_check_compose_volume_type_with_path_source_checked_as_bind(project: Path) -> None:
    document = service(volumes=[{"type": "volume", "source": "/etc", "target": "/x"}])
    assert rules(document, project) == {"host_path:/etc"}


@pytest.mark.parametrize("source", [".", "./", "./data", "./a/../b", "data/../conf"])
def test_check_compose_relative_bind_inside_project_accepted(project: Path, source: str) -> None:
    assert rules(bind(source), project) == set()


def test_check_compose_relative_bind_escaping_project_refused(project: Path) -> None:
    sibling = project.parent / "other"
    assert rules(bind("../other"), project) == {f"project_escape:{sibling}"}
    assert rules(bind("./data/../../other"), project) == {f"project_escape:{sibling}"}


def test_check_compose_relative_bind_escaping_to_system_path_refused(project: Path) -> None:
    escape = "./" + "../" * len(project.parts) + "etc"
    assert rules(bind(escape), project) == {"project_escape:/etc", "host_path:/etc"}


def test_check_compose_symlink_out_of_project_refused(project: Path) -> None:
    (project / "config").symlink_to("/etc")
    assert rules(bind("./config"), project) == {"project_escape:/etc", "host_path:/etc"}
    assert rules(bind("./config"), project, resolve_symlinks=False) == set()


def test_check_compose_project_under_system_dir_own_files_accepted() -> None:
    # An agent running as root may keep its deployments under /root: the project's own files
    # are not "host system paths".
    project = Path("/root/ferry/deployments/web")
    document = service(volumes=["./data:/data", "./keys/server.key:/k", "/root/ferry/x:/y"])
    found = rules(document, project, resolve_symlinks=False)
    assert found == {"host_path:/root/ferry/x"}


def test_check_compose_docker_socket_in_project_refused(project: Path) -> None:
    assert rules(bind("./docker.sock"), project) == {f"docker_socket:{project}/docker.sock"}


# --- `~` and interpolation ----------------------------------------------------------------------


def test_check_compose_tilde_expanded_from_home(project: Path) -> None:
    home = {"HOME": "/home/alice"}
    assert rules(bind("~/minecraft_data"), project, home) == set()
    assert rules(bind("~/.ssh"), project, home) == {"credential_path:/home/alice/.ssh"}
    assert rules(bind("~"), project, home) == {"credential_path:/home/alice"}
    assert rules(bind("~/data"), project, {"HOME": "/root"}) == {"host_path:/root/data"}


def test_check_compose_tilde_without_home_unset_variable(project: Path) -> None:
    assert rules(bind("~/data"), project) == {"unset_variable:HOME"}


def test_check_compose_tilde_of_other_user_invalid(project: Path) -> None:
    assert rules(bind("~bob/data"), project) == {"invalid_compose"}


@pytest.mark.parametrize(
    ("source", "environment", "expected"),
    [
        ("${DATA}", {"DATA": "/etc"}, {"host_path:/etc"}),
        ("$DATA", {"DATA": "/etc"}, {"host_path:/etc"}),
        ("${DATA}/sub", {"DATA": "/etc"}, {"host_path:/etc/sub"}),
        ("${DATA:-/etc}", {}, {"host_path:/etc"}),
        ("${DATA:-/etc}", {"DATA": ""}, {"host_path:/etc"}),
        ("${DATA-/etc}", {"DATA": "./data"}, set()),
        ("${DATA:-./data}", {}, set()),
        ("${DATA:-${FALLBACK}}", {"DATA": "./data"}, set()),
        ("${DATA:-${FALLBACK}}", {"FALLBACK": "/proc"}, {"host_path:/proc"}),
        ("${DATA:+/etc}", {"DATA": "x"}, {"host_path:/etc"}),
        ("${DATA}", {"DATA": "named-volume"}, set()),
        ("${MEDIA:-/srv/media}", {}, set()),
    ],
)
def test_check_compose_interpolated_bind_source_checked(
    project: Path, source: str, environment: dict[str, str], expected: set[str]
) -> None:
    assert rules(bind(source), project, environment) == expected


def test_check_compose_unset_variable_in_bind_source_clear_error(project: Path) -> None:
    violations = check_compose(bind("${MEDIA}"), project_dir=project)
    assert [violation.rule for violation in violations] == ["unset_variable:MEDIA"]
    assert "MEDIA" in violations[0].detail
    assert "not set" in violations[0].detail


def test_check_compose_required_variable_message_reported(project: Path) -> None:
    violations = check_compose(bind("${MEDIA:?point MEDIA at the library}"), project_dir=project)
    assert [violation.rule for violation in violations] == ["unset_variable:MEDIA"]
    assert "point MEDIA at the library" in violations[0].detail


def test_check_compose_unset_variable_in_nested_default_reported(project: Path) -> None:
    # DATA has a default, so only the default's own unset variable is an error.
    assert rules(bind("${DATA:-${FALLBACK}}"), project) == {"unset_variable:FALLBACK"}


def test_check_compose_interpolated_settings_checked(project: Path) -> None:
    document = service(
        network_mode="${NET:-host}",
        cap_add=["${CAP}"],
        security_opt=["seccomp=${PROFILE}"],
    )
    environment = {"CAP": "cap_sys_admin", "PROFILE": "unconfined"}
    assert rules(document, project, environment) == {
        "network_mode:host",
        "cap_add:SYS_ADMIN",
        "security_opt:seccomp=unconfined",
    }


def test_check_compose_agent_variables_interpolate_to_nothing_for_compose(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The agent judges with the environment compose runs with, which has none of its own.
    monkeypatch.setenv("FERRY_AGENT_TOKEN", "/etc")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "/root")
    compose_environment = ComposeRunner(project.parent).compose_environment()
    document = bind("${FERRY_AGENT_TOKEN:-./data}")
    document["services"]["web"]["environment"] = ["AWS_SECRET_ACCESS_KEY"]
    assert rules(document, project, compose_environment) == set()
    assert rules(bind("${AWS_SECRET_ACCESS_KEY}"), project, compose_environment) == {
        "unset_variable:AWS_SECRET_ACCESS_KEY"
    }


def test_check_compose_unset_variable_outside_checked_fields_ignored(project: Path) -> None:
    document = service(environment=["TZ=${TIMEZONE}", "PASSWORD=${PW}"], command="echo $HOME")
    assert rules(document, project) == set()


def test_check_compose_escaped_dollar_literal(project: Path) -> None:
    assert rules(service(network_mode="$$host"), project) == {"foreign_network:$host"}
    assert rules(bind("$${DATA}"), project) == set()


@pytest.mark.parametrize("source", ["$", "${}", "${DATA", "${DATA:0:2}", "/srv/$/x"])
def test_check_compose_invalid_interpolation_invalid_compose(project: Path, source: str) -> None:
    assert rules(bind(source), project) == {"invalid_compose"}


# --- binds in disguise and other host files -----------------------------------------------------


def test_check_compose_driver_opts_bind_device_checked(project: Path) -> None:
    def volume(**driver_opts: str) -> dict[str, Any]:
        document = service(volumes=["media:/media"])
        document["volumes"] = {"media": {"driver": "local", "driver_opts": driver_opts}}
        return document

    assert rules(volume(type="none", o="bind", device="/etc"), project) == {"host_path:/etc"}
    assert rules(volume(type="none", o="bind", device="//etc/"), project) == {"host_path:/etc"}
    assert rules(volume(type="none", o="bind", device="./media"), project) == set()
    assert rules(volume(type="none", o="bind", device="/srv/media"), project) == set()
    assert rules(volume(type="ext4", device="/dev/sdb1"), project) == {"host_path:/dev/sdb1"}
    assert rules(volume(type="nfs", o="addr=10.0.0.1", device=":/export"), project) == set()
    assert rules(volume(type="cifs", o="addr=nas", device="//nas/share"), project) == set()
    assert rules(volume(type="tmpfs", device="tmpfs"), project) == set()
    assert rules(volume(type="none", o="bind", device="${MEDIA}"), project) == {
        "unset_variable:MEDIA"
    }


@pytest.mark.parametrize(
    ("driver_opts", "rule"),
    [
        ({"type": "tmpfs", "o": "bind", "device": "/"}, "host_path:/"),
        ({"type": "nfs", "o": "rbind", "device": "/etc"}, "host_path:/etc"),
        ({"type": "cifs", "o": "ro,bind", "device": "/root"}, "host_path:/root"),
        (
            {"type": "nfs", "o": "addr=10.0.0.1,rbind,ro", "device": "/home/alice"},
            "credential_path:/home/alice",
        ),
    ],
)
def test_check_compose_bind_option_makes_device_a_host_path_whatever_the_type(
    project: Path, driver_opts: dict[str, str], rule: str
) -> None:
    document = service(volumes=["media:/media"])
    document["volumes"] = {"media": {"driver": "local", "driver_opts": driver_opts}}
    assert rules(document, project) == {rule}


def test_check_compose_driver_opts_bind_reported_at_top_level(project: Path) -> None:
    document = service()
    document["volumes"] = {"media": {"driver_opts": {"o": "bind", "device": "/var/run"}}}
    [violation] = check_compose(document, project_dir=project)
    assert violation.service is None
    assert "volume media" in violation.detail


def test_check_compose_host_network_declared_refused(project: Path) -> None:
    external = service()
    external["networks"] = {"default": {"name": "host", "external": True}}
    driver = service()
    driver["networks"] = {"hostnet": {"driver": "host"}}
    bridge = service()
    bridge["networks"] = {"backend": {"driver": "bridge"}, "front": None}
    assert rules(external, project) == {"network_mode:host"}
    assert rules(driver, project) == {"network_mode:host"}
    assert rules(bridge, project) == set()


@pytest.mark.parametrize("section", ["secrets", "configs"])
def test_check_compose_secret_and_config_files_checked(project: Path, section: str) -> None:
    document = service()
    document[section] = {"a": {"file": "/etc/shadow"}, "b": {"file": "db/password.txt"}}
    assert rules(document, project) == {"host_path:/etc/shadow"}
    document[section] = {"c": {"file": "/home/alice/.aws/credentials"}, "d": {"environment": "X"}}
    assert rules(document, project) == {"credential_path:/home/alice/.aws/credentials"}


def test_check_compose_env_file_and_build_context_checked(project: Path) -> None:
    assert rules(service(env_file=["/root/.env"]), project) == {"host_path:/root/.env"}
    assert rules(service(env_file=[{"path": "./.env", "required": False}]), project) == set()
    assert rules(service(build="/"), project) == {"host_path:/"}
    assert (
        rules(service(build={"context": "backend", "dockerfile": "Dockerfile"}), project) == set()
    )
    remote = service(build="https://github.com/docker/awesome-compose.git#master:flask")
    assert rules(remote, project) == set()
    extra = service(build={"context": ".", "additional_contexts": {"keys": "/home/alice/.ssh"}})
    assert rules(extra, project) == {"credential_path:/home/alice/.ssh"}


def test_check_compose_included_files_unchecked_refused(project: Path) -> None:
    document = service(extends={"file": "../base.yaml", "service": "web"})
    document["include"] = ["db/compose.yaml"]
    assert rules(document, project) == {
        f"unchecked_file:{project.parent}/base.yaml",
        f"unchecked_file:{project}/db/compose.yaml",
    }
    assert rules(service(extends={"service": "base"}), project) == set()


# --- isolation between applications and allow-list mode -----------------------------------------


def test_check_compose_bind_of_own_folder_accepted(project: Path, deployments: Path) -> None:
    document = service(volumes=[f"{project}:/app", f"{project}/data:/data", "./conf:/conf"])
    assert rules(document, project, deployments_dir=deployments) == set()


@pytest.mark.parametrize(
    "source", ["{deployments}", "{deployments}/other", "{deployments}/other/x"]
)
def test_check_compose_bind_of_deployments_or_other_application_refused(
    project: Path, deployments: Path, source: str
) -> None:
    path = source.format(deployments=deployments)
    assert rules(bind(path), project, deployments_dir=deployments) == {f"other_applications:{path}"}


def test_check_compose_bind_containing_deployments_refused(
    project: Path, deployments: Path
) -> None:
    parent = deployments.parent
    assert rules(bind(str(parent)), project, deployments_dir=deployments) == {
        f"other_applications:{parent}"
    }


def test_check_compose_relative_bind_into_other_application_refused(
    project: Path, deployments: Path
) -> None:
    found = rules(bind("../other"), project, deployments_dir=deployments)
    assert found == {
        f"project_escape:{deployments}/other",
        f"other_applications:{deployments}/other",
    }


def test_check_compose_symlink_into_other_application_refused(
    project: Path, deployments: Path
) -> None:
    (deployments / "other").mkdir()
    (project / "peek").symlink_to(deployments / "other")
    found = rules(bind("./peek"), project, deployments_dir=deployments)
    assert found == {
        f"project_escape:{deployments}/other",
        f"other_applications:{deployments}/other",
    }


def test_check_compose_nested_compose_file_own_folder_is_the_application(
    deployments: Path,
) -> None:
    nested = deployments / "web" / "apps" / "shop"
    nested.mkdir(parents=True)
    own = f"{deployments}/web/shared:/shared"
    assert rules(service(volumes=[own]), nested, deployments_dir=deployments) == set()
    other = f"{deployments}/web-admin/x:/x"
    assert rules(service(volumes=[other]), nested, deployments_dir=deployments) == {
        f"other_applications:{deployments}/web-admin/x"
    }


@pytest.mark.parametrize(
    "document",
    [
        service(env_file=["{deployments}/other/.env"]),
        service(label_file="{deployments}/other/labels"),
        service(build={"context": "{deployments}/other"}),
        {**service(), "secrets": {"s": {"file": "{deployments}/other/secret.txt"}}},
    ],
)
def test_check_compose_other_application_files_refused_everywhere(
    project: Path, deployments: Path, document: dict[str, Any]
) -> None:
    text = json.dumps(document).replace("{deployments}", str(deployments))
    found = rules(json.loads(text), project, deployments_dir=deployments)
    assert any(rule.startswith(f"other_applications:{deployments}/other") for rule in found)


def test_check_compose_allow_list_bind_inside_own_folder_accepted(
    project: Path, deployments: Path
) -> None:
    document = service(volumes=["./data:/data", f"{project}/shared:/shared", "named:/n", "/anon"])
    found = rules(document, project, bind_allow_list_mode=True, deployments_dir=deployments)
    assert found == set()


def test_check_compose_allow_list_bind_outside_own_folder_refused(
    project: Path, deployments: Path
) -> None:
    found = rules(
        bind("/srv/media"), project, bind_allow_list_mode=True, deployments_dir=deployments
    )
    assert found == {"outside_allow_list:/srv/media"}
    assert rules(bind("/srv/media"), project, deployments_dir=deployments) == set()
    shared = f"{deployments}/shared"
    assert rules(bind(shared), project, bind_allow_list_mode=True, deployments_dir=deployments) == {
        f"outside_allow_list:{shared}",
        f"other_applications:{shared}",
    }


def test_check_compose_allow_list_listed_path_accepted(project: Path, deployments: Path) -> None:
    found = rules(
        bind("/srv/media/films"),
        project,
        bind_allow_list_mode=True,
        deployments_dir=deployments,
        bypass=frozenset({"outside_allow_list:/srv/media"}),
    )
    assert found == set()


def test_check_compose_allow_list_symlink_out_of_own_folder_refused(
    project: Path, deployments: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (project / "link").symlink_to(outside)
    found = rules(
        bind(f"{project}/link"), project, bind_allow_list_mode=True, deployments_dir=deployments
    )
    assert found == {f"outside_allow_list:{outside}"}


def test_check_compose_external_volume_of_other_project_refused(project: Path) -> None:
    document = service(volumes=["media:/media"])
    document["volumes"] = {"media": {"external": True, "name": "other_media"}}
    host = Host({("volume", "other_media"): "other"})
    assert rules(document, project, host=host) == {"foreign_volume:other_media"}
    unlabelled = Host({("volume", "other_media"): ""})
    assert rules(document, project, host=unlabelled) == {"foreign_volume:other_media"}
    # Compose would not find it either; the policy says why first.
    assert rules(document, project) == {"foreign_volume:other_media"}


def test_check_compose_external_volume_of_own_project_accepted(project: Path) -> None:
    document = service(volumes=["data:/data"])
    document["volumes"] = {"data": {"external": {"name": "web_data"}}}
    assert rules(document, project, host=Host({("volume", "web_data"): "web"})) == set()


def test_check_compose_named_volume_taken_by_other_project_refused(project: Path) -> None:
    # `web` + `admin_data` and `web_admin` + `data` are both `web_admin_data` on the host.
    document = service(volumes=["admin_data:/data", "mine:/mine"])
    document["volumes"] = {"admin_data": None, "mine": {"name": "custom"}}
    host = Host({("volume", "web_admin_data"): "web_admin", ("volume", "custom"): "other"})
    assert rules(document, project, host=host) == {
        "foreign_volume:web_admin_data",
        "foreign_volume:custom",
    }
    # Not there yet: compose creates them, labelled as this project's.
    assert rules(document, project) == set()


def test_check_compose_external_network_of_other_project_refused(project: Path) -> None:
    document = service()
    document["networks"] = {
        "default": {"external": True, "name": "other_default"},
        "proxy": {"external": {"name": "traefik"}},
        "mine": {"external": True, "name": "web_backend"},
    }
    host = Host(
        {
            ("network", "other_default"): "other",
            ("network", "traefik"): "",
            ("network", "web_backend"): "web",
        }
    )
    assert rules(document, project, host=host) == {
        "foreign_network:other_default",
        "foreign_network:traefik",
    }
    bypass = frozenset({"foreign_network:other_default", "foreign_network:traefik"})
    assert rules(document, project, host=host, bypass=bypass) == set()


def test_check_compose_default_network_taken_by_other_project_refused(project: Path) -> None:
    host = Host({("network", "web_default"): "other"})
    assert rules(service(), project, host=host) == {"foreign_network:web_default"}
    assert rules(service(), project, host=Host({("network", "web_default"): "web"})) == set()


def test_check_compose_predefined_networks_accepted(project: Path) -> None:
    document = service(networks=["front"])
    document["networks"] = {"front": {"external": True, "name": "bridge"}}
    assert rules(document, project) == set()
    assert rules(service(network_mode="bridge"), project) == set()
    assert rules(service(network_mode="none"), project) == set()


def test_check_compose_network_mode_naming_other_network_refused(project: Path) -> None:
    host = Host({("network", "other_default"): "other", ("network", "web_back"): "web"})
    assert rules(service(network_mode="other_default"), project, host=host) == {
        "foreign_network:other_default"
    }
    assert rules(service(network_mode="web_back"), project, host=host) == set()


def test_policy_options_allow_list_without_deployments_dir_value_error() -> None:
    with pytest.raises(ValueError, match="deployments_dir"):
        PolicyOptions(bind_allow_list_mode=True)


# --- bypass list --------------------------------------------------------------------------------


def test_check_compose_bypass_kind_excuses_every_violation_of_it(project: Path) -> None:
    document = service(
        volumes=["/var/run/docker.sock:/var/run/docker.sock"], cap_add=["NET_ADMIN", "SYS_ADMIN"]
    )
    assert rules(document, project, bypass=frozenset({"docker_socket", "cap_add"})) == set()


def test_check_compose_bypass_exact_rule_excuses_only_it(project: Path) -> None:
    document = service(cap_add=["NET_ADMIN", "SYS_MODULE"], privileged=True)
    found = rules(document, project, bypass=frozenset({"cap_add:cap_net_admin"}))
    assert found == {"cap_add:SYS_MODULE", "privileged"}


def test_check_compose_bypass_path_excuses_that_directory_only(project: Path) -> None:
    document = service(volumes=["/etc/pihole/:/etc/pihole", "/etc/shadow:/s"])
    found = rules(document, project, bypass=frozenset({"host_path:/etc/pihole/"}))
    assert found == {"host_path:/etc/shadow"}


def test_check_compose_bypass_system_path_still_checks_credentials(project: Path) -> None:
    found = rules(bind("/root/.ssh"), project, bypass=frozenset({"host_path:/root"}))
    assert found == {"credential_path:/root/.ssh"}


@pytest.mark.parametrize(
    "entry", ["unset_variable", "invalid_compose", "application_name", "no_such_rule"]
)
def test_policy_options_bypass_unknown_or_error_rule_value_error(entry: str) -> None:
    with pytest.raises(ValueError, match=entry):
        PolicyOptions(bypass=frozenset({entry}))


def test_policy_options_bypass_relative_path_value_error() -> None:
    with pytest.raises(ValueError, match="absolute"):
        PolicyOptions(bypass=frozenset({"host_path:etc"}))


# --- one message, malformed input ---------------------------------------------------------------


def test_enforce_several_violations_all_in_one_message(project: Path) -> None:
    document = {
        "services": {
            "web": {
                "image": "nginx",
                "privileged": True,
                "volumes": ["/etc:/host-etc", "${MEDIA}:/media"],
            },
            "agent": {
                "image": "agent",
                "cap_add": ["CAP_SYS_ADMIN"],
                "pid": "host",
                "volumes": ["/var/run/docker.sock:/var/run/docker.sock"],
            },
        }
    }
    with pytest.raises(PolicyViolation) as caught:
        enforce([document], project_dir=project)
    message = str(caught.value)
    assert message.startswith("compose file refused by the security policy: ")
    assert [(v.service, v.kind) for v in caught.value.violations] == [
        ("web", "privileged"),
        ("web", "host_path"),
        ("web", "unset_variable"),
        ("agent", "cap_add"),
        ("agent", "pid"),
        ("agent", "docker_socket"),
    ]
    for violation in caught.value.violations:
        assert str(violation) in message
    assert "service web: privileged" in message
    assert "[docker_socket:/var/run/docker.sock]" in message
    assert "MEDIA" in message


def test_enforce_clean_document_returns(project: Path) -> None:
    enforce([service(volumes=["data:/data"])], project_dir=project)


def test_policy_violation_is_invalid_input() -> None:
    assert issubclass(PolicyViolation, InvalidInput)


def test_violation_str_shows_bypass_id_only_when_bypassable() -> None:
    bypassable = Violation("cap_add:BPF", "web", "cap_add BPF")
    error = Violation("unset_variable:X", "web", "X is not set")
    top = Violation("network_mode:host", None, "network n is the host network")
    assert str(bypassable) == "service web: cap_add BPF [cap_add:BPF]"
    assert str(error) == "service web: X is not set"
    assert str(top) == "network n is the host network [network_mode:host]"


@pytest.mark.parametrize(
    "document",
    [
        [],
        "services: {}",
        {"services": ["web"]},
        {"services": {"web": "nginx"}},
        service(volumes=["/a:/b:ro:extra"]),
        service(volumes=[":/data"]),
        service(volumes=["C:\\data:/data"]),
        service(volumes=[{"type": "bind", "target": "/x"}]),
        service(volumes=[{"type": "weird", "source": "x", "target": "/x"}]),
        service(volumes=[42]),
    ],
)
def test_check_compose_malformed_document_invalid_compose(project: Path, document: Any) -> None:
    assert rules(document, project) == {"invalid_compose"}


def test_check_compose_empty_services_accepted(project: Path) -> None:
    assert rules({"services": None}, project) == set()
    assert rules({}, project) == set()


def test_check_compose_relative_project_dir_value_error() -> None:
    with pytest.raises(ValueError, match="absolute"):
        check_compose(service(), project_dir=Path("relative/web"))


# --- application names --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["My App", "shop.example.com", "web_1", "Café"])
def test_check_application_name_safe_name_accepted(name: str) -> None:
    check_application_name(name)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("a/b", "path separator"),
        ("a\\b", "path separator"),
        ("..", "'..'"),
        ("app..x", "'..'"),
        (".hidden", "starts with '.'"),
        ("a\0b", "control character"),
        ("a\nb", "control character"),
        ("x" * 256, "longer than"),
        ("!!!", "no letters or digits"),
        ("", "no letters or digits"),
        ("日本", "no letters or digits"),
    ],
)
def test_check_application_name_unsafe_name_refused(name: str, reason: str) -> None:
    with pytest.raises(PolicyViolation, match=reason) as caught:
        check_application_name(name)
    assert str(caught.value).startswith("application name refused by the security policy")
    assert {violation.rule for violation in caught.value.violations} == {"application_name"}


# --- the awesome-compose corpus -----------------------------------------------------------------


def test_corpus_every_folder_has_a_verdict() -> None:
    folders = {path.name for path in CORPUS.iterdir() if path.is_dir()}
    assert folders == set(EXPECTED)
    assert len(folders) == 39


def test_corpus_every_reason_mapped_to_rules() -> None:
    reasons = {reason for entry in EXPECTED.values() for reason in entry.get("because", [])}
    assert reasons == set(REASON_RULES)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_check_compose_corpus_file_expected_verdict(name: str) -> None:
    folder = CORPUS / name
    document = yaml.safe_load(compose_file(folder).read_text())
    violations = check_compose(document, project_dir=folder, environment=CORPUS_ENVIRONMENT)
    found = {violation.rule for violation in violations}
    expected = EXPECTED[name]
    if expected["verdict"] == "accept":
        assert violations == []
        return
    assert expected["verdict"] == "reject"
    wanted = set().union(*(REASON_RULES[reason] for reason in expected["because"]))
    # plex also uses ${PLEX_MEDIA_PATH} for its bind, unset here: that is reported too.
    also = {"unset_variable:PLEX_MEDIA_PATH"} if name == "plex" else set()
    assert found == wanted | also


def test_check_compose_plex_without_media_path_unset_variable_and_host_network() -> None:
    folder = CORPUS / "plex"
    document = yaml.safe_load(compose_file(folder).read_text())
    with pytest.raises(PolicyViolation) as caught:
        enforce([document], project_dir=folder)
    assert {v.rule for v in caught.value.violations} == {
        "network_mode:host",
        "unset_variable:PLEX_MEDIA_PATH",
    }
    assert "PLEX_MEDIA_PATH" in str(caught.value)
    assert "not set" in str(caught.value)
    with_media = check_compose(
        document, project_dir=folder, environment={"PLEX_MEDIA_PATH": "/srv/media"}
    )
    assert {v.rule for v in with_media} == {"network_mode:host"}


def test_check_compose_corpus_rejections_pass_with_bypass() -> None:
    folder = CORPUS / "pihole-cloudflared-DoH"
    document = yaml.safe_load(compose_file(folder).read_text())
    options = PolicyOptions(
        bypass=frozenset({"cap_add:NET_ADMIN", "host_path:/etc/pihole", "host_path:/etc/dnsmasq.d"})
    )
    assert check_compose(document, project_dir=folder, options=options) == []
