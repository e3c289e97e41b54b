"""Wire authentication into an app: the backend of `auth.mode`, the middleware, the OpenAPI scheme."""

from __future__ import annotations

import importlib
from typing import Any, cast

from fastapi import FastAPI

from src.core.config import Settings
from src.core.security.dependencies import SCHEME_NAME
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
            schema = default_openapi()
            schemes = schema.setdefault("components", {}).setdefault("securitySchemes", {})
            schemes[SCHEME_NAME] = backend.openapi_scheme()
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return backend
