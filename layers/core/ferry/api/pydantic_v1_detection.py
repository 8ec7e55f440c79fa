"""FastAPI's pydantic.v1 detection, without importing pydantic.v1.

FastAPI (0.165) asks, for every route's response model and for objects it encodes, whether the
value is a pydantic.v1 model, only to refuse it (v1 support was dropped). To ask, it imports the
whole `pydantic.v1` package: about 18 ms of every API cold start here (`make bench`), 44 ms on
Lambda arm64 as measured upstream (fastapi/fastapi pull request 16374, not merged).

A pydantic.v1 model cannot exist before `pydantic.v1` is imported, so until then the answer is
"no" without importing it; once anything has imported it, FastAPI's own check runs. Ferry never
uses pydantic.v1, so its answers are unchanged. A FastAPI release that moves these functions
leaves its own detection in place (the API still starts, and imports pydantic.v1 again): then
tests/unit/test_pydantic_v1_detection.py and test_cold_start.py fail and say so.
"""

from __future__ import annotations

import functools
import importlib
import sys
from collections.abc import Callable
from typing import Any

_V1 = "pydantic.v1"

# annotation_is_pydantic_v1 looks the first up in its module at every call; jsonable_encoder
# imported the second by name, so it is replaced where the encoder looks it up.
_DETECTIONS = (
    ("fastapi._compat.shared", "is_pydantic_v1_model_class"),
    ("fastapi.encoders", "is_pydantic_v1_model_instance"),
)


def _unless_v1_unimported(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
    @functools.wraps(check)
    def detect(value: Any) -> bool:
        return _V1 in sys.modules and check(value)

    return detect


def install() -> None:
    """Wrap FastAPI's two detections (idempotent). Call before any route is declared."""
    for module_name, name in _DETECTIONS:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        check = getattr(module, name, None)
        if callable(check) and not hasattr(check, "__wrapped__"):
            setattr(module, name, _unless_v1_unimported(check))
