"""The agent's scheduler: long-poll the queue, run deploy requests in parallel across applications
and one at a time per application, keep every held request alive, answer, then delete.

- A message is deleted only after its task token was answered (or its deploy is known to have
  ended), so a crash mid-deploy leaves the request to the state machine's heartbeat timeout: it ends
  `out_of_sync` with a reason instead of hanging.
- Compose on one project is not re-entrant: two requests of one application never overlap and run in
  arrival order. Different applications run in parallel, up to `max_parallel_deploys`; no more
  messages are taken than that, so nothing sits in this process that another could run.
- One keeper thread heartbeats every held request's task and extends its message's visibility, also
  while the request waits for its application's turn: it neither times out nor reappears elsewhere.
- A heartbeat refused because the task ended (the control plane cancelled the deploy, or gave up
  on it), or the control plane saying the deploy is no longer the application's current one,
  stops the request: its compose process is terminated, nothing is answered, the message is deleted.
- Stopping hands back what has not started (visibility 0: another agent process takes it at
  once) and lets running requests finish within a grace period; what still runs then is stopped and
  handed back too.
- A contact thread tells the control plane the agent is alive every `contact_every_seconds`. When
  the API refuses the agent's token there (it was rotated or revoked), the agent stops as above:
  it takes no request after that heartbeat, and `token_refused` tells its caller why it stopped.
- A hint on the queue (the image webhook's "check these images now") holds no request: it is handed
  to its handler and deleted at once.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from ferry.domain.agent_messages import (
    DeployMessage,
    DeployRequest,
    DeployResult,
    HealthStatus,
    ImageCheckHint,
    UndeployRequest,
    UndeployResult,
)
from ferry_agent.compose import DeployCancelled, DeployError, Snapshot
from ferry_agent.control_plane import TokenRefused

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_stepfunctions import SFNClient

log = logging.getLogger("ferry_agent")

# Answers to an execution that already ended: the request is over either way.
_ENDED_TASK_ERRORS = frozenset({"TaskTimedOut", "InvalidToken", "TaskDoesNotExist"})
# The local cloud (moto) accepts heartbeats for a task token a moment after it sent the message:
# a first heartbeat right after receipt can be refused as InvalidToken. Believe it after this.
FIRST_CHECK_SECONDS = 3.0
CONTACT_EVERY_SECONDS = 30.0
# A full agent is woken when a request ends or it stops; this only bounds each wait.
ROOM_CHECK_SECONDS = 30.0
# After the grace period, how long stopped requests get to wind down before the agent exits anyway.
WIND_DOWN_SECONDS = 20.0
# A new message keeps the queue's visibility timeout (30 s by default) until its first
# extension, which must come sooner than that whatever the request's heartbeat interval.
FIRST_BEAT_SECONDS = 5.0


class RequestRunner(Protocol):
    """Runs requests on the Docker host (ComposeRunner); both stop early once `cancel` is set."""

    def deploy(self, request: DeployRequest, cancel: threading.Event) -> Snapshot: ...

    def remove(self, project_name: str, cancel: threading.Event) -> None: ...


class RequestObserver(Protocol):
    """Told when an application's request starts and ends (the health and drift watchers hold off
    meanwhile: the request decides what runs)."""

    def request_started(self, application_id: str) -> None: ...

    def request_finished(
        self, application_id: str, health: HealthStatus | None, removed: bool
    ) -> None: ...


class QueueAccess(Protocol):
    """The agent's queue and the clients to use right now (AwsAccess)."""

    @property
    def queue_url(self) -> str: ...

    def sqs(self) -> SQSClient: ...

    def sfn(self) -> SFNClient: ...


class CancelReason(StrEnum):
    ENDED = "ended"  # the control plane ended the deploy (cancelled, or timed out)
    STOPPING = "stopping"  # this agent is stopping and the grace period ran out


@dataclass(eq=False)
class HeldRequest:
    """A received message this process holds: waiting for its application's turn, or running."""

    receipt_handle: str
    task_token: str
    request: DeployRequest | UndeployRequest
    next_beat: float
    cancel: threading.Event = field(default_factory=threading.Event)
    cancel_reason: CancelReason | None = None
    started: bool = False
    answering: bool = False  # past the point of no return: no more heartbeats, no cancel
    # Deleted or handed back: its receipt handle must not be extended any more (a late
    # extension would hide a handed-back message again).
    released: bool = False
    guard: threading.Lock = field(default_factory=threading.Lock)

    @property
    def application_id(self) -> str:
        return self.request.application_id

    @property
    def beat_every(self) -> float:
        return max(1.0, self.request.heartbeat_seconds / 3)

    @property
    def visibility_seconds(self) -> int:
        return int(self.beat_every * 3) + 30

    def describe(self) -> str:
        return f"{self.request.kind} {self.request.request_id} ({self.request.project_name})"


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class Worker:
    def __init__(
        self,
        aws: QueueAccess,
        runner: RequestRunner,
        *,
        max_parallel_deploys: int = 4,
        poll_wait_seconds: int = 20,
        stop_grace_seconds: float = 60,
        contact: Callable[[], None] | None = None,
        contact_every_seconds: float = CONTACT_EVERY_SECONDS,
        observers: Sequence[RequestObserver] = (),
        retry_seconds: float = 5,
        request_is_current: Callable[[DeployRequest], bool] | None = None,
        on_hint: Callable[[ImageCheckHint], None] | None = None,
    ) -> None:
        self.aws = aws
        self.runner = runner
        self.max_parallel_deploys = max_parallel_deploys
        self.poll_wait_seconds = poll_wait_seconds
        self.stop_grace_seconds = stop_grace_seconds
        self.contact = contact  # "still alive" to the control plane
        self.contact_every_seconds = contact_every_seconds
        self.observers = tuple(observers)
        self.on_hint = on_hint
        self.retry_seconds = retry_seconds
        self.request_is_current = request_is_current
        self.stopping = threading.Event()
        self.token_refused = threading.Event()  # why it stopped: the API refused the token
        self._changed = threading.Condition()
        self._held: list[HeldRequest] = []
        self._waiting: dict[str, deque[HeldRequest]] = {}  # per application, in arrival order
        self._active: set[str] = set()  # applications with a request running
        self._pool = ThreadPoolExecutor(
            max_workers=max_parallel_deploys, thread_name_prefix="request"
        )
        self._keeper_stop = threading.Event()
        self._handed_back = threading.Event()
        self._receiver: threading.Thread | None = None

    # --- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Start receiving and keeping requests alive (in background threads)."""
        log.info(
            "taking deploy requests from %s (up to %d at once)",
            self.aws.queue_url,
            self.max_parallel_deploys,
        )
        self._receiver = threading.Thread(target=self._receive_loop, name="receive", daemon=True)
        self._receiver.start()
        threading.Thread(target=self._keep_alive_loop, name="keeper", daemon=True).start()
        if self.contact is not None:
            threading.Thread(target=self._contact_loop, name="contact", daemon=True).start()

    def run_forever(self) -> bool:
        """Serve until `stop()`, then shut down; True when every request ended cleanly."""
        self.start()
        while not self.stopping.wait(1.0):
            pass
        return self.shutdown()

    def stop(self) -> None:
        """Take no new requests (safe from a signal handler: it only sets an event)."""
        self.stopping.set()

    def shutdown(self) -> bool:
        """Hand back waiting requests, give running ones the grace period, then stop and hand back
        what is left. True when no request was left running."""
        self.stop()
        with self._changed:
            waiting = [held for queue in self._waiting.values() for held in queue]
            self._waiting.clear()
            for held in waiting:
                self._held.remove(held)
            self._changed.notify_all()
        for held in waiting:
            self._hand_back(held)
        clean = self._wait_until_idle(self.stop_grace_seconds)
        if not clean:
            with self._changed:
                overdue = [held for held in self._held if not held.answering]
                for held in overdue:
                    held.cancel_reason = CancelReason.STOPPING
                    held.cancel.set()
            log.warning(
                "%d request(s) still running after %g s: stopping and handing them back",
                len(overdue),
                self.stop_grace_seconds,
            )
            clean = self._wait_until_idle(WIND_DOWN_SECONDS)
        if self._handed_back.is_set() and self._receiver is not None:
            # Our own long poll may still be open, and the queue would give it what was just
            # handed back: let it return (at once, then) so that is handed back again rather
            # than lost with this process until its visibility lapses.
            self._receiver.join(timeout=self.poll_wait_seconds + 5)
        self._keeper_stop.set()
        self._pool.shutdown(wait=False, cancel_futures=True)
        return clean

    def _wait_until_idle(self, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        with self._changed:
            while self._held:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(left)
        return True

    # --- receiving ---------------------------------------------------------------------------

    def _receive_loop(self) -> None:
        while not self.stopping.is_set():
            room = self._wait_for_room(ROOM_CHECK_SECONDS)
            if room == 0:
                continue
            try:
                self.poll_once(room)
            except (BotoCoreError, ClientError) as exc:
                log.warning("queue unavailable (%s); retrying in %g s", exc, self.retry_seconds)
                self.stopping.wait(self.retry_seconds)

    def _wait_for_room(self, timeout: float) -> int:
        with self._changed:
            self._changed.wait_for(
                lambda: len(self._held) < self.max_parallel_deploys or self.stopping.is_set(),
                timeout=timeout,
            )
            if self.stopping.is_set():
                return 0
            return max(0, self.max_parallel_deploys - len(self._held))

    def _contact_loop(self) -> None:
        while not self.stopping.is_set():
            self.keep_in_contact()
            self.stopping.wait(self.contact_every_seconds)

    def keep_in_contact(self) -> None:
        """One heartbeat to the control plane; a refused token stops the agent."""
        if self.contact is None:
            return
        try:
            self.contact()
        except TokenRefused as exc:
            log.error(
                "%s: this agent's token was rotated or revoked. Taking no more requests: waiting "
                "ones are handed back, running ones get %g s to finish, then the agent exits. "
                "Start it again with its new token.",
                exc,
                self.stop_grace_seconds,
            )
            self.token_refused.set()
            self.stop()
        except Exception as exc:  # the control plane being away must not stop deploys
            log.warning("could not reach the control plane: %s", exc)

    def poll_once(self, room: int = 1) -> int:
        """One long poll for up to `room` messages (at most 10); returns how many came."""
        received = self.aws.sqs().receive_message(
            QueueUrl=self.aws.queue_url,
            MaxNumberOfMessages=max(1, min(10, room)),
            WaitTimeSeconds=self.poll_wait_seconds,
        )
        messages = received.get("Messages", [])
        for message in messages:
            self.accept(message)
        return len(messages)

    def accept(self, message: Mapping[str, Any]) -> None:
        """Queue a received message behind its application's earlier requests (or hand it back when
        stopping); a hint goes to its handler."""
        hint = _hint(message["Body"])
        if hint is not None:
            self._take_hint(message, hint)
            return
        try:
            deploy_message = DeployMessage.model_validate_json(message["Body"])
        except ValidationError as exc:
            self._reject_malformed(message, exc)
            return
        held = HeldRequest(
            receipt_handle=message["ReceiptHandle"],
            task_token=deploy_message.task_token,
            request=deploy_message.request,
            next_beat=0.0,
        )
        held.next_beat = time.monotonic() + min(held.beat_every, FIRST_BEAT_SECONDS)
        with self._changed:
            stopping = self.stopping.is_set()
            if not stopping:
                self._held.append(held)
                self._waiting.setdefault(held.application_id, deque()).append(held)
                self._dispatch(held.application_id)
        if stopping:
            self._hand_back(held)

    def _dispatch(self, application_id: str) -> None:
        """Start the application's next request unless one runs (call with the lock held)."""
        if application_id in self._active or self.stopping.is_set():
            return
        queue = self._waiting.get(application_id)
        if not queue:
            return
        held = queue.popleft()
        if not queue:
            del self._waiting[application_id]
        held.started = True
        self._active.add(application_id)
        self._pool.submit(self._run, held)

    # --- running -----------------------------------------------------------------------------

    def _run(self, held: HeldRequest) -> None:
        try:
            self._execute(held)
        except Exception:
            # Left undeleted: the message reappears once its visibility lapses and is retried
            # (or dropped then, if its deploy ended meanwhile).
            log.exception("%s: unexpected failure", held.describe())
        finally:
            with self._changed:
                self._held.remove(held)
                self._active.discard(held.application_id)
                self._dispatch(held.application_id)
                self._changed.notify_all()

    def _execute(self, held: HeldRequest) -> None:
        request = held.request
        if not self.task_is_alive(held.task_token):
            # Its deploy already ended (e.g. timed out while no agent ran): running it now would
            # change the host behind the control plane's back.
            log.warning("dropping %s: its deploy has already ended", held.describe())
            self._delete(held)
            return
        if not self._still_current(held):
            log.warning(
                "dropping %s: it is no longer the application's current deploy", held.describe()
            )
            self._give_up_task(held)
            self._delete(held)
            return
        log.info("%s started", held.describe())
        for observer in self.observers:
            observer.request_started(request.application_id)
        result: DeployResult | UndeployResult | None = None
        try:
            result = self._perform(held)
        finally:
            for observer in self.observers:
                observer.request_finished(
                    request.application_id,
                    result.health if isinstance(result, DeployResult) else None,
                    removed=isinstance(result, UndeployResult) and result.success,
                )
        with self._changed:
            reason = held.cancel_reason if held.cancel.is_set() else None
            # A request that completed is answered even when the agent began stopping meanwhile;
            # one whose deploy ended has nobody left to answer.
            held.answering = result is not None and reason is not CancelReason.ENDED
        if result is None or not held.answering:
            if reason is CancelReason.STOPPING:
                log.warning("%s stopped: the agent is stopping; handing it back", held.describe())
                self._hand_back(held)
            else:
                log.warning(
                    "%s cancelled: its deploy ended; compose stopped, not answering",
                    held.describe(),
                )
                self._delete(held)
            return
        self.answer(held.task_token, result)
        self._delete(held)
        log.info(
            "%s finished: %s",
            held.describe(),
            "done" if result.success else result.error_message,
        )

    def _perform(self, held: HeldRequest) -> DeployResult | UndeployResult | None:
        """Run the request; None when it was cancelled on the way."""
        request = held.request
        try:
            if isinstance(request, UndeployRequest):
                self.runner.remove(request.project_name, held.cancel)
                return UndeployResult(
                    request_id=request.request_id,
                    application_id=request.application_id,
                    success=True,
                )
            log.info(
                "deploying %s (%s) at %s",
                request.application_name,
                request.project_name,
                request.commit[:12],
            )
            snapshot = self.runner.deploy(request, held.cancel)
        except DeployCancelled:
            return None
        except Exception as exc:
            if held.cancel.is_set():
                return None
            message = str(exc) if isinstance(exc, DeployError) else f"agent error: {exc!r}"
            if isinstance(request, UndeployRequest):
                return UndeployResult(
                    request_id=request.request_id,
                    application_id=request.application_id,
                    success=False,
                    error_message=message,
                )
            return DeployResult(
                request_id=request.request_id,
                application_id=request.application_id,
                success=False,
                error_message=message,
                health=HealthStatus.UNHEALTHY,
            )
        return DeployResult(
            request_id=request.request_id,
            application_id=request.application_id,
            success=True,
            health=snapshot.health,
            containers=snapshot.containers,
            image_digests=snapshot.image_digests,
        )

    # --- talking to the queue and the state machine -------------------------------------------

    def answer(self, task_token: str, result: DeployResult | UndeployResult) -> None:
        try:
            self.aws.sfn().send_task_success(taskToken=task_token, output=result.model_dump_json())
        except ClientError as exc:
            code = _error_code(exc)
            if code not in _ENDED_TASK_ERRORS:
                raise
            log.warning("deploy %s had already ended (%s)", result.request_id, code)

    def task_is_alive(self, task_token: str) -> bool:
        """Whether the deploy still waits for us (a first heartbeat doubles as the check)."""
        deadline = time.monotonic() + FIRST_CHECK_SECONDS
        while True:
            try:
                self.aws.sfn().send_task_heartbeat(taskToken=task_token)
            except ClientError as exc:
                code = _error_code(exc)
                if code == "InvalidToken" and time.monotonic() < deadline:
                    time.sleep(0.25)
                    continue
                if code in _ENDED_TASK_ERRORS:
                    return False
                raise
            return True

    def _keep_alive_loop(self) -> None:
        while not self._keeper_stop.wait(self._until_next_beat()):
            for held in self._due():
                self.beat(held)

    def _until_next_beat(self) -> float:
        with self._changed:
            beats = [held.next_beat for held in self._held if not held.answering]
        if not beats:
            return 1.0
        return min(1.0, max(0.05, min(beats) - time.monotonic()))

    def _due(self) -> list[HeldRequest]:
        now = time.monotonic()
        with self._changed:
            due = [
                held
                for held in self._held
                if not held.answering and not held.cancel.is_set() and held.next_beat <= now
            ]
            for held in due:
                held.next_beat = now + held.beat_every
        return due

    def beat(self, held: HeldRequest) -> None:
        """Keep one held request alive: a task heartbeat, then a visibility extension."""
        try:
            self.aws.sfn().send_task_heartbeat(taskToken=held.task_token)
        except ClientError as exc:
            code = _error_code(exc)
            if code in _ENDED_TASK_ERRORS:
                self._task_ended(held, code)
                return
            log.warning("heartbeat for %s failed: %s", held.describe(), exc)
        except BotoCoreError as exc:
            log.warning("heartbeat for %s failed: %s", held.describe(), exc)
        if not self._still_current(held):
            self._give_up_task(held)
            self._task_ended(held, "no longer current")
            return
        with held.guard:
            if held.released:
                return
            try:
                self.aws.sqs().change_message_visibility(
                    QueueUrl=self.aws.queue_url,
                    ReceiptHandle=held.receipt_handle,
                    VisibilityTimeout=held.visibility_seconds,
                )
            except (BotoCoreError, ClientError) as exc:
                log.warning("could not extend %s's message: %s", held.describe(), exc)

    def _still_current(self, held: HeldRequest) -> bool:
        """Ask the control plane whether a deploy is still wanted (an answer we cannot get
        keeps the request going: the control plane being away must not stop deploys)."""
        if self.request_is_current is None or not isinstance(held.request, DeployRequest):
            return True
        try:
            return self.request_is_current(held.request)
        except Exception as exc:
            log.warning("could not ask whether %s is current: %s", held.describe(), exc)
            return True

    def _give_up_task(self, held: HeldRequest) -> None:
        """End the task of a deploy the control plane no longer wants, so its execution does
        not wait out its timeout (its result would be ignored anyway)."""
        try:
            self.aws.sfn().send_task_failure(
                taskToken=held.task_token,
                error="Cancelled",
                cause="the deploy is no longer the application's current one",
            )
        except (BotoCoreError, ClientError) as exc:
            log.info("could not end %s's task (%s); it ends on its own", held.describe(), exc)

    def _task_ended(self, held: HeldRequest, code: str) -> None:
        with self._changed:
            if held.answering or held.cancel.is_set() or held not in self._held:
                return
            held.cancel_reason = CancelReason.ENDED
            held.cancel.set()
            dropped = not held.started
            if dropped:
                queue = self._waiting[held.application_id]
                queue.remove(held)
                if not queue:
                    del self._waiting[held.application_id]
                self._held.remove(held)
                self._changed.notify_all()
        if dropped:
            log.warning("dropping waiting %s: its deploy ended (%s)", held.describe(), code)
            self._delete(held)
        else:
            log.warning("%s: its deploy ended (%s); stopping it", held.describe(), code)

    def _delete(self, held: HeldRequest) -> None:
        with held.guard:
            if held.released:
                return
            held.released = True
            try:
                self.aws.sqs().delete_message(
                    QueueUrl=self.aws.queue_url, ReceiptHandle=held.receipt_handle
                )
            except (BotoCoreError, ClientError) as exc:
                # It reappears later; its deploy has ended by then, so it is dropped.
                log.warning("could not delete %s's message: %s", held.describe(), exc)

    def _hand_back(self, held: HeldRequest) -> None:
        with held.guard:
            if held.released:
                return
            held.released = True
            try:
                self.aws.sqs().change_message_visibility(
                    QueueUrl=self.aws.queue_url,
                    ReceiptHandle=held.receipt_handle,
                    VisibilityTimeout=0,
                )
            except (BotoCoreError, ClientError) as exc:
                log.warning("could not hand back %s: %s", held.describe(), exc)
                return
        self._handed_back.set()
        log.info("handed back %s", held.describe())

    def _take_hint(self, message: Mapping[str, Any], hint: ImageCheckHint) -> None:
        try:
            self.aws.sqs().delete_message(
                QueueUrl=self.aws.queue_url, ReceiptHandle=message["ReceiptHandle"]
            )
        except (BotoCoreError, ClientError) as exc:
            log.warning("could not delete a hint: %s", exc)  # it comes again: checking is cheap
        if self.on_hint is not None:
            self.on_hint(hint)

    def _reject_malformed(self, message: Mapping[str, Any], error: ValidationError) -> None:
        log.error("malformed request dropped: %s", error)
        try:
            task_token = json.loads(message["Body"]).get("task_token")
        except (ValueError, AttributeError):
            task_token = None
        if isinstance(task_token, str):
            try:
                self.aws.sfn().send_task_failure(
                    taskToken=task_token, error="MalformedRequest", cause=str(error)[:500]
                )
            except (BotoCoreError, ClientError) as exc:
                log.warning("could not fail the malformed request's task: %s", exc)
        try:
            self.aws.sqs().delete_message(
                QueueUrl=self.aws.queue_url, ReceiptHandle=message["ReceiptHandle"]
            )
        except (BotoCoreError, ClientError) as exc:
            log.warning("could not delete the malformed request: %s", exc)


def _hint(body: str) -> ImageCheckHint | None:
    """The hint a message carries, or None for a request (or anything else)."""
    try:
        parsed = json.loads(body)
    except ValueError:
        return None
    if not isinstance(parsed, dict) or parsed.get("kind") != ImageCheckHint().kind:
        return None
    try:
        return ImageCheckHint.model_validate(parsed)
    except ValidationError:
        return None
