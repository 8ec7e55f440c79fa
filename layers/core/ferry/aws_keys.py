"""Rotating the master secret where it lives in AWS: a Secrets Manager secret (KMS-encrypted).

1. A new value is staged as AWSPENDING (or the one an interrupted run staged is reused).
   Functions already read AWSPENDING as a previous key, so whatever gets re-encrypted stays
   readable everywhere while the rotation runs (a function that meets an unknown key id reloads).
2. Every encrypted value and name guard is rewritten under it (ferry.rotation).
3. AWSCURRENT moves to it; the old value stays readable as AWSPREVIOUS.
Running it again after a crash resumes at step 2 with the same staged value.
"""

from __future__ import annotations

import os
import uuid
from typing import Any

import boto3

from ferry.rotation import RotationReport, reencrypt_everything
from ferry.security.crypto import generate_key, get_keyring
from ferry.settings import get_settings


def _version_with(versions: list[dict[str, Any]], stage: str) -> str | None:
    return next((v["VersionId"] for v in versions if stage in v.get("VersionStages", [])), None)


def rotate_secrets_manager_key(secret_arn: str) -> RotationReport:
    client = boto3.client("secretsmanager")
    versions = client.list_secret_version_ids(SecretId=secret_arn, IncludeDeprecated=False)[
        "Versions"
    ]
    current_version = _version_with(versions, "AWSCURRENT")
    pending_version = _version_with(versions, "AWSPENDING")
    current = client.get_secret_value(SecretId=secret_arn, VersionStage="AWSCURRENT")[
        "SecretString"
    ]
    if pending_version is None or pending_version == current_version:
        pending_version = str(uuid.uuid4())
        client.put_secret_value(
            SecretId=secret_arn,
            ClientRequestToken=pending_version,
            SecretString=generate_key(),
            VersionStages=["AWSPENDING"],
        )
    pending = client.get_secret_value(SecretId=secret_arn, VersionStage="AWSPENDING")[
        "SecretString"
    ]
    previous = [current]
    if _version_with(versions, "AWSPREVIOUS"):
        previous.append(
            client.get_secret_value(SecretId=secret_arn, VersionStage="AWSPREVIOUS")["SecretString"]
        )

    # This process re-encrypts under the pending value while still reading the older ones.
    os.environ["FERRY_SECRET_KEY"] = pending
    os.environ["FERRY_PREVIOUS_SECRET_KEYS"] = ",".join(previous)
    get_settings.cache_clear()
    get_keyring.cache_clear()
    report = reencrypt_everything()

    client.update_secret_version_stage(
        SecretId=secret_arn,
        VersionStage="AWSCURRENT",
        MoveToVersionId=pending_version,
        RemoveFromVersionId=current_version,
    )
    client.update_secret_version_stage(
        SecretId=secret_arn, VersionStage="AWSPENDING", RemoveFromVersionId=pending_version
    )
    return report
