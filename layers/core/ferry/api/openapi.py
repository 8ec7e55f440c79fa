"""The OpenAPI document says what the API sends: every error is `{"detail": "<one line>"}`.

FastAPI would describe 422 answers as its list of validation errors, but `api/errors.py` sends
one readable line like every other error; and the errors that any route may answer (bad input,
a body over the limit, an unavailable dependency, ...) are declared on every operation, so a
client generated from the document, or a fuzzer checking answers against it, meets no surprise.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

ERROR_SCHEMA: dict[str, Any] = {
    "title": "Error",
    "type": "object",
    "properties": {"detail": {"type": "string", "title": "Detail"}},
    "required": ["detail"],
}

# What any operation may answer, whatever it does.
_EVERY_OPERATION = {
    "400": "bad input (the reason in `detail`)",
    "413": "request body over the limit (1 MiB)",
    "422": "malformed request (the reason in `detail`)",
    "503": "a dependency is briefly unavailable; retry",
}
# What an operation answers when it needs a token (all but liveness) or names a record.
_AUTHENTICATED = {"401": "missing or wrong token"}
_NAMED = {"404": "no such record"}
_CHANGING = {"409": "conflicts with the current state (duplicate, in flight, still in use)"}

LIVENESS_PATH = "/api/v1/health"
_FASTAPI_VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")


def _error_content() -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}


def _declare_errors(path: str, method: str, operation: dict[str, Any]) -> None:
    expected = dict(_EVERY_OPERATION)
    if path != LIVENESS_PATH:
        expected |= _AUTHENTICATED | _NAMED
    if method in ("post", "put", "patch", "delete"):
        expected |= _CHANGING
    responses: dict[str, Any] = operation.setdefault("responses", {})
    if responses.get("422", {}).get("description") == "Validation Error":  # FastAPI's wording
        responses["422"]["description"] = expected["422"]
    for code, description in expected.items():
        responses.setdefault(code, {"description": description})
    for code, response in responses.items():
        if code.startswith(("4", "5")):
            response["content"] = _error_content()


def error_aware_openapi(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """The `app.openapi` to install: FastAPI's document with the errors described as sent."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = get_openapi(
            title=app.title,
            version=app.version,
            summary=app.summary,
            description=app.description,
            routes=app.routes,
        )
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        for name in _FASTAPI_VALIDATION_SCHEMAS:
            schemas.pop(name, None)
        schemas["Error"] = ERROR_SCHEMA
        for path, item in document.get("paths", {}).items():
            for method, operation in item.items():
                _declare_errors(path, method, operation)
        app.openapi_schema = document
        return document

    return openapi
