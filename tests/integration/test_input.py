"""Hostile and sloppy input over real HTTP: a clear 4xx, nothing stored, nothing left behind."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest

from ferry.domain.models import CredentialKind, RepositoryCredentials
from ferry.local.stack import LocalStack
from ferry.settings import get_settings
from ferry.store.repositories import get_credentials
from ferry.store.tables import RepositoryRow
from tests.helpers import commit, compose, create_agent, create_repository, wait_for

MIB = 1024 * 1024

HOSTILE_NAMES = [
    "\udcff",
    "app\x00",
    "two\nlines",
    "app\x1b[31mred",
    "evil\u202eexe",
    "x" * 10_000,
]


def _send(api: httpx.Client, method: str, path: str, body: dict[str, Any]) -> httpx.Response:
    """JSON as any client may send it: json.dumps escapes lone surrogates (httpx's own encoder
    refuses them)."""
    return api.request(
        method, path, content=json.dumps(body), headers={"Content-Type": "application/json"}
    )


def _agent_queues() -> set[str]:
    prefix = get_settings().agent_queue_prefix
    return set(boto3.client("sqs").list_queues(QueueNamePrefix=prefix).get("QueueUrls", []))


def _ids(api: httpx.Client, collection: str) -> set[str]:
    response = api.get(f"/{collection}")
    assert response.status_code == 200, response.text
    return {item["id"] for item in response.json()}


def _assert_one_line_4xx(response: httpx.Response, *statuses: int) -> str:
    assert response.status_code in statuses, (response.status_code, response.text[:300])
    assert response.headers["content-type"].startswith("application/json")
    detail = response.json()["detail"]
    assert isinstance(detail, str) and detail and "\n" not in detail
    return detail


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_agent_create_with_hostile_name_answers_400_and_leaves_no_queue(
    api: httpx.Client, name: str
) -> None:
    queues, agents = _agent_queues(), _ids(api, "agents")

    response = _send(api, "POST", "/agents", {"name": name})

    _assert_one_line_4xx(response, 400)
    assert _ids(api, "agents") == agents
    assert _agent_queues() == queues


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_notification_create_with_hostile_name_answers_400(
    api: httpx.Client, receiver: Any, name: str
) -> None:
    before = _ids(api, "notifications")
    response = _send(api, "POST", "/notifications", {"name": name, "url": receiver.url})
    _assert_one_line_4xx(response, 400)
    assert _ids(api, "notifications") == before


def test_notification_with_huge_name_answers_400_and_stores_nothing(
    api: httpx.Client, receiver: Any
) -> None:
    before = _ids(api, "notifications")
    response = _send(api, "POST", "/notifications", {"name": "n" * 500_000, "url": receiver.url})
    _assert_one_line_4xx(response, 400)
    assert _ids(api, "notifications") == before


def test_notification_malformed_slack_url_says_what_is_wrong(api: httpx.Client) -> None:
    response = _send(api, "POST", "/notifications", {"name": "ops", "url": "slack://not-a-token"})
    detail = _assert_one_line_4xx(response, 400)
    assert "slack://" in detail and "scheme" not in detail
    assert "not-a-token" not in detail


@pytest.mark.parametrize(
    "url", ["json://example.com/\udcff", "json://example.com/\x1b[31m", "json://x/" + "y" * 3000]
)
def test_notification_url_unprintable_or_too_long_answers_400(api: httpx.Client, url: str) -> None:
    response = _send(api, "POST", "/notifications", {"name": "n", "url": url})
    _assert_one_line_4xx(response, 400)


@pytest.mark.parametrize(
    "url",
    ["https://example.com/\udcffx.git", "/tmp/a\x00b", "https://example.com/" + "x" * 3000],
)
def test_repository_url_unprintable_or_too_long_answers_400(api: httpx.Client, url: str) -> None:
    before = _ids(api, "repositories")
    _assert_one_line_4xx(_send(api, "POST", "/repositories", {"url": url}), 400)
    assert _ids(api, "repositories") == before


def test_repository_url_of_two_mib_answers_413(api: httpx.Client) -> None:
    before = _ids(api, "repositories")
    response = _send(api, "POST", "/repositories", {"url": "https://example.com/" + "x" * 2 * MIB})
    _assert_one_line_4xx(response, 413)
    assert _ids(api, "repositories") == before


def test_repository_url_with_credentials_answers_400_pointing_to_auth(api: httpx.Client) -> None:
    before = _ids(api, "repositories")
    response = _send(
        api,
        "POST",
        "/repositories",
        {"url": "https://oauth2:glpat-SECRET@gitlab.example.com/x.git"},
    )
    detail = _assert_one_line_4xx(response, 400)
    assert "auth" in detail and "glpat-SECRET" not in detail
    assert _ids(api, "repositories") == before


def test_repository_patch_to_url_with_credentials_answers_400(
    api: httpx.Client, git_repo: Path
) -> None:
    repository = create_repository(api, git_repo)
    response = _send(
        api,
        "PATCH",
        f"/repositories/{repository['id']}",
        {"url": "https://user:SECRET@example.com/x.git"},
    )
    _assert_one_line_4xx(response, 400)
    assert api.get(f"/repositories/{repository['id']}").json()["url"] == repository["url"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/repositories"),
        ("PATCH", "/repositories/repo_x"),
        ("POST", "/agents"),
        ("POST", "/applications"),
        ("PATCH", "/applications/app_x"),
        ("POST", "/notifications"),
        ("POST", "/agent/heartbeat"),
        ("POST", "/agent/health"),
        ("POST", "/github-actions"),
    ],
)
def test_every_route_answers_413_past_one_mib(
    stack: LocalStack, api: httpx.Client, method: str, path: str
) -> None:
    body = b'{"name": "' + b"x" * MIB + b'"}'
    response = api.request(method, path, content=body, headers={"Content-Type": "application/json"})
    _assert_one_line_4xx(response, 413)


def test_body_past_one_mib_without_content_length_answers_413(api: httpx.Client) -> None:
    def chunks() -> Any:
        for _ in range(3):
            yield b"x" * (MIB // 2)

    response = api.post("/agents", content=chunks(), headers={"Content-Type": "application/json"})
    _assert_one_line_4xx(response, 413)


def _application(repository_id: str, agent_id: str, **changes: Any) -> dict[str, Any]:
    return {
        "name": "app",
        "repository_id": repository_id,
        "agent_id": agent_id,
        "branch": "main",
        "path": "app/compose.yaml",
        **changes,
    }


@pytest.fixture
def app_parts(api: httpx.Client, git_repo: Path, unique: str) -> tuple[dict[str, Any], ...]:
    commit(git_repo, "app/compose.yaml", compose())
    return create_repository(api, git_repo, sync_type="manual"), create_agent(
        api, f"input-{unique}"
    )


@pytest.mark.parametrize("branch", ["--help", "main;rm -rf /", "../../", "main\x00", "a b"])
def test_application_with_invalid_branch_answers_400_on_create_and_patch(
    api: httpx.Client, app_parts: tuple[dict[str, Any], ...], unique: str, branch: str
) -> None:
    repository, agent = app_parts
    before = _ids(api, "applications")
    created = _send(
        api,
        "POST",
        "/applications",
        _application(repository["id"], agent["id"], name=f"b-{unique}", branch=branch),
    )
    _assert_one_line_4xx(created, 400)
    assert _ids(api, "applications") == before

    good = _send(
        api,
        "POST",
        "/applications",
        _application(repository["id"], agent["id"], name=f"g-{unique}"),
    )
    assert good.status_code == 201, good.text
    patched = _send(api, "PATCH", f"/applications/{good.json()['id']}", {"branch": branch})
    _assert_one_line_4xx(patched, 400)
    assert api.get(f"/applications/{good.json()['id']}").json()["branch"] == "main"


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_application_with_hostile_name_answers_400(
    api: httpx.Client, app_parts: tuple[dict[str, Any], ...], name: str
) -> None:
    repository, agent = app_parts
    before = _ids(api, "applications")
    response = _send(
        api, "POST", "/applications", _application(repository["id"], agent["id"], name=name)
    )
    _assert_one_line_4xx(response, 400)
    assert _ids(api, "applications") == before


def test_application_whose_compose_file_is_missing_answers_422(
    api: httpx.Client, app_parts: tuple[dict[str, Any], ...], unique: str
) -> None:
    repository, agent = app_parts
    before = _ids(api, "applications")
    missing = _send(
        api,
        "POST",
        "/applications",
        _application(repository["id"], agent["id"], name=unique, path="nope/compose.yaml"),
    )
    detail = _assert_one_line_4xx(missing, 422)
    assert "nope/compose.yaml" in detail
    no_branch = _send(
        api,
        "POST",
        "/applications",
        _application(repository["id"], agent["id"], name=unique, branch="no-such-branch"),
    )
    assert "no-such-branch" in _assert_one_line_4xx(no_branch, 422)
    assert _ids(api, "applications") == before


def test_application_patch_to_missing_compose_file_answers_422(
    api: httpx.Client, app_parts: tuple[dict[str, Any], ...], unique: str
) -> None:
    repository, agent = app_parts
    created = _send(
        api, "POST", "/applications", _application(repository["id"], agent["id"], name=unique)
    )
    assert created.status_code == 201, created.text
    moved = _send(api, "PATCH", f"/applications/{created.json()['id']}", {"path": "gone.yaml"})
    _assert_one_line_4xx(moved, 422)
    assert api.get(f"/applications/{created.json()['id']}").json()["path"] == "app/compose.yaml"


def test_application_on_unreachable_repository_answers_422_quickly(
    api: httpx.Client, unique: str
) -> None:
    # A closed port on loopback (the local stack allows loopback): refused at once.
    repository = _send(
        api, "POST", "/repositories", {"url": "http://127.0.0.1:9/x.git", "sync_type": "manual"}
    )
    assert repository.status_code == 201, repository.text
    agent = create_agent(api, f"unreachable-{unique}")
    before = _ids(api, "applications")
    started = time.monotonic()
    response = _send(
        api,
        "POST",
        "/applications",
        _application(repository.json()["id"], agent["id"], name=unique),
    )
    assert time.monotonic() - started < 15
    assert "127.0.0.1" in _assert_one_line_4xx(response, 422)
    assert _ids(api, "applications") == before


def _raw_repository(repository_id: str) -> dict[str, Any]:
    item = boto3.client("dynamodb").get_item(
        TableName=get_settings().repositories_table,
        Key={"id": {"S": repository_id}},
        ConsistentRead=True,
    )["Item"]
    return {name: next(iter(value.values())) for name, value in item.items()}


def test_repository_stored_with_credentials_in_its_url_never_shows_them(
    stack: LocalStack, api: httpx.Client, unique: str
) -> None:
    created = _send(
        api,
        "POST",
        "/repositories",
        {"url": f"https://git.example.com/ops/{unique}.git", "sync_type": "manual"},
    )
    assert created.status_code == 201, created.text
    repository_id, secret = created.json()["id"], f"glpat-{unique}-SECRET"
    # As an earlier version stored it: the credentials inside the URL, in clear.
    RepositoryRow(id=repository_id).update(
        actions=[RepositoryRow.url.set(f"https://oauth2:{secret}@git.example.com/ops/{unique}.git")]
    )

    shown = api.get(f"/repositories/{repository_id}").json()
    assert shown["url"] == f"https://git.example.com/ops/{unique}.git"
    assert shown["has_credentials"] is True
    assert secret not in api.get("/repositories").text
    assert get_credentials(repository_id) == RepositoryCredentials(
        kind=CredentialKind.BASIC, username="oauth2", secret=secret
    )

    assert stack.cloud.scheduler is not None
    stack.cloud.scheduler.fire_all()  # the poller's tick moves them, as on AWS

    def moved() -> dict[str, Any] | None:
        raw = _raw_repository(repository_id)
        return raw if secret not in raw["url"] else None

    raw = wait_for(moved, what="the credentials to leave the stored URL")
    assert raw["url"] == f"https://git.example.com/ops/{unique}.git"
    assert raw["credentials"].startswith("v1.") and secret not in raw["credentials"]
    assert get_credentials(repository_id) == RepositoryCredentials(
        kind=CredentialKind.BASIC, username="oauth2", secret=secret
    )


def test_application_patch_with_malformed_notification_id_answers_400(
    api: httpx.Client, app_parts: tuple[dict[str, Any], ...], unique: str
) -> None:
    repository, agent = app_parts
    created = _send(
        api, "POST", "/applications", _application(repository["id"], agent["id"], name=unique)
    )
    assert created.status_code == 201, created.text
    for ids in ([""], ["\udcff"], ["x" * 100]):
        patched = _send(
            api, "PATCH", f"/applications/{created.json()['id']}", {"notification_ids": ids}
        )
        _assert_one_line_4xx(patched, 400)
