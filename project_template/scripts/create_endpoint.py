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
already serves; nothing is written on bad input. The code comes from
`scripts/templates/endpoint/` (see `scripts/endpoint_code.py`).
"""

from __future__ import annotations

import project_python  # noqa: F401  (first: runs this script in the project's environment)

# isort: split
import argparse
import ast
import dataclasses
import importlib
import keyword
import re
import subprocess
import sys
from pathlib import Path

from endpoint_code import Endpoint, read, sources
from fastapi import FastAPI
from scaffolding import (
    PROJECT_ROOT,
    Transaction,
    UsageError,
    defined_names,
    fail,
    refresh_summary,
    relative,
    require_module,
    tidy,
)

METHODS = ("get", "post", "put", "patch", "delete")
SEGMENT = re.compile(r"[a-z0-9][a-z0-9_-]*|\{[a-z_][a-z0-9_]*\}")
SERVICE = re.compile(r"[a-z][a-z0-9_]*")
# Names the generated code already uses in the same scope.
RESERVED_NAMES = frozenset({"self", "router", "session", "data", "cache"})
AUTH_CHOICES = ("public", "user", "admin")


# The endpoint a caller uses to obtain a session cannot require one (the seed's `--path login`).
SIGN_IN_PATHS = frozenset({"login", "signin", "sign-in", "signup", "sign-up", "register", "token"})


def default_auth(method: str, path: str) -> str:
    """Reads may be public; a write is never anonymous unless asked for (`--auth public`) or a sign-in."""
    if method == "get" or path.strip("/").rsplit("/", 1)[-1] in SIGN_IN_PATHS:
        return "public"
    return "user"


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
    segments = [s for s in args.path.strip().strip("/").split("/") if s]
    for segment in segments:
        if not SEGMENT.fullmatch(segment):
            raise UsageError(
                f"--path {args.path!r}: segment {segment!r} must be lowercase letters, digits, '-', '_' "
                "or a {parameter}"
            )
    words = [s.replace("-", "_") for s in segments if not s.startswith("{")]
    name = args.name or "_".join(words) or f"{args.method}_{args.service}"
    if not SERVICE.fullmatch(name) or keyword.iskeyword(name) or name in RESERVED_NAMES:
        raise UsageError(f"--name {name!r} must be a lowercase identifier")
    e = Endpoint(args.module, args.service, args.method, "/" + "/".join(segments), name, args.auth)
    if len(set(e.params)) != len(e.params):
        raise UsageError(f"--path {args.path!r} repeats a parameter")
    if (e.method.upper(), normalize(e.url)) in served_routes(e.module):
        raise UsageError(f"modules/{e.module} already serves {e.method.upper()} {e.url}")
    service_file = e.folder / "services" / f"{e.service}_service.py"
    if service_file.is_file() and e.service_class not in defined_names(service_file):
        raise UsageError(f"{relative(service_file)} has no class {e.service_class} to add the method to")
    taken = (
        bound_names(e.folder / "routes" / f"{e.service}.py")
        | bound_names(service_file, inside=e.service_class)
        | {p.stem.removeprefix(f"test_{e.service}_") for p in (e.folder / "tests").glob("test_*.py")}
    )
    if name in taken:
        if args.name:
            raise UsageError(f"{name!r} already exists in the {e.service} routes, service or tests; pick --name")
        e = dataclasses.replace(e, name=f"{e.method}_{name}")
        if e.name in taken:
            raise UsageError(f"{e.name!r} already exists in the {e.service} service; pass --name")
    schemas = set().union(*(defined_names(p) for p in (e.folder / "schemas").glob("*.py")))
    for cls in (e.request, e.response):
        if cls in schemas:
            raise UsageError(f"a schema {cls} already exists in modules/{e.module}/schemas; pass --name")
    return e


def bound_names(path: Path, inside: str | None = None) -> set[str]:
    """The top-level names of a Python file (imports included), or the methods of its class `inside`."""
    body = ast.parse(path.read_text(encoding="utf-8")).body if path.is_file() else []
    if inside is not None:
        body = next((n.body for n in body if isinstance(n, ast.ClassDef) and n.name == inside), [])
    names: set[str] = set()
    for node in body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return names


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

    changes = Transaction()
    for path, content in sources(e).items():
        changes.write(path, content)
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
    refresh_summary()
    print(f"next: fill in {e.service_class}.{e.name}, then `uv run pytest {relative(e.test)}`")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
