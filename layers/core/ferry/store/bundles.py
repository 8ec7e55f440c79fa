"""Where an application's bundle is kept: the target's (ferry/domain/bundle.py), recorded in the
same write as its compose file and commit.

The row always holds the bundle's digest, its directory and its file list (encrypted: the names
and blob ids of a repository's secret files are not for everyone). The archive itself lives in
the row too, encrypted like compose files, while it is at most FERRY_BUNDLE_INLINE_MAX_BYTES
(DynamoDB items hold 400 KB); a larger one goes to the bundle bucket under
`bundles/<application id>/<digest>`, sealed with the same keyring before S3 encrypts it again,
and is deleted when a newer bundle replaces it or the application is deleted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ferry.aws.objects import delete_object, delete_objects, get_object, put_object
from ferry.domain.bundle import BundleEntry, manifest_bytes, manifest_from_bytes
from ferry.security.crypto import decrypt_bytes, get_keyring
from ferry.settings import get_settings
from ferry.store.errors import translated
from ferry.store.tables import ApplicationRow

# The key too: a row holding none of the others would read back as no row at all.
_STORED = ["id", "bundle_digest", "bundle_root", "bundle_files", "bundle_archive"]


@dataclass(frozen=True)
class StoredBundle:
    """An application's recorded bundle: `root` is its directory ("" for the repository
    root); `archive` is None when the archive is kept in the bundle bucket."""

    application_id: str
    digest: str
    root: str
    files: list[BundleEntry]
    archive: bytes | None

    @property
    def in_bucket(self) -> bool:
        return self.archive is None

    @property
    def size(self) -> int:
        """The files' total size."""
        return sum(entry.size or 0 for entry in self.files)


def bundle_key(application_id: str, digest: str) -> str:
    """Where a large archive is kept in the bundle bucket."""
    return f"bundles/{application_id}/{digest}.tar.gz.sealed"


def stored_bundle(application_id: str) -> StoredBundle | None:
    """The application's recorded bundle (None before its first bundle: rows of earlier versions
    record the compose file alone)."""
    with translated(f"application {application_id}"):
        row = ApplicationRow.get(application_id, consistent_read=True, attributes_to_get=_STORED)
    return bundle_of(row)


def bundle_of(row: ApplicationRow) -> StoredBundle | None:
    """The bundle an application row records (a row read whole, or with its bundle's fields)."""
    if row.bundle_digest is None or row.bundle_files is None:
        return None
    root = row.bundle_root or "."
    return StoredBundle(
        application_id=row.id,
        digest=row.bundle_digest,
        root="" if root == "." else root,
        files=manifest_from_bytes(row.bundle_files),
        archive=row.bundle_archive,
    )


def archive_of(bundle: StoredBundle) -> bytes:
    """The bundle's archive, from the row or the bundle bucket."""
    if bundle.archive is not None:
        return bundle.archive
    sealed = get_object(bundle_key(bundle.application_id, bundle.digest))
    return decrypt_bytes(sealed.decode("ascii", errors="replace"))


def keep_bundle(
    application_id: str, digest: str, root: str, files: list[BundleEntry], archive: bytes
) -> dict[str, Any]:
    """Keep a new bundle: a large archive goes to the bundle bucket now; returns the row fields
    that record it (for the write that starts its deploy)."""
    in_row = len(archive) <= get_settings().bundle_inline_max_bytes
    if not in_row:
        sealed = get_keyring().encrypt_bytes(archive)
        put_object(bundle_key(application_id, digest), sealed.encode())
    return {
        "bundle_digest": digest,
        "bundle_root": root or ".",
        "bundle_files": manifest_bytes(files),
        "bundle_archive": archive if in_row else None,
    }


def drop_bundle(application_id: str, digest: str) -> None:
    """Delete a bundle's archive from the bucket (one no row records any more)."""
    delete_object(bundle_key(application_id, digest))


def forget_bundles(application_id: str) -> int:
    """Delete every archive the application has in the bucket (it is being deleted); returns
    how many there were. Nothing to do without a bucket: nothing can have been kept there."""
    if not get_settings().bundle_bucket:
        return 0
    return delete_objects(f"bundles/{application_id}/")
