"""MIG: a module's Alembic revisions create, alter and drop only that module's tables.

Reads every `op.*` / `batch_op.*` operation of `modules/<m>/alembic/versions/*.py`,
including the table names inside raw SQL given to `op.execute`, and checks that
`alembic/env.py` runs the module's own environment.
"""

from __future__ import annotations

import ast
import re

from validation.astutil import argument, call_name, dotted, string
from validation.findings import Finding
from validation.project import Project, Source

# op.<operation> -> (position, keyword) of each table-name argument.
OP_TABLES: dict[str, tuple[tuple[int, str], ...]] = {
    "create_table": ((0, "table_name"),),
    "drop_table": ((0, "table_name"),),
    "rename_table": ((0, "old_table_name"), (1, "new_table_name")),
    "add_column": ((0, "table_name"),),
    "drop_column": ((0, "table_name"),),
    "alter_column": ((0, "table_name"),),
    "create_index": ((1, "table_name"),),
    "drop_index": ((1, "table_name"),),
    "create_unique_constraint": ((1, "table_name"),),
    "create_check_constraint": ((1, "table_name"),),
    "create_primary_key": ((1, "table_name"),),
    "create_foreign_key": ((1, "source_table"),),
    "create_exclude_constraint": ((1, "table_name"),),
    "drop_constraint": ((1, "table_name"),),
    "create_table_comment": ((0, "table_name"),),
    "drop_table_comment": ((0, "table_name"),),
    "batch_alter_table": ((0, "table_name"),),
    "bulk_insert": ((0, "table"),),
}
# Operations whose table name is optional (batch_op.* know their table already).
OPTIONAL = {"drop_index"}
SQL = re.compile(
    r"\b(?:(?:create|alter|drop)\s+table(?:\s+if\s+(?:not\s+)?exists)?|truncate(?:\s+table)?|insert\s+into"
    r"|(?<!on\s)(?<!do\s)(?<!for\s)update|delete\s+from|create\s+(?:unique\s+)?index\s+(?:concurrently\s+)?(?:if\s+not\s+exists\s+)?\S+\s+on"
    r"|references)\s+(?:only\s+)?([\"`\[]?[\w.]+)",
    re.IGNORECASE,
)


def check(project: Project) -> list[Finding]:
    findings: list[Finding] = []
    for module in project.modules:
        for source in project.sources(module):
            if source.rel.startswith(f"modules/{module}/alembic/versions/"):
                findings += _revision(project, source)
            elif source.rel == f"modules/{module}/alembic/env.py":
                findings += _env(source)
    return findings


def _tables(node: ast.Call, source: Source, tables: dict[str, str]) -> list[tuple[str | None, int]]:
    """The table names an operation touches; None marks a name that cannot be read statically."""
    name = call_name(node)
    receiver = dotted(node.func.value) if isinstance(node.func, ast.Attribute) else ""
    if receiver != "op":
        return []  # batch_op.* act on the table batch_alter_table named, checked there
    if name == "execute":
        sql = argument(node, 0, "sqltext")
        if isinstance(sql, ast.Call) and call_name(sql) == "text":
            sql = argument(sql, 0, "text")
        text = string(sql, source.consts)
        if text is None:
            return []  # an expression (op.execute(table.update()...)): its table is named where it was built
        return [(m.strip('"`[]').split(".")[-1], node.lineno) for m in SQL.findall(text)]
    found: list[tuple[str | None, int]] = []
    for index, keyword in OP_TABLES.get(name, ()):
        arg = argument(node, index, keyword)
        if arg is None:
            if name not in OPTIONAL:
                found.append((None, node.lineno))
            continue
        if isinstance(arg, ast.Call) and call_name(arg) in {"table", "Table"}:
            arg = argument(arg, 0, "name")
        elif isinstance(arg, ast.Name) and arg.id in tables:
            found.append((tables[arg.id], node.lineno))
            continue
        found.append((string(arg, source.consts), node.lineno))
    return found


def _revision(project: Project, source: Source) -> list[Finding]:
    # Lightweight tables for data migrations: `users = sa.table("users_x", ...)`.
    tables = {
        t.id: name
        for node in source.assigns
        if isinstance(node, ast.Assign)
        and isinstance(node.value, ast.Call)
        and call_name(node.value) in {"table", "Table"}
        and (name := string(argument(node.value, 0, "name"), source.consts)) is not None
        for t in node.targets
        if isinstance(t, ast.Name)
    }
    findings = []
    for node in source.calls:
        for table, line in _tables(node, source, tables):
            if table is None:
                findings.append(
                    Finding(
                        source.rel,
                        line,
                        "MIG-002",
                        f"op.{call_name(node)} names its table with an expression the validator cannot read",
                        f'write the table name as a string literal ("{source.module}_...")',
                    )
                )
            elif project.owner(table) != source.module:
                owner = project.owner(table)
                whose = f"module {owner}'s table" if owner else "a table no module owns"
                findings.append(
                    Finding(
                        source.rel,
                        line,
                        "MIG-001",
                        f"migration of module {source.module} touches '{table}' ({whose}) with op.{call_name(node)}",
                        f"change only tables of module {source.module} here; a change to {owner or 'that table'} "
                        f"belongs in {'modules/' + owner + '/alembic' if owner else 'the module that owns it'}",
                    )
                )
    return findings


def _env(source: Source) -> list[Finding]:
    for node in source.calls:
        if call_name(node) == "run_module_env":
            name = string(argument(node, 0, "module"), source.consts)
            if name != source.module:
                return [
                    Finding(
                        source.rel,
                        node.lineno,
                        "MIG-003",
                        f"alembic/env.py runs the environment of '{name}', not of module {source.module}",
                        f'call run_module_env("{source.module}"), so revisions go to alembic_version_{source.module}',
                    )
                ]
    return []
