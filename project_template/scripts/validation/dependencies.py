"""DEP: a module imports only the modules it declares (`depends_on` in its settings.py), uses each, and no cycle.

The module loader starts modules in the declared order and refuses to start one whose
dependency is switched off, so a declaration that is missing, stale or circular is a bug.
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from dataclasses import dataclass, field
from functools import cache

from validation.astutil import imports, package_of
from validation.findings import Finding
from validation.project import Project


@dataclass
class Declared:
    """`depends_on` of one module: the names, the line they are on, and what is wrong with the statement."""

    names: tuple[str, ...] = ()
    line: int = 1
    problem: str = ""
    path: str = ""


@dataclass(frozen=True)
class Use:
    path: str
    line: int
    imported: str  # "modules.users.services"
    part: str  # "services", "schemas", an internal, or "package"


@dataclass
class Dependencies:
    declared: dict[str, Declared] = field(default_factory=dict)
    uses: dict[tuple[str, str], list[Use]] = field(default_factory=lambda: defaultdict(list))


def declared(project: Project, module: str) -> Declared:
    """The literal `depends_on = ("a", "b")` of modules/<module>/settings.py (no file: nothing declared)."""
    path = project.modules_dir / module / "settings.py"
    found = Declared(path=f"modules/{module}/settings.py")
    tree = project.tree(path) if path.is_file() else None
    for stmt in tree.body if tree else []:
        value: ast.expr | None
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
            target, value = stmt.targets[0], stmt.value
        elif isinstance(stmt, ast.AnnAssign):
            target, value = stmt.target, stmt.value
        else:
            continue
        if not (isinstance(target, ast.Name) and target.id == "depends_on"):
            continue
        found.line = stmt.lineno
        items = value.elts if isinstance(value, ast.Tuple) else None
        if items is None or not all(isinstance(i, ast.Constant) and isinstance(i.value, str) for i in items):
            found.problem = 'depends_on must be a tuple of module names written out, e.g. ("users",)'
        else:
            found.names = tuple(str(i.value) for i in items if isinstance(i, ast.Constant))
    return found


@cache
def dependencies(project: Project) -> Dependencies:
    """What each module declares, and every import of another module (file, line, part) outside its tests."""
    result = Dependencies()
    for module in project.modules:
        result.declared[module] = declared(project, module)
        # Only files naming another module (or `modules` itself) are parsed: most import their own module alone.
        other = re.compile(rf"\bmodules\.(?!{module}\b)\w|\bmodules\s+import|\bimport\s+modules\b|from\s+\.\.\.")
        for path in project.files(module):
            text = path.read_text(encoding="utf-8", errors="replace")
            tree = project.tree(path, text) if other.search(text) else None
            if tree is None:
                continue
            rel = project.rel(path)
            nodes = [n for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom)]
            for item in imports(nodes, package_of(rel)):
                candidates = [item.module] if not item.names else [f"{item.module}.{n}" for n in item.names]
                for name in candidates:
                    used = project.module_of(name)
                    if used and used != module and used in project.modules:
                        parts = name.split(".")
                        part = parts[2] if len(parts) > 2 else "package"
                        result.uses[(module, used)].append(Use(rel, item.line, item.module, part))
    return result


def check(project: Project) -> list[Finding]:
    found = dependencies(project)
    findings = []
    for (user, used), uses in sorted(found.uses.items()):
        if used not in found.declared[user].names:
            where = found.declared[user].path
            for use in uses:
                findings.append(
                    Finding(
                        use.path,
                        use.line,
                        "DEP-001",
                        f"module {user} imports {use.imported}, but {where} does not declare '{used}' in depends_on",
                        f'add "{used}" to depends_on in {where} (then {used} starts first and must stay enabled)',
                    )
                )
    for module, decl in sorted(found.declared.items()):
        if decl.problem:
            findings.append(Finding(decl.path, decl.line, "DEP-005", decl.problem, "list the names as string literals"))
        for name in decl.names:
            if name not in project.modules:
                message = f"module {module} declares '{name}' in depends_on, which is not a module under modules/"
                findings.append(Finding(decl.path, decl.line, "DEP-003", message, f'remove "{name}" or create it'))
            elif name != module and (module, name) not in found.uses:
                findings.append(
                    Finding(
                        decl.path,
                        decl.line,
                        "DEP-002",
                        f"module {module} declares '{name}' in depends_on but never imports it",
                        f'remove "{name}" from depends_on, or call it through modules.{name}.services',
                    )
                )
    findings += _cycles(project, found)
    return findings


def _cycles(project: Project, found: Dependencies) -> list[Finding]:
    """One finding per group of modules depending on each other, at the settings.py of its first module."""
    edges = {m: sorted(d for d in found.declared[m].names if d in project.modules) for m in project.modules}
    findings = []
    for group in _groups(edges):
        if len(group) == 1 and group[0] not in edges[group[0]]:
            continue
        ring = [group[0]]  # walk inside the group until a module repeats: that is one cycle
        while (following := next(d for d in edges[ring[-1]] if d in group)) not in ring:
            ring.append(following)
        ring = [*ring[ring.index(following) :], following]
        decl = found.declared[group[0]]
        findings.append(
            Finding(
                decl.path,
                decl.line,
                "DEP-004",
                f"modules depend on each other in a cycle: {' -> '.join(ring)}",
                "move what they share into one of them (or a new module both use); the app refuses to start",
            )
        )
    return findings


def _groups(edges: dict[str, list[str]]) -> list[list[str]]:
    """Strongly connected components (Kosaraju), each sorted: linear time, so 100 modules stay instant."""
    order: list[str] = []
    seen: set[str] = set()
    for root in edges:
        stack = [(root, iter(edges[root]))] if root not in seen else []
        seen.add(root)
        while stack:
            node, children = stack[-1]
            child = next((c for c in children if c not in seen), None)
            if child is None:
                order.append(node)
                stack.pop()
            else:
                seen.add(child)
                stack.append((child, iter(edges[child])))
    reverse: dict[str, list[str]] = {m: [] for m in edges}
    for node, targets in edges.items():
        for target in targets:
            reverse[target].append(node)
    groups, placed = [], set()
    for root in reversed(order):
        if root in placed:
            continue
        group, todo = [], [root]
        placed.add(root)
        while todo:
            node = todo.pop()
            group.append(node)
            todo += [n for n in reverse[node] if n not in placed]
            placed.update(reverse[node])
        groups.append(sorted(group))
    return sorted(groups)
