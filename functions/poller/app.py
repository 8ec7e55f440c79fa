"""EventBridge schedule (every minute) → queue syncs of the polling repositories that are due,
and sweep: no application or repository stays `syncing` once nothing works on it."""

from __future__ import annotations

from ferry.import_phase import collector_paused

with collector_paused():
    from typing import Any

    from aws_lambda_powertools.utilities.typing import LambdaContext

    from ferry.aws.handlers import lambda_handler
    from ferry.deploy.sweep import sweep_applications
    from ferry.sync.polling import poll_due_repositories


@lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    queued = poll_due_repositories()
    return {"queued": queued, "swept": sweep_applications()}
