"""The project as the validator sees it: modules, their files, parsed once."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path

from validation.astutil import bound_names, constants, package_of
from validation.findings import Finding

# What every module must hold (the module template's layout).
PACKAGES = ("routes", "models", "schemas", "services", "cache", "enums")
FOLDERS = ("alembic/versions", "tests")
FILES = ("__init__.py", "alembic/env.py")
VERSION_TABLE = "alembic_version_"


class Source:
    """One parsed file of a module, with what most rules need from it."""

    def __init__(self, rel: str, module: str, tree: ast.Module) -> None:
        self.rel = rel
        self.module = module
        self.tree = tree
        self.package = package_of(rel)

    @cached_property
    def consts(self) -> dict[str, str]:
        return constants(self.tree)

    @cached_property
    def bound(self) -> dict[str, str]:
        return bound_names(self.tree, self.package)

    @cached_property
    def in_tests(self) -> bool:
        return self.rel.split("/")[2] == "tests"

    @cached_property
    def in_alembic(self) -> bool:
        return self.rel.split("/")[2] == "alembic"


class Project:
    """Parses each file at most once; files that do not parse become PARSE-001 findings."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.modules_dir = root / "modules"
        self._trees: dict[Path, ast.Module | None] = {}
        self._sources: dict[Path, Source | None] = {}
        self.parse_errors: list[Finding] = []

    @cached_property
    def modules(self) -> list[str]:
        """Module packages, found exactly as the module loader finds them."""
        if not self.modules_dir.is_dir():
            return []
        return sorted(
            p.name
            for p in self.modules_dir.iterdir()
            if p.is_dir() and (p / "__init__.py").is_file() and p.name.isidentifier() and not p.name.startswith("_")
        )

    @cached_property
    def _by_length(self) -> list[str]:
        return sorted(self.modules, key=len, reverse=True)

    def rel(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    def files(self, module: str, *, tests: bool = True, alembic: bool = True) -> Iterator[Path]:
        """The module's Python files, optionally without tests/ and alembic/."""
        base = self.modules_dir / module
        for path in sorted(base.rglob("*.py")):
            parts = path.relative_to(base).parts
            if "__pycache__" in parts or any(p.startswith(".") for p in parts):
                continue
            if (not tests and parts[0] == "tests") or (not alembic and parts[0] == "alembic"):
                continue
            yield path

    def versions(self, module: str) -> list[Path]:
        folder = self.modules_dir / module / "alembic" / "versions"
        return sorted(folder.glob("*.py")) if folder.is_dir() else []

    def source(self, path: Path) -> str:
        return path.read_text(encoding="utf-8")

    def tree(self, path: Path) -> ast.Module | None:
        if path not in self._trees:
            try:
                self._trees[path] = ast.parse(self.source(path), filename=str(path))
            except (SyntaxError, UnicodeDecodeError, ValueError) as exc:
                line = getattr(exc, "lineno", None) or 1
                self.parse_errors.append(
                    Finding(self.rel(path), line, "PARSE-001", f"cannot parse: {exc}", "fix the syntax error first")
                )
                self._trees[path] = None
        return self._trees[path]

    def sources(self, module: str) -> list[Source]:
        """Every parsable Python file of a module (tests and alembic included)."""
        found = []
        for path in self.files(module):
            if path not in self._sources:
                tree = self.tree(path)
                self._sources[path] = Source(self.rel(path), module, tree) if tree is not None else None
            source = self._sources[path]
            if source is not None:
                found.append(source)
        return found

    def all_sources(self) -> Iterator[Source]:
        for module in self.modules:
            yield from self.sources(module)

    def owner(self, table: str) -> str | None:
        """The module owning a table: the longest module name `m` with table == m or m_*."""
        if table.startswith(VERSION_TABLE):
            name = table[len(VERSION_TABLE) :]
            return name if name in self.modules else None
        for name in self._by_length:
            if table == name or table.startswith(name + "_"):
                return name
        return None

    def module_of(self, dotted: str) -> str | None:
        """`modules.users.services.x` -> `users`."""
        parts = dotted.split(".")
        if len(parts) >= 2 and parts[0] == "modules":
            return parts[1]
        return None
