"""Apply, revert, check and write migrations, module by module, on one connection.

On PostgreSQL every change runs under an advisory lock, so that replicas starting
together apply each migration exactly once.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, text

from src.core.migrations.environment import configure_context, quiet_expression_indexes
from src.core.migrations.layout import MigrationError, module_config, resolve, versions_dir
from src.core.migrations.status import commit_open, on_connection, revisions

LOCK_KEY = zlib.crc32(b"fastapi-enterprise:migrations")


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


def _run(connection: Connection, module: str, step: Callable[[Config, str], None], revision: str) -> None:
    """`alembic upgrade|downgrade` of one module; a failure is rolled back and names the module."""
    try:
        step(module_config(module, connection), revision)
    except Exception as exc:
        connection.rollback()
        raise MigrationError(f"module '{module}': {step.__name__} to {revision} failed: {exc}") from exc
    commit_open(connection)


async def upgrade(modules: Sequence[str] | None = None, revision: str = "head") -> list[str]:
    """Upgrade the given modules (default: all, sorted); return their names."""
    names = resolve(modules)

    def run(connection: Connection) -> None:
        with _locked(connection):
            for name in names:
                _run(connection, name, command.upgrade, revision)

    await on_connection(run, unbounded=True)
    return names


async def downgrade(module: str, revision: str) -> None:
    """Downgrade one module (`base` removes its tables); other modules are not touched."""
    resolve([module])

    def run(connection: Connection) -> None:
        with _locked(connection):
            _run(connection, module, command.downgrade, revision)

    await on_connection(run, unbounded=True)


@dataclass(frozen=True)
class Drift:
    module: str
    problem: str


async def check(modules: Sequence[str] | None = None) -> list[Drift]:
    """Compare each module's models with its migrations (the database must be at head)."""
    names = resolve(modules)

    def run(connection: Connection) -> list[Drift]:
        found: list[Drift] = []
        for name, state in revisions(connection, names).items():
            if state["current"] != state["head"]:
                found.append(Drift(name, f"database at {state['current']}, migrations at {state['head']}"))
                continue
            opts = configure_context(name, connection)
            opts.pop("connection")
            context = MigrationContext.configure(connection, opts=opts)
            with quiet_expression_indexes():
                diffs = compare_metadata(context, opts["target_metadata"])
            found.extend(Drift(name, f"models differ from migrations: {diff}") for diff in diffs)
        commit_open(connection)
        return found

    return await on_connection(run, unbounded=True)


async def make_revision(module: str, message: str, *, autogenerate: bool = True) -> Path:
    """Write a new revision for one module (after upgrading it to head); return its file."""
    await upgrade([module])
    existing = {p: p.read_bytes() for p in versions_dir(module).glob("*.py")}

    def run(connection: Connection) -> Path:
        script = command.revision(module_config(module, connection), message=message, autogenerate=autogenerate)
        commit_open(connection)
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

    return await on_connection(run, unbounded=True)
