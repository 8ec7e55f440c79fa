"""ApplyUndeployResult: the application deleted, or kept with the reason."""

from __future__ import annotations

from ferry.import_phase import collector_paused

with collector_paused():
    from typing import Any

    from aws_lambda_powertools.utilities.typing import LambdaContext

    from ferry.aws.handlers import lambda_handler
    from ferry.deploy import removal


@lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # Through its module, so that a test can replace the function this handler runs.
    return removal.apply_undeploy_result(event)
