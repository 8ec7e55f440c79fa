"""A repository whose sync job died on every receive (and went to the dead-letter queue) does not
stay `syncing` forever: the scheduled poller ends it `failed` once it is past the bound."""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from pynamodb.expressions.update import Action

from ferry.deploy.status import update_application_status
from ferry.domain.models import ApplicationSyncStatus, Repository, RepositorySyncStatus, utcnow
from ferry.local.stack import LocalStack
from ferry.settings import get_settings
from ferry.store.applications import create_application as store_application
from ferry.store.applications import get_application
from ferry.store.changes import changes_after, latest_change
from ferry.store.feed import repository_path
from ferry.store.repositories import get_repository
from ferry.store.tables import RepositoryRow
from ferry.sync.polling import end_stalled_sync, poll_due_repositories, stalled_sync_error
from ferry.sync.status import update_repository_status
from tests.helpers import (
    commit,
    compose,
    create_agent,
    create_repository,
    wait_for,
    wait_for_idle_sync,
)


def _bound() -> int:
    return get_settings().sync_stalled_after_seconds


def _force_syncing(repository_id: str, since: datetime, *, legacy: bool = False) -> None:
    """Leave the repository as a worker that died mid-sync would: `syncing` since `since`
    (`legacy`: a row from before sync_started_at was recorded, only its last write tells)."""
    actions: list[Action] = [RepositoryRow.sync_status.set(RepositorySyncStatus.SYNCING.value)]
    if legacy:
        actions += [RepositoryRow.sync_started_at.remove(), RepositoryRow.updated_at.set(since)]
    else:
        actions.append(RepositoryRow.sync_started_at.set(since))
    RepositoryRow(id=repository_id).update(actions=actions)


def _status_changes(repository_id: str, after: int) -> list[bool]:
    path = repository_path(repository_id)
    return [c.ok for c in changes_after(after) if c.path == path and c.kind == "repository.status"]


@pytest.fixture
def repository(api: httpx.Client, git_repo: Path) -> dict[str, str]:
    commit(git_repo, "app/compose.yaml", compose())
    created = create_repository(api, git_repo, sync_type="manual")
    wait_for_idle_sync(created["id"])
    return created


def test_poller_schedule_ends_a_stalled_sync_failed_and_leaves_applications_alone(
    stack: LocalStack, api: httpx.Client, repository: dict[str, str], unique: str
) -> None:
    # The template's bound reaches the poller (all handlers share this process's environment).
    assert os.environ["FERRY_SYNC_STALLED_AFTER_SECONDS"] == str(_bound())
    agent = create_agent(api, f"host-{unique}")
    # An application no deploy runs for (stored directly: no first sync starts one).
    application_id = store_application(
        name=f"stalled-{unique}",
        repository_id=repository["id"],
        agent_id=agent["id"],
        branch="ghost",
        path="app/compose.yaml",
    ).id
    wait_for_idle_sync(repository["id"])
    update_application_status(application_id, {"sync_status": ApplicationSyncStatus.SYNCING})
    failures = get_repository(repository["id"]).failures
    _force_syncing(repository["id"], utcnow() - timedelta(seconds=_bound() + 60))
    assert api.post(f"/repositories/{repository['id']}/sync").status_code == 409
    before = latest_change()

    assert stack.cloud.scheduler is not None
    stack.cloud.scheduler.fire_all()  # the template's schedule, as EventBridge would

    def ended_failed() -> Repository | None:
        current = get_repository(repository["id"])
        return current if current.sync_status is RepositorySyncStatus.FAILED else None

    ended = wait_for(ended_failed, what="the stalled sync to end failed")
    assert ended.last_sync_error == stalled_sync_error(_bound())
    assert ended.failures == failures + 1
    assert _status_changes(repository["id"], before) == [True]  # announced on the feed, once
    # Only the repository: the application's own state is its deploy layer's business.
    assert get_application(application_id).sync_status is ApplicationSyncStatus.SYNCING
    # And the repository takes syncs again.
    assert api.post(f"/repositories/{repository['id']}/sync").status_code == 202
    wait_for_idle_sync(repository["id"])
    update_application_status(
        application_id, {"sync_status": ApplicationSyncStatus.OUT_OF_SYNC}
    )  # leave nothing `syncing` behind for other tests


def test_poll_leaves_a_sync_within_the_bound_alone(repository: dict[str, str]) -> None:
    update_repository_status(repository["id"], RepositorySyncStatus.SYNCING)  # the worker's write
    syncing = get_repository(repository["id"])
    assert syncing.sync_started_at is not None
    assert utcnow() - syncing.sync_started_at < timedelta(seconds=60)
    before = latest_change()

    assert repository["id"] not in poll_due_repositories()

    after = get_repository(repository["id"])
    assert after.sync_status is RepositorySyncStatus.SYNCING
    assert after.sync_started_at == syncing.sync_started_at
    assert _status_changes(repository["id"], before) == []
    update_repository_status(repository["id"], RepositorySyncStatus.SUCCESS)


def test_poll_ends_a_stalled_sync_from_before_start_times_were_kept(
    repository: dict[str, str],
) -> None:
    _force_syncing(repository["id"], utcnow() - timedelta(seconds=_bound() + 60), legacy=True)
    assert get_repository(repository["id"]).sync_started_at is None

    poll_due_repositories()

    ended = get_repository(repository["id"])
    assert ended.sync_status is RepositorySyncStatus.FAILED
    assert ended.last_sync_error == stalled_sync_error(_bound())


def test_ending_a_stalled_sync_never_overwrites_a_newer_attempt_or_its_result(
    repository: dict[str, str],
) -> None:
    _force_syncing(repository["id"], utcnow() - timedelta(seconds=_bound() + 60))
    stalled = get_repository(repository["id"])  # what the poller read...
    update_repository_status(repository["id"], RepositorySyncStatus.SYNCING)  # ...then a retry
    before = latest_change()

    assert end_stalled_sync(stalled, _bound()) is False
    assert get_repository(repository["id"]).sync_status is RepositorySyncStatus.SYNCING

    update_repository_status(repository["id"], RepositorySyncStatus.SUCCESS)
    assert end_stalled_sync(stalled, _bound()) is False
    finished = get_repository(repository["id"])
    assert (finished.sync_status, finished.last_sync_error) == (RepositorySyncStatus.SUCCESS, None)
    assert _status_changes(repository["id"], before) == [True]  # only the success was announced


def test_one_repository_failing_unexpectedly_does_not_stop_the_tick_for_the_others(
    api: httpx.Client, git_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    commit(git_repo, "app/compose.yaml", compose())
    broken = create_repository(api, git_repo, sync_type="manual")
    polled = create_repository(api, git_repo, sync_type="polling")
    for created in (broken, polled):
        wait_for_idle_sync(created["id"])
    _force_syncing(broken["id"], utcnow() - timedelta(seconds=_bound() + 60))

    from ferry.sync import polling

    def update(repository_id: str, *args: object, **kwargs: object) -> None:
        if repository_id == broken["id"]:
            raise RuntimeError("an error no one planned for")
        update_repository_status(repository_id, *args, **kwargs)  # type: ignore[arg-type]

    # The broken repository comes first, as it may in the table's order.
    monkeypatch.setattr(
        polling,
        "list_repositories",
        lambda: [get_repository(broken["id"]), get_repository(polled["id"])],
    )
    monkeypatch.setattr(polling, "update_repository_status", update)

    queued = poll_due_repositories(now=utcnow() + timedelta(hours=1))

    assert polled["id"] in queued
    monkeypatch.undo()
    wait_for_idle_sync(polled["id"])
    update_repository_status(broken["id"], RepositorySyncStatus.SUCCESS)
