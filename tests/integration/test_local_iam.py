"""Least privilege in the local cloud: moto checks IAM, and every in-process function, the API,
the state machines and the agent act with their own role's credentials (ferry.local.iam)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from botocore.exceptions import ClientError

from ferry.local.iam import SESSION_NAME, acting_as
from ferry.local.moto_server import free_port
from ferry.local.stack import LocalStack
from ferry.local.template import FunctionSpec
from tests.cfn import ROOT, Deployment, sam_template, translated
from tests.helpers import (
    agent_queue_url,
    commit,
    compose,
    create_agent,
    create_repository,
    wait_for,
)


def _role_name(stack: LocalStack, logical_id: str) -> str:
    return stack.cloud.physical_ids[logical_id]


def _role_arn(stack: LocalStack, logical_id: str) -> str:
    return stack.cloud.role_arn(logical_id)


def _denied(call: Any) -> str:
    with pytest.raises(ClientError) as caught:
        call()
    return str(caught.value)


def test_local_roles_carry_the_templates_policies(stack: LocalStack) -> None:
    cfn = Deployment(translated())
    iam = boto3.client("iam")

    for logical_id, resource in cfn.resources.items():
        if resource["Type"] != "AWS::IAM::Role":
            continue
        expected = {policy["PolicyName"] for policy in resource["Properties"].get("Policies", [])}
        expected |= {
            attached["Properties"]["PolicyName"]
            for attached in cfn.resources.values()
            if attached["Type"] == "AWS::IAM::Policy"
            and {"Ref": logical_id} in attached["Properties"]["Roles"]
        }
        held = set(iam.list_role_policies(RoleName=_role_name(stack, logical_id))["PolicyNames"])
        assert held == expected, logical_id
    api_role_policies = iam.list_role_policies(RoleName=_role_name(stack, "ApiFunctionRole"))
    assert "IssueAgentSessions" in api_role_policies["PolicyNames"]  # ApiAgentSessionsPolicy


def test_calls_carry_the_role_of_the_context_else_the_operator(stack: LocalStack) -> None:
    role = stack.cloud.iam.role(_role_arn(stack, "AcquireDeploySlotFunctionRole"))
    sts = boto3.client("sts")  # one client: the identity is read when each call is signed

    with acting_as(role):
        inside = sts.get_caller_identity()["Arn"]
    outside = sts.get_caller_identity()["Arn"]

    role_name = _role_name(stack, "AcquireDeploySlotFunctionRole")
    assert inside.endswith(f":assumed-role/{role_name}/{SESSION_NAME}")
    assert outside.endswith(":user/ferry-local-operator")


def test_role_without_a_permission_is_denied_as_on_aws(stack: LocalStack) -> None:
    from ferry.aws.queues import send_sync_job
    from ferry.domain.messages import SyncJob
    from ferry.errors import TransientError
    from ferry.store.applications import list_applications

    role = stack.cloud.iam.role(_role_arn(stack, "AcquireDeploySlotFunctionRole"))
    with acting_as(role):
        list_applications()  # DynamoDB through pynamodb: its table is the role's
        with pytest.raises(TransientError, match="not authorized to perform: sqs:SendMessage"):
            send_sync_job(SyncJob(repository_id="repo_x", trigger="manual", job_id="job_iam_x"))


def test_queue_scope_checked_for_sqs(stack: LocalStack) -> None:
    sync_worker = _role_arn(stack, "SyncWorkerFunctionRole")
    sqs = stack.cloud.iam.client("sqs", sync_worker)
    own = os.environ["FERRY_SYNC_QUEUE_URL"]
    other = boto3.client("sqs").create_queue(QueueName="iam-scope-other")["QueueUrl"]

    sqs.get_queue_attributes(QueueUrl=own, AttributeNames=["QueueArn"])
    assert "AccessDenied" in _denied(
        lambda: sqs.get_queue_attributes(QueueUrl=other, AttributeNames=["QueueArn"])
    )


def whoami(event: dict[str, Any], context: Any) -> dict[str, str]:
    """A handler for test_invoked_function_acts_as_its_role."""
    return {"arn": boto3.client("sts").get_caller_identity()["Arn"]}


def test_invoked_function_acts_as_its_role(stack: LocalStack, unique: str) -> None:
    name = f"whoami-{unique}"
    role_arn = _role_arn(stack, "NotifyFunctionRole")
    lambdas = boto3.client("lambda")
    lambdas.create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=role_arn,
        Handler="test_local_iam.whoami",
        Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18},
    )
    stack.cloud.lambdas.register(
        name, FunctionSpec(logical_id=name, module=__name__, attribute="whoami")
    )

    response = lambdas.invoke(FunctionName=name, Payload=b"{}")

    assert "FunctionError" not in response
    arn = json.loads(response["Payload"].read())["arn"]
    assert arn.endswith(f"assumed-role/{_role_name(stack, 'NotifyFunctionRole')}/{SESSION_NAME}")


def _run(stack: LocalStack, role: str, states: dict[str, Any]) -> dict[str, Any]:
    sfn = boto3.client("stepfunctions")
    machine = sfn.create_state_machine(
        name=f"iam-{role}-{os.urandom(3).hex()}",
        definition=json.dumps({"StartAt": next(iter(states)), "States": states}),
        roleArn=_role_arn(stack, role),
    )["stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=machine, name="probe")["executionArn"]

    def ended() -> dict[str, Any] | None:
        described = sfn.describe_execution(executionArn=execution)
        return dict(described) if described["status"] != "RUNNING" else None

    return wait_for(ended, what="the probe execution")


def test_state_machine_service_calls_act_as_its_role(stack: LocalStack) -> None:
    table = stack.cloud.tables["ChangesTable"]
    item = {"feed": {"S": "iam-probe"}, "seq": {"N": "1"}, "path": {"S": "/"}, "kind": {"S": "x"}}
    put = {
        "Type": "Task",
        "Resource": "arn:aws:states:::dynamodb:putItem",
        "Parameters": {"TableName": table, "Item": item},
        "End": True,
    }
    read = {**put, "Resource": "arn:aws:states:::dynamodb:getItem"}
    read["Parameters"] = {
        "TableName": table,
        "Key": {"feed": {"S": "iam-probe"}, "seq": {"N": "1"}},
    }

    # DeployStateMachine's role may put a change row (AnnounceUnappliedChange), never read one.
    assert _run(stack, "DeployStateMachineRole", {"Put": put})["status"] == "SUCCEEDED"
    denied = _run(stack, "DeployStateMachineRole", {"Read": read})
    assert denied["status"] == "FAILED"
    assert "AccessDenied" in json.dumps(denied, default=str)


def test_agent_session_credentials_are_agent_roles(
    stack: LocalStack, api: httpx.Client, unique: str
) -> None:
    agent = create_agent(api, f"iam-{unique}")
    session = httpx.get(
        f"{stack.api_url}/api/v1/agent/session",
        headers={"Authorization": f"Bearer {agent['token']}"},
    ).json()
    credentials = session["credentials"]
    as_agent = boto3.session.Session(
        aws_access_key_id=credentials["access_key_id"],
        aws_secret_access_key=credentials["secret_access_key"],
        aws_session_token=credentials["session_token"],
        region_name=session["region"],
    )
    sqs = as_agent.client("sqs")

    arn = as_agent.client("sts").get_caller_identity()["Arn"]
    assert f":assumed-role/{_role_name(stack, 'AgentRole')}/ferry-{agent['id']}" in arn
    sqs.receive_message(QueueUrl=agent_queue_url(agent["id"]), WaitTimeSeconds=0)
    assert "AccessDenied" in _denied(
        lambda: sqs.send_message(QueueUrl=os.environ["FERRY_SYNC_QUEUE_URL"], MessageBody="{}")
    )


# -- the gate: a permission taken out of the template fails the path that needs it ------------


def _without_statement(sid: str) -> dict[str, Any]:
    """template.yaml (as data; JSON is YAML) without the policy holding statement `sid`."""
    template = sam_template()
    for resource in template["Resources"].values():
        policies = resource.get("Properties", {}).get("Policies")
        if isinstance(policies, list):
            resource["Properties"]["Policies"] = [
                policy
                for policy in policies
                if not (
                    isinstance(policy, dict)
                    and any(s.get("Sid") == sid for s in policy.get("Statement", []))
                )
            ]
    return template


@pytest.fixture
def stack_without_stop_execution(tmp_path: Path) -> Iterator[httpx.Client]:
    """`ferry up` (no Docker, so no deploy ends by itself) from a copy of the project whose
    template lacks ApiFunction's CancelDeploys statement (states:StopExecution)."""
    project, home = tmp_path / "project", tmp_path / "home"
    shutil.copytree(ROOT / "functions" / "statemachines", project / "functions" / "statemachines")
    template = _without_statement("CancelDeploys")
    assert "states:StopExecution" not in json.dumps(template["Resources"]["ApiFunction"])
    (project / "template.yaml").write_text(json.dumps(template))
    environment = {
        k: v for k, v in os.environ.items() if not k.startswith(("FERRY_", "AWS_", "MOTO_"))
    }
    environment.update(
        FERRY_PROJECT_ROOT=str(project), DOCKER_HOST=f"unix://{tmp_path}/no-docker.sock"
    )
    port = free_port()
    process = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "ferry"),
            "up",
            "--home",
            str(home),
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=environment,
    )
    try:
        saved = wait_for(
            lambda: (
                (home / "local.json").exists() and json.loads((home / "local.json").read_text())
            ),
            timeout=120,
            what="the second stack",
        )
        with httpx.Client(
            base_url=f"{saved['api_url']}/api/v1",
            headers={"Authorization": f"Bearer {saved['token']}"},
            timeout=30,
        ) as client:
            yield client
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_cancel_fails_when_the_template_lacks_stop_execution(
    stack_without_stop_execution: httpx.Client, git_repo: Path, unique: str
) -> None:
    api = stack_without_stop_execution
    commit(git_repo, "app/compose.yaml", compose())
    repository = create_repository(api, git_repo)
    agent = create_agent(api, f"nobody-{unique}")  # no agent serves it: the deploy waits
    application = api.post(
        "/applications",
        json={
            "name": f"app-{unique}",
            "repository_id": repository["id"],
            "agent_id": agent["id"],
            "path": "app/compose.yaml",
        },
    ).json()
    wait_for(
        lambda: api.get(f"/applications/{application['id']}").json()["sync_status"] == "syncing",
        timeout=60,
        what="the deploy to wait for its agent",
    )

    response = api.post(f"/applications/{application['id']}/cancel")

    assert response.status_code >= 500, response.text
    assert "not authorized to perform: states:StopExecution" in response.text
    assert api.get(f"/applications/{application['id']}").json()["sync_status"] == "syncing"
