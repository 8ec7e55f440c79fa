"""Costs of the embedded cloud that AWS does not have, taken out without changing what moto does.

- moto's server finds the service of every request by listing its own package directory on disk
  (`moto.backends.list_of_moto_modules`, an `os.listdir` and an `isdir` per entry), about a
  sixth of the server's time under load: the list is read once.
- moto's ASL interpreter parses the state machine's definition again for every execution (the
  ANTLR parse is tens of milliseconds, the webhook → agent path runs two executions): the parse
  tree is kept per definition, and each execution still builds its own evaluation components
  from it (the tree is only read; the components hold the execution's state).

moto is pinned exactly; tests/integration/test_local_cloud.py covers both replacements.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

from moto import backends
from moto.stepfunctions.parser.asl.component.eval_component import EvalComponent
from moto.stepfunctions.parser.asl.parse import asl_parser
from moto.stepfunctions.parser.asl.parse.preprocessor import Preprocessor

_MARKER = "_ferry_cached"
_DEFINITIONS_KEPT = 32


def install() -> None:
    """Replace both, once per process (idempotent)."""
    if not getattr(backends.list_of_moto_modules, _MARKER, False):
        modules = tuple(backends.list_of_moto_modules())

        def list_of_moto_modules() -> Iterable[str]:
            return modules

        setattr(list_of_moto_modules, _MARKER, True)
        backends.list_of_moto_modules = list_of_moto_modules
    parser = asl_parser.AmazonStateLanguageParser
    if not getattr(parser.parse, _MARKER, False):
        parse_tree = functools.lru_cache(maxsize=_DEFINITIONS_KEPT)(_parse_tree(parser.parse))

        def parse(definition: str) -> tuple[EvalComponent, Any]:
            tree = parse_tree(definition)
            return Preprocessor().visit(tree), tree

        setattr(parse, _MARKER, True)
        parser.parse = staticmethod(parse)  # type: ignore[method-assign]


def _parse_tree(original: Any) -> Any:
    def tree_of(definition: str) -> Any:
        # A definition that does not parse raises each time (lru_cache keeps no exceptions).
        _program, tree = original(definition)
        return tree

    return tree_of
