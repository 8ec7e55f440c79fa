"""The tree keeps its layers: imports point down (cli → local → api → manage → sync → deploy →
adapters → domain), never back up, and there is no import circle between modules or packages.

Every import counts, also the ones made inside a function to keep cold starts short: a lazy
import is still a dependency.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import parse_python

PACKAGE_ROOT = Path(__file__).resolve().parents[2] / "layers" / "core" / "ferry"

# Rank of each part of the package: a module may import parts of lower or equal rank only
# (equal: inside its own part). `errors` and `settings` are the floor everything stands on.
RANKS: dict[str, int] = {
    "errors": 0,
    "settings": 0,
    # How Lambda handlers import (functions/): the standard library only, so that everything
    # else loads inside its pause.
    "import_phase": 0,
    "domain": 1,
    "aws": 2,
    "security": 3,  # the master secret may live in Secrets Manager (aws/)
    "store": 3,
    "outbound": 3,
    "git": 3,
    "deploy": 4,
    "sync": 5,
    "manage": 6,
    "api": 7,
    "local": 8,  # the embedded cloud serves the API
    "cli": 9,  # `ferry up` and `ferry demo` start the embedded cloud
}


def _module_name(path: Path) -> str:
    relative = path.relative_to(PACKAGE_ROOT.parent).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE_ROOT.rglob("*.py")}


def _imports(path: Path, module: str) -> Iterator[str]:
    """Every `ferry...` module this file imports (resolved against the package's modules)."""
    tree = parse_python(path.read_text(), filename=str(path))
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names if a.name.split(".")[0] == "ferry")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                source = f"{base}.{node.module}" if node.module else base
            else:
                source = node.module or ""
            if source.split(".")[0] != "ferry":
                continue
            # `from ferry.deploy import notify` imports the module ferry.deploy.notify.
            for alias in node.names:
                yield f"{source}.{alias.name}"
            yield source


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        targets = {t for t in _imports(path, module) if t in modules and t != module}
        graph[module] = targets
    return graph


def _part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "ferry"


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return [*stack[stack.index(target) :], target]
            if target not in state:
                found = visit(target)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_layout_every_part_has_a_rank() -> None:
    parts = {_part(m) for m in _modules()} - {"ferry"}
    assert parts <= set(RANKS), f"new top-level part(s) without a rank: {parts - set(RANKS)}"


def test_layout_imports_point_down() -> None:
    upward = [
        f"{module} → {target}"
        for module, targets in _graph().items()
        for target in targets
        if _part(module) != "ferry"
        and _part(target) != "ferry"
        and RANKS[_part(target)] > RANKS[_part(module)]
    ]
    assert upward == []


@pytest.mark.parametrize("level", ["module", "package"])
def test_layout_no_import_circle(level: str) -> None:
    graph = _graph()
    if level == "package":
        packages: dict[str, set[str]] = {}
        for module, targets in graph.items():
            packages.setdefault(_part(module), set()).update(
                _part(t) for t in targets if _part(t) != _part(module)
            )
        graph = packages
    assert _cycle(graph) is None


def test_layout_sdk_errors_stay_in_adapters() -> None:
    """boto3/botocore are spoken by the adapters (store/, aws/, security/) and the local stack
    only; the use cases see Ferry's own errors."""
    allowed = {"store", "aws", "security", "local"}
    offenders = [
        module
        for module, path in _modules().items()
        if _part(module) not in allowed
        and any(word in path.read_text() for word in ("import boto3", "from botocore"))
    ]
    assert offenders == []
