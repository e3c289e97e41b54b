"""Test helpers: run a suite's cache on Redis when REDIS_URL is set, under a key prefix of its own.

@pytest.fixture
def settings(settings: Settings) -> Settings:  # in a conftest.py
    return settings.model_copy(update={"cache": cache_settings_for_tests(settings.cache)})
"""

from __future__ import annotations

import os
import uuid
from typing import Literal

from src.core.config import CacheSettings

# One prefix per test process: parallel runs sharing a Redis never see or invalidate each other's keys.
RUN_PREFIX = f"{os.getpid()}_{uuid.uuid4().hex[:6]}"


def cache_settings_for_tests(base: CacheSettings, backend: Literal["memory", "redis"] | None = None) -> CacheSettings:
    """`base` on `backend` (default: redis if REDIS_URL is set, else memory) with a per-run key prefix."""
    url = os.environ.get("REDIS_URL") or base.redis_url
    chosen = backend or ("redis" if os.environ.get("REDIS_URL") else "memory")
    prefix = f"{base.key_prefix}_{RUN_PREFIX}" if base.key_prefix else f"test_{RUN_PREFIX}"
    return base.model_copy(update={"backend": chosen, "redis_url": url, "key_prefix": prefix})
