"""A burst of 200 deliveries for 5 commits (issue 17, third row).

One application on `main`, an agent that answers every deploy at once. Five commits each change
the compose file; after each, 40 deliveries (each its own delivery id, as a provider retrying or
several hooks would send) are posted by 8 threads. Then every job is waited for and counted:
how many ran a repository sync, how many ended superseded before starting one, how many deploy
executions started, and how many history events the burst added.

Goal (the issue's): a job whose branch already has a newer job queued ends superseded before it
starts, and the burst adds at most one history event per delivery. Measured at the points where
the stack orders jobs, timed in this process (the stack's handlers run in it): when each job was
named its branch's newest (a write before its queue send), when its send returned, and when the
sync worker began the check that starts it or ends it superseded. A job ran behind a newer one
when it started although a job named newest after it had been sent before its check began. The
syncs that ran and the events the burst added are shown beside.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3

from bench.harness import running_stack
from bench.report import Row

COMMITS = 5
PER_COMMIT = 40
THREADS = 8
COMPOSE = "services:\n  web:\n    image: busybox:1.36\n    command: [sleep, '{n}']\n"


def _executions(machine_arn: str) -> int:
    sfn = boto3.client("stepfunctions")
    pages = sfn.get_paginator("list_executions").paginate(stateMachineArn=machine_arn)
    return sum(len(page["executions"]) for page in pages)


def measure() -> list[Row]:
    from ferry.local.sample import commit_file, create_sample_repository
    from ferry.settings import get_settings
    from ferry.store.events import list_events

    with running_stack() as stack:
        repo_path = stack.home / "repo"
        create_sample_repository(repo_path, "busybox:1.36")
        repository = stack.repository(repo_path)
        agent_id, queue = stack.agent("bench")
        stack.answering_agent(queue)
        application = stack.application("bench", repository["id"], agent_id, "hello/compose.yaml")
        settings = get_settings()
        stack.wait_job(_latest_job(repository["id"]))
        events_before = len(list_events(application["id"], limit=1000))
        syncs_before = _executions(settings.sync_state_machine_arn)
        deploys_before = _executions(settings.deploy_state_machine_arn)

        job_ids: list[str] = []
        lock = threading.Lock()
        with _queue_points() as points:
            for n in range(COMMITS):
                commit_file(repo_path, "hello/compose.yaml", COMPOSE.format(n=n), f"burst {n}")

                def send(count: int) -> None:
                    for _ in range(count):
                        response = stack.webhook(
                            repository, {"branch": "main"}, **{"Idempotency-Key": uuid.uuid4().hex}
                        )
                        with lock:
                            job_ids.append(response.json()["job_id"])

                per_thread = PER_COMMIT // THREADS
                senders = [
                    threading.Thread(target=send, args=(per_thread,)) for _ in range(THREADS)
                ]
                for sender in senders:
                    sender.start()
                for sender in senders:
                    sender.join()
            jobs = [stack.wait_job(job_id, timeout=180) for job_id in job_ids]
        outcomes = Counter(
            "superseded" if (job.get("result") or {}).get("skipped") else job["status"]
            for job in jobs
        )
        syncs = _executions(settings.sync_state_machine_arn) - syncs_before
        deploys = _executions(settings.deploy_state_machine_arn) - deploys_before
        events = len(list_events(application["id"], limit=1000)) - events_before
        behind = points.ran_behind_newer()

    deliveries = COMMITS * PER_COMMIT
    # The goal, as it reads: no job starts a sync while a newer job of its branch is
    # already queued, and the burst adds at most one history event per job. How many syncs
    # run besides is a consequence, shown for what it is: a delivery that arrives after the
    # running sync resolved the branch needs a sync of its own (nothing in it says which commit
    # it is about), so their number follows how long a sync takes against how fast deliveries
    # arrive (the target below is the number that would be left if every sync were instant).
    met = not behind and events <= deliveries
    return [
        Row(
            figure=f"a burst of {deliveries} deliveries for {COMMITS} commits",
            ferry=(
                f"{syncs} syncs ran ({len(behind)} while a newer job was queued), "
                f"{deploys} deploys, {events} history events"
            ),
            baseline=f"{COMMITS} commits",
            ratio=round(syncs / COMMITS, 1),
            goal="no job runs while a newer one of its branch is queued; <= 1 event/job",
            met=met,
            details={
                "jobs": len(jobs),
                "outcomes": dict(outcomes),
                "ran_while_a_newer_job_was_queued": len(behind),
                "newer_job_sent_before_the_check_ms": behind,
                "checked_before_a_newer_job_was_named_newest": points.started_by_a_hair(),
                "syncs_if_every_sync_were_instant": COMMITS,
            },
        )
    ]


@dataclass
class _QueuePoints:
    """perf_counter times per job id, taken around the stack's own calls."""

    named_newest: dict[str, tuple[float, float]] = field(default_factory=dict)  # call start, end
    sent: dict[str, float] = field(default_factory=dict)  # when the send returned
    checked: dict[str, float] = field(default_factory=dict)  # when the worker's check began
    started: set[str] = field(default_factory=set)  # checks that found no newer job

    def _newer(self, job_id: str) -> list[str]:
        # Named newest after this job's own naming had returned: unambiguously later.
        _start, end = self.named_newest[job_id]
        return [other for other, (begun, _e) in self.named_newest.items() if begun > end]

    def ran_behind_newer(self) -> list[float]:
        """For each job that started although a newer job had been sent before its check
        began: how long before the check (ms) the first such send returned."""
        gaps = []
        for job_id in self.started & self.named_newest.keys():
            sent = [self.sent[o] for o in self._newer(job_id) if o in self.sent]
            early = [when for when in sent if when < self.checked[job_id]]
            if early:
                gaps.append(round((self.checked[job_id] - min(early)) * 1000, 1))
        return sorted(gaps)

    def started_by_a_hair(self) -> int:
        """Jobs that started although a newer job was named newest before their check ended
        (that job was then queued behind a sync that had begun): the margins, counted."""
        return sum(
            1
            for job_id in self.started & self.named_newest.keys()
            if any(self.named_newest[o][0] < self.checked[job_id] for o in self._newer(job_id))
        )


@contextmanager
def _queue_points() -> Iterator[_QueuePoints]:
    import ferry.sync.queue as queue

    points = _QueuePoints()
    names = ("record_latest_of_branch", "send_sync_job", "superseding_job")
    originals = {name: getattr(queue, name) for name in names}
    name_newest, send, check = originals.values()

    def timed_name_newest(job: Any) -> None:
        begun = time.perf_counter()
        name_newest(job)
        points.named_newest[job.job_id] = (begun, time.perf_counter())

    def timed_send(job: Any) -> None:
        send(job)
        points.sent[job.job_id] = time.perf_counter()

    def timed_check(job: Any) -> str | None:
        points.checked.setdefault(job.job_id, time.perf_counter())
        newer: str | None = check(job)
        if newer is None:
            points.started.add(job.job_id)
        return newer

    timed = (timed_name_newest, timed_send, timed_check)
    for name, replacement in zip(names, timed, strict=True):
        setattr(queue, name, replacement)
    try:
        yield points
    finally:
        for name, original in originals.items():
            setattr(queue, name, original)


def _latest_job(repository_id: str) -> str:
    from bench.harness import wait_for
    from ferry.store.repositories import get_repository

    return wait_for(lambda: get_repository(repository_id).sync_job_id, what="the first sync's job")
