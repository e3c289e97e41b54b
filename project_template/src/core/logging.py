"""Structlog, configured once: JSON off a terminal or in production, colours on one.

Standard-library loggers (uvicorn, SQLAlchemy, httpx) go through
`ProcessorFormatter` with the same processors, so their lines carry the
conversation ID too. Secrets (Authorization, cookies, passwords, tokens) are
redacted from every line.

The per-request access line has one writer in every environment, tests included
(`AccessLog`): rendered at once, buffered, and written every
`logging.flush_interval` seconds, at 64 KiB, at shutdown and at exit.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import sys
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson
import structlog
from structlog.types import EventDict, Processor, WrappedLogger

from src.core.config import LoggingSettings

QUIET_LOGGERS = ("uvicorn.access",)  # our middleware writes the access line
# httpx logs every request with its full URL (query strings may hold secrets);
# the central HTTP client logs service, method, path, status and duration instead.
# Alembic announces each of its autogenerate plugins at INFO whenever it loads: noise at every start-up.
WARNING_LOGGERS = ("httpx", "httpcore", "alembic.runtime.plugins")
REDACTED = "[redacted]"
SECRET_KEYS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "cookie",
        "set-cookie",
        "password",
        "token",
        "access_token",
        "refresh_token",
        "client_secret",
        "secret",
        "api_key",
        "x-api-key",
    }
)


def redact(value: Any) -> Any:
    """A copy of `value` with secret-looking keys (and header pairs) masked, at any depth."""
    if isinstance(value, Mapping):
        return {k: REDACTED if str(k).lower() in SECRET_KEYS else redact(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [
            (item[0], REDACTED)
            if isinstance(item, tuple) and len(item) == 2 and _key(item[0]) in SECRET_KEYS
            else redact(item)
            for item in value
        ]
    return value


def _key(name: Any) -> str:
    return name.decode("latin-1").lower() if isinstance(name, bytes) else str(name).lower()


def redact_secrets(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    for key, value in event_dict.items():
        if key.lower() in SECRET_KEYS:
            event_dict[key] = REDACTED
        elif isinstance(value, Mapping | list | tuple):
            event_dict[key] = redact(value)
    return event_dict


def _resolved_format(fmt: str, environment: str) -> str:
    if fmt == "auto":
        return "console" if environment == "development" and sys.stderr.isatty() else "json"
    return fmt


def _orjson_str(value: Any, **_: Any) -> str:
    return orjson.dumps(value, default=str, option=orjson.OPT_UTC_Z).decode()


def shared_processors(extra: Iterable[Processor] = ()) -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        *extra,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
        redact_secrets,
    ]


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever `sys.stderr` is at the time (test capture and some runners swap it)."""

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _: TextIO) -> None:
        pass


class AccessLog:
    """One rendered line per request into a buffer, flushed by time or size; level error for a 5xx.

    It skips the logging machinery, which would halve a trivial endpoint's throughput
    (docs/logging.md), but keeps the fields and timestamp format of other lines.
    """

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        flush_interval: float = 0.5,
        max_buffer: int = 64 * 1024,
        level: int = logging.INFO,
        console: Processor | None = None,
        processors: Iterable[Processor] = (),
    ) -> None:
        self.stream = stream  # None: whatever `sys.stderr` is when flushing
        self.flush_interval = flush_interval
        self.max_buffer = max_buffer
        self.level = level
        # A console renderer writes readable lines, at once (a person is watching).
        self.console = console
        # Extra processors (tracing adds trace and span IDs) run on access lines too.
        self.processors = list(processors)
        self._chunks: list[bytes] = []
        self._size = 0
        self._timer: asyncio.TimerHandle | None = None

    def __call__(self, fields: dict[str, Any]) -> None:
        error = fields.get("status", 0) >= 500
        if (logging.ERROR if error else logging.INFO) < self.level:
            return
        level = fields["level"] = "error" if error else "info"
        fields["logger"] = "access"
        fields["timestamp"] = datetime.now(UTC)
        for processor in self.processors:
            fields = processor(None, level, fields)  # type: ignore[assignment]
        if self.console is not None:
            fields["timestamp"] = fields["timestamp"].isoformat().replace("+00:00", "Z")
            line = (str(self.console(None, level, fields)) + "\n").encode()
        else:
            line = orjson.dumps(fields, default=str, option=orjson.OPT_UTC_Z | orjson.OPT_APPEND_NEWLINE)
        self._chunks.append(line)
        self._size += len(line)
        if self._size >= self.max_buffer or self.console is not None:
            self.flush()
        elif self._timer is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # no event loop (a script, a sync test): write now
                self.flush()
                return
            self._timer = loop.call_later(self.flush_interval, self.flush)

    def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._chunks:
            return
        data = b"".join(self._chunks).decode()
        self._chunks.clear()
        self._size = 0
        stream = self.stream or sys.stderr
        try:
            stream.write(data)
            stream.flush()
        except (OSError, ValueError):  # closed stream at interpreter exit: nothing left to tell
            pass


# The one writer; `configure_logging` sets its format, level and processors.
access_log = AccessLog()


def write_access_line(fields: dict[str, Any]) -> None:
    """Write one access line (`event` = "request"); level error for a 5xx."""
    access_log(fields)


def flush_access_log() -> None:
    """Write out buffered access lines now (shutdown, tests)."""
    access_log.flush()


def configure_logging(
    config: LoggingSettings,
    *,
    environment: str = "development",
    extra_processors: Iterable[Processor] = (),
) -> None:
    """Route structlog, the standard library and the access line through one set of processors."""
    level = logging.getLevelName(config.level.upper())
    if not isinstance(level, int):
        raise ValueError(f"unknown log level {config.level!r}")
    extra = list(extra_processors)
    console = _resolved_format(config.format, environment) == "console"
    renderer: Processor = (
        structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
        if console
        else structlog.processors.JSONRenderer(serializer=_orjson_str)
    )

    structlog.configure(
        processors=[
            *shared_processors(extra),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(level),
        # Cached loggers keep the processors they were built with: production only.
        cache_logger_on_first_use=environment == "production",
    )

    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared_processors(extra),
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    handler = _StderrHandler()
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    for name in QUIET_LOGGERS:
        # No handler anywhere up the chain: uvicorn then skips building its access
        # line altogether (it checks `hasHandlers()`), instead of formatting one to drop.
        quiet = logging.getLogger(name)
        quiet.handlers.clear()
        quiet.propagate = False
        quiet.disabled = True
    for name in WARNING_LOGGERS:
        logging.getLogger(name).setLevel(max(level, logging.WARNING))

    access_log.flush()
    access_log.flush_interval = config.flush_interval
    access_log.level = level
    access_log.console = renderer if console else None
    access_log.processors = extra


atexit.register(flush_access_log)


def get_logger(name: str | None = None, **initial: Any) -> Any:
    return structlog.get_logger(name, **initial)
