"""TBL and FK: a module declares only its own tables and never points a foreign key elsewhere.

Ownership: a table belongs to the module with the longest name `m` such that the
table is `m` or `m_*` (so with modules `users` and `users_roles`, the table
`users_roles_map` belongs to `users_roles`). Alembic's `alembic_version_<m>` is `m`'s.
"""

from __future__ import annotations

import ast
from collections import defaultdict

from validation.astutil import argument, call_name, dotted, string
from validation.findings import Finding
from validation.project import Project, Source

SQLALCHEMY = {"sqlalchemy"}
TABLE_FIX = "name it {module} or {module}_<something>; data of another module is reached through its services"


def check(project: Project) -> list[Finding]:
    declared: dict[str, list[tuple[Source, int]]] = defaultdict(list)
    classes = _classes(project)
    findings: list[Finding] = []
    for source in project.all_sources():
        if not source.in_alembic:
            for table, line in _declarations(source, findings):
                declared[table].append((source, line))
        findings += _foreign_keys(project, source)
        findings += _relationships(project, source, classes)
    for table, places in sorted(declared.items()):
        owner = project.owner(table)
        modules = {source.module for source, _ in places}
        for source, line in places:
            if source.module == owner:
                continue
            if len(modules) > 1:
                others = ", ".join(f"{s.rel}:{n}" for s, n in places if s.module != source.module)
                findings.append(
                    Finding(
                        source.rel,
                        line,
                        "TBL-002",
                        f"table '{table}' is declared by more than one module (also at {others})",
                        TABLE_FIX.format(module=source.module) + "; each table has exactly one owner",
                    )
                )
            else:
                whose = f"module {owner}'s namespace" if owner else "no module's namespace"
                findings.append(
                    Finding(
                        source.rel,
                        line,
                        "TBL-001",
                        f"module {source.module} declares table '{table}', which is in {whose}",
                        TABLE_FIX.format(module=source.module),
                    )
                )
    return findings


def _declarations(source: Source, findings: list[Finding]) -> list[tuple[str, int]]:
    """Tables declared by `__tablename__` and `Table(...)`; unresolvable names become TBL-003."""
    found = []
    for node in source.classes:
        for stmt in node.body:
            value = _tablename(stmt)
            if value is None:
                continue
            name = string(value, source.consts) if isinstance(value, ast.expr) else None
            if name is None:
                findings.append(_unresolved(source, stmt.lineno))
            else:
                found.append((name, stmt.lineno))
    for call in source.calls_from(SQLALCHEMY, "Table"):
        name = string(argument(call, 0, "name"), source.consts)
        if name is None:
            findings.append(_unresolved(source, call.lineno))
        else:
            found.append((name, call.lineno))
    return found


def _tablename(stmt: ast.stmt) -> ast.expr | ast.FunctionDef | None:
    if isinstance(stmt, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__tablename__" for t in stmt.targets):
        return stmt.value
    if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and stmt.target.id == "__tablename__":
        return stmt.value
    if isinstance(stmt, ast.FunctionDef) and stmt.name == "__tablename__":
        return stmt  # declared_attr: computed, so it cannot be checked
    return None


def _unresolved(source: Source, line: int) -> Finding:
    return Finding(
        source.rel,
        line,
        "TBL-003",
        "table name is computed, so its owner cannot be checked",
        f'write it as a string literal: __tablename__ = "{source.module}_<something>"',
    )


def _fk_targets(call: ast.Call) -> list[ast.expr]:
    name = call_name(call)
    if name == "ForeignKey":
        target = argument(call, 0, "column")
        return [target] if target is not None else []
    if name == "ForeignKeyConstraint":
        refs = argument(call, 1, "refcolumns")
        return list(refs.elts) if isinstance(refs, ast.List | ast.Tuple) else []
    return []


def _foreign_keys(project: Project, source: Source) -> list[Finding]:
    findings = []
    for node in source.calls:
        targets: list[tuple[str | None, str]] = []  # (table, how it was written)
        for target in _fk_targets(node):
            text = string(target, source.consts)
            if text is not None:
                parts = text.split(".")
                targets.append((parts[-2] if len(parts) >= 2 else parts[0], text))
            else:
                origin = source.bound.get(dotted(target).split(".")[0], "")
                other = project.module_of(origin)
                if other and other != source.module:
                    targets.append((None, f"{dotted(target)} of module {other}"))
        if call_name(node) == "create_foreign_key":
            # op.create_foreign_key(name, source, referent, ...) / batch_op.create_foreign_key(name, referent, ...)
            batch = dotted(node.func).split(".")[0] != "op"
            referent = argument(node, 1 if batch else 2, "referent_table")
            table = string(referent, source.consts)
            if table is not None:
                targets.append((table, table))
        for table, text in targets:
            if table is not None and project.owner(table) == source.module:
                continue
            owner = project.owner(table) if table else None
            whose = f" (module {owner}'s table)" if owner else ""
            findings.append(
                Finding(
                    source.rel,
                    node.lineno,
                    "FK-001",
                    f"module {source.module} has a foreign key to {text}{whose}",
                    "store the other module's id as a plain column (e.g. `user_id: Mapped[int]`) "
                    "and check it through that module's services",
                )
            )
    return findings


def _classes(project: Project) -> dict[str, set[str]]:
    """Class name -> modules defining a class of that name in their models."""
    found: dict[str, set[str]] = defaultdict(set)
    for source in project.all_sources():
        if source.folder == "models":
            for node in source.classes:
                found[node.name].add(source.module)
    return found


def _relationships(project: Project, source: Source, classes: dict[str, set[str]]) -> list[Finding]:
    findings = []
    for node in source.calls:
        if call_name(node) != "relationship":
            continue
        target = argument(node, 0, "argument")
        other: str | None = None
        text = string(target, source.consts) if target is not None else None
        if text is not None:
            name = text.split(".")[-1]
            owners = classes.get(name, set())
            if owners and source.module not in owners:
                other = sorted(owners)[0]
        elif target is not None:
            expr = target.body if isinstance(target, ast.Lambda) else target
            other = project.module_of(source.bound.get(dotted(expr).split(".")[0], ""))
        if other and other != source.module:
            findings.append(
                Finding(
                    source.rel,
                    node.lineno,
                    "FK-002",
                    f"module {source.module} maps a relationship to a model of module {other}",
                    f"drop the relationship; load the related data through modules.{other}.services",
                )
            )
    return findings
