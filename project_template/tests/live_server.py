"""The app under uvicorn in a child process, on a database of its own, for tests that need real HTTP.

Used by the hostile-client tests: schemathesis fuzzing over the wire and oversized
bodies whose memory cost is read from the server process itself. The database is
a fresh SQLite file, or a fresh PostgreSQL database beside DATABASE_URL's (dropped
afterwards), migrated to head; the cache keys get a prefix of their own.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from src.core.config import PROJECT_ROOT


@dataclass
class LiveServer:
    base_url: str
    process: subprocess.Popen[bytes]
    log: Path

    def rss_kib(self) -> tuple[int, int]:
        """(current, peak) resident memory of the server process, from /proc."""
        status = Path(f"/proc/{self.process.pid}/status").read_text().splitlines()
        fields = dict(line.split(":", 1) for line in status if ":" in line)
        return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


def report(capsys: pytest.CaptureFixture[str], **figures: Any) -> None:
    """Print figures as `name: value` lines, past pytest's capture (docs/hardening.md records a run)."""
    with capsys.disabled():
        sys.stdout.write("".join(f"\n{name}: {value}" for name, value in figures.items()) + "\n")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@contextmanager
def own_database(tmp: Path) -> Iterator[str]:
    """A fresh database URL: SQLite in `tmp`, or a new database on DATABASE_URL's PostgreSQL server."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgresql"):
        yield f"sqlite+aiosqlite:///{tmp / 'live.db'}"
        return
    parsed = make_url(url)
    name = f"live_{uuid.uuid4().hex[:12]}"

    async def execute(statement: str) -> None:
        engine = create_async_engine(parsed, isolation_level="AUTOCOMMIT")  # CREATE DATABASE refuses a transaction
        try:
            async with engine.connect() as conn:
                await conn.execute(text(statement))
        finally:
            await engine.dispose()

    asyncio.run(execute(f'CREATE DATABASE "{name}"'))
    try:
        yield parsed.set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@contextmanager
def live_server(tmp: Path, **settings: str) -> Iterator[LiveServer]:
    """Migrate a fresh database, serve the app on it, stop the server afterwards."""
    with own_database(tmp) as url:
        env = {
            **os.environ,
            "CONFIG_ENV": "test",
            "DATABASE_URL": url,
            "APP_CACHE__KEY_PREFIX": f"live{uuid.uuid4().hex[:8]}",
            "APP_LOGGING__LEVEL": "WARNING",
            **settings,
        }
        migrate = [sys.executable, "scripts/run_migrations.py", "--all"]
        subprocess.run(migrate, cwd=PROJECT_ROOT, env=env, check=True, capture_output=True)  # noqa: S603
        port = free_port()
        log = tmp / "server.log"
        command = [sys.executable, "-m", "uvicorn", "src.app:app", "--host=127.0.0.1", f"--port={port}"]
        with log.open("wb") as out:
            process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdout=out, stderr=out)  # noqa: S603
        try:
            _wait_until_listening(process, port, log)
            yield LiveServer(f"http://127.0.0.1:{port}", process, log)
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_until_listening(process: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"the server did not listen within 60 s:\n{log.read_text()[-3000:]}")
