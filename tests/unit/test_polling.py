"""The poller's pure rules: when a sync counts as stalled; the bound's wiring in template.yaml."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from samtranslator.yaml_helper import yaml_parse

from ferry.domain.models import Repository, RepositorySyncStatus
from ferry.settings import Settings
from ferry.sync.polling import stalled_sync_error, sync_stalled

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
BOUND = 3900


def _repository(
    status: RepositorySyncStatus, *, started: datetime | None, updated: datetime | None = None
) -> Repository:
    return Repository(
        id="repo_1",
        url="https://example.com/r.git",
        sync_status=status,
        sync_started_at=started,
        updated_at=updated or NOW,
    )


@pytest.mark.parametrize(
    ("status", "started_ago", "stalled"),
    [
        (RepositorySyncStatus.SYNCING, BOUND + 1, True),
        (RepositorySyncStatus.SYNCING, BOUND, False),  # exactly at the bound: not yet
        (RepositorySyncStatus.SYNCING, 5, False),
        (RepositorySyncStatus.FAILED, BOUND * 10, False),
        (RepositorySyncStatus.SUCCESS, BOUND * 10, False),
        (RepositorySyncStatus.UNKNOWN, BOUND * 10, False),
    ],
)
def test_sync_stalled_only_when_syncing_longer_than_the_bound(
    status: RepositorySyncStatus, started_ago: int, stalled: bool
) -> None:
    repository = _repository(status, started=NOW - timedelta(seconds=started_ago))

    assert sync_stalled(repository, NOW, BOUND) is stalled


def test_sync_stalled_counts_from_the_latest_attempt_not_the_last_edit() -> None:
    # Edited (updated_at) since, but the attempt itself started long ago.
    repository = _repository(
        RepositorySyncStatus.SYNCING, started=NOW - timedelta(hours=2), updated=NOW
    )

    assert sync_stalled(repository, NOW, BOUND) is True


@pytest.mark.parametrize(("updated_ago", "stalled"), [(BOUND + 60, True), (60, False)])
def test_sync_stalled_without_start_time_falls_back_to_last_write(
    updated_ago: int, stalled: bool
) -> None:
    # A row left `syncing` before sync_started_at was recorded.
    repository = _repository(
        RepositorySyncStatus.SYNCING, started=None, updated=NOW - timedelta(seconds=updated_ago)
    )

    assert sync_stalled(repository, NOW, BOUND) is stalled


def test_stalled_sync_error_names_the_bound_and_the_dead_letter_queue() -> None:
    assert stalled_sync_error(3900) == (
        "sync did not finish within 3900 s (its job went to the dead-letter queue)"
    )


def test_template_sets_a_stall_bound_past_every_redelivery_of_a_sync_job() -> None:
    template = yaml_parse((ROOT / "template.yaml").read_text())
    resources = template["Resources"]
    queue = resources["SyncJobsQueue"]["Properties"]
    variables = resources["PollerFunction"]["Properties"]["Environment"]["Variables"]
    bound = int(variables["FERRY_SYNC_STALLED_AFTER_SECONDS"])

    # The job's last receive must have ended (and moved it to the DLQ) before the sync is ended.
    every_receive = int(queue["VisibilityTimeout"]) * int(queue["RedrivePolicy"]["maxReceiveCount"])
    assert bound > every_receive
    assert bound == Settings.model_fields["sync_stalled_after_seconds"].default
