"""moto's DynamoDB, one request at a time.

moto applies a TransactWriteItems item by item and, when one fails, puts back a deep copy of each
table it took before starting. With requests served on several threads (the API, the pollers,
the Step Functions interpreter), another request's write that lands in between is wiped by that
restore, and the copy itself can fail ("dictionary changed size during iteration"). Concurrent
creates of one name then ended with two records. DynamoDB's own transactions are atomic and
isolated; to keep that promise locally, every data call of moto's DynamoDB backend runs under one
process-wide lock. The cost is nothing measurable at the local stack's load.
"""

from __future__ import annotations

import functools
import threading
from typing import Any

from moto.dynamodb.models import DynamoDBBackend

_LOCK = threading.RLock()
_MARKER = "_ferry_serialized"

# The data plane: reads are included so that none sees a transaction half-applied.
_METHODS = (
    "put_item",
    "get_item",
    "update_item",
    "delete_item",
    "query",
    "scan",
    "batch_get_item",
    "batch_write_item",
    "transact_write_items",
    "transact_get_items",
    "execute_statement",
    "execute_transaction",
    "batch_execute_statement",
)


def _serialized(method: Any) -> Any:
    @functools.wraps(method)
    def call(*args: Any, **kwargs: Any) -> Any:
        with _LOCK:
            return method(*args, **kwargs)

    setattr(call, _MARKER, True)
    return call


def serialize_dynamodb() -> None:
    """Wrap moto's DynamoDB backend methods once per process (idempotent)."""
    for name in _METHODS:
        method = getattr(DynamoDBBackend, name, None)
        if method is not None and not getattr(method, _MARKER, False):
            setattr(DynamoDBBackend, name, _serialized(method))
