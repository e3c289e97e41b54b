"""The cache API, run against memory always and against Redis when REDIS_URL is set."""

from __future__ import annotations

import asyncio
import datetime
import enum
import uuid
from collections.abc import AsyncIterator

import orjson
import pytest
from pydantic import BaseModel, Field

from src.core.cache import CACHE_REQUESTS, CacheManager, CacheNamespace, cached
from src.core.cache.backends import glob_to_regex
from src.core.cache.testing import cache_settings_for_tests
from src.core.config import CacheSettings


class Status(enum.StrEnum):
    ACTIVE = "active"
    BLOCKED = "blocked"


class Address(BaseModel):
    city: str
    zip_code: str = Field(alias="zip")


class Profile(BaseModel):
    id: uuid.UUID
    name: str
    status: Status
    created_at: datetime.datetime
    tags: list[str]
    address: Address | None = None


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def manager(request: pytest.FixtureRequest) -> AsyncIterator[CacheManager]:
    """A connected manager with a key prefix of its own, so parallel runs never collide.

    Its Redis timeouts are generous: a loaded machine opening 50 connections at once (the stampede
    test) must not trip the breaker; tests/test_cache_faults.py covers the timeouts themselves.
    """
    base = CacheSettings(key_prefix=f"t{uuid.uuid4().hex[:6]}", socket_timeout=5.0)
    config = cache_settings_for_tests(base, request.param)
    prefix = config.key_prefix
    cache = CacheManager()
    await cache.connect(config)
    assert cache.available, cache.status()
    yield cache
    await cache.delete_pattern(f"{prefix}:*")
    await cache.close()


def counter(namespace: str, result: str) -> float:
    value: float = CACHE_REQUESTS.labels(namespace, result)._value.get()
    return value


async def test_miss_then_hit(manager: CacheManager) -> None:
    users = CacheNamespace("users", manager=manager)
    misses, hits = counter("users", "miss"), counter("users", "hit")
    assert await users.get(123) is None
    assert await users.set(123, {"id": 123, "name": "ada"})
    assert await users.get(123) == {"id": 123, "name": "ada"}
    assert counter("users", "miss") == misses + 1
    assert counter("users", "hit") == hits + 1


async def test_keys_are_namespaced_and_stored_as_json(manager: CacheManager) -> None:
    users = CacheNamespace("users", manager=manager)
    assert users.key(123) == f"{manager.config.key_prefix}:users:123"
    await users.set(123, {"id": 123})
    raw = await manager.get(users.key(123))
    assert isinstance(raw, bytes)
    assert orjson.loads(raw) == {"id": 123}


async def test_ttl_expiry(manager: CacheManager) -> None:
    users = CacheNamespace("users", manager=manager)
    await users.set("short", "value", ttl=1)
    await users.set("long", "value", ttl=60)
    await asyncio.sleep(1.2)
    assert await users.get("short") is None
    assert await users.get("long") == "value"


async def test_event_invalidation_recomputes(manager: CacheManager) -> None:
    users = CacheNamespace("users", manager=manager)
    names = {1: "ada"}
    calls = 0

    @users.cached(key="{user_id}")
    async def get_name(*, session: object, user_id: int) -> str | None:
        nonlocal calls
        calls += 1
        return names.get(user_id)

    assert await get_name(session=object(), user_id=1) == "ada"
    names[1] = "grace"  # the update ...
    assert await get_name(session=object(), user_id=1) == "ada"  # ... is not seen until invalidated
    assert await users.delete(1) == 1
    assert await get_name(session=object(), user_id=1) == "grace"
    assert calls == 2


async def test_pattern_invalidation_stays_inside_the_namespace(manager: CacheManager) -> None:
    users = CacheNamespace("users", manager=manager)
    orders = CacheNamespace("orders", manager=manager)
    for key in ("1", "2", "list:page=1", "list:page=2"):
        await users.set(key, key)
    await orders.set("list:page=1", "order list")

    assert await users.invalidate("list:*") == 2
    assert await users.get("list:page=1") is None
    assert await users.get("1") == "1"
    assert await orders.get("list:page=1") == "order list"

    assert await users.invalidate() == 2
    assert await users.get("2") is None
    assert await orders.get("list:page=1") == "order list"


async def test_namespaces_and_prefixes_are_isolated(manager: CacheManager) -> None:
    users = CacheNamespace("users", manager=manager)
    orders = CacheNamespace("orders", manager=manager)
    await users.set(1, "a user")
    await orders.set(1, "an order")
    assert await users.get(1) == "a user"
    assert await orders.get(1) == "an order"

    # Another service sharing the same Redis, with its own key prefix.
    other = CacheManager()
    await other.connect(manager.config.model_copy(update={"key_prefix": manager.config.key_prefix + "_other"}))
    try:
        theirs = CacheNamespace("users", manager=other)
        assert await theirs.get(1) is None
        await theirs.set(1, "their user")
        assert await theirs.invalidate() == 1
        assert await users.get(1) == "a user"
    finally:
        await other.close()


async def test_concurrent_misses_compute_once(manager: CacheManager) -> None:
    products = CacheNamespace("products", manager=manager)
    calls = 0

    @cached(products, ttl=1800, key="{product_id}")
    async def get_price(product_id: int) -> dict[str, int]:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)
        return {"id": product_id, "price": 42}

    results = await asyncio.gather(*(get_price(7) for _ in range(50)))
    assert calls == 1
    assert all(result == {"id": 7, "price": 42} for result in results)
    assert await get_price(7) == {"id": 7, "price": 42}
    assert calls == 1


async def test_a_failing_computation_fails_its_waiters_and_is_not_cached(manager: CacheManager) -> None:
    products = CacheNamespace("products", manager=manager)
    calls = 0

    @products.cached(key="{product_id}")
    async def get_product(product_id: int) -> int:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.02)
        if calls == 1:
            raise LookupError("database hiccup")
        return product_id

    results = await asyncio.gather(*(get_product(1) for _ in range(5)), return_exceptions=True)
    assert calls == 1
    assert all(isinstance(result, LookupError) for result in results)
    assert await get_product(1) == 1
    assert calls == 2


async def test_waiters_recompute_when_the_first_caller_is_cancelled(manager: CacheManager) -> None:
    products = CacheNamespace("products", manager=manager)
    calls = 0

    @products.cached(key="{product_id}")
    async def get_product(product_id: int) -> int:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)
        return product_id

    first = asyncio.create_task(get_product(3))
    await asyncio.sleep(0.01)
    second = asyncio.create_task(get_product(3))
    await asyncio.sleep(0.01)
    first.cancel()
    assert await second == 3
    assert first.cancelled()
    assert calls == 2


async def test_pydantic_models_round_trip(manager: CacheManager) -> None:
    users = CacheNamespace("users", manager=manager)
    calls = 0
    profile = Profile(
        id=uuid.uuid4(),
        name="Ada",
        status=Status.BLOCKED,
        created_at=datetime.datetime(2026, 11, 25, 9, 30, tzinfo=datetime.UTC),
        tags=["a", "b"],
        address=Address(city="Paris", zip="75001"),
    )

    @users.cached(key="profile:{user_id}")
    async def get_profile(user_id: int) -> Profile:
        nonlocal calls
        calls += 1
        return profile

    @users.cached(key="profiles")
    async def list_profiles() -> list[Profile]:
        return [profile, profile]

    assert await get_profile(1) == profile
    cached_profile = await get_profile(1)
    assert calls == 1
    assert isinstance(cached_profile, Profile)
    assert cached_profile == profile
    assert isinstance(cached_profile.status, Status)
    assert cached_profile.created_at.tzinfo is not None

    await list_profiles()
    assert await list_profiles() == [profile, profile]
    assert await users.get("profiles", model=list[Profile]) == [profile, profile]

    await users.set("direct", profile)
    assert await users.get("direct", model=Profile) == profile


async def test_none_is_not_cached_unless_asked(manager: CacheManager) -> None:
    users = CacheNamespace("users", manager=manager)
    calls = 0

    @users.cached(key="{user_id}")
    async def find(user_id: int) -> Profile | None:
        nonlocal calls
        calls += 1
        return None

    @users.cached(key="known-missing:{user_id}", cache_none=True)
    async def find_cached(user_id: int) -> Profile | None:
        nonlocal calls
        calls += 1
        return None

    assert await find(1) is None
    assert await find(1) is None
    assert calls == 2
    assert await find_cached(1) is None
    assert await find_cached(1) is None
    assert calls == 3


async def test_an_entry_of_an_older_shape_is_recomputed(manager: CacheManager) -> None:
    users = CacheNamespace("users", manager=manager)
    await users.set("profile:1", {"id": "not a uuid"})

    @users.cached(key="profile:{user_id}")
    async def get_profile(user_id: int) -> Address:
        return Address(city="Oslo", zip="0150")

    assert await users.get("profile:1", model=Address) is None
    assert await get_profile(1) == Address(city="Oslo", zip="0150")
    assert await users.get("profile:1") == {"city": "Oslo", "zip": "0150"}


async def test_default_key_and_methods(manager: CacheManager) -> None:
    orders = CacheNamespace("orders", manager=manager)

    class OrderService:
        calls = 0

        @orders.cached()
        async def total(self, customer: str, *, year: int = 2026, status: Status = Status.ACTIVE) -> int:
            self.calls += 1
            return len(customer) + year

        @orders.cached(key=lambda self, *, session, order_id: f"order:{order_id}")
        async def get(self, *, session: object, order_id: int) -> dict[str, int]:
            self.calls += 1
            return {"id": order_id}

    service = OrderService()
    assert await service.total("bob") == await service.total("bob", year=2026) == 2029
    assert service.calls == 1
    name = OrderService.total.__qualname__.replace("<locals>.", "")
    assert await orders.get(f"{name}:customer=bob,year=2026,status=active") == 2029
    await service.get(session=object(), order_id=5)
    assert await orders.get("order:5") == {"id": 5}

    @orders.cached()
    async def unkeyable(session: object) -> int:
        return 1

    with pytest.raises(TypeError, match="cannot build a key from argument 'session'"):
        await unkeyable(object())


async def test_unresolvable_annotations_need_model(manager: CacheManager) -> None:
    users = CacheNamespace("users", manager=manager)

    class Local(BaseModel):  # invisible to get_type_hints under `from __future__ import annotations`
        name: str

    @users.cached(key="unresolved")
    async def unresolved() -> Local:
        return Local(name="x")

    @users.cached(key="local", model=Local)
    async def local() -> Local:
        return Local(name="x")

    with pytest.raises(TypeError, match="pass model="):
        await unresolved()
    await local()
    assert await local() == Local(name="x")


async def test_memory_store_keeps_the_most_recently_used() -> None:
    cache = CacheManager()
    await cache.connect(CacheSettings(backend="memory", max_memory_items=3))
    items = CacheNamespace("items", manager=cache)
    for n in range(3):
        await items.set(n, n)
    await items.get(0)  # used again: 1 is now the least recently used
    await items.set(3, 3)
    assert [await items.get(n) for n in range(4)] == [0, None, 2, 3]
    assert cache.status()["items"] == 3
    await cache.close()


def test_decorator_refuses_sync_functions() -> None:
    with pytest.raises(TypeError, match="async function"):

        @cached("users")  # type: ignore[arg-type]
        def not_async() -> int:  # pragma: no cover - never called
            return 1


def test_namespace_names_cannot_hold_separators() -> None:
    with pytest.raises(ValueError, match="namespace"):
        CacheNamespace("users:admin")


@pytest.mark.parametrize(
    ("pattern", "matches", "misses"),
    [
        ("users:*", ["users:1", "users:", "users:list:a"], ["orders:1", "xusers:1"]),
        ("users:?", ["users:1"], ["users:12"]),
        ("users:[12]", ["users:1", "users:2"], ["users:3"]),
        ("users:[^1]", ["users:2"], ["users:1"]),
        (r"a\*b:*", ["a*b:1"], ["axb:1"]),
        ("a.b:*", ["a.b:1"], ["axb:1"]),
    ],
)
def test_memory_patterns_follow_redis_glob(pattern: str, matches: list[str], misses: list[str]) -> None:
    regex = glob_to_regex(pattern)
    assert all(regex.fullmatch(key) for key in matches)
    assert not any(regex.fullmatch(key) for key in misses)
