"""Jobs of one receive of the sync queue that a newer job behind them, in the same receive,
makes needless (`ferry.sync.queue.superseded_in_receive`): the worker ends them superseded
without reading the branch's row. The rules are `superseding_job`'s, read from the receive's
order instead of the row (tests/integration/test_sync_jobs.py covers the row)."""

from __future__ import annotations

from typing import Any

from ferry.domain.messages import SyncJob
from ferry.domain.models import Trigger
from ferry.sync.queue import superseded_in_receive


def _moved(delivery: str, **request: Any) -> SyncJob:
    fields: dict[str, Any] = {"repository_id": "repo_1", "trigger": Trigger.WEBHOOK}
    fields |= {"branch": "main"} | request
    return SyncJob(delivery_id=delivery, **fields)


def test_superseded_in_receive_names_the_newest_job_behind_each_one_of_its_branch() -> None:
    first, second, third = _moved("1"), _moved("2"), _moved("3")

    superseded = superseded_in_receive([(first, True), (second, True), (third, True)])

    assert superseded == {first.job_id: third.job_id, second.job_id: third.job_id}


def test_superseded_in_receive_keeps_branches_triggers_and_repositories_apart() -> None:
    main = _moved("main")
    others = [
        _moved("develop", branch="develop"),
        _moved("polled", trigger=Trigger.POLLING),
        _moved("elsewhere", repository_id="repo_2"),
    ]

    assert superseded_in_receive([(main, True), *((job, True) for job in others)]) == {}


def test_superseded_in_receive_never_involves_a_job_naming_a_commit_a_tag_or_an_application() -> (
    None
):
    older = _moved("older")
    pinned = [
        _moved("commit", commit="a" * 40),
        _moved("tag", commit="b" * 40, tag="v1"),
        _moved("application", application_id="app_1"),
    ]

    assert superseded_in_receive([(job, True) for job in (*pinned, older, *pinned)]) == {}


def test_superseded_in_receive_takes_no_redelivered_job_as_the_newer_one() -> None:
    # A redelivered job may already have run and failed; a failed job supersedes nothing.
    older, between, redelivered = _moved("older"), _moved("between"), _moved("again")

    assert superseded_in_receive([(older, True), (redelivered, False)]) == {}
    assert superseded_in_receive([(older, True), (between, True), (redelivered, False)]) == {
        older.job_id: between.job_id
    }
    # A redelivered older job still gives way to a first-received newer one.
    assert superseded_in_receive([(redelivered, False), (older, True)]) == {
        redelivered.job_id: older.job_id
    }
