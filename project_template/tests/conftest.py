"""Shared fixtures: the test configuration, an app with its lifespan, an HTTP client.

Tests run on SQLite by default. Point DATABASE_URL at PostgreSQL (or REDIS_URL
at Redis) to run the same suite there; tests marked `postgres` / `redis` skip
with a reason when those are absent, and fail instead when CI=true.
"""

from __future__ import annotations

import os

os.environ.setdefault("CONFIG_ENV", "test")

import io
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from src.app import create_app
from src.core.cache.testing import cache_settings_for_tests
from src.core.config import Settings, load_settings
from src.core.logging import access_log


def _required() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    url = os.environ.get("DATABASE_URL", "")
    missing = {
        "postgres": None if url.startswith("postgresql") else "PostgreSQL not configured (set DATABASE_URL)",
        "redis": None if os.environ.get("REDIS_URL") else "Redis not configured (set REDIS_URL)",
    }
    for item in items:
        for marker, reason in missing.items():
            if reason and marker in item.keywords:
                if _required():
                    raise pytest.UsageError(f"CI=true but {reason}: {item.nodeid} needs it")
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture
def settings() -> Settings:
    """The test configuration; the cache runs on Redis when REDIS_URL is set, under a key prefix of this run."""
    loaded = load_settings()
    return loaded.model_copy(update={"cache": cache_settings_for_tests(loaded.cache)})


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


@pytest.fixture
def access_lines(monkeypatch: pytest.MonkeyPatch) -> Callable[[], list[dict[str, Any]]]:
    """`access_lines()`: the access lines written so far in this test, as JSON through the real writer."""
    access_log.flush()  # earlier tests' lines go where they were headed
    stream = io.StringIO()
    monkeypatch.setattr(access_log, "stream", stream)

    def written() -> list[dict[str, Any]]:
        access_log.flush()
        return [json.loads(line) for line in stream.getvalue().splitlines()]

    return written
