"""The embedded local cloud itself: handlers run in-process through moto's Lambda API, and the
SQS poller behaves like an event source mapping (partial failures, dead-letter queue)."""

from __future__ import annotations

import json
import secrets
import threading
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from ferry.local.poller import QueuePoller
from ferry.local.stack import LocalStack


def _function(stack: LocalStack, logical_id: str) -> str:
    return stack.cloud.physical_ids[logical_id]


def _create_table(client: Any, name: str) -> None:
    """A table keyed by the string `id` alone (the tests of moto's DynamoDB make their own)."""
    client.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )


def test_lambda_invoke_runs_the_handler_in_process(stack: LocalStack) -> None:
    event = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/api/v1/health",
        "rawQueryString": "",
        "headers": {"host": "example.com"},
        "requestContext": {
            "http": {
                "method": "GET",
                "path": "/api/v1/health",
                "sourceIp": "127.0.0.1",
                "protocol": "HTTP/1.1",
                "userAgent": "test",
            },
            "stage": "$default",
        },
        "isBase64Encoded": False,
    }
    response = boto3.client("lambda").invoke(
        FunctionName=_function(stack, "ApiFunction"), Payload=json.dumps(event).encode()
    )
    payload = json.loads(response["Payload"].read())
    assert "FunctionError" not in response
    assert payload["statusCode"] == 200
    assert json.loads(payload["body"])["status"] == "ok"


def test_lambda_handler_exception_becomes_function_error_named_after_class(
    stack: LocalStack,
) -> None:
    response = boto3.client("lambda").invoke(
        FunctionName=_function(stack, "MarkInProgressFunction"), Payload=b'{"nonsense": true}'
    )
    assert response["FunctionError"]
    assert json.loads(response["Payload"].read())["errorType"] == "ValidationError"


def test_poller_failed_record_is_retried_then_dead_lettered(stack: LocalStack) -> None:
    sqs = boto3.client("sqs")
    dead = sqs.create_queue(QueueName="poller-test-dlq.fifo", Attributes={"FifoQueue": "true"})[
        "QueueUrl"
    ]
    dead_arn = sqs.get_queue_attributes(QueueUrl=dead, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    queue = sqs.create_queue(
        QueueName="poller-test.fifo",
        Attributes={
            "FifoQueue": "true",
            "VisibilityTimeout": "0",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dead_arn, "maxReceiveCount": "2"}),
        },
    )["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    poller = QueuePoller(
        queue_url=queue,
        queue_arn=queue_arn,
        function_name=_function(stack, "SyncWorkerFunction"),
        batch_size=10,
        report_batch_item_failures=True,
        region="us-east-1",
    )
    sqs.send_message(
        QueueUrl=queue,
        MessageBody="not a sync job",
        MessageGroupId="g1",
        MessageDeduplicationId="1",
    )
    sqs.send_message(
        QueueUrl=queue,
        MessageBody=json.dumps(
            {"repository_id": "repo_gone", "trigger": "manual", "job_id": "job_gone"}
        ),
        MessageGroupId="g2",
        MessageDeduplicationId="2",
    )

    handled = sum(poller.poll_once() for _ in range(4))

    assert handled == 1  # the job for a deleted repository is done; the garbage is not
    moved = sqs.receive_message(QueueUrl=dead, MaxNumberOfMessages=10).get("Messages", [])
    assert [m["Body"] for m in moved] == ["not a sync job"]


def test_dynamodb_concurrent_transactions_one_wins_nothing_else_lost(stack: LocalStack) -> None:
    """moto restores whole tables when a transaction fails: served one request at a time, a
    failing transaction can no longer wipe a concurrent writer's rows (serialized_dynamodb)."""
    from concurrent.futures import ThreadPoolExecutor

    from botocore.exceptions import ClientError

    from ferry.settings import get_settings

    table = get_settings().name_guards_table
    client = boto3.client("dynamodb")
    race = f"race#{secrets.token_hex(4)}"

    def claim(number: int) -> bool:
        # Long transactions (many items before the contended guard) keep each one's window
        # between its table snapshot and its restore wide open.
        rows: list[Any] = [
            {"Put": {"TableName": table, "Item": {"id": {"S": f"{race}#row{number}-{i}"}}}}
            for i in range(60)
        ]
        try:
            client.transact_write_items(
                TransactItems=[
                    *rows,
                    {
                        "Put": {
                            "TableName": table,
                            "Item": {"id": {"S": race}, "owner_id": {"S": str(number)}},
                            "ConditionExpression": "attribute_not_exists(id)",
                        }
                    },
                ]
            )
        except ClientError:
            return False
        return True

    def bystander(number: int) -> None:
        client.put_item(TableName=table, Item={"id": {"S": f"{race}#other{number}"}})

    with ThreadPoolExecutor(max_workers=16) as pool:
        claimed = [pool.submit(claim, n) for n in range(16)]
        others = [pool.submit(bystander, n) for n in range(16)]  # writing while they race
        claims = [future.result() for future in claimed]
        for future in others:
            future.result()

    assert claims.count(True) == 1
    winner = claims.index(True)
    stored = {
        item["id"]["S"]
        for item in client.scan(TableName=table)["Items"]
        if item["id"]["S"].startswith(race)
    }
    rows = {f"{race}#row{winner}-{i}" for i in range(60)}
    assert stored == {race} | rows | {f"{race}#other{n}" for n in range(16)}


def test_dynamodb_failed_transaction_is_undone_item_by_item_as_moto_undoes_it(
    stack: LocalStack, unique: str
) -> None:
    """A transaction that fails leaves every item as it was (serialized_dynamodb undoes it item
    by item, where moto put back a copy of each whole table): puts, updates and deletes done
    before the failing operation, on tables with and without a sort key; a transaction that
    succeeds keeps all of its writes. Undoing costs copies of the items it names, not of the
    tables: a table of 300 items is not copied."""
    from moto.dynamodb.models.dynamo_type import Item

    client = boto3.client("dynamodb")
    plain, sorted_table = f"undo-{unique}", f"undo-sorted-{unique}"
    _create_table(client, plain)
    client.create_table(
        TableName=sorted_table,
        KeySchema=[
            {"AttributeName": "id", "KeyType": "HASH"},
            {"AttributeName": "at", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "id", "AttributeType": "S"},
            {"AttributeName": "at", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    for n in range(300):
        client.put_item(TableName=plain, Item={"id": {"S": f"row{n}"}, "n": {"N": str(n)}})
    client.put_item(TableName=sorted_table, Item={"id": {"S": "a"}, "at": {"S": "1"}})

    def everything() -> list[Any]:
        return sorted(
            json.dumps(item, sort_keys=True)
            for t in (plain, sorted_table)
            for item in client.scan(TableName=t, ConsistentRead=True)["Items"]
        )

    def transaction(last_condition: str) -> list[Any]:
        return [
            {"Put": {"TableName": plain, "Item": {"id": {"S": "new"}}}},
            {
                "Update": {
                    "TableName": plain,
                    "Key": {"id": {"S": "row1"}},
                    "UpdateExpression": "SET n = :n, extra = :n",
                    "ExpressionAttributeValues": {":n": {"N": "99"}},
                }
            },
            {"Delete": {"TableName": plain, "Key": {"id": {"S": "row2"}}}},
            {"Put": {"TableName": sorted_table, "Item": {"id": {"S": "a"}, "at": {"S": "2"}}}},
            {
                "Put": {
                    "TableName": sorted_table,
                    "Item": {"id": {"S": "a"}, "at": {"S": "1"}, "v": {"S": "x"}},
                    "ConditionExpression": last_condition,
                }
            },
        ]

    before = everything()
    copied: list[int] = []
    item_deepcopy = Item.__deepcopy__

    def counted(self: Any, memo: dict[int, Any]) -> Any:
        copied.append(1)
        return item_deepcopy(self, memo)

    Item.__deepcopy__ = counted  # type: ignore[method-assign]
    try:
        with pytest.raises(ClientError, match="ConditionalCheckFailed"):
            client.transact_write_items(TransactItems=transaction("attribute_not_exists(id)"))
    finally:
        Item.__deepcopy__ = item_deepcopy  # type: ignore[method-assign]
    assert everything() == before
    assert len(copied) < 20  # the items named (and moto's own copy of one it updates)

    with pytest.raises(ClientError, match="ValidationException"):  # one item named twice
        client.transact_write_items(TransactItems=[*transaction("attribute_exists(id)")[:4]] * 2)
    assert everything() == before

    client.transact_write_items(TransactItems=transaction("attribute_exists(id)"))
    after = {item["id"]["S"]: item for item in client.scan(TableName=plain)["Items"]}
    assert "new" in after and "row2" not in after and after["row1"]["extra"] == {"N": "99"}
    assert len(client.scan(TableName=sorted_table)["Items"]) == 2


def test_emulator_costs_parse_each_definition_once_and_build_fresh_programs(
    stack: LocalStack,
) -> None:
    """The embedded cloud keeps moto's ASL parse tree and program per definition (a definition
    with a Parallel state gets a program per execution) and lists moto's services once
    (local/emulator_costs.py)."""
    import os

    import moto
    from moto import backends
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    definition = json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}})
    first_program, first_tree = AmazonStateLanguageParser.parse(definition)
    second_program, second_tree = AmazonStateLanguageParser.parse(definition)

    assert second_tree is first_tree  # parsed once
    # The program holds no execution's state: built once, shared, its heap keys drawn before.
    assert second_program is first_program
    assert getattr(first_program, "_EvalComponent__heap_key", None) is not None
    parallel = json.dumps(
        {
            "StartAt": "Both",
            "States": {
                "Both": {
                    "Type": "Parallel",
                    "End": True,
                    "Branches": [{"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}}}],
                }
            },
        }
    )
    # A Parallel state counts its running branches on its component: a program per execution.
    assert (
        AmazonStateLanguageParser.parse(parallel)[0]
        is not (AmazonStateLanguageParser.parse(parallel)[0])
    )
    # Each node's text, worked out once per tree, is what ANTLR's own joining gives.
    from pathlib import Path

    from ferry.local import emulator_costs

    sync_definition = (
        Path(__file__).parents[2] / "functions/statemachines/sync.asl.json"
    ).read_text()
    _program, tree = AmazonStateLanguageParser.parse(sync_definition)
    texts = emulator_costs._texts_of(tree)
    nodes, pending = [], [tree]
    while pending:
        node = pending.pop()
        if isinstance(node, emulator_costs.ParserRuleContext):
            nodes.append(node)
            pending.extend(node.children or [])
    assert len(texts) == len(nodes) > 100
    assert all(texts[id(node)] == emulator_costs.moto_get_text(node) for node in nodes)
    from moto.stepfunctions.parser.asl.utils import json_path

    parse: Any = getattr(json_path, "parse")  # noqa: B009  # moto does not export it
    assert parse("$.job.id") is parse("$.job.id")  # each path parsed once
    assert json_path.extract_json("$.job.id", {"job": {"id": "j"}}) == "j"
    package = os.path.dirname(moto.__file__)
    assert list(backends.list_of_moto_modules()) == sorted(
        entry
        for entry in os.listdir(package)
        if os.path.isdir(os.path.join(package, entry)) and not entry.startswith("__")
    )


def test_emulator_costs_write_dynamodb_attribute_values_as_moto_does() -> None:
    """The fast writer of DynamoDB attribute values (local/emulator_costs.py) gives the same
    answer, byte for byte, as moto's own serializer, for every kind of value."""
    from moto.core.serialize import JSONSerializer, XFormedAttributePicker
    from moto.core.utils import get_service_model
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.utilities import dynamo_to_dict

    from ferry.local import emulator_costs

    emulator_costs.install()

    class MotoSerializer(JSONSerializer):
        _serialize_type_structure = emulator_costs.moto_serialize_structure

    item: dict[str, Any] = {
        "id": {"S": "app_1"},
        "empty": {"S": ""},
        "count": {"N": "42"},
        "ratio": {"N": "-0.5"},
        "blob": {"B": "aGVsbG8="},
        "strings": {"SS": ["a", "b"]},
        "numbers": {"NS": ["1", "2.5"]},
        "blobs": {"BS": ["aGVsbG8=", "d29ybGQ="]},
        "nothing": {"NULL": True},
        "yes": {"BOOL": True},
        "no": {"BOOL": False},
        "nested": {
            "M": {
                "list": {"L": [{"S": "x"}, {"N": "1"}, {"M": {"deep": {"BOOL": False}}}]},
                "bytes": {"B": "AAEC"},
                "empty_map": {"M": {}},
                "empty_list": {"L": []},
            }
        },
    }
    stored = {name: DynamoType(value) for name, value in item.items()}
    result = dynamo_to_dict({"Items": [stored, stored], "Count": 2, "ScannedCount": 2})
    model = get_service_model("dynamodb")

    def body(serializer_class: type[JSONSerializer]) -> str:
        serializer = serializer_class(
            operation_model=model.operation_model("Query"),
            value_picker=XFormedAttributePicker(),
        )
        return str(serializer.serialize(result)["body"])

    fast = body(JSONSerializer)
    assert fast == body(MotoSerializer)
    assert json.loads(fast)["Items"][0] == item


def test_emulator_costs_check_update_expressions_as_moto_does(stack: LocalStack) -> None:
    """UpdateItem's expression checks run once at the root (local/emulator_costs.py): a valid
    expression applies as before, also reused on other items (its parse is kept), and an
    invalid one gets moto's own error."""
    from ferry.settings import get_settings

    table = get_settings().name_guards_table
    client = boto3.client("dynamodb")
    names = {f"#a{i}": f"attr{i}" for i in range(12)} | {"#n": "count", "#r": "gone"}
    values = {f":v{i}": {"S": f"value {i}"} for i in range(12)} | {
        ":zero": {"N": "0"},
        ":one": {"N": "1"},
    }
    many = ", ".join(f"#a{i} = :v{i}" for i in range(12))
    expression = f"SET {many}, #n = if_not_exists(#n, :zero) + :one REMOVE #r"
    keys = [{"id": {"S": f"expr#{secrets.token_hex(4)}"}} for _ in range(2)]
    for key in keys:
        client.put_item(TableName=table, Item=key | {"gone": {"S": "x"}})
    for key in keys + keys[:1]:
        client.update_item(
            TableName=table,
            Key=key,
            UpdateExpression=expression,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )
    first, second = (client.get_item(TableName=table, Key=key)["Item"] for key in keys)
    assert (first["count"], second["count"]) == ({"N": "2"}, {"N": "1"})
    assert "gone" not in first and first["attr11"] == {"S": "value 11"}
    # Functions, nested paths, ADD and DELETE: node kinds the checks' copy of the tree holds.
    client.put_item(
        TableName=table,
        Item=keys[1] | {"l": {"L": [{"S": "a"}]}, "m": {"M": {"x": {"N": "1"}, "y": {"S": "y"}}}},
    )
    client.update_item(
        TableName=table,
        Key=keys[1],
        UpdateExpression=(
            "SET l = list_append(l, :l), m.x = m.x + :one, #n = if_not_exists(#n, :one) "
            "REMOVE m.y ADD s :s DELETE t :s"
        ),
        ExpressionAttributeNames={"#n": "count"},
        ExpressionAttributeValues={
            ":l": {"L": [{"S": "b"}]},
            ":one": {"N": "1"},
            ":s": {"SS": ["q"]},
        },
    )
    assert client.get_item(TableName=table, Key=keys[1])["Item"] == keys[1] | {
        "l": {"L": [{"S": "a"}, {"S": "b"}]},
        "m": {"M": {"x": {"N": "2"}}},
        "count": {"N": "1"},
        "s": {"SS": ["q"]},
    }

    counted = "#n = if_not_exists(#n, :zero) + :one"
    refused = {
        f"SET {many} SET {counted} REMOVE #r": 'The "SET" section can only be used once',
        f"SET {many}, {counted} REMOVE #r REMOVE #r": (
            'The "REMOVE" section can only be used once'
        ),
        f"SET {many}, #a3 = :one, {counted} REMOVE #r": (
            "Two document paths overlap with each other; must remove or rewrite one of these "
            "paths; path one: [attr3], path two: [attr3]"
        ),
        f"SET {many}, nested.inner = :one, nested = :zero, {counted} REMOVE #r": (
            "Two document paths overlap with each other; must remove or rewrite one of these "
            "paths; path one: [nested, inner], path two: [nested]"
        ),
    }
    for invalid, message in refused.items():
        with pytest.raises(ClientError) as refusal:
            client.update_item(
                TableName=table,
                Key=keys[0],
                UpdateExpression=invalid,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        assert message in str(refusal.value)
    assert client.get_item(TableName=table, Key=keys[0])["Item"] == first


def test_emulator_costs_walk_update_expressions_as_moto_does(stack: LocalStack) -> None:
    """The expression walks (a handler found once per node class, the pre-processing hook only
    where a walk has one) leave an item as moto's own walk does, and refuse what it refuses,
    with its message: each update runs on twin items, once each way."""
    from ferry.local import emulator_costs
    from ferry.settings import get_settings

    traverser: Any = emulator_costs._ast.DepthFirstTraverser
    table = get_settings().name_guards_table
    client = boto3.client("dynamodb")
    start = {
        "l": {"L": [{"S": "a"}, {"N": "1"}, {"M": {"k": {"S": "v"}}}]},
        "m": {"M": {"x": {"N": "1"}, "y": {"S": "y"}, "z": {"M": {"deep": {"L": []}}}}},
        "s": {"SS": ["p", "q"]},
        "n": {"N": "5"},
        "gone": {"S": "x"},
    }
    values = {
        ":l": {"L": [{"S": "b"}]},
        ":one": {"N": "1"},
        ":s": {"SS": ["q", "r"]},
        ":m": {"M": {"a": {"BOOL": True}}},
        ":e": {"S": ""},
    }
    names = {"#n": "n", "#m": "m", "#x": "x"}
    updates = [
        "SET l = list_append(:l, l), #m.#x = #m.#x + :one, #n = if_not_exists(#n, :one) - :one",
        "SET l[1] = :one, m.z.deep = list_append(m.z.deep, :l), newmap = :m REMOVE l[0], gone",
        "ADD s :s, counter :one SET m.y = m.x",
        "DELETE s :s REMOVE m.z.deep",
        "ADD s :s DELETE s :s",  # refused: two actions on one path
        "SET m.missing.deeper = :one",  # refused: the path's parent is absent
        "SET #n = #n + :l",  # refused: a number plus a list
        "SET l[0].nope = :one",  # a string has no members (moto lets it pass)
        "SET id = :one",  # refused: the key
        "SET m = :m, m.x = :one",  # refused: overlapping paths
    ]

    def applied(update: str, key: dict[str, Any]) -> tuple[str, Any]:
        client.put_item(TableName=table, Item=key | start)
        request: dict[str, Any] = {
            "TableName": table,
            "Key": key,
            "UpdateExpression": update,
            "ExpressionAttributeValues": {k: v for k, v in values.items() if k in update},
        }
        if "#" in update:
            request["ExpressionAttributeNames"] = {k: v for k, v in names.items() if k in update}
        try:
            client.update_item(**request)
        except ClientError as refusal:
            return "refused", str(refusal)
        item = client.get_item(TableName=table, Key=key)["Item"]
        return "applied", {name: value for name, value in item.items() if name != "id"}

    fast = traverser.traverse_node_recursively
    for update in updates:
        ours = applied(update, {"id": {"S": f"walk#{secrets.token_hex(4)}"}})
        traverser.traverse_node_recursively = emulator_costs.moto_traverse_node_recursively
        try:
            motos = applied(update, {"id": {"S": f"walk#{secrets.token_hex(4)}"}})
        finally:
            traverser.traverse_node_recursively = fast
        assert ours == motos, update
    assert fast is emulator_costs._walk


def test_emulator_costs_copy_execution_data_as_deepcopy_does() -> None:
    """The ASL interpreter's copies of an execution's data (local/emulator_costs.json_deepcopy)
    are what `copy.deepcopy` makes: equal, sharing nothing with the original, a dict or list met
    twice copied once (and a cycle kept), anything else copied by deepcopy itself."""
    import copy
    import datetime

    from ferry.local import emulator_costs

    shared = {"k": [1, 2.5, None, True]}
    cyclic: list[Any] = ["loop"]
    cyclic.append(cyclic)
    data = {
        "a": shared,
        "b": [shared, shared, {"nested": shared["k"]}],
        "c": ("tuple", shared),
        "d": datetime.datetime(2026, 11, 30, tzinfo=datetime.UTC),
        "e": cyclic,
        1: "a number key",
    }

    emulator_costs.install()
    ours, theirs = emulator_costs.json_deepcopy(data), copy.deepcopy(data)

    assert repr(ours) == repr(theirs)
    assert ours["a"] is not shared and ours["a"]["k"] is not shared["k"]
    assert ours["b"][0] is ours["a"] and ours["b"][1] is ours["a"]  # met twice: copied once
    assert ours["b"][2]["nested"] is ours["a"]["k"]
    assert ours["c"][1] is ours["a"]  # deepcopy's own copy of the tuple used the same memo
    assert ours["e"][1] is ours["e"] and ours["e"] is not cyclic
    for module in emulator_costs._DATA_COPIERS:
        assert module.copy.deepcopy is emulator_costs.json_deepcopy, module.__name__


def _shape(value: Any) -> Any:
    """A parsed condition as plain values, to compare (moto's own repr fails on list indexes)."""
    if isinstance(value, list | tuple):
        return [_shape(item) for item in value]
    if isinstance(value, dict):
        return {key: _shape(item) for key, item in value.items()}
    if hasattr(value, "__dict__"):
        return [type(value).__name__, _shape(vars(value))]
    return value


def test_emulator_costs_lex_conditions_as_moto_does() -> None:
    """A condition's tokens are kept per text (local/emulator_costs.py): every parse still gets
    moto's tree, the names and values it found, and moto's error for what it cannot lex."""
    from ferry.local import emulator_costs

    emulator_costs.install()
    parser: Any = emulator_costs._comparisons.ConditionExpressionParser
    names = {"#s": "status", "#d": "deploy_slot"}
    values = {":q": {"S": "queued"}, ":r": {"S": "running"}, ":n": {"N": "3"}, ":l": {"L": []}}
    conditions = [
        "attribute_exists(id) AND #s IN (:q, :r)",
        "(events_seq = :n OR attribute_not_exists(events_seq)) AND NOT #d = :q",
        "size(m.xs[0]) > :n AND begins_with(#s, :q) AND #d <> :r",
        "size(m.list[0]) > :n",  # refused: a reserved word
        "#s BETWEEN :q AND :r OR contains(tags, :q)",
        "a = :n AND a = :n",  # the same text again below: from the kept tokens
        "a = :n AND a = :n",
        "a = :n $ b",  # cannot be lexed
        "(a = :n",  # lexed, then refused by the parser
    ]

    def parsed(condition: str, lex: Any) -> tuple[str, Any, Any]:
        original = parser._lex_condition_expression
        parser._lex_condition_expression = lex
        try:
            one = parser(condition, names, values)
            try:
                op = one.parse()
            except Exception as refusal:  # compared, whatever it is
                return "refused", type(refusal).__name__, str(refusal)
            return _shape(op), one.expr_attr_names_found, one.expr_attr_values_found
        finally:
            parser._lex_condition_expression = original

    ours = [parsed(c, parser._lex_condition_expression) for c in conditions]
    motos = [parsed(c, emulator_costs.moto_lex_condition_expression) for c in conditions]
    assert ours == motos
    assert [answer[0] for answer in ours].count("refused") == 3
    assert ours[5] == ours[6] and ours[5][0] != "refused"


def test_emulator_costs_measure_items_as_moto_does() -> None:
    """An attribute's size (moto checks an item's 400 KB at every attribute it sets) is what
    moto's DynamoType.size says, for every kind of value, nested or not."""
    from ferry.local import emulator_costs

    emulator_costs.install()
    dynamo_type: Any = emulator_costs._dynamo_type.DynamoType
    values = [
        {"S": "héllo"},
        {"N": "-12.50"},
        {"B": b"\x00\x01"},
        {"B": "AAE="},
        {"BOOL": True},
        {"NULL": True},
        {"SS": ["a", "bé"]},
        {"NS": ["1", "2.5"]},
        {"BS": [b"x", b"yz"]},
        {"L": [{"S": "a"}, {"N": "1"}, {"L": [{"M": {"k": {"S": "v"}}}]}]},
        {"M": {"k": {"S": "v"}, "ñ": {"L": [{"N": "1"}, {"M": {}}]}, "e": {"SS": ["q"]}}},
    ]
    for value in values:
        attribute = dynamo_type(value)
        assert attribute.size() == emulator_costs.moto_dynamo_size(attribute), value
    # A map holding a raw value (as an in-place change may leave it): read through DynamoType.
    mixed = dynamo_type({"M": {"k": {"S": "v"}}})
    mixed.value["raw"] = {"L": [{"S": "abc"}]}
    assert mixed.size() == emulator_costs.moto_dynamo_size(mixed) == 1 + 1 + 3 + 3
    assert dynamo_type.size is emulator_costs._dynamo_size


def test_emulator_costs_refuse_oversized_items_as_moto_does(
    stack: LocalStack, unique: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An update's item size is checked against a bound carried from one top-level SET to the
    next (local/emulator_costs.py): every update refuses, at the same attribute, and leaves the
    item, exactly as moto's check of the whole item at each SET does; also where the item grew
    beneath its top level in between (a nested path, ADD), which the bound does not see. An
    item put whole is refused past the limit as moto refuses it."""
    from ferry.local import emulator_costs

    client = boto3.client("dynamodb")
    limited: Any = emulator_costs._dynamo_type.LimitedSizeDict
    assert limited.__setitem__ is emulator_costs._limited_setitem

    def text(size: int) -> dict[str, str]:
        return {"S": "x" * size}

    updates: list[tuple[dict[str, Any], str, dict[str, Any]]] = [
        # (the item before, the update expression, its values)
        ({"big": text(300_000)}, "SET a = :a, b = :b", {":a": text(100_000), ":b": text(10_000)}),
        ({"big": text(300_000)}, "SET a = :a, b = :b", {":a": text(50_000), ":b": text(50_000)}),
        ({"big": text(1_000)}, "SET a = :a, b = :b REMOVE big", {":a": text(5), ":b": text(6)}),
        (
            {"m": {"M": {"x": text(200_000)}}},
            "SET m.y = :y, c = :c",
            {":y": text(150_000), ":c": text(60_000)},
        ),
        (
            {"big": text(340_000), "s": {"SS": ["a"]}},
            "ADD s :s SET c = :c",
            {":c": text(10), ":s": {"SS": ["y" * 60_000]}},
        ),
        ({}, "SET a = :a, b = :a", {":a": text(203_000)}),
        ({}, "SET a = :a, b = :b", {":a": text(10), ":b": text(20)}),
    ]

    def outcomes(table: str) -> list[Any]:
        _create_table(client, table)
        seen: list[Any] = []
        for number, (before, expression, values) in enumerate(updates):
            key = {"id": {"S": f"item{number}"}}
            if before:
                client.put_item(TableName=table, Item={**key, **before})
            try:
                client.update_item(
                    TableName=table,
                    Key=key,
                    UpdateExpression=expression,
                    ExpressionAttributeValues=values,
                )
                refusal = None
            except ClientError as exc:
                refusal = (exc.response["Error"]["Code"], exc.response["Error"]["Message"])
            item = client.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")
            sizes = {name: len(json.dumps(value)) for name, value in (item or {}).items()}
            seen.append((refusal, sizes))
        for number, parts in enumerate((2, 3)):  # items put whole: 300 KB, then 450 KB
            key = {"id": {"S": f"put{number}"}}
            try:
                client.put_item(
                    TableName=table,
                    Item={**key, **{f"part{n}": text(150_000) for n in range(parts)}},
                )
                refusal = None
            except ClientError as exc:
                refusal = (exc.response["Error"]["Code"], exc.response["Error"]["Message"])
            stored = client.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")
            seen.append((refusal, sorted(stored or {})))
        return seen

    ours = outcomes(f"bound-{unique}")
    monkeypatch.setattr(limited, "__setitem__", emulator_costs.moto_limited_setitem)
    motos = outcomes(f"moto-{unique}")

    assert ours == motos
    # Refused for its size where it would pass the limit (moto runs an ADD after the SETs).
    assert [refusal is not None for refusal, _sizes in ours] == [
        True,
        False,
        False,
        True,
        False,
        True,
        False,
        False,
        True,
    ]


def test_emulator_costs_check_an_expressions_structure_once_per_names_and_table(
    stack: LocalStack, unique: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The checks of an update expression that read only the expression, its attribute names
    and the table's keys run once per such triple (local/emulator_costs.py): the same text with
    names that reach a key attribute is still refused every time, and so is a second SET
    clause; what passed once is not walked again."""
    from ferry.local import emulator_costs

    client = boto3.client("dynamodb")
    table = f"structure-{unique}"
    _create_table(client, table)
    key = {"id": {"S": "a"}}
    walks: list[str] = []
    checker = emulator_costs._validators.UpdateHashRangeKeyValidator
    moto_traverse = checker.traverse

    def counted(self: Any, node: Any) -> Any:
        walks.append(type(self).__name__)
        return moto_traverse(self, node)

    monkeypatch.setattr(checker, "traverse", counted)

    def update(names: dict[str, str], expression: str = "SET #0 = :v") -> str | None:
        try:
            client.update_item(
                TableName=table,
                Key=key,
                UpdateExpression=expression,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues={":v": {"S": "x"}},
            )
        except ClientError as refusal:
            return str(refusal.response["Error"]["Message"])
        return None

    refused = update({"#0": "id"})
    assert refused is not None and "key" in refused.lower()
    assert update({"#0": "other"}) is None
    assert update({"#0": "other"}) is None
    assert update({"#0": "id"}) == refused
    twice = "SET #0 = :v SET #0 = :v"
    assert update({"#0": "other"}, twice) == update({"#0": "other"}, twice) is not None
    # Walked for each refusal and for the first pass, not for the pass repeated.
    assert len(walks) == 3
    item = client.get_item(TableName=table, Key=key, ConsistentRead=True)["Item"]
    assert item == {"id": {"S": "a"}, "other": {"S": "x"}}


def test_emulator_costs_find_backends_and_draw_request_ids_as_moto_does() -> None:
    """A backend is found for an account without re-listing its dictionary at every call, and
    a reset (which clears and unlists it) still makes the next call create and list it anew;
    request ids are drawn in one call, of moto's length and alphabet (local/emulator_costs.py)."""
    from moto.core.base_backend import BackendDict, BaseBackend
    from moto.moto_api._internal import mock_random

    from ferry.local import emulator_costs

    emulator_costs.install()

    class Dummy(BaseBackend):
        pass

    backends: Any = BackendDict(Dummy, "sqs")
    listed: list[Any] = getattr(BackendDict, "_instances")  # noqa: B009 (moto's, untyped)
    first = backends["111122223333"]
    assert backends["111122223333"] is first
    assert backends in listed
    backends.clear()  # what a reset does to every listed dictionary
    listed.remove(backends)
    again = backends["111122223333"]
    assert again is not first
    assert backends in listed
    listed.remove(backends)  # the process's list as it was

    ids = {mock_random.get_random_string(length=52) for _ in range(50)}
    assert len(ids) == 50
    assert all(len(drawn) == 52 and drawn.isalnum() and drawn.isascii() for drawn in ids)
    lower = mock_random.get_random_string(length=12, include_digits=False, lower_case=True)
    assert lower.isalpha() and lower.islower() and len(lower) == 12


def test_emulator_costs_send_sqs_messages_as_moto_does(stack: LocalStack) -> None:
    """SendMessage reads only the queue's deduplication setting (local/emulator_costs.py):
    content-based deduplication still drops a repeated body, explicit ids still count, and the
    queue's attributes still count its messages."""
    sqs = boto3.client("sqs")
    name = f"costs-{secrets.token_hex(4)}"
    deduplicated = sqs.create_queue(
        QueueName=f"{name}.fifo",
        Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"},
    )["QueueUrl"]
    by_id = sqs.create_queue(QueueName=f"{name}-ids.fifo", Attributes={"FifoQueue": "true"})[
        "QueueUrl"
    ]
    plain = sqs.create_queue(QueueName=name)["QueueUrl"]
    for body in ("one", "one", "two"):
        sqs.send_message(QueueUrl=deduplicated, MessageBody=body, MessageGroupId="g")
        sqs.send_message(
            QueueUrl=by_id, MessageBody=body, MessageGroupId="g", MessageDeduplicationId="same"
        )
        sqs.send_message(QueueUrl=plain, MessageBody=body)

    def count(url: str) -> int:
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"])

    assert (count(deduplicated), count(by_id), count(plain)) == (2, 1, 3)
    attributes = sqs.get_queue_attributes(QueueUrl=deduplicated, AttributeNames=["All"])
    assert attributes["Attributes"]["ContentBasedDeduplication"] == "true"


def test_the_started_cloud_is_set_aside_from_the_collectors_walks(stack: LocalStack) -> None:
    """What the started cloud holds is frozen out of the garbage collector's walks, which run
    less often (local/emulator_costs.settle_heap)."""
    import gc

    from ferry.local import emulator_costs

    assert stack.cloud.started
    assert gc.get_freeze_count() > 100_000
    assert gc.get_threshold() == emulator_costs._COLLECTION_THRESHOLDS


def test_emulator_costs_check_permissions_as_moto_does(stack: LocalStack) -> None:
    """Every function role's policies, collected and judged for the actions Ferry's functions
    use, answer as moto's own code does (local/emulator_costs._install_permission_checks); a
    changed policy is judged anew."""
    from moto.iam.access_control import AssumedRoleAccessKey, IAMPolicy, PermissionResult

    from ferry.local import emulator_costs

    iam = boto3.client("iam")
    roles = [r for r in iam.list_roles()["Roles"] if r["RoleName"].startswith("ferry-")]
    assert len(roles) >= 5
    actions = [
        "dynamodb:GetItem",
        "dynamodb:UpdateItem",
        "dynamodb:BatchGetItem",
        "sqs:SendMessage",
        "states:StartExecution",
        "states:StopExecution",
        "s3:GetObject",
        "kms:Decrypt",
    ]
    tables = boto3.client("dynamodb").list_tables()["TableNames"][:3]
    resources = ["*"] + [f"arn:aws:dynamodb:us-east-1:123456789012:table/{t}" for t in tables]
    answers = []
    for role in roles:
        key = object.__new__(AssumedRoleAccessKey)
        key.account_id, key.partition = "123456789012", "aws"
        key._owner_role_name = role["RoleName"]
        policies = key.collect_policies()
        assert policies == emulator_costs.moto_collect_role_policies(key)
        for policy in policies:
            document = emulator_costs.moto_policy_document(policy)
            moto_view = object.__new__(IAMPolicy)
            moto_view._policy_json = json.loads(document)
            for action in actions:
                for resource in resources:
                    expected = emulator_costs.moto_is_action_permitted(moto_view, action, resource)
                    assert IAMPolicy(policy).is_action_permitted(action, resource) == expected
                    answers.append(expected)
    assert len(answers) > 100
    assert {PermissionResult.PERMITTED, PermissionResult.NEUTRAL} <= set(answers)

    # A changed policy is a new document: judged again, not answered from before.
    def document_of(effect: str) -> str:
        statement = {"Effect": effect, "Action": "sqs:*", "Resource": "*"}
        return json.dumps({"Version": "2012-10-17", "Statement": [statement]})

    allow, deny = document_of("Allow"), document_of("Deny")
    results = []
    for document in (allow, deny, allow):
        results.append(IAMPolicy(document).is_action_permitted("sqs:SendMessage"))
    assert results == [
        PermissionResult.PERMITTED,
        PermissionResult.DENIED,
        PermissionResult.PERMITTED,
    ]
    # An answer is the resource's: one queue allowed is not another.
    queue = "arn:aws:sqs:us-east-1:123456789012:queue-a"
    scoped = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": queue}],
        }
    )
    assert [
        IAMPolicy(scoped).is_action_permitted("sqs:SendMessage", resource)
        for resource in (queue, queue.replace("queue-a", "queue-b"), queue)
    ] == [PermissionResult.PERMITTED, PermissionResult.NEUTRAL, PermissionResult.PERMITTED]


def test_emulator_costs_list_a_handlers_actions_once_as_moto_does(stack: LocalStack) -> None:
    """moto's handlers look their action up among their class's functions: listed once per
    class (local/emulator_costs), the same list moto makes at each request."""
    import importlib
    import inspect

    from moto.dynamodb.responses import DynamoHandler
    from moto.sqs.responses import SQSResponse

    assert stack.cloud.started
    responses: Any = importlib.import_module("moto.core.responses")
    for handler in (DynamoHandler, SQSResponse):
        moto_names = [name for name, _ in inspect.getmembers(handler, inspect.isfunction)]
        assert responses.method_names_from_class(handler) == moto_names
        assert responses.method_names_from_class(handler) is responses.method_names_from_class(
            handler
        )
    assert "update_item" in responses.method_names_from_class(DynamoHandler)


def test_a_task_token_answered_before_its_heartbeat_is_set_up_is_not_lost(
    stack: LocalStack,
) -> None:
    """moto sets a `.waitForTaskToken` task's heartbeat up after it sent the message; an answer
    that arrives in between must still end the wait at once (local/moto_fixes.py), not after a
    heartbeat's worth of waiting with States.HeartbeatTimeout."""
    from moto.stepfunctions.parser.asl.eval.callback.callback import (
        CallbackEndpoint,
        CallbackOutcomeSuccess,
    )

    endpoint = CallbackEndpoint(callback_id="token")
    endpoint.notify(CallbackOutcomeSuccess(callback_id="token", output="{}"))
    heartbeat = endpoint.setup_heartbeat_endpoint(heartbeat_seconds=1)

    assert heartbeat.clear_and_wait() is True


def test_a_heartbeat_sent_before_the_state_set_its_heartbeat_up_is_accepted(
    stack: LocalStack,
) -> None:
    """An agent's SendTaskHeartbeat right after it received the message is valid on AWS; moto
    refused it (InvalidToken) until the state had set its heartbeat up (local/moto_fixes.py)."""
    from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackEndpoint

    endpoint = CallbackEndpoint(callback_id="token")

    assert endpoint.notify_heartbeat() is True
    heartbeat = endpoint.setup_heartbeat_endpoint(heartbeat_seconds=1)
    assert heartbeat.clear_and_wait() is True


def test_in_process_calls_reach_the_same_cloud_without_a_socket(
    stack: LocalStack, unique: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Calls from the stack's process are handed to moto's WSGI application in the caller's
    thread (local/in_process_transport.py); another process still speaks HTTP to the same
    server, and both see the same data and the same errors."""
    import subprocess
    import sys

    from botocore.httpsession import URLLib3Session

    def no_network(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("an in-process call went over the network")

    monkeypatch.setattr(URLLib3Session, "send", no_network)
    sqs = boto3.client("sqs")
    queue_url = sqs.create_queue(QueueName=f"in-process-{unique}")["QueueUrl"]
    sqs.send_message(QueueUrl=queue_url, MessageBody="über")

    received = sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=1)["Messages"]
    assert [message["Body"] for message in received] == ["über"]
    with pytest.raises(ClientError, match="NonExistentQueue"):
        sqs.get_queue_attributes(QueueUrl=f"{queue_url}-missing", AttributeNames=["All"])

    # The same queue, written from another process over HTTP.
    script = (
        "import boto3, sys\n"
        "boto3.client('sqs').send_message(QueueUrl=sys.argv[1], MessageBody='from outside')\n"
    )
    subprocess.run([sys.executable, "-c", script, queue_url], check=True, timeout=60)
    outside = sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=1)["Messages"]
    assert [message["Body"] for message in outside] == ["from outside"]


def test_json_protocol_calls_skip_the_wsgi_application_and_answer_as_it_does(
    stack: LocalStack, unique: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A JSON-protocol call from the stack's process is handed to moto's handler directly
    (in_process_transport.py): the server's WSGI application is not entered, and the answers,
    data and errors alike, are those the same server gives over HTTP."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    port = stack.cloud.moto.port
    over_http = boto3.client("dynamodb", endpoint_url=f"http://localhost:{port}")
    table = f"direct-{unique}"
    _create_table(over_http, table)
    over_http.put_item(TableName=table, Item={"id": {"S": "a"}, "n": {"N": "1"}})
    entered: list[str] = []
    wsgi_call = DomainDispatcherApplication.__call__
    # Only this test's calls: the shared stack's own (a Lambda invocation of an earlier test's
    # execution, over its REST path) go through the application as they should.
    this_thread = threading.current_thread()

    def counted(self: Any, environ: dict[str, Any], start_response: Any) -> Any:
        if threading.current_thread() is this_thread:
            entered.append(environ.get("HTTP_X_AMZ_TARGET", environ["PATH_INFO"]))
        return wsgi_call(self, environ, start_response)

    monkeypatch.setattr(DomainDispatcherApplication, "__call__", counted)
    in_process = boto3.client("dynamodb")

    def outcome(client: Any, call: str, **params: Any) -> Any:
        try:
            answer = getattr(client, call)(**params)
        except ClientError as refusal:
            error = refusal.response["Error"]
            return (
                refusal.response["ResponseMetadata"]["HTTPStatusCode"],
                error["Code"],
                error.get("Message"),
                refusal.response.get("Item"),
            )
        answer.pop("ResponseMetadata")
        return answer

    calls: list[tuple[str, dict[str, Any]]] = [
        ("get_item", {"TableName": table, "Key": {"id": {"S": "a"}}}),
        ("get_item", {"TableName": f"{table}-missing", "Key": {"id": {"S": "a"}}}),
        ("get_item", {"TableName": table, "Key": {"other": {"S": "a"}}}),
        (
            "put_item",
            {
                "TableName": table,
                "Item": {"id": {"S": "a"}},
                "ConditionExpression": "attribute_not_exists(id)",
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            },
        ),
    ]
    for call, params in calls:
        assert outcome(in_process, call, **params) == outcome(over_http, call, **params)
    sfn = boto3.client("stepfunctions")
    with pytest.raises(ClientError, match="ExecutionDoesNotExist"):
        sfn.describe_execution(
            executionArn=f"arn:aws:states:us-east-1:123456789012:execution:none:{unique}"
        )
    assert entered == []


def test_in_process_requests_name_their_caller_without_a_signature(stack: LocalStack) -> None:
    """A request handed over in-process is labelled with its caller's access key and scope as a
    signature would be, without computing one (in_process_transport.py); a presigned URL, which
    another process uses, is signed as before."""
    seen: list[str] = []

    def keep(request: Any, **_: Any) -> None:
        seen.append(
            request.headers["Authorization"].decode()
            if isinstance(request.headers["Authorization"], bytes)
            else request.headers["Authorization"]
        )

    sqs = boto3.client("sqs")
    sqs.meta.events.register("before-send.sqs", keep)
    sqs.list_queues()
    credentials = boto3.Session().get_credentials()
    assert credentials is not None
    key = credentials.access_key

    [authorization] = seen
    assert authorization.startswith(f"AWS4-HMAC-SHA256 Credential={key}/")
    assert authorization.endswith("Signature=in-process")
    from botocore.config import Config

    url = boto3.client("s3", config=Config(signature_version="s3v4")).generate_presigned_url(
        "get_object", Params={"Bucket": "any", "Key": "any"}
    )
    assert "X-Amz-Signature=" in url and "in-process" not in url


def test_signatures_over_http_are_still_checked(stack: LocalStack, unique: str) -> None:
    """In-process calls skip moto's recomputation of their signature (in_process_transport.py):
    a request over HTTP with a wrong secret key is refused as before, also when it claims the
    in-process header."""
    import subprocess
    import sys

    from ferry.local.in_process_transport import IN_PROCESS_HEADER

    queue_url = boto3.client("sqs").create_queue(QueueName=f"signed-{unique}")["QueueUrl"]
    script = (
        "import boto3, sys\n"
        "from botocore.exceptions import ClientError\n"
        "key = boto3.Session().get_credentials().access_key\n"
        "sqs = boto3.client('sqs', aws_access_key_id=key, aws_secret_access_key='wrong')\n"
        "def claim(request, **_):\n"
        "    request.headers[sys.argv[2]] = 'a guess'\n"
        "sqs.meta.events.register('before-send.sqs', claim)\n"
        "try:\n"
        "    sqs.send_message(QueueUrl=sys.argv[1], MessageBody='forged')\n"
        "except ClientError as refusal:\n"
        "    print(refusal.response['Error'].get('Message'))\n"
    )
    refused = subprocess.run(
        [sys.executable, "-c", script, queue_url, IN_PROCESS_HEADER],
        check=False,
        timeout=60,
        capture_output=True,
        text=True,
    )
    # moto answers SQS's JSON protocol with an XML error: its code is in the message.
    assert "<Code>SignatureDoesNotMatch</Code>" in refused.stdout, refused.stderr[-2000:]


def test_moto_error_for_an_absent_path_an_is_present_choice_expects_is_not_logged(
    stack: LocalStack, caplog: pytest.LogCaptureFixture
) -> None:
    """moto's ASL interpreter logs an ERROR for each absent path an `IsPresent` choice looks at
    (the deploy machine's `Marked` state does so by design); other errors still reach the log."""
    import logging

    asl_logger = logging.getLogger("moto.stepfunctions.parser.asl.component.eval_component")
    with caplog.at_level(logging.ERROR):
        # As moto 5.2.5 words them (eval_component.EvalComponent._log_exception).
        asl_logger.error(
            "%s at '%s'",
            "Exception=NoSuchJsonPathError, Details=None-Available",
            "(StringJsonPath| {'literal_value': '$.dispatch', 'json_path': '$.dispatch'}",
        )
        asl_logger.error("%s at '%s'", "Exception=ValueError, Details=broken", "(Component)")

    assert [record.getMessage() for record in caplog.records] == [
        "Exception=ValueError, Details=broken at '(Component)'"
    ]
