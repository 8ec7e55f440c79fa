"""Application names are unique per agent (and so are compose projects), by transaction."""

from __future__ import annotations

import hashlib
import hmac
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from ferry.security.crypto import get_keyring
from ferry.store.applications import delete_application
from ferry.store.guards import application_name_key
from ferry.store.rotation import reindex_names
from ferry.store.tables import ApplicationRow, NameGuardRow
from tests.helpers import commit, compose, create_agent, create_repository


def _body(name: str, repository_id: str, agent_id: str) -> dict[str, str]:
    return {
        "name": name,
        "repository_id": repository_id,
        "agent_id": agent_id,
        "path": "app/compose.yaml",
    }


def test_application_name_differing_in_case_and_space_answers_409(
    api: httpx.Client, git_repo: Path, unique: str
) -> None:
    commit(git_repo, "app/compose.yaml", compose())
    repository = create_repository(api, git_repo, sync_type="manual")
    agent = create_agent(api, f"host-{unique}")
    first = api.post(
        "/applications", json=_body(f"Billing Service {unique}", repository["id"], agent["id"])
    )
    assert first.status_code == 201

    again = api.post(
        "/applications",
        json=_body(f" billing service {unique.upper()} ", repository["id"], agent["id"]),
    )

    assert again.status_code == 409
    assert "already exists" in again.json()["detail"]
    names = [a["name"] for a in api.get("/applications").json()]
    assert names.count(f"Billing Service {unique}") == 1


def test_application_same_name_on_another_agent_is_fine(
    api: httpx.Client, git_repo: Path, unique: str
) -> None:
    commit(git_repo, "app/compose.yaml", compose())
    repository = create_repository(api, git_repo, sync_type="manual")
    one, two = create_agent(api, f"one-{unique}"), create_agent(api, f"two-{unique}")
    assert (
        api.post(
            "/applications", json=_body(f"web {unique}", repository["id"], one["id"])
        ).status_code
        == 201
    )
    assert (
        api.post(
            "/applications", json=_body(f"web {unique}", repository["id"], two["id"])
        ).status_code
        == 201
    )


def test_application_names_sharing_a_compose_project_answer_409(
    api: httpx.Client, git_repo: Path, unique: str
) -> None:
    commit(git_repo, "app/compose.yaml", compose())
    repository = create_repository(api, git_repo, sync_type="manual")
    agent = create_agent(api, f"host-{unique}")
    assert (
        api.post(
            "/applications", json=_body(f"My App {unique}", repository["id"], agent["id"])
        ).status_code
        == 201
    )

    clash = api.post("/applications", json=_body(f"my-app-{unique}", repository["id"], agent["id"]))

    assert clash.status_code == 409
    assert "compose project" in clash.json()["detail"]


def test_application_concurrent_creates_of_one_name_yield_one_201(
    api: httpx.Client, git_repo: Path, unique: str
) -> None:
    commit(git_repo, "app/compose.yaml", compose())
    repository = create_repository(api, git_repo, sync_type="manual")
    agent = create_agent(api, f"host-{unique}")
    body = _body(f"race {unique}", repository["id"], agent["id"])

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = sorted(
            pool.map(lambda _: api.post("/applications", json=body).status_code, range(8))
        )

    assert statuses == [201] + [409] * 7
    assert [a["name"] for a in api.get("/applications").json()].count(f"race {unique}") == 1


def test_application_rename_moves_its_name_guard(
    api: httpx.Client, git_repo: Path, unique: str
) -> None:
    commit(git_repo, "app/compose.yaml", compose())
    repository = create_repository(api, git_repo, sync_type="manual")
    agent = create_agent(api, f"host-{unique}")
    created = api.post(
        "/applications", json=_body(f"old {unique}", repository["id"], agent["id"])
    ).json()
    other = api.post(
        "/applications", json=_body(f"taken {unique}", repository["id"], agent["id"])
    ).json()

    renamed = api.patch(f"/applications/{created['id']}", json={"name": f"New {unique}"})
    refused = api.patch(f"/applications/{created['id']}", json={"name": f"TAKEN {unique}"})

    # The compose project stays the one the application was created with (issue 11).
    assert renamed.status_code == 200 and renamed.json()["project_name"] == f"old-{unique}"
    assert refused.status_code == 409
    assert api.get(f"/applications/{created['id']}").json()["name"] == f"New {unique}"
    # The old name is free again, but not its project (still the renamed application's); the
    # new name is held.
    old_again = api.post(
        "/applications", json=_body(f"old {unique}", repository["id"], agent["id"])
    )
    assert old_again.status_code == 409 and "compose project" in old_again.json()["detail"]
    assert (
        api.post(
            "/applications", json=_body(f"new {unique}", repository["id"], agent["id"])
        ).status_code
        == 409
    )
    assert api.get(f"/applications/{other['id']}").json()["name"] == f"taken {unique}"


def test_agent_names_are_unique_ignoring_case(api: httpx.Client, unique: str) -> None:
    create_agent(api, f"Edge {unique}")
    assert api.post("/agents", json={"name": f"Edge {unique}"}).status_code == 409
    assert api.post("/agents", json={"name": f" edge {unique}"}).status_code == 409


def _legacy_hash(name: str) -> str:
    """The blind index as versions before NFKC computed it: trimmed and lowercased only."""
    key = get_keyring().current.index_key
    return hmac.new(key, name.strip().lower().encode(), hashlib.sha256).hexdigest()


def _make_legacy(application_id: str) -> str:
    """Store the application's name guard as an earlier version did; returns that guard's key."""
    row = ApplicationRow.get(application_id, consistent_read=True)
    legacy = _legacy_hash(row.name)
    NameGuardRow(id=application_name_key(row.agent_id, row.name_hash)).delete()
    NameGuardRow(id=application_name_key(row.agent_id, legacy), owner_id=row.id).save()
    row.update(actions=[ApplicationRow.name_hash.set(legacy)])
    return application_name_key(row.agent_id, legacy)


def _guards_of(owner_id: str) -> set[str]:
    return {g.id for g in NameGuardRow.scan(NameGuardRow.owner_id == owner_id)}


FULLWIDTH_WEB = "\uff37\uff45\uff42"  # "Web" in fullwidth letters: NFKC folds it to "Web"


def test_application_names_stored_before_nfkc_are_reindexed_and_released(
    api: httpx.Client, git_repo: Path, unique: str
) -> None:
    commit(git_repo, "app/compose.yaml", compose())
    repository = create_repository(api, git_repo, sync_type="manual")
    agent = create_agent(api, f"host-{unique}")
    created = api.post(
        "/applications", json=_body(f"{FULLWIDTH_WEB}-{unique}", repository["id"], agent["id"])
    )
    assert created.status_code == 201, created.text
    look_alike = api.post(
        "/applications", json=_body(f"web-{unique}", repository["id"], agent["id"])
    )
    assert look_alike.status_code == 409, look_alike.text
    old = created.json()["id"]
    legacy_key = _make_legacy(old)

    report = reindex_names()

    assert report.guards_moved >= 1
    assert legacy_key not in _guards_of(old)
    again = api.post("/applications", json=_body(f"web-{unique}", repository["id"], agent["id"]))
    assert again.status_code == 409, again.text

    # A rename or a delete releases the guard the row was stored under, legacy or not.
    legacy_key = _make_legacy(old)
    renamed = api.patch(f"/applications/{old}", json={"name": f"renamed-{unique}"})
    assert renamed.status_code == 200, renamed.text
    assert legacy_key not in _guards_of(old)
    _make_legacy(old)
    delete_application(old)
    assert _guards_of(old) == set()
