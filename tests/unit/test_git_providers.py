"""The REST provider adapters against a loopback server replaying recorded API answers.

Each file under tests/fixtures/providers/<provider>/ is one recorded exchange: the request
(method, raw path, query, and any header that selects the answer) and the response (status,
headers, JSON or text body), with `recorded_from` naming the origin it was recorded against; the
replay server serves it from its own origin instead, rewriting that origin in headers and bodies
(pagination links included). A request no loaded exchange matches fails the test.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from ferry.domain.bundle import (
    BundleError,
    BundleFile,
    BundleLimits,
    blob_id,
    digest,
)
from ferry.domain.models import Application, CommitInfo, CredentialKind, RepositoryCredentials
from ferry.errors import GitError, TransientError
from ferry.git.http import ProviderRateLimited, retry_after_seconds
from ferry.git.providers.azure import AzureDevOpsSource
from ferry.git.providers.base import ProviderNotFound
from ferry.git.providers.factory import parse_repository_url, provider_source
from ferry.git.providers.gitea import GiteaSource
from ferry.git.providers.github import GitHubSource
from ferry.git.providers.gitlab import GitLabSource
from ferry.git.source import ProviderSource
from ferry.sync.bundle import list_bundle, read_bundle

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "providers"
LOOPBACK = ["127.0.0.0/8"]

C0 = "5d2b8e1f9a3c7e0b4d6f8a2c1e3b5d7f9a0c2e4b"
C1 = "3f1c9a0e5b7d2c4a6e8f0b1d3c5e7a9b1d3f5a7c"
C2 = "8e4b2d6f0a1c3e5b7d9f1a3c5e7b9d1f3a5c7e9b"
C5 = "c7a9e1b3d5f7091b3d5f7a9c1e3b5d7f9a1c3e5d"
C6 = "e2f4a6c8e0b2d4f6a8c0e2b4d6f8a0c2e4b6d8fa"
MISSING = "0badc0de" * 5
C2_MESSAGE = "Bump web to nginx 1.27\n\nPinned by digest so every host runs the same image."
COMPOSE_C2 = (
    "services:\n"
    "  web:\n"
    "    image: nginx:1.27@sha256:"
    "6784fb0834aa7dbbe12e3d7471e69c290df3e6ba810dc38b34ae33d3c1c05f7d\n"
    "    ports:\n"
    '      - "8080:80"\n'
    "    volumes:\n"
    "      - ./nginx.conf:/etc/nginx/conf.d/default.conf:ro\n"
    "    restart: unless-stopped\n"
)
FILES_C2 = [
    ".github/workflows/ferry.yml",
    "README.md",
    "apps/db/compose.yaml",
    "apps/web/compose.yaml",
    "apps/web/nginx.conf",
]

GITHUB_TOKEN = "ghp_replay-test"
GITLAB_TOKEN = "glpat-replay-test"
GITEA_TOKEN = "5f0c2a8e9d1b4c7a6e3f2d1c0b9a8e7f6d5c4b3a"
AZURE_PAT = "azure-devops-replay-pat"


def token(secret: str) -> RepositoryCredentials:
    return RepositoryCredentials(kind=CredentialKind.TOKEN, secret=secret)


@dataclass(frozen=True)
class Received:
    """A request as the replay server saw it (header names lower-cased)."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]


@dataclass
class Exchange:
    method: str
    path: str
    query: dict[str, str]
    match_headers: dict[str, str]
    status: int
    headers: dict[str, str]
    body: bytes
    recorded_from: str

    @classmethod
    def load(cls, provider: str, name: str) -> Exchange:
        data = json.loads((FIXTURES / provider / f"{name}.json").read_text())
        request, response = data["request"], data["response"]
        if "json" in response:
            body = json.dumps(response["json"]).encode()
        else:
            body = str(response.get("text", "")).encode()
        return cls(
            method=request["method"],
            path=request["path"],
            query=dict(request.get("query", {})),
            match_headers={k.lower(): v for k, v in request.get("headers", {}).items()},
            status=int(response["status"]),
            headers=dict(response["headers"]),
            body=body,
            recorded_from=data["recorded_from"],
        )

    def matches(self, received: Received) -> bool:
        return (
            self.method == received.method
            and self.path == received.path
            and self.query == received.query
            and all(received.headers.get(k) == v for k, v in self.match_headers.items())
        )


@dataclass
class ReplayServer:
    """Serves loaded exchanges on 127.0.0.1; remembers every request."""

    exchanges: list[Exchange] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    unmatched: list[Received] = field(default_factory=list)

    def __post_init__(self) -> None:
        replay = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_GET(self) -> None:
                replay.answer(self)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def play(self, provider: str, *names: str) -> None:
        self.exchanges.extend(Exchange.load(provider, name) for name in names)

    def requests_to(self, path_part: str) -> list[Received]:
        return [request for request in self.received if path_part in request.path]

    def answer(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        received = Received(
            method=handler.command,
            path=parts.path,
            query=dict(parse_qsl(parts.query, keep_blank_values=True)),
            headers={name.lower(): value for name, value in handler.headers.items()},
        )
        self.received.append(received)
        exchange = next((e for e in self.exchanges if e.matches(received)), None)
        if exchange is None:
            self.unmatched.append(received)
            handler.send_response(418)
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
        body = exchange.body.replace(exchange.recorded_from.encode(), self.base_url.encode())
        handler.send_response(exchange.status)
        for name, value in exchange.headers.items():
            handler.send_header(name, value.replace(exchange.recorded_from, self.base_url))
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


@pytest.fixture
def replay() -> Iterator[ReplayServer]:
    server = ReplayServer()
    yield server
    server.close()
    assert not server.unmatched, f"requests without a recorded answer: {server.unmatched}"


def github(
    replay: ReplayServer, credentials: RepositoryCredentials | None = None
) -> ProviderSource:
    return provider_source(
        "github",
        "https://github.com/octo-org/deploy-config.git",
        credentials if credentials is not None else token(GITHUB_TOKEN),
        api_base=replay.base_url,
        allow=LOOPBACK,
    )


def gitlab(replay: ReplayServer) -> ProviderSource:
    return provider_source(
        "gitlab",
        "https://gitlab.com/octo-org/infra/deploy-config",
        token(GITLAB_TOKEN),
        api_base=f"{replay.base_url}/api/v4",
        allow=LOOPBACK,
    )


def gitea(replay: ReplayServer, provider: str = "gitea") -> ProviderSource:
    return provider_source(
        provider,
        "https://gitea.octo-org.example/octo-org/deploy-config.git",
        token(GITEA_TOKEN),
        api_base=f"{replay.base_url}/api/v1",
        allow=LOOPBACK,
    )


def azure(replay: ReplayServer) -> ProviderSource:
    return provider_source(
        "azure_devops",
        "https://octo-org@dev.azure.com/octo-org/Deploy%20Config/_git/deploy-config",
        token(AZURE_PAT),
        api_base=f"{replay.base_url}/octo-org",
        allow=LOOPBACK,
    )


# --- GitHub -------------------------------------------------------------------------------------


def test_github_latest_commit_main_returns_head_sha_and_message(replay: ReplayServer) -> None:
    replay.play("github", "commit-main")

    assert github(replay).latest_commit("main") == CommitInfo(sha=C2, message=C2_MESSAGE)


def test_github_requests_token_sent_as_bearer_with_pinned_api_version(
    replay: ReplayServer,
) -> None:
    replay.play("github", "commit-main")

    github(replay).latest_commit("main")

    [request] = replay.received
    assert request.headers["authorization"] == f"Bearer {GITHUB_TOKEN}"
    assert request.headers["accept"] == "application/vnd.github+json"
    assert request.headers["x-github-api-version"] == "2022-11-28"
    assert request.headers["user-agent"]


def test_github_requests_basic_credentials_sent_as_basic_auth(replay: ReplayServer) -> None:
    replay.play("github", "commit-main")
    credentials = RepositoryCredentials(
        kind=CredentialKind.BASIC, username="mona", secret=GITHUB_TOKEN
    )

    github(replay, credentials).latest_commit("main")

    expected = base64.b64encode(f"mona:{GITHUB_TOKEN}".encode()).decode()
    assert replay.received[0].headers["authorization"] == f"Basic {expected}"


def test_github_latest_commit_unknown_branch_raises_git_error(replay: ReplayServer) -> None:
    replay.play("github", "commit-branch-missing")

    with pytest.raises(ProviderNotFound, match="branch 'no-such-branch' does not exist"):
        github(replay).latest_commit("no-such-branch")


def test_github_latest_commit_invalid_branch_name_raises_without_request(
    replay: ReplayServer,
) -> None:
    with pytest.raises(GitError, match="not a valid branch name"):
        github(replay).latest_commit("main..evil")

    assert replay.received == []


def test_github_commit_known_sha_returns_its_message(replay: ReplayServer) -> None:
    replay.play("github", "commit-c1")

    assert github(replay).commit(C1) == CommitInfo(sha=C1, message="Add web service")


def test_github_commit_missing_sha_raises_git_error(replay: ReplayServer) -> None:
    replay.play("github", "commit-missing")

    with pytest.raises(GitError, match=f"commit {MISSING} is not in octo-org/deploy-config"):
        github(replay).commit(MISSING)


def test_github_commit_short_sha_raises_without_request(replay: ReplayServer) -> None:
    with pytest.raises(GitError, match="not a full commit SHA"):
        github(replay).commit(C1[:12])

    assert replay.received == []


def test_github_read_file_at_commit_decodes_base64_content(replay: ReplayServer) -> None:
    replay.play("github", "contents-compose")

    assert github(replay).read_file(C2, "apps/web/compose.yaml") == COMPOSE_C2
    assert replay.received[0].query == {"ref": C2}


def test_github_read_file_over_one_megabyte_fetches_raw_media_type(replay: ReplayServer) -> None:
    replay.play("github", "contents-large-json", "contents-large-raw")

    assert github(replay).read_file(C2, "apps/web/compose.yaml") == COMPOSE_C2
    assert [r.headers["accept"] for r in replay.received] == [
        "application/vnd.github+json",
        "application/vnd.github.raw+json",
    ]


def test_github_read_file_missing_path_raises_not_found(replay: ReplayServer) -> None:
    replay.play("github", "contents-missing")

    with pytest.raises(ProviderNotFound, match=r"apps/api/compose\.yaml does not exist at commit"):
        github(replay).read_file(C2, "apps/api/compose.yaml")


def test_github_read_file_directory_raises_git_error(replay: ReplayServer) -> None:
    replay.play("github", "contents-directory")

    with pytest.raises(GitError, match="apps/web is not a file"):
        github(replay).read_file(C2, "apps/web")


def test_github_list_branches_two_pages_follows_link_header(replay: ReplayServer) -> None:
    replay.play("github", "branches-page1", "branches-page2")

    branches = github(replay).list_branches()

    assert len(branches) == 103
    assert {"main", "release/1.0", "update-readme"} <= set(branches)
    assert branches == sorted(branches)
    assert [(r.path, r.query) for r in replay.received] == [
        ("/repos/octo-org/deploy-config/branches", {"per_page": "100"}),
        ("/repositories/812345678/branches", {"per_page": "100", "page": "2"}),
    ]
    assert all(r.headers["authorization"] == f"Bearer {GITHUB_TOKEN}" for r in replay.received)


def test_github_list_branches_next_link_off_origin_raises_without_following(
    replay: ReplayServer,
) -> None:
    page = Exchange.load("github", "branches-page1")
    page.headers["link"] = '<https://collector.example.net/steal?page=2>; rel="next"'
    replay.exchanges.append(page)

    with pytest.raises(GitError, match="outside its API"):
        github(replay).list_branches()

    assert len(replay.received) == 1


def test_github_list_tree_recursive_lists_files_without_dirs_or_submodules(
    replay: ReplayServer,
) -> None:
    replay.play("github", "tree-c2-recursive")

    assert github(replay).list_tree(C2) == FILES_C2


def test_github_list_tree_under_path_keeps_only_that_directory(replay: ReplayServer) -> None:
    replay.play("github", "tree-c2-recursive")

    assert github(replay).list_tree(C2, "apps/web") == [
        "apps/web/compose.yaml",
        "apps/web/nginx.conf",
    ]


def test_github_list_tree_truncated_walks_only_needed_subtrees(replay: ReplayServer) -> None:
    replay.play(
        "github", "tree-c1-recursive-truncated", "tree-c1-root", "tree-c1-apps", "tree-c1-apps-web"
    )

    files = github(replay).list_tree(C1, "apps/web")

    assert files == ["apps/web/Caddyfile", "apps/web/compose.yaml"]
    assert len(replay.received) == 4


def test_github_branches_containing_commit_compares_other_branch_heads(
    replay: ReplayServer,
) -> None:
    replay.play(
        "github",
        "commit-c1",
        "branches",
        "compare-main-c1",
        "compare-experiment-c1",
        "compare-gh-pages-c1",
    )

    assert github(replay).branches_containing(C1) == ["main", "release/1.0"]
    compared = [r.path.rsplit("/", 1)[-1] for r in replay.requests_to("/compare/")]
    # release/1.0's head is the commit itself: no comparison needed.
    assert compared == [f"{C5}...{C1}", f"{C6}...{C1}", f"{C2}...{C1}"]


def test_github_branches_containing_missing_commit_raises_git_error(
    replay: ReplayServer,
) -> None:
    replay.play("github", "commit-missing")

    with pytest.raises(GitError, match="is not in"):
        github(replay).branches_containing(MISSING)


def test_github_bad_credentials_raises_git_error_naming_credentials(
    replay: ReplayServer,
) -> None:
    replay.play("github", "error-401-bad-credentials")

    with pytest.raises(GitError, match=r"rejected the repository's credentials.*Bad credentials"):
        github(replay).latest_commit("main")


def test_github_no_credentials_401_raises_git_error_asking_for_token(
    replay: ReplayServer,
) -> None:
    replay.play("github", "error-401-bad-credentials")
    source = provider_source(
        "github",
        "https://github.com/octo-org/deploy-config",
        None,
        api_base=replay.base_url,
        allow=LOOPBACK,
    )

    with pytest.raises(GitError, match="requires credentials"):
        source.latest_commit("main")
    assert "authorization" not in replay.received[0].headers


def test_github_rate_limit_403_raises_transient_error_with_wait(replay: ReplayServer) -> None:
    replay.play("github", "error-403-rate-limit")

    with pytest.raises(ProviderRateLimited, match="rate limit reached") as caught:
        github(replay).latest_commit("main")

    assert isinstance(caught.value, TransientError)
    # The recorded reset lies in the past: the advice is "now".
    assert caught.value.retry_after == 0


def test_github_secondary_rate_limit_429_raises_transient_error_with_retry_after(
    replay: ReplayServer,
) -> None:
    replay.play("github", "error-429-secondary-rate-limit")

    with pytest.raises(ProviderRateLimited, match="retry in 60 s") as caught:
        github(replay).latest_commit("main")

    assert caught.value.retry_after == 60


def test_github_forbidden_with_quota_left_raises_permission_error(replay: ReplayServer) -> None:
    replay.play("github", "error-403-forbidden")

    with pytest.raises(GitError, match="lack permission") as caught:
        github(replay).read_file(C2, "apps/web/compose.yaml")

    assert not isinstance(caught.value, TransientError)
    assert "Resource not accessible by personal access token" in str(caught.value)


def test_github_list_branches_unknown_repository_raises_not_found(replay: ReplayServer) -> None:
    replay.play("github", "error-404-repository")

    with pytest.raises(ProviderNotFound, match="repository octo-org/deploy-config does not"):
        github(replay).list_branches()


def test_github_server_error_raises_transient_error(replay: ReplayServer) -> None:
    replay.play("github", "error-502")

    with pytest.raises(TransientError, match="HTTP 502"):
        github(replay).latest_commit("main")


def test_github_enterprise_latest_commit_uses_api_v3_root(replay: ReplayServer) -> None:
    replay.play("github-enterprise", "commit-main")
    source = provider_source(
        "github",
        "https://ghe.octo-org.example/platform/deploy-config",
        token(GITHUB_TOKEN),
        api_base=f"{replay.base_url}/api/v3",
        allow=LOOPBACK,
    )

    assert source.latest_commit("main").sha == C2
    assert replay.received[0].path == "/api/v3/repos/platform/deploy-config/commits/heads/main"


# --- GitLab -------------------------------------------------------------------------------------


def test_gitlab_latest_commit_main_returns_head_sha_and_message(replay: ReplayServer) -> None:
    replay.play("gitlab", "branch-main")

    head = gitlab(replay).latest_commit("main")

    assert head == CommitInfo(sha=C2, message=C2_MESSAGE)
    [request] = replay.received
    assert request.headers["private-token"] == GITLAB_TOKEN
    assert "authorization" not in request.headers


def test_gitlab_latest_commit_branch_with_slash_encodes_it(replay: ReplayServer) -> None:
    replay.play("gitlab", "branch-release")

    assert gitlab(replay).latest_commit("release/1.0").sha == C1
    assert replay.received[0].path.endswith("/repository/branches/release%2F1.0")


def test_gitlab_latest_commit_unknown_branch_raises_git_error(replay: ReplayServer) -> None:
    replay.play("gitlab", "branch-missing")

    with pytest.raises(ProviderNotFound, match=r"does not exist.*404 Branch Not Found"):
        gitlab(replay).latest_commit("no-such-branch")


def test_gitlab_commit_known_sha_returns_its_message(replay: ReplayServer) -> None:
    replay.play("gitlab", "commit-c1")

    assert gitlab(replay).commit(C1) == CommitInfo(sha=C1, message="Add web service")


def test_gitlab_commit_missing_sha_raises_git_error(replay: ReplayServer) -> None:
    replay.play("gitlab", "commit-missing")

    with pytest.raises(GitError, match="404 Commit Not Found"):
        gitlab(replay).commit(MISSING)


def test_gitlab_read_file_at_commit_returns_raw_text(replay: ReplayServer) -> None:
    replay.play("gitlab", "file-raw-compose")

    assert gitlab(replay).read_file(C2, "apps/web/compose.yaml") == COMPOSE_C2
    assert replay.received[0].path.endswith("/repository/files/apps%2Fweb%2Fcompose.yaml/raw")


def test_gitlab_read_file_missing_path_raises_not_found(replay: ReplayServer) -> None:
    replay.play("gitlab", "file-raw-missing")

    with pytest.raises(ProviderNotFound, match="404 File Not Found"):
        gitlab(replay).read_file(C2, "apps/api/compose.yaml")


def test_gitlab_list_branches_two_pages_follows_link_header(replay: ReplayServer) -> None:
    replay.play("gitlab", "branches-page1", "branches-page2")

    branches = gitlab(replay).list_branches()

    assert len(branches) == 103
    assert {"main", "release/1.0"} <= set(branches)
    assert replay.received[1].path == "/api/v4/projects/48151623/repository/branches"
    assert replay.received[1].headers["private-token"] == GITLAB_TOKEN


def test_gitlab_list_tree_recursive_lists_files_only(replay: ReplayServer) -> None:
    replay.play("gitlab", "tree-c2")

    assert gitlab(replay).list_tree(C2) == FILES_C2


def test_gitlab_list_tree_under_path_asks_gitlab_for_that_path(replay: ReplayServer) -> None:
    replay.play("gitlab", "tree-c2-apps-web")

    assert gitlab(replay).list_tree(C2, "apps/web/") == [
        "apps/web/compose.yaml",
        "apps/web/nginx.conf",
    ]
    assert replay.received[0].query["path"] == "apps/web"


def test_gitlab_list_tree_missing_path_of_known_commit_returns_empty(
    replay: ReplayServer,
) -> None:
    replay.play("gitlab", "tree-c2-missing-path", "commit-c2")

    assert gitlab(replay).list_tree(C2, "apps/api") == []


def test_gitlab_branches_containing_commit_uses_commit_refs(replay: ReplayServer) -> None:
    replay.play("gitlab", "refs-c1")

    assert gitlab(replay).branches_containing(C1) == ["main", "release/1.0"]
    assert replay.received[0].query == {"type": "branch", "per_page": "100"}


def test_gitlab_branches_containing_missing_commit_raises_git_error(
    replay: ReplayServer,
) -> None:
    replay.play("gitlab", "refs-missing")

    with pytest.raises(GitError, match=f"commit {MISSING} is not in"):
        gitlab(replay).branches_containing(MISSING)


def test_gitlab_unauthorized_raises_git_error_naming_credentials(replay: ReplayServer) -> None:
    replay.play("gitlab", "error-401-unauthorized")

    with pytest.raises(GitError, match=r"rejected the repository's credentials.*401 Unauthorized"):
        gitlab(replay).latest_commit("main")


def test_gitlab_forbidden_raises_git_error_naming_permission(replay: ReplayServer) -> None:
    replay.play("gitlab", "error-403-forbidden")

    with pytest.raises(GitError, match="lack permission"):
        gitlab(replay).latest_commit("main")


def test_gitlab_unknown_project_raises_not_found(replay: ReplayServer) -> None:
    replay.play("gitlab", "error-404-project")

    with pytest.raises(ProviderNotFound, match="404 Project Not Found"):
        gitlab(replay).latest_commit("main")


def test_gitlab_rate_limit_429_raises_transient_error_with_retry_after(
    replay: ReplayServer,
) -> None:
    replay.play("gitlab", "error-429-rate-limit")

    with pytest.raises(ProviderRateLimited, match=r"Retry later.*retry in 60 s") as caught:
        gitlab(replay).latest_commit("main")

    assert caught.value.retry_after == 60


def test_gitlab_unavailable_raises_transient_error(replay: ReplayServer) -> None:
    replay.play("gitlab", "error-503")

    with pytest.raises(TransientError, match="HTTP 503"):
        gitlab(replay).latest_commit("main")


def test_gitlab_self_managed_under_sub_path_strips_it_from_project(replay: ReplayServer) -> None:
    replay.play("gitlab-self-managed", "branch-main")
    source = provider_source(
        "gitlab",
        f"{replay.base_url}/gitlab/platform/deploy-config.git",
        token(GITLAB_TOKEN),
        api_base=f"{replay.base_url}/gitlab/api/v4",
        allow=LOOPBACK,
    )

    assert source.latest_commit("main").sha == C2


# --- Gitea / Forgejo ----------------------------------------------------------------------------


def test_gitea_latest_commit_main_returns_head_sha_and_message(replay: ReplayServer) -> None:
    replay.play("gitea", "branch-main")

    head = gitea(replay).latest_commit("main")

    assert head == CommitInfo(sha=C2, message=C2_MESSAGE)
    assert replay.received[0].headers["authorization"] == f"token {GITEA_TOKEN}"


def test_gitea_latest_commit_branch_with_slash_keeps_path(replay: ReplayServer) -> None:
    replay.play("gitea", "branch-release")

    assert gitea(replay).latest_commit("release/1.0").sha == C1


def test_gitea_latest_commit_unknown_branch_raises_git_error(replay: ReplayServer) -> None:
    replay.play("gitea", "branch-missing")

    with pytest.raises(ProviderNotFound, match=r"Gitea answered 404: The target couldn't be found"):
        gitea(replay).latest_commit("no-such-branch")


def test_gitea_commit_known_sha_returns_its_message(replay: ReplayServer) -> None:
    replay.play("gitea", "commit-c1")

    assert gitea(replay).commit(C1) == CommitInfo(sha=C1, message="Add web service")


def test_gitea_commit_missing_sha_raises_git_error(replay: ReplayServer) -> None:
    replay.play("gitea", "commit-missing")

    with pytest.raises(GitError, match=f"commit {MISSING} is not in"):
        gitea(replay).commit(MISSING)


def test_gitea_read_file_at_commit_returns_raw_text(replay: ReplayServer) -> None:
    replay.play("gitea", "raw-compose")

    assert gitea(replay).read_file(C2, "/apps/web/compose.yaml") == COMPOSE_C2


def test_gitea_read_file_missing_path_raises_not_found(replay: ReplayServer) -> None:
    replay.play("gitea", "raw-missing")

    with pytest.raises(ProviderNotFound, match=r"apps/api/compose\.yaml does not exist"):
        gitea(replay).read_file(C2, "apps/api/compose.yaml")


def test_gitea_list_branches_two_pages_follows_link_header(replay: ReplayServer) -> None:
    replay.play("gitea", "branches-page1", "branches-page2")

    branches = gitea(replay).list_branches()

    assert len(branches) == 53
    assert [r.query for r in replay.received] == [{"limit": "50"}, {"limit": "50", "page": "2"}]


def test_gitea_list_tree_recursive_lists_files_only(replay: ReplayServer) -> None:
    replay.play("gitea", "tree-c2")

    assert gitea(replay).list_tree(C2) == FILES_C2


def test_gitea_branches_containing_commit_compares_other_branch_heads(
    replay: ReplayServer,
) -> None:
    replay.play(
        "gitea",
        "commit-c1",
        "branches",
        "compare-main-c1",
        "compare-experiment-c1",
        "compare-gh-pages-c1",
    )

    assert gitea(replay).branches_containing(C1) == ["main", "release/1.0"]
    assert len(replay.requests_to("/compare/")) == 3


def test_gitea_unauthorized_raises_git_error_naming_credentials(replay: ReplayServer) -> None:
    replay.play("gitea", "error-401-unauthorized")

    with pytest.raises(GitError, match="rejected the repository's credentials"):
        gitea(replay).latest_commit("main")


def test_gitea_token_scope_missing_raises_permission_error(replay: ReplayServer) -> None:
    replay.play("gitea", "error-403-scope")

    with pytest.raises(GitError, match=r"read:repository.*lack permission"):
        gitea(replay).latest_commit("main")


def test_gitea_internal_error_raises_transient_error(replay: ReplayServer) -> None:
    replay.play("gitea", "error-500")

    with pytest.raises(TransientError, match="HTTP 500"):
        gitea(replay).latest_commit("main")


def test_forgejo_latest_commit_main_returns_head(replay: ReplayServer) -> None:
    replay.play("forgejo", "branch-main")

    assert gitea(replay, "forgejo").latest_commit("main").sha == C2


def test_forgejo_unknown_branch_error_names_forgejo(replay: ReplayServer) -> None:
    replay.play("forgejo", "branch-missing")

    with pytest.raises(ProviderNotFound, match="Forgejo answered 404"):
        gitea(replay, "forgejo").latest_commit("no-such-branch")


# --- Azure DevOps -------------------------------------------------------------------------------


def test_azure_devops_latest_commit_picks_exact_ref_then_reads_commit(
    replay: ReplayServer,
) -> None:
    replay.play("azure-devops", "refs-heads-main", "commit-c2")

    head = azure(replay).latest_commit("main")

    assert head == CommitInfo(sha=C2, message=C2_MESSAGE)
    refs, commit = replay.received
    assert refs.path == "/octo-org/Deploy%20Config/_apis/git/repositories/deploy-config/refs"
    assert refs.query == {"filter": "heads/main", "$top": "100", "api-version": "7.1"}
    assert commit.path.endswith(f"/commits/{C2}")


def test_azure_devops_requests_pat_sent_as_basic_with_empty_user(replay: ReplayServer) -> None:
    replay.play("azure-devops", "refs-heads-main", "commit-c2")

    azure(replay).latest_commit("main")

    expected = base64.b64encode(f":{AZURE_PAT}".encode()).decode()
    assert {r.headers["authorization"] for r in replay.received} == {f"Basic {expected}"}


def test_azure_devops_latest_commit_unknown_branch_raises_git_error(
    replay: ReplayServer,
) -> None:
    replay.play("azure-devops", "refs-heads-missing")

    with pytest.raises(ProviderNotFound, match="branch 'no-such-branch' does not exist"):
        azure(replay).latest_commit("no-such-branch")


def test_azure_devops_commit_known_sha_returns_its_message(replay: ReplayServer) -> None:
    replay.play("azure-devops", "commit-c1")

    assert azure(replay).commit(C1) == CommitInfo(sha=C1, message="Add web service")


def test_azure_devops_commit_missing_sha_raises_git_error(replay: ReplayServer) -> None:
    replay.play("azure-devops", "commit-missing")

    with pytest.raises(ProviderNotFound, match="TF401175"):
        azure(replay).commit(MISSING)


def test_azure_devops_read_file_at_commit_returns_item_content(replay: ReplayServer) -> None:
    replay.play("azure-devops", "item-compose")

    assert azure(replay).read_file(C2, "apps/web/compose.yaml") == COMPOSE_C2


def test_azure_devops_read_file_missing_path_raises_not_found(replay: ReplayServer) -> None:
    replay.play("azure-devops", "item-missing")

    with pytest.raises(ProviderNotFound, match="TF401174"):
        azure(replay).read_file(C2, "apps/api/compose.yaml")


def test_azure_devops_list_branches_follows_continuation_token(replay: ReplayServer) -> None:
    replay.play("azure-devops", "refs-heads-page1", "refs-heads-page2")

    branches = azure(replay).list_branches()

    assert len(branches) == 103
    assert {"main", "release/1.0", "renovate/traefik-10.x"} <= set(branches)
    assert "continuationToken" in replay.received[1].query


def test_azure_devops_list_tree_full_recursion_lists_files_only(replay: ReplayServer) -> None:
    replay.play("azure-devops", "items-tree-c2")

    assert azure(replay).list_tree(C2) == FILES_C2


def test_azure_devops_branches_containing_commit_reads_branch_stats(
    replay: ReplayServer,
) -> None:
    replay.play("azure-devops", "commit-c1", "stats-branches-c1")

    assert azure(replay).branches_containing(C1) == ["main", "release/1.0"]


def test_azure_devops_unauthorized_raises_git_error_naming_credentials(
    replay: ReplayServer,
) -> None:
    replay.play("azure-devops", "error-401-unauthorized")

    with pytest.raises(GitError, match=r"rejected the repository's credentials.*TF400813"):
        azure(replay).latest_commit("main")


def test_azure_devops_throttled_raises_transient_error_with_retry_after(
    replay: ReplayServer,
) -> None:
    replay.play("azure-devops", "error-429-throttled")

    with pytest.raises(ProviderRateLimited) as caught:
        azure(replay).latest_commit("main")

    assert caught.value.retry_after == 30


def test_azure_devops_unavailable_raises_transient_error(replay: ReplayServer) -> None:
    replay.play("azure-devops", "error-503")

    with pytest.raises(TransientError, match="HTTP 503"):
        azure(replay).latest_commit("main")


# --- The factory and the shared plumbing --------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "netloc", "segments"),
    [
        (
            "https://github.com/octo-org/deploy-config.git",
            "github.com",
            ("octo-org", "deploy-config"),
        ),
        ("https://github.com/octo-org/deploy-config/", "github.com", ("octo-org", "deploy-config")),
        ("git@github.com:octo-org/deploy-config.git", "github.com", ("octo-org", "deploy-config")),
        ("ssh://git@gitlab.com:2222/a/b/c.git", "gitlab.com", ("a", "b", "c")),
        ("https://user:pw@gitea.example:3000/o/r", "gitea.example:3000", ("o", "r")),
    ],
)
def test_parse_repository_url_forms_yield_host_and_path(
    url: str, netloc: str, segments: tuple[str, ...]
) -> None:
    address = parse_repository_url(url)

    assert (address.netloc, address.segments) == (netloc, segments)
    assert address.scheme in ("https", "http")


def test_provider_source_github_com_url_uses_public_api() -> None:
    source = provider_source("github", "https://github.com/octo-org/deploy-config/tree/main", None)

    assert isinstance(source, GitHubSource)
    assert source.api_url == "https://api.github.com/repos/octo-org/deploy-config"


def test_provider_source_github_enterprise_url_uses_api_v3() -> None:
    source = provider_source("github", "git@ghe.octo-org.example:platform/deploy-config.git", None)

    assert isinstance(source, GitHubSource)
    assert source.api_url == "https://ghe.octo-org.example/api/v3/repos/platform/deploy-config"


def test_provider_source_gitlab_nested_group_url_encodes_project_path() -> None:
    source = provider_source(
        "gitlab", "https://gitlab.com/octo-org/infra/deploy-config/-/tree/main", None
    )

    assert isinstance(source, GitLabSource)
    assert source.api_url == "https://gitlab.com/api/v4/projects/octo-org%2Finfra%2Fdeploy-config"


def test_provider_source_gitea_url_uses_api_v1_on_same_host() -> None:
    source = provider_source("forgejo", "https://codeberg.org/octo-org/deploy-config", None)

    assert isinstance(source, GiteaSource)
    assert source.api_url == "https://codeberg.org/api/v1/repos/octo-org/deploy-config"


@pytest.mark.parametrize(
    ("url", "api_url"),
    [
        (
            "https://dev.azure.com/octo-org/Deploy%20Config/_git/deploy-config",
            "https://dev.azure.com/octo-org/Deploy%20Config/_apis/git/repositories/deploy-config",
        ),
        (
            "https://octo-org.visualstudio.com/Deploy%20Config/_git/deploy-config",
            "https://octo-org.visualstudio.com/Deploy%20Config/_apis/git/repositories/deploy-config",
        ),
        (
            "git@ssh.dev.azure.com:v3/octo-org/Deploy%20Config/deploy-config",
            "https://dev.azure.com/octo-org/Deploy%20Config/_apis/git/repositories/deploy-config",
        ),
        (
            "https://tfs.octo-org.example/tfs/DefaultCollection/Ops/_git/deploy-config",
            "https://tfs.octo-org.example/tfs/DefaultCollection/Ops/_apis/git/repositories/deploy-config",
        ),
        (
            "https://dev.azure.com/octo-org/_git/deploy-config",
            "https://dev.azure.com/octo-org/deploy-config/_apis/git/repositories/deploy-config",
        ),
    ],
)
def test_provider_source_azure_devops_url_forms_map_to_repository_api(
    url: str, api_url: str
) -> None:
    source = provider_source("azure-devops", url, None)

    assert isinstance(source, AzureDevOpsSource)
    assert source.api_url == api_url


def test_provider_source_unknown_provider_raises_git_error() -> None:
    with pytest.raises(GitError, match="unknown git provider 'bitbucket'"):
        provider_source("bitbucket", "https://bitbucket.org/o/r", None)


def test_provider_source_url_without_repository_raises_git_error() -> None:
    with pytest.raises(GitError, match="names no GitHub repository"):
        provider_source("github", "https://github.com/octo-org", None)


def test_provider_source_url_with_password_is_redacted_in_errors() -> None:
    with pytest.raises(GitError) as caught:
        provider_source("github", "https://mona:hunter2@github.com/octo-org", None)

    assert "hunter2" not in str(caught.value)


def test_provider_source_ssh_deploy_key_raises_git_error() -> None:
    key = RepositoryCredentials(kind=CredentialKind.SSH_KEY, secret="-----BEGIN OPENSSH...")

    with pytest.raises(GitError, match="deploy key cannot authenticate to the GitHub API"):
        provider_source("github", "git@github.com:octo-org/deploy-config.git", key)


def test_provider_source_loopback_api_without_allow_list_refuses_request(
    replay: ReplayServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FERRY_OUTBOUND_ALLOW", raising=False)
    source = provider_source(
        "gitea", f"{replay.base_url}/octo-org/deploy-config", token(GITEA_TOKEN)
    )

    with pytest.raises(GitError, match="not a public address"):
        source.latest_commit("main")

    assert replay.received == []


def test_retry_after_seconds_http_date_counts_from_now() -> None:
    import httpx

    response = httpx.Response(429, headers={"Retry-After": "Mon, 12 May 2025 09:01:00 GMT"})

    assert retry_after_seconds(response, now=1747040400.0) == 60


def test_retry_after_seconds_gitlab_reset_header_counts_from_now() -> None:
    import httpx

    response = httpx.Response(429, headers={"RateLimit-Reset": "1747040460"})

    assert retry_after_seconds(response, now=1747040430.0) == 30


# --- contains: does a commit's history include another (named commits never go back) -----------


def test_github_contains_older_commit_one_comparison(replay: ReplayServer) -> None:
    replay.play("github", "compare-main-c1")

    assert github(replay).contains(C2, C1) is True
    assert [r.path.rsplit("/", 1)[-1] for r in replay.received] == [f"{C2}...{C1}"]


def test_gitea_contains_older_commit_one_comparison(replay: ReplayServer) -> None:
    replay.play("gitea", "compare-main-c1")

    assert gitea(replay).contains(C2, C1) is True


def test_gitlab_contains_is_merge_base_check(replay: ReplayServer) -> None:
    replay.play("gitlab", "merge-base-c2-c1")

    assert gitlab(replay).contains(C2, C1) is True
    assert replay.received[0].path.endswith("/repository/merge_base")


def test_azure_contains_is_merge_base_check(replay: ReplayServer) -> None:
    replay.play("azure-devops", "mergebases-c2-c1")

    assert azure(replay).contains(C2, C1) is True
    assert replay.received[0].query == {"otherCommitId": C1, "api-version": "7.1"}


@pytest.mark.parametrize("provider", ["github", "gitlab", "gitea", "azure_devops"])
def test_contains_refuses_short_sha_before_any_request(replay: ReplayServer, provider: str) -> None:
    source = {"github": github, "gitlab": gitlab, "gitea": gitea, "azure_devops": azure}[provider]
    with pytest.raises(GitError, match="not a full commit SHA"):
        source(replay).contains("main", C1)
    assert replay.received == []


# --- bundles: one listing of the application's directory, then one call per file -------------

C3 = "57db708bed2fee92a69c03441df1ead23f991091"
NGINX_C3 = "events {}\nhttp {\n    include /etc/nginx/conf.d/*.conf;\n}\n"
BUNDLE_C3 = {
    ".env": "GREETING=hello from the bundle\n",
    "compose.yaml": (
        "services:\n  web:\n    image: nginx:1.27\n    env_file: [.env]\n    environment:\n"
        '      GREETING: ${GREETING}\n    entrypoint: ["/entrypoint.sh"]\n    volumes:\n'
        "      - ./nginx.conf:/etc/nginx/nginx.conf:ro\n"
        "      - ./default.conf:/etc/nginx/conf.d/default.conf:ro\n"
        '      - ./entrypoint.sh:/entrypoint.sh:ro\n    ports:\n      - "8080:80"\n'
    ),
    "default.conf": NGINX_C3,  # a symlink to nginx.conf in the repository
    "entrypoint.sh": '#!/bin/sh\nexec nginx -g "daemon off;"\n',
    "nginx.conf": NGINX_C3,
}
BUNDLE_LIMITS = BundleLimits(max_files=10, max_bytes=10_000)
# What each provider answers, per call: the listing, then the symlink's target and the 4 files
# with distinct content (default.conf is nginx.conf's content, read once).
BUNDLE_FIXTURES: dict[str, tuple[str, list[str], int]] = {
    "github": ("github", ["tree-c3-recursive"], 1),
    "gitlab": ("gitlab", ["tree-c3-apps-web"], 1),
    "gitea": ("gitea", ["tree-c3"], 1),
    "azure": ("azure-devops", ["item-apps-web-c3", "tree-apps-web-c3"], 2),
}
BLOBS = ["env", "compose.yaml", "default.conf", "entrypoint.sh", "nginx.conf"]


def _bundle_source(provider: str, replay: ReplayServer) -> ProviderSource:
    return {"github": github, "gitlab": gitlab, "gitea": gitea, "azure": azure}[provider](replay)


def _blob_fixtures(provider: str) -> list[str]:
    prefix = "blob-raw-" if provider in ("github", "gitlab") else "blob-"
    return [f"{prefix}{name}" for name in BLOBS]


def _web() -> Application:
    return Application(
        id="app_1",
        name="web",
        repository_id="repo_1",
        agent_id="agt_1",
        branch="main",
        path="apps/web/compose.yaml",
    )


@pytest.mark.parametrize("provider", sorted(BUNDLE_FIXTURES))
def test_provider_bundle_one_listing_then_one_call_per_file(
    replay: ReplayServer, provider: str
) -> None:
    folder, listing, listing_calls = BUNDLE_FIXTURES[provider]
    replay.play(folder, *listing, *_blob_fixtures(provider))
    source = _bundle_source(provider, replay)

    listed = list_bundle(source, C3, _web(), BUNDLE_LIMITS)
    files = read_bundle(source, C3, listed, BUNDLE_LIMITS)

    assert {f.path: f.data.decode() for f in files} == BUNDLE_C3
    assert [f.path for f in files if f.executable] == ["entrypoint.sh"]
    assert listed.digest == digest(files)
    assert len(replay.received) == listing_calls + 5


@pytest.mark.parametrize("provider", sorted(BUNDLE_FIXTURES))
def test_provider_bundle_digest_known_from_the_listing_alone(
    replay: ReplayServer, provider: str
) -> None:
    folder, listing, listing_calls = BUNDLE_FIXTURES[provider]
    replay.play(folder, *listing, *_blob_fixtures(provider))

    listed = list_bundle(_bundle_source(provider, replay), C3, _web(), BUNDLE_LIMITS)

    # The same content is the same bundle, whichever host it is read from.
    expected = digest(
        [
            BundleFile(path, text.encode(), path == "entrypoint.sh")
            for path, text in BUNDLE_C3.items()
        ]
    )
    assert listed.digest == expected
    assert len(replay.received) == listing_calls + 1  # the listing and the symlink's target


@pytest.mark.parametrize("provider", sorted(BUNDLE_FIXTURES))
def test_provider_bundle_files_already_known_are_not_read_again(
    replay: ReplayServer, provider: str
) -> None:
    folder, listing, _ = BUNDLE_FIXTURES[provider]
    replay.play(folder, *listing, *_blob_fixtures(provider))
    source = _bundle_source(provider, replay)
    listed = list_bundle(source, C3, _web(), BUNDLE_LIMITS)
    known = {
        blob_id(text.encode()): text.encode()
        for path, text in BUNDLE_C3.items()
        if path != "compose.yaml"
    }
    before = len(replay.received)

    files = read_bundle(source, C3, listed, BUNDLE_LIMITS, known)

    assert {f.path: f.data.decode() for f in files} == BUNDLE_C3
    assert len(replay.received) == before + 1


def test_provider_bundle_content_that_is_not_the_listed_blob_refused(
    replay: ReplayServer,
) -> None:
    replay.play("github", "tree-c3-recursive", "blob-raw-default.conf", "blob-raw-env")
    answered = Exchange.load("github", "blob-raw-compose.yaml")
    answered.body = b"services: {}\n"  # not the content the listing names
    replay.exchanges.append(answered)
    source = github(replay)
    listed = list_bundle(source, C3, _web(), BUNDLE_LIMITS)

    with pytest.raises(GitError, match=r"apps/web/compose\.yaml at commit 57db708bed2f: the"):
        read_bundle(source, C3, listed, BUNDLE_LIMITS)


def test_provider_bundle_directory_missing_names_the_compose_file(replay: ReplayServer) -> None:
    replay.play("github", "tree-c3-recursive")
    application = _web().model_copy(update={"path": "apps/api/compose.yaml"})

    # Its own directory missing: what the user named is the compose file.
    with pytest.raises(GitError, match=r"apps/api/compose\.yaml does not exist at commit 57db"):
        list_bundle(github(replay), C3, application, BUNDLE_LIMITS)


def test_provider_bundle_root_missing_names_the_root(replay: ReplayServer) -> None:
    replay.play("github", "tree-c3-recursive")
    application = _web().model_copy(update={"path": "apps/api/compose.yaml", "root": "apps/api"})

    with pytest.raises(GitError, match="apps/api is not a directory at commit 57db708bed2f"):
        list_bundle(github(replay), C3, application, BUNDLE_LIMITS)


def test_provider_bundle_past_the_file_limit_refused_before_any_file_is_read(
    replay: ReplayServer,
) -> None:
    replay.play("gitea", "tree-c3", "blob-default.conf")

    with pytest.raises(BundleError, match=r"has 5 files.*the limit is 4 files"):
        list_bundle(gitea(replay), C3, _web(), BundleLimits(max_files=4, max_bytes=10_000))

    assert len(replay.received) == 2
