"""Translate pynamodb/botocore failures into domain errors at the data-access boundary."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from pynamodb.exceptions import DoesNotExist, PynamoDBException, TransactWriteError

from ferry.errors import Conflict, FerryError, InvalidInput, NotFound, TransientError


@contextmanager
def translated(what: str, *, on_condition: type[FerryError] = Conflict) -> Iterator[None]:
    """Run a data call; `what` names the record for the error message ("application app_1").

    A failed condition becomes `on_condition`: Conflict for create guards, NotFound for updates
    whose only condition is that the row exists. So does a transaction cancelled by its first
    item's condition: the row `what` names, written with new rows that carry no condition (a
    job with its delivery's log entry, a status with the change announcing it).
    """
    try:
        yield
    except DoesNotExist as exc:
        raise NotFound(f"{what} not found") from exc
    except PynamoDBException as exc:
        condition_failed = exc.cause_response_code == "ConditionalCheckFailedException" or (
            isinstance(exc, TransactWriteError) and _first_condition_failed(exc)
        )
        if condition_failed:
            if on_condition is NotFound:
                raise NotFound(f"{what} not found") from exc
            raise on_condition(f"{what}: the write's condition did not hold") from exc
        if exc.cause_response_code == "ValidationException":
            # DynamoDB refuses the request itself (an empty or malformed key, an item over its
            # size limit): retrying cannot help, so it is the caller's input, not an outage.
            raise InvalidInput(f"{what}: not a value that can be stored or looked up") from exc
        raise TransientError(f"storage error on {what}: {exc.cause_response_code or exc}") from exc


def _first_condition_failed(error: TransactWriteError) -> bool:
    reasons = error.cancellation_reasons
    return bool(reasons) and reasons[0] is not None and reasons[0].code == "ConditionalCheckFailed"
