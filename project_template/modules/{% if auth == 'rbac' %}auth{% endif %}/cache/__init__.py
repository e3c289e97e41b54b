"""Cache namespace of the auth module (keys `auth:*`).

Deliberately unused: login throttling and refresh-token rotation must be exact
across processes, so they live in the database, not in a cache that may be
per-process memory or unavailable.
"""

from src.core.cache import CacheNamespace

cache = CacheNamespace("auth")

__all__ = ["cache"]
