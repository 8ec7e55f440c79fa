"""The outcome table of ferry.domain.outcomes: every row, and the reasons shown to the user."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ferry.domain.messages import DeployResult
from ferry.domain.models import ApplicationSyncStatus, HealthStatus
from ferry.domain.outcomes import (
    NO_RESULT,
    OutcomeKind,
    describe_transport_error,
    interpret_result,
    interpret_transport_error,
    parse_result,
)

TIMEOUT = 900
HEARTBEAT = 60


def _result(**fields: Any) -> dict[str, Any]:
    return {"request_id": "req_1", "application_id": "app_1", **fields}


def test_interpret_transport_error_any_reason_out_of_sync_health_unchanged() -> None:
    change = interpret_transport_error("agent did not answer within 900 s (is it running?)")

    assert change.kind is OutcomeKind.NO_RESULT
    assert change.sync_status is ApplicationSyncStatus.OUT_OF_SYNC
    assert change.health_status is None
    assert change.last_sync_error == "agent did not answer within 900 s (is it running?)"


def test_interpret_result_none_out_of_sync_agent_returned_no_result() -> None:
    change = interpret_result(None)

    assert change.kind is OutcomeKind.NO_RESULT
    assert change.sync_status is ApplicationSyncStatus.OUT_OF_SYNC
    assert change.health_status is None
    assert change.last_sync_error == "agent returned no result"
    assert NO_RESULT == "agent returned no result"


@pytest.mark.parametrize(
    "raw",
    [
        None,
        "garbage",
        42,
        ["success", True],
        {},
        {"success": True},
        _result(success="maybe"),
        _result(success=True, health="on fire"),
        _result(success=True, containers="none"),
    ],
)
def test_parse_result_missing_or_malformed_returns_none(raw: object) -> None:
    assert parse_result(raw) is None


@pytest.mark.parametrize("raw", [None, "garbage", {"success": True}])
def test_interpret_result_malformed_raw_out_of_sync_health_unchanged(raw: object) -> None:
    change = interpret_result(parse_result(raw))

    assert change.sync_status is ApplicationSyncStatus.OUT_OF_SYNC
    assert change.health_status is None
    assert change.last_sync_error == NO_RESULT


def test_parse_result_well_formed_returns_result_and_ignores_extra_fields() -> None:
    result = parse_result(
        _result(
            success=True,
            health="healthy",
            containers=[{"name": "web-1", "state": "running", "health": "healthy"}],
            image_digests={"busybox": "busybox@sha256:abc"},
            agent_version="9.9",
        )
    )

    assert isinstance(result, DeployResult)
    assert result.success is True
    assert result.health is HealthStatus.HEALTHY
    assert [c.name for c in result.containers] == ["web-1"]
    assert result.image_digests == {"busybox": "busybox@sha256:abc"}


def test_interpret_result_failed_out_of_sync_unhealthy_agent_message() -> None:
    result = parse_result(_result(success=False, error_message="docker compose up failed: boom"))

    change = interpret_result(result)

    assert change.kind is OutcomeKind.FAILED
    assert change.sync_status is ApplicationSyncStatus.OUT_OF_SYNC
    assert change.health_status is HealthStatus.UNHEALTHY
    assert change.last_sync_error == "docker compose up failed: boom"


@pytest.mark.parametrize("message", ["", None])
def test_interpret_result_failed_without_message_default_message(message: str | None) -> None:
    change = interpret_result(parse_result(_result(success=False, error_message=message)))

    assert change.kind is OutcomeKind.FAILED
    assert change.health_status is HealthStatus.UNHEALTHY
    assert change.last_sync_error
    assert "failed" in change.last_sync_error


@pytest.mark.parametrize("health", list(HealthStatus))
def test_interpret_result_succeeded_synced_with_agent_health(health: HealthStatus) -> None:
    change = interpret_result(parse_result(_result(success=True, health=health.value)))

    assert change.kind is OutcomeKind.SUCCEEDED
    assert change.sync_status is ApplicationSyncStatus.SYNCED
    assert change.health_status is health
    assert change.last_sync_error is None


def test_interpret_result_succeeded_with_stale_message_error_cleared() -> None:
    change = interpret_result(
        parse_result(_result(success=True, health="healthy", error_message="old failure"))
    )

    assert change.last_sync_error is None


def test_interpret_result_succeeded_without_health_unknown() -> None:
    change = interpret_result(parse_result(_result(success=True)))

    assert change.health_status is HealthStatus.UNKNOWN


def _describe(error: dict[str, Any], elapsed_seconds: float = 5.0) -> str:
    return describe_transport_error(
        error,
        timeout_seconds=TIMEOUT,
        heartbeat_seconds=HEARTBEAT,
        elapsed_seconds=elapsed_seconds,
    )


def test_describe_transport_error_heartbeat_timeout_names_heartbeat() -> None:
    reason = _describe({"Error": "States.HeartbeatTimeout", "Cause": ""})

    assert "heartbeat" in reason
    assert f"{HEARTBEAT} s" in reason
    assert str(TIMEOUT) not in reason


def test_describe_transport_error_timeout_after_deadline_names_timeout() -> None:
    reason = _describe({"Error": "States.Timeout"}, elapsed_seconds=TIMEOUT + 3)

    assert f"within {TIMEOUT} s" in reason
    assert "heartbeat" not in reason


def test_describe_transport_error_timeout_before_deadline_names_heartbeat() -> None:
    # Step Functions reports a lapsed heartbeat as States.Timeout as well.
    reason = _describe({"Error": "States.Timeout"}, elapsed_seconds=HEARTBEAT + 3)

    assert "heartbeat" in reason
    assert f"{HEARTBEAT} s" in reason


def test_describe_transport_error_lambda_json_cause_uses_error_message() -> None:
    cause = json.dumps(
        {
            "errorMessage": "application app_1 does not exist",
            "errorType": "NotFound",
            "stackTrace": ['  File "/var/task/app.py", line 1'],
        }
    )

    reason = _describe({"Error": "NotFound", "Cause": cause})

    assert reason == "deploy finished without a result: NotFound: application app_1 does not exist"


def test_describe_transport_error_json_cause_with_message_uses_message() -> None:
    cause = json.dumps({"message": "queue does not exist", "code": "QueueDoesNotExist"})

    reason = _describe({"Error": "SQS.QueueDoesNotExistException", "Cause": cause})

    assert reason.endswith(": queue does not exist")


def test_describe_transport_error_plain_text_cause_kept() -> None:
    reason = _describe({"Error": "States.TaskFailed", "Cause": "  queue does not exist  "})

    assert reason == "deploy finished without a result: States.TaskFailed: queue does not exist"


def test_describe_transport_error_no_cause_names_error_only() -> None:
    reason = _describe({"Error": "States.Runtime"})

    assert reason == "deploy finished without a result: States.Runtime"


def test_describe_transport_error_empty_error_unknown_error() -> None:
    reason = _describe({})

    assert reason == "deploy finished without a result: unknown error"


def test_describe_transport_error_huge_cause_truncated() -> None:
    cause = json.dumps({"errorMessage": "x" * 5000})

    reason = _describe({"Error": "Boom", "Cause": cause})

    assert reason.startswith("deploy finished without a result: Boom: xxx")
    assert len(reason) < 600


def test_sync_job_of_request_started_by_a_sync_job() -> None:
    from ferry.deploy.start import deploy_request_id, sync_job_of

    request = deploy_request_id("app_0123456789abcdef", "a" * 40, "job_fedcba9876543210")
    assert sync_job_of(request) == "job_fedcba9876543210"
    assert sync_job_of(deploy_request_id("app_1", "b" * 40, "redeploy_1234")) is None
