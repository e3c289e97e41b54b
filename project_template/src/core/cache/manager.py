"""`cache_manager`: picks the backend from settings and turns its failures into "no cache".

A Redis error or timeout opens a circuit breaker: for the next
`breaker_cooldown` seconds every call is a miss without touching the network,
one warning is logged, and a background probe pings Redis until
it answers again. Invalidations requested while Redis was unreachable are
replayed before caching resumes, so nothing stale outlives the outage.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import os
import time
from typing import Any

from prometheus_client import Counter, Gauge

from src.core.cache.backends import Backend, MemoryBackend, RedisBackend
from src.core.config import CacheSettings, get_settings
from src.core.logging import get_logger

log = get_logger(__name__)

# Exported by the metrics endpoint; label children are cached per namespace, so
# counting costs one `inc()` on the hot path.
CACHE_REQUESTS = Counter(
    "cache_requests_total", "Cache lookups by namespace and result (hit, miss, error)", ["namespace", "result"]
)
CACHE_AVAILABLE = Gauge("cache_available", "1 while the cache backend answers, 0 while degraded to no cache")

WARN_INTERVAL = 60.0  # seconds between "still unavailable" warnings
MAX_PENDING_KEYS = 10_000  # per namespace; beyond it the whole namespace is invalidated on recovery


class Down(enum.Enum):
    """What a read returns while the backend is unavailable (distinct from a miss)."""

    DOWN = "down"


DOWN = Down.DOWN


class CacheManager:
    """One backend for the process; `connect()` in the lifespan swaps it, `close()` releases it.

    Before `connect()` (scripts, unit tests) it serves from an in-memory store.
    """

    def __init__(self) -> None:
        self.config = CacheSettings()
        self._backend: Backend = MemoryBackend(self.config.max_memory_items)
        self.key_prefix = ""
        self._op_timeout: float | None = None
        self._down_since: float | None = None
        self._last_error: str | None = None
        self._probe: asyncio.Task[None] | None = None
        self._pending_keys: dict[str, set[str]] = {}  # namespace pattern -> full keys to delete
        self._pending_patterns: set[str] = set()

    @property
    def backend(self) -> str:
        return self._backend.name

    @property
    def available(self) -> bool:
        return self._down_since is None

    async def connect(self, config: CacheSettings | None = None) -> None:
        """Build the backend of `config`, else of the project's settings (config/*.yml, CACHE_BACKEND, REDIS_URL).

        An unreachable Redis logs a warning and degrades, never raises.
        """
        await self.close()
        self.config = config = config if config is not None else get_settings().cache
        self.key_prefix = f"{config.key_prefix}:" if config.key_prefix else ""
        if config.backend == "redis":
            self._backend = RedisBackend(config)
            # Pool wait plus one command: past this a call counts as a failure.
            self._op_timeout = config.socket_timeout * 2
        else:
            self._backend = MemoryBackend(config.max_memory_items)
            self._op_timeout = None
            _warn_if_several_workers()
        CACHE_AVAILABLE.set(1)
        try:
            async with asyncio.timeout(self._op_timeout):
                await self._backend.ping()
        except Exception as exc:  # start without cache rather than not at all
            self._trip(exc)
            return
        log.info("cache connected", backend=self.backend, key_prefix=config.key_prefix)

    async def close(self) -> None:
        """Stop the probe and release connections; back to an empty in-memory store."""
        if self._probe is not None:
            self._probe.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._probe
            self._probe = None
        with contextlib.suppress(Exception):
            async with asyncio.timeout(1):
                await self._backend.close()
        self._backend = MemoryBackend(self.config.max_memory_items)
        self._op_timeout = None
        self._down_since = self._last_error = None
        self._pending_keys.clear()
        self._pending_patterns.clear()

    def status(self) -> dict[str, Any]:
        """The state `/health` shows: backend, up or degraded, and since when."""
        state: dict[str, Any] = {"backend": self.backend, "status": "up" if self.available else "degraded"}
        if self.key_prefix:
            state["key_prefix"] = self.config.key_prefix
        if (items := self._backend.size()) is not None:
            state["items"] = items
        if self._down_since is not None:
            state["down_for_s"] = round(time.monotonic() - self._down_since, 1)
            state["error"] = self._last_error
        return state

    async def check(self) -> dict[str, Any]:
        """Ping the backend now (for readiness probes); never raises, never hangs."""
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self._op_timeout or 1):
                await self._backend.ping()
        except Exception as exc:  # reported, not raised
            self._trip(exc)  # requests stop waiting on it too
            return {**self.status(), "status": "degraded", "error": _describe(exc)}
        return {**self.status(), "latency_ms": round((time.perf_counter() - started) * 1000, 2)}

    # Operations on full keys. Each one returns DOWN / False / 0 instead of raising.

    async def get(self, key: str) -> bytes | Down | None:
        if self._down_since is not None:
            return DOWN
        try:
            async with asyncio.timeout(self._op_timeout):
                return await self._backend.get(key)
        except Exception as exc:  # a broken cache is a miss, not an error
            self._trip(exc)
            return DOWN

    async def set(self, key: str, value: bytes, ttl: int) -> bool:
        if self._down_since is not None:
            return False
        try:
            async with asyncio.timeout(self._op_timeout):
                await self._backend.set(key, value, ttl)
        except Exception as exc:
            self._trip(exc)
            return False
        return True

    async def delete(self, keys: list[str], *, scope: str) -> int:
        """Delete full keys; `scope` is the namespace's pattern, remembered if Redis is down."""
        if self._down_since is None:
            try:
                async with asyncio.timeout(self._op_timeout):
                    return await self._backend.delete(*keys)
            except Exception as exc:
                self._trip(exc)
        bucket = self._pending_keys.setdefault(scope, set())
        bucket.update(keys)
        if len(bucket) > MAX_PENDING_KEYS:
            self._pending_patterns.add(scope)
            del self._pending_keys[scope]
        return 0

    async def delete_pattern(self, pattern: str) -> int:
        if self._down_since is None:
            try:
                # SCAN takes several round trips: allow more than one command's time.
                async with asyncio.timeout(self._op_timeout and self._op_timeout * 20):
                    return await self._backend.delete_pattern(pattern)
            except Exception as exc:
                self._trip(exc)
        self._pending_patterns.add(pattern)
        return 0

    # Circuit breaker.

    def _trip(self, exc: BaseException) -> None:
        self._last_error = _describe(exc)
        if self._down_since is not None:
            return
        self._down_since = time.monotonic()
        CACHE_AVAILABLE.set(0)
        # One line, no traceback: the probe below reports the outage, not every request.
        log.warning(
            "cache unavailable, serving without cache",
            backend=self.backend,
            error=self._last_error,
            retry_every_s=self.config.breaker_cooldown,
        )
        if self._probe is None or self._probe.done():
            self._probe = asyncio.get_running_loop().create_task(self._recover(), name="cache-recovery")

    async def _recover(self) -> None:
        last_warning = time.monotonic()
        while True:
            await asyncio.sleep(self.config.breaker_cooldown)
            try:
                async with asyncio.timeout(self._op_timeout or 1):
                    await self._backend.ping()
                await self._replay_pending()
            except Exception as exc:  # still down: try again after the cooldown
                self._last_error = _describe(exc)
                if time.monotonic() - last_warning >= WARN_INTERVAL:
                    last_warning = time.monotonic()
                    log.warning("cache still unavailable", backend=self.backend, error=self._last_error)
                continue
            down_for = time.monotonic() - (self._down_since or time.monotonic())
            self._down_since = self._last_error = None
            CACHE_AVAILABLE.set(1)
            log.info("cache recovered", backend=self.backend, down_for_s=round(down_for, 1))
            return

    async def _replay_pending(self) -> None:
        """Apply invalidations missed during the outage, before any read can hit again."""
        timeout = (self._op_timeout or 1) * 20
        # Deletes keep arriving while this runs (the breaker is still open): loop until none is left.
        while self._pending_patterns or self._pending_keys:
            if self._pending_patterns:
                pattern = self._pending_patterns.pop()
                try:
                    async with asyncio.timeout(timeout):
                        await self._backend.delete_pattern(pattern)
                except BaseException:
                    self._pending_patterns.add(pattern)
                    raise
                continue
            scope, keys = self._pending_keys.popitem()
            batch = sorted(keys)
            try:
                for start in range(0, len(batch), 500):
                    async with asyncio.timeout(timeout):
                        await self._backend.delete(*batch[start : start + 500])
            except BaseException:
                self._pending_keys.setdefault(scope, set()).update(keys)
                raise


def _warn_if_several_workers() -> None:
    """Memory is per process: with several workers an invalidation in one leaves the others' copies stale."""
    workers = os.environ.get("WEB_CONCURRENCY", "")
    if (workers.isdigit() and int(workers) > 1) or os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        log.warning(
            "in-memory cache with several worker processes: each keeps its own copy and misses the others' "
            "invalidations; switch to Redis (cache.backend: redis, REDIS_URL)",
            web_concurrency=workers or None,
        )


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}"[:200] if text else type(exc).__name__


cache_manager = CacheManager()
