"""Safe defaults: browser headers on every answer, docs switchable, bounded tracebacks, one timestamp shape."""

from __future__ import annotations

from collections.abc import AsyncIterator, MutableMapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
import structlog
from prometheus_client import REGISTRY
from pydantic import BaseModel
from sqlalchemy import Column, DateTime, Integer, MetaData, Table, insert, select

from src.app import create_app
from src.core import errors
from src.core.config import Settings
from src.core.db import build_engine
from src.core.schemas import PatchField

SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "content-security-policy": "frame-ancestors 'none'",
}


@asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)

    @app.get("/api/v1/probe/boom")
    async def boom() -> None:
        raise RuntimeError("boom")

    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


async def serve(settings: Settings, path: str) -> httpx.Response:
    async with serving(settings) as client:
        return await client.get(path)


@pytest.mark.parametrize(("path", "status"), [("/health/live", 200), ("/nowhere", 404), ("/api/v1/probe/boom", 500)])
async def test_every_answer_carries_the_security_headers(settings: Settings, path: str, status: int) -> None:
    response = await serve(settings, path)
    assert response.status_code == status
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get_list(name) == [value], name
    if status >= 400:
        assert isinstance(response.json()["detail"], str)  # the documented error shape, also for 404 and 500


@pytest.mark.parametrize("enabled", [True, False])
async def test_docs_are_one_setting(settings: Settings, enabled: bool) -> None:
    configured = settings.model_copy(update={"docs": settings.docs.model_copy(update={"enabled": enabled})})
    for path in ("/docs", "/redoc", "/openapi.json"):
        assert (await serve(configured, path)).status_code == (200 if enabled else 404), path


def suppressed(route: str) -> float:
    value = REGISTRY.get_sample_value("log_tracebacks_suppressed_total", {"route": route, "exception": "RuntimeError"})
    return value or 0.0


async def test_tracebacks_are_rate_limited_per_route_and_exception(settings: Settings) -> None:
    route = "/api/v1/probe/boom"
    before = suppressed(route)
    async with serving(settings) as client:
        logs: list[MutableMapping[str, Any]]
        with structlog.testing.capture_logs() as logs:
            for _ in range(3):
                assert (await client.get(route)).status_code == 500
    lines = [line for line in logs if line["event"] == "unhandled error"]
    assert [line.get("exc_info") for line in lines] == [True, None, None]
    assert [(line["route"], line["error"]) for line in lines] == [(route, "RuntimeError")] * 3
    assert lines[1]["traceback"] == "rate-limited"
    assert suppressed(route) == before + 2


def test_one_traceback_per_interval_per_route_and_exception() -> None:
    now = [1000.0]
    limiter = errors.TracebackLimiter(interval=60, clock=lambda: now[0])
    assert limiter.allow("/a", "RuntimeError")
    assert not limiter.allow("/a", "RuntimeError")
    assert limiter.allow("/a", "KeyError")
    assert limiter.allow("/b", "RuntimeError")
    now[0] += 61
    assert limiter.allow("/a", "RuntimeError")


class Patch(BaseModel):
    name: str = PatchField(min_length=1)
    note: str | None = None


def test_patch_field_may_be_left_out_but_not_null() -> None:
    assert Patch().model_dump(exclude_unset=True) == {}
    assert Patch(name="x", note=None).model_dump(exclude_unset=True) == {"name": "x", "note": None}
    with pytest.raises(ValueError, match="valid string"):
        Patch.model_validate({"name": None})
    assert Patch.model_json_schema()["properties"]["name"] == {"minLength": 1, "title": "Name", "type": "string"}


async def test_sqlite_reads_timezone_columns_back_utc_aware(settings: Settings, tmp_path: Any) -> None:
    engine = build_engine(settings.database.model_copy(update={"url": f"sqlite+aiosqlite:///{tmp_path}/t.db"}))
    table = Table("t", MetaData(), Column("id", Integer, primary_key=True), Column("at", DateTime(timezone=True)))
    paris = datetime(2026, 6, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    try:
        async with engine.begin() as conn:
            await conn.run_sync(table.metadata.create_all)
            await conn.execute(insert(table).values(id=1, at=paris))
            stored = (await conn.execute(select(table.c.at))).scalar_one()
    finally:
        await engine.dispose()
    assert stored == paris
    assert stored.tzinfo == UTC
    assert stored.hour == 12
