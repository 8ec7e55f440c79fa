"""An application's bundle on its host: received, checked, unpacked into a fresh directory and
swapped in.

Each application's folder (`FERRY_DEPLOYMENTS_DIR/<project>/`) holds, in `.ferry/` (readable
by the agent's user only: a bundle may hold the repository's secrets):

    bundles/<digest>-<random>/         one bundle as unpacked: the repository's directory
    bundles/<digest>-<random>.json     what it holds (digest, compose file, the files)
    bundles/<digest>-<random>.override.yaml   the labels override compose merges over it
    current  -> bundles/<...>          what runs, swapped in with one rename
    previous -> bundles/<...>          what ran before (kept until the next swap)

A deploy unpacks into a fresh directory, so nothing that runs changes while the bundle is judged
and its images are pulled; a refused bundle, or a failed pull, is taken apart again and
`current` never moved. What the host made in the running bundle (a `./data` a container writes,
an `.env` someone put there by hand) is not the repository's: it moves along into the new
bundle, by rename, before the new bundle is judged (so the policy sees the tree that will run)
and moves back if the deploy stops before the swap. Where the repository now has a file of the
same name, the repository's wins and the host's stays behind in the previous bundle.

Folders of earlier versions held the compose file at its repository path with
`.ferry.override.yaml` beside it; the first bundle treats that folder as the previous bundle.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import logging
import os
import secrets
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from ferry.domain.agent_messages import BundleObject, DeployRequest
from ferry.domain.bundle import BundleError, BundleFile, compose_path_in, digest, unpack

log = logging.getLogger("ferry_agent")

STATE_DIR = ".ferry"
CURRENT = "current"
PREVIOUS = "previous"
# Files of earlier versions beside the compose file, and what the drift watcher keeps beside a
# project: the agent's, never the application's.
OWN_PREFIX = ".ferry"
LEGACY_OVERRIDE = ".ferry.override.yaml"

ReadObject = Callable[[BundleObject], bytes]


class BundleRefused(Exception):
    """The bundle that arrived cannot be used (the message says why, never what is in it)."""


@dataclass(frozen=True)
class Received:
    """A bundle as it arrived: its directory in the repository ("" for the repository root),
    the compose file's path inside it, its files and its digest."""

    root: str
    compose: str
    files: list[BundleFile] = field(repr=False)
    digest: str


def receive(request: DeployRequest, read_object: ReadObject | None) -> Received:
    """The request's bundle, checked against what the request declares (its digest, how many files
    of how many bytes). A request of an earlier control plane carries the compose file alone: its
    bundle is that one file."""
    compose_path = PurePosixPath(request.compose_path)
    if compose_path.is_absolute() or ".." in compose_path.parts or not compose_path.name:
        raise BundleRefused(f"compose path {request.compose_path!r} escapes the deployment folder")
    ref = request.bundle
    if ref is None:
        root = "" if str(compose_path.parent) == "." else str(compose_path.parent)
        files = [BundleFile(compose_path.name, request.compose_file.encode())]
        return Received(root, compose_path.name, files, digest(files))
    if ref.inline is not None:
        try:
            archive = base64.b64decode(ref.inline, validate=True)
        except (ValueError, binascii.Error) as exc:
            raise BundleRefused("the bundle sent inline is not base64") from exc
    elif ref.object is not None and read_object is not None:
        archive = read_object(ref.object)
    else:
        raise BundleRefused("the deploy request says where no bundle is")
    if len(archive) != ref.archive_size:
        raise BundleRefused("the bundle received is not the size its request declares")
    try:
        files = unpack(archive, max_files=ref.files, max_bytes=ref.size)
        compose = compose_path_in(request.compose_path, ref.root)
    except (BundleError, ValueError) as exc:
        raise BundleRefused(f"the bundle received cannot be used: {exc}") from exc
    if digest(files) != ref.digest:
        raise BundleRefused("the bundle received does not match its digest")
    if not any(file.path == compose for file in files):
        raise BundleRefused(f"the bundle received does not hold {request.compose_path}")
    return Received(ref.root, compose, files, ref.digest)


@dataclass(frozen=True)
class Unpacked:
    """A bundle on disk: `directory` is its root, `compose` the compose file's path inside it,
    `files` what came from the repository."""

    directory: Path
    compose: str
    files: frozenset[str]
    digest: str

    @property
    def compose_path(self) -> Path:
        return self.directory / self.compose

    @property
    def project_dir(self) -> Path:
        """Where compose runs: the compose file's directory (compose's own default)."""
        return self.compose_path.parent

    @property
    def override_path(self) -> Path:
        return self.directory.with_name(f"{self.directory.name}.override.yaml")

    @property
    def record_path(self) -> Path:
        return self.directory.with_name(f"{self.directory.name}.json")


@dataclass
class Carried:
    """Entries the host made, moved from the previous bundle into a new one (undone when the
    new one does not go live)."""

    moves: list[tuple[Path, Path]] = field(default_factory=list)

    def undo(self) -> None:
        for source, target in reversed(self.moves):
            try:
                os.rename(target, source)
            except OSError as exc:
                log.warning("could not move %s back to %s: %s", target, source, exc)
        self.moves.clear()


class ProjectFolder:
    """One application's folder in the deployments directory (see the module docstring)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.state = folder / STATE_DIR
        self.bundles = self.state / "bundles"

    def current(self) -> Unpacked | None:
        """The bundle that runs (None before the first bundle)."""
        return self._linked(CURRENT)

    def previous(self) -> Unpacked | None:
        return self._linked(PREVIOUS)

    def unpack(self, received: Received) -> Unpacked:
        """Write the bundle into a fresh directory (nothing that runs is touched)."""
        self.bundles.mkdir(parents=True, exist_ok=True)
        self.state.chmod(0o700)
        directory = self.bundles / f"{received.digest[:16]}-{secrets.token_hex(4)}"
        directory.mkdir()
        for file in received.files:
            target = directory / file.path
            target.parent.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(
                target,
                os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW,
                0o755 if file.executable else 0o644,
            )
            with os.fdopen(descriptor, "wb") as out:
                out.write(file.data)
        unpacked = Unpacked(
            directory, received.compose, frozenset(f.path for f in received.files), received.digest
        )
        unpacked.record_path.write_text(
            json.dumps(
                {
                    "digest": unpacked.digest,
                    "compose": unpacked.compose,
                    "files": sorted(unpacked.files),
                }
            )
        )
        return unpacked

    def carry(self, into: Unpacked, root: str) -> Carried:
        """Move what the host made in the running bundle (or, before the first bundle, in the
        folder of earlier versions) into `into`."""
        source = self.current() or self._legacy(into, root)
        carried = Carried()
        if source is None:
            return carried
        for name in _host_made(source.directory, source.files):
            origin, target = source.directory / name, into.directory / name
            if os.path.lexists(target):
                log.warning(
                    "%s: the repository now has %s; the host's stays in %s",
                    self.folder.name,
                    name,
                    source.directory,
                )
                continue
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                os.rename(origin, target)
            except OSError as exc:
                log.warning(
                    "%s: could not bring %s into the new bundle (%s); it stays in %s",
                    self.folder.name,
                    name,
                    exc,
                    source.directory,
                )
                continue
            carried.moves.append((origin, target))
        return carried

    def discard(self, unpacked: Unpacked) -> None:
        """Take apart a bundle that did not go live (and the folders made for it, when nothing
        else is in them: a refused first deploy leaves nothing behind)."""
        shutil.rmtree(unpacked.directory, ignore_errors=True)
        unpacked.record_path.unlink(missing_ok=True)
        unpacked.override_path.unlink(missing_ok=True)
        for folder in (self.bundles, self.state, self.folder):
            with contextlib.suppress(OSError):
                folder.rmdir()

    def swap_in(self, unpacked: Unpacked, root: str) -> None:
        """Make `unpacked` the running bundle (one rename), the running one the previous, and
        delete the bundles older than that (and the files of earlier versions)."""
        running = self.current()
        self._link(CURRENT, unpacked.directory.name)
        if running is not None and running.directory != unpacked.directory:
            self._link(PREVIOUS, running.directory.name)
        elif running is None:
            self._retire_legacy(unpacked, root)
        kept = {unpacked.directory.name}
        if running is not None:
            kept.add(running.directory.name)
        for entry in self.bundles.iterdir():
            name = entry.name.removesuffix(".json").removesuffix(".override.yaml")
            if name in kept:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)

    # --- internals ----------------------------------------------------------------------------

    def _linked(self, link: str) -> Unpacked | None:
        path = self.state / link
        if not path.is_symlink():
            return None
        directory = (self.state / os.readlink(path)).resolve()
        if directory.parent != self.bundles.resolve() or not directory.is_dir():
            return None
        try:
            record = json.loads(directory.with_name(f"{directory.name}.json").read_text())
        except (OSError, ValueError):
            return None
        return Unpacked(
            self.bundles / directory.name,
            str(record["compose"]),
            frozenset(str(name) for name in record["files"]),
            str(record["digest"]),
        )

    def _link(self, link: str, name: str) -> None:
        temporary = self.state / f".{link}-{secrets.token_hex(4)}"
        os.symlink(f"bundles/{name}", temporary)
        os.replace(temporary, self.state / link)

    def _legacy(self, into: Unpacked, root: str) -> Unpacked | None:
        """The folder of an earlier version, seen as a bundle: the bundle's root at its
        repository path, holding the compose file (and our override beside it)."""
        directory = self.folder / root if root else self.folder
        if not (directory / into.compose).is_file():
            return None
        return Unpacked(directory, into.compose, frozenset({into.compose}), "")

    def _retire_legacy(self, unpacked: Unpacked, root: str) -> None:
        legacy = self._legacy(unpacked, root)
        if legacy is None:
            return
        compose = legacy.compose_path
        for stale in (compose, compose.with_name(LEGACY_OVERRIDE)):
            with contextlib.suppress(OSError):
                stale.unlink()


def _host_made(directory: Path, files: frozenset[str]) -> list[str]:
    """Entries below `directory` that are not the repository's: not one of `files` and not a
    directory on the way to one (the agent's own `.ferry*` entries left aside)."""
    holding = {str(parent) for name in files for parent in PurePosixPath(name).parents} - {"."}
    found: list[str] = []

    def walk(relative: str) -> None:
        try:
            entries = sorted(os.scandir(directory / relative), key=lambda e: e.name)
        except OSError:
            return
        for entry in entries:
            name = f"{relative}/{entry.name}" if relative else entry.name
            if entry.name.startswith(OWN_PREFIX) or name in files:
                continue
            if name in holding and entry.is_dir(follow_symlinks=False):
                walk(name)
            else:
                found.append(name)

    walk("")
    return found
