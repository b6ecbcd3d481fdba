"""No import cycles inside the add-on's package or the integration.

Imports are read with ``ast``, not executed, so a cycle hidden in a function body (an import
moved there to dodge the cycle at start-up) counts as much as one at module level. Imports under
``if TYPE_CHECKING:`` never run and are left out.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {
    "homeiq_addon": ROOT / "addon/homeiq_addon",
    "custom_components.homeiq": ROOT / "custom_components/homeiq",
}


def _module_names(package: str, folder: Path) -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its own name, for __init__)."""
    modules = {}
    for path in sorted(folder.rglob("*.py")):
        parts = list(path.relative_to(folder).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join([package, *parts])] = path
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(node: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement that can run: module level, in functions and classes, in try or if."""
    if isinstance(node, ast.Import | ast.ImportFrom):
        yield node
    elif isinstance(node, ast.If) and _is_type_checking(node.test):
        for child in node.orelse:
            yield from _imports(child)
    else:
        for child in ast.iter_child_nodes(node):
            yield from _imports(child)


def import_graph(package: str, folder: Path) -> dict[str, set[str]]:
    """Which of the package's modules each of its modules imports."""
    modules = _module_names(package, folder)
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        own_package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in _imports(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = node.module or ""
                if node.level:
                    anchor = own_package.split(".")
                    anchor = anchor[: len(anchor) - (node.level - 1)]
                    base = ".".join([*anchor, *([base] if base else [])])
                # "from pkg import module" imports the module; "from module import name" the module.
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            graph[name] |= {target for target in targets if target in modules and target != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


@pytest.mark.parametrize("package", list(PACKAGES))
def test_no_import_cycles(package: str) -> None:
    graph = import_graph(package, PACKAGES[package])
    assert len(graph) > 5, "the package's modules were not found"
    assert cycles(graph) == []


def test_the_checker_finds_a_cycle_through_a_function_local_import(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    (package / "api").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "api/__init__.py").write_text("from pkg.api.routes import ROUTES\n")
    (package / "api/routes.py").write_text(
        "ROUTES = []\ndef document():\n    from pkg.api.openapi import build\n    return build()\n"
    )
    (package / "api/openapi.py").write_text("from . import routes\ndef build():\n    return routes.ROUTES\n")
    (package / "types.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.api import routes\n"
    )
    graph = import_graph("pkg", package)
    assert graph["pkg.api"] == {"pkg.api.routes"}
    assert graph["pkg.types"] == set()  # only for the type checker
    assert cycles(graph) == [["pkg.api.openapi", "pkg.api.routes"]]
    (package / "api/routes.py").write_text("ROUTES = []\n")
    assert cycles(import_graph("pkg", package)) == []
