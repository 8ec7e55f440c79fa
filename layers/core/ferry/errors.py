"""Domain errors. Adapters translate infrastructure errors into these; the API maps them to HTTP."""

from __future__ import annotations


class FerryError(Exception):
    """Base of every error Ferry raises on purpose."""


class NotFound(FerryError):
    """The named resource does not exist."""


class Conflict(FerryError):
    """The request clashes with the current state (duplicate, in flight, ...)."""


class InvalidInput(FerryError):
    """The caller sent something we cannot act on; the message says why."""


class Unauthorized(FerryError):
    """Missing or wrong credential."""


class PayloadTooLarge(InvalidInput):
    """The request body is larger than this endpoint accepts."""


class Unprocessable(InvalidInput):
    """The request is well-formed but its content cannot be acted on (answered 422)."""


class Forbidden(FerryError):
    """A valid credential that is not allowed to do this (answered 403)."""


class RateLimited(FerryError):
    """Too many requests from one source; `retry_after` seconds until the next is accepted."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TransientError(FerryError):
    """Worth retrying: a dependency was briefly unavailable."""


class PermanentError(FerryError):
    """Retrying will not help; record it and move on."""


class GitError(PermanentError):
    """A git operation failed (unknown branch, missing commit or file, unreachable repository)."""
