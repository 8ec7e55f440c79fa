"""Test helpers: polling with a deadline, API shortcuts, real git commits, a scripted agent."""

from __future__ import annotations

import ast
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import boto3
import httpx
from dulwich import porcelain

from ferry.domain.messages import DeployMessage, DeployRequest, UndeployRequest
from ferry.local.poller import QueuePoller
from ferry.local.sample import commit_file
from ferry.local.stack import LocalStack

T = TypeVar("T")
J = TypeVar("J")


@dataclass(frozen=True)
class Taken(Generic[J]):
    """A deploy request a scripted agent took off its queue, with the task token to answer."""

    task_token: str
    request: J


def wait_for(probe: Callable[[], T | None], *, timeout: float = 30, what: str = "condition") -> T:
    """Call `probe` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what} (last: {last!r})")


def compose(image: str = "ferry-local/busybox:latest", greeting: str = "hi") -> str:
    return f"""services:
  web:
    image: {image}
    command: ["sh", "-c", "echo '{greeting}' > /tmp/index.html && exec httpd -f -p 8080 -h /tmp"]
"""


def commit(repo: Path, path: str, content: str, message: str = "change") -> str:
    return commit_file(repo, path, content, message)


def commit_removal(repo: Path, path: str, message: str = "remove") -> str:
    """Delete a file from the working repository and commit that; returns the SHA."""
    porcelain.remove(str(repo), [str(repo / path)])
    author = b"Ferry Tests <tests@ferry.invalid>"
    return porcelain.commit(
        str(repo), message=message.encode(), author=author, committer=author
    ).decode()


def create_repository(api: httpx.Client, repo: Path, sync_type: str = "webhook") -> dict[str, Any]:
    response = api.post("/repositories", json={"url": f"file://{repo}", "sync_type": sync_type})
    assert response.status_code == 201, response.text
    return dict(response.json())


def create_agent(api: httpx.Client, name: str) -> dict[str, Any]:
    response = api.post("/agents", json={"name": name})
    assert response.status_code == 201, response.text
    return dict(response.json())


def create_application(
    api: httpx.Client,
    *,
    name: str,
    repository_id: str,
    agent_id: str,
    path: str = "app/compose.yaml",
) -> dict[str, Any]:
    response = api.post(
        "/applications",
        json={
            "name": name,
            "repository_id": repository_id,
            "agent_id": agent_id,
            "branch": "main",
            "path": path,
        },
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def get_application(api: httpx.Client, application_id: str) -> dict[str, Any]:
    response = api.get(f"/applications/{application_id}")
    assert response.status_code == 200, response.text
    return dict(response.json())


def events(api: httpx.Client, application_id: str) -> list[dict[str, Any]]:
    response = api.get(f"/applications/{application_id}/events")
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


def finished_deployments(api: httpx.Client, application_id: str) -> list[dict[str, Any]]:
    """The application's deployment events, newest first, once none is still running (a result
    is written to the application a moment before its event is completed)."""

    def settled() -> list[dict[str, Any]] | None:
        deployments = [e for e in events(api, application_id) if e["type"] == "deployment"]
        return (
            deployments
            if deployments and all(e["status"] != "running" for e in deployments)
            else None
        )

    return wait_for(settled, what=f"{application_id}'s deployments to finish")


def wait_for_status(
    api: httpx.Client,
    application_id: str,
    *statuses: str,
    commit: str | None = None,
    target: str | None = None,
    timeout: float = 60,
) -> dict[str, Any]:
    """Wait for one of `statuses`, with `commit` (what the host runs) and/or `target` (what was
    last deployed or tried: a failed deploy leaves `commit` where it was) when given."""

    def probe() -> dict[str, Any] | None:
        application = get_application(api, application_id)
        if (
            application["sync_status"] in statuses
            and (commit is None or application["commit"] == commit)
            and (target is None or application["target_commit"] == target)
        ):
            return application
        return None

    return wait_for(
        probe, timeout=timeout, what=f"{application_id} to be {statuses} at {commit or target}"
    )


def push_webhook(
    api_url: str, repository_id: str, secret: str, body: dict[str, Any] | None = None
) -> httpx.Response:
    return httpx.post(
        f"{api_url}/api/v1/webhooks/repositories/{repository_id}",
        headers={"Authorization": f"Bearer {secret}"},
        json=body if body is not None else {},
        timeout=10,
    )


def wait_for_idle_sync(repository_id: str, timeout: float = 30) -> None:
    """Wait until no sync job is queued or in flight and the repository is not syncing.

    The job records count too: the worker deletes a job's message once its execution has started,
    and the repository is marked syncing only by the execution's first state, so for a moment
    the queue is empty and the status still the last one while the job is running."""
    from ferry.domain.models import RepositorySyncStatus
    from ferry.settings import get_settings
    from ferry.store.repositories import get_repository
    from ferry.store.tables import JobRow

    sqs = boto3.client("sqs")

    def idle() -> bool:
        counts = sqs.get_queue_attributes(
            QueueUrl=get_settings().sync_queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return (
            all(int(value) == 0 for value in counts.values())
            and get_repository(repository_id).sync_status is not RepositorySyncStatus.SYNCING
            and not any(
                JobRow.scan(
                    (JobRow.repository_id == repository_id)
                    & JobRow.status.is_in("queued", "running"),
                    consistent_read=True,
                )
            )
        )

    wait_for(idle, timeout=timeout, what=f"repository {repository_id} to be idle")


def agent_queue_url(agent_id: str) -> str:
    from ferry.store.agents import get_agent

    return get_agent(agent_id).queue_url


class ScriptedAgent:
    """Speaks the agent's side of the protocol (queue + task token) without Docker, so the
    state machine's paths can be driven one by one. The real agent is tested in tests/e2e."""

    def __init__(self, queue_url: str) -> None:
        self.queue_url = queue_url
        self.sqs = boto3.client("sqs")
        self.sfn = boto3.client("stepfunctions")

    def _take(self, timeout: float) -> DeployMessage:
        def receive() -> DeployMessage | None:
            messages = self.sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=1, WaitTimeSeconds=1
            ).get("Messages", [])
            if not messages:
                return None
            self.sqs.delete_message(
                QueueUrl=self.queue_url, ReceiptHandle=messages[0]["ReceiptHandle"]
            )
            return DeployMessage.model_validate_json(messages[0]["Body"])

        return wait_for(receive, timeout=timeout, what="a job")

    def take(self, timeout: float = 20) -> Taken[DeployRequest]:
        message = self._take(timeout)
        assert isinstance(message.request, DeployRequest), message
        return Taken(task_token=message.task_token, request=message.request)

    def take_removal(self, timeout: float = 20) -> Taken[UndeployRequest]:
        message = self._take(timeout)
        assert isinstance(message.request, UndeployRequest), message
        return Taken(task_token=message.task_token, request=message.request)

    def answer(self, message: Taken[Any], output: dict[str, Any]) -> None:
        self.sfn.send_task_success(taskToken=message.task_token, output=json.dumps(output))

    def succeed(self, message: Taken[DeployRequest], health: str = "healthy") -> None:
        job = message.request
        self.answer(
            message,
            {
                "request_id": job.request_id,
                "application_id": job.application_id,
                "success": True,
                "health": health,
                "containers": [{"name": f"{job.project_name}-web-1", "state": "running"}],
            },
        )

    def fail(self, message: Taken[Any], error: str) -> None:
        job = message.request
        self.answer(
            message,
            {
                "request_id": job.request_id,
                "application_id": job.application_id,
                "success": False,
                "error_message": error,
            },
        )


class JsonReceiver:
    """A loopback HTTP server that records the JSON bodies POSTed to it (a notification
    target reachable as `json://127.0.0.1:<port>/`)."""

    def __init__(self) -> None:
        import http.server
        import threading

        self.received: list[dict[str, Any]] = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                try:
                    receiver.received.append(json.loads(self.rfile.read(length) or b"{}"))
                except ValueError:
                    receiver.received.append({"unparsed": True})
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"json://127.0.0.1:{self.port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def titles(self) -> list[str]:
        return [str(body.get("title", "")) for body in self.received]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def dispatch_definition(
    *, queue_url: str | None, heartbeat_seconds: int, timeout_seconds: int
) -> dict[str, Any]:
    """A one-state machine doing what the deploy state machine's DispatchToAgent does: put
    `{task_token, request}` on an agent's queue (`queue_url`, else `$.queue_url` from the input) and
    wait for the answer. Agent tests use it to hand the agent jobs the control plane never would
    (side by side for one application, for applications it does not know)."""
    queue = {"QueueUrl": queue_url} if queue_url else {"QueueUrl.$": "$.queue_url"}
    return {
        "StartAt": "DispatchToAgent",
        "States": {
            "DispatchToAgent": {
                "Type": "Task",
                "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
                "Parameters": {
                    **queue,
                    "MessageBody": {"task_token.$": "$$.Task.Token", "request.$": "$.request"},
                },
                "HeartbeatSeconds": heartbeat_seconds,
                "TimeoutSeconds": timeout_seconds,
                "End": True,
            }
        },
    }


def registered_application(
    api: httpx.Client, repository_id: str, unique: str
) -> tuple[dict[str, Any], ScriptedAgent]:
    """A new agent `host-<unique>` and an application `app-<unique>` on the repository, and a
    scripted agent on that agent's queue (where the application's first deploy arrives)."""
    agent = create_agent(api, f"host-{unique}")
    application = create_application(
        api, name=f"app-{unique}", repository_id=repository_id, agent_id=agent["id"]
    )
    return application, ScriptedAgent(agent_queue_url(agent["id"]))


def deployed_once(
    api: httpx.Client, repository_id: str, unique: str, *, commit: str | None = None
) -> tuple[dict[str, Any], ScriptedAgent]:
    """A new agent `host-<unique>` and an application `app-<unique>` on the repository, deployed
    once by a scripted agent (at `commit` when given), with the repository's sync settled."""
    application, scripted = registered_application(api, repository_id, unique)
    scripted.succeed(scripted.take())
    wait_for_status(api, application["id"], "synced", commit=commit)
    wait_for_idle_sync(repository_id)
    return application, scripted


def github_push_headers(
    secret: str, body: bytes, event: str = "push", delivery: str | None = None
) -> dict[str, str]:
    signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery or f"d-{time.monotonic_ns()}",
        "X-Hub-Signature-256": f"sha256={signature}",
        "Content-Type": "application/json",
    }


def github_push_body(sha: str, ref: str = "refs/heads/main") -> bytes:
    return json.dumps(
        {
            "ref": ref,
            "after": sha,
            "head_commit": {"id": sha},
            "repository": {"full_name": "octo-org/stack"},
        }
    ).encode()


class AwsCalls:
    """The AWS calls this process makes from some threads, as (service, operation, table):
    counted at botocore's one exit (`BaseClient._make_api_call`), so store, queue and Step
    Functions calls are all seen, whatever made the client."""

    def __init__(self, threads: Callable[[str], bool]) -> None:
        self._threads = threads
        self.calls: list[tuple[str, str, str | None]] = []
        self._items: list[tuple[str, int]] = []  # (operation, items it returned)

    def __enter__(self) -> AwsCalls:
        import threading

        from botocore.client import BaseClient

        original = getattr(BaseClient, "_make_api_call")  # noqa: B009 (private, not in the stubs)
        self._original = original
        lock = threading.Lock()

        def counted(client: Any, operation: str, params: Any) -> Any:
            if not self._threads(threading.current_thread().name):
                return original(client, operation, params)
            table = params.get("TableName") if isinstance(params, dict) else None
            with lock:
                self.calls.append((client.meta.service_model.service_name, operation, table))
            answer = original(client, operation, params)
            if isinstance(answer, dict) and "Count" in answer:
                with lock:
                    self._items.append((operation, int(answer["Count"])))
            return answer

        setattr(BaseClient, "_make_api_call", counted)  # noqa: B010
        return self

    def __exit__(self, *_exc: object) -> None:
        from botocore.client import BaseClient

        setattr(BaseClient, "_make_api_call", self._original)  # noqa: B010

    def count(self, operation: str, table: str | None = None) -> int:
        return sum(1 for _s, op, t in self.calls if op == operation and (table in (None, t)))

    def items_returned(self, operation: str) -> int:
        """How many items the calls of `operation` returned together (Query, Scan)."""
        return sum(n for op, n in self._items if op == operation)


@contextmanager
def sync_worker_paused(stack: LocalStack) -> Iterator[None]:
    """Nothing takes sync jobs off the queue meanwhile (as between a 202 and a crash)."""
    from ferry.settings import get_settings

    queue_name = get_settings().sync_queue_url.rsplit("/", 1)[-1]
    [poller] = [p for p in stack.cloud.pollers if p.queue_url.endswith(f"/{queue_name}")]
    poller.stop()
    try:
        yield
    finally:
        resumed = QueuePoller(
            queue_url=poller.queue_url,
            queue_arn=poller.queue_arn,
            function_name=poller.function_name,
            batch_size=poller.batch_size,
            report_batch_item_failures=poller.report_batch_item_failures,
            region=poller.region,
        )
        resumed.start()
        stack.cloud.pollers[stack.cloud.pollers.index(poller)] = resumed


def parse_python(source: str, filename: str = "<unknown>") -> ast.Module:
    """`ast.parse`, asked again when CPython 3.11 trips over another thread compiling at the same
    moment ("AST constructor recursion depth mismatch", python/cpython#106905, fixed in 3.12):
    the stack the session runs keeps threads that build pydantic models, which compiles."""
    for _attempt in range(5):
        try:
            return ast.parse(source, filename=filename)
        except SystemError as exc:
            if "recursion depth mismatch" not in str(exc):
                raise
    return ast.parse(source, filename=filename)
