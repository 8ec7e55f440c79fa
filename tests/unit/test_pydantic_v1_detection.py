"""FastAPI's refusal of pydantic.v1 models, answered without importing pydantic.v1 until someone
has (ferry/api/pydantic_v1_detection.py)."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings

import pytest
from fastapi import APIRouter
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import PydanticV1NotSupportedError
from pydantic import BaseModel

import ferry.api.routes  # noqa: F401  (installs the detection)

_DECLARES_ROUTES = """
import json, sys
from fastapi import APIRouter
from pydantic import BaseModel
import ferry.api.routes

class Answer(BaseModel):
    ok: bool

router = APIRouter()

@router.get("/answer", response_model=Answer)
def answer() -> Answer:
    return Answer(ok=True)

print(json.dumps("pydantic.v1" in sys.modules))
"""


def test_declaring_a_route_with_a_response_model_does_not_import_pydantic_v1() -> None:
    completed = subprocess.run(
        [sys.executable, "-c", _DECLARES_ROUTES], capture_output=True, text=True, check=True
    )

    assert json.loads(completed.stdout) is False


def test_a_pydantic_v1_model_is_still_refused_once_pydantic_v1_is_imported() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pydantic import v1

    class Old(v1.BaseModel):
        ok: bool

    router = APIRouter()
    with pytest.raises(PydanticV1NotSupportedError):

        @router.get("/old", response_model=Old)
        def old() -> None:
            return None

    with pytest.raises(PydanticV1NotSupportedError):
        jsonable_encoder(Old(ok=True))


def test_pydantic_v2_models_are_encoded_and_declared_as_before() -> None:
    class New(BaseModel):
        ok: bool

    router = APIRouter()

    @router.get("/new", response_model=New)
    def new() -> New:
        return New(ok=True)

    assert jsonable_encoder(New(ok=True)) == {"ok": True}


def test_a_fastapi_without_these_functions_still_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    from ferry.api import pydantic_v1_detection

    monkeypatch.setattr(
        pydantic_v1_detection,
        "_DETECTIONS",
        (("fastapi._compat.moved_away", "is_pydantic_v1_model_class"), ("fastapi", "renamed")),
    )

    pydantic_v1_detection.install()  # nothing to wrap: FastAPI's own detection stays
