"""Secrets Manager: the master secret Ferry encrypts with, read by stage and rotated by stage.

Stages: AWSCURRENT encrypts; AWSPENDING (a rotation in progress) and AWSPREVIOUS stay readable.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ferry import aws
from ferry.errors import TransientError

CURRENT, PENDING, PREVIOUS = "AWSCURRENT", "AWSPENDING", "AWSPREVIOUS"


@dataclass(frozen=True)
class SecretVersions:
    """Which version holds each stage (None: no version does)."""

    current: str | None
    pending: str | None
    previous: str | None


def _client() -> Any:  # boto3-stubs for Secrets Manager are not installed
    return aws.client("secretsmanager")


def secret_value(secret_arn: str, stage: str) -> str | None:
    """The secret's value at `stage`, or None when no version holds that stage."""
    try:
        return str(
            _client().get_secret_value(SecretId=secret_arn, VersionStage=stage)["SecretString"]
        )
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            return None
        raise TransientError(f"could not read the secret ({stage}): {exc}") from exc
    except BotoCoreError as exc:
        raise TransientError(f"could not read the secret ({stage}): {exc}") from exc


def secret_versions(secret_arn: str) -> SecretVersions:
    try:
        versions = _client().list_secret_version_ids(SecretId=secret_arn, IncludeDeprecated=False)
    except (BotoCoreError, ClientError) as exc:
        raise TransientError(f"could not list the secret's versions: {exc}") from exc

    def holding(stage: str) -> str | None:
        return next(
            (v["VersionId"] for v in versions["Versions"] if stage in v.get("VersionStages", [])),
            None,
        )

    return SecretVersions(
        current=holding(CURRENT), pending=holding(PENDING), previous=holding(PREVIOUS)
    )


def stage_pending(secret_arn: str, version_id: str, value: str) -> None:
    """Store `value` as a new version labelled AWSPENDING."""
    try:
        _client().put_secret_value(
            SecretId=secret_arn,
            ClientRequestToken=version_id,
            SecretString=value,
            VersionStages=[PENDING],
        )
    except (BotoCoreError, ClientError) as exc:
        raise TransientError(f"could not stage the new secret: {exc}") from exc


def promote_pending(secret_arn: str, pending_version: str, current_version: str | None) -> None:
    """Make the pending version AWSCURRENT (the old current becomes AWSPREVIOUS)."""
    client = _client()
    try:
        if current_version is None:
            client.update_secret_version_stage(
                SecretId=secret_arn, VersionStage=CURRENT, MoveToVersionId=pending_version
            )
        else:
            client.update_secret_version_stage(
                SecretId=secret_arn,
                VersionStage=CURRENT,
                MoveToVersionId=pending_version,
                RemoveFromVersionId=current_version,
            )
        client.update_secret_version_stage(
            SecretId=secret_arn, VersionStage=PENDING, RemoveFromVersionId=pending_version
        )
    except (BotoCoreError, ClientError) as exc:
        raise TransientError(f"could not promote the new secret: {exc}") from exc
