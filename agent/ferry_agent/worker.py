"""The agent's loop: long-poll the queue, deploy, heartbeat meanwhile, answer, then delete.

A message is deleted only after its task token was answered (or the execution is known to have
ended), so a crash mid-deploy leaves the job to the state machine's heartbeat timeout: it ends
`out_of_sync` with a reason instead of hanging.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from ferry.domain.messages import (
    DeployJob,
    DeployMessage,
    DeployResult,
    UndeployJob,
    UndeployResult,
)
from ferry.domain.models import HealthStatus
from ferry_agent.compose import ComposeRunner, DeployError
from ferry_agent.control_plane import Session

log = logging.getLogger("ferry_agent")

# Answers to an execution that already ended: the job is over either way.
_ENDED_TASK_ERRORS = {"TaskTimedOut", "InvalidToken", "TaskDoesNotExist"}


class Heartbeat:
    """Keeps a job alive while it runs: task heartbeats plus message visibility extensions."""

    def __init__(
        self, worker: Worker, task_token: str, receipt_handle: str, every_seconds: float
    ) -> None:
        self._worker = worker
        self._task_token = task_token
        self._receipt_handle = receipt_handle
        self._every = max(1.0, every_seconds)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            self._worker.beat(self._task_token, self._receipt_handle, self._every)


CONTACT_EVERY_SECONDS = 30.0


class Worker:
    def __init__(
        self,
        session: Session,
        runner: ComposeRunner,
        *,
        poll_wait_seconds: int = 20,
        contact: Callable[[], None] | None = None,
    ) -> None:
        self.session = session
        self.runner = runner
        self.poll_wait_seconds = poll_wait_seconds
        self.contact = contact  # "still alive" to the control plane
        self._last_contact = 0.0
        client_options: dict[str, Any] = {"region_name": session.region}
        if session.aws_endpoint_url:
            client_options["endpoint_url"] = session.aws_endpoint_url
        self.sqs = boto3.client("sqs", **client_options)
        self.sfn = boto3.client("stepfunctions", **client_options)
        self.stopping = threading.Event()
        self.busy = threading.Event()  # set while a job runs: a stop then waits for it

    def run_forever(self) -> None:
        log.info("agent %s taking jobs from %s", self.session.name, self.session.queue_url)
        while not self.stopping.is_set():
            self.keep_in_contact()
            try:
                self.poll_once()
            except (BotoCoreError, ClientError) as exc:
                log.warning("queue unavailable (%s); retrying in 5 s", exc)
                self.stopping.wait(5)

    def keep_in_contact(self) -> None:
        if self.contact is None or time.monotonic() - self._last_contact < CONTACT_EVERY_SECONDS:
            return
        try:
            self.contact()
            self._last_contact = time.monotonic()
        except Exception as exc:  # the control plane being away must not stop deploys
            log.warning("could not reach the control plane: %s", exc)

    def poll_once(self) -> int:
        """Receive at most one job and handle it; returns how many were handled."""
        received = self.sqs.receive_message(
            QueueUrl=self.session.queue_url,
            MaxNumberOfMessages=1,
            WaitTimeSeconds=self.poll_wait_seconds,
        )
        messages = received.get("Messages", [])
        for message in messages:
            self.busy.set()
            try:
                self.handle(message)
            finally:
                self.busy.clear()
        return len(messages)

    def handle(self, message: Mapping[str, Any]) -> None:
        receipt_handle = message["ReceiptHandle"]
        try:
            deploy_message = DeployMessage.model_validate_json(message["Body"])
        except ValidationError as exc:
            self._reject_malformed(message, exc)
            return
        job = deploy_message.job
        if not self.task_is_alive(deploy_message.task_token):
            # Its execution already ended (e.g. timed out while no agent ran): deploying now
            # would change the host behind the control plane's back.
            log.warning("dropping job %s: its deploy has already ended", job.request_id)
            self.sqs.delete_message(QueueUrl=self.session.queue_url, ReceiptHandle=receipt_handle)
            return
        result: DeployResult | UndeployResult
        with Heartbeat(self, deploy_message.task_token, receipt_handle, job.heartbeat_seconds / 3):
            if isinstance(job, UndeployJob):
                log.info("removing %s", job.project_name)
                result = self.undeploy(job)
            else:
                log.info(
                    "deploying %s (%s) at %s",
                    job.application_name,
                    job.project_name,
                    job.commit[:12],
                )
                result = self.deploy(job)
        self.answer(deploy_message.task_token, result)
        self.sqs.delete_message(QueueUrl=self.session.queue_url, ReceiptHandle=receipt_handle)
        log.info("%s: %s", job.project_name, "done" if result.success else result.error_message)

    def deploy(self, job: DeployJob) -> DeployResult:
        try:
            snapshot = self.runner.deploy(job)
        except DeployError as exc:
            return DeployResult(
                request_id=job.request_id,
                application_id=job.application_id,
                success=False,
                error_message=str(exc),
                health=HealthStatus.UNHEALTHY,
            )
        return DeployResult(
            request_id=job.request_id,
            application_id=job.application_id,
            success=True,
            health=snapshot.health,
            containers=snapshot.containers,
            image_digests=snapshot.image_digests,
        )

    def undeploy(self, job: UndeployJob) -> UndeployResult:
        try:
            self.runner.remove(job.project_name)
        except DeployError as exc:
            return UndeployResult(
                request_id=job.request_id,
                application_id=job.application_id,
                success=False,
                error_message=str(exc),
            )
        return UndeployResult(
            request_id=job.request_id, application_id=job.application_id, success=True
        )

    def answer(self, task_token: str, result: DeployResult | UndeployResult) -> None:
        try:
            self.sfn.send_task_success(taskToken=task_token, output=result.model_dump_json())
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code not in _ENDED_TASK_ERRORS:
                raise
            log.warning("deploy %s had already ended (%s)", result.request_id, code)

    def task_is_alive(self, task_token: str) -> bool:
        """Whether the deploy still waits for us (a first heartbeat doubles as the check)."""
        try:
            self.sfn.send_task_heartbeat(taskToken=task_token)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code", "") in _ENDED_TASK_ERRORS:
                return False
            raise
        return True

    def beat(self, task_token: str, receipt_handle: str, every_seconds: float) -> None:
        try:
            self.sfn.send_task_heartbeat(taskToken=task_token)
            self.sqs.change_message_visibility(
                QueueUrl=self.session.queue_url,
                ReceiptHandle=receipt_handle,
                VisibilityTimeout=int(every_seconds * 3) + 30,
            )
        except (BotoCoreError, ClientError) as exc:
            log.warning("heartbeat failed: %s", exc)

    def _reject_malformed(self, message: Mapping[str, Any], error: ValidationError) -> None:
        log.error("malformed job dropped: %s", error)
        try:
            task_token = json.loads(message["Body"]).get("task_token")
        except (ValueError, AttributeError):
            task_token = None
        if isinstance(task_token, str):
            try:
                self.sfn.send_task_failure(
                    taskToken=task_token, error="MalformedJob", cause=str(error)[:500]
                )
            except ClientError as exc:
                log.warning("could not fail the malformed job's task: %s", exc)
        self.sqs.delete_message(
            QueueUrl=self.session.queue_url, ReceiptHandle=message["ReceiptHandle"]
        )
