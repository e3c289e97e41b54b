"""CACHE: a module reads and writes only its own cache namespace.

A module's namespace is its name: `CacheNamespace("orders")` (keys `orders:*`)
or a sub-namespace `CacheNamespace("orders.carts")` (keys `orders.carts:*`; no module
name holds a dot, so it cannot collide); `cached(prefix=...)` the same.
Keys given to the module's own namespace object are relative to it, so only
literals passed elsewhere (the cache manager, a raw client) are checked. Every
rule reads a module-level constant (`KEY = "users:1"`) as the literal it holds.
"""

from __future__ import annotations

import ast
import re

from validation.astutil import argument, call_name, dotted, leading_text, resolve_from, string
from validation.findings import Finding
from validation.project import Project, Source


def check(project: Project) -> list[Finding]:
    findings: list[Finding] = []
    for module in project.modules:
        others = [re.escape(m) for m in project.modules if m != module]
        # `orders:1`, `orders:*`, f"orders:{id}", `orders.carts:1`; not "orders: 3 created" (prose).
        pattern = re.compile(rf"^({'|'.join(others)})(?:\.[\w.-]+)?:(?!\s)") if others else None
        for source in project.sources(module):
            local = _local_namespaces(source)
            findings += _namespaces(source, local)
            findings += _foreign_objects(project, source)
            if pattern:
                findings += _literals(source, pattern, local)
    return findings


def _own(namespace: str, module: str) -> bool:
    return namespace == module or namespace.startswith(module + ".")


def _local_namespaces(source: Source) -> set[str]:
    """Names bound in this file to `CacheNamespace(...)`."""
    return {
        target.id
        for node in source.assigns
        if isinstance(node, ast.Assign)
        and isinstance(node.value, ast.Call)
        and call_name(node.value) == "CacheNamespace"
        for target in node.targets
        if isinstance(target, ast.Name)
    }


def _is_own_object(expr: ast.expr, source: Source, local: set[str]) -> bool:
    """`cache` (or any name) that is this module's own CacheNamespace."""
    name = dotted(expr)
    return bool(name) and (
        name in local or source.bound.get(name.split(".")[0], "").startswith(f"modules.{source.module}.cache")
    )


def _namespaces(source: Source, local: set[str]) -> list[Finding]:
    findings = []
    for node in source.calls:
        kind = call_name(node)
        if kind == "CacheNamespace":
            arg, rule, what = argument(node, 0, "name"), "CACHE-001", "CacheNamespace"
        elif kind == "cached":
            arg, rule, what = argument(node, 0, "prefix"), "CACHE-002", "cached(prefix=...)"
        else:
            continue
        if arg is None or (kind == "cached" and _is_own_object(arg, source, local)):
            continue
        name = string(arg, source.consts)
        if name is not None and _own(name, source.module):
            continue
        shown = f"'{name}'" if name is not None else "a computed name"
        findings.append(
            Finding(
                source.rel,
                node.lineno,
                rule,
                f"module {source.module} uses {what} with {shown}, outside its namespace '{source.module}'",
                f'use "{source.module}" or "{source.module}.<sub>" as a literal; '
                "another module's cached data is read through its services",
            )
        )
    return findings


def _foreign_objects(project: Project, source: Source) -> list[Finding]:
    """Another module's cache package, or a name `cache` taken from another module."""
    findings = []
    for node in source.imports:
        if isinstance(node, ast.ImportFrom):
            origin, names = resolve_from(node, source.package), [a.name for a in node.names]
        else:
            origin, names = node.names[0].name, []
        other = project.module_of(origin)
        if not other or other == source.module:
            continue
        parts = origin.split(".")
        if (len(parts) > 2 and parts[2] == "cache") or "cache" in names:
            findings.append(
                Finding(
                    source.rel,
                    node.lineno,
                    "CACHE-004",
                    f"module {source.module} uses the cache of module {other}",
                    f"ask modules.{other}.services for the data (and let it invalidate its own cache)",
                )
            )
    return findings


def _literals(source: Source, others: re.Pattern[str], local: set[str]) -> list[Finding]:
    findings = []
    for node in source.calls:
        # Keys given to the module's own namespace object are relative to it.
        if isinstance(node.func, ast.Attribute) and _is_own_object(node.func.value, source, local):
            continue
        for arg in [*node.args, *(k.value for k in node.keywords)]:
            text = leading_text(arg, source.consts)
            match = others.match(text) if text else None
            if match:
                findings.append(
                    Finding(
                        source.rel,
                        arg.lineno,
                        "CACHE-003",
                        f"module {source.module} uses the cache key or pattern '{text}' of module {match.group(1)}",
                        f"keep to keys under '{source.module}:'; ask modules.{match.group(1)}.services for its data",
                    )
                )
    return findings
