"""GitLab (gitlab.com and self-managed) through the REST API v4."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from ferry.domain.bundle import TreeEntry
from ferry.domain.models import CommitInfo, RepositoryCredentials
from ferry.errors import GitError
from ferry.git.providers.base import (
    BLOB_MAX_BYTES,
    DEFAULT_TIMEOUT_SECONDS,
    ProviderNotFound,
    ProviderRepository,
    commit_info,
)
from ferry.git.source import (
    check_branch,
    check_sha,
    clean_path,
    decode_text,
    git_mode,
    missing_directory,
)
from ferry.outbound.http import AllowSpec

PUBLIC_API = "https://gitlab.com/api/v4"
NAME = "GitLab"
_PER_PAGE = 100


def gitlab_headers(credentials: RepositoryCredentials | None) -> dict[str, str]:
    """API headers: the token as `PRIVATE-TOKEN` (personal, project and group access tokens).
    GitLab's API has no Basic authentication, so for username-and-password credentials the
    secret is taken to be a token as well."""
    return {} if credentials is None else {"PRIVATE-TOKEN": credentials.secret}


class GitLabSource(ProviderRepository):
    """One GitLab project, addressed by its URL-encoded full path (`group/sub/project`).

    `branches_containing` is GitLab's own answer: `GET /repository/commits/{sha}/refs?type=branch`.
    """

    def __init__(
        self,
        project_path: str,
        credentials: RepositoryCredentials | None = None,
        *,
        api_base: str = PUBLIC_API,
        allow: AllowSpec = None,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
    ) -> None:
        self.project_path = project_path
        super().__init__(
            provider=NAME,
            base_url=f"{api_base.rstrip('/')}/projects/{quote(project_path, safe='')}",
            headers=gitlab_headers(credentials),
            credentials=credentials,
            allow=allow,
            timeout=timeout,
        )

    def latest_commit(self, branch: str) -> CommitInfo:
        """The head commit of a branch (`GET /repository/branches/{branch}`)."""
        check_branch(branch)
        body = self._api.get_json(
            f"repository/branches/{quote(branch, safe='')}",
            missing=f"branch {branch!r} does not exist in {self.project_path}",
        )
        commit = body.get("commit") if isinstance(body, dict) else None
        return _commit(commit)

    def commit(self, sha: str) -> CommitInfo:
        """A commit by SHA (`GET /repository/commits/{sha}`)."""
        check_sha(sha)
        body = self._api.get_json(
            f"repository/commits/{sha}", missing=f"commit {sha} is not in {self.project_path}"
        )
        return _commit(body)

    def contains(self, descendant: str, ancestor: str) -> bool:
        """The merge base of the two is the ancestor (`GET /repository/merge_base`)."""
        check_sha(descendant)
        check_sha(ancestor)
        if descendant == ancestor:
            self.commit(descendant)
            return True
        # `refs[]` repeats, which a parameter mapping cannot say: the query goes in the path.
        body = self._api.get_json(
            f"repository/merge_base?refs%5B%5D={descendant}&refs%5B%5D={ancestor}",
            missing=f"commits {descendant[:12]} and {ancestor[:12]} in {self.project_path}",
        )
        return _commit(body).sha == ancestor

    def read_file(self, sha: str, path: str) -> str:
        """A file at a commit (`GET /repository/files/{path}/raw?ref={sha}`)."""
        check_sha(sha)
        path = clean_path(path)
        response = self._api.get(
            f"repository/files/{quote(path, safe='')}/raw",
            missing=f"{path} does not exist at commit {sha[:12]} in {self.project_path}",
            params={"ref": sha},
        )
        return decode_text(response.content, path)

    def list_branches(self) -> list[str]:
        """Every branch name (`GET /repository/branches`, paginated by Link headers)."""
        names = []
        for entry in self._api.paginate(
            "repository/branches",
            missing=f"project {self.project_path} does not exist",
            params={"per_page": _PER_PAGE},
        ):
            if isinstance(entry, dict) and isinstance(entry.get("name"), str):
                names.append(entry["name"])
        return sorted(names)

    def _tree_listing(self, sha: str, prefix: str) -> list[Any] | None:
        """`GET /repository/tree?recursive=true` below `prefix`, every page; None when the
        commit exists but the directory does not (GitLab answers 404 for both, so a 404 under a
        path checks the commit first)."""
        params: dict[str, str | int] = {"ref": sha, "recursive": "true", "per_page": _PER_PAGE}
        if prefix:
            params["path"] = prefix
        try:
            return list(
                self._api.paginate(
                    "repository/tree",
                    missing=f"commit {sha} is not in {self.project_path}",
                    params=params,
                )
            )
        except ProviderNotFound:
            if not prefix:
                raise
            self.commit(sha)
            return None

    def list_tree(self, sha: str, path: str = "") -> list[str]:
        """File paths at a commit (`GET /repository/tree?recursive=true`, paginated). GitLab
        answers 404 both for a missing commit and a missing directory, so a 404 under a path
        checks the commit before answering "no files"."""
        check_sha(sha)
        entries = self._tree_listing(sha, clean_path(path))
        if entries is None:
            return []
        return sorted(
            entry["path"]
            for entry in entries
            if isinstance(entry, dict)
            and entry.get("type") == "blob"
            and isinstance(entry.get("path"), str)
        )

    def read_tree(self, sha: str, path: str = "") -> list[TreeEntry]:
        """Files, symlinks and submodules below `path` (`GET /repository/tree?path=...
        &recursive=true`, 100 entries a page; GitLab lists no sizes). A 404 checks the commit
        before it says the directory is missing."""
        check_sha(sha)
        prefix = clean_path(path)
        listing = self._tree_listing(sha, prefix)
        if listing is None:
            raise missing_directory(prefix, sha)
        entries = [
            TreeEntry(path=entry["path"], mode=git_mode(entry.get("mode")), blob=str(entry["id"]))
            for entry in listing
            if isinstance(entry, dict)
            and entry.get("type") in ("blob", "commit")
            and isinstance(entry.get("path"), str)
            and isinstance(entry.get("id"), str)
        ]
        if prefix and not listing:
            raise missing_directory(prefix, sha)
        return sorted(entries, key=lambda entry: entry.path)

    def read_blob(self, sha: str, entry: TreeEntry) -> bytes:
        """A file's content by its blob id (`GET /repository/blobs/{id}/raw`)."""
        check_sha(sha)
        response = self._api.get(
            f"repository/blobs/{quote(entry.blob, safe='')}/raw",
            missing=f"{entry.path} is missing at commit {sha[:12]} in {self.project_path}",
            max_bytes=BLOB_MAX_BYTES,
        )
        return response.content

    def branches_containing(self, sha: str) -> list[str]:
        """Branches whose history includes the commit (`GET /repository/commits/{sha}/refs`)."""
        check_sha(sha)
        names = []
        for entry in self._api.paginate(
            f"repository/commits/{sha}/refs",
            missing=f"commit {sha} is not in {self.project_path}",
            params={"type": "branch", "per_page": _PER_PAGE},
        ):
            if isinstance(entry, dict) and entry.get("type") == "branch":
                name = entry.get("name")
                if isinstance(name, str):
                    names.append(name)
        return sorted(names)


def _commit(body: Any) -> CommitInfo:
    if not isinstance(body, dict):
        raise GitError(f"unexpected answer from {NAME}: not a commit")
    return commit_info(body.get("id"), body.get("message"), NAME)
