"""The API over real HTTP against the local stack: auth, records, validation."""

from __future__ import annotations

from pathlib import Path

import httpx

from ferry.local.stack import LocalStack
from tests.helpers import commit, compose, create_agent, create_repository


def test_health_without_token_answers_ok(stack: LocalStack) -> None:
    response = httpx.get(f"{stack.api_url}/api/v1/health")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_protected_routes_without_or_with_wrong_token_answer_401(stack: LocalStack) -> None:
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Bearer tok_x.y"}):
        for path in ("/repositories", "/agents", "/applications"):
            response = httpx.get(f"{stack.api_url}/api/v1{path}", headers=headers)
            assert response.status_code == 401, (path, headers)
            assert response.headers["www-authenticate"] == "Bearer"


def test_repository_create_shows_webhook_secret_once(api: httpx.Client, git_repo: Path) -> None:
    created = create_repository(api, git_repo)
    assert created["webhook_secret"]
    assert created["webhook_url"].endswith(f"/api/v1/webhooks/repositories/{created['id']}")
    assert created["provider"] == "git"
    assert created["sync_status"] == "unknown"

    shown = api.get(f"/repositories/{created['id']}").json()
    listed = [r for r in api.get("/repositories").json() if r["id"] == created["id"]]
    assert "webhook_secret" not in shown
    assert listed and "webhook_secret" not in listed[0]
    assert created["webhook_secret"] not in api.get("/repositories").text


def test_repository_create_with_unusable_url_answers_400(api: httpx.Client) -> None:
    before = len(api.get("/repositories").json())
    for body in (
        {"url": ""},
        {"url": "ftp://example.com/x.git"},
        {"url": "/tmp/x", "polling_interval_seconds": 5},
    ):
        response = api.post("/repositories", json=body)
        assert response.status_code == 400, body
        assert response.json()["detail"]
    assert len(api.get("/repositories").json()) == before


def test_agent_create_lists_agent_and_refuses_duplicate_name(
    api: httpx.Client, unique: str
) -> None:
    agent = create_agent(api, f"host-{unique}")
    assert agent["token"].startswith(agent["id"] + ".")
    names = [a["name"] for a in api.get("/agents").json()]
    assert f"host-{unique}" in names
    assert "local" in names
    assert "token" not in api.get("/agents").json()[0]
    assert api.post("/agents", json={"name": f"host-{unique}"}).status_code == 409


def test_application_create_with_bad_references_or_path_answers_400(
    api: httpx.Client, git_repo: Path, unique: str
) -> None:
    repository = create_repository(api, git_repo)
    agent = create_agent(api, f"host-{unique}")
    good = {
        "name": f"app-{unique}",
        "repository_id": repository["id"],
        "agent_id": agent["id"],
        "branch": "main",
        "path": "app/compose.yaml",
    }
    for change in (
        {"repository_id": "repo_missing"},
        {"agent_id": "agt_missing"},
        {"path": "/etc/passwd"},
        {"path": "../outside.yaml"},
        {"name": "   "},
        {"name": "!!!"},
    ):
        response = api.post("/applications", json={**good, **change})
        assert response.status_code == 400, change
        assert response.json()["detail"]
    assert not [a for a in api.get("/applications").json() if a["name"] == good["name"]]


def test_application_create_ignores_client_status_fields(
    api: httpx.Client, git_repo: Path, unique: str
) -> None:
    commit(git_repo, "app/compose.yaml", compose())
    repository = create_repository(api, git_repo)
    agent = create_agent(api, f"host-{unique}")
    response = api.post(
        "/applications",
        json={
            "name": f"My App {unique}",
            "repository_id": repository["id"],
            "agent_id": agent["id"],
            "path": "./app/compose.yaml",
            "sync_status": "synced",
            "health_status": "healthy",
            "commit": "f" * 40,
        },
    )
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["sync_status"] == "unknown"
    assert created["health_status"] == "unknown"
    assert created["commit"] is None
    assert created["project_name"] == f"my-app-{unique}"
    assert created["path"] == "app/compose.yaml"
    assert created["job_id"].startswith("job_")


def test_application_unknown_id_answers_404(api: httpx.Client) -> None:
    assert api.get("/applications/app_missing").status_code == 404
    assert api.get("/applications/app_missing/events").status_code == 404
    assert api.get("/repositories/repo_missing").status_code == 404


def test_openapi_documents_the_routes(stack: LocalStack) -> None:
    spec = httpx.get(f"{stack.api_url}/openapi.json").json()
    for path in (
        "/api/v1/repositories",
        "/api/v1/agents",
        "/api/v1/applications",
        "/api/v1/applications/{application_id}",
        "/api/v1/webhooks/repositories/{repository_id}",
    ):
        assert path in spec["paths"]


def test_malformed_body_answers_422_with_one_line_reason(api: httpx.Client) -> None:
    response = api.post("/repositories", json={"sync_type": "sometimes"})
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert isinstance(detail, str)
    assert "url" in detail and "sync_type" in detail


def test_openapi_describes_errors_as_sent(stack: LocalStack, api: httpx.Client) -> None:
    spec = httpx.get(f"{stack.api_url}/openapi.json").json()
    error = {"$ref": "#/components/schemas/Error"}
    assert spec["components"]["schemas"]["Error"]["properties"] == {
        "detail": {"type": "string", "title": "Detail"}
    }
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            for code in ("400", "413", "422"):
                content = operation["responses"][code]["content"]
                assert content["application/json"]["schema"] == error, (method, path, code)

    sent = api.post("/repositories", json={"sync_type": "sometimes"})
    assert sent.status_code == 422 and isinstance(sent.json()["detail"], str)
