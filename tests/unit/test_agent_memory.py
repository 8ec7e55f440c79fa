"""What the agent loads at start (issue 17: an idle agent's memory): the parts it needs, not
the control plane's domain, boto3's resources or the libraries of features it may never use."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import botocore.session
import pytest

from ferry.domain.agent_messages import AgentSession, AwsCredentials
from ferry_agent.aws_access import AwsAccess
from ferry_agent.endpoints import ENDPOINT_SERVICES, AgentEndpointsLoader, services_only

# Each would be loaded into every agent, and kept for as long as it runs.
NOT_AT_START = (
    "boto3",  # resources and the transfer manager: the agent needs plain clients
    "s3transfer",
    "httpx",  # loaded by a registry check, the only user left (with click, rich, trio, anyio)
    "rich",
    "click",
    "trio",
    "anyio",
    "paramiko",  # only for an ssh:// Docker host
    "docker.transport.sshconn",
    "pydantic_settings",
    "asyncio",
    "ferry.domain.models",  # the control plane's records
    "ferry.domain.messages",  # its sync jobs and state machine inputs
    "ferry.settings",
    "ferry.store",
    "ferry.aws",
    "ferry.deploy",
    "ferry.sync",
    "ferry.manage",
    "ferry.api",
    "ferry.local",
    "fastapi",
    "pynamodb",
    "moto",
)


def _modules_after(statement: str) -> set[str]:
    """The modules a fresh interpreter holds after `statement` (a module marked absent, None in
    sys.modules, is not held)."""
    script = (
        f"{statement}\nimport json, sys\n"
        "print(json.dumps([k for k, v in sys.modules.items() if v is not None]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return set(json.loads(done.stdout.splitlines()[-1]))


def test_agent_start_imports_only_what_it_needs() -> None:
    loaded = _modules_after("import ferry_agent.main")

    assert "ferry_agent.worker" in loaded  # the probe sees the agent's own modules
    unwanted = sorted(
        name
        for name in loaded
        if any(name == banned or name.startswith(f"{banned}.") for banned in NOT_AT_START)
    )
    assert unwanted == []


def test_agent_registry_check_loads_httpx_when_it_asks() -> None:
    loaded = _modules_after(
        "from ferry_agent.registry import RegistryClient, DockerCredentials, parse_reference\n"
        "import contextlib\n"
        "client = RegistryClient(DockerCredentials(), timeout=0.2)\n"
        "with contextlib.suppress(Exception):\n"
        "    client.digest(parse_reference('127.0.0.1:9/none:latest'))"
    )

    assert "httpx" in loaded


def _session(region: str) -> AgentSession:
    return AgentSession(
        agent_id="agt_memory",
        name="memory",
        queue_url="https://sqs.example/queue",
        region=region,
        credentials=AwsCredentials(
            access_key_id="AKIDEXAMPLE",
            secret_access_key="secret",
            session_token="token",
            expiration=datetime.now(UTC) + timedelta(hours=1),
        ),
    )


@pytest.mark.parametrize(
    "region", ["us-east-1", "eu-central-1", "ap-southeast-2", "cn-north-1", "us-gov-west-1"]
)
def test_agent_clients_with_cut_endpoints_table_reach_the_same_endpoints(region: str) -> None:
    session = _session(region)
    aws = AwsAccess(lambda: session, session)
    full = botocore.session.Session()

    for service, client in (("sqs", aws.sqs()), ("stepfunctions", aws.sfn()), ("s3", aws.s3())):
        expected = full.create_client(
            service,
            region_name=region,
            aws_access_key_id="AKIDEXAMPLE",
            aws_secret_access_key="secret",
            aws_session_token="token",
        )
        assert client.meta.endpoint_url == expected.meta.endpoint_url, service
        assert client.meta.region_name == expected.meta.region_name, service


def test_endpoints_walk_keeps_exactly_the_agents_services_of_the_real_table() -> None:
    path = Path(botocore.__file__).parent / "data" / "endpoints.json"
    text = path.read_text()
    whole = json.loads(text)
    for partition in whole["partitions"]:
        partition["services"] = {
            name: service
            for name, service in partition["services"].items()
            if name in ENDPOINT_SERVICES
        }

    walked = services_only(text, ENDPOINT_SERVICES)

    assert walked == whole
    assert {"sqs", "states", "s3"} <= set(walked["partitions"][0]["services"])


def test_endpoints_loader_cuts_a_small_table(tmp_path: Path) -> None:
    (tmp_path / "endpoints.json").write_text(
        '{"partitions": [{"partition": "aws", "services": {"ec2": {"endpoints": {}},'
        ' "sqs": {"endpoints": {"us-east-1": {}}}}}], "version": 3}'
    )

    loaded = AgentEndpointsLoader().load_file(str(tmp_path / "endpoints"))

    assert loaded == {
        "partitions": [{"partition": "aws", "services": {"sqs": {"endpoints": {"us-east-1": {}}}}}],
        "version": 3,
    }


def test_endpoints_loader_reads_another_layout_whole(tmp_path: Path) -> None:
    (tmp_path / "endpoints.json").write_text('[{"partitions": [{"services": {"ec2": {}}}]}]')

    loaded = AgentEndpointsLoader().load_file(str(tmp_path / "endpoints"))

    assert loaded == [{"partitions": [{"services": {"ec2": {}}}]}]


def test_endpoints_loader_refuses_what_is_not_json_as_botocore_does(tmp_path: Path) -> None:
    (tmp_path / "endpoints.json").write_text('{"partitions": [], "version": 3} trailing')

    with pytest.raises(json.JSONDecodeError, match="Extra data"):
        AgentEndpointsLoader().load_file(str(tmp_path / "endpoints"))
