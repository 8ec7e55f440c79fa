"""The status page's routes over real HTTP against the local stack (and once through Mangum, as
API Gateway calls it): a public page and assets under a strict CSP, and /docs untouched."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
import pytest

from ferry.api.routes.ui import CONTENT_SECURITY_POLICY
from ferry.local.lambdas import LocalLambdaContext
from ferry.local.stack import LocalStack

STATIC = resources.files("ferry.api").joinpath("static")
ASSETS = sorted(f.name for f in STATIC.iterdir() if f.is_file() and f.name != "index.html")


def test_ui_page_without_token_serves_html_under_strict_csp(stack: LocalStack) -> None:
    response = httpx.get(f"{stack.api_url}/")

    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    csp = response.headers["content-security-policy"]
    assert csp == CONTENT_SECURITY_POLICY
    assert "script-src 'self';" in csp and "style-src 'self';" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "form-action 'none'" in csp and "frame-ancestors 'none'" in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert '<script type="module" src="ui/app.js"></script>' in response.text
    # The page is public; what it shows is not.
    assert httpx.get(f"{stack.api_url}/api/v1/applications").status_code == 401


@pytest.mark.parametrize("name", ASSETS)
def test_ui_asset_served_with_its_type_and_policy(stack: LocalStack, name: str) -> None:
    response = httpx.get(f"{stack.api_url}/ui/{name}")

    assert response.status_code == 200
    assert response.content == STATIC.joinpath(name).read_bytes()
    expected = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
    assert response.headers["content-type"].startswith(expected[Path(name).suffix])
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    again = httpx.get(
        f"{stack.api_url}/ui/{name}", headers={"If-None-Match": response.headers["etag"]}
    )
    assert again.status_code == 304
    assert again.content == b""


def test_ui_head_answers_without_body(stack: LocalStack) -> None:
    response = httpx.head(f"{stack.api_url}/")
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY


@pytest.mark.parametrize(
    "path",
    ["/ui/missing.js", "/ui/..%2Froutes%2Fui.py", "/ui/%2e%2e%2f%2e%2e%2fapp.py", "/ui/APP.JS"],
)
def test_ui_unknown_or_escaping_asset_answers_404(stack: LocalStack, path: str) -> None:
    response = httpx.get(f"{stack.api_url}{path}")
    assert response.status_code == 404
    assert "import" not in response.text


def test_openapi_docs_still_work_without_the_page_policy(stack: LocalStack) -> None:
    docs = httpx.get(f"{stack.api_url}/docs")
    schema = httpx.get(f"{stack.api_url}/openapi.json")

    assert docs.status_code == 200
    assert "swagger-ui" in docs.text
    assert "content-security-policy" not in docs.headers  # Swagger UI runs inline and from a CDN
    paths = schema.json()["paths"]
    assert "/api/v1/applications/{application_id}/deploys/{request_id}" in paths
    assert "/" not in paths and "/ui/{name}" not in paths


def _http_api_event(path: str) -> dict[str, Any]:
    """API Gateway's HTTP API event (payload format 2.0) for a browser's `GET path`."""
    now = time.time()
    return {
        "version": "2.0",
        "routeKey": "GET /",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"accept": "text/html", "host": "abc123.execute-api.eu-west-1.amazonaws.com"},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "domainName": "abc123.execute-api.eu-west-1.amazonaws.com",
            "http": {
                "method": "GET",
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.7",
                "userAgent": "Mozilla/5.0",
            },
            "requestId": f"req-{int(now * 1000)}",
            "routeKey": "GET /",
            "stage": "$default",
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": False,
    }


def test_ui_page_through_mangum_answers_as_under_uvicorn(stack: LocalStack) -> None:
    from functions.api.app import handler

    invoke: Callable[[Any, Any], Any] = handler  # Lambda's runtime calls it with any context
    context = LocalLambdaContext(
        function_name="ferry-ApiFunction",
        invoked_function_arn="arn:aws:lambda:eu-west-1:123456789012:function:ferry-ApiFunction",
        memory_limit_in_mb=512,
        timeout_seconds=30,
    )
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        response = invoke(_http_api_event("/"), context)
    finally:
        asyncio.set_event_loop(None)
        loop.close()

    assert response["statusCode"] == 200
    assert response["isBase64Encoded"] is False
    assert response["body"] == STATIC.joinpath("index.html").read_text()
    headers = {k.lower(): v for k, v in response["headers"].items()}
    assert headers["content-security-policy"] == CONTENT_SECURITY_POLICY
