"""The agents' own routes answer an agent only about its own applications."""

from __future__ import annotations

from pathlib import Path

import httpx

from ferry.local.stack import LocalStack
from tests.helpers import commit, compose, create_agent, create_application, create_repository


def test_agent_health_and_job_routes_refuse_other_agents_applications(
    stack: LocalStack, api: httpx.Client, git_repo: Path, unique: str
) -> None:
    commit(git_repo, "app/compose.yaml", compose())
    repository = create_repository(api, git_repo)
    owner, stranger = create_agent(api, f"own-{unique}"), create_agent(api, f"other-{unique}")
    application = create_application(
        api, name=f"app-{unique}", repository_id=repository["id"], agent_id=owner["id"]
    )
    base = f"{stack.api_url}/api/v1/agent"

    def as_agent(agent: dict[str, str]) -> dict[str, str]:
        return {"Authorization": f"Bearer {agent['token']}"}

    report = {"application_id": application["id"], "health_status": "unhealthy"}
    refused = httpx.post(f"{base}/health", json=report, headers=as_agent(stranger))
    assert refused.status_code == 404, refused.text
    assert api.get(f"/applications/{application['id']}").json()["health_status"] != "unhealthy"

    accepted = httpx.post(f"{base}/health", json=report, headers=as_agent(owner))
    assert accepted.status_code == 204, accepted.text
    assert api.get(f"/applications/{application['id']}").json()["health_status"] == "unhealthy"

    # Another agent's application answers exactly as one that does not exist.
    unknown = {"application_id": "app_missing", "health_status": "unhealthy"}
    missing = httpx.post(f"{base}/health", json=unknown, headers=as_agent(stranger))
    assert missing.status_code == 404
    assert missing.json()["detail"].replace("app_missing", "X") == refused.json()["detail"].replace(
        application["id"], "X"
    )
    assert httpx.post(f"{base}/health", json=report).status_code == 401

    job = f"{base}/requests/req-1"
    params = {"application_id": application["id"]}
    # Another agent's application is answered as if it did not exist (issue 12: no oracle).
    assert httpx.get(job, params=params, headers=as_agent(stranger)).status_code == 404
    mine = httpx.get(job, params=params, headers=as_agent(owner))
    assert mine.status_code == 200 and mine.json() == {"request_id": "req-1", "current": False}
