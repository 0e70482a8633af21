"""Layers import downward only (README, "Layout"): no package imports one above it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN = {
    "jobs": {"api", "auth", "profiles", "runners", "service", "cli"},
    "auth": {"api", "jobs", "profiles", "runners", "service", "cli"},
    "runners": {"api", "auth", "jobs", "profiles", "service", "cli"},
    # Profiles sit beside the accounts, whose store location they share (auth.backends).
    "profiles": {"api", "jobs", "runners", "service", "cli"},
}


def imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_a_package_imports_nothing_above_it(package: str) -> None:
    offending = {
        path.relative_to(ROOT).as_posix(): sorted(imported_packages(path) & FORBIDDEN[package])
        for path in (ROOT / package).rglob("*.py")
    }
    assert {module: names for module, names in offending.items() if names} == {}
