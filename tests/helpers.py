"""Helpers for the template's own tests: snapshot the template, render it, run commands."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import copier

REPO = Path(__file__).resolve().parents[1]
CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
PG_ADMIN_URL = os.environ.get("PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379")
RABBITMQ_URL = os.environ.get("TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")

# The answers every render needs unless a test says otherwise.
BASE_ANSWERS: dict[str, Any] = {"project_name": "my_api", "auth": "rbac", "with_example_module": True}


def run(
    command: Sequence[str | Path],
    cwd: Path,
    env: Mapping[str, str] | None = None,
    check: bool = True,
    timeout: float = 600,
) -> subprocess.CompletedProcess[str]:
    """Run a command, returning its output; on failure the assertion shows both streams."""
    merged = {key: value for key, value in os.environ.items() if key != "VIRTUAL_ENV"}  # projects use their .venv
    merged.update(env or {})  # unless a test sets one, as a user's shell may
    result = subprocess.run(
        [str(c) for c in command], cwd=cwd, env=merged, capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"{' '.join(map(str, command))} exited {result.returncode} in {cwd}\n"
            f"--- stdout ---\n{result.stdout[-6000:]}\n--- stderr ---\n{result.stderr[-6000:]}"
        )
    return result


def snapshot_template(dst: Path, tag: str | None = None) -> Path:
    """Copy the working tree (tracked and untracked, not ignored) into a fresh git repo.

    Copier renders committed content; a snapshot lets tests render uncommitted
    work and gives every render a real commit that nested copies can pin. Like
    this repository's main branch, it has no version tag unless a test asks for
    one (tests/test_update.py releases versions of its own copy).
    """
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, capture_output=True, check=True
    ).stdout.decode()
    for rel in filter(None, listed.split("\0")):
        src = REPO / rel
        if src.is_file():
            target = dst / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target)
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@example.com"]
    run(["git", "init", "-q", "-b", "main"], dst)
    run(["git", "add", "-A"], dst)
    run([*git, "commit", "-q", "-m", "snapshot"], dst)
    if tag:
        run([*git, "tag", tag], dst)
    return dst


def render(template: Path, dst: Path, **answers: Any) -> Path:
    """Render the project template (or a module, with template_kind=module)."""
    data = {**BASE_ANSWERS, **answers} if answers.get("template_kind", "project") == "project" else answers
    copier.run_copy(str(template), str(dst), data=data, defaults=True, unsafe=True, vcs_ref="HEAD", quiet=True)
    return dst


def uv(project: Path, *args: str, env: Mapping[str, str] | None = None, check: bool = True, timeout: float = 600):
    """`uv run ...` inside a generated project (syncing its environment first)."""
    return run(["uv", "run", "--quiet", *args], project, env=env, check=check, timeout=timeout)


def service_available(kind: str) -> str | None:
    """None when the service answers, else the reason it does not."""
    if kind == "rabbitmq":  # no client tool to ask: its AMQP port accepting is enough here
        try:
            socket.create_connection(("127.0.0.1", 5672), timeout=1).close()
        except OSError:
            return "rabbitmq is not running on 127.0.0.1:5672 (rabbitmq-server -detached)"
        return None
    probe = {
        "postgres": ["pg_isready", "-h", "127.0.0.1", "-p", "5432"],
        "redis": ["redis-cli", "-h", "127.0.0.1", "ping"],
    }[kind]
    if shutil.which(probe[0]) is None:
        return f"{kind}: {probe[0]} not installed"
    result = subprocess.run(probe, capture_output=True, text=True, check=False)
    if result.returncode != 0 or (kind == "redis" and "PONG" not in result.stdout):
        return f"{kind} is not running on 127.0.0.1"
    return None


def fresh_postgres_database() -> str:
    """Create an empty PostgreSQL database for one generated project; return its async URL."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    run(["psql", PG_ADMIN_URL, "-q", "-c", f"CREATE DATABASE {name}"], REPO)
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    return f"{base}/{name}"


def drop_postgres_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    run(["psql", PG_ADMIN_URL, "-q", "-c", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"], REPO, check=False)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def served(
    command: Sequence[str | Path], cwd: Path, port: int, env: Mapping[str, str] | None = None, wait: float = 300
) -> Iterator[list[str]]:
    """Start a command that serves on `port`, wait for /health, yield; stop its whole process group.

    The list yielded is filled with the command's output (stdout and stderr) once it has stopped.
    """
    server = subprocess.Popen(
        [str(c) for c in command],
        cwd=cwd,
        env=dict(env) if env is not None else None,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    output: list[str] = []

    def stop(sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, sig)  # the whole group: uv and the server it runs

    try:
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and server.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                time.sleep(0.5)
        else:
            stop(signal.SIGKILL)
            raise AssertionError(f"no server on {port} (exit {server.poll()}):\n{server.communicate()[0][-6000:]}")
        yield output
    finally:
        stop(signal.SIGTERM)
        try:
            text, _ = server.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            stop(signal.SIGKILL)
            text, _ = server.communicate()
        output.append(text)
