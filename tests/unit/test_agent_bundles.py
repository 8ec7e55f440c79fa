"""The agent's side of bundles: what it accepts as a bundle, how it lays bundles out in an
application's folder (fresh directory, swap, previous kept, what the host made carried along,
folders of earlier versions), and how the policy confines paths to the bundle (compose's
`config` needs no Docker daemon)."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

from ferry.domain.bundle import BundleFile, digest, pack
from ferry.domain.messages import BundleObject, BundleRef, DeployRequest
from ferry_agent.bundles import (
    LEGACY_OVERRIDE,
    BundleRefused,
    ProjectFolder,
    Received,
    receive,
)
from ferry_agent.compose import ComposeRunner, DeployError
from ferry_agent.policy import NOTHING_ON_HOST
from tests.unit.test_compose import _job

COMPOSE = "services:\n  web:\n    image: nginx:1.27\n"


def _request(contents: list[BundleFile], **changes: object) -> DeployRequest:
    archive = pack(contents)
    ref = BundleRef(
        digest=digest(contents),
        root="app",
        files=len(contents),
        size=sum(len(f.data) for f in contents),
        archive_size=len(archive),
        inline=base64.b64encode(archive).decode(),
    )
    request = DeployRequest(
        request_id="req_1",
        application_id="app_1",
        application_name="shop",
        project_name="shop",
        commit="0" * 40,
        compose_path="app/compose.yaml",
        compose_file=COMPOSE,
        heartbeat_seconds=60,
        bundle=ref,
    )
    return request.model_copy(update={"bundle": ref.model_copy(update=changes)})


FILES = [BundleFile("compose.yaml", COMPOSE.encode()), BundleFile("conf/a.conf", b"a")]


def test_receive_inline_bundle_checked_against_its_digest() -> None:
    received = receive(_request(FILES), None)

    assert received == Received("app", "compose.yaml", FILES, digest(FILES))


def test_receive_object_read_through_the_reader() -> None:
    archive = pack(FILES)
    location = BundleObject(bucket="b", key="requests/agt_1/req_1.tar.gz")
    request = _request(FILES, inline=None, object=location)
    asked: list[BundleObject] = []

    def read(where: BundleObject) -> bytes:
        asked.append(where)
        return archive

    assert receive(request, read).files == FILES
    assert asked == [location]


def test_receive_request_of_an_earlier_version_is_the_compose_file_alone() -> None:
    request = _request(FILES).model_copy(update={"bundle": None})

    received = receive(request, None)

    assert (received.root, received.compose) == ("app", "compose.yaml")
    assert received.files == [BundleFile("compose.yaml", COMPOSE.encode())]


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"digest": "0" * 64}, "does not match its digest"),
        ({"archive_size": 1}, "not the size its request declares"),
        ({"files": 1}, "more than its sender declared"),
        ({"inline": "***"}, "not base64"),
        ({"inline": None}, "says where no bundle is"),
        ({"root": "elsewhere"}, "cannot be used"),
    ],
)
def test_receive_bundle_that_is_not_what_was_declared_refused(
    changes: dict[str, object], reason: str
) -> None:
    with pytest.raises(BundleRefused, match=reason):
        receive(_request(FILES, **changes), None)


def test_receive_bundle_without_the_compose_file_refused() -> None:
    files = [BundleFile("other.yaml", b"x")]

    with pytest.raises(BundleRefused, match=r"does not hold app/compose\.yaml"):
        receive(_request(files), None)


def _received(files: dict[str, bytes], compose: str = "compose.yaml") -> Received:
    contents = [BundleFile(path, data) for path, data in files.items()]
    return Received("", compose, contents, digest(contents))


def test_project_folder_carries_what_the_host_made_and_swaps_atomically(tmp_path: Path) -> None:
    folder = ProjectFolder(tmp_path / "shop")
    first = folder.unpack(_received({"compose.yaml": b"1", "conf/a.conf": b"old"}))
    folder.swap_in(first, "")
    (first.directory / "data").mkdir()
    (first.directory / "data" / "db").write_bytes(b"rows")
    (first.directory / "conf" / "cache").write_bytes(b"c")
    (first.directory / ".env.local").write_bytes(b"HOST=1")
    second = folder.unpack(_received({"compose.yaml": b"2", "conf/a.conf": b"new"}))

    carried = folder.carry(second, "")
    folder.swap_in(second, "")

    assert len(carried.moves) == 3
    assert (second.directory / "data" / "db").read_bytes() == b"rows"
    assert (second.directory / "conf" / "cache").read_bytes() == b"c"
    assert (second.directory / ".env.local").read_bytes() == b"HOST=1"
    assert (second.directory / "conf" / "a.conf").read_bytes() == b"new"
    assert not (first.directory / "data").exists()
    assert folder.current() == second
    assert folder.previous() == first
    assert os.readlink(folder.state / "current") == f"bundles/{second.directory.name}"
    assert (folder.state.stat().st_mode & 0o777) == 0o700


def test_project_folder_repository_wins_a_name_the_host_also_made(tmp_path: Path) -> None:
    folder = ProjectFolder(tmp_path / "shop")
    first = folder.unpack(_received({"compose.yaml": b"1"}))
    folder.swap_in(first, "")
    (first.directory / "settings.ini").write_bytes(b"host")
    second = folder.unpack(_received({"compose.yaml": b"2", "settings.ini": b"repository"}))

    folder.carry(second, "")

    assert (second.directory / "settings.ini").read_bytes() == b"repository"
    assert (first.directory / "settings.ini").read_bytes() == b"host"


def test_project_folder_carried_files_go_back_when_the_bundle_is_abandoned(
    tmp_path: Path,
) -> None:
    folder = ProjectFolder(tmp_path / "shop")
    first = folder.unpack(_received({"compose.yaml": b"1"}))
    folder.swap_in(first, "")
    (first.directory / "data").mkdir()
    second = folder.unpack(_received({"compose.yaml": b"2"}))

    folder.carry(second, "").undo()
    folder.discard(second)

    assert (first.directory / "data").is_dir()
    assert not second.directory.exists()
    assert folder.current() == first


def test_project_folder_folder_of_an_earlier_version_is_the_previous_bundle(
    tmp_path: Path,
) -> None:
    folder = ProjectFolder(tmp_path / "shop")
    legacy = tmp_path / "shop" / "apps" / "web"
    legacy.mkdir(parents=True)
    (legacy / "compose.yaml").write_text(COMPOSE)
    (legacy / LEGACY_OVERRIDE).write_text("services: {}\n")
    (legacy / "data").mkdir()
    (tmp_path / "shop" / ".ferry.deployed.json").write_text("{}")
    bundle = folder.unpack(
        Received("apps/web", "compose.yaml", [BundleFile("compose.yaml", b"new")], "d" * 64)
    )

    folder.carry(bundle, "apps/web")
    folder.swap_in(bundle, "apps/web")

    assert (bundle.directory / "data").is_dir()
    assert not (legacy / "compose.yaml").exists()
    assert not (legacy / LEGACY_OVERRIDE).exists()
    assert (tmp_path / "shop" / ".ferry.deployed.json").exists()
    assert folder.current() == bundle


# --- the policy judges paths against the bundle -------------------------------------------------

CONFIGURED = """services:
  web:
    image: nginx:1.27
    env_file: [app.env]
    environment: ["GREETING=${GREETING}"]
    volumes: ["./nginx.conf:/etc/nginx/nginx.conf:ro", "./data:/data"]
    configs: [site]
configs:
  site: {file: ./site.conf}
"""


def test_compose_runner_bundles_env_env_file_binds_and_configs_accepted(tmp_path: Path) -> None:
    runner = ComposeRunner(tmp_path / "deployments")
    job = _job(
        CONFIGURED,
        compose_path="apps/web/compose.yaml",
        files={
            ".env": "GREETING=hello\n",
            "app.env": "MODE=production\n",
            "nginx.conf": "events {}\n",
            "site.conf": "server {}\n",
        },
    )

    prepared = runner.prepare(job, NOTHING_ON_HOST)

    assert prepared.images == ["nginx:1.27"]
    assert (prepared.bundle.project_dir / "app.env").read_text() == "MODE=production\n"


@pytest.mark.parametrize(
    "setting",
    [
        'volumes: ["../shared/nginx.conf:/etc/nginx/nginx.conf"]',
        "env_file: [../secrets.env]",
        "build: {context: ../, dockerfile: Dockerfile}",
    ],
)
def test_compose_runner_path_outside_the_bundle_refused_with_its_path(
    tmp_path: Path, setting: str
) -> None:
    runner = ComposeRunner(tmp_path / "deployments")
    compose = f"services:\n  web:\n    image: nginx:1.27\n    {setting}\n"

    with pytest.raises(DeployError, match=r"project_escape:") as refused:
        runner.prepare(_job(compose, compose_path="apps/web/compose.yaml"), NOTHING_ON_HOST)

    assert "leaves the application's bundle" in str(refused.value)
    assert "../" in str(refused.value)


def test_compose_runner_parent_root_lets_relative_paths_reach_shared_files(
    tmp_path: Path,
) -> None:
    runner = ComposeRunner(tmp_path / "deployments")
    compose = (
        "services:\n  web:\n    image: nginx:1.27\n"
        '    volumes: ["../shared/nginx.conf:/etc/nginx/nginx.conf:ro"]\n'
    )
    job = _job(
        compose,
        compose_path="apps/web/compose.yaml",
        root="apps",
        files={"shared/nginx.conf": "events {}\n"},
    )

    prepared = runner.prepare(job, NOTHING_ON_HOST)

    assert prepared.compose_path == prepared.bundle.directory / "web" / "compose.yaml"
