"""The compose security policy: every rule, how compose syntax is read, and the awesome-compose
corpus with the verdicts in its expected.json."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from ferry.errors import InvalidInput
from ferry_agent.policy import (
    DANGEROUS_CAPABILITIES,
    PolicyOptions,
    PolicyViolation,
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


def rules(
    document: Any,
    project: Path,
    environment: Mapping[str, str] | None = None,
    **options: Any,
) -> set[str]:
    violations = check_compose(
        document,
        project_dir=project,
        environment=environment or {},
        options=PolicyOptions(**options),
    )
    return {violation.rule for violation in violations}


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
        ("network_mode", "hostile"),
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
        "seccomp=/etc/docker/profile.json",
        "apparmor=docker-default",
        "label=type:svirt_apache_t",
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


def test_check_compose_yaml_merge_key_settings_checked(project: Path) -> None:
    document = yaml.safe_load(
        "x-base: &base\n  privileged: true\nservices:\n  web:\n    <<: *base\n    image: nginx\n"
    )
    assert rules(document, project) == {"privileged"}


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


def test_check_compose_unset_variable_outside_checked_fields_ignored(project: Path) -> None:
    document = service(environment=["TZ=${TIMEZONE}", "PASSWORD=${PW}"], command="echo $HOME")
    assert rules(document, project) == set()


def test_check_compose_escaped_dollar_literal(project: Path) -> None:
    assert rules(service(network_mode="$$host"), project) == set()
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


# --- allow-list mode ----------------------------------------------------------------------------


def test_check_compose_allow_list_bind_inside_deployments_accepted(
    project: Path, deployments: Path
) -> None:
    document = service(
        volumes=["./data:/data", f"{deployments}/shared:/shared", "named:/named", "/anon"]
    )
    found = rules(document, project, bind_allow_list_mode=True, deployments_dir=deployments)
    assert found == set()


def test_check_compose_allow_list_bind_outside_deployments_refused(
    project: Path, deployments: Path
) -> None:
    found = rules(
        bind("/srv/media"), project, bind_allow_list_mode=True, deployments_dir=deployments
    )
    assert found == {"outside_allow_list:/srv/media"}
    assert rules(bind("/srv/media"), project, deployments_dir=deployments) == set()


def test_check_compose_allow_list_symlink_out_of_deployments_refused(
    project: Path, deployments: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (deployments / "link").symlink_to(outside)
    found = rules(
        bind(f"{deployments}/link"), project, bind_allow_list_mode=True, deployments_dir=deployments
    )
    assert found == {f"outside_allow_list:{outside}"}


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
        enforce(document, project_dir=project)
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
    enforce(service(volumes=["data:/data"]), project_dir=project)


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
        enforce(document, project_dir=folder)
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
