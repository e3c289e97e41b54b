"""One Alembic history per module, on the engine of `src.core.db`.

Each module keeps only its history, `modules/<name>/alembic/versions/`, in its own
version table `alembic_version_<name>`; the rest is here, once for every module:

- `layout`: which modules have migrations, their Alembic configuration, who owns a table;
- `environment`: what Alembic runs for a module (`alembic/env.py` beside this file), with
  the autogenerate filters and SQLite's batch mode;
- `status`: each module's applied and latest revision (scripts, `/health/ready`, start-up);
- `commands`: `upgrade`, `downgrade`, `check`, `make_revision`, every module on one
  connection and, on PostgreSQL, under an advisory lock.
"""

from src.core.migrations.commands import LOCK_KEY, Drift, check, downgrade, make_revision, upgrade
from src.core.migrations.environment import module_metadata, run_env, run_module_env
from src.core.migrations.layout import (
    MigrationError,
    migration_modules,
    module_config,
    module_names,
    owns_table,
    table_owner,
    version_table,
)
from src.core.migrations.status import known_revisions, migration_status, standing, warn_if_not_migrated

__all__ = [
    "LOCK_KEY",
    "Drift",
    "MigrationError",
    "check",
    "downgrade",
    "known_revisions",
    "make_revision",
    "migration_modules",
    "migration_status",
    "module_config",
    "module_metadata",
    "module_names",
    "owns_table",
    "run_env",
    "run_module_env",
    "standing",
    "table_owner",
    "upgrade",
    "version_table",
    "warn_if_not_migrated",
]
