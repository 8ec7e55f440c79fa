"""GET /api/v1/events under Lambda: the API function's own handler (FastAPI through Mangum), called
in-process with an API Gateway HTTP API (payload 2.0) event, answers as a bounded long-poll."""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from ferry.api.routes import events as events_route
from ferry.local.lambdas import LocalLambdaContext
from ferry.local.stack import LocalStack
from ferry.store.changes import latest_change
from tests.helpers import create_agent, wait_for

# The no-change case waits out the whole long-poll: keep it short here (25 s in production).
SHORT_LONG_POLL_SECONDS = 1.0


def _http_api_event(token: str, *, last_event_id: int) -> dict[str, Any]:
    """What API Gateway (HTTP API, `ANY /{proxy+}`, payload format 2.0) hands the function for an
    EventSource reconnecting with `Last-Event-ID`."""
    now = time.time()
    return {
        "version": "2.0",
        "routeKey": "ANY /{proxy+}",
        "rawPath": "/api/v1/events",
        "rawQueryString": "",
        "headers": {
            "accept": "text/event-stream",
            "authorization": f"Bearer {token}",
            "cache-control": "no-cache",
            "host": "abc123.execute-api.eu-west-1.amazonaws.com",
            "last-event-id": str(last_event_id),
            "user-agent": "Mozilla/5.0",
            "x-forwarded-for": "203.0.113.7",
            "x-forwarded-port": "443",
            "x-forwarded-proto": "https",
        },
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "domainName": "abc123.execute-api.eu-west-1.amazonaws.com",
            "domainPrefix": "abc123",
            "http": {
                "method": "GET",
                "path": "/api/v1/events",
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.7",
                "userAgent": "Mozilla/5.0",
            },
            "requestId": f"req-{int(now * 1000)}",
            "routeKey": "ANY /{proxy+}",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "pathParameters": {"proxy": "api/v1/events"},
        "isBase64Encoded": False,
    }


def _invoke(handler: Callable[[Any, Any], Any], event: dict[str, Any], limit: float) -> Any:
    """Call the handler as Lambda's runtime would (its own thread with an event loop); fail
    instead of hanging when it has not answered within `limit` seconds."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        context = LocalLambdaContext(
            function_name="ferry-ApiFunction",
            invoked_function_arn="arn:aws:lambda:eu-west-1:123456789012:function:ferry-ApiFunction",
            memory_limit_in_mb=512,
            timeout_seconds=30,
        )
        try:
            outcome["response"] = handler(event, context)
        except BaseException as exc:
            outcome["error"] = exc
        finally:
            asyncio.set_event_loop(None)
            loop.close()

    thread = threading.Thread(target=run, name="lambda-api", daemon=True)
    thread.start()
    thread.join(timeout=limit)
    assert not thread.is_alive(), f"the Lambda handler did not answer within {limit} s"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["response"]


def _body(response: dict[str, Any]) -> str:
    body = str(response.get("body") or "")
    return base64.b64decode(body).decode() if response.get("isBase64Encoded") else body


def _header(response: dict[str, Any], name: str) -> str:
    headers = {k.lower(): v for k, v in (response.get("headers") or {}).items()}
    return str(headers.get(name, ""))


def _frames(body: str) -> list[dict[str, str]]:
    """The SSE frames of a body (blank-line separated), each field → value."""
    frames = []
    for block in body.split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            name, _, value = line.partition(": ")
            fields[name] = value
        if fields:
            frames.append(fields)
    return frames


@pytest.fixture
def api_handler(stack: LocalStack) -> Callable[[Any, Any], Any]:
    """ApiFunction's handler (template.yaml: functions/api/app.handler), imported like Lambda
    would once the stack has set the function's environment."""
    from functions.api.app import handler

    return handler


def _quiet_feed() -> int:
    """The feed's latest number once nothing has been announced for a second."""
    latest, since = latest_change(), time.monotonic()

    def settled() -> bool:
        nonlocal latest, since
        current = latest_change()
        if current != latest:
            latest, since = current, time.monotonic()
        return time.monotonic() - since >= 1.0

    wait_for(settled, timeout=20, what="the change feed to be quiet")
    return latest


def test_events_under_lambda_answer_the_changes_after_last_event_id_at_once(
    stack: LocalStack, api: httpx.Client, api_handler: Callable[[Any, Any], Any], unique: str
) -> None:
    assert stack.state is not None
    start = latest_change()
    agent = create_agent(api, f"lambda-sse-{unique}")
    agent_path = f"/api/v1/agents/{agent['id']}"

    started = time.monotonic()
    response = _invoke(
        api_handler,
        _http_api_event(stack.state.token, last_event_id=start),
        limit=events_route.LONG_POLL_SECONDS + 5,
    )
    elapsed = time.monotonic() - started

    assert response["statusCode"] == 200, response
    assert _header(response, "content-type").startswith("text/event-stream")
    assert _header(response, "cache-control") == "no-cache"
    # Changes were waiting: it answers them on its first look, without the long-poll's wait.
    assert elapsed < events_route.LONG_POLL_SECONDS / 2
    frames = _frames(_body(response))
    assert frames[0] == {"retry": "2000", "id": str(start)}
    updates = [f for f in frames if f.get("event") == "update"]
    assert updates and all("id" in f and "data" in f for f in updates)
    ids = [int(f["id"]) for f in updates]
    assert ids == list(range(start + 1, start + 1 + len(ids)))  # exactly after Last-Event-ID
    data = [json.loads(f["data"]) for f in updates]
    assert {"path": agent_path, "kind": "agent.created", "ok": True, "detail": None} in data


def test_events_under_lambda_without_changes_answer_only_where_to_resume_after_the_bound(
    stack: LocalStack,
    api_handler: Callable[[Any, Any], Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert stack.state is not None
    monkeypatch.setattr(events_route, "LONG_POLL_SECONDS", SHORT_LONG_POLL_SECONDS)
    latest = _quiet_feed()

    started = time.monotonic()
    response = _invoke(
        api_handler,
        _http_api_event(stack.state.token, last_event_id=latest),
        limit=SHORT_LONG_POLL_SECONDS + 5,
    )
    elapsed = time.monotonic() - started

    assert response["statusCode"] == 200, response
    assert _header(response, "content-type").startswith("text/event-stream")
    assert elapsed >= SHORT_LONG_POLL_SECONDS  # it did wait for changes, then gave up
    body = _body(response)
    assert "event: update" not in body
    # The EventSource reconnects after 2 s, resuming where this one started: not "from now",
    # which would make the page load everything again after every quiet long-poll.
    assert _frames(body) == [{"retry": "2000", "id": str(latest)}]
