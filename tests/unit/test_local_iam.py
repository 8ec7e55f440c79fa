"""How the local cloud hands the template's policies to moto's IAM checks (ferry.local.iam)."""

from __future__ import annotations

from typing import Any

from ferry.local.iam import SESSION_NAME, local_policies

QUEUE_ARN = {"Fn::GetAtt": ["Queue", "Arn"]}
TABLE_ARN = {"Fn::GetAtt": ["Table", "Arn"]}


def _role(policies: list[dict[str, Any]], trusted: Any = None) -> dict[str, Any]:
    principal = {"AWS": trusted} if trusted else {"Service": ["lambda.amazonaws.com"]}
    return {
        "Type": "AWS::IAM::Role",
        "Properties": {
            "AssumeRolePolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole"}
                ],
            },
            "Policies": policies,
        },
    }


def _policy(name: str, *statements: dict[str, Any]) -> dict[str, Any]:
    return {"PolicyName": name, "PolicyDocument": {"Statement": list(statements)}}


def test_local_policies_role_policies_become_policy_resources_with_their_names() -> None:
    resources = {
        "FnRole": _role(
            [
                _policy("FnRolePolicy0", {"Effect": "Allow", "Action": "sqs:SendMessage*"}),
                _policy("FnRolePolicy1", {"Effect": "Allow", "Action": "dynamodb:Query"}),
            ]
        )
    }

    projected = local_policies(resources)

    assert "Policies" not in projected["FnRole"]["Properties"]
    attached = {
        lid: r["Properties"] for lid, r in projected.items() if r["Type"] == "AWS::IAM::Policy"
    }
    assert {p["PolicyName"] for p in attached.values()} == {"FnRolePolicy0", "FnRolePolicy1"}
    assert all(p["Roles"] == [{"Ref": "FnRole"}] for p in attached.values())
    assert all(p["PolicyDocument"]["Version"] == "2012-10-17" for p in attached.values())
    assert "Policies" in resources["FnRole"]["Properties"]  # the input is left as it was


def _statements(projected: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        statement
        for resource in projected.values()
        if resource["Type"] == "AWS::IAM::Policy"
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]
    ]


def test_local_policies_queue_scopes_kept_other_scopes_become_any_resource() -> None:
    resources = {
        "FnRole": _role(
            [
                _policy(
                    "Queues",
                    {
                        "Sid": "ManageQueues",
                        "Effect": "Allow",
                        "Action": ["sqs:CreateQueue", "sqs:DeleteQueue"],
                        "Resource": QUEUE_ARN,
                    },
                ),
                _policy(
                    "Table",
                    {"Effect": "Allow", "Action": ["dynamodb:GetItem"], "Resource": [TABLE_ARN]},
                ),
            ]
        )
    }

    statements = _statements(local_policies(resources))

    assert {(s.get("Sid"), tuple(s["Action"]), str(s["Resource"])) for s in statements} == {
        # moto names the queue of a DeleteQueue; a CreateQueue names none yet.
        ("ManageQueues", ("sqs:DeleteQueue",), str(QUEUE_ARN)),
        ("ManageQueuesAnyResource", ("sqs:CreateQueue",), "*"),
        # moto checks DynamoDB's actions only (against "*").
        (None, ("dynamodb:GetItem", "dynamodb:TransactGetItems"), "*"),
    }


def test_local_policies_actions_gain_the_names_moto_checks_them_by() -> None:
    resources = {
        "MachineRole": _role(
            [
                _policy(
                    "Invoke",
                    {"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": "arn:f"},
                    {
                        "Effect": "Allow",
                        "Action": ["dynamodb:PutItem", "dynamodb:UpdateItem"],
                        "Resource": TABLE_ARN,
                    },
                    {"Effect": "Allow", "Action": ["sqs:DeleteMessage"], "Resource": QUEUE_ARN},
                )
            ]
        )
    }

    actions = [s["Action"] for s in _statements(local_policies(resources))]

    assert actions == [
        ["lambda:InvokeFunction", "lambda:Invoke"],
        ["dynamodb:PutItem", "dynamodb:TransactWriteItems", "dynamodb:UpdateItem"],
        ["sqs:DeleteMessage", "sqs:DeleteMessageBatch"],
    ]


def test_local_policies_trust_in_a_stack_role_extends_to_its_local_session() -> None:
    resources = {
        "ApiRole": _role([]),
        "AgentRole": _role([], trusted={"Fn::GetAtt": ["ApiRole", "Arn"]}),
        "OtherRole": _role([], trusted="arn:aws:iam::111122223333:root"),
    }

    projected = local_policies(resources)

    def principals(role: str) -> Any:
        document = projected[role]["Properties"]["AssumeRolePolicyDocument"]
        return document["Statement"][0]["Principal"]

    assert principals("AgentRole")["AWS"] == [
        {"Fn::GetAtt": ["ApiRole", "Arn"]},
        {
            "Fn::Sub": "arn:${AWS::Partition}:sts::${AWS::AccountId}:assumed-role/${ApiRole}/"
            + SESSION_NAME
        },
    ]
    assert principals("OtherRole")["AWS"] == ["arn:aws:iam::111122223333:root"]
    assert principals("ApiRole") == {"Service": ["lambda.amazonaws.com"]}


def test_local_policies_deny_statements_kept_as_written() -> None:
    deny = {"Effect": "Deny", "Action": "dynamodb:DeleteTable", "Resource": TABLE_ARN}
    resources = {
        "Attached": {
            "Type": "AWS::IAM::Policy",
            "Properties": {
                "PolicyName": "p",
                "PolicyDocument": {"Version": "2012-10-17", "Statement": [deny]},
                "Roles": [{"Ref": "R"}],
            },
        }
    }

    assert _statements(local_policies(resources)) == [deny]
