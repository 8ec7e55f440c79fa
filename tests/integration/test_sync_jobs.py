"""Which triggers are the same sync job: a commit named without a delivery id is one job while
that job is in flight, and a new one once it has finished; however many there are, the
application deploys that commit once, and an older commit named again never moves it back (going
back is a rollback's: tests/integration/test_status_truth.py)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from ferry.domain.messages import SyncJob
from ferry.domain.models import Trigger
from ferry.local.stack import LocalStack
from ferry.settings import get_settings
from ferry.store.jobs import (
    forget_job,
    record_finished,
    record_latest_of_branch,
    record_queued,
)
from ferry.sync.queue import enqueue_sync_job, start_sync_execution, superseding_job
from tests.helpers import (
    AwsCalls,
    commit,
    compose,
    create_repository,
    deployed_once,
    events,
    get_application,
    push_webhook,
    sync_worker_paused,
    wait_for,
    wait_for_idle_sync,
    wait_for_status,
)


def _branch_moved(repository_id: str, delivery_id: str, **request: Any) -> SyncJob:
    """A job as a provider's push delivery queues it: the branch moved, its head is resolved
    later."""
    return SyncJob(
        repository_id=repository_id,
        trigger=Trigger.WEBHOOK,
        branch="main",
        delivery_id=delivery_id,
        **request,
    )


def _job_finished(api: httpx.Client, job_id: str) -> bool:
    status = api.get(f"/jobs/{job_id}").json()["status"]
    return bool(status in ("succeeded", "failed", "superseded"))


def test_commit_named_again_after_its_sync_finished_is_synced_again(
    stack: LocalStack, api: httpx.Client, git_repo: Path, unique: str
) -> None:
    first = commit(git_repo, "app/compose.yaml", compose(greeting="a"))
    repository = create_repository(api, git_repo)
    application, scripted = deployed_once(api, repository["id"], unique, commit=first)
    second = commit(git_repo, "app/compose.yaml", compose(greeting="b"))

    def name(sha: str) -> str:
        # A generic sender naming the commit, without a delivery id.
        response = push_webhook(
            stack.api_url,
            repository["id"],
            repository["webhook_secret"],
            {"ref": "refs/heads/main", "commit": sha},
        )
        assert response.status_code == 202, response.text
        return str(response.json()["job_id"])

    with ThreadPoolExecutor(max_workers=10) as pool:
        concurrent = set(pool.map(lambda _n: name(second), range(10)))
    # Repeats arriving while a job is queued or running join it; the sync itself is over in a
    # moment, so later repeats are jobs of their own, which find the commit already recorded.
    assert len(concurrent) < 10
    scripted.succeed(scripted.take())
    with pytest.raises(AssertionError):
        scripted.take(timeout=3)  # one deploy of the commit, whatever the number of jobs
    wait_for_status(api, application["id"], "synced", commit=second)
    wait_for(
        lambda: all(_job_finished(api, job_id) for job_id in concurrent),
        what="every forward job to finish",
    )
    wait_for_idle_sync(repository["id"])

    older = name(first)  # e.g. re-running the workflow of the earlier commit
    wait_for(lambda: _job_finished(api, older), what="the older commit's sync to finish")
    with pytest.raises(AssertionError):
        scripted.take(timeout=3)  # recorded, not deployed: the host stays at the newer commit
    assert get_application(api, application["id"])["commit"] == second
    assert any(
        e["status"] == "ignored" and e["commit"] == first for e in events(api, application["id"])
    )
    wait_for_idle_sync(repository["id"])

    again = name(second)  # the commit of finished jobs, named again: a new job, nothing to deploy
    assert again not in concurrent
    wait_for(lambda: _job_finished(api, again), what="the repeated sync to finish")
    with pytest.raises(AssertionError):
        scripted.take(timeout=3)
    assert get_application(api, application["id"])["sync_status"] == "synced"


def test_concurrent_manual_syncs_queue_one_and_refuse_the_rest(
    stack: LocalStack, api: httpx.Client, git_repo: Path
) -> None:
    commit(git_repo, "app/compose.yaml", compose())
    repository = create_repository(api, git_repo, sync_type="manual")
    wait_for_idle_sync(repository["id"])

    # The accepted sync stays in flight (queued) while the others ask: without the pause it can
    # finish between two requests, and the next request rightly queues a new one.
    with sync_worker_paused(stack), ThreadPoolExecutor(max_workers=10) as pool:
        answers = list(
            pool.map(lambda _n: api.post(f"/repositories/{repository['id']}/sync"), range(10))
        )

    codes = sorted(a.status_code for a in answers)
    assert codes == [202] + [409] * 9, [a.text for a in answers]
    assert all("in flight" in a.json()["detail"] for a in answers if a.status_code == 409)
    [accepted] = [a for a in answers if a.status_code == 202]
    wait_for(lambda: _job_finished(api, accepted.json()["job_id"]), what="the sync to finish")
    wait_for_idle_sync(repository["id"])
    assert api.post(f"/repositories/{repository['id']}/sync").status_code == 202  # free again


def test_job_whose_branch_has_a_newer_job_ends_superseded_without_running(
    api: httpx.Client, git_repo: Path, unique: str
) -> None:
    commit(git_repo, "app/compose.yaml", compose())
    repository = create_repository(api, git_repo)
    application, _scripted = deployed_once(api, repository["id"], unique)
    history = len(events(api, application["id"]))

    def hint(delivery: str) -> SyncJob:
        return _branch_moved(repository["id"], f"{unique}-{delivery}")

    older, newer = hint("older"), hint("newer")
    named = SyncJob(
        repository_id=repository["id"], trigger=Trigger.WEBHOOK, branch="main", commit="a" * 40
    )
    # Recorded as the webhook records them; the worker is then handed them, oldest first.
    for job in (older, named, newer):
        assert record_queued(job)
        if job.commit is None:
            record_latest_of_branch(job)

    assert start_sync_execution(older) is False
    ended = api.get(f"/jobs/{older.job_id}").json()
    assert ended["status"] == "superseded"
    assert ended["result"] == {"skipped": f"superseded by {newer.job_id}"}
    assert ended["execution"] is None  # it never started a sync
    assert start_sync_execution(older) is False  # a redelivery of it starts nothing either
    assert superseding_job(named) is None  # a named commit is never superseded

    assert start_sync_execution(newer) is True  # nothing newer than it: it runs
    wait_for(
        lambda: api.get(f"/jobs/{newer.job_id}").json()["status"] == "succeeded",
        what="the newer job's sync",
    )
    forget_job(named.job_id)
    wait_for_idle_sync(repository["id"])
    # The newer job's one `no_change`; the superseded job added nothing.
    assert len(events(api, application["id"])) == history + 1


def test_job_forgotten_after_an_ambiguous_send_is_still_reported_whole(
    api: httpx.Client, git_repo: Path
) -> None:
    """The webhook forgets a job whose send raised, so that the sender's retry queues it again;
    but a send that timed out may have been delivered all the same. That job's sync still runs,
    and its record must come back whole (it was a bare row with only a status: `GET /jobs/{id}`
    answered 500 and the poller's tick stopped on it)."""
    commit(git_repo, "app/compose.yaml", compose())
    repository = create_repository(api, git_repo, sync_type="manual")
    wait_for_idle_sync(repository["id"])
    job = SyncJob(repository_id=repository["id"], trigger=Trigger.MANUAL, actor="someone")
    assert record_queued(job)
    forget_job(job.job_id)  # enqueue_sync_job's answer to the send's error...

    assert start_sync_execution(job)  # ...which had been delivered after all

    wait_for(  # 404 until the sync's first state writes the job again
        lambda: api.get(f"/jobs/{job.job_id}").json().get("status") == "succeeded",
        what="the job to finish",
    )
    reported = api.get(f"/jobs/{job.job_id}")
    assert reported.status_code == 200, reported.text
    whole = reported.json()
    assert (whole["repository_id"], whole["trigger"], whole["actor"]) == (
        repository["id"],
        "manual",
        "someone",
    )
    assert whole["status"] == "succeeded"


def test_bare_job_row_from_before_reads_as_gone(api: httpx.Client, unique: str) -> None:
    """A progress row written before progress kept the request whole says nothing of the job:
    404 with the reason (it was a 500, and the poller's tick stopped on it)."""
    from ferry.store.tables import JobRow

    JobRow(id=f"job_bare_{unique}").update(actions=[JobRow.status.set("succeeded")])

    answer = api.get(f"/jobs/job_bare_{unique}")

    assert answer.status_code == 404, answer.text
    assert "no record of its request" in answer.json()["detail"]


def test_job_queued_behind_a_newer_one_of_its_branch_never_starts(
    stack: LocalStack, api: httpx.Client, git_repo: Path, unique: str
) -> None:
    """Queued through the webhook's own path while the worker is away, older jobs of a branch
    find the newest one queued behind them when the worker takes them together: they end
    superseded by it without a sync, and it runs. Only the newest reads the branch's row (the
    receive itself shows the older ones a newer job: three jobs made five reads before)."""
    commit(git_repo, "app/compose.yaml", compose())
    repository = create_repository(api, git_repo)
    deployed_once(api, repository["id"], unique)
    wait_for_idle_sync(repository["id"])

    def hint(delivery: str) -> SyncJob:
        return _branch_moved(repository["id"], f"{unique}-{delivery}")

    # The worker's thread, started again on leaving `sync_worker_paused`.
    with AwsCalls(lambda thread: thread.startswith("poller-") and "SyncWorker" in thread) as aws:
        with sync_worker_paused(stack):
            queued = [enqueue_sync_job(hint(name)) for name in ("first", "second", "third")]
        wait_for(lambda: all(_job_finished(api, job_id) for job_id in queued), what="the jobs")

    *older, newest = queued
    assert api.get(f"/jobs/{newest}").json()["status"] == "succeeded"
    for job_id in older:
        ended = api.get(f"/jobs/{job_id}").json()
        assert ended["status"] == "superseded", ended
        assert ended["result"] == {"skipped": f"superseded by {newest}"}
        assert ended["execution"] is None
    assert aws.count("GetItem", get_settings().jobs_table) == 1, aws.calls  # the newest's check
    assert aws.count("StartExecution") == 1, aws.calls


def test_newer_job_that_will_not_run_supersedes_nothing(api: httpx.Client, unique: str) -> None:
    """The branch names the newest job recorded; when that one's send failed (its record was
    forgotten, for the sender to queue it again) or its sync failed, an older job still runs."""
    repository_id = f"repo_{unique}"

    def hint(delivery: str) -> SyncJob:
        return _branch_moved(repository_id, f"{unique}-{delivery}")

    older, forgotten = hint("older"), hint("forgotten")
    for job in (older, forgotten):
        assert record_queued(job)
        record_latest_of_branch(job)
    assert superseding_job(older) == forgotten.job_id
    forget_job(forgotten.job_id)
    assert superseding_job(older) is None

    failed = hint("failed")
    assert record_queued(failed)
    record_latest_of_branch(failed)
    record_finished(failed, ok=False, error="boom", result=None)
    assert superseding_job(older) is None
    assert superseding_job(failed) is None  # the newest one itself


def test_push_is_never_left_to_a_sync_that_started_before_it(
    api: httpx.Client, unique: str
) -> None:
    """A job is superseded only by one recorded after it, which is queued behind it and so
    resolves the head later. Superseding by request times could drop a push: J (pushed after S
    started) gave way to L (requested before J, recorded after it), and L then gave way to S,
    whose sync had begun before J's push."""
    from datetime import timedelta

    from ferry.domain.models import utcnow
    from ferry.store.jobs import record_running

    repository_id = f"repo_{unique}"
    now = utcnow()

    def hint(name: str, requested_seconds_ago: float) -> SyncJob:
        requested_at = now - timedelta(seconds=requested_seconds_ago)
        return _branch_moved(repository_id, f"{unique}-{name}", requested_at=requested_at)

    started, late_pushed, slow = hint("S", 3.0), hint("J", 1.0), hint("L", 2.0)
    assert record_queued(started)
    record_latest_of_branch(started)
    record_running(started)  # S's sync began before J's push
    for job in (late_pushed, slow):  # L was requested before J, but recorded after it
        assert record_queued(job)
        record_latest_of_branch(job)

    assert superseding_job(late_pushed) == slow.job_id  # L is queued behind J
    assert superseding_job(slow) is None  # so L runs, after J's push


def test_supersede_check_is_one_consistent_read_whatever_the_burst(
    api: httpx.Client, unique: str
) -> None:
    """In a burst every job is checked for a newer one of its branch. The check reads the one
    row that names the branch's newest job, strongly consistent (a query of the jobs' index
    would be neither: it read more jobs the longer the burst, and on AWS an index is only
    eventually consistent, so a job queued a moment before could be missed)."""
    repository_id = f"repo_{unique}"
    hints = [_branch_moved(repository_id, f"{unique}-{n}") for n in range(30)]
    for job in hints:
        assert record_queued(job)
        record_latest_of_branch(job)
    here = threading.current_thread().name
    with AwsCalls(lambda thread: thread == here) as aws:
        newer = superseding_job(hints[0])

    assert newer == hints[-1].job_id  # the newest does everything the oldest would
    reads = [(op, table) for _service, op, table in aws.calls if op != "GetItem"]
    assert reads == [], reads  # the branch's row, then the newest job's status: GetItems only
    assert aws.count("GetItem") == 2, aws.calls
