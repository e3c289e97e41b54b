"""A database that stops answering: requests fail with the JSON 503 within a bound, then recover.

The test owns its PostgreSQL: `initdb` into a temporary folder, a server on a port
of its own, frozen with SIGSTOP (postmaster and every backend: the server is up,
its sockets accept, nothing answers; what a hung host or a partition looks like),
thawed with SIGCONT. Without the statement timeout the requests would wait for the
whole freeze. Marked `faults` (`pytest -m faults` runs it alone); skipped when the
PostgreSQL server binaries are missing, a failure instead under CI=true.
"""

from __future__ import annotations

import asyncio
import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from src.app import create_app
from src.core.config import Settings
from src.core.db import SessionDep
from tests.live_server import free_port, report

pytestmark = pytest.mark.faults
TIMEOUTS = {"statement_timeout": 1.0, "connect_timeout": 1.0, "pool_timeout": 1.0}


def server_binaries() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent  # Debian links initdb alone into PATH
    installed = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return Path(installed[-1]).parent if installed else None


def run_as_owner(command: list[str], owner: str | None, **kwargs: Any) -> subprocess.Popen[bytes]:
    # PostgreSQL refuses to run as root: a root test runs it as the `postgres` system user.
    return subprocess.Popen(command, user=owner, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **kwargs)  # noqa: S603


@pytest.fixture(scope="module")
def own_postgres() -> Iterator[tuple[str, int]]:
    """(async URL, postmaster pid) of a PostgreSQL started for this test alone."""
    binaries = server_binaries()
    if binaries is None:
        reason = "PostgreSQL server binaries (initdb) not found: apt-get install postgresql"
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(f"CI=true requires them: {reason}")
        pytest.skip(reason)
    owner = None
    # Not under pytest's temporary root: that one is private to the user running the tests.
    root = Path(tempfile.mkdtemp(prefix="faults_pg_"))
    if os.geteuid() == 0:
        owner = "postgres"
        entry = pwd.getpwnam(owner)
        os.chown(root, entry.pw_uid, entry.pw_gid)
    data = root / "data"
    init = run_as_owner([str(binaries / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust"], owner)
    output, _ = init.communicate(timeout=120)
    assert init.returncode == 0, output.decode()[-2000:]
    port = free_port()
    server = run_as_owner(
        [str(binaries / "postgres"), "-D", str(data), "-p", str(port), "-k", str(root), "-h", "127.0.0.1"],
        owner,
    )
    try:
        deadline = time.monotonic() + 30
        ready = [str(binaries / "pg_isready"), "-h", "127.0.0.1", "-p", str(port)]
        while subprocess.run(ready, capture_output=True, check=False).returncode:  # noqa: S603
            assert server.poll() is None, "the test's PostgreSQL exited"
            assert time.monotonic() < deadline, "the test's PostgreSQL did not start within 30 s"
            time.sleep(0.2)
        yield f"postgresql+asyncpg://postgres@127.0.0.1:{port}/postgres", server.pid
    finally:
        with suppress(ProcessLookupError):
            os.kill(server.pid, signal.SIGCONT)
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(root, ignore_errors=True)


def family(pid: int) -> list[int]:
    """The postmaster and every process it started (backends, checkpointer, ...)."""
    children = [int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit() and _parent(entry) == pid]
    return [pid, *children]


def _parent(entry: Path) -> int | None:
    try:
        return int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


@asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)

    @app.get("/api/v1/probe/db")
    async def uses_database(session: SessionDep) -> dict[str, int]:
        return {"one": (await session.execute(text("SELECT 1"))).scalar_one()}

    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


async def test_frozen_database_answers_503_within_the_timeouts_then_recovers(
    settings: Settings, own_postgres: tuple[str, int], capsys: pytest.CaptureFixture[str]
) -> None:
    url, postmaster = own_postgres
    database = settings.database.model_copy(update={"url": url, **TIMEOUTS})
    # Checkout, a reconnect and the statement may each use their whole timeout; the rest is slack for a
    # loaded machine. Without the statement timeout the requests wait for the whole freeze.
    bound = 10 * sum(TIMEOUTS.values())
    async with serving(settings.model_copy(update={"database": database})) as client:
        assert (await client.get("/api/v1/probe/db")).status_code == 200
        frozen = family(postmaster)
        for pid in frozen:
            os.kill(pid, signal.SIGSTOP)
        try:
            started = time.monotonic()
            answers = await asyncio.wait_for(
                asyncio.gather(*(client.get("/api/v1/probe/db") for _ in range(3))), timeout=bound
            )
            waited = time.monotonic() - started
        finally:
            for pid in frozen:
                with suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)
        assert [a.status_code for a in answers] == [503, 503, 503], [a.text for a in answers]
        assert all(a.json() == {"detail": "database unavailable"} for a in answers)
        report(capsys, frozen_database_503_after_seconds=round(waited, 2), frozen_database_bound_seconds=bound)
        assert waited < bound
        # Thawed: the pool drops the connections that timed out and serves again.
        recovered = await client.get("/api/v1/probe/db")
        assert recovered.status_code == 200, recovered.text
