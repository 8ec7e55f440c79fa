"""The port every git provider implements, and the factory that picks one for a repository."""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import Protocol
from urllib.parse import unquote, urlparse

from ferry.domain.models import CommitInfo, Provider, Repository
from ferry.errors import GitError, InvalidInput

_SHA = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")


class GitSource(Protocol):
    """Read access to one repository."""

    def latest_commit(self, branch: str) -> CommitInfo:
        """The commit the branch points at now. GitError when the branch does not exist."""
        ...

    def commit(self, sha: str) -> CommitInfo:
        """A commit by full SHA. GitError when the repository does not have it."""
        ...

    def read_file(self, sha: str, path: str) -> str:
        """A file's text at a commit. GitError when the file is missing there."""
        ...


def is_full_sha(value: str) -> bool:
    """Whether `value` is a full SHA-1 (or SHA-256) in lowercase hex."""
    return bool(_SHA.match(value))


def normalize_repo_path(path: str) -> str:
    """A path inside a repository: relative, forward slashes, no `..`. InvalidInput otherwise."""
    cleaned = path.strip().replace("\\", "/")
    pure = PurePosixPath(cleaned)
    if not cleaned or pure.is_absolute() or ".." in pure.parts:
        raise InvalidInput(f"path {path!r} must be a relative path inside the repository")
    normalized = str(pure)
    if normalized in ("", "."):
        raise InvalidInput("path must name a file")
    return normalized


def local_path_of(url: str) -> str | None:
    """The filesystem path of a local repository URL (a plain path or file://), else None."""
    if url.startswith("file://"):
        return unquote(urlparse(url).path)
    if url.startswith("/"):
        return url
    return None


class UnavailableSource:
    """A repository Ferry cannot read: every operation fails with the same reason."""

    def __init__(self, reason: str) -> None:
        self._reason = reason

    def latest_commit(self, branch: str) -> CommitInfo:
        raise GitError(self._reason)

    def commit(self, sha: str) -> CommitInfo:
        raise GitError(self._reason)

    def read_file(self, sha: str, path: str) -> str:
        raise GitError(self._reason)


def unsupported_reason(url: str, provider: Provider) -> str | None:
    """Why Ferry cannot read this repository, or None when it can (checked before it is stored)."""
    if provider is Provider.GIT:
        if local_path_of(url) is not None:
            return None
        from ferry.git.remote import parse_remote_url

        try:
            parse_remote_url(url)
        except GitError as exc:
            return str(exc)
        return None
    from ferry.git.providers import provider_source

    try:
        provider_source(provider.value, url, None).close()  # parses; opens no connection
    except GitError as exc:
        return str(exc)
    return None


def open_source(repository: Repository) -> GitSource:
    """The git source for a repository record; reads fail with the reason when it is unreadable.

    Local paths are read in place; other git URLs (https, ssh) through a cached bare clone;
    GitHub, GitLab, Gitea/Forgejo and Azure DevOps through their REST APIs, unless the
    repository's credential is a deploy key (then as git over SSH).
    """
    from ferry.domain.models import CredentialKind
    from ferry.settings import get_settings
    from ferry.store.repositories import get_credentials

    path = local_path_of(repository.url)
    if repository.provider is Provider.GIT and path is not None:
        from ferry.git.local import LocalGitSource

        return LocalGitSource(path)
    try:
        credentials = get_credentials(repository.id) if repository.has_credentials else None
        if repository.provider is Provider.GIT or (
            credentials is not None and credentials.kind is CredentialKind.SSH_KEY
        ):
            from ferry.git.remote import RemoteGitSource

            return RemoteGitSource(repository.url, credentials, get_settings().git_cache_dir)
        from ferry.git.providers import provider_source

        return provider_source(repository.provider.value, repository.url, credentials)
    except GitError as exc:
        return UnavailableSource(str(exc))
