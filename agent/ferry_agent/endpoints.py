"""botocore's endpoints table, read for the services the agent calls only.

botocore's `endpoints.json` describes every AWS service in every partition: parsed whole it takes
about 6 MB, and that memory stays with the process even once all but a few services are dropped
again (the allocator keeps the pages). So the file is walked instead: the partitions, their
regions and defaults are read as they are, and of each partition's services only those the agent
calls are kept; every other service is decoded on its own and let go at once, so no more than one
service's worth of objects is alive at a time. Anything else in the file, or a file this walk does
not understand, is read the ordinary way.
"""

from __future__ import annotations

import gzip
import json
import os
import re
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from botocore.loaders import JSONFileLoader

# The services the agent calls, as the endpoints table names them ("states": Step Functions).
ENDPOINT_SERVICES = frozenset({"sqs", "states", "s3"})

_WHITESPACE = re.compile(r"[ \t\n\r]*")
# As botocore reads its data files: mappings keep their order.
_DECODER = json.JSONDecoder(object_pairs_hook=OrderedDict)
_DROPPED = object()

Member = Callable[[str, int], tuple[Any, int]]


class AgentEndpointsLoader(JSONFileLoader):
    """botocore's data file loader, reading the endpoints table for ENDPOINT_SERVICES only."""

    def load_file(self, file_path: str) -> Any:
        if os.path.basename(file_path) == "endpoints":
            for extension, opener in ((".json", open), (".json.gz", gzip.open)):
                if os.path.isfile(file_path + extension):
                    with opener(file_path + extension, "rb") as file:
                        text = file.read().decode("utf-8")
                    try:
                        return services_only(text, ENDPOINT_SERVICES)
                    except (ValueError, IndexError):
                        break  # not the layout this walk knows: read it whole
        return super().load_file(file_path)


def services_only(text: str, services: frozenset[str]) -> Any:
    """The endpoints table in `text` with each partition's `services` cut to `services`
    (ValueError when `text` is not laid out as an endpoints table)."""

    def service(name: str, at: int) -> tuple[Any, int]:
        value, end = _DECODER.raw_decode(text, at)
        return (value if name in services else _DROPPED), end

    def partition_member(name: str, at: int) -> tuple[Any, int]:
        if name == "services":
            return _object(text, at, service)
        return _DECODER.raw_decode(text, at)

    def root_member(name: str, at: int) -> tuple[Any, int]:
        if name == "partitions":
            return _array(text, at, lambda item_at: _object(text, item_at, partition_member))
        return _DECODER.raw_decode(text, at)

    table, end = _object(text, _skip(text, 0), root_member)
    if _skip(text, end) != len(text):
        raise ValueError("text after the endpoints table")
    return table


def _skip(text: str, at: int) -> int:
    match = _WHITESPACE.match(text, at)
    assert match is not None  # the pattern matches the empty string
    return match.end()


def _object(text: str, at: int, member: Member) -> tuple[OrderedDict[str, Any], int]:
    """The JSON object starting at `at`, each member's value read by `member` (which may drop
    it), and where it ends."""
    if text[at] != "{":
        raise ValueError(f"an object expected at {at}")
    result: OrderedDict[str, Any] = OrderedDict()
    at = _skip(text, at + 1)
    if text[at] == "}":
        return result, at + 1
    while True:
        if text[at] != '"':
            raise ValueError(f"a name expected at {at}")
        name, at = _DECODER.raw_decode(text, at)
        at = _skip(text, at)
        if text[at] != ":":
            raise ValueError(f"':' expected at {at}")
        value, at = member(name, _skip(text, at + 1))
        if value is not _DROPPED:
            result[name] = value
        at = _skip(text, at)
        if text[at] == "}":
            return result, at + 1
        if text[at] != ",":
            raise ValueError(f"',' or '}}' expected at {at}")
        at = _skip(text, at + 1)


def _array(text: str, at: int, item: Callable[[int], tuple[Any, int]]) -> tuple[list[Any], int]:
    """The JSON array starting at `at`, each item read by `item`, and where it ends."""
    if text[at] != "[":
        raise ValueError(f"an array expected at {at}")
    result: list[Any] = []
    at = _skip(text, at + 1)
    if text[at] == "]":
        return result, at + 1
    while True:
        value, at = item(at)
        result.append(value)
        at = _skip(text, at)
        if text[at] == "]":
            return result, at + 1
        if text[at] != ",":
            raise ValueError(f"',' or ']' expected at {at}")
        at = _skip(text, at + 1)
