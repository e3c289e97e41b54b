"""Application factory: settings, logging, middleware, core routes and every module."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from src.core.cache import cache_manager
from src.core.config import ConfigError, Settings, get_settings
from src.core.db import database
from src.core.errors import install_error_handlers
from src.core.http_client import http_client
from src.core.jobs import jobs
from src.core.logging import configure_logging, flush_access_log, get_logger
from src.core.metrics import HttpMetrics, instrument_pool, mark_process_dead
from src.core.module_loader import discover_modules
from src.core.openapi import install_openapi, operation_id
from src.core.security import install_auth
from src.core.telemetry import load_tracing
from src.middleware.conversation import ConversationMiddleware
from src.middleware.guard import GuardMiddleware
from src.middleware.sessions import SessionMiddleware
from src.routes import health, metrics

log = get_logger(__name__)


async def _warn_if_not_migrated(disabled: list[str]) -> None:
    await health.load_migrations()  # Alembic is slow to import: off the event loop, and not at import time
    from src.core.migrations import warn_if_not_migrated

    await warn_if_not_migrated(skip=disabled)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    tracing = load_tracing(settings)  # None unless rendered `with_tracing` and `tracing.enabled`
    configure_logging(
        settings.logging,
        environment=settings.environment,
        extra_processors=tracing.log_processors if tracing else (),
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        database.configure(settings.database)
        release_pool = instrument_pool(database.engine, settings.database) if settings.metrics.enabled else None
        await http_client.start(settings.http)
        if tracing is not None:
            tracing.start(engine=database.engine, client=http_client.client)
        await cache_manager.connect(settings.cache)  # an unreachable Redis degrades to no cache
        await app.state.auth_backend.start()  # never waits for the identity provider
        # The broker tasks are queued on, and the outbox relay (docs/events-and-jobs.md).
        await jobs.start(settings.jobs, [m.name for m in app.state.modules])
        log.info("startup", environment=settings.environment, modules=[m.name for m in app.state.modules])
        # In the background: migrations not applied get one warning, and start-up never waits for it.
        app.state.migrations_checked = asyncio.create_task(_warn_if_not_migrated(settings.modules.disabled))
        try:
            yield
        finally:
            app.state.migrations_checked.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await app.state.migrations_checked
            await jobs.stop()
            await http_client.close()
            await app.state.auth_backend.close()
            await cache_manager.close()
            await database.dispose()
            if release_pool is not None:
                release_pool()
            log.info("shutdown")
            if tracing is not None:
                tracing.stop()
            flush_access_log()
            mark_process_dead()

    app = FastAPI(
        title=settings.project_name,
        description=settings.description,
        version=settings.version,
        debug=settings.debug,
        lifespan=lifespan,
        docs_url="/docs" if settings.docs.enabled else None,
        redoc_url="/redoc" if settings.docs.enabled else None,
        openapi_url="/openapi.json" if settings.docs.enabled else None,
        generate_unique_id_function=operation_id,
    )
    app.state.settings = settings
    install_error_handlers(app)
    install_auth(app, settings)  # the backend that checks tokens for CurrentUser / requires_role
    app.add_middleware(SessionMiddleware)  # innermost: closes what SessionDep opened, after the route
    # Inside the conversation middleware (its answers carry the ID): an oversized or NUL-laden
    # request is refused before any route, dependency or token check reads it.
    app.add_middleware(
        GuardMiddleware,
        max_body_bytes=settings.limits.max_body_bytes,
        max_header_bytes=settings.limits.max_header_bytes,
    )
    app.add_middleware(
        ConversationMiddleware,
        access_log=settings.logging.access_log,
        metrics=HttpMetrics(settings.api_prefix) if settings.metrics.enabled else None,
        api_prefix=settings.api_prefix,
    )

    @app.get("/", tags=["root"])
    async def root() -> dict[str, str]:
        return {"message": f"Welcome to {settings.project_name}", "docs": "/docs"}

    app.include_router(health.router)
    if settings.metrics.enabled:
        app.include_router(metrics.router)
    app.state.modules = discover_modules(app, settings)
    install_openapi(app, settings)  # readable names; /docs and /redoc without a CDN
    if tracing is not None:
        tracing.instrument_app(app)
    return app


def _app_or_exit() -> FastAPI:
    """`uvicorn src.app:app` with a bad configuration: one line saying what to fix, exit status 1."""
    try:
        return create_app()
    except ConfigError as exc:  # also a module's bad settings, or a dependency switched off
        raise SystemExit(f"configuration error: {exc}") from None


app = _app_or_exit()
