"""From a repository's web (or clone) URL to the REST adapter of its provider."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit

from ferry.domain.models import RepositoryCredentials
from ferry.errors import GitError
from ferry.git.providers import azure, gitea, github, gitlab  # the modules, not the package
from ferry.git.providers.base import DEFAULT_TIMEOUT_SECONDS
from ferry.git.source import ProviderSource
from ferry.outbound.http import AllowSpec

PROVIDERS = ("github", "gitlab", "gitea", "forgejo", "azure_devops")

# git@host:path (scp-like): no scheme, a user, and a colon before the first slash.
_SCP_LIKE = re.compile(r"^(?P<user>[^@/:]+)@(?P<host>[^:/]+):(?P<path>[^/].*)$")
_AZURE_SSH_HOST = "ssh.dev.azure.com"


@dataclass(frozen=True)
class RepositoryAddress:
    """Where a repository URL points: the web origin to derive an API from, and the path
    segments (decoded, without `.git`)."""

    scheme: str
    netloc: str
    segments: tuple[str, ...]

    @property
    def origin(self) -> str:
        return f"{self.scheme}://{self.netloc}"


def parse_repository_url(url: str) -> RepositoryAddress:
    """Split an https://, http://, ssh:// or scp-like (`git@host:owner/repo.git`) URL. The API
    is always spoken over HTTP(S): an SSH URL maps to https on the same host. User info is
    dropped (it never reaches an error message either)."""
    text = url.strip()
    scp = _SCP_LIKE.match(text)
    if scp is not None:
        host, path, scheme = scp.group("host"), scp.group("path"), "https"
    else:
        parts = urlsplit(text)
        if parts.scheme not in ("https", "http", "ssh") or not parts.hostname:
            raise GitError(f"{_redacted(text)} is not an http(s) or ssh repository URL")
        scheme = "https" if parts.scheme == "ssh" else parts.scheme
        host = parts.hostname
        if parts.port is not None and parts.scheme != "ssh":
            host = f"{host}:{parts.port}"
        path = parts.path
    segments = [unquote(segment) for segment in path.split("/") if segment]
    if segments:
        segments[-1] = segments[-1].removesuffix(".git")
    return RepositoryAddress(scheme=scheme, netloc=host.lower(), segments=tuple(segments))


def provider_source(
    provider: str,
    url: str,
    credentials: RepositoryCredentials | None,
    *,
    api_base: str | None = None,
    allow: AllowSpec = None,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
) -> ProviderSource:
    """The REST adapter for a repository hosted on `provider` (one of PROVIDERS).

    `url` is the repository's web or clone URL (https://github.com/owner/repo(.git),
    git@gitlab.com:group/sub/project.git, https://dev.azure.com/org/project/_git/repo, ...);
    the API root is derived from it: api.github.com for github.com and `https://host/api/v3` for
    GitHub Enterprise, `https://host/api/v4` for GitLab, `https://host/api/v1` for Gitea and
    Forgejo, the organization (collection) URL for Azure DevOps. `api_base` replaces the derived
    root (GitHub Enterprise, instances under a sub-path, tests). `allow` and `timeout` go to the
    SSRF-safe HTTP client. GitError for an unknown provider, a URL that names no repository, or
    an SSH deploy key (REST APIs take tokens).
    """
    name = provider.strip().lower().replace("-", "_")
    address = parse_repository_url(url)
    base = api_base.rstrip("/") if api_base else None
    if name == "github":
        owner, repo = _owner_and_repo(address, url, "GitHub")
        if base is None:
            public = address.netloc in ("github.com", "www.github.com")
            base = github.PUBLIC_API if public else f"{address.origin}/api/v3"
        return github.GitHubSource(
            owner, repo, credentials, api_base=base, allow=allow, timeout=timeout
        )
    if name == "gitlab":
        segments = _without_prefix(address, base)
        if "-" in segments:
            segments = segments[: segments.index("-")]
        if len(segments) < 2:
            raise GitError(f"{_redacted(url)} names no GitLab project (expected group/project)")
        return gitlab.GitLabSource(
            "/".join(segments),
            credentials,
            api_base=base or f"{address.origin}/api/v4",
            allow=allow,
            timeout=timeout,
        )
    if name in ("gitea", "forgejo"):
        display = "Forgejo" if name == "forgejo" else "Gitea"
        segments = _without_prefix(address, base)
        owner, repo = _owner_and_repo(
            RepositoryAddress(address.scheme, address.netloc, segments), url, display
        )
        return gitea.GiteaSource(
            owner,
            repo,
            base or f"{address.origin}/api/v1",
            credentials,
            allow=allow,
            timeout=timeout,
            name=display,
        )
    if name == "azure_devops":
        organization_url, project, repo = _azure_coordinates(address, url)
        return azure.AzureDevOpsSource(
            base or organization_url, project, repo, credentials, allow=allow, timeout=timeout
        )
    raise GitError(f"unknown git provider {provider!r}; expected one of {', '.join(PROVIDERS)}")


def _owner_and_repo(address: RepositoryAddress, url: str, provider: str) -> tuple[str, str]:
    # Web URLs may go deeper (/owner/repo/tree/main/...): the first two segments name the repo.
    if len(address.segments) < 2:
        raise GitError(f"{_redacted(url)} names no {provider} repository (expected owner/repo)")
    return address.segments[0], address.segments[1]


def _without_prefix(address: RepositoryAddress, api_base: str | None) -> tuple[str, ...]:
    """The repository path without the instance's sub-path: with api_base
    https://host/gitea/api/v1, https://host/gitea/owner/repo is owner/repo."""
    if api_base is None:
        return address.segments
    parts = urlsplit(api_base)
    if (parts.netloc or "").lower() != address.netloc or "/api/" not in f"{parts.path}/":
        return address.segments
    prefix = tuple(segment for segment in parts.path.split("/api/")[0].split("/") if segment)
    if prefix and address.segments[: len(prefix)] == prefix:
        return address.segments[len(prefix) :]
    return address.segments


def _azure_coordinates(address: RepositoryAddress, url: str) -> tuple[str, str, str]:
    """(organization URL, project, repository) of an Azure Repos URL:
    https://dev.azure.com/{org}/{project}/_git/{repo}, https://{org}.visualstudio.com/{project}/
    _git/{repo}, https://server/{collection}/{project}/_git/{repo} (Azure DevOps Server), and
    git@ssh.dev.azure.com:v3/{org}/{project}/{repo}."""
    segments = list(address.segments)
    if address.netloc == _AZURE_SSH_HOST:
        if len(segments) != 4 or segments[0] != "v3":
            raise GitError(f"{_redacted(url)} is not an Azure DevOps SSH URL (v3/org/project/repo)")
        return f"https://dev.azure.com/{segments[1]}", segments[2], segments[3]
    if "_git" not in segments or segments.index("_git") + 1 >= len(segments):
        raise GitError(f"{_redacted(url)} names no Azure DevOps repository (…/_git/repo)")
    at = segments.index("_git")
    repo = segments[at + 1]
    collection = segments[: at - 1] if at >= 1 else []
    project = segments[at - 1] if at >= 1 else ""
    if address.netloc == "dev.azure.com" and not collection:
        # https://dev.azure.com/{org}/_git/{repo}: a project named like its repository.
        collection, project = [project], repo
    if not project:
        raise GitError(f"{_redacted(url)} names no Azure DevOps project")
    path = "".join(f"/{quote(segment, safe='')}" for segment in collection)
    return f"{address.origin}{path}", project, repo


def _redacted(url: str) -> str:
    parts = urlsplit(url.strip())
    if parts.password is None and parts.username is None:
        return url.strip()
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return parts._replace(netloc=host).geturl()
