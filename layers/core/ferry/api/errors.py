"""The one table from domain errors to HTTP answers."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from ferry.errors import (
    Conflict,
    FerryError,
    Forbidden,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    PermanentError,
    RateLimited,
    TransientError,
    Unauthorized,
    Unprocessable,
)

# Most specific first: the first matching row wins.
STATUS_BY_ERROR: dict[type[FerryError], int] = {
    PayloadTooLarge: 413,
    Unprocessable: 422,
    RateLimited: 429,
    Forbidden: 403,
    InvalidInput: 400,
    Unauthorized: 401,
    NotFound: 404,
    Conflict: 409,
    TransientError: 503,
    PermanentError: 500,
}


def status_for(error: FerryError) -> int:
    for error_type, status in STATUS_BY_ERROR.items():
        if isinstance(error, error_type):
            return status
    return 500


def install_error_handlers(app: FastAPI) -> None:
    async def handle(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, FerryError)
        status = status_for(exc)
        headers: dict[str, str] = {}
        if status == 401:
            headers["WWW-Authenticate"] = "Bearer"
        if isinstance(exc, RateLimited):
            headers["Retry-After"] = str(exc.retry_after)
        return JSONResponse({"detail": str(exc)}, status_code=status, headers=headers or None)

    async def invalid_request(_request: Request, exc: Exception) -> JSONResponse:
        # One readable line, like every other error (FastAPI's default is a list of objects).
        assert isinstance(exc, RequestValidationError)
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc'] if part != 'body')}: {error['msg']}"
            for error in exc.errors()
        )
        return JSONResponse({"detail": problems or "invalid request"}, status_code=422)

    app.add_exception_handler(FerryError, handle)
    app.add_exception_handler(RequestValidationError, invalid_request)
