"""Add an endpoint to a module: a route calling a service method, its schemas and a test.

    uv run python scripts/create_endpoint.py --module orders --service order --method post --path "{order_id}/confirm"
    uv run python scripts/create_endpoint.py --module orders --service order --method get --path "{order_id}/total"
    uv run python scripts/create_endpoint.py --module shop --service newsletter --method post --path join --auth public
    uv run python scripts/create_endpoint.py --module orders --service billing --method post --path refund --auth admin

Writes (or extends) `routes/<service>.py`, `services/<service>_service.py`
(class `<Service>Service`, instance `<service>_service`), `schemas/<service>.py`
and `tests/test_<service>_<name>.py`, and includes a new routes file in the
module's router. `--auth` defaults to `public` for GET and for a sign-in path
(`login`, `register`, `token`...), and to `user` (a signed-in caller) for other
POST, PUT, PATCH and DELETE. Refuses a method and path the module
already serves; nothing is written on bad input.
"""

from __future__ import annotations

import project_python  # noqa: F401  (first: runs this script in the project's environment)

# isort: split
import argparse
import ast
import importlib
import keyword
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI
from scaffolding import (
    PROJECT_ROOT,
    Transaction,
    UsageError,
    add_export,
    camel,
    defined_names,
    fail,
    relative,
    require_module,
    tidy,
)

METHODS = ("get", "post", "put", "patch", "delete")
WITH_BODY = ("post", "put", "patch")
SEGMENT = re.compile(r"[a-z0-9][a-z0-9_-]*|\{[a-z_][a-z0-9_]*\}")
SERVICE = re.compile(r"[a-z][a-z0-9_]*")
# Names the generated code already uses in the same scope.
RESERVED_NAMES = frozenset({"self", "router", "session", "data", "cache"})
AUTH_CHOICES = ("public", "user", "admin")


@dataclass(frozen=True)
class Endpoint:
    module: str
    service: str
    method: str
    path: str  # relative to the module prefix: "/login", "/{order_id}/total"
    name: str
    auth: str

    @property
    def params(self) -> list[str]:
        return re.findall(r"\{([a-z_][a-z0-9_]*)\}", self.path)

    @property
    def url(self) -> str:
        return f"/api/v1/{self.module}{self.path}"

    @property
    def body(self) -> bool:
        return self.method in WITH_BODY

    @property
    def request(self) -> str:
        return f"{camel(self.name)}Request"

    @property
    def response(self) -> str:
        return f"{camel(self.name)}Response"

    @property
    def service_class(self) -> str:
        return f"{camel(self.service)}Service"

    @property
    def folder(self) -> Path:
        return PROJECT_ROOT / "modules" / self.module


# The endpoint a caller uses to obtain a session cannot require one (the seed's `--path login`).
SIGN_IN_PATHS = frozenset({"login", "signin", "sign-in", "signup", "sign-up", "register", "token"})


def default_auth(method: str, path: str) -> str:
    """Reads may be public; a write is never anonymous unless asked for (`--auth public`) or a sign-in."""
    if method == "get" or path.strip("/").rsplit("/", 1)[-1] in SIGN_IN_PATHS:
        return "public"
    return "user"


def param_type(name: str) -> str:
    return "int" if name == "id" or name.endswith("_id") else "str"


# PostgreSQL's `integer` stops at 2**31 - 1: a larger id is a 422, not a database error.
BOUNDED_ID = "Annotated[int, Path(ge=1, le=2**31 - 1)]"


def route_param(name: str) -> str:
    return f"{name}: {BOUNDED_ID if param_type(name) == 'int' else 'str'}"


def normalize(path: str) -> str:
    """`/{user_id}/x` and `/{id}/x` are the same route to the router."""
    return re.sub(r"\{[^}]*\}", "{}", path.rstrip("/") or "/")


def served_routes(module: str) -> set[tuple[str, str]]:
    """(METHOD, normalized full path) of every route the module's router serves now."""
    try:
        package = importlib.import_module(f"modules.{module}")
        app = FastAPI()
        app.include_router(package.router, prefix=f"/api/v1/{module}")
        paths: dict[str, dict[str, object]] = app.openapi()["paths"]
    except Exception as exc:
        raise UsageError(f"modules/{module} does not load ({type(exc).__name__}: {exc}); fix it first") from exc
    return {(method.upper(), normalize(path)) for path, operations in paths.items() for method in operations}


def plan(args: argparse.Namespace) -> Endpoint:
    require_module(args.module)
    if not SERVICE.fullmatch(args.service) or keyword.iskeyword(args.service) or args.service in RESERVED_NAMES:
        raise UsageError(f"--service {args.service!r} must be a lowercase identifier such as auth or billing")
    raw = args.path.strip()
    segments = [s for s in raw.strip("/").split("/") if s] if raw.strip("/") else []
    for segment in segments:
        if not SEGMENT.fullmatch(segment):
            raise UsageError(
                f"--path {args.path!r}: segment {segment!r} must be lowercase letters, digits, '-', '_' "
                "or a {parameter}"
            )
    path = "/" + "/".join(segments)
    params = re.findall(r"\{([a-z_][a-z0-9_]*)\}", path)
    if len(set(params)) != len(params):
        raise UsageError(f"--path {args.path!r} repeats a parameter")
    words = [s.replace("-", "_") for s in segments if not s.startswith("{")]
    name = args.name or "_".join(words) or f"{args.method}_{args.service}"
    if not SERVICE.fullmatch(name) or keyword.iskeyword(name) or name in RESERVED_NAMES:
        raise UsageError(f"--name {name!r} must be a lowercase identifier")
    endpoint = Endpoint(args.module, args.service, args.method, path, name, args.auth)
    if (args.method.upper(), normalize(endpoint.url)) in served_routes(args.module):
        raise UsageError(f"modules/{args.module} already serves {args.method.upper()} {endpoint.url}")
    service_file = endpoint.folder / "services" / f"{args.service}_service.py"
    if service_file.is_file() and endpoint.service_class not in defined_names(service_file):
        raise UsageError(f"{relative(service_file)} has no class {endpoint.service_class} to add the method to")
    taken = (
        _bound_names(endpoint.folder / "routes" / f"{args.service}.py")
        | _methods(endpoint.folder / "services" / f"{args.service}_service.py", endpoint.service_class)
        | {p.stem.removeprefix(f"test_{args.service}_") for p in (endpoint.folder / "tests").glob("test_*.py")}
    )
    if name in taken:
        if args.name:
            raise UsageError(f"{name!r} already exists in the {args.service} routes, service or tests; pick --name")
        endpoint = Endpoint(args.module, args.service, args.method, path, f"{args.method}_{name}", args.auth)
        if endpoint.name in taken:
            raise UsageError(f"{endpoint.name!r} already exists in the {args.service} service; pass --name")
    schemas = set().union(*(defined_names(p) for p in (endpoint.folder / "schemas").glob("*.py")))
    for cls in (endpoint.request, endpoint.response):
        if cls in schemas:
            raise UsageError(f"a schema {cls} already exists in modules/{args.module}/schemas; pass --name")
    return endpoint


def _bound_names(path: Path) -> set[str]:
    """Every top-level name of a Python file: a new route function must not shadow an import."""
    if not path.is_file():
        return set()
    names: set[str] = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return names


def _methods(path: Path, class_name: str) -> set[str]:
    if not path.is_file():
        return set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.ClassDef) and node.name == class_name:
            return {n.name for n in node.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}
    return set()


def schemas_source(e: Endpoint, current: str | None) -> str:
    head = current or f'"""Schemas of the {e.service} endpoints of the {e.module} module."""\n'
    imports = "from pydantic import BaseModel, Field\n" if e.body else "from pydantic import BaseModel\n"
    parts = [_with_import(head, imports)]
    if e.body:
        parts.append(
            f"class {e.request}(BaseModel):\n"
            f'    """What {e.method.upper()} {e.url} accepts (replace with the real fields)."""\n\n'
            f"    value: str = Field(min_length=1, max_length=200)\n"
        )
    parts.append(
        f'class {e.response}(BaseModel):\n    """What {e.method.upper()} {e.url} returns."""\n\n    message: str\n'
    )
    return "\n\n".join(p.rstrip("\n") for p in parts) + "\n"


def _with_import(source: str, line: str) -> str:
    """`source` with the import `line` added after its imports, less the names it already binds."""
    tree = ast.parse(source)
    wanted = ast.parse(line).body[0]
    assert isinstance(wanted, ast.ImportFrom)
    bound = {alias.asname or alias.name for n in tree.body if isinstance(n, ast.ImportFrom) for alias in n.names}
    missing = [alias.name for alias in wanted.names if alias.name not in bound]
    if not missing:
        return source
    line = f"from {wanted.module} import {', '.join(missing)}\n"
    imports = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
    lines = source.splitlines()
    if imports:
        at = imports[-1].end_lineno or imports[-1].lineno
    else:
        first = tree.body[0] if tree.body else None
        at = (first.end_lineno or 0) if isinstance(first, ast.Expr) else 0
        line = "\n" + line
    lines.insert(at, line.rstrip("\n"))
    return "\n".join(lines) + "\n"


def _signature(e: Endpoint) -> tuple[str, str]:
    """(keyword parameters of the service method, the arguments the route passes)."""
    params = [f"{p}: {param_type(p)}" for p in e.params] + ([f"data: {e.request}"] if e.body else [])
    passed = [f"{p}={p}" for p in e.params] + (["data=data"] if e.body else [])
    return "".join(f", {p}" for p in params), "".join(f", {p}" for p in passed)


def service_source(e: Endpoint, current: str | None) -> str:
    names = ", ".join([e.request, e.response] if e.body else [e.response])
    schema_import = f"from modules.{e.module}.schemas.{e.service} import {names}\n"
    params, _ = _signature(e)
    shown = [f"{p}={{{p}}}" for p in e.params] + (["{data.value}"] if e.body else [])
    message = f"{e.name}: {' '.join(shown)}".rstrip(": ").rstrip()
    method = (
        f"    async def {e.name}(self, *, session: AsyncSession{params}) -> {e.response}:\n"
        f'        """{e.method.upper()} {e.url}: replace this echo with the real work."""\n'
        f"        return {e.response}(message={'f' if shown else ''}{message!r})\n"
    )
    if current is None:
        return (
            f'"""The {e.service} service of the {e.module} module (other modules may call it)."""\n\n'
            "from sqlalchemy.ext.asyncio import AsyncSession\n\n"
            f"{schema_import}\n\n"
            f"class {e.service_class}:\n"
            f'    """Business logic behind the {e.service} endpoints; no HTTP here."""\n\n'
            f"{method}\n\n"
            f"{e.service}_service = {e.service_class}()\n"
        )
    source = _with_import(_with_import(current, schema_import), "from sqlalchemy.ext.asyncio import AsyncSession\n")
    tree = ast.parse(source)
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == e.service_class)
    lines = source.splitlines()
    lines.insert(cls.end_lineno or cls.lineno, "\n" + method.rstrip("\n"))
    return "\n".join(lines) + "\n"


def route_source(e: Endpoint, current: str | None) -> str:
    names = ", ".join([e.request, e.response] if e.body else [e.response])
    bounded = any(param_type(p) == "int" for p in e.params)
    fastapi = ["APIRouter"] + (["Depends"] if e.auth == "admin" else []) + (["Path"] if bounded else [])
    imports = [
        *(["from typing import Annotated\n"] if bounded else []),
        f"from fastapi import {', '.join(fastapi)}\n",
        f"from modules.{e.module}.schemas.{e.service} import {names}\n",
        f"from modules.{e.module}.services.{e.service}_service import {e.service}_service\n",
        "from src.core.db import SessionDep\n",
    ]
    if e.auth == "user":
        imports.append("from src.core.security import CurrentUser\n")
    if e.auth == "admin":
        imports.append("from src.core.security import requires_role\n")
    _, passed = _signature(e)
    args = [route_param(p) for p in e.params] + ([f"data: {e.request}"] if e.body else [])
    args += ["session: SessionDep"] + (["_user: CurrentUser"] if e.auth == "user" else [])
    extra = ', dependencies=[Depends(requires_role("admin"))]' if e.auth == "admin" else ""
    function = (
        f'@router.{e.method}("{e.path}"{extra})\n'
        f"async def {e.name}({', '.join(args)}) -> {e.response}:\n"
        f"    return await {e.service}_service.{e.name}(session=session{passed})\n"
    )
    if current is None:
        return (
            f'"""Routes of the {e.service} endpoints, under /api/v1/{e.module}."""\n\n'
            + "".join(imports)
            + "\nrouter = APIRouter()\n\n\n"
            + function
        )
    source = current
    for line in imports:
        source = _with_import(source, line)
    tree = ast.parse(source)
    router = next(
        n
        for n in tree.body
        if isinstance(n, ast.Assign | ast.AnnAssign)
        and any(
            isinstance(t, ast.Name) and t.id == "router" for t in getattr(n, "targets", [getattr(n, "target", None)])
        )
    )
    lines = source.splitlines()
    # Before the existing routes: a static path (/login) must be matched before a parameter (/{id}).
    lines.insert(router.end_lineno or router.lineno, "\n\n" + function.rstrip("\n"))
    return "\n".join(lines) + "\n"


def include_source(e: Endpoint, current: str) -> str:
    """The module's routes/__init__.py with the new routes file included first."""
    source = _with_import(current, f"from modules.{e.module}.routes import {e.service}\n")
    lines = source.splitlines()
    first = next((i for i, line in enumerate(lines) if line.startswith("router.include_router(")), None)
    if first is None:
        lines.append(f"router.include_router({e.service}.router)")
    else:
        lines.insert(first, f"router.include_router({e.service}.router)")
    return "\n".join(lines) + "\n"


def test_source(e: Endpoint) -> str:
    url = e.url
    for p in e.params:
        url = url.replace(f"{{{p}}}", "1" if param_type(p) == "int" else "example")
    shown = [f"{p}={'1' if param_type(p) == 'int' else 'example'}" for p in e.params] + (["example"] if e.body else [])
    expected = f"{e.name}: {' '.join(shown)}".rstrip(": ").rstrip()
    call = f'client.{e.method}("{url}"' + (', json={"value": "example"})' if e.body else ")")
    role = {"public": None, "user": "sign_in()", "admin": 'sign_in("admin")'}[e.auth]
    fixtures = "client: httpx.AsyncClient" + (", sign_in: Callable[..., None]" if role else "")
    lines = [
        f'"""{e.method.upper()} {e.url} (generated by scripts/create_endpoint.py; grow it with the endpoint)."""',
        "",
    ]
    if role:
        lines += ["from collections.abc import Callable", ""]
    lines += ["import httpx", "", "", f"async def test_{e.name}({fixtures}) -> None:"]
    if role:
        lines.append(f"    {role}")
    lines += [
        f"    response = await {call}",
        "    assert response.status_code == 200, response.text",
        f'    assert response.json() == {{"message": "{expected}"}}',
    ]
    if any(param_type(p) == "int" for p in e.params):
        too_big = e.url
        for p in e.params:
            too_big = too_big.replace(f"{{{p}}}", str(2**31) if param_type(p) == "int" else "example")
        lines += [
            "",
            "",
            f"async def test_{e.name}_refuses_an_id_beyond_a_database_integer({fixtures}) -> None:",
            *([f"    {role}"] if role else []),
            f"    assert (await {call.replace(url, too_big, 1)}).status_code == 422",
        ]
    if role:
        lines += [
            "",
            "",
            f"async def test_{e.name}_needs_a_signed_in_user(client: httpx.AsyncClient) -> None:",
            f"    assert (await {call}).status_code == 401",
        ]
    return "\n".join(lines) + "\n"


def read(path: Path) -> str | None:
    return path.read_text(encoding="utf-8") if path.is_file() else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--module", required=True, help="an existing module, e.g. users")
    parser.add_argument("--service", required=True, help="service name, e.g. auth (created if missing)")
    parser.add_argument("--method", required=True, type=str.lower, choices=METHODS)
    parser.add_argument("--path", required=True, help="path under /api/v1/<module>, e.g. login or {order_id}/total")
    parser.add_argument("--name", help="service method and route function name (default: from the path)")
    parser.add_argument(
        "--auth",
        choices=AUTH_CHOICES,
        help="who may call it: public (anyone), user (a signed-in user: 401 without a token), admin (the admin role); "
        "default: public for GET and sign-in paths (login, register, token), user for other writes",
    )
    try:
        args = parser.parse_args(argv)
        chosen, args.auth = args.auth, args.auth or default_auth(args.method, args.path)
        e = plan(args)
    except UsageError as exc:
        fail(str(exc))

    folder = e.folder
    routes, service = folder / "routes" / f"{e.service}.py", folder / "services" / f"{e.service}_service.py"
    schemas, test = folder / "schemas" / f"{e.service}.py", folder / "tests" / f"test_{e.service}_{e.name}.py"
    changes = Transaction()
    changes.write(schemas, schemas_source(e, read(schemas)))
    changes.write(service, service_source(e, read(service)))
    changes.write(routes, route_source(e, read(routes)))
    changes.write(test, test_source(e))
    if read(service) is None:
        changes.write(
            folder / "services" / "__init__.py",
            add_export(
                folder / "services" / "__init__.py",
                f"modules.{e.module}.services.{e.service}_service",
                [e.service_class, f"{e.service}_service"],
            ),
        )
    if read(routes) is None:
        changes.write(
            folder / "routes" / "__init__.py", include_source(e, read(folder / "routes" / "__init__.py") or "")
        )
    written = changes.commit()
    tidy(written)
    check = subprocess.run([sys.executable, "-c", f"import modules.{e.module}"], cwd=PROJECT_ROOT, check=False)
    if check.returncode != 0:
        changes.rollback()
        fail(f"the generated code did not import; nothing was kept (please report: {e})")

    print(f"added {e.method.upper()} {e.url} -> {e.service}_service.{e.name}()")
    for path in written:
        print(f"  {relative(path)}")
    if chosen is None and e.method != "get" and e.auth == "public":
        print("  public: a sign-in endpoint cannot require a signed-in caller (--auth user to change that)")
        if "auth: keycloak" in (read(PROJECT_ROOT / ".copier-answers.yml") or ""):
            print("  tokens of this project come from Keycloak (docs/auth.md): this endpoint is yours to fill")
    print(f"next: fill in {e.service_class}.{e.name}, then `uv run pytest {relative(test)}`")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
