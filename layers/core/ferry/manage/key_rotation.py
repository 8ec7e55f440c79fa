"""Rotating the master secret where it lives in AWS: a Secrets Manager secret (KMS-encrypted).

1. A new value is staged as AWSPENDING (or the one an interrupted run staged is reused).
   Functions already read AWSPENDING as a previous key, so whatever gets re-encrypted stays
   readable everywhere while the rotation runs (a function that meets an unknown key id reloads).
2. Every encrypted value and name guard is rewritten under it (ferry.store.rotation).
3. AWSCURRENT moves to it; the old value stays readable as AWSPREVIOUS.
Running it again after a crash resumes at step 2 with the same staged value.
"""

from __future__ import annotations

import os
import uuid

from ferry.aws.secrets import (
    CURRENT,
    PENDING,
    PREVIOUS,
    promote_pending,
    secret_value,
    secret_versions,
    stage_pending,
)
from ferry.errors import PermanentError
from ferry.security.crypto import generate_key, get_keyring
from ferry.settings import get_settings
from ferry.store.rotation import RotationReport, reencrypt_everything


def rotate_secrets_manager_key(secret_arn: str) -> RotationReport:
    versions = secret_versions(secret_arn)
    current = secret_value(secret_arn, CURRENT)
    if current is None:
        raise PermanentError(f"secret {secret_arn} has no current value to rotate from")
    pending_version = versions.pending
    if pending_version is None or pending_version == versions.current:
        pending_version = str(uuid.uuid4())
        stage_pending(secret_arn, pending_version, generate_key())
    pending = secret_value(secret_arn, PENDING)
    if pending is None:
        raise PermanentError(f"secret {secret_arn}: the staged value cannot be read back")
    previous = [current]
    if versions.previous is not None:
        older = secret_value(secret_arn, PREVIOUS)
        if older:
            previous.append(older)

    # This process re-encrypts under the pending value while still reading the older ones.
    os.environ["FERRY_SECRET_KEY"] = pending
    os.environ["FERRY_PREVIOUS_SECRET_KEYS"] = ",".join(previous)
    get_settings.cache_clear()
    get_keyring.cache_clear()
    report = reencrypt_everything()

    promote_pending(secret_arn, pending_version, versions.current)
    return report
