#!/usr/bin/env python3
"""Run a command with this repository's tools (uv, copier), setting them up first if they are missing.

    python3 scripts/bootstrap.py uv run pytest      # the template's whole test suite

`scripts/init_project.py` uses the same setup. Any Python 3.11+ works,
Debian's and Ubuntu's system python3 included: their pip refuses to install
anything (PEP 668, "externally-managed-environment"), and nothing is installed
into them. Instead, when uv or copier is missing, this repository's own
environment `.venv` is made (the one `uv run pytest` uses; its dev group holds
uv and copier): with `uv sync` when uv is on PATH, else with `python3 -m venv`,
`pip install uv` inside it, then `uv sync`. The command then runs with
`.venv/bin` first on PATH. No pipx, no sudo, no shell profile edited.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

TEMPLATE = Path(__file__).resolve().parents[1]
VENV = TEMPLATE / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")
UV = BIN / ("uv.exe" if os.name == "nt" else "uv")
GUARD = "FASTAPI_ENTERPRISE_BOOTSTRAPPED"  # set once re-executed: never loop


def fail(message: str) -> None:
    print(f"bootstrap: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def clean_env() -> dict[str, str]:
    """The environment for the tools: `.venv/bin` first on PATH, no foreign VIRTUAL_ENV.

    An active virtual environment makes every uv command in the project warn that
    `VIRTUAL_ENV` does not match the project's `.venv`; nothing here needs one.
    """
    env = {key: value for key, value in os.environ.items() if key != "VIRTUAL_ENV"}
    if BIN.is_dir():
        env["PATH"] = os.pathsep.join([str(BIN), env.get("PATH", "")])
    return env


def ready(need_copier: bool) -> bool:
    """uv is on PATH and, if needed, this very interpreter imports copier."""
    return shutil.which("uv", path=clean_env()["PATH"]) is not None and (
        not need_copier or importlib.util.find_spec("copier") is not None
    )


def venv_complete() -> bool:
    if not (PYTHON.is_file() and UV.is_file()):
        return False
    probe = subprocess.run([PYTHON, "-c", "import copier"], capture_output=True, check=False)
    return probe.returncode == 0


def step(command: list[str | Path], what: str) -> None:
    result = subprocess.run(command, cwd=TEMPLATE, env=clean_env(), capture_output=True, text=True, check=False)
    if result.returncode != 0:
        said = [line for line in (result.stderr + result.stdout).splitlines() if line.strip()]
        fail(f"{what} failed: {said[-1] if said else f'exit status {result.returncode}'}")


def make_venv() -> None:
    """`.venv` with the dev group (uv, copier, pytest) of this repository's pyproject.toml."""
    print(f"bootstrap: setting up {VENV} with uv and copier (once) ...", file=sys.stderr, flush=True)
    uv = shutil.which("uv")
    if uv is None:
        if subprocess.run([sys.executable, "-m", "venv", "--help"], capture_output=True, check=False).returncode:
            fail(
                f"{sys.executable} has no venv module and uv is not installed: install uv "
                "(https://docs.astral.sh/uv/getting-started/installation/) or `sudo apt install python3-venv`, "
                "then run this again"
            )
        step([sys.executable, "-m", "venv", VENV], "python3 -m venv .venv")
        step([PYTHON, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "uv"], "pip install uv")
        uv = str(UV)
    step([uv, "sync", "--quiet"], "uv sync")


def ensure_tools(need_copier: bool) -> None:
    """Return when the tools are usable here; else set up `.venv` and re-run this very command in it."""
    if ready(need_copier):
        return
    if os.environ.get(GUARD):
        fail(f"{VENV} was set up, yet uv or copier is still missing: delete {VENV} and run this again")
    if not venv_complete():
        make_venv()
    env = {**clean_env(), GUARD: "1"}
    os.execve(PYTHON, [str(PYTHON), *sys.argv], env)


def main() -> None:
    if len(sys.argv) < 2:
        fail("say what to run, e.g. `python3 scripts/bootstrap.py uv run pytest`")
    ensure_tools(need_copier=False)
    command = sys.argv[1:]
    found = shutil.which(command[0], path=clean_env()["PATH"])
    if found is None:
        fail(f"{command[0]} not found")
    os.execve(found, [found, *command[1:]], clean_env())


if __name__ == "__main__":
    main()
