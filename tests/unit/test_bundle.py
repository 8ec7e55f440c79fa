"""The deployment bundle, pure: tree listing → files (links resolved, limits), the digest, the
archive both ways, and what changed."""

from __future__ import annotations

import gzip
import io
import subprocess
import tarfile
from pathlib import Path

import pytest

from ferry.domain.bundle import (
    GIT_EXECUTABLE,
    GIT_FILE,
    GIT_SUBMODULE,
    GIT_SYMLINK,
    BundleEntry,
    BundleError,
    BundleFile,
    BundleLimits,
    TreeEntry,
    blob_id,
    changed_paths,
    compose_path_in,
    describe_changes,
    digest,
    manifest_bytes,
    manifest_from_bytes,
    pack,
    plan,
    root_of,
    unpack,
)

LIMITS = BundleLimits(max_files=100, max_bytes=1_000_000)


def _file(path: str, data: bytes = b"x", mode: int = GIT_FILE) -> TreeEntry:
    return TreeEntry(path=path, mode=mode, blob=blob_id(data), size=len(data))


def _link(path: str) -> TreeEntry:
    return TreeEntry(path=path, mode=GIT_SYMLINK, blob="1" * 40, size=10)


def test_blob_id_is_gits_object_id(tmp_path: Path) -> None:
    data = b"services:\n  web:\n    image: nginx\n"
    (tmp_path / "f").write_bytes(data)

    expected = subprocess.run(
        ["git", "hash-object", str(tmp_path / "f")], capture_output=True, text=True, check=True
    ).stdout.strip()

    assert blob_id(data) == expected


def test_root_of_default_is_the_compose_files_directory() -> None:
    assert root_of("apps/web/compose.yaml", None) == "apps/web"
    assert root_of("compose.yaml", None) == ""
    assert root_of("apps/web/compose.yaml", ".") == ""
    assert root_of("apps/web/compose.yaml", "apps") == "apps"


def test_compose_path_in_below_the_root() -> None:
    assert compose_path_in("apps/web/compose.yaml", "apps") == "web/compose.yaml"
    assert compose_path_in("compose.yaml", "") == "compose.yaml"
    with pytest.raises(ValueError, match="not inside"):
        compose_path_in("other/compose.yaml", "apps")


def test_plan_only_files_below_the_root_relative_to_it() -> None:
    tree = [_file("apps/web/compose.yaml"), _file("apps/web/conf/nginx.conf"), _file("apps/db/x")]

    files = plan([e for e in tree if e.path.startswith("apps/web/")], "apps/web", {}, LIMITS)

    assert [(f.path, f.source) for f in files] == [
        ("compose.yaml", "apps/web/compose.yaml"),
        ("conf/nginx.conf", "apps/web/conf/nginx.conf"),
    ]


def test_plan_keeps_the_executable_bit_and_leaves_submodules_out() -> None:
    tree = [
        _file("run.sh", mode=GIT_EXECUTABLE),
        _file("compose.yaml", mode=0o100664),
        TreeEntry(path="vendor", mode=GIT_SUBMODULE, blob="2" * 40),
    ]

    files = plan(tree, "", {}, LIMITS)

    assert [(f.path, f.mode) for f in files] == [
        ("compose.yaml", GIT_FILE),
        ("run.sh", GIT_EXECUTABLE),
    ]


def test_plan_symlink_to_a_file_ships_its_content_under_the_links_name() -> None:
    target = _file("app/conf/real.conf", b"real")
    tree = [_file("app/compose.yaml"), target, _link("app/nginx.conf")]

    files = plan(tree, "app", {"app/nginx.conf": "conf/real.conf"}, LIMITS)

    linked = next(f for f in files if f.path == "nginx.conf")
    assert (linked.blob, linked.source) == (target.blob, "app/conf/real.conf")


def test_plan_symlink_to_a_directory_ships_its_files_and_chains_resolve() -> None:
    tree = [
        _file("app/v2/a.conf", b"a"),
        _file("app/v2/sub/b.conf", b"b"),
        _link("app/current"),
        _link("app/latest"),
        _link("app/v2/sub/again"),
    ]
    links = {"app/current": "latest", "app/latest": "./v2", "app/v2/sub/again": "../a.conf"}

    files = plan(tree, "app", links, LIMITS)

    assert [f.path for f in files] == [
        "current/a.conf",
        "current/sub/again",
        "current/sub/b.conf",
        "latest/a.conf",
        "latest/sub/again",
        "latest/sub/b.conf",
        "v2/a.conf",
        "v2/sub/again",
        "v2/sub/b.conf",
    ]
    assert next(f for f in files if f.path == "current/sub/again").blob == blob_id(b"a")


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        ("../secrets.env", "leaves the bundle"),
        ("/etc/passwd", "absolute target leaves the bundle"),
        ("conf/../../../x", "leaves the bundle"),
        ("missing.conf", "not in the bundle"),
        (".", "holds it"),
        ("loop", "loops"),
    ],
)
def test_plan_symlink_out_of_the_bundle_refused(target: str, reason: str) -> None:
    tree = [_file("app/compose.yaml"), _link("app/nginx.conf"), _link("app/loop")]
    links = {"app/nginx.conf": target, "app/loop": "nginx.conf"}

    with pytest.raises(BundleError, match=reason) as refused:
        plan(tree, "app", links, LIMITS)

    assert "symlink app/nginx.conf" in str(refused.value) or "symlink app/loop" in str(
        refused.value
    )


def test_plan_symlink_to_the_directory_that_holds_it_refused() -> None:
    tree = [_file("app/conf/a"), _link("app/conf/self")]

    with pytest.raises(BundleError, match="holds it"):
        plan(tree, "app", {"app/conf/self": "."}, LIMITS)


def test_plan_more_files_than_the_limit_refused_naming_it() -> None:
    tree = [_file(f"app/{n}.txt") for n in range(4)]

    with pytest.raises(BundleError) as refused:
        plan(tree, "app", {}, BundleLimits(max_files=3, max_bytes=1000))

    assert str(refused.value) == (
        "the directory app has 4 files, more than a bundle may have: the limit is 3 files "
        "(FERRY_BUNDLE_MAX_FILES)"
    )


def test_plan_larger_than_the_limit_refused_naming_it() -> None:
    tree = [_file("a", b"x" * 700), _file("b", b"y" * 700)]

    with pytest.raises(BundleError) as refused:
        plan(tree, "", {}, BundleLimits(max_files=10, max_bytes=1000))

    assert "the repository root holds 1400 bytes" in str(refused.value)
    assert "the limit is 1000 bytes (FERRY_BUNDLE_MAX_BYTES)" in str(refused.value)


def test_digest_same_files_same_digest_from_listing_and_from_content() -> None:
    contents = [BundleFile("b.txt", b"b"), BundleFile("a.sh", b"a", executable=True)]
    listed = plan([_file("a.sh", b"a", GIT_EXECUTABLE), _file("b.txt", b"b")], "", {}, LIMITS)

    assert digest(contents) == digest(listed) == digest(reversed(contents))


@pytest.mark.parametrize(
    "changed",
    [
        [BundleFile("a.sh", b"a", executable=False), BundleFile("b.txt", b"b")],
        [BundleFile("a.sh", b"a", executable=True), BundleFile("b.txt", b"B")],
        [BundleFile("a.sh", b"a", executable=True), BundleFile("c.txt", b"b")],
        [BundleFile("a.sh", b"a", executable=True)],
    ],
)
def test_digest_any_mode_content_or_name_change_changes_it(changed: list[BundleFile]) -> None:
    original = [BundleFile("a.sh", b"a", executable=True), BundleFile("b.txt", b"b")]

    assert digest(changed) != digest(original)


def test_pack_same_files_same_bytes_and_unpack_gives_them_back() -> None:
    files = [
        BundleFile("compose.yaml", b"services: {}\n"),
        BundleFile("bin/run.sh", b"#!/bin/sh\n", executable=True),
        BundleFile("conf/\u00fcnicode.conf", b"\x00\xff binary"),
    ]

    archive = pack(files)

    assert archive == pack(list(reversed(files)))
    assert unpack(archive, max_files=3, max_bytes=100) == sorted(files, key=lambda f: f.path)


def _tar(*members: tuple[tarfile.TarInfo, bytes]) -> bytes:
    buffer = io.BytesIO()
    with (
        gzip.GzipFile(fileobj=buffer, mode="wb") as zipped,
        tarfile.open(fileobj=zipped, mode="w") as tar,
    ):
        for info, data in members:
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _member(name: str, kind: bytes = tarfile.REGTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    return info


@pytest.mark.parametrize(
    ("archive", "reason"),
    [
        (_tar((_member("../evil"), b"x")), "leaves it"),
        (_tar((_member("/etc/passwd"), b"x")), "leaves it"),
        (_tar((_member("a/./b"), b"x")), "leaves it"),
        (_tar((_member("link", tarfile.SYMTYPE), b"")), "not a file"),
        (_tar((_member("dir", tarfile.DIRTYPE), b"")), "not a file"),
        (_tar((_member("a"), b"x"), (_member("a"), b"y")), "twice"),
        (_tar((_member("a"), b"x" * 11)), "more than its sender declared"),
        (b"not gzip at all", "not a bundle archive"),
    ],
)
def test_unpack_anything_but_a_bundle_refused(archive: bytes, reason: str) -> None:
    with pytest.raises(BundleError, match=reason):
        unpack(archive, max_files=5, max_bytes=10)


def test_unpack_more_files_than_declared_refused() -> None:
    archive = pack([BundleFile("a", b""), BundleFile("b", b"")])

    with pytest.raises(BundleError, match="more than its sender declared"):
        unpack(archive, max_files=1, max_bytes=10)


def test_changed_paths_names_added_removed_and_changed_files() -> None:
    old = [
        BundleEntry("same", GIT_FILE, "1" * 40),
        BundleEntry("edited", GIT_FILE, "2" * 40),
        BundleEntry("gone", GIT_FILE, "3" * 40),
        BundleEntry("chmod", GIT_FILE, "4" * 40),
    ]
    new = [
        BundleEntry("same", GIT_FILE, "1" * 40),
        BundleEntry("edited", GIT_FILE, "5" * 40),
        BundleEntry("chmod", GIT_EXECUTABLE, "4" * 40),
        BundleEntry("added", GIT_FILE, "6" * 40),
    ]

    assert changed_paths(old, new) == ["added", "chmod", "edited", "gone"]


def test_describe_changes_names_only_and_counts_the_rest() -> None:
    names = [f"f{n:02}" for n in range(12)]

    assert describe_changes(["app/.env"]) == "1 file changed: app/.env"
    assert describe_changes(names) == (
        "12 files changed: f00, f01, f02, f03, f04, f05, f06, f07, f08, f09 and 2 more"
    )


def test_manifest_round_trip() -> None:
    entries = [
        BundleEntry("a", GIT_FILE, "1" * 40, 3),
        BundleEntry("b/c", GIT_EXECUTABLE, "2" * 40),
    ]

    assert manifest_from_bytes(manifest_bytes(entries)) == entries
