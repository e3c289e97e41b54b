"""Structlog, configured once: JSON off a terminal or in production, colours on one.

Standard-library loggers (uvicorn, SQLAlchemy, httpx) go through
`ProcessorFormatter` with the same processors, so their lines carry the
conversation ID too.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog
from structlog.types import Processor

from src.core.config import LoggingSettings

QUIET_LOGGERS = ("uvicorn.access",)  # our middleware writes the access line


def _renderer(fmt: str, environment: str) -> Processor:
    if fmt == "auto":
        fmt = "console" if environment == "development" and sys.stderr.isatty() else "json"
    if fmt == "console":
        return structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    return structlog.processors.JSONRenderer()


def shared_processors() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
    ]


def configure_logging(config: LoggingSettings, *, environment: str = "development") -> None:
    """Route structlog and the standard library through one set of processors."""
    level = logging.getLevelName(config.level.upper())
    if not isinstance(level, int):
        raise ValueError(f"unknown log level {config.level!r}")
    renderer = _renderer(config.format, environment)

    structlog.configure(
        processors=[
            *shared_processors(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(level),
        cache_logger_on_first_use=environment != "test",
    )

    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared_processors(),
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    for name in QUIET_LOGGERS:
        logging.getLogger(name).disabled = True


def get_logger(name: str | None = None, **initial: Any) -> Any:
    return structlog.get_logger(name, **initial)
