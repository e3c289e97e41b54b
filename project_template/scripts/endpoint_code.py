"""The code `scripts/create_endpoint.py` writes: rendered from `templates/endpoint/`, merged into the module's files.

A new file starts from its template (`routes`, `service`, `schemas`); an existing one
gains the imports it lacks and the new code at its place: the route right after
`router = ...`, the method at the end of the service class, the schemas at the end.
"""

from __future__ import annotations

import ast
import dataclasses
import re
import string
from pathlib import Path

from scaffolding import MODULES_DIR, add_export, camel

WITH_BODY = ("post", "put", "patch")
TEMPLATES = Path(__file__).resolve().parent / "templates" / "endpoint"
# PostgreSQL's `integer` stops at 2**31 - 1: a larger id is a 422, not a database error.
BOUNDED_ID = "Annotated[int, Path(ge=1, le=2**31 - 1)]"


@dataclasses.dataclass
class Endpoint:
    module: str
    service: str
    method: str
    path: str  # under the module prefix: "/login", "/{order_id}/total"
    name: str
    auth: str

    def __post_init__(self) -> None:
        self.params: list[str] = re.findall(r"\{([a-z_][a-z0-9_]*)\}", self.path)
        self.url = f"/api/v1/{self.module}{self.path}"
        self.body = self.method in WITH_BODY
        self.request, self.response = f"{camel(self.name)}Request", f"{camel(self.name)}Response"
        self.service_class = f"{camel(self.service)}Service"
        self.folder = MODULES_DIR / self.module
        self.test = self.folder / "tests" / f"test_{self.service}_{self.name}.py"


def param_type(name: str) -> str:
    return "int" if name == "id" or name.endswith("_id") else "str"


def values(e: Endpoint) -> dict[str, str]:
    """What the templates fill in (`${name}`) for this endpoint."""
    ints = [p for p in e.params if param_type(p) == "int"]
    sample = {p: "1" if p in ints else "example" for p in e.params}
    too_big = {p: str(2**31) if p in ints else "example" for p in e.params}
    json = ', json={"value": "example"}' if e.body else ""
    echoed = [f"{p}={{{p}}}" for p in e.params] + (["{data.value}"] if e.body else [])
    shown = [f"{p}={sample[p]}" for p in e.params] + (["example"] if e.body else [])
    sign_in = {"public": "", "user": "sign_in()", "admin": 'sign_in("admin")'}[e.auth]
    route_args = [f"{p}: {BOUNDED_ID if p in ints else 'str'}" for p in e.params]
    route_args += [f"data: {e.request}"] if e.body else []
    route_args += ["session: SessionDep"] + (["_user: CurrentUser"] if e.auth == "user" else [])
    return {
        "module": e.module,
        "service": e.service,
        "service_class": e.service_class,
        "name": e.name,
        "method": e.method,
        "http_method": e.method.upper(),
        "path": e.path,
        "url": e.url,
        "request": e.request,
        "response": e.response,
        "params": "".join(f", {p}: {param_type(p)}" for p in e.params) + (f", data: {e.request}" if e.body else ""),
        "passed": "".join(f", {p}={p}" for p in e.params) + (", data=data" if e.body else ""),
        "args": ", ".join(route_args),
        "dependencies": ', dependencies=[Depends(requires_role("admin"))]' if e.auth == "admin" else "",
        "message": "f" + repr(" ".join([f"{e.name}:", *echoed])) if echoed else repr(e.name),
        "expected": " ".join([f"{e.name}:", *shown]) if shown else e.name,
        "call": f'"{filled(e.url, sample)}"{json}',
        "too_big_call": f'"{filled(e.url, too_big)}"{json}',
        "fixtures": "client: httpx.AsyncClient" + (", sign_in: Callable[..., None]" if sign_in else ""),
        "sign_in": f"    {sign_in}\n" if sign_in else "",
        "imports": "\nfrom collections.abc import Callable\n" if sign_in else "",
    }


def filled(url: str, arguments: dict[str, str]) -> str:
    for name, value in arguments.items():
        url = url.replace(f"{{{name}}}", value)
    return url


def render(template: str, v: dict[str, str]) -> str:
    return string.Template((TEMPLATES / f"{template}.py.tmpl").read_text(encoding="utf-8")).substitute(v)


def imports(e: Endpoint) -> dict[str, list[str]]:
    """The imports each file needs: schemas, service, routes."""
    bounded = "int" in map(param_type, e.params)
    schemas = f"from modules.{e.module}.schemas.{e.service} import " + (f"{e.request}, " if e.body else "") + e.response
    fastapi = ["APIRouter"] + (["Depends"] if e.auth == "admin" else []) + (["Path"] if bounded else [])
    security = {"user": "CurrentUser", "admin": "requires_role"}.get(e.auth)
    return {
        "schemas": ["from pydantic import BaseModel" + (", Field" if e.body else "")],
        "service": ["from sqlalchemy.ext.asyncio import AsyncSession", schemas],
        "routes": [
            *(["from typing import Annotated"] if bounded else []),
            f"from fastapi import {', '.join(fastapi)}",
            schemas,
            f"from modules.{e.module}.services.{e.service}_service import {e.service}_service",
            "from src.core.db import SessionDep",
            *([f"from src.core.security import {security}"] if security else []),
        ],
    }


def sources(e: Endpoint) -> dict[Path, str]:
    """Every file to write, with its new content."""
    v, needs, folder = values(e), imports(e), e.folder
    schemas, service = folder / "schemas" / f"{e.service}.py", folder / "services" / f"{e.service}_service.py"
    routes = folder / "routes" / f"{e.service}.py"
    models = (render("request", v) if e.body else "") + render("response", v)
    tests = render("test", v) + (render("test_id_bound", v) if "int" in map(param_type, e.params) else "")
    files = {
        schemas: extend(read(schemas) or render("schemas", v), needs["schemas"], models),
        service: extend(
            read(service) or render("service", v), needs["service"], render("service_method", v), e.service_class
        ),
        # Right after `router = ...`, before the existing routes: a static path (/status) must match before /{id}.
        routes: extend(read(routes) or render("routes", v), needs["routes"], render("route", v), "router"),
        e.test: tests + (render("test_signed_out", v) if e.auth != "public" else ""),
    }
    if not service.is_file():
        init, exported = folder / "services" / "__init__.py", [e.service_class, f"{e.service}_service"]
        files[init] = add_export(init, f"modules.{e.module}.services.{e.service}_service", exported)
    if not routes.is_file():
        init = folder / "routes" / "__init__.py"
        files[init] = included(read(init) or "", e)
    return files


def extend(source: str, wanted: list[str], code: str, after: str | None = None) -> str:
    """`source` with the imports it lacks, and `code` after the class or assignment named `after` (or at the end)."""
    source = with_imports(source, wanted)
    node = next((n for n in ast.parse(source).body if after in {getattr(n, "name", None), *_targets(n)}), None)
    return insert_after(source, node, code) if after and node else source.rstrip("\n") + "\n" + code


def included(source: str, e: Endpoint) -> str:
    """The module's routes/__init__.py with the new routes file included first."""
    lines = with_imports(source, [f"from modules.{e.module}.routes import {e.service}"]).splitlines()
    at = next((i for i, line in enumerate(lines) if line.startswith("router.include_router(")), len(lines))
    return "\n".join([*lines[:at], f"router.include_router({e.service}.router)", *lines[at:]]) + "\n"


def with_imports(source: str, wanted: list[str]) -> str:
    """`source` with these `from <module> import <names>` lines, less the names it binds, after its imports."""
    body = ast.parse(source).body
    imports = [node for node in body if isinstance(node, ast.Import | ast.ImportFrom)]
    bound = {alias.asname or alias.name for node in imports for alias in node.names}
    missing = []
    for line in wanted:
        module, _, names = line.removeprefix("from ").partition(" import ")
        if new := [name for name in names.split(", ") if name not in bound]:
            missing.append(f"from {module} import {', '.join(new)}")
    if not missing:
        return source
    if imports:
        return insert_after(source, imports[-1], "\n".join(missing))
    docstring = body[0] if body and isinstance(body[0], ast.Expr) else None
    return insert_after(source, docstring, "\n" + "\n".join(missing))


def _targets(node: ast.stmt) -> set[str]:
    return {t.id for t in node.targets if isinstance(t, ast.Name)} if isinstance(node, ast.Assign) else set()


def insert_after(source: str, node: ast.stmt | None, text: str) -> str:
    """`source` with the lines of `text` after `node` (at the top when None)."""
    lines = source.splitlines()
    at = (node.end_lineno or node.lineno) if node is not None else 0
    return "\n".join([*lines[:at], *text.splitlines(), *lines[at:]]) + "\n"


def read(path: Path) -> str | None:
    return path.read_text(encoding="utf-8") if path.is_file() else None
