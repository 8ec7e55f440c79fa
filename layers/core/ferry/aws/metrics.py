"""CloudWatch metrics of the control plane, in Embedded Metric Format (Powertools Metrics).

The stack's dashboard reads them from namespace `Ferry` with dimension `service=ferry`. They are
printed to the function's log (Lambda turns the lines into metrics), once per invocation: each
handler is decorated with `metrics.log_metrics`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit

if TYPE_CHECKING:
    # Only for the annotation: the outcome table loads the deploy-result messages, which every
    # function imports this module for and most never use (cold start).
    from ferry.domain.outcomes import OutcomeKind

NAMESPACE = "Ferry"
SERVICE = "ferry"

# One metric set per process (Powertools shares it between instances); named here, not read from
# POWERTOOLS_METRICS_NAMESPACE, so a module imported before configuration still names it right.
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)

# Keyed by OutcomeKind's values (a StrEnum member looks up as its value).
_DEPLOYS = {
    "succeeded": "DeploysSucceeded",
    "failed": "DeploysFailed",
    "no_result": "DeploysWithoutResult",
}
_DELIVERIES = {
    "accepted": "DeliveriesAccepted",
    "ignored": "DeliveriesIgnored",
    "refused": "DeliveriesRefused",
}


def count_deploy(kind: OutcomeKind) -> None:
    """One deploy outcome recorded on its application."""
    metrics.add_metric(name=_DEPLOYS[kind], unit=MetricUnit.Count, value=1)


def count_delivery(outcome: str) -> None:
    """One webhook delivery logged as accepted, ignored or refused."""
    metrics.add_metric(name=_DELIVERIES[outcome], unit=MetricUnit.Count, value=1)


def record_sync_duration(milliseconds: float) -> None:
    """How long one sync took, from its job being queued to its end recorded."""
    metrics.add_metric(name="SyncDuration", unit=MetricUnit.Milliseconds, value=milliseconds)
