"""Rotating the local stack's master secret ($FERRY_HOME/secret.key).

The new key is written to secret.key.next before anything is re-encrypted, so a run that stops
half way resumes with the same key; only when every value is rewritten does it become
secret.key, the old one moving to secret.key.previous (kept readable, comma-separated).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import httpx

from ferry.errors import Conflict
from ferry.local.private_files import write_private
from ferry.store.rotation import RotationReport


def _read(path: Path) -> str:
    return path.read_text().strip() if path.exists() else ""


def stack_is_running(home: Path) -> bool:
    try:
        saved = json.loads((home / "local.json").read_text())
    except (FileNotFoundError, ValueError):
        return False  # never started, or a file an older Ferry left half-written
    api_url = saved.get("api_url", "") if isinstance(saved, dict) else ""
    if not api_url:
        return False
    try:
        return httpx.get(f"{api_url}/api/v1/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def rotate_local_key(home: Path) -> RotationReport:
    from ferry.local.cloud import LocalCloud, LocalOptions
    from ferry.security.crypto import generate_key
    from ferry.store.rotation import reencrypt_everything

    if stack_is_running(home):
        raise Conflict("the local stack is running: stop `ferry up` first, then rotate the key")
    current = _read(home / "secret.key")
    if not current:
        raise Conflict(f"no key in {home / 'secret.key'}: nothing to rotate")
    pending_file = home / "secret.key.next"
    new = _read(pending_file)
    if not new:
        new = generate_key()
        write_private(pending_file, new)
    previous = [k for k in _read(home / "secret.key.previous").split(",") if k]
    readable = [current, *previous]

    os.environ["FERRY_SECRET_KEY"] = new
    os.environ["FERRY_PREVIOUS_SECRET_KEYS"] = ",".join(readable)
    cloud = LocalCloud(LocalOptions(home=home, api_port=0, recover_interrupted_work=False))
    cloud.start()
    try:
        report = reencrypt_everything()
    finally:
        cloud.stop()
    write_private(home / "secret.key.previous", ",".join(readable))
    write_private(home / "secret.key", new)
    pending_file.unlink()
    return report
