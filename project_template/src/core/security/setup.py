"""Wire authentication into an app: the backend of `auth.mode`, the middleware, the OpenAPI scheme."""

from __future__ import annotations

import importlib
from typing import Any, cast

from fastapi import FastAPI

from src.core.config import Settings
from src.core.security.dependencies import OPTIONAL_SCHEME_NAME, SCHEME_NAME
from src.core.security.principal import AuthBackend
from src.middleware.auth import AuthMiddleware


def build_backend(settings: Settings) -> AuthBackend:
    """The backend of `settings.auth.mode`, from `src/core/security/<mode>.py` (rendered for the chosen mode)."""
    mode = settings.auth.mode
    try:
        module = importlib.import_module(f"src.core.security.{mode}")
    except ModuleNotFoundError as exc:
        if exc.name != f"src.core.security.{mode}":
            raise
        raise RuntimeError(
            f"auth.mode is {mode!r} but this project was generated without it (src/core/security/{mode}.py missing)"
        ) from None
    return cast(AuthBackend, module.build_backend(settings))


def install_auth(app: FastAPI, settings: Settings) -> AuthBackend:
    """Add the auth middleware and the OpenAPI security scheme; the lifespan starts and closes the backend."""
    backend = build_backend(settings)
    app.state.auth_backend = backend
    app.add_middleware(AuthMiddleware, backend=backend)
    default_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = with_security_schemes(default_openapi(), backend.openapi_schemes())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    oauth = backend.swagger_ui_init_oauth()
    if oauth is not None:
        app.swagger_ui_init_oauth = oauth
    return backend


def with_security_schemes(schema: dict[str, Any], schemes: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Declare the backend's schemes; a secured operation accepts any of them, an optional one also none."""
    declared = schema.setdefault("components", {}).setdefault("securitySchemes", {})
    declared.pop(OPTIONAL_SCHEME_NAME, None)
    declared.update(schemes)
    accepted: list[dict[str, list[str]]] = [{name: []} for name in schemes]
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            security = operation.get("security") if isinstance(operation, dict) else None
            if not security:
                continue
            if {SCHEME_NAME: []} in security:
                operation["security"] = accepted
            elif {OPTIONAL_SCHEME_NAME: []} in security:
                operation["security"] = [{}, *accepted]
    return schema
