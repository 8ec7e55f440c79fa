"""The live feed (SSE) and application history rules."""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ferry.api.routes import events as events_route
from ferry.deploy.status import update_application_status
from ferry.domain.models import ApplicationEvent, EventStatus, EventType, Trigger
from ferry.errors import NotFound
from ferry.local.stack import LocalStack
from ferry.store import events as event_store
from ferry.store.changes import change_rows, changes_after, latest_change
from tests.helpers import (
    commit,
    compose,
    create_agent,
    create_application,
    create_repository,
    wait_for,
    wait_for_idle_sync,
)


def _read_events(response: httpx.Response, count: int) -> Iterator[dict[str, object]]:
    """Parse `count` SSE events (id, event, data) off an open stream."""
    current: dict[str, object] = {}
    for line in response.iter_lines():
        if line.startswith("id: "):
            current["id"] = int(line[4:])
        elif line.startswith("event: "):
            current["event"] = line[7:]
        elif line.startswith("data: "):
            current["data"] = json.loads(line[6:])
        elif line == "":
            if "data" in current:  # a block without data dispatches nothing (its id is kept)
                yield current
                count -= 1
                if count == 0:
                    return
            current = {}


def _sse(stack: LocalStack, **headers: str) -> httpx.Client:
    assert stack.state is not None
    return httpx.Client(
        base_url=f"{stack.api_url}/api/v1",
        headers={"Authorization": f"Bearer {stack.state.token}", **headers},
        # Under the 15 s keep-alive: an event that never comes fails the read, not the suite.
        timeout=httpx.Timeout(30, read=10),
    )


def _until_path(response: httpx.Response, path: str, limit: int = 200) -> list[dict[str, object]]:
    """Events read off the stream up to and including the first one naming `path`."""
    seen = []
    for event in _read_events(response, limit):
        seen.append(event)
        if event["data"]["path"] == path:  # type: ignore[index]
            return seen
    raise AssertionError(f"no event for {path} in {seen}")


def test_events_stream_names_changed_resource_and_resumes_after_drop(
    stack: LocalStack, api: httpx.Client, unique: str
) -> None:
    start = latest_change()
    with (
        _sse(stack) as client,
        client.stream("GET", "/events", params={"since": start}) as response,
    ):
        assert response.headers["content-type"].startswith("text/event-stream")
        agent = create_agent(api, f"first-{unique}")
        seen = _until_path(response, f"/api/v1/agents/{agent['id']}")
    first = seen[-1]
    assert first["event"] == "update"
    assert [e["id"] for e in seen] == list(range(start + 1, int(str(first["id"])) + 1))

    # Disconnected: a change happens meanwhile, and the reconnect resumes right after `first`.
    second_agent = create_agent(api, f"second-{unique}")
    headers = {"Last-Event-ID": str(first["id"])}
    with _sse(stack, **headers) as client, client.stream("GET", "/events") as response:
        resumed = _until_path(response, f"/api/v1/agents/{second_agent['id']}")
    assert resumed[0]["id"] == int(str(first["id"])) + 1
    assert [e["id"] for e in resumed] == sorted({int(str(e["id"])) for e in resumed})


def test_events_without_token_answer_401(stack: LocalStack) -> None:
    assert httpx.get(f"{stack.api_url}/api/v1/events").status_code == 401


@pytest.fixture
def application(api: httpx.Client, git_repo: Path, unique: str) -> dict[str, str]:
    commit(git_repo, "app/compose.yaml", compose())
    repository = create_repository(api, git_repo, sync_type="manual")
    agent = create_agent(api, f"host-{unique}")
    created = create_application(
        api, name=f"app-{unique}", repository_id=repository["id"], agent_id=agent["id"]
    )
    # Its first sync and deploy add events of their own: let them be written before a test counts.
    wait_for_idle_sync(repository["id"])
    wait_for(
        lambda: any(e.type is EventType.DEPLOYMENT for e in event_store.list_events(created["id"])),
        what="the first deploy's event",
    )
    return created


def test_status_write_announces_exactly_one_change_also_when_it_fails(
    application: dict[str, str],
) -> None:
    before = latest_change()
    update_application_status(application["id"], {"health_status": "healthy"})
    with pytest.raises(NotFound):
        update_application_status("app_missing", {"health_status": "healthy"})

    changes = [c for c in changes_after(before) if c.kind == "application.status"]
    mine = [c for c in changes if c.path.endswith(application["id"])]
    missing = [c for c in changes if c.path.endswith("app_missing")]
    assert [c.ok for c in mine] == [True]
    assert [(c.ok, "failed" in (c.detail or "")) for c in missing] == [(False, True)]


def test_event_result_completes_only_its_running_event_once(application: dict[str, str]) -> None:
    app_id = application["id"]
    for request in ("req-a", "req-b"):
        event_store.add_event(
            ApplicationEvent(
                application_id=app_id,
                type=EventType.DEPLOYMENT,
                trigger=Trigger.MANUAL,
                status=EventStatus.RUNNING,
                request_id=request,
            )
        )

    assert event_store.complete_event(app_id, "req-a", EventStatus.SUCCEEDED) is True
    assert event_store.complete_event(app_id, "req-a", EventStatus.FAILED, error="late") is False
    assert event_store.complete_event(app_id, "req-x", EventStatus.SUCCEEDED) is False
    assert event_store.complete_event("app_other", "req-b", EventStatus.SUCCEEDED) is False

    by_request = {e.request_id: e for e in event_store.list_events(app_id) if e.request_id}
    assert by_request["req-a"].status is EventStatus.SUCCEEDED and by_request["req-a"].error is None
    assert by_request["req-b"].status is EventStatus.RUNNING


def test_event_history_keeps_the_newest_window(
    application: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(event_store, "EVENTS_KEPT", 5)
    for number in range(12):
        event_store.add_event(
            ApplicationEvent(
                application_id=application["id"],
                type=EventType.COMMIT_SYNC,
                trigger=Trigger.MANUAL,
                status=EventStatus.NO_CHANGE,
                message=f"event {number}",
            )
        )

    kept = event_store.list_events(application["id"], limit=100)
    assert len(kept) == 5
    assert [e.message for e in kept] == [f"event {n}" for n in range(11, 6, -1)]


def test_events_endpoint_pages_newest_first(api: httpx.Client, application: dict[str, str]) -> None:
    for number in range(5):
        event_store.add_event(
            ApplicationEvent(
                application_id=application["id"],
                type=EventType.COMMIT_SYNC,
                trigger=Trigger.MANUAL,
                status=EventStatus.NO_CHANGE,
                message=f"page {number}",
            )
        )
    first = api.get(f"/applications/{application['id']}/events", params={"limit": 2}).json()
    second = api.get(
        f"/applications/{application['id']}/events",
        params={"limit": 2, "before": first["next_before"]},
    ).json()
    seqs = [e["seq"] for e in first["items"] + second["items"]]
    assert seqs == sorted(seqs, reverse=True) and len(set(seqs)) == 4
    assert first["items"][0]["message"] == "page 4"


def test_events_concurrent_adds_get_distinct_numbers(application: dict[str, str]) -> None:
    def add(number: int) -> None:
        event_store.add_event(
            ApplicationEvent(
                application_id=application["id"],
                type=EventType.COMMIT_SYNC,
                trigger=Trigger.MANUAL,
                status=EventStatus.NO_CHANGE,
                message=f"c{number}",
            )
        )

    threads = [threading.Thread(target=add, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    messages = [e.message for e in event_store.list_events(application["id"], limit=100)]
    assert sorted(m for m in messages if m and m.startswith("c")) == sorted(
        f"c{n}" for n in range(8)
    )


def test_repository_status_write_and_its_announcement_are_one_transaction(
    api: httpx.Client, git_repo: Path
) -> None:
    """A repository's status and the change announcing it are written together (after the
    feed's number is taken): two round trips, where the write and its announcement were three;
    a write that fails announces nothing."""
    from ferry.domain.models import RepositorySyncStatus
    from ferry.store.repositories import get_repository
    from ferry.sync.status import update_repository_status
    from tests.helpers import AwsCalls

    commit(git_repo, "app/compose.yaml", compose())
    repository = create_repository(api, git_repo, sync_type="manual")
    wait_for_idle_sync(repository["id"])
    before = latest_change()

    with AwsCalls(lambda thread: thread == "MainThread") as aws:
        update_repository_status(repository["id"], RepositorySyncStatus.FAILED, error="boom")
    with pytest.raises(NotFound):
        update_repository_status("repo_missing", RepositorySyncStatus.FAILED, error="boom")

    assert [op for _service, op, _table in aws.calls] == ["UpdateItem", "TransactWriteItems"]
    assert get_repository(repository["id"]).last_sync_error == "boom"
    # The feed is the whole stack's: other tests' deploys may still be announcing meanwhile.
    written = (repository["id"], "repo_missing")
    announced = [(c.path.rsplit("/", 1)[-1], c.kind) for c in changes_after(before)]
    assert [a for a in announced if a[0] in written] == [(repository["id"], "repository.status")]


def test_events_deliver_a_change_whose_row_lands_after_a_higher_numbered_one(
    stack: LocalStack, unique: str
) -> None:
    """Numbers are taken before rows are written, so two writers can land their rows in the
    opposite order of their numbers: the stream must not move past the lower number for good
    when it first sees the higher one."""
    first_path, second_path = f"/test/{unique}/first", f"/test/{unique}/second"
    first, second = change_rows([first_path, second_path], "test.order")
    second.save()
    with (
        _sse(stack) as client,
        client.stream("GET", "/events", params={"since": int(first.seq) - 1}) as response,
    ):
        # Let the stream read while only the higher number is written (two of its polls).
        time.sleep(2 * events_route.POLL_SECONDS + 0.2)
        first.save()
        seen = _until_path(response, second_path, limit=10)
    assert [(e["id"], e["data"]["path"]) for e in seen[:2]] == [  # type: ignore[index]
        (int(first.seq), first_path),
        (int(second.seq), second_path),
    ]


def test_events_name_where_they_start_so_a_reconnect_before_any_change_resumes_there(
    stack: LocalStack, api: httpx.Client, unique: str
) -> None:
    with _sse(stack) as client, client.stream("GET", "/events") as response:
        lines = response.iter_lines()
        first_block = list(itertools.takewhile(bool, lines))
    assert first_block[0] == "retry: 2000"
    start = int(first_block[1].removeprefix("id: "))
    assert start <= latest_change()

    # Disconnected before any change came: one happens meanwhile, and the reconnect has it.
    agent = create_agent(api, f"between-{unique}")
    headers = {"Last-Event-ID": str(start)}
    with _sse(stack, **headers) as client, client.stream("GET", "/events") as response:
        resumed = _until_path(response, f"/api/v1/agents/{agent['id']}")
    # Right after where it started (a number a failed write took, as an earlier test's may be,
    # is passed over once settled).
    assert all(int(str(e["id"])) > start for e in resumed)
