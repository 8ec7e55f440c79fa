"""`ferry demo`: the local stack's whole flow once, with a summary; the exit status says if
it worked."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from ferry.aws.executions import ExecutionView, describe_deploy, describe_sync
from ferry.deploy.start import sync_job_of
from ferry.domain.models import Application, ApplicationSyncStatus
from ferry.errors import FerryError
from ferry.local.cloud import LocalOptions
from ferry.local.sample import head_commit
from ferry.local.stack import LocalStack
from ferry.store.applications import get_application

_TERMINAL = (ApplicationSyncStatus.SYNCED, ApplicationSyncStatus.OUT_OF_SYNC)


def wait_for_terminal(application_id: str, timeout_seconds: float) -> Application:
    """Poll until the application leaves `unknown`/`syncing` (or the deadline passes)."""
    deadline = time.monotonic() + timeout_seconds
    while True:
        application = get_application(application_id)
        if application.sync_status in _TERMINAL and application.current_request_id is not None:
            return application
        if time.monotonic() > deadline:
            return application
        time.sleep(0.25)


def _finished_execution(request_id: str, timeout_seconds: float = 15) -> ExecutionView:
    """The deploy execution once it ended: the application's terminal status is written a few
    states before the execution's end (Notify, Done), so it can still be RUNNING for a moment."""
    deadline = time.monotonic() + timeout_seconds
    while True:
        execution = describe_deploy(request_id)
        if execution.status != "RUNNING" or time.monotonic() > deadline:
            return execution
        time.sleep(0.25)


def run_demo(home: Path, *, timeout_seconds: float, say: Callable[[str], None]) -> bool:
    started = time.monotonic()
    stack = LocalStack(
        LocalOptions(home=home, api_port=0, deploy_timeout_seconds=60, deploy_heartbeat_seconds=20)
    )
    try:
        state = stack.start()
        say(f"Ferry demo — local stack up in {time.monotonic() - started:.1f} s at {state.api_url}")
        say(f"  sample repository  {state.sample_path} (branch main)")
        say(f"  sample image       {state.sample_image_note}")
        application = wait_for_terminal(state.sample_application.id, timeout_seconds)
        head = head_commit(state.sample_path)
        return _summarize(application, head, say, time.monotonic() - started, stack)
    except FerryError as exc:
        say(f"  demo failed: {exc}")
        return False
    finally:
        stack.stop()


def _summarize(
    application: Application,
    head: str,
    say: Callable[[str], None],
    seconds: float,
    stack: LocalStack,
) -> bool:
    commit = (application.commit or "none")[:12]
    say(
        f"  application        {application.name}: {application.sync_status.value}, "
        f"{application.health_status.value} at {commit} (repository head {head[:12]})"
    )
    if application.last_sync_error:
        say(f"  last error         {application.last_sync_error}")
    if application.current_request_id:
        job_id = sync_job_of(application.current_request_id)
        if job_id is not None:
            try:
                sync = describe_sync(job_id)
            except FerryError as exc:
                say(f"  sync execution     unreadable: {exc}")
            else:
                say(f"  sync path          {' → '.join(sync.path)} ({sync.status})")
        try:
            execution = _finished_execution(application.current_request_id)
        except FerryError as exc:
            say(f"  deploy execution   unreadable: {exc}")
        else:
            say(f"  deploy path        {' → '.join(execution.path)} ({execution.status})")
            result = (execution.output or {}).get("result") or {}
            for container in result.get("containers", []):
                say(
                    f"  container          {container['name']} {container['state']}"
                    f" ({container.get('health') or 'no health check'}),"
                    f" project label {application.project_name}"
                )
    ok = application.sync_status is ApplicationSyncStatus.SYNCED and application.commit == head
    if not ok and stack.agent is not None and not stack.agent.running:
        say("  the local agent exited; see its log: " + str(stack.agent.log_path))
    say(f"  {'OK' if ok else 'NOT SYNCED'} in {seconds:.1f} s")
    return ok
