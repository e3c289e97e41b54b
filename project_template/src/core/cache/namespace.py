"""`CacheNamespace`: one module's key space, with read-through and stampede protection.

Values are JSON (never pickle): Pydantic models, dataclasses, datetimes, UUIDs
and plain JSON values. Keys are `[<key_prefix>:]<namespace>:<key>`.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, cast

import orjson
from pydantic import BaseModel, TypeAdapter, ValidationError

from src.core.cache.backends import escape_glob
from src.core.cache.manager import CACHE_REQUESTS, DOWN, CacheManager, cache_manager
from src.core.logging import get_logger

if TYPE_CHECKING:
    from src.core.cache.decorator import Decorator

T = TypeVar("T")
KeyPart = str | int
KeySpec = str | Callable[..., KeyPart] | None

log = get_logger(__name__)
_NAME = re.compile(r"[A-Za-z0-9_.-]+")
_adapters: dict[Any, TypeAdapter[Any]] = {}


def adapter_for(tp: Any) -> TypeAdapter[Any]:
    """A cached `TypeAdapter` (building one costs far more than a cache hit)."""
    try:
        return _adapters[tp]
    except KeyError:
        adapter = _adapters[tp] = TypeAdapter(tp)
        return adapter
    except TypeError:  # unhashable annotation
        return TypeAdapter(tp)


def json_default(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", by_alias=True)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable; cache a Pydantic model or plain data")


def dumps(value: Any, adapter: TypeAdapter[Any] | None = None) -> bytes:
    if adapter is not None:
        return adapter.dump_json(value, by_alias=True)
    return orjson.dumps(value, default=json_default)


class CacheNamespace:
    """A module's own key space: `users:123`. Create once, in `modules/<name>/cache/__init__.py`."""

    def __init__(self, name: str, *, ttl: int | None = None, manager: CacheManager | None = None) -> None:
        if not _NAME.fullmatch(name):
            raise ValueError(f"cache namespace {name!r}: use letters, digits, '_', '.', '-' only")
        self.name = name
        self.ttl = ttl
        self._manager = manager or cache_manager
        self._hit = CACHE_REQUESTS.labels(name, "hit")
        self._miss = CACHE_REQUESTS.labels(name, "miss")
        self._error = CACHE_REQUESTS.labels(name, "error")
        # Single flight, per key: the computation under way (or just finished), how many callers
        # are between their cache read and their answer, and how many flights have finished so far.
        self._inflight: dict[str, _Flight] = {}
        self._readers: dict[str, int] = {}
        self._finished = 0

    def __repr__(self) -> str:
        return f"CacheNamespace({self.name!r})"

    def key(self, key: KeyPart) -> str:
        """The full key as stored: `[<key_prefix>:]<namespace>:<key>`."""
        return f"{self._manager.key_prefix}{self.name}:{key}"

    def _scope(self) -> str:
        return escape_glob(f"{self._manager.key_prefix}{self.name}:") + "*"

    def _ttl(self, ttl: int | None) -> int:
        return ttl or self.ttl or self._manager.config.default_ttl

    async def get(self, key: KeyPart, model: Any = None) -> Any:
        """The cached value, validated as `model` if given (a type: `UserRead`, `list[UserRead]`); None on miss."""
        raw = await self._manager.get(self.key(key))
        if raw is DOWN:
            self._error.inc()
            return None
        if raw is None:
            self._miss.inc()
            return None
        try:
            value = orjson.loads(raw) if model is None else adapter_for(model).validate_json(raw)
        except (ValidationError, orjson.JSONDecodeError):
            self._miss.inc()  # written by an older version of the code: as good as absent
            return None
        self._hit.inc()
        return value

    async def set(self, key: KeyPart, value: Any, ttl: int | None = None) -> bool:
        """Store `value` as JSON for `ttl` seconds (default: the namespace's, else `cache.default_ttl`)."""
        return await self._manager.set(self.key(key), dumps(value), self._ttl(ttl))

    async def delete(self, *keys: KeyPart) -> int:
        """Event-based invalidation: drop these keys (call it after an update or delete commits)."""
        if not keys:
            return 0
        return await self._manager.delete([self.key(k) for k in keys], scope=self._scope())

    async def invalidate(self, pattern: str = "*") -> int:
        """Pattern-based invalidation inside this namespace (`"list:*"`; `"*"` is all of it) via SCAN + UNLINK."""
        base = escape_glob(f"{self._manager.key_prefix}{self.name}:")
        return await self._manager.delete_pattern(base + pattern)

    async def get_or_set(
        self,
        key: KeyPart,
        factory: Callable[[], Awaitable[T]],
        ttl: int | None = None,
        *,
        model: Any = None,
        cache_none: bool = False,
    ) -> T:
        """Read-through: a hit returns the cached value, a miss awaits `factory()` and stores its result.

        Concurrent misses on one key in this process share one `factory()` call.
        """
        full = self.key(key)
        adapter = adapter_for(model) if model is not None else None
        began = self._finished
        self._readers[full] = self._readers.get(full, 0) + 1
        try:
            raw = await self._manager.get(full)
            if raw is DOWN:
                self._error.inc()
            elif raw is None:
                self._miss.inc()
            else:
                try:
                    value = orjson.loads(raw) if adapter is None else adapter.validate_json(raw)
                except (ValidationError, orjson.JSONDecodeError):
                    # Written by an older version of the code: recompute and overwrite.
                    log.debug("cache entry no longer valid", key=full)
                    self._miss.inc()
                else:
                    self._hit.inc()
                    return cast(T, value)
            lifetime = self._ttl(ttl)
            stored = raw is not DOWN
            return await self._single_flight(full, factory, lifetime, adapter, cache_none, store=stored, began=began)
        finally:
            self._leave(full)

    async def _single_flight(
        self,
        full: str,
        factory: Callable[[], Awaitable[T]],
        ttl: int,
        adapter: TypeAdapter[Any] | None,
        cache_none: bool,
        *,
        store: bool,
        began: int,
    ) -> T:
        # A flight that finished after this caller's read began is joined too: its read may have
        # been answered before the value was stored (Redis, many connections), and would otherwise
        # compute the value a second time.
        while (leader := self._inflight.get(full)) is not None and not (leader.finished and leader.finished <= began):
            try:
                return cast(T, await asyncio.shield(leader.future))
            except _LeaderCancelledError:
                continue  # its caller went away; one of the waiters computes instead
        flight = _Flight(asyncio.get_running_loop().create_future())
        flight.future.add_done_callback(_consume)
        self._inflight[full] = flight
        try:
            value = await factory()
            # Stored before the flight finishes: a caller reading from now on finds the value or the flight.
            if store and (value is not None or cache_none):
                await self._manager.set(full, dumps(value, adapter), ttl)
        except asyncio.CancelledError:
            flight.future.set_exception(_LeaderCancelledError())
            if self._inflight.get(full) is flight:
                del self._inflight[full]
            raise
        except BaseException as exc:
            self._finish(flight)
            flight.future.set_exception(exc)
            raise
        self._finish(flight)
        flight.future.set_result(value)
        return value

    def _finish(self, flight: _Flight) -> None:
        self._finished += 1
        flight.finished = self._finished

    def _leave(self, full: str) -> None:
        """One caller has its answer; the last one drops a finished flight (nobody can need it any more)."""
        left = self._readers[full] - 1
        if left:
            self._readers[full] = left
            return
        del self._readers[full]
        flight = self._inflight.get(full)
        if flight is not None and flight.finished:
            del self._inflight[full]

    def cached(
        self,
        *,
        ttl: int | Callable[[], int] | None = None,
        key: KeySpec = None,
        model: Any = None,
        cache_none: bool = False,
    ) -> Decorator:
        """`@cache.cached(key="{user_id}")`: the decorator, bound to this namespace."""
        from src.core.cache.decorator import cached

        return cached(self, ttl, key=key, model=model, cache_none=cache_none)


class _LeaderCancelledError(Exception):
    pass


@dataclass(eq=False)
class _Flight:
    future: asyncio.Future[Any]
    finished: int = 0  # the namespace's count of finished flights when this one finished; 0 while running


def _consume(future: asyncio.Future[Any]) -> None:
    # Mark the exception as retrieved: with no waiter, asyncio would log it at GC.
    if not future.cancelled():
        future.exception()
