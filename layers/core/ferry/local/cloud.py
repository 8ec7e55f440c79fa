"""The embedded local cloud behind `ferry up` and `ferry demo`.

One process holds: moto (server mode, loopback), the stack from template.yaml, the Lambda handlers
(in-process), a poller per SQS event source, the API under uvicorn, and the journal that keeps
the tables under $FERRY_HOME (journal.py). The local agent runs as its own process (see
agent_process.py). Once the stack stands, moto checks IAM: each function, the API and each state
machine act as their own role (see iam.py).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import uvicorn

from ferry.local import emulator_costs
from ferry.local.iam import LocalIam, acting_as
from ferry.local.journal import TableJournal
from ferry.local.lambdas import InProcessLambdas
from ferry.local.moto_server import LOCAL_ACCOUNT_ID, MotoServer, free_port
from ferry.local.poller import QueuePoller
from ferry.local.scheduler import Scheduler, rate_seconds
from ferry.local.template import CODE_BUCKET, LocalPlan, build_plan, is_marker, marker_target

if TYPE_CHECKING:
    # Imported when used: the store's table names are settled only once the stack is up.
    from ferry.local.recovery import Recovery


STACK_NAME = "ferry"
REGION = "us-east-1"


def project_root() -> Path:
    """The Ferry checkout (where template.yaml lives); FERRY_PROJECT_ROOT overrides."""
    override = os.environ.get("FERRY_PROJECT_ROOT")
    if override:
        return Path(override).resolve()
    import ferry

    return Path(ferry.__file__).resolve().parents[3]


@dataclass
class LocalOptions:
    home: Path
    api_port: int = 8080
    deploy_timeout_seconds: int = 900
    deploy_heartbeat_seconds: int = 60
    # Fire the template's schedules on their own clock. Tests turn it off and fire them with
    # `scheduler.fire_all()`, so a tick landing mid-test cannot change what the test sees.
    run_schedules: bool = True
    # Finish or restart what a previous run left unfinished (recovery.py). Off for short-lived
    # maintenance runs (`ferry admin rotate-key`): the next `ferry up` does it.
    recover_interrupted_work: bool = True


class LocalCloud:
    """Start with `start()`, stop with `stop()`; `api_url` is where the API answers."""

    def __init__(self, options: LocalOptions) -> None:
        self.options = options
        self.home = options.home.resolve()
        self.api_port = options.api_port or free_port()
        self.api_url = f"http://127.0.0.1:{self.api_port}"
        self.moto = MotoServer(free_port())
        self.iam = LocalIam(self.moto.url, REGION)
        self.lambdas = InProcessLambdas(self.iam.role)
        self.pollers: list[QueuePoller] = []
        self.scheduler: Scheduler | None = None
        self.tables: dict[str, str] = {}
        self.physical_ids: dict[str, str] = {}
        self.resource_types: dict[str, str] = {}
        self.state_machine_arns: dict[str, str] = {}
        self._uvicorn: uvicorn.Server | None = None
        self._uvicorn_thread: threading.Thread | None = None
        self.journal: TableJournal | None = None
        self.recovery: Recovery | None = None
        self.started = False

    @property
    def journal_path(self) -> Path:
        return self.home / "state" / "journal.jsonl"

    @property
    def legacy_snapshot_path(self) -> Path:
        """Where stacks before the journal kept their tables (read once, then removed)."""
        return self.home / "state" / "tables.json"

    # -- start -------------------------------------------------------------------------------

    def start(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        _quiet_expected_notices()
        self._point_aws_at_moto()
        self.moto.start()
        plan = build_plan(project_root() / "template.yaml", self._parameters(), REGION)
        self._deploy_stack(plan)
        self._create_state_machines(plan)
        self._apply_function_environment(plan)
        self._register_functions(plan)
        self._enforce_least_privilege()
        restored = self._restore_tables()
        self._recover_interrupted(restored)
        self._start_pollers(plan)
        self._start_scheduler(plan)
        self._start_api(plan)
        emulator_costs.settle_heap()
        self.started = True

    def _point_aws_at_moto(self) -> None:
        os.environ.update(
            {
                "AWS_ACCESS_KEY_ID": "local",
                "AWS_SECRET_ACCESS_KEY": "local",
                "AWS_DEFAULT_REGION": REGION,
                "AWS_REGION": REGION,
                "AWS_ENDPOINT_URL": self.moto.url,
            }
        )
        os.environ.pop("AWS_PROFILE", None)
        os.environ.pop("AWS_SESSION_TOKEN", None)

    def _parameters(self) -> dict[str, Any]:
        return {
            "DeployTimeoutSeconds": str(self.options.deploy_timeout_seconds),
            "DeployHeartbeatSeconds": str(self.options.deploy_heartbeat_seconds),
        }

    def _secret_key(self) -> str:
        from ferry.local.private_files import write_private
        from ferry.security.crypto import generate_key

        if os.environ.get("FERRY_SECRET_KEY"):
            return os.environ["FERRY_SECRET_KEY"]
        key_file = self.home / "secret.key"
        if not key_file.exists():
            write_private(key_file, generate_key())
        return key_file.read_text().strip()

    def _deploy_stack(self, plan: LocalPlan) -> None:
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=CODE_BUCKET)
        for key in plan.code_objects:
            # moto stores function code but never runs it (handlers run in-process).
            s3.put_object(Bucket=CODE_BUCKET, Key=key, Body=_EMPTY_ZIP)
        cloudformation = boto3.client("cloudformation")
        cloudformation.create_stack(
            StackName=STACK_NAME,
            TemplateBody=plan.stack_body(),
            Parameters=[
                {"ParameterKey": k, "ParameterValue": str(v)} for k, v in plan.parameters.items()
            ],
            Capabilities=["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"],
        )
        deadline = time.monotonic() + 60
        while True:
            stack = cloudformation.describe_stacks(StackName=STACK_NAME)["Stacks"][0]
            if stack["StackStatus"] == "CREATE_COMPLETE":
                break
            if stack["StackStatus"].endswith("FAILED") or time.monotonic() > deadline:
                raise RuntimeError(f"local stack did not deploy: {stack['StackStatus']}")
            time.sleep(0.1)
        for resource in cloudformation.describe_stack_resources(StackName=STACK_NAME)[
            "StackResources"
        ]:
            if "PhysicalResourceId" not in resource:
                continue  # moto leaves layer versions without one; nothing refers to them here
            self.physical_ids[resource["LogicalResourceId"]] = resource["PhysicalResourceId"]
            self.resource_types[resource["LogicalResourceId"]] = resource["ResourceType"]
            if resource["ResourceType"] == "AWS::DynamoDB::Table":
                self.tables[resource["LogicalResourceId"]] = resource["PhysicalResourceId"]

    # -- intrinsic values the stack does not resolve for us ----------------------------------

    def _resolve(self, node: Any) -> str:
        if isinstance(node, str):
            if is_marker(node):
                logical_id, _attribute = marker_target(node)
                # State machines exist by now; other removed resources (the Secrets Manager
                # secret) have a local stand-in configured separately, so they resolve empty.
                return self.state_machine_arns.get(logical_id, "")
            return node
        if isinstance(node, dict) and "Ref" in node:
            if node["Ref"] in self.state_machine_arns:
                return self.state_machine_arns[node["Ref"]]
            return self.physical_ids[node["Ref"]]
        if isinstance(node, dict) and "Fn::GetAtt" in node:
            target = node["Fn::GetAtt"]
            logical_id, attribute = target.split(".", 1) if isinstance(target, str) else target
            return self._attribute(logical_id, attribute)
        raise ValueError(f"cannot resolve {node!r} locally")

    def _attribute(self, logical_id: str, attribute: str) -> str:
        physical = self.physical_ids[logical_id]
        kind = self.resource_types[logical_id]
        if attribute != "Arn":
            raise ValueError(f"only Arn attributes resolve locally, not {logical_id}.{attribute}")
        if kind == "AWS::SQS::Queue":
            attributes = boto3.client("sqs").get_queue_attributes(
                QueueUrl=physical, AttributeNames=["QueueArn"]
            )
            return attributes["Attributes"]["QueueArn"]
        if kind == "AWS::Lambda::Function":
            # Built, not asked: moto's IAM checks reject Lambda's GET requests (signature).
            return f"arn:aws:lambda:{REGION}:{LOCAL_ACCOUNT_ID}:function:{physical}"
        if kind == "AWS::IAM::Role":
            return f"arn:aws:iam::{LOCAL_ACCOUNT_ID}:role/{physical}"
        raise ValueError(f"cannot resolve {logical_id}.Arn ({kind}) locally")

    def _create_state_machines(self, plan: LocalPlan) -> None:
        client = boto3.client("stepfunctions")
        for machine in plan.state_machines:
            definition = machine.definition_path.read_text()
            for name, value in machine.substitutions.items():
                definition = definition.replace("${" + name + "}", self._resolve(value))
            created = client.create_state_machine(
                name=f"{STACK_NAME}-{machine.logical_id}",
                definition=definition,
                roleArn=self._resolve(machine.role),
                type="STANDARD",
            )
            self.state_machine_arns[machine.logical_id] = created["stateMachineArn"]

    def _apply_function_environment(self, plan: LocalPlan) -> None:
        """Resolve each function's environment and make it this process's environment.

        All handlers share one process, so their variables must agree; template.yaml keeps them
        in Globals, and a clash is a template bug worth failing on.
        """
        client = boto3.client("lambda")
        merged: dict[str, str] = {}
        for logical_id in plan.functions:
            name = self.physical_ids[logical_id]
            configuration = client.get_function_configuration(FunctionName=name)
            variables = dict(configuration.get("Environment", {}).get("Variables", {}))
            resolved = {
                k: self._resolve(v) if is_marker(v) else str(v) for k, v in variables.items()
            }
            if resolved != {k: str(v) for k, v in variables.items()}:
                client.update_function_configuration(
                    FunctionName=name, Environment={"Variables": resolved}
                )
            for key, value in resolved.items():
                if merged.setdefault(key, value) != value:
                    raise RuntimeError(f"functions disagree on {key}; keep it in Globals")
        merged["FERRY_API_URL"] = self.api_url
        merged["FERRY_AWS_ENDPOINT_URL"] = self.moto.url
        merged["FERRY_SECRET_KEY"] = self._secret_key()
        previous = self.home / "secret.key.previous"  # left by `ferry admin rotate-key`
        if previous.exists() and not os.environ.get("FERRY_PREVIOUS_SECRET_KEYS"):
            merged["FERRY_PREVIOUS_SECRET_KEYS"] = previous.read_text().strip()
        # The local stack's own sample repository and notification receivers live on loopback.
        merged.setdefault("FERRY_OUTBOUND_ALLOW", "127.0.0.0/8,::1")
        # No X-Ray daemon here: Tracer must not try to reach one.
        merged["POWERTOOLS_TRACE_DISABLED"] = "true"
        merged["FERRY_GIT_CACHE_DIR"] = str(self.home / "git-cache")
        os.environ.update(merged)
        _forget_cached_configuration()

    def _register_functions(self, plan: LocalPlan) -> None:
        for logical_id, spec in plan.functions.items():
            self.lambdas.register(self.physical_ids[logical_id], spec)
        self.lambdas.install()

    def _restore_tables(self) -> int:
        """Replay the journal into the new tables and journal every write from now on; returns
        how many item changes were replayed."""
        from moto.dynamodb.models import dynamodb_backends

        journal = TableJournal(
            dynamodb_backends[LOCAL_ACCOUNT_ID][REGION], self.tables, self.journal_path
        )
        restored = journal.replay()
        legacy = self.legacy_snapshot_path
        if not restored and legacy.exists():
            snapshot: dict[str, list[dict[str, Any]]] = json.loads(legacy.read_text())
            restored = sum(journal.load_items(k, items) for k, items in snapshot.items())
        journal.install()  # compacts first: the journal now holds what the snapshot held
        legacy.unlink(missing_ok=True)
        self.journal = journal
        return restored

    def _enforce_least_privilege(self) -> None:
        """From here on moto checks every call against its caller's policies."""
        self.iam.prepare(
            physical
            for logical_id, physical in self.physical_ids.items()
            if self.resource_types[logical_id] == "AWS::IAM::Role"
        )
        operator = self.iam.operator
        assert operator is not None
        # Processes this one starts (the CLI in tests) act as the operator too; the local agent
        # is given only its session's credentials (agent_process.py).
        os.environ["AWS_ACCESS_KEY_ID"] = operator.access_key
        os.environ["AWS_SECRET_ACCESS_KEY"] = operator.secret_key
        self.iam.enforce()
        _forget_cached_configuration()

    def _role_arn(self, role: Any) -> str | None:
        return self._resolve(role) if role is not None else None

    def _recover_interrupted(self, restored: int) -> None:
        if not restored:
            return
        from ferry.local.recovery import recover_interrupted_work, upgrade_stored_records

        upgrade_stored_records()
        if self.options.recover_interrupted_work:
            self.recovery = recover_interrupted_work()

    def _start_pollers(self, plan: LocalPlan) -> None:
        for source in plan.event_sources:
            queue_arn = self._resolve(source.queue_arn)
            queue_name = queue_arn.rsplit(":", 1)[-1]
            queue_url = boto3.client("sqs").get_queue_url(QueueName=queue_name)["QueueUrl"]
            # Lambda reads the queue with the function's role, then invokes it as the service.
            function = plan.functions[source.function["Ref"]]
            poller = QueuePoller(
                queue_url=queue_url,
                queue_arn=queue_arn,
                function_name=self._resolve(source.function),
                batch_size=source.batch_size,
                report_batch_item_failures=source.report_batch_item_failures,
                region=REGION,
                sqs_client=self.iam.client("sqs", self._role_arn(function.role)),
                lambda_client=self.iam.client("lambda", None),
            )
            poller.start()
            self.pollers.append(poller)

    def _start_scheduler(self, plan: LocalPlan) -> None:
        self.scheduler = Scheduler(
            [(self._resolve(s.function), rate_seconds(s.expression)) for s in plan.schedules],
            # Each schedule invokes with its own role, as EventBridge Scheduler does.
            clients={
                self._resolve(s.function): self.iam.client("lambda", self._role_arn(s.role))
                for s in plan.schedules
            },
        )
        if self.options.run_schedules:
            self.scheduler.start()

    def _start_api(self, plan: LocalPlan) -> None:
        from ferry.api.app import create_app

        config = uvicorn.Config(
            _flushing_metrics(create_app()),
            host="127.0.0.1",
            port=self.api_port,
            log_level="warning",
            lifespan="off",
        )
        self._uvicorn = uvicorn.Server(config)
        server = self._uvicorn
        role = self.iam.role(self._resolve(plan.api_function.role))

        def serve() -> None:
            # Every request's task (and the thread-pool calls it makes) inherits this context.
            with acting_as(role):
                server.run()

        self._uvicorn_thread = threading.Thread(target=serve, name="api", daemon=True)
        self._uvicorn_thread.start()
        deadline = time.monotonic() + 15
        while not self._uvicorn.started:
            if not self._uvicorn_thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the API could not listen on 127.0.0.1:{self.api_port}")
            time.sleep(0.02)

    # -- stop --------------------------------------------------------------------------------

    def stop(self) -> None:
        if not self.started:
            self._close_journal()
            self._stop_moto()
            return
        for poller in self.pollers:
            poller.stop()
        if self.scheduler is not None:
            self.scheduler.stop()
        if self._uvicorn is not None:
            self._uvicorn.should_exit = True
        if self._uvicorn_thread is not None:
            self._uvicorn_thread.join(timeout=5)
        self._close_journal()
        self.lambdas.uninstall()
        self._stop_moto()
        self.started = False

    def _close_journal(self) -> None:
        if self.journal is not None:
            self.journal.close()
            self.journal = None

    def _stop_moto(self) -> None:
        if self.iam.operator is not None and self.moto.running:
            self.iam.relax()  # moto's checks are process-wide: leave none behind
        self.moto.stop()

    # -- handy views -------------------------------------------------------------------------

    @property
    def deploy_state_machine_arn(self) -> str:
        return self.state_machine_arns["DeployStateMachine"]

    def role_arn(self, logical_id: str) -> str:
        """The ARN of one of the stack's roles (by its logical id in the translated template)."""
        return self._attribute(logical_id, "Arn")


def _flushing_metrics(app: Any) -> Any:
    """On Lambda the API handler flushes its metrics once per invocation (`log_metrics`); here
    uvicorn serves the app instead, so each request does."""
    from ferry.aws.metrics import metrics

    async def serve(scope: Any, receive: Any, send: Any) -> None:
        try:
            await app(scope, receive, send)
        finally:
            if scope["type"] == "http" and metrics.metric_set:
                metrics.flush_metrics()

    return serve


def _forget_cached_configuration() -> None:
    """Settings, clients and table connections are cached per process: start them afresh."""
    from ferry import aws
    from ferry.security.crypto import get_keyring
    from ferry.settings import get_settings

    get_settings.cache_clear()
    get_keyring.cache_clear()
    aws.reset_clients()
    from ferry.store.tables import reset_connections

    reset_connections()


# An empty zip archive (end-of-central-directory record only): moto needs code to exist in S3.
_EMPTY_ZIP = b"PK\x05\x06" + b"\x00" * 18


class _UnemulatedResourceFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("No Moto CloudFormation support for")


class _AbsentPathFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Exception=NoSuchJsonPathError")


# moto's ASL interpreter logs every exception a component raises, even one its caller expects.
_ASL_COMPONENT_LOGGER = "moto.stepfunctions.parser.asl.component.eval_component"


def _quiet_expected_notices() -> None:
    """Notices that are expected here and say nothing to a user of the local stack: moto's
    CloudFormation names each resource it does not emulate (the alarms and the dashboard: they
    exist on AWS only), moto's ASL interpreter logs an ERROR for each absent path an `IsPresent`
    choice looks at (the deploy machine's `Marked` does, by design; a path missing where it is
    required still fails the execution, with the cause in its history), and Powertools warns of
    each invocation that counted no metric."""
    for name, kind in (
        ("moto", _UnemulatedResourceFilter),
        (_ASL_COMPONENT_LOGGER, _AbsentPathFilter),
    ):
        logger = logging.getLogger(name)
        if not any(isinstance(f, kind) for f in logger.filters):
            logger.addFilter(kind())
    warnings.filterwarnings("ignore", message="Tried to parse AWS::", category=UserWarning)
    warnings.filterwarnings(
        "ignore", message="No application metrics to publish", category=UserWarning
    )
