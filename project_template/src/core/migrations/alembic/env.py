"""The Alembic environment of every module: Alembic runs it with one module's history.

The module is the one whose `alembic/versions/` folder Alembic was given (its alembic.ini,
or `src.core.migrations.module_config`); see `src/core/migrations/environment.py`.
"""

from src.core.migrations.environment import run_env

run_env()
