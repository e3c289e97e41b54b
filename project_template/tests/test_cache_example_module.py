"""The example module's service is cached on every backend, with its three invalidations.

Goes through `modules.users.services` (its public API) on memory and, when
REDIS_URL is set, on Redis; skipped when the project was rendered without it.
"""

from __future__ import annotations

import importlib
import importlib.util
import uuid
from typing import Any

import pytest
from fastapi import FastAPI
from redis.asyncio import Redis
from sqlalchemy import event
from sqlalchemy.orm import Session

from src.core.cache import CacheNamespace, cache_manager
from src.core.cache.testing import cache_settings_for_tests
from src.core.config import Settings, load_settings
from src.core.db import database

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("modules.users") is None, reason="rendered without the example module"
)


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def settings(request: pytest.FixtureRequest) -> Settings:
    base = load_settings()
    return base.model_copy(update={"cache": cache_settings_for_tests(base.cache, request.param)})


@pytest.fixture
def users(app: FastAPI) -> Any:
    # Imported by name: a project rendered without the example module must still type-check.
    return importlib.import_module("modules.users.services").user_service


async def test_example_module_get_list_and_invalidations(users: Any, settings: Settings) -> None:
    schemas = importlib.import_module("modules.users.schemas")
    UserCreate, UserRead, UserUpdate = schemas.UserCreate, schemas.UserRead, schemas.UserUpdate  # noqa: N806
    stored = CacheNamespace("users")  # read-only look at what the module stored
    email = f"{uuid.uuid4().hex[:12]}@example.com"
    async with database.sessionmaker() as session:
        created = await users.create(session=session, data=UserCreate(email=email, name="Cached"))
        page = await users.list_page(session=session, offset=0, limit=100)
        assert [user.id for user in page.items] == [created.id]

        # Cached get-by-id: the second read comes from the cache, as a model.
        assert (await users.get(session=session, user_id=created.id)).name == "Cached"
        assert await stored.get(created.id, model=UserRead) == created
        assert await users.get(session=session, user_id=created.id) == created

        # Time-based: every entry carries the service's TTL.
        if settings.cache.backend == "redis":
            async with Redis.from_url(settings.cache.redis_url) as direct:
                assert 0 < await direct.ttl(stored.key(created.id)) <= 300

        # Event-based: an update drops the cached copy (and the list pages).
        await users.update(session=session, user_id=created.id, data=UserUpdate(name="Renamed"))
        assert await stored.get(created.id) is None
        assert (await users.get(session=session, user_id=created.id)).name == "Renamed"

        # Pattern-based: a create drops every cached list page (`users:list:*`).
        await users.list_page(session=session, offset=0, limit=100)
        other = await users.create(session=session, data=UserCreate(email=f"x{email}", name="Other"))
        page = await users.list_page(session=session, offset=0, limit=100)
        assert [user.id for user in page.items] == [other.id, created.id]

        # Delete: the cached get no longer answers for a row that is gone.
        assert await users.get(session=session, user_id=other.id) == other
        assert await stored.get(other.id) is not None
        await users.delete(session=session, user_id=other.id)
        assert await users.get(session=session, user_id=other.id) is None
    assert cache_manager.status()["backend"] == settings.cache.backend


async def test_a_cached_read_opens_no_database_transaction(users: Any, client: Any, sign_in: Any) -> None:
    schemas = importlib.import_module("modules.users.schemas")
    async with database.sessionmaker() as session:
        created = await users.create(session=session, data=schemas.UserCreate(email="hit@example.com", name="Hit"))
    began: list[Session] = []

    def record(session: Session, *_: Any) -> None:
        began.append(session)

    sign_in()
    event.listen(Session, "after_begin", record)
    try:
        assert (await client.get(f"/api/v1/users/{created.id}")).status_code == 200  # a miss: one query
        missed = list(began)
        began.clear()
        assert (await client.get(f"/api/v1/users/{created.id}")).status_code == 200  # a hit
    finally:
        event.remove(Session, "after_begin", record)
    assert missed, "the first read queried the database"
    assert not any(session.in_transaction() for session in missed), "the request's session was closed"
    assert began == [], "a cache hit began no transaction (no connection taken)"
