"""API documentation: readable names in /openapi.json, and /docs and /redoc that work offline.

Names. Operation ids are `<module>_<function>` (`users_create_user`,
`auth_login`), not FastAPI's `create_user_api_v1_users__post`. A schema keeps
its class name while that name is unique; when two modules define one
(`UserCreate` in `users` and in `auth`), pydantic would fall back to
`modules__auth__schemas__identity__UserCreate`: instead each becomes its
class name prefixed with its module's (`AuthUserCreate`), unless the class
name already starts with it (`UserCreate` stays in `users`). Generated
clients get the same names on every run.

Pages. Swagger UI and ReDoc come from the `fastapi-offline` package's copy of
their assets, served under `/docs/assets` (public like /docs), so the pages
work on a machine without internet. `docs.assets: cdn` in config/*.yml loads
them from FastAPI's default CDN instead.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from src.core.config import Settings

ASSETS = Path(fastapi_offline.__file__).parent / "static"
ASSETS_URL = "/docs/assets"  # under /docs: public wherever /docs is
REF = "#/components/schemas/"


def operation_id(route: APIRoute) -> str:
    """`<module>_<function>` for a module's route (`users_create_user`), else the function's name."""
    parts = route.endpoint.__module__.split(".")
    return f"{parts[1]}_{route.name}" if parts[0] == "modules" and len(parts) > 1 else route.name


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


def readable_name(qualified: str) -> tuple[str, str] | None:
    """(preferred, prefixed) names for pydantic's name of a class whose short name is taken.

    That name is the class's dotted path with `__` for dots (`modules__auth__schemas__identity__UserCreate`),
    plus `-Input` / `-Output` when the two shapes differ. None for any other name.
    """
    base, mode = qualified, ""
    for suffix in ("-Input", "-Output"):
        if base.endswith(suffix):
            base, mode = base.removesuffix(suffix), suffix
    parts = base.split("__")
    if len(parts) < 3 or parts[0] not in ("modules", "src"):
        return None
    name = parts[-1]
    prefix = _camel(parts[1]) if parts[0] == "modules" else "Core"
    singular = prefix.removesuffix("ies") + "y" if prefix.endswith("ies") else prefix.removesuffix("s")
    prefixed = f"{prefix}{name}{mode}"
    return (f"{name}{mode}" if name.startswith((prefix, singular)) else prefixed), prefixed


def rename_schemas(schema: dict[str, Any]) -> dict[str, Any]:
    """Replace pydantic's qualified schema names with readable ones, `$ref`s included (in place)."""
    components: dict[str, Any] = schema.get("components", {}).get("schemas", {})
    short = {old: names for old in components if (names := readable_name(old)) is not None}
    preferred = [names[0] for names in short.values()]
    renames: dict[str, str] = {}
    for old, (first, prefixed) in short.items():
        new = first if preferred.count(first) == 1 else prefixed
        if new not in components and new not in renames.values():
            renames[old] = new
    if renames:
        schema["components"]["schemas"] = {renames.get(k, k): v for k, v in components.items()}
        _rewrite_refs(schema, {REF + old: REF + new for old, new in renames.items()})
    return schema


def _rewrite_refs(node: Any, refs: dict[str, str]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and value in refs:
                node[key] = refs[value]
            else:
                _rewrite_refs(value, refs)
    elif isinstance(node, list):
        for item in node:
            _rewrite_refs(item, refs)


def install_openapi(app: FastAPI, settings: Settings) -> None:
    """Readable schema names in /openapi.json, and /docs + /redoc with local (or CDN) assets.

    Call it once every route is added. FastAPI's own /docs and /redoc routes
    (at whatever paths the app was given) are swapped for pages naming the assets.
    """
    previous = app.openapi
    renamed: list[dict[str, Any]] = []

    def openapi() -> dict[str, Any]:
        schema = previous()
        if not renamed or renamed[0] is not schema:  # FastAPI caches the schema: rename it once
            renamed[:] = [rename_schemas(schema)]
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
    if settings.docs.assets == "local":
        _serve_docs_locally(app)


def _serve_docs_locally(app: FastAPI) -> None:
    pages = {path for path in (app.docs_url, app.redoc_url) if path}
    if not pages or app.openapi_url is None:
        return
    # Routes are matched in order: FastAPI's CDN pages would answer first.
    app.router.routes[:] = [r for r in app.router.routes if not (isinstance(r, Route) and r.path in pages)]
    app.router.routes.insert(0, Mount(ASSETS_URL, StaticFiles(directory=ASSETS), name="docs-assets"))
    openapi_url = app.openapi_url
    if app.docs_url:
        _page(app, app.docs_url, lambda root: _swagger(app, root + openapi_url, root))
    if app.redoc_url:
        _page(app, app.redoc_url, lambda root: _redoc(app, root + openapi_url, root))


def _page(app: FastAPI, path: str, render: Callable[[str], HTMLResponse]) -> None:
    async def page(request: Request) -> HTMLResponse:
        return render(request.scope.get("root_path", "").rstrip("/"))

    route: BaseRoute = Route(path, page, include_in_schema=False)
    app.router.routes.insert(0, route)


def _swagger(app: FastAPI, openapi_url: str, root: str) -> HTMLResponse:
    redirect = app.swagger_ui_oauth2_redirect_url
    return get_swagger_ui_html(
        openapi_url=openapi_url,
        title=f"{app.title} - Swagger UI",
        oauth2_redirect_url=root + redirect if redirect else None,
        init_oauth=app.swagger_ui_init_oauth,
        swagger_ui_parameters=app.swagger_ui_parameters,
        swagger_js_url=f"{root}{ASSETS_URL}/swagger-ui-bundle.js",
        swagger_css_url=f"{root}{ASSETS_URL}/swagger-ui.css",
        swagger_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
    )


def _redoc(app: FastAPI, openapi_url: str, root: str) -> HTMLResponse:
    return get_redoc_html(
        openapi_url=openapi_url,
        title=f"{app.title} - ReDoc",
        redoc_js_url=f"{root}{ASSETS_URL}/redoc.standalone.js",
        redoc_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
        with_google_fonts=False,
    )
