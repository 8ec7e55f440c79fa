"""The bundle through the control plane (issue 18), against moto: what a sync reads and compares,
what the deploy request carries (inline, or through the S3 bundle bucket read with the agent's
own session), and what the bucket keeps. The real agent and Docker: tests/e2e/test_bundle.py."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from botocore.exceptions import ClientError

from ferry.domain.bundle import digest, unpack
from ferry.domain.messages import DeployRequest
from ferry.local.stack import LocalStack
from ferry.settings import get_settings
from tests.helpers import (
    ScriptedAgent,
    Taken,
    agent_queue_url,
    commit,
    compose,
    create_agent,
    create_application,
    create_repository,
    events,
    push_webhook,
    wait_for,
    wait_for_idle_sync,
    wait_for_status,
)

ENV_FILE = "GREETING=from-dotenv\n"
CONFIG = "listen 80;\n"


@pytest.fixture
def through_the_bucket(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every bundle kept in and handed over through the bundle bucket (the inline limit 0)."""
    monkeypatch.setenv("FERRY_BUNDLE_INLINE_MAX_BYTES", "0")
    get_settings.cache_clear()
    yield
    monkeypatch.undo()
    get_settings.cache_clear()


def _application(
    api: httpx.Client, git_repo: Path, unique: str
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], ScriptedAgent]:
    commit(git_repo, "app/.env", ENV_FILE)
    commit(git_repo, "app/nginx.conf", CONFIG)
    commit(git_repo, "other/README", "not shipped\n")
    commit(git_repo, "app/compose.yaml", compose())
    repository = create_repository(api, git_repo)
    agent = create_agent(api, f"host-{unique}")
    application = create_application(
        api, name=f"app-{unique}", repository_id=repository["id"], agent_id=agent["id"]
    )
    return repository, agent, application, ScriptedAgent(agent_queue_url(agent["id"]))


def _session(stack: LocalStack, agent: dict[str, Any]) -> boto3.session.Session:
    """A boto3 session with the agent's own scoped credentials (what the agent reads S3 with)."""
    session = httpx.get(
        f"{stack.api_url}/api/v1/agent/session",
        headers={"Authorization": f"Bearer {agent['token']}"},
    ).json()
    credentials = session["credentials"]
    return boto3.session.Session(
        aws_access_key_id=credentials["access_key_id"],
        aws_secret_access_key=credentials["secret_access_key"],
        aws_session_token=credentials["session_token"],
        region_name=session["region"],
    )


def _files(
    request: DeployRequest, as_agent: boto3.session.Session | None = None
) -> dict[str, bytes]:
    bundle = request.bundle
    assert bundle is not None
    if bundle.inline is not None:
        archive = base64.b64decode(bundle.inline)
    else:
        assert bundle.object is not None and as_agent is not None
        archive = (
            as_agent.client("s3")
            .get_object(Bucket=bundle.object.bucket, Key=bundle.object.key)["Body"]
            .read()
        )
    files = unpack(archive, max_files=bundle.files, max_bytes=bundle.size)
    assert digest(files) == bundle.digest
    return {file.path: file.data for file in files}


def _push(stack: LocalStack, repository: dict[str, Any]) -> None:
    response = push_webhook(stack.api_url, repository["id"], repository["webhook_secret"])
    assert response.status_code == 202


def _bundle_keys(application_id: str) -> list[str]:
    listed = boto3.client("s3").list_objects_v2(
        Bucket=get_settings().bundle_bucket, Prefix=f"bundles/{application_id}/"
    )
    return [item["Key"] for item in listed.get("Contents", [])]


def test_bundle_is_the_directory_and_only_a_change_in_it_redeploys_naming_the_file(
    stack: LocalStack, api: httpx.Client, git_repo: Path, unique: str
) -> None:
    repository, _agent, application, scripted = _application(api, git_repo, unique)

    first: Taken[DeployRequest] = scripted.take()
    assert first.request.bundle is not None and first.request.bundle.object is None
    assert _files(first.request) == {
        ".env": ENV_FILE.encode(),
        "compose.yaml": compose().encode(),
        "nginx.conf": CONFIG.encode(),
    }
    scripted.succeed(first)
    wait_for_status(api, application["id"], "synced")
    wait_for_idle_sync(repository["id"])

    elsewhere = commit(git_repo, "other/README", "changed, but not shipped\n")
    _push(stack, repository)
    unchanged = wait_for_status(api, application["id"], "synced", commit=elsewhere)
    assert unchanged["bundle_digest"] == first.request.bundle.digest
    assert events(api, application["id"])[0]["status"] == "no_change"
    wait_for_idle_sync(repository["id"])

    commit(git_repo, "app/nginx.conf", "listen 8080;\n")
    _push(stack, repository)
    second = scripted.take()

    assert _files(second.request)["nginx.conf"] == b"listen 8080;\n"
    assert second.request.bundle is not None
    assert second.request.bundle.digest != first.request.bundle.digest
    dispatched = next(e for e in events(api, application["id"]) if e["status"] == "succeeded")
    assert dispatched["message"].startswith("1 file changed: app/nginx.conf at ")
    # Names only: nothing of any file's content reaches the history.
    everything = str(events(api, application["id"]))
    assert "8080" not in everything and "from-dotenv" not in everything
    scripted.succeed(second)


def test_bundle_past_the_file_limit_fails_the_sync_naming_the_limit(
    api: httpx.Client, git_repo: Path, unique: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FERRY_BUNDLE_MAX_FILES", "2")
    get_settings.cache_clear()
    try:
        _repository, _agent, application, _scripted = _application(api, git_repo, unique)
        failed = wait_for_status(api, application["id"], "out_of_sync")
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()

    assert failed["last_sync_error"] == (
        "the directory app has 3 files, more than a bundle may have: the limit is 2 files "
        "(FERRY_BUNDLE_MAX_FILES)"
    )


def test_large_bundle_kept_sealed_in_the_bucket_and_handed_over_to_that_agent_only(
    stack: LocalStack,
    api: httpx.Client,
    git_repo: Path,
    unique: str,
    through_the_bucket: None,
) -> None:
    repository, agent, application, scripted = _application(api, git_repo, unique)
    first = scripted.take()
    ref = first.request.bundle
    assert ref is not None and ref.inline is None and ref.object is not None
    assert ref.object.bucket == get_settings().bundle_bucket
    assert ref.object.key == f"requests/{agent['id']}/{first.request.request_id}.tar.gz"

    # The agent reads it with its own session; another agent's session may not.
    as_agent = _session(stack, agent)
    assert _files(first.request, as_agent)["nginx.conf"] == CONFIG.encode()
    kept = _bundle_keys(application["id"])
    assert kept == [f"bundles/{application['id']}/{ref.digest}.tar.gz.sealed"]
    sealed = boto3.client("s3").get_object(Bucket=ref.object.bucket, Key=kept[0])["Body"].read()
    assert b"listen 80" not in sealed and not sealed.startswith(b"\x1f\x8b")  # not a plain gzip

    scripted.succeed(first)
    wait_for_status(api, application["id"], "synced")
    wait_for_idle_sync(repository["id"])

    # A new bundle replaces the kept one; the replaced one is deleted.
    commit(git_repo, "app/.env", "GREETING=changed\n")
    _push(stack, repository)
    second = scripted.take()
    assert second.request.bundle is not None
    assert _files(second.request, as_agent)[".env"] == b"GREETING=changed\n"
    assert _bundle_keys(application["id"]) == [
        f"bundles/{application['id']}/{second.request.bundle.digest}.tar.gz.sealed"
    ]
    scripted.succeed(second)
    wait_for_status(api, application["id"], "synced")

    # Deleting the application deletes what it kept in the bucket.
    def answer_removal() -> None:
        removal = scripted.take_removal()
        scripted.answer(
            removal,
            {
                "request_id": removal.request.request_id,
                "application_id": application["id"],
                "success": True,
            },
        )

    with ThreadPoolExecutor(max_workers=1) as pool:
        answered = pool.submit(answer_removal)
        deleted = api.delete(f"/applications/{application['id']}")
        answered.result(timeout=30)
    assert deleted.status_code in (202, 204), deleted.text
    wait_for(lambda: _bundle_keys(application["id"]) == [] or None, what="kept bundles deleted")


def test_agent_session_reads_only_its_own_bundles(
    stack: LocalStack, api: httpx.Client, unique: str, through_the_bucket: None
) -> None:
    one = create_agent(api, f"one-{unique}")
    other = create_agent(api, f"other-{unique}")
    bucket = get_settings().bundle_bucket
    s3 = boto3.client("s3")
    for agent in (one, other):
        s3.put_object(Bucket=bucket, Key=f"requests/{agent['id']}/r.tar.gz", Body=b"bundle")

    as_one = _session(stack, one).client("s3")

    assert as_one.get_object(Bucket=bucket, Key=f"requests/{one['id']}/r.tar.gz")["Body"].read()
    with pytest.raises(ClientError, match="AccessDenied"):
        as_one.put_object(Bucket=bucket, Key=f"requests/{one['id']}/x", Body=b"x")
    with pytest.raises(ClientError, match="AccessDenied"):
        as_one.list_objects_v2(Bucket=bucket)


def test_root_ships_a_parent_directory_and_is_checked(
    api: httpx.Client, git_repo: Path, unique: str
) -> None:
    commit(git_repo, "deploy/shared.env", ENV_FILE)
    commit(git_repo, "elsewhere/file", "not shipped\n")
    commit(git_repo, "deploy/web/compose.yaml", compose())
    repository = create_repository(api, git_repo)
    agent = create_agent(api, f"host-{unique}")
    body = {
        "name": f"app-{unique}",
        "repository_id": repository["id"],
        "agent_id": agent["id"],
        "branch": "main",
        "path": "deploy/web/compose.yaml",
    }
    for root, reason in (
        ("elsewhere", "must be a directory that holds the compose file"),
        ("../deploy", "root must be a relative directory inside the repository"),
    ):
        refused = api.post("/applications", json={**body, "root": root})
        assert refused.status_code == 400 and reason in refused.text, refused.text

    created = api.post("/applications", json={**body, "root": "deploy/"})
    assert created.status_code == 201, created.text
    application = created.json()
    assert application["root"] == "deploy"
    scripted = ScriptedAgent(agent_queue_url(agent["id"]))
    first = scripted.take()
    assert first.request.bundle is not None and first.request.bundle.root == "deploy"
    assert set(_files(first.request)) == {"shared.env", "web/compose.yaml"}
    scripted.succeed(first)
    wait_for_status(api, application["id"], "synced")
    wait_for_idle_sync(repository["id"])

    # An empty root is the compose file's own directory again, synced at once.
    changed = api.patch(f"/applications/{application['id']}", json={"root": ""})
    assert changed.status_code == 200, changed.text
    assert changed.json()["root"] is None
    second = scripted.take()
    assert second.request.bundle is not None and second.request.bundle.root == "deploy/web"
    assert set(_files(second.request)) == {"compose.yaml"}
    scripted.succeed(second)
