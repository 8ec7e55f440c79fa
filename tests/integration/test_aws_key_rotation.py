"""Key rotation where the master secret lives in Secrets Manager (as template.yaml deploys it),
against moto's Secrets Manager and the session's tables."""

from __future__ import annotations

import os
from pathlib import Path

import boto3
import httpx

from ferry.manage.key_rotation import rotate_secrets_manager_key
from ferry.security.crypto import MasterKey, get_keyring
from ferry.settings import get_settings
from tests.helpers import commit, compose, create_agent, create_application, create_repository


def _use_secrets_manager(arn: str) -> None:
    os.environ["FERRY_SECRET_KEY"] = ""
    os.environ["FERRY_PREVIOUS_SECRET_KEYS"] = ""
    os.environ["FERRY_SECRET_KEY_SECRET_ARN"] = arn
    get_settings.cache_clear()
    get_keyring.cache_clear()


def test_rotate_secrets_manager_key_promotes_new_value_and_keeps_data_readable(
    api: httpx.Client, git_repo: Path, unique: str
) -> None:
    commit(git_repo, "app/compose.yaml", compose())
    repository = create_repository(api, git_repo, sync_type="manual")
    agent = create_agent(api, f"host-{unique}")
    application = create_application(
        api, name=f"Vault {unique}", repository_id=repository["id"], agent_id=agent["id"]
    )
    secrets = boto3.client("secretsmanager")
    old = get_settings().secret_key
    arn = secrets.create_secret(Name=f"ferry-master-{unique}", SecretString=old)["ARN"]
    try:
        first = rotate_secrets_manager_key(arn)
        second = rotate_secrets_manager_key(arn)  # a second rotation is harmless too

        # Always by stage: moto's default version does not follow staging-label moves.
        current = secrets.get_secret_value(SecretId=arn, VersionStage="AWSCURRENT")["SecretString"]
        previous = secrets.get_secret_value(SecretId=arn, VersionStage="AWSPREVIOUS")[
            "SecretString"
        ]
        stages = [
            v["VersionStages"] for v in secrets.list_secret_version_ids(SecretId=arn)["Versions"]
        ]
        _use_secrets_manager(arn)  # as a deployed function would load its keys

        assert current not in (old, previous)
        assert not any("AWSPENDING" in s for s in stages)
        assert first.rows_reencrypted > 0 and second.rows_reencrypted > 0
        assert get_keyring().current.kid == MasterKey(current).kid
        assert api.get(f"/applications/{application['id']}").json()["name"] == f"Vault {unique}"
        clash = api.post(
            "/applications",
            json={
                "name": f"vault {unique}",
                "repository_id": repository["id"],
                "agent_id": agent["id"],
                "path": "app/compose.yaml",
            },
        )
        assert clash.status_code == 409
    finally:
        # Leave the session on a plain key again: the newest value, everything is under it.
        final = secrets.get_secret_value(SecretId=arn, VersionStage="AWSCURRENT")["SecretString"]
        os.environ["FERRY_SECRET_KEY"] = final
        os.environ["FERRY_SECRET_KEY_SECRET_ARN"] = ""
        get_settings.cache_clear()
        get_keyring.cache_clear()
