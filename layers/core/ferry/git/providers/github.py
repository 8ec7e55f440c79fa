"""GitHub and GitHub Enterprise Server through the REST API (v3, version 2022-11-28)."""

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
    commit_info,
    decode_base64_text,
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

PUBLIC_API = "https://api.github.com"
NAME = "GitHub"
_PER_PAGE = 100
_JSON = "application/vnd.github+json"
_RAW = "application/vnd.github.raw+json"
# Compare statuses that mean "the compared commit is already in the base branch".
_CONTAINED = frozenset({"behind", "identical"})


def github_headers(credentials: RepositoryCredentials | None) -> dict[str, str]:
    """API headers: the JSON media type, the pinned API version, and the credentials (a token
    as `Authorization: Bearer`, username and password as Basic)."""
    headers = {"Accept": _JSON, "X-GitHub-Api-Version": "2022-11-28"}
    if credentials is not None:
        if credentials.kind is CredentialKind.BASIC:
            headers["Authorization"] = basic_authorization(
                credentials.username or "", credentials.secret
            )
        else:
            headers["Authorization"] = f"Bearer {credentials.secret}"
    return headers


class GitHubSource(HeadComparingRepository):
    """One GitHub repository, read through the REST API.

    `branches_containing` lists the branches with their heads, then asks
    `GET /compare/{branch head}...{sha}` for each branch whose head is not the commit itself:
    "behind" or "identical" means the commit is in that branch's history. GitHub has no single
    "branches containing a commit" call (`/commits/{sha}/branches-where-head` only matches heads),
    so this costs one request per branch; comparing against the head SHA from the same listing
    keeps the answer consistent and avoids quoting branch names inside the `...` syntax.
    """

    def __init__(
        self,
        owner: str,
        repo: str,
        credentials: RepositoryCredentials | None = None,
        *,
        api_base: str = PUBLIC_API,
        allow: AllowSpec = None,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
    ) -> None:
        self.full_name = f"{owner}/{repo}"
        super().__init__(
            provider=NAME,
            base_url=f"{api_base.rstrip('/')}/repos/{quote(owner, safe='')}/{quote(repo, safe='')}",
            headers=github_headers(credentials),
            credentials=credentials,
            allow=allow,
            timeout=timeout,
        )

    def latest_commit(self, branch: str) -> CommitInfo:
        """The head commit of a branch (`GET /commits/heads/{branch}`)."""
        check_branch(branch)
        body = self._api.get_json(
            f"commits/heads/{quote(branch, safe='/')}",
            missing=f"branch {branch!r} does not exist in {self.full_name}",
            missing_statuses=(404, 422),
        )
        return _commit(body)

    def commit(self, sha: str) -> CommitInfo:
        """A commit by SHA (`GET /commits/{sha}`)."""
        check_sha(sha)
        body = self._api.get_json(
            f"commits/{sha}",
            missing=f"commit {sha} is not in {self.full_name}",
            missing_statuses=(404, 422),
        )
        return _commit(body)

    def read_file(self, sha: str, path: str) -> str:
        """A file at a commit (`GET /contents/{path}?ref={sha}`, base64 in JSON; files over
        1 MB come without content, and are fetched again with the raw media type)."""
        check_sha(sha)
        path = clean_path(path)
        missing = f"{path} does not exist at commit {sha[:12]} in {self.full_name}"
        url = f"contents/{quote(path, safe='/')}"
        body = self._api.get_json(url, missing=missing, params={"ref": sha})
        if not isinstance(body, dict) or body.get("type") != "file":
            raise GitError(f"{path} is not a file at commit {sha[:12]}")
        content = body.get("content")
        if body.get("encoding") == "base64" and isinstance(content, str):
            return decode_base64_text(content, path)
        raw = self._api.get(url, missing=missing, params={"ref": sha}, headers={"Accept": _RAW})
        return decode_text(raw.content, path)

    def list_tree(self, sha: str, path: str = "") -> list[str]:
        """File paths at a commit (`GET /git/trees/{sha}?recursive=1`). When GitHub truncates a
        large recursive listing, the tree is walked one directory at a time instead."""
        check_sha(sha)
        prefix = clean_path(path)
        return sorted(
            str(entry["path"])
            for entry in self._listing(sha, prefix)
            if entry.get("type") == "blob" and _under(str(entry["path"]), prefix)
        )

    def read_tree(self, sha: str, path: str = "") -> list[TreeEntry]:
        """Files, symlinks and submodules below `path` (one `GET /git/trees/{sha}?recursive=1`
        for the whole repository, walked directory by directory only when GitHub truncates it)."""
        check_sha(sha)
        prefix = clean_path(path)
        listing = self._listing(sha, prefix)
        if prefix and not any(e.get("path") == prefix and e.get("type") == "tree" for e in listing):
            raise missing_directory(prefix, sha)
        return sorted(
            (
                TreeEntry(
                    path=str(entry["path"]),
                    mode=git_mode(entry.get("mode")),
                    blob=str(entry.get("sha")),
                    size=entry.get("size") if isinstance(entry.get("size"), int) else None,
                )
                for entry in listing
                if entry.get("type") in ("blob", "commit") and _under(str(entry["path"]), prefix)
            ),
            key=lambda entry: entry.path,
        )

    def read_blob(self, sha: str, entry: TreeEntry) -> bytes:
        """A file's content by its blob id (`GET /git/blobs/{blob}`, raw media type)."""
        check_sha(sha)
        response = self._api.get(
            f"git/blobs/{quote(entry.blob, safe='')}",
            missing=f"{entry.path} is missing at commit {sha[:12]} in {self.full_name}",
            headers={"Accept": _RAW},
            max_bytes=BLOB_MAX_BYTES,
        )
        return response.content

    def _listing(self, sha: str, prefix: str) -> list[dict[str, Any]]:
        """Every entry of the commit's tree with its full path (enough of it to hold
        `prefix`'s files when the recursive listing is truncated)."""
        missing = f"commit {sha} is not in {self.full_name}"
        body = self._api.get_json(f"git/trees/{sha}", missing=missing, params={"recursive": 1})
        entries = _tree_entries(body)
        if body.get("truncated") is True:
            return self._walk(sha, "", prefix, missing)
        return entries

    def _head_contains(self, head: str, sha: str) -> bool:
        response = self._api.get(
            f"compare/{head}...{sha}",
            missing=f"commit {sha} is not in {self.full_name}",
            params={"per_page": 1},
            accept=(404,),
        )
        # Unrelated histories answer 404 "No common ancestor": not contained.
        if response.status_code == 404:
            return False
        body = self._api.parse_json(response)
        return isinstance(body, dict) and body.get("status") in _CONTAINED

    def _branch_heads(self) -> dict[str, str]:
        heads: dict[str, str] = {}
        for entry in self._api.paginate(
            "branches",
            missing=f"repository {self.full_name} does not exist",
            params={"per_page": _PER_PAGE},
        ):
            name = entry.get("name") if isinstance(entry, dict) else None
            commit = entry.get("commit") if isinstance(entry, dict) else None
            head = commit.get("sha") if isinstance(commit, dict) else None
            if isinstance(name, str) and isinstance(head, str):
                heads[name] = head
        return heads

    def _walk(self, tree: str, base: str, prefix: str, missing: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        body = self._api.get_json(f"git/trees/{tree}", missing=missing)
        for entry in _tree_entries(body):
            name = f"{base}{entry['path']}"
            found.append({**entry, "path": name})
            if entry.get("type") == "tree" and (
                _under(name, prefix) or name == prefix or prefix.startswith(f"{name}/")
            ):
                found.extend(self._walk(str(entry["sha"]), f"{name}/", prefix, missing))
        return found


def _commit(body: Any) -> CommitInfo:
    commit = body.get("commit") if isinstance(body, dict) else None
    message = commit.get("message") if isinstance(commit, dict) else None
    return commit_info(body.get("sha") if isinstance(body, dict) else None, message, NAME)


def _tree_entries(body: Any) -> list[dict[str, Any]]:
    tree = body.get("tree") if isinstance(body, dict) else None
    if not isinstance(tree, list):
        raise GitError(f"unexpected answer from {NAME}: a tree without entries")
    return [
        entry for entry in tree if isinstance(entry, dict) and isinstance(entry.get("path"), str)
    ]


def _under(name: str, prefix: str) -> bool:
    return not prefix or name.startswith(f"{prefix}/")
