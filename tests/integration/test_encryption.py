"""Encryption at rest and `rotate-key`, against the tables as DynamoDB holds them."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest

from ferry.domain.models import CredentialKind, RepositoryCredentials
from ferry.local.stack import LocalStack
from ferry.security.crypto import generate_key, get_keyring
from ferry.settings import get_settings
from ferry.store.applications import get_application as get_stored_application
from ferry.store.repositories import get_credentials, get_repository_and_webhook_secret
from ferry.store.rotation import reencrypt_everything
from tests.helpers import (
    ScriptedAgent,
    agent_queue_url,
    commit,
    compose,
    create_agent,
    wait_for,
    wait_for_idle_sync,
    wait_for_status,
)


def _raw(table: str, key: dict[str, str]) -> dict[str, Any]:
    item = boto3.client("dynamodb").get_item(
        TableName=table, Key={k: {"S": v} for k, v in key.items()}, ConsistentRead=True
    )["Item"]
    return {name: next(iter(value.values())) for name, value in item.items()}


def _all_raw(table: str) -> list[dict[str, Any]]:
    pages = (
        boto3.client("dynamodb")
        .get_paginator("scan")
        .paginate(TableName=table, ConsistentRead=True)
    )
    return [
        {k: next(iter(v.values())) for k, v in item.items()}
        for page in pages
        for item in page["Items"]
    ]


@pytest.fixture
def stored(api: httpx.Client, git_repo: Path, unique: str) -> dict[str, Any]:
    """A repository with credentials, an application whose compose file is stored, a target."""
    commit(git_repo, "app/compose.yaml", compose(greeting=f"plain-{unique}"))
    repository = api.post(
        "/repositories",
        json={
            "url": f"file://{git_repo}",
            "sync_type": "manual",
            "auth": {"kind": "basic", "username": "ci", "secret": f"pw-{unique}"},
        },
    ).json()
    agent = create_agent(api, f"host-{unique}")
    application = api.post(
        "/applications",
        json={
            "name": f"Secret Name {unique}",
            "repository_id": repository["id"],
            "agent_id": agent["id"],
            "path": "app/compose.yaml",
        },
    ).json()
    wait_for(
        # The sync records the compose file with the commit it deploys (no agent answers here).
        lambda: api.get(f"/applications/{application['id']}").json()["target_commit"],
        what="first sync",
    )
    target = api.post(
        "/notifications", json={"name": "receiver", "url": f"json://user:tok-{unique}@127.0.0.1:9/"}
    ).json()
    return {
        "repository": repository,
        "application": application,
        "target": target,
        "unique": unique,
    }


def test_encryption_sensitive_attributes_are_not_stored_in_clear(stored: dict[str, Any]) -> None:
    settings, unique = get_settings(), stored["unique"]
    application = _raw(settings.applications_table, {"id": stored["application"]["id"]})
    repository = _raw(settings.repositories_table, {"id": stored["repository"]["id"]})
    target = _raw(settings.notification_targets_table, {"id": stored["target"]["id"]})

    for value in (
        application["name"],
        application["compose_file"],
        repository["webhook_secret"],
        repository["credentials"],
        target["url"],
    ):
        assert value.startswith(f"v1.{get_keyring().current.kid}.")
    assert unique not in json.dumps([application, repository, target])
    assert stored["repository"]["webhook_secret"] not in json.dumps(repository)
    assert application["name_hash"] == get_keyring().name_hash(f"secret name {unique}")


def test_rotate_key_reencrypts_everything_and_keeps_names_unique(
    stack: LocalStack, api: httpx.Client, git_repo: Path, stored: dict[str, Any]
) -> None:
    settings = get_settings()
    repository_id, application_id = stored["repository"]["id"], stored["application"]["id"]
    # A second deploy of a changed file, so that the application has a previous compose file.
    first_compose = compose(greeting=f"plain-{stored['unique']}")
    scripted = ScriptedAgent(agent_queue_url(stored["application"]["agent_id"]))
    scripted.succeed(scripted.take())
    wait_for_status(api, application_id, "synced")
    wait_for_idle_sync(repository_id)
    second_compose = compose(greeting=f"second-{stored['unique']}")
    head = commit(git_repo, "app/compose.yaml", second_compose)
    assert api.post(f"/repositories/{repository_id}/sync").status_code == 202
    deploy = scripted.take()
    assert deploy.request.commit == head
    scripted.succeed(deploy)
    wait_for_status(api, application_id, "synced", commit=head)
    wait_for_idle_sync(repository_id)
    assert get_stored_application(application_id).previous_compose_file == first_compose
    old_secret, new_secret = settings.secret_key, generate_key()

    def use_keys(current: str, previous: str) -> None:
        # For good: after the rotation the whole session's data is under the new key.
        os.environ["FERRY_SECRET_KEY"] = current
        os.environ["FERRY_PREVIOUS_SECRET_KEYS"] = previous
        get_settings.cache_clear()
        get_keyring.cache_clear()

    use_keys(new_secret, old_secret)
    first = reencrypt_everything()
    second = reencrypt_everything()  # running it twice is harmless
    use_keys(new_secret, "")  # the old key is gone: everything must be readable without it

    new_kid = get_keyring().current.kid
    for table, fields in (
        (settings.applications_table, ("name", "compose_file", "previous_compose_file")),
        (settings.repositories_table, ("webhook_secret", "credentials")),
        (settings.notification_targets_table, ("url",)),
    ):
        for item in _all_raw(table):
            for field in fields:
                if field in item:
                    assert item[field].startswith(f"v1.{new_kid}."), (table, field)
    assert first.rows_reencrypted > 0 and first.guards_moved > 0
    assert second.guards_moved == 0
    application = api.get(f"/applications/{stored['application']['id']}").json()
    assert application["name"] == f"Secret Name {stored['unique']}"
    readable = get_stored_application(application_id)
    assert (readable.compose_file, readable.previous_compose_file) == (
        second_compose,
        first_compose,
    )
    assert get_credentials(repository_id) == RepositoryCredentials(
        kind=CredentialKind.BASIC, username="ci", secret=f"pw-{stored['unique']}"
    )
    _repository, secret = get_repository_and_webhook_secret(repository_id)
    assert secret == stored["repository"]["webhook_secret"]
    clash = api.post(
        "/applications",
        json={
            "name": f"secret name {stored['unique']}",
            "repository_id": stored["repository"]["id"],
            "agent_id": stored["application"]["agent_id"],
            "path": "app/compose.yaml",
        },
    )
    assert clash.status_code == 409
    assert api.get("/repositories").status_code == 200
    assert os.environ["FERRY_SECRET_KEY"] == new_secret
