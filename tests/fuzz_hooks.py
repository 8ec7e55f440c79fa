"""schemathesis hooks for tests/integration/test_fuzz.py: the run never aims at a record that
existed before it (the session's other tests own those), only at what it made itself."""

from __future__ import annotations

import os
from typing import Any

import schemathesis

_PROTECTED = frozenset(filter(None, os.environ.get("FERRY_FUZZ_PROTECTED_IDS", "").split(",")))


@schemathesis.hook
def filter_path_parameters(context: Any, path_parameters: dict[str, Any] | None) -> bool:
    return not _PROTECTED.intersection(str(v) for v in (path_parameters or {}).values())
