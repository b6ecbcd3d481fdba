"""One ``free_port`` and one way to start the add-on server, shared by tests, demo and scripts.

``homeiq_addon/launch.py`` is that one place. The demo and the end-to-end tests import it from
Home Assistant's environment, which lacks the add-on's dependencies: it may import nothing but
the standard library.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LAUNCHER = ROOT / "addon/homeiq_addon/launch.py"
FOLDERS = ("addon", "custom_components", "demo", "evaluation", "scripts", "tests")


def _python_files() -> list[Path]:
    return sorted(
        p for folder in FOLDERS for p in (ROOT / folder).rglob("*.py") if "__pycache__" not in p.parts
    )


def test_free_port_is_defined_once() -> None:
    defined = [
        f"{path.relative_to(ROOT)}:{node.lineno}"
        for path in _python_files()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and re.fullmatch(r"_*free_port", node.name)
    ]
    assert defined == [f"{LAUNCHER.relative_to(ROOT)}:{_line_of(LAUNCHER, 'def free_port')}"]


def test_only_the_launcher_starts_the_server() -> None:
    """A ``serve`` command line outside launch.py would be a second launcher."""
    serve = re.compile(r"""["']homeiq_addon["'],\s*["']serve["']""")
    found = [str(p.relative_to(ROOT)) for p in _python_files() if serve.search(p.read_text(encoding="utf-8"))]
    assert found == [str(LAUNCHER.relative_to(ROOT))]


def test_the_launcher_imports_only_the_standard_library() -> None:
    tree = ast.parse(LAUNCHER.read_text(encoding="utf-8"))
    imported = {
        (alias.name if isinstance(node, ast.Import) else node.module or "").split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert imported - {"__future__"} <= set(sys.stdlib_module_names), imported - set(sys.stdlib_module_names)


def _line_of(path: Path, text: str) -> int:
    return next(n for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if text in line)
