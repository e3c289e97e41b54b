"""Where each module's database stands against this code's migrations.

Asked by `scripts/run_migrations.py --status`, by `/health/ready` on every probe, and
once at start-up (`warn_if_not_migrated`), so it reads scripts only when they change
and keeps Alembic's INFO lines out of the probes.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
from collections.abc import Callable, Collection, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection

from src.core.db import database
from src.core.logging import get_logger
from src.core.migrations.layout import module_config, resolve, version_table

T = TypeVar("T")
Revisions = dict[str, str | None]  # {"current": ..., "head": ...}

log = get_logger(__name__)

# Heads per versions folder, with the folder's listing they were read from: parsing a
# module's scripts takes milliseconds, and /health/ready asks on every probe (on the
# event loop). A listing of names, sizes and mtimes is a few system calls.
_HEADS: dict[str, tuple[tuple[tuple[str, int, int], ...], list[str]]] = {}
# Set while a status check runs: MigrationContext logs two INFO lines per module
# ("Context impl ...", "Will assume ... DDL"), noise on every readiness probe.
_QUIET_CONTEXT: ContextVar[bool] = ContextVar("quiet_migration_context", default=False)


class _QuietStatusFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (_QUIET_CONTEXT.get() and record.levelno < logging.WARNING)


logging.getLogger("alembic.runtime.migration").addFilter(_QuietStatusFilter())


def commit_open(connection: Connection) -> None:
    if connection.in_transaction():
        connection.commit()


async def on_connection(fn: Callable[[Connection], T], *, unbounded: bool = False) -> T:
    """Run `fn` on one connection of the project's engine (`unbounded`: without the statement timeout)."""
    connect = database.unbounded_connection if unbounded else database.engine.connect
    async with connect() as conn:
        return await conn.run_sync(fn)


def _listing(versions: Path) -> tuple[tuple[str, int, int], ...]:
    try:
        with os.scandir(versions) as entries:
            files = [entry for entry in entries if entry.name.endswith(".py")]
            return tuple(sorted((f.name, f.stat().st_mtime_ns, f.stat().st_size) for f in files))
    except FileNotFoundError:
        return ()


def heads(module: str) -> list[str]:
    config = module_config(module)
    versions = str(config.get_main_option("version_locations"))
    listing = _listing(Path(versions))
    cached = _HEADS.get(versions)
    if cached is not None and cached[0] == listing:
        return cached[1]
    found = list(ScriptDirectory.from_config(config).get_heads())
    _HEADS[versions] = (listing, found)
    return found


@functools.cache
def known_revisions(module: str) -> frozenset[str]:
    """Every revision in this code's history of `module` (fixed while the process runs)."""
    script = ScriptDirectory.from_config(module_config(module))
    return frozenset(revision.revision for revision in script.walk_revisions())


def revisions(connection: Connection, names: list[str], quiet: bool = False) -> dict[str, Revisions]:
    token = _QUIET_CONTEXT.set(quiet)
    try:
        status: dict[str, Revisions] = {}
        for name in names:
            context = MigrationContext.configure(connection, opts={"version_table": version_table(name)})
            found = heads(name)
            status[name] = {"current": context.get_current_revision(), "head": found[0] if found else None}
        commit_open(connection)
        return status
    finally:
        _QUIET_CONTEXT.reset(token)


async def migration_status(modules: Sequence[str] | None = None, *, quiet: bool = False) -> dict[str, Revisions]:
    """Per module, the applied revision and the latest one: `{"users": {"current": ..., "head": ...}}`.

    `quiet`: without Alembic's INFO lines (health probes). Heads are re-read only when a
    module's versions folder changed; the database is asked every time.
    """
    names = resolve(modules)
    return await on_connection(lambda c: revisions(c, names, quiet))


@dataclass(frozen=True)
class Standing:
    """Every module at this code's head, behind it (not migrated), or ahead (a newer release migrated it)."""

    current: dict[str, str | None] = field(default_factory=dict)
    behind: dict[str, Revisions] = field(default_factory=dict)
    ahead: list[str] = field(default_factory=list)


async def standing(skip: Collection[str] = ()) -> Standing:
    """Compare the database with this code's migrations, quietly (probes and start-up ask).

    `skip`: switched-off modules (`modules.disabled`), whose tables may lag without harm.
    """
    result = Standing()
    names = [name for name in resolve(None) if name not in skip]
    for name, state in (await migration_status(names, quiet=True)).items():
        current = state["current"]
        result.current[name] = current
        if current == state["head"]:
            continue
        # Read in a thread: parsing every script of a long history takes a while on a cold cache.
        known = await asyncio.to_thread(known_revisions, name)
        if current is not None and current not in known:
            result.ahead.append(name)
        else:
            result.behind[name] = state
    return result


async def warn_if_not_migrated(skip: Collection[str] = ()) -> None:
    """Log one warning when a module's migrations are not applied; never raises (start-up must not wait on it)."""
    try:
        behind = (await standing(skip)).behind
    except Exception as exc:  # no database yet: /health/ready reports it
        log.debug("migration status unknown at start-up", error=type(exc).__name__)
        return
    if behind:
        log.warning(
            "database not migrated: run scripts/run_migrations.py --all",
            modules=behind,
        )
