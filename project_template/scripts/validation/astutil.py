"""Small AST helpers shared by the rules."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass


def dotted(node: ast.expr) -> str:
    """`sa.orm.relationship` -> "sa.orm.relationship"; "" when not a plain dotted name."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = dotted(node.value)
        return f"{base}.{node.attr}" if base else ""
    return ""


def call_name(call: ast.Call) -> str:
    """The last segment of the called name: `op.create_table(...)` -> "create_table"."""
    func = call.func
    if isinstance(func, ast.Attribute):
        return func.attr
    if isinstance(func, ast.Name):
        return func.id
    return ""


def constants(tree: ast.Module) -> dict[str, str]:
    """Module-level `NAME = "literal"` bindings, so `__tablename__ = TABLE` resolves."""
    found: dict[str, str] = {}
    for stmt in tree.body:
        target: ast.expr | None = None
        value: ast.expr | None = None
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
            target, value = stmt.targets[0], stmt.value
        elif isinstance(stmt, ast.AnnAssign):
            target, value = stmt.target, stmt.value
        if isinstance(target, ast.Name) and isinstance(value, ast.Constant) and isinstance(value.value, str):
            found[target.id] = value.value
    return found


def string(node: ast.expr | None, consts: dict[str, str]) -> str | None:
    """A string literal, or a module-level constant holding one; None otherwise."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Name):
        return consts.get(node.id)
    return None


def leading_text(node: ast.expr, consts: dict[str, str]) -> str | None:
    """The literal start of a string, an f-string (`f"users:{id}"` -> "users:") or a module-level constant."""
    if (text := string(node, consts)) is not None:
        return text
    if isinstance(node, ast.JoinedStr) and node.values:
        first = node.values[0]
        if isinstance(first, ast.Constant) and isinstance(first.value, str):
            return first.value
    return None


def argument(call: ast.Call, index: int, keyword: str) -> ast.expr | None:
    """A call's argument by position or by keyword."""
    for kw in call.keywords:
        if kw.arg == keyword:
            return kw.value
    if index < len(call.args) and not any(isinstance(a, ast.Starred) for a in call.args[: index + 1]):
        return call.args[index]
    return None


@dataclass(frozen=True)
class Import:
    module: str  # the imported module ("modules.users.services")
    names: tuple[str, ...]  # names taken from it (empty for `import x`)
    line: int


def resolve_from(node: ast.ImportFrom, package: str) -> str:
    """The absolute module of `from ... import`, relative levels resolved against `package`."""
    if not node.level:
        return node.module or ""
    parts = package.split(".")
    base = parts[: len(parts) - node.level + 1]
    return ".".join([*base, node.module] if node.module else base)


def imports(nodes: list[ast.Import | ast.ImportFrom], package: str) -> Iterator[Import]:
    """Every import of a file; `package` is the file's own package (for relative imports)."""
    for node in nodes:
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(alias.name, (), node.lineno)
        elif isinstance(node, ast.ImportFrom):
            yield Import(resolve_from(node, package), tuple(a.name for a in node.names), node.lineno)


def package_of(rel_path: str) -> str:
    """`modules/users/routes/items.py` -> "modules.users.routes" (the package a file belongs to)."""
    return ".".join(rel_path.removesuffix(".py").split("/")[:-1])


def bound_names(nodes: list[ast.Import | ast.ImportFrom], package: str) -> dict[str, str]:
    """Local name -> qualified origin, for `from x import y [as z]` and `import x.y [as z]`."""
    bound: dict[str, str] = {}
    for node in nodes:
        if isinstance(node, ast.ImportFrom):
            origin = resolve_from(node, package)
            for alias in node.names:
                bound[alias.asname or alias.name] = f"{origin}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                local = alias.asname or alias.name.split(".")[0]
                bound[local] = alias.name if alias.asname else local
    return bound


def comes_from(call: ast.Call, bound: dict[str, str], packages: set[str], local_classes: set[str]) -> bool:
    """Whether the called name is one of `packages`' (imported from it, or unbound and not a local class).

    Keeps a module's own class named `Table` or `Host` from being taken for SQLAlchemy's or Starlette's.
    """
    root = dotted(call.func).split(".")[0]
    if not root:
        return False
    if root in bound:
        return bound[root].split(".")[0] in packages
    return root not in local_classes
