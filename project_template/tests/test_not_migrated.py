"""A database whose migrations were skipped says so: a 503 naming the fix, and one warning at start-up.

Not "database unavailable": the database answers, it only lacks the tables the code expects.
(Logging in on such a database, in auth=rbac projects: modules/auth/tests/test_not_migrated.py.)
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, MutableMapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog
from fastapi import FastAPI
from sqlalchemy import text

from src.app import create_app
from src.core.config import ModulesSettings, Settings
from src.core.db import SessionDep, database
from src.core.migrations import migration_modules, module_names, upgrade
from src.core.migrations.layout import CORE

NOT_MIGRATED = "database not migrated: run scripts/run_migrations.py --all"  # the 503's detail and the warning


@pytest.fixture
def never_migrated(settings: Settings, tmp_path: Path) -> Settings:
    """The test settings on a new SQLite file: the database is up, no migration has run."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'never_migrated.db'}"
    return settings.model_copy(update={"database": settings.database.model_copy(update={"url": url})})


@asynccontextmanager
async def started(settings: Settings) -> AsyncIterator[tuple[FastAPI, list[MutableMapping[str, Any]]]]:
    """The app through its lifespan, with the log lines of its start-up (its migration check included)."""
    app = create_app(settings)
    with structlog.testing.capture_logs() as logs:
        async with app.router.lifespan_context(app):
            await app.state.migrations_checked
            yield app, logs


def add_probe_routes(app: FastAPI) -> None:
    @app.get("/api/v1/probe/missing-table")
    async def missing_table(session: SessionDep) -> None:
        await session.execute(text("SELECT id FROM probe_never_created"))

    @app.get("/api/v1/probe/missing-column")
    async def missing_column(session: SessionDep) -> None:
        await session.execute(text("CREATE TABLE probe_rows (id INTEGER)"))
        await session.execute(text("SELECT added_by_a_later_migration FROM probe_rows"))


@pytest.mark.parametrize("probe", ["missing-table", "missing-column"])
async def test_a_missing_table_or_column_is_a_503_saying_to_migrate(
    app: FastAPI, client: httpx.AsyncClient, probe: str
) -> None:
    add_probe_routes(app)  # on the test database (SQLite, or PostgreSQL with DATABASE_URL), in its transaction
    response = await client.get(f"/api/v1/probe/{probe}")
    assert response.status_code == 503
    assert response.json() == {"detail": NOT_MIGRATED}
    assert int(response.headers["retry-after"]) > 0


async def test_start_up_warns_once_naming_the_modules_behind(never_migrated: Settings) -> None:
    async with started(never_migrated) as (_, logs):
        warnings = [line for line in logs if line["event"] == NOT_MIGRATED]
    if not migration_modules():
        assert warnings == []  # nothing to migrate in a project without modules
        return
    assert len(warnings) == 1
    assert warnings[0]["log_level"] == "warning"
    assert sorted(warnings[0]["modules"]) == sorted(migration_modules())
    assert all(state["current"] is None for state in warnings[0]["modules"].values())


async def test_start_up_is_quiet_at_head_and_when_the_database_is_down(settings: Settings) -> None:
    async with started(settings) as (_, logs):  # the test database: every module at head
        assert [line for line in logs if line["event"] == NOT_MIGRATED] == []
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: connections are refused
    url = f"postgresql+asyncpg://nobody@127.0.0.1:{port}/nothing"
    down = settings.model_copy(update={"database": settings.database.model_copy(update={"url": url})})
    async with started(down) as (app, logs):
        assert app.state.migrations_checked.exception() is None  # the check never fails start-up
        assert [line for line in logs if line["log_level"] == "warning"] == []


async def test_switched_off_modules_leave_the_app_ready(never_migrated: Settings) -> None:
    """`modules.disabled`: their tables may be missing; /health/ready stays 200 and start-up does not warn."""
    off = never_migrated.model_copy(update={"modules": ModulesSettings(disabled=module_names())})
    database.configure(off.database)
    await upgrade(["core"])  # the jobs' tables: no module owns them, so switching modules off never skips them
    async with started(off) as (app, logs):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            ready = await client.get("/health/ready")
    assert ready.status_code == 200, ready.json()
    assert ready.json()["checks"]["migrations"]["status"] == "up"
    assert list(ready.json()["checks"]["migrations"]["modules"]) == ["core"]  # no switched-off module is checked
    assert [line for line in logs if line["event"] == NOT_MIGRATED] == []
    async with started(never_migrated) as (app, _):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            enabled = await client.get("/health/ready")
    assert enabled.status_code == (503 if migration_modules() != [CORE] else 200)  # core's is migrated above
