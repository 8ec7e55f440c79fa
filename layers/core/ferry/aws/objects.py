"""S3: the stack's bundle bucket, where deployment bundles too large to travel inside a deploy
request are kept (`bundles/`) and handed to agents (`requests/`, expired by the bucket's
lifecycle rule). The bucket encrypts every object at rest (template.yaml BundleBucket)."""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError

from ferry import aws
from ferry.errors import NotFound, PermanentError, TransientError
from ferry.settings import get_settings

_MISSING = frozenset({"NoSuchKey", "404", "NotFound"})
# Bundles handed to agents: each agent's session may read below its own prefix only, and the
# bucket's lifecycle rule expires them (template.yaml).
REQUESTS_PREFIX = "requests/"
_DELETE_BATCH = 1000  # DeleteObjects takes at most this many keys


def bundle_bucket() -> str:
    """The bucket's name; PermanentError when the stack has none configured."""
    bucket = get_settings().bundle_bucket
    if not bucket:
        raise PermanentError("no bundle bucket is configured (FERRY_BUNDLE_BUCKET)")
    return bucket


def agent_prefix(agent_id: str) -> str:
    """Where the bundles handed to one agent are put."""
    return f"{REQUESTS_PREFIX}{agent_id}/"


def request_key(agent_id: str, request_id: str) -> str:
    """The object that hands one deploy request's bundle to its agent."""
    return f"{agent_prefix(agent_id)}{request_id}.tar.gz"


def put_object(key: str, data: bytes) -> None:
    """Store `data` under `key` (replacing what was there)."""
    try:
        aws.s3().put_object(Bucket=bundle_bucket(), Key=key, Body=data)
    except (BotoCoreError, ClientError) as exc:
        raise TransientError(f"could not store {key} in the bundle bucket: {exc}") from exc


def get_object(key: str) -> bytes:
    """The object under `key`; NotFound when there is none."""
    try:
        response = aws.s3().get_object(Bucket=bundle_bucket(), Key=key)
        return response["Body"].read()
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in _MISSING:
            raise NotFound(f"{key} is not in the bundle bucket") from exc
        raise TransientError(f"could not read {key} from the bundle bucket: {exc}") from exc
    except BotoCoreError as exc:
        raise TransientError(f"could not read {key} from the bundle bucket: {exc}") from exc


def delete_object(key: str) -> None:
    """Delete the object under `key` (nothing happens when there is none)."""
    try:
        aws.s3().delete_object(Bucket=bundle_bucket(), Key=key)
    except (BotoCoreError, ClientError) as exc:
        raise TransientError(f"could not delete {key} from the bundle bucket: {exc}") from exc


def delete_objects(prefix: str, *, keep: frozenset[str] = frozenset()) -> int:
    """Delete every object whose key starts with `prefix`, except the keys in `keep`; returns
    how many went."""
    client = aws.s3()
    try:
        keys = [
            item["Key"]
            for page in client.get_paginator("list_objects_v2").paginate(
                Bucket=bundle_bucket(), Prefix=prefix
            )
            for item in page.get("Contents", [])
            if item["Key"] not in keep
        ]
        for start in range(0, len(keys), _DELETE_BATCH):
            batch = keys[start : start + _DELETE_BATCH]
            client.delete_objects(
                Bucket=bundle_bucket(),
                Delete={"Objects": [{"Key": key} for key in batch], "Quiet": True},
            )
    except (BotoCoreError, ClientError) as exc:
        raise TransientError(f"could not delete {prefix}* from the bundle bucket: {exc}") from exc
    return len(keys)
