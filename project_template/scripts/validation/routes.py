"""ROUTE: every route of module X is served under /api/v1/X.

The module loader mounts `modules.X.router` at /api/v1/X, so a module's paths are
relative to that prefix. What can still escape it (checked outside the module's tests/):
- a path that does not start with "/" ("items" would be served at /api/v1/Xitems),
  or holds "..", "//" or a backslash (ROUTE-001);
- a path that spells out an absolute "/api/..." prefix, served at /api/v1/X/api/... (ROUTE-002);
- a module that reaches the application itself: imports src.app, builds a FastAPI or
  Starlette app, or adds routes, mounts or routers to `app` / `request.app` (ROUTE-003).
"""

from __future__ import annotations

import ast

from validation.astutil import argument, call_name, comes_from, dotted, string
from validation.findings import Finding
from validation.project import Project, Source

VERBS = {"get", "post", "put", "patch", "delete", "head", "options", "trace", "api_route", "websocket", "route"}
ADDERS = {"add_api_route", "add_api_websocket_route", "add_route", "add_websocket_route", "websocket_route"}
APP_CHANGES = {"include_router", "mount", "host", *ADDERS}
APPS = {"FastAPI", "Starlette", "Mount", "Host"}


def check(project: Project) -> list[Finding]:
    findings: list[Finding] = []
    for source in project.all_sources():
        if not source.in_alembic:
            findings += _paths(source)
            findings += _app_access(source)
    return findings


def _routers(source: Source) -> set[str]:
    """Names bound to `APIRouter(...)` in the file, plus the conventional `router`."""
    names = {"router"}
    for node in source.assigns:
        if isinstance(node.value, ast.Call) and call_name(node.value) == "APIRouter":
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {t.id for t in targets if isinstance(t, ast.Name)}
    return names


def _paths(source: Source) -> list[Finding]:
    decorators = {id(d) for node in source.functions for d in node.decorator_list}
    routers = _routers(source)
    findings = []
    for node in source.calls:
        name = call_name(node)
        receiver = dotted(node.func.value) if isinstance(node.func, ast.Attribute) else ""
        paths: list[ast.expr | None] = []
        if name in {"APIRouter", "include_router"}:
            paths.append(argument(node, 99, "prefix"))
        elif (name in VERBS and (id(node) in decorators or receiver in routers)) or (
            name in ADDERS and receiver in routers
        ):
            paths.append(argument(node, 0, "path"))
        for arg in paths:
            path = string(arg, source.consts) if arg is not None else None
            if path is not None:
                findings += _check_path(source, arg.lineno if arg is not None else node.lineno, path)
    return findings


def _check_path(source: Source, line: int, path: str) -> list[Finding]:
    prefix = f"/api/v1/{source.module}"
    if path and not path.startswith("/"):
        reason = f"does not start with '/', so it is served at {prefix}{path}"
    elif ".." in path.split("/") or "//" in path or "\\" in path:
        reason = "leaves the module's prefix ('..', '//' or '\\')"
    elif path == "/api" or path.startswith("/api/"):
        return [
            Finding(
                source.rel,
                line,
                "ROUTE-002",
                f"path '{path}' spells out an absolute prefix; it is served at {prefix}{path}",
                f"write it relative to the module: the loader already mounts it at {prefix}",
            )
        ]
    else:
        return []
    return [
        Finding(
            source.rel,
            line,
            "ROUTE-001",
            f"path '{path}' {reason}",
            f"use a path relative to {prefix} that starts with '/' (or '' for the prefix itself)",
        )
    ]


def _app_access(source: Source) -> list[Finding]:
    findings = []
    fix = "export `router` from the module's __init__.py and let the loader mount it; nothing else touches the app"
    nodes: list[ast.Import | ast.ImportFrom | ast.Call] = [*source.imports, *source.calls]
    for node in nodes:
        message = None
        if isinstance(node, ast.Import | ast.ImportFrom):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            names = [] if isinstance(node, ast.Import) else [a.name for a in node.names]
            if "src.app" in modules or (modules == ["src"] and "app" in names):
                message = f"module {source.module} imports the application (src.app)"
        else:
            name = call_name(node)
            receiver = dotted(node.func.value) if isinstance(node.func, ast.Attribute) else ""
            if name in APPS and comes_from(node, source.bound, {"fastapi", "starlette"}, source.class_names):
                message = f"module {source.module} builds its own {name}(...), outside /api/v1/{source.module}"
            elif (name in APP_CHANGES or name in VERBS) and _is_app(receiver):
                message = f"module {source.module} calls {receiver}.{name}(...) on the application"
        if message:
            findings.append(Finding(source.rel, node.lineno, "ROUTE-003", message, fix))
    return findings


def _is_app(receiver: str) -> bool:
    parts = receiver.split(".")
    return "app" in parts and parts[-1] in {"app", "router"}
