"""RemoteGitSource against real git servers on loopback, started by the tests:

- HTTPS: `git http-backend` (the CGI program git ships) behind a small HTTP server that demands
  Basic authentication, the way a git host does;
- SSH: OpenSSH's `sshd` (Debian package openssh-server) with a generated host key and a real
  key pair in its authorized_keys. Its forced command logs every git command before running it,
  so the tests count connections on the server side. Without sshd these tests skip with the
  reason, and fail in CI (CI=true), where the package must be installed.

Repositories are real bare repositories made with the git CLI.
"""

from __future__ import annotations

import base64
import os
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from ferry.domain.models import CommitInfo, CredentialKind, RepositoryCredentials
from ferry.errors import GitError
from ferry.git.remote import RemoteGitSource, parse_remote_url
from ferry.git.source import ProviderSource
from tests.sshd import key_pair, start_sshd

LOOPBACK = ["127.0.0.0/8"]
COMPOSE = "apps/web/compose.yaml"
V1 = "services:\n  web:\n    image: busybox:1.36\n"
V2 = "services:\n  web:\n    image: busybox:1.37\n"
USERNAME = "deploy"
PASSWORD = "correct horse battery staple"
TOKEN = "glpat-loopback-token"


def git(*args: str, cwd: Path | None = None) -> str:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(cwd or Path.cwd()),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "Mona Lisa",
        "GIT_AUTHOR_EMAIL": "mona@octo-org.example",
        "GIT_COMMITTER_NAME": "Mona Lisa",
        "GIT_COMMITTER_EMAIL": "mona@octo-org.example",
    }
    done = subprocess.run(
        ["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True
    )
    return done.stdout.strip()


@dataclass
class Upstream:
    """A bare repository (served) and the working copy that pushes to it."""

    bare: Path
    work: Path
    first: str
    second: str

    def commit(self, path: str, content: str, message: str, branch: str = "main") -> str:
        target = self.work / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
        git("add", path, cwd=self.work)
        git("commit", "-q", "-m", message, cwd=self.work)
        git("push", "-q", str(self.bare), f"HEAD:refs/heads/{branch}", cwd=self.work)
        return git("rev-parse", "HEAD", cwd=self.work)


@pytest.fixture
def upstream(tmp_path: Path) -> Upstream:
    """deploy-config.git: main with two commits, release/1.0 at the first."""
    root = tmp_path / "srv"
    root.mkdir()
    bare = root / "deploy-config.git"
    git("init", "-q", "--bare", "-b", "main", str(bare), cwd=tmp_path)
    work = tmp_path / "work"
    git("init", "-q", "-b", "main", str(work), cwd=tmp_path)
    repo = Upstream(bare=bare, work=work, first="", second="")
    repo.first = repo.commit(COMPOSE, V1, "Add web")
    git("push", "-q", str(bare), "HEAD:refs/heads/release/1.0", cwd=work)
    repo.second = repo.commit(COMPOSE, V2, "Bump busybox\n\nTo 1.37.")
    return repo


# --- HTTPS through git http-backend -------------------------------------------------------------


@dataclass
class GitHttpServer:
    """git http-backend behind Basic authentication; remembers every request."""

    project_root: Path
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    pack_requests: int = 0

    def __post_init__(self) -> None:
        backend = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_GET(self) -> None:
                backend.handle(self)

            def do_POST(self) -> None:
                backend.handle(self)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/deploy-config.git"

    def connections(self) -> int:
        """Fetches and ls-remotes started (each begins with a ref discovery)."""
        return sum(
            1
            for _method, path, _ in self.requests
            if path.endswith("/info/refs?service=git-upload-pack")
        )

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        headers = {name.lower(): value for name, value in handler.headers.items()}
        self.requests.append((handler.command, handler.path, headers))
        user = self._authenticated(headers.get("authorization", ""))
        if user is None:
            handler.send_response(401)
            handler.send_header("WWW-Authenticate", 'Basic realm="git"')
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
        path, _, query = handler.path.partition("?")
        body = handler.rfile.read(int(headers.get("content-length") or 0))
        if b"command=fetch" in body:
            self.pack_requests += 1
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "GIT_PROJECT_ROOT": str(self.project_root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "GIT_CONFIG_NOSYSTEM": "1",
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "REQUEST_METHOD": handler.command,
            "CONTENT_TYPE": headers.get("content-type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_USER": user,
            "REMOTE_ADDR": "127.0.0.1",
            "GIT_PROTOCOL": headers.get("git-protocol", ""),
            "HTTP_CONTENT_ENCODING": headers.get("content-encoding", ""),
        }
        done = subprocess.run(
            ["git", "http-backend"], input=body, env=env, capture_output=True, check=False
        )
        head, _, payload = done.stdout.partition(b"\r\n\r\n")
        status = 200
        cgi_headers = []
        for line in head.decode("latin-1").split("\r\n"):
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.split()[0])
            elif name:
                cgi_headers.append((name, value.strip()))
        handler.send_response(status)
        for name, value in cgi_headers:
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)

    @staticmethod
    def _authenticated(authorization: str) -> str | None:
        scheme, _, encoded = authorization.partition(" ")
        if scheme != "Basic":
            return None
        user, _, password = base64.b64decode(encoded).decode().partition(":")
        if (user, password) == (USERNAME, PASSWORD) or password == TOKEN:
            return user
        return None

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


@pytest.fixture
def http_server(upstream: Upstream) -> Iterator[GitHttpServer]:
    server = GitHttpServer(upstream.bare.parent)
    yield server
    server.close()


BASIC = RepositoryCredentials(kind=CredentialKind.BASIC, username=USERNAME, secret=PASSWORD)


def https_source(
    server: GitHttpServer,
    cache: Path,
    credentials: RepositoryCredentials | None = BASIC,
) -> RemoteGitSource:
    return RemoteGitSource(server.url, credentials, cache, allow=LOOPBACK)


def test_remote_git_source_https_latest_commit_returns_head_sha_and_message(
    upstream: Upstream, http_server: GitHttpServer, tmp_path: Path
) -> None:
    head = https_source(http_server, tmp_path / "cache").latest_commit("main")

    assert head == CommitInfo(sha=upstream.second, message="Bump busybox\n\nTo 1.37.")
    expected = base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()
    assert http_server.requests[-1][2]["authorization"] == f"Basic {expected}"
    assert http_server.requests[-1][2]["git-protocol"] == "version=2"


def test_remote_git_source_https_read_file_older_commit_fetches_it_by_sha(
    upstream: Upstream, http_server: GitHttpServer, tmp_path: Path
) -> None:
    source = https_source(http_server, tmp_path / "cache")
    source.latest_commit("main")

    assert source.read_file(upstream.first, COMPOSE) == V1
    assert source.commit(upstream.first) == CommitInfo(sha=upstream.first, message="Add web")


def test_remote_git_source_https_read_tree_and_blob_of_an_older_commit(
    upstream: Upstream, http_server: GitHttpServer, tmp_path: Path
) -> None:
    source = https_source(http_server, tmp_path / "cache")
    directory = COMPOSE.rsplit("/", 1)[0]

    entries = source.read_tree(upstream.first, directory)

    assert [entry.path for entry in entries] == [COMPOSE]
    assert source.read_blob(upstream.first, entries[0]) == V1.encode()


def test_remote_git_source_https_token_sent_as_password(
    upstream: Upstream, http_server: GitHttpServer, tmp_path: Path
) -> None:
    credentials = RepositoryCredentials(kind=CredentialKind.TOKEN, secret=TOKEN)

    head = https_source(http_server, tmp_path / "cache", credentials).latest_commit("main")

    assert head.sha == upstream.second
    expected = base64.b64encode(f"x-access-token:{TOKEN}".encode()).decode()
    assert http_server.requests[-1][2]["authorization"] == f"Basic {expected}"


def test_remote_git_source_https_missing_branch_raises_git_error(
    http_server: GitHttpServer, tmp_path: Path
) -> None:
    with pytest.raises(GitError, match="branch 'no-such-branch' does not exist"):
        https_source(http_server, tmp_path / "cache").latest_commit("no-such-branch")


def test_remote_git_source_https_missing_commit_raises_git_error_after_one_fetch(
    http_server: GitHttpServer, tmp_path: Path
) -> None:
    missing = "0badc0de" * 5

    with pytest.raises(GitError, match=f"commit {missing} is not in"):
        https_source(http_server, tmp_path / "cache").read_file(missing, COMPOSE)

    assert http_server.connections() == 1


def test_remote_git_source_https_missing_file_raises_git_error(
    upstream: Upstream, http_server: GitHttpServer, tmp_path: Path
) -> None:
    with pytest.raises(GitError, match=r"apps/api/compose\.yaml does not exist"):
        https_source(http_server, tmp_path / "cache").read_file(
            upstream.second, "apps/api/compose.yaml"
        )


def test_remote_git_source_https_wrong_password_raises_git_error_naming_credentials(
    http_server: GitHttpServer, tmp_path: Path
) -> None:
    wrong = RepositoryCredentials(kind=CredentialKind.BASIC, username=USERNAME, secret="nope")

    with pytest.raises(GitError, match="rejected the repository's credentials"):
        https_source(http_server, tmp_path / "cache", wrong).latest_commit("main")


def test_remote_git_source_https_without_credentials_raises_git_error_asking_for_them(
    http_server: GitHttpServer, tmp_path: Path
) -> None:
    with pytest.raises(GitError, match="requires credentials"):
        https_source(http_server, tmp_path / "cache", None).latest_commit("main")


def test_remote_git_source_https_cached_commit_second_source_reads_without_network(
    upstream: Upstream, http_server: GitHttpServer, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    first = https_source(http_server, cache)
    first.latest_commit("main")
    first.read_file(upstream.first, COMPOSE)
    seen = len(http_server.requests)

    second = https_source(http_server, cache)

    assert second.cache_path == first.cache_path
    assert (second.cache_path / "objects").is_dir()
    assert second.read_file(upstream.second, COMPOSE) == V2
    assert second.read_file(upstream.first, COMPOSE) == V1
    assert len(http_server.requests) == seen


def test_remote_git_source_https_latest_commit_after_push_fetches_new_head(
    upstream: Upstream, http_server: GitHttpServer, tmp_path: Path
) -> None:
    source = https_source(http_server, tmp_path / "cache")
    source.latest_commit("main")
    third = upstream.commit(COMPOSE, V1, "Roll back busybox")

    assert source.latest_commit("main") == CommitInfo(sha=third, message="Roll back busybox")
    assert source.read_file(third, COMPOSE) == V1


def test_remote_git_source_https_latest_commit_unchanged_head_fetches_no_pack(
    http_server: GitHttpServer, tmp_path: Path
) -> None:
    source = https_source(http_server, tmp_path / "cache")
    source.latest_commit("main")
    assert (http_server.connections(), http_server.pack_requests) == (1, 1)

    source.latest_commit("main")

    assert (http_server.connections(), http_server.pack_requests) == (2, 1)


def test_remote_git_source_https_unknown_repository_raises_git_error(
    http_server: GitHttpServer, tmp_path: Path
) -> None:
    url = http_server.url.replace("deploy-config.git", "nothing-here.git")

    with pytest.raises(GitError, match="no git repository at"):
        RemoteGitSource(url, BASIC, tmp_path / "cache", allow=LOOPBACK).latest_commit("main")


def test_remote_git_source_https_list_branches_and_tree(
    upstream: Upstream, http_server: GitHttpServer, tmp_path: Path
) -> None:
    source = https_source(http_server, tmp_path / "cache")

    assert source.list_branches() == ["main", "release/1.0"]
    assert source.list_tree(upstream.second) == [COMPOSE]
    assert source.list_tree(upstream.second, "apps/db") == []


def test_remote_git_source_https_branches_containing_walks_fetched_history(
    upstream: Upstream, http_server: GitHttpServer, tmp_path: Path
) -> None:
    source: ProviderSource = https_source(http_server, tmp_path / "cache")
    source.latest_commit("main")

    assert source.branches_containing(upstream.first) == ["main", "release/1.0"]
    assert source.branches_containing(upstream.second) == ["main"]


def test_remote_git_source_https_branches_containing_missing_commit_raises_git_error(
    http_server: GitHttpServer, tmp_path: Path
) -> None:
    with pytest.raises(GitError, match="is not in"):
        https_source(http_server, tmp_path / "cache").branches_containing("0badc0de" * 5)


def test_remote_git_source_https_loopback_without_allow_list_is_refused(
    http_server: GitHttpServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FERRY_OUTBOUND_ALLOW", raising=False)
    source = RemoteGitSource(http_server.url, BASIC, tmp_path / "cache")

    with pytest.raises(GitError, match="not a public address"):
        source.latest_commit("main")

    assert http_server.requests == []


# --- SSH through OpenSSH's sshd -----------------------------------------------------------------


@dataclass
class SshServer:
    port: int
    private_key: str
    host_public_key: str
    commands_log: Path
    v0_marker: Path

    @property
    def credentials(self) -> RepositoryCredentials:
        return RepositoryCredentials(kind=CredentialKind.SSH_KEY, secret=self.private_key)

    def url(self, upstream: Upstream) -> str:
        return f"ssh://{_login()}@127.0.0.1:{self.port}{upstream.bare}"

    def connections(self, upstream: Upstream) -> list[str]:
        if not self.commands_log.exists():
            return []
        lines = self.commands_log.read_text().splitlines()
        return [line for line in lines if str(upstream.bare) in line]


def _login() -> str:
    import pwd

    return pwd.getpwuid(os.geteuid()).pw_name


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshServer]:
    """A real sshd on a free loopback port, for the current user only, key auth only."""
    directory = tmp_path_factory.mktemp("sshd")
    log = directory / "commands.log"
    marker = directory / "protocol-v0"
    # The forced command logs what the client asked for (and the protocol it asked in), and
    # drops GIT_PROTOCOL while the v0 marker exists, to play a server without protocol v2.
    started = start_sshd(
        directory,
        f'if [ -e "{marker}" ]; then unset GIT_PROTOCOL; fi\n'
        f'echo "${{GIT_PROTOCOL:-v0}} $SSH_ORIGINAL_COMMAND" >> "{log}"\n'
        'exec /bin/sh -c "$SSH_ORIGINAL_COMMAND"\n',
        extra_config="AcceptEnv GIT_PROTOCOL\nLogLevel VERBOSE\n",
    )
    server = SshServer(
        port=started.port,
        private_key=started.client_private_key,
        host_public_key=started.host_public_key,
        commands_log=log,
        v0_marker=marker,
    )
    try:
        yield server
    finally:
        started.stop()


def ssh_source(
    sshd: SshServer,
    upstream: Upstream,
    cache: Path,
    credentials: RepositoryCredentials | None = None,
) -> RemoteGitSource:
    return RemoteGitSource(
        sshd.url(upstream), credentials or sshd.credentials, cache, allow=LOOPBACK
    )


def test_remote_git_source_ssh_latest_commit_returns_head_sha_and_message(
    sshd: SshServer, upstream: Upstream, tmp_path: Path
) -> None:
    head = ssh_source(sshd, upstream, tmp_path / "cache").latest_commit("main")

    assert head == CommitInfo(sha=upstream.second, message="Bump busybox\n\nTo 1.37.")


def test_remote_git_source_ssh_read_file_older_commit_fetches_it_by_sha(
    sshd: SshServer, upstream: Upstream, tmp_path: Path
) -> None:
    source = ssh_source(sshd, upstream, tmp_path / "cache")
    source.latest_commit("main")

    assert source.read_file(upstream.first, COMPOSE) == V1
    assert source.read_file(upstream.second, COMPOSE) == V2
    connections = sshd.connections(upstream)
    assert len(connections) == 2
    assert all(line.startswith("version=2 git-upload-pack") for line in connections)


def test_remote_git_source_ssh_protocol_v0_server_older_commit_fetches_history(
    sshd: SshServer, upstream: Upstream, tmp_path: Path
) -> None:
    sshd.v0_marker.touch()
    try:
        source = ssh_source(sshd, upstream, tmp_path / "cache")
        source.latest_commit("main")

        assert source.read_file(upstream.first, COMPOSE) == V1
    finally:
        sshd.v0_marker.unlink()
    assert all(line.startswith("v0 ") for line in sshd.connections(upstream))


def test_remote_git_source_ssh_missing_branch_raises_git_error(
    sshd: SshServer, upstream: Upstream, tmp_path: Path
) -> None:
    with pytest.raises(GitError, match="branch 'no-such-branch' does not exist"):
        ssh_source(sshd, upstream, tmp_path / "cache").latest_commit("no-such-branch")


def test_remote_git_source_ssh_missing_commit_raises_git_error_after_one_fetch(
    sshd: SshServer, upstream: Upstream, tmp_path: Path
) -> None:
    missing = "0badc0de" * 5

    with pytest.raises(GitError, match=f"commit {missing} is not in"):
        ssh_source(sshd, upstream, tmp_path / "cache").commit(missing)

    assert len(sshd.connections(upstream)) == 1


def test_remote_git_source_ssh_unknown_repository_raises_git_error_with_server_reason(
    sshd: SshServer, upstream: Upstream, tmp_path: Path
) -> None:
    url = sshd.url(upstream).replace("deploy-config.git", "nothing-here.git")
    source = RemoteGitSource(url, sshd.credentials, tmp_path / "cache", allow=LOOPBACK)

    with pytest.raises(GitError, match="does not appear to be a git repository"):
        source.latest_commit("main")


def test_remote_git_source_ssh_wrong_key_raises_git_error_naming_authentication(
    sshd: SshServer, upstream: Upstream, tmp_path: Path
) -> None:
    stranger, _public = key_pair()
    wrong = RepositoryCredentials(kind=CredentialKind.SSH_KEY, secret=stranger)

    with pytest.raises(GitError, match=r"SSH authentication to 127\.0\.0\.1 failed"):
        ssh_source(sshd, upstream, tmp_path / "cache", wrong).latest_commit("main")

    assert sshd.connections(upstream) == []


def test_remote_git_source_ssh_cached_commits_second_source_reads_without_connecting(
    sshd: SshServer, upstream: Upstream, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    first = ssh_source(sshd, upstream, cache)
    first.latest_commit("main")
    first.read_file(upstream.first, COMPOSE)
    connections = len(sshd.connections(upstream))

    second = ssh_source(sshd, upstream, cache)

    assert second.cache_path == first.cache_path
    assert (second.cache_path / "objects").is_dir()
    assert second.read_file(upstream.second, COMPOSE) == V2
    assert second.commit(upstream.first).message == "Add web"
    assert len(sshd.connections(upstream)) == connections
    second.latest_commit("main")
    assert len(sshd.connections(upstream)) == connections + 1


def test_remote_git_source_ssh_branches_containing_walks_fetched_history(
    sshd: SshServer, upstream: Upstream, tmp_path: Path
) -> None:
    source = ssh_source(sshd, upstream, tmp_path / "cache")
    source.latest_commit("main")
    feature = upstream.commit("apps/web/.env", "TAG=1\n", "Try env file", branch="feature")

    assert source.branches_containing(upstream.first) == ["feature", "main", "release/1.0"]
    assert source.branches_containing(feature) == ["feature"]


def test_remote_git_source_ssh_first_connection_records_host_key(
    sshd: SshServer, upstream: Upstream, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"

    ssh_source(sshd, upstream, cache).latest_commit("main")

    known_hosts = (cache / "known_hosts").read_text()
    key_type, key_data = sshd.host_public_key.split()[:2]
    assert f"[127.0.0.1]:{sshd.port} {key_type} {key_data}" in known_hosts


def test_remote_git_source_ssh_changed_host_key_raises_git_error(
    sshd: SshServer, upstream: Upstream, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    _private, impostor = key_pair()
    key_type, key_data = impostor.split()[:2]
    (cache / "known_hosts").write_text(f"[127.0.0.1]:{sshd.port} {key_type} {key_data}\n")

    with pytest.raises(GitError, match=r"host key of 127\.0\.0\.1 changed"):
        ssh_source(sshd, upstream, cache).latest_commit("main")

    assert sshd.connections(upstream) == []


def test_remote_git_source_ssh_loopback_without_allow_list_is_refused(
    sshd: SshServer, upstream: Upstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FERRY_OUTBOUND_ALLOW", raising=False)
    source = RemoteGitSource(sshd.url(upstream), sshd.credentials, tmp_path / "cache")

    with pytest.raises(GitError, match="not a public address"):
        source.latest_commit("main")


# --- URLs and credentials -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "transport", "host", "port", "path", "username"),
    [
        (
            "https://git.example.org/team/app.git",
            "http",
            "git.example.org",
            None,
            "/team/app.git",
            None,
        ),
        (
            "ssh://git@git.example.org:2222/srv/app.git",
            "ssh",
            "git.example.org",
            2222,
            "/srv/app.git",
            "git",
        ),
        (
            "git@github.com:octo-org/deploy-config.git",
            "ssh",
            "github.com",
            None,
            "octo-org/deploy-config.git",
            "git",
        ),
        (
            "github.com:octo-org/deploy-config.git",
            "ssh",
            "github.com",
            None,
            "octo-org/deploy-config.git",
            None,
        ),
    ],
)
def test_parse_remote_url_forms_yield_transport_and_path(
    url: str, transport: str, host: str, port: int | None, path: str, username: str | None
) -> None:
    address = parse_remote_url(url)

    assert (address.transport, address.host, address.port, address.path, address.username) == (
        transport,
        host,
        port,
        path,
        username,
    )


def test_parse_remote_url_display_drops_password() -> None:
    address = parse_remote_url("https://mona:hunter2@git.example.org/team/app.git")

    assert address.password == "hunter2"
    assert "hunter2" not in address.display


@pytest.mark.parametrize("url", ["ftp://git.example.org/app.git", "/srv/app.git", "file:///srv/x"])
def test_parse_remote_url_unsupported_scheme_raises_git_error(url: str) -> None:
    with pytest.raises(GitError):
        parse_remote_url(url)


def test_remote_git_source_ssh_url_with_token_raises_git_error(tmp_path: Path) -> None:
    with pytest.raises(GitError, match="needs an SSH deploy key"):
        RemoteGitSource(
            "git@github.com:octo-org/deploy-config.git",
            RepositoryCredentials(kind=CredentialKind.TOKEN, secret="t"),
            tmp_path,
        )


def test_remote_git_source_https_url_with_deploy_key_raises_git_error(tmp_path: Path) -> None:
    with pytest.raises(GitError, match="deploy key only works with an SSH URL"):
        RemoteGitSource(
            "https://github.com/octo-org/deploy-config.git",
            RepositoryCredentials(kind=CredentialKind.SSH_KEY, secret="key"),
            tmp_path,
        )


def test_remote_git_source_different_credentials_use_separate_caches(tmp_path: Path) -> None:
    url = "https://git.example.org/team/app.git"
    one = RemoteGitSource(
        url, RepositoryCredentials(kind=CredentialKind.TOKEN, secret="a"), tmp_path
    )
    two = RemoteGitSource(
        url, RepositoryCredentials(kind=CredentialKind.TOKEN, secret="b"), tmp_path
    )

    assert one.cache_path != two.cache_path


def test_remote_git_source_encrypted_deploy_key_raises_git_error(tmp_path: Path) -> None:
    key = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.BestAvailableEncryption(b"passphrase"),
    )
    source = RemoteGitSource(
        "ssh://git@127.0.0.1:1/srv/app.git",
        RepositoryCredentials(kind=CredentialKind.SSH_KEY, secret=key.decode()),
        tmp_path,
        allow=LOOPBACK,
    )

    with pytest.raises(GitError, match="encrypted"):
        source.latest_commit("main")
