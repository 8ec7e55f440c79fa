"""The agent's scheduler without Docker: per-application order, parallelism, keep-alive, hand-back
on stop, cancellation when the task ends, when the AWS session is refreshed, and how the health
watcher debounces, reports and reconnects.

SQS and Step Functions are moto in-process, executing a one-state machine that does what the
deploy state machine's DispatchToAgent does (`sqs:sendMessage.waitForTaskToken`), so task tokens,
heartbeats, answers and stopped executions are moto's real behaviour. Docker is the one edge
replaced: `RecordingRunner` records when each job starts and ends and holds it until released.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import boto3
import docker.errors
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.core.authorization import disable_iam_authentication

from ferry.domain.messages import AgentSession, AwsCredentials, DeployRequest
from ferry.domain.models import HealthStatus
from ferry_agent.aws_access import AwsAccess, refresh_at
from ferry_agent.compose import DeployCancelled, Snapshot
from ferry_agent.control_plane import ReportRefused, TokenRefused
from ferry_agent.health import HealthWatcher
from ferry_agent.worker import Worker
from tests.helpers import dispatch_definition, wait_for

HEARTBEAT_SECONDS = 3  # the keeper beats every second
QUEUE_VISIBILITY_SECONDS = 2  # shorter than a held job waits in these tests


class RecordingRunner:
    """Stands in for the Docker host: records each job's start and end, holds it until released
    (or cancelled)."""

    def __init__(self) -> None:
        self.log: list[tuple[str, str]] = []
        self._gates: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    def _gate(self, request_id: str) -> threading.Event:
        with self._lock:
            return self._gates.setdefault(request_id, threading.Event())

    def _record(self, what: str, request_id: str) -> None:
        with self._lock:
            self.log.append((what, request_id))

    def release(self, request_id: str) -> None:
        self._gate(request_id).set()

    def seen(self, what: str) -> list[str]:
        with self._lock:
            return [request_id for event, request_id in self.log if event == what]

    def deploy(self, job: DeployRequest, cancel: threading.Event) -> Snapshot:
        self._record("start", job.request_id)
        gate = self._gate(job.request_id)
        while not gate.wait(0.02):
            if cancel.is_set():
                self._record("cancelled", job.request_id)
                raise DeployCancelled("stopped")
        self._record("end", job.request_id)
        return Snapshot(health=HealthStatus.HEALTHY)

    def remove(self, project_name: str, cancel: threading.Event) -> None:
        self._record("remove", project_name)


@dataclass(frozen=True)
class Dispatched:
    job: DeployRequest
    execution_arn: str


class StateMachine:
    """One waitForTaskToken state that puts `{task_token, job}` on the agent's queue."""

    def __init__(self, queue_url: str) -> None:
        self.sfn = boto3.client("stepfunctions")
        definition = dispatch_definition(
            queue_url=queue_url, heartbeat_seconds=60, timeout_seconds=300
        )
        self.arn = self.sfn.create_state_machine(
            name="dispatch",
            definition=json.dumps(definition),
            roleArn="arn:aws:iam::123456789012:role/dispatch",
        )["stateMachineArn"]

    def dispatch(self, application_id: str, number: int) -> Dispatched:
        job = DeployRequest(
            request_id=f"{application_id}-{number}",
            application_id=application_id,
            application_name=application_id,
            project_name=application_id,
            commit="0" * 40,
            compose_path="compose.yaml",
            compose_file="services: {}\n",
            heartbeat_seconds=HEARTBEAT_SECONDS,
        )
        execution = self.sfn.start_execution(
            stateMachineArn=self.arn,
            name=job.request_id,
            input=json.dumps({"request": job.model_dump()}),
        )
        return Dispatched(job=job, execution_arn=execution["executionArn"])

    def status(self, dispatched: Dispatched) -> str:
        return self.sfn.describe_execution(executionArn=dispatched.execution_arn)["status"]

    def output(self, dispatched: Dispatched) -> dict[str, Any]:
        wait_for(lambda: self.status(dispatched) == "SUCCEEDED", timeout=10, what="the execution")
        described = self.sfn.describe_execution(executionArn=dispatched.execution_arn)
        return dict(json.loads(described["output"]))

    def stop(self, dispatched: Dispatched) -> None:
        self.sfn.stop_execution(executionArn=dispatched.execution_arn, error="Cancelled")


@dataclass
class Harness:
    queue_url: str
    machine: StateMachine
    runner: RecordingRunner
    aws: AwsAccess

    def worker(self, **options: Any) -> Worker:
        worker = Worker(self.aws, self.runner, poll_wait_seconds=1, **options)
        self._workers.append(worker)
        return worker

    def messages_in_queue(self) -> int:
        attributes = boto3.client("sqs").get_queue_attributes(
            QueueUrl=self.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return sum(int(value) for value in attributes.values())

    def held(self) -> int:
        """Messages taken and not handed back (by the worker: the tests themselves take none
        before they check this)."""
        attributes = boto3.client("sqs").get_queue_attributes(
            QueueUrl=self.queue_url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"]
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessagesNotVisible"])

    def take_visible(self) -> list[str]:
        """Request ids of the messages another agent process could take right now."""
        messages = (
            boto3.client("sqs")
            .receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
            .get("Messages", [])
        )
        return [json.loads(m["Body"])["request"]["request_id"] for m in messages]

    def __post_init__(self) -> None:
        self._workers: list[Worker] = []

    def close(self) -> None:
        for worker in self._workers:
            worker.stop_grace_seconds = 0
            for request_id in self.runner.seen("start"):
                self.runner.release(request_id)
            worker.shutdown()


def session(**overrides: Any) -> AgentSession:
    return AgentSession(
        **{
            "agent_id": "agt_1",
            "name": "test",
            "queue_url": "",
            "region": "us-east-1",
            **overrides,
        }
    )


@pytest.fixture
def harness(monkeypatch: pytest.MonkeyPatch) -> Iterator[Harness]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    # moto's IAM checks are process-wide: a local stack started earlier in this test session (it
    # turns them on) must not check this test's placeholder credentials.
    with (
        disable_iam_authentication(),
        mock_aws(config={"stepfunctions": {"execute_state_machine": True}}),
    ):
        queue_url = boto3.client("sqs").create_queue(
            QueueName="ferry-agent-agt_1",
            Attributes={"VisibilityTimeout": str(QUEUE_VISIBILITY_SECONDS)},
        )["QueueUrl"]
        aws = AwsAccess(lambda: session(queue_url=queue_url), session(queue_url=queue_url))
        built = Harness(queue_url, StateMachine(queue_url), RecordingRunner(), aws)
        yield built
        built.close()


def _started(runner: RecordingRunner, *request_ids: str) -> bool:
    return set(request_ids) <= set(runner.seen("start"))


def test_worker_jobs_of_one_application_run_one_after_another_in_arrival_order(
    harness: Harness,
) -> None:
    runner, machine = harness.runner, harness.machine
    harness.worker().start()
    first = machine.dispatch("app_a", 1)
    wait_for(lambda: _started(runner, "app_a-1"), timeout=10, what="app_a-1 to start")
    second = machine.dispatch("app_a", 2)
    wait_for(lambda: harness.held() == 2, timeout=10, what="app_a-2 to be taken")
    # Longer than the queue's own visibility timeout: the waiting message must be kept hidden.
    time.sleep(QUEUE_VISIBILITY_SECONDS + 1)

    assert runner.seen("start") == ["app_a-1"]
    runner.release("app_a-1")
    wait_for(lambda: _started(runner, "app_a-2"), timeout=10, what="app_a-2 to start")
    runner.release("app_a-2")

    assert machine.output(first)["success"] is True
    assert machine.output(second)["request_id"] == "app_a-2"
    assert runner.log == [
        ("start", "app_a-1"),
        ("end", "app_a-1"),
        ("start", "app_a-2"),
        ("end", "app_a-2"),
    ]
    wait_for(lambda: harness.messages_in_queue() == 0, timeout=10, what="messages deleted")


def test_worker_jobs_of_different_applications_run_in_parallel(harness: Harness) -> None:
    runner, machine = harness.runner, harness.machine
    harness.worker(max_parallel_deploys=3).start()
    dispatched = [machine.dispatch(application, 1) for application in ("app_a", "app_b", "app_c")]

    wait_for(
        lambda: _started(runner, "app_a-1", "app_b-1", "app_c-1"),
        timeout=10,
        what="all three to run at once",
    )
    assert runner.seen("end") == []
    for job in dispatched:
        runner.release(job.job.request_id)
    assert all(machine.output(job)["success"] for job in dispatched)


def test_worker_parallel_limit_reached_takes_no_more_messages(harness: Harness) -> None:
    runner, machine = harness.runner, harness.machine
    harness.worker(max_parallel_deploys=2).start()
    machine.dispatch("app_a", 1)
    machine.dispatch("app_b", 1)
    wait_for(lambda: _started(runner, "app_a-1", "app_b-1"), timeout=10, what="two jobs")
    machine.dispatch("app_c", 1)

    # Left in the queue for another agent process, not held here.
    assert wait_for(harness.take_visible, timeout=10, what="app_c-1 visible") == ["app_c-1"]
    runner.release("app_a-1")
    wait_for(lambda: _started(runner, "app_c-1"), timeout=10, what="app_c-1 to start")


def test_worker_stop_hands_back_waiting_job_and_finishes_running_one(harness: Harness) -> None:
    runner, machine = harness.runner, harness.machine
    worker = harness.worker()
    worker.start()
    running = machine.dispatch("app_a", 1)
    wait_for(lambda: _started(runner, "app_a-1"), timeout=10, what="app_a-1 to start")
    waiting = machine.dispatch("app_a", 2)
    wait_for(lambda: harness.held() == 2, timeout=10, what="app_a-2 to be taken")
    outcome: list[bool] = []
    stopper = threading.Thread(target=lambda: outcome.append(worker.shutdown()))

    stopper.start()

    assert wait_for(harness.take_visible, timeout=10, what="app_a-2 handed back") == ["app_a-2"]
    assert stopper.is_alive()  # still waiting for the running job
    runner.release("app_a-1")
    stopper.join(timeout=10)
    assert outcome == [True]
    assert machine.output(running)["success"] is True
    assert machine.status(waiting) == "RUNNING"  # another agent process will answer it
    assert "app_a-2" not in runner.seen("start")


def test_worker_stop_grace_over_stops_running_job_and_hands_it_back(harness: Harness) -> None:
    runner, machine = harness.runner, harness.machine
    worker = harness.worker(stop_grace_seconds=0.5)
    worker.start()
    running = machine.dispatch("app_a", 1)
    wait_for(lambda: _started(runner, "app_a-1"), timeout=10, what="app_a-1 to start")

    assert worker.shutdown() is True

    assert runner.seen("cancelled") == ["app_a-1"]
    assert harness.take_visible() == ["app_a-1"]
    assert machine.status(running) == "RUNNING"


def test_worker_execution_stopped_cancels_running_job_without_answer(harness: Harness) -> None:
    runner, machine = harness.runner, harness.machine
    harness.worker().start()
    cancelled = machine.dispatch("app_a", 1)
    wait_for(lambda: _started(runner, "app_a-1"), timeout=10, what="app_a-1 to start")

    machine.stop(cancelled)

    wait_for(lambda: runner.seen("cancelled"), timeout=10, what="the job to be stopped")
    wait_for(lambda: harness.messages_in_queue() == 0, timeout=10, what="its message deleted")
    # Never answered (moto ends a stopped execution FAILED rather than ABORTED).
    assert machine.status(cancelled) in ("ABORTED", "FAILED")
    assert runner.seen("end") == []


def test_worker_execution_stopped_drops_waiting_job_unstarted(harness: Harness) -> None:
    runner, machine = harness.runner, harness.machine
    harness.worker().start()
    machine.dispatch("app_a", 1)
    wait_for(lambda: _started(runner, "app_a-1"), timeout=10, what="app_a-1 to start")
    waiting = machine.dispatch("app_a", 2)
    wait_for(lambda: harness.held() == 2, timeout=10, what="app_a-2 to be taken")

    machine.stop(waiting)

    wait_for(lambda: harness.messages_in_queue() == 1, timeout=10, what="app_a-2 deleted")
    runner.release("app_a-1")
    wait_for(lambda: harness.messages_in_queue() == 0, timeout=10, what="app_a-1 answered")
    assert runner.seen("start") == ["app_a-1"]


class CurrentJobs:
    """The control plane's answer to "is this deploy still current?" (GET agent/requests/{id})."""

    def __init__(self) -> None:
        self.withdrawn: set[str] = set()
        self.unreachable = False
        self.asked: list[str] = []

    def __call__(self, job: DeployRequest) -> bool:
        self.asked.append(job.request_id)
        if self.unreachable:
            raise ConnectionError("the Ferry API is away")
        return job.request_id not in self.withdrawn


def test_worker_job_no_longer_current_stopped_and_its_task_ended(harness: Harness) -> None:
    runner, machine = harness.runner, harness.machine
    current = CurrentJobs()
    harness.worker(request_is_current=current).start()
    withdrawn = machine.dispatch("app_a", 1)
    wait_for(lambda: _started(runner, "app_a-1"), timeout=10, what="app_a-1 to start")

    current.withdrawn.add("app_a-1")  # cancelled or superseded on the control plane

    wait_for(lambda: runner.seen("cancelled"), timeout=10, what="the job to be stopped")
    wait_for(lambda: harness.messages_in_queue() == 0, timeout=10, what="its message deleted")
    wait_for(lambda: machine.status(withdrawn) == "FAILED", timeout=10, what="its task ended")
    assert runner.seen("end") == []


def test_worker_job_not_current_when_its_turn_comes_dropped_unstarted(harness: Harness) -> None:
    runner, machine = harness.runner, harness.machine
    current = CurrentJobs()
    harness.worker(request_is_current=current).start()
    machine.dispatch("app_a", 1)
    wait_for(lambda: _started(runner, "app_a-1"), timeout=10, what="app_a-1 to start")
    superseded = machine.dispatch("app_a", 2)
    wait_for(lambda: harness.held() == 2, timeout=10, what="app_a-2 to be taken")
    current.withdrawn.add("app_a-2")

    runner.release("app_a-1")

    wait_for(lambda: harness.messages_in_queue() == 0, timeout=10, what="both messages gone")
    wait_for(lambda: machine.status(superseded) == "FAILED", timeout=10, what="its task ended")
    assert runner.seen("start") == ["app_a-1"]


def test_worker_control_plane_unreachable_keeps_job_running(harness: Harness) -> None:
    runner, machine = harness.runner, harness.machine
    current = CurrentJobs()
    current.unreachable = True
    harness.worker(request_is_current=current).start()
    dispatched = machine.dispatch("app_a", 1)
    wait_for(lambda: _started(runner, "app_a-1"), timeout=10, what="app_a-1 to start")
    wait_for(lambda: len(current.asked) >= 3, timeout=10, what="asked at start and twice more")

    runner.release("app_a-1")

    assert machine.output(dispatched)["success"] is True
    assert runner.seen("cancelled") == []


class Heartbeats:
    """The API's heartbeat route: answers until the agent's token is rotated, then refuses it."""

    def __init__(self) -> None:
        self.rotated = threading.Event()
        self.refused = 0

    def __call__(self) -> None:
        if self.rotated.is_set():
            self.refused += 1
            raise TokenRefused("the Ferry API refused the agent token (401)")


def test_worker_token_refused_at_heartbeat_takes_no_more_jobs_and_hands_back_waiting(
    harness: Harness,
) -> None:
    runner, machine = harness.runner, harness.machine
    heartbeats = Heartbeats()
    worker = harness.worker(contact=heartbeats, contact_every_seconds=0.2)
    outcome: list[bool] = []
    serving = threading.Thread(target=lambda: outcome.append(worker.run_forever()))
    serving.start()
    machine.dispatch("app_a", 1)
    wait_for(lambda: _started(runner, "app_a-1"), timeout=10, what="app_a-1 to start")
    machine.dispatch("app_a", 2)
    wait_for(lambda: harness.held() == 2, timeout=10, what="app_a-2 to be taken")

    heartbeats.rotated.set()

    wait_for(worker.token_refused.is_set, timeout=5, what="the refusal at the next heartbeat")
    assert heartbeats.refused == 1
    assert wait_for(harness.take_visible, timeout=10, what="app_a-2 handed back") == ["app_a-2"]
    machine.dispatch("app_b", 1)
    assert wait_for(harness.take_visible, timeout=10, what="app_b-1 left in the queue") == [
        "app_b-1"
    ]
    runner.release("app_a-1")  # the running one may finish
    serving.join(timeout=10)
    assert outcome == [True]
    assert runner.seen("start") == ["app_a-1"]


class RefusingStepFunctions:
    """The real (moto) Step Functions client, except that heartbeats are refused with `code`
    once `refuse` is set: the errors Step Functions answers for a task that ended."""

    def __init__(self, client: Any, code: str) -> None:
        self._client = client
        self.code = code
        self.refuse = threading.Event()
        self.refused = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def send_task_heartbeat(self, **kwargs: Any) -> Any:
        if self.refuse.is_set():
            self.refused += 1
            raise ClientError({"Error": {"Code": self.code, "Message": "ended"}}, "Heartbeat")
        return self._client.send_task_heartbeat(**kwargs)


@dataclass
class RefusingAccess:
    aws: AwsAccess
    sfn_client: RefusingStepFunctions

    @property
    def queue_url(self) -> str:
        return self.aws.queue_url

    def sqs(self) -> Any:
        return self.aws.sqs()

    def sfn(self) -> Any:
        return self.sfn_client


@pytest.mark.parametrize("code", ["TaskTimedOut", "InvalidToken", "TaskDoesNotExist"])
def test_worker_heartbeat_refused_as_ended_cancels_job(harness: Harness, code: str) -> None:
    refusing = RefusingStepFunctions(harness.aws.sfn(), code)
    worker = Worker(RefusingAccess(harness.aws, refusing), harness.runner, poll_wait_seconds=1)
    worker.start()
    try:
        harness.machine.dispatch("app_a", 1)
        wait_for(lambda: _started(harness.runner, "app_a-1"), timeout=10, what="a start")

        refusing.refuse.set()

        wait_for(lambda: harness.runner.seen("cancelled"), timeout=10, what="a cancel")
        wait_for(lambda: harness.messages_in_queue() == 0, timeout=10, what="deleted")
    finally:
        worker.shutdown()


@pytest.mark.parametrize("code", ["ThrottlingException", "ServiceUnavailable"])
def test_worker_heartbeat_failing_otherwise_keeps_job_running(harness: Harness, code: str) -> None:
    refusing = RefusingStepFunctions(harness.aws.sfn(), code)
    worker = Worker(RefusingAccess(harness.aws, refusing), harness.runner, poll_wait_seconds=1)
    worker.start()
    try:
        dispatched = harness.machine.dispatch("app_a", 1)
        wait_for(lambda: _started(harness.runner, "app_a-1"), timeout=10, what="a start")
        refusing.refuse.set()
        wait_for(lambda: refusing.refused >= 2, timeout=10, what="two failed heartbeats")

        refusing.refuse.clear()
        harness.runner.release("app_a-1")

        assert harness.machine.output(dispatched)["success"] is True
        assert harness.runner.seen("cancelled") == []
    finally:
        worker.shutdown()


def test_worker_malformed_message_deleted_without_running(harness: Harness) -> None:
    harness.worker().start()
    boto3.client("sqs").send_message(QueueUrl=harness.queue_url, MessageBody='{"job": 1}')

    wait_for(lambda: harness.messages_in_queue() == 0, timeout=10, what="the message dropped")
    assert harness.runner.log == []


NOW = datetime(2030, 1, 1, tzinfo=UTC)
FIVE_MINUTES = timedelta(minutes=5)


def test_refresh_at_hour_long_credentials_margin_before_expiry() -> None:
    assert refresh_at(NOW + timedelta(hours=1), NOW, FIVE_MINUTES) == NOW + timedelta(minutes=55)


def test_refresh_at_credentials_shorter_than_margin_halfway() -> None:
    assert refresh_at(NOW + timedelta(minutes=4), NOW, FIVE_MINUTES) == NOW + timedelta(minutes=2)


def test_refresh_at_expired_credentials_now() -> None:
    assert refresh_at(NOW - timedelta(seconds=1), NOW, FIVE_MINUTES) == NOW


def _credentials(key: str, lifetime: timedelta) -> AwsCredentials:
    return AwsCredentials(
        access_key_id=key,
        secret_access_key="secret",
        session_token="token",
        expiration=datetime.now(UTC) + lifetime,
    )


def test_aws_access_without_credentials_never_refreshes(harness: Harness) -> None:
    assert harness.aws.next_refresh() is None


def test_aws_access_credentials_expiring_refreshed_and_clients_swapped(
    harness: Harness,
) -> None:
    fetched: list[AgentSession] = []

    def fetch() -> AgentSession:
        fetched.append(
            session(
                queue_url=harness.queue_url,
                credentials=_credentials(f"AKIA{len(fetched) + 2}", timedelta(hours=1)),
            )
        )
        return fetched[-1]

    first = session(
        queue_url=harness.queue_url, credentials=_credentials("AKIA1", timedelta(seconds=1))
    )
    aws = AwsAccess(fetch, first, refresh_margin_seconds=300)
    old_client = aws.sqs()
    aws.start()
    try:
        refreshed = wait_for(
            lambda: aws.session.credentials and aws.session.credentials.access_key_id == "AKIA2",
            timeout=5,
            what="the refresh",
        )
    finally:
        aws.stop()

    assert refreshed
    assert len(fetched) == 1  # the new session lasts an hour: next refresh in 55 minutes
    assert aws.sqs() is not old_client
    next_refresh = aws.next_refresh()
    assert next_refresh is not None
    assert next_refresh > datetime.now(UTC) + timedelta(minutes=54)
    # A client taken before the swap still works for the call under way.
    assert old_client.get_queue_url(QueueName="ferry-agent-agt_1")["QueueUrl"]


# --- the health watcher: debounce, change-only reports, reconnects -----------------------------
# Docker is faked at the SDK's surface the watcher uses (event stream, container list), like the
# runner above: the daemon's events and its going away are what these tests script.


_GONE = object()


class FakeStream:
    def __init__(self, events: queue.Queue[object]) -> None:
        self._events = events

    def __iter__(self) -> Iterator[dict[str, Any]]:
        while True:
            event = self._events.get()
            if event is _GONE:
                raise docker.errors.APIError("the daemon went away")
            if event is None:
                return
            assert isinstance(event, dict)
            yield event

    def close(self) -> None:
        self._events.put(None)


class FakeDocker:
    """A daemon whose containers and events the test sets, and which can go away."""

    def __init__(self) -> None:
        self.states: dict[str, str] = {}  # container name → state
        self.applications: dict[str, str] = {}  # container name → application id
        self.up = True
        self.connections = 0
        self._events: queue.Queue[object] = queue.Queue()

    def container(self, name: str, application_id: str, state: str = "running") -> None:
        self.applications[name] = application_id
        self.states[name] = state

    def emit(self, name: str, action: str) -> None:
        self._events.put(
            {
                "Type": "container",
                "Action": action,
                "Actor": {"Attributes": {"ferry.application-id": self.applications[name]}},
            }
        )

    def go_away(self) -> None:
        self.up = False
        self._events.put(_GONE)

    def come_back(self) -> None:
        self.up = True

    # The client surface (docker.DockerClient).
    def client(self) -> FakeDocker:
        if not self.up:
            raise docker.errors.DockerException("cannot connect to the Docker daemon")
        return self

    def events(self, **_options: Any) -> FakeStream:
        self.connections += 1
        return FakeStream(self._events)

    @property
    def containers(self) -> FakeContainers:
        return FakeContainers(self)

    def close(self) -> None:
        pass


class FakeContainers:
    def __init__(self, daemon: FakeDocker) -> None:
        self._daemon = daemon

    def list(self, *, all: bool, filters: dict[str, str]) -> list[Any]:
        daemon = self._daemon
        if not daemon.up:
            raise docker.errors.DockerException("cannot connect to the Docker daemon")
        _, _, wanted = filters["label"].partition("=")
        return [
            SimpleNamespace(
                name=name,
                labels={"ferry.application-id": application},
                status=daemon.states[name],
                attrs={"State": {"Status": daemon.states[name]}, "Config": {"Image": "busybox"}},
            )
            for name, application in daemon.applications.items()
            if not wanted or application == wanted
        ]


class RecordingReporter:
    def __init__(self, refuse: frozenset[str] = frozenset()) -> None:
        self.reports: list[tuple[str, HealthStatus]] = []
        self.refuse = refuse

    def report_health(
        self, application_id: str, health: HealthStatus, detail: str | None = None
    ) -> None:
        if application_id in self.refuse:
            raise ReportRefused(f"{application_id} is not ours")
        self.reports.append((application_id, health))


@pytest.fixture
def daemon() -> FakeDocker:
    fake = FakeDocker()
    fake.container("a-web-1", "app_a")
    return fake


@contextmanager
def watching(
    daemon: FakeDocker, reporter: RecordingReporter, **options: Any
) -> Iterator[HealthWatcher]:
    watcher = HealthWatcher(
        daemon.client,
        reporter,
        **{"debounce_seconds": 0.3, "resync_seconds": 600, "reconnect_max_seconds": 0.2, **options},
    )
    watcher.start()
    try:
        yield watcher
    finally:
        watcher.stop()


def test_health_watcher_start_reports_current_health_once(daemon: FakeDocker) -> None:
    reporter = RecordingReporter()
    with watching(daemon, reporter):
        wait_for(lambda: reporter.reports, timeout=5, what="the first resync")
    assert reporter.reports == [("app_a", HealthStatus.HEALTHY)]


def test_health_watcher_event_burst_reported_once_when_quiet(daemon: FakeDocker) -> None:
    reporter = RecordingReporter()
    with watching(daemon, reporter):
        wait_for(lambda: reporter.reports, timeout=5, what="the first resync")

        daemon.states["a-web-1"] = "exited"
        for action in ("kill", "die", "stop"):
            daemon.emit("a-web-1", action)
        wait_for(lambda: len(reporter.reports) == 2, timeout=5, what="the change")
        daemon.emit("a-web-1", "die")  # no change in the settled health: nothing to say
        daemon.states["a-web-1"] = "running"
        daemon.emit("a-web-1", "start")
        wait_for(lambda: len(reporter.reports) == 3, timeout=5, what="the recovery")

    assert reporter.reports == [
        ("app_a", HealthStatus.HEALTHY),
        ("app_a", HealthStatus.UNHEALTHY),
        ("app_a", HealthStatus.HEALTHY),
    ]


def test_health_watcher_daemon_gone_reconnects_and_resyncs(daemon: FakeDocker) -> None:
    reporter = RecordingReporter()
    with watching(daemon, reporter):
        wait_for(lambda: reporter.reports, timeout=5, what="the first resync")

        daemon.go_away()
        daemon.states["a-web-1"] = "exited"  # while nobody could see it happen
        time.sleep(0.5)  # a few failed reconnects
        daemon.come_back()

        wait_for(lambda: len(reporter.reports) == 2, timeout=5, what="the resync")
    assert reporter.reports[-1] == ("app_a", HealthStatus.UNHEALTHY)
    assert daemon.connections == 2


def test_health_watcher_refused_application_not_reported_again(daemon: FakeDocker) -> None:
    daemon.container("b-web-1", "app_b")
    reporter = RecordingReporter(refuse=frozenset({"app_b"}))
    with watching(daemon, reporter):
        wait_for(lambda: reporter.reports, timeout=5, what="the first resync")
        reporter.refuse = frozenset()

        daemon.states["b-web-1"] = "exited"
        daemon.emit("b-web-1", "die")
        daemon.states["a-web-1"] = "exited"
        daemon.emit("a-web-1", "die")

        wait_for(lambda: len(reporter.reports) == 2, timeout=5, what="app_a's change")
    assert [application for application, _ in reporter.reports] == ["app_a", "app_a"]


def test_health_watcher_application_busy_left_to_the_job_then_read(daemon: FakeDocker) -> None:
    reporter = RecordingReporter()
    with watching(daemon, reporter) as watcher:
        wait_for(lambda: reporter.reports, timeout=5, what="the first resync")
        watcher.request_started("app_a")

        daemon.states["a-web-1"] = "exited"
        daemon.emit("a-web-1", "die")
        time.sleep(0.6)  # twice the debounce: held back while the job runs
        assert len(reporter.reports) == 1
        watcher.request_finished("app_a", HealthStatus.HEALTHY, removed=False)

        wait_for(lambda: len(reporter.reports) == 2, timeout=5, what="the read after the job")
    assert reporter.reports[-1] == ("app_a", HealthStatus.UNHEALTHY)


def test_agent_program_without_an_ssh_host_loads_no_ssh_library() -> None:
    """paramiko (and the cryptography behind it) is a third of an idle agent's memory: only an
    ssh:// Docker host loads it, through the agent's tunnel."""
    import subprocess
    import sys

    probe = (
        "import sys, ferry_agent.main, docker; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('paramiko', 'cryptography')))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert loaded == "[]"
