"""Loads the optional tracing part (Copier question `with_tracing`) when configured.

`src/core/tracing.py` exists only in projects rendered with tracing, so the
application reaches it through this small interface instead of importing it.
"""

from __future__ import annotations

import importlib
from typing import Protocol, cast

import httpx
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine
from structlog.types import Processor

from src.core.config import ConfigError, Settings

TRACING_MODULE = "src.core.tracing"


class Tracing(Protocol):
    log_processors: list[Processor]

    def instrument_app(self, app: FastAPI) -> None: ...

    def start(self, *, engine: AsyncEngine, client: httpx.AsyncClient) -> None: ...

    def stop(self) -> None: ...


def load_tracing(settings: Settings) -> Tracing | None:
    """The tracing setup when `tracing.enabled`, else None; a clear error if the project has no tracing."""
    if not settings.tracing.enabled:
        return None
    try:
        module = importlib.import_module(TRACING_MODULE)
    except ModuleNotFoundError as exc:
        if exc.name != TRACING_MODULE:
            raise
        raise ConfigError(
            "tracing.enabled is true but this project was rendered without tracing: "
            "`copier update --trust -d with_tracing=true` adds it"
        ) from None
    return cast(Tracing, module.build_tracing(settings))
