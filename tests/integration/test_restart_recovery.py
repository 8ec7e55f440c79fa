"""What a restart of the local stack does with the work the previous run accepted
(ferry/local/recovery.py), on the session's stack.

A restart keeps the tables (the journal) and loses queues and executions. Each test brings one
record into the state a crash leaves (a job accepted whose queue message is gone, a deploy whose
execution is gone, a deploy recorded but never started) and runs the recovery step for it, as the
next start does; the stack's other records are left alone. A real SIGKILL and restart of `ferry
up` is tests/e2e/test_crash.py."""

from __future__ import annotations

from pathlib import Path

import boto3
import httpx

from ferry.aws.executions import deploy_execution_arn
from ferry.deploy.status import update_application_status
from ferry.domain.models import ApplicationSyncStatus, RepositorySyncStatus, Trigger
from ferry.local.recovery import (
    INTERRUPTED,
    RESTART_ACTOR,
    Recovery,
    end_abandoned_syncs,
    recover_application,
    requeue_jobs,
)
from ferry.local.stack import LocalStack
from ferry.settings import get_settings
from ferry.store.applications import get_application as stored_application
from ferry.store.jobs import list_unfinished_jobs
from ferry.store.repositories import get_repository
from ferry.sync.status import update_repository_status
from tests.helpers import (
    commit,
    compose,
    create_repository,
    deployed_once,
    finished_deployments,
    get_application,
    push_webhook,
    sync_worker_paused,
    wait_for,
    wait_for_status,
)


def _lose_queued_sync_jobs() -> int:
    """What a crash does to the sync-job queue: its messages are gone."""
    sqs = boto3.client("sqs")
    lost = 0
    while messages := sqs.receive_message(
        QueueUrl=get_settings().sync_queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
    ).get("Messages", []):
        for message in messages:
            sqs.delete_message(
                QueueUrl=get_settings().sync_queue_url, ReceiptHandle=message["ReceiptHandle"]
            )
            lost += 1
    return lost


def test_restart_requeues_accepted_job_whose_queue_message_was_lost(
    stack: LocalStack, api: httpx.Client, git_repo: Path, unique: str
) -> None:
    commit(git_repo, "app/compose.yaml", compose(greeting="v1"), "v1")
    repository = create_repository(api, git_repo)
    application, scripted = deployed_once(api, repository["id"], unique)
    v2 = commit(git_repo, "app/compose.yaml", compose(greeting="v2"), "v2")
    with sync_worker_paused(stack):
        accepted = push_webhook(stack.api_url, repository["id"], repository["webhook_secret"])
        assert accepted.status_code == 202, accepted.text
        job_id = accepted.json()["job_id"]
        assert _lose_queued_sync_jobs() == 1
        assert api.get(f"/jobs/{job_id}").json()["status"] == "queued"

        recovery = Recovery()
        requeue_jobs([job for job in list_unfinished_jobs() if job.job_id == job_id], recovery)

    assert recovery.requeued == [job_id]
    taken = scripted.take()
    assert taken.request.commit == v2
    scripted.succeed(taken)
    wait_for_status(api, application["id"], "synced", commit=v2)
    job = wait_for(
        lambda: (j := api.get(f"/jobs/{job_id}").json())["status"] == "succeeded" and j,
        what="the job to succeed",
    )
    assert job["result"]["applications"] == {application["id"]: "deploying"}


def test_restart_ends_interrupted_deploy_then_deploys_the_same_commit(
    stack: LocalStack, api: httpx.Client, git_repo: Path, unique: str
) -> None:
    commit(git_repo, "app/compose.yaml", compose(greeting="v1"), "v1")
    repository = create_repository(api, git_repo)
    application, scripted = deployed_once(api, repository["id"], unique)
    v2 = commit(git_repo, "app/compose.yaml", compose(greeting="v2"), "v2")
    assert push_webhook(stack.api_url, repository["id"], repository["webhook_secret"]).is_success
    interrupted = scripted.take()  # the deploy of v2 waits at the agent ...
    wait_for_status(api, application["id"], "syncing")
    # ... when the stack dies: its execution is gone, nothing will ever answer it.
    boto3.client("stepfunctions").stop_execution(
        executionArn=deploy_execution_arn(interrupted.request.request_id)
    )
    assert get_application(api, application["id"])["sync_status"] == "syncing"

    recovery = Recovery()
    recover_application(stored_application(application["id"]), recovery)

    assert (recovery.interrupted, recovery.redeployed) == ([application["id"]], [application["id"]])
    again = scripted.take()
    assert again.request.commit == v2
    assert again.request.request_id != interrupted.request.request_id
    scripted.succeed(again)
    wait_for_status(api, application["id"], "synced", commit=v2)
    history = {e["request_id"]: e for e in finished_deployments(api, application["id"])}
    ended, redeploy = history[interrupted.request.request_id], history[again.request.request_id]
    assert (ended["status"], ended["error"]) == ("failed", INTERRUPTED)
    assert (redeploy["status"], redeploy["actor"], redeploy["trigger"]) == (
        "succeeded",
        RESTART_ACTOR,
        "webhook",
    )


def test_restart_deploy_recorded_but_never_started_is_deployed(
    stack: LocalStack, api: httpx.Client, git_repo: Path, unique: str
) -> None:
    commit(git_repo, "app/compose.yaml", compose(greeting="v1"), "v1")
    repository = create_repository(api, git_repo)
    application, scripted = deployed_once(api, repository["id"], unique)
    # The crash came between recording a redeploy (one write: syncing, its request current)
    # and starting its execution: no history entry says it ran.
    never_started = f"{application['id']}-never-started"
    update_application_status(
        application["id"],
        {
            "current_request_id": never_started,
            "current_trigger": Trigger.MANUAL,
            "sync_status": ApplicationSyncStatus.SYNCING,
        },
    )

    recovery = Recovery()
    recover_application(stored_application(application["id"]), recovery)

    assert recovery.interrupted == recovery.redeployed == [application["id"]]
    taken = scripted.take()
    assert taken.request.request_id != never_started
    scripted.succeed(taken)
    done = wait_for_status(api, application["id"], "synced")
    assert done["last_sync_error"] is None
    history = {e["request_id"]: e for e in finished_deployments(api, application["id"])}
    assert (history[never_started]["status"], history[never_started]["error"]) == (
        "failed",
        INTERRUPTED,
    )
    assert history[taken.request.request_id]["status"] == "succeeded"


def test_restart_accepted_delete_starts_its_removal_again(
    stack: LocalStack, api: httpx.Client, git_repo: Path, unique: str
) -> None:
    commit(git_repo, "app/compose.yaml", compose(greeting="v1"), "v1")
    repository = create_repository(api, git_repo)
    application, scripted = deployed_once(api, repository["id"], unique)
    # A delete was accepted (the removal recorded as the current request); its execution died
    # with the stack.
    removal = f"{application['id']}-remove-crashed"
    update_application_status(
        application["id"], {"removal_request_id": removal, "current_request_id": removal}
    )

    recovery = Recovery()
    recover_application(stored_application(application["id"]), recovery)

    assert recovery.removals == [application["id"]]
    assert recovery.redeployed == []
    taken = scripted.take_removal()
    assert taken.request.request_id == removal
    scripted.answer(
        taken,
        {"request_id": removal, "application_id": application["id"], "success": True},
    )
    wait_for(
        lambda: api.get(f"/applications/{application['id']}").status_code == 404,
        what="the application to be removed",
    )


def test_restart_finished_deploy_left_alone(
    stack: LocalStack, api: httpx.Client, git_repo: Path, unique: str
) -> None:
    commit(git_repo, "app/compose.yaml", compose(greeting="v1"), "v1")
    repository = create_repository(api, git_repo)
    application, _scripted = deployed_once(api, repository["id"], unique)
    before = get_application(api, application["id"])

    recovery = Recovery()
    recover_application(stored_application(application["id"]), recovery)

    assert recovery.summary() is None
    assert get_application(api, application["id"]) == before


def test_restart_repository_left_syncing_fails_unless_its_job_runs_again(
    stack: LocalStack, api: httpx.Client, git_repo: Path
) -> None:
    commit(git_repo, "app/compose.yaml", compose(), "v1")
    abandoned = create_repository(api, git_repo)
    requeued = create_repository(api, git_repo)
    for repository in (abandoned, requeued):
        update_repository_status(repository["id"], RepositorySyncStatus.SYNCING)

    recovery = Recovery()
    end_abandoned_syncs(
        [get_repository(abandoned["id"]), get_repository(requeued["id"])],
        {requeued["id"]},
        recovery,
    )

    assert recovery.repositories_failed == [abandoned["id"]]
    ended = api.get(f"/repositories/{abandoned['id']}").json()
    assert (ended["sync_status"], ended["last_sync_error"]) == ("failed", INTERRUPTED)
    assert api.get(f"/repositories/{requeued['id']}").json()["sync_status"] == "syncing"
    update_repository_status(requeued["id"], RepositorySyncStatus.FAILED, error="test over")
