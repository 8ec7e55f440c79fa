"""What the benchmarks share: the embedded cloud in a throw-away home, an API client, counters
of what the control plane asked of AWS, and a stand-in agent that answers deploys at once.

The counters watch every botocore call made in this process except the benchmark's own (its
threads are left out), so a figure can say how many DynamoDB calls, Lambda invocations or
Step Functions transitions a path cost; on AWS each is a round trip or a billed unit.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import boto3
import httpx
from botocore.client import BaseClient

T = TypeVar("T")


def wait_for(
    probe: Callable[[], T | None],
    *,
    timeout: float = 60,
    what: str = "it",
    interval: float = 0.005,
    patience: float = 0.0,
) -> T:
    """Call `probe` until it returns something truthy (a benchmark that hangs says why), every
    `interval` seconds, or every `patience` times the time waited so far when that is longer.

    A probe costs the stack's CPU, which the wait measures too: polled at a fixed rate, a long
    wait pays for many probes (the 500-application sync's wait read its job about 600 times).
    With `patience` the probes grow apart as the wait does, so a figure is late by at most that
    fraction of itself (and `interval`), the same for a short wait and a long one."""
    started = time.monotonic()
    deadline = started + timeout
    while True:
        got = probe()
        if got:
            return got
        now = time.monotonic()
        if now > deadline:
            raise TimeoutError(f"bench: timed out after {timeout} s waiting for {what}")
        time.sleep(max(interval, patience * (now - started)))


class CallCounter:
    """Counts botocore calls by (service, operation), leaving out the benchmark's own threads."""

    def __init__(self) -> None:
        self.counts: collections.Counter[tuple[str, str]] = collections.Counter()
        self._lock = threading.Lock()
        self._excluded: set[int] = set()
        self._original: Any = None

    def exclude_current_thread(self) -> None:
        self._excluded.add(threading.get_ident())

    def install(self) -> None:
        self._original = BaseClient._make_api_call  # type: ignore[attr-defined]
        counter = self

        def counted(client: Any, operation: str, params: Any) -> Any:
            if threading.get_ident() not in counter._excluded:
                service = client.meta.service_model.service_name
                with counter._lock:
                    counter.counts[(service, operation)] += 1
            return counter._original(client, operation, params)

        BaseClient._make_api_call = counted  # type: ignore[attr-defined]

    def uninstall(self) -> None:
        if self._original is not None:
            BaseClient._make_api_call = self._original  # type: ignore[attr-defined]

    def snapshot(self) -> collections.Counter[tuple[str, str]]:
        with self._lock:
            return collections.Counter(self.counts)

    @staticmethod
    def of(counts: collections.Counter[tuple[str, str]], service: str) -> int:
        return sum(n for (s, _op), n in counts.items() if s == service)


class Stack:
    """The embedded cloud (no schedules firing on their own) with the benchmark's hooks."""

    def __init__(self) -> None:
        from ferry.local.cloud import LocalCloud, LocalOptions

        self.home = Path(tempfile.mkdtemp(prefix="ferry-bench-"))
        self.cloud = LocalCloud(LocalOptions(home=self.home, api_port=0, run_schedules=False))
        self.calls = CallCounter()
        self.invocations: collections.Counter[str] = collections.Counter()
        self._agents: list[threading.Thread] = []
        self._stopping = threading.Event()
        self.api: httpx.Client

    def start(self) -> Stack:
        from ferry.store.tokens import create_api_token

        self.calls.exclude_current_thread()
        # Rate limits refuse floods with 429 by design; the benchmarks measure the path behind.
        os.environ["FERRY_WEBHOOK_RATE_PER_MINUTE"] = "1000000"
        self.cloud.start()
        self.calls.install()
        original = self.cloud.lambdas.invoke

        def invoke(function: Any, event: Any) -> tuple[str, bool, str]:
            self.invocations[function.function_name] += 1
            return original(function, event)

        self.cloud.lambdas.invoke = invoke  # type: ignore[method-assign]
        self.api = httpx.Client(
            base_url=f"{self.cloud.api_url}/api/v1",
            headers={"Authorization": f"Bearer {create_api_token('bench')}"},
            timeout=60,
        )
        return self

    def stop(self) -> None:
        self._stopping.set()
        for thread in self._agents:
            thread.join(timeout=5)
        self.calls.uninstall()
        self.cloud.stop()
        os.environ.pop("FERRY_WEBHOOK_RATE_PER_MINUTE", None)

    # -- records -----------------------------------------------------------------------------

    def repository(self, path: Path) -> dict[str, Any]:
        response = self.api.post("/repositories", json={"url": f"file://{path}"})
        response.raise_for_status()
        return dict(response.json())

    def agent(self, name: str) -> tuple[str, str]:
        """A new agent: (id, its queue URL)."""
        from ferry.store.agents import get_agent

        response = self.api.post("/agents", json={"name": name})
        response.raise_for_status()
        agent_id = response.json()["id"]
        return agent_id, get_agent(agent_id).queue_url

    def application(
        self, name: str, repository_id: str, agent_id: str, path: str, branch: str = "main"
    ) -> dict[str, Any]:
        response = self.api.post(
            "/applications",
            json={
                "name": name,
                "repository_id": repository_id,
                "agent_id": agent_id,
                "branch": branch,
                "path": path,
            },
        )
        response.raise_for_status()
        return dict(response.json())

    def webhook(
        self, repository: dict[str, Any], body: dict[str, Any] | None = None, **headers: str
    ) -> httpx.Response:
        response = self.api.post(
            f"/webhooks/repositories/{repository['id']}",
            headers={"Authorization": f"Bearer {repository['webhook_secret']}", **headers},
            json=body or {},
        )
        response.raise_for_status()
        return response

    def wait_job(
        self, job_id: str, timeout: float = 120, interval: float = 0.005, patience: float = 0.0
    ) -> dict[str, Any]:
        from ferry.store.jobs import get_job

        def ended() -> dict[str, Any] | None:
            job = get_job(job_id)
            return job.model_dump() if job.status in ("succeeded", "failed", "superseded") else None

        return wait_for(
            ended,
            timeout=timeout,
            what=f"job {job_id} to end",
            interval=interval,
            patience=patience,
        )

    def sync_transitions(self, job_id: str) -> int:
        """States entered by the job's repository-sync execution (what Step Functions bills),
        once it has ended: a job is recorded finished by one of its states, and the execution
        enters its last ones after that (counted too early, a skipped poll read 2, not 4)."""
        from ferry.aws.executions import sync_execution_arn

        arn = sync_execution_arn(job_id)
        sfn = boto3.client("stepfunctions")
        wait_for(
            lambda: sfn.describe_execution(executionArn=arn)["status"] != "RUNNING",
            what=f"{arn} to end",
        )
        return count_transitions(arn)

    # -- a stand-in agent --------------------------------------------------------------------

    def answering_agent(self, queue_url: str) -> None:
        """Answer every deploy on `queue_url` with success at once, until the stack stops."""

        def run() -> None:
            self.calls.exclude_current_thread()
            sqs, sfn = boto3.client("sqs"), boto3.client("stepfunctions")
            while not self._stopping.is_set():
                for message in sqs.receive_message(
                    QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
                ).get("Messages", []):
                    sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
                    answer(sfn, message["Body"])

        thread = threading.Thread(target=run, name="bench-agent", daemon=True)
        thread.start()
        self._agents.append(thread)


def answer(sfn: Any, body: str) -> str:
    """Answer one deploy message with success; returns the request's commit."""
    from ferry.domain.messages import DeployMessage, DeployRequest

    deploy = DeployMessage.model_validate_json(body)
    request = deploy.request
    assert isinstance(request, DeployRequest)
    # Its execution may have ended meanwhile (superseded, stopped).
    with contextlib.suppress(sfn.exceptions.InvalidToken):
        sfn.send_task_success(
            taskToken=deploy.task_token,
            output=json.dumps(
                {
                    "request_id": request.request_id,
                    "application_id": request.application_id,
                    "success": True,
                    "health": "healthy",
                }
            ),
        )
    return request.commit


def count_transitions(execution_arn: str) -> int:
    sfn = boto3.client("stepfunctions")
    entered = 0
    token: str | None = None
    while True:
        page = (
            sfn.get_execution_history(executionArn=execution_arn, maxResults=1000, nextToken=token)
            if token
            else sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)
        )
        entered += sum(1 for e in page["events"] if e["type"].endswith("StateEntered"))
        token = page.get("nextToken")
        if not token:
            return entered


@contextmanager
def running_stack() -> Iterator[Stack]:
    stack = Stack().start()
    try:
        yield stack
    finally:
        stack.stop()
