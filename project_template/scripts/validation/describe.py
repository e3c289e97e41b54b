"""The module summary: per module, its routes, tables, cache namespace, settings and dependencies.

Read from the sources with `ast`, like the rules (standard library only, nothing of the
project imported), so it also runs right after Copier renders a project, before any
`uv sync`. `validate_structure.py --describe` prints it; `--describe --write` writes
docs/modules-summary.md, which tests/test_modules_summary.py keeps current.
"""

from __future__ import annotations

import ast
from pathlib import Path

from validation.astutil import argument, call_name, dotted, string
from validation.dependencies import declared
from validation.project import Project, Source
from validation.routes import VERBS
from validation.tables import _declarations

SUMMARY = Path("docs") / "modules-summary.md"
COMMAND = "uv run python scripts/validate_structure.py --describe --write"
HEADER = f"""# Modules summary

Generated from the code by `{COMMAND}`: do not edit it by hand
(`tests/test_modules_summary.py` fails when it is out of date). The rules behind it:
docs/modules.md, docs/module-settings.md and docs/boundaries.md.
"""


def describe(project: Project) -> str:
    """The whole page, as Markdown."""
    sections = [HEADER]
    if not project.modules:
        sections.append("No modules yet: `uv run python scripts/create_module.py --name orders` creates one.\n")
    for module in project.modules:
        sections.append(_module(project, module))
    return "\n".join(sections)


def write(root: Path) -> Path:
    """Write docs/modules-summary.md of the project at `root`; returns its path."""
    path = root / SUMMARY
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(describe(Project(root)), encoding="utf-8")
    return path


def _module(project: Project, module: str) -> str:
    sources = [s for s in project.sources(module, complete=True) if not s.in_alembic]
    uses = declared(project, module).names
    tables = sorted({name for source in sources for name, _ in _declarations(source, [])})
    namespaces = sorted({ns for source in sources for ns in _namespaces(source)})
    lines = [f"## {module}", ""]
    lines.append(f"- Depends on: {', '.join(f'`{m}`' for m in uses) if uses else 'no other module'}")
    lines.append(f"- Tables: {', '.join(f'`{t}`' for t in tables) if tables else 'none'}")
    lines.append(f"- Cache namespace: {', '.join(f'`{ns}:*`' for ns in namespaces) if namespaces else 'none'}")
    for folder in ("events", "tasks"):
        handlers = _functions(project.modules_dir / module, folder)
        if handlers is not None:
            lines.append(f"- {folder.capitalize()}: {', '.join(f'`{h}`' for h in handlers) or 'none'}")
    lines += ["", "| Method | Path |", "|---|---|"]
    lines += [f"| {method} | `{path}` |" for method, path in _routes(module, sources)] or ["| none | |"]
    fields = _settings(project, module)
    if fields is None:
        lines += ["", "Settings: none (the module has no `settings.py`)."]
    else:
        key = f"APP_MODULES__{module.upper()}__<KEY>"
        lines += ["", f"Settings (`modules.{module}:` in config/*.yml, or `{key}`):", ""]
        lines += ["| Key | Type | Default |", "|---|---|---|"]
        lines += [f"| `{name}` | `{kind}` | {default} |" for name, kind, default in fields] or ["| none | | |"]
    return "\n".join(lines) + "\n"


def _namespaces(source: Source) -> list[str]:
    """Names given to `CacheNamespace(...)` and `cached(prefix=...)` in the file."""
    found = []
    for call in source.calls:
        if call_name(call) in {"CacheNamespace", "namespace"}:
            name = string(argument(call, 0, "name"), source.consts)
        elif call_name(call) == "cached":
            name = string(argument(call, 0, "prefix"), source.consts)
        else:
            continue
        if name:
            found.append(name)
    return found


def _routes(module: str, sources: list[Source]) -> list[tuple[str, str]]:
    """(METHOD, full path) of every route, in file order; prefixes of routers and include_router added."""
    included: dict[str, str] = {}  # dotted module of an included router -> the prefixes in front of it
    for source in sources:
        own = _router_prefix(source)
        for call in source.calls:
            if call_name(call) == "include_router" and call.args:
                target = dotted(call.args[0]).rsplit(".", 1)[0]
                origin = source.bound.get(target, target)
                included[origin] = own + (string(argument(call, 99, "prefix"), source.consts) or "")
    found = []
    for source in sources:
        dotted_name = source.rel.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
        prefix = f"/api/v1/{module}" + included.get(dotted_name, "") + _router_prefix(source)
        for function in source.functions:
            for decorator in function.decorator_list:
                if isinstance(decorator, ast.Call) and call_name(decorator) in VERBS:
                    path = string(argument(decorator, 0, "path"), source.consts)
                    if path is not None:
                        found.append((_methods(decorator), prefix + path))
    return found


def _router_prefix(source: Source) -> str:
    for node in source.assigns:
        if isinstance(node.value, ast.Call) and call_name(node.value) == "APIRouter":
            return string(argument(node.value, 99, "prefix"), source.consts) or ""
    return ""


def _methods(decorator: ast.Call) -> str:
    verb = call_name(decorator)
    if verb in {"api_route", "route"}:
        methods = argument(decorator, 99, "methods")
        if isinstance(methods, ast.List | ast.Tuple):
            return ", ".join(str(m.value) for m in methods.elts if isinstance(m, ast.Constant))
        return "GET"
    return "WEBSOCKET" if verb == "websocket" else verb.upper()


def _settings(project: Project, module: str) -> list[tuple[str, str, str]] | None:
    """(key, type, default) of `class Settings` in settings.py; None without the file."""
    path = project.modules_dir / module / "settings.py"
    tree = project.tree(path) if path.is_file() else None
    if tree is None:
        return None
    fields = []
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == "Settings":
            for stmt in node.body:
                name = stmt.target.id if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) else ""
                if name and name != "model_config" and isinstance(stmt, ast.AnnAssign):
                    fields.append((name, ast.unparse(stmt.annotation), _default(stmt.value)))
    return fields


def _default(value: ast.expr | None) -> str:
    if value is None:
        return "required"
    if isinstance(value, ast.Call) and call_name(value) == "Field":
        given = argument(value, 0, "default")
        if given is not None and not (isinstance(given, ast.Constant) and given.value is Ellipsis):
            return f"`{ast.unparse(given)}`"
        factory = argument(value, 99, "default_factory")
        return f"`{ast.unparse(factory)}()`" if factory is not None and given is None else "required"
    return f"`{ast.unparse(value)}`"


def _functions(base: Path, folder: str) -> list[str] | None:
    """Public top-level functions of modules/<m>/<folder>/ (or <folder>.py); None when neither exists."""
    files = sorted((base / folder).glob("*.py")) if (base / folder).is_dir() else []
    files += [base / f"{folder}.py"] if (base / f"{folder}.py").is_file() else []
    if not files and not (base / folder).is_dir():
        return None
    names = []
    for path in files:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names += [
            n.name
            for n in tree.body
            if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) and not n.name.startswith("_")
        ]
    return names
