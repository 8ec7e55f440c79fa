"""What `sam build` produced (.aws-sam/build) is what Lambda can load.

`.ci/run` runs `sam build` before the tests, so in CI (CI=true) a missing build output fails these
tests; elsewhere they skip with the command to run. The build targets arm64 while this machine is
usually x86-64, so nothing here imports the built code: the checks read ELF headers, dist-info
metadata and the import statements of the handlers.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from importlib.util import MAGIC_NUMBER, find_spec, source_hash
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.version import Version
from samtranslator.yaml_helper import yaml_parse

from tests.cfn import sam_template
from tests.conftest import running_in_ci
from tests.helpers import parse_python

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / ".aws-sam" / "build"
BUILT_TEMPLATE = BUILD / "template.yaml"

# ELF e_machine values (System V ABI): what Lambda's two architectures load.
E_MACHINE = {"arm64": 183, "x86_64": 62}
LAMBDA_DEFAULT_ARCHITECTURE = "x86_64"


@pytest.fixture(scope="module")
def built() -> dict[str, Any]:
    """The template SAM wrote next to the build output (CodeUri/ContentUri point into BUILD)."""
    if not BUILT_TEMPLATE.is_file():
        reason = f"no sam build output in {BUILD}"
        if running_in_ci():
            pytest.fail(f"{reason}; .ci/run must run `sam build` before the tests")
        pytest.skip(f"{reason}; run `make sam-build` first")
    template: dict[str, Any] = yaml_parse(BUILT_TEMPLATE.read_text())
    return template


@dataclass(frozen=True)
class Artifact:
    """One built code directory and the architectures of the functions that load it."""

    logical_id: str
    path: Path
    architectures: frozenset[str]


def _function_properties(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    globals_ = template.get("Globals", {}).get("Function", {})
    return {
        logical_id: {**globals_, **resource.get("Properties", {})}
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }


def _artifacts(template: dict[str, Any]) -> list[Artifact]:
    resources = template["Resources"]
    loaders: dict[str, set[str]] = {}
    artifacts = []
    for logical_id, properties in _function_properties(template).items():
        (architecture,) = properties.get("Architectures", [LAMBDA_DEFAULT_ARCHITECTURE])
        artifacts.append(
            Artifact(logical_id, BUILD / properties["CodeUri"], frozenset({architecture}))
        )
        for layer in properties.get("Layers", []):
            loaders.setdefault(layer["Ref"], set()).add(architecture)
    for layer_id, architectures in loaders.items():
        content = resources[layer_id]["Properties"]["ContentUri"]
        artifacts.append(Artifact(layer_id, BUILD / content, frozenset(architectures)))
    return artifacts


def _elf_machine(path: Path) -> int | None:
    """e_machine of an ELF file, None for anything else."""
    with path.open("rb") as file:
        header = file.read(20)
    if len(header) < 20 or header[:4] != b"\x7fELF":
        return None
    # EI_DATA: 1 little-endian, 2 big-endian.
    return int.from_bytes(header[18:20], "little" if header[5] == 1 else "big")


def _native_libraries(root: Path) -> Iterator[tuple[Path, int]]:
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            machine = _elf_machine(path)
            if machine is not None:
                yield path, machine


def test_sam_build_every_function_and_layer_built(built: dict[str, Any]) -> None:
    artifacts = _artifacts(built)

    assert {artifact.logical_id for artifact in artifacts} >= {"ApiFunction", "CoreLayer"}
    for artifact in artifacts:
        assert artifact.path.is_dir(), f"{artifact.logical_id}: {artifact.path} was not built"


def test_sam_build_native_libraries_match_architecture_of_their_functions(
    built: dict[str, Any],
) -> None:
    mismatched = []
    native = 0
    for artifact in _artifacts(built):
        assert len(artifact.architectures) == 1, (
            f"{artifact.logical_id} is loaded by functions of several architectures "
            f"({sorted(artifact.architectures)}): one build cannot serve them all"
        )
        (architecture,) = artifact.architectures
        for path, machine in _native_libraries(artifact.path):
            native += 1
            if machine != E_MACHINE[architecture]:
                mismatched.append(
                    f"{path.relative_to(BUILD)}: e_machine {machine}, "
                    f"{artifact.logical_id} is loaded by {architecture} functions "
                    f"({E_MACHINE[architecture]})"
                )

    assert native, "no native library found: pydantic_core and cryptography ship some"
    assert mismatched == []


def test_sam_build_layer_declares_architectures_of_its_functions(built: dict[str, Any]) -> None:
    resources = built["Resources"]
    for artifact in _artifacts(built):
        resource = resources[artifact.logical_id]
        if resource["Type"] != "AWS::Serverless::LayerVersion":
            continue
        declared = set(resource["Properties"].get("CompatibleArchitectures", []))
        build_architecture = resource.get("Metadata", {}).get("BuildArchitecture")

        assert artifact.architectures <= declared
        assert {build_architecture} == set(artifact.architectures)


def _bytecode_problem(source: Path) -> str | None:
    """Why Lambda would compile `source` at a cold start instead of loading its bytecode."""
    compiled = source.parent / "__pycache__" / f"{source.stem}.{sys.implementation.cache_tag}.pyc"
    if not compiled.is_file():
        return "no bytecode"
    header = compiled.read_bytes()[:16]
    if header[:4] != MAGIC_NUMBER:
        return "bytecode of another Python"
    # PEP 552: flags 0b01 is hash-based and never checked against the source; a timestamp
    # would have to survive the zip (2-second times) to the second, and the source hash would
    # be recomputed at every import.
    if int.from_bytes(header[4:8], "little") != 0b01:
        return "bytecode checked against its source at import"
    if header[8:16] != source_hash(source.read_bytes()):
        return "bytecode of another version of the source"
    return None


def test_sam_build_layer_ships_unchecked_bytecode_for_every_module(built: dict[str, Any]) -> None:
    """/opt is read-only on Lambda: a module without bytecode is compiled at every cold start."""
    layer = BUILD / built["Resources"]["CoreLayer"]["Properties"]["ContentUri"] / "python"
    sources = list(layer.rglob("*.py"))
    problems = {str(s.relative_to(layer)): _bytecode_problem(s) for s in sources}

    assert len(sources) > 1000  # ferry and every library
    assert any(path.startswith("ferry/") for path in problems)
    assert {path: problem for path, problem in problems.items() if problem} == {}


def _layer_distributions(layer: Path) -> dict[str, Path]:
    """Normalised distribution name → its dist-info folder, as pip installed them."""
    found = {}
    for info in (layer / "python").glob("*.dist-info"):
        name = info.name.removesuffix(".dist-info").rsplit("-", 1)[0]
        found[name.lower().replace("_", "-")] = info
    return found


def _metadata_field(info: Path, field: str) -> list[str]:
    prefix = f"{field}: "
    return [
        line.removeprefix(prefix)
        for line in (info / "METADATA").read_text().splitlines()
        if line.startswith(prefix)
    ]


def test_sam_build_layer_ships_boto3_with_the_botocore_it_needs(built: dict[str, Any]) -> None:
    """The layer's botocore shadows the runtime's: without its own boto3 the runtime's boto3
    would run on a botocore it was not released with."""
    distributions = _layer_distributions(BUILD / "CoreLayer")

    assert {"boto3", "botocore"} <= set(distributions)
    botocore_version = Version(_metadata_field(distributions["botocore"], "Version")[0])
    wanted = [
        Requirement(line)
        for line in _metadata_field(distributions["boto3"], "Requires-Dist")
        if line.startswith("botocore")
    ]
    assert wanted
    assert all(botocore_version in requirement.specifier for requirement in wanted)


# -- what the handlers import, and whether the layer has it ---------------------------------

FIRST_PARTY = ("ferry", "functions")


def handler_modules() -> set[str]:
    """The module of every function's handler, as template.yaml names it (CodeUri + Handler)."""
    return {
        ".".join([*Path(properties["CodeUri"]).parts, properties["Handler"].rpartition(".")[0]])
        for properties in _function_properties(sam_template()).values()
    }


@cache
def _module_file(name: str) -> Path | None:
    try:
        spec = find_spec(name)
    except ModuleNotFoundError:
        return None
    if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
        return None
    return Path(spec.origin)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(path: Path, module: str) -> Iterator[tuple[str, list[str]]]:
    """(module, names) of every import in the file, also inside functions, but not those only
    made for type checking."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]

    def visit(node: ast.AST) -> Iterator[tuple[str, list[str]]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for other in child.orelse:
                    yield from visit(other)
                continue
            if isinstance(child, ast.Import):
                yield from ((alias.name, []) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    parts = package.split(".")[: len(package.split(".")) - child.level + 1]
                    base = ".".join([*parts, base] if base else parts)
                yield base, [alias.name for alias in child.names]
            yield from visit(child)

    yield from visit(parse_python(path.read_text(), filename=str(path)))


def handler_imports() -> dict[str, set[str]]:
    """Third-party top-level module → the first-party modules reachable from the Lambda
    handlers that import it."""
    seen: set[str] = set()
    third_party: dict[str, set[str]] = {}
    todo = sorted(handler_modules())
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        path = _module_file(module)
        if path is None:
            continue
        for base, names in _imports(path, module):
            top = base.partition(".")[0]
            if top in FIRST_PARTY:
                parts = base.split(".")
                todo.extend(".".join(parts[:i]) for i in range(1, len(parts) + 1))
                todo.extend(f"{base}.{name}" for name in names if _module_file(f"{base}.{name}"))
            elif top and top != "__future__" and top not in sys.stdlib_module_names:
                third_party.setdefault(top, set()).add(module)
    return third_party


def test_handler_imports_reach_no_cli_or_local_stack_package() -> None:
    imported = handler_imports()

    assert "functions.api.app" in handler_modules()
    assert {"fastapi", "pynamodb", "aws_lambda_powertools"} <= set(imported)
    assert not set(imported) & {"typer", "rich", "uvicorn", "moto", "samtranslator", "docker"}


def test_sam_build_layer_has_every_module_the_handlers_import(built: dict[str, Any]) -> None:
    layer = BUILD / "CoreLayer" / "python"
    missing = {
        top: sorted(importers)
        for top, importers in handler_imports().items()
        if not (layer / top).is_dir() and not (layer / f"{top}.py").is_file()
    }

    assert missing == {}
