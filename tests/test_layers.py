"""Imports point down: adapters -> bot -> index, and bot names adapters only in its composition root."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import REPO

LAYERS = {"index": {"bot", "adapters"}, "bot": {"adapters"}}  # package -> the packages it must not import
COMPOSITION_ROOT = REPO / "bot" / "serve.py"


def imported_packages(path: Path) -> set[str]:
    """The top-level packages a module imports, at any depth of the file (lazy imports count)."""
    packages: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            packages.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            packages.add(node.module.split(".")[0])
    return packages


def test_imports_point_down() -> None:
    upward = [
        f"{path.relative_to(REPO)} imports {sorted(imported_packages(path) & forbidden)}"
        for package, forbidden in LAYERS.items()
        for path in sorted((REPO / package).glob("*.py"))
        if path != COMPOSITION_ROOT and imported_packages(path) & forbidden
    ]
    assert upward == []
    # the scan sees real imports, lazy ones included
    assert "index" in imported_packages(REPO / "bot" / "service.py")
    assert "adapters" in imported_packages(COMPOSITION_ROOT)
