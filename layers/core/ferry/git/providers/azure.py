"""Azure DevOps Services and Server (Repos) through the Git REST API, version 7.1."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

from ferry.domain.bundle import TreeEntry
from ferry.domain.models import CommitInfo, CredentialKind, RepositoryCredentials
from ferry.errors import GitError
from ferry.git.http import basic_authorization
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
    git_mode,
    missing_directory,
)
from ferry.outbound.http import AllowSpec

NAME = "Azure DevOps"
API_VERSION = "7.1"
_PAGE = 100
_HEADS = "refs/heads/"


def azure_headers(credentials: RepositoryCredentials | None) -> dict[str, str]:
    """API headers: a personal access token as Basic with an empty user name (Azure DevOps'
    documented form), username and password as Basic."""
    if credentials is None:
        return {}
    username = (credentials.username or "") if credentials.kind is CredentialKind.BASIC else ""
    return {"Authorization": basic_authorization(username, credentials.secret)}


class AzureDevOpsSource(ProviderRepository):
    """One Azure Repos repository under `{organization URL}/{project}/_apis/git/repositories/
    {repo}`; the organization URL is `https://dev.azure.com/{org}` in the cloud and the collection
    URL on Azure DevOps Server.

    `branches_containing` is one call: `GET /stats/branches` against the commit as base version
    reports, per branch, how many of the base's commits the branch lacks (`behindCount`); zero
    means the branch contains the commit.
    """

    def __init__(
        self,
        organization_url: str,
        project: str,
        repo: str,
        credentials: RepositoryCredentials | None = None,
        *,
        allow: AllowSpec = None,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
    ) -> None:
        self.full_name = f"{project}/{repo}"
        super().__init__(
            provider=NAME,
            base_url=(
                f"{organization_url.rstrip('/')}/{quote(project, safe='')}"
                f"/_apis/git/repositories/{quote(repo, safe='')}"
            ),
            headers={"Accept": "application/json", **azure_headers(credentials)},
            credentials=credentials,
            allow=allow,
            timeout=timeout,
        )

    def latest_commit(self, branch: str) -> CommitInfo:
        """The head of a branch (`GET /refs?filter=heads/{branch}`, a prefix filter, so the exact
        name is picked), then its commit for the full message (the refs answer has none)."""
        check_branch(branch)
        wanted = f"{_HEADS}{branch}"
        for ref in self._refs(f"heads/{branch}"):
            if ref.get("name") == wanted and isinstance(ref.get("objectId"), str):
                return self.commit(ref["objectId"])
        raise ProviderNotFound(f"branch {branch!r} does not exist in {self.full_name}")

    def commit(self, sha: str) -> CommitInfo:
        """A commit by SHA (`GET /commits/{sha}`; `comment` is the untruncated message)."""
        check_sha(sha)
        body = self._api.get_json(
            f"commits/{sha}",
            missing=f"commit {sha} is not in {self.full_name}",
            params={"api-version": API_VERSION},
        )
        if not isinstance(body, dict):
            raise GitError(f"unexpected answer from {NAME}: not a commit")
        return commit_info(body.get("commitId"), body.get("comment"), NAME)

    def contains(self, descendant: str, ancestor: str) -> bool:
        """The merge base of the two is the ancestor (`GET /commits/{sha}/mergebases`)."""
        check_sha(descendant)
        check_sha(ancestor)
        if descendant == ancestor:
            self.commit(descendant)
            return True
        body = self._api.get_json(
            f"commits/{descendant}/mergebases",
            missing=f"commits {descendant[:12]} and {ancestor[:12]} in {self.full_name}",
            params={"otherCommitId": ancestor, "api-version": API_VERSION},
        )
        return any(base.get("commitId") == ancestor for base in _values(body))

    def read_file(self, sha: str, path: str) -> str:
        """A file at a commit (`GET /items?path=...&versionDescriptor...&includeContent=true`)."""
        check_sha(sha)
        path = clean_path(path)
        body = self._api.get_json(
            "items",
            missing=f"{path} does not exist at commit {sha[:12]} in {self.full_name}",
            params={
                "path": f"/{path}",
                **_at_commit(sha),
                "includeContent": "true",
                "$format": "json",
                "api-version": API_VERSION,
            },
        )
        if not isinstance(body, dict) or body.get("gitObjectType") != "blob":
            raise GitError(f"{path} is not a file at commit {sha[:12]}")
        metadata = body.get("contentMetadata")
        if isinstance(metadata, dict) and metadata.get("isBinary") is True:
            raise GitError(f"{path} is not UTF-8 text")
        content = body.get("content")
        if not isinstance(content, str):
            raise GitError(f"unexpected answer from {NAME}: a file without content")
        return content

    def list_branches(self) -> list[str]:
        """Every branch name (`GET /refs?filter=heads/`, paged by continuation token)."""
        return sorted(
            ref["name"].removeprefix(_HEADS)
            for ref in self._refs("heads/")
            if isinstance(ref.get("name"), str) and ref["name"].startswith(_HEADS)
        )

    def _items(self, sha: str, prefix: str, params: dict[str, str]) -> Any | None:
        """`GET /items` at a commit; None when the commit exists but `prefix` does not (a 404
        under a path checks the commit first)."""
        try:
            return self._api.get_json(
                "items",
                missing=f"commit {sha} is not in {self.full_name}",
                params={**params, **_at_commit(sha), "$format": "json", "api-version": API_VERSION},
            )
        except ProviderNotFound:
            if not prefix:
                raise
            self.commit(sha)
            return None

    def list_tree(self, sha: str, path: str = "") -> list[str]:
        """File paths at a commit (`GET /items?recursionLevel=Full`). A 404 under a path checks
        the commit before answering "no files"."""
        check_sha(sha)
        prefix = clean_path(path)
        body = self._items(sha, prefix, {"scopePath": f"/{prefix}", "recursionLevel": "Full"})
        if body is None:
            return []
        return sorted(
            item["path"].lstrip("/")
            for item in _values(body)
            if item.get("gitObjectType") == "blob" and isinstance(item.get("path"), str)
        )

    def read_tree(self, sha: str, path: str = "") -> list[TreeEntry]:
        """Files, symlinks and submodules below `path`: the directory's tree id
        (`GET /items?path=...`), then that tree, recursively (`GET /trees/{id}?recursive=true`):
        two calls, whatever the size of the repository. A 404 checks the commit before it says
        the directory is missing."""
        check_sha(sha)
        prefix = clean_path(path)
        item = self._items(sha, prefix, {"path": f"/{prefix}"})
        if item is None:
            raise missing_directory(prefix, sha)
        if not isinstance(item, dict) or item.get("gitObjectType") != "tree":
            raise missing_directory(prefix, sha)
        tree = self._api.get_json(
            f"trees/{quote(str(item.get('objectId')), safe='')}",
            missing=f"the tree of {prefix or 'the repository root'} at {sha[:12]}",
            params={"recursive": "true", "$format": "json", "api-version": API_VERSION},
        )
        entries = tree.get("treeEntries") if isinstance(tree, dict) else None
        if not isinstance(entries, list):
            raise GitError(f"unexpected answer from {NAME}: a tree without entries")
        base = f"{prefix}/" if prefix else ""
        return sorted(
            (
                TreeEntry(
                    path=base + entry["relativePath"],
                    mode=git_mode(entry.get("mode")),
                    blob=str(entry.get("objectId")),
                    size=entry.get("size") if isinstance(entry.get("size"), int) else None,
                )
                for entry in entries
                if isinstance(entry, dict)
                and entry.get("gitObjectType") in ("blob", "commit")
                and isinstance(entry.get("relativePath"), str)
            ),
            key=lambda entry: entry.path,
        )

    def read_blob(self, sha: str, entry: TreeEntry) -> bytes:
        """A file's content by its blob id (`GET /blobs/{id}?$format=octetstream`)."""
        check_sha(sha)
        response = self._api.get(
            f"blobs/{quote(entry.blob, safe='')}",
            missing=f"{entry.path} is missing at commit {sha[:12]} in {self.full_name}",
            params={"$format": "octetstream", "api-version": API_VERSION},
            headers={"Accept": "application/octet-stream"},
            max_bytes=BLOB_MAX_BYTES,
        )
        return response.content

    def branches_containing(self, sha: str) -> list[str]:
        """Branches whose history includes the commit (see the class docstring)."""
        self.commit(sha)
        body = self._api.get_json(
            "stats/branches",
            missing=f"commit {sha} is not in {self.full_name}",
            params={
                "baseVersionDescriptor.version": sha,
                "baseVersionDescriptor.versionType": "commit",
                "api-version": API_VERSION,
            },
        )
        return sorted(
            str(stats["name"]).removeprefix(_HEADS)
            for stats in _values(body)
            if isinstance(stats.get("name"), str) and stats.get("behindCount") == 0
        )

    def _refs(self, prefix: str) -> Iterator[dict[str, Any]]:
        params: dict[str, str | int] = {
            "filter": prefix,
            "$top": _PAGE,
            "api-version": API_VERSION,
        }
        while True:
            response = self._api.get(
                "refs", missing=f"repository {self.full_name} does not exist", params=params
            )
            yield from _values(self._api.parse_json(response))
            token = response.headers.get("x-ms-continuationtoken")
            if not token:
                return
            params = {**params, "continuationToken": token}


def _at_commit(sha: str) -> dict[str, str]:
    return {"versionDescriptor.version": sha, "versionDescriptor.versionType": "commit"}


def _values(body: Any) -> list[dict[str, Any]]:
    values = body.get("value") if isinstance(body, dict) else None
    if not isinstance(values, list):
        raise GitError(f"unexpected answer from {NAME}: expected a value list")
    return [value for value in values if isinstance(value, dict)]
