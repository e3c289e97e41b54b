from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory
from fastapi import FastAPI
from sqlalchemy.engine import make_url

from src.app import create_app
from src.core.cache import cache_manager
from src.core.config import DatabaseSettings, Settings
from src.core.migrations import known_revisions, layout, migration_modules, migration_status, upgrade
from src.core.migrations import status as migration_state


@contextlib.asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield app, client


async def timed_get(client: httpx.AsyncClient, path: str) -> tuple[httpx.Response, float]:
    started = time.perf_counter()
    response = await client.get(path)
    return response, time.perf_counter() - started


async def test_root_welcomes(client: httpx.AsyncClient, settings: Settings) -> None:
    response = await client.get("/")
    assert response.status_code == 200
    assert settings.project_name in response.json()["message"]


async def test_health_up(client: httpx.AsyncClient) -> None:
    response = await client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"]["status"] == "up"


async def test_live_answers_without_checking_anything(client: httpx.AsyncClient) -> None:
    response = await client.get("/health/live")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_ready_when_database_up_and_migrations_at_head(client: httpx.AsyncClient, settings: Settings) -> None:
    await upgrade()
    response = await client.get("/health/ready")
    body = response.json()
    assert response.status_code == 200, body
    assert body["status"] in {"ok", "degraded"}
    assert body["failed"] == []
    assert body["checks"]["database"]["status"] == "up"
    assert body["checks"]["migrations"]["status"] == "up"
    assert body["checks"]["cache"]["status"] == "up"
    assert body["degraded"] == [], "every optional dependency up (Keycloak mode: the realm's keys too)"


async def test_not_ready_while_a_module_is_behind(client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch) -> None:
    async def behind(modules: Any = None, **_: Any) -> dict[str, dict[str, str | None]]:
        return {"orders": {"current": None, "head": "2026_11_25_0001"}}

    monkeypatch.setattr(migration_state, "migration_status", behind)
    monkeypatch.setattr(migration_state, "known_revisions", lambda module: frozenset({"2026_11_25_0001"}))
    response = await client.get("/health/ready")
    assert response.status_code == 503
    body = response.json()
    assert body["failed"] == ["migrations"]
    assert body["checks"]["migrations"]["modules"] == {"orders": {"current": None, "head": "2026_11_25_0001"}}


async def test_a_database_migrated_by_a_newer_release_is_still_ready(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def ahead(modules: Any = None, **_: Any) -> dict[str, dict[str, str | None]]:
        return {"orders": {"current": "from_a_newer_release", "head": "2026_11_25_0001"}}

    monkeypatch.setattr(migration_state, "migration_status", ahead)
    monkeypatch.setattr(migration_state, "known_revisions", lambda module: frozenset({"2026_11_25_0001"}))
    response = await client.get("/health/ready")
    assert response.status_code == 200, response.json()
    assert response.json()["checks"]["migrations"]["ahead"] == ["orders"]


async def test_cache_outage_is_degraded_not_unready(client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch) -> None:
    await upgrade()

    async def down() -> dict[str, Any]:
        return {"backend": "redis", "status": "degraded", "error": "ConnectionError"}

    monkeypatch.setattr(cache_manager, "check", down)
    response = await client.get("/health/ready")
    assert response.status_code == 200
    assert response.json()["status"] == "degraded"
    assert response.json()["degraded"] == ["cache"]


_held: list[socket.socket] = []


def _blackhole_port() -> int:
    """A local port that accepts TCP but never answers, like a hung database."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    _held.append(sock)
    return int(sock.getsockname()[1])


def _refused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # closed again: connection refused


@pytest.mark.parametrize("kind", ["refused", "hung"])
@pytest.mark.parametrize("path", ["/health", "/health/ready"])
async def test_503_quickly_when_database_unreachable(settings: Settings, kind: str, path: str) -> None:
    port = _refused_port() if kind == "refused" else _blackhole_port()
    url = f"postgresql+asyncpg://nobody@127.0.0.1:{port}/nothing"
    broken = settings.model_copy(
        update={"database": DatabaseSettings(url=url, health_timeout=0.5, connect_timeout=0.5)}
    )
    async with serving(broken) as (_, client):
        response, elapsed = await timed_get(client, path)
    assert response.status_code == 503
    assert response.json()["checks"]["database"]["status"] == "down"
    if path == "/health/ready":
        assert "database" in response.json()["failed"]
    assert elapsed < 3, f"{path} took {elapsed:.1f}s against an unreachable database"


class SwitchableProxy:
    """A TCP proxy in front of PostgreSQL that can play "server down" and come back."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.up = True
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.up:
            writer.close()
            return
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        self.writers |= {writer, up_writer}
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    def go_down(self) -> None:
        """Refuse new connections and cut the open ones, like a stopped server."""
        self.up = False
        for writer in self.writers:
            writer.close()
        self.writers.clear()

    async def close(self) -> None:
        self.go_down()
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


@pytest.mark.postgres
async def test_ready_fails_fast_when_postgres_stops_and_recovers_without_restart(settings: Settings) -> None:
    real = make_url(os.environ["DATABASE_URL"])
    proxy = SwitchableProxy(real.host or "127.0.0.1", real.port or 5432)
    port = await proxy.start()
    url = real.set(host="127.0.0.1", port=port).render_as_string(hide_password=False)
    proxied = settings.model_copy(update={"database": settings.database.model_copy(update={"url": url})})
    try:
        async with serving(proxied) as (_, client):
            await upgrade()
            assert (await client.get("/health/ready")).status_code == 200

            proxy.go_down()
            response, elapsed = await timed_get(client, "/health/ready")
            assert response.status_code == 503
            assert response.json()["failed"][0] == "database"
            assert elapsed < 3, f"readiness took {elapsed:.1f}s with PostgreSQL down"

            proxy.up = True
            for _ in range(20):  # the pool reconnects on its own; no restart
                response = await client.get("/health/ready")
                if response.status_code == 200:
                    break
                await asyncio.sleep(0.1)
            assert response.status_code == 200, response.json()
    finally:
        await proxy.close()


async def test_known_revisions_hold_each_module_head(client: httpx.AsyncClient) -> None:
    for name, state in (await migration_status()).items():
        assert state["head"] in known_revisions(name)


async def test_ready_probes_read_migration_scripts_once(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    await upgrade()
    reads: list[object] = []
    real = ScriptDirectory.from_config

    def counting(config: Config) -> ScriptDirectory:
        reads.append(config)
        return real(config)

    monkeypatch.setattr(ScriptDirectory, "from_config", counting)
    assert (await client.get("/health/ready")).status_code == 200
    after_first = len(reads)
    for _ in range(3):
        assert (await client.get("/health/ready")).status_code == 200
    assert len(reads) == after_first, "scripts do not change while the process runs"


async def test_ready_probes_leave_alembic_info_lines_out(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    await upgrade()
    caplog.set_level(logging.INFO, logger="alembic")
    caplog.clear()
    assert (await client.get("/health/ready")).status_code == 200
    assert [r.getMessage() for r in caplog.records if r.name.startswith("alembic")] == []
    if migration_modules():  # scripts/run_migrations.py --status still shows them
        await migration_status()
        assert any(r.name == "alembic.runtime.migration" for r in caplog.records)


def test_heads_are_read_again_when_a_versions_folder_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    versions = tmp_path / "demo" / "alembic" / "versions"
    versions.mkdir(parents=True)
    monkeypatch.setattr(layout, "MODULES_DIR", tmp_path)
    revision = 'revision = "{rev}"\ndown_revision = {down}\nbranch_labels = None\ndepends_on = None\n'
    (versions / "one.py").write_text(revision.format(rev="one", down="None"))
    assert migration_state.heads("demo") == ["one"]
    (versions / "two.py").write_text(revision.format(rev="two", down='"one"'))
    assert migration_state.heads("demo") == ["two"]
