"""Where the local stack keeps its state."""

from __future__ import annotations

import os
from pathlib import Path


def default_home() -> Path:
    """$FERRY_HOME, else .ferry/ under the working directory."""
    return Path(os.environ.get("FERRY_HOME") or Path.cwd() / ".ferry")
