"""One Alembic history per module, on the engine of `src.core.db`.

Every module keeps its own environment in `modules/<name>/alembic/` and its
own version table `alembic_version_<name>`. Autogenerate compares only the
module's tables (`<name>` or `<name>_*`, less those of a longer-named module such
as `<name>_archive`): without that filter, a revision for one module would
propose dropping every other module's tables and version table.

`modules/<name>/alembic/env.py` is two lines: `run_module_env("<name>")`.
Scripts use the async helpers below (`upgrade`, `downgrade`, `check`,
`migration_status`, `make_revision`), which run every module on one
connection and, on PostgreSQL, under an advisory lock so that replicas
starting together apply each migration exactly once.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
import warnings
import zlib
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from logging.config import fileConfig
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, MetaData, text

from src.core import module_loader
from src.core.config import PROJECT_ROOT
from src.core.db import Base, database

MODULES_DIR = PROJECT_ROOT / "modules"
# Revision files sort by date: modules/<name>/alembic/versions/2026-11-25_add_orders.py
FILE_TEMPLATE = "%%(year)d-%%(month).2d-%%(day).2d_%%(slug)s"
LOCK_KEY = zlib.crc32(b"fastapi-enterprise:migrations")


@contextmanager
def _quiet_expression_indexes() -> Iterator[None]:
    # SQLite cannot reflect expression indexes (such as a PostgreSQL-only search index);
    # include_object already leaves dialect-specific ones out there, so the warning is noise.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"autogenerate skipping metadata-specified expression-based index")
        yield


class MigrationError(RuntimeError):
    """A module has no migration environment, or a migration failed; the message names it."""


def version_table(module: str) -> str:
    return f"alembic_version_{module}"


def module_names(modules_dir: Path | None = None) -> list[str]:
    """Every module package under modules/ (with or without migrations), as the module loader finds them."""
    return module_loader.module_names(modules_dir or MODULES_DIR)


def table_owner(table: str, modules: Iterable[str] | None = None) -> str | None:
    """The module owning `table`: the longest module name `m` with table == m or m_* (None: no module's).

    With modules `users` and `users_x`, the table `users_x_log` is `users_x`'s, not `users`'.
    Alembic's version tables belong to no module here: each module names its own.
    """
    if table.startswith("alembic_version"):
        return None
    names = module_names() if modules is None else modules
    matching = [name for name in names if table == name or table.startswith(f"{name}_")]
    return max(matching, key=len, default=None)


def owns_table(module: str, table: str, modules: Iterable[str] | None = None) -> bool:
    """The ownership rule: `<module>` or `<module>_*`, unless a longer-named module (`<module>_x`) claims it.

    `modules`: every module of the project (default: the packages under modules/).
    """
    names = module_names() if modules is None else modules
    return table_owner(table, {module, *names}) == module


def migration_modules(modules_dir: Path | None = None) -> list[str]:
    """Every module with an `alembic/env.py`, sorted: the order migrations run in."""
    modules_dir = modules_dir or MODULES_DIR
    return [name for name in module_names(modules_dir) if (modules_dir / name / "alembic" / "env.py").is_file()]


def module_config(module: str, connection: Connection | None = None) -> Config:
    """The Alembic `Config` of one module, built in code (no ini file needed)."""
    location = MODULES_DIR / module / "alembic"
    if not (location / "env.py").is_file():
        known = ", ".join(migration_modules()) or "none"
        raise MigrationError(f"module '{module}' has no migrations ({location}/env.py missing; known: {known})")
    config = Config()
    config.set_main_option("path_separator", "os")
    config.set_main_option("script_location", str(location))
    config.set_main_option("version_locations", str(location / "versions"))
    config.set_main_option("file_template", FILE_TEMPLATE)
    config.set_main_option("prepend_sys_path", str(PROJECT_ROOT))
    config.attributes["module"] = module
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def module_metadata(module: str) -> MetaData:
    """Import the module's models so they register on `Base.metadata`."""
    importlib.import_module(f"modules.{module}.models")
    return Base.metadata


def _filters(module: str, dialect: str) -> dict[str, Any]:
    # Read once: a sibling such as `users_x` takes the `users_x*` tables away from `users`.
    siblings = module_names()

    def include_name(name: str | None, type_: str, parent_names: Any) -> bool:
        # Reflected from the database: only this module's tables are looked at.
        if type_ == "table":
            return name is not None and owns_table(module, name, siblings)
        return True

    def include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
        # Declared in the metadata (every module's models share one Base): keep ours.
        if type_ == "table":
            return name is not None and owns_table(module, name, siblings)
        table = getattr(obj, "table", None)
        if table is not None and not owns_table(module, table.name, siblings):
            return False
        # An index declared for one dialect only (`info={"dialects": [...]}`), such as a
        # PostgreSQL full-text GIN index, is neither expected nor created elsewhere.
        dialects = getattr(obj, "info", {}).get("dialects") if type_ == "index" else None
        return not (dialects and dialect not in dialects)

    return {"include_name": include_name, "include_object": include_object}


def configure_context(module: str, connection: Connection) -> dict[str, Any]:
    """The `context.configure()` arguments of a module (shared by env.py and `check`)."""
    dialect = connection.dialect.name
    return {
        "connection": connection,
        "target_metadata": module_metadata(module),
        "version_table": version_table(module),
        "render_as_batch": dialect == "sqlite",  # SQLite alters tables by copying them
        "compare_type": True,
        "compare_server_default": False,
        **_filters(module, dialect),
    }


def run_module_env(module: str) -> None:
    """Body of `modules/<module>/alembic/env.py`: online on the project's engine, or offline (`--sql`)."""
    from alembic import context

    if context.is_offline_mode():
        context.configure(
            url=database.engine.url.render_as_string(hide_password=False),
            target_metadata=module_metadata(module),
            version_table=version_table(module),
            literal_binds=True,
            dialect_opts={"paramstyle": "named"},
            **_filters(module, database.engine.dialect.name),
        )
        with context.begin_transaction():
            context.run_migrations()
        return

    def run(connection: Connection) -> None:
        context.configure(**configure_context(module, connection))
        with context.begin_transaction(), _quiet_expression_indexes():
            context.run_migrations()

    shared = context.config.attributes.get("connection")
    if shared is not None:
        run(shared)
        return
    if context.config.config_file_name:  # the `alembic` command: show its progress lines
        fileConfig(context.config.config_file_name, disable_existing_loggers=False)

    async def run_alone() -> None:
        try:
            async with database.unbounded_connection() as conn:
                await conn.run_sync(run)
                await conn.commit()
        finally:
            await database.dispose()

    asyncio.run(run_alone())


@contextmanager
def _locked(connection: Connection) -> Iterator[None]:
    """On PostgreSQL, one migrator at a time: the others wait, then find nothing left to do."""
    if connection.dialect.name != "postgresql":
        yield
        return
    connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": LOCK_KEY})
    connection.commit()
    try:
        yield
    finally:
        connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": LOCK_KEY})
        connection.commit()


def _finish(connection: Connection) -> None:
    if connection.in_transaction():
        connection.commit()


def _resolve(modules: Sequence[str] | None) -> list[str]:
    names = list(modules) if modules is not None else migration_modules()
    for name in names:
        module_config(name)  # raises with the list of known modules
    return names


async def _on_connection(fn: Any) -> Any:
    async with database.unbounded_connection() as conn:
        return await conn.run_sync(fn)


async def upgrade(modules: Sequence[str] | None = None, revision: str = "head") -> list[str]:
    """Upgrade the given modules (default: all, sorted); return their names."""
    names = _resolve(modules)

    def run(connection: Connection) -> None:
        with _locked(connection):
            for name in names:
                try:
                    command.upgrade(module_config(name, connection), revision)
                except Exception as exc:
                    connection.rollback()
                    raise MigrationError(f"module '{name}': upgrade to {revision} failed: {exc}") from exc
                _finish(connection)

    await _on_connection(run)
    return names


async def downgrade(module: str, revision: str) -> None:
    """Downgrade one module (`base` removes its tables); other modules are not touched."""
    _resolve([module])

    def run(connection: Connection) -> None:
        with _locked(connection):
            try:
                command.downgrade(module_config(module, connection), revision)
            except Exception as exc:
                connection.rollback()
                raise MigrationError(f"module '{module}': downgrade to {revision} failed: {exc}") from exc
            _finish(connection)

    await _on_connection(run)


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


def _listing(versions: Path) -> tuple[tuple[str, int, int], ...]:
    try:
        with os.scandir(versions) as entries:
            files = [entry for entry in entries if entry.name.endswith(".py")]
            return tuple(sorted((f.name, f.stat().st_mtime_ns, f.stat().st_size) for f in files))
    except FileNotFoundError:
        return ()


def _heads(module: str) -> list[str]:
    config = module_config(module)
    versions = str(config.get_main_option("version_locations"))
    listing = _listing(Path(versions))
    cached = _HEADS.get(versions)
    if cached is not None and cached[0] == listing:
        return cached[1]
    heads = list(ScriptDirectory.from_config(config).get_heads())
    _HEADS[versions] = (listing, heads)
    return heads


def _status(connection: Connection, names: list[str], quiet: bool = False) -> dict[str, dict[str, str | None]]:
    token = _QUIET_CONTEXT.set(quiet)
    try:
        status: dict[str, dict[str, str | None]] = {}
        for name in names:
            context = MigrationContext.configure(connection, opts={"version_table": version_table(name)})
            heads = _heads(name)
            status[name] = {"current": context.get_current_revision(), "head": heads[0] if heads else None}
        _finish(connection)
        return status
    finally:
        _QUIET_CONTEXT.reset(token)


async def migration_status(
    modules: Sequence[str] | None = None, *, quiet: bool = False
) -> dict[str, dict[str, str | None]]:
    """Per module, the applied revision and the latest one: `{"users": {"current": ..., "head": ...}}`.

    `quiet`: without Alembic's INFO lines (health probes). Heads are re-read only when a
    module's versions folder changed; the database is asked every time.
    """
    names = _resolve(modules)
    result: dict[str, dict[str, str | None]] = await _on_connection(lambda c: _status(c, names, quiet))
    return result


@dataclass(frozen=True)
class Drift:
    module: str
    problem: str


async def check(modules: Sequence[str] | None = None) -> list[Drift]:
    """Compare each module's models with its migrations (the database must be at head)."""
    names = _resolve(modules)

    def run(connection: Connection) -> list[Drift]:
        found: list[Drift] = []
        for name, state in _status(connection, names).items():
            if state["current"] != state["head"]:
                found.append(Drift(name, f"database at {state['current']}, migrations at {state['head']}"))
                continue
            opts = configure_context(name, connection)
            opts.pop("connection")
            context = MigrationContext.configure(connection, opts=opts)
            with _quiet_expression_indexes():
                diffs = compare_metadata(context, opts["target_metadata"])
            found.extend(Drift(name, f"models differ from migrations: {diff}") for diff in diffs)
        _finish(connection)
        return found

    drifts: list[Drift] = await _on_connection(run)
    return drifts


async def make_revision(module: str, message: str, *, autogenerate: bool = True) -> Path:
    """Write a new revision for one module (after upgrading it to head); return its file."""
    await upgrade([module])

    versions = MODULES_DIR / module / "alembic" / "versions"
    existing = {p: p.read_bytes() for p in versions.glob("*.py")}

    def run(connection: Connection) -> Path:
        script = command.revision(module_config(module, connection), message=message, autogenerate=autogenerate)
        _finish(connection)
        scripts = script if isinstance(script, list) else [script]
        if not scripts or scripts[0] is None:
            raise MigrationError(f"module '{module}': Alembic wrote no revision")
        path = Path(scripts[0].path)
        if path in existing:
            # Same message on the same day: Alembic overwrote that revision; put it back, keep both.
            renamed = path.with_name(f"{path.stem}_{scripts[0].revision}.py")
            path.rename(renamed)
            path.write_bytes(existing[path])
            return renamed
        return path

    path: Path = await _on_connection(run)
    return path


__all__ = [
    "Drift",
    "MigrationError",
    "check",
    "downgrade",
    "make_revision",
    "migration_modules",
    "migration_status",
    "module_config",
    "module_names",
    "owns_table",
    "run_module_env",
    "table_owner",
    "upgrade",
    "version_table",
]
