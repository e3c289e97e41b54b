from __future__ import annotations

import asyncio
import re

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from prometheus_client import REGISTRY
from sqlalchemy import text

from src.core.cache import CacheNamespace
from src.core.config import MetricsSettings, Settings
from src.core.db import database
from src.core.metrics import HttpMetrics
from src.middleware.conversation import ConversationMiddleware
from src.routes import metrics as metrics_routes

entered = asyncio.Event()
release = asyncio.Event()


def build_app() -> FastAPI:
    app = FastAPI()
    app.add_middleware(ConversationMiddleware, metrics=HttpMetrics("/api/v1"), access_log=False)
    router = APIRouter()

    @router.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    @router.get("/boom")
    async def boom() -> None:
        raise RuntimeError("kaput")

    @router.get("/slow")
    async def slow() -> dict[str, bool]:
        entered.set()
        await release.wait()
        return {"done": True}

    app.include_router(router, prefix="/api/v1/shop")
    app.include_router(metrics_routes.router)
    return app


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture
async def shop() -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=build_app(), raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://test")


ITEM = {"method": "GET", "route": "/api/v1/shop/items/{item_id}", "status": "2xx", "module": "shop"}


async def test_requests_are_counted_by_route_template(shop: httpx.AsyncClient) -> None:
    before = sample("http_requests_total", **ITEM)
    for item_id in (1, 2, 3):
        await shop.get(f"/api/v1/shop/items/{item_id}")
    assert sample("http_requests_total", **ITEM) == before + 3
    assert sample("http_request_duration_seconds_count", **ITEM) >= 3
    exposition = (await shop.get("/metrics")).text
    assert 'route="/api/v1/shop/items/{item_id}"' in exposition
    assert "/api/v1/shop/items/1" not in exposition, "raw paths would make the label set unbounded"


async def test_unmatched_paths_share_one_label(shop: httpx.AsyncClient) -> None:
    labels = {"method": "GET", "route": "<unmatched>", "status": "4xx", "module": "none"}
    before = sample("http_requests_total", **labels)
    await shop.get("/no/such/page-1")
    await shop.get("/no/such/page-2")
    assert sample("http_requests_total", **labels) == before + 2
    assert "page-1" not in (await shop.get("/metrics")).text


@pytest.mark.parametrize("path", ["/docs", "/openapi.json", "/redoc"])
async def test_documentation_routes_are_labelled_with_their_path(client: httpx.AsyncClient, path: str) -> None:
    labels = {"method": "GET", "route": path, "status": "2xx", "module": "core"}
    before = sample("http_requests_total", **labels)
    assert (await client.get(path)).status_code == 200
    assert sample("http_requests_total", **labels) == before + 1, "plain Starlette routes are matched routes too"


async def test_unknown_methods_are_folded(shop: httpx.AsyncClient) -> None:
    labels = {"method": "OTHER", "route": "/api/v1/shop/items/{item_id}", "status": "4xx", "module": "shop"}
    before = sample("http_requests_total", **labels)
    await shop.request("BREW", "/api/v1/shop/items/1")
    await shop.request("MAKE-TEA", "/api/v1/shop/items/1")
    assert sample("http_requests_total", **labels) == before + 2
    assert "BREW" not in (await shop.get("/metrics")).text


async def test_errors_are_counted(shop: httpx.AsyncClient) -> None:
    labels = {"method": "GET", "route": "/api/v1/shop/boom", "status": "5xx", "module": "shop"}
    before = sample("http_request_errors_total", **labels)
    assert (await shop.get("/api/v1/shop/boom")).status_code == 500
    assert sample("http_request_errors_total", **labels) == before + 1
    assert sample("http_requests_total", **labels) >= 1


async def test_in_flight_requests(shop: httpx.AsyncClient) -> None:
    entered.clear()
    release.clear()
    baseline = sample("http_requests_in_flight", method="GET")
    pending = asyncio.create_task(shop.get("/api/v1/shop/slow"))
    await asyncio.wait_for(entered.wait(), timeout=5)
    assert sample("http_requests_in_flight", method="GET") == baseline + 1
    release.set()
    await asyncio.wait_for(pending, timeout=5)
    assert sample("http_requests_in_flight", method="GET") == baseline


async def test_cache_hits_and_misses_are_exported(client: httpx.AsyncClient) -> None:
    cache = CacheNamespace("metricsdemo")
    await cache.set("a", {"x": 1})
    await cache.get("a")
    await cache.get("missing")
    exposition = (await client.get("/metrics")).text
    assert re.search(r'cache_requests_total\{namespace="metricsdemo",result="hit"\} [1-9]', exposition)
    assert re.search(r'cache_requests_total\{namespace="metricsdemo",result="miss"\} [1-9]', exposition)


async def test_database_pool_usage(client: httpx.AsyncClient) -> None:
    idle = sample("db_pool_connections_in_use")
    async with database.engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
        assert sample("db_pool_connections_in_use") == idle + 1
        assert "db_pool_connections_in_use" in (await client.get("/metrics")).text
    assert sample("db_pool_connections_in_use") == idle
    assert sample("db_pool_connections_open") >= 1


async def test_metrics_can_be_disabled(settings: Settings) -> None:
    from src.app import create_app

    app = create_app(settings.model_copy(update={"metrics": MetricsSettings(enabled=False)}))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        assert (await client.get("/metrics")).status_code == 404
