"""Least privilege, read statically from template.yaml after the SAM transform.

moto enforces IAM actions for some services and resources for SQS only, so a permission the
template lacks (or grants too widely) can pass every local test and fail on AWS. Two checks close
that gap:
- scope: every statement names resources of this stack; `*` only where AWS offers no resource
  (listed below, with the reason), and no managed policy beyond the two SAM always attaches;
- need: each function's role allows every AWS call its code makes (the table below, found in the
  code: boto3 client calls and pynamodb model operations), and each state machine's role every
  service call its ASL makes (read from the .asl.json files themselves).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.cfn import ROOT, STACK, Deployment, sam_template, translated

# -- what AWS offers no resource for -------------------------------------------------------

# Actions IAM cannot scope to a resource: a statement of only these may say Resource "*".
WILDCARD_RESOURCE_ACTIONS = {
    # A task token is a capability, not a resource: SendTask* takes no ARN.
    "states:SendTaskSuccess",
    "states:SendTaskFailure",
    "states:SendTaskHeartbeat",
    # Step Functions sets up its CloudWatch Logs delivery with account-level actions.
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
    # X-Ray segments and sampling rules are account-level.
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
    "xray:GetSamplingStatisticSummaries",
    # Not granted today; EMF metrics go through the log stream, but Powertools can also put them.
    "cloudwatch:PutMetricData",
}

# The managed policies SAM attaches to the roles it generates, with what they grant (their
# statements use Resource "*"; everything they allow is in WILDCARD_RESOURCE_ACTIONS or logs).
MANAGED_POLICIES = {
    # Every generated function role: its log streams (Lambda names log groups at run time).
    "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole": [
        {
            "Effect": "Allow",
            "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": "*",
        }
    ],
    # Tracing: Active (functions) and Tracing.Enabled (state machines).
    "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess": [
        {
            "Effect": "Allow",
            "Action": [
                "xray:PutTraceSegments",
                "xray:PutTelemetryRecords",
                "xray:GetSamplingRules",
                "xray:GetSamplingTargets",
                "xray:GetSamplingStatisticSummaries",
            ],
            "Resource": "*",
        }
    ],
}
# A key policy must name the key as "*" and give the account its administration (else the key
# becomes unmanageable); it is a resource policy, not a grant to any of the stack's roles.
KEY_POLICY_EXCEPTION = "EncryptionKey"

# -- what the code calls (found by reading it; keep in step when the code changes) ---------


@dataclass(frozen=True)
class Call:
    """One AWS call a function's code makes: the action IAM checks, on what, and where."""

    action: str
    target: str  # see _target(): "table:<ENV>", "index:<ENV>/<name>", "queue:<ENV>", ...
    where: str


def _dynamodb(env: str, operations: str, where: str) -> list[Call]:
    return [Call(f"dynamodb:{op}", f"table:{env}", where) for op in operations.split()]


# pynamodb: get → GetItem, save → PutItem, update → UpdateItem, delete → DeleteItem, query →
# Query, scan → Scan, batch_write → BatchWriteItem; a TransactWrite is checked per item (PutItem,
# UpdateItem, DeleteItem, ConditionCheckItem).
_CHANGE_FEED = [
    *_dynamodb("FERRY_COUNTERS_TABLE", "UpdateItem", "change feed: next sequence number"),
    *_dynamodb("FERRY_CHANGES_TABLE", "PutItem", "change feed: the change row"),
]
_STATUS_CHOKEPOINT = [
    *_dynamodb("FERRY_APPLICATIONS_TABLE", "GetItem UpdateItem", "application status write"),
    *_dynamodb(
        "FERRY_APPLICATION_EVENTS_TABLE",
        "Query PutItem UpdateItem DeleteItem",
        "history: add, complete, keep the newest 1000",
    ),
    *_CHANGE_FEED,
]
_NOTIFY = [
    *_dynamodb("FERRY_NOTIFICATION_TARGETS_TABLE", "GetItem", "notify: the target's URL"),
    *_dynamodb("FERRY_NOTIFICATION_TARGETS_TABLE", "UpdateItem", "notify: record the send"),
]
_MASTER_SECRET = [
    Call("secretsmanager:GetSecretValue", "secret", "the keyring: AWSCURRENT, PENDING, PREVIOUS"),
    Call("kms:Decrypt", "key", "Secrets Manager decrypts the secret with the caller's rights"),
]
_START_DEPLOY = [
    *_dynamodb("FERRY_AGENTS_TABLE", "GetItem", "start a deploy: the agent's queue"),
    Call("states:StartExecution", "machine:FERRY_DEPLOY_STATE_MACHINE_ARN", "start a deploy"),
]
_QUEUE_SYNC = [
    *_dynamodb("FERRY_JOBS_TABLE", "GetItem PutItem DeleteItem", "queue a sync job: its record"),
    *_dynamodb("FERRY_JOBS_TABLE", "PutItem", "queue a sync job: its branch's newest"),
    Call("sqs:SendMessage", "queue:FERRY_SYNC_QUEUE_URL", "queue a sync job"),
]
_FORGET_BUNDLES = [
    Call("s3:ListBucket", "bucket", "delete an application: list the bundles it kept"),
    Call("s3:DeleteObject", "object:bundles/app_1/d.tar.gz.sealed", "and delete them"),
]
_SYNC_TRIGGER = [
    Call(f"sqs:{action}", "queue:SyncJobsQueue", "the SQS trigger (event source mapping)")
    for action in (
        "ReceiveMessage",
        "DeleteMessage",
        "GetQueueAttributes",
        "ChangeMessageVisibility",
    )
]

CALLS: dict[str, list[Call]] = {
    "ApiFunction": [
        *_MASTER_SECRET,
        *_STATUS_CHOKEPOINT,
        *_NOTIFY,
        *_START_DEPLOY,
        *_QUEUE_SYNC,
        *_dynamodb(
            "FERRY_REPOSITORIES_TABLE", "GetItem PutItem UpdateItem DeleteItem Scan", "repositories"
        ),
        *_dynamodb(
            "FERRY_APPLICATIONS_TABLE",
            "GetItem PutItem UpdateItem DeleteItem Scan",
            "applications: create, change, delete (transactions with their name guards)",
        ),
        Call("dynamodb:Query", "index:FERRY_APPLICATIONS_TABLE/by_repository", "a repo's apps"),
        *_dynamodb("FERRY_AGENTS_TABLE", "GetItem PutItem UpdateItem DeleteItem Scan", "agents"),
        *_dynamodb("FERRY_APPLICATION_EVENTS_TABLE", "BatchWriteItem", "forget an app's history"),
        *_dynamodb("FERRY_API_TOKENS_TABLE", "GetItem", "authenticate an API token"),
        *_dynamodb("FERRY_NAME_GUARDS_TABLE", "GetItem PutItem DeleteItem", "unique names"),
        *_dynamodb("FERRY_CHANGES_TABLE", "Query", "the change feed (SSE)"),
        *_dynamodb("FERRY_COUNTERS_TABLE", "GetItem", "the change feed: latest sequence number"),
        *_dynamodb("FERRY_COUNTERS_TABLE", "UpdateItem", "webhook rate limit"),
        *_dynamodb(
            "FERRY_NOTIFICATION_TARGETS_TABLE", "PutItem DeleteItem Scan", "notification targets"
        ),
        *_dynamodb("FERRY_JOBS_TABLE", "UpdateItem", "sync jobs"),
        *_dynamodb("FERRY_DELIVERIES_TABLE", "PutItem Query", "webhook delivery log"),
        Call("sqs:CreateQueue", "agent-queue", "register an agent: its queue"),
        Call("sqs:DeleteQueue", "agent-queue", "remove an agent: its queue"),
        Call("sqs:SendMessage", "agent-queue", "image webhook: a check hint on the agent's queue"),
        Call("states:StartExecution", "machine:FERRY_UNDEPLOY_STATE_MACHINE_ARN", "remove an app"),
        Call("states:DescribeExecution", "execution:FERRY_UNDEPLOY_STATE_MACHINE_ARN", "removal"),
        Call("states:DescribeExecution", "execution:FERRY_DEPLOY_STATE_MACHINE_ARN", "a deploy"),
        Call("states:DescribeExecution", "execution:FERRY_SYNC_STATE_MACHINE_ARN", "a sync job"),
        Call("states:GetExecutionHistory", "execution:FERRY_SYNC_STATE_MACHINE_ARN", "its path"),
        Call("states:GetExecutionHistory", "execution:FERRY_DEPLOY_STATE_MACHINE_ARN", "its path"),
        Call("states:StopExecution", "execution:FERRY_DEPLOY_STATE_MACHINE_ARN", "cancel a deploy"),
        Call("sts:AssumeRole", "env:FERRY_AGENT_ROLE_ARN", "an agent's session credentials"),
        *_FORGET_BUNDLES,
    ],
    "SyncWorkerFunction": [
        *_SYNC_TRIGGER,
        *_dynamodb("FERRY_JOBS_TABLE", "GetItem", "the branch's newest job, and its status"),
        *_dynamodb("FERRY_JOBS_TABLE", "UpdateItem", "a job superseded by a newer one"),
        Call("states:StartExecution", "machine:FERRY_SYNC_STATE_MACHINE_ARN", "one per sync job"),
    ],
    "PlanSyncFunction": [
        *_MASTER_SECRET,
        *_STATUS_CHOKEPOINT,
        *_NOTIFY,
        *_dynamodb("FERRY_JOBS_TABLE", "UpdateItem", "the job's progress"),
        *_dynamodb("FERRY_REPOSITORIES_TABLE", "GetItem UpdateItem", "the repository's sync"),
        Call("dynamodb:Query", "index:FERRY_APPLICATIONS_TABLE/by_repository", "a repo's apps"),
    ],
    "SyncBatchFunction": [
        *_MASTER_SECRET,
        *_STATUS_CHOKEPOINT,
        *_NOTIFY,
        *_START_DEPLOY,
        *_dynamodb("FERRY_REPOSITORIES_TABLE", "GetItem", "the repository to read"),
        *_dynamodb("FERRY_APPLICATIONS_TABLE", "GetItem", "the stored bundle's files, reused"),
        Call("s3:PutObject", "object:bundles/app_1/d.tar.gz.sealed", "keep a large bundle"),
        Call("s3:GetObject", "object:bundles/app_1/d.tar.gz.sealed", "reuse its files"),
        Call("s3:DeleteObject", "object:bundles/app_1/d.tar.gz.sealed", "drop the replaced one"),
        # store/batch_reads.read_batch: one BatchGetItem across the three tables.
        *_dynamodb("FERRY_REPOSITORIES_TABLE", "BatchGetItem", "the batch's read: its repository"),
        *_dynamodb("FERRY_APPLICATIONS_TABLE", "BatchGetItem", "the batch's read: its rows"),
        *_dynamodb("FERRY_AGENTS_TABLE", "BatchGetItem", "the batch's read: their agents"),
    ],
    "EndSyncFunction": [
        *_MASTER_SECRET,
        *_CHANGE_FEED,
        *_dynamodb("FERRY_JOBS_TABLE", "UpdateItem", "the job ends"),
        *_dynamodb("FERRY_REPOSITORIES_TABLE", "UpdateItem", "the repository's sync ends"),
    ],
    "PollerFunction": [
        *_MASTER_SECRET,
        *_CHANGE_FEED,
        *_QUEUE_SYNC,
        *_STATUS_CHOKEPOINT,
        *_START_DEPLOY,
        *_dynamodb("FERRY_REPOSITORIES_TABLE", "Scan GetItem UpdateItem", "due repositories"),
        *_dynamodb("FERRY_JOBS_TABLE", "UpdateItem", "end a dead-lettered job"),
        *_dynamodb("FERRY_APPLICATIONS_TABLE", "Scan", "the sweep: applications stuck syncing"),
        Call("sqs:ReceiveMessage", "queue:FERRY_SYNC_DEAD_LETTER_QUEUE_URL", "dead-lettered jobs"),
        Call("states:DescribeExecution", "execution:FERRY_DEPLOY_STATE_MACHINE_ARN", "the sweep"),
        Call("states:DescribeExecution", "execution:FERRY_UNDEPLOY_STATE_MACHINE_ARN", "the sweep"),
        Call("states:StartExecution", "machine:FERRY_UNDEPLOY_STATE_MACHINE_ARN", "the sweep"),
    ],
    "MarkInProgressFunction": [
        *_MASTER_SECRET,
        *_STATUS_CHOKEPOINT,
        Call("s3:GetObject", "object:bundles/app_1/d.tar.gz.sealed", "a large bundle, kept"),
        Call("s3:PutObject", "object:requests/agt_0123/r.tar.gz", "handed to the agent"),
    ],
    "AcquireDeploySlotFunction": [
        *_MASTER_SECRET,
        *_dynamodb("FERRY_APPLICATIONS_TABLE", "GetItem UpdateItem", "the deploy slot"),
    ],
    "ApplyDeployResultFunction": [
        *_MASTER_SECRET,
        *_STATUS_CHOKEPOINT,
    ],
    "NotifyFunction": [
        *_MASTER_SECRET,
        *_NOTIFY,
        *_CHANGE_FEED,
        *_dynamodb("FERRY_APPLICATIONS_TABLE", "GetItem", "the app's notification targets"),
    ],
    "ApplyUndeployResultFunction": [
        *_MASTER_SECRET,
        *_STATUS_CHOKEPOINT,
        *_dynamodb("FERRY_APPLICATIONS_TABLE", "DeleteItem", "forget the application"),
        *_dynamodb("FERRY_NAME_GUARDS_TABLE", "DeleteItem", "release its names"),
        *_dynamodb("FERRY_APPLICATION_EVENTS_TABLE", "BatchWriteItem", "forget its history"),
        *_FORGET_BUNDLES,
    ],
}


# -- reading the roles ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def cfn() -> Deployment:
    return Deployment(translated())


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _statements(cfn: Deployment, role: str, *, managed: bool = True) -> list[dict[str, Any]]:
    """Every statement that applies to the role: inline, attached (AWS::IAM::Policy) and, unless
    `managed` is false, those of its managed policies."""
    resources = cfn.resources
    properties = resources[role]["Properties"]
    documents = [policy["PolicyDocument"] for policy in properties.get("Policies", [])]
    documents += [
        resource["Properties"]["PolicyDocument"]
        for resource in resources.values()
        if resource["Type"] == "AWS::IAM::Policy"
        and {"Ref": role} in resource["Properties"].get("Roles", [])
    ]
    statements = [
        cfn.resolve(statement)
        for document in documents
        for statement in _listed(document["Statement"])
    ]
    for arn in cfn.resolve(properties.get("ManagedPolicyArns", [])) if managed else []:
        statements.extend(MANAGED_POLICIES.get(arn, [{"Unknown managed policy": arn}]))
    return statements


def _glob(pattern: str) -> re.Pattern[str]:
    """An IAM wildcard (`*`, `?`) as a regular expression."""
    parts = (".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile("".join(parts))


def allowed(statements: list[dict[str, Any]], action: str, resource: str) -> bool:
    for statement in statements:
        if statement.get("Effect") != "Allow":
            continue
        actions = _listed(statement.get("Action", []))
        if not any(_glob(a.lower()).fullmatch(action.lower()) for a in actions):
            continue
        if any(_glob(r).fullmatch(resource) for r in _listed(statement.get("Resource", []))):
            return True
    return False


def _role_of(cfn: Deployment, logical_id: str) -> str:
    properties = cfn.resources[logical_id]["Properties"]
    role = properties.get("Role") or properties.get("RoleArn")
    assert isinstance(role, dict) and "Fn::GetAtt" in role, logical_id
    return str(role["Fn::GetAtt"][0])


def _roles(cfn: Deployment) -> list[str]:
    return [lid for lid, r in cfn.resources.items() if r["Type"] == "AWS::IAM::Role"]


def _of_type(cfn: Deployment, kind: str) -> list[str]:
    return [lid for lid, r in cfn.resources.items() if r["Type"] == kind]


# -- scope ---------------------------------------------------------------------------------


def _scope_problems(statement: dict[str, Any]) -> Iterator[str]:
    if "NotAction" in statement or "NotResource" in statement:
        yield "NotAction/NotResource grants everything else"
        return
    actions = _listed(statement.get("Action", []))
    for action in actions:
        # A named action may end in `*` (SAM's SQSSendMessagePolicy: sqs:SendMessage*, the batch
        # form too); a whole service or everything may not.
        if action == "*" or action.endswith(":*"):
            yield f"wildcard action {action}"
    for resource in _listed(statement.get("Resource", [])):
        if resource == "*":
            extra = sorted(set(actions) - WILDCARD_RESOURCE_ACTIONS)
            if extra:
                yield f"Resource '*' for {extra}"
        elif STACK not in resource:
            yield f"{resource} is not a resource of this stack"


def test_role_statements_name_only_this_stacks_resources(cfn: Deployment) -> None:
    # Managed policies are the listed exceptions (test_roles_attach_no_other_managed_policy).
    problems = {
        f"{role}: {problem}"
        for role in _roles(cfn)
        for statement in _statements(cfn, role, managed=False)
        for problem in _scope_problems(statement)
    }

    assert problems == set()


def test_roles_attach_no_other_managed_policy(cfn: Deployment) -> None:
    attached = {
        arn
        for role in _roles(cfn)
        for arn in cfn.resolve(cfn.resources[role]["Properties"].get("ManagedPolicyArns", []))
    }

    assert attached <= set(MANAGED_POLICIES)


def test_key_policy_administration_only_by_the_account(cfn: Deployment) -> None:
    policy = cfn.resolve(cfn.resources[KEY_POLICY_EXCEPTION]["Properties"]["KeyPolicy"])
    account_root = f"arn:aws:iam::{cfn.ref('AWS::AccountId')}:root"

    assert [statement["Principal"] for statement in policy["Statement"]] == [{"AWS": account_root}]


def test_agent_role_reads_only_bundles_handed_to_agents(cfn: Deployment) -> None:
    statements = _statements(cfn, "AgentRole")
    bucket = f"arn:aws:s3:::{cfn.ref('BundleBucket')}"

    assert allowed(statements, "s3:GetObject", f"{bucket}/requests/agt_0123/r.tar.gz")
    assert not allowed(statements, "s3:GetObject", f"{bucket}/bundles/app_1/d.tar.gz.sealed")
    assert not allowed(statements, "s3:PutObject", f"{bucket}/requests/agt_0123/r.tar.gz")
    assert not allowed(statements, "s3:ListBucket", bucket)


def test_agent_session_reads_only_its_own_agents_bundles() -> None:
    from ferry.manage.agent_sessions import agent_policy, bundles_arn_of

    policy = agent_policy(
        "arn:aws:sqs:eu-west-1:111122223333:teststack-agent-agt_1",
        bundles_arn_of("agt_1", "teststack-bundles", "arn:aws:iam::111122223333:role/agents"),
    )
    statements = policy["Statement"]

    assert allowed(statements, "s3:GetObject", "arn:aws:s3:::teststack-bundles/requests/agt_1/r")
    assert not allowed(
        statements, "s3:GetObject", "arn:aws:s3:::teststack-bundles/requests/agt_2/r"
    )
    assert not allowed(statements, "s3:GetObject", "arn:aws:s3:::teststack-bundles/bundles/a/d")


def test_agent_role_trusted_only_by_the_api_functions_role(cfn: Deployment) -> None:
    trust = cfn.resolve(cfn.resources["AgentRole"]["Properties"]["AssumeRolePolicyDocument"])
    api_role = cfn.attribute(_role_of(cfn, "ApiFunction"), "Arn")

    assert [(s["Effect"], s["Principal"], s["Action"]) for s in trust["Statement"]] == [
        ("Allow", {"AWS": api_role}, "sts:AssumeRole")
    ]


# -- need: functions -----------------------------------------------------------------------


def _environment(cfn: Deployment, function: str) -> dict[str, str]:
    variables = cfn.resources[function]["Properties"]["Environment"]["Variables"]
    return {name: str(value) for name, value in cfn.resolve(variables).items()}


def _target(cfn: Deployment, function: str, target: str) -> str:
    """The ARN a call reaches, found the way the code finds it (mostly: its environment)."""
    env = _environment(cfn, function)
    kind, _, name = target.partition(":")
    region, account = cfn.ref("AWS::Region"), cfn.ref("AWS::AccountId")
    if kind == "table":
        return f"arn:aws:dynamodb:{region}:{account}:table/{env[name]}"
    if kind == "index":
        variable, index = name.split("/")
        return f"arn:aws:dynamodb:{region}:{account}:table/{env[variable]}/index/{index}"
    if kind == "queue":
        if name in env:
            return f"arn:aws:sqs:{region}:{account}:{env[name].rsplit('/', 1)[-1]}"
        return str(cfn.attribute(name, "Arn"))
    if kind == "agent-queue":
        return f"arn:aws:sqs:{region}:{account}:{env['FERRY_AGENT_QUEUE_PREFIX']}agt_0123"
    if kind == "machine":
        return env[name]
    if kind == "execution":
        return env[name].replace(":stateMachine:", ":execution:") + ":app_1-0123456789ab-job_1"
    if kind == "env":
        return env[name]
    if kind == "secret":
        return env["FERRY_SECRET_KEY_SECRET_ARN"]
    if kind == "key":
        return str(cfn.attribute("EncryptionKey", "Arn"))
    if kind == "bucket":
        return f"arn:aws:s3:::{env['FERRY_BUNDLE_BUCKET']}"
    if kind == "object":
        return f"arn:aws:s3:::{env['FERRY_BUNDLE_BUCKET']}/{name}"
    raise ValueError(target)


@pytest.mark.parametrize("function", sorted(CALLS))
def test_function_role_allows_every_call_its_code_makes(cfn: Deployment, function: str) -> None:
    statements = _statements(cfn, _role_of(cfn, function))
    missing = [
        f"{call.action} on {_target(cfn, function, call.target)} ({call.where})"
        for call in CALLS[function]
        if not allowed(statements, call.action, _target(cfn, function, call.target))
    ]

    assert missing == []


def test_calls_table_covers_every_function(cfn: Deployment) -> None:
    assert set(CALLS) == set(_of_type(cfn, "AWS::Lambda::Function"))


def test_traced_functions_may_send_traces(cfn: Deployment) -> None:
    for function in _of_type(cfn, "AWS::Lambda::Function"):
        assert cfn.resources[function]["Properties"]["TracingConfig"] == {"Mode": "Active"}
        statements = _statements(cfn, _role_of(cfn, function))
        assert allowed(statements, "xray:PutTraceSegments", "*"), function


# -- need: state machines, read from their ASL ---------------------------------------------

_INTEGRATIONS = {
    "lambda:invoke": ("lambda:InvokeFunction", "FunctionName"),
    "sqs:sendMessage": ("sqs:SendMessage", "QueueUrl"),
    "dynamodb:updateItem": ("dynamodb:UpdateItem", "TableName"),
    "dynamodb:putItem": ("dynamodb:PutItem", "TableName"),
    "dynamodb:getItem": ("dynamodb:GetItem", "TableName"),
    "dynamodb:deleteItem": ("dynamodb:DeleteItem", "TableName"),
}


def _tasks(states: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for state in states.values():
        if state["Type"] == "Task":
            yield state
        if state["Type"] == "Map":
            processor = state.get("ItemProcessor") or state.get("Iterator") or {}
            yield from _tasks(processor.get("States", {}))
        if state["Type"] == "Parallel":
            for branch in state["Branches"]:
                yield from _tasks(branch["States"])


def _machine_calls(cfn: Deployment, machine: str) -> Iterator[tuple[str, str, str]]:
    """(action, resource, state) for every service call of the machine's ASL."""
    properties = cfn.resources[machine]["Properties"]
    substitutions = {
        k: str(v) for k, v in cfn.resolve(properties["DefinitionSubstitutions"]).items()
    }
    definition_uri = sam_template()["Resources"][machine]["Properties"]["DefinitionUri"]
    text = (ROOT / definition_uri).read_text()
    for name, value in substitutions.items():
        text = text.replace("${" + name + "}", value)
    region, account = cfn.ref("AWS::Region"), cfn.ref("AWS::AccountId")
    for state in _tasks(json.loads(text)["States"]):
        integration = state["Resource"].split(":::", 1)[1].removesuffix(".waitForTaskToken")
        integration = integration.removesuffix(".sync")
        assert integration in _INTEGRATIONS, f"{machine}: no rule for {state['Resource']}"
        action, parameter = _INTEGRATIONS[integration]
        parameters = state.get("Parameters") or state.get("Arguments") or {}
        if parameter in parameters:
            value = parameters[parameter]
            if parameter == "TableName":
                value = f"arn:aws:dynamodb:{region}:{account}:table/{value}"
            elif parameter == "QueueUrl":
                value = f"arn:aws:sqs:{region}:{account}:{value.rsplit('/', 1)[-1]}"
        else:
            # Only the agents' queues are chosen at run time (from the execution's input).
            assert f"{parameter}.$" in parameters and parameter == "QueueUrl", state
            prefix = _environment(cfn, "ApiFunction")["FERRY_AGENT_QUEUE_PREFIX"]
            value = f"arn:aws:sqs:{region}:{account}:{prefix}agt_0123"
        yield action, value, state.get("Comment", "")


@pytest.mark.parametrize("machine", ["DeployStateMachine", "UndeployStateMachine"])
def test_state_machine_role_allows_every_call_its_asl_makes(cfn: Deployment, machine: str) -> None:
    statements = _statements(cfn, _role_of(cfn, machine))
    calls = list(_machine_calls(cfn, machine))
    missing = [(a, r) for a, r, _ in calls if not allowed(statements, a, r)]

    assert calls
    assert missing == []


@pytest.mark.parametrize("machine", ["DeployStateMachine", "UndeployStateMachine"])
def test_state_machine_role_may_deliver_logs_and_traces(cfn: Deployment, machine: str) -> None:
    statements = _statements(cfn, _role_of(cfn, machine))

    for action in ("logs:CreateLogDelivery", "logs:PutResourcePolicy", "logs:DescribeLogGroups"):
        assert allowed(statements, action, "*"), action
    assert allowed(statements, "xray:PutTraceSegments", "*")
