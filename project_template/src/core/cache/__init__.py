"""Cache: Redis or memory behind one API, a namespace per module, and no outage when Redis dies.

    from src.core.cache import CacheNamespace, cached

    cache = CacheNamespace("users")              # modules/users/cache/__init__.py

    @cache.cached(key="{user_id}", ttl=300)      # or @cached(prefix="users", ...)
    async def get_user(*, session: AsyncSession, user_id: int) -> UserRead | None: ...

    await cache.delete(user_id)                  # event-based, after an update commits
    await cache.invalidate("list:*")             # pattern-based, SCAN + UNLINK

Our own small manager on `redis.asyncio` rather than a library, because of what
happens with Redis down: docs/cache.md compares them.
"""

from src.core.cache.decorator import cached, namespace
from src.core.cache.manager import CACHE_AVAILABLE, CACHE_REQUESTS, CacheManager, cache_manager
from src.core.cache.namespace import CacheNamespace

__all__ = [
    "CACHE_AVAILABLE",
    "CACHE_REQUESTS",
    "CacheManager",
    "CacheNamespace",
    "cache_manager",
    "cached",
    "namespace",
]
