"""LocalGitSource against real git repositories made with dulwich in tmp_path."""

from __future__ import annotations

from pathlib import Path

import pytest
from dulwich import porcelain
from dulwich.objects import Commit, ObjectID
from dulwich.refs import Ref
from dulwich.repo import Repo

from ferry.domain.bundle import GIT_EXECUTABLE, GIT_FILE, GIT_SYMLINK, BundleLimits, blob_id, digest
from ferry.domain.models import Application, CommitInfo
from ferry.errors import GitError
from ferry.git.local import LocalGitSource
from ferry.local.sample import commit_file
from ferry.sync.bundle import list_bundle, read_bundle

COMPOSE = "apps/web/compose.yaml"
V1 = "services:\n  web:\n    image: busybox:1.36\n"
V2 = "services:\n  web:\n    image: busybox:1.37\n"


@pytest.fixture
def repo_path(tmp_path: Path) -> Path:
    path = tmp_path / "repo"
    path.mkdir()
    repo = Repo.init(str(path))
    repo.refs.set_symbolic_ref(Ref(b"HEAD"), Ref(b"refs/heads/main"))
    repo.close()
    return path


@pytest.fixture
def history(repo_path: Path) -> tuple[str, str]:
    """Two commits on main: the first adds the compose file, the second changes it."""
    first = commit_file(repo_path, COMPOSE, V1, "Add web")
    second = commit_file(repo_path, COMPOSE, V2, "Bump busybox\n\nTo 1.37.")
    return first, second


def test_local_git_source_latest_commit_main_returns_head_sha_and_message(
    repo_path: Path, history: tuple[str, str]
) -> None:
    head = LocalGitSource(str(repo_path)).latest_commit("main")

    assert head == CommitInfo(sha=history[1], message="Bump busybox\n\nTo 1.37.")


def test_local_git_source_latest_commit_other_branch_returns_its_head(
    repo_path: Path, history: tuple[str, str]
) -> None:
    with Repo(str(repo_path)) as repo:
        repo.refs[Ref(b"refs/heads/release/1.0")] = ObjectID(history[0].encode())

    head = LocalGitSource(str(repo_path)).latest_commit("release/1.0")

    assert head.sha == history[0]
    assert head.message == "Add web"


def test_local_git_source_latest_commit_after_new_commit_moves(
    repo_path: Path, history: tuple[str, str]
) -> None:
    source = LocalGitSource(str(repo_path))
    assert source.latest_commit("main").sha == history[1]

    third = commit_file(repo_path, COMPOSE, V1, "Roll back")

    assert source.latest_commit("main").sha == third


def test_local_git_source_latest_commit_unknown_branch_raises_git_error(
    repo_path: Path, history: tuple[str, str]
) -> None:
    with pytest.raises(GitError, match="does not exist"):
        LocalGitSource(str(repo_path)).latest_commit("develop")


def test_local_git_source_latest_commit_empty_repository_raises_git_error(
    repo_path: Path,
) -> None:
    with pytest.raises(GitError):
        LocalGitSource(str(repo_path)).latest_commit("main")


@pytest.mark.parametrize("branch", ["", "bad..name", "has space", "x~1", "a:b", "ends/", "q?"])
def test_local_git_source_latest_commit_invalid_branch_name_raises_git_error(
    repo_path: Path, history: tuple[str, str], branch: str
) -> None:
    with pytest.raises(GitError, match="not a valid branch name"):
        LocalGitSource(str(repo_path)).latest_commit(branch)


def test_local_git_source_not_a_repository_raises_git_error(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()

    with pytest.raises(GitError, match="not a git repository"):
        LocalGitSource(str(plain)).latest_commit("main")
    with pytest.raises(GitError, match="not a git repository"):
        LocalGitSource(str(tmp_path / "missing")).latest_commit("main")


def test_local_git_source_commit_existing_sha_returns_its_message(
    repo_path: Path, history: tuple[str, str]
) -> None:
    info = LocalGitSource(str(repo_path)).commit(history[0])

    assert info == CommitInfo(sha=history[0], message="Add web")


def test_local_git_source_commit_missing_sha_raises_git_error(
    repo_path: Path, history: tuple[str, str]
) -> None:
    missing = "f" * 40
    assert missing not in history

    with pytest.raises(GitError, match="not in the repository"):
        LocalGitSource(str(repo_path)).commit(missing)


@pytest.mark.parametrize("sha", ["abc1234", "", "main"])
def test_local_git_source_commit_not_full_sha_raises_git_error(
    repo_path: Path, history: tuple[str, str], sha: str
) -> None:
    with pytest.raises(GitError, match="full commit SHA"):
        LocalGitSource(str(repo_path)).commit(sha)


def test_local_git_source_commit_sha_of_tree_raises_git_error(
    repo_path: Path, history: tuple[str, str]
) -> None:
    with Repo(str(repo_path)) as repo:
        commit = repo[history[0].encode()]
        assert isinstance(commit, Commit)
        tree = commit.tree.decode()

    with pytest.raises(GitError, match="not a commit"):
        LocalGitSource(str(repo_path)).commit(tree)


def test_local_git_source_read_file_older_commit_returns_old_content(
    repo_path: Path, history: tuple[str, str]
) -> None:
    source = LocalGitSource(str(repo_path))

    assert source.read_file(history[0], COMPOSE) == V1
    assert source.read_file(history[1], COMPOSE) == V2


def test_local_git_source_read_file_ignores_uncommitted_working_tree(
    repo_path: Path, history: tuple[str, str]
) -> None:
    (repo_path / COMPOSE).write_text("services: {}\n")

    assert LocalGitSource(str(repo_path)).read_file(history[1], COMPOSE) == V2


def test_local_git_source_read_file_missing_file_raises_git_error(
    repo_path: Path, history: tuple[str, str]
) -> None:
    with pytest.raises(GitError, match="does not exist"):
        LocalGitSource(str(repo_path)).read_file(history[1], "apps/web/docker-compose.yml")


def test_local_git_source_read_file_added_later_missing_at_older_commit(
    repo_path: Path, history: tuple[str, str]
) -> None:
    commit_file(repo_path, "apps/api/compose.yaml", V1, "Add api")

    with pytest.raises(GitError, match="does not exist"):
        LocalGitSource(str(repo_path)).read_file(history[1], "apps/api/compose.yaml")


def test_local_git_source_read_file_directory_raises_git_error(
    repo_path: Path, history: tuple[str, str]
) -> None:
    with pytest.raises(GitError, match="not a file"):
        LocalGitSource(str(repo_path)).read_file(history[1], "apps/web")


def test_local_git_source_read_file_missing_commit_raises_git_error(
    repo_path: Path, history: tuple[str, str]
) -> None:
    with pytest.raises(GitError, match="not in the repository"):
        LocalGitSource(str(repo_path)).read_file("e" * 40, COMPOSE)


def test_local_git_source_read_file_binary_raises_git_error(
    repo_path: Path, history: tuple[str, str]
) -> None:
    target = repo_path / "logo.bin"
    target.write_bytes(b"\xff\xfe\x00\x80")
    from dulwich import porcelain

    porcelain.add(str(repo_path), [str(target)])
    sha = porcelain.commit(
        str(repo_path), message=b"Add logo", author=b"T <t@x>", committer=b"T <t@x>"
    ).decode()

    with pytest.raises(GitError, match="UTF-8"):
        LocalGitSource(str(repo_path)).read_file(sha, "logo.bin")


def test_local_git_source_contains_ancestor_not_descendant(
    repo_path: Path, history: tuple[str, str]
) -> None:
    first, second = history
    source = LocalGitSource(str(repo_path))

    assert source.contains(second, first) is True
    assert source.contains(first, second) is False
    assert source.contains(first, first) is True


def test_local_git_source_contains_missing_commit_raises(
    repo_path: Path, history: tuple[str, str]
) -> None:
    with pytest.raises(GitError, match="not in the repository"):
        LocalGitSource(str(repo_path)).contains(history[1], "0badc0de" * 5)


@pytest.fixture
def bundled(repo_path: Path) -> str:
    """apps/web with an executable script, a symlink and a subdirectory, beside apps/db."""
    web = repo_path / "apps" / "web"
    (web / "conf").mkdir(parents=True)
    (web / "compose.yaml").write_text(V1)
    (web / "conf" / "nginx.conf").write_text("events {}\n")
    (web / "run.sh").write_text("#!/bin/sh\n")
    (web / "run.sh").chmod(0o755)
    (web / "nginx.conf").symlink_to("conf/nginx.conf")
    (repo_path / "apps" / "db").mkdir()
    (repo_path / "apps" / "db" / "compose.yaml").write_text(V2)
    porcelain.add(str(repo_path), [str(p) for p in repo_path.rglob("*") if ".git" not in p.parts])
    author = b"Ferry Tests <tests@ferry.invalid>"
    return porcelain.commit(
        str(repo_path), message=b"bundle", author=author, committer=author
    ).decode()


def test_local_git_source_read_tree_lists_below_the_directory_with_modes(
    repo_path: Path, bundled: str
) -> None:
    entries = LocalGitSource(str(repo_path)).read_tree(bundled, "apps/web")

    assert [(e.path, oct(e.mode)) for e in entries] == [
        ("apps/web/compose.yaml", oct(GIT_FILE)),
        ("apps/web/conf/nginx.conf", oct(GIT_FILE)),
        ("apps/web/nginx.conf", oct(GIT_SYMLINK)),
        ("apps/web/run.sh", oct(GIT_EXECUTABLE)),
    ]
    assert entries[0].blob == blob_id(V1.encode())


def test_local_git_source_read_blob_gives_content_and_symlink_target(
    repo_path: Path, bundled: str
) -> None:
    source = LocalGitSource(str(repo_path))
    entries = {e.path: e for e in source.read_tree(bundled, "apps/web")}

    assert source.read_blob(bundled, entries["apps/web/run.sh"]) == b"#!/bin/sh\n"
    assert source.read_blob(bundled, entries["apps/web/nginx.conf"]) == b"conf/nginx.conf"


@pytest.mark.parametrize("directory", ["apps/api", "apps/web/compose.yaml"])
def test_local_git_source_read_tree_not_a_directory_raises_git_error(
    repo_path: Path, bundled: str, directory: str
) -> None:
    with pytest.raises(GitError, match=f"{directory} is not a directory at commit"):
        LocalGitSource(str(repo_path)).read_tree(bundled, directory)


def test_local_git_source_whole_repository_bundle_resolves_the_symlink(
    repo_path: Path, bundled: str
) -> None:
    source = LocalGitSource(str(repo_path))
    application = Application(
        id="app_1",
        name="web",
        repository_id="repo_1",
        agent_id="agt_1",
        branch="main",
        path="apps/web/compose.yaml",
        root=".",
    )
    limits = BundleLimits(max_files=10, max_bytes=1000)

    listed = list_bundle(source, bundled, application, limits)
    files = {f.path: f for f in read_bundle(source, bundled, listed, limits)}

    assert sorted(files) == [
        "apps/db/compose.yaml",
        "apps/web/compose.yaml",
        "apps/web/conf/nginx.conf",
        "apps/web/nginx.conf",
        "apps/web/run.sh",
    ]
    assert files["apps/web/nginx.conf"].data == b"events {}\n"
    assert files["apps/web/run.sh"].executable
    assert listed.digest == digest(files.values())
