"""The two stores behind the cache: in-process memory and Redis (pooled `redis.asyncio`).

Both hold JSON bytes under full keys and speak Redis glob patterns, so the
manager and the tests treat them alike. Backends raise on failure; deciding
what a failure means (no cache, breaker open) is the manager's job.
"""

from __future__ import annotations

import re
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Protocol

from src.core.config import CacheSettings

if TYPE_CHECKING:
    from redis.asyncio import Redis

SCAN_BATCH = 500
SWEEP_INTERVAL = 60.0


class Backend(Protocol):
    name: str

    async def get(self, key: str) -> bytes | None: ...
    async def set(self, key: str, value: bytes, ttl: int) -> None: ...
    async def delete(self, *keys: str) -> int: ...
    async def delete_pattern(self, pattern: str) -> int: ...
    async def ping(self) -> None: ...
    async def close(self) -> None: ...
    def size(self) -> int | None: ...


def glob_to_regex(pattern: str) -> re.Pattern[str]:
    """Compile a Redis glob (`*`, `?`, `[a-z]`, `[^x]`, `\\x`) for the memory store."""
    out, i = [], 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        if char == "*":
            out.append(".*")
        elif char == "?":
            out.append(".")
        elif char == "[" and (end := pattern.find("]", i + 2)) != -1:
            body = pattern[i + 1 : end]
            negate = body.startswith("^")
            body = body[1:] if negate else body
            out.append("[" + ("^" if negate else "") + body.replace("\\", "\\\\") + "]")
            i = end + 1
            continue
        else:
            out.append(re.escape(char))
        i += 1
    return re.compile("".join(out), re.DOTALL)


def escape_glob(text: str) -> str:
    """Make `text` match only itself inside a Redis glob pattern."""
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)


class MemoryBackend:
    """LRU dictionary with per-key expiry: the zero-dependency development default.

    Per process only: two workers hold two caches, and an invalidation in one
    does not reach the other. Use Redis as soon as more than one process serves.
    """

    name = "memory"

    def __init__(self, max_items: int = 10_000) -> None:
        self._items: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._max_items = max_items
        self._next_sweep = time.monotonic() + SWEEP_INTERVAL

    async def get(self, key: str) -> bytes | None:
        item = self._items.get(key)
        if item is None:
            return None
        if item[0] <= time.monotonic():
            del self._items[key]
            return None
        self._items.move_to_end(key)
        return item[1]

    async def set(self, key: str, value: bytes, ttl: int) -> None:
        now = time.monotonic()
        self._items[key] = (now + ttl, value)
        self._items.move_to_end(key)
        if now >= self._next_sweep:
            # Expired entries nobody reads again: dropped in one pass a minute, not on every write.
            self._next_sweep = now + SWEEP_INTERVAL
            for stale in [k for k, (expires, _) in self._items.items() if expires <= now]:
                del self._items[stale]
        while len(self._items) > self._max_items:
            self._items.popitem(last=False)  # least recently used

    async def delete(self, *keys: str) -> int:
        return sum(self._items.pop(key, None) is not None for key in keys)

    async def delete_pattern(self, pattern: str) -> int:
        regex = glob_to_regex(pattern)
        doomed = [key for key in self._items if regex.fullmatch(key)]
        for key in doomed:
            del self._items[key]
        return len(doomed)

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        self._items.clear()

    def size(self) -> int | None:
        return len(self._items)


class RedisBackend:
    """Pooled `redis.asyncio` client that fails fast: no retries, short socket timeouts.

    redis-py retries ten times with backoff by default; behind the manager's
    circuit breaker a fast failure is what keeps requests quick while Redis is down.
    """

    name = "redis"

    def __init__(self, config: CacheSettings) -> None:
        # Imported here: redis-py is slow to import, and processes on the memory backend never need it.
        from redis.asyncio import BlockingConnectionPool, Redis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        pool = BlockingConnectionPool.from_url(
            config.redis_url,
            max_connections=config.max_connections,
            timeout=config.socket_timeout,  # waiting for a free pooled connection
            socket_timeout=config.socket_timeout,
            socket_connect_timeout=config.socket_timeout,
            retry=Retry(NoBackoff(), 0),
        )
        self._client: Redis = Redis.from_pool(pool)

    async def get(self, key: str) -> bytes | None:
        value = await self._client.get(key)
        return value if value is None or isinstance(value, bytes) else value.encode()

    async def set(self, key: str, value: bytes, ttl: int) -> None:
        await self._client.set(key, value, ex=ttl)

    async def delete(self, *keys: str) -> int:
        return int(await self._client.unlink(*keys)) if keys else 0

    async def delete_pattern(self, pattern: str) -> int:
        # SCAN walks the keyspace in steps without blocking Redis (KEYS would);
        # UNLINK frees memory in a background thread.
        deleted, batch = 0, []
        async for key in self._client.scan_iter(match=pattern, count=SCAN_BATCH):
            batch.append(key)
            if len(batch) >= SCAN_BATCH:
                deleted += int(await self._client.unlink(*batch))
                batch.clear()
        if batch:
            deleted += int(await self._client.unlink(*batch))
        return deleted

    async def ping(self) -> None:
        await self._client.ping()

    async def close(self) -> None:
        await self._client.aclose()

    def size(self) -> int | None:
        return None
