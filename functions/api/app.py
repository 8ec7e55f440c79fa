"""API Gateway (HTTP API) → FastAPI through Mangum."""

from ferry.import_phase import collector_paused

with collector_paused():
    from typing import Any

    from mangum import Mangum
    from mangum.types import LambdaContext

    from ferry.api.app import create_app
    from ferry.aws.metrics import metrics
    from ferry.aws.tracing import tracer

    # The application's routes and their models are built with the imports, inside the pause.
    app = Mangum(create_app(), lifespan="off")


@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app(event, context)
