"""STS: short-lived credentials narrowed by a session policy (what agents receive)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ferry import aws
from ferry.errors import TransientError


@dataclass(frozen=True)
class SessionCredentials:
    access_key_id: str
    secret_access_key: str
    session_token: str
    expiration: datetime


def assume_role(
    role_arn: str, session_name: str, seconds: int, policy: dict[str, Any]
) -> SessionCredentials:
    """Credentials of `role_arn` limited to what `policy` also allows."""
    try:
        response = aws.client("sts").assume_role(
            RoleArn=role_arn,
            RoleSessionName=session_name[:64],
            DurationSeconds=seconds,
            Policy=json.dumps(policy),
        )
    except (BotoCoreError, ClientError) as exc:
        raise TransientError(f"could not issue credentials: {exc}") from exc
    credentials = response["Credentials"]
    return SessionCredentials(
        access_key_id=credentials["AccessKeyId"],
        secret_access_key=credentials["SecretAccessKey"],
        session_token=credentials["SessionToken"],
        expiration=credentials["Expiration"],
    )
