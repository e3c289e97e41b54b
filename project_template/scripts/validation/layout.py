"""LAYOUT: each module has the module template's folders and exports `router`; no name extends another's.

`cache/` is required only of a module that caches: its namespace lives there, in one place.
"""

from __future__ import annotations

import ast

from validation.astutil import resolve_from
from validation.findings import Finding
from validation.project import FILES, FOLDERS, PACKAGES, Project

FIX = "render the module with the module template (see docs/modules.md) or create the missing part"


def check(project: Project) -> list[Finding]:
    findings = _strays(project) + _prefixes(project)
    for module in project.modules:
        base = project.modules_dir / module
        missing = [f"{p}/__init__.py" for p in PACKAGES if not (base / p / "__init__.py").is_file()]
        missing += [f"{f}/" for f in FOLDERS if not (base / f).is_dir()]
        missing += [f for f in FILES if not (base / f).is_file()]
        for part in missing:
            findings.append(Finding(f"modules/{module}/{part}", 1, "LAYOUT-001", f"module {module} has no {part}", FIX))
        if not (base / "cache" / "__init__.py").is_file() and _caches(project, module):
            findings.append(
                Finding(
                    f"modules/{module}/cache/__init__.py",
                    1,
                    "LAYOUT-001",
                    f"module {module} uses the cache but has no cache/__init__.py to hold its namespace",
                    f'create it with `cache = CacheNamespace("{module}")` (from src.core.cache) and use that',
                )
            )
        tree = project.tree(base / "__init__.py")
        if tree is not None and not _exports_router(tree):
            findings.append(
                Finding(
                    f"modules/{module}/__init__.py",
                    1,
                    "LAYOUT-002",
                    f"module {module} does not export `router`, so the loader cannot mount it",
                    f"add `from modules.{module}.routes import router` to modules/{module}/__init__.py",
                )
            )
    return findings


def _caches(project: Project, module: str) -> bool:
    """The module's code imports the cache (`src.core.cache`) or its own cache package."""
    wanted = ("src.core.cache", f"modules.{module}.cache")
    for source in project.sources(module):
        for node in source.imports:
            if isinstance(node, ast.ImportFrom):
                origin = resolve_from(node, source.package)
                origins = [f"{origin}.{alias.name}" for alias in node.names]
            else:
                origins = [alias.name for alias in node.names]
            if any(origin == w or origin.startswith(f"{w}.") for origin in origins for w in wanted):
                return True
    return False


def _exports_router(tree: ast.Module) -> bool:
    for stmt in tree.body:
        if isinstance(stmt, ast.ImportFrom) and any((a.asname or a.name) == "router" for a in stmt.names):
            return True
        if isinstance(stmt, ast.Assign | ast.AnnAssign):
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            if any(isinstance(t, ast.Name) and t.id == "router" for t in targets):
                return True
    return False


def _strays(project: Project) -> list[Finding]:
    """Folders under modules/ the loader silently skips although they hold code."""
    findings: list[Finding] = []
    if not project.modules_dir.is_dir():
        return findings
    for path in sorted(project.modules_dir.iterdir()):
        if not path.is_dir() or path.name.startswith((".", "_")) or path.name in project.modules:
            continue
        if not any(path.rglob("*.py")):
            continue
        reason = "is not a Python identifier" if not path.name.isidentifier() else "has no __init__.py"
        findings.append(
            Finding(
                f"modules/{path.name}",
                1,
                "LAYOUT-003",
                f"folder modules/{path.name} holds code but {reason}, so the loader skips it",
                "rename it to a lowercase identifier and give it an __init__.py exporting `router`, or move it out",
            )
        )
    return findings


def _prefixes(project: Project) -> list[Finding]:
    """Module `users_x` beside `users`: `users`' table prefix `users_*` would cover `users_x`'s tables too."""
    findings: list[Finding] = []
    for shorter in project.modules:
        for longer in project.modules:
            if longer.startswith(f"{shorter}_"):
                findings.append(
                    Finding(
                        f"modules/{longer}",
                        1,
                        "LAYOUT-004",
                        f"module name {longer} extends module {shorter} + '_', so the tables {longer}* match both "
                        f"modules' prefixes (they go to {longer}, the longest name, which {shorter} cannot use)",
                        f"rename modules/{longer} (and its tables, cache namespace and version table) to a name "
                        f"that does not start with '{shorter}_' (scripts/create_module.py refuses such names)",
                    )
                )
    return findings
