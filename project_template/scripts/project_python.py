"""Run every script in this project's environment, whichever `python` started it.

Each script imports this module before anything else, so `python
scripts/run_migrations.py --all` works as well as `uv run python ...`:

1. already in the project's environment (`.venv`, or $UV_PROJECT_ENVIRONMENT): nothing to do;
2. that environment exists: run the same command again with its interpreter;
3. this interpreter has the project's packages anyway (a container, CI): carry on;
4. uv is installed: `uv run` the same command (it creates the environment first);
5. else: one line saying what to run, exit status 2.

Hand-written because no package can do it: the packages are what is missing.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NEEDED = ("fastapi", "sqlalchemy", "alembic", "yaml", "pydantic_settings")
GUARD = "PROJECT_PYTHON_REEXEC"  # set on the re-run: never loop


def environment() -> Path:
    configured = os.environ.get("UV_PROJECT_ENVIRONMENT")
    return (ROOT / configured).resolve() if configured else ROOT / ".venv"


def interpreter(env: Path) -> Path:
    return env / "Scripts" / "python.exe" if os.name == "nt" else env / "bin" / "python"


def _run_again(program: str, args: list[str], env: dict[str, str]) -> None:
    """Replace this process (so Ctrl-C, exit status and output are the re-run's own)."""
    env = {**env, GUARD: "1"}
    try:
        os.execve(program, [program, *args], env)  # noqa: S606 (the same command, another interpreter)
    except OSError:
        return  # a broken environment: fall through to the next way


def ensure() -> None:
    if os.environ.pop(GUARD, None):  # this is the re-run (and what it starts may need its own)
        return
    env = environment()
    if Path(sys.prefix).resolve() == env.resolve():
        return
    script = [str(Path(sys.argv[0]).resolve()), *sys.argv[1:]]
    # Without a foreign VIRTUAL_ENV: uv would warn that it does not match the project's environment.
    base = {key: value for key, value in os.environ.items() if key != "VIRTUAL_ENV"}
    python = interpreter(env)
    if python.is_file():
        _run_again(str(python), script, {**base, "VIRTUAL_ENV": str(env)})
    if all(importlib.util.find_spec(name) is not None for name in NEEDED):
        return
    if uv := shutil.which("uv"):
        _run_again(uv, ["run", "--project", str(ROOT), "python", *script], base)
    rel = os.path.relpath(script[0], ROOT)
    sys.exit(f"error: this project's environment is missing: run `uv sync` in {ROOT}, then `uv run python {rel}`")


ensure()
