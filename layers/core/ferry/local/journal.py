"""Keep the local cloud's tables across restarts, write-through: a journal of item writes.

moto keeps DynamoDB in this process's memory. Every write its backend applies — PutItem,
UpdateItem, DeleteItem, each item of a BatchWriteItem, a whole TransactWriteItems — is appended
to `$FERRY_HOME/state/journal.jsonl` as the new images of the items it touched, inside the
backend call: before moto answers, so whatever a client was told is in the file. The threat is a
crash of the process (SIGKILL, an exception), not a power cut: a flushed `write()` is in the
kernel's hands and survives the process, so there is no fsync.

A consistent point. Writes are serialised by one lock held around "apply, then append" (moto's
backend serialises each call itself, serialized_dynamodb.py, but not the line written after it),
so the journal's order is the order in which writes took effect and every prefix of it is a state
the tables really had; a transaction is one line, so it is replayed whole or (torn by a crash
mid-line) not at all.

At start the journal is replayed into the fresh tables, then compacted: rewritten as one line per
item, in a temporary file renamed over it. It is compacted again when it has grown well past
its last compacted size, and on a clean stop. Nothing runs while the stack is idle.

PartiQL statements can write any item without naming it, so they are refused while the journal
is installed (Ferry never sends one).
"""

from __future__ import annotations

import fcntl
import inspect
import json
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.table import Table
from moto.dynamodb.models.utilities import DynamoJsonEncoder

# An item's place: (logical table id, its key as canonical JSON).
Place = tuple[str, str]
Change = tuple[str, dict[str, Any], dict[str, Any] | None]  # logical id, key, image or None

_WRITES = ("put_item", "update_item", "delete_item", "transact_write_items")
_PARTIQL = ("execute_statement", "execute_transaction", "batch_execute_statement")
# Compact once the journal holds this many bytes beyond its last compacted size (and at least
# as many as that size again): a few compactions over a long session, each a quick rewrite.
COMPACT_AFTER_BYTES = 8 * 1024 * 1024


class JournalCorrupt(RuntimeError):
    """A line before the journal's last one cannot be read: replaying past it would lose writes."""


class JournalInUse(OSError):
    """Another process keeps this journal: two stacks on one state folder would corrupt it."""


class PartiqlNotJournaled(RuntimeError):
    """A PartiQL statement reached the journaled backend."""


def _dump(value: Any) -> str:
    return json.dumps(value, cls=DynamoJsonEncoder, sort_keys=True, separators=(",", ":"))


class TableJournal:
    """The write-through journal of one moto DynamoDB backend's tables.

    `tables` maps logical ids (template.yaml) to physical names: the journal speaks logical ids,
    so it stays valid whatever names a later stack gives its tables.
    """

    def __init__(
        self,
        backend: DynamoDBBackend,
        tables: Mapping[str, str],
        path: Path,
        *,
        compact_after_bytes: int = COMPACT_AFTER_BYTES,
    ) -> None:
        self.backend = backend
        self.tables = dict(tables)
        self.path = path
        self.compact_after_bytes = compact_after_bytes
        self._logical = {physical: logical for logical, physical in self.tables.items()}
        # Held around every write and its journal line: whoever holds it sees the tables and
        # the journal at one consistent point.
        self.lock = threading.RLock()
        self._nested = threading.local()
        self._file: Any = None
        self._written = 0  # bytes in the journal file
        self._compacted = 0  # its size right after the last compaction
        # name -> (this journal's hook, what the backend instance held before it: None when
        # nothing, so the class's method showed). Another journal on the same backend (tests run
        # a second stack in one process) may have installed its hook first, and gets it back.
        self._installed: dict[str, tuple[Any, Any]] = {}
        self._claim: Any = None  # the open lock file while this journal is installed

    # -- start: replay, compact, hook ----------------------------------------------------------

    def replay(self) -> int:
        """Apply the journal to the (empty) tables; returns how many item changes it held."""
        if not self.path.exists():
            return 0
        count = 0
        for changes in self._read(self.path):
            for logical, key, image in changes:
                table = self._table(logical)
                if table is None:
                    continue  # a table the template no longer has
                self._apply(table, key, image)
                count += 1
        return count

    def load_items(self, logical: str, items: list[dict[str, Any]]) -> int:
        """Put whole items into a table (an older stack's snapshot); returns how many."""
        table = self._table(logical)
        if table is None:
            return 0
        for item in items:
            table.put_item(item)
        return len(items)

    def install(self) -> None:
        """Compact what the tables hold now, then journal every write from here on
        (JournalInUse when another process keeps this journal)."""
        with self.lock:
            self._claim_file()
            self._compact()
            for name in (*_WRITES, *_PARTIQL):
                original = getattr(self.backend, name)
                hook = self._journaled(name, original) if name in _WRITES else self._refused(name)
                self._installed[name] = (hook, vars(self.backend).get(name))
                setattr(self.backend, name, hook)

    def close(self) -> None:
        """Stop journaling (a last compaction first) and give moto its own methods back."""
        with self.lock:
            # A moto reset (a test's `mock_aws` in the same process) empties the backend and drops
            # our hooks with it: then the tables no longer hold what the journal does, and the
            # journal is kept as it was written instead of being compacted from them.
            intact = all(
                vars(self.backend).get(n) is hook for n, (hook, _) in self._installed.items()
            )
            for name, (hook, previous) in self._installed.items():
                if vars(self.backend).get(name) is not hook:
                    continue
                if previous is None:
                    delattr(self.backend, name)  # the instance attribute hid the class's method
                else:
                    setattr(self.backend, name, previous)
            self._installed.clear()
            if self._file is not None:
                if intact:
                    self._compact()
                self._file.close()
                self._file = None
            if self._claim is not None:
                self._claim.close()  # releases the lock
                self._claim = None

    def _claim_file(self) -> None:
        """Hold `<journal>.lock` (an flock: released by the kernel however the process ends)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        claim = self.path.with_suffix(".lock").open("a+")
        try:
            fcntl.flock(claim, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            claim.seek(0)
            holder = claim.read().strip() or "another process"
            claim.close()
            raise JournalInUse(
                f"{self.path.parent} is in use by another `ferry up` (pid {holder}); stop it first"
            ) from None
        claim.truncate(0)
        claim.write(str(os.getpid()))
        claim.flush()
        self._claim = claim

    # -- the hook ------------------------------------------------------------------------------

    def _journaled(self, name: str, original: Callable[..., Any]) -> Callable[..., Any]:
        signature = inspect.signature(original)

        def write(*args: Any, **kwargs: Any) -> Any:
            with self.lock:
                if getattr(self._nested, "depth", 0):
                    # Inside a transaction: the outer call journals the whole of it at once.
                    return original(*args, **kwargs)
                arguments = signature.bind(*args, **kwargs).arguments
                places = list(self._places(name, arguments))
                before = {place: self._image(place) for place in places}
                self._nested.depth = 1
                try:
                    return original(*args, **kwargs)
                finally:
                    self._nested.depth = 0
                    # Also after an error: whatever moto left is what the tables now hold.
                    self._append(
                        [
                            (place[0], json.loads(place[1]), json.loads(after) if after else None)
                            for place in places
                            if (after := self._image(place)) != before[place]
                        ]
                    )

        return write

    def _refused(self, name: str) -> Callable[..., Any]:
        def refuse(*_args: Any, **_kwargs: Any) -> Any:
            raise PartiqlNotJournaled(
                f"{name}: PartiQL is not supported by the local cloud (its writes would not "
                "survive a restart)"
            )

        return refuse

    def _places(self, name: str, arguments: Mapping[str, Any]) -> Iterator[Place]:
        """Where a write call may change items (its table and key)."""
        if name == "transact_write_items":
            for entry in arguments["transact_items"]:
                for kind, operation in entry.items():
                    if kind == "Put":
                        yield from self._place(operation["TableName"], operation["Item"])
                    elif kind in ("Update", "Delete"):
                        yield from self._place(operation["TableName"], operation["Key"])
            return
        key = arguments["item_attrs"] if name == "put_item" else arguments["key"]
        yield from self._place(arguments["table_name"], key)

    def _place(self, table_name: str, attributes: Mapping[str, Any]) -> Iterator[Place]:
        table = self._physical_table(table_name)
        if table is None or table.name not in self._logical:
            return  # not one of ours (or unknown: moto answers that itself)
        key = {table.hash_key_attr: attributes.get(table.hash_key_attr)}
        if table.range_key_attr is not None:
            key[table.range_key_attr] = attributes.get(table.range_key_attr)
        if any(not isinstance(value, dict) for value in key.values()):
            return  # a malformed key: moto refuses the call and changes nothing
        yield self._logical[table.name], _dump(key)

    def _physical_table(self, table_name: str) -> Table | None:
        try:
            return self.backend.get_table(table_name)
        except Exception:  # moto's ResourceNotFoundException: the call fails on its own
            return None

    def _image(self, place: Place) -> str | None:
        """The item at `place` as canonical JSON, or None when there is none."""
        table = self._table(place[0])
        if table is None:
            return None
        try:
            hash_key, range_key = self.backend.get_keys_value(table, json.loads(place[1]))
            item = table.get_item(hash_key, range_key)
        except Exception:  # a key moto itself rejects: there is no item there
            return None
        return None if item is None else _dump(item.to_json()["Attributes"])

    # -- the file ------------------------------------------------------------------------------

    def _append(self, changes: list[Change]) -> None:
        if not changes or self._file is None:
            return
        line = _dump(changes) + "\n"
        self._file.write(line)
        self._file.flush()
        self._written += len(line.encode())
        if self._written > max(self.compact_after_bytes, 2 * self._compacted):
            self._compact()

    def _compact(self) -> None:
        """Rewrite the journal as the tables' current items (call with the lock held)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        size = 0
        with temporary.open("w") as out:
            os.chmod(temporary, 0o600)  # items hold ciphertexts and token hashes
            for logical in self.tables:
                table = self._table(logical)
                if table is None:
                    continue
                for item in table.all_items():
                    attributes = item.to_json()["Attributes"]
                    key = {table.hash_key_attr: attributes[table.hash_key_attr]}
                    if table.range_key_attr is not None:
                        key[table.range_key_attr] = attributes[table.range_key_attr]
                    line = _dump([(logical, key, attributes)]) + "\n"
                    out.write(line)
                    size += len(line.encode())
        if self._file is not None:
            self._file.close()
        temporary.replace(self.path)  # atomic: a crash mid-compaction keeps the old journal
        self._file = self.path.open("a")
        self._written = self._compacted = size

    @staticmethod
    def _read(path: Path) -> Iterator[list[Change]]:
        lines = path.read_text().split("\n")
        last = len(lines) - 1
        while last >= 0 and not lines[last]:
            last -= 1
        for number, line in enumerate(lines[: last + 1], start=1):
            if not line:
                continue
            try:
                changes = json.loads(line)
            except ValueError:
                if number == last + 1:
                    return  # torn by a crash mid-write: that write was never answered
                raise JournalCorrupt(f"{path}, line {number}: not a journal record") from None
            yield [(logical, key, image) for logical, key, image in changes]

    # -- applying ------------------------------------------------------------------------------

    def _table(self, logical: str) -> Table | None:
        physical = self.tables.get(logical)
        return None if physical is None else self._physical_table(physical)

    def _apply(self, table: Table, key: dict[str, Any], image: dict[str, Any] | None) -> None:
        if image is not None:
            table.put_item(image)
            return
        hash_key, range_key = self.backend.get_keys_value(table, key)
        table.delete_item(hash_key, range_key)
