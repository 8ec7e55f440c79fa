"""The compose security policy: what an application's compose file may ask of its host.

The agent checks the compose document BEFORE anything starts (`enforce`), and refuses it with one
`PolicyViolation` that lists every violation, so a user fixes the file in one round. The file is
read the way Docker Compose reads it — `${VAR}` interpolation from the environment compose will
see, short and long volume syntax, `~` and relative paths resolved — because a check that reads
the file differently from compose checks a different file.

Rule ids. A violation's `rule` is one of these; `kind` is the part before the first `:`.

==================================  ===========================================================
`privileged`                        `privileged: true`
`use_api_socket`                    `use_api_socket: true`
`cap_add:<CAP>`                     a dangerous capability (see `DANGEROUS_CAPABILITIES`), written
                                    with or without `CAP_`, in any case; the id has neither
`network_mode:host`, `pid:host`,    the host's namespace; `network_mode:host` also for a
`ipc:host`, `uts:host`,             top-level network that is the host network
`userns_mode:host`, `cgroup:host`
`security_opt:seccomp=unconfined`,  a `security_opt` that switches a confinement off
`security_opt:apparmor=unconfined`,
`security_opt:label=disable`,
`security_opt:systempaths=unconfined`
`devices`                           any `devices` entry
`device_cgroup_rules`               any `device_cgroup_rules` entry (device access by rule)
`volumes_from:container`            volumes of a container outside the project
`docker_socket:<path>`              the Docker socket (any path named `docker.sock`)
`host_path:<path>`                  `/`, a system directory (`SYSTEM_PATHS`) or anything under
                                    it, or a directory that contains one (`/var` holds `/var/run`)
`credential_path:<path>`            `/home` and the home directories in it; any path through
                                    `.ssh`, `.aws`, `.kube`, `.docker`, `.gnupg`, cron or pam
                                    directories; key files, `shadow`, `passwd`, `sudoers`, ...
`project_escape:<path>`             a relative path that leaves the project directory (`..`,
                                    or a symlink in the checkout pointing out of it)
`outside_allow_list:<path>`         allow-list mode: a host path outside the deployments dir
`unchecked_file:<path>`             `include` or `extends: {file: ...}`: compose would read a
                                    file this check never sees
==================================  ===========================================================

Not bypassable, because they are errors rather than policy: `unset_variable:<NAME>` (a variable
used without a value or default, or with `${VAR:?message}`), `invalid_compose` (something compose
itself would refuse or read differently), and `application_name` (`check_application_name`).

Host paths are checked wherever compose makes Docker mount or read one: service bind mounts (short
and long syntax), top-level volumes whose `driver_opts.device` is a host path (a bind in
disguise), the `file` of top-level secrets and configs (compose bind-mounts those), `env_file`,
and local build contexts. Named and anonymous volumes are fine. Paths inside the project directory
are the application's own files: only the Docker-socket, escape and allow-list rules apply there.
A path is judged both as written (normalized) and, unless `resolve_symlinks` is off, with the
host's symlinks resolved, since that is what the kernel mounts.

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

from ferry.domain.naming import compose_project_name
from ferry.errors import InvalidInput

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
    }
)
HOST_NAMESPACE_KEYS = ("network_mode", "pid", "ipc", "uts", "userns_mode", "cgroup")
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
        "outside_allow_list",
        "unchecked_file",
    }
)
BYPASSABLE_KINDS = frozenset(
    {
        "privileged",
        "use_api_socket",
        "cap_add",
        *HOST_NAMESPACE_KEYS,
        "security_opt",
        "devices",
        "device_cgroup_rules",
        "volumes_from",
        *PATH_KINDS,
    }
)
UNBYPASSABLE_KINDS = frozenset({"unset_variable", "invalid_compose", "application_name"})

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
_SECURITY_OPT_KEY = re.compile(r"([A-Za-z-]+)[:=](.*)")
_NETWORK_FILESYSTEMS = frozenset(
    {"nfs", "nfs4", "cifs", "smb", "smb3", "ceph", "glusterfs", "tmpfs", "ramfs"}
)
_VOLUME_TYPES = frozenset({"bind", "volume", "tmpfs", "npipe", "cluster", "image"})
_WINDOWS_PATH = re.compile(r"[A-Za-z]:[\\/]|\\\\")
_REMOTE_CONTEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://|git@|github\.com/")
_VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OPERATORS = (":-", ":?", ":+", "-", "?", "+")
_TRUE = frozenset({"true", "yes", "y", "on", "1"})
_FALSE = frozenset({"false", "no", "n", "off", "0", ""})
_NO_ENVIRONMENT: Mapping[str, str] = MappingProxyType({})
_NAME_BYTES_MAX = 255


@dataclass(frozen=True)
class PolicyOptions:
    """How strict the policy is for one application on one agent.

    `bind_allow_list_mode` limits host paths to `deployments_dir`; `bypass` holds the rule ids
    (see the module docstring) this application is excused from; `resolve_symlinks` also judges
    each host path with the host's symlinks resolved.
    """

    bind_allow_list_mode: bool = False
    deployments_dir: Path | None = None
    bypass: frozenset[str] = frozenset()
    resolve_symlinks: bool = True

    def __post_init__(self) -> None:
        if self.bind_allow_list_mode and (
            self.deployments_dir is None or not self.deployments_dir.is_absolute()
        ):
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
    environment: Mapping[str, str] = _NO_ENVIRONMENT,
    options: PolicyOptions = PolicyOptions(),
) -> list[Violation]:
    """Every violation of the policy in a parsed compose document, in file order.

    `project_dir` is the absolute directory compose resolves relative paths against (the compose
    file's folder); `environment` is what compose interpolates from (the agent's environment and
    the project's `.env`), including `HOME` for `~`.
    """
    if not project_dir.is_absolute():
        raise ValueError(f"project_dir must be absolute, not {project_dir}")
    checker = _Checker(project_dir, environment, options)
    checker.document(document)
    return checker.violations


def enforce(
    document: object,
    *,
    project_dir: Path,
    environment: Mapping[str, str] = _NO_ENVIRONMENT,
    options: PolicyOptions = PolicyOptions(),
) -> None:
    """Raise `PolicyViolation` listing every violation, if the document has any."""
    violations = check_compose(
        document, project_dir=project_dir, environment=environment, options=options
    )
    if violations:
        raise PolicyViolation(violations)


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
    else:
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
    """One pass over one document; collects violations instead of stopping at the first."""

    def __init__(
        self, project_dir: Path, environment: Mapping[str, str], options: PolicyOptions
    ) -> None:
        self.environment = environment
        self.options = options
        self.project = _normalize(str(project_dir))
        self.real_project = self._real(str(project_dir))
        deployments = options.deployments_dir
        self.deployments = None if deployments is None else _normalize(str(deployments))
        self.real_deployments = None if deployments is None else self._real(str(deployments))
        self.violations: list[Violation] = []
        self._seen: set[tuple[str, str | None]] = set()

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
                f"agent's environment or the project's .env, or give a default (${{{name}:-...}})",
            )
        return None if missing else result

    def scalar(self, value: object, service: str | None, where: str) -> object:
        """A scalar setting interpolated if it is a string; None when it has no definite value."""
        return self.text(value, service, where) if isinstance(value, str) else value

    def document(self, document: object) -> None:
        if not isinstance(document, dict):
            self.add("invalid_compose", None, "the compose file is not a mapping")
            return
        services = document.get("services") or {}
        if not isinstance(services, dict):
            self.add("invalid_compose", None, "services is not a mapping")
        else:
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

    def service(self, name: str, service: object) -> None:
        if not isinstance(service, dict):
            self.add("invalid_compose", name, "the service is not a mapping")
            return
        for key, why in (
            ("privileged", "privileged mode gives the container every capability and device"),
            ("use_api_socket", "use_api_socket hands the container the Docker API"),
        ):
            if key in service:
                self.flag(service[key], key, name, why)
        for entry in _as_list(service.get("cap_add")):
            capability = self.scalar(entry, name, "cap_add")
            if capability is not None and _capability(str(capability)) in DANGEROUS_CAPABILITIES:
                canonical = _capability(str(capability))
                self.add(f"cap_add:{canonical}", name, f"cap_add {canonical}")
        for key in HOST_NAMESPACE_KEYS:
            value = self.scalar(service.get(key), name, key)
            if isinstance(value, str) and value.strip().lower() == "host":
                self.add(f"{key}:host", name, f"{key}: host shares the host's namespace")
        for entry in _as_list(service.get("security_opt")):
            self.security_opt(entry, name)
        for key in ("devices", "device_cgroup_rules"):
            if service.get(key):
                listed = ", ".join(str(entry) for entry in _as_list(service[key]))
                self.add(key, name, f"{key} gives the container host devices ({listed})")
        for entry in _as_list(service.get("volumes")):
            self.volume(entry, name)
        for entry in _as_list(service.get("volumes_from")):
            source = self.scalar(entry, name, "volumes_from")
            if isinstance(source, str) and source.startswith("container:"):
                self.add(
                    "volumes_from:container",
                    name,
                    f"volumes_from {source} takes the volumes of a container outside the project",
                )
        self.build(service.get("build"), name)
        for entry in _as_list(service.get("env_file")):
            path = entry.get("path") if isinstance(entry, dict) else entry
            if isinstance(path, str):
                self.host_path_text(path, name, "env_file")
        extends = service.get("extends")
        if isinstance(extends, dict) and extends.get("file") is not None:
            self.unchecked_file(extends["file"], name, "extends")

    def flag(self, value: object, key: str, service: str, why: str) -> None:
        resolved = self.scalar(value, service, key)
        if resolved is None:
            return
        truth = _truthy(resolved)
        if truth is None:
            self.add(key, service, f"{key}: {resolved!r} is not a boolean, read as true: {why}")
        elif truth:
            self.add(key, service, why)

    def security_opt(self, entry: object, service: str) -> None:
        option = self.scalar(entry, service, "security_opt")
        if not isinstance(option, str):
            return
        match = _SECURITY_OPT_KEY.fullmatch(option.strip())
        if match is None:
            return
        key, value = match.group(1).lower(), match.group(2).strip().lower()
        why = _SECURITY_OPT_OFF.get((key, value))
        if why is not None:
            self.add(f"security_opt:{key}={value}", service, f"security_opt {option}: {why}")

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
        context = build.get("context") if isinstance(build, dict) else build
        if isinstance(context, str):
            resolved = self.text(context, service, "build context")
            if resolved is not None and not _REMOTE_CONTEXT.match(resolved):
                self.host_path(resolved, service, "build context")
        if isinstance(build, dict) and isinstance(build.get("additional_contexts"), dict):
            for extra in build["additional_contexts"].values():
                extra_context = self.scalar(extra, service, "build additional_contexts")
                if isinstance(extra_context, str) and not (
                    _REMOTE_CONTEXT.match(extra_context) or extra_context.startswith("service:")
                ):
                    self.host_path(extra_context, service, "build context")

    def top_level_volumes(self, volumes: object) -> None:
        if not isinstance(volumes, dict):
            return
        for name, volume in volumes.items():
            if not isinstance(volume, dict) or not isinstance(volume.get("driver_opts"), dict):
                continue
            options = volume["driver_opts"]
            where = f"volume {name} driver_opts"
            fstype = self.scalar(options.get("type"), None, where)
            device = self.scalar(options.get("device"), None, where)
            if (
                isinstance(device, str)
                and _is_path(device)
                and str(fstype or "").lower() not in _NETWORK_FILESYSTEMS
            ):
                self.host_path(device, None, f"volume {name}: bind mount of")

    def top_level_networks(self, networks: object) -> None:
        if not isinstance(networks, dict):
            return
        for name, network in networks.items():
            if not isinstance(network, dict):
                continue
            external = network.get("external")
            named = network.get("name")
            if isinstance(external, dict):
                named = external.get("name", named)
            driver = self.scalar(network.get("driver"), None, f"network {name} driver")
            named = self.scalar(named, None, f"network {name} name")
            if driver == "host" or named == "host":
                self.add(
                    "network_mode:host",
                    None,
                    f"network {name} is the host network: its services share the host's network",
                )

    def top_level_files(self, section: object, label: str) -> None:
        if not isinstance(section, dict):
            return
        for name, item in section.items():
            if isinstance(item, dict) and isinstance(item.get("file"), str):
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

    def host_path_text(self, written: str, service: str | None, what: str) -> None:
        resolved = self.text(written, service, what)
        if resolved is not None:
            self.host_path(resolved, service, what)

    def host_path(self, written: str, service: str | None, what: str) -> None:
        """Judge one host path compose would mount or read, as written (after interpolation)."""
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
        inside = _under(lexical, self.project) and _under(real, self.real_project)

        socket = next((p for p in candidates if posixpath.basename(p) == "docker.sock"), None)
        if socket is not None:
            self.add(
                f"docker_socket:{socket}",
                service,
                f"{shown}: the Docker socket gives full control of the host",
            )
        elif not inside:
            self.sensitive(candidates, service, shown)
        if relative and not inside:
            escaped = lexical if not _under(lexical, self.project) else real
            self.add(
                f"project_escape:{escaped}",
                service,
                f"{shown}: leaves the project directory {self.project}",
            )
        if (
            self.options.bind_allow_list_mode
            and self.deployments is not None
            and self.real_deployments is not None
            and not (_under(lexical, self.deployments) and _under(real, self.real_deployments))
        ):
            outside = lexical if not _under(lexical, self.deployments) else real
            self.add(
                f"outside_allow_list:{outside}",
                service,
                f"{shown}: outside the deployments directory {self.deployments} (allow-list mode)",
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
