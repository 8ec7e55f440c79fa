"""Gitea and Forgejo (same API) through the REST API v1."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from ferry.domain.bundle import TreeEntry
from ferry.domain.models import CommitInfo, CredentialKind, RepositoryCredentials
from ferry.errors import GitError
from ferry.git.http import basic_authorization
from ferry.git.providers.base import (
    BLOB_MAX_BYTES,
    DEFAULT_TIMEOUT_SECONDS,
    HeadComparingRepository,
    ProviderNotFound,
    commit_info,
    decode_base64,
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

NAME = "Gitea"
_PAGE_LIMIT = 50
_TREE_PAGE = 1000


def gitea_headers(credentials: RepositoryCredentials | None) -> dict[str, str]:
    """API headers: a token as `Authorization: token ...`, username and password as Basic."""
    if credentials is None:
        return {}
    if credentials.kind is CredentialKind.BASIC:
        return {
            "Authorization": basic_authorization(credentials.username or "", credentials.secret)
        }
    return {"Authorization": f"token {credentials.secret}"}


class GiteaSource(HeadComparingRepository):
    """One Gitea or Forgejo repository.

    `branches_containing` lists the branch heads, then asks
    `GET /compare/{branch head}...{sha}` for each other branch: no commits in the comparison means
    the commit is already in that branch (the compare endpoint needs Gitea 1.22 or Forgejo 7).
    One request per branch, like GitHub; Gitea has no single call for it.
    """

    def __init__(
        self,
        owner: str,
        repo: str,
        api_base: str,
        credentials: RepositoryCredentials | None = None,
        *,
        allow: AllowSpec = None,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        name: str = NAME,
    ) -> None:
        self.full_name = f"{owner}/{repo}"
        super().__init__(
            provider=name,
            base_url=f"{api_base.rstrip('/')}/repos/{quote(owner, safe='')}/{quote(repo, safe='')}",
            headers=gitea_headers(credentials),
            credentials=credentials,
            allow=allow,
            timeout=timeout,
        )

    def latest_commit(self, branch: str) -> CommitInfo:
        """The head commit of a branch (`GET /branches/{branch}`)."""
        check_branch(branch)
        body = self._api.get_json(
            f"branches/{quote(branch, safe='/')}",
            missing=f"branch {branch!r} does not exist in {self.full_name}",
        )
        commit = body.get("commit") if isinstance(body, dict) else None
        if not isinstance(commit, dict):
            raise GitError(f"unexpected answer from {self._api.provider}: a branch without commit")
        return commit_info(commit.get("id"), commit.get("message"), self._api.provider)

    def commit(self, sha: str) -> CommitInfo:
        """A commit by SHA (`GET /git/commits/{sha}`, without stats or files)."""
        check_sha(sha)
        body = self._api.get_json(
            f"git/commits/{sha}",
            missing=f"commit {sha} is not in {self.full_name}",
            params={"stat": "false", "verification": "false", "files": "false"},
            missing_statuses=(404, 422),
        )
        inner = body.get("commit") if isinstance(body, dict) else None
        message = inner.get("message") if isinstance(inner, dict) else None
        return commit_info(body.get("sha"), message, self._api.provider)

    def read_file(self, sha: str, path: str) -> str:
        """A file at a commit (`GET /raw/{path}?ref={sha}`)."""
        check_sha(sha)
        path = clean_path(path)
        response = self._api.get(
            f"raw/{quote(path, safe='/')}",
            missing=f"{path} does not exist at commit {sha[:12]} in {self.full_name}",
            params={"ref": sha},
        )
        return decode_text(response.content, path)

    def list_tree(self, sha: str, path: str = "") -> list[str]:
        """File paths at a commit (`GET /git/trees/{sha}?recursive=true`, paged by `page` until
        `total_count` entries have come)."""
        check_sha(sha)
        prefix = clean_path(path)
        return sorted(
            entry["path"]
            for entry in self._listing(sha)
            if entry.get("type") == "blob" and _under(entry["path"], prefix)
        )

    def read_tree(self, sha: str, path: str = "") -> list[TreeEntry]:
        """Files, symlinks and submodules below `path`, from the same recursive listing of the
        whole repository as `list_tree` (1000 entries a page)."""
        check_sha(sha)
        prefix = clean_path(path)
        listing = self._listing(sha)
        if prefix and not any(e["path"] == prefix and e.get("type") == "tree" for e in listing):
            raise missing_directory(prefix, sha)
        return sorted(
            (
                TreeEntry(
                    path=entry["path"],
                    mode=git_mode(entry.get("mode")),
                    blob=str(entry.get("sha")),
                    size=entry.get("size") if isinstance(entry.get("size"), int) else None,
                )
                for entry in listing
                if entry.get("type") in ("blob", "commit") and _under(entry["path"], prefix)
            ),
            key=lambda entry: entry.path,
        )

    def read_blob(self, sha: str, entry: TreeEntry) -> bytes:
        """A file's content by its blob id (`GET /git/blobs/{sha}`, base64 in JSON)."""
        check_sha(sha)
        body = self._api.get_json(
            f"git/blobs/{quote(entry.blob, safe='')}",
            missing=f"{entry.path} is missing at commit {sha[:12]} in {self.full_name}",
            max_bytes=BLOB_MAX_BYTES,
        )
        content = body.get("content") if isinstance(body, dict) else None
        if not isinstance(content, str) or body.get("encoding") != "base64":
            raise GitError(f"unexpected answer from {self._api.provider}: a blob without content")
        return decode_base64(content, entry.path)

    def _listing(self, sha: str) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = []
        seen = 0
        page = 1
        while True:
            body = self._api.get_json(
                f"git/trees/{sha}",
                missing=f"commit {sha} is not in {self.full_name}",
                params={"recursive": "true", "per_page": _TREE_PAGE, "page": page},
            )
            tree = body.get("tree") if isinstance(body, dict) else None
            if not isinstance(tree, list):
                raise GitError(
                    f"unexpected answer from {self._api.provider}: a tree without entries"
                )
            entries.extend(
                entry
                for entry in tree
                if isinstance(entry, dict) and isinstance(entry.get("path"), str)
            )
            seen += len(tree)
            total = body.get("total_count")
            if not tree or not body.get("truncated") or not isinstance(total, int) or seen >= total:
                return entries
            page += 1

    def _head_contains(self, head: str, sha: str) -> bool:
        try:
            body = self._api.get_json(
                f"compare/{head}...{sha}",
                missing=f"cannot compare {sha} with {head}",
            )
        except ProviderNotFound:
            # No merge base: unrelated histories.
            return False
        total = body.get("total_commits") if isinstance(body, dict) else None
        if not isinstance(total, int):
            raise GitError(
                f"unexpected answer from {self._api.provider}: a comparison without count"
            )
        return total == 0

    def _branch_heads(self) -> dict[str, str]:
        heads: dict[str, str] = {}
        for entry in self._api.paginate(
            "branches",
            missing=f"repository {self.full_name} does not exist",
            params={"limit": _PAGE_LIMIT},
        ):
            commit = entry.get("commit") if isinstance(entry, dict) else None
            head = commit.get("id") if isinstance(commit, dict) else None
            name = entry.get("name") if isinstance(entry, dict) else None
            if isinstance(name, str) and isinstance(head, str):
                heads[name] = head
        return heads


def _under(name: str, prefix: str) -> bool:
    return not prefix or name.startswith(f"{prefix}/")
