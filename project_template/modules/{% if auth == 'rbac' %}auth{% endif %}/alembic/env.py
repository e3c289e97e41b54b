"""Alembic environment of the auth module.

Its own history, in its own version table (`alembic_version_auth`), comparing only its
own tables. Everything lives in `src.core.migrations` (engine, filters, async run),
so every module's env.py stays these few lines.
"""

from src.core.migrations import run_module_env

run_module_env("auth")
