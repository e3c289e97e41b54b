"""Each module's own Alembic history: applied, reverted and checked one module at a time.

Runs on SQLite, or on PostgreSQL when DATABASE_URL points there (the same code,
plus the advisory lock that serialises replicas migrating at once).
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from types import ModuleType

import pytest
from sqlalchemy import inspect, text

from src.core.config import PROJECT_ROOT
from src.core.db import database
from src.core.migrations import (
    LOCK_KEY,
    check,
    downgrade,
    migration_modules,
    migration_status,
    module_metadata,
    owns_table,
    upgrade,
    version_table,
)

MODULES = migration_modules()
WAITING = text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = :key AND NOT granted")
pytestmark = pytest.mark.skipif(not MODULES, reason="this project has no module with migrations yet")


async def table_names() -> set[str]:
    async with database.engine.connect() as conn:
        return set(await conn.run_sync(lambda sync: inspect(sync).get_table_names()))


def declared_tables(module: str) -> set[str]:
    return {name for name in module_metadata(module).tables if owns_table(module, name)}


@pytest.fixture(autouse=True)
async def at_head() -> AsyncIterator[None]:
    """Every module at head before and after each test; the engine released afterwards."""
    await upgrade()
    yield
    await upgrade()
    await database.dispose()


async def test_every_module_is_at_head_with_its_own_version_table() -> None:
    status = await migration_status()
    assert list(status) == MODULES  # sorted: the order --all applies them in
    for name, state in status.items():
        assert state["current"] == state["head"] is not None, name
    tables = await table_names()
    for name in MODULES:
        assert version_table(name) in tables
        assert declared_tables(name) <= tables, name


async def test_models_and_migrations_agree() -> None:
    # With every module's tables present, a module whose filter leaked would propose dropping the others'.
    assert await check() == []


@pytest.mark.parametrize("module", MODULES)
async def test_downgrading_one_module_leaves_the_others_alone(module: str) -> None:
    before = await table_names()
    others = before - declared_tables(module) - {version_table(module)}

    await downgrade(module, "base")
    after = await table_names()
    assert not declared_tables(module) & after, "the module's tables are gone"
    assert others <= after, "no other module's table or version table was touched"
    status = await migration_status()
    assert status[module]["current"] is None
    assert all(state["current"] == state["head"] for name, state in status.items() if name != module)
    assert [d.module for d in await check()] == [module], "only the downgraded module is reported as behind"

    await upgrade([module])
    assert await table_names() == before


def run_script(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CONFIG_ENV": os.environ.get("CONFIG_ENV", "test")}
    command = [sys.executable, "scripts/run_migrations.py", *args]
    return subprocess.run(command, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)  # noqa: S603


@pytest.fixture
def script(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """scripts/run_migrations.py imported in this process (a subprocess costs seconds of imports)."""
    scripts = PROJECT_ROOT / "scripts"
    monkeypatch.syspath_prepend(str(scripts))
    spec = importlib.util.spec_from_file_location("run_migrations_script", scripts / "run_migrations.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_the_script_reports_status_and_checks(script: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    assert await script.run(script.parse(["--status"])) == 0
    status = capsys.readouterr().out
    for name in MODULES:
        assert f"{name}: current " in status
        assert "(at head)" in status
    await database.dispose()  # SQLite: let the subprocess have the file
    checked = run_script("--check")  # the command itself, end to end
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "models and migrations agree" in checked.stdout


def test_the_script_refuses_an_unknown_module(script: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as refused:
        script.parse(["--module", "no_such_module"])
    assert refused.value.code == 2
    assert "unknown module 'no_such_module'" in capsys.readouterr().err


async def _replica() -> asyncio.subprocess.Process:
    env = {**os.environ, "CONFIG_ENV": os.environ.get("CONFIG_ENV", "test")}
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "scripts/run_migrations.py",
        "--all",
        cwd=PROJECT_ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )


@pytest.mark.postgres
async def test_a_replica_waits_for_the_one_migrating() -> None:
    module = MODULES[-1]
    await downgrade(module, "base")
    async with database.engine.connect() as holder:
        await holder.execute(text("SELECT pg_advisory_lock(:key)"), {"key": LOCK_KEY})
        replica = await _replica()
        for _ in range(600):  # never hangs: 60 s for the replica to start and queue behind the lock
            if await holder.scalar(WAITING, {"key": LOCK_KEY}):
                break
            await asyncio.sleep(0.1)
        else:
            pytest.fail("the replica never waited for the advisory lock")
        assert (await migration_status([module]))[module]["current"] is None, "nothing applied while locked"
        await holder.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": LOCK_KEY})
        await holder.commit()
    output, _ = await asyncio.wait_for(replica.communicate(), timeout=120)
    assert replica.returncode == 0, output.decode()
    assert (await migration_status([module]))[module]["current"] is not None


@pytest.mark.postgres
async def test_replicas_starting_together_apply_each_migration_once() -> None:
    module = MODULES[-1]
    await downgrade(module, "base")
    await database.dispose()
    replicas = [await _replica() for _ in range(3)]
    outputs = [(await asyncio.wait_for(r.communicate(), timeout=120))[0].decode() for r in replicas]
    assert [r.returncode for r in replicas] == [0, 0, 0], outputs
    applied = [line for out in outputs for line in out.splitlines() if line.startswith("Running upgrade")]
    assert applied, "the downgraded module was upgraded again"
    assert len(applied) == len(set(applied)), f"a migration ran in two replicas: {applied}"
