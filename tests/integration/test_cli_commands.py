"""The `ferry` CLI against the real local stack: every resource command, errors, and `watch`."""

from __future__ import annotations

import http.server
import json
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from dulwich.refs import Ref
from dulwich.repo import Repo

from ferry.cli.client import EventStream
from ferry.cli.watch import Connected, FeedReader
from ferry.local.stack import LocalStack
from ferry.store.applications import create_application as store_application
from tests.helpers import (
    ScriptedAgent,
    agent_queue_url,
    commit,
    compose,
    create_agent,
    create_application,
    create_repository,
    get_application,
    wait_for,
    wait_for_idle_sync,
    wait_for_status,
)

FERRY = str(Path(sys.executable).parent / "ferry")


@dataclass(frozen=True)
class Result:
    exit_code: int
    stdout: str
    stderr: str


Ferry = Callable[..., Result]


def environment(stack: LocalStack, **changes: str | None) -> dict[str, str]:
    """The CLI's environment: this process's, minus every FERRY_ setting the stack put in it,
    plus the API's address and token (then `changes`; None removes a variable)."""
    assert stack.state is not None
    result = {k: v for k, v in os.environ.items() if not k.startswith("FERRY_")}
    result.update(FERRY_API_URL=stack.api_url, FERRY_TOKEN=stack.state.token)
    for key, value in changes.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = value
    return result


@pytest.fixture
def ferry(stack: LocalStack) -> Ferry:
    """Runs the installed `ferry` as a process (in-process runs would share stdout with the
    stack's handlers, which log from their own threads)."""

    def run(*args: str, env: dict[str, str | None] | None = None, stdin: str = "") -> Result:
        completed = subprocess.run(
            [FERRY, *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
            env=environment(stack, **(env or {})),
        )
        return Result(completed.returncode, completed.stdout, completed.stderr)

    return run


def ok(result: Result) -> str:
    assert result.exit_code == 0, (result.exit_code, result.stdout, result.stderr)
    return result.stdout


def one_error_line(result: Result) -> str:
    """The command failed with exit 1 and said why in exactly one `error: …` line on stderr."""
    assert result.exit_code == 1, (result.exit_code, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    return lines[0]


def as_json(result: Result) -> Any:
    return json.loads(ok(result))


@pytest.fixture
def setup(api: httpx.Client, git_repo: Path, unique: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A repository with a compose file, and an agent with no process behind it."""
    commit(git_repo, "app/compose.yaml", compose())
    return create_repository(api, git_repo, sync_type="manual"), create_agent(api, f"h-{unique}")


@pytest.fixture
def deployed(
    api: httpx.Client, setup: tuple[dict[str, Any], dict[str, Any]], unique: str
) -> tuple[dict[str, Any], ScriptedAgent]:
    """An application synced through a scripted agent (which answers later jobs too)."""
    repository, agent = setup
    application = create_application(
        api, name=f"app-{unique}", repository_id=repository["id"], agent_id=agent["id"]
    )
    scripted = ScriptedAgent(agent_queue_url(agent["id"]))
    scripted.succeed(scripted.take())
    wait_for_status(api, application["id"], "synced")
    wait_for_idle_sync(repository["id"])
    return application, scripted


class Receiver:
    """A notification receiver on loopback that records the bodies POSTed to it."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        bodies = self.bodies

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                bodies.append(self.rfile.read(int(self.headers.get("content-length") or 0)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    started = Receiver()
    yield started
    started.close()


# Repositories


def test_repo_add_prints_webhook_secret_once_and_never_again(ferry: Ferry, git_repo: Path) -> None:
    out = ok(ferry("repo", "add", f"file://{git_repo}", "--sync-type", "manual"))
    secret = re.search(r"Webhook secret: (\S+)", out)
    repository_id = re.search(r"Repository (repo_\w+) added", out)
    assert secret and repository_id, out
    assert "shown once" in out
    assert "/api/v1/webhooks/repositories/" in out

    listed = as_json(ferry("repo", "list", "--json"))
    assert [r for r in listed if r["id"] == repository_id[1]]
    assert all("webhook_secret" not in r for r in listed)
    for args in (("repo", "list"), ("repo", "show", repository_id[1]), ("repo", "list", "--json")):
        assert secret[1] not in ok(ferry(*args))


def test_repo_add_json_prints_created_object(ferry: Ferry, git_repo: Path) -> None:
    created = as_json(ferry("repo", "add", str(git_repo), "--json"))
    assert created["id"].startswith("repo_")
    assert created["webhook_secret"]
    assert created["sync_type"] == "webhook"


def test_repo_show_by_url_shows_settings(ferry: Ferry, api: httpx.Client, git_repo: Path) -> None:
    repository = create_repository(api, git_repo, sync_type="manual")
    out = ok(ferry("repo", "show", f"file://{git_repo}"))
    assert repository["id"] in out
    assert "manual" in out
    assert as_json(ferry("repo", "show", repository["id"], "--json"))["url"] == repository["url"]


def test_repo_sync_wait_reports_success(ferry: Ferry, api: httpx.Client, git_repo: Path) -> None:
    commit(git_repo, "app/compose.yaml", compose())
    repository = create_repository(api, git_repo, sync_type="manual")
    assert "queued (job job_" in ok(ferry("repo", "sync", repository["id"]))
    wait_for_idle_sync(repository["id"])

    out = ok(ferry("repo", "sync", repository["id"], "--wait", "--timeout", "60"))
    assert f"Synced {repository['id']}" in out
    assert api.get(f"/repositories/{repository['id']}").json()["sync_status"] == "success"


def test_repo_set_changes_sync_type(ferry: Ferry, api: httpx.Client, git_repo: Path) -> None:
    repository = create_repository(api, git_repo)
    ok(ferry("repo", "set", repository["id"], "--sync-type", "polling", "--interval", "120"))
    changed = api.get(f"/repositories/{repository['id']}").json()
    assert (changed["sync_type"], changed["polling_interval_seconds"]) == ("polling", 120)


def test_repo_rotate_secret_prints_new_secret_once(
    ferry: Ferry, api: httpx.Client, git_repo: Path
) -> None:
    repository = create_repository(api, git_repo)
    out = ok(ferry("repo", "rotate-secret", repository["id"], "--yes"))
    rotated = re.search(r"Webhook secret: (\S+)", out)
    assert rotated and rotated[1] != repository["webhook_secret"]
    assert "shown once" in out


def test_repo_rm_without_applications_deletes_it(
    ferry: Ferry, api: httpx.Client, git_repo: Path
) -> None:
    repository = create_repository(api, git_repo)
    assert "deleted" in ok(ferry("repo", "rm", repository["id"], "--yes"))
    assert api.get(f"/repositories/{repository['id']}").status_code == 404


def test_repo_rm_with_applications_refused_with_one_line_error(
    ferry: Ferry, api: httpx.Client, setup: tuple[dict[str, Any], dict[str, Any]], unique: str
) -> None:
    repository, agent = setup
    create_application(
        api, name=f"keep-{unique}", repository_id=repository["id"], agent_id=agent["id"]
    )
    line = one_error_line(ferry("repo", "rm", repository["id"], "--yes"))
    assert "applications" in line
    assert api.get(f"/repositories/{repository['id']}").status_code == 200


def test_repo_rm_without_confirmation_changes_nothing(
    ferry: Ferry, api: httpx.Client, git_repo: Path
) -> None:
    repository = create_repository(api, git_repo)
    result = ferry("repo", "rm", repository["id"], stdin="n\n")
    assert result.exit_code == 1
    assert api.get(f"/repositories/{repository['id']}").status_code == 200


# Agents


def test_agent_add_list_rotate_rm_by_name(ferry: Ferry, api: httpx.Client, unique: str) -> None:
    name = f"host-{unique}"
    out = ok(ferry("agent", "add", name))
    token = re.search(r"Token: (\S+)", out)
    assert token and "shown once" in out
    assert "FERRY_AGENT_TOKEN" in out

    listed = as_json(ferry("agent", "list", "--json"))
    (agent,) = [a for a in listed if a["name"] == name]
    assert token[1].startswith(agent["id"] + ".")
    assert "token" not in agent
    table = ok(ferry("agent", "list"))
    assert name in table
    assert token[1] not in table

    rotated = re.search(r"Token: (\S+)", ok(ferry("agent", "rotate-token", name, "-y")))
    assert rotated and rotated[1] != token[1]
    assert rotated[1].startswith(agent["id"] + ".")

    ok(ferry("agent", "rm", name, "--yes"))
    assert api.get(f"/agents/{agent['id']}").status_code == 404


def test_agent_add_json_prints_created_object_with_token(ferry: Ferry, unique: str) -> None:
    created = as_json(ferry("agent", "add", f"j-{unique}", "--json"))
    assert created["name"] == f"j-{unique}"
    assert created["token"].startswith(created["id"] + ".")


def test_agent_rm_with_applications_refused_with_one_line_error(
    ferry: Ferry, api: httpx.Client, setup: tuple[dict[str, Any], dict[str, Any]], unique: str
) -> None:
    repository, agent = setup
    create_application(
        api, name=f"busy-{unique}", repository_id=repository["id"], agent_id=agent["id"]
    )
    one_error_line(ferry("agent", "rm", agent["id"], "--yes"))
    assert api.get(f"/agents/{agent['id']}").status_code == 200


# Applications


def test_app_add_by_names_appears_in_status_table_and_json(
    ferry: Ferry, api: httpx.Client, setup: tuple[dict[str, Any], dict[str, Any]], unique: str
) -> None:
    repository, agent = setup
    name = f"web-{unique}"
    out = ok(
        ferry(
            "app", "add", name,
            "--repo", repository["url"],
            "--agent", agent["name"],
            "--path", "app/compose.yaml",
        )
    )  # fmt: skip
    assert f"Application {name}" in out
    (created,) = [a for a in api.get("/applications").json() if a["name"] == name]
    assert (created["repository_id"], created["agent_id"]) == (repository["id"], agent["id"])

    table = ok(ferry("status"))
    row = next(line for line in table.splitlines() if name in line)
    assert agent["name"] in row
    assert "main" in row
    assert created["id"] in [a["id"] for a in as_json(ferry("status", "--json"))]
    assert name in ok(ferry("app", "list"))


def test_app_add_json_prints_created_object(
    ferry: Ferry, setup: tuple[dict[str, Any], dict[str, Any]], unique: str
) -> None:
    repository, agent = setup
    created = as_json(
        ferry(
            "app", "add", f"api-{unique}",
            "--repo", repository["id"],
            "--agent", agent["id"],
            "--path", "app/compose.yaml",
            "--json",
        )
    )  # fmt: skip
    assert created["id"].startswith("app_")
    assert created["job_id"].startswith("job_")
    assert created["sync_status"] == "unknown"


def test_app_history_after_create_shows_application_created_sync(
    ferry: Ferry, api: httpx.Client, setup: tuple[dict[str, Any], dict[str, Any]], unique: str
) -> None:
    repository, agent = setup
    application = create_application(
        api, name=f"hist-{unique}", repository_id=repository["id"], agent_id=agent["id"]
    )

    def created_sync() -> dict[str, Any] | None:
        page = as_json(ferry("app", "history", application["id"], "--json"))
        return next((e for e in page["items"] if e["trigger"] == "application_created"), None)

    event = wait_for(created_sync, what="the application_created sync event")
    table = ok(ferry("app", "history", f"hist-{unique}"))
    # The deploy's event may have joined it meanwhile (also application_created): find its row.
    rows = [line for line in table.splitlines() if "application_created" in line]
    assert any(event["type"] in row and event["commit"][:12] in row for row in rows), rows


def test_app_show_and_set_and_rename_change_it(
    ferry: Ferry,
    api: httpx.Client,
    setup: tuple[dict[str, Any], dict[str, Any]],
    git_repo: Path,
    unique: str,
) -> None:
    repository, agent = setup
    with Repo(str(git_repo)) as repo:
        repo.refs[Ref(b"refs/heads/develop")] = repo.refs[Ref(b"refs/heads/main")]
    application = create_application(
        api, name=f"old-{unique}", repository_id=repository["id"], agent_id=agent["id"]
    )
    shown = ok(ferry("app", "show", f"old-{unique}"))
    assert application["id"] in shown
    assert f"old-{unique}" in shown

    ok(ferry("app", "rename", f"old-{unique}", f"new-{unique}"))
    out = ok(ferry("app", "set", f"new-{unique}", "--branch", "develop"))
    assert "being synced" in out
    changed = get_application(api, application["id"])
    assert (changed["name"], changed["branch"]) == (f"new-{unique}", "develop")
    assert as_json(ferry("app", "show", application["id"], "--json"))["branch"] == "develop"
    line = one_error_line(ferry("app", "set", f"new-{unique}", "--branch", "nowhere"))
    assert "branch 'nowhere'" in line


def test_app_name_on_two_agents_is_ambiguous_and_error_lists_ids(
    ferry: Ferry, api: httpx.Client, setup: tuple[dict[str, Any], dict[str, Any]], unique: str
) -> None:
    repository, agent = setup
    other = create_agent(api, f"o-{unique}")
    first = create_application(
        api, name=f"twin-{unique}", repository_id=repository["id"], agent_id=agent["id"]
    )
    second = create_application(
        api, name=f"twin-{unique}", repository_id=repository["id"], agent_id=other["id"]
    )
    line = one_error_line(ferry("app", "show", f"twin-{unique}"))
    assert "ambiguous" in line
    assert first["id"] in line
    assert second["id"] in line


def test_app_deploy_before_first_sync_refused_with_one_line_error(
    ferry: Ferry, api: httpx.Client, setup: tuple[dict[str, Any], dict[str, Any]], unique: str
) -> None:
    repository, agent = setup
    # Stored directly: no first sync is queued, so it has no compose file to deploy yet.
    application = store_application(
        name=f"new-{unique}",
        repository_id=repository["id"],
        agent_id=agent["id"],
        branch="main",
        path="app/compose.yaml",
    )
    assert "not been synced" in one_error_line(ferry("app", "deploy", application.id))


def test_app_deploy_wait_reports_agent_success(
    ferry: Ferry, deployed: tuple[dict[str, Any], ScriptedAgent]
) -> None:
    application, scripted = deployed
    with ThreadPoolExecutor(max_workers=1) as pool:
        answered = pool.submit(lambda: scripted.succeed(scripted.take()))
        out = ok(ferry("app", "deploy", application["name"], "--wait", "--timeout", "60"))
        answered.result(timeout=30)
    assert f"Deployed {application['name']}" in out


def test_app_rollback_to_commit_pins_show_says_so_unpin_releases(
    ferry: Ferry,
    api: httpx.Client,
    git_repo: Path,
    deployed: tuple[dict[str, Any], ScriptedAgent],
) -> None:
    application, scripted = deployed
    first = get_application(api, application["id"])["commit"]
    second = commit(git_repo, "app/compose.yaml", compose(greeting="two"), "two")
    api.post(f"/repositories/{application['repository_id']}/sync")
    scripted.succeed(scripted.take())
    wait_for_status(api, application["id"], "synced", commit=second)
    wait_for_idle_sync(application["repository_id"])

    out = ok(ferry("app", "rollback", application["name"], "--to", first, "--reason", "bad"))
    assert f"going back to {first[:12]}" in out
    scripted.succeed(scripted.take())
    wait_for_status(api, application["id"], "synced", commit=first)
    shown = ok(ferry("app", "show", application["name"])).splitlines()
    assert any("pinned at" in line and first[:12] in line for line in shown), shown
    wait_for_idle_sync(application["repository_id"])
    assert "follows main again" in ok(ferry("app", "unpin", application["name"]))
    scripted.succeed(scripted.take())
    wait_for_status(api, application["id"], "synced", commit=second)
    assert "was not pinned" in ok(ferry("app", "unpin", application["name"]))
    assert "full commit SHA" in one_error_line(
        ferry("app", "rollback", application["name"], "--to", "main")
    )


def test_app_rm_agent_removes_it_reports_removed(
    ferry: Ferry, api: httpx.Client, deployed: tuple[dict[str, Any], ScriptedAgent]
) -> None:
    application, scripted = deployed

    def answer_removal() -> None:
        removal = scripted.take_removal()
        scripted.answer(
            removal,
            {
                "request_id": removal.request.request_id,
                "application_id": application["id"],
                "success": True,
            },
        )

    with ThreadPoolExecutor(max_workers=1) as pool:
        answered = pool.submit(answer_removal)
        out = ok(ferry("app", "rm", application["id"], "--yes"))
        answered.result(timeout=30)
    assert "removed" in out
    assert api.get(f"/applications/{application['id']}").status_code == 404


def test_app_rm_agent_fails_keeps_it_with_one_line_error_and_force_hint(
    ferry: Ferry, api: httpx.Client, deployed: tuple[dict[str, Any], ScriptedAgent]
) -> None:
    application, scripted = deployed
    with ThreadPoolExecutor(max_workers=1) as pool:
        answered = pool.submit(
            lambda: scripted.fail(scripted.take_removal(), "compose down: permission denied")
        )
        line = one_error_line(ferry("app", "rm", application["id"], "--yes"))
        answered.result(timeout=30)
    assert "permission denied" in line
    assert "--force" in line
    assert api.get(f"/applications/{application['id']}").status_code == 200


def test_app_rm_force_forgets_it(
    ferry: Ferry, api: httpx.Client, setup: tuple[dict[str, Any], dict[str, Any]], unique: str
) -> None:
    repository, agent = setup
    application = create_application(
        api, name=f"gone-{unique}", repository_id=repository["id"], agent_id=agent["id"]
    )
    assert "forgotten" in ok(ferry("app", "rm", f"gone-{unique}", "--force", "--yes"))
    assert api.get(f"/applications/{application['id']}").status_code == 404


# Notifications


def test_notify_add_shows_redacted_url_and_test_reaches_receiver(
    ferry: Ferry, receiver: Receiver, unique: str
) -> None:
    url = f"json://ferry:s3cr3t-{unique}@127.0.0.1:{receiver.port}/hook"
    out = ok(ferry("notify", "add", f"ops-{unique}", url))
    assert f"127.0.0.1:{receiver.port}/hook" in out
    assert f"s3cr3t-{unique}" not in out
    listed = ok(ferry("notify", "list"))
    assert f"ops-{unique}" in listed
    assert f"s3cr3t-{unique}" not in listed + ok(ferry("notify", "list", "--json"))

    assert "sent" in ok(ferry("notify", "test", f"ops-{unique}"))
    body = wait_for(lambda: receiver.bodies, what="the test notification")[0]
    assert b"Ferry test notification" in body
    (target,) = [
        t for t in as_json(ferry("notify", "list", "--json")) if t["name"] == f"ops-{unique}"
    ]
    assert target["last_status"] == "ok"


def test_notify_add_url_from_stdin_json_prints_created_object(
    ferry: Ferry, receiver: Receiver, unique: str
) -> None:
    created = as_json(
        ferry(
            "notify", "add", f"in-{unique}", "-", "--json",
            stdin=f"json://u:pw-{unique}@127.0.0.1:{receiver.port}/\n",
        )
    )  # fmt: skip
    assert created["id"].startswith("ntf_")
    assert f"pw-{unique}" not in json.dumps(created)


def test_notify_test_unreachable_target_fails_with_one_line_error(
    ferry: Ferry, unique: str
) -> None:
    ok(ferry("notify", "add", f"dead-{unique}", "json://127.0.0.1:9/hook"))
    assert "failed" in one_error_line(ferry("notify", "test", f"dead-{unique}"))


def test_notify_attach_detach_rm_update_application(
    ferry: Ferry,
    api: httpx.Client,
    setup: tuple[dict[str, Any], dict[str, Any]],
    receiver: Receiver,
    unique: str,
) -> None:
    repository, agent = setup
    application = create_application(
        api, name=f"n-{unique}", repository_id=repository["id"], agent_id=agent["id"]
    )
    target = as_json(
        ferry("notify", "add", f"t-{unique}", f"json://127.0.0.1:{receiver.port}/", "--json")
    )
    assert "attached" in ok(ferry("notify", "attach", f"t-{unique}", f"n-{unique}"))
    assert get_application(api, application["id"])["notification_ids"] == [target["id"]]
    assert f"n-{unique}" in ok(ferry("notify", "show", target["id"]))

    ok(ferry("notify", "detach", target["id"], application["id"]))
    assert get_application(api, application["id"])["notification_ids"] == []

    ok(ferry("notify", "attach", target["id"], application["id"]))
    ok(ferry("notify", "rm", f"t-{unique}", "--yes"))
    assert api.get(f"/notifications/{target['id']}").status_code == 404
    assert get_application(api, application["id"])["notification_ids"] == []


# Errors and configuration


@pytest.mark.parametrize(
    "args",
    [
        ("app", "show", "app_0000000000000000"),
        ("app", "history", "no-such-app"),
        ("repo", "show", "repo_0000000000000000"),
        ("agent", "rm", "agt_0000000000000000", "--yes"),
        ("notify", "test", "ntf_0000000000000000"),
    ],
)
def test_command_unknown_id_or_name_exits_1_with_one_error_line(
    ferry: Ferry, args: tuple[str, ...]
) -> None:
    line = one_error_line(ferry(*args))
    assert args[2] in line


def test_command_without_configuration_exits_1_with_hint(ferry: Ferry, tmp_path: Path) -> None:
    result = ferry(
        "status", env={"FERRY_API_URL": None, "FERRY_TOKEN": None, "FERRY_HOME": str(tmp_path)}
    )
    line = one_error_line(result)
    assert "FERRY_API_URL" in line
    assert "ferry up" in line


def test_command_with_local_json_uses_it(ferry: Ferry, stack: LocalStack, tmp_path: Path) -> None:
    assert stack.state is not None
    (tmp_path / "local.json").write_text(
        json.dumps({"api_url": stack.api_url, "token": stack.state.token})
    )
    env: dict[str, str | None] = {"FERRY_API_URL": None, "FERRY_TOKEN": None}
    listed = as_json(ferry("agent", "list", "--json", env={**env, "FERRY_HOME": str(tmp_path)}))
    assert "local" in [a["name"] for a in listed]


def test_command_with_wrong_token_exits_1_with_one_error_line(ferry: Ferry) -> None:
    line = one_error_line(ferry("repo", "list", env={"FERRY_TOKEN": "tok_nope.nope"}))
    assert "FERRY_TOKEN" in line


def test_admin_token_create_prints_a_token_the_api_accepts(
    ferry: Ferry, stack: LocalStack, unique: str
) -> None:
    # The command writes the tokens table directly: it needs the stack's FERRY_ settings, which
    # `environment` leaves out of the CLI's environment.
    settings: dict[str, str | None] = {
        k: v for k, v in os.environ.items() if k.startswith("FERRY_")
    }
    out = ok(ferry("admin", "token", "create", "--name", f"ci-{unique}", env=settings))
    token = out.strip()
    assert re.fullmatch(r"tok_\w+\.\S+", token), out
    repositories = f"{stack.api_url}/api/v1/repositories"

    accepted = httpx.get(repositories, headers={"Authorization": f"Bearer {token}"})
    garbage = httpx.get(repositories, headers={"Authorization": "Bearer tok_garbage.nope"})
    tampered = httpx.get(repositories, headers={"Authorization": f"Bearer {token}x"})

    assert accepted.status_code == 200, accepted.text
    assert isinstance(accepted.json(), list)
    assert (garbage.status_code, tampered.status_code) == (401, 401)
    listed = as_json(ferry("repo", "list", "--json", env={"FERRY_TOKEN": token}))
    assert {r["id"] for r in listed} == {r["id"] for r in accepted.json()}


def test_command_unreachable_api_exits_1_with_one_error_line(ferry: Ferry) -> None:
    line = one_error_line(ferry("agent", "list", env={"FERRY_API_URL": "http://127.0.0.1:9"}))
    assert "cannot reach" in line


# Watch


class Watching:
    """`ferry watch` as a real process (so Ctrl-C is a real SIGINT), its output read as it comes."""

    def __init__(self, stack: LocalStack, *args: str) -> None:
        assert stack.state is not None
        self.process = subprocess.Popen(
            [FERRY, "watch", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=environment(stack),
        )
        self.out: list[str] = []
        self.err: list[str] = []
        self.readers = [
            threading.Thread(target=self._collect, args=(stream, lines), daemon=True)
            for stream, lines in ((self.process.stdout, self.out), (self.process.stderr, self.err))
        ]
        for reader in self.readers:
            reader.start()
        wait_for(
            lambda: any("watching" in line for line in self.err) or self.process.poll() is not None,
            what="watch to connect",
        )
        assert self.process.poll() is None, self.err

    @staticmethod
    def _collect(stream: Any, lines: list[str]) -> None:
        lines.extend(iter(stream.readline, ""))

    def finish(self, timeout: float = 90) -> int:
        code = self.process.wait(timeout=timeout)
        for reader in self.readers:
            reader.join(timeout=10)
        return code


def test_watch_change_while_watching_printed_and_ctrl_c_exits_0(
    stack: LocalStack, api: httpx.Client, unique: str
) -> None:
    watching = Watching(stack, "--timeout", "120")
    agent = create_agent(api, f"w-{unique}")
    line = wait_for(
        lambda: next((line for line in watching.out if f"w-{unique}" in line), None),
        what="the change to be printed",
    )
    assert "agent.created" in line
    assert agent["id"] in line
    watching.process.send_signal(signal.SIGINT)
    assert watching.finish() == 0, watching.err
    assert "Traceback" not in "".join(watching.err)


def test_watch_once_json_prints_one_change_object_and_exits_0(
    stack: LocalStack, api: httpx.Client, unique: str
) -> None:
    watching = Watching(stack, "--json", "--once", "--timeout", "60")
    create_agent(api, f"wj-{unique}")
    assert watching.finish() == 0, watching.err
    (line,) = watching.out
    change = json.loads(line)
    assert change["path"].startswith("/api/v1/")
    assert change["kind"]
    assert isinstance(change["id"], int)
    assert change["id"] > 0


def test_watch_with_wrong_token_exits_1_with_one_error_line(ferry: Ferry) -> None:
    line = one_error_line(ferry("watch", "--json", "--timeout", "30", env={"FERRY_TOKEN": "x"}))
    assert "FERRY_TOKEN" in line


def test_server_sent_events_parser_skips_comments_and_joins_data_lines() -> None:
    stream = [
        "retry: 2000",
        "",
        ": keep-alive",
        "",
        "id: 7",
        "event: update",
        'data: {"path": "/api/v1/agents/agt_1",',
        'data:  "kind": "agent.created"}',
        "",
        "id: 8",
        "data: plain",
        "",
    ]
    events = list(EventStream(stream))
    assert [(e.id, e.event) for e in events] == [("7", "update"), ("8", "message")]
    assert json.loads(events[0].data)["kind"] == "agent.created"
    assert events[1].data == "plain"


def test_event_stream_keeps_an_id_given_without_data_and_dispatches_nothing_for_it() -> None:
    """The API's first block says where the stream starts: `ferry watch` resumes there after a
    drop that came before any change, instead of fetching everything again."""
    stream = EventStream(["retry: 2000", "id: 41", "", ": keep-alive", ""])
    assert list(stream) == []
    assert stream.last_id == "41"
    stream = EventStream(["id: 41", "", "id: 42", "event: update", "data: {}", ""])
    assert [(e.id, e.event) for e in stream] == [("42", "update")]
    assert stream.last_id == "42"
    # A block cut off by a drop before its end was not received: a reconnect must ask for it.
    stream = EventStream(["id: 41", "", "id: 42", "event: update"])
    assert list(stream) == []
    assert stream.last_id == "41"


def test_watch_reconnects_where_a_stream_without_changes_started() -> None:
    """A feed that ends before any change (each quiet long-poll behind API Gateway does) is
    resumed where it started, not from "now" with everything fetched again."""
    asked: list[str | None] = []

    class QuietApi:
        @contextmanager
        def events(self, last_event_id: str | None, **_: object) -> Iterator[EventStream]:
            asked.append(last_event_id)
            if len(asked) == 2:
                reader.stop()
            yield EventStream(["retry: 2000", f"id: {40 + len(asked)}", ""])

        def close(self) -> None:
            pass

    reader = FeedReader(QuietApi(), since=None)  # type: ignore[arg-type]
    reader.run()
    assert asked == [None, "41"]
    connected = [reader.inbox.get_nowait() for _ in range(2)]
    assert connected == [Connected(resumed=False), Connected(resumed=True)]
