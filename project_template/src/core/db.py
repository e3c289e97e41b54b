"""The one async engine and session factory, shared by every module and Alembic.

SQLite (aiosqlite) is the embedded development default; PostgreSQL (asyncpg)
is the production database. `database` is configured in the app's lifespan,
or lazily from settings by scripts and Alembic.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends
from sqlalchemy import DateTime, Dialect, MetaData, text
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase
from starlette.requests import HTTPConnection

from src.core.config import PROJECT_ROOT, DatabaseSettings

# Stable constraint names, so Alembic can alter and drop them on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base of every module's models (tables named `<module>` or `<module>_*`)."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class _SQLiteUtcDateTime(sqlite.DATETIME):
    """`DateTime(timezone=True)` on SQLite, which stores no zone: written in UTC, read back UTC-aware.

    PostgreSQL's `timestamptz` already does this; without it the same column reads naive on
    SQLite and aware on PostgreSQL, and the API's timestamps change shape with the database.
    """

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        process = super().bind_processor(dialect)

        def bind(value: Any) -> Any:
            if isinstance(value, datetime) and value.tzinfo is not None:
                value = value.astimezone(UTC).replace(tzinfo=None)
            return process(value) if process else value

        return bind

    def result_processor(self, dialect: Dialect, coltype: object) -> Callable[[Any], Any] | None:
        process = super().result_processor(dialect, coltype)
        if not self.timezone:
            return process

        def result(value: Any) -> Any:
            value = process(value) if process else value
            return value.replace(tzinfo=UTC) if isinstance(value, datetime) and value.tzinfo is None else value

        return result


def build_engine(config: DatabaseSettings) -> AsyncEngine:
    url = make_url(config.url)
    kwargs: dict[str, Any] = {"echo": config.echo, "pool_pre_ping": True}
    backend = url.get_backend_name()
    if backend == "sqlite":
        if url.database and url.database != ":memory:":
            path = Path(url.database)
            if not path.is_absolute():
                path = PROJECT_ROOT / path
                url = url.set(database=str(path))
            path.parent.mkdir(parents=True, exist_ok=True)
        # How long a statement waits for another connection's lock before failing (a 503).
        kwargs["connect_args"] = {"timeout": config.statement_timeout or 5.0}
    else:
        kwargs.update(
            pool_size=config.pool_size,
            max_overflow=config.max_overflow,
            pool_timeout=config.pool_timeout,
            pool_recycle=config.pool_recycle,
        )
        if backend == "postgresql":
            kwargs["connect_args"] = {"timeout": config.connect_timeout}
            if config.statement_timeout:
                # The server cancels a statement running longer than this; the client gives up a
                # second later, which covers a server that cannot answer at all (frozen, partitioned).
                kwargs["connect_args"].update(
                    server_settings={"statement_timeout": str(int(config.statement_timeout * 1000))},
                    command_timeout=config.statement_timeout + 1,
                )
    engine = create_async_engine(url, **kwargs)
    if backend == "sqlite":
        engine.dialect.colspecs = {**engine.dialect.colspecs, DateTime: _SQLiteUtcDateTime}
    return engine


class Database:
    """Holds the engine; `configure()` swaps it (the lifespan, tests, scripts)."""

    def __init__(self) -> None:
        self._engine: AsyncEngine | None = None
        self._sessions: async_sessionmaker[AsyncSession] | None = None
        self.config: DatabaseSettings | None = None

    def configure(self, config: DatabaseSettings) -> None:
        self.config = config
        self._engine = build_engine(config)
        self._sessions = async_sessionmaker(self._engine, expire_on_commit=False)

    def _ensure(self) -> None:
        if self._engine is None:
            from src.core.config import get_settings

            self.configure(get_settings().database)

    @property
    def engine(self) -> AsyncEngine:
        self._ensure()
        assert self._engine is not None
        return self._engine

    @property
    def sessionmaker(self) -> async_sessionmaker[AsyncSession]:
        self._ensure()
        assert self._sessions is not None
        return self._sessions

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @asynccontextmanager
    async def unbounded_connection(self) -> AsyncIterator[AsyncConnection]:
        """A connection without the statement timeout: migrations (index builds, waiting for the migration lock)."""
        self._ensure()
        assert self.config is not None
        if self.dialect != "postgresql" or not self.config.statement_timeout:
            async with self.engine.connect() as conn:
                yield conn
            return
        engine = build_engine(self.config.model_copy(update={"statement_timeout": None}))
        try:
            async with engine.connect() as conn:
                yield conn
        finally:
            await engine.dispose()

    async def dispose(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()

    async def ping(self, limit: float | None = None) -> float:
        """Run `SELECT 1`; return the latency in ms. Raises on failure or after `limit` seconds."""
        limit = limit or (self.config.health_timeout if self.config else 1.0)
        started = time.perf_counter()
        async with asyncio.timeout(limit):
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        return (time.perf_counter() - started) * 1000


database = Database()


class RequestSession(AsyncSession):
    """The session `SessionDep` hands a route: an `AsyncSession` that builds itself on first use.

    A route that never touches it (its answer came from the cache) pays for no session at all.
    """

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        # `AsyncSession.__init__` runs later, in `__getattr__`, with the factory's settings of
        # that moment (the tests' fixtures bind it to their own transaction).
        self._sessions = sessions

    def __getattr__(self, name: str) -> Any:
        # Only reached for attributes not set yet: the session's own are set by the real init.
        if name == "_sessions" or "_sessions" not in vars(self) or self.started:
            raise AttributeError(name)
        self.started = True
        AsyncSession.__init__(self, **self._sessions.kw)
        return getattr(self, name)

    started = False


# Where `SessionMiddleware` (src/middleware/sessions.py) keeps the sessions of a request.
SESSIONS_KEY = "app.db_sessions"


async def get_session(connection: HTTPConnection) -> AsyncSession:
    """One session per request, built on first use; the caller commits, `SessionMiddleware` closes it.

    No generator: FastAPI's cleanup of one cost more than the token check (docs/performance.md).
    """
    session = RequestSession(database.sessionmaker)
    try:
        connection.scope[SESSIONS_KEY].append(session)
    except KeyError:
        raise RuntimeError("SessionDep needs SessionMiddleware (src/middleware/sessions.py) on the app") from None
    return session


SessionDep = Annotated[AsyncSession, Depends(get_session)]
