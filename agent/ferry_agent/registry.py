"""Registries: what digest an image tag names now, asked the way Docker itself asks.

- References are normalized as Docker does: `nginx` is `docker.io/library/nginx:latest`, a first
  part with a `.` or `:` (or `localhost`) is a registry host.
- The digest is a HEAD on the manifest (`/v2/<repository>/manifests/<tag>`), accepting OCI
  indexes, Docker manifest lists and single manifests, so it is the digest `docker pull` records
  in the image's RepoDigests. Docker Hub does not count HEAD requests against its pull limit.
- Credentials are the host's Docker credentials (`$DOCKER_CONFIG/config.json`, else
  `~/.docker/config.json`): a credential helper for the registry (`credHelpers`, e.g.
  `ecr-login` for ECR), else the default store (`credsStore`), else the `auths` entry. They
  answer the registry's challenge: Basic, or a Bearer token from its token service.
- Per registry, one request at a time, and a 429's `Retry-After` is honoured: until then that
  registry is not asked again (RateLimited at once).
- Registries on loopback addresses may speak plain HTTP (Docker allows 127.0.0.0/8 without TLS):
  HTTPS is tried first, as Docker does. `/etc/docker/certs.d/<host>/ca.crt` is trusted when present.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import logging
import os
import re
import shutil
import ssl
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ferry_agent.compose import COMPOSE_VARIABLES

if TYPE_CHECKING:
    import httpx

log = logging.getLogger("ferry_agent")

DOCKER_HUB = "docker.io"
_DOCKER_HUB_API = "registry-1.docker.io"
_DOCKER_HUB_AUTH_KEY = "https://index.docker.io/v1/"
MANIFEST_TYPES = ", ".join(
    (
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
    )
)
DEFAULT_RETRY_AFTER_SECONDS = 60.0
_HELPER_TIMEOUT_SECONDS = 20
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
_CHALLENGE_PARAMETER = re.compile(r'(\w+)="([^"]*)"')
_CERTS_D = Path("/etc/docker/certs.d")


class RegistryError(Exception):
    """The registry could not tell the digest; the message says why (shown in the history).

    `key` names the kind of failure (registry and status), so a failure that repeats on every
    check is reported once."""

    def __init__(self, message: str, key: str) -> None:
        super().__init__(message)
        self.key = key


class RateLimited(RegistryError):
    """The registry asked us to wait (429): not asked again for `retry_after` seconds."""

    def __init__(self, registry: str, retry_after: float) -> None:
        super().__init__(
            f"registry {registry} answered 429 Too Many Requests: not asked again for "
            f"{retry_after:.0f} s",
            key=f"{registry}:429",
        )
        self.retry_after = retry_after


# --- references ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageReference:
    """A normalized image reference: `registry/repository[:tag][@digest]`."""

    registry: str
    repository: str
    tag: str | None
    digest: str | None

    @property
    def name(self) -> str:
        """Registry and repository, e.g. `docker.io/library/nginx` (what a RepoDigest names)."""
        return f"{self.registry}/{self.repository}"

    def __str__(self) -> str:
        tag = f":{self.tag}" if self.tag else ""
        digest = f"@{self.digest}" if self.digest else ""
        return f"{self.name}{tag}{digest}"


def parse_reference(text: str) -> ImageReference:
    """Normalize an image reference as Docker does (ValueError for one it would refuse)."""
    remainder, _, digest = text.strip().partition("@")
    if not remainder:
        raise ValueError("an empty image reference")
    slash = remainder.rfind("/")
    colon = remainder.rfind(":")
    tag = None
    if colon > slash:
        remainder, tag = remainder[:colon], remainder[colon + 1 :]
        if not _TAG.match(tag):
            raise ValueError(f"{text!r} has an invalid tag")
    first, _, rest = remainder.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        registry, repository = first, rest
    else:
        registry, repository = DOCKER_HUB, remainder
    if registry in ("index.docker.io", "registry-1.docker.io"):
        registry = DOCKER_HUB
    if registry == DOCKER_HUB and "/" not in repository:
        repository = f"library/{repository}"
    if not repository or repository != repository.lower() or " " in repository:
        raise ValueError(f"{text!r} is not a valid image reference")
    if tag is None and not digest:
        tag = "latest"
    return ImageReference(registry, repository, tag, digest or None)


def is_loopback(registry: str) -> bool:
    """Whether a registry host is on this machine (Docker lets those speak plain HTTP)."""
    if registry.startswith("["):
        host = registry[1 : registry.find("]")]
    else:
        host = registry.rsplit(":", 1)[0] if registry.count(":") == 1 else registry
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# --- credentials --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Credentials:
    username: str | None = None
    password: str | None = None
    identity_token: str | None = None  # an OAuth refresh token (`docker login` to some registries)

    def __repr__(self) -> str:
        return f"Credentials(username={self.username!r}, password=***)"


class DockerCredentials:
    """The host's Docker credentials for a registry, read as the Docker CLI reads them (the
    configuration is read again on every lookup: `docker login` takes effect at once)."""

    def __init__(self, config_dir: Path | None = None) -> None:
        self.config_path = (config_dir or Path("~/.docker").expanduser()) / "config.json"

    def _config(self) -> dict[str, Any]:
        try:
            loaded = json.loads(self.config_path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.warning("cannot read %s (%s): no registry credentials", self.config_path, exc)
            return {}
        return loaded if isinstance(loaded, dict) else {}

    def for_registry(self, registry: str) -> Credentials | None:
        """The credentials for `registry` (None: ask anonymously)."""
        config = self._config()
        server = _DOCKER_HUB_AUTH_KEY if registry == DOCKER_HUB else registry
        helper = (config.get("credHelpers") or {}).get(registry) or config.get("credsStore")
        if helper:
            found = self._from_helper(str(helper), server)
            if found is not None:
                return found
        return self._from_auths(config.get("auths") or {}, registry)

    def _from_helper(self, helper: str, server: str) -> Credentials | None:
        program = shutil.which(f"docker-credential-{helper}")
        if program is None:
            log.warning("credential helper docker-credential-%s is not installed", helper)
            return None
        try:
            # The helper protocol: `get` with the server on stdin, JSON credentials on stdout.
            answered = subprocess.run(
                [program, "get"],
                input=server,
                capture_output=True,
                text=True,
                timeout=_HELPER_TIMEOUT_SECONDS,
                check=False,
                # As clean as compose's: the agent's token and AWS session are not the helper's.
                env={name: os.environ[name] for name in COMPOSE_VARIABLES if name in os.environ},
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            log.warning("credential helper %s failed: %s", helper, exc)
            return None
        if answered.returncode != 0:
            # "credentials not found in native keychain" is the helpers' way of saying none.
            return None
        try:
            secret = json.loads(answered.stdout)
        except ValueError:
            log.warning("credential helper %s printed no credentials", helper)
            return None
        username, password = secret.get("Username"), secret.get("Secret")
        if username == "<token>":
            return Credentials(identity_token=password)
        return Credentials(username=username, password=password)

    def _from_auths(self, auths: dict[str, Any], registry: str) -> Credentials | None:
        keys = [registry, f"https://{registry}", f"http://{registry}", f"https://{registry}/v1/"]
        if registry == DOCKER_HUB:
            keys = [_DOCKER_HUB_AUTH_KEY, "index.docker.io", DOCKER_HUB, *keys]
        entry = next((auths[key] for key in keys if isinstance(auths.get(key), dict)), None)
        if entry is None:
            return None
        if entry.get("identitytoken"):
            return Credentials(identity_token=str(entry["identitytoken"]))
        if entry.get("auth"):
            try:
                decoded = base64.b64decode(str(entry["auth"])).decode()
            except (ValueError, UnicodeDecodeError):
                log.warning(
                    "the credentials for %s in the Docker configuration are malformed", registry
                )
                return None
            username, _, password = decoded.partition(":")
            return Credentials(username=username, password=password)
        if entry.get("username"):
            return Credentials(username=entry["username"], password=entry.get("password"))
        return None


# --- the registry API ---------------------------------------------------------------------------


def _retry_after(value: str | None, now: float) -> float:
    """Seconds from a Retry-After header (seconds or an HTTP date)."""
    if not value:
        return DEFAULT_RETRY_AFTER_SECONDS
    if value.strip().isdigit():
        return max(1.0, float(value.strip()))
    try:
        return max(1.0, parsedate_to_datetime(value).timestamp() - now)
    except (TypeError, ValueError):
        return DEFAULT_RETRY_AFTER_SECONDS


def _challenge(header: str) -> tuple[str, dict[str, str]]:
    scheme, _, rest = header.strip().partition(" ")
    return scheme.lower(), dict(_CHALLENGE_PARAMETER.findall(rest))


@dataclass
class _Registry:
    """What we know of one registry: its lock, when it may be asked again, how to reach it."""

    lock: threading.Lock
    not_before: float = 0.0
    scheme: str | None = None
    tokens: dict[str, tuple[str, float]] | None = None  # scope → (token, valid until)


class RegistryClient:
    """Asks registries which digest a tag names (RegistryError when one cannot say)."""

    def __init__(
        self,
        credentials: DockerCredentials,
        *,
        timeout: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.credentials = credentials
        self.timeout = timeout
        self.clock = clock
        self._registries: dict[str, _Registry] = {}
        self._guard = threading.Lock()

    def _state(self, registry: str) -> _Registry:
        with self._guard:
            return self._registries.setdefault(registry, _Registry(lock=threading.Lock()))

    def digest(self, reference: ImageReference) -> str:
        """The digest `reference`'s tag names in its registry now."""
        if reference.tag is None:
            raise ValueError(f"{reference} names a digest, not a tag")
        state = self._state(reference.registry)
        with state.lock:
            wait = state.not_before - self.clock()
            if wait > 0:
                raise RateLimited(reference.registry, wait)
            try:
                return self._head_manifest(reference, state)
            except RateLimited as exc:
                state.not_before = self.clock() + exc.retry_after
                raise

    def _head_manifest(self, reference: ImageReference, state: _Registry) -> str:
        path = f"/v2/{reference.repository}/manifests/{reference.tag}"
        scope = f"repository:{reference.repository}:pull"
        headers = {"Accept": MANIFEST_TYPES}
        authorization = self._cached_token(state, scope)
        if authorization:
            headers["Authorization"] = authorization
        response = self._request(reference.registry, state, "HEAD", path, headers)
        if response.status_code == 401:
            authorization = self._answer_challenge(
                reference.registry, state, response.headers.get("www-authenticate", ""), scope
            )
            if authorization is not None:
                headers["Authorization"] = authorization
                response = self._request(reference.registry, state, "HEAD", path, headers)
        return self._digest_of(reference, response)

    def _digest_of(self, reference: ImageReference, response: httpx.Response) -> str:
        registry = reference.registry
        status = response.status_code
        if status == 429:
            raise RateLimited(
                registry, _retry_after(response.headers.get("retry-after"), self.clock())
            )
        if status in (401, 403):
            raise RegistryError(
                f"registry {registry} answered {status} for {reference.repository}: check the "
                "host's Docker credentials (docker login)",
                key=f"{registry}:{status}",
            )
        if status == 404:
            raise RegistryError(
                f"registry {registry} has no {reference.repository}:{reference.tag}",
                key=f"{registry}:404:{reference}",
            )
        if not 200 <= status < 300:
            raise RegistryError(
                f"registry {registry} answered {status} for {reference.repository}",
                key=f"{registry}:{status}",
            )
        digest = response.headers.get("docker-content-digest")
        if not digest:
            raise RegistryError(
                f"registry {registry} sent no Docker-Content-Digest for {reference}",
                key=f"{registry}:no-digest",
            )
        return str(digest)

    # --- authentication -------------------------------------------------------------------------

    def _cached_token(self, state: _Registry, scope: str) -> str | None:
        token = (state.tokens or {}).get(scope)
        if token is None or token[1] <= self.clock():
            return None
        return token[0]

    def _answer_challenge(
        self, registry: str, state: _Registry, header: str, scope: str
    ) -> str | None:
        scheme, parameters = _challenge(header)
        credentials = self.credentials.for_registry(registry)
        if scheme == "basic":
            if credentials is None or credentials.username is None:
                return None
            pair = f"{credentials.username}:{credentials.password or ''}".encode()
            return f"Basic {base64.b64encode(pair).decode()}"
        if scheme != "bearer" or "realm" not in parameters:
            return None
        token, valid_for = self._fetch_token(registry, parameters, scope, credentials)
        authorization = f"Bearer {token}"
        if state.tokens is None:
            state.tokens = {}
        # A little before the registry's expiry, so a token never lapses between check and use.
        state.tokens[scope] = (authorization, self.clock() + max(0.0, valid_for - 10))
        return authorization

    def _fetch_token(
        self,
        registry: str,
        parameters: dict[str, str],
        scope: str,
        credentials: Credentials | None,
    ) -> tuple[str, float]:
        query = {"scope": parameters.get("scope") or scope}
        if parameters.get("service"):
            query["service"] = parameters["service"]
        import httpx  # only once a registry is asked (see _request)

        auth: httpx.BasicAuth | None = None
        try:
            if credentials is not None and credentials.identity_token:
                response = httpx.post(
                    parameters["realm"],
                    data={
                        **query,
                        "grant_type": "refresh_token",
                        "refresh_token": credentials.identity_token,
                        "client_id": "ferry-agent",
                    },
                    timeout=self.timeout,
                )
            else:
                if credentials is not None and credentials.username:
                    auth = httpx.BasicAuth(credentials.username, credentials.password or "")
                response = httpx.get(
                    parameters["realm"], params=query, auth=auth, timeout=self.timeout
                )
        except httpx.HTTPError as exc:
            raise RegistryError(
                f"token service of {registry} unreachable: {exc}", key=f"{registry}:token"
            ) from exc
        if response.status_code == 429:
            raise RateLimited(
                registry, _retry_after(response.headers.get("retry-after"), self.clock())
            )
        if response.status_code != 200:
            raise RegistryError(
                f"token service of {registry} answered {response.status_code}: check the "
                "host's Docker credentials (docker login)",
                key=f"{registry}:token:{response.status_code}",
            )
        try:
            body = response.json()
            token = body.get("token") or body.get("access_token")
            valid_for = float(body.get("expires_in") or 60)
        except (ValueError, AttributeError, TypeError):
            token, valid_for = None, 0.0
        if not token:
            raise RegistryError(
                f"token service of {registry} sent no token", key=f"{registry}:token"
            )
        return str(token), valid_for

    # --- transport ------------------------------------------------------------------------------

    def _request(
        self, registry: str, state: _Registry, method: str, path: str, headers: dict[str, str]
    ) -> httpx.Response:
        # httpx is loaded by the first registry request, not with the agent: most agents never
        # ask a registry (image updates are off by default), and it weighs some MB of memory.
        import httpx

        host = _DOCKER_HUB_API if registry == DOCKER_HUB else registry
        schemes = [state.scheme] if state.scheme else ["https"]
        if state.scheme is None and is_loopback(registry):
            schemes.append("http")
        failure: Exception | None = None
        for scheme in schemes:
            try:
                response = httpx.request(
                    method,
                    f"{scheme}://{host}{path}",
                    headers=headers,
                    timeout=self.timeout,
                    verify=_trust(host) if scheme == "https" else True,
                )
            except httpx.HTTPError as exc:
                failure = exc
                continue
            state.scheme = scheme
            return response
        raise RegistryError(
            f"registry {registry} unreachable: {failure}", key=f"{registry}:unreachable"
        )


def _trust(host: str) -> ssl.SSLContext | bool:
    """The CA Docker trusts for this registry (certs.d), else the default trust."""
    ca = _CERTS_D / host / "ca.crt"
    if not ca.is_file():
        return True
    return ssl.create_default_context(cafile=str(ca))


def repo_digest(repo_digests: list[str], reference: ImageReference) -> str | None:
    """The digest an image was pulled (or pushed) as from `reference`'s repository, from its
    RepoDigests; None for an image no registry knows (built or imported here)."""
    for entry in repo_digests:
        name, _, digest = entry.partition("@")
        try:
            if parse_reference(name).name == reference.name and digest:
                return digest
        except ValueError:
            continue
    return None
