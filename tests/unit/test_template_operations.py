"""template.yaml gives an operator what the AWS console should show (alarms, a dashboard, traces,
execution logs, bounded log retention) and keeps data that must outlive a mistake."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.cfn import Deployment, sam_template, translated

# The control plane's own metrics (Powertools EMF); the Python side emits exactly these names.
FERRY_NAMESPACE = "Ferry"
FERRY_METRICS = {
    "DeploysSucceeded",
    "DeploysFailed",
    "DeploysWithoutResult",
    "SyncDuration",
    "DeliveriesAccepted",
    "DeliveriesIgnored",
    "DeliveriesRefused",
}
# Tables whose rows are records (not caches, counters or job progress): kept on stack deletion.
RECORD_TABLES = {
    "RepositoriesTable",
    "ApplicationsTable",
    "AgentsTable",
    "ApplicationEventsTable",
    "ApiTokensTable",
    "NameGuardsTable",
    "NotificationTargetsTable",
}


@pytest.fixture(scope="module")
def sam() -> dict[str, Any]:
    return sam_template()


@pytest.fixture(scope="module")
def cfn() -> Deployment:
    return Deployment(translated())


def _of_type(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {
        logical_id: resource
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == kind
    }


def _alarms(cfn: Deployment) -> Iterator[dict[str, Any]]:
    for resource in _of_type(cfn.template, "AWS::CloudWatch::Alarm").values():
        yield cfn.resolve(resource["Properties"])


def _watched(cfn: Deployment) -> set[tuple[str, str, str]]:
    """(namespace, metric, dimension value) of every alarm that notifies the alarm topic."""
    topic = cfn.ref("AlarmTopic")
    watched = set()
    for alarm in _alarms(cfn):
        assert alarm["AlarmActions"] == [topic], alarm["AlarmName"]
        (dimension,) = alarm["Dimensions"]
        watched.add((alarm["Namespace"], alarm["MetricName"], dimension["Value"]))
    return watched


def test_alarms_every_function_errors_and_throttles(cfn: Deployment) -> None:
    watched = _watched(cfn)
    functions = _of_type(cfn.template, "AWS::Lambda::Function")

    assert len(functions) == 11
    for logical_id in functions:
        name = cfn.ref(logical_id)
        assert ("AWS/Lambda", "Errors", name) in watched, logical_id
        assert ("AWS/Lambda", "Throttles", name) in watched, logical_id


def test_alarms_state_machines_failed_or_timed_out(cfn: Deployment) -> None:
    watched = _watched(cfn)

    for logical_id in ("DeployStateMachine", "UndeployStateMachine"):
        arn = cfn.ref(logical_id)
        assert ("AWS/States", "ExecutionsFailed", arn) in watched
        assert ("AWS/States", "ExecutionsTimedOut", arn) in watched


def test_alarms_dead_letters_and_api_5xx(cfn: Deployment) -> None:
    watched = _watched(cfn)

    dead_letters = cfn.attribute("SyncJobsDeadLetterQueue", "QueueName")
    assert ("AWS/SQS", "ApproximateNumberOfMessagesVisible", dead_letters) in watched
    assert ("AWS/ApiGateway", "5xx", cfn.ref("HttpApi")) in watched


def test_alarm_email_subscribed_only_when_given(sam: dict[str, Any]) -> None:
    subscription = sam["Resources"]["AlarmEmailSubscription"]
    without = Deployment(translated())
    with_email = Deployment(translated(), {"AlarmEmail": "ops@example.com"})

    assert subscription["Condition"] == "HasAlarmEmail"
    assert subscription["Properties"]["Protocol"] == "email"
    assert without.condition("HasAlarmEmail") is False
    assert with_email.condition("HasAlarmEmail") is True


def _dashboard_metrics(cfn: Deployment) -> list[list[Any]]:
    (dashboard,) = _of_type(cfn.template, "AWS::CloudWatch::Dashboard").values()
    body = json.loads(cfn.resolve(dashboard["Properties"]["DashboardBody"]))
    rows = []
    for widget in body["widgets"]:
        previous: list[Any] = []
        for row in widget["properties"].get("metrics", []):
            # "." repeats the value above; "..." repeats every leading value.
            names = [item for item in row if not isinstance(item, dict)]
            if names == ["..."]:
                names = previous
            names = [previous[i] if name == "." else name for i, name in enumerate(names)]
            rows.append(names)
            previous = names
    return rows


def test_dashboard_shows_ferry_metrics_by_name_and_service(cfn: Deployment) -> None:
    ferry_rows = [row for row in _dashboard_metrics(cfn) if row[0] == FERRY_NAMESPACE]
    service = cfn.template["Resources"]["ApiFunction"]["Properties"]["Environment"]["Variables"][
        "POWERTOOLS_SERVICE_NAME"
    ]

    assert {row[1] for row in ferry_rows} == FERRY_METRICS
    assert all(row[2:] == ["service", service] for row in ferry_rows)


def test_dashboard_shows_queue_age_dead_letters_and_function_errors(cfn: Deployment) -> None:
    rows = [tuple(row) for row in _dashboard_metrics(cfn)]
    queue = cfn.attribute("SyncJobsQueue", "QueueName")
    dead_letters = cfn.attribute("SyncJobsDeadLetterQueue", "QueueName")

    assert ("AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName", queue) in rows
    assert ("AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", dead_letters) in rows
    for logical_id in _of_type(cfn.template, "AWS::Lambda::Function"):
        assert ("AWS/Lambda", "Errors", "FunctionName", cfn.ref(logical_id)) in rows


def test_dashboard_alarm_widget_lists_every_alarm(cfn: Deployment) -> None:
    (dashboard,) = _of_type(cfn.template, "AWS::CloudWatch::Dashboard").values()
    body = json.loads(cfn.resolve(dashboard["Properties"]["DashboardBody"]))
    listed = {
        arn for w in body["widgets"] if w["type"] == "alarm" for arn in w["properties"]["alarms"]
    }
    region, account = cfn.ref("AWS::Region"), cfn.ref("AWS::AccountId")

    assert listed == {
        f"arn:aws:cloudwatch:{region}:{account}:alarm:{alarm['AlarmName']}"
        for alarm in _alarms(cfn)
    }


def test_functions_traced_with_powertools_settings(sam: dict[str, Any]) -> None:
    function_globals = sam["Globals"]["Function"]
    variables = function_globals["Environment"]["Variables"]

    assert function_globals["Tracing"] == "Active"
    assert variables["POWERTOOLS_METRICS_NAMESPACE"] == FERRY_NAMESPACE
    assert variables["POWERTOOLS_SERVICE_NAME"]


def test_every_log_group_keeps_logs_for_the_retention_parameter(cfn: Deployment) -> None:
    groups = _of_type(cfn.template, "AWS::Logs::LogGroup")
    functions = _of_type(cfn.template, "AWS::Lambda::Function")
    machines = _of_type(cfn.template, "AWS::StepFunctions::StateMachine")

    for logical_id, group in groups.items():
        assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionInDays"}, logical_id
    for logical_id, function in functions.items():
        assert function["Properties"]["LoggingConfig"]["LogGroup"]["Ref"] in groups, logical_id
    for logical_id, machine in machines.items():
        (destination,) = machine["Properties"]["LoggingConfiguration"]["Destinations"]
        target = destination["CloudWatchLogsLogGroup"]["LogGroupArn"]["Fn::GetAtt"][0]
        assert target in groups, logical_id
    assert cfn.parameters["LogRetentionInDays"] == 30


def test_state_machines_traced_and_logged_without_execution_data(cfn: Deployment) -> None:
    for logical_id, machine in _of_type(cfn.template, "AWS::StepFunctions::StateMachine").items():
        properties = machine["Properties"]
        assert properties["TracingConfiguration"] == {"Enabled": True}, logical_id
        assert properties["LoggingConfiguration"]["Level"] == "ALL", logical_id
        # Inputs and outputs carry compose files: they stay out of the logs.
        assert properties["LoggingConfiguration"]["IncludeExecutionData"] is False, logical_id


def test_api_throttled_on_its_default_route(cfn: Deployment) -> None:
    (stage,) = _of_type(cfn.template, "AWS::ApiGatewayV2::Stage").values()
    settings = cfn.resolve(stage["Properties"]["DefaultRouteSettings"])

    assert settings["ThrottlingRateLimit"] > 0
    assert settings["ThrottlingBurstLimit"] > 0


def test_sync_worker_trigger_concurrency_bounded(cfn: Deployment) -> None:
    (mapping,) = _of_type(cfn.template, "AWS::Lambda::EventSourceMapping").values()
    properties = cfn.resolve(mapping["Properties"])

    assert properties["FunctionName"] == cfn.ref("SyncWorkerFunction")
    assert 2 <= int(properties["ScalingConfig"]["MaximumConcurrency"]) <= 10
    assert properties["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_poller_schedule_never_retries_a_missed_tick(cfn: Deployment) -> None:
    (schedule,) = _of_type(cfn.template, "AWS::Scheduler::Schedule").values()
    retry = schedule["Properties"]["Target"]["RetryPolicy"]

    assert retry["MaximumRetryAttempts"] == 0
    assert retry["MaximumEventAgeInSeconds"] <= 60


@pytest.mark.parametrize(
    "logical_id", ["EncryptionKey", "EncryptionSecret", *sorted(RECORD_TABLES)]
)
def test_data_and_its_key_retained_on_delete_and_replace(
    sam: dict[str, Any], logical_id: str
) -> None:
    resource = sam["Resources"][logical_id]

    assert resource["DeletionPolicy"] == "Retain"
    assert resource["UpdateReplacePolicy"] == "Retain"


def test_record_tables_deletion_protected_by_default(cfn: Deployment) -> None:
    for logical_id in RECORD_TABLES:
        properties = cfn.template["Resources"][logical_id]["Properties"]
        assert cfn.resolve(properties["DeletionProtectionEnabled"]) == "true", logical_id


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from _strings(item)


def test_template_arns_name_the_partition_of_the_stack(sam: dict[str, Any]) -> None:
    hard_coded = [text for text in _strings(sam) if "arn:aws:" in text or "arn:aws-" in text]

    assert hard_coded == []
