"""Compose files read the way Docker Compose reads them, for the policy's check of the file as
written.

- YAML merge keys: in `<<: [*a, *b]` the first map wins, and the mapping's own keys win over
  every merged one (the YAML merge-key spec, compose v1's PyYAML 6.0 and v2's go-yaml alike).
  PyYAML 6.0.4 lets a later map win for keys that are not interned strings, so a check that
  relied on it would see `*b`'s `privileged: false` where compose runs `*a`'s `privileged: true`.
- Compose's `!reset` and `!override` tags: an `!override` value is read as the value itself; a key
  tagged `!reset` is read as absent from its own mapping. Values that a merge key brings in stay,
  which can only make the check stricter than compose; compose's resolved model, which the agent
  also judges, says what really runs.
- Several documents in one file are all returned: the check judges each of them, so a setting
  is refused in whichever document asks for it.
"""

from __future__ import annotations

from collections.abc import Iterable

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

_MERGE = "tag:yaml.org,2002:merge"
_VALUE = "tag:yaml.org,2002:value"
_STRING = "tag:yaml.org,2002:str"
_RESET = "!reset"
_OVERRIDE = "!override"


class _ComposeLoader(yaml.SafeLoader):
    def construct_document(self, node: Node) -> object:
        _apply_compose_tags(self, node, set())
        return super().construct_document(node)

    def flatten_mapping(self, node: MappingNode) -> None:
        merged: list[list[tuple[Node, Node]]] = []
        own: list[tuple[Node, Node]] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                sources = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
                for source in sources:
                    if not isinstance(source, MappingNode):
                        raise ConstructorError(
                            "while constructing a mapping",
                            node.start_mark,
                            f"expected mappings to merge, but found {source.id}",
                            source.start_mark,
                        )
                    self.flatten_mapping(source)
                    merged.append(source.value)
            else:
                if key_node.tag == _VALUE:
                    key_node.tag = _STRING
                own.append((key_node, value_node))
        # Constructing a mapping lets a later pair win: the first merged map goes last among the
        # merged ones, and the mapping's own pairs come after all of them.
        node.value = [pair for source in reversed(merged) for pair in source] + own


def _apply_compose_tags(loader: _ComposeLoader, node: Node, seen: set[int]) -> None:
    """Drop `!reset` keys and items, read `!override` values as untagged (in place, once per
    node: aliases share nodes)."""
    if id(node) in seen:
        return
    seen.add(id(node))
    if node.tag in (_RESET, _OVERRIDE):
        value = node.value if isinstance(node, ScalarNode) else None
        node.tag = loader.resolve(type(node), value, (True, False))  # type: ignore[no-untyped-call]
    if isinstance(node, MappingNode):
        node.value = [(key, value) for key, value in node.value if value.tag != _RESET]
        for key, value in node.value:
            _apply_compose_tags(loader, key, seen)
            _apply_compose_tags(loader, value, seen)
    elif isinstance(node, SequenceNode):
        node.value = [item for item in node.value if item.tag != _RESET]
        for item in node.value:
            _apply_compose_tags(loader, item, seen)


def load_compose(text: str) -> list[object]:
    """The documents of a compose file (empty ones left out); raises `yaml.YAMLError`."""
    loader = _ComposeLoader(text)
    try:
        documents = []
        while loader.check_data():  # type: ignore[no-untyped-call]
            document = loader.get_data()
            if document is not None:
                documents.append(document)
        return documents
    finally:
        loader.dispose()


def service_names(documents: Iterable[object]) -> list[str]:
    """Every service the documents declare, in the order compose meets them."""
    names: dict[str, None] = {}
    for document in documents:
        services = document.get("services") if isinstance(document, dict) else None
        if isinstance(services, dict):
            names.update(dict.fromkeys(str(name) for name in services))
    return list(names)
