"""Generic git for repositories on this machine (a path or file:// URL), through dulwich."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from dulwich.errors import NotGitRepository
from dulwich.object_store import tree_lookup_path
from dulwich.objects import Blob, Commit, ObjectID
from dulwich.refs import Ref, check_ref_format
from dulwich.repo import Repo

from ferry.domain.bundle import TreeEntry
from ferry.domain.models import CommitInfo
from ferry.errors import GitError
from ferry.git.source import is_full_sha
from ferry.git.trees import blob_data, tree_entries


def _commit_info(commit: Commit) -> CommitInfo:
    message = commit.message.decode("utf-8", errors="replace").strip()
    return CommitInfo(sha=commit.id.decode(), message=message)


class LocalGitSource:
    """Reads a repository directly from disk; nothing is cloned."""

    def __init__(self, path: str) -> None:
        self._path = path

    @contextmanager
    def _repo(self) -> Iterator[Repo]:
        try:
            repo = Repo(self._path)
        except (NotGitRepository, FileNotFoundError, NotADirectoryError) as exc:
            raise GitError(f"{self._path} is not a git repository") from exc
        try:
            yield repo
        finally:
            repo.close()

    def latest_commit(self, branch: str) -> CommitInfo:
        ref = Ref(f"refs/heads/{branch}".encode())
        if not check_ref_format(ref):
            raise GitError(f"{branch!r} is not a valid branch name")
        with self._repo() as repo:
            try:
                sha = repo.refs[ref]
            except KeyError:
                raise GitError(f"branch {branch!r} does not exist") from None
            commit = repo[sha]
            assert isinstance(commit, Commit)
            return _commit_info(commit)

    def commit(self, sha: str) -> CommitInfo:
        if not is_full_sha(sha):
            raise GitError(f"{sha!r} is not a full commit SHA")
        with self._repo() as repo:
            try:
                obj = repo[sha.encode()]
            except KeyError:
                raise GitError(f"commit {sha} is not in the repository") from None
            if not isinstance(obj, Commit):
                raise GitError(f"{sha} is not a commit")
            return _commit_info(obj)

    def branches_containing(self, sha: str, max_depth: int = 10_000) -> list[str]:
        """Branches whose history contains the commit (each walked at most `max_depth` back)."""
        if not is_full_sha(sha):
            raise GitError(f"{sha!r} is not a full commit SHA")
        found = []
        with self._repo() as repo:
            for ref in repo.refs.keys(base=Ref(b"refs/heads/")):
                head = repo.refs[Ref(b"refs/heads/" + ref)]
                for depth, entry in enumerate(repo.get_walker(include=[head])):
                    if entry.commit.id.decode() == sha:
                        found.append(ref.decode())
                        break
                    if depth >= max_depth:
                        break
        return sorted(found)

    def contains(self, descendant: str, ancestor: str) -> bool:
        """Walk `descendant`'s history looking for `ancestor`."""
        self.commit(ancestor)
        head = self.commit(descendant).sha
        if head == ancestor:
            return True
        with self._repo() as repo:
            return any(
                entry.commit.id.decode() == ancestor
                for entry in repo.get_walker(include=[ObjectID(head.encode())])
            )

    def read_tree(self, sha: str, path: str = "") -> list[TreeEntry]:
        """The files below `path` at the commit, read from disk."""
        with self._repo() as repo:
            return tree_entries(repo, _commit(repo, sha), path)

    def read_blob(self, sha: str, entry: TreeEntry) -> bytes:
        """A listed file's content, read from disk."""
        with self._repo() as repo:
            return blob_data(repo, sha, entry)

    def read_file(self, sha: str, path: str) -> str:
        with self._repo() as repo:
            commit = _commit(repo, sha)
            try:
                _mode, blob_sha = tree_lookup_path(repo.__getitem__, commit.tree, path.encode())
            except KeyError:
                raise GitError(f"{path} does not exist at commit {sha[:12]}") from None
            blob = repo[blob_sha]
            if not isinstance(blob, Blob):
                raise GitError(f"{path} is not a file at commit {sha[:12]}")
            try:
                return blob.data.decode("utf-8")
            except UnicodeDecodeError:
                raise GitError(f"{path} is not UTF-8 text") from None


def _commit(repo: Repo, sha: str) -> Commit:
    if not is_full_sha(sha):
        raise GitError(f"{sha!r} is not a full commit SHA")
    try:
        commit = repo[sha.encode()]
    except KeyError:
        raise GitError(f"commit {sha} is not in the repository") from None
    if not isinstance(commit, Commit):
        raise GitError(f"{sha} is not a commit")
    return commit
