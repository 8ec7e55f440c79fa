"""Keep the local cloud's tables across restarts: scan them to a JSON file, load them back."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import boto3


def dump_tables(tables: dict[str, str], path: Path) -> int:
    """Write every item of `tables` (logical id → table name) to `path`; returns the item count."""
    client = boto3.client("dynamodb")
    snapshot: dict[str, list[dict[str, Any]]] = {}
    for logical_id, table_name in tables.items():
        items: list[dict[str, Any]] = []
        for page in client.get_paginator("scan").paginate(
            TableName=table_name, ConsistentRead=True
        ):
            items.extend(page["Items"])
        snapshot[logical_id] = items
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(snapshot))
    os.chmod(temporary, 0o600)
    temporary.replace(path)  # atomic: a crash mid-write keeps the previous snapshot
    return sum(len(items) for items in snapshot.values())


def load_tables(tables: dict[str, str], path: Path) -> int:
    """Put the snapshot's items back; returns the item count (0 when there is no snapshot)."""
    if not path.exists():
        return 0
    snapshot: dict[str, list[dict[str, Any]]] = json.loads(path.read_text())
    client = boto3.client("dynamodb")
    count = 0
    for logical_id, items in snapshot.items():
        table_name = tables.get(logical_id)
        if table_name is None:
            continue  # a table the template no longer has
        for start in range(0, len(items), 25):
            batch = items[start : start + 25]
            request = {table_name: [{"PutRequest": {"Item": item}} for item in batch]}
            while request:
                response = client.batch_write_item(RequestItems=request)  # type: ignore[arg-type]
                request = response.get("UnprocessedItems", {})  # type: ignore[assignment]
            count += len(batch)
    return count
