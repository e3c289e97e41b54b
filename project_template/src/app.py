"""Application factory: settings, logging, middleware, core routes and every module."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from src.core.cache import cache_manager
from src.core.config import Settings, get_settings
from src.core.db import database
from src.core.logging import configure_logging, get_logger
from src.core.module_loader import discover_modules
from src.core.security.setup import install_auth
from src.middleware.conversation import ConversationMiddleware
from src.routes import health

log = get_logger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings.logging, environment=settings.environment)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        database.configure(settings.database)
        await cache_manager.connect(settings.cache)  # an unreachable Redis degrades to no cache
        await app.state.auth_backend.start()  # never waits for the identity provider
        log.info("startup", environment=settings.environment, modules=[m.name for m in app.state.modules])
        try:
            yield
        finally:
            await app.state.auth_backend.close()
            await cache_manager.close()
            await database.dispose()
            log.info("shutdown")

    app = FastAPI(
        title=settings.project_name,
        description=settings.description,
        version=settings.version,
        debug=settings.debug,
        lifespan=lifespan,
    )
    app.state.settings = settings
    # Added before the conversation middleware, so it runs inside it (its log lines carry the ID).
    install_auth(app, settings)
    app.add_middleware(ConversationMiddleware, access_log=settings.logging.access_log)

    @app.get("/", tags=["root"])
    async def root() -> dict[str, str]:
        return {"message": f"Welcome to {settings.project_name}", "docs": "/docs"}

    app.include_router(health.router)
    app.state.modules = discover_modules(app, settings.api_prefix)
    return app


app = create_app()
