"""Trees and blobs of a repository on disk (dulwich): what `local` and `remote` share to answer
`read_tree` and `read_blob` (see `ferry.git.source.GitSource`)."""

from __future__ import annotations

import stat

from dulwich.object_store import tree_lookup_path
from dulwich.objects import Blob, Commit, ObjectID
from dulwich.repo import Repo

from ferry.domain.bundle import TreeEntry
from ferry.errors import GitError
from ferry.git.source import clean_path, missing_directory


def tree_entries(repo: Repo, commit: Commit, path: str) -> list[TreeEntry]:
    """Every file, symlink and submodule below `path` in the commit's tree, sorted."""
    directory = clean_path(path)
    tree = commit.tree
    if directory:
        try:
            mode, tree = tree_lookup_path(repo.__getitem__, commit.tree, directory.encode())
        except KeyError:
            raise missing_directory(directory, commit.id.decode()) from None
        if not stat.S_ISDIR(mode):
            raise missing_directory(directory, commit.id.decode())
    prefix = f"{directory}/" if directory else ""
    entries = [
        TreeEntry(
            path=prefix + entry.path.decode("utf-8", errors="replace"),
            mode=entry.mode,
            blob=entry.sha.decode(),
        )
        for entry in repo.object_store.iter_tree_contents(tree)
        if entry.path is not None and entry.mode is not None and entry.sha is not None
    ]
    return sorted(entries, key=lambda entry: entry.path)


def blob_data(repo: Repo, sha: str, entry: TreeEntry) -> bytes:
    """The content of a blob a listing named."""
    try:
        blob = repo[ObjectID(entry.blob.encode())]
    except KeyError:
        raise GitError(f"{entry.path} is missing at commit {sha[:12]}") from None
    if not isinstance(blob, Blob):
        raise GitError(f"{entry.path} is not a file at commit {sha[:12]}")
    return bytes(blob.data)
