"""The package graph points one way: payments <- ops <- devkit.

- ``payments`` (the Lambda package: domain, handlers, jobs) imports neither ``ops`` nor ``devkit``;
- ``ops`` (the operator CLI) imports ``payments`` and runtime libraries, never ``devkit``;
- ``devkit`` (build, Terraform, emulators, local up/down) may import both.

Every import statement counts, function-local ones included, and so does a module name handed to
``importlib.import_module``: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
import functools
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGES = {"payments": REPO / "lambda" / "payments", "ops": REPO / "ops", "devkit": REPO / "devkit"}
FORBIDDEN = {"payments": {"ops", "devkit"}, "ops": {"devkit"}, "devkit": set()}
# What ops may import besides itself and payments: the runtime dependencies of `pip install .`.
OPS_THIRD_PARTY = {"boto3", "botocore", "click", "rich"}
# What the parts of payments that ops imports may use: they must run in a plain `pip install .`.
PAYMENTS_CORE_THIRD_PARTY = {"boto3", "botocore"}


@functools.cache
def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


@functools.cache
def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, top-level module name) of every import in ``path``, relative ones resolved."""
    tree = _tree(path)
    found: list[tuple[int, str]] = []
    for node in _runtime_nodes(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                found.append((node.lineno, _package_of(path)))
            elif node.module:
                found.append((node.lineno, node.module))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.append((node.lineno, node.args[0].value))
    return found


def _runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node except those under ``if TYPE_CHECKING:`` (type-only imports never run)."""
    out: list[ast.AST] = []
    todo = [tree]
    while todo:
        node = todo.pop()
        out.append(node)
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                todo += child.orelse
            else:
                todo.append(child)
    return out


def _package_of(path: Path) -> str:
    for name, root in PACKAGES.items():
        if path.is_relative_to(root):
            return name
    raise AssertionError(path)


def _modules(package: str) -> list[Path]:
    return sorted(PACKAGES[package].rglob("*.py"))


def _module_name(path: Path) -> str:
    root = PACKAGES[_package_of(path)].parent
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_no_import_goes_the_wrong_way(package: str) -> None:
    wrong = [
        f"{path.relative_to(REPO)}:{line}: imports {name}"
        for path in _modules(package)
        for line, name in _imports(path)
        if name.split(".")[0] in FORBIDDEN[package]
    ]
    assert wrong == []


@functools.cache
def _paths() -> dict[str, Path]:
    """Module name -> file of every first-party module."""
    return {_module_name(p): p for package in PACKAGES for p in _modules(package)}


def _closure(start: set[str]) -> set[str]:
    """First-party modules reachable by import from ``start`` (module names)."""
    paths = _paths()
    seen: set[str] = set()
    todo = list(start)
    while todo:
        name = todo.pop()
        if name in seen or name not in paths:
            continue
        seen.add(name)
        for _, imported in _imports(paths[name]):
            # "from payments import money" names the module payments.money, or a name in payments.
            todo += [imported, *(f"{imported}.{n}" for n in _names_imported(paths[name], imported))]
            parts = imported.split(".")
            todo += [".".join(parts[:i]) for i in range(1, len(parts))]
    return seen


def _names_imported(path: Path, module: str) -> list[str]:
    return [
        alias.name
        for node in ast.walk(_tree(path))
        if isinstance(node, ast.ImportFrom) and node.module == module
        for alias in node.names
    ]


def _third_party(modules: set[str]) -> dict[str, set[str]]:
    paths = _paths()
    stdlib = set(sys.stdlib_module_names) | {"__future__"}
    out: dict[str, set[str]] = {}
    for name in modules:
        for _, imported in _imports(paths[name]):
            top = imported.split(".")[0]
            if top not in stdlib and top not in PACKAGES:
                out.setdefault(top, set()).add(name)
    return out


def test_the_operator_cli_needs_only_its_runtime_dependencies() -> None:
    """`pip install .` installs boto3, click and rich: everything `ops` reaches must do with those.

    The Lambda runtime libraries (Powertools, the X-Ray SDK, fastjsonschema) belong to the handlers,
    which ops never imports.
    """
    reached = _closure({_module_name(p) for p in _modules("ops")})
    payments_part = {m for m in reached if m.split(".")[0] == "payments"}
    assert payments_part, "ops uses the payments jobs"
    assert not any(m.startswith("payments.handlers") for m in reached)
    ops_part = reached - payments_part
    assert set(_third_party(ops_part)) <= OPS_THIRD_PARTY, _third_party(ops_part)
    assert set(_third_party(payments_part)) <= PAYMENTS_CORE_THIRD_PARTY, _third_party(payments_part)


def test_the_graph_is_read_from_real_imports() -> None:
    """The walk above sees what it must (guards against a walker that finds nothing)."""
    trace = PACKAGES["ops"] / "core" / "trace.py"
    assert "payments.ids" in {name for _, name in _imports(trace)}
    assert "payments.jobs.report" in _closure({"ops.cli.report"})
