"""Least privilege, enforced locally: every in-process function calls AWS as its own role.

On AWS, Lambda hands each function its role's credentials and IAM checks every call. The local
cloud does the same with moto's IAM access control:

- the stack's roles carry the template's own (SAM-translated) policies, projected by
  `local_policies` onto what moto can check;
- before checks start, the cloud creates an operator (an IAM user allowed everything: whoever
  runs Ferry, the tests, and the stack's own plumbing such as snapshots and the event source
  pollers' Lambda invokes) and takes one session of every role (`LocalIam.prepare`);
- every botocore session of this process resolves its credentials to `InvocationCredentials`:
  the role of the function running in the current context (`acting_as`), else the operator;
- moto's ASL interpreter signs its service calls as its state machine's role (it names the role;
  moto itself signs every call with the same fixed key).

What moto 5.2.5 checks, measured: the action for every service; the resource only for SQS (the
queue named by QueueUrl) and STS AssumeRole (the role, and its trust policy); a session policy
passed to AssumeRole is not applied (the agent's credentials carry AgentRole's whole policy here).
Resource scopes are checked statically by tests/unit/test_least_privilege.py.
"""

from __future__ import annotations

import copy
import json
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import boto3
import botocore.credentials
import httpx
from botocore.client import BaseClient
from botocore.config import Config
from botocore.credentials import CredentialProvider, Credentials, ReadOnlyCredentials

# Every role session the local cloud takes has this name; trust policies that name a stack role
# also name its session (moto compares the caller's session ARN with the principal literally).
SESSION_NAME = "ferry-local"
OPERATOR = "ferry-local-operator"

_ALLOW_EVERYTHING = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
}

# -- the template's policies, as moto can check them ----------------------------------------

# Calls moto authorizes under their API name where IAM authorizes them by another action (a
# transaction or batch by the action of each item).
_MOTO_ACTION_NAMES = {
    "lambda:InvokeFunction": ("lambda:Invoke",),
    "dynamodb:GetItem": ("dynamodb:TransactGetItems",),
    "dynamodb:PutItem": ("dynamodb:TransactWriteItems",),
    "dynamodb:UpdateItem": ("dynamodb:TransactWriteItems",),
    "dynamodb:DeleteItem": ("dynamodb:TransactWriteItems",),
    "dynamodb:ConditionCheckItem": ("dynamodb:TransactWriteItems",),
    "sqs:SendMessage": ("sqs:SendMessageBatch",),
    "sqs:DeleteMessage": ("sqs:DeleteMessageBatch",),
    "sqs:ChangeMessageVisibility": ("sqs:ChangeMessageVisibilityBatch",),
}
# SQS calls that name no existing queue: moto checks them against "*".
_SQS_WITHOUT_QUEUE = {"sqs:CreateQueue", "sqs:ListQueues", "sqs:GetQueueUrl"}


def _moto_checks_resource(action: str) -> bool:
    if action.startswith("sqs:"):
        return action not in _SQS_WITHOUT_QUEUE
    return action == "sts:AssumeRole"


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _project_statement(statement: dict[str, Any]) -> list[dict[str, Any]]:
    """One statement as moto can check it: the resources where moto names one, else `*` (the
    action is still checked), plus moto's names for the calls the actions authorize."""
    if statement.get("Effect") != "Allow" or "Action" not in statement:
        return [statement]
    actions: list[str] = []
    for action in _listed(statement["Action"]):
        for name in (action, *_MOTO_ACTION_NAMES.get(action, ())):
            if name not in actions:
                actions.append(name)
    scoped = [a for a in actions if _moto_checks_resource(a)]
    unscoped = [a for a in actions if not _moto_checks_resource(a)]
    projected = []
    if scoped:
        projected.append({**statement, "Action": scoped})
    if unscoped:
        projected.append({**statement, "Action": unscoped, "Resource": "*"})
    if len(projected) == 2 and "Sid" in statement:
        projected[1]["Sid"] += "AnyResource"  # Sids are unique within a policy
    return projected


def _project_document(document: dict[str, Any]) -> dict[str, Any]:
    statements = [
        projected
        for statement in _listed(document["Statement"])
        for projected in _project_statement(statement)
    ]
    # moto's AWS::IAM::Policy requires a version; SAM's generated documents name none.
    return {"Version": "2012-10-17", **document, "Statement": statements}


def _session_principal(role: str) -> dict[str, str]:
    return {
        "Fn::Sub": f"arn:${{AWS::Partition}}:sts::${{AWS::AccountId}}:assumed-role/${{{role}}}/"
        + SESSION_NAME
    }


def _trusting_local_sessions(document: dict[str, Any], roles: set[str]) -> dict[str, Any]:
    """A trust policy that names a stack role also names that role's local session: AWS matches
    a role's sessions to the role, moto only the literal ARN."""
    statements = []
    for statement in _listed(document["Statement"]):
        principal = statement.get("Principal")
        if isinstance(principal, dict) and "AWS" in principal:
            named = _listed(principal["AWS"])
            sessions = [
                _session_principal(p["Fn::GetAtt"][0])
                for p in named
                if isinstance(p, dict) and p.get("Fn::GetAtt", [None])[0] in roles
            ]
            statement = {**statement, "Principal": {**principal, "AWS": named + sessions}}
        statements.append(statement)
    return {**document, "Statement": statements}


def local_policies(resources: dict[str, Any]) -> dict[str, Any]:
    """The stack's IAM resources as the local cloud deploys them (a new dict; the rest as is).

    Every policy statement is projected onto what moto checks (see `_project_statement`), and a
    role's inline policies become AWS::IAM::Policy resources of the same name and document: moto's
    CloudFormation stores a role's inline policies in a form its access control cannot read.
    """
    projected = copy.deepcopy(resources)
    roles = {lid for lid, r in projected.items() if r["Type"] == "AWS::IAM::Role"}
    for logical_id, resource in list(projected.items()):
        properties = resource.get("Properties", {})
        if resource["Type"] == "AWS::IAM::Policy":
            properties["PolicyDocument"] = _project_document(properties["PolicyDocument"])
        if resource["Type"] != "AWS::IAM::Role":
            continue
        properties["AssumeRolePolicyDocument"] = _trusting_local_sessions(
            properties["AssumeRolePolicyDocument"], roles
        )
        for index, policy in enumerate(properties.pop("Policies", [])):
            projected[f"{logical_id}LocalPolicy{index}"] = {
                "Type": "AWS::IAM::Policy",
                "Properties": {
                    "PolicyName": policy["PolicyName"],
                    "PolicyDocument": _project_document(policy["PolicyDocument"]),
                    "Roles": [{"Ref": logical_id}],
                },
            }
    return projected


# -- whose credentials a call carries -------------------------------------------------------

_acting: ContextVar[Credentials | None] = ContextVar("ferry_local_acting_as", default=None)
_operator: Credentials | None = None


@contextmanager
def acting_as(credentials: Credentials) -> Iterator[None]:
    """AWS calls made in this context (and in tasks and thread-pool calls it starts) carry
    `credentials`."""
    token = _acting.set(credentials)
    try:
        yield
    finally:
        _acting.reset(token)


class InvocationCredentials(Credentials):
    """The current context's role, or the operator outside any function: read when a request is
    signed, so one cached client serves every function that shares it."""

    def __init__(self) -> None:
        # No static values: botocore reads them through the properties below at signing time.
        self.method = "ferry-local"

    @staticmethod
    def _current() -> Credentials:
        current = _acting.get() or _operator
        if current is None:
            raise RuntimeError("the local cloud has stopped: no AWS identity to sign with")
        return current

    @property
    def access_key(self) -> str:  # type: ignore[override]
        return self._current().access_key

    @property
    def secret_key(self) -> str:  # type: ignore[override]
        return self._current().secret_key

    @property
    def token(self) -> str | None:  # type: ignore[override]
        return self._current().token

    @property
    def account_id(self) -> str | None:
        return None

    def get_frozen_credentials(self) -> ReadOnlyCredentials:
        return self._current().get_frozen_credentials()


class _InvocationProvider(CredentialProvider):
    METHOD = "ferry-local"
    CANONICAL_NAME = "FerryLocal"

    def load(self) -> Credentials | None:
        return InvocationCredentials() if _operator is not None else None


_install_lock = threading.Lock()


def _install_provider() -> None:
    """Put the invocation provider first in every botocore session's credential chain (boto3's,
    pynamodb's per-thread sessions, Powertools'): explicit credentials still win."""
    with _install_lock:
        original = botocore.credentials.create_credential_resolver
        if getattr(original, "ferry_local", False):
            return

        def create_credential_resolver(*args: Any, **kwargs: Any) -> Any:
            resolver = original(*args, **kwargs)
            resolver.insert_before("env", _InvocationProvider())
            return resolver

        create_credential_resolver.ferry_local = True  # type: ignore[attr-defined]
        botocore.credentials.create_credential_resolver = create_credential_resolver
    # Sessions made before this resolved their credentials already.
    boto3.DEFAULT_SESSION = None


def _credentials(response: dict[str, Any], method: str) -> Credentials:
    return Credentials(
        response["AccessKeyId"], response["SecretAccessKey"], response.get("SessionToken"), method
    )


class LocalIam:
    """The local cloud's identities: the operator and one session per role of the stack."""

    def __init__(self, moto_url: str, region: str) -> None:
        self.moto_url = moto_url
        self.region = region
        self.operator: Credentials | None = None
        self._roles: dict[str, Credentials] = {}
        self._clients: dict[tuple[str, str, str], Any] = {}
        self._lock = threading.Lock()

    def prepare(self, role_names: Iterable[str]) -> None:
        """Create the operator and take a session of each role; call before `enforce`."""
        # Unchecked still: any credentials do (the cloud's environment has placeholders).
        setup = boto3.session.Session(region_name=self.region)
        iam = setup.client("iam", endpoint_url=self.moto_url)
        iam.create_user(UserName=OPERATOR)
        iam.put_user_policy(
            UserName=OPERATOR, PolicyName="everything", PolicyDocument=json.dumps(_ALLOW_EVERYTHING)
        )
        key = iam.create_access_key(UserName=OPERATOR)["AccessKey"]
        self.operator = Credentials(key["AccessKeyId"], key["SecretAccessKey"], method=OPERATOR)
        arns = {
            role["RoleName"]: role["Arn"]
            for page in iam.get_paginator("list_roles").paginate()
            for role in page["Roles"]
        }
        sts = setup.client("sts", endpoint_url=self.moto_url)
        for name in role_names:
            session = sts.assume_role(RoleArn=arns[name], RoleSessionName=SESSION_NAME)
            self._roles[arns[name]] = _credentials(session["Credentials"], name)

    def role(self, role_arn: str) -> Credentials:
        """The local session of a role of the stack."""
        try:
            return self._roles[role_arn]
        except KeyError:
            raise RuntimeError(f"the local cloud holds no session of {role_arn}") from None

    def client(self, service: str, role_arn: str | None) -> Any:
        """A client signed as `role_arn` (the operator when None), for the local cloud's own
        stand-ins of AWS services (event source mappings, schedules)."""
        credentials = self.role(role_arn) if role_arn else self.operator
        assert credentials is not None, "prepare() first"
        return self._cached_client(service, credentials, self.region, Config())

    def _cached_client(
        self, service: str, credentials: Credentials, region: str, config: Config
    ) -> Any:
        key = (service, credentials.access_key, region)
        with self._lock:
            if key not in self._clients:
                session = boto3.session.Session(
                    aws_access_key_id=credentials.access_key,
                    aws_secret_access_key=credentials.secret_key,
                    aws_session_token=credentials.token,
                    region_name=region,
                )
                self._clients[key] = session.client(  # type: ignore[call-overload]
                    service, endpoint_url=self.moto_url, config=config
                )
            return self._clients[key]

    def enforce(self) -> None:
        """Every call from now on is checked against its caller's policies."""
        global _operator
        assert self.operator is not None, "prepare() first"
        _operator = self.operator
        _install_provider()
        _sign_interpreter_calls_as_its_role(self._interpreter_client)
        set_moto_auth(self.moto_url, enabled=True)

    def relax(self) -> None:
        """No more checks (the stack stops; moto's switch is process-wide)."""
        global _operator
        _operator = None
        set_moto_auth(self.moto_url, enabled=False)

    def _interpreter_client(self, region: str, service: str, state_credentials: Any = None) -> Any:
        """A client signed as the state machine's role; None for a role of no stack of ours."""
        role_arn = getattr(state_credentials, "role_arn", None)
        if role_arn not in self._roles:
            return None
        return self._cached_client(service, self._roles[role_arn], region, _INTERPRETER_CONFIG)


def set_moto_auth(moto_url: str, *, enabled: bool) -> None:
    """Turn moto's IAM checks on or off, process-wide: moto's server-mode switch sets how many
    calls pass unchecked (INITIAL_NO_AUTH_ACTION_COUNT), 0 or all of them."""
    response = httpx.post(
        f"{moto_url}/moto-api/reset-auth", content=b"0" if enabled else b"inf", timeout=10
    )
    response.raise_for_status()


# -- the ASL interpreter's service calls ----------------------------------------------------

_INTERPRETER = "moto.stepfunctions.parser."
# moto's own settings for these clients: the interpreter retries (or not) by the ASL itself.
_INTERPRETER_CONFIG = Config(
    parameter_validation=False, retries={"max_attempts": 0, "total_max_attempts": 1}
)
_interpreter_factory: list[Callable[..., BaseClient | None]] = []
_moto_boto_client_for: list[Callable[..., BaseClient]] = []


def _interpreter_boto_client_for(
    region: str, service: str, state_credentials: Any = None
) -> BaseClient:
    client = _interpreter_factory[0](region, service, state_credentials)
    # Machines that are not the local cloud's (a test's own moto mock) keep moto's behaviour;
    # while the cloud's checks are on, moto's fixed key is refused.
    return client or _moto_boto_client_for[0](region, service, state_credentials)


def _sign_interpreter_calls_as_its_role(factory: Callable[..., BaseClient | None]) -> None:
    """moto's interpreter signs every service call with a fixed key ("ak"), whatever role its
    state machine has, though it passes that role along: replace its `boto_client_for` wherever
    the interpreter imported it. moto is pinned exactly; tests/integration covers this."""
    from moto.stepfunctions.parser.asl.parse import asl_parser  # noqa: F401  (imports every task)
    from moto.stepfunctions.parser.asl.utils import boto_client

    _interpreter_factory[:] = [factory]
    if not _moto_boto_client_for:
        _moto_boto_client_for.append(boto_client.boto_client_for)
    known = (_moto_boto_client_for[0], _interpreter_boto_client_for)
    patched = []
    for name, module in list(sys.modules.items()):
        if name.startswith(_INTERPRETER) and getattr(module, "boto_client_for", None) in known:
            module.boto_client_for = _interpreter_boto_client_for  # type: ignore[attr-defined]
            patched.append(name.rsplit(".", 1)[-1])
    needed = {"lambda_eval_utils", "state_task_service_sqs", "state_task_service_dynamodb"}
    if not needed <= set(patched):
        raise RuntimeError(f"moto's ASL interpreter changed: {needed - set(patched)} not found")
