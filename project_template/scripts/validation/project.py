"""The project as the validator sees it: modules, their files, each parsed and walked once.

Speed matters (100 modules must take well under 3 s), so a file is parsed only when
its text holds something a rule looks at (`RELEVANT`), and each parsed tree is walked
once into lists of the node kinds the rules read. A module's tests/ are left to the
import contract: tables, cache, routes and migrations are about the module's code.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path

from validation.astutil import bound_names, call_name, comes_from, constants, package_of
from validation.findings import Finding

# What every module must hold (the module template's layout); `cache/` only if the module caches.
PACKAGES = ("routes", "models", "schemas", "services", "enums")
FOLDERS = ("alembic/versions", "tests")
FILES = ("__init__.py",)
VERSION_TABLE = "alembic_version_"

# Text that any rule reacts to; a file holding none of it cannot break a rule but the import one.
RELEVANT = re.compile(
    r"__tablename__|Table\(|ForeignKey|relationship\(|create_foreign_key|CacheNamespace|cached\(|\bcache\b"
    r"|APIRouter|include_router|add_\w*route|websocket_route|FastAPI|Starlette|Mount\(|Host\(|\bapp\b"
    r"|@[\w.]+\.(?:get|post|put|patch|delete|head|options|trace|api_route|websocket|route)\("
)


class Source:
    """One parsed file of a module, with what most rules need from it."""

    def __init__(self, rel: str, module: str, tree: ast.Module) -> None:
        self.rel = rel
        self.module = module
        self.tree = tree
        self.package = package_of(rel)
        self.folder = rel.split("/")[2]
        self.in_alembic = self.folder == "alembic"
        self.calls: list[ast.Call] = []
        self.classes: list[ast.ClassDef] = []
        self.functions: list[ast.FunctionDef | ast.AsyncFunctionDef] = []
        self.imports: list[ast.Import | ast.ImportFrom] = []
        self.assigns: list[ast.Assign | ast.AnnAssign] = []
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                self.calls.append(node)
            elif isinstance(node, ast.Assign | ast.AnnAssign):
                self.assigns.append(node)
            elif isinstance(node, ast.Import | ast.ImportFrom):
                self.imports.append(node)
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                self.functions.append(node)
            elif isinstance(node, ast.ClassDef):
                self.classes.append(node)

    @cached_property
    def class_names(self) -> set[str]:
        return {node.name for node in self.classes}

    def calls_from(self, packages: set[str], *names: str) -> Iterator[ast.Call]:
        """Calls of `names` that come from one of `packages` (see `comes_from`)."""
        for call in self.calls:
            if call_name(call) in names and comes_from(call, self.bound, packages, self.class_names):
                yield call

    @cached_property
    def consts(self) -> dict[str, str]:
        return constants(self.tree)

    @cached_property
    def bound(self) -> dict[str, str]:
        return bound_names(self.imports, self.package)


class Project:
    """Files that do not parse become PARSE-001 findings."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.modules_dir = root / "modules"
        self._trees: dict[Path, ast.Module | None] = {}
        self._sources: dict[tuple[str, bool], list[Source]] = {}
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

    @cached_property
    def _key_literal(self) -> re.Pattern[str]:
        """A quoted string starting with a module's cache namespace: `"users:`, `f"users.x:`."""
        names = "|".join(re.escape(m) for m in self._by_length) or "(?!)"
        return re.compile(rf"[\"'](?:{names})(?:\.[\w.-]+)?:")

    def rel(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    def files(self, module: str, *, tests: bool = False) -> Iterator[Path]:
        """The module's Python files (without its tests/ unless asked)."""
        base = self.modules_dir / module
        for path in sorted(base.rglob("*.py")):
            parts = path.relative_to(base).parts
            if "__pycache__" in parts or any(p.startswith(".") for p in parts) or (parts[0] == "tests" and not tests):
                continue
            yield path

    def tree(self, path: Path, text: str | None = None) -> ast.Module | None:
        if path not in self._trees:
            try:
                source = path.read_text(encoding="utf-8") if text is None else text
                self._trees[path] = ast.parse(source, filename=str(path))
            except (SyntaxError, UnicodeDecodeError, ValueError) as exc:
                line = getattr(exc, "lineno", None) or 1
                self.parse_errors.append(
                    Finding(self.rel(path), line, "PARSE-001", f"cannot parse: {exc}", "fix the syntax error first")
                )
                self._trees[path] = None
        return self._trees[path]

    def sources(self, module: str, *, complete: bool = False) -> list[Source]:
        """The module's parsed files outside tests/: those a rule may react to, or all (`complete`)."""
        key = (module, complete)
        if key not in self._sources:
            found = []
            for path in self.files(module):
                text = path.read_text(encoding="utf-8", errors="replace")
                rel = self.rel(path)
                wanted = complete or rel.count("/") == 2 or "/alembic/" in rel
                if not (wanted or RELEVANT.search(text) or self._key_literal.search(text)):
                    continue
                tree = self.tree(path, text)
                if tree is not None:
                    found.append(Source(rel, module, tree))
            self._sources[key] = found
        return self._sources[key]

    def all_sources(self) -> Iterator[Source]:
        for module in self.modules:
            yield from self.sources(module)

    def parse_everything(self) -> None:
        """Parse every file, tests included, so that any syntax error becomes a PARSE-001 finding."""
        for module in self.modules:
            for path in self.files(module, tests=True):
                self.tree(path)

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
