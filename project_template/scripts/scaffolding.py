"""What the generators share: name checks, table ownership, small source edits, formatting.

Every generator checks everything first and writes only then; a failure while
writing puts back what it changed (`Transaction`), so bad input leaves nothing behind.
"""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import NoReturn

from names import IDENTIFIER, class_name_problem, module_name_problem, snake

PROJECT_ROOT = Path(__file__).resolve().parents[1]
MODULES_DIR = PROJECT_ROOT / "modules"
if str(PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(PROJECT_ROOT))


def refresh_summary() -> None:
    """Rewrite docs/modules-summary.md: what a generator added (a module, table, route) shows there at once."""
    from validation.describe import write  # a sibling of this file, like names.py

    print(f"updated {relative(write(PROJECT_ROOT))}")


class UsageError(Exception):
    """Bad input: the message says what to change; nothing has been written."""


def fail(message: str) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def check_module_name(name: str) -> None:
    """The rules of scripts/names.py (the same as copier.yml's)."""
    if problem := module_name_problem(name):
        raise UsageError(f"module name {problem}")


def existing_modules() -> list[str]:
    if not MODULES_DIR.is_dir():
        return []
    return sorted(p.name for p in MODULES_DIR.iterdir() if (p / "__init__.py").is_file())


def require_module(name: str) -> Path:
    """The folder of an existing module, or a `UsageError` listing the known ones."""
    if not IDENTIFIER.fullmatch(name):
        raise UsageError(f"module name {name!r} must be a lowercase Python identifier")
    path = MODULES_DIR / name
    if not (path / "__init__.py").is_file():
        known = ", ".join(existing_modules()) or "none yet"
        raise UsageError(f"there is no module {name!r} (modules: {known}); create it with scripts/create_module.py")
    return path


def check_class_name(name: str, what: str = "class name") -> None:
    """CamelCase, and its snake_case file name importable (`Class` would be class.py)."""
    if problem := class_name_problem(name):
        raise UsageError(f"{what} {problem}")


def camel(name: str) -> str:
    """`order_line` -> `OrderLine`."""
    return "".join(part.capitalize() for part in name.split("_"))


def plural(word: str) -> str:
    if word.endswith("y") and word[-2:-1] not in "aeiou":
        return word[:-1] + "ies"
    if word.endswith(("s", "x", "z", "ch", "sh")):
        return word + "es"
    return word + "s"


def singular(word: str) -> str:
    if word.endswith("ies"):
        return word[:-3] + "y"
    if word.endswith(("sses", "xes", "ches", "shes")):
        return word[:-2]
    if word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def table_for(module: str, class_name: str) -> str:
    """The ownership rule: `Product` in `products` -> `products`; `Category` -> `products_categories`."""
    name = snake(class_name)
    if name in (module, singular(module)) or plural(name) == module:
        return module
    prefix = singular(module) + "_"
    if name.startswith(prefix):  # OrderLine in orders -> orders_lines, not orders_order_lines
        name = name[len(prefix) :]
    return f"{module}_{plural(name)}"


_TABLENAME = re.compile(r"""__tablename__\s*(?::\s*str\s*)?=\s*["']([^"']+)["']""")


def declared_tables() -> dict[str, Path]:
    """Every `__tablename__` declared under modules/, with the file declaring it."""
    found: dict[str, Path] = {}
    for path in sorted(MODULES_DIR.glob("*/models/**/*.py")):
        for table in _TABLENAME.findall(path.read_text(encoding="utf-8")):
            found.setdefault(table, path)
    return found


def defined_names(path: Path) -> set[str]:
    """Top-level classes and functions of a Python file (empty when it does not exist)."""
    if not path.is_file():
        return set()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    kinds = (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
    return {node.name for node in tree.body if isinstance(node, kinds)}


def add_export(package_init: Path, module: str, names: list[str]) -> str:
    """Source of `package_init` with `from <module> import <names>` added and `__all__` extended."""
    source = package_init.read_text(encoding="utf-8") if package_init.is_file() else ""
    tree = ast.parse(source)
    exported: list[str] = []
    all_node: ast.Assign | None = None
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            all_node = node
            exported = [e.value for e in getattr(node.value, "elts", []) if isinstance(getattr(e, "value", None), str)]
    lines = source.splitlines()
    new_all = "__all__ = [" + ", ".join(f'"{n}"' for n in sorted({*exported, *names})) + "]"
    if all_node is not None:
        end = all_node.end_lineno or all_node.lineno
        lines[all_node.lineno - 1 : end] = [new_all]
    else:
        lines += ["", new_all]
    imports = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
    at = (imports[-1].end_lineno or imports[-1].lineno) if imports else _after_docstring(tree)
    lines.insert(at, f"from {module} import {', '.join(names)}")
    return "\n".join(lines) + "\n"


def _after_docstring(tree: ast.Module) -> int:
    first = tree.body[0] if tree.body else None
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
        return first.end_lineno or first.lineno
    return 0


class Transaction:
    """Files to write, written together; on failure every one is put back as it was."""

    def __init__(self) -> None:
        self.pending: dict[Path, str] = {}
        self._saved: dict[Path, str | None] = {}

    def write(self, path: Path, content: str) -> None:
        self.pending[path] = content

    def commit(self) -> list[Path]:
        for path, content in self.pending.items():
            self._saved[path] = path.read_text(encoding="utf-8") if path.exists() else None
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content, encoding="utf-8")
        return list(self.pending)

    def rollback(self) -> None:
        for path, before in self._saved.items():
            if before is None:
                path.unlink(missing_ok=True)
            else:
                path.write_text(before, encoding="utf-8")


def tidy(paths: list[Path]) -> None:
    """Sort imports and format the written files with the project's own ruff settings."""
    ruff = shutil.which("ruff")
    files = [str(p) for p in paths if p.suffix == ".py"]
    if ruff is None or not files:
        return
    subprocess.run([ruff, "check", "--fix-only", "--quiet", "--select", "I,F401,RUF022", *files], check=False)
    subprocess.run([ruff, "format", "--quiet", *files], check=False)


def relative(path: Path) -> str:
    try:
        return str(path.relative_to(PROJECT_ROOT))
    except ValueError:
        return str(path)
