"""The local cloud's write-through journal (ferry/local/journal.py) against moto's own DynamoDB
backend: every kind of write is replayed, failed writes change nothing, concurrent conditional
writes replay to what the tables held, a torn last line is a write never answered, compaction
keeps the file small; and on the session's stack, writes made through the API replay to exactly
what its tables hold.

A backend of our own (not `mock_aws`, which would reset the session stack's moto) stands for one
run of the stack; a second one, with other physical table names, for the run after a crash."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from moto.dynamodb.exceptions import ConditionalCheckFailed, TransactionCanceledException
from moto.dynamodb.models import DynamoDBBackend, dynamodb_backends

from ferry.local.cloud import REGION
from ferry.local.journal import JournalCorrupt, JournalInUse, PartiqlNotJournaled, TableJournal
from ferry.local.moto_server import LOCAL_ACCOUNT_ID
from ferry.local.stack import LocalStack

ACCOUNT = "111111111111"


def _backend(prefix: str) -> tuple[DynamoDBBackend, dict[str, str]]:
    """A fresh backend with two tables: Things (hash key) and Events (hash + range key)."""
    backend = DynamoDBBackend(REGION, ACCOUNT)
    for logical, schema, attributes in (
        ("Things", [{"AttributeName": "id", "KeyType": "HASH"}], [("id", "S")]),
        (
            "Events",
            [
                {"AttributeName": "owner", "KeyType": "HASH"},
                {"AttributeName": "seq", "KeyType": "RANGE"},
            ],
            [("owner", "S"), ("seq", "N")],
        ),
    ):
        _create_table(backend, f"{prefix}-{logical.lower()}", schema, attributes)
    return backend, {"Things": f"{prefix}-things", "Events": f"{prefix}-events"}


def _create_table(
    backend: DynamoDBBackend,
    name: str,
    schema: list[dict[str, str]],
    attributes: list[tuple[str, str]] | list[dict[str, str]],
) -> None:
    backend.create_table(
        name,
        schema=schema,
        throughput=None,
        attr=[
            a if isinstance(a, dict) else {"AttributeName": a[0], "AttributeType": a[1]}
            for a in attributes
        ],
        global_indexes=None,
        indexes=None,
        streams=None,
        billing_mode="PAY_PER_REQUEST",
        sse_specification=None,
        tags=[],
        deletion_protection_enabled=None,
        warm_throughput=None,
    )


def _contents(backend: DynamoDBBackend, tables: dict[str, str]) -> dict[str, list[str]]:
    """Every table's items (by logical id), as sorted canonical JSON."""
    return {
        logical: sorted(
            json.dumps(item.to_json()["Attributes"], sort_keys=True)
            for item in backend.get_table(physical).all_items()
        )
        for logical, physical in tables.items()
    }


def _replayed(path: Path) -> dict[str, list[str]]:
    """What a stack restarted after a crash would hold: the journal replayed into new tables."""
    backend, tables = _backend("after")
    TableJournal(backend, tables, path).replay()
    return _contents(backend, tables)


def _thing(identifier: str, **attributes: dict[str, Any]) -> dict[str, Any]:
    return {"id": {"S": identifier}, **attributes}


def _event(owner: str, seq: int) -> dict[str, Any]:
    return {"owner": {"S": owner}, "seq": {"N": str(seq)}}


@pytest.fixture
def journaled(tmp_path: Path) -> Iterator[tuple[DynamoDBBackend, dict[str, str], TableJournal]]:
    backend, tables = _backend("before")
    journal = TableJournal(backend, tables, tmp_path / "state" / "journal.jsonl")
    journal.install()
    yield backend, tables, journal
    journal.close()


def test_journal_every_kind_of_write_replays_to_the_same_tables(
    journaled: tuple[DynamoDBBackend, dict[str, str], TableJournal],
) -> None:
    backend, tables, journal = journaled
    backend.put_item("before-things", _thing("a", n={"N": "1"}, blob={"B": "AAEC"}))
    backend.put_item("before-things", _thing("b", tags={"SS": ["x", "y"]}))
    backend.put_item("before-events", _event("a", 1))
    backend.update_item(
        "before-things",
        {"id": {"S": "a"}},
        update_expression="SET n = n + :one, nested = :map",
        expression_attribute_names={},
        expression_attribute_values={
            ":one": {"N": "1"},
            ":map": {"M": {"k": {"L": [{"S": "v"}, {"N": "2"}]}}},
        },
    )
    backend.delete_item("before-things", {"id": {"S": "b"}})
    backend.transact_write_items(
        [
            {
                "Put": {
                    "TableName": "before-events",
                    "Item": {"owner": {"S": "a"}, "seq": {"N": "2"}},
                }
            },
            {
                "Update": {
                    "TableName": "before-things",
                    "Key": {"id": {"S": "a"}},
                    "UpdateExpression": "SET done = :yes",
                    "ExpressionAttributeValues": {":yes": {"BOOL": True}},
                }
            },
            {
                "Delete": {
                    "TableName": "before-events",
                    "Key": {"owner": {"S": "a"}, "seq": {"N": "1"}},
                }
            },
            {
                "ConditionCheck": {
                    "TableName": "before-things",
                    "Key": {"id": {"S": "b"}},
                    "ConditionExpression": "attribute_not_exists(id)",
                }
            },
        ]
    )
    # What moto refused changed nothing, and the journal says nothing about it.
    lines = journal.path.read_text().count("\n")
    with pytest.raises(ConditionalCheckFailed):
        backend.put_item(
            "before-things", _thing("a"), condition_expression="attribute_not_exists(id)"
        )
    with pytest.raises(TransactionCanceledException):
        backend.transact_write_items(
            [
                {"Put": {"TableName": "before-things", "Item": _thing("c")}},
                {
                    "ConditionCheck": {
                        "TableName": "before-things",
                        "Key": {"id": {"S": "a"}},
                        "ConditionExpression": "attribute_not_exists(id)",
                    }
                },
            ]
        )
    assert journal.path.read_text().count("\n") == lines

    replayed = _replayed(journal.path)

    assert replayed == _contents(backend, tables)
    [thing] = [json.loads(item) for item in replayed["Things"]]
    assert thing["n"] == {"N": "2"} and thing["done"] == {"BOOL": True}
    assert [json.loads(item)["seq"] for item in replayed["Events"]] == [{"N": "2"}]


def test_journal_transaction_is_one_line(
    journaled: tuple[DynamoDBBackend, dict[str, str], TableJournal],
) -> None:
    backend, _tables, journal = journaled
    before = journal.path.read_text()
    backend.transact_write_items(
        [{"Put": {"TableName": "before-things", "Item": _thing(name)}} for name in ("p", "q", "r")]
    )
    added = journal.path.read_text()[len(before) :].splitlines()
    assert len(added) == 1
    assert sorted(key["id"]["S"] for _logical, key, _image in json.loads(added[0])) == [
        "p",
        "q",
        "r",
    ]


def test_journal_torn_last_line_was_never_answered_and_compaction_drops_it(
    journaled: tuple[DynamoDBBackend, dict[str, str], TableJournal], tmp_path: Path
) -> None:
    backend, tables, journal = journaled
    backend.put_item("before-things", _thing("kept"))
    expected = _contents(backend, tables)
    backend.put_item("before-things", _thing("torn"))
    text = journal.path.read_text()
    # What the file holds after a crash in the middle of that write (the dead process's
    # journal, without its lock).
    crashed = tmp_path / "crashed" / "journal.jsonl"
    crashed.parent.mkdir()
    crashed.write_text(text[: len(text) - 10])

    assert _replayed(crashed) == expected
    after, after_tables = _backend("after")
    restarted = TableJournal(after, after_tables, crashed)
    restarted.replay()
    restarted.install()
    after.put_item("after-things", _thing("next"))
    assert [json.loads(item)["id"]["S"] for item in _replayed(crashed)["Things"]] == [
        "kept",
        "next",
    ]
    restarted.close()


def test_journal_unreadable_line_before_the_last_refused(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    path.write_text('[["Things",{"id":{"S":"a"}},null]]\nnot json\n[]\n')
    backend, tables = _backend("after")

    with pytest.raises(JournalCorrupt, match="line 2"):
        TableJournal(backend, tables, path).replay()


def test_journal_concurrent_conditional_writers_replay_to_the_live_state(
    journaled: tuple[DynamoDBBackend, dict[str, str], TableJournal],
) -> None:
    backend, tables, journal = journaled
    backend.put_item("before-things", _thing("counter", n={"N": "0"}))

    def bump(times: int) -> None:
        # Optimistic increments: read, then write only if nobody wrote in between.
        done = 0
        while done < times:
            current = backend.get_item("before-things", {"id": {"S": "counter"}})
            assert current is not None
            value = current.attrs["n"].value
            try:
                backend.update_item(
                    "before-things",
                    {"id": {"S": "counter"}},
                    update_expression="SET n = :next",
                    expression_attribute_names={},
                    expression_attribute_values={
                        ":next": {"N": str(int(value) + 1)},
                        ":seen": {"N": value},
                    },
                    condition_expression="n = :seen",
                )
            except ConditionalCheckFailed:
                continue
            done += 1

    writers = [threading.Thread(target=bump, args=(50,)) for _ in range(8)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join()

    live = _contents(backend, tables)
    assert json.loads(live["Things"][0])["n"] == {"N": "400"}
    assert _replayed(journal.path) == live


def test_journal_grown_past_its_threshold_compacted(tmp_path: Path) -> None:
    backend, tables = _backend("before")
    journal = TableJournal(backend, tables, tmp_path / "journal.jsonl", compact_after_bytes=4096)
    journal.install()
    for number in range(500):
        backend.put_item("before-things", _thing("same", n={"N": str(number)}))

    assert journal.path.stat().st_size < 2 * 4096
    assert _replayed(journal.path) == _contents(backend, tables)


def test_journal_partiql_refused(
    journaled: tuple[DynamoDBBackend, dict[str, str], TableJournal],
) -> None:
    backend, _tables, _journal = journaled
    with pytest.raises(PartiqlNotJournaled):
        backend.execute_statement("DELETE FROM \"before-things\" WHERE id = 'a'", [])


def test_journal_closed_compacted_and_moto_methods_restored(
    journaled: tuple[DynamoDBBackend, dict[str, str], TableJournal],
) -> None:
    backend, _tables, journal = journaled
    backend.put_item("before-things", _thing("a"))
    backend.put_item("before-things", _thing("a", n={"N": "1"}))

    journal.close()
    backend.put_item("before-things", _thing("not journaled"))

    assert "put_item" not in vars(backend)
    assert len(journal.path.read_text().splitlines()) == 1  # one item, compacted
    assert [json.loads(i)["id"]["S"] for i in _replayed(journal.path)["Things"]] == ["a"]


def test_journal_two_on_one_backend_closed_in_turn_give_each_other_back(tmp_path: Path) -> None:
    backend, tables = _backend("nested")
    outer = TableJournal(backend, tables, tmp_path / "outer" / "journal.jsonl")
    outer.install()
    inner = TableJournal(backend, tables, tmp_path / "inner" / "journal.jsonl")
    inner.install()

    inner.close()
    backend.put_item("nested-things", _thing("after the inner one"))
    outer.close()

    assert "put_item" not in vars(backend)
    assert [json.loads(i)["id"]["S"] for i in _replayed(outer.path)["Things"]] == [
        "after the inner one"
    ]


def test_journal_backend_reset_under_it_closes_and_keeps_what_it_wrote(
    journaled: tuple[DynamoDBBackend, dict[str, str], TableJournal],
) -> None:
    backend, _tables, journal = journaled
    backend.put_item("before-things", _thing("a"))

    backend.reset()  # what a test's `mock_aws` does to every backend of the process
    journal.close()

    assert "put_item" not in vars(backend)
    assert [json.loads(i)["id"]["S"] for i in _replayed(journal.path)["Things"]] == ["a"]


def test_local_cloud_journal_replays_to_what_the_stack_tables_hold(
    stack: LocalStack, api: httpx.Client, tmp_path: Path
) -> None:
    # Writes of every path: API (put, transaction with name guards, update), deletes.
    created = api.post("/agents", json={"name": f"journal-{tmp_path.name[-12:]}"})
    assert created.status_code == 201, created.text
    assert api.post(f"/agents/{created.json()['id']}/token").status_code == 200
    target = api.post("/notifications", json={"name": "j", "url": "json://127.0.0.1:9/x"})
    assert target.status_code == 201, target.text
    assert api.delete(f"/notifications/{target.json()['id']}").status_code == 204

    journal = stack.cloud.journal
    assert journal is not None
    live_backend = dynamodb_backends[LOCAL_ACCOUNT_ID][REGION]
    with journal.lock:  # no write between reading the file and the tables
        text = journal.path.read_text()
        live = _contents(live_backend, stack.cloud.tables)
        schemas = {
            logical: (
                live_backend.get_table(physical).schema,
                live_backend.get_table(physical).attr,
            )
            for logical, physical in stack.cloud.tables.items()
        }
    copy = tmp_path / "journal.jsonl"
    copy.write_text(text)
    fresh = DynamoDBBackend(REGION, ACCOUNT)
    renamed = {logical: f"restarted-{logical}" for logical in schemas}
    for logical, (schema, attributes) in schemas.items():
        _create_table(fresh, renamed[logical], schema, attributes)

    TableJournal(fresh, renamed, copy).replay()

    assert _contents(fresh, renamed) == live
    assert any(created.json()["id"] in item for item in live["AgentsTable"])


def test_journal_kept_by_one_stack_at_a_time(
    journaled: tuple[DynamoDBBackend, dict[str, str], TableJournal],
) -> None:
    _backend_in_use, _tables, journal = journaled
    other, tables = _backend("other")
    second = TableJournal(other, tables, journal.path)

    with pytest.raises(JournalInUse, match=f"pid {os.getpid()}"):
        second.install()
    journal.close()
    second.install()
    second.close()
