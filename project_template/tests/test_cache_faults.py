"""Redis dying, hanging or missing never turns into a 5xx or a hang, and caching comes back by itself.

Each test runs its own `redis-server` on a free port (skipped without the
binary, failed under CI=true), so it can kill, pause and restart it.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis
from structlog.testing import capture_logs

from src.app import create_app
from src.core.cache import CacheNamespace, cache_manager
from src.core.config import CacheSettings, Settings

NEVER_HANGS = 2.0  # seconds: a generous bound; a healthy cached request takes about a millisecond


class RedisServer:
    def __init__(self, binary: str, port: int) -> None:
        self.binary, self.port = binary, port
        self.url = f"redis://127.0.0.1:{port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.02)
        raise RuntimeError(f"redis-server did not listen on port {self.port}")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.kill()
            self.process.wait(5)
        self.process = None

    def pause(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    binary = shutil.which("redis-server")
    if binary is None:
        reason = "redis-server is not installed (the fault tests start and kill their own)"
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(f"CI=true but {reason}")
        pytest.skip(reason)
    server = RedisServer(binary, free_port())
    yield server
    server.kill()


class Items:
    """A tiny service with a cached read, an update that invalidates, and a call counter."""

    def __init__(self) -> None:
        self.cache = CacheNamespace("fault_items")
        self.names: dict[int, str] = {}
        self.loads = 0

        @self.cache.cached(key="{item_id}", ttl=60)
        async def load(item_id: int) -> dict[str, Any]:
            self.loads += 1
            return {"id": item_id, "name": self.names.get(item_id, f"item {item_id}")}

        self.load = load

    async def rename(self, item_id: int, name: str) -> None:
        self.names[item_id] = name
        await self.cache.delete(item_id)


@pytest.fixture
def items() -> Items:
    return Items()


def build_app(settings: Settings, url: str, items: Items) -> FastAPI:
    cache = CacheSettings(
        backend="redis",
        redis_url=url,
        key_prefix=f"fault_{uuid.uuid4().hex[:8]}",
        socket_timeout=0.1,
        breaker_cooldown=0.2,
    )
    app = create_app(settings.model_copy(update={"cache": cache}))

    async def read(item_id: int) -> dict[str, Any]:
        return await items.load(item_id)

    async def rename(item_id: int, name: str) -> None:
        await items.rename(item_id, name)

    app.add_api_route("/items/{item_id}", read, methods=["GET"])
    app.add_api_route("/items/{item_id}", rename, methods=["PUT"], status_code=204)
    return app


@pytest.fixture
async def client_for(settings: Settings, items: Items) -> AsyncIterator[Any]:
    """`await client_for(url)`: an HTTP client on an app whose cache is the Redis at `url`."""
    stack: list[Any] = []

    async def make(url: str) -> httpx.AsyncClient:
        app = build_app(settings, url, items)
        lifespan = app.router.lifespan_context(app)
        await lifespan.__aenter__()
        http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")
        stack.append((lifespan, http))
        return http

    yield make
    for lifespan, http in reversed(stack):
        await http.aclose()
        await lifespan.__aexit__(None, None, None)


async def hammer(client: httpx.AsyncClient, seconds: float, workers: int = 8) -> list[tuple[int, float]]:
    """GET /items/<n> from several workers for `seconds`; (status, latency) per request."""
    results: list[tuple[int, float]] = []
    stop = time.monotonic() + seconds

    async def worker(offset: int) -> None:
        n = offset
        while time.monotonic() < stop:
            started = time.perf_counter()
            response = await client.get(f"/items/{n % 5}")
            results.append((response.status_code, time.perf_counter() - started))
            n += 1

    await asyncio.gather(*(worker(i) for i in range(workers)))
    return results


async def wait_until_cache(client: httpx.AsyncClient, state: str, within: float = 10) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while True:
        cache: dict[str, Any] = (await client.get("/health")).json()["checks"]["cache"]
        if cache["status"] == state or time.monotonic() > deadline:
            return cache
        await asyncio.sleep(0.05)


async def test_redis_killed_under_load_degrades_then_recovers(
    redis_server: RedisServer, client_for: Any, items: Items
) -> None:
    redis_server.start()
    client = await client_for(redis_server.url)
    for _ in range(3):
        for n in range(5):
            assert (await client.get(f"/items/{n}")).status_code == 200
    assert items.loads == 5, "served from Redis after the first round"

    with capture_logs() as logs:
        load = asyncio.create_task(hammer(client, seconds=1.5))
        await asyncio.sleep(0.5)
        redis_server.kill()
        results = await load
        health = await client.get("/health")

    statuses = {status for status, _ in results}
    slowest = max(latency for _, latency in results)
    assert statuses == {200}, f"{len(results)} requests while Redis died: statuses {statuses}"
    assert slowest < NEVER_HANGS, f"a request took {slowest:.2f}s while Redis died"
    assert health.status_code == 200
    assert health.json()["checks"]["cache"]["status"] == "degraded"
    warnings = [entry for entry in logs if entry["log_level"] in {"warning", "error", "critical"}]
    assert [entry["event"] for entry in warnings] == ["cache unavailable, serving without cache"]
    assert not any("exc_info" in entry or "exception" in entry for entry in logs)

    redis_server.start()  # a fresh, empty Redis on the same port
    assert (await wait_until_cache(client, "up"))["status"] == "up"
    for _ in range(2):
        for n in range(5):
            assert (await client.get(f"/items/{n}")).status_code == 200
    loads = items.loads
    for n in range(5):
        assert (await client.get(f"/items/{n}")).status_code == 200
    assert items.loads == loads, "caching resumed after Redis came back"
    async with Redis.from_url(redis_server.url) as direct:
        assert await direct.exists(items.cache.key(0)) == 1


async def test_hung_redis_costs_bounded_latency_and_missed_invalidations_are_replayed(
    redis_server: RedisServer, client_for: Any, items: Items
) -> None:
    redis_server.start()
    client = await client_for(redis_server.url)
    assert (await client.get("/items/1")).json()["name"] == "item 1"
    assert (await client.get("/items/1")).json()["name"] == "item 1"
    assert items.loads == 1

    redis_server.pause()  # accepts nothing, answers nothing: like a hung host
    try:
        results = await hammer(client, seconds=0.5, workers=4)
        assert {status for status, _ in results} == {200}
        assert max(latency for _, latency in results) < NEVER_HANGS
        assert (await client.get("/health")).json()["checks"]["cache"]["status"] == "degraded"
        assert (await client.put("/items/1", params={"name": "renamed"})).status_code == 204
        assert (await client.get("/items/1")).json()["name"] == "renamed"
    finally:
        redis_server.resume()

    # The stale entry is still in Redis; the delete missed during the outage is replayed first.
    assert (await wait_until_cache(client, "up"))["status"] == "up"
    assert (await client.get("/items/1")).json()["name"] == "renamed"


async def test_redis_absent_at_startup(redis_server: RedisServer, client_for: Any, items: Items) -> None:
    client = await client_for(redis_server.url)  # nothing listens on that port yet
    health = await client.get("/health")
    assert health.status_code == 200
    assert health.json()["checks"]["cache"]["status"] == "degraded"
    assert health.json()["checks"]["cache"]["backend"] == "redis"
    for _ in range(2):
        assert (await client.get("/items/3")).status_code == 200
    assert items.loads == 2, "no cache, but every request served"

    redis_server.start()
    assert (await wait_until_cache(client, "up"))["status"] == "up"
    await client.get("/items/3")
    await client.get("/items/3")
    assert items.loads == 3
    assert cache_manager.available
