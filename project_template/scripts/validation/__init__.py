"""Checks that every module under modules/ stays independent (see docs/boundaries.md).

Each rule module exposes `check(project) -> list[Finding]`; rules read source
files with `ast` and never import the project, except IMP, which runs the
import-linter contracts kept in pyproject.toml.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from validation import caching, dependencies, imports, layout, migrations, routes, tables
from validation.findings import Finding
from validation.project import Project

RULES: dict[str, Callable[[Project], list[Finding]]] = {
    "layout": layout.check,
    "imports": imports.check,
    "dependencies": dependencies.check,
    "tables": tables.check,
    "cache": caching.check,
    "routes": routes.check,
    "migrations": migrations.check,
}


def validate(root: Path) -> tuple[Project, list[Finding]]:
    """Every finding of every rule, sorted by file and line."""
    project = Project(root)
    findings: list[Finding] = []
    for check in RULES.values():
        findings += check(project)
    # Parse errors last: the rules above trigger the parsing.
    findings += project.parse_errors
    return project, sorted(set(findings))
