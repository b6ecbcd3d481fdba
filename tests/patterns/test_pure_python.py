"""The pattern engine must run without Home Assistant (it is tested and benchmarked on its own)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = [ROOT / "custom_components/homeiq/patterns", ROOT / "evaluation"]


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_no_source_file_imports_homeassistant() -> None:
    files = [f for package in PACKAGES for f in sorted(package.rglob("*.py"))]
    assert files, "no sources found"
    offenders = {
        str(f.relative_to(ROOT)): sorted(
            m for m in _imported_modules(f) if m.split(".")[0] == "homeassistant"
        )
        for f in files
    }
    assert {f: m for f, m in offenders.items() if m} == {}


def test_importing_the_engine_loads_no_homeassistant_module() -> None:
    # The integration's own __init__ imports Home Assistant; register its package without running
    # it, so that only what the engine itself imports is measured.
    code = f"""
import sys, types
pkg = types.ModuleType("custom_components.homeiq")
pkg.__path__ = [{str(ROOT / "custom_components/homeiq")!r}]
sys.modules["custom_components.homeiq"] = pkg
import custom_components.homeiq.patterns
import custom_components.homeiq.patterns.__main__
loaded = sorted(m for m in sys.modules if m.split(".")[0] == "homeassistant")
print(loaded)
"""
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_ast_scan_detects_a_homeassistant_import(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("from homeassistant.core import HomeAssistant\nimport numpy\n")
    assert "homeassistant.core" in _imported_modules(sample)
