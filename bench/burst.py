"""A burst of 200 deliveries for 5 commits (issue 17, third row).

One application on `main`, an agent that answers every deploy at once. Five commits each change
the compose file; after each, 40 deliveries (each its own delivery id, as a provider retrying or
several hooks would send) are posted by 8 threads. Then every job is waited for and counted:
how many ran a repository sync, how many ended superseded before starting one, how many deploy
executions started, and how many history events the burst added.

Goal: a job whose branch already has a newer job queued ends superseded before it starts, with at
most one history event; so no more syncs run than a handful per commit (≤ 2 per commit here) and
the burst adds at most one history event per delivery.
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter

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
        for n in range(COMMITS):
            commit_file(repo_path, "hello/compose.yaml", COMPOSE.format(n=n), f"burst {n}")

            def send(count: int) -> None:
                for _ in range(count):
                    response = stack.webhook(
                        repository, {"branch": "main"}, **{"Idempotency-Key": uuid.uuid4().hex}
                    )
                    with lock:
                        job_ids.append(response.json()["job_id"])

            senders = [
                threading.Thread(target=send, args=(PER_COMMIT // THREADS,)) for _ in range(THREADS)
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

    deliveries = COMMITS * PER_COMMIT
    met = syncs <= 2 * COMMITS and events <= deliveries
    return [
        Row(
            figure=f"a burst of {deliveries} deliveries for {COMMITS} commits",
            ferry=f"{syncs} syncs ran, {deploys} deploys, {events} history events",
            baseline=f"{COMMITS} commits",
            ratio=round(syncs / COMMITS, 1),
            goal=f"the rest superseded before starting: <= {2 * COMMITS} syncs, <= 1 event/job",
            met=met,
            details={"jobs": len(jobs), "outcomes": dict(outcomes)},
        )
    ]


def _latest_job(repository_id: str) -> str:
    from bench.harness import wait_for
    from ferry.store.repositories import get_repository

    return wait_for(lambda: get_repository(repository_id).sync_job_id, what="the first sync's job")
