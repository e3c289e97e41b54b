"""The job worker and the scheduler: Taskiq's command line loads them from here.

    uv run taskiq worker src.worker:broker --workers 1 --no-configure-logging --wait-tasks-timeout 30
    uv run taskiq scheduler src.worker:scheduler --skip-first-run     # exactly one of these, anywhere

The worker imports every module (their tasks and event handlers, as the API does), runs
the outbox relay, and serves `/health/live`, `/health/ready` and `/metrics` on
`jobs.worker_port`. On SIGTERM it stops taking messages and waits for the running ones
(`--wait-tasks-timeout`); a run cut short is not acknowledged, so the broker hands it out again.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import uvicorn
from fastapi import FastAPI, Response, status
from taskiq import TaskiqEvents, TaskiqScheduler, TaskiqState
from taskiq.schedule_sources import LabelScheduleSource

from src.core.config import ConfigError, Settings, get_settings
from src.core.db import database
from src.core.http_client import http_client
from src.core.jobs import jobs
from src.core.jobs.watch import watch_queues
from src.core.logging import configure_logging, get_logger
from src.core.module_loader import load_modules
from src.routes import metrics
from src.routes.health import check_database

log = get_logger("src.worker")


def _settings_or_exit() -> Settings:
    try:
        return get_settings()
    except ConfigError as exc:
        raise SystemExit(f"configuration error: {exc}") from None


settings = _settings_or_exit()
configure_logging(settings.logging, environment=settings.environment)
modules = [module.name for module in load_modules(settings)]
broker = jobs.configure(settings.jobs, modules)
scheduler = TaskiqScheduler(broker, sources=[LabelScheduleSource(broker)])


def health_app() -> FastAPI:
    """Probes and metrics of a worker process (no API routes)."""
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    app.include_router(metrics.router)

    @app.get("/health/live")
    async def live() -> dict[str, str]:
        return {"status": "alive"}  # the event loop answers: tasks are being taken

    @app.get("/health/ready")
    async def ready(response: Response) -> dict[str, Any]:
        database_check = await check_database()
        ready = database_check["status"] == "up"
        if not ready:
            response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
        return {"status": "ready" if ready else "not ready", "database": database_check}

    return app


async def _serve(server: uvicorn.Server) -> None:
    try:
        await server.serve()
    except SystemExit:  # uvicorn exits when the port is taken: the worker goes on without probes
        log.error("worker health port unavailable: no /health or /metrics", port=settings.jobs.worker_port)


@broker.on_event(TaskiqEvents.WORKER_STARTUP)
async def _startup(state: TaskiqState) -> None:
    database.configure(settings.database)
    await http_client.start(settings.http)
    jobs.start_relay()
    state.queues_task = asyncio.create_task(watch_queues(jobs))
    if settings.jobs.worker_port:
        config = uvicorn.Config(health_app(), host="0.0.0.0", port=settings.jobs.worker_port, log_config=None)  # noqa: S104 - probes come from outside the pod
        state.health = uvicorn.Server(config)
        state.health.install_signal_handlers = lambda: None  # Taskiq handles SIGTERM
        state.health_task = asyncio.create_task(_serve(state.health))
    log.info("worker started", modules=modules, broker=settings.jobs.broker)


@broker.on_event(TaskiqEvents.WORKER_SHUTDOWN)
async def _shutdown(state: TaskiqState) -> None:
    health = getattr(state, "health", None)
    if health is not None:
        health.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await state.health_task
    state.queues_task.cancel()
    await jobs.stop()
    await http_client.close()
    await database.dispose()
    log.info("worker stopped")
