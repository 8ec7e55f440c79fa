"""The repository sync as a Step Functions execution (issue 14), run by the embedded cloud's ASL
interpreter: the job's execution is named after it, its path reads like the console, a poll that
finds nothing new ends right after the plan, every failure ends the sync failed, a job that died in
the dead-letter queue says so, and a tag push resolves its branches in the sync, not the request.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest

import ferry.sync.run
from ferry.aws.executions import ExecutionView, describe_sync
from ferry.domain.messages import SyncJob
from ferry.domain.models import Trigger
from ferry.errors import NotFound
from ferry.local.stack import LocalStack
from ferry.settings import get_settings
from tests.helpers import (
    commit,
    compose,
    create_repository,
    deployed_once,
    push_webhook,
    wait_for,
    wait_for_status,
)


def _finished(api: httpx.Client, job_id: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        job = api.get(f"/jobs/{job_id}").json()
        execution = job.get("execution") or {}
        ended = job.get("status") in ("succeeded", "failed") and execution.get("status") not in (
            None,
            "RUNNING",
        )
        return dict(job) if ended else None

    return wait_for(done, what=f"job {job_id} and its execution to end")


def test_sync_job_runs_as_execution_named_after_it_plan_batches_end(
    stack: LocalStack, api: httpx.Client, git_repo: Path, unique: str
) -> None:
    commit(git_repo, "app/compose.yaml", compose(greeting="one"))
    repository = create_repository(api, git_repo)
    application, scripted = deployed_once(api, repository["id"], unique)
    head = commit(git_repo, "app/compose.yaml", compose(greeting="two"))

    accepted = push_webhook(stack.api_url, repository["id"], repository["webhook_secret"])
    job = _finished(api, accepted.json()["job_id"])

    assert job["status"] == "succeeded"
    assert job["execution"]["name"] == job["id"]
    assert job["execution"]["status"] == "SUCCEEDED"
    assert job["execution"]["path"] == [
        "Start",
        "PlanSync",
        "NothingToSync",
        "SyncApplications",
        "SyncBatch",
        "EndSync",
        "Synced",
        "SyncSucceeded",
    ]
    assert job["result"]["deploy_requests"][application["id"]]
    scripted.succeed(scripted.take())
    wait_for_status(api, application["id"], "synced", commit=head)


def test_sync_poll_at_same_head_ends_after_the_plan_in_few_transitions(
    stack: LocalStack, api: httpx.Client, git_repo: Path, unique: str
) -> None:
    commit(git_repo, "app/compose.yaml", compose())
    repository = create_repository(api, git_repo, sync_type="polling")
    deployed_once(api, repository["id"], unique)
    before = api.get(f"/repositories/{repository['id']}").json()
    job = SyncJob(repository_id=repository["id"], trigger=Trigger.POLLING)
    boto3.client("sqs").send_message(
        QueueUrl=get_settings().sync_queue_url,
        MessageBody=job.model_dump_json(),
        MessageGroupId=job.repository_id,
        MessageDeduplicationId=job.job_id,
    )

    def ended() -> ExecutionView | None:
        try:
            execution = describe_sync(job.job_id)
        except NotFound:  # the sync worker has not taken the job yet
            return None
        return execution if execution.status != "RUNNING" else None

    execution = wait_for(ended, what="the poll's execution")

    assert execution.status == "SUCCEEDED"
    assert execution.path == ["Start", "PlanSync", "NothingToSync", "NothingNew"]
    assert len(execution.path) <= 10  # the transition budget for a poll with no news
    after = api.get(f"/repositories/{repository['id']}").json()
    assert (after["sync_status"], after["updated_at"]) == (
        before["sync_status"],
        before["updated_at"],
    )


def test_sync_plan_failing_unexpectedly_ends_failed_through_end_sync(
    api: httpx.Client, git_repo: Path, unique: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    commit(git_repo, "app/compose.yaml", compose())
    repository = create_repository(api, git_repo, sync_type="manual")
    deployed_once(api, repository["id"], unique)

    def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise ValueError("the plan broke")

    monkeypatch.setattr(ferry.sync.run, "open_repository", broken)
    job = _finished(api, api.post(f"/repositories/{repository['id']}/sync").json()["job_id"])

    assert job["status"] == "failed" and "the plan broke" in job["error"]
    assert job["execution"]["status"] == "FAILED"
    assert job["execution"]["path"][-3:] == ["EndSync", "Synced", "SyncFailed"]
    failed = api.get(f"/repositories/{repository['id']}").json()
    assert failed["sync_status"] == "failed" and "the plan broke" in failed["last_sync_error"]


def test_sync_end_failing_repository_still_marked_failed_directly(
    api: httpx.Client, git_repo: Path, unique: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    commit(git_repo, "app/compose.yaml", compose())
    repository = create_repository(api, git_repo, sync_type="manual")
    deployed_once(api, repository["id"], unique)

    def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise ValueError("the end broke")

    import functions.sync_tasks.app as tasks

    monkeypatch.setattr(tasks, "end_sync", broken)
    job_id = api.post(f"/repositories/{repository['id']}/sync").json()["job_id"]
    job = _finished(api, job_id)

    assert job["status"] == "failed"
    assert job["execution"]["status"] == "FAILED"
    assert job["execution"]["path"][-2:] == ["AnnounceFailure", "SyncResultNotRecorded"]
    failed = api.get(f"/repositories/{repository['id']}").json()
    assert failed["sync_status"] == "failed"
    assert "could not be recorded" in failed["last_sync_error"]


def test_sync_job_dead_lettered_ends_failed_with_reason(
    stack: LocalStack, api: httpx.Client, git_repo: Path
) -> None:
    commit(git_repo, "app/compose.yaml", compose())
    repository = create_repository(api, git_repo, sync_type="manual")
    job_id = api.post(f"/repositories/{repository['id']}/sync").json()["job_id"]
    _finished(api, job_id)
    # As if every attempt of a later job had failed: its message sits in the dead-letter queue.
    dead = SyncJob(repository_id=repository["id"], trigger=Trigger.MANUAL)
    from ferry.store.jobs import record_queued

    record_queued(dead)
    boto3.client("sqs").send_message(
        QueueUrl=get_settings().sync_dead_letter_queue_url,
        MessageBody=dead.model_dump_json(),
        MessageGroupId=dead.repository_id,
        MessageDeduplicationId=dead.job_id,
    )

    assert stack.cloud.scheduler is not None
    stack.cloud.scheduler.fire_all()  # the poller's sweep
    job = wait_for(
        lambda: (j := api.get(f"/jobs/{dead.job_id}").json())["status"] == "failed" and j,
        what="the dead-lettered job to end",
    )
    assert "dead-letter queue" in job["error"]


def test_sync_tag_push_branches_resolved_in_the_sync_not_the_request(
    stack: LocalStack,
    api: httpx.Client,
    git_repo: Path,
    unique: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    commit(git_repo, "app/compose.yaml", compose(greeting="one"))
    repository = create_repository(api, git_repo)
    application, scripted = deployed_once(api, repository["id"], unique)
    head = commit(git_repo, "app/compose.yaml", compose(greeting="tagged"))

    import ferry.sync.webhook as webhook

    def no_git(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("the webhook request read the repository")

    monkeypatch.setattr(webhook, "open_repository", no_git, raising=False)
    accepted = push_webhook(
        stack.api_url,
        repository["id"],
        repository["webhook_secret"],
        {"ref": "refs/tags/v1.0", "commit": head},
    )
    assert accepted.status_code == 202, accepted.text
    _finished(api, accepted.json()["job_id"])
    taken = scripted.take()
    assert taken.request.commit == head
    scripted.succeed(taken)
    wait_for_status(api, application["id"], "synced", commit=head)
