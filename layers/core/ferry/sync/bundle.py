"""Reading an application's bundle at a commit from its repository (what a bundle is:
ferry/domain/bundle.py).

Two steps, so a sync that finds nothing changed reads no file:
1. `list_bundle`: one tree listing of the bundle's directory (plus the target text of each
   symlink in it), which gives every file's blob id and so the digest;
2. `read_bundle`, only when the digest changed: the content of each file the stored bundle does
   not already hold (unchanged files are taken from it), each checked against its blob id.

What it costs on the REST providers (a sync that changes nothing stops after the listing; then
one call per new file, and one per symlink in the directory):

- GitHub: 1 call lists the whole repository (`/git/trees/{sha}?recursive=1`; when GitHub
  truncates a huge listing, 1 per directory on the way down instead); a file is
  `/git/blobs/{id}` (raw media type).
- GitLab: 1 call per 100 entries below the directory (`/repository/tree?path=...`); a file is
  `/repository/blobs/{id}/raw`.
- Gitea, Forgejo: 1 call per 1000 entries of the repository (`/git/trees/{sha}`); a file is
  `/git/blobs/{id}`.
- Azure DevOps: 2 calls (`/items?path=...` for the directory's tree id, then
  `/trees/{id}?recursive=true`); a file is `/blobs/{id}?$format=octetstream`.

Generic git reads the commit once into its cache and then everything from disk; a local
repository is read in place.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ferry.domain.bundle import (
    GIT_EXECUTABLE,
    GIT_SYMLINK,
    BundleEntry,
    BundleError,
    BundleFile,
    BundleLimits,
    TreeEntry,
    blob_id,
    check_size,
    compose_path_in,
    digest,
    plan,
    root_of,
)
from ferry.domain.models import Application
from ferry.errors import GitError
from ferry.git.source import GitSource, MissingDirectory
from ferry.settings import get_settings


@dataclass(frozen=True)
class ListedBundle:
    """A bundle as its tree listing describes it: its directory ("" for the repository root),
    its files (sorted) and its digest."""

    root: str
    entries: list[BundleEntry]
    digest: str


def limits() -> BundleLimits:
    """The configured limits (FERRY_BUNDLE_MAX_FILES, FERRY_BUNDLE_MAX_BYTES)."""
    settings = get_settings()
    return BundleLimits(max_files=settings.bundle_max_files, max_bytes=settings.bundle_max_bytes)


def list_bundle(
    source: GitSource, sha: str, application: Application, bounds: BundleLimits
) -> ListedBundle:
    """The application's bundle at the commit, from one listing of its directory. GitError when
    the directory or the compose file in it is missing; BundleError past `bounds`, or for a
    symlink that leaves the directory, dangles or loops."""
    root = root_of(application.path, application.root)
    try:
        tree = source.read_tree(sha, root)
    except MissingDirectory:
        if application.root is not None:
            raise
        # The directory is the compose file's own: what is missing is the compose file.
        raise GitError(f"{application.path} does not exist at commit {sha[:12]}") from None
    links = {e.path: _link_target(source, sha, e) for e in tree if e.mode == GIT_SYMLINK}
    entries = plan(tree, root, links, bounds)
    compose = compose_path_in(application.path, root)
    if not any(entry.path == compose for entry in entries):
        raise GitError(f"{application.path} does not exist at commit {sha[:12]}")
    return ListedBundle(root=root, entries=entries, digest=digest(entries))


def read_bundle(
    source: GitSource,
    sha: str,
    listed: ListedBundle,
    bounds: BundleLimits,
    known: Mapping[str, bytes] | None = None,
) -> list[BundleFile]:
    """The bundle's files with their content: taken from `known` (blob id → content, the stored
    bundle's files) where it has them, else read from the repository. GitError when the
    repository answers with content that is not the listed blob; BundleError once the files
    hold more than `bounds` allow (GitLab and generic git list no sizes)."""
    files: list[BundleFile] = []
    total = 0
    # Same content under two names (a resolved symlink, a copied file) is read once.
    fetched = dict(known or {})
    for entry in listed.entries:
        data = fetched.get(entry.blob)
        if data is None:
            data = source.read_blob(
                sha, TreeEntry(path=entry.source, mode=entry.mode, blob=entry.blob)
            )
            if blob_id(data) != entry.blob:
                raise GitError(
                    f"{entry.source} at commit {sha[:12]}: the repository sent content that is "
                    "not the file it listed"
                )
            fetched[entry.blob] = data
        total += len(data)
        check_size(total, bounds, listed.root)
        files.append(BundleFile(entry.path, data, executable=entry.mode == GIT_EXECUTABLE))
    return files


def _link_target(source: GitSource, sha: str, entry: TreeEntry) -> str:
    try:
        return source.read_blob(sha, entry).decode("utf-8")
    except UnicodeDecodeError:
        raise BundleError(f"symlink {entry.path} has a target that is not UTF-8 text") from None
