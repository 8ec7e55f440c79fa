"""The compose security policy: what an application's compose file may ask of its host.

The agent judges a compose file BEFORE anything starts, twice (see `ferry_agent.compose`):

1. as written (`load_compose` reads it the way compose does: merge keys, `!reset`/`!override`,
   several documents), interpolated from the environment compose will run with. This pass
   sees what compose's resolved model no longer shows (lifecycle hooks compose v1 does not
   know, `env_file`, `extends`, `include`, unset variables) and refuses before compose reads a
   single host file;
2. as compose itself resolves it (`docker compose config`): `resolved=True`, nothing left to
   interpolate, every path absolute. A parser difference cannot hide a setting from this pass.

Each pass refuses with one `PolicyViolation` that lists every violation, so a user fixes the
file in one round.

Default deny: a key or option the policy has not reviewed is refused by name
(`unknown:<key>`), so a compose feature that could grant privilege is refused until someone
reviews it. `x-` extension keys, and unknown keys left empty, are ignored.

Rule ids. A violation's `rule` is one of these; `kind` is the part before the first `:`.

==================================  ===========================================================
`privileged`                        `privileged: true`, on a service or on one of its lifecycle
                                    hooks (`post_start`, `pre_stop`: a privileged hook is an exec
                                    with every capability; unprivileged hooks run like `command`)
`use_api_socket`                    `use_api_socket: true`
`cap_add:<CAP>`                     a capability outside `HARMLESS_CAPABILITIES` (the ones in
                                    `DANGEROUS_CAPABILITIES` with their reason), written with or
                                    without `CAP_`, in any case; the id has neither
`network_mode:host`, `pid:host`,    the host's namespace; `network_mode:host` also for a
`ipc:host`, `uts:host`,             top-level network that is the host network
`userns_mode:host`, `cgroup:host`
`network_mode:container`,           another container's namespaces, volumes or link: refused
`pid:container`, `ipc:container`,   unless the container belongs to this compose project (or is
`volumes_from:container`,           this file's own `container_name`, not created yet)
`external_links:container`
`security_opt:seccomp=unconfined`,  a `security_opt` that switches a confinement off: seccomp or
`security_opt:seccomp=profile`,     AppArmor unconfined, a seccomp profile read from a host file,
`security_opt:apparmor=unconfined`, SELinux labelling off or an unconfined SELinux type
`security_opt:label=disable`,       (`spc_t`, `unconfined_t`, ...), the host's /proc and /sys
`security_opt:label=type:<type>`,   unmasked
`security_opt:systempaths=unconfined`
`cgroup_parent`                     a `cgroup_parent`: the container leaves the daemon's cgroup
`devices`                           any `devices` entry, `gpus`, or device reservations under
                                    `deploy.resources`
`device_cgroup_rules`               any `device_cgroup_rules` entry (device access by rule)
`provider`                          a `provider:` service: compose runs a host executable for it
`build:ssh`, `build:privileged`,    a build that gets the agent's SSH agent or keys, runs
`build:entitlements`,               privileged or with entitlements, or on the host's network
`build:network=host`
`docker_socket:<path>`              the Docker socket (any path named `docker.sock`)
`host_path:<path>`                  `/`, a system directory (`SYSTEM_PATHS`) or anything under
                                    it, or a directory that contains one (`/var` holds `/var/run`)
`credential_path:<path>`            `/home` and the home directories in it; any path through
                                    `.ssh`, `.aws`, `.kube`, `.docker`, `.gnupg`, cron or pam
                                    directories; key files, `shadow`, `passwd`, `sudoers`, ...
`project_escape:<path>`             a relative path that leaves the application's bundle (its
                                    directory from the repository: `..` past its root, or a
                                    symlink on the host pointing out of it); a build's
                                    Dockerfile outside it
`other_applications:<path>`         a path in the agent's deployments directory outside the
                                    application's own folder, or one that contains it
`outside_allow_list:<path>`         allow-list mode: a host path outside the application's own
                                    folder (a bypass entry of this kind lists an allowed path)
`foreign_volume:<name>`,            a volume or network (external, with a `name:`, or by
`foreign_network:<name>`            compose's default name) that exists on the host and belongs
                                    to no compose project or another one; a `network_mode` that
                                    names a network
`unchecked_file:<path>`             `include` or `extends: {file: ...}`: compose would read a
                                    file this check never sees
`unknown:<key>`                     a key or option the policy does not know: a service key
                                    (`pre_start`), or `<where>.<key>` (`build.foo`,
                                    `post_start.foo`, `volume.foo`, `security_opt.foo`, ...)
==================================  ===========================================================

Not bypassable, because they are errors rather than policy: `unset_variable:<NAME>` (a variable
used without a value or default, or with `${VAR:?message}`), `invalid_compose` (something compose
itself would refuse or read differently), and `application_name` (`check_application_name`).

Host paths are checked wherever compose makes Docker mount or read one: service bind mounts (short
and long syntax), top-level volumes whose `driver_opts` bind a `device` (`o: bind` or `rbind`,
whatever the `type`, or a local filesystem), the `file` of top-level secrets and configs (compose
bind-mounts those), `env_file` and `label_file`, local build contexts, Dockerfiles and local build
caches. Named and anonymous volumes are fine. Paths inside the bundle (`bundle_root`: the
application's directory from the repository, the project directory or a parent of it) are the
application's own files: only the Docker-socket, escape and allow-list rules apply there. A path
is judged both as written (normalized) and, unless `resolve_symlinks` is off, with the host's
symlinks resolved, since that is what the kernel mounts.

Applications are isolated from each other: a path may reach into the agent's deployments
directory only inside the application's own folder, and volumes, networks and containers named on
the host (`HostResources`) must belong to the application's own compose project.

Bypass entries (`PolicyOptions.bypass`, per application): a rule id excuses exactly that
violation; a kind alone (`"docker_socket"`, `"cap_add"`) excuses every violation of the kind; a
path kind with a directory (`"host_path:/etc/pihole"`) excuses that path and everything under it.
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Literal, Protocol

from ferry.domain.naming import compose_project_name
from ferry.errors import InvalidInput

# Refused with a reason of their own. Every capability outside HARMLESS_CAPABILITIES is refused.
DANGEROUS_CAPABILITIES = frozenset(
    {
        "ALL",
        "SYS_ADMIN",
        "SYS_MODULE",
        "SYS_PTRACE",
        "SYS_RAWIO",
        "SYS_BOOT",
        "NET_ADMIN",
        "BPF",
        "PERFMON",
        "DAC_READ_SEARCH",
        "DAC_OVERRIDE",
        "MAC_ADMIN",
        "MAC_OVERRIDE",
        # Not namespaced: the host's clock, its audit system, the kernel log, its resource
        # limits, process accounting and its terminals.
        "SYS_TIME",
        "AUDIT_CONTROL",
        "AUDIT_READ",
        "SYSLOG",
        "SYS_RESOURCE",
        "SYS_PACCT",
        "SYS_TTY_CONFIG",
    }
)
# Docker's default set (minus DAC_OVERRIDE, which reads and writes any file a bind reaches) and
# capabilities that act only inside the container's own namespaces or on its own resources.
HARMLESS_CAPABILITIES = frozenset(
    {
        "CHOWN",
        "FSETID",
        "FOWNER",
        "MKNOD",
        "NET_RAW",
        "SETGID",
        "SETUID",
        "SETFCAP",
        "SETPCAP",
        "NET_BIND_SERVICE",
        "SYS_CHROOT",
        "KILL",
        "AUDIT_WRITE",
        "IPC_LOCK",
        "IPC_OWNER",
        "SYS_NICE",
        "NET_BROADCAST",
        "LEASE",
        "WAKE_ALARM",
        "BLOCK_SUSPEND",
        "LINUX_IMMUTABLE",
    }
)
HOST_NAMESPACE_KEYS = ("network_mode", "pid", "ipc", "uts", "userns_mode", "cgroup")
# Keys whose value can be `container:<name or id>`.
CONTAINER_NAMESPACE_KEYS = ("network_mode", "pid", "ipc")
# The host's system directories; a bind of one (or of anything under it) can rewrite or read the
# host. /var/lib/docker and /var/lib/containerd hold every container's files and volumes.
SYSTEM_PATHS = (
    "/etc",
    "/boot",
    "/root",
    "/sys",
    "/proc",
    "/usr",
    "/bin",
    "/sbin",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/dev",
    "/run",
    "/var/run",
    "/var/lib/docker",
    "/var/lib/containerd",
)
PATH_KINDS = frozenset(
    {
        "docker_socket",
        "host_path",
        "credential_path",
        "project_escape",
        "other_applications",
        "outside_allow_list",
        "unchecked_file",
    }
)
# Kinds whose specifics are names on the host or in the file: compared as written.
NAME_KINDS = frozenset({"foreign_volume", "foreign_network", "unknown"})
BYPASSABLE_KINDS = frozenset(
    {
        "privileged",
        "use_api_socket",
        "cap_add",
        *HOST_NAMESPACE_KEYS,
        "security_opt",
        "cgroup_parent",
        "devices",
        "device_cgroup_rules",
        "volumes_from",
        "external_links",
        "provider",
        "build",
        *PATH_KINDS,
        *NAME_KINDS,
    }
)
UNBYPASSABLE_KINDS = frozenset({"unset_variable", "invalid_compose", "application_name"})

# What the policy knows. Keys that need judging are judged below; the others cannot reach
# beyond the container (resource limits, its own command, names, health checks, ...). `develop`
# only acts under `compose watch`, which the agent never runs.
TOP_LEVEL_KEYS = frozenset(
    {"version", "name", "services", "networks", "volumes", "secrets", "configs", "include"}
)
SERVICE_KEYS = frozenset(
    {
        # judged
        "privileged",
        "use_api_socket",
        "cap_add",
        *HOST_NAMESPACE_KEYS,
        "security_opt",
        "cgroup_parent",
        "devices",
        "device_cgroup_rules",
        "gpus",
        "deploy",
        "volumes",
        "volumes_from",
        "external_links",
        "build",
        "env_file",
        "label_file",
        "extends",
        "provider",
        "post_start",
        "pre_stop",
        # harmless
        "annotations",
        "attach",
        "blkio_config",
        "cap_drop",
        "command",
        "configs",
        "container_name",
        "cpu_count",
        "cpu_percent",
        "cpu_period",
        "cpu_quota",
        "cpu_rt_period",
        "cpu_rt_runtime",
        "cpu_shares",
        "cpus",
        "cpuset",
        "depends_on",
        "develop",
        "dns",
        "dns_opt",
        "dns_search",
        "domainname",
        "entrypoint",
        "environment",
        "expose",
        "extra_hosts",
        "group_add",
        "healthcheck",
        "hostname",
        "image",
        "init",
        "isolation",
        "labels",
        "links",
        "logging",
        "mac_address",
        "mem_limit",
        "mem_reservation",
        "mem_swappiness",
        "memswap_limit",
        "networks",
        "oom_kill_disable",
        "oom_score_adj",
        "pids_limit",
        "platform",
        "ports",
        "profiles",
        "pull_policy",
        "pull_refresh_after",
        "read_only",
        "restart",
        "runtime",
        "scale",
        "secrets",
        "shm_size",
        "stdin_open",
        "stop_grace_period",
        "stop_signal",
        "storage_opt",
        "sysctls",
        "tmpfs",
        "tty",
        "ulimits",
        "user",
        "working_dir",
    }
)
HOOK_KEYS = ("post_start", "pre_stop")
_HOOK_OPTION_KEYS = frozenset({"command", "user", "privileged", "working_dir", "environment"})
_BUILD_KEYS = frozenset(
    {
        "context",
        "dockerfile",
        "dockerfile_inline",
        "args",
        "ssh",
        "labels",
        "cache_from",
        "cache_to",
        "no_cache",
        "additional_contexts",
        "network",
        "provenance",
        "sbom",
        "pull",
        "target",
        "shm_size",
        "extra_hosts",
        "isolation",
        "privileged",
        "entitlements",
        "secrets",
        "tags",
        "ulimits",
        "platforms",
    }
)
_MOUNT_KEYS = frozenset(
    {"type", "source", "target", "read_only", "consistency", "bind", "volume", "tmpfs", "image"}
)
_MOUNT_OPTION_KEYS = {
    "bind": frozenset({"propagation", "create_host_path", "recursive", "selinux"}),
    "volume": frozenset({"labels", "nocopy", "subpath"}),
    "tmpfs": frozenset({"size", "mode"}),
    "image": frozenset({"subpath"}),
}
_VOLUME_KEYS = frozenset({"name", "driver", "driver_opts", "external", "labels"})
_NETWORK_KEYS = frozenset(
    {
        "name",
        "driver",
        "driver_opts",
        "ipam",
        "external",
        "internal",
        "enable_ipv4",
        "enable_ipv6",
        "attachable",
        "labels",
    }
)
_FILE_SOURCE_KEYS = {
    "secret": frozenset(
        {
            "name",
            "environment",
            "file",
            "external",
            "labels",
            "driver",
            "driver_opts",
            "template_driver",
        }
    ),
    "config": frozenset(
        {"name", "content", "environment", "file", "external", "labels", "template_driver"}
    ),
}

_CREDENTIAL_DIRS = frozenset({".ssh", ".aws", ".kube", ".docker", ".gnupg", "sudoers.d", "pam.d"})
_CREDENTIAL_FILES = frozenset(
    {
        "shadow",
        "shadow-",
        "gshadow",
        "gshadow-",
        "passwd",
        "passwd-",
        "master.passwd",
        "sudoers",
        ".netrc",
        ".pgpass",
        ".git-credentials",
    }
)
_CRON = re.compile(r"(ana)?cron(tab)?s?(\.(d|daily|hourly|weekly|monthly|allow|deny))?")
# Private keys only: `id_rsa.pub` and friends are public.
_KEY_FILE = re.compile(r"id_(rsa|dsa|ecdsa|ed25519)(_sk)?|.+\.(key|pem|p12|pfx)", re.IGNORECASE)
_SECURITY_OPT_OFF = {
    ("seccomp", "unconfined"): "seccomp is off: every system call reaches the host kernel",
    ("apparmor", "unconfined"): "AppArmor confinement is off",
    ("label", "disable"): "SELinux labelling is off",
    ("systempaths", "unconfined"): "the host's /proc and /sys paths are unmasked",
}
# SELinux types that are not confined: a container labelled with one is as good as privileged.
_UNCONFINED_SELINUX_TYPES = frozenset(
    {
        "spc_t",
        "unconfined_t",
        "unconfined_service_t",
        "container_runtime_t",
        "kernel_t",
        "init_t",
        "initrc_t",
    }
)
_SELINUX_LABEL_PARTS = frozenset({"user", "role", "type", "level", "filetype"})
_SECURITY_OPT_KEY = re.compile(r"([A-Za-z-]+)(?:[:=](.*))?")
_NETWORK_FILESYSTEMS = frozenset(
    {"nfs", "nfs4", "cifs", "smb", "smb3", "ceph", "glusterfs", "tmpfs", "ramfs"}
)
_BIND_OPTIONS = frozenset({"bind", "rbind"})
_VOLUME_TYPES = frozenset({"bind", "volume", "tmpfs", "npipe", "cluster", "image"})
# Networks every Docker host has; `host` is refused on its own.
_PREDEFINED_NETWORKS = frozenset({"bridge", "none", "default"})
_WINDOWS_PATH = re.compile(r"[A-Za-z]:[\\/]|\\\\")
_REMOTE_CONTEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://|git@|github\.com/")
_VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OPERATORS = (":-", ":?", ":+", "-", "?", "+")
_TRUE = frozenset({"true", "yes", "y", "on", "1"})
_FALSE = frozenset({"false", "no", "n", "off", "0", ""})
_NO_ENVIRONMENT: Mapping[str, str] = MappingProxyType({})
_NAME_BYTES_MAX = 255

ResourceKind = Literal["container", "volume", "network"]


class HostResources(Protocol):
    """What the Docker host already has, looked up by name (the agent asks the daemon)."""

    def project_of(self, kind: ResourceKind, name: str) -> str | None:
        """The compose project the named resource belongs to (`""` for none); None when the
        host has no such resource."""
        ...


class _NothingOnHost:
    def project_of(self, kind: ResourceKind, name: str) -> str | None:
        return None


NOTHING_ON_HOST: HostResources = _NothingOnHost()


@dataclass(frozen=True)
class PolicyOptions:
    """How strict the policy is for one application on one agent.

    `deployments_dir` is the agent's folder of every application's folder (isolation between
    applications needs it); `bind_allow_list_mode` limits host paths to the application's own
    folder; `bypass` holds the rule ids (see the module docstring) this application is excused
    from; `resolve_symlinks` also judges each host path with the host's symlinks resolved.
    """

    bind_allow_list_mode: bool = False
    deployments_dir: Path | None = None
    bypass: frozenset[str] = frozenset()
    resolve_symlinks: bool = True

    def __post_init__(self) -> None:
        if self.deployments_dir is not None and not self.deployments_dir.is_absolute():
            raise ValueError(f"deployments_dir must be absolute, not {self.deployments_dir}")
        if self.bind_allow_list_mode and self.deployments_dir is None:
            raise ValueError("allow-list mode needs an absolute deployments_dir")
        object.__setattr__(self, "bypass", frozenset(_canonical_bypass(e) for e in self.bypass))


@dataclass(frozen=True)
class Violation:
    """One thing the compose file asks that the policy refuses; `service` is None at top level."""

    rule: str
    service: str | None
    detail: str

    @property
    def kind(self) -> str:
        """The rule without its specifics: `cap_add:NET_ADMIN` → `cap_add`."""
        return self.rule.partition(":")[0]

    def __str__(self) -> str:
        where = "" if self.service is None else f"service {self.service}: "
        # The id is what an operator would put in the bypass list, so show it where it works.
        hint = f" [{self.rule}]" if self.kind in BYPASSABLE_KINDS else ""
        return f"{where}{self.detail}{hint}"


class PolicyViolation(InvalidInput):
    """The compose file (or application name) breaks the policy; the message lists every reason."""

    def __init__(self, violations: Sequence[Violation], subject: str = "compose file") -> None:
        self.violations = list(violations)
        listed = "; ".join(str(violation) for violation in self.violations)
        super().__init__(f"{subject} refused by the security policy: {listed}")


def check_compose(
    document: object,
    *,
    project_dir: Path,
    bundle_root: Path | None = None,
    environment: Mapping[str, str] = _NO_ENVIRONMENT,
    options: PolicyOptions = PolicyOptions(),
    project_name: str | None = None,
    resources: HostResources = NOTHING_ON_HOST,
    resolved: bool = False,
) -> list[Violation]:
    """Every violation of the policy in one compose document, in file order.

    `project_dir` is the absolute directory compose resolves relative paths against (the compose
    file's folder); `bundle_root` the application's files on the host, which relative paths must
    not leave (the project directory or a parent of it; by default the project directory);
    `project_name` the compose project (by default the one compose would name after
    `project_dir`); `resources` what the host already has. Unless `resolved`, the document
    is the file as written and `environment` is what compose interpolates from (the environment
    compose runs with and the project's `.env`), including `HOME` for `~`; a `resolved` document
    is compose's own model (`docker compose config`), where only `$$` escapes are left.
    """
    return _check(
        [document],
        project_dir=project_dir,
        bundle_root=bundle_root,
        environment=environment,
        options=options,
        project_name=project_name,
        resources=resources,
        resolved=resolved,
    )


def enforce(
    documents: Sequence[object],
    *,
    project_dir: Path,
    bundle_root: Path | None = None,
    environment: Mapping[str, str] = _NO_ENVIRONMENT,
    options: PolicyOptions = PolicyOptions(),
    project_name: str | None = None,
    resources: HostResources = NOTHING_ON_HOST,
    resolved: bool = False,
) -> None:
    """Raise `PolicyViolation` listing every violation of every document (the documents of one
    file), if there is any. The arguments are `check_compose`'s."""
    violations = _check(
        documents,
        project_dir=project_dir,
        bundle_root=bundle_root,
        environment=environment,
        options=options,
        project_name=project_name,
        resources=resources,
        resolved=resolved,
    )
    if violations:
        raise PolicyViolation(violations)


def _check(
    documents: Sequence[object],
    *,
    project_dir: Path,
    bundle_root: Path | None,
    environment: Mapping[str, str],
    options: PolicyOptions,
    project_name: str | None,
    resources: HostResources,
    resolved: bool,
) -> list[Violation]:
    if not project_dir.is_absolute():
        raise ValueError(f"project_dir must be absolute, not {project_dir}")
    root = project_dir if bundle_root is None else bundle_root
    if not project_dir.is_relative_to(root):
        raise ValueError(f"the bundle {root} must hold the project directory {project_dir}")
    checker = _Checker(
        project_dir,
        root,
        project_name or compose_project_name(project_dir.name),
        environment,
        options,
        resources,
        resolved,
    )
    checker.documents(documents)
    return checker.violations


def check_application_name(name: str) -> None:
    """Raise `PolicyViolation` unless the name is safe as a path and names a compose project."""
    problems: list[str] = []
    if "/" in name or "\\" in name:
        problems.append("contains a path separator")
    if ".." in name:
        problems.append("contains '..'")
    if name.startswith("."):
        problems.append("starts with '.'")
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in name):
        problems.append("contains a control character")
    if len(name.encode("utf-8", errors="surrogatepass")) > _NAME_BYTES_MAX:
        problems.append(f"is longer than {_NAME_BYTES_MAX} bytes")
    violations = [
        Violation("application_name", None, f"application name {name!r} {problem}")
        for problem in problems
    ]
    try:
        compose_project_name(name)
    except InvalidInput as exc:
        violations.append(Violation("application_name", None, str(exc)))
    if violations:
        raise PolicyViolation(violations, subject="application name")


def _canonical_bypass(entry: str) -> str:
    kind, _, specific = entry.strip().partition(":")
    if kind in UNBYPASSABLE_KINDS:
        raise ValueError(f"{kind} cannot be bypassed: it is an error, not a policy")
    if kind not in BYPASSABLE_KINDS:
        raise ValueError(f"unknown policy rule {entry!r} in the bypass list")
    if not specific:
        return kind
    if kind == "cap_add":
        specific = _capability(specific)
    elif kind in PATH_KINDS:
        if not specific.startswith("/"):
            raise ValueError(f"bypass {entry!r} needs an absolute path")
        specific = _normalize(specific)
    elif kind not in NAME_KINDS:
        specific = specific.lower()
    return f"{kind}:{specific}"


def _capability(name: str) -> str:
    name = name.strip().upper()
    return name.removeprefix("CAP_")


def _normalize(path: str) -> str:
    """`path` made absolute-clean: no `.`, `..`, empty parts or trailing slash (no symlinks)."""
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts:
                parts.pop()
            continue
        parts.append(part)
    return "/" + "/".join(parts)


def _under(path: str, root: str) -> bool:
    return root == "/" or path == root or path.startswith(root + "/")


def _is_path(source: str) -> bool:
    """Whether compose reads a volume source as a host path rather than a volume name."""
    return source[:1] in ("/", ".", "~") or bool(_WINDOWS_PATH.match(source))


def _system_reason(path: str) -> str | None:
    if path == "/":
        return "the host's root directory"
    for root in SYSTEM_PATHS:
        if path == root:
            return "a host system directory"
        if _under(path, root):
            return f"under the host system directory {root}"
    for root in SYSTEM_PATHS:
        if _under(root, path):
            return f"contains the host system directory {root}"
    return None


def _credential_reason(path: str) -> str | None:
    parts = path.strip("/").split("/")
    if parts[0] == "home" and len(parts) <= 2:
        return "home directories hold their users' credentials (.ssh, .aws, ...)"
    for part in parts:
        if part in _CREDENTIAL_DIRS or _CRON.fullmatch(part):
            return f"a credential location ({part})"
    if parts[-1] in _CREDENTIAL_FILES or _KEY_FILE.fullmatch(parts[-1]):
        return f"a credential file ({parts[-1]})"
    return None


def _truthy(value: object) -> bool | None:
    """A compose boolean; None when it is no boolean at all."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value != 0
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
    return None


def _as_list(value: object) -> list[object]:
    if value is None:
        return []
    if isinstance(value, list):
        return value
    return [value]


def _unset(value: object) -> bool:
    """Nothing asked: a key compose reads as absent."""
    return value is None or value == {} or value == []


def _options(text: str) -> dict[str, str]:
    """`a=b,c` → {"a": "b", "c": ""} (mount options, build cache specs); names lowercased."""
    pairs = (part.partition("=") for part in text.split(","))
    return {name.strip().lower(): value.strip() for name, _, value in pairs if name.strip()}


def _owner(kind: str, owner: str | None) -> str:
    if owner is None:
        return f"no {kind} of that name exists on the host"
    if not owner:
        return f"a {kind} of no compose project"
    return f"a {kind} of the compose project {owner}"


class _TemplateError(ValueError):
    """Interpolation syntax compose itself refuses."""


def _interpolate(text: str, environment: Mapping[str, str]) -> tuple[str, list[tuple[str, str]]]:
    """`text` with compose's `$` syntax expanded, and the (name, why) of every missing variable.

    Supports `$$`, `$VAR`, `${VAR}`, and `${VAR<op>arg}` with op in `:- - :? ? :+ +` and nested
    templates in `arg`, which only count when `arg` is used (as in compose).
    """
    missing: list[tuple[str, str]] = []
    value, _ = _expand(text, 0, environment, missing, nested=False)
    return value, missing


def _expand(
    text: str,
    start: int,
    environment: Mapping[str, str],
    missing: list[tuple[str, str]],
    *,
    nested: bool,
) -> tuple[str, int]:
    out: list[str] = []
    index = start
    while index < len(text):
        char = text[index]
        if nested and char == "}":
            return "".join(out), index
        if char != "$":
            out.append(char)
            index += 1
            continue
        following = text[index + 1 : index + 2]
        if following == "$":
            out.append("$")
            index += 2
        elif following == "{":
            value, index = _braced(text, index + 2, environment, missing)
            out.append(value)
        else:
            match = _VARIABLE_NAME.match(text, index + 1)
            if match is None:
                raise _TemplateError(f"invalid interpolation at {text[index:]!r} (use $$ for $)")
            name = match.group()
            if name not in environment:
                missing.append((name, "not set"))
            out.append(environment.get(name, ""))
            index = match.end()
    if nested:
        raise _TemplateError(f"missing '}}' in {text!r}")
    return "".join(out), index


def _braced(
    text: str, start: int, environment: Mapping[str, str], missing: list[tuple[str, str]]
) -> tuple[str, int]:
    match = _VARIABLE_NAME.match(text, start)
    if match is None:
        raise _TemplateError(f"invalid interpolation at {text[start - 2 :]!r}")
    name, index = match.group(), match.end()
    is_set = name in environment
    value = environment.get(name, "")
    if text.startswith("}", index):
        if not is_set:
            missing.append((name, "not set"))
        return value, index + 1
    operator = next((op for op in _OPERATORS if text.startswith(op, index)), None)
    if operator is None:
        raise _TemplateError(f"invalid interpolation at {text[start - 2 :]!r}")
    argument_missing: list[tuple[str, str]] = []
    argument, end = _expand(text, index + len(operator), environment, argument_missing, nested=True)
    present = bool(value) if operator.startswith(":") else is_set
    if operator in (":-", "-"):
        if present:
            return value, end + 1
        missing.extend(argument_missing)
        return argument, end + 1
    if operator in (":?", "?"):
        if present:
            return value, end + 1
        missing.extend(argument_missing)
        missing.append((name, f"required: {argument}" if argument else "required"))
        return "", end + 1
    if present:
        missing.extend(argument_missing)
        return argument, end + 1
    return "", end + 1


class _Checker:
    """One pass over the documents of one file; collects violations instead of stopping at the
    first."""

    def __init__(
        self,
        project_dir: Path,
        bundle_root: Path,
        project_name: str,
        environment: Mapping[str, str],
        options: PolicyOptions,
        resources: HostResources,
        resolved: bool,
    ) -> None:
        self.environment = environment
        self.options = options
        self.resources = resources
        self.resolved = resolved
        self.project_name = project_name
        self.project = _normalize(str(project_dir))
        # Relative paths resolve against the project directory and must stay in the bundle.
        self.bundle = _normalize(str(bundle_root))
        self.real_bundle = self._real(str(bundle_root))
        deployments = options.deployments_dir
        self.deployments = None if deployments is None else _normalize(str(deployments))
        self.real_deployments = None if deployments is None else self._real(str(deployments))
        # The application's own folder: the entry of the deployments directory that holds the
        # project directory (the compose file may sit deeper in it).
        own = self.project
        if (
            self.deployments is not None
            and self.project != self.deployments
            and _under(self.project, self.deployments)
        ):
            first = self.project[len(self.deployments) :].strip("/").split("/")[0]
            own = _normalize(f"{self.deployments}/{first}")
        self.own = own
        self.real_own = self._real(own)
        self.violations: list[Violation] = []
        self._seen: set[tuple[str, str | None]] = set()
        self._container_names: set[str] = set()
        self._network_keys: set[str] = set()

    def _real(self, path: str) -> str:
        if not self.options.resolve_symlinks:
            return _normalize(path)
        return _normalize(os.path.realpath(path))

    def bypassed(self, rule: str) -> bool:
        kind, _, specific = rule.partition(":")
        for entry in self.options.bypass:
            if entry in (rule, kind):
                return True
            entry_kind, _, entry_path = entry.partition(":")
            if entry_kind == kind and kind in PATH_KINDS and _under(specific, entry_path):
                return True
        return False

    def add(self, rule: str, service: str | None, detail: str) -> None:
        kind = rule.partition(":")[0]
        if kind in BYPASSABLE_KINDS and self.bypassed(rule):
            return
        if (rule, service) in self._seen:
            return
        self._seen.add((rule, service))
        self.violations.append(Violation(rule, service, detail))

    def text(self, value: str, service: str | None, where: str) -> str | None:
        """`value` interpolated; None when it has no definite value (the violation is recorded)."""
        if self.resolved:
            return value.replace("$$", "$")
        try:
            result, missing = _interpolate(value, self.environment)
        except _TemplateError as exc:
            self.add("invalid_compose", service, f"{where}: {exc}")
            return None
        for name, why in missing:
            self.add(
                f"unset_variable:{name}",
                service,
                f"{where} {value!r} uses the variable {name}, which is {why}; set it in the "
                f"project's .env, or give a default (${{{name}:-...}})",
            )
        return None if missing else result

    def scalar(self, value: object, service: str | None, where: str) -> object:
        """A scalar setting interpolated if it is a string; None when it has no definite value."""
        return self.text(value, service, where) if isinstance(value, str) else value

    def quiet(self, value: object) -> str | None:
        """A string setting as compose reads it, without reporting anything about it."""
        if not isinstance(value, str):
            return None
        if self.resolved:
            return value.replace("$$", "$")
        try:
            result, missing = _interpolate(value, self.environment)
        except _TemplateError:
            return None
        return None if missing else result

    def vocabulary(
        self,
        mapping: Mapping[object, object],
        known: frozenset[str],
        where: str,
        service: str | None,
    ) -> None:
        """Default deny: every key the policy has not reviewed is refused by name."""
        for key, value in mapping.items():
            name = str(key)
            if name in known or name.startswith("x-") or _unset(value):
                continue
            path = f"{where}.{name}" if where else name
            self.add(
                f"unknown:{path}",
                service,
                f"unknown to the policy: {path} (refused until the policy has reviewed it)",
            )

    # --- documents and services ------------------------------------------------------------

    def documents(self, documents: Sequence[object]) -> None:
        mappings: list[dict[object, object]] = []
        for document in documents:
            if isinstance(document, dict):
                mappings.append(document)
            else:
                self.add("invalid_compose", None, "the compose file is not a mapping")
        for document in mappings:
            self.collect_names(document)
        with_services = False
        for document in mappings:
            with_services |= self.document(document)
        if with_services and "default" not in self._network_keys:
            # Every service without networks of its own joins the project's default network.
            self.network_resource("default", {})

    def collect_names(self, document: Mapping[object, object]) -> None:
        """What other parts of the file may refer to: its container names and networks."""
        services = document.get("services")
        for service in services.values() if isinstance(services, dict) else ():
            if isinstance(service, dict):
                name = self.quiet(service.get("container_name"))
                if name:
                    self._container_names.add(name)
        networks = document.get("networks")
        if isinstance(networks, dict):
            self._network_keys.update(str(key) for key in networks)

    def document(self, document: Mapping[object, object]) -> bool:
        """Judge one document; True when it declares a service."""
        self.vocabulary(document, TOP_LEVEL_KEYS, "", None)
        services = document.get("services") or {}
        if not isinstance(services, dict):
            self.add("invalid_compose", None, "services is not a mapping")
            services = {}
        for name, service in services.items():
            self.service(str(name), service)
        self.top_level_volumes(document.get("volumes"))
        self.top_level_networks(document.get("networks"))
        for section, label in (("secrets", "secret"), ("configs", "config")):
            self.top_level_files(document.get(section), label)
        for entry in _as_list(document.get("include")):
            paths = entry.get("path") if isinstance(entry, dict) else entry
            for path in _as_list(paths):
                self.unchecked_file(path, None, "include")
        return bool(services)

    def service(self, name: str, service: object) -> None:
        if not isinstance(service, dict):
            self.add("invalid_compose", name, "the service is not a mapping")
            return
        self.vocabulary(service, SERVICE_KEYS, "", name)
        for key, why in (
            ("privileged", "privileged mode gives the container every capability and device"),
            ("use_api_socket", "use_api_socket hands the container the Docker API"),
        ):
            if key in service:
                self.flag(service[key], key, name, why)
        for entry in _as_list(service.get("cap_add")):
            self.capability(entry, name)
        self.namespaces(service, name)
        for entry in _as_list(service.get("security_opt")):
            self.security_opt(entry, name)
        cgroup_parent = self.scalar(service.get("cgroup_parent"), name, "cgroup_parent")
        if cgroup_parent:
            self.add(
                "cgroup_parent",
                name,
                f"cgroup_parent {cgroup_parent}: the container leaves the cgroup Docker "
                "confines it to",
            )
        self.devices(service, name)
        for entry in _as_list(service.get("volumes")):
            self.volume(entry, name)
        for entry in _as_list(service.get("volumes_from")):
            source = self.scalar(entry, name, "volumes_from")
            if isinstance(source, str) and source.startswith("container:"):
                container = source.removeprefix("container:").partition(":")[0]
                self.container_reference("volumes_from", container, name, f"volumes_from {source}")
        for entry in _as_list(service.get("external_links")):
            link = self.scalar(entry, name, "external_links")
            if isinstance(link, str):
                container = link.partition(":")[0]
                self.container_reference(
                    "external_links", container, name, f"external_links {link}"
                )
        self.build(service.get("build"), name)
        for key in ("env_file", "label_file"):
            for entry in _as_list(service.get(key)):
                path = entry.get("path") if isinstance(entry, dict) else entry
                if isinstance(path, str):
                    self.host_path_text(path, name, key)
        extends = service.get("extends")
        if isinstance(extends, dict) and extends.get("file") is not None:
            self.unchecked_file(extends["file"], name, "extends")
        if not _unset(service.get("provider")):
            self.add(
                "provider",
                name,
                "a provider service makes compose run a host executable (a compose plugin) on "
                "the agent's host",
            )
        for key in HOOK_KEYS:
            for hook in _as_list(service.get(key)):
                self.hook(key, hook, name)

    def flag(self, value: object, key: str, service: str, why: str) -> None:
        """A boolean that grants `why` when true; `key` is both the rule and where it is."""
        resolved = self.scalar(value, service, key)
        if resolved is None:
            return
        truth = _truthy(resolved)
        if truth is None:
            self.add(key, service, f"{key}: {resolved!r} is not a boolean, read as true: {why}")
        elif truth:
            self.add(key, service, why)

    def capability(self, entry: object, service: str) -> None:
        written = self.scalar(entry, service, "cap_add")
        if written is None:
            return
        capability = _capability(str(written))
        if capability in HARMLESS_CAPABILITIES:
            return
        why = "" if capability in DANGEROUS_CAPABILITIES else ": unknown to the policy"
        self.add(f"cap_add:{capability}", service, f"cap_add {capability}{why}")

    def namespaces(self, service: Mapping[object, object], name: str) -> None:
        for key in HOST_NAMESPACE_KEYS:
            value = self.scalar(service.get(key), name, key)
            if not isinstance(value, str):
                continue
            mode = value.strip()
            if mode.lower() == "host":
                self.add(f"{key}:host", name, f"{key}: host shares the host's namespace")
            elif key in CONTAINER_NAMESPACE_KEYS and mode.lower().startswith("container:"):
                container = mode.partition(":")[2]
                self.container_reference(key, container, name, f"{key} {mode}")
            elif (
                key == "network_mode"
                and mode
                and mode.lower() not in _PREDEFINED_NETWORKS
                and not mode.lower().startswith("service:")
            ):
                # Docker reads any other network mode as the name of a network to join.
                owner = self.resources.project_of("network", mode)
                if owner != self.project_name:
                    self.add(
                        f"foreign_network:{mode}",
                        name,
                        f"network_mode {mode} joins {_owner('network', owner)}: an "
                        "application's networks must be its own project's",
                    )

    def container_reference(self, key: str, container: str, service: str, shown: str) -> None:
        """`container:<name>` and its kin: only a container of this project may be named."""
        owner = self.resources.project_of("container", container) if container else None
        if owner == self.project_name or (owner is None and container in self._container_names):
            return
        self.add(
            f"{key}:container",
            service,
            f"{shown} names {_owner('container', owner)}: only this project's own containers "
            "may be named (use service:<name> for its services)",
        )

    def security_opt(self, entry: object, service: str) -> None:
        option = self.scalar(entry, service, "security_opt")
        if not isinstance(option, str):
            return
        match = _SECURITY_OPT_KEY.fullmatch(option.strip())
        key = match.group(1).lower() if match else option.strip()
        value = (match.group(2) or "").strip().lower() if match else ""
        why = _SECURITY_OPT_OFF.get((key, value))
        if why is not None:
            self.add(f"security_opt:{key}={value}", service, f"security_opt {option}: {why}")
        elif key == "seccomp" and value != "builtin":
            self.add(
                "security_opt:seccomp=profile",
                service,
                f"security_opt {option}: a seccomp profile from a host file replaces Docker's "
                "default filter",
            )
        elif key == "label":
            part, _, label = value.partition(":")
            if part == "type" and (
                label in _UNCONFINED_SELINUX_TYPES or label.endswith("unconfined_t")
            ):
                self.add(
                    f"security_opt:label=type:{label}",
                    service,
                    f"security_opt {option}: {label} is an unconfined SELinux type",
                )
            elif part not in _SELINUX_LABEL_PARTS and value != "nested":
                self.add(
                    f"unknown:security_opt.label={part}",
                    service,
                    f"unknown to the policy: security_opt {option}",
                )
        elif key not in ("seccomp", "apparmor", "no-new-privileges", "systempaths"):
            self.add(
                f"unknown:security_opt.{key}",
                service,
                f"unknown to the policy: security_opt {option}",
            )

    def devices(self, service: Mapping[object, object], name: str) -> None:
        for key in ("devices", "device_cgroup_rules"):
            if service.get(key):
                listed = ", ".join(str(entry) for entry in _as_list(service[key]))
                self.add(key, name, f"{key} gives the container host devices ({listed})")
        if service.get("gpus"):
            self.add("devices", name, "gpus gives the container the host's GPU devices")
        deploy = service.get("deploy")
        limits = deploy.get("resources") if isinstance(deploy, dict) else None
        reservations = limits.get("reservations") if isinstance(limits, dict) else None
        if isinstance(reservations, dict) and reservations.get("devices"):
            self.add(
                "devices",
                name,
                "deploy.resources.reservations.devices gives the container host devices",
            )

    def hook(self, key: str, hook: object, service: str) -> None:
        if not isinstance(hook, dict):
            self.add("invalid_compose", service, f"a {key} hook is not a mapping")
            return
        self.vocabulary(hook, _HOOK_OPTION_KEYS, key, service)
        if "privileged" in hook:
            self.flag(
                hook["privileged"],
                "privileged",
                service,
                f"a privileged {key} hook runs a command with every capability and device",
            )

    def volume(self, entry: object, service: str) -> None:
        if isinstance(entry, str):
            spec = self.text(entry, service, "volumes entry")
            if spec is None:
                return
            if _WINDOWS_PATH.match(spec):
                self.add("invalid_compose", service, f"Windows host path in {spec!r}")
                return
            try:
                source = _short_volume_source(spec)
            except ValueError as exc:
                self.add("invalid_compose", service, f"volumes entry {spec!r}: {exc}")
                return
            if source is not None and _is_path(source):
                self.host_path(source, service, "bind mount of")
        elif isinstance(entry, dict):
            self.vocabulary(entry, _MOUNT_KEYS, "volumes", service)
            for option, known in _MOUNT_OPTION_KEYS.items():
                if isinstance(entry.get(option), dict):
                    self.vocabulary(entry[option], known, f"volumes.{option}", service)
            kind = self.scalar(entry.get("type"), service, "volume type")
            named = self.scalar(entry.get("source"), service, "volume source")
            if named is not None and not isinstance(named, str):
                self.add("invalid_compose", service, f"volume source {named!r} is not a string")
                return
            if kind is not None and kind not in _VOLUME_TYPES:
                self.add("invalid_compose", service, f"unknown volume type {kind!r}")
            elif kind == "bind":
                if named:
                    self.host_path(named, service, "bind mount of")
                elif entry.get("source") in (None, ""):
                    self.add("invalid_compose", service, "bind mount without a source")
            # A `volume` whose source looks like a path is checked like a bind: compose and the
            # daemon disagree on such sources across versions, so take the stricter reading.
            elif kind in (None, "volume") and named and _is_path(named):
                self.host_path(named, service, "bind mount of")
        else:
            self.add("invalid_compose", service, f"volumes entry {entry!r} is not understood")

    def build(self, build: object, service: str) -> None:
        if isinstance(build, dict):
            self.vocabulary(build, _BUILD_KEYS, "build", service)
        written = build.get("context") if isinstance(build, dict) else build
        context = self.text(written, service, "build context") if isinstance(written, str) else None
        local = context is not None and not _REMOTE_CONTEXT.match(context)
        if context is not None and local:
            self.host_path(context, service, "build context")
        if not isinstance(build, dict):
            return
        dockerfile = self.scalar(build.get("dockerfile"), service, "build dockerfile")
        if isinstance(dockerfile, str) and dockerfile and (local or dockerfile.startswith("/")):
            # Compose reads the Dockerfile from the context; it has no business outside the
            # application's files.
            path = dockerfile if dockerfile.startswith("/") else f"{context or '.'}/{dockerfile}"
            self.host_path(path, service, "build dockerfile", confined=True)
        if isinstance(build.get("additional_contexts"), dict):
            for extra in build["additional_contexts"].values():
                extra_context = self.scalar(extra, service, "build additional_contexts")
                if not isinstance(extra_context, str) or extra_context.startswith("service:"):
                    continue
                if extra_context.startswith("oci-layout://"):
                    layout = extra_context.removeprefix("oci-layout://").partition("@")[0]
                    self.host_path(layout, service, "build context")
                elif not _REMOTE_CONTEXT.match(extra_context):
                    self.host_path(extra_context, service, "build context")
        for key in ("cache_from", "cache_to"):
            for entry in _as_list(build.get(key)):
                spec = self.scalar(entry, service, f"build {key}")
                cache = _options(spec) if isinstance(spec, str) else {}
                if cache.get("type") == "local":
                    for option in ("src", "dest"):
                        if cache.get(option):
                            self.host_path(cache[option], service, f"build {key}")
        if not _unset(build.get("ssh")):
            self.add(
                "build:ssh",
                service,
                "build ssh hands the build the agent's SSH agent or SSH keys",
            )
        if "privileged" in build:
            self.flag(
                build["privileged"],
                "build:privileged",
                service,
                "a privileged build runs its steps with every capability and device",
            )
        if not _unset(build.get("entitlements")):
            listed = ", ".join(str(entry) for entry in _as_list(build["entitlements"]))
            self.add(
                "build:entitlements",
                service,
                f"build entitlements ({listed}) grant the build privileges",
            )
        network = self.scalar(build.get("network"), service, "build network")
        if isinstance(network, str) and network.strip().lower() == "host":
            self.add(
                "build:network=host",
                service,
                "build network: host runs the build's steps in the host's network namespace",
            )

    # --- top level ---------------------------------------------------------------------------

    def top_level_volumes(self, volumes: object) -> None:
        if not isinstance(volumes, dict):
            return
        for key, volume in volumes.items():
            settings = volume if isinstance(volume, dict) else {}
            self.vocabulary(settings, _VOLUME_KEYS, "volume", None)
            if isinstance(settings.get("driver_opts"), dict):
                self.driver_opts(str(key), settings["driver_opts"])
            self.volume_resource(str(key), settings)

    def driver_opts(self, name: str, options: Mapping[object, object]) -> None:
        where = f"volume {name} driver_opts"
        fstype = self.scalar(options.get("type"), None, where)
        device = self.scalar(options.get("device"), None, where)
        mount = self.scalar(options.get("o"), None, where)
        # With `bind` among the mount options the kernel binds the device path, whatever the type.
        binds = isinstance(mount, str) and bool(_BIND_OPTIONS & set(_options(mount)))
        if not isinstance(device, str) or not (
            binds or (_is_path(device) and str(fstype or "").lower() not in _NETWORK_FILESYSTEMS)
        ):
            return
        if self.resolved and not device.startswith("/"):
            # Compose left it relative: the daemon resolves it from its own working directory.
            device = "/" + device
        self.host_path(device, None, f"volume {name}: bind mount of")

    def volume_resource(self, key: str, volume: Mapping[object, object]) -> None:
        name, external = self.resource_name("volume", key, volume)
        if not name:
            return
        owner = self.resources.project_of("volume", name)
        if owner == self.project_name or (owner is None and not external):
            return
        self.add(
            f"foreign_volume:{name}",
            None,
            f"volume {key} ({name}) is {_owner('volume', owner)}: an application's volumes "
            "must be its own project's",
        )

    def top_level_networks(self, networks: object) -> None:
        if not isinstance(networks, dict):
            return
        for key, network in networks.items():
            settings = network if isinstance(network, dict) else {}
            self.vocabulary(settings, _NETWORK_KEYS, "network", None)
            driver = self.scalar(settings.get("driver"), None, f"network {key} driver")
            name, _ = self.resource_name("network", str(key), settings)
            if driver == "host" or name == "host":
                self.add(
                    "network_mode:host",
                    None,
                    f"network {key} is the host network: its services share the host's network",
                )
            else:
                self.network_resource(str(key), settings)

    def network_resource(self, key: str, network: Mapping[object, object]) -> None:
        name, external = self.resource_name("network", key, network)
        if not name or name in _PREDEFINED_NETWORKS:
            return
        owner = self.resources.project_of("network", name)
        if owner == self.project_name or (owner is None and not external):
            return
        self.add(
            f"foreign_network:{name}",
            None,
            f"network {key} ({name}) is {_owner('network', owner)}: an application's networks "
            "must be its own project's",
        )

    def resource_name(
        self, kind: str, key: str, settings: Mapping[object, object]
    ) -> tuple[str | None, bool]:
        """The name a top-level volume or network has on the host, and whether it is external
        (None for the name when it has no definite value)."""
        external = settings.get("external")
        written = settings.get("name")
        if isinstance(external, dict) and external.get("name") is not None:
            written = external["name"]
        is_external = isinstance(external, dict) or bool(
            _truthy(self.scalar(external, None, f"{kind} {key} external"))
        )
        if written is None:
            return (key if is_external else f"{self.project_name}_{key}"), is_external
        named = self.scalar(written, None, f"{kind} {key} name")
        return (None if named is None else str(named)), is_external

    def top_level_files(self, section: object, label: str) -> None:
        if not isinstance(section, dict):
            return
        for name, item in section.items():
            if not isinstance(item, dict):
                continue
            self.vocabulary(item, _FILE_SOURCE_KEYS[label], label, None)
            if isinstance(item.get("file"), str):
                self.host_path_text(item["file"], None, f"{label} {name}: file")

    def unchecked_file(self, path: object, service: str | None, where: str) -> None:
        if not isinstance(path, str):
            return
        resolved = self.text(path, service, where)
        if resolved is None:
            return
        located = _normalize(resolved if resolved.startswith("/") else f"{self.project}/{resolved}")
        self.add(
            f"unchecked_file:{located}",
            service,
            f"{where} reads {resolved}, a compose file this check does not see; inline it",
        )

    # --- host paths --------------------------------------------------------------------------

    def host_path_text(self, written: str, service: str | None, what: str) -> None:
        resolved = self.text(written, service, what)
        if resolved is not None:
            self.host_path(resolved, service, what)

    def host_path(
        self, written: str, service: str | None, what: str, *, confined: bool = False
    ) -> None:
        """Judge one host path compose would mount or read, as written (after interpolation);
        a `confined` one must stay in the project directory even when it is absolute."""
        if "\0" in written or _WINDOWS_PATH.match(written):
            self.add("invalid_compose", service, f"{what} {written!r} is no Linux host path")
            return
        relative = False
        if written == "~" or written.startswith("~/"):
            home = self.environment.get("HOME")
            if not home or not home.startswith("/"):
                self.add(
                    "unset_variable:HOME",
                    service,
                    f"{what} {written}: `~` is the home directory, but HOME is not set to a path",
                )
                return
            raw = home + written[1:]
        elif written.startswith("~"):
            self.add("invalid_compose", service, f"{what} {written}: write the user's home out")
            return
        elif written.startswith("/"):
            raw = written
        else:
            raw, relative = f"{self.project}/{written}", True
        lexical, real = _normalize(raw), self._real(raw)
        candidates = [lexical] if real == lexical else [lexical, real]
        shown = f"{what} {written}"
        if lexical != (written.rstrip("/") or "/"):
            shown += f" ({lexical})"
        if real != lexical:
            shown += f" (resolves to {real})"
        inside = _under(lexical, self.bundle) and _under(real, self.real_bundle)

        socket = next((p for p in candidates if posixpath.basename(p) == "docker.sock"), None)
        if socket is not None:
            self.add(
                f"docker_socket:{socket}",
                service,
                f"{shown}: the Docker socket gives full control of the host",
            )
        elif not inside:
            self.sensitive(candidates, service, shown)
        if (relative or confined) and not inside:
            escaped = lexical if not _under(lexical, self.bundle) else real
            self.add(
                f"project_escape:{escaped}",
                service,
                f"{shown}: leaves the application's bundle {self.bundle} (only its directory "
                "from the repository ships to this host)",
            )
        self.isolation(lexical, real, service, shown)

    def isolation(self, lexical: str, real: str, service: str | None, shown: str) -> None:
        """A path may reach into the deployments directory only inside the application's own
        folder; in allow-list mode, it may reach nothing else either."""
        if self.deployments is None or self.real_deployments is None:
            return
        if _under(lexical, self.own) and _under(real, self.real_own):
            return
        for path, own, root in (
            (lexical, self.own, self.deployments),
            (real, self.real_own, self.real_deployments),
        ):
            if not _under(path, own) and (_under(path, root) or _under(root, path)):
                self.add(
                    f"other_applications:{path}",
                    service,
                    f"{shown}: reaches other applications' folders in the deployments "
                    f"directory {self.deployments}",
                )
                break
        if self.options.bind_allow_list_mode:
            outside = lexical if not _under(lexical, self.own) else real
            self.add(
                f"outside_allow_list:{outside}",
                service,
                f"{shown}: outside the application's folder {self.own} (allow-list mode)",
            )

    def sensitive(self, candidates: Iterable[str], service: str | None, shown: str) -> None:
        """Report the most serious unexcused reason a path is sensitive (one per path: `/root/.ssh`
        is a system path first; a credential path only once the system rule is bypassed)."""
        reasons: list[tuple[str, str]] = []
        for kind, judge in (("host_path", _system_reason), ("credential_path", _credential_reason)):
            for path in candidates:
                reason = judge(path)
                if reason is not None:
                    reasons.append((f"{kind}:{path}", reason))
        for rule, reason in reasons:
            if not self.bypassed(rule):
                self.add(rule, service, f"{shown}: {reason}")
                return


def _short_volume_source(spec: str) -> str | None:
    """The source of a short-syntax volume (`SRC:DST[:MODE]`); None for an anonymous one.

    Mirrors compose's parser: no colon (or two characters or fewer) is an anonymous volume at
    that target; empty sections and a fourth section are errors.
    """
    if len(spec) <= 2:
        return None
    sections = spec.split(":")
    if "" in sections:
        raise ValueError("empty section between colons")
    if len(sections) > 3:
        raise ValueError("too many colons")
    return sections[0] if len(sections) > 1 else None
