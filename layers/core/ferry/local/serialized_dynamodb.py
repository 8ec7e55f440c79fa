"""moto's DynamoDB, one request at a time.

moto applies a TransactWriteItems item by item and, when one fails, puts back a deep copy of each
table it took before starting. With requests served on several threads (the API, the pollers,
the Step Functions interpreter), another request's write that lands in between is wiped by that
restore, and the copy itself can fail ("dictionary changed size during iteration"). Concurrent
creates of one name then ended with two records. DynamoDB's own transactions are atomic and
isolated; to keep that promise locally, every data call of moto's DynamoDB backend runs under one
process-wide lock. The cost is nothing measurable at the local stack's load.

Under that lock a transaction needs no copy of whole tables to be undone: moto's deep copy of
every table a transaction names cost as much as the tables held (a webhook's job and delivery
log, written together, copied the whole jobs and deliveries tables: most of the API's CPU after a
few hundred deliveries). The items the transaction names are copied before it runs instead, and
put back as they were when it fails; moto's own steps (checks, conditions, errors) are unchanged,
its copies of tables are references. Streams are not undone (Ferry's tables have none).
"""

from __future__ import annotations

import copy
import functools
import importlib
import threading
from typing import Any

from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.models.table import Table

# moto's DynamoDB backend module (it carries no types).
_backend_module: Any = importlib.import_module("moto.dynamodb.models")

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
    transact = DynamoDBBackend.transact_write_items
    if not getattr(transact, _MARKER, False):
        DynamoDBBackend.transact_write_items = _undone_item_by_item(transact)  # type: ignore[method-assign]
        _backend_module.copy = _TablesByReference()
    for name in _METHODS:
        method = getattr(DynamoDBBackend, name, None)
        if method is not None and not getattr(method, _MARKER, False):
            setattr(DynamoDBBackend, name, _serialized(method))


class _TablesByReference:
    """The `copy` module as moto's backend module sees it: a deep copy of a table is the table
    itself (a failed transaction is undone item by item: `_undone_item_by_item`)."""

    @staticmethod
    def deepcopy(value: Any, memo: dict[int, Any] | None = None) -> Any:
        return value if isinstance(value, Table) else copy.deepcopy(value, memo)


def _undone_item_by_item(moto_transact: Any) -> Any:
    @functools.wraps(moto_transact)
    def transact_write_items(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> Any:
        with _LOCK:
            before = [_item_before(self, item) for item in transact_items]
            try:
                return moto_transact(self, transact_items)
            except Exception:
                for saved in reversed(before):
                    if saved is not None:
                        _put_back(*saved)
                raise

    setattr(transact_write_items, _MARKER, True)
    return transact_write_items


def _item_before(
    backend: DynamoDBBackend, transact_item: dict[str, Any]
) -> tuple[Table, DynamoType, DynamoType | None, Any] | None:
    """The table, key and a copy of the item (None: absent) one operation of a transaction
    names; None when it names no table or no key moto would act on (moto refuses it)."""
    try:
        (operation, request), *_ = transact_item.items()
        table = backend.tables[request["TableName"]]
        key = request["Item"] if operation == "Put" else request["Key"]
        hash_key = DynamoType(key[table.hash_key_attr])
        range_key = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
    except (AttributeError, KeyError, TypeError, ValueError):
        return None
    current = table.items.get(hash_key)
    if range_key is not None:
        current = current.get(range_key) if current else None
    return table, hash_key, range_key, copy.deepcopy(current)


def _put_back(table: Table, hash_key: DynamoType, range_key: DynamoType | None, item: Any) -> None:
    if range_key is None:
        if item is None:
            table.items.pop(hash_key, None)
        else:
            table.items[hash_key] = item
    elif item is None:
        if hash_key in table.items:
            table.items[hash_key].pop(range_key, None)
    else:
        table.items[hash_key][range_key] = item
