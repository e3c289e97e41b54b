from __future__ import annotations

import socket
import time

import httpx
import pytest

from src.app import create_app
from src.core.config import DatabaseSettings, Settings


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


def _blackhole_port() -> int:
    """A local port that accepts TCP but never answers, like a hung database."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    _blackhole_port.sockets.append(sock)  # type: ignore[attr-defined]
    return int(sock.getsockname()[1])


_blackhole_port.sockets = []  # type: ignore[attr-defined]


@pytest.mark.parametrize("kind", ["refused", "hung"])
async def test_health_503_quickly_when_database_unreachable(settings: Settings, kind: str) -> None:
    if kind == "refused":
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]  # closed again: connection refused
    else:
        port = _blackhole_port()
    url = f"postgresql+asyncpg://nobody@127.0.0.1:{port}/nothing"
    broken = settings.model_copy(
        update={"database": DatabaseSettings(url=url, health_timeout=0.5, connect_timeout=0.5)}
    )
    app = create_app(broken)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            started = time.perf_counter()
            response = await client.get("/health")
            elapsed = time.perf_counter() - started
    assert response.status_code == 503
    assert response.json()["checks"]["database"]["status"] == "down"
    assert elapsed < 3, f"health took {elapsed:.1f}s against an unreachable database"
