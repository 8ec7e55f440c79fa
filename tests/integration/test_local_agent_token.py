"""The local agent's token (issue 11, part 9): a `ferry up` after a rotation mints a new one
instead of starting the agent with the stale one, and a running agent whose token was rotated
stops taking deploy requests at its next heartbeat, exits saying why, and the stack starts it
again with a fresh token. The real `ferry-agent` program against the session's stack."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import httpx

from ferry.domain.messages import AGENT_EXIT_TOKEN_REFUSED
from ferry.local.agent_process import AgentProcess
from ferry.local.bootstrap import local_admin_token, local_agent_credentials
from ferry.local.stack import LocalStack
from tests.helpers import create_agent, wait_for


def _read(path: Path) -> str:
    return path.read_text() if path.exists() else ""


def _session(stack: LocalStack, token: str) -> int:
    return httpx.get(
        f"{stack.api_url}/api/v1/agent/session",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    ).status_code


def test_local_agent_credentials_rotated_token_minted_again(
    stack: LocalStack, api: httpx.Client, tmp_path: Path, unique: str
) -> None:
    name = f"local-{unique}"
    agent_id, first = local_agent_credentials(tmp_path, name)
    assert local_agent_credentials(tmp_path, name) == (agent_id, first)  # kept while it works

    rotated = api.post(f"/agents/{agent_id}/token")
    assert rotated.status_code == 200, rotated.text
    again_id, renewed = local_agent_credentials(tmp_path, name)

    assert again_id == agent_id
    assert renewed not in (first, rotated.json()["token"])
    assert (tmp_path / "agent.token").read_text() == renewed
    assert _session(stack, renewed) == 200
    assert _session(stack, first) == 401


def test_local_agent_token_rotated_agent_stops_and_restarts_with_a_new_token(
    stack: LocalStack, api: httpx.Client, tmp_path: Path, unique: str
) -> None:
    agent = create_agent(api, f"rotated-{unique}")
    renewed: list[str] = []

    def renew() -> str:
        token = str(api.post(f"/agents/{agent['id']}/token").json()["token"])
        renewed.append(token)
        return token

    process = AgentProcess(
        api_url=stack.api_url,
        token=agent["token"],
        deployments_dir=tmp_path / "deployments",
        log_path=tmp_path / "agent.log",
        pid_path=tmp_path / "agent.pid",
        renew_token=renew,
        heartbeat_seconds=1,
    )
    process.start()
    try:
        first = process.process
        assert first is not None
        wait_for(lambda: "taking deploy requests" in _read(tmp_path / "agent.log"), what="serving")

        assert api.post(f"/agents/{agent['id']}/token").status_code == 200  # someone rotates it

        assert first.wait(timeout=30) == AGENT_EXIT_TOKEN_REFUSED
        wait_for(lambda: process.restarts == 1, what="a restart with a new token")
        restarted_at = datetime.now(UTC)
        log = _read(tmp_path / "agent.log")
        assert "refused the agent token" in log and "Taking no more requests" in log
        second = process.process
        assert second is not None and second is not first
        assert process.token == renewed[0]
        assert (tmp_path / "agent.pid").read_text() == str(second.pid)

        def heard_from_since_the_restart() -> bool:
            seen = api.get(f"/agents/{agent['id']}").json()["last_seen_at"]
            return seen is not None and datetime.fromisoformat(seen) > restarted_at

        wait_for(heard_from_since_the_restart, timeout=30, what="the new agent's heartbeat")
        assert second.poll() is None
    finally:
        process.stop()
    assert not process.running


def test_local_admin_token_unreadable_local_json_is_replaced_with_a_working_token(
    stack: LocalStack, tmp_path: Path
) -> None:
    """An older Ferry wrote local.json in place: a crash mid-write left it empty, and every
    `ferry up` after it stopped at reading it. Now the stack mints a token again."""
    (tmp_path / "local.json").write_text("")
    token = local_admin_token(tmp_path, stack.api_url)
    saved = json.loads((tmp_path / "local.json").read_text())
    assert saved == {"api_url": stack.api_url, "token": token}
    answered = httpx.get(
        f"{stack.api_url}/api/v1/repositories",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert answered.status_code == 200, answered.text
    assert local_admin_token(tmp_path, stack.api_url) == token  # kept while it works
