"""Where each module's migrations live, and which tables each module owns.

A module's history is `modules/<name>/alembic/versions/`, recorded in its own version
table `alembic_version_<name>`. Everything else Alembic needs is shared by every
module: `alembic/` beside this file holds the one env.py and the revision template.
The core's own tables (`core_*`: the jobs outbox, inbox and dead letters) have the
history `core`, in `versions/` beside this file, applied before every module's.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from alembic.config import Config
from sqlalchemy import Connection

from src.core import module_loader
from src.core.config import PROJECT_ROOT

MODULES_DIR = PROJECT_ROOT / "modules"
SHARED_ENVIRONMENT = Path(__file__).resolve().parent / "alembic"
CORE = "core"  # a reserved module name (scripts/names.json), so no module can take it
CORE_VERSIONS = Path(__file__).resolve().parent / "versions"
# Revision files sort by date: modules/<name>/alembic/versions/2026-11-25_add_orders.py
FILE_TEMPLATE = "%%(year)d-%%(month).2d-%%(day).2d_%%(slug)s"


class MigrationError(RuntimeError):
    """A module has no migration history, or a migration failed; the message names it."""


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
    if table.startswith(f"{CORE}_"):
        return CORE
    names = module_names() if modules is None else modules
    matching = [name for name in names if table == name or table.startswith(f"{name}_")]
    return max(matching, key=len, default=None)


def owns_table(module: str, table: str, modules: Iterable[str] | None = None) -> bool:
    """The ownership rule: `<module>` or `<module>_*`, unless a longer-named module (`<module>_x`) claims it.

    `modules`: every module of the project (default: the packages under modules/).
    """
    names = module_names() if modules is None else modules
    return table_owner(table, {module, *names}) == module


def versions_dir(module: str, modules_dir: Path | None = None) -> Path:
    if module == CORE:
        return CORE_VERSIONS
    return (modules_dir or MODULES_DIR) / module / "alembic" / "versions"


def migration_modules(modules_dir: Path | None = None) -> list[str]:
    """`core`, then every module with an `alembic/versions/` folder, sorted: the order migrations run in."""
    return [CORE] + [name for name in module_names(modules_dir) if versions_dir(name, modules_dir).is_dir()]


def module_config(module: str, connection: Connection | None = None) -> Config:
    """The Alembic `Config` of one module, built in code (the module's alembic.ini is for the `alembic` command)."""
    versions = versions_dir(module)
    if not versions.is_dir():
        known = ", ".join(migration_modules()) or "none"
        raise MigrationError(f"module '{module}' has no migrations ({versions} missing; known: {known})")
    config = Config()
    config.set_main_option("path_separator", "os")
    config.set_main_option("script_location", str(SHARED_ENVIRONMENT))
    config.set_main_option("version_locations", str(versions))
    config.set_main_option("file_template", FILE_TEMPLATE)
    config.set_main_option("prepend_sys_path", str(PROJECT_ROOT))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def resolve(modules: Sequence[str] | None) -> list[str]:
    """The given modules (default: every module with migrations); raises naming an unknown one."""
    names = list(modules) if modules is not None else migration_modules()
    for name in names:
        module_config(name)  # raises with the list of known modules
    return names


def config_module(config: Config) -> str:
    """The module a `Config` is about, read from its history folder (`modules/<name>/alembic/versions`)."""
    location = Path(str(config.get_main_option("version_locations"))).resolve()
    if location == CORE_VERSIONS:
        return CORE
    module = location.parent.parent.name
    if location.parent.name != "alembic" or module not in module_names(location.parents[2]):
        raise MigrationError(f"{location} is not the alembic/versions folder of a module under modules/")
    return module
