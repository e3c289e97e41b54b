"""Start-up imports only what serving needs: Alembic and redis-py are slow to import."""

from __future__ import annotations

import subprocess
import sys

from src.core.config import PROJECT_ROOT


def test_importing_the_app_loads_neither_alembic_nor_redis() -> None:
    # Alembic: only the readiness probe and the scripts need it. redis-py: only the Redis backend, once connected.
    code = "import sys, src.app; print(sorted({name.split('.')[0] for name in sys.modules} & {'alembic', 'redis'}))"
    result = subprocess.run(  # noqa: S603 - our own interpreter, no shell
        [sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "[]"
