"""The generic webhook: verify, then queue; a bad delivery queues nothing."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from ferry.errors import TransientError
from ferry.local.stack import LocalStack
from ferry.settings import get_settings
from tests.helpers import (
    AwsCalls,
    commit,
    compose,
    create_agent,
    create_application,
    create_repository,
    events,
    push_webhook,
    wait_for,
)


def _setup(api: httpx.Client, git_repo: Path, unique: str) -> tuple[dict, dict, str]:
    head = commit(git_repo, "app/compose.yaml", compose())
    repository = create_repository(api, git_repo)
    agent = create_agent(api, f"host-{unique}")
    application = create_application(
        api, name=f"app-{unique}", repository_id=repository["id"], agent_id=agent["id"]
    )
    # The application's first sync (from its creation) settles before the webhook is tried.
    wait_for(
        lambda: api.get(f"/repositories/{repository['id']}").json()["sync_status"] == "success",
        what="first sync",
    )
    # ...and so has the deploy it started (its event is written by the execution, a moment later).
    wait_for(
        lambda: any(e["type"] == "deployment" for e in events(api, application["id"])),
        what="the first deploy's event",
    )
    return repository, application, head


def test_webhook_with_wrong_or_missing_secret_answers_401_and_queues_nothing(
    stack: LocalStack, api: httpx.Client, git_repo: Path, unique: str
) -> None:
    repository, application, _head = _setup(api, git_repo, unique)
    before = events(api, application["id"])
    synced_at = api.get(f"/repositories/{repository['id']}").json()["last_synced_at"]

    wrong = push_webhook(stack.api_url, repository["id"], "not-the-secret")
    missing = httpx.post(
        f"{stack.api_url}/api/v1/webhooks/repositories/{repository['id']}", json={}
    )
    basic = httpx.post(
        f"{stack.api_url}/api/v1/webhooks/repositories/{repository['id']}",
        headers={"Authorization": f"Basic {repository['webhook_secret']}"},
    )

    assert (wrong.status_code, missing.status_code, basic.status_code) == (401, 401, 401)
    # Give a wrongly queued job time to surface before asserting that none was.
    stack.cloud.pollers[0].poll_once(wait_seconds=1)
    assert events(api, application["id"]) == before
    assert api.get(f"/repositories/{repository['id']}").json()["last_synced_at"] == synced_at


def test_webhook_for_unknown_repository_answers_404(stack: LocalStack) -> None:
    response = push_webhook(stack.api_url, "repo_missing", "x")
    assert response.status_code == 404


def test_webhook_with_bad_body_answers_400(
    stack: LocalStack, api: httpx.Client, git_repo: Path, unique: str
) -> None:
    repository, _application, _head = _setup(api, git_repo, unique)
    url = f"{stack.api_url}/api/v1/webhooks/repositories/{repository['id']}"
    auth = {"Authorization": f"Bearer {repository['webhook_secret']}"}
    for body in (
        b"not json",
        b"[1, 2]",
        b'{"branch": "main", "commit": "abc"}',
        b'{"commit": "' + b"a" * 40 + b'"}',
    ):
        response = httpx.post(
            url, headers={**auth, "Content-Type": "application/json"}, content=body
        )
        assert response.status_code == 400, body
        assert response.json()["detail"]


def test_webhook_for_manual_repository_answers_400(
    stack: LocalStack, api: httpx.Client, git_repo: Path
) -> None:
    commit(git_repo, "app/compose.yaml", compose())
    repository = create_repository(api, git_repo, sync_type="manual")
    response = push_webhook(stack.api_url, repository["id"], repository["webhook_secret"])
    assert response.status_code == 400
    assert "manual" in response.json()["detail"]


def test_webhook_with_secret_answers_202_with_job_and_syncs(
    stack: LocalStack, api: httpx.Client, git_repo: Path, unique: str
) -> None:
    repository, application, head = _setup(api, git_repo, unique)
    response = push_webhook(
        stack.api_url,
        repository["id"],
        repository["webhook_secret"],
        {"ref": "refs/heads/main", "commit": head},
    )
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["job_id"].startswith("job_")
    assert (body["branch"], body["commit"]) == ("main", head)
    wait_for(
        lambda: any(e["trigger"] == "webhook" for e in events(api, application["id"])),
        what="the webhook's sync event",
    )


def test_webhook_accept_path_reads_the_repository_once(
    stack: LocalStack, api: httpx.Client, git_repo: Path
) -> None:
    """The delivery is verified and read with one read of the repository's row (its record and
    webhook secret together); then the rate check, the job's record written in one transaction
    with the delivery's log entry, and its queue message: four calls before the 202."""
    commit(git_repo, "app/compose.yaml", compose())
    repository = create_repository(api, git_repo)
    settings = get_settings()

    with AwsCalls(lambda thread: thread.startswith("AnyIO worker thread")) as aws:
        response = push_webhook(stack.api_url, repository["id"], repository["webhook_secret"])

    assert response.status_code == 202, response.text
    assert aws.count("GetItem", settings.repositories_table) == 1
    assert aws.count("TransactWriteItems") == 1
    assert len(aws.calls) == 4, aws.calls
    [logged] = api.get(f"/repositories/{repository['id']}/deliveries").json()
    assert (logged["outcome"], logged["job_id"]) == ("accepted", response.json()["job_id"])


def test_webhook_accept_path_makes_no_client_once_warm(
    stack: LocalStack, api: httpx.Client, git_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The webhook's calls in a warm process reuse their clients: the transaction that records
    the job with its log entry made a botocore client each time (~50 ms of the answer)."""
    import threading

    from botocore.session import Session

    commit(git_repo, "app/compose.yaml", compose())
    repository = create_repository(api, git_repo)

    def push() -> httpx.Response:
        # Naming no delivery id or commit: each delivery is a new job, recorded with its log.
        secret = repository["webhook_secret"]
        return push_webhook(stack.api_url, repository["id"], secret, {"branch": "main"})

    assert push().status_code == 202
    made: list[str] = []
    create_client = Session.create_client

    def counted(self: Session, service_name: str, *args: object, **kwargs: object) -> object:
        if threading.current_thread().name.startswith("AnyIO worker thread"):
            made.append(service_name)
        return create_client(self, service_name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Session, "create_client", counted)
    response = push()

    assert response.status_code == 202, response.text
    assert made == []


def test_delivery_whose_job_cannot_be_queued_is_logged_once_as_refused(
    stack: LocalStack, api: httpx.Client, git_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The delivery's log entry is written with its job's record, before the job is sent; when
    the send fails, both go (so the sender's retry queues it again) and the delivery is logged
    once, as refused with the 503 it was answered."""
    from ferry.sync import queue

    commit(git_repo, "app/compose.yaml", compose())
    repository = create_repository(api, git_repo)

    def unreachable(_job: object) -> None:
        raise TransientError("the sync queue is unreachable")

    monkeypatch.setattr(queue, "send_sync_job", unreachable)
    response = push_webhook(stack.api_url, repository["id"], repository["webhook_secret"])
    monkeypatch.undo()

    assert response.status_code == 503, response.text
    logged = api.get(f"/repositories/{repository['id']}/deliveries").json()
    assert [(d["outcome"], d["status_code"], d["job_id"]) for d in logged] == [
        ("refused", 503, None)
    ]
    retried = push_webhook(stack.api_url, repository["id"], repository["webhook_secret"])
    assert retried.status_code == 202, retried.text
