"""Cost of the generated project's cache: hits, misses, invalidation, and Redis down.

Run inside a generated project (it imports `src.core.cache` from the current folder):

    cd my_api && uv run python ../fastapi-enterprise/bench/cache_bench.py [--redis-url redis://127.0.0.1:6379/0]

Prints microseconds per call for the in-memory store, a live Redis (skipped
if it does not answer) and a Redis that is down (nothing listens on the port),
plus SCAN + UNLINK over 10,000 keys. A benchmark, not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

sys.path.insert(0, os.getcwd())

from pydantic import BaseModel
from src.core.cache import CacheManager, CacheNamespace
from src.core.config import CacheSettings


class User(BaseModel):
    id: int
    email: str
    name: str
    created_at: datetime
    tags: list[str]


USER = User(id=1, email="ada@example.com", name="Ada", created_at=datetime.now(UTC), tags=["a", "b"])


async def per_call(label: str, call: Callable[[], Awaitable[object]], n: int) -> None:
    for _ in range(min(n, 200)):  # warm up
        await call()
    started = time.perf_counter()
    for _ in range(n):
        await call()
    elapsed = (time.perf_counter() - started) / n * 1e6
    print(f"  {label:<44} {elapsed:9.1f} us")


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def scenario(title: str, config: CacheSettings, n: int) -> None:
    manager = CacheManager()
    await manager.connect(config)
    print(f"{title}: {manager.status()}")
    ns = CacheNamespace("bench", manager=manager)

    @ns.cached(key="{user_id}", ttl=300)
    async def get_user(*, session: object, user_id: int) -> User | None:
        return USER

    await ns.set("plain", {"id": 1, "name": "Ada"})
    await get_user(session=None, user_id=1)
    await per_call("namespace.get, hit (plain JSON)", lambda: ns.get("plain"), n)
    await per_call("namespace.get, miss", lambda: ns.get("missing"), n)
    await per_call("@cached, hit (Pydantic model)", lambda: get_user(session=None, user_id=1), n)
    counter = iter(range(10**9))
    await per_call("@cached, miss + set (Pydantic model)", lambda: get_user(session=None, user_id=next(counter)), n)
    await per_call("namespace.delete (event invalidation)", lambda: ns.delete(1), n)

    if manager.available:
        for i in range(10_000):
            await ns.set(f"list:{i}", i)
        started = time.perf_counter()
        deleted = await ns.invalidate("list:*")
        elapsed = (time.perf_counter() - started) * 1000
        print(f"  {'invalidate(list:*), ' + str(deleted) + ' keys':<44} {elapsed:9.1f} ms")
    await ns.invalidate()
    await manager.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0")
    parser.add_argument("-n", type=int, default=5000, help="calls per measurement")
    args = parser.parse_args()
    prefix = f"bench_{uuid.uuid4().hex[:6]}"

    await scenario("memory", CacheSettings(backend="memory", key_prefix=prefix), args.n)
    await scenario("redis", CacheSettings(backend="redis", redis_url=args.redis_url, key_prefix=prefix), args.n)

    down = f"redis://127.0.0.1:{closed_port()}/0"
    await scenario("redis down (breaker open)", CacheSettings(backend="redis", redis_url=down), args.n)

    # What one request pays when Redis stops answering: a refused connection, then a hung one.
    for kind in ("refused", "hung"):
        if kind == "refused":
            url = down
        else:
            listener = socket.socket()
            listener.bind(("127.0.0.1", 0))
            listener.listen(0)  # accepts into the backlog, never answers
            url = f"redis://127.0.0.1:{listener.getsockname()[1]}/0"
        manager = CacheManager()
        config = CacheSettings(backend="redis", redis_url=args.redis_url, socket_timeout=0.25)
        await manager.connect(config)
        manager._backend = type(manager._backend)(config.model_copy(update={"redis_url": url}))
        started = time.perf_counter()
        await manager.get("x")
        first = (time.perf_counter() - started) * 1000
        print(f"first call when Redis is {kind}: {first:.1f} ms (then the breaker answers)")
        await manager.close()


if __name__ == "__main__":
    asyncio.run(main())
