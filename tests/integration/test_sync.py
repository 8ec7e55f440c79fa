"""Repository sync (layer 1) against the local stack: one path, resolved once per branch."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest

from ferry.domain.messages import SyncJob
from ferry.domain.models import CommitInfo, Repository, RepositorySyncStatus, Trigger
from ferry.local.stack import LocalStack
from ferry.settings import get_settings
from ferry.store.agents import get_agent
from ferry.store.applications import create_application as store_application
from ferry.store.applications import get_application as stored_application
from ferry.store.applications import list_repository_applications
from ferry.store.events import list_events
from ferry.store.repositories import get_repository
from ferry.sync.resolvers import open_repository
from ferry.sync.run import (
    AppSyncResult,
    end_sync,
    plan_sync,
    run_sync_job,
    sync_applications,
    sync_batch,
)
from tests.helpers import (
    AwsCalls,
    ScriptedAgent,
    agent_queue_url,
    commit,
    compose,
    create_agent,
    create_application,
    create_repository,
    events,
    finished_deployments,
    push_webhook,
    registered_application,
    wait_for,
    wait_for_idle_sync,
    wait_for_status,
)


@pytest.fixture
def synced_app(api: httpx.Client, git_repo: Path, unique: str) -> tuple[dict, dict, ScriptedAgent]:
    """An application deployed once (by a scripted agent) at the repository's first commit."""
    commit(git_repo, "app/compose.yaml", compose())
    repository = create_repository(api, git_repo)
    application, scripted = registered_application(api, repository["id"], unique)
    scripted.succeed(scripted.take())
    wait_for_status(api, application["id"], "synced")
    finished_deployments(api, application["id"])  # its event completes a moment after the row
    return repository, application, scripted


def _executions_of(application_id: str, stack: LocalStack) -> list[str]:
    sfn = boto3.client("stepfunctions")
    names = [
        e["name"]
        for page in sfn.get_paginator("list_executions").paginate(
            stateMachineArn=stack.cloud.deploy_state_machine_arn
        )
        for e in page["executions"]
    ]
    return [n for n in names if n.startswith(application_id)]


def test_sync_unchanged_compose_records_no_change_without_deploy(
    stack: LocalStack, api: httpx.Client, git_repo: Path, synced_app: tuple
) -> None:
    repository, application, _scripted = synced_app
    before = _executions_of(application["id"], stack)
    head = commit(git_repo, "README.md", "docs only\n", "docs")

    response = push_webhook(
        stack.api_url,
        repository["id"],
        repository["webhook_secret"],
        {"branch": "main", "commit": head},
    )
    assert response.status_code == 202

    no_change = wait_for(
        lambda: [e for e in events(api, application["id"]) if e["status"] == "no_change"],
        what="a no_change event",
    )
    assert no_change[0]["commit"] == head
    current = wait_for_status(api, application["id"], "synced", commit=head)
    assert current["last_sync_error"] is None
    assert _executions_of(application["id"], stack) == before


def test_sync_changed_compose_redeploys_at_new_commit(
    stack: LocalStack, api: httpx.Client, git_repo: Path, synced_app: tuple
) -> None:
    repository, application, scripted = synced_app
    first = stored_application(application["id"]).compose_file
    head = commit(git_repo, "app/compose.yaml", compose(greeting="v2"), "v2")

    assert (
        push_webhook(stack.api_url, repository["id"], repository["webhook_secret"]).status_code
        == 202
    )
    message = scripted.take()
    assert message.request.commit == head
    assert "v2" in message.request.compose_file
    recorded = stored_application(application["id"])
    assert (recorded.previous_compose_file, recorded.target_commit) == (first, head)

    scripted.succeed(message)
    wait_for_status(api, application["id"], "synced", commit=head)
    # The deploy can reach its agent before the sync's last state has run (Marked goes straight
    # to DispatchToAgent): the repository's sync ends a moment later.
    wait_for(
        lambda: get_repository(repository["id"]).sync_status is RepositorySyncStatus.SUCCESS,
        what="the repository's sync to end in success",
    )


def test_sync_polling_at_recorded_commit_does_nothing_and_keeps_error(
    api: httpx.Client, synced_app: tuple
) -> None:
    from ferry.deploy.status import update_application_status

    repository, application, _scripted = synced_app
    update_application_status(application["id"], {"last_sync_error": "earlier failure"})
    app = stored_application(application["id"])
    before = list_events(app.id)
    resolved: list[str] = []

    def resolve(branch: str) -> CommitInfo:
        resolved.append(branch)
        return CommitInfo(sha=app.commit or "", message="same")

    report = sync_applications(
        get_repository(repository["id"]),
        [app],
        resolve,
        Trigger.POLLING,
        source=open_repository(get_repository(repository["id"])),
        job_id="job_poll",
    )

    assert report.applications == {app.id: AppSyncResult.UP_TO_DATE}
    assert resolved == ["main"]
    assert list_events(app.id) == before
    assert stored_application(app.id).last_sync_error == "earlier failure"


def test_sync_failing_branch_records_failure_and_other_branch_proceeds(
    api: httpx.Client, git_repo: Path, unique: str
) -> None:
    commit(git_repo, "app/compose.yaml", compose())
    repository = create_repository(api, git_repo)
    agent = create_agent(api, f"host-{unique}")
    good = create_application(
        api, name=f"good-{unique}", repository_id=repository["id"], agent_id=agent["id"]
    )
    # Its branch was deleted after it was created (the API refuses one that does not exist).
    ghost = store_application(
        name=f"ghost-{unique}",
        repository_id=repository["id"],
        agent_id=agent["id"],
        branch="ghost",
        path="app/compose.yaml",
    ).model_dump()

    wait_for_idle_sync(repository["id"])  # the creations' own syncs go first
    report = run_sync_job(SyncJob(repository_id=repository["id"], trigger=Trigger.MANUAL))

    assert report is not None
    assert report.status is RepositorySyncStatus.FAILED
    assert report.applications[good["id"]] in (AppSyncResult.DEPLOYING, AppSyncResult.NO_CHANGE)
    assert report.applications[ghost["id"]] is AppSyncResult.FAILED
    stored = get_repository(repository["id"])
    assert stored.sync_status is RepositorySyncStatus.FAILED
    assert stored.last_sync_error is not None and "branch ghost" in stored.last_sync_error
    failed = [e for e in list_events(ghost["id"]) if e.status.value == "failed"]
    assert failed and "does not exist" in (failed[0].error or "")


def test_sync_missing_compose_file_marks_application_out_of_sync(
    api: httpx.Client, git_repo: Path, unique: str
) -> None:
    commit(git_repo, "app/compose.yaml", compose())
    repository = create_repository(api, git_repo)
    agent = create_agent(api, f"host-{unique}")
    # Its file went away after it was created (the API refuses a path that does not exist).
    application = store_application(
        name=f"app-{unique}",
        repository_id=repository["id"],
        agent_id=agent["id"],
        branch="main",
        path="elsewhere/compose.yaml",
    ).model_dump()
    assert api.post(f"/repositories/{repository['id']}/sync").status_code == 202
    done = wait_for_status(api, application["id"], "out_of_sync")
    assert "elsewhere/compose.yaml does not exist" in done["last_sync_error"]

    def failed() -> Repository | None:
        current = get_repository(repository["id"])
        return current if current.sync_status is RepositorySyncStatus.FAILED else None

    repo = wait_for(failed, what="repository failed")
    assert repo.last_sync_error is not None and f"app-{unique}" in repo.last_sync_error


def test_sync_repository_without_applications_ends_success(
    api: httpx.Client, git_repo: Path
) -> None:
    commit(git_repo, "app/compose.yaml", compose())
    repository = create_repository(api, git_repo)
    wait_for_idle_sync(repository["id"])  # the creations' own syncs go first
    report = run_sync_job(SyncJob(repository_id=repository["id"], trigger=Trigger.MANUAL))
    assert report is not None and report.status is RepositorySyncStatus.SUCCESS
    stored = get_repository(repository["id"])
    assert stored.sync_status is RepositorySyncStatus.SUCCESS
    assert stored.last_synced_at is not None


def test_sync_same_job_twice_starts_one_deploy(
    stack: LocalStack, api: httpx.Client, git_repo: Path, unique: str
) -> None:
    commit(git_repo, "app/compose.yaml", compose())
    repository = create_repository(api, git_repo, sync_type="manual")
    application, scripted = registered_application(api, repository["id"], unique)
    scripted.succeed(scripted.take())
    wait_for_status(api, application["id"], "synced")
    head = commit(git_repo, "app/compose.yaml", compose(greeting="again"))
    job = SyncJob(repository_id=repository["id"], trigger=Trigger.MANUAL)

    wait_for_idle_sync(repository["id"])
    first = run_sync_job(job)
    second = run_sync_job(job)

    assert first is not None and second is not None
    assert first.deploy_requests[application["id"]].startswith(f"{application['id']}-{head[:12]}")
    assert application["id"] not in second.deploy_requests
    deploys = [n for n in _executions_of(application["id"], stack) if head[:12] in n]
    assert deploys == [first.deploy_requests[application["id"]]]


def test_sync_resolves_each_branch_once_and_skips_empty_branches(
    api: httpx.Client, git_repo: Path, unique: str
) -> None:
    commit(git_repo, "app/compose.yaml", compose())
    repository = create_repository(api, git_repo, sync_type="manual")
    agent = create_agent(api, f"host-{unique}")
    for index in range(3):
        create_application(
            api, name=f"app{index}-{unique}", repository_id=repository["id"], agent_id=agent["id"]
        )
    # The API refuses an empty branch; rows stored by earlier versions may still have one.
    empty = store_application(
        name=f"nobranch-{unique}",
        repository_id=repository["id"],
        agent_id=agent["id"],
        branch="",
        path="app/compose.yaml",
    ).model_dump()
    wait_for_idle_sync(repository["id"])
    repo = get_repository(repository["id"])
    source = open_repository(repo)
    calls: list[str] = []

    def resolve(branch: str) -> CommitInfo:
        calls.append(branch)
        return source.latest_commit(branch)

    report = sync_applications(
        repo,
        list_repository_applications(repo.id),
        resolve,
        Trigger.MANUAL,
        source=source,
        job_id=f"job_{unique}",
    )
    assert calls == ["main"]
    assert empty["id"] not in report.applications
    assert len(report.applications) == 3


def _three_applications(
    api: httpx.Client, git_repo: Path, unique: str
) -> tuple[dict, dict, list[dict]]:
    """A manually synced repository and three applications of its one compose file, all on one
    new agent; their first syncs are under way."""
    commit(git_repo, "app/compose.yaml", compose())
    repository = create_repository(api, git_repo, sync_type="manual")
    agent = create_agent(api, f"host-{unique}")
    applications = [
        create_application(
            api, name=f"app{i}-{unique}", repository_id=repository["id"], agent_id=agent["id"]
        )
        for i in range(3)
    ]
    return repository, agent, applications


def test_sync_batch_reads_in_one_call_and_writes_its_applications_together(
    api: httpx.Client, git_repo: Path, unique: str
) -> None:
    repository, agent, applications = _three_applications(api, git_repo, unique)
    wait_for_idle_sync(repository["id"])  # every first sync has written its deploy
    changed = commit(git_repo, "app/compose.yaml", compose(greeting="changed"))
    job = SyncJob(repository_id=repository["id"], trigger=Trigger.MANUAL, job_id=f"job_{unique}")
    plan = plan_sync(job)
    [batch] = plan.batches
    settings = get_settings()

    here = threading.current_thread().name
    with AwsCalls(lambda thread: thread == here or thread.startswith("sync-batch")) as aws:
        report = sync_batch(job, plan, batch)
    end_sync(job, plan, [report])

    assert set(report.applications.values()) == {AppSyncResult.DEPLOYING}
    assert len(report.deploy_requests) == 3
    # The batch: its repository, its rows (with their stored bundles) and their agent (the
    # plan names it) read in one call; one conditional write
    # per row that starts a deploy (numbering its two history entries: the sync's and the
    # deploy's running one, and taking the free deploy slot), one take of the feed's counter
    # numbers the announcements, and one batch holds the entries and announcements.
    assert plan.agent_ids == [agent["id"]]
    assert aws.count("BatchGetItem") == 1
    assert aws.count("GetItem") == 0  # no repository, application or agent read on its own
    assert aws.count("UpdateItem", settings.applications_table) == 3
    assert aws.count("UpdateItem", settings.counters_table) == 1
    assert aws.count("BatchWriteItem") == 1
    assert aws.count("StartExecution") == 3
    assert {name for name, _op, _table in aws.calls} == {"dynamodb", "stepfunctions"}
    for application in applications:
        [started] = [
            e
            for e in list_events(application["id"], limit=5)
            if e.type.value == "commit_sync" and e.commit == changed
        ]
        assert started.request_id == report.deploy_requests[application["id"]]


def test_batch_read_takes_several_tables_in_calls_of_100_keys(
    api: httpx.Client, git_repo: Path, unique: str
) -> None:
    """store/batch_reads.read_batch: the repository, the rows and the agents in one call per
    100 keys; rows that are gone are left out, and a repository that is gone is NotFound."""
    from ferry.errors import NotFound
    from ferry.store.batch_reads import read_batch

    repository, agent, applications = _three_applications(api, git_repo, unique)
    wait_for_idle_sync(repository["id"])
    ids = [a["id"] for a in applications]
    gone = [f"app_gone{i:03d}{unique}" for i in range(120)]
    here = threading.current_thread().name
    with AwsCalls(lambda thread: thread == here) as aws:
        reads = read_batch(repository["id"], [*ids, *gone], [agent["id"], "agent_gone"])
    assert aws.count("BatchGetItem") == 2  # 125 keys, 100 at a time
    assert reads.repository.id == repository["id"]
    assert sorted(reads.applications) == sorted(ids)
    assert reads.applications[ids[0]].application.name == applications[0]["name"]
    assert reads.queue_urls == {agent["id"]: get_agent(agent["id"]).queue_url}
    with pytest.raises(NotFound, match="repository repo_gone not found"):
        read_batch("repo_gone", ids)


def test_plan_sync_of_one_application_reads_only_it(
    api: httpx.Client, git_repo: Path, unique: str
) -> None:
    repository, agent, applications = _three_applications(api, git_repo, unique)
    # Their first deploys end before the measured batch: a deploy still waiting for its agent
    # would end meanwhile and its status write would race the batch's (a retried write).
    scripted = ScriptedAgent(agent_queue_url(agent["id"]))
    for _ in applications:
        scripted.succeed(scripted.take())
    for application in applications:
        wait_for_status(api, application["id"], "synced")
    wait_for_idle_sync(repository["id"])
    job = SyncJob(
        repository_id=repository["id"],
        trigger=Trigger.APPLICATION_CREATED,
        application_id=applications[1]["id"],
        job_id=f"job_{unique}",
    )
    settings = get_settings()
    here = threading.current_thread().name

    with AwsCalls(lambda thread: thread == here) as aws:
        plan = plan_sync(job)

    assert plan.batches == [[applications[1]["id"]]]
    # Its own row, not the repository's applications: registering N of them stays linear.
    assert aws.count("Query", settings.applications_table) == 0
    assert aws.count("GetItem", settings.applications_table) == 1
    end_sync(job, plan, [sync_batch(job, plan, batch) for batch in plan.batches])


def test_two_syncs_of_one_commit_racing_start_one_deploy(
    stack: LocalStack,
    api: httpx.Client,
    git_repo: Path,
    synced_app: tuple[dict, dict, ScriptedAgent],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two deliveries of one push become two syncs of one commit. When the second one's write
    lands between the first one's read of the row and its write, the first must see that the
    commit is already being deployed, not start a second deploy that supersedes the first."""
    from ferry.deploy.status import update_applications_status as write_together

    repository, application, _scripted = synced_app
    head = commit(git_repo, "app/compose.yaml", compose(greeting="once"))
    wait_for_idle_sync(repository["id"])
    jobs = [
        SyncJob(repository_id=repository["id"], trigger=Trigger.WEBHOOK, job_id=f"job_{n}-{head}")
        for n in ("first", "second")
    ]
    plans = [plan_sync(job) for job in jobs]
    second: list[Any] = []

    def second_sync_lands_first(writes: Any) -> Any:
        monkeypatch.setattr("ferry.sync.run.update_applications_status", write_together)
        second.append(sync_batch(jobs[1], plans[1], plans[1].batches[0]))
        return write_together(writes)

    monkeypatch.setattr("ferry.sync.run.update_applications_status", second_sync_lands_first)
    first = sync_batch(jobs[0], plans[0], plans[0].batches[0])
    end_sync(jobs[1], plans[1], second)
    end_sync(jobs[0], plans[0], [first])

    assert second[0].applications[application["id"]] is AppSyncResult.DEPLOYING
    assert first.applications[application["id"]] is AppSyncResult.NO_CHANGE
    deploys = [n for n in _executions_of(application["id"], stack) if head[:12] in n]
    assert deploys == [second[0].deploy_requests[application["id"]]]
    assert stored_application(application["id"]).current_request_id == deploys[0]
