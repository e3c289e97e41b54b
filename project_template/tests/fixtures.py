"""Shared fixtures of tests/ and modules/*/tests/: the configuration, the schema, an app per test, a client.

Loaded as a pytest plugin (`-p tests.fixtures` in pyproject.toml), so that every test folder has them
(and the session's schema is built once); a module's own tests/conftest.py holds its factories.

Tests run on SQLite by default. Point DATABASE_URL at PostgreSQL (or REDIS_URL
at Redis) to run the same suite there; tests marked `postgres` / `redis` skip
with a reason when those are absent, and fail instead when CI=true.

The schema is built once per run: every module down to base, then up to head (empty
tables, and proof that each downgrade works). A test using `app` or `client` then
runs inside one transaction, rolled back at its end: the app's sessions and the
test's own (`database.sessionmaker()`) join it, and their commits only release
savepoints, so a test sees exactly the rows it made. A test that needs real commits
(concurrent requests on several connections, another process) is marked `commits`:
every module's rows are deleted after it instead.
"""

from __future__ import annotations

import os

os.environ.setdefault("CONFIG_ENV", "test")

import io
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from src.app import create_app
from src.core.cache import cache_manager
from src.core.cache.backends import escape_glob
from src.core.cache.testing import cache_settings_for_tests
from src.core.config import PROJECT_ROOT, Settings, load_settings
from src.core.db import Base, database
from src.core.logging import access_log
from src.core.migrations import downgrade, migration_modules, module_metadata, module_names, table_owner, upgrade
from src.core.migrations.layout import CORE
from src.core.module_loader import manifests
from tests.auth_helpers import auth_headers


def _required() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


ALONE = pytest.StashKey[list[str] | None]()


def modules_alone(paths: list[Path], root: Path = PROJECT_ROOT / "modules") -> list[str] | None:
    """When every test collected is in modules/<m>/: those modules and the ones they depend on, else None.

    `uv run pytest modules/orders` thus runs against an app with only `orders` and its
    `depends_on` (the others are switched off, as `modules.disabled` does): the module
    shows it needs nothing it did not declare, and its tables alone are migrated.
    """
    wanted = {p.relative_to(root).parts[0] for p in paths if p.is_relative_to(root)}
    if not wanted or any(not p.is_relative_to(root) for p in paths):
        return None
    declared = manifests()
    todo, found = sorted(wanted), set()
    while todo:
        name = todo.pop()
        if name in declared and name not in found:
            found.add(name)
            todo += declared[name].depends_on
    return sorted(found)


def pytest_collection_finish(session: pytest.Session) -> None:
    alone = session.config.stash.get(ALONE, None)
    if alone is not None:
        session.config.get_terminal_writer().line(f"app modules: {', '.join(alone)} (the others switched off)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    url = os.environ.get("DATABASE_URL", "")
    missing = {
        "postgres": None if url.startswith("postgresql") else "PostgreSQL not configured (set DATABASE_URL)",
        "redis": None if os.environ.get("REDIS_URL") else "Redis not configured (set REDIS_URL)",
        "rabbitmq": None if os.environ.get("RABBITMQ_URL") else "RabbitMQ not configured (set RABBITMQ_URL)",
    }
    config.stash[ALONE] = modules_alone([Path(str(item.path)) for item in items])
    for item in items:
        for marker, reason in missing.items():
            if reason and marker in item.keywords:
                if _required():
                    raise pytest.UsageError(f"CI=true but {reason}: {item.nodeid} needs it")
                item.add_marker(pytest.mark.skip(reason=reason))


def migrated(config: pytest.Config) -> list[str]:
    """The histories whose tables the tests use: all, or core's and those of a module tested alone."""
    alone = config.stash.get(ALONE, None)
    return [name for name in migration_modules() if alone is None or name in alone or name == CORE]


@pytest.fixture(scope="session", autouse=True)
async def schema(request: pytest.FixtureRequest) -> None:
    """Every module's tables, empty, at head: once per run, through each module's own history."""
    database.configure(load_settings().database)
    names = migrated(request.config)
    for name in names:
        await downgrade(name, "base")
    if names:
        await upgrade(names)
    await database.dispose()


@pytest.fixture
def settings(request: pytest.FixtureRequest) -> Settings:
    """The test configuration; the cache runs on Redis when REDIS_URL is set, under a key prefix of this run."""
    return settings_for(request.config.stash.get(ALONE, None))


def settings_for(alone: list[str] | None) -> Settings:
    """The test configuration; with `alone`, every other module is switched off (`modules.disabled`)."""
    loaded = load_settings()
    update: dict[str, Any] = {"cache": cache_settings_for_tests(loaded.cache)}
    if alone is not None:
        off = sorted({*loaded.modules.disabled, *(name for name in module_names() if name not in alone)})
        update["modules"] = loaded.modules.model_copy(update={"disabled": off})
    return loaded.model_copy(update=update)


@pytest.fixture(autouse=True)
def test_database(settings: Settings) -> None:
    """The shared engine points at the test configuration, whatever app an earlier test started."""
    if database.config != settings.database:
        database.configure(settings.database)


@asynccontextmanager
async def rolled_back() -> AsyncIterator[None]:
    """Every session made meanwhile joins one transaction, rolled back at the end (SQLite and PostgreSQL)."""
    sessions = database.sessionmaker
    async with database.engine.connect() as connection:
        transaction = await connection.begin()
        if connection.dialect.name == "sqlite":
            # The sqlite3 driver opens a transaction only before a write, so the first session's
            # SAVEPOINT would open it instead, and releasing that savepoint would commit.
            await connection.exec_driver_sql("BEGIN")
        sessions.configure(bind=connection, join_transaction_mode="create_savepoint")
        try:
            yield
        finally:
            sessions.configure(bind=database.engine, join_transaction_mode="conditional_savepoint")  # the default
            await transaction.rollback()


async def delete_rows(names: list[str]) -> None:
    """Empty the tables of these modules (after a test that committed for real)."""
    for name in names:
        module_metadata(name)
    async with database.engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            if table_owner(table.name, module_names()) in names:
                await connection.execute(table.delete())


@pytest.fixture
async def app(settings: Settings, request: pytest.FixtureRequest) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        await application.state.migrations_checked  # its connection is back in the pool before the test
        # Nothing cached by an earlier test (or an earlier run, on Redis) answers for this one.
        await cache_manager.delete_pattern(escape_glob(cache_manager.key_prefix) + "*")
        if request.node.get_closest_marker("commits"):
            try:
                yield application
            finally:
                await delete_rows(migrated(request.config))
        else:
            async with rolled_back():
                yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


@pytest.fixture
def access_lines(monkeypatch: pytest.MonkeyPatch) -> Callable[[], list[dict[str, Any]]]:
    """`access_lines()`: the access lines written so far in this test, as JSON through the real writer."""
    access_log.flush()  # earlier tests' lines go where they were headed
    stream = io.StringIO()
    monkeypatch.setattr(access_log, "stream", stream)

    def written() -> list[dict[str, Any]]:
        access_log.flush()
        return [json.loads(line) for line in stream.getvalue().splitlines()]

    return written


@pytest.fixture
def sign_in(client: httpx.AsyncClient) -> Callable[..., None]:
    """`sign_in("admin")`: the client's next requests carry a token holding these roles (none: anonymous).

    The token comes from `tests/auth_helpers.py`, so it passes the real auth check in either
    auth mode (RBAC: signed with the test key; Keycloak: issued by the local fake realm).
    """

    def sign(*roles: str, username: str = "tester") -> None:
        client.headers.update(auth_headers(roles=roles, username=username))

    return sign
