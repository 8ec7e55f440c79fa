"""The deployment bundle: an application's directory at a commit, as the files that ship to its
host. Pure: no git, no storage, no disk.

An application's *root* is a directory of its repository: by default the compose file's own, or
a parent of it (`Application.root`, for monorepos whose applications share files). Everything
below the root at the commit is the bundle: its files with their modes (executable or not).
Symlinks are resolved inside the bundle (a link to a file ships that file's content under the
link's name, a link to a directory ships that directory's files under it) or refused (a link that
leaves the root, dangles or loops). Submodules are left out: their files live in another
repository.

Content address (`digest`): SHA-256 over every file's mode, path and git blob id (SHA-1 of
`blob <size>\\0<content>`), in path order. Every git host lists blob ids in its tree answers, so a
sync knows the digest from one tree listing before it reads a single file, and the agent
recomputes it from the files it unpacked. It is not git's tree id on purpose: the bundle is the
tree with its links resolved and its submodules left out, and the same digest must come out of
every git host, of a local repository and of an unpacked archive.

On the wire a bundle is a gzipped tar of regular files, built byte for byte the same from the
same files (sorted, no times, no owners), so the same bundle is the same archive.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from ferry.errors import PermanentError

GIT_FILE = 0o100644
GIT_EXECUTABLE = 0o100755
GIT_SYMLINK = 0o120000
GIT_SUBMODULE = 0o160000
# The most links one path may pass through (Linux's own limit, MAXSYMLINKS).
_MAX_HOPS = 40
# How many changed file names a history event lists before it says "and N more".
_NAMES_SHOWN = 10

MAX_FILES_SETTING = "FERRY_BUNDLE_MAX_FILES"
MAX_BYTES_SETTING = "FERRY_BUNDLE_MAX_BYTES"


class BundleError(PermanentError):
    """The directory cannot ship: over a limit, a symlink that leaves it, or an archive that is
    not a bundle. The message names the limit or the path (never a file's content)."""


@dataclass(frozen=True)
class TreeEntry:
    """One entry of a git tree listing: a file, a symlink or a submodule (never a directory).

    `path` is the repository path; `blob` the object id (a submodule's: its commit); `size` the
    content's length when the listing says (GitLab's does not)."""

    path: str
    mode: int
    blob: str
    size: int | None = None


@dataclass(frozen=True)
class BundleEntry:
    """One file of a bundle: its path inside the bundle, mode (GIT_FILE or GIT_EXECUTABLE), blob
    id and size (None until read, when the listing did not say). `source` is the repository path
    its content is read from (a symlink's target, for a resolved link)."""

    path: str
    mode: int
    blob: str
    size: int | None = None
    source: str = field(default="", compare=False)


@dataclass(frozen=True)
class BundleFile:
    """A file of a bundle with its content."""

    path: str
    data: bytes = field(repr=False)
    executable: bool = False

    @property
    def mode(self) -> int:
        """The git mode the digest counts."""
        return GIT_EXECUTABLE if self.executable else GIT_FILE


@dataclass(frozen=True)
class BundleLimits:
    """How large a bundle may be: its number of files and their total size in bytes."""

    max_files: int
    max_bytes: int


def root_of(compose_path: str, root: str | None) -> str:
    """The bundle's directory in the repository ("" for the repository root): `root` when the
    application names one ("." is the repository root), else the compose file's directory."""
    parent = str(PurePosixPath(compose_path).parent) if root is None else root
    return "" if parent in ("", ".") else parent.strip("/")


def compose_path_in(compose_path: str, root: str) -> str:
    """The compose file's path inside the bundle rooted at `root` (see `root_of`); ValueError
    when the file is not below the root."""
    if not root:
        return compose_path
    if not compose_path.startswith(f"{root}/"):
        raise ValueError(f"{compose_path} is not inside {root}")
    return compose_path[len(root) + 1 :]


def where(root: str) -> str:
    """How messages name a bundle's directory."""
    return f"the directory {root}" if root else "the repository root"


def blob_id(data: bytes) -> str:
    """git's object id of a file with this content (SHA-1 of `blob <size>\\0<content>`)."""
    header = f"blob {len(data)}\0".encode()
    return hashlib.sha1(header + data, usedforsecurity=False).hexdigest()


def digest(entries: Iterable[BundleEntry | BundleFile]) -> str:
    """The bundle's content address: SHA-256 over each file's mode, path and blob id, in path
    order (see the module docstring)."""
    rows = sorted(
        (
            (entry.path, entry.mode, entry.blob)
            if isinstance(entry, BundleEntry)
            else (entry.path, entry.mode, blob_id(entry.data))
        )
        for entry in entries
    )
    hashed = hashlib.sha256()
    for path, mode, blob in rows:
        hashed.update(f"{mode:o} {path}\0{blob}\n".encode())
    return hashed.hexdigest()


def plan(
    entries: Sequence[TreeEntry], root: str, links: Mapping[str, str], limits: BundleLimits
) -> list[BundleEntry]:
    """The bundle's files (sorted by path) from a tree listing of `root` (see `root_of`), with
    every symlink below the root resolved; `links` holds each symlink's target text by its
    repository path. BundleError when a link leaves the root, dangles or loops, or when the files
    are more than `limits` allow (their total size as far as the listing knows it)."""
    prefix = f"{root}/" if root else ""
    below = {e.path[len(prefix) :]: e for e in entries if e.path.startswith(prefix)}
    resolver = _Links(
        files={p: e for p, e in below.items() if e.mode not in (GIT_SYMLINK, GIT_SUBMODULE)},
        symlinks={p: links[e.path] for p, e in below.items() if e.mode == GIT_SYMLINK},
        everything=set(below),
        prefix=prefix,
    )
    planned: dict[str, BundleEntry] = {}
    for path, entry in resolver.files.items():
        planned[path] = _entry(path, entry)
    for path in resolver.symlinks:
        for name, entry in resolver.expand(path):
            planned[name] = _entry(name, entry)
    files = [planned[path] for path in sorted(planned)]
    check_count(len(files), limits, root)
    check_size(sum(entry.size or 0 for entry in files), limits, root)
    return files


def check_count(count: int, limits: BundleLimits, root: str) -> None:
    """BundleError naming the limit when `count` files are more than a bundle may have."""
    if count > limits.max_files:
        raise BundleError(
            f"{where(root)} has {count} files, more than a bundle may have: the limit is "
            f"{limits.max_files} files ({MAX_FILES_SETTING})"
        )


def check_size(total: int, limits: BundleLimits, root: str) -> None:
    """BundleError naming the limit when `total` bytes are more than a bundle may hold."""
    if total > limits.max_bytes:
        raise BundleError(
            f"{where(root)} holds {_size(total)}, more than a bundle may hold: the limit is "
            f"{_size(limits.max_bytes)} ({MAX_BYTES_SETTING})"
        )


def pack(files: Iterable[BundleFile]) -> bytes:
    """The bundle as a gzipped tar: the same files always give the same bytes."""
    buffer = io.BytesIO()
    with (
        gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0, compresslevel=9) as zipped,
        tarfile.open(fileobj=zipped, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for file in sorted(files, key=lambda f: f.path):
            info = tarfile.TarInfo(file.path)
            info.size = len(file.data)
            info.mode = 0o755 if file.executable else 0o644
            info.mtime = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(file.data))
    return buffer.getvalue()


def unpack(archive: bytes, *, max_files: int, max_bytes: int) -> list[BundleFile]:
    """The files of a bundle archive, checked: regular files only, relative paths that stay
    inside it, each path once, at most `max_files` files of `max_bytes` in total (what the
    archive's sender declared). BundleError for anything else."""
    files: dict[str, BundleFile] = {}
    total = 0
    try:
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
            for member in tar:
                path = _member_path(member.name)
                if not member.isreg():
                    raise BundleError(f"the bundle archive holds {path}, which is not a file")
                if path in files:
                    raise BundleError(f"the bundle archive holds {path} twice")
                total += member.size
                if len(files) + 1 > max_files or total > max_bytes:
                    raise BundleError("the bundle archive holds more than its sender declared")
                extracted = tar.extractfile(member)
                assert extracted is not None  # a regular file always has content
                files[path] = BundleFile(
                    path, extracted.read(), executable=bool(member.mode & 0o100)
                )
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        raise BundleError(f"not a bundle archive: {exc}") from exc
    return [files[path] for path in sorted(files)]


def changed_paths(old: Iterable[BundleEntry], new: Iterable[BundleEntry]) -> list[str]:
    """The paths added, removed or changed (content or mode) between two bundles, sorted."""
    before = {entry.path: (entry.mode, entry.blob) for entry in old}
    after = {entry.path: (entry.mode, entry.blob) for entry in new}
    return sorted(p for p in before.keys() | after.keys() if before.get(p) != after.get(p))


def describe_changes(paths: Sequence[str]) -> str:
    """Changed file names for a history event ("a, b and 3 more"); names only, never content."""
    if not paths:
        return "no file changed"
    shown = ", ".join(paths[:_NAMES_SHOWN])
    more = len(paths) - _NAMES_SHOWN
    files = "file" if len(paths) == 1 else "files"
    return f"{len(paths)} {files} changed: {shown}" + (f" and {more} more" if more > 0 else "")


def manifest_bytes(entries: Iterable[BundleEntry]) -> bytes:
    """A bundle's file list (path, mode, blob id, size) as compact compressed JSON."""
    rows = [[e.path, e.mode, e.blob, e.size] for e in entries]
    return zlib.compress(json.dumps(rows, separators=(",", ":")).encode(), 9)


def manifest_from_bytes(data: bytes) -> list[BundleEntry]:
    """The file list `manifest_bytes` stored."""
    rows = json.loads(zlib.decompress(data))
    return [BundleEntry(path=p, mode=m, blob=b, size=s) for p, m, b, s in rows]


def _entry(path: str, entry: TreeEntry) -> BundleEntry:
    executable = entry.mode & 0o111 != 0
    return BundleEntry(
        path=path,
        mode=GIT_EXECUTABLE if executable else GIT_FILE,
        blob=entry.blob,
        size=entry.size,
        source=entry.path,
    )


def _member_path(name: str) -> str:
    pure = PurePosixPath(name)
    if (
        not name
        or "\0" in name
        or pure.is_absolute()
        or any(part in ("..", ".") for part in PurePosixPath(name).parts)
        or str(pure) != name.rstrip("/")
    ):
        raise BundleError(f"the bundle archive holds a path that leaves it: {name!r}")
    return str(pure)


def _size(count: int) -> str:
    if count < 1024 * 1024:
        return f"{count} bytes"
    return f"{count / (1024 * 1024):.1f} MiB"


class _Escape(Exception):
    """A path left the bundle (or looped) while links were followed; the message says how."""


class _Links:
    """Symlink resolution inside one bundle, the way the kernel follows links (component by
    component, `..` after a link goes up from where the link led), with every path relative to
    the bundle's root."""

    def __init__(
        self,
        files: dict[str, TreeEntry],
        symlinks: dict[str, str],
        everything: set[str],
        prefix: str,
    ) -> None:
        self.files = files
        self.symlinks = symlinks
        self.prefix = prefix  # the root's repository path, for messages
        self.directories = {
            str(parent) for path in everything for parent in PurePosixPath(path).parents
        } - {"."}

    def expand(self, link: str, inside: tuple[str, ...] = ()) -> list[tuple[str, TreeEntry]]:
        """The files a symlink ships: (name in the bundle, the entry holding the content)."""
        shown = f"symlink {self.prefix}{link} -> {self.symlinks[link]}"
        try:
            real = self._real(link)
        except _Escape as exc:
            raise BundleError(f"{shown}: {exc}") from None
        if real in self.files:
            return [(link, self.files[real])]
        if real != "" and real not in self.directories:
            raise BundleError(f"{shown} points to {self.prefix}{real}, which is not in the bundle")
        if real == "" or _below(link, real) or real in inside:
            raise BundleError(f"{shown} points to a directory that holds it")
        found: list[tuple[str, TreeEntry]] = []
        for path, entry in self.files.items():
            if _below(path, real):
                found.append((f"{link}{path[len(real) :]}", entry))
        for path in self.symlinks:
            if _below(path, real):
                for name, entry in self.expand(path, (*inside, real)):
                    found.append((f"{link}{name[len(real) :]}", entry))
        return found

    def _real(self, path: str, hops: int = 0) -> str:
        done: list[str] = []
        for part in path.split("/"):
            if part in ("", "."):
                continue
            if part == "..":
                if not done:
                    raise _Escape("it leaves the bundle")
                done.pop()
                continue
            done.append(part)
            here = "/".join(done)
            target = self.symlinks.get(here)
            if target is None:
                continue
            if hops >= _MAX_HOPS:
                raise _Escape("it loops")
            if target.startswith("/"):
                raise _Escape("an absolute target leaves the bundle")
            parent = "/".join(done[:-1])
            resolved = self._real(f"{parent}/{target}" if parent else target, hops + 1)
            done = resolved.split("/") if resolved else []
        return "/".join(done)


def _below(path: str, directory: str) -> bool:
    return path.startswith(f"{directory}/")
