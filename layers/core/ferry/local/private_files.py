"""Files the local stack keeps in $FERRY_HOME: its secrets (local.json, agent.token, secret.key,
...) and the agent's pid.

Each is replaced whole: written to a sibling created readable by its owner only, flushed to disk,
then renamed over the old one. A reader (the CLI, the agent, `ferry up` starting again) sees the
old content or the new, never an empty or half-written file; a crash mid-write keeps the old
content (for secret.key, losing it would make every encrypted value unreadable).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def write_private(path: Path, text: str) -> None:
    descriptor, staged = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        # mkstemp creates the file with mode 0600: the secret is never readable by others.
        with os.fdopen(descriptor, "w") as staged_file:
            staged_file.write(text)
            staged_file.flush()
            os.fsync(staged_file.fileno())
        os.replace(staged, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(staged)
        raise
