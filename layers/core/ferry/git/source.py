"""The ports every repository reader implements (`GitSource`, and `ProviderSource` for hosts
that can also list what they hold), and the pure checks they share. Adapters: `local` (a path
on this machine), `remote` (any git URL over HTTPS or SSH), `providers/` (REST APIs); `open`
picks one for a repository."""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import Protocol
from urllib.parse import unquote, urlparse

from ferry.domain.bundle import TreeEntry
from ferry.domain.models import CommitInfo
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

    def contains(self, descendant: str, ancestor: str) -> bool:
        """Whether `ancestor` is in the history of `descendant` (a commit contains itself).
        GitError when either commit is missing."""
        ...

    def read_tree(self, sha: str, path: str = "") -> list[TreeEntry]:
        """Every file, symlink and submodule below the directory `path` at a commit (the whole
        repository when empty), recursively, with modes, object ids and (where the host says)
        sizes, sorted by path. GitError when the commit is missing or `path` is no directory."""
        ...

    def read_blob(self, sha: str, entry: TreeEntry) -> bytes:
        """The content of a file (or a symlink's target text) `read_tree` listed at that commit.
        GitError when it is missing."""
        ...


class ProviderSource(GitSource, Protocol):
    """A repository on a git host that can also list what it holds."""

    def list_branches(self) -> list[str]:
        """Every branch name, sorted."""
        ...

    def list_tree(self, sha: str, path: str = "") -> list[str]:
        """The file paths at a commit (recursively, under `path` when given), sorted.

        GitError when the commit is missing; an empty list when `path` names no directory.
        """
        ...

    def branches_containing(self, sha: str) -> list[str]:
        """The branches whose history includes the commit, sorted. GitError when it is missing.

        Costs differ (see each adapter's docstring): one call on GitLab and Azure DevOps, one per
        branch on GitHub and Gitea, a full-history fetch for generic git.
        """
        ...

    def close(self) -> None:
        """Release the connections it holds."""
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

    def contains(self, descendant: str, ancestor: str) -> bool:
        raise GitError(self._reason)

    def read_tree(self, sha: str, path: str = "") -> list[TreeEntry]:
        raise GitError(self._reason)

    def read_blob(self, sha: str, entry: TreeEntry) -> bytes:
        raise GitError(self._reason)


def check_branch(branch: str) -> None:
    """GitError unless `branch` is a valid branch name (checked before it goes into a URL)."""
    # Here, not at the top: the API loads this module for its other checks (SHAs, paths) on
    # every cold start, and only this one needs dulwich (the adapters reading a branch call it).
    from dulwich.refs import Ref, check_ref_format

    if not branch or not check_ref_format(Ref(f"refs/heads/{branch}".encode())):
        raise GitError(f"{branch!r} is not a valid branch name")


def check_sha(sha: str) -> None:
    """GitError unless `sha` is a full commit SHA: providers would also resolve branch names and
    short SHAs, which would make "at this commit" ambiguous."""
    if not is_full_sha(sha):
        raise GitError(f"{sha!r} is not a full commit SHA")


def clean_path(path: str) -> str:
    """A repository path as the APIs want it: no leading or trailing slash."""
    return path.strip().strip("/")


def git_mode(value: object) -> int:
    """A tree entry's mode from a listing (git's octal text, as the REST APIs send it, or an
    int); GitError for anything else."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            return int(value, 8)
        except ValueError:
            pass
    raise GitError(f"unexpected mode in a tree listing: {value!r}")


class MissingDirectory(GitError):
    """A bundle directory that is not in the repository at the commit."""


def missing_directory(path: str, sha: str) -> GitError:
    """The error for a bundle directory that is not in the repository at the commit."""
    return MissingDirectory(
        f"{path or 'the repository root'} is not a directory at commit {sha[:12]}"
    )


def decode_text(data: bytes, path: str) -> str:
    """A file's bytes as UTF-8 text, GitError for anything else (compose files are text)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise GitError(f"{path} is not UTF-8 text") from None
