"""What a client gets when a request fails unexpectedly: JSON, the conversation ID, never a traceback.

- The database unreachable (refused, timed out, pool exhausted, connection lost):
  503 `{"detail": "database unavailable"}` with `Retry-After`, from exception
  handlers registered by `install_error_handlers` (they run inside the
  conversation middleware, so the response carries `X-Conversation-ID`).
- The database up but without a table or column the code uses (migrations not run):
  503 `{"detail": "database not migrated: run scripts/run_migrations.py --all"}`.
- Any other unhandled exception: 500 `{"detail": "internal error", "conversation_id": ...}`,
  sent by the conversation middleware itself (Starlette's own error middleware sits
  outside every user middleware, so its 500 would lack the header), with the
  traceback logged under the request's conversation ID. Also with `debug: true`:
  API clients never see a traceback, the log has it.

One client repeating a failing request must not grow the log without bound: per
(route, exception type) the first traceback is logged, then at most one per
`TRACEBACK_INTERVAL` seconds; the others log one line without it, and are counted
in `log_tracebacks_suppressed_total`.
"""

from __future__ import annotations

import sys
import time
import types
from collections.abc import Callable

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from prometheus_client import Counter
from sqlalchemy import exc as sa_exc
from starlette.types import Send

from src.core.logging import get_logger

RETRY_AFTER_SECONDS = 5
UNAVAILABLE_DETAIL = "database unavailable"
NOT_MIGRATED_DETAIL = "database not migrated: run scripts/run_migrations.py --all"
# PostgreSQL's SQLSTATEs undefined_table and undefined_column; SQLite says it only in words.
_MISSING_SCHEMA_STATES = {"42P01", "42703"}
_MISSING_SCHEMA_WORDS = ("no such table", "no such column", "has no column named")
INTERNAL_DETAIL = "internal error"
# Code of these packages in a traceback means the error came from talking to the database.
_DATABASE_PACKAGES = ("sqlalchemy.", "asyncpg", "aiosqlite", "sqlite3")
TRACEBACK_INTERVAL = 60.0
TRACEBACKS_SUPPRESSED = Counter(
    "log_tracebacks_suppressed_total",
    "Tracebacks of unhandled errors left out of the log (rate-limited per route and exception type)",
    ["route", "exception"],
)

log = get_logger(__name__)


def _traceback_modules(error: BaseException) -> list[str]:
    names: list[str] = []
    trace: types.TracebackType | None = error.__traceback__
    while trace is not None:
        names.append(str(trace.tb_frame.f_globals.get("__name__", "")))
        trace = trace.tb_next
    return names


def is_not_migrated(error: BaseException) -> bool:
    """True when `error` says a table or column the code uses does not exist: the migrations were not run."""
    if not isinstance(error, sa_exc.DBAPIError) or error.orig is None:
        return False
    if getattr(error.orig, "sqlstate", None) in _MISSING_SCHEMA_STATES:
        return True
    return isinstance(error, sa_exc.OperationalError) and str(error.orig).startswith(_MISSING_SCHEMA_WORDS)


def is_database_unavailable(error: BaseException) -> bool:
    """True when `error` means the database cannot be reached now (not a bad query or a constraint)."""
    if isinstance(error, sa_exc.TimeoutError):  # no pooled connection free within pool_timeout
        return True
    if isinstance(error, sa_exc.DBAPIError):
        if error.connection_invalidated or isinstance(error, sa_exc.OperationalError | sa_exc.InterfaceError):
            return True
        # Refused while connecting (unknown database, bad password): raised from the pool's connect.
        return any(name.startswith("sqlalchemy.pool") for name in _traceback_modules(error))
    if isinstance(error, OSError | TimeoutError):
        # asyncpg's connection errors (refused, unreachable, connect timeout) reach the app unwrapped.
        return any(name.startswith(_DATABASE_PACKAGES) for name in _traceback_modules(error))
    return False


async def database_unavailable(request: Request, error: Exception) -> JSONResponse:
    # Checked first: SQLite reports a missing table as an OperationalError, like an outage.
    if is_not_migrated(error):
        detail = NOT_MIGRATED_DETAIL
    elif is_database_unavailable(error):
        detail = UNAVAILABLE_DETAIL
    else:
        raise error  # not an outage: the conversation middleware answers the generic 500
    # Types only: SQLAlchemy's messages quote the statement and its parameters.
    cause = error.orig if isinstance(error, sa_exc.DBAPIError) else None
    log.warning(
        detail,
        error=type(error).__name__,
        cause=type(cause).__name__ if cause is not None else None,
        path=request.url.path,
    )
    return JSONResponse(
        {"detail": detail},
        status_code=503,
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def install_error_handlers(app: FastAPI) -> None:
    """Answer a database outage (or a database not migrated) with a JSON 503 instead of a 500."""
    for error_type in (sa_exc.DBAPIError, sa_exc.TimeoutError, OSError, TimeoutError):
        app.add_exception_handler(error_type, database_unavailable)


class TracebackLimiter:
    """Allows the first traceback per key, then at most one per `interval` seconds."""

    def __init__(
        self, interval: float = TRACEBACK_INTERVAL, max_keys: int = 1024, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.interval = interval
        self.clock = clock
        self.max_keys = max_keys  # keys are route templates and exception types, but bound them anyway
        self._last: dict[tuple[str, str], float] = {}

    def allow(self, route: str, error: str) -> bool:
        now = self.clock()
        last = self._last.get((route, error))
        if last is not None and now - last < self.interval:
            return False
        if last is None and len(self._last) >= self.max_keys:
            self._last.clear()
        self._last[(route, error)] = now
        return True


async def answer_unhandled_error(
    send: Send, conversation_id: str, *, method: str, path: str, route: str, tracebacks: TracebackLimiter
) -> None:
    """Log the exception being handled (with its traceback, rate-limited) and send the generic JSON 500.

    Called by the conversation middleware (one limiter per app), whose `send` adds `X-Conversation-ID`.
    """
    error = type(sys.exception()).__name__
    if tracebacks.allow(route, error):
        log.exception("unhandled error", method=method, path=path, route=route, error=error)
    else:
        TRACEBACKS_SUPPRESSED.labels(route, error).inc()
        log.error("unhandled error", method=method, path=path, route=route, error=error, traceback="rate-limited")
    body = orjson.dumps({"detail": INTERNAL_DETAIL, "conversation_id": conversation_id})
    await send(
        {
            "type": "http.response.start",
            "status": 500,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
